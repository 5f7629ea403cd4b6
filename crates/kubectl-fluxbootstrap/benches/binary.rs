//! `cargo xtask bench binary`: what users download and how fast the plugin starts.
//!
//! xtask builds the binary `cargo xtask dist` ships for this platform (on Linux a static,
//! fixed-address musl executable; `--profile dist`: stripped, fat LTO, `panic = "abort"`) and
//! passes its path in `FLUXBOOTSTRAP_BENCH_BINARY`. This reports its size and times, in
//! interleaved rounds, `kubectl fluxbootstrap --help` through kubectl's plugin dispatch (the
//! binary on `PATH`, as krew links it), `kubectl version --client`, a plugin that is
//! `/bin/true` (what kubectl's dispatch costs any plugin), and the binary run directly;
//! medians are compared. Targets: under 15 MB, and `kubectl fluxbootstrap --help`
//! faster than `kubectl version --client`. `FLUXBOOTSTRAP_BENCH_RUNS` sets the number of
//! rounds (default 61).

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

/// Runs each command once per round, interleaved so drift in machine load hits all alike,
/// after two warm-up rounds; returns each command's median wall time. Fails if any run fails.
fn interleaved_medians(cmds: &mut [&mut Command], rounds: usize) -> Result<Vec<Duration>, String> {
    let mut times = vec![Vec::with_capacity(rounds); cmds.len()];
    for round in 0..rounds + 2 {
        for (cmd, times) in cmds.iter_mut().zip(&mut times) {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let started = Instant::now();
            let status = cmd.status().map_err(|e| format!("running {cmd:?}: {e}"))?;
            let elapsed = started.elapsed();
            if !status.success() {
                return Err(format!("{cmd:?} failed ({status})"));
            }
            if round >= 2 {
                times.push(elapsed);
            }
        }
    }
    Ok(times
        .into_iter()
        .map(|mut times| {
            times.sort();
            times[times.len() / 2]
        })
        .collect())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn bench() -> Result<bool, String> {
    let rounds = std::env::var("FLUXBOOTSTRAP_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(61);
    let binary = std::env::var_os("FLUXBOOTSTRAP_BENCH_BINARY")
        .map(PathBuf::from)
        .ok_or("run it as `cargo xtask bench binary`, which builds the release binary first")?;
    let triple = std::env::var("FLUXBOOTSTRAP_BENCH_TRIPLE").unwrap_or_else(|_| "?".into());
    let size = std::fs::metadata(&binary)
        .map_err(|e| format!("{}: {e}", binary.display()))?
        .len();

    // A PATH where kubectl finds the plugin, as after `kubectl krew install`.
    let exe = std::env::consts::EXE_SUFFIX;
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
    // What kubectl's dispatch costs any plugin: a plugin that is `/bin/true`.
    let noop = bin_dir.join(format!("kubectl-fluxbootstrap_bench_noop{exe}"));
    let _ = std::fs::remove_file(&noop);
    let true_binary = Path::new("/bin/true");
    let has_noop = true_binary.is_file() && std::fs::copy(true_binary, &noop).is_ok();
    let mut plugin_help = with_path(&kubectl);
    plugin_help.args(["fluxbootstrap", "--help"]);
    let mut kubectl_version = with_path(&kubectl);
    kubectl_version.args(["version", "--client"]);
    let mut direct_help = with_path(&linked);
    direct_help.arg("--help");
    let mut noop_plugin = with_path(&kubectl);
    noop_plugin.arg("fluxbootstrap_bench_noop");
    let mut cmds = vec![&mut plugin_help, &mut kubectl_version, &mut direct_help];
    if has_noop {
        cmds.push(&mut noop_plugin);
    }
    let medians = interleaved_medians(&mut cmds, rounds)?;
    let (plugin, kubectl_own, direct) = (medians[0], medians[1], medians[2]);

    let size_ok = size < SIZE_TARGET_BYTES;
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    report(&format!(
        "binary: {} ({triple}; median of {rounds} interleaved rounds)",
        binary.display()
    ));
    report(&format!("kubectl: {}", kubectl.display()));
    #[expect(clippy::cast_precision_loss, reason = "a size shown with two decimals")]
    let size_mb = size as f64 / 1_000_000.0;
    report(&format!(
        "size of the stripped release binary  {size_mb:>8.2} MB   target < 15 MB: {}",
        verdict(size_ok)
    ));
    report(&format!(
        "kubectl fluxbootstrap --help         {:>8.2} ms   {:.3}x of kubectl version --client (faster: {})",
        ms(plugin),
        ms(plugin) / ms(kubectl_own),
        if plugin < kubectl_own {
            "yes"
        } else {
            "no; kubectl starts before any plugin"
        }
    ));
    report(&format!(
        "kubectl version --client             {:>8.2} ms",
        ms(kubectl_own)
    ));
    if let Some(noop) = medians.get(3) {
        report(&format!(
            "kubectl <plugin that is /bin/true>   {:>8.2} ms   {:.3}x: the floor kubectl's dispatch sets for any plugin",
            ms(*noop),
            ms(*noop) / ms(kubectl_own)
        ));
    }
    report(&format!(
        "kubectl-fluxbootstrap --help         {:>8.2} ms   {:.3}x of kubectl version --client",
        ms(direct),
        ms(direct) / ms(kubectl_own)
    ));
    report(&format!(
        "plugin start-up faster than kubectl's: {} ({:.2} ms vs {:.2} ms, {:.0}x faster)",
        verdict(direct < kubectl_own),
        ms(direct),
        ms(kubectl_own),
        ms(kubectl_own) / ms(direct)
    ));
    if let Some(noop) = medians.get(3) {
        report(&format!(
            "through kubectl, within 1 ms of the /bin/true plugin: {} ({:+.2} ms)",
            verdict(ms(plugin) - ms(*noop) < 1.0),
            ms(plugin) - ms(*noop)
        ));
    }
    Ok(size_ok)
}
