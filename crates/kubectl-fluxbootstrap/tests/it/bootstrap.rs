//! The bootstrap flows of issue 7, each checked with the real `git` and `kubectl`; a bootstrap
//! that runs to completion does so on a private control plane with the real Flux controllers.

use std::io::Write;
use std::process::Stdio;

use fluxbootstrap_test::ControlPlane;

use crate::context::{
    assert_bootstrapped, assert_flux_synced, commit_subjects, env, real_flux_cluster, run, show,
    temp_dir, tree,
};

const COMPONENTS: &str = "Add Flux v2.9.4 component manifests";
const SYNC: &str = "Add Flux sync manifests";

fn secret_keys(cluster: &ControlPlane, namespace: &str, context: &str) -> Vec<String> {
    let out = cluster
        .kubectl()
        .args([
            "--context",
            context,
            "-n",
            namespace,
            "get",
            "secret",
            "flux-system",
            "-o",
            "go-template={{range $k, $v := .data}}{{$k}} {{end}}",
        ])
        .output()
        .expect("kubectl runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn token_auth_with_git_password_then_rerun_is_a_no_op() {
    let env = env();
    let Some(private) = real_flux_cluster(env) else {
        return;
    };
    let repo = env.repo();
    let ns = "flux-system";
    let admin = private.admin_context();
    let kubeconfig = private
        .kubeconfig()
        .to_str()
        .expect("utf-8 path")
        .to_owned();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let args = [
        "azdo",
        "--kubeconfig",
        &kubeconfig,
        "--url",
        &repo.https_url,
        "--ca-file",
        &ca,
        "--path",
        "clusters/dev",
        "--timeout",
        "3m",
    ];

    let first = run(env.plugin().args(args).env("GIT_PASSWORD", env.git.pat()));
    assert_bootstrapped(&first, &private);
    assert!(
        !first.1.contains(env.git.pat()) && !first.2.contains(env.git.pat()),
        "the PAT was printed"
    );

    assert_eq!(commit_subjects(&repo, "main"), [SYNC, COMPONENTS]);
    let files = tree(&repo, "main");
    for file in [
        "gotk-components.yaml",
        "gotk-sync.yaml",
        "kustomization.yaml",
    ] {
        assert!(
            files.contains(&format!("clusters/dev/{ns}/{file}")),
            "{file} missing from {files:?}"
        );
    }
    let sync = show(&repo, "main", &format!("clusters/dev/{ns}/gotk-sync.yaml"));
    assert!(sync.contains(&format!("url: {}", repo.https_url)), "{sync}");
    assert!(sync.contains("path: ./clusters/dev"), "{sync}");
    let kubectl = |args: &[&str]| {
        let out = private.kubectl().args(args).output().expect("kubectl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let keys = kubectl(&[
        "--context",
        admin,
        "-n",
        ns,
        "get",
        "secret",
        "flux-system",
        "-o",
        "go-template={{range $k, $v := .data}}{{$k}} {{end}}",
    ]);
    assert_eq!(
        keys.split_whitespace().collect::<Vec<_>>(),
        ["ca.crt", "password", "username"]
    );
    let head = repo.branch_sha("main").expect("main exists");
    let revision = kubectl(&[
        "--context",
        admin,
        "-n",
        ns,
        "get",
        "gitrepository",
        ns,
        "-o",
        "jsonpath={.status.artifact.revision}",
    ]);
    assert_eq!(revision, format!("main@sha1:{head}"));
    let attempted = kubectl(&[
        "--context",
        admin,
        "-n",
        ns,
        "get",
        "kustomization",
        ns,
        "-o",
        "jsonpath={.status.lastAttemptedRevision}",
    ]);
    assert_eq!(attempted, format!("main@sha1:{head}"));
    assert_flux_synced(&private, admin, ns, &repo, "main");

    // Re-run: no commit, no cluster write.
    let again = run(env
        .plugin()
        .args(args)
        .args(["-o", "json"])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(again.0, 0, "re-run failed:\n{}", again.2);
    assert_eq!(commit_subjects(&repo, "main").len(), 2);
    let summary: serde_json::Value = serde_json::from_str(&again.1).expect("json summary");
    assert_eq!(summary["commits"], serde_json::json!([]));
    // One schema for one cluster and for a fleet: the cluster's row is `clusters[0]`.
    let cluster = &summary["clusters"][0];
    assert_eq!(cluster["result"], "up to date", "{summary:#}");
    assert_eq!(cluster["objects"]["created"], 0, "{summary:#}");
    assert_eq!(cluster["objects"]["configured"], 0, "{summary:#}");
    assert_eq!(cluster["writes"], 0, "{summary:#}");
    assert_eq!(summary["writes"], 0, "{summary:#}");
    assert_eq!(summary["clones"], 1, "{summary:#}");
}

#[test]
fn token_auth_with_the_pat_from_a_pipe() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = env.repo();
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let mut child = env
        .plugin_on(&cluster)
        .args([
            "azdo",
            "--url",
            &repo.https_url,
            "--ca-file",
            &ca,
            "--path",
            "clusters/piped",
            "-n",
            &ns,
            "--timeout",
            "3m",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the plugin starts");
    writeln!(
        child.stdin.take().expect("stdin is piped"),
        "{}",
        env.git.pat()
    )
    .expect("the PAT is written");
    let out = child.wait_with_output().expect("the plugin finishes");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bootstrap failed (logs under {}):\n{stderr}",
        cluster.dir().display()
    );
    crate::context::assert_filtered_snapshot(
        "token_auth_from_a_pipe",
        &crate::context::stable_lines(&stderr),
    );
    assert_eq!(commit_subjects(&repo, "main"), [SYNC, COMPONENTS]);
    assert_eq!(
        secret_keys(&cluster, &ns, cluster.admin_context()),
        ["ca.crt", "password", "username"]
    );
    assert_flux_synced(&cluster, cluster.admin_context(), &ns, &repo, "main");
}

#[test]
fn pat_push_with_ssh_for_the_cluster() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = env.repo();
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let ssh_host = env.git.ssh_host();
    let (status, _, transcript) = crate::context::run_adding_the_public_key(
        env,
        env.plugin_on(&cluster)
            .args([
                "azdo",
                "--url",
                &repo.https_url,
                "--ca-file",
                &ca,
                "--ssh-hostname",
                &ssh_host,
                "--path",
                "clusters/ssh",
                "-n",
                &ns,
                "--timeout",
                "3m",
            ])
            .env("GIT_PASSWORD", env.git.pat()),
    );
    assert!(
        status.success(),
        "bootstrap failed (logs under {}):\n{transcript}",
        cluster.dir().display()
    );
    let sync = show(&repo, "main", &format!("clusters/ssh/{ns}/gotk-sync.yaml"));
    assert!(sync.contains("url: ssh://git@"), "{sync}");
    let kustomization = show(
        &repo,
        "main",
        &format!("clusters/ssh/{ns}/kustomization.yaml"),
    );
    assert!(
        kustomization.contains("--ssh-hostkey-algos=rsa-sha2-512,rsa-sha2-256"),
        "{kustomization}"
    );
    assert_eq!(
        secret_keys(&cluster, &ns, cluster.admin_context()),
        ["identity", "identity.pub", "known_hosts"]
    );
    // The real source-controller cloned over SSH with the generated key.
    assert_flux_synced(&cluster, cluster.admin_context(), &ns, &repo, "main");
}

#[test]
fn ssh_only_with_a_private_key_file_and_passphrase() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = env.repo();
    let ns = env.namespace();
    let (_dir, dir) = temp_dir();
    let (key, _) = crate::context::registered_rsa_key(env, &dir, "correct horse");
    let out = run(env
        .plugin_on(&cluster)
        .args(["azdo", "--url", &repo.ssh_url, "--private-key-file"])
        .arg(&key)
        .args(["--silent", "--path", "clusters/ssh-only", "-n", &ns])
        .args(["--timeout", "3m"])
        .env("GIT_PASSWORD", "correct horse"));
    assert_bootstrapped(&out, &cluster);
    assert!(
        !out.2.contains("correct horse"),
        "the passphrase was printed"
    );
    assert_eq!(commit_subjects(&repo, "main"), [SYNC, COMPONENTS]);
    assert_eq!(
        secret_keys(&cluster, &ns, cluster.admin_context()),
        ["identity", "identity.pub", "known_hosts", "password"]
    );
    // The real source-controller decrypted the key with the stored passphrase and cloned.
    assert_flux_synced(&cluster, cluster.admin_context(), &ns, &repo, "main");
}

#[test]
fn dry_run_writes_nothing() {
    let env = env();
    let repo = env.repo();
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let out = run(env
        .plugin()
        .args([
            "azdo",
            "--dry-run",
            "--url",
            &repo.https_url,
            "--ca-file",
            &ca,
            "--path",
            "clusters/dry",
            "-n",
            &ns,
        ])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(out.0, 0, "dry run failed:\n{}", out.2);
    // The plan comes first, on stderr: both of flux's commits with their files, and the
    // cluster with what it gets.
    let plan_at = out
        .2
        .find("plan: Flux")
        .unwrap_or_else(|| panic!("no plan:\n{}", out.2));
    let expected = [
        format!("commit \"{COMPONENTS}\""),
        format!("clusters/dry/{ns}/gotk-components.yaml"),
        format!("commit \"{SYNC}\""),
        format!("clusters/dry/{ns}/gotk-sync.yaml"),
        format!("clusters/dry/{ns}/kustomization.yaml (unless the branch has one)"),
        format!(
            "path \"./clusters/dry\": install the components, source secret \"{ns}/flux-system\", \
             components and sync objects"
        ),
    ];
    let mut from = plan_at;
    for line in &expected {
        let at = out.2[from..]
            .find(line.as_str())
            .unwrap_or_else(|| panic!("the plan lacks {line:?} (in this order):\n{}", out.2));
        from += at;
    }
    assert!(
        from < out.2.find("cloned repository").unwrap_or(usize::MAX),
        "the plan was printed after the clone:\n{}",
        out.2
    );
    assert!(
        out.1
            .contains(&format!("+++ b/clusters/dry/{ns}/gotk-sync.yaml")),
        "no diff on stdout:\n{}",
        out.1
    );
    assert_eq!(repo.branch_sha("main"), None, "the dry run pushed");
    let ns_out = env.kubectl(&["get", "namespace", &ns]);
    assert!(
        !ns_out.status.success(),
        "the dry run created the namespace"
    );
}

#[test]
fn context_flag_picks_the_second_cluster_and_leaves_the_current_context_alone() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = env.repo();
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let second = cluster.second_context();
    let out = run(env
        .plugin_on(&cluster)
        .args([
            "azdo",
            "--context",
            second,
            "--url",
            &repo.https_url,
            "--ca-file",
            &ca,
            "--path",
            "clusters/second",
            "-n",
            &ns,
            "--timeout",
            "3m",
        ])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_bootstrapped(&out, &cluster);
    assert_eq!(
        secret_keys(&cluster, &ns, second),
        ["ca.crt", "password", "username"]
    );
    assert_flux_synced(&cluster, second, &ns, &repo, "main");
    let kubectl = |args: &[&str]| cluster.kubectl().args(args).output().expect("kubectl runs");
    let on_admin = kubectl(&[
        "--context",
        cluster.admin_context(),
        "get",
        "namespace",
        &ns,
    ]);
    assert!(!on_admin.status.success(), "the first cluster was touched");
    // Nor did the first cluster's kubelet start a Flux controller.
    assert_eq!(
        cluster.kubelet(cluster.admin_context()).processes(),
        Vec::<(String, Vec<String>)>::new(),
        "controllers run on the first cluster"
    );
    let current = kubectl(&["config", "current-context"]);
    assert_eq!(
        String::from_utf8_lossy(&current.stdout).trim(),
        cluster.admin_context()
    );
}

#[test]
fn bad_input_is_refused_before_anything_changes() {
    let env = env();
    let repo = env.repo();
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let cases: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
        (
            vec!["--url", "https://github.com/fluxcd/flux2"],
            Some(env.git.pat()),
            "not an Azure DevOps",
        ),
        (
            vec!["--url", &repo.https_url, "--ca-file", &ca],
            Some("wrong-pat"),
            "hint:",
        ),
        (
            vec!["--url", &repo.https_url, "--ca-file", &ca],
            Some(env.git.readonly_pat()),
            "hint:",
        ),
        (
            vec![
                "--url",
                &repo.https_url,
                "--ca-file",
                &ca,
                "--context",
                env.control_plane.nonadmin_context(),
            ],
            Some(env.git.pat()),
            "hint:",
        ),
        (
            vec![
                "--url",
                &repo.https_url,
                "--ca-file",
                &ca,
                "--components-extra",
                "made-up-controller",
            ],
            Some(env.git.pat()),
            "made-up-controller",
        ),
        (
            vec!["--url", &repo.https_url, "--ca-file", &ca, "--path", "../x"],
            Some(env.git.pat()),
            "outside the repository",
        ),
    ];
    for (args, pat, expected) in cases {
        let mut cmd = env.plugin();
        cmd.args(["azdo", "-n", &ns]).args(&args);
        if let Some(pat) = pat {
            cmd.env("GIT_PASSWORD", pat);
        }
        let out = run(&mut cmd);
        assert_eq!(
            out.0, 1,
            "{args:?} should fail with exit code 1:\n{}",
            out.2
        );
        assert!(out.2.contains("error:"), "{args:?}:\n{}", out.2);
        assert!(
            out.2.to_lowercase().contains(&expected.to_lowercase()),
            "{args:?} should mention {expected:?}:\n{}",
            out.2
        );
        assert!(
            !out.2.contains(env.git.pat()),
            "the PAT was printed for {args:?}"
        );
        assert_eq!(repo.branch_sha("main"), None, "{args:?} pushed something");
    }
    let ns_out = env.kubectl(&["get", "namespace", &ns]);
    assert!(
        !ns_out.status.success(),
        "a failed run created the namespace"
    );
}
