//! Everything kubectl-fluxbootstrap says to Kubernetes, and the only crate that depends on
//! `kube`.
//!
//! [`Cluster::connect`] loads the kubeconfig like kubectl; then [`Cluster::preflight`],
//! [`Cluster::apply`] (staged server-side apply, field manager `flux`, dry-run diff first),
//! [`Cluster::reconcile_secret`], [`Cluster::wait_ready`] (watches, fail fast),
//! [`Cluster::check`] and [`Cluster::uninstall`] do what `flux bootstrap`, `flux check` and
//! `flux uninstall` do. Progress goes through the `*Reporter` traits; nothing here prints.
//!
//! ```no_run
//! # async fn demo(objects: Vec<serde_json::Value>) -> Result<(), fluxbootstrap_cluster::`ClusterError`> {
//! use fluxbootstrap_cluster::{`ApplyOptions`, Cluster, `KubeOptions`, `NoReporter`};
//! let cluster = Cluster::connect(&`KubeOptions`::default()).await?;
//! let report = cluster.apply(objects, &`ApplyOptions`::default(), &`NoReporter`).await?;
//! println!("{} created", report.count(fluxbootstrap_cluster::Change::Created));
//! # Ok(()) }
//! ```

mod apply;
mod connect;
mod diff;
mod error;
mod health;
mod object;
mod preflight;
mod readiness;
mod secret;
mod uninstall;
mod wait;
mod watch;

pub use apply::{
    ApplyEntry, ApplyOptions, ApplyReport, ApplyReporter, ApplyStage, FIELD_MANAGER, NoReporter,
};
pub use connect::{
    Cluster, KubeContexts, KubeOptions, KubeOverrides, context_namespace, kubeconfig_contexts,
};
pub use error::ClusterError;
pub use health::{ComponentHealth, CrdHealth, HealthReport, PART_OF_FLUX};
pub use object::{Change, ObjectRef};
pub use preflight::{
    ExistingInstall, GITREPOSITORY_CRD, MIN_KUBERNETES, PreflightReport, PreflightRequest,
    normalize_path,
};
pub use secret::DOCKER_CONFIG_JSON;
pub use uninstall::{UninstallOptions, UninstallReport, UninstallReporter};
pub use wait::{
    GitRepositorySource, KustomizationInfo, RECONCILE_ANNOTATION, WaitReporter, WaitSpec,
    WaitTarget,
};

/// The advice for `err` when it is one of this crate's errors, else `None`. The binary's error
/// report asks each crate through this one function, so a new error type here is listed here
/// and nowhere else.
#[must_use]
pub fn hint_for(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(err) = err.downcast_ref::<ClusterError>() {
        return err.hint();
    }
    None
}
