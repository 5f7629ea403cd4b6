//! What flux cannot do: workload identity with a stand-in `az`, repository creation, PAT
//! rotation, and the `check`, `export` and `uninstall` companions.

use std::time::{Duration, Instant};

use fluxbootstrap_test::{ControlPlane, Repo};

use crate::context::{
    AZURE_CLIENT_ID, assert_bootstrapped, assert_flux_synced, commit_subjects, env,
    real_flux_cluster, run, show, temp_dir,
};

fn secret_value(cluster: &ControlPlane, namespace: &str, key: &str) -> Option<String> {
    let out = cluster
        .kubectl()
        .args([
            "-n",
            namespace,
            "get",
            "secret",
            "flux-system",
            "-o",
            &format!("go-template={{{{index .data \"{key}\" | base64decode}}}}"),
        ])
        .output()
        .expect("kubectl runs");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `--provider azure` on the real controllers: the push uses the Entra token of a stand-in
/// `az`, the cluster holds no credential, and the real source-controller clones with its
/// workload identity (the kubelet injects what the webhook injects; the git server's Entra
/// stand-in checks the federated `ServiceAccount` token).
#[test]
fn azure_provider_stores_no_credential_in_the_cluster() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = env.repo();
    // The namespace whose source-controller the federated credentials trust (see
    // `real_flux_cluster`).
    let ns = "flux-system";
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let (_dir, bin) = temp_dir();
    let path = crate::context::path_with_stand_in_az(env, &bin);
    let out = run(env
        .plugin_on(&cluster)
        .args([
            "azdo",
            "--provider",
            "azure",
            "--azure-client-id",
            AZURE_CLIENT_ID,
        ])
        .args([
            "--url",
            &repo.https_url,
            "--ca-file",
            &ca,
            "--path",
            "clusters/wi",
            "-n",
            ns,
            "--timeout",
            "3m",
        ])
        .env("PATH", path));
    assert_bootstrapped(&out, &cluster);
    assert!(
        !out.2.contains(env.git.bearer_token()),
        "the token was printed"
    );
    assert_eq!(commit_subjects(&repo, "main").len(), 2);
    let sync = show(&repo, "main", &format!("clusters/wi/{ns}/gotk-sync.yaml"));
    assert!(
        sync.contains("provider: azure") && !sync.contains("secretRef"),
        "{sync}"
    );
    let kustomization = show(
        &repo,
        "main",
        &format!("clusters/wi/{ns}/kustomization.yaml"),
    );
    assert!(
        kustomization.contains(&format!(
            "azure.workload.identity/client-id: {AZURE_CLIENT_ID}"
        )),
        "{kustomization}"
    );
    assert_eq!(
        secret_value(&cluster, ns, "password"),
        None,
        "a credential was stored"
    );
    let sa = cluster
        .kubectl()
        .args([
            "-n",
            ns,
            "get",
            "serviceaccount",
            "source-controller",
            "-o",
            "jsonpath={.metadata.annotations}",
        ])
        .output()
        .expect("kubectl runs");
    assert!(String::from_utf8_lossy(&sa.stdout).contains("azure.workload.identity/client-id"));
    // The real source-controller fetched, and kustomize-controller applied, with no Secret.
    assert_flux_synced(&cluster, cluster.admin_context(), ns, &repo, "main");
    assert_eq!(
        env.git.unknown_entra_requests(),
        Vec::<String>::new(),
        "the Azure SDK asked the Entra stand-in for something it does not serve"
    );
}

#[test]
fn create_repository_then_bootstrap_into_it() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let existing = env.repo();
    let name = env.control_plane.unique_name("e2e-new");
    let url = existing.https_url.replace(&existing.name, &name);
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let out = run(env
        .plugin_on(&cluster)
        .args([
            "azdo",
            "--create-repository",
            "--url",
            &url,
            "--ca-file",
            &ca,
            "--path",
            "clusters/new",
            "-n",
            &ns,
            "--timeout",
            "3m",
        ])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_bootstrapped(&out, &cluster);
    let created = env
        .git
        .repo(&existing.org, &existing.project, &name)
        .expect("the repository was created");
    assert_eq!(commit_subjects(&created, "main").len(), 2);
    assert_flux_synced(&cluster, cluster.admin_context(), &ns, &created, "main");
}

/// `--dry-run --create-repository` for a repository that does not exist: the plan says it
/// would be created and shows every file as new, and nothing is created, pushed or applied.
#[test]
fn a_dry_run_shows_what_a_new_repository_would_get() {
    let env = env();
    let existing = env.repo();
    let name = env.control_plane.unique_name("e2e-not-yet");
    let url = existing.https_url.replace(&existing.name, &name);
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let (code, stdout, stderr) = run(env
        .plugin()
        .args(["azdo", "--create-repository", "--dry-run", "--url", &url])
        .args(["--ca-file", &ca, "--path", "clusters/new", "-n", &ns])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("would be created"), "{stderr}");
    assert!(
        stdout.contains(&format!("clusters/new/{ns}/gotk-components.yaml")),
        "the diff shows the new files:\n{stdout}"
    );
    assert!(
        env.git
            .repo(&existing.org, &existing.project, &name)
            .is_none(),
        "a dry run created the repository"
    );
    let applied = env.kubectl(&["get", "namespace", &ns, "--ignore-not-found", "-o", "name"]);
    assert!(String::from_utf8_lossy(&applied.stdout).trim().is_empty());
}

/// A commit on `main` that changes no file, made with the real git on the bare repository:
/// a new revision for source-controller to fetch. Returns its id.
fn commit_without_changes(repo: &Repo, message: &str) -> String {
    let git = |args: &[&str]| {
        let out = repo
            .git()
            .args([
                "-c",
                "user.name=Test",
                "-c",
                "user.email=test@example.invalid",
            ])
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let commit = git(&["commit-tree", "main^{tree}", "-p", "main", "-m", message]);
    git(&["update-ref", "refs/heads/main", &commit]);
    commit
}

#[test]
fn rotate_replaces_the_pat_and_flux_keeps_working() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = env.repo();
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let old = format!("old-{}", env.control_plane.unique_name("pat"));
    let new = format!("new-{}", env.control_plane.unique_name("pat"));
    env.git.add_pat(&old, false);
    env.git.add_pat(&new, false);
    let base = [
        "--url",
        &repo.https_url,
        "--ca-file",
        &ca,
        "-n",
        &ns,
        "--timeout",
        "3m",
    ];
    let out = run(env
        .plugin_on(&cluster)
        .arg("azdo")
        .args(base)
        .args(["--path", "clusters/rotate"])
        .env("GIT_PASSWORD", &old));
    assert_bootstrapped(&out, &cluster);
    assert_eq!(
        secret_value(&cluster, &ns, "password").as_deref(),
        Some(old.as_str())
    );

    // A PAT that does not work is refused before the Secret is touched.
    let bad = run(env
        .plugin_on(&cluster)
        .arg("rotate")
        .args(base)
        .env("GIT_PASSWORD", "not-a-pat"));
    assert_eq!(bad.0, 1, "{}", bad.2);
    assert_eq!(
        secret_value(&cluster, &ns, "password").as_deref(),
        Some(old.as_str())
    );

    // `rotate` waits until the real source-controller has reconciled with the new Secret.
    let out = run(env
        .plugin_on(&cluster)
        .arg("rotate")
        .args(base)
        .env("GIT_PASSWORD", &new));
    assert_eq!(
        out.0,
        0,
        "rotate failed (logs under {}):\n{}",
        cluster.dir().display(),
        out.2
    );
    assert!(!out.2.contains(&new), "the PAT was printed");
    assert_eq!(
        secret_value(&cluster, &ns, "password").as_deref(),
        Some(new.as_str())
    );

    // With the old PAT revoked, the real source-controller fetches a new revision: it can
    // only do so with the new PAT.
    env.git.revoke_pat(&old);
    let head = commit_without_changes(&repo, "A revision fetched with the rotated PAT");
    let kubectl = |args: &[&str]| {
        let out = cluster.kubectl().args(args).output().expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {} (logs under {})",
            String::from_utf8_lossy(&out.stderr),
            cluster.dir().display()
        );
    };
    kubectl(&[
        "-n",
        &ns,
        "annotate",
        "--overwrite",
        "gitrepository",
        &ns,
        &format!("reconcile.fluxcd.io/requestedAt=after-rotation-{head}"),
    ]);
    kubectl(&[
        "-n",
        &ns,
        "wait",
        "gitrepository",
        &ns,
        &format!("--for=jsonpath={{.status.artifact.revision}}=main@sha1:{head}"),
        "--timeout=60s",
    ]);
    kubectl(&[
        "-n",
        &ns,
        "wait",
        "gitrepository",
        &ns,
        "--for=condition=Ready",
        "--timeout=30s",
    ]);
}

#[test]
fn check_reports_a_healthy_install_and_pre_refuses_a_non_admin() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = env.repo();
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let out = run(env
        .plugin_on(&cluster)
        .args([
            "azdo",
            "--url",
            &repo.https_url,
            "--ca-file",
            &ca,
            "--path",
            "clusters/check",
            "-n",
            &ns,
            "--timeout",
            "3m",
        ])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_bootstrapped(&out, &cluster);
    let version = run(env.plugin_on(&cluster).args(["version"]));
    assert_eq!(version.0, 0, "{}", version.2);
    assert!(
        version.1.contains("flux on \"admin\": v2.9.4"),
        "{}",
        version.1
    );
    let check = run(env.plugin_on(&cluster).args(["check", "-n", &ns]));
    assert_eq!(check.0, 0, "check failed:\n{}", check.2);
    assert!(check.2.contains("✔ all checks passed"), "{}", check.2);
    let pre = run(env.plugin_on(&cluster).args([
        "check",
        "--pre",
        "--context",
        cluster.nonadmin_context(),
    ]));
    assert_eq!(pre.0, 1, "{}", pre.2);
    assert!(pre.2.contains("hint:"), "{}", pre.2);
}

#[test]
fn export_prints_the_three_files_without_a_cluster_or_git() {
    let env = env();
    let out = run(env.plugin().args([
        "export",
        "--url",
        "https://dev.azure.com/my-org/my-project/_git/fleet",
        "--path",
        "clusters/prod",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
    ]));
    assert_eq!(out.0, 0, "export failed:\n{}", out.2);
    let headers: Vec<&str> = out
        .1
        .lines()
        .filter(|l| l.starts_with("# clusters/"))
        .collect();
    assert_eq!(
        headers,
        [
            "# clusters/prod/flux-system/gotk-components.yaml",
            "# clusters/prod/flux-system/gotk-sync.yaml",
            "# clusters/prod/flux-system/kustomization.yaml"
        ]
    );
    assert!(
        out.1
            .contains("url: https://dev.azure.com/my-org/my-project/_git/fleet")
    );
}

#[test]
fn uninstall_removes_flux_and_leaves_bystanders() {
    let env = env();
    let Some(private) = real_flux_cluster(env) else {
        return;
    };
    let kubeconfig = private
        .kubeconfig()
        .to_str()
        .expect("utf-8 path")
        .to_owned();
    let repo = env.repo();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let out = run(env
        .plugin()
        .args([
            "azdo",
            "--kubeconfig",
            &kubeconfig,
            "--url",
            &repo.https_url,
            "--ca-file",
            &ca,
            "--path",
            "clusters/gone",
            "--timeout",
            "3m",
        ])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_bootstrapped(&out, &private);
    let kubectl = |args: &[&str]| private.kubectl().args(args).output().expect("kubectl runs");
    assert!(
        kubectl(&["create", "namespace", "bystander"])
            .status
            .success()
    );
    let kubelet = private.kubelet(private.admin_context());
    assert!(
        !kubelet.processes().is_empty(),
        "the real controllers run before uninstall"
    );

    let dry = run(env
        .plugin()
        .args(["uninstall", "--dry-run", "--kubeconfig", &kubeconfig]));
    assert_eq!(dry.0, 0, "{}", dry.2);
    assert!(
        kubectl(&["get", "crd", "gitrepositories.source.toolkit.fluxcd.io"])
            .status
            .success(),
        "the dry run deleted"
    );

    let out = run(env.plugin().args([
        "uninstall",
        "--silent",
        "--keep-namespace",
        "--kubeconfig",
        &kubeconfig,
    ]));
    assert_eq!(out.0, 0, "uninstall failed:\n{}", out.2);
    assert!(
        // CRD deletion is asynchronous (the API server first removes its custom resources).
        kubectl(&[
            "wait",
            "--for=delete",
            "crd/gitrepositories.source.toolkit.fluxcd.io",
            "--timeout=60s"
        ])
        .status
        .success(),
        "CRD left behind"
    );
    assert!(
        !kubectl(&[
            "-n",
            "flux-system",
            "get",
            "deployment",
            "source-controller"
        ])
        .status
        .success(),
        "controller left behind"
    );
    // kube-controller-manager garbage-collects the ReplicaSets and Pods, and the kubelet
    // stops the controller processes.
    let deadline = Instant::now() + Duration::from_mins(1);
    while !kubelet.processes().is_empty() {
        assert!(
            Instant::now() < deadline,
            "controllers still running after uninstall: {:?} (logs under {})",
            kubelet.processes(),
            private.dir().display()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // `--keep-namespace` keeps it: neither uninstall nor a pruning kustomize-controller
    // deleted it.
    let phase = kubectl(&[
        "get",
        "namespace",
        "flux-system",
        "-o",
        "jsonpath={.status.phase}",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&phase.stdout),
        "Active",
        "the kept namespace: {}",
        String::from_utf8_lossy(&phase.stderr)
    );

    // Without `--keep-namespace` the namespace goes too, and kube-controller-manager's
    // namespace controller really removes it.
    let out = run(env
        .plugin()
        .args(["uninstall", "--silent", "--kubeconfig", &kubeconfig]));
    assert_eq!(out.0, 0, "uninstall failed:\n{}", out.2);
    assert!(
        kubectl(&[
            "wait",
            "--for=delete",
            "namespace/flux-system",
            "--timeout=60s"
        ])
        .status
        .success(),
        "namespace flux-system is still there (logs under {})",
        private.dir().display()
    );
    let bystander = kubectl(&[
        "get",
        "namespace",
        "bystander",
        "-o",
        "jsonpath={.status.phase}",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&bystander.stdout),
        "Active",
        "a bystander was deleted: {}",
        String::from_utf8_lossy(&bystander.stderr)
    );
}
