//! Waiting for a bootstrap to take effect (components available, `GitRepository` and
//! Kustomization Ready at the pushed revision), reading the Kustomization, and asking Flux to
//! reconcile now.

use std::fmt;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::discovery::Scope;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::connect::{Cluster, FixedResource, GIT_REPOSITORY, KUSTOMIZATION};
use crate::error::{ClusterError, is_status};
use crate::readiness::{self, SUSPENDED};
use crate::watch::{Step, WatchEnd, watch_until};

/// What [`Cluster::wait_ready`] waits for, under one overall timeout.
#[derive(Debug, Clone)]
pub struct WaitSpec {
    /// The Flux namespace.
    pub namespace: String,
    /// Component Deployments (e.g. `source-controller`) that must be available.
    pub deployments: Vec<String>,
    /// `GitRepository` that must be Ready (at `revision`, if given).
    pub git_repository: Option<String>,
    /// Kustomization that must be Ready (with lastAttemptedRevision = `revision`, if given).
    pub kustomization: Option<String>,
    /// Expected revision, `<branch>@sha1:<sha>`.
    pub revision: Option<String>,
    /// When set (the value [`Cluster::request_reconcile`] returned), Flux objects count only
    /// once their `status.lastHandledReconcileAt` equals it, so a stale status is not trusted.
    pub reconcile_requested_at: Option<String>,
    /// Overall timeout.
    pub timeout: Duration,
}

/// One thing being waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitTarget {
    /// A component Deployment.
    Deployment(String),
    /// The `GitRepository`.
    GitRepository(String),
    /// The Kustomization.
    Kustomization(String),
}

impl fmt::Display for WaitTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Deployment(n) => write!(f, "Deployment/{n}"),
            Self::GitRepository(n) => write!(f, "GitRepository/{n}"),
            Self::Kustomization(n) => write!(f, "Kustomization/{n}"),
        }
    }
}

/// Progress of [`Cluster::wait_ready`]; every method has an empty default.
pub trait WaitReporter: Sync {
    /// Started waiting for `target`.
    fn waiting(&self, target: &WaitTarget) {
        let _ = target;
    }
    /// `target` is ready.
    fn ready(&self, target: &WaitTarget) {
        let _ = target;
    }
    /// `target` failed or timed out, with the reason.
    fn failed(&self, target: &WaitTarget, message: &str) {
        let _ = (target, message);
    }
}

impl WaitReporter for crate::apply::NoReporter {}

/// What bootstrap needs from an existing Kustomization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KustomizationInfo {
    /// `spec.path`.
    pub path: String,
    /// `status.lastAppliedRevision`, if any.
    pub last_applied_revision: Option<String>,
    /// `spec.sourceRef.name`.
    pub source_name: Option<String>,
}

const DEPLOYMENTS: FixedResource = FixedResource {
    group: "apps",
    version: "v1",
    kind: "Deployment",
    plural: "deployments",
    scope: Scope::Namespaced,
};

/// The Flux kinds [`Cluster::request_reconcile`] knows.
const FLUX_KINDS: &[FixedResource] = &[
    GIT_REPOSITORY,
    KUSTOMIZATION,
    FixedResource {
        group: "source.toolkit.fluxcd.io",
        version: "v1",
        kind: "OCIRepository",
        plural: "ocirepositories",
        scope: Scope::Namespaced,
    },
    FixedResource {
        group: "source.toolkit.fluxcd.io",
        version: "v1",
        kind: "HelmRepository",
        plural: "helmrepositories",
        scope: Scope::Namespaced,
    },
    FixedResource {
        group: "helm.toolkit.fluxcd.io",
        version: "v2",
        kind: "HelmRelease",
        plural: "helmreleases",
        scope: Scope::Namespaced,
    },
];

/// The annotation Flux controllers watch to reconcile on demand.
pub const RECONCILE_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";

impl Cluster {
    /// Waits, with watches, until everything in `spec` is ready; fails fast on `Ready=False`,
    /// a suspended object or a Deployment past its progress deadline.
    pub async fn wait_ready(
        &self,
        spec: &WaitSpec,
        reporter: &dyn WaitReporter,
    ) -> Result<(), ClusterError> {
        let deadline = Instant::now() + spec.timeout;
        let mut waits = Vec::new();
        if let Some(name) = &spec.git_repository {
            waits.push(self.wait_flux(
                spec,
                deadline,
                WaitTarget::GitRepository(name.clone()),
                reporter,
            ));
        }
        if let Some(name) = &spec.kustomization {
            waits.push(self.wait_flux(
                spec,
                deadline,
                WaitTarget::Kustomization(name.clone()),
                reporter,
            ));
        }
        let flux = futures::future::try_join_all(waits);
        let deployments = self.wait_deployments(spec, deadline, reporter);
        futures::future::try_join(flux, deployments)
            .await
            .map(|_| ())
    }

    async fn wait_flux(
        &self,
        spec: &WaitSpec,
        deadline: Instant,
        target: WaitTarget,
        reporter: &dyn WaitReporter,
    ) -> Result<(), ClusterError> {
        let (fixed, name, pointer) = match &target {
            WaitTarget::GitRepository(n) => (&GIT_REPOSITORY, n, "/status/artifact/revision"),
            WaitTarget::Kustomization(n) => (&KUSTOMIZATION, n, "/status/lastAttemptedRevision"),
            WaitTarget::Deployment(_) => {
                unreachable!("deployments are waited for in wait_deployments")
            }
        };
        reporter.waiting(&target);
        let api = self.fixed_api(fixed, Some(&spec.namespace));
        let fields = format!("metadata.name={name}");
        let end = watch_until(
            &api,
            Some(&fields),
            deadline,
            self.request_timeout,
            |objects| match objects.get(name) {
                None => Step::Pending("not found".to_owned()),
                Some(obj) => readiness::flux_object(
                    obj,
                    pointer,
                    spec.revision.as_deref(),
                    spec.reconcile_requested_at.as_deref(),
                ),
            },
        )
        .await;
        let (kind, namespace, name) = (fixed.kind.to_owned(), spec.namespace.clone(), name.clone());
        match end {
            WatchEnd::Done => {
                reporter.ready(&target);
                Ok(())
            }
            WatchEnd::Failed(m) if m == SUSPENDED => {
                reporter.failed(&target, "suspended");
                Err(ClusterError::Suspended {
                    kind,
                    namespace,
                    name,
                })
            }
            WatchEnd::Failed(message) => {
                reporter.failed(&target, &message);
                Err(ClusterError::NotReady {
                    kind,
                    namespace,
                    name,
                    message,
                })
            }
            WatchEnd::TimedOut(last) => {
                reporter.failed(&target, &last);
                Err(ClusterError::WaitTimeout {
                    pending: format!("{target} ({last})"),
                    timeout: spec.timeout,
                })
            }
        }
    }

    async fn wait_deployments(
        &self,
        spec: &WaitSpec,
        deadline: Instant,
        reporter: &dyn WaitReporter,
    ) -> Result<(), ClusterError> {
        if spec.deployments.is_empty() {
            return Ok(());
        }
        for name in &spec.deployments {
            reporter.waiting(&WaitTarget::Deployment(name.clone()));
        }
        let api = self.fixed_api(&DEPLOYMENTS, Some(&spec.namespace));
        let mut reported = std::collections::HashSet::new();
        let mut failed: Option<(String, String)> = None;
        let end = watch_until(&api, None, deadline, self.request_timeout, |objects| {
            let mut pending = Vec::new();
            for name in &spec.deployments {
                let step = objects.get(name).map_or_else(
                    || Step::Pending("not found".to_owned()),
                    readiness::deployment,
                );
                match step {
                    Step::Done => {
                        if reported.insert(name.clone()) {
                            reporter.ready(&WaitTarget::Deployment(name.clone()));
                        }
                    }
                    Step::Pending(m) => pending.push(format!("Deployment/{name} ({m})")),
                    Step::Failed(m) => {
                        failed = Some((name.clone(), m.clone()));
                        return Step::Failed(m);
                    }
                }
            }
            if pending.is_empty() {
                Step::Done
            } else {
                Step::Pending(pending.join(", "))
            }
        })
        .await;
        match end {
            WatchEnd::Done => Ok(()),
            WatchEnd::Failed(message) => {
                let name = failed.map(|(n, _)| n).unwrap_or_default();
                reporter.failed(&WaitTarget::Deployment(name.clone()), &message);
                Err(ClusterError::NotReady {
                    kind: "Deployment".to_owned(),
                    namespace: spec.namespace.clone(),
                    name,
                    message,
                })
            }
            WatchEnd::TimedOut(pending) => {
                for name in spec.deployments.iter().filter(|n| !reported.contains(*n)) {
                    reporter.failed(&WaitTarget::Deployment(name.clone()), "not ready");
                }
                Err(ClusterError::WaitTimeout {
                    pending,
                    timeout: spec.timeout,
                })
            }
        }
    }

    /// The Kustomization `ns/name`, or `None` if it (or its CRD) does not exist.
    pub async fn kustomization(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<KustomizationInfo>, ClusterError> {
        let api = self.fixed_api(&KUSTOMIZATION, Some(ns));
        // Without the CRD the apiserver answers a bare `404 page not found`, which `get_opt`
        // does not recognise as NotFound; any 404 means "no Kustomization" here.
        let obj = match api.get(name).await {
            Ok(obj) => obj,
            Err(err) if is_status(&err, 404) => return Ok(None),
            Err(err) => {
                return Err(self.api_err(format!("get Kustomization `{ns}/{name}`"))(
                    err,
                ));
            }
        };
        let obj = serde_json::to_value(obj).unwrap_or_default();
        let text = |p: &str| {
            obj.pointer(p)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Ok(Some(KustomizationInfo {
            path: text("/spec/path").unwrap_or_default(),
            last_applied_revision: text("/status/lastAppliedRevision"),
            source_name: text("/spec/sourceRef/name"),
        }))
    }

    /// The URL a `GitRepository` clones and the Secret it authenticates with
    /// (`spec.secretRef.name`, `None` for none, as with the Azure provider); `None` when
    /// there is no such `GitRepository`.
    pub async fn git_repository_source(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<GitRepositorySource>, ClusterError> {
        let api = self.fixed_api(&GIT_REPOSITORY, Some(ns));
        let obj = match api.get(name).await {
            Ok(obj) => obj,
            Err(err) if is_status(&err, 404) => return Ok(None),
            Err(err) => {
                return Err(self.api_err(format!("get GitRepository `{ns}/{name}`"))(
                    err,
                ));
            }
        };
        let obj = serde_json::to_value(obj).unwrap_or_default();
        let text = |pointer: &str| {
            obj.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Ok(Some(GitRepositorySource {
            url: text("/spec/url").unwrap_or_default(),
            secret_name: text("/spec/secretRef/name"),
        }))
    }

    /// Sets `reconcile.fluxcd.io/requestedAt` on a Flux object (kind like `GitRepository`)
    /// and returns the value, to pass as [`WaitSpec::reconcile_requested_at`].
    pub async fn request_reconcile(
        &self,
        ns: &str,
        kind: &str,
        name: &str,
    ) -> Result<String, ClusterError> {
        let fixed = FLUX_KINDS
            .iter()
            .find(|k| k.kind.eq_ignore_ascii_case(kind))
            .ok_or_else(|| ClusterError::UnknownFluxKind {
                kind: kind.to_owned(),
            })?;
        let token = k8s_openapi::jiff::Timestamp::now().to_string();
        let patch = json!({"metadata": {"annotations": {RECONCILE_ANNOTATION: token}}});
        self.fixed_api(fixed, Some(ns))
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(self.api_err(format!("annotate {}/{ns}/{name}", fixed.kind)))?;
        Ok(token)
    }
}

/// Where a `GitRepository` clones from, and with which Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRepositorySource {
    /// `spec.url`.
    pub url: String,
    /// `spec.secretRef.name`.
    pub secret_name: Option<String>,
}
