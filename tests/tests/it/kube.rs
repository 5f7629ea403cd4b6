//! The control plane behaves like a real cluster for the real kubectl: admin and non-admin
//! users, two independent clusters, the real version, and, with workloads, Deployments whose
//! Pods the real scheduler binds and the process kubelet runs.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fluxbootstrap_test::{ControlPlane, Workloads};
use serde_json::{Value, json};

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

fn new_namespace(plane: &ControlPlane, prefix: &str) -> String {
    let namespace = plane.unique_name(prefix);
    kubectl_ok(plane, &["create", "namespace", &namespace]);
    namespace
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

/// The process kubelet with the real kube-controller-manager and kube-scheduler: a
/// Deployment of a Flux image the harness runs without a process becomes Available through
/// the real deployment controller, and an image it cannot run waits with `ErrImagePull`.
#[test]
fn the_kubelet_runs_pods_the_scheduler_binds() {
    let plane = ControlPlane::start_with_workloads(&Workloads::default());
    let deployment = |name: &str, image: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: main\n        image: {image}\n"
        )
    };
    apply(
        &plane,
        &deployment("helm", "ghcr.io/fluxcd/helm-controller:v1.6.3"),
    );
    apply(&plane, &deployment("other", "docker.io/library/busybox:1"));
    let available = wait_for(
        &plane,
        &["-n", "default", "get", "deployment", "helm"],
        |d| {
            let conditions = d["status"]["conditions"].as_array()?;
            conditions
                .iter()
                .any(|c| c["type"] == "Available" && c["status"] == "True")
                .then_some(d["status"]["availableReplicas"].clone())
        },
    );
    assert_eq!(available, json!(1));
    let reason = wait_for(
        &plane,
        &["-n", "default", "get", "pods", "-l", "app=other"],
        |pods| {
            pods["items"][0]["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                .as_str()
                .filter(|r| *r == "ErrImagePull")
                .map(str::to_owned)
        },
    );
    assert_eq!(reason, "ErrImagePull");
    let node = get_json(&plane, &["get", "pods", "-n", "default", "-l", "app=helm"]);
    assert_eq!(
        node["items"][0]["spec"]["nodeName"], "node-admin",
        "the scheduler bound it"
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
