//! `cargo xtask flux build`: builds the real Flux controllers and the real `flux` CLI from the
//! Go module proxy.
//!
//! The harness runs the real source-controller and kustomize-controller, and the differential
//! tests run the real `flux` CLI beside the plugin. Nothing on a test machine ships them, and
//! their modules do not build as published (a `replace` pointing at a directory the module zip
//! lacks, a requirement the proxy here refuses, files upstream's Makefile generates), so each
//! build copies its module to a writable directory, applies the edits listed in
//! `xtask/go/flux/builds.txt` and runs `go build` there. The binaries land in a cache directory
//! keyed by that file's hash, which the harness derives the same way; only missing binaries
//! are built, each into a temporary directory first, so the cache never holds half a binary.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::go_cache::GoScratch;

const USAGE: &str = "usage: cargo xtask flux build [--print-dir]
       cargo xtask flux dir

  build        build the missing source-controller, kustomize-controller and flux binaries
               into the cache (progress goes to stderr); with --print-dir, print the directory
  dir          print the cache directory without building

The directory is ~/.cache/kubectl-fluxbootstrap/flux/<hash of xtask/go/flux/builds.txt>/
(XDG_CACHE_HOME is respected; FLUXBOOTSTRAP_FLUX_BIN_DIR overrides it). The `flux` CLI embeds
the Flux release bundle, read from $FLUXBOOTSTRAP_FLUX_MANIFESTS/<version>/ and checked against
its SHA256SUMS; without that directory the CLI is not built (and the tests that need it say so).";

/// Where the release bundle the `flux` CLI embeds comes from (`.ci/run` sets it).
const MANIFESTS_ENV: &str = "FLUXBOOTSTRAP_FLUX_MANIFESTS";

/// The nine files of a Flux release's `manifests.tar.gz`.
const BUNDLE_FILES: [&str; 9] = [
    "source-controller.yaml",
    "kustomize-controller.yaml",
    "helm-controller.yaml",
    "notification-controller.yaml",
    "image-reflector-controller.yaml",
    "image-automation-controller.yaml",
    "source-watcher.yaml",
    "rbac.yaml",
    "policies.yaml",
];

/// One line of `builds.txt`.
#[derive(Debug)]
struct Build {
    binary: String,
    module: String,
    version: String,
    package: String,
    drop_replaces: Vec<String>,
    pins: Vec<(String, String)>,
    ldflags: Vec<String>,
    bundle_dir: Option<String>,
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["build"] => build(false),
        ["build", "--print-dir"] | ["--print-dir", "build"] => build(true),
        ["dir" | "--print-dir"] => {
            crate::go_cache::print_dir(&bin_dir()?);
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

fn builds_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("go/flux/builds.txt")
}

/// The cache directory for the binaries; the harness derives the same path.
pub(crate) fn bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("FLUXBOOTSTRAP_FLUX_BIN_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    crate::go_cache::bin_dir("flux", "builds", &[builds_file()])
}

fn parse_builds(text: &str) -> Result<Vec<Build>> {
    let mut builds = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("`{}` line {}", builds_file().display(), number + 1);
        let mut fields = line.split_whitespace();
        let (Some(binary), Some(module), Some(package)) =
            (fields.next(), fields.next(), fields.next())
        else {
            bail!("{}: expected `<binary> <module>@<version> <package>`", at());
        };
        let (module, version) = module
            .split_once('@')
            .with_context(|| format!("{}: `{module}` has no @version", at()))?;
        let mut build = Build {
            binary: binary.to_owned(),
            module: module.to_owned(),
            version: version.to_owned(),
            package: package.to_owned(),
            drop_replaces: Vec::new(),
            pins: Vec::new(),
            ldflags: Vec::new(),
            bundle_dir: None,
        };
        for edit in fields {
            match edit.split_once('=') {
                Some(("drop-replace", m)) => build.drop_replaces.push(m.to_owned()),
                Some(("pin", pin)) => {
                    let (m, v) = pin
                        .split_once('@')
                        .with_context(|| format!("{}: pin `{pin}` has no @version", at()))?;
                    build.pins.push((m.to_owned(), v.to_owned()));
                }
                Some(("ldflags", flags)) => {
                    build
                        .ldflags
                        .push(flags.split(',').collect::<Vec<_>>().join(" "));
                }
                Some(("bundle", dir)) => build.bundle_dir = Some(dir.to_owned()),
                _ => bail!("{}: unknown edit `{edit}`", at()),
            }
        }
        builds.push(build);
    }
    Ok(builds)
}

#[expect(clippy::print_stderr, reason = "xtask reports its progress on stderr")]
fn progress(message: &str) {
    eprintln!("xtask flux: {message}");
}

fn build(print: bool) -> Result<()> {
    let file = builds_file();
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("failed to read `{}`", file.display()))?;
    let builds = parse_builds(&text)?;
    let dir = bin_dir()?;
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    // Go's caches, made on the first build and removed when this command is done.
    let mut scratch = None;
    for build in &builds {
        if dir.join(&build.binary).is_file() {
            progress(&format!(
                "`{}` ({}@{}) is up to date in `{}`",
                build.binary,
                build.module,
                build.version,
                dir.display()
            ));
            continue;
        }
        let bundle = if build.bundle_dir.is_some() {
            let Some(source) = bundle_source(&build.version)? else {
                progress(&format!(
                    "NOT building `{}`: it embeds the Flux {} release bundle and \
                     ${MANIFESTS_ENV} does not point at a directory holding `{}/`; the \
                     tests that compare with the real flux CLI will say they are skipped",
                    build.binary, build.version, build.version
                ));
                continue;
            };
            Some(source)
        } else {
            None
        };
        let tmp = dir.join(format!(".tmp-{}-{}", build.binary, std::process::id()));
        let go = match &mut scratch {
            Some(go) => go,
            None => scratch.insert(crate::go_cache::GoScratch::new()?),
        };
        let result = build_one(go, build, bundle.as_deref(), &tmp, &dir);
        let _ = std::fs::remove_dir_all(&tmp);
        result.with_context(|| {
            format!(
                "building `{}` from {}@{} failed",
                build.binary, build.module, build.version
            )
        })?;
    }
    if print {
        crate::go_cache::print_dir(&dir);
    }
    Ok(())
}

/// `$FLUXBOOTSTRAP_FLUX_MANIFESTS/<version>/`, every bundle file checked against `SHA256SUMS`.
fn bundle_source(version: &str) -> Result<Option<PathBuf>> {
    let Some(root) = std::env::var_os(MANIFESTS_ENV).filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let dir = PathBuf::from(root).join(version);
    let sums_path = dir.join("SHA256SUMS");
    let Ok(sums) = std::fs::read_to_string(&sums_path) else {
        return Ok(None);
    };
    for name in BUNDLE_FILES {
        let expected = sums
            .lines()
            .find_map(|line| {
                let (hash, file) = line.split_once(char::is_whitespace)?;
                (file.trim().trim_start_matches('*') == name).then_some(hash)
            })
            .with_context(|| format!("`{}` lists no checksum for `{name}`", sums_path.display()))?;
        let path = dir.join(name);
        let bytes =
            std::fs::read(&path).with_context(|| format!("failed to read `{}`", path.display()))?;
        let actual = hex(&Sha256::digest(&bytes));
        if actual != expected {
            bail!(
                "`{}` does not match `{}` (sha256 {actual}, expected {expected})",
                path.display(),
                sums_path.display()
            );
        }
    }
    Ok(Some(dir))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn build_one(
    go: &GoScratch,
    build: &Build,
    bundle: Option<&Path>,
    tmp: &Path,
    dir: &Path,
) -> Result<()> {
    let started = Instant::now();
    progress(&format!(
        "building `{}` from {}@{} (a cold build takes several minutes)",
        build.binary, build.module, build.version
    ));
    let source = download(go, &build.module, &build.version)?;
    let work = tmp.join("src");
    copy_writable(&source, &work)?;
    edit_go_mod(&work.join("go.mod"), build)?;
    for (module, version) in &build.pins {
        // The pinned version's go.sum lines come from the proxy, checked against the sum DB.
        download(go, module, version)?;
    }
    if let (Some(rel), Some(bundle)) = (&build.bundle_dir, bundle) {
        let target = work.join(rel);
        std::fs::create_dir_all(&target)
            .with_context(|| format!("failed to create `{}`", target.display()))?;
        for name in BUNDLE_FILES {
            std::fs::copy(bundle.join(name), target.join(name))
                .with_context(|| format!("failed to copy `{name}` into `{}`", target.display()))?;
        }
    }
    let mut ldflags = String::from("-s -w");
    for flag in &build.ldflags {
        ldflags.push(' ');
        ldflags.push_str(flag);
    }
    let out = tmp.join(&build.binary);
    // The edits change requirements, so go.sum gains the lines they need (`-mod=mod`).
    let status = go
        .go(&["-mod=mod", "-buildvcs=false"])
        .current_dir(&work)
        .args(["build", "-trimpath", "-ldflags", &ldflags, "-o"])
        .arg(&out)
        .arg(&build.package)
        .status()
        .context("failed to run `go`; install Go 1.26 or newer")?;
    if !status.success() {
        bail!(
            "`go build {}` in a copy of {}@{} failed ({status})",
            build.package,
            build.module,
            build.version
        );
    }
    let to = dir.join(&build.binary);
    std::fs::rename(&out, &to)
        .with_context(|| format!("failed to move `{}` to `{}`", out.display(), to.display()))?;
    progress(&format!(
        "built `{}` in {:.0?}",
        to.display(),
        started.elapsed()
    ));
    Ok(())
}

/// `go mod download` of one module version; returns its directory.
fn download(go: &GoScratch, module: &str, version: &str) -> Result<PathBuf> {
    let out = go
        .go(&[])
        .args(["mod", "download", "-json", &format!("{module}@{version}")])
        .output()
        .context("failed to run `go`; install Go 1.26 or newer")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        let key = format!("\"{name}\": \"");
        text.lines().find_map(|line| {
            line.trim()
                .strip_prefix(&key)?
                .strip_suffix("\",")
                .map(str::to_owned)
        })
    };
    if let Some(error) = field("Error") {
        bail!("the Go module proxy refused {module}@{version}: {error}");
    }
    if !out.status.success() {
        bail!(
            "`go mod download {module}@{version}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    field("Dir")
        .map(PathBuf::from)
        .with_context(|| format!("`go mod download` printed no directory for {module}@{version}"))
}

/// Copies a module directory (read-only in the module cache) to a writable `to`.
fn copy_writable(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("failed to create `{}`", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("failed to read `{}`", from.display()))?
    {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_writable(&source, &target)?;
        } else {
            std::fs::write(
                &target,
                std::fs::read(&source)
                    .with_context(|| format!("failed to read `{}`", source.display()))?,
            )
            .with_context(|| format!("failed to write `{}`", target.display()))?;
        }
    }
    Ok(())
}

/// Applies a build's `drop-replace` and `pin` edits to its `go.mod`; each must match a line.
fn edit_go_mod(path: &Path, build: &Build) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for module in &build.drop_replaces {
        let is_local_replace = |line: &String| {
            let line = line.trim();
            let line = line.strip_prefix("replace ").unwrap_or(line);
            line.strip_prefix(module.as_str())
                .and_then(|rest| rest.trim_start().strip_prefix("=>"))
                .is_some_and(|target| target.trim().starts_with("./"))
        };
        let before = lines.len();
        lines.retain(|line| !is_local_replace(line));
        if lines.len() == before {
            bail!(
                "{}@{}'s go.mod has no `replace {module} => ./…` to drop",
                build.module,
                build.version
            );
        }
    }
    for (module, version) in &build.pins {
        let prefix = format!("{module} ");
        let line = lines
            .iter_mut()
            .find(|line| {
                let line = line.trim();
                line.strip_prefix("require ")
                    .unwrap_or(line)
                    .starts_with(&prefix)
            })
            .with_context(|| {
                format!(
                    "{}@{}'s go.mod does not require {module}, so it cannot be pinned to {version}",
                    build.module, build.version
                )
            })?;
        let indent = &line[..line.len() - line.trim_start().len()];
        *line = format!("{indent}{module} {version}");
    }
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("failed to write `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_builds_parse() {
        let text = std::fs::read_to_string(builds_file()).expect("builds.txt is in the tree");
        let builds = parse_builds(&text).expect("parses");
        let names: Vec<&str> = builds.iter().map(|b| b.binary.as_str()).collect();
        assert_eq!(names, ["source-controller", "kustomize-controller", "flux"]);
        assert_eq!(builds[2].ldflags, ["-X main.VERSION=2.9.4"]);
        assert!(parse_builds("x y@v1 . frobnicate=1").is_err());
    }

    #[test]
    fn go_mod_edits_must_match() {
        let dir = std::env::temp_dir().join(format!("xtask-flux-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let go_mod = dir.join("go.mod");
        std::fs::write(
            &go_mod,
            "module m\n\nreplace m/api => ./api\n\nreplace x => x v1\n\nrequire (\n\tm/api v1.0.0\n\tp v0.2\n)\n",
        )
        .expect("writable");
        let build = parse_builds("b m@v1 . drop-replace=m/api pin=p@v0.1")
            .expect("parses")
            .remove(0);
        edit_go_mod(&go_mod, &build).expect("edits apply");
        let text = std::fs::read_to_string(&go_mod).expect("readable");
        assert!(!text.contains("./api"), "{text}");
        assert!(text.contains("replace x => x v1"), "{text}");
        assert!(text.contains("\tp v0.1\n"), "{text}");
        let missing = parse_builds("b m@v1 . drop-replace=other")
            .expect("parses")
            .remove(0);
        assert!(edit_go_mod(&go_mod, &missing).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
