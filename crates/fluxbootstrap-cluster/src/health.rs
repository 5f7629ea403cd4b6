//! `check` and `version`: the state of an installed Flux, read from the part-of=flux labels
//! like `flux check` does (component Deployments and CRDs) and the version label on the
//! `GitRepository` CRD like `flux version` does.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams};

use crate::connect::Cluster;
use crate::error::ClusterError;
use crate::preflight::GITREPOSITORY_CRD;
use crate::readiness;
use crate::watch::{Step, condition};

/// The label selector of every Flux object.
pub const PART_OF_FLUX: &str = "app.kubernetes.io/part-of=flux";

/// Result of [`Cluster::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// The installed version (`GitRepository` CRD label), if Flux is installed.
    pub version: Option<String>,
    /// Component Deployments in the Flux namespace.
    pub components: Vec<ComponentHealth>,
    /// Flux CRDs.
    pub crds: Vec<CrdHealth>,
}

impl HealthReport {
    /// Whether Flux is installed and every component and CRD is healthy.
    pub fn is_healthy(&self) -> bool {
        !self.components.is_empty()
            && self.components.iter().all(|c| c.ready)
            && self.crds.iter().all(|c| c.established)
    }
}

/// One component Deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentHealth {
    /// Deployment name, e.g. `source-controller`.
    pub name: String,
    /// kstatus Current.
    pub ready: bool,
    /// Why not, when not ready.
    pub message: Option<String>,
    /// Container images, for display.
    pub images: Vec<String>,
}

/// One Flux CRD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrdHealth {
    /// CRD name.
    pub name: String,
    /// Established with names accepted.
    pub established: bool,
    /// Stored versions (`status.storedVersions`).
    pub stored_versions: Vec<String>,
}

impl Cluster {
    /// The Flux version installed, from the `app.kubernetes.io/version` label of the
    /// `GitRepository` CRD; `None` when Flux is not installed.
    pub async fn flux_version(&self) -> Result<Option<String>, ClusterError> {
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let crd = crds
            .get_metadata_opt(GITREPOSITORY_CRD)
            .await
            .map_err(self.api_err(format!(
                "get CustomResourceDefinition `{GITREPOSITORY_CRD}`"
            )))?;
        Ok(crd.and_then(|c| c.metadata.labels?.remove("app.kubernetes.io/version")))
    }

    /// Health of the Flux install in namespace `ns`.
    pub async fn check(&self, ns: &str) -> Result<HealthReport, ClusterError> {
        let lp = ListParams::default().labels(PART_OF_FLUX);
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let (deployments, crds, version) =
            futures::join!(deployments.list(&lp), crds.list(&lp), self.flux_version());
        let deployments =
            deployments.map_err(self.api_err(format!("list Deployments in `{ns}`")))?;
        let crds = crds.map_err(self.api_err("list CustomResourceDefinitions"))?;
        let components = deployments
            .items
            .into_iter()
            .map(|d| {
                let images = d
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.spec.as_ref())
                    .map(|p| {
                        p.containers
                            .iter()
                            .filter_map(|c| c.image.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                let name = d.metadata.name.clone().unwrap_or_default();
                let step = readiness::deployment(&serde_json::to_value(&d).unwrap_or_default());
                let (ready, message) = match step {
                    Step::Done => (true, None),
                    Step::Pending(m) | Step::Failed(m) => (false, Some(m)),
                };
                ComponentHealth {
                    name,
                    ready,
                    message,
                    images,
                }
            })
            .collect();
        let crds = crds
            .items
            .into_iter()
            .map(|c| {
                let value = serde_json::to_value(&c).unwrap_or_default();
                let ok = |t: &str| matches!(condition(&value, t), Some(("True", ..)));
                CrdHealth {
                    name: c.metadata.name.clone().unwrap_or_default(),
                    established: ok("Established") && ok("NamesAccepted"),
                    stored_versions: c.status.and_then(|s| s.stored_versions).unwrap_or_default(),
                }
            })
            .collect();
        Ok(HealthReport {
            version: version?,
            components,
            crds,
        })
    }
}
