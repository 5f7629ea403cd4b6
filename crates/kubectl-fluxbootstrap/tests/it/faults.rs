//! Faults, injected into the harness the way Azure DevOps and networks fail: throttling (429
//! with `Retry-After`) and outages (503) on REST and on git smart HTTP, a git server that dies
//! in the middle of a push (before and after git carried it out), and an API server that
//! restarts while the plugin waits for Flux. Transient faults are retried with backoff within
//! a bounded time; what outlasts the retries fails with a clear error; and whatever happened,
//! the next run converges with no duplicate commit and nothing lost.
//!
//! Each test works in an organization of its own, so its faults hit only its own requests
//! on the shared git server.

use std::time::{Duration, Instant};

use fluxbootstrap_test::{Fault, FaultAction, FaultTarget, LoggedRequest, Repo};

use crate::context::{Env, assert_flux_synced, commit_subjects, env, real_flux_cluster, run};

/// A new empty repository in an organization of its own.
fn repo_in_own_org(env: &Env) -> Repo {
    let org = env.control_plane.unique_name("e2e-faults");
    let name = env.control_plane.unique_name("e2e-repo");
    env.git.create_repo(&org, "e2e-project", &name)
}

fn fault(repo: &Repo, target: FaultTarget, action: FaultAction, times: u32) -> Fault {
    Fault {
        org: repo.org.clone(),
        target,
        action,
        times,
    }
}

const fn status(status: u16, retry_after_secs: Option<u64>) -> FaultAction {
    FaultAction::Status {
        status,
        retry_after_secs,
    }
}

/// The gap between the request that met `action` on `target` and the next request to the
/// same target.
fn gap_after(log: &[LoggedRequest], target: FaultTarget, action: FaultAction) -> Duration {
    let met = log
        .iter()
        .position(|r| r.target == Some(target) && r.fault == Some(action))
        .unwrap_or_else(|| panic!("no {target:?} request met {action:?}: {log:#?}"));
    let next = log[met + 1..]
        .iter()
        .find(|r| r.target == Some(target))
        .unwrap_or_else(|| panic!("{target:?} was not retried after {action:?}: {log:#?}"));
    next.at - log[met].at
}

/// Every transient fault at once, on one bootstrap that creates its repository: REST answers
/// 429 with `Retry-After: 2` and then 503; git answers 429 to the clone's ref advertisement,
/// 503 to a push, and dies after carrying out the other push. The bootstrap retries each,
/// says so, waits out the `Retry-After`, and ends like an undisturbed one: two commits, the
/// real Flux synced; a rerun changes nothing.
#[test]
fn transient_faults_are_retried_and_the_bootstrap_completes() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let existing = repo_in_own_org(env);
    let name = env.control_plane.unique_name("e2e-created");
    let url = existing.https_url.replace(&existing.name, &name);
    let ns = env.namespace();
    let faults = [
        fault(&existing, FaultTarget::Rest, status(429, Some(2)), 1),
        fault(&existing, FaultTarget::Rest, status(503, None), 1),
        fault(
            &existing,
            FaultTarget::FetchAdvertisement,
            status(429, Some(1)),
            1,
        ),
        fault(&existing, FaultTarget::Push, status(503, None), 1),
        fault(&existing, FaultTarget::Push, FaultAction::DieAfter, 1),
    ];
    for f in &faults {
        env.git.inject_fault(f.clone());
    }
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let args = [
        "azdo",
        "--create-repository",
        "--url",
        &url,
        "--ca-file",
        &ca,
        "--path",
        "clusters/faults",
        "-n",
        &ns,
        "--timeout",
        "3m",
    ];
    let first = run(env
        .plugin_on(&cluster)
        .args(args)
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(
        first.0,
        0,
        "bootstrap through transient faults failed (logs under {}):\n{}",
        cluster.dir().display(),
        first.2
    );
    assert_eq!(
        env.git.faults_left(&existing.org),
        0,
        "not every fault was met: {:#?}",
        env.git.requests(&existing.org)
    );
    let log = env.git.requests(&existing.org);
    let waited = gap_after(&log, FaultTarget::Rest, status(429, Some(2)));
    assert!(
        waited >= Duration::from_secs(2),
        "the REST retry came {waited:?} after a 429 with Retry-After: 2"
    );
    gap_after(&log, FaultTarget::Rest, status(503, None));
    gap_after(&log, FaultTarget::FetchAdvertisement, status(429, Some(1)));
    gap_after(&log, FaultTarget::Push, status(503, None));
    gap_after(&log, FaultTarget::Push, FaultAction::DieAfter);
    let retries = first
        .2
        .lines()
        .filter(|l| l.contains("retrying in"))
        .collect::<Vec<_>>();
    assert_eq!(retries.len(), faults.len(), "{}", first.2);
    assert!(
        retries.iter().any(|l| l.contains("HTTP 429")
            && l.contains("Retry-After: 2s")
            && l.contains("create the repository") | l.contains("read the repository")),
        "{}",
        first.2
    );
    // The 503 comes before the server reads the pack, so git sees the connection break.
    assert_eq!(
        retries
            .iter()
            .filter(|l| l.contains("Failed to push to") && l.contains("class="))
            .count(),
        2,
        "{}",
        first.2
    );

    let created = env
        .git
        .repo(&existing.org, &existing.project, &name)
        .expect("the repository was created");
    assert_eq!(
        commit_subjects(&created, "main").len(),
        2,
        "a push that died after landing was not committed twice"
    );
    assert_flux_synced(&cluster, cluster.admin_context(), &ns, &created, "main");

    let again = run(env
        .plugin_on(&cluster)
        .args(args)
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(again.0, 0, "rerun failed:\n{}", again.2);
    assert_eq!(commit_subjects(&created, "main").len(), 2);
}

/// The git server dies in the middle of the first push, more often than the retries cover:
/// first before git sees the push (nothing lands), then, on the next run, after git carried
/// out the last attempt (the commit lands but no answer comes). Each run fails with the URL, the attempts
/// and a hint, and applies nothing; the third run converges, with no duplicate commit and
/// nothing lost.
#[test]
fn a_git_server_dying_mid_push_is_finished_by_the_next_run() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = repo_in_own_org(env);
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let args = [
        "azdo",
        "--url",
        &repo.https_url,
        "--ca-file",
        &ca,
        "--path",
        "clusters/dying",
        "-n",
        &ns,
        "--timeout",
        "3m",
    ];
    let bootstrap = || {
        run(env
            .plugin_on(&cluster)
            .args(args)
            .env("GIT_PASSWORD", env.git.pat()))
    };
    let applied = || {
        let out = cluster
            .kubectl()
            .args(["get", "namespace", &ns, "--ignore-not-found", "-o", "name"])
            .output()
            .expect("kubectl runs");
        !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    };

    // Dies before git sees the push, four times: nothing lands. Then is down for three
    // attempts (it dies as each push starts) and dies after git carried out the fourth: the
    // commit lands unacknowledged.
    let cases = [
        (
            "dies before git",
            vec![(FaultTarget::Push, FaultAction::DieBefore, 4)],
            false,
        ),
        (
            "dies after git",
            vec![
                (FaultTarget::Push, FaultAction::DieAfter, 1),
                (FaultTarget::PushAdvertisement, FaultAction::DieBefore, 3),
            ],
            true,
        ),
    ];
    for (action, faults, landed) in cases {
        for (target, what, times) in faults {
            env.git.inject_fault(fault(&repo, target, what, times));
        }
        let started = Instant::now();
        let (code, _, stderr) = bootstrap();
        let took = started.elapsed();
        let log = env.git.requests(&repo.org);
        let first = log.first().map(|r| r.at);
        let log: Vec<_> = log
            .iter()
            .map(|r| (r.at - first.unwrap_or(r.at), r.target, r.fault))
            .collect();
        assert_eq!(
            code, 1,
            "{action}: the run did not fail:\n{stderr}\n{log:#?}"
        );
        assert_eq!(
            env.git.faults_left(&repo.org),
            0,
            "{action}: {stderr}\n{log:#?}"
        );
        // `error: failed to push component manifests`, caused by the last attempt's error.
        assert!(
            stderr.lines().any(|l| l.contains("Failed to push to")
                && l.contains(&repo.name)
                && l.contains("(tried 4 times)")),
            "{action}: {stderr}\n{log:#?}"
        );
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with("hint:") && l.contains("run the command again")),
            "{action}: {stderr}"
        );
        assert!(
            took < Duration::from_mins(1),
            "{action}: giving up took {took:?}"
        );
        assert_eq!(
            commit_subjects(&repo, "main").len(),
            usize::from(landed),
            "{action}: the branch after the run"
        );
        assert!(!applied(), "{action}: something was applied");
    }

    let (code, _, stderr) = bootstrap();
    assert_eq!(
        code,
        0,
        "the run after the faults failed (logs under {}):\n{stderr}",
        cluster.dir().display()
    );
    assert_eq!(
        commit_subjects(&repo, "main").len(),
        2,
        "the commit that landed before the server died was made again"
    );
    assert_flux_synced(&cluster, cluster.admin_context(), &ns, &repo, "main");
}

/// Faults that outlast what the plugin waits for end the run quickly and clearly: a 429 whose
/// `Retry-After` is longer than the retry budget fails at once instead of sleeping through
/// it, and a git server that keeps answering 503 is given up on after the retries. Nothing
/// is created, pushed or applied.
#[test]
fn faults_beyond_the_retry_budget_fail_fast_and_clearly() {
    let env = env();
    let repo = repo_in_own_org(env);
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();

    let name = env.control_plane.unique_name("e2e-throttled");
    let url = repo.https_url.replace(&repo.name, &name);
    env.git
        .inject_fault(fault(&repo, FaultTarget::Rest, status(429, Some(600)), 1));
    let started = Instant::now();
    let (code, _, stderr) = run(env
        .plugin()
        .args([
            "azdo",
            "--create-repository",
            "--url",
            &url,
            "--ca-file",
            &ca,
        ])
        .args(["-n", &ns, "--timeout", "20s"])
        .env("GIT_PASSWORD", env.git.pat()));
    let took = started.elapsed();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        took < Duration::from_secs(30),
        "waited {took:?} for a 10-minute Retry-After"
    );
    assert!(
        stderr.lines().any(|l| l.starts_with("error:")
            && l.contains("HTTP 429")
            && l.contains("Retry-After: 600s")),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("hint:") && l.contains("throttling")),
        "{stderr}"
    );
    assert!(env.git.repo(&repo.org, &repo.project, &name).is_none());

    env.git.inject_fault(fault(
        &repo,
        FaultTarget::FetchAdvertisement,
        status(503, None),
        100,
    ));
    let started = Instant::now();
    let (code, _, stderr) = run(env
        .plugin()
        .args(["azdo", "--url", &repo.https_url, "--ca-file", &ca])
        .args(["-n", &ns, "--timeout", "20s"])
        .env("GIT_PASSWORD", env.git.pat()));
    let took = started.elapsed();
    assert_eq!(code, 1, "{stderr}");
    assert!(took < Duration::from_secs(45), "giving up took {took:?}");
    let advertisements = env
        .git
        .requests(&repo.org)
        .iter()
        .filter(|r| r.target == Some(FaultTarget::FetchAdvertisement))
        .count();
    assert_eq!(advertisements, 4, "one clone and three retries");
    assert!(
        stderr.lines().any(|l| l.starts_with("error:")
            && l.contains("HTTP 503")
            && l.contains("tried 4 times")),
        "{stderr}"
    );
    assert!(repo.branch_sha("main").is_none(), "something was pushed");
    let out = env.kubectl(&["get", "namespace", &ns, "--ignore-not-found", "-o", "name"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "namespace {ns} was created"
    );
}

/// The API server restarts while the plugin waits for Flux to reconcile: the run either
/// rides it out or fails saying what it waited for; the next run converges with no new
/// commit, and Flux is synced.
///
/// The restart comes once the first controller is ready, so the controllers' pods exist. A
/// restart at the first "waiting for" line (which now comes right after the direct install)
/// can land while the `ReplicaSet`s are still creating and binding the pods; one fresh-clone
/// run then got two kustomize-controller pods from one `ReplicaSet`, and the Kustomization
/// stayed "Reconciliation in progress" through the next run's 3-minute wait. That is the
/// harness's pod lifecycle under a restart, not the wait this test is about.
#[test]
fn an_api_server_restart_during_the_wait_converges() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = repo_in_own_org(env);
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let args = [
        "azdo",
        "--url",
        &repo.https_url,
        "--ca-file",
        &ca,
        "--path",
        "clusters/restart",
        "-n",
        &ns,
        "--timeout",
        "3m",
    ];
    let mut before_restart = Vec::new();
    let mut restarted = false;
    let (status, _, stderr) = crate::context::run_watching(
        env.plugin_on(&cluster)
            .args(args)
            .env("GIT_PASSWORD", env.git.pat()),
        |line, _stdin| {
            if restarted {
                return;
            }
            before_restart.push(line.to_owned());
            if line.contains("deployment ready") {
                cluster.stop_apiserver();
                std::thread::sleep(Duration::from_secs(3));
                cluster.start_apiserver();
                restarted = true;
            }
        },
    );
    assert!(
        restarted,
        "the plugin never saw a controller ready:\n{stderr}"
    );
    // The restart came while the plugin waited: it had printed the waits and not yet the
    // end of them (the line that triggered it is the last one it had printed).
    assert!(
        before_restart
            .iter()
            .any(|l| l.contains("waiting for GitRepository"))
            && before_restart
                .last()
                .is_some_and(|l| l.contains("deployment ready"))
            && !before_restart
                .iter()
                .any(|l| l.contains("all components are healthy")),
        "{before_restart:#?}"
    );
    if !status.success() {
        // `error: bootstrap failed`, caused by what the wait was waiting for.
        assert!(
            stderr.lines().any(|l| l.starts_with("error:"))
                && stderr.lines().any(|l| l.contains("waiting for")
                    || l.contains("API server")
                    || l.contains("connect")),
            "a failed wait says what it waited for:\n{stderr}"
        );
    }
    let commits = commit_subjects(&repo, "main").len();
    assert_eq!(commits, 2, "{stderr}");

    let (code, _, again) = run(env
        .plugin_on(&cluster)
        .args(args)
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(
        code,
        0,
        "the run after the restart failed (logs under {}):\n{again}",
        cluster.dir().display()
    );
    assert_eq!(commit_subjects(&repo, "main").len(), 2, "{again}");
    assert_flux_synced(&cluster, cluster.admin_context(), &ns, &repo, "main");
}
