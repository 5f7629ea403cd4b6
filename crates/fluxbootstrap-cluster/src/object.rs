//! Identities of objects and the order Flux applies them in.
//!
//! Kept free of IO so the staging rules (what goes first, what waits for what) are unit-tested.

use std::fmt;

use serde_json::Value;

use crate::error::ClusterError;

/// Names one Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// `apiVersion`, e.g. `apps/v1`.
    pub api_version: String,
    /// `kind`, e.g. `Deployment`.
    pub kind: String,
    /// Namespace; `None` for cluster-scoped objects (or namespaced ones given without one).
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl fmt::Display for ObjectRef {
    /// `Kind/namespace/name` or `Kind/name`, the form `flux` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

impl ObjectRef {
    /// Reads the identity of a manifest; `index` only serves the error message.
    pub(crate) fn from_manifest(index: usize, value: &Value) -> Result<Self, ClusterError> {
        let text = |ptr: &str| {
            value
                .pointer(ptr)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let invalid = |problem: &str| ClusterError::InvalidObject {
            index,
            problem: problem.to_owned(),
        };
        Ok(Self {
            api_version: text("/apiVersion")
                .ok_or_else(|| invalid("no `apiVersion`"))?
                .to_owned(),
            kind: text("/kind")
                .ok_or_else(|| invalid("no `kind`"))?
                .to_owned(),
            namespace: text("/metadata/namespace").map(str::to_owned),
            name: text("/metadata/name")
                .ok_or_else(|| invalid("no `metadata.name`"))?
                .to_owned(),
        })
    }

    /// The API group (empty for the core group).
    pub(crate) fn group(&self) -> &str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }
}

/// What an apply did (or, in dry-run mode, would do) to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The object did not exist.
    Created,
    /// The object existed and differed.
    Configured,
    /// The object existed and applying it changes nothing; it was not written.
    Unchanged,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Created => "created",
            Self::Configured => "configured",
            Self::Unchanged => "unchanged",
        })
    }
}

/// Whether the object is applied in stage 1 (before the CRDs are waited for).
pub(crate) fn is_stage_one(obj: &ObjectRef) -> bool {
    matches!(
        (obj.group(), obj.kind.as_str()),
        ("apiextensions.k8s.io", "CustomResourceDefinition")
            | ("", "Namespace")
            | ("rbac.authorization.k8s.io", "ClusterRole")
    )
}

/// Apply priority by kind, Flux's (pkg `ssa` sort) order: lower goes first.
///
/// Objects of equal priority do not depend on each other, so they are applied concurrently.
pub(crate) fn kind_priority(kind: &str) -> u8 {
    match kind {
        "CustomResourceDefinition" => 0,
        "Namespace" => 1,
        "ClusterRole" => 2,
        "ClusterRoleBinding" => 4,
        "ResourceQuota" => 5,
        "ServiceAccount" => 6,
        "Role" => 7,
        "RoleBinding" => 8,
        "ConfigMap" => 9,
        "Secret" => 10,
        "Service" => 11,
        "LimitRange" => 12,
        "Deployment" => 13,
        "StatefulSet" => 14,
        "CronJob" => 15,
        "PodDisruptionBudget" => 16,
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => 18,
        k if k.ends_with("Class") => 3,
        _ => 17,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn oref(api_version: &str, kind: &str) -> ObjectRef {
        ObjectRef {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: None,
            name: "x".to_owned(),
        }
    }

    #[test]
    fn stage_one_is_crds_namespaces_and_cluster_roles() {
        assert!(is_stage_one(&oref(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition"
        )));
        assert!(is_stage_one(&oref("v1", "Namespace")));
        assert!(is_stage_one(&oref(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole"
        )));
        assert!(!is_stage_one(&oref(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding"
        )));
        assert!(!is_stage_one(&oref("example.com/v1", "Namespace")));
    }

    #[test]
    fn kind_order_follows_flux() {
        let mut kinds = vec![
            "ValidatingWebhookConfiguration",
            "GitRepository",
            "Deployment",
            "Service",
            "ServiceAccount",
            "PriorityClass",
            "ClusterRoleBinding",
            "ResourceQuota",
            "Namespace",
            "CustomResourceDefinition",
            "NetworkPolicy",
        ];
        kinds.sort_by_key(|k| kind_priority(k));
        assert_eq!(
            kinds,
            [
                "CustomResourceDefinition",
                "Namespace",
                "PriorityClass",
                "ClusterRoleBinding",
                "ResourceQuota",
                "ServiceAccount",
                "Service",
                "Deployment",
                "GitRepository",
                "NetworkPolicy",
                "ValidatingWebhookConfiguration",
            ]
        );
    }

    #[test]
    fn manifest_identity_and_errors() {
        let ok = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","namespace":"n"}});
        let r = ObjectRef::from_manifest(0, &ok).unwrap();
        assert_eq!(r.to_string(), "Deployment/n/a");
        assert_eq!(r.group(), "apps");
        let bad = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{}});
        let err = ObjectRef::from_manifest(3, &bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Object #3 to apply is invalid: no `metadata.name`"
        );
    }
}
