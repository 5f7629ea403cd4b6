//! Fake kubelet and Flux controllers, so the plugin's readiness waits behave like on a real
//! cluster while the tests run only kube-apiserver + etcd.
//!
//! - Deployments become Available (the status kstatus calls Current, test-infra §4.1), and
//!   are re-patched whenever their generation changes.
//! - A `GitRepository` becomes Ready at `<branch>@sha1:<sha>` only after the real `git` CLI
//!   fetched that revision with the credentials of the Secret in `spec.secretRef` (or the
//!   workload-identity token for `spec.provider: azure`); otherwise Ready=False with git's
//!   error, so a wrong Secret fails the plugin's wait exactly as with real Flux.
//! - A `Kustomization` becomes Ready at its `GitRepository`'s revision once `spec.path` exists
//!   in that revision.
//! - `reconcile.fluxcd.io/requestedAt` is copied to `status.lastHandledReconcileAt`.
//!
//! Their "system trust store" is the CA of [`crate::GitServer::shared`]: an HTTPS source on
//! 127.0.0.1 without `ca.crt` trusts it, as a real cluster trusts dev.azure.com's CA.
//! Several instances may run against one cluster (one per test): they agree on every
//! status, except that an instance without `azure_token` leaves `provider: azure` sources
//! whose `ServiceAccount` has the client-id annotation to one that has a token.
//!
//! They are kube-rs controllers on the harness runtime; the Flux watchers retry until the
//! Flux CRDs exist.

mod flux;
mod git;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::utils::Backoff;
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt as _};

use crate::control_plane::runtime;

/// Where the fake controllers connect and how they authenticate to Azure.
#[derive(Clone, Debug, Default)]
pub struct FakeControllerOptions {
    /// The kubeconfig to use, e.g. [`crate::ControlPlane::kubeconfig`].
    pub kubeconfig: PathBuf,
    /// The context in `kubeconfig`; it needs cluster-admin rights.
    pub context: String,
    /// Bearer token the fake source-controller uses for `spec.provider: azure`
    /// `GitRepositories` (stands in for workload identity); only honoured when the
    /// source-controller `ServiceAccount` carries the `azure.workload.identity/client-id`
    /// annotation.
    pub azure_token: Option<String>,
}

/// Running fake controllers; they stop when this is dropped.
pub struct FakeControllers {
    task: tokio::task::AbortHandle,
    _work_dir: tempfile::TempDir,
}

impl FakeControllers {
    /// Starts the fake Deployment, `GitRepository` and Kustomization controllers.
    ///
    /// Panics when the kubeconfig or context cannot be loaded.
    pub fn start(opts: FakeControllerOptions) -> FakeControllers {
        remove_stale_work_dirs();
        let work_dir = tempfile::Builder::new()
            .prefix(&format!("{WORK_DIR_PREFIX}{}-", std::process::id()))
            .tempdir()
            .expect("creating a temporary directory succeeds");
        let (kubeconfig, context) = (opts.kubeconfig.clone(), opts.context.clone());
        let client = runtime::block_on(async move { runtime::client(&kubeconfig, &context).await })
            .unwrap_or_else(|e| panic!("fake controllers cannot connect: {e}"));
        let ctx = Arc::new(Ctx {
            client,
            repos: work_dir.path().to_owned(),
            azure_token: opts.azure_token,
            memo: Mutex::default(),
        });
        let task = runtime::runtime().spawn(run(ctx)).abort_handle();
        FakeControllers {
            task,
            _work_dir: work_dir,
        }
    }
}

impl Drop for FakeControllers {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Work directories are `<tmp>/<prefix><pid>-<random>`; shared instances are never dropped.
const WORK_DIR_PREFIX: &str = "fluxbootstrap-fake-controllers-";

/// Removes the work directories of processes that no longer exist.
fn remove_stale_work_dirs() {
    let Ok(entries) = fs_err::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(WORK_DIR_PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new("/proc").join(pid).exists() {
            let _ = fs_err::remove_dir_all(entry.path());
        }
    }
}

/// State shared by the reconcilers.
struct Ctx {
    client: kube::Client,
    /// Bare repositories the fake source-controller fetches into, one per `GitRepository` uid.
    repos: PathBuf,
    azure_token: Option<String>,
    /// The last fetch per `GitRepository`, so status writes do not trigger refetch loops.
    memo: Mutex<flux::Memo>,
}

/// A reconcile failure (e.g. the apiserver refused a status patch); retried shortly.
#[derive(Debug)]
struct ReconcileError(String);

impl std::fmt::Display for ReconcileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReconcileError {}

impl From<kube::Error> for ReconcileError {
    fn from(error: kube::Error) -> Self {
        ReconcileError(error.to_string())
    }
}

fn retry_soon<K>(_: Arc<K>, _: &ReconcileError, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_secs(1))
}

/// Retries failed watches every second: the Flux CRDs may appear at any time, and a test
/// should not wait for an exponential backoff to run out.
struct EverySecond;

impl Iterator for EverySecond {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }
}

impl Backoff for EverySecond {
    fn reset(&mut self) {}
}

async fn run(ctx: Arc<Ctx>) {
    let deployments = Controller::new(
        Api::<Deployment>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
    .trigger_backoff(EverySecond)
    .run(reconcile_deployment, retry_soon, ctx.clone())
    .for_each(|_| async {});
    let git_repositories = flux::git_repository_controller(ctx.clone()).for_each(|_| async {});
    let kustomizations = flux::kustomization_controller(ctx).for_each(|_| async {});
    futures::join!(deployments, git_repositories, kustomizations);
}

async fn reconcile_deployment(
    deployment: Arc<Deployment>,
    ctx: Arc<Ctx>,
) -> Result<Action, ReconcileError> {
    if deployment.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let generation = deployment.metadata.generation;
    let replicas = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let available = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Available" && c.status == "True");
    if status.observed_generation == generation
        && status.replicas == Some(replicas)
        && status.available_replicas == Some(replicas)
        && available
    {
        return Ok(Action::await_change());
    }
    let now = flux::now();
    let condition = |type_: &str, reason: &str| {
        serde_json::json!({"type": type_, "status": "True", "reason": reason, "message": "ok",
            "lastUpdateTime": now, "lastTransitionTime": now})
    };
    let patch = serde_json::json!({"status": {
        "observedGeneration": generation,
        "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [
            condition("Available", "MinimumReplicasAvailable"),
            condition("Progressing", "NewReplicaSetAvailable"),
        ],
    }});
    let namespace = deployment.namespace().unwrap_or_default();
    Api::<Deployment>::namespaced(ctx.client.clone(), &namespace)
        .patch_status(
            &deployment.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(Action::await_change())
}
