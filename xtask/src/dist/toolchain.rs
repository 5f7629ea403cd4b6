//! What a release build for one target needs on this machine, installed when missing.
//!
//! `cargo xtask dist --target <triple>` must work on a fresh machine of the project's kind, as
//! `cargo xtask test` does: the Rust standard library of the target (rustup), and a C
//! toolchain for the C code `git2` vendors (libgit2, libssh2, OpenSSL, zlib). Which C toolchain
//! depends on the target and the builder:
//! - a musl target for the host architecture: Debian's `musl-gcc` (`musl-tools`);
//! - a musl target for another architecture: zig (the `ziglang` wheel from `PyPI`) through
//!   `cargo-zigbuild` (crates.io), since Debian ships no musl cross compiler;
//! - `x86_64-pc-windows-gnu`: Debian's mingw-w64 gcc, which is also the linker;
//! - darwin: Apple's SDK, which only macOS has (libgit2 links the Security framework).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use super::{Builder, progress};

/// The `ziglang` wheel `cargo-zigbuild` drives (`python3 -m ziglang`).
const ZIGLANG: &str = "ziglang==0.17.1";
/// The `cargo-zigbuild` release that is installed when none is.
const CARGO_ZIGBUILD: &str = "cargo-zigbuild@0.24.1";
/// Debian's mingw-w64 C compiler for 64-bit Windows (also the Rust target's linker).
const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";

/// The builder `dist` uses for `triple` when `--build-with` does not say.
pub(crate) fn default_builder(triple: Option<&str>) -> Builder {
    match triple {
        Some(triple)
            if triple.ends_with("-linux-musl")
                && !triple.starts_with(&format!("{}-", std::env::consts::ARCH))
                && std::env::consts::OS == "linux" =>
        {
            Builder::Zigbuild
        }
        _ => Builder::Cargo,
    }
}

/// Makes sure `builder` can build `triple` here, installing what is missing, or says what to
/// install.
pub(crate) fn ensure(triple: &str, builder: Builder) -> Result<()> {
    if builder == Builder::Cross {
        // cross brings its own toolchains in containers.
        return Ok(());
    }
    buildable_here(triple)?;
    ensure_rust_target(triple)?;
    match builder {
        Builder::Zigbuild => ensure_zigbuild(),
        Builder::Cargo if triple.ends_with("-linux-musl") => ensure_musl_gcc(triple),
        Builder::Cargo if triple == "x86_64-pc-windows-gnu" => ensure_mingw(),
        Builder::Cargo | Builder::Cross => Ok(()),
    }
}

/// Refuses a target no toolchain here can build, before anything is built.
pub(crate) fn buildable_here(triple: &str) -> Result<()> {
    if triple.ends_with("-apple-darwin") && std::env::consts::OS != "macos" {
        bail!(
            "`{triple}` builds on macOS only: libgit2 and rustls-platform-verifier link Apple's \
             Security framework, which needs the macOS SDK (the release workflow builds darwin \
             on a macOS runner)"
        );
    }
    Ok(())
}

fn ensure_rust_target(triple: &str) -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .with_context(|| format!("`{triple}` needs rustup to install its standard library"))?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|line| line.trim() == triple)
    {
        return Ok(());
    }
    progress(&format!("installing the Rust target {triple} (rustup)"));
    let status = Command::new("rustup")
        .args(["target", "add", triple])
        .status()
        .context("failed to run `rustup target add`")?;
    ensure!(
        status.success(),
        "`rustup target add {triple}` failed ({status}); install the target, build with \
         `--build-with cross`, or build `--target native`"
    );
    Ok(())
}

/// A musl C compiler for the vendored C libraries: `<arch>-linux-musl-gcc`, Debian's
/// `musl-gcc` for the host architecture, or `CC_<triple>`.
fn ensure_musl_gcc(triple: &str) -> Result<()> {
    let arch = triple.split('-').next().unwrap_or(triple);
    let cc_env = format!("CC_{}", triple.replace('-', "_"));
    let mut compilers = vec![format!("{arch}-linux-musl-gcc")];
    if std::env::consts::ARCH == arch {
        // Debian's musl-tools wraps the host gcc for the host architecture only.
        compilers.push("musl-gcc".to_owned());
    }
    let found =
        std::env::var_os(&cc_env).is_some() || compilers.iter().any(|cc| on_path(cc).is_some());
    ensure!(
        found,
        "building `{triple}` needs a musl C compiler (one of {}) or `{cc_env}` naming one: \
         install Debian's `musl-tools` (`sudo apt-get install musl-tools`) for the host \
         architecture, or build with `--build-with zigbuild` or `--build-with cross`",
        compilers.join(", ")
    );
    Ok(())
}

fn ensure_mingw() -> Result<()> {
    if on_path(MINGW_GCC).is_some() {
        return Ok(());
    }
    crate::test::install_packages(&["gcc-mingw-w64-x86-64"])
        .context("building for Windows needs Debian's mingw-w64 C compiler")?;
    ensure!(
        on_path(MINGW_GCC).is_some(),
        "`gcc-mingw-w64-x86-64` is installed but `{MINGW_GCC}` is not on PATH"
    );
    Ok(())
}

fn ensure_zigbuild() -> Result<()> {
    let has_zig = on_path("zig").is_some()
        || std::env::var_os("ZIG").is_some()
        || Command::new("python3")
            .args(["-m", "ziglang", "version"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !has_zig {
        progress(&format!(
            "installing zig ({ZIGLANG}, PyPI) for cargo-zigbuild"
        ));
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", ZIGLANG])
            .status()
            .context("failed to run `python3 -m pip`")?;
        ensure!(
            status.success(),
            "`pip install {ZIGLANG}` failed ({status}); install zig and put it on PATH"
        );
    }
    let has_zigbuild = Command::new("cargo-zigbuild")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if has_zigbuild {
        return Ok(());
    }
    progress(&format!("installing {CARGO_ZIGBUILD} (crates.io)"));
    let status = Command::new(super::build::cargo())
        .args(["install", "--locked", CARGO_ZIGBUILD])
        .status()
        .context("failed to run `cargo install`")?;
    if !status.success() {
        bail!("`cargo install --locked {CARGO_ZIGBUILD}` failed ({status})");
    }
    Ok(())
}

/// The musl targets whose Rust target spec has no static-pie support (only
/// `x86_64-unknown-linux-musl` has it): rustc links them with `crt1.o`, `-static -no-pie`, a
/// fixed-address executable. Their release binary must be static-pie like the amd64 one.
const STATIC_PIE_BY_LINKER: &[&str] = &["aarch64-unknown-linux-musl"];

/// For a [`STATIC_PIE_BY_LINKER`] target built with zig: the `(env var, linker)` that makes the
/// link static-pie, written into `dir`. The linker is a shell script that swaps rustc's
/// self-contained start files for musl's position-independent ones (`rcrt1.o`,
/// `crtbeginS.o`, `crtendS.o`, all shipped with the Rust target), turns `-static -no-pie`
/// into `-static -pie`, and runs zig's `cc` as cargo-zigbuild would. The krew install and
/// platform tests check the ELF header of the result.
pub(crate) fn static_pie_linker(
    triple: &str,
    builder: Builder,
    dir: &Path,
) -> Result<Option<(String, PathBuf)>> {
    if builder != Builder::Zigbuild || !STATIC_PIE_BY_LINKER.contains(&triple) {
        return Ok(None);
    }
    let zig_target = triple.replace("-unknown-", "-");
    let script = format!(
        r#"#!/bin/sh
# Written by `cargo xtask dist` (xtask/src/dist/toolchain.rs): links {triple} static-pie.
for arg do
  shift
  case "$arg" in
    */self-contained/crt1.o) set -- "$@" "${{arg%crt1.o}}rcrt1.o" ;;
    */self-contained/crtbegin.o) set -- "$@" "${{arg%crtbegin.o}}crtbeginS.o" ;;
    */self-contained/crtend.o) set -- "$@" "${{arg%crtend.o}}crtendS.o" ;;
    -no-pie) ;;
    -static) set -- "$@" -static -pie ;;
    *) set -- "$@" "$arg" ;;
  esac
done
exec cargo-zigbuild zig cc -- -g -fno-sanitize=all -target {zig_target} "$@"
"#
    );
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    // rustc infers the linker's flavor from its file name: `…-ld` would get raw `ld` arguments,
    // `…-cc` gets the target's own (`cc`) ones.
    let path = dir.join(format!("{triple}-static-pie-cc.sh"));
    std::fs::write(&path, script)
        .with_context(|| format!("failed to write `{}`", path.display()))?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .with_context(|| format!("failed to make `{}` executable", path.display()))?;
    let env = format!(
        "CARGO_TARGET_{}_LINKER",
        triple.replace('-', "_").to_ascii_uppercase()
    );
    Ok(Some((env, path)))
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_musl_builds_use_zig_and_the_rest_cargo() {
        let other_arch = if std::env::consts::ARCH == "aarch64" {
            "x86_64-unknown-linux-musl"
        } else {
            "aarch64-unknown-linux-musl"
        };
        let own_arch = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
        let expected_cross = if std::env::consts::OS == "linux" {
            Builder::Zigbuild
        } else {
            Builder::Cargo
        };
        assert_eq!(default_builder(Some(other_arch)), expected_cross);
        assert_eq!(default_builder(Some(&own_arch)), Builder::Cargo);
        assert_eq!(
            default_builder(Some("x86_64-pc-windows-gnu")),
            Builder::Cargo
        );
        assert_eq!(
            default_builder(Some("aarch64-apple-darwin")),
            Builder::Cargo
        );
        assert_eq!(default_builder(None), Builder::Cargo);
    }
}
