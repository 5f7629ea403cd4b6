//! Fleets (issue 8): several contexts bootstrapped from one repository in one run, with the
//! unhealthy ones reported and skipped, colliding paths refused, and no-op re-runs. A fleet
//! that is bootstrapped runs on one private control plane, whose two clusters both run the
//! real Flux controllers.

use std::path::{Path, PathBuf};

use fluxbootstrap_test::ControlPlane;

use crate::context::{
    assert_bootstrapped, assert_flux_synced, commit_subjects, env, real_flux_cluster, run,
    temp_dir, tree,
};

const COMPONENTS: &str = "Add Flux v2.9.4 component manifests";
const SYNC: &str = "Add Flux sync manifests";

/// A copy of the kubeconfig of `cluster` with an extra context `unreachable` whose API server
/// port is closed.
fn kubeconfig_with_unreachable(cluster: &ControlPlane, dir: &Path) -> PathBuf {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port is free");
        listener.local_addr().expect("bound").port()
    };
    kubeconfig_with_server(cluster, dir, port)
}

/// A copy of the kubeconfig of `cluster` with an extra context `unreachable` whose API server
/// is `127.0.0.1:port`.
fn kubeconfig_with_server(cluster: &ControlPlane, dir: &Path, port: u16) -> PathBuf {
    let copy = dir.join("kubeconfig");
    std::fs::copy(cluster.kubeconfig(), &copy).expect("the kubeconfig is copied");
    let server = format!("--server=https://127.0.0.1:{port}");
    for args in [
        vec![
            "config",
            "set-cluster",
            "unreachable",
            server.as_str(),
            "--insecure-skip-tls-verify=true",
        ],
        vec!["config", "set-credentials", "nobody", "--token=not-a-token"],
        vec![
            "config",
            "set-context",
            "unreachable",
            "--cluster=unreachable",
            "--user=nobody",
        ],
    ] {
        let out = cluster
            .kubectl()
            .env("KUBECONFIG", &copy)
            .args(&args)
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    copy
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("bad JSON ({e}):\n{stdout}"))
}

fn result_of<'a>(summary: &'a serde_json::Value, context: &str) -> &'a str {
    summary["clusters"]
        .as_array()
        .expect("clusters is an array")
        .iter()
        .find(|c| c["context"] == context)
        .and_then(|c| c["result"].as_str())
        .unwrap_or_else(|| panic!("no row for {context}: {summary:#}"))
}

#[test]
fn healthy_clusters_are_bootstrapped_and_the_others_reported() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = env.repo();
    let ns = env.namespace();
    let (_dir, dir) = crate::context::temp_dir();
    let kubeconfig = kubeconfig_with_unreachable(&cluster, &dir);
    let kubeconfig = kubeconfig.to_str().expect("utf-8 path").to_owned();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let admin = cluster.admin_context();
    let second = cluster.second_context();
    let nonadmin = cluster.nonadmin_context();
    let base = [
        "azdo",
        "--kubeconfig",
        &kubeconfig,
        "--url",
        &repo.https_url,
        "--ca-file",
        &ca,
        "--path",
        "clusters/{context}",
        "-n",
        &ns,
        "-o",
        "json",
        "--timeout",
        "3m",
    ];

    let first = run(env
        .plugin()
        .args(base)
        .args(["--context", admin, "--context", second])
        .args(["--context", nonadmin, "--context", "unreachable"])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(first.0, 1, "some clusters must fail:\n{}", first.2);
    assert!(!first.1.contains(env.git.pat()) && !first.2.contains(env.git.pat()));
    let summary = json(&first.1);
    assert_eq!(result_of(&summary, admin), "bootstrapped", "{}", first.2);
    assert_eq!(result_of(&summary, second), "bootstrapped", "{}", first.2);
    assert_eq!(result_of(&summary, nonadmin), "skipped", "{}", first.2);
    assert_eq!(result_of(&summary, "unreachable"), "skipped", "{}", first.2);
    assert_eq!(summary["clones"], 1);
    assert_eq!(summary["commits"].as_array().map(Vec::len), Some(2));
    // The table on stderr names every cluster.
    assert!(first.2.contains("CONTEXT"), "{}", first.2);
    for context in [admin, second, nonadmin, "unreachable"] {
        assert!(
            first.2.lines().any(|l| l.starts_with(context)),
            "{context} missing from the table:\n{}",
            first.2
        );
    }

    assert_eq!(commit_subjects(&repo, "main"), [SYNC, COMPONENTS]);
    let files = tree(&repo, "main");
    for context in [admin, second] {
        for file in [
            "gotk-components.yaml",
            "gotk-sync.yaml",
            "kustomization.yaml",
        ] {
            let path = format!("clusters/{context}/{ns}/{file}");
            assert!(files.contains(&path), "{path} missing from {files:?}");
        }
    }
    assert!(
        !files
            .iter()
            .any(|f| f.contains(nonadmin) || f.contains("unreachable")),
        "skipped clusters got files: {files:?}"
    );
    for context in [admin, second] {
        let out = cluster
            .kubectl()
            .args([
                "--context",
                context,
                "-n",
                &ns,
                "get",
                "kustomization",
                &ns,
                "-o",
                "jsonpath={.spec.path}",
            ])
            .output()
            .expect("kubectl runs");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("./clusters/{context}"),
            "{context}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Each cluster's own real controllers fetched and applied the pushed revision.
        assert_flux_synced(&cluster, context, &ns, &repo, "main");
    }

    // Re-running for the healthy clusters changes nothing in the repository and succeeds.
    let again = run(env
        .plugin()
        .args(base)
        .args(["--context", admin, "--context", second])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(again.0, 0, "re-run failed:\n{}", again.2);
    let summary = json(&again.1);
    assert_eq!(summary["commits"].as_array().map(Vec::len), Some(0));
    assert_eq!(commit_subjects(&repo, "main"), [SYNC, COMPONENTS]);
    // ... and nothing on the clusters either.
    for context in [admin, second] {
        assert_eq!(result_of(&summary, context), "up to date", "{summary:#}");
    }
}

#[test]
fn a_failed_push_still_reports_every_cluster_and_applies_nothing() {
    let env = env();
    let repo = env.repo();
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let admin = env.control_plane.admin_context();
    let second = env.control_plane.second_context();
    let before = commit_subjects(&repo, "main");

    // A read-only PAT clones but cannot push.
    let out = run(env
        .plugin()
        .args(["azdo", "--url", &repo.https_url, "--ca-file", &ca])
        .args(["--path", "clusters/{context}", "-n", &ns, "-o", "json"])
        .args(["--context", admin, "--context", second])
        .env("GIT_PASSWORD", env.git.readonly_pat()));
    assert_eq!(out.0, 1, "the push must fail:\n{}", out.2);
    assert!(!out.1.contains(env.git.readonly_pat()) && !out.2.contains(env.git.readonly_pat()));
    let summary = json(&out.1);
    for context in [admin, second] {
        assert_eq!(result_of(&summary, context), "skipped", "{}", out.2);
        assert!(
            out.2
                .lines()
                .any(|l| l.starts_with(context) && l.contains("repository step failed")),
            "{context} missing from the table:\n{}",
            out.2
        );
    }
    assert_eq!(summary["clones"], 1);
    assert_eq!(summary["commits"].as_array().map(Vec::len), Some(0));
    // The push error and its hint end the output.
    assert!(out.2.contains("hint:"), "{}", out.2);
    assert_eq!(commit_subjects(&repo, "main"), before);
    for context in [admin, second] {
        let namespace = env.kubectl(&["--context", context, "get", "namespace", &ns]);
        assert!(
            !namespace.status.success(),
            "{context}: objects were applied although nothing was pushed"
        );
    }
}

#[test]
fn colliding_paths_are_refused_before_anything_happens() {
    let env = env();
    let repo = env.repo();
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let out = run(env
        .plugin()
        .args([
            "azdo",
            "--url",
            &repo.https_url,
            "--ca-file",
            &ca,
            "--path",
            "clusters/{namespace}",
            "-n",
            &ns,
            "--context",
            env.control_plane.admin_context(),
            "--context",
            env.control_plane.second_context(),
        ])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(out.0, 1, "{}", out.2);
    assert!(out.2.contains("both render"), "{}", out.2);
    assert!(!out.2.contains("checking cluster"), "{}", out.2);
    assert!(commit_subjects(&repo, "main").is_empty());
    let ns_exists = env.kubectl(&["get", "namespace", &ns]);
    assert!(!ns_exists.status.success(), "the namespace was created");
}

#[test]
fn several_contexts_are_a_usage_error_outside_azdo() {
    let env = env();
    let out = run(env.plugin().args([
        "check",
        "--pre",
        "--context",
        env.control_plane.admin_context(),
        "--context",
        env.control_plane.second_context(),
    ]));
    assert_eq!(out.0, 2, "{}", out.2);
    assert!(out.2.contains("only once"), "{}", out.2);
}

#[test]
fn context_selector_with_single_commit() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = env.repo();
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let selector = format!(
        "^({}|{})$",
        cluster.admin_context(),
        cluster.second_context()
    );
    let out = run(env
        .plugin_on(&cluster)
        .args([
            "azdo",
            "--url",
            &repo.https_url,
            "--ca-file",
            &ca,
            "--path",
            "fleet/{cluster}",
            "-n",
            &ns,
            "--context-selector",
            &selector,
            "--single-commit",
            "--parallel",
            "1",
            "--timeout",
            "3m",
        ])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_bootstrapped(&out, &cluster);
    assert_eq!(
        commit_subjects(&repo, "main"),
        ["Add Flux v2.9.4 component and sync manifests"]
    );
    let syncs = tree(&repo, "main")
        .into_iter()
        .filter(|f| f.ends_with("/gotk-sync.yaml"))
        .count();
    assert_eq!(syncs, 2, "{:?}", tree(&repo, "main"));
    for context in [cluster.admin_context(), cluster.second_context()] {
        assert_flux_synced(&cluster, context, &ns, &repo, "main");
    }
}

/// Two contexts that reach one API server would bootstrap it twice at once, with different
/// paths (the last writer wins): the fleet is refused after preflight, naming both contexts,
/// before anything is pushed or applied.
#[test]
fn two_contexts_on_one_api_server_are_refused_before_any_change() {
    let env = env();
    let repo = env.repo();
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let admin = env.control_plane.admin_context();
    let (_dir, dir) = crate::context::temp_dir();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::copy(env.control_plane.kubeconfig(), &kubeconfig).expect("the kubeconfig is copied");
    let field = |what: &str| {
        let out = env
            .control_plane
            .kubectl()
            .env("KUBECONFIG", &kubeconfig)
            .args(["config", "view", "-o"])
            .arg(format!(
                "jsonpath={{.contexts[?(@.name==\"{admin}\")].context.{what}}}"
            ))
            .output()
            .expect("kubectl runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let (cluster, user) = (field("cluster"), field("user"));
    assert!(
        !cluster.is_empty() && !user.is_empty(),
        "{admin}: {cluster:?} {user:?}"
    );
    let out = env
        .control_plane
        .kubectl()
        .env("KUBECONFIG", &kubeconfig)
        .args(["config", "set-context", "admin-again"])
        .arg(format!("--cluster={cluster}"))
        .arg(format!("--user={user}"))
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = commit_subjects(&repo, "main");

    let out = run(env
        .plugin()
        .args(["azdo", "--url", &repo.https_url, "--ca-file", &ca])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--path", "clusters/{context}", "-n", &ns])
        .args(["--context", admin, "--context", "admin-again"])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(out.0, 1, "{}", out.2);
    assert!(
        out.2.contains(&format!(
            "contexts `{admin}` and `admin-again` both reach the API server"
        )) && out.2.contains("hint: select each cluster once"),
        "{}",
        out.2
    );
    assert_eq!(commit_subjects(&repo, "main"), before, "nothing was pushed");
    let namespace = env.kubectl(&["--context", admin, "get", "namespace", &ns]);
    assert!(!namespace.status.success(), "nothing was applied");
}

/// The fleet lists its contexts from the kubeconfig it connects with. With `KUBECONFIG`
/// naming only a missing file, kubectl (and the cluster crate) reads nothing, not
/// `~/.kube/config`; the fleet's own loader used to fall back to it, listed that file's
/// contexts and then failed to connect to every one of them.
#[test]
fn a_fleet_lists_contexts_from_the_kubeconfig_it_connects_with() {
    let env = env();
    let repo = env.repo();
    let ns = env.namespace();
    let (_home, home) = temp_dir();
    std::fs::create_dir_all(home.join(".kube")).expect("the directory is made");
    std::fs::copy(env.control_plane.kubeconfig(), home.join(".kube/config"))
        .expect("the kubeconfig is copied");
    let missing = home.join("missing-kubeconfig");
    let out = run(env
        .plugin()
        .args(["azdo", "--url", &repo.https_url, "--ca-file"])
        .arg(env.ca_file())
        .args(["--all-contexts", "--path", "clusters/{context}", "-n", &ns])
        .env("KUBECONFIG", &missing)
        .env("HOME", &home)
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(out.0, 1, "{}", out.2);
    // One error naming the `KUBECONFIG` that was read, not a table of contexts from
    // another file that could not be connected to.
    assert!(
        out.2.lines().any(
            |l| l.starts_with("error: No kubeconfig found") && l.contains("missing-kubeconfig")
        ),
        "the error should name the KUBECONFIG that was read:\n{}",
        out.2
    );
    assert!(!out.2.contains("CONTEXT"), "{}", out.2);
    assert!(commit_subjects(&repo, "main").is_empty(), "{}", out.2);
}

/// A single cluster's preflight gets `--timeout`, like each cluster of a fleet: an API server
/// that accepts the connection and never answers is reported when it runs out. The single
/// cluster path used to wait on the client's own timeouts (minutes), with no message naming
/// the flag.
#[test]
fn a_silent_api_server_fails_preflight_within_the_timeout() {
    let env = env();
    let repo = env.repo();
    let ns = env.namespace();
    let (_dir, dir) = temp_dir();
    // Accepted by the kernel (the backlog) but never read from or answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a port is free");
    let port = silent.local_addr().expect("bound").port();
    let kubeconfig = kubeconfig_with_server(env.control_plane, &dir, port);
    let out = run(env
        .plugin()
        .args(["azdo", "--url", &repo.https_url, "--ca-file"])
        .arg(env.ca_file())
        .args(["--context", "unreachable", "-n", &ns, "--timeout", "3s"])
        .env("KUBECONFIG", &kubeconfig)
        .env("GIT_PASSWORD", env.git.pat()));
    drop(silent);
    assert_eq!(out.0, 1, "{}", out.2);
    assert!(
        out.2
            .lines()
            .any(|l| l.starts_with("error: preflight timed out after 3s")),
        "{}",
        out.2
    );
    assert!(
        out.2
            .contains("hint: check that the API server is reachable, or raise `--timeout`"),
        "{}",
        out.2
    );
    assert!(commit_subjects(&repo, "main").is_empty(), "{}", out.2);
}
