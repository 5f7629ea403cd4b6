//! `cargo xtask bench e2e`: the plugin against the real `flux bootstrap git` v2.9.4, end to
//! end on the same harness with the real Flux controllers.
//!
//! Each run starts a fresh control plane with workloads (two clusters, each with
//! kube-controller-manager, kube-scheduler and the process kubelet running the real
//! source-controller and kustomize-controller) and two empty repositories, then times a first
//! bootstrap with token auth over HTTPS (`--ca-file`) by each tool, one per cluster, and a
//! no-op re-run by each. The order alternates between runs. It prints every run, both medians
//! and the ratios, and where the time goes: each tool's own work (up to its first "waiting
//! for" line) and its wait for the controllers (the same controllers doing the same work for
//! both), and the plugin's own step timings (clone, install, apply, wait) from its JSON
//! summary. Targets: first bootstrap at most 0.5x flux's wall time, no-op re-run at most
//! 0.3x.
//!
//! Needs the real Flux bundle (`FLUXBOOTSTRAP_FLUX_MANIFESTS`) and `cargo xtask flux build`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use fluxbootstrap_test::{ControlPlane, GitServer, ReleaseServer, Repo, Workloads};
use serde_json::Value;

const RUNS: usize = 3;

fn main() -> ExitCode {
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            report(&format!("bench e2e: {message}"));
            ExitCode::FAILURE
        }
    }
}

#[expect(clippy::print_stdout, reason = "a bench's figures are its output")]
fn report(line: &str) {
    println!("{line}");
}

struct Tools {
    flux: PathBuf,
    plugin: PathBuf,
    git: &'static GitServer,
    releases: ReleaseServer,
    cache: tempfile::TempDir,
}

/// One timed bootstrap: wall time, how much of it was spent waiting for the controllers
/// (from the tool's first "waiting for" line to its exit: the same controllers' work for
/// both tools), and, for the plugin, its step timings.
struct Timed {
    wall: Duration,
    waiting: Duration,
    steps: Vec<(String, f64)>,
}

impl Timed {
    /// The tool's own work: everything but the wait for the controllers.
    fn own(&self) -> Duration {
        self.wall.saturating_sub(self.waiting)
    }
}

/// Runs `cmd` to completion, timing it and noting when stderr first says it is waiting.
fn timed_run(cmd: &mut Command) -> Result<(Timed, Vec<u8>, String), String> {
    use std::io::{BufRead as _, Read as _};
    let start = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdout = child.stdout.take().ok_or("stdout is piped")?;
    let stdout = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let stderr = child.stderr.take().ok_or("stderr is piped")?;
    let (mut text, mut waiting_since) = (String::new(), None);
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.map_err(|e| e.to_string())?;
        if waiting_since.is_none() && line.contains("waiting for") {
            waiting_since = Some(start.elapsed());
        }
        text.push_str(&line);
        text.push('\n');
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let wall = start.elapsed();
    let stdout = stdout.join().map_err(|_| "reading stdout panicked")?;
    if !status.success() {
        return Err(text);
    }
    let waiting = waiting_since.map_or(Duration::ZERO, |since| wall.saturating_sub(since));
    Ok((
        Timed {
            wall,
            waiting,
            steps: Vec::new(),
        },
        stdout,
        text,
    ))
}

fn bench() -> Result<(), String> {
    let bundle_ok = std::env::var_os("FLUXBOOTSTRAP_FLUX_MANIFESTS")
        .map(PathBuf::from)
        .is_some_and(|d| d.join("v2.9.4/source-controller.yaml").is_file());
    if !bundle_ok {
        return Err("set FLUXBOOTSTRAP_FLUX_MANIFESTS to the real Flux manifests".to_owned());
    }
    if let Some(missing) = fluxbootstrap_test::missing_flux_binaries() {
        return Err(missing);
    }
    let flux = fluxbootstrap_test::flux_cli().ok_or("the flux CLI is missing")?;
    let plugin = Path::new(env!("CARGO_BIN_EXE_kubectl-fluxbootstrap")).to_owned();
    let releases = ReleaseServer::start();
    let (version, bundle) = fluxbootstrap_test::flux_bundle_tar_gz();
    releases.publish(&version, bundle);
    let tools = Tools {
        flux,
        plugin,
        git: GitServer::shared(),
        releases,
        cache: tempfile::tempdir().map_err(|e| e.to_string())?,
    };
    let mut first = (Vec::new(), Vec::new());
    let mut again = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let plane = ControlPlane::start_with_workloads(&Workloads {
            trusted_ca_file: Some(tools.git.ca_file().to_owned()),
            identity: None,
        });
        let (flux_repo, plugin_repo) = (
            new_repo(&tools, run, "flux"),
            new_repo(&tools, run, "plugin"),
        );
        let (flux_ctx, plugin_ctx) = (plane.admin_context(), plane.second_context());
        let flux_first = run % 2 == 0;
        let one = |tool: &str, repo: &Repo, context: &str| -> Result<Timed, String> {
            if tool == "flux" {
                flux_bootstrap(&tools, &plane, repo, context)
            } else {
                plugin_bootstrap(&tools, &plane, repo, context)
            }
        };
        let order: [(&str, &Repo, &str); 2] = if flux_first {
            [
                ("flux", &flux_repo, flux_ctx),
                ("plugin", &plugin_repo, plugin_ctx),
            ]
        } else {
            [
                ("plugin", &plugin_repo, plugin_ctx),
                ("flux", &flux_repo, flux_ctx),
            ]
        };
        for (phase, results) in [("first", &mut first), ("re-run", &mut again)] {
            for (tool, repo, context) in order {
                let timed = one(tool, repo, context)?;
                let steps = timed
                    .steps
                    .iter()
                    .map(|(name, s)| format!("{name} {s:.2}s"))
                    .collect::<Vec<_>>()
                    .join(", ");
                report(&format!(
                    "run {}: {phase:<6} {tool:<6} {:>6.2}s = own {:>5.2}s + waiting {:>5.2}s{}",
                    run + 1,
                    timed.wall.as_secs_f64(),
                    timed.own().as_secs_f64(),
                    timed.waiting.as_secs_f64(),
                    if steps.is_empty() {
                        String::new()
                    } else {
                        format!("  ({steps})")
                    }
                ));
                if tool == "flux" {
                    results.0.push(timed);
                } else {
                    results.1.push(timed);
                }
            }
        }
    }
    for (what, (flux, plugin), target) in [
        ("first bootstrap", first, 0.5),
        ("no-op re-run", again, 0.3),
    ] {
        let wall = |runs: &[Timed]| median(runs.iter().map(|t| t.wall).collect());
        let own = |runs: &[Timed]| median(runs.iter().map(Timed::own).collect());
        let waiting = |runs: &[Timed]| median(runs.iter().map(|t| t.waiting).collect());
        let (f, p) = (wall(&flux), wall(&plugin));
        let ratio = p.as_secs_f64() / f.as_secs_f64();
        report(&format!(
            "{what}: flux {:.2}s, plugin {:.2}s (medians of {RUNS}): {ratio:.2}x (target <= {target}x: {})",
            f.as_secs_f64(),
            p.as_secs_f64(),
            if ratio <= target { "met" } else { "not met" }
        ));
        let (fo, po) = (own(&flux), own(&plugin));
        report(&format!(
            "  own work:                flux {:.2}s, plugin {:.2}s: {:.2}x",
            fo.as_secs_f64(),
            po.as_secs_f64(),
            po.as_secs_f64() / fo.as_secs_f64().max(f64::EPSILON)
        ));
        report(&format!(
            "  waiting for controllers: flux {:.2}s, plugin {:.2}s",
            waiting(&flux).as_secs_f64(),
            waiting(&plugin).as_secs_f64()
        ));
    }
    Ok(())
}

fn new_repo(tools: &Tools, run: usize, tool: &str) -> Repo {
    tools.git.create_repo(
        "bench-org",
        "bench-project",
        &format!("e2e-{tool}-{}-{run}", std::process::id()),
    )
}

fn scrubbed(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("GIT_") || k.starts_with("FLUX") || k == "KUBECONFIG" {
            cmd.env_remove(&key);
        }
    }
    cmd
}

fn flux_bootstrap(
    tools: &Tools,
    plane: &ControlPlane,
    repo: &Repo,
    context: &str,
) -> Result<Timed, String> {
    let (timed, _, _) = timed_run(
        scrubbed(&tools.flux)
            .args([
                "bootstrap",
                "git",
                "--token-auth",
                "--url",
                &repo.https_url,
                "--ca-file",
            ])
            .arg(tools.git.ca_file())
            .args([
                "--path",
                "clusters/bench",
                "--context",
                context,
                "--kubeconfig",
            ])
            .arg(plane.kubeconfig())
            .env("GIT_PASSWORD", tools.git.pat())
            .env("HOME", tools.cache.path()),
    )
    .map_err(|stderr| format!("flux bootstrap git failed:\n{stderr}"))?;
    Ok(timed)
}

fn plugin_bootstrap(
    tools: &Tools,
    plane: &ControlPlane,
    repo: &Repo,
    context: &str,
) -> Result<Timed, String> {
    let (mut timed, stdout, _) = timed_run(
        scrubbed(&tools.plugin)
            .args(["azdo", "--url", &repo.https_url, "--ca-file"])
            .arg(tools.git.ca_file())
            .args([
                "--path",
                "clusters/bench",
                "--context",
                context,
                "-o",
                "json",
                "--kubeconfig",
            ])
            .arg(plane.kubeconfig())
            .env("GIT_PASSWORD", tools.git.pat())
            .env("FLUXBOOTSTRAP_RELEASES_URL", tools.releases.base_url())
            .env("FLUXBOOTSTRAP_RELEASES_ALLOW_HTTP", "1")
            .env("XDG_CACHE_HOME", tools.cache.path())
            .env("NO_COLOR", "1"),
    )
    .map_err(|stderr| format!("the plugin failed:\n{stderr}"))?;
    let summary: Value = serde_json::from_slice(&stdout).map_err(|e| e.to_string())?;
    timed.steps = summary["timings"]
        .as_object()
        .map(|timings| {
            timings
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    Ok(timed)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}
