//! The Flux source Secret: written with exactly the given keys (stale keys from another auth
//! mode are removed, unlike flux, whose `stringData` update keeps them), and otherwise as
//! flux writes it: no labels of its own (a user's labels are kept) and field manager `flux`,
//! so a cluster moves between this tool and the `flux` CLI without a diff. Values only travel
//! in [`SecretBytes`]; nothing here formats them, and errors name the Secret, never its
//! content.

use fluxbootstrap_auth::ExposeSecret as _;
use std::collections::BTreeMap;

use fluxbootstrap_auth::SecretBytes;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};

use crate::connect::Cluster;
use crate::error::{ClusterError, is_status};
use crate::object::Change;

/// The field manager flux's client writes the Secret with (its binary name).
const FIELD_MANAGER: &str = "flux";

/// The `type` of a dockerconfigjson pull Secret.
pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";

impl Cluster {
    /// Creates or replaces Secret `namespace/name` so that its data is exactly `data`.
    pub async fn reconcile_secret(
        &self,
        namespace: &str,
        name: &str,
        data: BTreeMap<String, SecretBytes>,
        dry_run: bool,
    ) -> Result<Change, ClusterError> {
        self.reconcile_typed_secret(namespace, name, None, data, dry_run)
            .await
    }

    /// [`Cluster::reconcile_secret`] for a Secret of `type_` (e.g. [`DOCKER_CONFIG_JSON`]),
    /// set when the Secret is created (the API server does not let it change).
    pub async fn reconcile_typed_secret(
        &self,
        namespace: &str,
        name: &str,
        type_: Option<&str>,
        data: BTreeMap<String, SecretBytes>,
        dry_run: bool,
    ) -> Result<Change, ClusterError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let desired: BTreeMap<String, ByteString> = data
            .iter()
            .map(|(k, v)| (k.clone(), ByteString(v.expose_secret().to_vec())))
            .collect();
        let pp = PostParams {
            dry_run,
            field_manager: Some(FIELD_MANAGER.to_owned()),
        };
        let what = |verb: &str| format!("{verb} Secret `{namespace}/{name}`");
        // One retry covers a concurrent writer changing the resourceVersion under us.
        let mut retried = false;
        loop {
            let live = api.get_opt(name).await.map_err(self.api_err(what("get")))?;
            let Some(mut live) = live else {
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(name.to_owned()),
                        namespace: Some(namespace.to_owned()),
                        ..ObjectMeta::default()
                    },
                    data: Some(desired),
                    type_: type_.map(str::to_owned),
                    ..Secret::default()
                };
                api.create(&pp, &secret)
                    .await
                    .map_err(self.api_err(what("create")))?;
                return Ok(Change::Created);
            };
            let same_data = live
                .data
                .as_ref()
                .map_or(desired.is_empty(), |d| *d == desired);
            if same_data && live.string_data.is_none() {
                return Ok(Change::Unchanged);
            }
            live.data = Some(desired.clone());
            live.string_data = None;
            match api.replace(name, &pp, &live).await {
                Ok(_) => return Ok(Change::Configured),
                Err(e) if !retried && is_status(&e, 409) => retried = true,
                Err(e) => return Err(self.api_err(what("update"))(e)),
            }
        }
    }

    /// The data of Secret `namespace/name`, or `None` if it does not exist.
    pub async fn get_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, SecretBytes>>, ClusterError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = api
            .get_opt(name)
            .await
            .map_err(self.api_err(format!("get Secret `{namespace}/{name}`")))?;
        Ok(secret.map(|s| {
            s.data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, SecretBytes::from(v.0)))
                .collect()
        }))
    }

    /// The annotation `key` of Secret `namespace/name`, or `None` (no Secret, or no such
    /// annotation).
    pub async fn secret_annotation(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<Option<String>, ClusterError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = api
            .get_metadata_opt(name)
            .await
            .map_err(self.api_err(format!("get Secret `{namespace}/{name}`")))?;
        Ok(secret.and_then(|s| s.metadata.annotations?.remove(key)))
    }

    /// Sets (or with `None` removes) the annotation `key` of Secret `namespace/name`, with
    /// this tool's own field manager (the Secret's data stays flux's).
    pub async fn annotate_secret(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), ClusterError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let patch = serde_json::json!({ "metadata": { "annotations": { key: value } } });
        let params = kube::api::PatchParams {
            field_manager: Some("kubectl-fluxbootstrap".to_owned()),
            ..kube::api::PatchParams::default()
        };
        api.patch(name, &params, &kube::api::Patch::Merge(&patch))
            .await
            .map_err(self.api_err(format!("annotate Secret `{namespace}/{name}`")))?;
        Ok(())
    }
}
