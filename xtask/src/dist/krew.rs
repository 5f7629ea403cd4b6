//! `cargo xtask krew build`: builds krew and `validate-krew-manifest` from the Go module proxy.
//!
//! The krew install test (`tests/tests/it/krew.rs`) installs the release archive with the real
//! krew and runs krew-index's own validator on the rendered manifest. GitHub downloads are not
//! available, so both are compiled from the wrapper module `xtask/go/krew` (which pins
//! `sigs.k8s.io/krew` through `tool` directives) into a cache directory outside the
//! repository, keyed by the krew version and a hash of its `go.sum`, like the kube binaries.
//! The krew binary is installed as `kubectl-krew` so `kubectl krew` finds it on `PATH`. Its
//! version is deliberately not stamped: krew treats an unstamped build as a development build
//! and never checks GitHub for upgrades, so it stays on loopback even where
//! `KREW_NO_UPGRADE_CHECK` is not passed down (the validator drops it from the environment).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

const USAGE: &str = "usage: cargo xtask krew build [--print-dir]
       cargo xtask krew dir

  build        build `kubectl-krew` and `validate-krew-manifest` into the cache unless present
               (progress on stderr); with --print-dir, print the directory on stdout
  dir          print the cache directory without building

The directory is ~/.cache/kubectl-fluxbootstrap/krew/<krew version>-<go.sum hash>/
(XDG_CACHE_HOME is respected; FLUXBOOTSTRAP_KREW_BIN_DIR overrides it).";

/// (installed file name, Go package).
const BINARIES: &[(&str, &str)] = &[
    ("kubectl-krew", "sigs.k8s.io/krew/cmd/krew"),
    (
        "validate-krew-manifest",
        "sigs.k8s.io/krew/cmd/validate-krew-manifest",
    ),
];

pub(crate) fn run(args: &[String]) -> Result<()> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["build"] => build(false),
        ["build", "--print-dir"] | ["--print-dir", "build"] => build(true),
        ["dir"] => {
            crate::go_cache::print_dir(&bin_dir()?);
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

fn module_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("go/krew")
}

/// The krew version the wrapper module requires, e.g. `v0.5.0`.
fn krew_version() -> Result<String> {
    crate::go_cache::required_version(&module_dir().join("go.mod"), "sigs.k8s.io/krew")
}

fn bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("FLUXBOOTSTRAP_KREW_BIN_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    crate::go_cache::bin_dir("krew", &krew_version()?, &[module_dir().join("go.sum")])
}

#[expect(clippy::print_stderr, reason = "xtask reports its progress on stderr")]
fn progress(message: &str) {
    eprintln!("xtask krew: {message}");
}

fn build(print: bool) -> Result<()> {
    let dir = bin_dir()?;
    let version = krew_version()?;
    let missing: Vec<_> = BINARIES
        .iter()
        .filter(|(name, _)| !dir.join(name).is_file())
        .collect();
    if missing.is_empty() {
        progress(&format!(
            "krew {version} is up to date in `{}`",
            dir.display()
        ));
    } else {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("failed to create `{}`", dir.display()))?;
        let tmp = dir.join(format!(".tmp-{}", std::process::id()));
        std::fs::create_dir_all(&tmp)
            .with_context(|| format!("failed to create `{}`", tmp.display()))?;
        let result = build_into(&dir, &tmp, &version, &missing);
        let _ = std::fs::remove_dir_all(&tmp);
        result?;
    }
    if print {
        crate::go_cache::print_dir(&dir);
    }
    Ok(())
}

fn build_into(dir: &Path, tmp: &Path, version: &str, missing: &[&(&str, &str)]) -> Result<()> {
    progress(&format!(
        "building krew {version} from the Go module proxy (about a minute cold)"
    ));
    let started = Instant::now();
    let go = crate::go_cache::GoScratch::new()?;
    let status = go
        .go(&[])
        .current_dir(module_dir())
        .args(["build", "-trimpath", "-ldflags", "-s -w", "-o"])
        // A trailing slash makes `go build` write one binary per package into the directory.
        .arg(format!("{}/", tmp.display()))
        .args(missing.iter().map(|(_, package)| *package))
        .status()
        .context("failed to run `go`; install Go 1.25 or newer")?;
    ensure!(status.success(), "`go build` of krew failed ({status})");
    progress(&format!("built krew in {:.0?}", started.elapsed()));
    for (name, package) in missing {
        let built = package.rsplit('/').next().unwrap_or(package);
        let (from, to) = (tmp.join(built), dir.join(name));
        std::fs::rename(&from, &to).with_context(|| {
            format!("failed to move `{}` to `{}`", from.display(), to.display())
        })?;
        progress(&format!("installed `{}`", to.display()));
    }
    Ok(())
}
