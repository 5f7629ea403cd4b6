//! Building the release binary: `cargo build --profile dist` (or `cargo zigbuild`, `cross`) for
//! one target of the release matrix, with the toolchain it needs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, ensure};

use super::{BINARY, Builder, Target, progress, target_dir, toolchain};

pub(super) fn cargo() -> String {
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
pub(super) fn build(root: &Path, target: Target, builder: Builder) -> Result<PathBuf> {
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
pub(super) fn source_date_epoch(root: &Path) -> u64 {
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
