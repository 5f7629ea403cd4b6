//! Readiness waits: the test plays the controllers by writing status subresources.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use fluxbootstrap_cluster::{
    ApplyOptions, ClusterError, NoReporter, WaitReporter, WaitSpec, WaitTarget,
};
use serde_json::{Value, json};

use crate::{connect, deployment, namespace, patch_status, raw_client, rt, shared_with_flux_crds};

const REVISION: &str = "main@sha1:0123456789abcdef0123456789abcdef01234567";

fn git_repository(ns: &str) -> Value {
    json!({"apiVersion":"source.toolkit.fluxcd.io/v1","kind":"GitRepository","metadata":{"name":ns,"namespace":ns},
        "spec":{"interval":"1m","url":"https://127.0.0.1:1/org/project/_git/repo","ref":{"branch":"main"},
            "secretRef":{"name":"flux-system"}}})
}

fn kustomization(ns: &str, path: &str) -> Value {
    json!({"apiVersion":"kustomize.toolkit.fluxcd.io/v1","kind":"Kustomization","metadata":{"name":ns,"namespace":ns},
        "spec":{"interval":"10m","path":path,"prune":true,"sourceRef":{"kind":"GitRepository","name":ns}}})
}

fn ready(status: &str, message: &str) -> Value {
    json!([{"type":"Ready","status":status,"reason":"Tested","message":message,"lastTransitionTime":"2026-01-01T00:00:00Z"}])
}

fn repo_status(status: &str, message: &str) -> Value {
    json!({"observedGeneration":1,"conditions":ready(status, message),
        "artifact":{"path":"p","url":"http://x/p","revision":REVISION,"digest":"sha256:00","lastUpdateTime":"2026-01-01T00:00:00Z"}})
}

fn available() -> Value {
    json!({"observedGeneration":1,"replicas":1,"updatedReplicas":1,"readyReplicas":1,"availableReplicas":1,
        "conditions":[
            {"type":"Available","status":"True","reason":"MinimumReplicasAvailable","message":"ok"},
            {"type":"Progressing","status":"True","reason":"NewReplicaSetAvailable","message":"ok"}]})
}

fn spec(ns: &str, timeout: Duration) -> WaitSpec {
    WaitSpec {
        namespace: ns.to_owned(),
        deployments: vec!["source-controller".to_owned()],
        git_repository: Some(ns.to_owned()),
        kustomization: Some(ns.to_owned()),
        revision: Some(REVISION.to_owned()),
        reconcile_requested_at: None,
        timeout,
    }
}

/// Records reporter calls.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl WaitReporter for Recorder {
    fn ready(&self, target: &WaitTarget) {
        self.0.lock().unwrap().push(format!("ready {target}"));
    }
    fn failed(&self, target: &WaitTarget, message: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("failed {target}: {message}"));
    }
}

#[test]
fn a_ready_install_is_detected_as_soon_as_the_controllers_report() {
    let cp = shared_with_flux_crds();
    let ns = cp.unique_name("ready");
    rt().block_on(async {
        let cluster = connect(cp, cp.admin_context()).await;
        let client = raw_client(cp, cp.admin_context()).await;
        let objects = vec![namespace(&ns), deployment(&ns, "source-controller"), git_repository(&ns), kustomization(&ns, "./clusters/a")];
        cluster.apply(objects, &ApplyOptions::default(), &NoReporter).await.unwrap();

        let (c2, n2) = (client.clone(), ns.clone());
        let controllers = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            patch_status(&c2, "apps/v1", "Deployment", "deployments", &n2, "source-controller", available()).await;
            patch_status(&c2, "source.toolkit.fluxcd.io/v1", "GitRepository", "gitrepositories", &n2, &n2, repo_status("True", "stored")).await;
            let k = json!({"observedGeneration":1,"lastAttemptedRevision":REVISION,"lastAppliedRevision":REVISION,"conditions":ready("True","Applied")});
            patch_status(&c2, "kustomize.toolkit.fluxcd.io/v1", "Kustomization", "kustomizations", &n2, &n2, k).await;
            Instant::now()
        });
        let recorder = Recorder::default();
        cluster.wait_ready(&spec(&ns, Duration::from_mins(1)), &recorder).await.unwrap();
        let done = Instant::now();
        let last_write = controllers.await.unwrap();
        let lag = done.duration_since(last_write);
        assert!(lag < Duration::from_secs(2), "detected {lag:?} after the last status write (watch, not poll)");
        let mut calls = recorder.0.into_inner().unwrap();
        calls.sort();
        assert_eq!(
            calls,
            [
                "ready Deployment/source-controller".to_owned(),
                format!("ready GitRepository/{ns}"),
                format!("ready Kustomization/{ns}"),
            ]
        );
        let info = cluster.kustomization(&ns, &ns).await.unwrap().unwrap();
        assert_eq!(info.path, "./clusters/a");
        assert_eq!(info.last_applied_revision.as_deref(), Some(REVISION));
        assert_eq!(info.source_name.as_deref(), Some(ns.as_str()));
    });
}

#[test]
fn ready_false_fails_fast_with_the_controllers_message() {
    let cp = shared_with_flux_crds();
    let ns = cp.unique_name("notready");
    rt().block_on(async {
        let cluster = connect(cp, cp.admin_context()).await;
        let client = raw_client(cp, cp.admin_context()).await;
        cluster
            .apply(
                vec![namespace(&ns), git_repository(&ns)],
                &ApplyOptions::default(),
                &NoReporter,
            )
            .await
            .unwrap();
        let message = "failed to checkout and determine revision: authentication required";
        patch_status(
            &client,
            "source.toolkit.fluxcd.io/v1",
            "GitRepository",
            "gitrepositories",
            &ns,
            &ns,
            repo_status("False", message),
        )
        .await;
        let start = Instant::now();
        let spec = WaitSpec {
            deployments: vec![],
            kustomization: None,
            ..spec(&ns, Duration::from_mins(2))
        };
        let err = cluster.wait_ready(&spec, &NoReporter).await.unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "failed fast, not at the timeout"
        );
        assert_eq!(
            err.to_string(),
            format!("GitRepository `{ns}/{ns}` is not ready: {message}")
        );
        assert!(matches!(err, ClusterError::NotReady { .. }));
    });
}

#[test]
fn a_suspended_object_fails_fast() {
    let cp = shared_with_flux_crds();
    let ns = cp.unique_name("suspended");
    rt().block_on(async {
        let cluster = connect(cp, cp.admin_context()).await;
        let mut k = kustomization(&ns, "./x");
        k["spec"]["suspend"] = json!(true);
        cluster
            .apply(
                vec![namespace(&ns), k],
                &ApplyOptions::default(),
                &NoReporter,
            )
            .await
            .unwrap();
        let spec = WaitSpec {
            deployments: vec![],
            git_repository: None,
            ..spec(&ns, Duration::from_mins(2))
        };
        let err = cluster.wait_ready(&spec, &NoReporter).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Kustomization `{ns}/{ns}` is suspended")
        );
        assert_eq!(
            err.hint().unwrap(),
            format!("resume it with `flux resume kustomization {ns} -n {ns}`")
        );
    });
}

#[test]
fn a_timeout_names_what_is_still_pending() {
    let cp = ControlPlane::shared();
    let ns = cp.unique_name("timeout");
    rt().block_on(async {
        let cluster = connect(cp, cp.admin_context()).await;
        cluster.apply(vec![namespace(&ns), deployment(&ns, "source-controller")], &ApplyOptions::default(), &NoReporter).await.unwrap();
        let spec = WaitSpec { git_repository: None, kustomization: None, ..spec(&ns, Duration::from_secs(2)) };
        let recorder = Recorder::default();
        let err = cluster.wait_ready(&spec, &recorder).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "Timed out after 2s waiting for Deployment/source-controller (waiting for the rollout to be observed)"
        );
        assert_eq!(recorder.0.into_inner().unwrap(), ["failed Deployment/source-controller: not ready"]);
    });
}

use fluxbootstrap_test::ControlPlane;

#[test]
fn a_requested_reconcile_is_waited_for() {
    let cp = shared_with_flux_crds();
    let ns = cp.unique_name("reconcile");
    rt().block_on(async {
        let cluster = connect(cp, cp.admin_context()).await;
        let client = raw_client(cp, cp.admin_context()).await;
        cluster
            .apply(
                vec![namespace(&ns), git_repository(&ns)],
                &ApplyOptions::default(),
                &NoReporter,
            )
            .await
            .unwrap();
        patch_status(
            &client,
            "source.toolkit.fluxcd.io/v1",
            "GitRepository",
            "gitrepositories",
            &ns,
            &ns,
            repo_status("True", "stored"),
        )
        .await;
        let token = cluster
            .request_reconcile(&ns, "GitRepository", &ns)
            .await
            .unwrap();
        let repo = crate::api(
            &client,
            "source.toolkit.fluxcd.io/v1",
            "GitRepository",
            "gitrepositories",
            Some(&ns),
        )
        .get(&ns)
        .await
        .unwrap();
        assert_eq!(
            repo.metadata.annotations.unwrap()["reconcile.fluxcd.io/requestedAt"],
            token
        );

        let spec = WaitSpec {
            deployments: vec![],
            kustomization: None,
            reconcile_requested_at: Some(token.clone()),
            ..spec(&ns, Duration::from_mins(1))
        };
        let (c2, n2, t2) = (client.clone(), ns.clone(), token.clone());
        let controller = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            patch_status(
                &c2,
                "source.toolkit.fluxcd.io/v1",
                "GitRepository",
                "gitrepositories",
                &n2,
                &n2,
                json!({"lastHandledReconcileAt": t2}),
            )
            .await;
        });
        cluster.wait_ready(&spec, &NoReporter).await.unwrap();
        controller.await.unwrap();

        let err = cluster
            .request_reconcile(&ns, "Gadget", &ns)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "Unknown Flux kind `Gadget`");
    });
}
