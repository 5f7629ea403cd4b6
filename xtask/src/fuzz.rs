//! `cargo xtask fuzz [--seconds N | --smoke] [TARGET...]`: runs the libFuzzer targets in
//! `fuzz/` for a bounded time each and prints how many inputs each one executed.
//!
//! `--smoke` (what `.ci/run` does) runs a fixed number of inputs from a fixed seed instead of
//! a time: the same build (the pinned [`NIGHTLY`] and `fuzz/Cargo.lock`) explores the same
//! inputs on every machine, so CI is repeatable.
//!
//! The targets (the repository URL parser, the `known_hosts` reader, the manifest YAML reader
//! and `--path` cleaner, the release archive reader) need a nightly toolchain and
//! `cargo-fuzz`; both are installed when missing, as `cargo xtask test` installs what the
//! suite needs. New inputs go to `target/fuzz-corpus/<target>`; the seeds in
//! `fuzz/corpus/<target>` are only read. A crash fails the command and names the input
//! libFuzzer saved under `fuzz/artifacts/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const TARGETS: &[&str] = &["repo_url", "known_hosts", "manifest_yaml", "bundle_tar"];

/// The nightly toolchain the targets are built with, pinned: a smoke run explores the same
/// inputs only with the same compiler (CI once took the newest nightly, whose build found an
/// input that this machine's had not reached).
const NIGHTLY: &str = "nightly-2026-05-20";

/// Inputs per target in a `--smoke` run.
const SMOKE_RUNS: u64 = 100_000;

/// How long a target runs.
#[derive(Clone, Copy)]
enum Budget {
    Seconds(u64),
    /// [`SMOKE_RUNS`] inputs from seed 1.
    Smoke,
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut budget = Budget::Seconds(60);
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                budget = Budget::Seconds(
                    args.next()
                        .context("`--seconds` needs a number")?
                        .parse()
                        .context("`--seconds` needs a whole number of seconds")?,
                );
            }
            "--smoke" => budget = Budget::Smoke,
            target if TARGETS.contains(&target) => targets.push(target),
            other => bail!(
                "unknown fuzz argument `{other}`\n\nusage: cargo xtask fuzz [--seconds N | --smoke] [{}]",
                TARGETS.join("|")
            ),
        }
    }
    if targets.is_empty() {
        targets.extend_from_slice(TARGETS);
    }
    let root = crate::dist::workspace_root();
    ensure_nightly()?;
    ensure_cargo_fuzz()?;
    let mut report = Vec::new();
    for target in targets {
        let started = std::time::Instant::now();
        let executions = run_target(&root, target, budget)?;
        report.push(format!(
            "  {target:<14} {executions:>10} executions in {:.0} s, no crash",
            started.elapsed().as_secs_f64()
        ));
    }
    eprintln_status("fuzz: done");
    let what = match budget {
        Budget::Seconds(s) => format!("{s} s each"),
        Budget::Smoke => format!("smoke: {SMOKE_RUNS} inputs each from seed 1"),
    };
    #[expect(clippy::print_stdout, reason = "the figures are the command's output")]
    {
        println!(
            "fuzz targets ({what}; the first one's time includes the build):\n{}",
            report.join("\n")
        );
    }
    Ok(())
}

fn run_target(root: &Path, target: &str, budget: Budget) -> Result<u64> {
    let new_inputs: PathBuf = root.join("target/fuzz-corpus").join(target);
    // A smoke run starts from the committed seeds alone, so every machine explores alike.
    if matches!(budget, Budget::Smoke) {
        let _ = std::fs::remove_dir_all(&new_inputs);
    }
    std::fs::create_dir_all(&new_inputs)?;
    let limits = match budget {
        Budget::Seconds(s) => vec![format!("-max_total_time={s}")],
        Budget::Smoke => vec![format!("-runs={SMOKE_RUNS}"), "-seed=1".to_owned()],
    };
    eprintln_status(&format!("fuzz: {target} ({})", limits.join(" ")));
    let out = Command::new("cargo")
        .current_dir(root)
        .arg(format!("+{NIGHTLY}"))
        .args(["fuzz", "run", "-O", target])
        .arg(&new_inputs)
        .arg(root.join("fuzz/corpus").join(target))
        .arg("--")
        .args(&limits)
        .arg("-print_final_stats=1")
        .output()
        .with_context(|| format!("failed to run `cargo +{NIGHTLY} fuzz`"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        bail!(
            "fuzz target `{target}` failed (the input is under fuzz/artifacts/{target}/):\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("libFuzzer printed no execution count for `{target}`"))
}

fn ensure_nightly() -> Result<()> {
    let has_nightly = Command::new("rustup")
        .args(["run", NIGHTLY, "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_nightly {
        return Ok(());
    }
    eprintln_status(&format!(
        "fuzz: installing the {NIGHTLY} toolchain (libFuzzer needs a nightly)"
    ));
    let status = Command::new("rustup")
        .args(["toolchain", "install", NIGHTLY, "--profile", "minimal"])
        .status()
        .context("failed to run rustup")?;
    if !status.success() {
        bail!("`rustup toolchain install {NIGHTLY}` failed ({status})");
    }
    Ok(())
}

fn ensure_cargo_fuzz() -> Result<()> {
    let has = Command::new("cargo")
        .arg(format!("+{NIGHTLY}"))
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has {
        return Ok(());
    }
    eprintln_status("fuzz: installing cargo-fuzz");
    let status = Command::new("cargo")
        .args(["install", "cargo-fuzz@0.13.2", "--locked"])
        .status()
        .context("failed to run `cargo install cargo-fuzz`")?;
    if !status.success() {
        bail!("`cargo install cargo-fuzz` failed ({status})");
    }
    Ok(())
}

fn eprintln_status(message: &str) {
    #[expect(clippy::print_stderr, reason = "xtask reports its progress on stderr")]
    {
        eprintln!("xtask: {message}");
    }
}
