//! `cargo xtask bench fleet`: how a fleet bootstrap scales, 1 cluster vs 8, in one run.
//!
//! Starts four private harness control planes (two API servers each, so eight clusters) and
//! a fifth for the single-cluster run, with the real Flux controllers on every cluster, merges
//! their kubeconfigs into one with unique context names, then times the real plugin bootstrapping one cluster and then all eight into fresh
//! repositories of the harness git server, and a no-op re-run of the eight. It prints the wall
//! times, the ratio, and the commits and clones each run made. Targets: eight clusters in less
//! than twice the time of one, with exactly two commits and one clone.
//!
//! All eight API servers share this machine's cores, so the bench also reports the CPU time
//! the control planes spent in each run and the wall time that CPU needs at the least on the
//! available cores: on a small machine that server-side floor, not the plugin, bounds the
//! ratio.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use fluxbootstrap_test::{ControlPlane, GitServer, ReleaseServer, Repo, Workloads};
use serde_json::Value;

const PLANES: usize = 4;

fn main() -> ExitCode {
    match bench() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            report(&format!("bench fleet: {message}"));
            ExitCode::FAILURE
        }
    }
}

#[expect(clippy::print_stdout, reason = "a bench's figures are its output")]
fn report(line: &str) {
    println!("{line}");
}

/// One timed plugin run.
struct Run {
    wall: Duration,
    /// CPU time of every control plane's etcd and API servers during the run.
    server_cpu: Duration,
    commits: usize,
    clones: u64,
    failed: usize,
}

fn bench() -> Result<bool, String> {
    let setup = Instant::now();
    let git = GitServer::start();
    let releases = ReleaseServer::start();
    let (version, bundle) = fluxbootstrap_test::flux_bundle_tar_gz();
    releases.publish(&version, bundle);
    let cache = tempfile::tempdir().map_err(|e| e.to_string())?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;

    let real_bundle = std::env::var_os("FLUXBOOTSTRAP_FLUX_MANIFESTS")
        .map(std::path::PathBuf::from)
        .is_some_and(|d| d.join("v2.9.4/source-controller.yaml").is_file());
    if !real_bundle {
        return Err(
            "the real Flux controllers need the real bundle: set FLUXBOOTSTRAP_FLUX_MANIFESTS"
                .to_owned(),
        );
    }
    // The fleet's planes, and one more whose first cluster the single-cluster run uses, so
    // no cluster holds two Flux installs (their controllers would fight).
    let workloads = Workloads {
        trusted_ca_file: Some(git.ca_file().to_owned()),
        identity: None,
    };
    let planes: Vec<ControlPlane> = (0..=PLANES)
        .map(|_| ControlPlane::start_with_workloads(&workloads))
        .collect();
    let kubeconfig = work.path().join("fleet-kubeconfig");
    let all_contexts = merge_kubeconfigs(&planes, &kubeconfig)?;
    let contexts = all_contexts[..2 * PLANES].to_vec();
    let solo = all_contexts[2 * PLANES].clone();
    report(&format!(
        "setup: {} clusters on {PLANES} control planes (+1 for the single run), real Flux controllers, git server: {:.1}s",
        contexts.len(),
        setup.elapsed().as_secs_f64()
    ));

    let plugin = |repo: &Repo, namespace: &str, path: &str, selected: &[String]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubectl-fluxbootstrap"));
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if name.starts_with("GIT_") || name.starts_with("FLUX") || name == "KUBECONFIG" {
                cmd.env_remove(&key);
            }
        }
        cmd.env("KUBECONFIG", &kubeconfig)
            .env("FLUXBOOTSTRAP_RELEASES_URL", releases.base_url())
            .env("FLUXBOOTSTRAP_RELEASES_ALLOW_HTTP", "1")
            .env("XDG_CACHE_HOME", cache.path())
            .env("GIT_PASSWORD", git.pat())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .args(["azdo", "--url", &repo.https_url, "--ca-file"])
            .arg(git.ca_file())
            .args(["--path", path, "-n", namespace, "-o", "json"]);
        for context in selected {
            cmd.args(["--context", context]);
        }
        cmd
    };

    // Warm the release cache so both runs measure the bootstrap, not the first download.
    let warm = git.create_repo("bench-org", "bench-project", "warm-up");
    let status = Command::new(env!("CARGO_BIN_EXE_kubectl-fluxbootstrap"))
        .env("XDG_CACHE_HOME", cache.path())
        .env("FLUXBOOTSTRAP_RELEASES_URL", releases.base_url())
        .env("FLUXBOOTSTRAP_RELEASES_ALLOW_HTTP", "1")
        .args(["export", "--url", &warm.https_url])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("the warm-up export failed".to_owned());
    }

    let one_repo = git.create_repo("bench-org", "bench-project", "one");
    // One cluster through today's single-context flow (a literal `--path`), as users run it.
    let one_path = format!("clusters/{solo}");
    let one = timed(
        plugin(
            &one_repo,
            "fleet-one",
            &one_path,
            std::slice::from_ref(&solo),
        ),
        &one_repo,
        &planes,
    )?;
    let eight_repo = git.create_repo("bench-org", "bench-project", "eight");
    let fleet = |repo| {
        let mut cmd = plugin(repo, "fleet-eight", "clusters/{context}", &contexts);
        // Every cluster at once: the bench measures whether the clusters overlap.
        cmd.args(["--parallel", "8"]);
        cmd
    };
    let eight = timed(fleet(&eight_repo), &eight_repo, &planes)?;
    let again = timed(fleet(&eight_repo), &eight_repo, &planes)?;

    let ratio = eight.wall.as_secs_f64() / one.wall.as_secs_f64();
    report(&format!(
        "1 cluster:   {:>6.2}s  commits {}  clones {}  failed {}",
        one.wall.as_secs_f64(),
        one.commits,
        one.clones,
        one.failed
    ));
    report(&format!(
        "{} clusters:  {:>6.2}s  commits {}  clones {}  failed {}",
        contexts.len(),
        eight.wall.as_secs_f64(),
        eight.commits,
        eight.clones,
        eight.failed
    ));
    report(&format!(
        "re-run of {}: {:>6.2}s  new commits {}  clones {}  failed {}",
        contexts.len(),
        again.wall.as_secs_f64(),
        again.commits - eight.commits,
        again.clones,
        again.failed
    ));
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    #[expect(clippy::cast_precision_loss, reason = "a core count")]
    let floor = |run: &Run| run.server_cpu.as_secs_f64() / cores as f64;
    report(&format!(
        "control planes' CPU: 1 cluster {:.2}s, {} clusters {:.2}s; on {cores} cores that needs at least {:.2}s and {:.2}s of wall time",
        one.server_cpu.as_secs_f64(),
        contexts.len(),
        eight.server_cpu.as_secs_f64(),
        floor(&one),
        floor(&eight),
    ));
    report(&format!(
        "ratio {} clusters / 1 cluster: {ratio:.2}x (target < 2x; the control planes' CPU alone allows no less than {:.2}x here)",
        contexts.len(),
        floor(&eight) / one.wall.as_secs_f64()
    ));
    let ok = ratio < 2.0
        && eight.commits == 2
        && eight.clones == 1
        && again.commits == 2
        && one.failed + eight.failed + again.failed == 0;
    report(if ok { "targets met" } else { "targets NOT met" });
    Ok(ok)
}

/// Runs `cmd`, and counts the repository's commits and the clones the plugin reports.
fn timed(mut cmd: Command, repo: &Repo, planes: &[ControlPlane]) -> Result<Run, String> {
    let server_cpu = || planes.iter().map(ControlPlane::cpu_time).sum::<Duration>();
    let cpu_before = server_cpu();
    let started = Instant::now();
    let out = cmd.output().map_err(|e| e.to_string())?;
    let wall = started.elapsed();
    let server_cpu = server_cpu().saturating_sub(cpu_before);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("the plugin printed no JSON summary ({e}):\n{stderr}"))?;
    if let Some(timings) = summary["timings"].as_object() {
        let phases: Vec<String> = timings
            .iter()
            .map(|(k, v)| format!("{k} {:.2}s", v.as_f64().unwrap_or_default()))
            .collect();
        report(&format!("  phases: {}", phases.join(", ")));
    }
    if let Some(clusters) = summary["clusters"].as_array() {
        let each: Vec<String> = clusters
            .iter()
            .map(|c| format!("{:.2}s", c["durationSeconds"].as_f64().unwrap_or_default()))
            .collect();
        report(&format!("  per cluster: {}", each.join(" ")));
    }
    let failed = summary["clusters"].as_array().map_or(0, |clusters| {
        clusters
            .iter()
            .filter(|c| c["result"] == "failed" || c["result"] == "skipped")
            .count()
    });
    if !out.status.success() {
        report(&format!("the plugin failed:\n{stderr}"));
    }
    let log = repo
        .git()
        .args(["rev-list", "--count", "main"])
        .output()
        .map_err(|e| e.to_string())?;
    let commits = String::from_utf8_lossy(&log.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    Ok(Run {
        wall,
        server_cpu,
        commits,
        clones: summary["clones"].as_u64().unwrap_or(1),
        failed,
    })
}

/// Writes one kubeconfig holding every plane's `admin` and `second` contexts, renamed
/// `cpN-admin`/`cpN-second` (with their clusters and users) so the names do not collide.
fn merge_kubeconfigs(planes: &[ControlPlane], out: &Path) -> Result<Vec<String>, String> {
    let mut merged = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "users": [],
        "contexts": [],
    });
    let mut names = Vec::new();
    for (index, plane) in planes.iter().enumerate() {
        let text = fs_err::read_to_string(plane.kubeconfig()).map_err(|e| e.to_string())?;
        let config: Value = serde_json::from_str(&text)
            .map_err(|e| format!("the harness kubeconfig is not JSON: {e}"))?;
        for wanted in [plane.admin_context(), plane.second_context()] {
            let context = find(&config["contexts"], wanted)?;
            let cluster_name = context["context"]["cluster"].as_str().unwrap_or_default();
            let user_name = context["context"]["user"].as_str().unwrap_or_default();
            let name = format!("cp{index}-{wanted}");
            let mut cluster = find(&config["clusters"], cluster_name)?.clone();
            cluster["name"] = Value::from(name.clone());
            let mut user = find(&config["users"], user_name)?.clone();
            user["name"] = Value::from(name.clone());
            let entry = serde_json::json!({
                "name": name,
                "context": {"cluster": name, "user": name},
            });
            for (key, value) in [("clusters", cluster), ("users", user), ("contexts", entry)] {
                if let Some(list) = merged[key].as_array_mut() {
                    list.push(value);
                }
            }
            names.push(name);
        }
    }
    merged["current-context"] = Value::from(names[0].clone());
    fs_err::write(out, merged.to_string()).map_err(|e| e.to_string())?;
    Ok(names)
}

fn find<'a>(list: &'a Value, name: &str) -> Result<&'a Value, String> {
    list.as_array()
        .and_then(|items| items.iter().find(|i| i["name"] == name))
        .ok_or_else(|| format!("`{name}` is missing from the harness kubeconfig"))
}
