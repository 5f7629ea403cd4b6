//! Command-line behaviour that needs no cluster: help, version, usage errors.

use crate::assert_transcript;
use crate::context::run;

fn plugin() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-fluxbootstrap"));
    cmd.env("NO_COLOR", "1");
    cmd
}

#[test]
fn version_client() {
    assert_transcript!(run(plugin().args(["version", "--client"])), @r"
    success: true
    exit_code: 0
    ----- stdout -----
    kubectl-fluxbootstrap: v0.1.0
    flux (default): v2.9.4

    ----- stderr -----
    ");
}

/// Without a reachable cluster, `version` still prints the client's versions first (as flux
/// does), then fails naming the cluster.
#[test]
fn version_without_a_cluster_shows_the_client_first() {
    let (_guard, dir) = crate::context::temp_dir();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: gone\n  context:\n    cluster: gone\n    user: nobody\nusers:\n- name: nobody\n  user: {}\ncurrent-context: gone\n",
    )
    .expect("the kubeconfig is written");
    let (code, stdout, stderr) = run(plugin()
        .args(["version", "--request-timeout", "5s"])
        .env("KUBECONFIG", &kubeconfig));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stdout, "kubectl-fluxbootstrap: v0.1.0\nflux (default): v2.9.4\n",
        "{stderr}"
    );
    assert!(stderr.contains("error:"), "{stderr}");
}

#[test]
fn usage_error_exits_2() {
    let out = run(plugin().args(["azdo", "--no-such-flag"]));
    assert_eq!(out.0, 2, "{}", out.2);
}

#[test]
fn completion_prints_a_script_on_stdout() {
    let (code, stdout, stderr) = run(plugin().args(["completion", "bash"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("complete -F"), "{stdout}");
    assert!(
        stdout.contains("--ssh-hostname"),
        "flags of `azdo` are completed"
    );
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn quiet_hides_steps_but_not_errors() {
    let (code, stdout, stderr) = run(plugin()
        .args(["azdo", "-q", "--url", "https://github.com/fluxcd/flux2"])
        .env("GIT_PASSWORD", "x"));
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains('►'), "{stderr}");
}

/// `--ns-follows-kube-context` (and its environment variable) takes the namespace from the
/// kubeconfig context, unless `-n` is on the command line, as flux does.
#[test]
fn the_namespace_follows_the_kube_context_when_asked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: team\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: team\n  context: {cluster: c, user: u, namespace: team-a}\n",
    )
    .expect("writable");
    let bundle = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fluxbootstrap-manifests/tests/fixtures/bundle");
    let export = |extra: &[&str], env: Option<&str>| {
        let out_dir = dir
            .path()
            .join(format!("out-{}", extra.len() + usize::from(env.is_some())));
        let mut cmd = plugin();
        cmd.args([
            "export",
            "--url",
            "https://dev.azure.com/o/p/_git/r",
            "--manifests",
        ])
        .arg(&bundle)
        .arg("--output-dir")
        .arg(&out_dir)
        .args(extra)
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("FLUX_NS_FOLLOWS_KUBE_CONTEXT")
        .env_remove("FLUX_SYSTEM_NAMESPACE");
        if let Some(value) = env {
            cmd.env("FLUX_NS_FOLLOWS_KUBE_CONTEXT", value);
        }
        let (code, _, stderr) = run(&mut cmd);
        assert_eq!(code, 0, "{stderr}");
        std::fs::read_dir(&out_dir)
            .expect("export wrote files")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(export(&[], None), ["flux-system"]);
    assert_eq!(export(&["--ns-follows-kube-context"], None), ["team-a"]);
    assert_eq!(export(&[], Some("true")), ["team-a"]);
    assert_eq!(
        export(&["--ns-follows-kube-context", "-n", "explicit"], None),
        ["explicit"]
    );
}
