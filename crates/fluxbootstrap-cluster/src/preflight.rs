//! Checks before bootstrap writes anything: Kubernetes version, cluster-admin rights, an
//! existing Flux installed by another tool, and a Kustomization syncing another path.
//!
//! Each failure is one [`ClusterError`] with a hint, so nothing is half-applied.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

use crate::connect::Cluster;
use crate::error::ClusterError;

/// Flux 2.9 supports Kubernetes 1.33 and newer.
pub const MIN_KUBERNETES: (u32, u32) = (1, 33);

/// The CRD whose labels describe an existing Flux install.
pub const GITREPOSITORY_CRD: &str = "gitrepositories.source.toolkit.fluxcd.io";

/// Input of [`Cluster::preflight`].
#[derive(Debug, Clone)]
pub struct PreflightRequest {
    /// The Flux namespace (also the Kustomization's name).
    pub namespace: String,
    /// The repository path the Kustomization should sync (`--path`).
    pub path: String,
    /// `--force`: accept an install managed by another tool.
    pub force: bool,
}

/// What preflight found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflightReport {
    /// The server's `gitVersion`, e.g. `v1.36.3`.
    pub server_version: String,
    /// The existing Flux install, if any.
    pub existing: Option<ExistingInstall>,
}

/// An existing Flux install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingInstall {
    /// `app.kubernetes.io/version` on the `GitRepository` CRD.
    pub version: Option<String>,
    /// `app.kubernetes.io/managed-by` on the `GitRepository` CRD.
    pub managed_by: Option<String>,
    /// `spec.path` of the Kustomization `<ns>/<ns>`, if it exists.
    pub kustomization_path: Option<String>,
    /// Its `status.lastAppliedRevision` (empty means components must be installed directly).
    pub applied_revision: Option<String>,
}

impl Cluster {
    /// Runs the checks; see the module docs.
    pub async fn preflight(&self, req: &PreflightRequest) -> Result<PreflightReport, ClusterError> {
        let (version, admin) =
            futures::join!(self.client.apiserver_version(), self.is_cluster_admin());
        let version = version.map_err(self.api_err("get the server version"))?;
        let admin = admin?;
        check_version(&version.git_version, &version.major, &version.minor)?;
        if let Some(reason) = admin {
            return Err(ClusterError::NotClusterAdmin {
                context: self.context().to_owned(),
                reason,
            });
        }

        self.admission_probe(&req.namespace).await?;

        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let (crd, kustomization) = futures::join!(
            crds.get_metadata_opt(GITREPOSITORY_CRD),
            self.kustomization(&req.namespace, &req.namespace)
        );
        let crd = crd.map_err(self.api_err(format!(
            "get CustomResourceDefinition `{GITREPOSITORY_CRD}`"
        )))?;
        let kustomization = kustomization?;
        let label = |key: &str| {
            crd.as_ref()
                .and_then(|c| c.metadata.labels.as_ref())
                .and_then(|l| l.get(key))
                .filter(|v| !v.is_empty())
                .cloned()
        };
        let managed_by = label("app.kubernetes.io/managed-by");
        let version_label = label("app.kubernetes.io/version");
        if let Some(tool) = &managed_by
            && tool != "flux"
            && !req.force
        {
            return Err(ClusterError::ManagedByOtherTool {
                version: version_label
                    .clone()
                    .unwrap_or_else(|| "(unknown version)".to_owned()),
                tool: tool.clone(),
            });
        }
        if let Some(k) = &kustomization {
            let (new, old) = (normalize_path(&req.path), normalize_path(&k.path));
            if new != old {
                return Err(ClusterError::PathConflict {
                    namespace: req.namespace.clone(),
                    name: req.namespace.clone(),
                    new,
                    old,
                });
            }
        }
        let existing = (crd.is_some() || kustomization.is_some()).then(|| ExistingInstall {
            version: version_label,
            managed_by,
            kustomization_path: kustomization.as_ref().map(|k| k.path.clone()),
            applied_revision: kustomization.and_then(|k| k.last_applied_revision),
        });
        Ok(PreflightReport {
            server_version: version.git_version,
            existing,
        })
    }

    /// Dry-run creates what bootstrap creates first in the namespace (the Namespace itself, or
    /// a `ServiceAccount` in it), so an admission policy or webhook that protects the namespace
    /// is reported before anything is written. RBAC already passed (cluster-admin), so a
    /// refusal here comes from admission.
    async fn admission_probe(&self, namespace: &str) -> Result<(), ClusterError> {
        let dry = PostParams {
            dry_run: true,
            field_manager: Some(crate::apply::FIELD_MANAGER.to_owned()),
        };
        let metadata = |name: &str| ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        };
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let exists = namespaces
            .get_metadata_opt(namespace)
            .await
            .map_err(self.api_err(format!("get Namespace `{namespace}`")))?
            .is_some();
        let result = if exists {
            let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
            let probe = ServiceAccount {
                metadata: metadata("fluxbootstrap-admission-probe"),
                ..ServiceAccount::default()
            };
            accounts.create(&dry, &probe).await.map(drop)
        } else {
            let probe = Namespace {
                metadata: metadata(namespace),
                ..Namespace::default()
            };
            namespaces.create(&dry, &probe).await.map(drop)
        };
        match result {
            Err(kube::Error::Api(status))
                if status.code == 403
                    || (status.code == 422
                        && status.message.contains("ValidatingAdmissionPolicy")) =>
            {
                Err(ClusterError::NamespaceProtected {
                    context: self.context().to_owned(),
                    namespace: namespace.to_owned(),
                    message: status.message,
                })
            }
            // Anything else (it exists already, a transient error) is for the real apply to report.
            _ => Ok(()),
        }
    }

    /// `None` when the user may do everything; otherwise the server's reason (maybe empty).
    async fn is_cluster_admin(&self) -> Result<Option<String>, ClusterError> {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some("*".to_owned()),
                    group: Some("*".to_owned()),
                    resource: Some("*".to_owned()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let result = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(self.api_err("create a SelfSubjectAccessReview"))?;
        let status = result.status.unwrap_or_default();
        Ok((!status.allowed).then(|| status.reason.unwrap_or_default()))
    }
}

fn check_version(git_version: &str, major: &str, minor: &str) -> Result<(), ClusterError> {
    let digits = |s: &str| {
        s.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .ok()
    };
    // Some distributions leave major/minor empty; then read `v1.36.3-foo`.
    let parsed = digits(major).zip(digits(minor)).or_else(|| {
        let mut parts = git_version.trim_start_matches('v').split('.');
        parts
            .next()
            .and_then(digits)
            .zip(parts.next().and_then(digits))
    });
    match parsed {
        Some(found) if found < MIN_KUBERNETES => Err(ClusterError::ServerTooOld {
            found: git_version.to_owned(),
            minimum: format!("{}.{}", MIN_KUBERNETES.0, MIN_KUBERNETES.1),
        }),
        _ => Ok(()),
    }
}

/// `./x` without a trailing slash, the form flux compares Kustomization paths in.
pub fn normalize_path(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    let rest = trimmed.trim_start_matches("./").trim_start_matches('/');
    if rest.is_empty() || rest == "." {
        "./".to_owned()
    } else {
        format!("./{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(check_version("v1.36.3", "1", "36").is_ok());
        assert!(check_version("v1.33.0-eks-1", "1", "33+").is_ok());
        assert!(check_version("v1.34.1", "", "").is_ok());
        let err = check_version("v1.32.9", "1", "32").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Kubernetes v1.32.9 is not supported: Flux needs 1.33 or newer"
        );
        assert_eq!(
            err.hint().unwrap(),
            "upgrade the cluster to Kubernetes 1.33 or newer"
        );
    }

    #[test]
    fn paths_normalize_like_flux() {
        assert_eq!(normalize_path("clusters/prod/"), "./clusters/prod");
        assert_eq!(normalize_path("./clusters/prod"), "./clusters/prod");
        assert_eq!(normalize_path("."), "./");
        assert_eq!(normalize_path(""), "./");
    }
}
