//! Integration tests of `fluxbootstrap-cluster` against the harness's real kube-apiserver.
//!
//! Tests on the shared control plane use unique namespaces (and unique API groups for their
//! own CRDs) so they run in parallel; the Flux CRDs from the real v2.9.4 bundle are applied
//! there once and only read afterwards. The full install lifecycle (apply, fault, re-apply,
//! uninstall) runs on a private control plane because it owns `flux-system` and the CRDs.

mod apply;
mod connect;
mod lifecycle;
mod preflight;
mod secret;
mod wait;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use fluxbootstrap_cluster::{ApplyOptions, Cluster, KubeOptions, NoReporter};
use fluxbootstrap_test::ControlPlane;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

/// A runtime per test: the harness is synchronous and runs its own runtime, so its calls are
/// made outside `block_on`.
fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(cp: &ControlPlane, context: &str) -> Cluster {
    Cluster::connect(&KubeOptions {
        kubeconfig: Some(cp.kubeconfig().to_owned()),
        context: Some(context.to_owned()),
        ..KubeOptions::default()
    })
    .await
    .unwrap()
}

/// The Flux v2.9.4 default install (`flux install --export` output) as objects: the golden
/// file from `$FLUXBOOTSTRAP_FLUX_MANIFESTS` (or `../shared`) when present, else the same
/// rendering of the harness's fixture bundle, so the suite also runs without `../shared`.
fn bundle() -> Vec<Value> {
    let dir = std::env::var_os("FLUXBOOTSTRAP_FLUX_MANIFESTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/flux-manifests"),
        PathBuf::from,
    );
    let text = std::fs::read_to_string(dir.join("golden/default/gotk-components.yaml"))
        .unwrap_or_else(|_| {
            let (_, tar_gz) = fluxbootstrap_test::flux_bundle_tar_gz();
            let bundle = fluxbootstrap_release::unpack_bundle(&tar_gz).unwrap();
            fluxbootstrap_manifests::render_components(
                &bundle,
                &fluxbootstrap_manifests::InstallOptions::default(),
            )
            .unwrap()
        });
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap()
        .into_iter()
        .filter(Value::is_object)
        .collect()
}

fn bundle_crds() -> Vec<Value> {
    bundle()
        .into_iter()
        .filter(|v| v["kind"] == "CustomResourceDefinition")
        .collect()
}

/// Applies the Flux CRDs on the shared control plane once (idempotent for other callers).
fn shared_with_flux_crds() -> &'static ControlPlane {
    static DONE: OnceLock<()> = OnceLock::new();
    let cp = ControlPlane::shared();
    DONE.get_or_init(|| {
        rt().block_on(async {
            let cluster = connect(cp, cp.admin_context()).await;
            cluster
                .apply(bundle_crds(), &ApplyOptions::default(), &NoReporter)
                .await
                .unwrap();
        });
    });
    cp
}

fn api(
    cluster_client: &kube::Client,
    api_version: &str,
    kind: &str,
    plural: &str,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    match ns {
        Some(ns) => Api::namespaced_with(cluster_client.clone(), ns, &resource),
        None => Api::all_with(cluster_client.clone(), &resource),
    }
}

/// A plain kube client for arranging and inspecting state behind the crate's back.
async fn raw_client(cp: &ControlPlane, context: &str) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(cp.kubeconfig()).unwrap();
    let opts = kube::config::KubeConfigOptions {
        context: Some(context.to_owned()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &opts)
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

async fn patch_status(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    plural: &str,
    ns: &str,
    name: &str,
    status: Value,
) {
    api(client, api_version, kind, plural, Some(ns))
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": status })),
        )
        .await
        .unwrap();
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":name}})
}

fn config_map(ns: &str, name: &str, data: &Value) -> Value {
    json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":name,"namespace":ns},"data":data})
}

fn deployment(ns: &str, name: &str) -> Value {
    json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":name,"namespace":ns},
        "spec":{"replicas":1,"selector":{"matchLabels":{"app":name}},
            "template":{"metadata":{"labels":{"app":name}},
                "spec":{"containers":[{"name":"manager","image":"example.invalid/manager:v1"}]}}}})
}

const TIMEOUT: Duration = Duration::from_mins(1);
