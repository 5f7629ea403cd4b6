//! `cargo xtask bench binary`: what users download and how fast the plugin starts.
//!
//! Builds the shipped binary (`--profile dist`: stripped, fat LTO, `panic = "abort"`), reports
//! its size, and times `kubectl fluxbootstrap --help` through kubectl's plugin dispatch (the
//! binary on `PATH`, as krew links it) against `kubectl version --client` and against the
//! binary run directly, as the median of several runs each, in one run. Targets: under 15 MB,
//! and the plugin's own start-up faster than kubectl's. `FLUXBOOTSTRAP_BENCH_RUNS` sets the
//! number of timed runs (default 21).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const SIZE_TARGET_BYTES: u64 = 15_000_000;

fn main() -> ExitCode {
    match bench() {
        Ok(size_ok) => {
            if size_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(message) => {
            report(&format!("bench binary: {message}"));
            ExitCode::FAILURE
        }
    }
}

#[expect(clippy::print_stdout, reason = "a bench's figures are its output")]
fn report(line: &str) {
    println!("{line}");
}

fn root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => root().join(dir),
        None => root().join("target"),
    }
}

/// kubectl from the kube test binaries (`cargo xtask kube build`) when present, else `PATH`'s.
fn kubectl() -> Result<PathBuf, String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .current_dir(root())
        .args(["run", "--quiet", "--package", "xtask", "--", "kube", "dir"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running `cargo xtask kube dir`: {e}"))?;
    let kube = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("kubectl");
    if out.status.success() && kube.is_file() {
        return Ok(kube);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("kubectl"))
        .find(|path| path.is_file())
        .ok_or_else(|| "no kubectl: run `cargo xtask kube build` or install kubectl".to_owned())
}

/// Median wall time of `runs` runs of `cmd` (after two warm-up runs), failing if any run fails.
fn median(cmd: &mut Command, runs: usize) -> Result<Duration, String> {
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs + 2 {
        let started = Instant::now();
        let status = cmd.status().map_err(|e| format!("running {cmd:?}: {e}"))?;
        let elapsed = started.elapsed();
        if !status.success() {
            return Err(format!("{cmd:?} failed ({status})"));
        }
        if i >= 2 {
            times.push(elapsed);
        }
    }
    times.sort();
    Ok(times[times.len() / 2])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn bench() -> Result<bool, String> {
    let runs = std::env::var("FLUXBOOTSTRAP_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(21);
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .current_dir(root())
        .args([
            "build",
            "--quiet",
            "--package",
            "kubectl-fluxbootstrap",
            "--bin",
            "kubectl-fluxbootstrap",
        ])
        .args(["--profile", "dist"])
        .status()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !status.success() {
        return Err(format!("`cargo build --profile dist` failed ({status})"));
    }
    let exe = std::env::consts::EXE_SUFFIX;
    let binary = target_dir()
        .join("dist")
        .join(format!("kubectl-fluxbootstrap{exe}"));
    let size = std::fs::metadata(&binary)
        .map_err(|e| format!("{}: {e}", binary.display()))?
        .len();

    // A PATH where kubectl finds the plugin, as after `kubectl krew install`.
    let bin_dir = target_dir().join("bench-binary-path");
    std::fs::create_dir_all(&bin_dir).map_err(|e| format!("{}: {e}", bin_dir.display()))?;
    let linked = bin_dir.join(format!("kubectl-fluxbootstrap{exe}"));
    std::fs::copy(&binary, &linked).map_err(|e| format!("{}: {e}", linked.display()))?;
    let path = std::env::join_paths(
        std::iter::once(bin_dir.clone()).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )),
    )
    .map_err(|e| format!("PATH: {e}"))?;

    let kubectl = kubectl()?;
    let with_path = |program: &Path| {
        let mut cmd = Command::new(program);
        cmd.env("PATH", &path);
        cmd
    };
    let plugin = median(with_path(&kubectl).args(["fluxbootstrap", "--help"]), runs)?;
    let kubectl_own = median(with_path(&kubectl).args(["version", "--client"]), runs)?;
    let direct = median(with_path(&linked).arg("--help"), runs)?;
    let dispatch_overhead = plugin.saturating_sub(direct);

    let size_ok = size < SIZE_TARGET_BYTES;
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    report(&format!(
        "binary: {} ({runs} timed runs each, median)",
        binary.display()
    ));
    report(&format!("kubectl: {}", kubectl.display()));
    #[expect(clippy::cast_precision_loss, reason = "a size shown with two decimals")]
    let size_mb = size as f64 / 1_000_000.0;
    report(&format!(
        "size of the stripped dist binary    {size_mb:>8.2} MB   target < 15 MB: {}",
        verdict(size_ok)
    ));
    report(&format!(
        "kubectl fluxbootstrap --help        {:>8.2} ms",
        ms(plugin)
    ));
    report(&format!(
        "kubectl version --client            {:>8.2} ms",
        ms(kubectl_own)
    ));
    report(&format!(
        "kubectl-fluxbootstrap --help        {:>8.2} ms   ({:.2}x of kubectl version --client)",
        ms(direct),
        ms(direct) / ms(kubectl_own)
    ));
    report(&format!(
        "plugin start-up faster than kubectl: {} (plugin {:.2} ms vs kubectl {:.2} ms; dispatch adds {:.2} ms)",
        verdict(direct < kubectl_own),
        ms(direct),
        ms(kubectl_own),
        ms(dispatch_overhead)
    ));
    Ok(size_ok)
}
