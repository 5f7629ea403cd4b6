//! Removing Flux in `flux uninstall`'s order: the components selected by
//! `app.kubernetes.io/part-of=flux` (cluster-scoped ones also by the instance label, so
//! another Flux instance is left alone), then the finalizers on Flux custom resources (no
//! controller is left to remove them, or to put them back, so deletions would hang), then
//! the Flux CRDs, then the namespace. Nothing without those labels is touched.

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::Scope;
use serde_json::{Value, json};

use crate::connect::{Cluster, FixedResource};
use crate::error::{ClusterError, is_status};
use crate::health::PART_OF_FLUX;
use crate::object::ObjectRef;

/// Input of [`Cluster::uninstall`].
#[derive(Debug, Clone)]
pub struct UninstallOptions {
    /// The Flux namespace.
    pub namespace: String,
    /// Leave the namespace (its labelled Flux objects are still removed).
    pub keep_namespace: bool,
    /// Only list what would go.
    pub dry_run: bool,
}

/// What [`Cluster::uninstall`] did (or would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UninstallReport {
    /// Custom resources whose finalizers were removed.
    pub finalizers_removed: Vec<ObjectRef>,
    /// Objects deleted, in order.
    pub deleted: Vec<ObjectRef>,
}

/// Progress of [`Cluster::uninstall`]; every method has an empty default.
pub trait UninstallReporter: Sync {
    /// Finalizers were removed from `object` (or would be).
    fn finalizers_removed(&self, object: &ObjectRef, dry_run: bool) {
        let _ = (object, dry_run);
    }
    /// `object` was deleted (or would be).
    fn deleted(&self, object: &ObjectRef, dry_run: bool) {
        let _ = (object, dry_run);
    }
    /// Removing `object` failed.
    fn failed(&self, object: &ObjectRef, message: &str) {
        let _ = (object, message);
    }
}

impl UninstallReporter for crate::apply::NoReporter {}

const fn fixed(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    scope: Scope,
) -> FixedResource {
    let version = "v1";
    FixedResource {
        group,
        version,
        kind,
        plural,
        scope,
    }
}

/// Namespaced component kinds, in deletion order.
const NAMESPACED: &[FixedResource] = &[
    fixed("apps", "Deployment", "deployments", Scope::Namespaced),
    fixed("", "Service", "services", Scope::Namespaced),
    fixed(
        "networking.k8s.io",
        "NetworkPolicy",
        "networkpolicies",
        Scope::Namespaced,
    ),
    fixed("", "ServiceAccount", "serviceaccounts", Scope::Namespaced),
    fixed("", "ResourceQuota", "resourcequotas", Scope::Namespaced),
    fixed("", "Secret", "secrets", Scope::Namespaced),
];

const CLUSTER_SCOPED: &[FixedResource] = &[
    fixed(
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        "clusterrolebindings",
        Scope::Cluster,
    ),
    fixed(
        "rbac.authorization.k8s.io",
        "ClusterRole",
        "clusterroles",
        Scope::Cluster,
    ),
];

const CRDS: FixedResource = fixed(
    "apiextensions.k8s.io",
    "CustomResourceDefinition",
    "customresourcedefinitions",
    Scope::Cluster,
);

/// Collects progress and failures of one run.
struct Uninstaller<'a> {
    cluster: &'a Cluster,
    dry_run: bool,
    reporter: &'a dyn UninstallReporter,
    outcome: UninstallReport,
    failures: Vec<String>,
}

impl Cluster {
    /// Removes the Flux install in `opts.namespace`; see the module docs.
    pub async fn uninstall(
        &self,
        opts: &UninstallOptions,
        reporter: &dyn UninstallReporter,
    ) -> Result<UninstallReport, ClusterError> {
        let mut run = Uninstaller {
            cluster: self,
            dry_run: opts.dry_run,
            reporter,
            outcome: UninstallReport::default(),
            failures: Vec::new(),
        };
        let ns = opts.namespace.as_str();
        let crd_api = self.fixed_api(&CRDS, None);
        let crds = crd_api
            .list(&ListParams::default().labels(PART_OF_FLUX))
            .await
            .map_err(self.api_err("list Flux CustomResourceDefinitions"))?;

        // 1. Components in the namespace, then cluster-scoped RBAC of this instance, first (as
        // `flux uninstall` does), so no controller is left to put a finalizer back.
        for fixed in NAMESPACED {
            run.delete_selected(&self.fixed_api(fixed, Some(ns)), fixed, PART_OF_FLUX)
                .await?;
        }
        let instance = format!("{PART_OF_FLUX},app.kubernetes.io/instance={ns}");
        for fixed in CLUSTER_SCOPED {
            run.delete_selected(&self.fixed_api(fixed, None), fixed, &instance)
                .await?;
        }
        // 2. Finalizers on every custom resource of every Flux CRD, in all namespaces.
        for crd in &crds.items {
            let crd = serde_json::to_value(crd).unwrap_or_default();
            if let Some(api) = custom_resource_api(self, &crd) {
                run.strip_finalizers(&api).await?;
            }
        }
        // 3. CRDs last, so custom resources are gone (the API server deletes them with the CRD).
        run.delete_selected(&crd_api, &CRDS, PART_OF_FLUX).await?;
        // 4. The namespace.
        if !opts.keep_namespace {
            let api = self.fixed_api(&fixed("", "Namespace", "namespaces", Scope::Cluster), None);
            let object = ObjectRef {
                api_version: "v1".into(),
                kind: "Namespace".into(),
                namespace: None,
                name: ns.into(),
            };
            run.delete(&api, object).await;
        }
        if run.failures.is_empty() {
            Ok(run.outcome)
        } else {
            Err(ClusterError::Uninstall {
                failures: run.failures,
            })
        }
    }
}

/// The API of the custom resources of `crd` (its storage version), if it is a usable CRD.
fn custom_resource_api(cluster: &Cluster, crd: &Value) -> Option<Api<DynamicObject>> {
    let text = |p: &str| crd.pointer(p).and_then(Value::as_str);
    let group = text("/spec/group")?;
    let kind = text("/spec/names/kind")?;
    let plural = text("/spec/names/plural")?;
    let version = crd
        .pointer("/spec/versions")?
        .as_array()?
        .iter()
        .find_map(|v| {
            (v.get("storage")?.as_bool()? && v.get("served")?.as_bool()?)
                .then(|| v.get("name")?.as_str())?
        })?;
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let resource = kube::discovery::ApiResource::from_gvk_with_plural(&gvk, plural);
    Some(Api::all_with(cluster.client.clone(), &resource))
}

impl Uninstaller<'_> {
    async fn strip_finalizers(&mut self, api: &Api<DynamicObject>) -> Result<(), ClusterError> {
        let list = match api.list(&ListParams::default()).await {
            Ok(list) => list,
            // The CRD exists but is not served (yet or any more): nothing to strip.
            Err(e) if is_status(&e, 404) => return Ok(()),
            Err(e) => return Err(self.cluster.api_err("list Flux custom resources")(e)),
        };
        for item in list.items {
            if item.metadata.finalizers.as_ref().is_none_or(Vec::is_empty) {
                continue;
            }
            let object = object_ref(&item);
            let ns_api = match &object.namespace {
                Some(ns) => {
                    Api::namespaced_with(api.clone().into_client(), ns, &resource_of(&item, api))
                }
                None => api.clone(),
            };
            let pp = PatchParams {
                dry_run: self.dry_run,
                ..PatchParams::default()
            };
            let patch = json!({"metadata": {"finalizers": null}});
            match ns_api.patch(&object.name, &pp, &Patch::Merge(&patch)).await {
                Ok(_) => {
                    self.reporter.finalizers_removed(&object, self.dry_run);
                    self.outcome.finalizers_removed.push(object);
                }
                Err(e) if is_status(&e, 404) => {}
                Err(e) => self.fail(&object, &e),
            }
        }
        Ok(())
    }

    async fn delete_selected(
        &mut self,
        api: &Api<DynamicObject>,
        fixed: &FixedResource,
        selector: &str,
    ) -> Result<(), ClusterError> {
        let kind = fixed.kind;
        let api_version = if fixed.group.is_empty() {
            fixed.version.to_owned()
        } else {
            format!("{}/{}", fixed.group, fixed.version)
        };
        let list = api
            .list_metadata(&ListParams::default().labels(selector))
            .await
            .map_err(
                self.cluster
                    .api_err(format!("list {kind} objects labelled `{selector}`")),
            )?;
        for item in list.items {
            let object = ObjectRef {
                api_version: api_version.clone(),
                kind: kind.to_owned(),
                namespace: item.metadata.namespace.clone(),
                name: item.metadata.name.clone().unwrap_or_default(),
            };
            self.delete(api, object).await;
        }
        Ok(())
    }

    async fn delete(&mut self, api: &Api<DynamicObject>, object: ObjectRef) {
        let dp = if self.dry_run {
            DeleteParams::background().dry_run()
        } else {
            DeleteParams::background()
        };
        match api.delete(&object.name, &dp).await {
            Ok(_) => {
                self.reporter.deleted(&object, self.dry_run);
                self.outcome.deleted.push(object);
            }
            Err(e) if is_status(&e, 404) => {}
            Err(e) => self.fail(&object, &e),
        }
    }

    fn fail(&mut self, object: &ObjectRef, err: &kube::Error) {
        let message = crate::watch::first_line(err);
        self.reporter.failed(object, &message);
        self.failures.push(format!("{object}: {message}"));
    }
}

fn object_ref(item: &DynamicObject) -> ObjectRef {
    let types = item.types.clone().unwrap_or_default();
    ObjectRef {
        api_version: types.api_version,
        kind: types.kind,
        namespace: item.metadata.namespace.clone(),
        name: item.metadata.name.clone().unwrap_or_default(),
    }
}

fn resource_of(item: &DynamicObject, api: &Api<DynamicObject>) -> kube::discovery::ApiResource {
    let types = item.types.clone().unwrap_or_default();
    let (group, version) = types
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", types.api_version.as_str()));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, &types.kind);
    // The plural is the last path segment of the cluster-wide URL, e.g. `/apis/g/v1/gitrepositories`.
    let plural = api.resource_url().rsplit('/').next().unwrap_or_default();
    kube::discovery::ApiResource::from_gvk_with_plural(&gvk, plural)
}
