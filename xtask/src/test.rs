//! `cargo xtask test`: the one command that runs the whole suite on a fresh machine.
//!
//! It installs the Debian packages the harness needs (when running as root), creates the
//! `git` system user the harness's sshd logs in as, builds the cached kube-apiserver, kubectl
//! and etcd binaries and the real Flux controllers and CLI (`cargo xtask flux build`), prepares the toolchain of the static release binary the krew install
//! test packs (Debian's `musl-tools`, the musl Rust target; a native build if that fails), and
//! then runs `cargo test --workspace` with any extra arguments.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Debian packages the harness runs: OpenSSH's sshd and client, git (with `git http-backend`),
/// and `GnuPG` for the signed-commit tests.
pub(crate) const HARNESS_PACKAGES: &[&str] = &[
    "openssh-server",
    "openssh-client",
    "git",
    "ca-certificates",
    "gnupg",
];

/// Debian's musl-gcc, which the krew install test's static release build compiles C code with.
const MUSL_PACKAGES: &[&str] = &["musl-tools"];

/// Set for `cargo test` when this machine cannot build the static release binary: the krew
/// install test then packs a `native` build instead (`cargo xtask dist --target native`).
const DIST_TARGET_ENV: &str = "FLUXBOOTSTRAP_DIST_TARGET";

pub(crate) fn run(args: &[String]) -> Result<()> {
    install_packages(HARNESS_PACKAGES)?;
    ensure_git_user()?;
    crate::kube::run(&["build".to_owned()])?;
    crate::flux::run(&["build".to_owned()])?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut test = Command::new(cargo);
    test.args(["test", "--workspace", "--locked", "--no-fail-fast"])
        .args(args);
    if let Some(triple) = crate::dist::host_musl_triple()? {
        let ready =
            install_packages(MUSL_PACKAGES).and_then(|()| crate::dist::ensure_toolchain(triple));
        if let Err(err) = ready {
            eprintln_status(&format!(
                "cannot build the static release binary here, so the krew install test packs \
                 a native build: {err:#}"
            ));
            test.env(DIST_TARGET_ENV, "native");
        }
    }
    let status = test.status().context("failed to run `cargo test`")?;
    if !status.success() {
        bail!("the test suite failed ({status})");
    }
    Ok(())
}

/// Debian's emulators the platform tier starts the cross-built binaries under.
const EMULATOR_PACKAGES: &[&str] = &["qemu-user-static", "wine64"];

/// `cargo xtask test-platforms`: the platform tier. Installs the emulators (the cross
/// toolchains are `cargo xtask dist`'s to install) and runs the ignored test
/// `platforms::cross_built_release_binaries_run_under_emulation`, which cross-builds the
/// linux/arm64 and windows/amd64 release archives and smoke-tests each binary.
pub(crate) fn run_platforms(args: &[String]) -> Result<()> {
    let started = std::time::Instant::now();
    install_packages(EMULATOR_PACKAGES)?;
    install_packages(MUSL_PACKAGES)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args([
            "test",
            "--locked",
            "--package",
            "fluxbootstrap-test",
            "--test",
            "it",
            "platforms::",
            "--",
            "--ignored",
            "--nocapture",
        ])
        .args(args)
        .status()
        .context("failed to run `cargo test`")?;
    if !status.success() {
        bail!("the platform tier failed ({status})");
    }
    eprintln_status(&format!(
        "the platform tier passed in {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Installs the Debian `packages` that are missing (as root), or says how to.
pub(crate) fn install_packages(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg")
                .args(["-s", p])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() || !Path::new("/usr/bin/apt-get").exists() {
        bail!(
            "missing system packages: {}; install them (e.g. `sudo apt-get install {}`) and run again",
            missing.join(", "),
            missing.join(" ")
        );
    }
    eprintln_status(&format!("installing {}", missing.join(", ")));
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    if !install().context("failed to run apt-get")?.success() {
        // A fresh machine may have no package lists yet.
        let _ = Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        if !install().context("failed to run apt-get")?.success() {
            bail!("`apt-get install {}` failed", missing.join(" "));
        }
    }
    Ok(())
}

/// The harness's sshd serves Azure DevOps' `git@` logins, so a `git` user must exist.
pub(crate) fn ensure_git_user() -> Result<()> {
    if Command::new("id")
        .arg("git")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "the SSH tests need a `git` system user: `sudo useradd --system --shell /bin/sh --home-dir /var/lib/fluxbootstrap-git --create-home git`"
        );
    }
    let status = Command::new("useradd")
        .args([
            "--system",
            "--shell",
            "/bin/sh",
            // sshd tells clients when the home directory is missing, ahead of the server's
            // own messages.
            "--home-dir",
            "/var/lib/fluxbootstrap-git",
            "--create-home",
            "git",
        ])
        .status()
        .context("failed to run useradd")?;
    if !status.success() {
        bail!("`useradd git` failed ({status})");
    }
    Ok(())
}

fn eprintln_status(message: &str) {
    #[expect(clippy::print_stderr, reason = "xtask reports its progress on stderr")]
    {
        eprintln!("xtask: {message}");
    }
}
