//! The control plane and fake controllers behave like a real cluster for the real kubectl:
//! admin and non-admin users, two independent clusters, the real version, Deployments that
//! become Available, and Flux sources that become Ready only with working credentials.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fluxbootstrap_test::{ControlPlane, FakeControllerOptions, FakeControllers, GitServer};
use serde_json::{Value, json};

const FLUX_CRDS: &str = include_str!("kube_fixtures/flux-crds.yaml");

fn run(mut cmd: Command) -> Output {
    cmd.output().expect("the command runs")
}

fn kubectl(plane: &ControlPlane, args: &[&str]) -> Output {
    let mut cmd = plane.kubectl();
    cmd.args(args);
    run(cmd)
}

fn kubectl_ok(plane: &ControlPlane, args: &[&str]) -> String {
    let output = kubectl(plane, args);
    assert!(
        output.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn apply(plane: &ControlPlane, manifest: &str) {
    let mut child = plane
        .kubectl()
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(manifest.as_bytes())
        .expect("kubectl reads its stdin");
    let output = child.wait_with_output().expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl apply failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn get_json(plane: &ControlPlane, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&kubectl_ok(plane, &all)).expect("kubectl prints JSON")
}

/// Polls `check` on the object until it returns `Some`, failing after 60 s.
fn wait_for<T>(plane: &ControlPlane, args: &[&str], check: impl Fn(&Value) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let object = get_json(plane, args);
        if let Some(found) = check(&object) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting on {args:?}; last state: {object:#}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn ready_condition(object: &Value) -> Option<(String, String)> {
    let condition = object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?;
    Some((
        condition["status"].as_str()?.to_owned(),
        condition["message"].as_str()?.to_owned(),
    ))
}

fn new_namespace(plane: &ControlPlane, prefix: &str) -> String {
    let namespace = plane.unique_name(prefix);
    kubectl_ok(plane, &["create", "namespace", &namespace]);
    namespace
}

fn fake_controllers(plane: &ControlPlane) -> FakeControllers {
    FakeControllers::start(FakeControllerOptions {
        kubeconfig: plane.kubeconfig().to_owned(),
        context: plane.admin_context().to_owned(),
        azure_token: None,
    })
}

#[test]
fn admin_lists_namespaces() {
    let plane = ControlPlane::shared();
    let namespaces = kubectl_ok(plane, &["get", "namespaces", "-o", "name"]);
    for expected in ["namespace/default", "namespace/kube-system"] {
        assert!(namespaces.lines().any(|l| l == expected), "{namespaces}");
    }
    assert_eq!(
        kubectl_ok(plane, &["config", "current-context"]).trim(),
        plane.admin_context()
    );
    assert_eq!(
        kubectl_ok(plane, &["auth", "can-i", "*", "*"]).trim(),
        "yes"
    );
}

#[test]
fn nonadmin_is_forbidden_to_create_a_cluster_role() {
    let plane = ControlPlane::shared();
    let name = plane.unique_name("nonadmin-role");
    let context = format!("--context={}", plane.nonadmin_context());
    let output = kubectl(
        plane,
        &[
            &context,
            "create",
            "clusterrole",
            &name,
            "--verb=get",
            "--resource=pods",
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("forbidden"), "{stderr}");
    assert!(stderr.contains("\"jane\""), "{stderr}");
    // What the plugin's preflight asks: a SelfSubjectAccessReview for everything.
    let can_i = kubectl(plane, &[&context, "auth", "can-i", "*", "*"]);
    assert_eq!(String::from_utf8_lossy(&can_i.stdout).trim(), "no");
}

#[test]
fn apiserver_and_kubectl_report_the_built_version() {
    let plane = ControlPlane::shared();
    let version = get_json(plane, &["version"]);
    assert_eq!(
        version["serverVersion"]["gitVersion"], "v1.36.3",
        "{version:#}"
    );
    assert_eq!(version["serverVersion"]["minor"], "36");
    assert_eq!(
        version["clientVersion"]["gitVersion"], "v1.36.3",
        "{version:#}"
    );
    assert!(ControlPlane::bin_dir().join("kube-apiserver").is_file());
}

#[test]
fn second_context_is_an_independent_cluster() {
    let plane = ControlPlane::shared();
    assert_ne!(
        plane.server_url(plane.admin_context()),
        plane.server_url(plane.second_context())
    );
    assert_eq!(
        plane.server_url(plane.admin_context()),
        plane.server_url(plane.nonadmin_context())
    );
    let namespace = new_namespace(plane, "only-in-first");
    let second = format!("--context={}", plane.second_context());
    let output = kubectl(plane, &[&second, "get", "namespace", &namespace]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("NotFound"));
    // The second cluster is a full cluster of its own, with admin rights.
    let other = plane.unique_name("only-in-second");
    kubectl_ok(plane, &[&second, "create", "namespace", &other]);
    assert!(
        !kubectl(plane, &["get", "namespace", &other])
            .status
            .success()
    );
}

#[test]
fn fake_controllers_make_deployments_available() {
    let plane = ControlPlane::shared();
    let namespace = new_namespace(plane, "deploy");
    let _controllers = fake_controllers(plane);
    apply(
        plane,
        &json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "example.invalid/web:1"}]},
                },
            },
        })
        .to_string(),
    );
    let rollout = [
        "rollout",
        "status",
        "deployment/web",
        "-n",
        &namespace,
        "--timeout=60s",
    ];
    kubectl_ok(plane, &rollout);
    kubectl_ok(
        plane,
        &[
            "wait",
            "--for=condition=Available",
            "deployment/web",
            "-n",
            &namespace,
            "--timeout=60s",
        ],
    );
    // A spec change bumps the generation; the status follows.
    kubectl_ok(
        plane,
        &["scale", "deployment/web", "-n", &namespace, "--replicas=3"],
    );
    kubectl_ok(plane, &rollout);
    let deployment = get_json(plane, &["get", "deployment/web", "-n", &namespace]);
    assert_eq!(deployment["status"]["availableReplicas"], 3);
    assert_eq!(
        deployment["status"]["observedGeneration"],
        deployment["metadata"]["generation"]
    );
}

#[test]
fn control_plane_apiserver_stops_and_restarts() {
    let plane = ControlPlane::start();
    let dir = plane
        .kubeconfig()
        .parent()
        .expect("the kubeconfig is in the plane's directory")
        .to_owned();
    kubectl_ok(&plane, &["create", "namespace", "survives-restart"]);
    plane.stop_apiserver();
    assert!(
        !kubectl(&plane, &["get", "namespaces", "--request-timeout=5s"])
            .status
            .success()
    );
    // The second cluster is a separate apiserver and keeps serving.
    kubectl_ok(&plane, &["--context=second", "get", "namespaces"]);
    plane.start_apiserver();
    kubectl_ok(&plane, &["get", "namespace", "survives-restart"]);
    drop(plane);
    assert!(
        !dir.exists(),
        "the control plane's directory is removed on drop"
    );
}

/// A commit on `main` of a new repository on the shared git server, with `clusters/dev/`.
fn seed_repo(server: &GitServer) -> (fluxbootstrap_test::Repo, String) {
    let name = ControlPlane::shared().unique_name("fake-source");
    let repo = server.create_repo("kube-org", "kube-project", &name);
    let work = tempfile::tempdir().expect("temp dir");
    let git = |args: &[&str]| {
        let mut cmd = Command::new("git");
        cmd.current_dir(work.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args([
                "-c",
                "user.name=test",
                "-c",
                "user.email=test@example.invalid",
            ])
            .args(args);
        let output = run(cmd);
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    git(&["init", "--quiet", "--initial-branch=main", "."]);
    fs_err::create_dir_all(work.path().join("clusters/dev")).expect("mkdir");
    fs_err::write(work.path().join("clusters/dev/README"), "dev\n").expect("write");
    git(&["add", "."]);
    git(&["commit", "--quiet", "-m", "seed"]);
    git(&[
        "push",
        "--quiet",
        &repo.bare_path.display().to_string(),
        "main",
    ]);
    let sha = git(&["rev-parse", "HEAD"]);
    (repo, sha)
}

fn source_secret(namespace: &str, name: &str, password: &str, ca_file: &Path) -> String {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {
            "username": "git",
            "password": password,
            "ca.crt": fs_err::read_to_string(ca_file).expect("the CA file is readable"),
        },
    })
    .to_string()
}

fn git_repository(namespace: &str, name: &str, url: &str, secret: &str) -> String {
    json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"interval": "1m0s", "url": url, "ref": {"branch": "main"}, "secretRef": {"name": secret}},
    })
    .to_string()
}

fn kustomization(namespace: &str, name: &str, source: &str, path: &str) -> String {
    json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"interval": "10m0s", "path": path, "prune": true,
                 "sourceRef": {"kind": "GitRepository", "name": source}},
    })
    .to_string()
}

fn install_flux_crds(plane: &ControlPlane) {
    apply(plane, FLUX_CRDS);
    kubectl_ok(
        plane,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/gitrepositories.source.toolkit.fluxcd.io",
            "crd/kustomizations.kustomize.toolkit.fluxcd.io",
        ],
    );
}

#[test]
fn fake_source_controller_uses_workload_identity_for_azure() {
    let plane = ControlPlane::shared();
    let server = GitServer::shared();
    install_flux_crds(plane);
    let namespace = new_namespace(plane, "flux-azure");
    let _controllers = FakeControllers::start(FakeControllerOptions {
        kubeconfig: plane.kubeconfig().to_owned(),
        context: plane.admin_context().to_owned(),
        azure_token: Some(server.bearer_token().to_owned()),
    });
    let (repo, sha) = seed_repo(server);
    apply(
        plane,
        &json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "source-controller", "namespace": namespace},
        })
        .to_string(),
    );
    // No secretRef: the identity comes from the provider, the CA from the "public" trust store.
    apply(plane, &json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "azure", "namespace": namespace},
        "spec": {"interval": "1m0s", "url": repo.https_url, "ref": {"branch": "main"}, "provider": "azure"},
    }).to_string());
    let source = ["get", "gitrepository/azure", "-n", &namespace];
    let (_, message) = wait_for(plane, &source, |o| {
        ready_condition(o).filter(|(status, _)| status == "False")
    });
    assert!(
        message.contains("azure.workload.identity/client-id"),
        "{message}"
    );

    kubectl_ok(
        plane,
        &[
            "annotate",
            "serviceaccount/source-controller",
            "-n",
            &namespace,
            "azure.workload.identity/client-id=00000000-0000-0000-0000-000000000000",
        ],
    );
    let revision = wait_for(plane, &source, |o| {
        (ready_condition(o)?.0 == "True").then(|| o["status"]["artifact"]["revision"].clone())
    });
    assert_eq!(revision, format!("main@sha1:{sha}").as_str());
}

#[test]
fn fake_source_controller_fetches_with_the_secret_credentials() {
    let plane = ControlPlane::shared();
    let server = GitServer::shared();
    install_flux_crds(plane);
    let namespace = new_namespace(plane, "flux-source");
    let _controllers = fake_controllers(plane);
    let (repo, sha) = seed_repo(server);
    let revision = format!("main@sha1:{sha}");

    apply(
        plane,
        &source_secret(&namespace, "good", server.pat(), server.ca_file()),
    );
    apply(
        plane,
        &git_repository(&namespace, "good", &repo.https_url, "good"),
    );
    apply(
        plane,
        &kustomization(&namespace, "good", "good", "./clusters/dev"),
    );
    let wrong_pat = "wrongpat0000000000000000000000000000000000000000000";
    apply(
        plane,
        &source_secret(&namespace, "bad", wrong_pat, server.ca_file()),
    );
    apply(
        plane,
        &git_repository(&namespace, "bad", &repo.https_url, "bad"),
    );
    apply(
        plane,
        &git_repository(&namespace, "no-secret", &repo.https_url, "missing"),
    );
    apply(
        plane,
        &kustomization(&namespace, "no-path", "good", "./clusters/prod"),
    );

    let good = ["get", "gitrepository/good", "-n", &namespace];
    let artifact = wait_for(plane, &good, |o| {
        (ready_condition(o)?.0 == "True").then(|| o["status"]["artifact"].clone())
    });
    assert_eq!(artifact["revision"], revision.as_str());
    let object = get_json(plane, &good);
    assert_eq!(
        object["status"]["observedGeneration"],
        object["metadata"]["generation"]
    );

    let ks = ["get", "kustomization/good", "-n", &namespace];
    wait_for(plane, &ks, |o| {
        (ready_condition(o)?.0 == "True").then_some(())
    });
    let object = get_json(plane, &ks);
    assert_eq!(object["status"]["lastAttemptedRevision"], revision.as_str());
    assert_eq!(object["status"]["lastAppliedRevision"], revision.as_str());

    let (_, message) = wait_for(
        plane,
        &["get", "gitrepository/bad", "-n", &namespace],
        |o| ready_condition(o).filter(|(status, _)| status == "False"),
    );
    assert!(
        message.contains("Authentication failed") || message.contains("401"),
        "{message}"
    );
    assert!(
        !message.contains(wrong_pat),
        "the PAT leaked into the status: {message}"
    );

    let (_, message) = wait_for(
        plane,
        &["get", "gitrepository/no-secret", "-n", &namespace],
        |o| ready_condition(o).filter(|(status, _)| status == "False"),
    );
    assert!(
        message.contains("secrets \"missing\" not found"),
        "{message}"
    );

    let (_, message) = wait_for(
        plane,
        &["get", "kustomization/no-path", "-n", &namespace],
        |o| ready_condition(o).filter(|(status, _)| status == "False"),
    );
    assert!(message.contains("clusters/prod"), "{message}");

    // A reconcile request is acknowledged like Flux does.
    kubectl_ok(
        plane,
        &[
            "annotate",
            "--overwrite",
            "gitrepository/good",
            "-n",
            &namespace,
            "reconcile.fluxcd.io/requestedAt=2026-01-01T00:00:00Z",
        ],
    );
    wait_for(plane, &good, |o| {
        (o["status"]["lastHandledReconcileAt"] == "2026-01-01T00:00:00Z").then_some(())
    });
}

fn ssh_keypair(dir: &Path, name: &str) -> (String, String) {
    let path = dir.join(name);
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "", "-f"])
        .arg(&path);
    assert!(run(cmd).status.success(), "ssh-keygen runs");
    (
        fs_err::read_to_string(&path).expect("private key"),
        fs_err::read_to_string(path.with_extension("pub")).expect("public key"),
    )
}

#[test]
fn fake_source_controller_fetches_over_ssh_and_with_a_bearer_token() {
    let plane = ControlPlane::shared();
    let server = GitServer::shared();
    install_flux_crds(plane);
    let namespace = new_namespace(plane, "flux-ssh");
    let _controllers = fake_controllers(plane);
    let (repo, sha) = seed_repo(server);
    let revision = format!("main@sha1:{sha}");
    let keys = tempfile::tempdir().expect("temp dir");
    let (identity, public) = ssh_keypair(keys.path(), "deploy");
    server.add_ssh_key(&public);
    let (_, other_host_key) = ssh_keypair(keys.path(), "other-host");
    let wrong_known_hosts = format!(
        "[127.0.0.1]:{} {}",
        server.ssh_host().rsplit(':').next().expect("host:port"),
        other_host_key.trim()
    );
    let ca = fs_err::read_to_string(server.ca_file()).expect("the CA file is readable");
    for (name, data, url) in [
        (
            "ssh",
            json!({"identity": identity, "identity.pub": public, "known_hosts": server.ssh_known_hosts()}),
            &repo.ssh_url,
        ),
        (
            "ssh-wrong-host",
            json!({"identity": identity, "identity.pub": public, "known_hosts": wrong_known_hosts}),
            &repo.ssh_url,
        ),
        (
            "bearer",
            json!({"bearerToken": server.bearer_token(), "ca.crt": ca}),
            &repo.https_url,
        ),
    ] {
        apply(
            plane,
            &json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "stringData": data,
            })
            .to_string(),
        );
        apply(plane, &git_repository(&namespace, name, url, name));
    }
    for name in ["ssh", "bearer"] {
        let artifact = wait_for(
            plane,
            &["get", &format!("gitrepository/{name}"), "-n", &namespace],
            |o| (ready_condition(o)?.0 == "True").then(|| o["status"]["artifact"].clone()),
        );
        assert_eq!(artifact["revision"], revision.as_str(), "{name}");
    }
    let (_, message) = wait_for(
        plane,
        &["get", "gitrepository/ssh-wrong-host", "-n", &namespace],
        |o| ready_condition(o).filter(|(status, _)| status == "False"),
    );
    assert!(
        message.contains("Host key verification failed"),
        "{message}"
    );
    assert!(!message.contains("PRIVATE KEY"), "{message}");
}
