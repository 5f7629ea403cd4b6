//! Bootstraps that end at the real Flux controllers: source-controller and
//! kustomize-controller v1.9.4 run by the harness's process kubelet on a control plane with
//! kube-controller-manager and kube-scheduler, from the real Flux v2.9.4 bundle.
//!
//! They need the real bundle (`FLUXBOOTSTRAP_FLUX_MANIFESTS`, which `.ci/run` sets) because
//! the kubelet runs only the images the harness built; without it they say loudly that they
//! are skipped, and with `FLUXBOOTSTRAP_REQUIRE_REAL_FLUX=1` (also set by `.ci/run`) they fail
//! instead.

use std::time::{Duration, Instant};

use fluxbootstrap_test::{ControlPlane, Repo};

// Re-exported for `flux_peer`, which calls it as `crate::real_flux::real_flux_cluster`.
pub(crate) use crate::context::real_flux_cluster;
use crate::context::{assert_bootstrapped, commit_subjects, env, run, temp_dir};

/// How long the `GitOps` loop may take to apply a pushed change: the `GitRepository` interval
/// is 1 m, so the tests ask for a reconcile with the annotation instead of waiting it out.
const LOOP_TIMEOUT: Duration = Duration::from_mins(2);

/// `kubectl` against `cluster`, returning stdout (panics with stderr on failure).
fn kubectl(cluster: &ControlPlane, args: &[&str]) -> String {
    let out = cluster.kubectl().args(args).output().expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `check` returns true, failing with `what` and the controller logs.
fn eventually(cluster: &ControlPlane, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + LOOP_TIMEOUT;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!(
        "timed out waiting for {what}; the controllers' logs are under {}",
        cluster.dir().display()
    );
}

/// Commits `files` (path, content; `None` deletes) to `branch` of `repo` with the real git.
fn push_files(repo: &Repo, files: &[(&str, Option<&str>)], message: &str) {
    let (_guard, dir) = temp_dir();
    let work = dir.join("work");
    // The real git on the bare repository's path: another user's push.
    let git = |args: &[&str], cwd: &std::path::Path| {
        let out = repo
            .git()
            .env_remove("GIT_DIR")
            .current_dir(cwd)
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(
        &[
            "clone",
            "-q",
            repo.bare_path.to_str().expect("utf-8"),
            work.to_str().expect("utf-8"),
        ],
        &dir,
    );
    for (path, content) in files {
        let file = work.join(path);
        match content {
            Some(text) => {
                std::fs::create_dir_all(file.parent().expect("has a parent")).expect("mkdir");
                std::fs::write(&file, text).expect("writable");
            }
            None => std::fs::remove_file(&file).expect("file exists"),
        }
    }
    git(&["add", "-A"], &work);
    git(
        &[
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.invalid",
            "commit",
            "-q",
            "-m",
            message,
        ],
        &work,
    );
    git(&["push", "-q", "origin", "HEAD:main"], &work);
}

/// Asks Flux to reconcile the `GitRepository` and `Kustomization` now, as `flux reconcile` does.
fn request_reconcile(cluster: &ControlPlane, ns: &str) {
    let stamp = format!("{:?}", Instant::now());
    for kind in ["gitrepository", "kustomization"] {
        kubectl(
            cluster,
            &[
                "-n",
                ns,
                "annotate",
                "--overwrite",
                kind,
                "flux-system",
                &format!("reconcile.fluxcd.io/requestedAt={stamp}"),
            ],
        );
    }
}

fn jsonpath(cluster: &ControlPlane, ns: &str, object: &str, path: &str) -> String {
    kubectl(
        cluster,
        &["-n", ns, "get", object, "-o", &format!("jsonpath={path}")],
    )
}

#[test]
fn token_auth_bootstrap_runs_the_gitops_loop_on_real_flux() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = env.repo();
    let ns = "flux-system";
    let kubeconfig = cluster
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
    assert_eq!(
        first.0,
        0,
        "bootstrap onto real Flux failed (logs under {}):\n{}",
        cluster.dir().display(),
        first.2
    );
    let head = repo.branch_sha("main").expect("main exists");
    let revision = format!("main@sha1:{head}");
    assert_eq!(
        jsonpath(
            &cluster,
            ns,
            "gitrepository/flux-system",
            "{.status.artifact.revision}"
        ),
        revision
    );
    assert_eq!(
        jsonpath(
            &cluster,
            ns,
            "kustomization/flux-system",
            "{.status.lastAppliedRevision}"
        ),
        revision,
        "the real kustomize-controller applied the bootstrap revision"
    );
    // The real kustomize-controller built `clusters/dev` and applied it: its inventory holds
    // the components it now owns.
    let inventory = jsonpath(
        &cluster,
        ns,
        "kustomization/flux-system",
        "{.status.inventory.entries[*].id}",
    );
    assert!(
        inventory.contains("flux-system_source-controller_apps_Deployment"),
        "{inventory}"
    );

    // Re-run: nothing to commit, nothing to write.
    let again = run(env
        .plugin()
        .args(args)
        .args(["-o", "json"])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(again.0, 0, "re-run failed:\n{}", again.2);
    assert_eq!(commit_subjects(&repo, "main").len(), 2);
    let summary: serde_json::Value = serde_json::from_str(&again.1).expect("json summary");
    assert_eq!(summary["commits"], serde_json::json!([]), "{summary:#}");
    assert_eq!(summary["writes"], 0, "{summary:#}");

    // The GitOps loop: a ConfigMap pushed under the cluster path is applied ...
    let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pushed-by-git\n  namespace: default\ndata:\n  greeting: hello\n";
    push_files(
        &repo,
        &[("clusters/dev/apps/greeting.yaml", Some(config_map))],
        "Add a ConfigMap",
    );
    request_reconcile(&cluster, ns);
    eventually(&cluster, "the pushed ConfigMap to be applied", || {
        cluster
            .kubectl()
            .args(["-n", "default", "get", "configmap", "pushed-by-git"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    // ... and pruned when it is deleted from git.
    push_files(
        &repo,
        &[("clusters/dev/apps/greeting.yaml", None)],
        "Remove the ConfigMap",
    );
    request_reconcile(&cluster, ns);
    eventually(&cluster, "the deleted ConfigMap to be pruned", || {
        cluster
            .kubectl()
            .args(["-n", "default", "get", "configmap", "pushed-by-git"])
            .output()
            .is_ok_and(|o| !o.status.success())
    });
}

/// Whether the running source-controller of `cluster` has `arg` on its command line.
fn source_controller_has(cluster: &ControlPlane, arg: &str) -> Option<bool> {
    let processes = cluster.kubelet(cluster.admin_context()).processes();
    let args: Vec<&Vec<String>> = processes
        .iter()
        .filter(|(pod, _)| pod.starts_with("source-controller-"))
        .map(|(_, args)| args)
        .collect();
    // During a rollout two run; the answer is only clear when one does.
    (args.len() == 1).then(|| args[0].iter().any(|a| a == arg))
}

/// SSH only, with a passphrase-protected RSA key, against the harness's RSA-SHA2-only sshd:
/// the real source-controller clones with the plugin's `--ssh-hostkey-algos` patch in its
/// arguments, and still clones after the patch is removed from git (Go's SSH client offers
/// rsa-sha2 for an `ssh-rsa` `known_hosts` entry by itself; see README, "SSH host key
/// algorithms").
#[test]
fn ssh_only_bootstrap_clones_with_and_without_the_hostkey_patch_on_real_flux() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = env.repo();
    let ns = "flux-system";
    let (_dir, dir) = temp_dir();
    let (key, _) = crate::context::registered_rsa_key(env, &dir, "correct horse");
    let out = run(env
        .plugin()
        .args(["azdo", "--url", &repo.ssh_url, "--private-key-file"])
        .arg(&key)
        .args(["--silent", "--path", "clusters/ssh", "--kubeconfig"])
        .arg(cluster.kubeconfig())
        .env("GIT_PASSWORD", "correct horse"));
    assert_eq!(
        out.0,
        0,
        "SSH bootstrap onto real Flux failed (logs under {}):\n{}",
        cluster.dir().display(),
        out.2
    );
    let algos = "--ssh-hostkey-algos=rsa-sha2-512,rsa-sha2-256";
    eventually(&cluster, "source-controller to run with the patch", || {
        source_controller_has(&cluster, algos) == Some(true)
    });
    let head = repo.branch_sha("main").expect("main exists");
    assert_eq!(
        jsonpath(
            &cluster,
            ns,
            "gitrepository/flux-system",
            "{.status.artifact.revision}"
        ),
        format!("main@sha1:{head}")
    );

    // Without the patch: flux's own kustomization.yaml, then a change it must fetch over SSH.
    push_files(
        &repo,
        &[(
            "clusters/ssh/flux-system/kustomization.yaml",
            Some(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- gotk-components.yaml\n- gotk-sync.yaml\n",
            ),
        )],
        "Drop the host key algorithm patch",
    );
    request_reconcile(&cluster, ns);
    eventually(
        &cluster,
        "source-controller to run without the patch",
        || source_controller_has(&cluster, algos) == Some(false),
    );
    let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fetched-over-ssh\n  namespace: default\n";
    push_files(
        &repo,
        &[("clusters/ssh/apps/cm.yaml", Some(config_map))],
        "Add a ConfigMap",
    );
    request_reconcile(&cluster, ns);
    eventually(
        &cluster,
        "a revision fetched without the patch to be applied",
        || {
            cluster
                .kubectl()
                .args(["-n", "default", "get", "configmap", "fetched-over-ssh"])
                .output()
                .is_ok_and(|o| o.status.success())
        },
    );
}

/// A user's `kustomization.yaml` with a patch, committed before bootstrap: once Flux syncs,
/// the running source-controller has the patched argument, and a second run changes nothing.
#[test]
fn a_users_kustomization_patch_reaches_the_running_controller() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = env.repo();
    let ns = "flux-system";
    let kustomization = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- gotk-components.yaml\n- gotk-sync.yaml\npatches:\n- patch: |\n    - op: add\n      path: /spec/template/spec/containers/0/args/-\n      value: --concurrent=6\n  target:\n    kind: Deployment\n    name: source-controller\n";
    push_files(
        &repo,
        &[(
            "clusters/dev/flux-system/kustomization.yaml",
            Some(kustomization),
        )],
        "Customise source-controller",
    );
    let kubeconfig = cluster
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
    ];
    let first = run(env.plugin().args(args).env("GIT_PASSWORD", env.git.pat()));
    assert_bootstrapped(&first, &cluster);
    assert_eq!(
        crate::context::show(&repo, "main", "clusters/dev/flux-system/kustomization.yaml"),
        kustomization,
        "an existing kustomization.yaml is never rewritten"
    );
    eventually(
        &cluster,
        "source-controller to run with --concurrent=6",
        || source_controller_has(&cluster, "--concurrent=6") == Some(true),
    );
    let again = run(env
        .plugin()
        .args(args)
        .args(["-o", "json"])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(again.0, 0, "re-run failed:\n{}", again.2);
    let summary: serde_json::Value = serde_json::from_str(&again.1).expect("json summary");
    assert_eq!(summary["commits"], serde_json::json!([]), "{summary:#}");
    assert_eq!(summary["writes"], 0, "{summary:#}");
    assert_eq!(
        source_controller_has(&cluster, "--concurrent=6"),
        Some(true)
    );
    let _ = ns;
}
