//! What flux cannot do: workload identity with a stand-in `az`, repository creation, PAT
//! rotation, and the `check`, `export` and `uninstall` companions.

use std::os::unix::fs::PermissionsExt;

use crate::context::{commit_subjects, env, run, show, temp_dir};

fn secret_value(namespace: &str, key: &str) -> Option<String> {
    let out = env().kubectl(&[
        "-n",
        namespace,
        "get",
        "secret",
        "flux-system",
        "-o",
        &format!("go-template={{{{index .data \"{key}\" | base64decode}}}}"),
    ]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn azure_provider_stores_no_credential_in_the_cluster() {
    let env = env();
    let repo = env.repo();
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    // A stand-in `az` that answers like `az account get-access-token` does.
    let (_dir, bin) = temp_dir();
    let az = bin.join("az");
    std::fs::write(
        &az,
        format!(
            "#!/bin/sh\ncat <<'JSON'\n{{\"accessToken\": \"{}\", \"expiresOn\": \"2099-01-01 00:00:00.000000\", \"expires_on\": 4070908800, \"tenant\": \"{}\", \"tokenType\": \"Bearer\"}}\nJSON\n",
            env.git.bearer_token(),
            env.git.tenant_id()
        ),
    )
    .expect("the stand-in az is written");
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755))
        .expect("az is executable");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = run(env
        .plugin()
        .args([
            "azdo",
            "--provider",
            "azure",
            "--azure-client-id",
            "00000000-0000-0000-0000-00000000c11d",
        ])
        .args([
            "--url",
            &repo.https_url,
            "--ca-file",
            &ca,
            "--path",
            "clusters/wi",
            "-n",
            &ns,
        ])
        .env("PATH", path));
    assert_eq!(out.0, 0, "bootstrap failed:\n{}", out.2);
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
        kustomization
            .contains("azure.workload.identity/client-id: 00000000-0000-0000-0000-00000000c11d"),
        "{kustomization}"
    );
    assert_eq!(
        secret_value(&ns, "password"),
        None,
        "a credential was stored"
    );
    let sa = env.kubectl(&[
        "-n",
        &ns,
        "get",
        "serviceaccount",
        "source-controller",
        "-o",
        "jsonpath={.metadata.annotations}",
    ]);
    assert!(String::from_utf8_lossy(&sa.stdout).contains("azure.workload.identity/client-id"));
}

#[test]
fn create_repository_then_bootstrap_into_it() {
    let env = env();
    let existing = env.repo();
    let name = env.control_plane.unique_name("e2e-new");
    let url = existing.https_url.replace(&existing.name, &name);
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let out = run(env
        .plugin()
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
        ])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(out.0, 0, "bootstrap failed:\n{}", out.2);
    let created = env
        .git
        .repo(&existing.org, &existing.project, &name)
        .expect("the repository was created");
    assert_eq!(commit_subjects(&created, "main").len(), 2);
}

#[test]
fn rotate_replaces_the_pat_and_flux_keeps_working() {
    let env = env();
    let repo = env.repo();
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let old = format!("old-{}", env.control_plane.unique_name("pat"));
    let new = format!("new-{}", env.control_plane.unique_name("pat"));
    env.git.add_pat(&old, false);
    env.git.add_pat(&new, false);
    let base = ["--url", &repo.https_url, "--ca-file", &ca, "-n", &ns];
    let out = run(env
        .plugin()
        .arg("azdo")
        .args(base)
        .args(["--path", "clusters/rotate"])
        .env("GIT_PASSWORD", &old));
    assert_eq!(out.0, 0, "bootstrap failed:\n{}", out.2);
    assert_eq!(secret_value(&ns, "password").as_deref(), Some(old.as_str()));

    // A PAT that does not work is refused before the Secret is touched.
    let bad = run(env
        .plugin()
        .arg("rotate")
        .args(base)
        .env("GIT_PASSWORD", "not-a-pat"));
    assert_eq!(bad.0, 1, "{}", bad.2);
    assert_eq!(secret_value(&ns, "password").as_deref(), Some(old.as_str()));

    let out = run(env
        .plugin()
        .arg("rotate")
        .args(base)
        .env("GIT_PASSWORD", &new));
    assert_eq!(out.0, 0, "rotate failed:\n{}", out.2);
    assert!(!out.2.contains(&new), "the PAT was printed");
    assert_eq!(secret_value(&ns, "password").as_deref(), Some(new.as_str()));
    env.git.revoke_pat(&old);
    let ready = env.kubectl(&[
        "-n",
        &ns,
        "wait",
        "gitrepository",
        &ns,
        "--for=condition=Ready",
        "--timeout=30s",
    ]);
    assert!(
        ready.status.success(),
        "{}",
        String::from_utf8_lossy(&ready.stderr)
    );
}

#[test]
fn check_reports_a_healthy_install_and_pre_refuses_a_non_admin() {
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
            "clusters/check",
            "-n",
            &ns,
        ])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(out.0, 0, "bootstrap failed:\n{}", out.2);
    let version = run(env.plugin().args(["version"]));
    assert_eq!(version.0, 0, "{}", version.2);
    assert!(
        version.1.contains("flux on \"admin\": v2.9.4"),
        "{}",
        version.1
    );
    let check = run(env.plugin().args(["check", "-n", &ns]));
    assert_eq!(check.0, 0, "check failed:\n{}", check.2);
    assert!(check.2.contains("✔ all checks passed"), "{}", check.2);
    let pre = run(env.plugin().args([
        "check",
        "--pre",
        "--context",
        env.control_plane.nonadmin_context(),
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
    let (private, _controllers) = crate::context::private_cluster();
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
        ])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(out.0, 0, "bootstrap failed:\n{}", out.2);
    let kubectl = |args: &[&str]| private.kubectl().args(args).output().expect("kubectl runs");
    assert!(
        kubectl(&["create", "namespace", "bystander"])
            .status
            .success()
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
    assert!(
        kubectl(&["get", "namespace", "bystander"]).status.success(),
        "a bystander was deleted"
    );
}
