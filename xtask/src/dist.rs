//! `cargo xtask dist`: the release archives krew installs, their checksums, and the rendered
//! krew manifests.
//!
//! Users get the plugin through krew, which downloads a `.tar.gz` (or `.zip` on Windows)
//! holding the binary and `LICENSE`, checks its sha256 and links the binary as
//! `kubectl-fluxbootstrap`. This command builds that archive for the host (or for the
//! `--target`s of the release matrix), writes `<archive>.sha256`, and writes the krew manifest
//! (from the typed definition in `dist/manifest.rs`) with the real checksums into
//! `target/dist/fluxbootstrap.yaml` and the custom index `krew/plugins/fluxbootstrap.yaml`.
//! `cargo xtask dist template` writes the krew-release-bot template `plugin-manifest/.krew.yaml`
//! from the same definition.
//! The version comes from one place, the workspace version in `Cargo.toml`: archive names
//! use it as is, the tag and the krew version are `v` + it.

mod build;
pub(crate) mod krew;
mod manifest;
mod pack;
mod toolchain;

use build::{build, source_date_epoch};
pub(crate) use build::{build_for_host, ensure_toolchain, host_musl_triple};
use pack::{pack, read_sha256, write_sha256};
#[cfg(test)]
use pack::{sha256_hex, zip_time};

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

const USAGE: &str = "usage: cargo xtask dist [options]
       cargo xtask dist targets
       cargo xtask dist template

Builds `kubectl-fluxbootstrap` with `--profile dist`, packs
`kubectl-fluxbootstrap_<version>_<os>_<arch>.tar.gz` (`.zip` for Windows) with the binary and
LICENSE at the root, writes `<archive>.sha256`, and writes the krew manifest (defined in
xtask/src/dist/manifest.rs) with the sha256 of every archive of this version found in the
output directory into `<out-dir>/fluxbootstrap.yaml` and krew/plugins/fluxbootstrap.yaml.
`template` writes plugin-manifest/.krew.yaml, the krew-release-bot template, from the same
definition.

options:
  --target <triple>     build for a target of the release matrix instead of the host's entry
                        (repeatable; `all` = the whole matrix; `cargo xtask dist targets` lists it;
                        `native` = the toolchain's own target, e.g. a glibc build that runs on
                        this machine only, for when the musl toolchain cannot be installed)
  --build-with <tool>   `cargo` (default), `zigbuild` (`cargo zigbuild`) or `cross` (`cross build`)
  --out-dir <dir>       where archives go (default: target/dist)
  --base-url <url>      download URL prefix written into the rendered manifests instead of the
                        GitHub release URL (e.g. http://127.0.0.1:8080/ for a local test)
  --binary <file>       pack this already built binary instead of building (one target only)
  --no-index            do not rewrite krew/plugins/fluxbootstrap.yaml
  --render-only         build nothing: render from the archives already in the output directory
                        (a release job downloads every platform's archive there first)";

/// The release matrix: (Rust target triple, krew `os`, krew `arch`). Linux builds are static
/// (musl) so they run on any distribution; every entry has a platform in the template.
pub(crate) const TARGETS: &[(&str, &str, &str)] = &[
    ("x86_64-unknown-linux-musl", "linux", "amd64"),
    ("aarch64-unknown-linux-musl", "linux", "arm64"),
    ("x86_64-apple-darwin", "darwin", "amd64"),
    ("aarch64-apple-darwin", "darwin", "arm64"),
    ("x86_64-pc-windows-gnu", "windows", "amd64"),
];

/// The package and binary that ship.
const BINARY: &str = "kubectl-fluxbootstrap";
/// The krew plugin name, which is also the manifest's file name.
const PLUGIN: &str = "fluxbootstrap";
/// The krew-release-bot template, relative to the workspace root.
const TEMPLATE: &str = "plugin-manifest/.krew.yaml";
/// The custom index manifest, relative to the workspace root.
const INDEX_MANIFEST: &str = "krew/plugins/fluxbootstrap.yaml";

/// What to build: the host, or a triple of [`TARGETS`].
#[derive(Debug, Clone, Copy)]
struct Target {
    triple: Option<&'static str>,
    os: &'static str,
    arch: &'static str,
}

impl Target {
    /// The release-matrix entry for this machine's platform (on Linux the static musl build,
    /// which is what ships), else the toolchain's own target.
    fn host() -> Result<Self> {
        let native = Self::native()?;
        Ok(TARGETS
            .iter()
            .find(|(_, os, arch)| *os == native.os && *arch == native.arch)
            .map_or(native, |(triple, os, arch)| Self {
                triple: Some(triple),
                os,
                arch,
            }))
    }

    /// The toolchain's default target (no `--target`): runs on this machine, not necessarily
    /// on every machine of its platform (a glibc build needs this glibc or newer).
    fn native() -> Result<Self> {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            os @ ("linux" | "windows") => os,
            other => bail!("krew has no platform for the host OS `{other}`"),
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            other => bail!("krew has no platform for the host architecture `{other}`"),
        };
        Ok(Self {
            triple: None,
            os,
            arch,
        })
    }

    fn from_triple(triple: &str) -> Result<Self> {
        let Some((triple, os, arch)) = TARGETS.iter().find(|(t, ..)| *t == triple) else {
            bail!(
                "`{triple}` is not in the release matrix\n\n{}",
                targets_table()
            );
        };
        Ok(Self {
            triple: Some(triple),
            os,
            arch,
        })
    }

    /// The triple when this is a musl target.
    fn musl_triple(self) -> Option<&'static str> {
        self.triple.filter(|triple| triple.ends_with("-linux-musl"))
    }

    fn exe_suffix(self) -> &'static str {
        if self.os == "windows" { ".exe" } else { "" }
    }

    fn archive_name(self, version: &str) -> String {
        let ext = if self.os == "windows" {
            "zip"
        } else {
            "tar.gz"
        };
        format!("{BINARY}_{version}_{}_{}.{ext}", self.os, self.arch)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builder {
    Cargo,
    Zigbuild,
    Cross,
}

#[derive(Debug)]
struct Options {
    targets: Vec<Target>,
    /// `--build-with`; else each target's [`toolchain::default_builder`].
    builder: Option<Builder>,
    out_dir: Option<PathBuf>,
    binary: Option<PathBuf>,
    base_url: Option<String>,
    write_index: bool,
    render_only: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        targets: Vec::new(),
        builder: None,
        out_dir: None,
        binary: None,
        base_url: None,
        write_index: true,
        render_only: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String> {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .with_context(|| format!("`{flag}` needs a value\n\n{USAGE}"))
        };
        match flag {
            "--target" => match value()?.as_str() {
                "all" => {
                    for (triple, ..) in TARGETS {
                        options.targets.push(Target::from_triple(triple)?);
                    }
                }
                "host" => options.targets.push(Target::host()?),
                "native" => options.targets.push(Target::native()?),
                triple => options.targets.push(Target::from_triple(triple)?),
            },
            "--build-with" => {
                options.builder = Some(match value()?.as_str() {
                    "cargo" => Builder::Cargo,
                    "zigbuild" => Builder::Zigbuild,
                    "cross" => Builder::Cross,
                    other => bail!("unknown `--build-with {other}`: use cargo, zigbuild or cross"),
                });
            }
            "--out-dir" => options.out_dir = Some(PathBuf::from(value()?)),
            "--base-url" => {
                let mut url = value()?;
                if !url.ends_with('/') {
                    url.push('/');
                }
                options.base_url = Some(url);
            }
            "--binary" => options.binary = Some(PathBuf::from(value()?)),
            "--no-index" => options.write_index = false,
            "--render-only" => options.render_only = true,
            "-h" | "--help" => bail!("{USAGE}"),
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    if options.targets.is_empty() {
        options.targets.push(Target::host()?);
    }
    if options.binary.is_some() && options.targets.len() > 1 {
        bail!("`--binary` packs one binary: give at most one `--target`");
    }
    Ok(options)
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    if args.first().map(String::as_str) == Some("template") {
        let path = workspace_root().join(TEMPLATE);
        write_atomically(&path, release_bot_template().as_bytes())?;
        progress(&format!("wrote `{}`", path.display()));
        return Ok(());
    }
    if args.first().map(String::as_str) == Some("targets") {
        #[expect(clippy::print_stdout, reason = "the matrix is this command's output")]
        {
            println!("{}", targets_table());
        }
        return Ok(());
    }
    let options = parse(args)?;
    let root = workspace_root();
    let version = workspace_version(&root)?;
    let out_dir = match &options.out_dir {
        Some(dir) => dir.clone(),
        None => target_dir(&root).join("dist"),
    };
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("failed to create `{}`", out_dir.display()))?;

    if !options.render_only {
        let license = root.join("LICENSE");
        ensure!(
            license.is_file(),
            "`{}` is missing; the archives must ship it",
            license.display()
        );
        let mtime = source_date_epoch(&root);
        if options.binary.is_none() && options.builder != Some(Builder::Cross) {
            for triple in options.targets.iter().filter_map(|t| t.triple) {
                toolchain::buildable_here(triple)?;
            }
        }
        for target in &options.targets {
            let binary = match &options.binary {
                Some(binary) => binary.clone(),
                None => build(
                    &root,
                    *target,
                    options
                        .builder
                        .unwrap_or_else(|| toolchain::default_builder(target.triple)),
                )?,
            };
            let archive = out_dir.join(target.archive_name(&version));
            let bin_name = format!("{BINARY}{}", target.exe_suffix());
            pack(
                &archive,
                &[(&bin_name, &binary, 0o755), ("LICENSE", &license, 0o644)],
                mtime,
            )?;
            let sha = write_sha256(&archive)?;
            let size = std::fs::metadata(&binary)
                .map(|m| m.len())
                .unwrap_or_default();
            progress(&format!(
                "packed `{}` (binary {:.1} MB, sha256 {sha})",
                archive.display(),
                mb(size)
            ));
        }
    }

    let rendered = released_manifest(&out_dir, &version, options.base_url.as_deref())?;
    ensure!(
        rendered.platforms > 0,
        "no archive of version {version} in `{}`: nothing to render (run without --render-only)",
        out_dir.display()
    );
    if !rendered.skipped.is_empty() {
        progress(&format!(
            "rendered without the platforms whose archive is not in `{}`: {}",
            out_dir.display(),
            rendered.skipped.join(", ")
        ));
    }
    let mut outputs = vec![out_dir.join(format!("{PLUGIN}.yaml"))];
    if options.write_index {
        outputs.push(root.join(INDEX_MANIFEST));
    }
    for path in outputs {
        write_atomically(&path, rendered.text.as_bytes())?;
        progress(&format!(
            "rendered `{}` ({} platforms)",
            path.display(),
            rendered.platforms
        ));
    }
    Ok(())
}

fn targets_table() -> String {
    let mut out = String::from("release matrix (triple, krew os/arch):");
    for (triple, os, arch) in TARGETS {
        let _ = write!(out, "\n  {triple:<28} {os}/{arch}");
    }
    out
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root because of the workspace layout")
        .to_path_buf()
}

pub(crate) fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// `version` of `[workspace.package]` in the root `Cargo.toml`: the one place it is set.
pub(crate) fn workspace_version(root: &Path) -> Result<String> {
    let manifest = root.join("Cargo.toml");
    let text = read(&manifest)?;
    let mut in_section = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line == "[workspace.package]";
        } else if in_section
            && let Some(value) = line.strip_prefix("version").map(str::trim_start)
            && let Some(value) = value.strip_prefix('=')
        {
            return Ok(value.trim().trim_matches('"').to_owned());
        }
    }
    bail!(
        "`{}` has no `[workspace.package]` version",
        manifest.display()
    )
}

/// A rendered manifest.
#[derive(Debug)]
struct Rendered {
    text: String,
    /// Platform entries kept.
    platforms: usize,
    /// Archive file names of the platforms left out for want of an archive.
    skipped: Vec<String>,
}

/// Where release archives are downloaded from, per tag.
const RELEASES: &str =
    "https://github.com/kubectl-fluxbootstrap/kubectl-fluxbootstrap/releases/download";

/// Every platform of the release matrix, with `archive` giving its entry (`None` leaves the
/// platform out).
fn platforms(
    mut archive: impl FnMut(Target) -> Result<Option<manifest::Archive>>,
) -> Result<(Vec<manifest::Platform>, Vec<Target>)> {
    let (mut kept, mut left_out) = (Vec::new(), Vec::new());
    for &(triple, os, arch) in TARGETS {
        let target = Target {
            triple: Some(triple),
            os,
            arch,
        };
        match archive(target)? {
            Some(archive) => kept.push(manifest::Platform {
                os,
                arch,
                bin: format!("{BINARY}{}", target.exe_suffix()),
                archive,
            }),
            None => left_out.push(target),
        }
    }
    Ok((kept, left_out))
}

/// The template krew-release-bot renders on a release tag.
fn release_bot_template() -> String {
    let (platforms, _) = platforms(|target| {
        Ok(Some(manifest::Archive::ReleaseBot {
            url_template: format!(
                "{RELEASES}/{{{{ .TagName }}}}/{}",
                target.archive_name("{{ .Version }}")
            ),
        }))
    })
    .expect("the template needs no archive");
    manifest::render(
        "krew Plugin template for krew-release-bot, generated from xtask/src/dist/manifest.rs by \
         `cargo xtask dist template`: edit that file, not this one (see README.md).",
        "{{ .TagName }}",
        &platforms,
    )
}

/// The manifest for the archives of `version` in `out_dir`, with their sha256; `base_url`
/// replaces the GitHub release URL.
fn released_manifest(out_dir: &Path, version: &str, base_url: Option<&str>) -> Result<Rendered> {
    let tag = format!("v{version}");
    let (platforms, left_out) = platforms(|target| {
        let file = target.archive_name(version);
        let uri = match base_url {
            Some(base) => format!("{base}{file}"),
            None => format!("{RELEASES}/{tag}/{file}"),
        };
        Ok(read_sha256(out_dir, &file)?.map(|sha256| manifest::Archive::Released { uri, sha256 }))
    })?;
    Ok(Rendered {
        text: manifest::render(
            "Generated by `cargo xtask dist` from xtask/src/dist/manifest.rs and the release \
             archives: do not edit this file.",
            &tag,
            &platforms,
        ),
        platforms: platforms.len(),
        skipped: left_out.iter().map(|t| t.archive_name(version)).collect(),
    })
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("failed to read `{}`", path.display()))
}

fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create `{}`", dir.display()))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, contents)
        .with_context(|| format!("failed to write `{}`", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("failed to write `{}`", path.display()))
}

#[expect(clippy::cast_precision_loss, reason = "a size shown with one decimal")]
pub(crate) fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

#[expect(clippy::print_stderr, reason = "xtask reports its progress on stderr")]
fn progress(message: &str) {
    eprintln!("xtask dist: {message}");
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;

    #[test]
    fn the_host_builds_its_release_matrix_entry_and_native_its_toolchain_default() {
        let host = Target::host().expect("this machine has a krew platform");
        let native = Target::native().expect("this machine has a krew platform");
        assert_eq!((host.os, host.arch), (native.os, native.arch));
        assert_eq!(native.triple, None);
        let entry = TARGETS
            .iter()
            .find(|(_, os, arch)| *os == host.os && *arch == host.arch)
            .map(|(triple, ..)| *triple);
        assert_eq!(host.triple, entry);
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            assert_eq!(host.triple, Some("x86_64-unknown-linux-musl"));
            assert_eq!(
                host.archive_name("1.2.3"),
                "kubectl-fluxbootstrap_1.2.3_linux_amd64.tar.gz"
            );
        }
    }

    #[test]
    fn the_committed_release_bot_template_is_generated_from_the_definition() {
        let committed = read(&workspace_root().join(TEMPLATE)).unwrap();
        assert!(
            committed == release_bot_template(),
            "`{TEMPLATE}` is not what xtask/src/dist/manifest.rs generates: run `cargo xtask dist template`"
        );
        for (_, os, arch) in TARGETS {
            assert!(committed.contains(&format!("os: {os}\n        arch: {arch}\n")));
        }
        assert!(committed.contains(
            "/releases/download/{{ .TagName }}/kubectl-fluxbootstrap_{{ .Version }}_windows_amd64.zip\" .TagName | indent 4 }}\n    bin: kubectl-fluxbootstrap.exe\n"
        ));
    }

    #[test]
    fn the_manifest_lists_the_platforms_with_archives_and_their_checksums() {
        let dir = scratch("manifest");
        let linux = Target::from_triple("x86_64-unknown-linux-musl").unwrap();
        let archive = dir.join(linux.archive_name("1.2.3"));
        std::fs::write(&archive, b"archive bytes").unwrap();
        let sha = write_sha256(&archive).unwrap();
        let rendered = released_manifest(&dir, "1.2.3", None).unwrap();
        assert_eq!(rendered.platforms, 1);
        assert_eq!(rendered.skipped.len(), TARGETS.len() - 1);
        assert!(
            rendered.text.contains("  version: v1.2.3\n"),
            "{}",
            rendered.text
        );
        assert!(
            rendered.text.contains(&format!(
                "        os: linux\n        arch: amd64\n    uri: {RELEASES}/v1.2.3/kubectl-fluxbootstrap_1.2.3_linux_amd64.tar.gz\n    sha256: {sha}\n    bin: kubectl-fluxbootstrap\n"
            )),
            "{}",
            rendered.text
        );
        assert!(!rendered.text.contains("{{"));
        let local = released_manifest(&dir, "1.2.3", Some("http://127.0.0.1:1/")).unwrap();
        assert!(local.text.contains(
            "    uri: http://127.0.0.1:1/kubectl-fluxbootstrap_1.2.3_linux_amd64.tar.gz\n"
        ));
    }

    #[test]
    fn zip_time_is_utc_civil_time() {
        assert_eq!(
            zip_time(1_700_000_000),
            zip::DateTime::from_date_and_time(2023, 11, 14, 22, 13, 20).unwrap()
        );
        assert_eq!(zip_time(0), zip::DateTime::default());
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-dist-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn archives_hold_the_binary_and_license_at_the_root_with_modes() {
        let dir = scratch("pack");
        let (bin, license) = (dir.join("bin"), dir.join("LICENSE"));
        std::fs::write(&bin, b"#!/bin/sh\n").unwrap();
        std::fs::write(&license, b"license text").unwrap();
        let entries = [
            (BINARY, bin.as_path(), 0o755),
            ("LICENSE", license.as_path(), 0o644),
        ];

        let tgz = dir.join("a.tar.gz");
        pack(&tgz, &entries, 1_700_000_000).unwrap();
        let first = sha256_hex(&tgz).unwrap();
        let file = File::open(&tgz).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let found: Vec<(String, u32, tar::EntryType)> = tar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.entry_type(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                (BINARY.to_owned(), 0o755, tar::EntryType::Regular),
                ("LICENSE".to_owned(), 0o644, tar::EntryType::Regular)
            ]
        );
        pack(&tgz, &entries, 1_700_000_000).unwrap();
        assert_eq!(
            sha256_hex(&tgz).unwrap(),
            first,
            "archives are reproducible"
        );

        let zip_path = dir.join("a.zip");
        pack(&zip_path, &entries, 1_700_000_000).unwrap();
        let mut zip = zip::ZipArchive::new(File::open(&zip_path).unwrap()).unwrap();
        assert_eq!(zip.len(), 2);
        let exe = zip.by_name(BINARY).unwrap();
        assert_eq!(exe.unix_mode().map(|m| m & 0o777), Some(0o755));
        drop(exe);
        assert!(zip.by_name("LICENSE").is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn checksum_files_are_checked_against_the_archive() {
        let dir = scratch("sha");
        let archive = dir.join("k.tar.gz");
        std::fs::write(&archive, b"archive").unwrap();
        let sha = write_sha256(&archive).unwrap();
        assert_eq!(read_sha256(&dir, "k.tar.gz").unwrap(), Some(sha.clone()));
        assert_eq!(
            read(&dir.join("k.tar.gz.sha256")).unwrap(),
            format!("{sha}  k.tar.gz\n")
        );
        assert_eq!(read_sha256(&dir, "missing.tar.gz").unwrap(), None);
        std::fs::write(&archive, b"changed").unwrap();
        assert!(read_sha256(&dir, "k.tar.gz").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn workspace_version_is_the_package_version() {
        assert_eq!(
            workspace_version(&workspace_root()).unwrap(),
            env!("CARGO_PKG_VERSION")
        );
    }
}
