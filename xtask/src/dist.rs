//! `cargo xtask dist`: the release archives krew installs, their checksums, and the rendered
//! krew manifests.
//!
//! Users get the plugin through krew, which downloads a `.tar.gz` (or `.zip` on Windows)
//! holding the binary and `LICENSE`, checks its sha256 and links the binary as
//! `kubectl-fluxbootstrap`. This command builds that archive for the host (or for the
//! `--target`s of the release matrix), writes `<archive>.sha256`, and renders the krew-release-bot
//! template `plugin-manifest/.krew.yaml` with the real checksums into
//! `target/dist/fluxbootstrap.yaml` and the custom index `krew/plugins/fluxbootstrap.yaml`.
//! The version comes from one place, the workspace version in `Cargo.toml`: archive names
//! use it as is, the tag and the krew version are `v` + it.

pub(crate) mod krew;
mod toolchain;

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest, Sha256};

const USAGE: &str = "usage: cargo xtask dist [options]
       cargo xtask dist targets

Builds `kubectl-fluxbootstrap` with `--profile dist`, packs
`kubectl-fluxbootstrap_<version>_<os>_<arch>.tar.gz` (`.zip` for Windows) with the binary and
LICENSE at the root, writes `<archive>.sha256`, and renders plugin-manifest/.krew.yaml with the
sha256 of every archive of this version found in the output directory into
`<out-dir>/fluxbootstrap.yaml` and krew/plugins/fluxbootstrap.yaml.

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

    let template = read(&root.join(TEMPLATE))?;
    let tag = format!("v{version}");
    let rendered = render(&template, &tag, |url| {
        let file = url.rsplit('/').next().unwrap_or(url);
        let sha = read_sha256(&out_dir, file)?;
        let uri = match &options.base_url {
            Some(base) => format!("{base}{file}"),
            None => url.to_owned(),
        };
        Ok(sha.map(|sha| (uri, sha)))
    })?;
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

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// The path the `dist` profile binary for `target` is built at (without building).
pub(crate) fn binary_path(root: &Path, triple: Option<&str>, exe_suffix: &str) -> PathBuf {
    let mut dir = target_dir(root);
    if let Some(triple) = triple {
        dir.push(triple);
    }
    dir.join("dist").join(format!("{BINARY}{exe_suffix}"))
}

/// Builds the binary with `--profile dist` and returns its path.
fn build(root: &Path, target: Target, builder: Builder) -> Result<PathBuf> {
    if let Some(triple) = target.triple {
        toolchain::ensure(triple, builder)?;
    }
    let mut cmd = match builder {
        Builder::Cargo => {
            let mut cmd = Command::new(cargo());
            cmd.arg("build");
            cmd
        }
        Builder::Zigbuild => {
            let mut cmd = Command::new(cargo());
            cmd.arg("zigbuild");
            cmd
        }
        Builder::Cross => {
            let mut cmd = Command::new("cross");
            cmd.arg("build");
            cmd
        }
    };
    cmd.current_dir(root)
        .args(["--package", BINARY, "--bin", BINARY, "--profile", "dist"]);
    if let Some(triple) = target.triple {
        cmd.args(["--target", triple]);
        let scripts = target_dir(root).join("xtask-linkers");
        if let Some((env, linker)) = toolchain::static_pie_linker(triple, builder, &scripts)? {
            cmd.env(env, linker);
        }
    }
    let what = target.triple.unwrap_or("the host");
    progress(&format!(
        "building `{BINARY}` for {what} (--profile dist: fat LTO, takes minutes)"
    ));
    let started = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("failed to run `{}`", cmd.get_program().display()))?;
    ensure!(
        status.success(),
        "building `{BINARY}` for {what} failed ({status})"
    );
    progress(&format!("built for {what} in {:.0?}", started.elapsed()));
    let binary = binary_path(root, target.triple, target.exe_suffix());
    ensure!(
        binary.is_file(),
        "the build did not produce `{}`",
        binary.display()
    );
    Ok(binary)
}

/// Builds what `cargo xtask dist` ships for this machine's platform and returns the binary
/// and its target triple (`native` when the platform has no release-matrix entry): the
/// `binary` benchmark measures what users download.
pub(crate) fn build_for_host(root: &Path) -> Result<(PathBuf, &'static str)> {
    let target = Target::host()?;
    let binary = build(root, target, Builder::Cargo)?;
    Ok((binary, target.triple.unwrap_or("native")))
}

/// The musl triple this machine's release binary is built for (Linux), if any: `cargo xtask
/// test` prepares its toolchain before the krew install test builds one.
pub(crate) fn host_musl_triple() -> Result<Option<&'static str>> {
    Ok(Target::host()?.musl_triple())
}

/// Makes sure the release build for `triple` can work here with its default builder,
/// installing the Rust target and C toolchain when missing (see [`toolchain`]).
pub(crate) fn ensure_toolchain(triple: &str) -> Result<()> {
    toolchain::ensure(triple, toolchain::default_builder(Some(triple)))
}

/// Seconds since the epoch stamped on archive entries: `SOURCE_DATE_EPOCH`, else the time
/// of the `HEAD` commit, else 0. Fixed times make an archive a function of its contents.
fn source_date_epoch(root: &Path) -> u64 {
    if let Some(epoch) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return epoch;
    }
    Command::new("git")
        .current_dir(root)
        .args(["log", "-1", "--format=%ct"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Packs `entries` (name in the archive, file, mode) at the archive root, as a zip when
/// `archive` ends in `.zip`, else as a gzipped tar with regular files only (krew rejects
/// links).
fn pack(archive: &Path, entries: &[(&str, &Path, u32)], mtime: u64) -> Result<()> {
    let tmp = archive.with_extension("partial");
    let file =
        File::create(&tmp).with_context(|| format!("failed to create `{}`", tmp.display()))?;
    let result = if archive.extension().is_some_and(|e| e == "zip") {
        pack_zip(file, entries, mtime)
    } else {
        pack_tar_gz(file, entries, mtime)
    };
    if let Err(err) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(err.context(format!("failed to write `{}`", archive.display())));
    }
    std::fs::rename(&tmp, archive)
        .with_context(|| format!("failed to move `{}` into place", archive.display()))
}

fn pack_tar_gz(file: File, entries: &[(&str, &Path, u32)], mtime: u64) -> Result<()> {
    let gz = flate2::GzBuilder::new().write(BufWriter::new(file), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    for (name, path, mode) in entries {
        let data =
            std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        tar.append_data(&mut header, name, data.as_slice())?;
    }
    tar.into_inner()?.finish()?.flush()?;
    Ok(())
}

fn pack_zip(file: File, entries: &[(&str, &Path, u32)], mtime: u64) -> Result<()> {
    let mut zip = zip::ZipWriter::new(BufWriter::new(file));
    for (name, path, mode) in entries {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(*mode)
            .last_modified_time(zip_time(mtime));
        zip.start_file(*name, options)?;
        let data =
            std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
        zip.write_all(&data)?;
    }
    zip.finish()?.flush()?;
    Ok(())
}

/// `mtime` as a zip (DOS) timestamp in UTC; zip cannot store times before 1980.
#[expect(
    clippy::many_single_char_names,
    reason = "the names of the published algorithm"
)]
fn zip_time(mtime: u64) -> zip::DateTime {
    let days = i64::try_from(mtime / 86_400).unwrap_or(0);
    let secs = mtime % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let parts = (
        u16::try_from(year),
        u8::try_from(month),
        u8::try_from(day),
        u8::try_from(secs / 3600),
        u8::try_from(secs % 3600 / 60),
        u8::try_from(secs % 60),
    );
    match parts {
        (Ok(y), Ok(mo), Ok(d), Ok(h), Ok(mi), Ok(s)) => {
            zip::DateTime::from_date_and_time(y, mo, d, h, mi, s).unwrap_or_default()
        }
        _ => zip::DateTime::default(),
    }
}

fn sha256_hex(path: &Path) -> Result<String> {
    let mut file =
        File::open(path).with_context(|| format!("failed to open `{}`", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    Ok(hasher.finalize().iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    }))
}

/// Writes `<archive>.sha256` in `sha256sum` format and returns the hash.
fn write_sha256(archive: &Path) -> Result<String> {
    let sha = sha256_hex(archive)?;
    let name = archive
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let mut path = archive.as_os_str().to_owned();
    path.push(".sha256");
    write_atomically(Path::new(&path), format!("{sha}  {name}\n").as_bytes())?;
    Ok(sha)
}

/// The sha256 of `dir/file` from `dir/file.sha256`, checked against the archive when it is
/// there too; `None` when there is no checksum file.
fn read_sha256(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(format!("{file}.sha256"));
    if !path.is_file() {
        return Ok(None);
    }
    let text = read(&path)?;
    let sha = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    ensure!(
        sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
        "`{}` does not start with a sha256",
        path.display()
    );
    let archive = dir.join(file);
    if archive.is_file() {
        let actual = sha256_hex(&archive)?;
        ensure!(
            actual == sha,
            "`{}` says {sha} but the archive hashes to {actual}",
            path.display()
        );
    }
    Ok(Some(sha))
}

/// A rendered manifest.
#[derive(Debug)]
struct Rendered {
    text: String,
    /// Platform entries kept.
    platforms: usize,
    /// Archive file names of the platform entries dropped for want of an archive.
    skipped: Vec<String>,
}

/// Renders the krew-release-bot template: `{{ .TagName }}` and
/// `{{addURIAndSha "<url>" .TagName | indent N }}` (the URL may hold `{{ .TagName }}` and
/// `{{ .Version }}`), which is all the template uses. `lookup(url)` gives the `(uri, sha256)`
/// to write for an archive URL, or `None` to drop that platform entry. The template's leading
/// comment is replaced by a do-not-edit note.
fn render(
    template: &str,
    tag: &str,
    mut lookup: impl FnMut(&str) -> Result<Option<(String, String)>>,
) -> Result<Rendered> {
    let version = version_from_tag(tag);
    let mut out = format!(
        "# Rendered by `cargo xtask dist` from {TEMPLATE}: edit the template, not this file.\n"
    );
    let mut lines = template
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .peekable();
    let (mut platforms, mut skipped) = (0, Vec::new());
    while let Some(line) = lines.next() {
        out.push_str(&expand(line, tag, &version, &mut lookup)?.unwrap_or_default());
        out.push('\n');
        if line.trim() != "platforms:" {
            continue;
        }
        let key_indent = indent_of(line);
        // Each `- ` item at the first item's indentation, with its more indented lines.
        let mut item_indent = None;
        let mut item: Option<(String, bool)> = None;
        while let Some(next) = lines.peek() {
            let trimmed = next.trim_start();
            let indent = indent_of(next);
            let starts_item = trimmed.starts_with("- ")
                && indent >= key_indent
                && item_indent.is_none_or(|i| i == indent);
            if !trimmed.is_empty() && !starts_item && item_indent.is_none_or(|i| indent <= i) {
                break;
            }
            if starts_item {
                item_indent = Some(indent);
                if let Some((text, true)) = item.take() {
                    platforms += 1;
                    out.push_str(&text);
                }
                item = Some((String::new(), true));
            }
            let next = lines.next().unwrap_or_default();
            let Some((text, keep)) = item.as_mut() else {
                bail!("`{TEMPLATE}`: `platforms:` must be followed by list items");
            };
            if let Some(expanded) = expand(next, tag, &version, &mut lookup)? {
                text.push_str(&expanded);
                text.push('\n');
            } else {
                *keep = false;
                if let Some(url) = add_uri_url(next, tag, &version) {
                    skipped.push(url.rsplit('/').next().unwrap_or(&url).to_owned());
                }
            }
        }
        if let Some((text, true)) = item {
            platforms += 1;
            out.push_str(&text);
        }
    }
    Ok(Rendered {
        text: out,
        platforms,
        skipped,
    })
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// krew-release-bot's `.Version`: the first `N.N[.N…]` in the tag (`v0.1.0-rc.1` → `0.1.0`).
fn version_from_tag(tag: &str) -> String {
    let bytes = tag.as_bytes();
    for start in 0..bytes.len() {
        if !bytes[start].is_ascii_digit() || (start > 0 && bytes[start - 1].is_ascii_digit()) {
            continue;
        }
        let mut end = start;
        let mut groups = 0;
        loop {
            let digits = bytes[end..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits == 0 {
                break;
            }
            end += digits;
            groups += 1;
            if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
                end += 1;
            } else {
                break;
            }
        }
        if groups >= 2 {
            return tag[start..end].to_owned();
        }
    }
    tag.to_owned()
}

/// Expands the `{{ .TagName }}` / `{{ .Version }}` actions of an `addURIAndSha` URL.
fn expand_url(url: &str, tag: &str, version: &str) -> Result<String> {
    let mut out = String::new();
    let mut rest = url;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .context("unclosed `{{` in an addURIAndSha URL")?;
        match rest[start + 2..start + end].trim() {
            ".TagName" => out.push_str(tag),
            ".Version" => out.push_str(version),
            other => bail!("unsupported action `{{{{ {other} }}}}` in an addURIAndSha URL"),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The expanded URL of the line's `addURIAndSha` action, if it has one.
fn add_uri_url(line: &str, tag: &str, version: &str) -> Option<String> {
    let start = line.find("addURIAndSha \"")? + "addURIAndSha \"".len();
    let len = line[start..].find('"')?;
    expand_url(&line[start..start + len], tag, version).ok()
}

/// Expands the template actions in one line; `None` when `lookup` has no archive for the
/// line's `addURIAndSha`.
fn expand(
    line: &str,
    tag: &str,
    version: &str,
    lookup: &mut impl FnMut(&str) -> Result<Option<(String, String)>>,
) -> Result<Option<String>> {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let action = rest[start + 2..].trim_start();
        if let Some(after) = action.strip_prefix("addURIAndSha \"") {
            let len = after.find('"').context("unterminated addURIAndSha URL")?;
            let url = expand_url(&after[..len], tag, version)?;
            let tail = &after[len + 1..];
            let close = tail.find("}}").context("unclosed addURIAndSha action")?;
            let args: Vec<&str> = tail[..close].split_whitespace().collect();
            let indent: usize = match args.as_slice() {
                [".TagName", "|", "indent", n] => n.parse().context("bad indent width")?,
                [".TagName"] => 4,
                _ => bail!(
                    "unsupported addURIAndSha arguments `{}`",
                    tail[..close].trim()
                ),
            };
            let Some((uri, sha)) = lookup(&url)? else {
                return Ok(None);
            };
            let _ = write!(out, "uri: {uri}\n{}sha256: {sha}", " ".repeat(indent));
            rest = &tail[close + 2..];
        } else {
            let close = rest[start..].find("}}").context("unclosed `{{`")?;
            match rest[start + 2..start + close].trim() {
                ".TagName" => out.push_str(tag),
                other => bail!("unsupported template action `{{{{ {other} }}}}`"),
            }
            rest = &rest[start + close + 2..];
        }
    }
    out.push_str(rest);
    Ok(Some(out))
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
    use super::*;

    const TEMPLATE_TEXT: &str = r#"# comment
kind: Plugin
spec:
  version: {{ .TagName }}
  platforms:
  - selector:
      matchLabels:
        os: linux
    {{addURIAndSha "https://x/download/{{ .TagName }}/k_{{ .Version }}_linux.tar.gz" .TagName | indent 4 }}
    bin: k
  - selector:
      matchLabels:
        os: windows
    {{addURIAndSha "https://x/download/{{ .TagName }}/k_{{ .Version }}_windows.zip" .TagName | indent 4 }}
    bin: k.exe
"#;

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
    fn renders_the_release_bot_subset_and_drops_missing_platforms() {
        let rendered = render(TEMPLATE_TEXT, "v1.2.3", |url| {
            Ok(url
                .ends_with(".tar.gz")
                .then(|| (format!("{url}?x"), "ab".repeat(32))))
        })
        .unwrap();
        assert_eq!(rendered.platforms, 1);
        assert_eq!(rendered.skipped, ["k_1.2.3_windows.zip"]);
        let expected = format!(
            "# Rendered by `cargo xtask dist` from {TEMPLATE}: edit the template, not this file.
kind: Plugin
spec:
  version: v1.2.3
  platforms:
  - selector:
      matchLabels:
        os: linux
    uri: https://x/download/v1.2.3/k_1.2.3_linux.tar.gz?x
    sha256: {}
    bin: k
",
            "ab".repeat(32)
        );
        assert_eq!(rendered.text, expected);
    }

    #[test]
    fn renders_every_platform_of_the_real_template() {
        let template = read(&workspace_root().join(TEMPLATE)).unwrap();
        let rendered = render(&template, "v0.1.0", |url| {
            Ok(Some((url.to_owned(), "0".repeat(64))))
        })
        .unwrap();
        assert_eq!(rendered.platforms, TARGETS.len());
        for (_, os, arch) in TARGETS {
            let ext = if *os == "windows" { "zip" } else { "tar.gz" };
            let name = format!("/v0.1.0/{BINARY}_0.1.0_{os}_{arch}.{ext}\n");
            assert!(
                rendered.text.contains(&name),
                "{name} missing from\n{}",
                rendered.text
            );
        }
        assert!(!rendered.text.contains("{{"));
    }

    #[test]
    fn rejects_unknown_actions() {
        let err = render("a: {{ .Other }}\n", "v1.0.0", |_| Ok(None)).unwrap_err();
        assert!(err.to_string().contains(".Other"), "{err}");
    }

    #[test]
    fn version_from_tag_matches_krew_release_bot() {
        assert_eq!(version_from_tag("v0.1.0"), "0.1.0");
        assert_eq!(version_from_tag("v0.1.0-rc.1"), "0.1.0");
        assert_eq!(version_from_tag("release-2.10"), "2.10");
        assert_eq!(version_from_tag("latest"), "latest");
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
