//! The fake source-controller (`GitRepository`) and kustomize-controller (`Kustomization`).
//!
//! Status shapes follow what `flux bootstrap` checks (flux-bootstrap.md §2.6, test-infra
//! §4.2): `observedGeneration`, a Ready condition, `status.artifact.revision` for the
//! `GitRepository` and `status.lastAttemptedRevision` for the `Kustomization`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::git::{self, Credentials, GitRef};
use super::{Ctx, EverySecond, ReconcileError, retry_soon};

/// How often a `GitRepository` is fetched again when nothing about it changed (real Flux
/// uses `spec.interval`; tests cannot wait a minute for a pushed commit to show up).
const REFETCH: Duration = Duration::from_secs(5);
/// How often a Kustomization re-checks its source.
const RECHECK: Duration = Duration::from_secs(2);
const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
const AZURE_CLIENT_ID: &str = "azure.workload.identity/client-id";

/// The last fetch of each `GitRepository`, by uid.
pub(super) type Memo = HashMap<String, Fetched>;

/// One fetch: what it depended on, when it ran, and the revision or git's error.
pub(super) struct Fetched {
    inputs: String,
    at: Instant,
    outcome: Result<String, (String, String)>,
}

fn git_repository_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("source.toolkit.fluxcd.io", "v1", "GitRepository"),
        "gitrepositories",
    )
}

fn kustomization_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kustomize.toolkit.fluxcd.io", "v1", "Kustomization"),
        "kustomizations",
    )
}

/// The current time as `metav1.Time` wants it (RFC 3339, whole seconds).
pub(super) fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub(super) fn git_repository_controller(ctx: Arc<Ctx>) -> impl futures::Stream {
    let resource = git_repository_resource();
    let api = Api::<DynamicObject>::all_with(ctx.client.clone(), &resource);
    Controller::new_with(api, watcher::Config::default(), resource)
        .trigger_backoff(EverySecond)
        .run(reconcile_git_repository, retry_soon, ctx)
}

/// Like kustomize-controller, a `Kustomization` is reconciled again as soon as its
/// `GitRepository` changes (a new artifact), not only on its own interval.
pub(super) fn kustomization_controller(ctx: Arc<Ctx>) -> impl futures::Stream {
    let resource = kustomization_resource();
    let api = Api::<DynamicObject>::all_with(ctx.client.clone(), &resource);
    let controller = Controller::new_with(api, watcher::Config::default(), resource.clone());
    let kustomizations = controller.store();
    let sources = Api::<DynamicObject>::all_with(ctx.client.clone(), &git_repository_resource());
    controller
        .watches_with(
            sources,
            git_repository_resource(),
            watcher::Config::default(),
            move |source| {
                let name = source.name_any();
                let namespace = source.namespace().unwrap_or_default();
                kustomizations
                    .state()
                    .into_iter()
                    .filter(|k| {
                        let spec = k.data.get("spec").cloned().unwrap_or_default();
                        let own_namespace = k.namespace().unwrap_or_default();
                        str_at(&spec, "/sourceRef/kind") == Some("GitRepository")
                            && str_at(&spec, "/sourceRef/name") == Some(name.as_str())
                            && str_at(&spec, "/sourceRef/namespace")
                                .unwrap_or(own_namespace.as_str())
                                == namespace
                    })
                    .map(|k| ObjectRef::from_obj_with(&*k, resource.clone()))
                    .collect::<Vec<_>>()
            },
        )
        .trigger_backoff(EverySecond)
        .run(reconcile_kustomization, retry_soon, ctx)
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn condition(status: &str, reason: &str, message: &str, generation: Option<i64>) -> Value {
    let mut message = message.to_owned();
    if message.len() > 4000 {
        let mut end = 4000;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    json!({"type": "Ready", "status": status, "reason": reason, "message": message,
        "observedGeneration": generation, "lastTransitionTime": now()})
}

/// Whether `status` already says what `desired` says (ignoring timestamps), so the
/// reconciler does not rewrite it and wake itself up forever.
fn status_matches(current: &Value, desired: &Value, fields: &[&str]) -> bool {
    let ready = |v: &Value| {
        v.get("conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c.get("type") == Some(&json!("Ready"))))
            .map(|c| {
                (
                    c.get("status").cloned(),
                    c.get("reason").cloned(),
                    c.get("message").cloned(),
                )
            })
    };
    ready(current) == ready(desired)
        && fields.iter().all(|f| {
            desired
                .pointer(f)
                .is_none_or(|d| current.pointer(f) == Some(d))
        })
}

async fn patch_status(
    ctx: &Ctx,
    resource: &ApiResource,
    obj: &DynamicObject,
    desired: Value,
    fields: &[&str],
) -> Result<(), ReconcileError> {
    let current = obj.data.get("status").cloned().unwrap_or(Value::Null);
    if status_matches(&current, &desired, fields) {
        return Ok(());
    }
    let namespace = obj.namespace().unwrap_or_default();
    Api::<DynamicObject>::namespaced_with(ctx.client.clone(), &namespace, resource)
        .patch_status(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": desired})),
        )
        .await?;
    Ok(())
}

async fn reconcile_git_repository(
    obj: Arc<DynamicObject>,
    ctx: Arc<Ctx>,
) -> Result<Action, ReconcileError> {
    let spec = obj.data.get("spec").cloned().unwrap_or(Value::Null);
    if obj.metadata.deletion_timestamp.is_some() || spec.get("suspend") == Some(&json!(true)) {
        return Ok(Action::await_change());
    }
    let namespace = obj.namespace().unwrap_or_default();
    let generation = obj.metadata.generation;
    let requested_at = obj.annotations().get(REQUESTED_AT).cloned();
    let url = str_at(&spec, "/url").unwrap_or_default().to_owned();
    let git_ref = GitRef::from_spec(spec.get("ref"));

    let mut credentials = Credentials::default();
    let mut inputs = format!(
        "{generation:?}|{requested_at:?}|{url}|{}",
        spec.get("ref").unwrap_or(&Value::Null)
    );
    let mut auth_error = None;
    if let Some(secret_name) = str_at(&spec, "/secretRef/name") {
        match Api::<Secret>::namespaced(ctx.client.clone(), &namespace)
            .get_opt(secret_name)
            .await?
        {
            Some(secret) => {
                let _ = write!(
                    inputs,
                    "|secret:{}",
                    secret.resource_version().unwrap_or_default()
                );
                credentials.data = secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect::<BTreeMap<_, _>>();
            }
            None => {
                auth_error = Some(format!(
                    "failed to get secret '{namespace}/{secret_name}': secrets \"{secret_name}\" not found"
                ));
            }
        }
    }
    if auth_error.is_none() && str_at(&spec, "/provider") == Some("azure") {
        let account = str_at(&spec, "/serviceAccountName").unwrap_or("source-controller");
        let sa = Api::<ServiceAccount>::namespaced(ctx.client.clone(), &namespace)
            .get_opt(account)
            .await?;
        let _ = write!(
            inputs,
            "|sa:{:?}",
            sa.as_ref().and_then(ResourceExt::resource_version)
        );
        let client_id = sa
            .as_ref()
            .and_then(|sa| sa.annotations().get(AZURE_CLIENT_ID))
            .filter(|id| !id.is_empty());
        match (client_id, &ctx.azure_token) {
            (Some(_), Some(token)) => credentials.provider_token = Some(token.clone()),
            // Workload identity is configured, but these fake controllers hold no token:
            // leave the object to fake controllers that do (several may share a cluster).
            (Some(_), None) => return Ok(Action::requeue(REFETCH)),
            (None, _) => {
                auth_error = Some(format!(
                    "failed to get credential for provider 'azure': ServiceAccount '{namespace}/{account}' has no \
                     '{AZURE_CLIENT_ID}' annotation (workload identity is not configured)"
                ));
            }
        }
    }

    if url.starts_with("https://127.0.0.1:") && !credentials.data.contains_key("ca.crt") {
        // The shared git server's CA plays the public CAs a real cluster trusts (e.g. the
        // one behind dev.azure.com), so sources without `ca.crt` work as they would there.
        if let Some(ca) = shared_git_server_ca().await {
            credentials.data.insert("ca.crt".to_owned(), ca);
        }
    }

    let uid = obj.uid().unwrap_or_default();
    let outcome = if let Some(message) = auth_error {
        Err(("AuthenticationFailed".to_owned(), message))
    } else {
        let cached = {
            let memo = ctx
                .memo
                .lock()
                .expect("the memo lock is not poisoned because holders do not panic");
            memo.get(&uid)
                .filter(|f| f.inputs == inputs && f.at.elapsed() < REFETCH)
                .map(|f| f.outcome.clone())
        };
        if let Some(outcome) = cached {
            outcome
        } else {
            let outcome = git::fetch(&ctx.repos.join(&uid), &url, &git_ref, &credentials)
                .await
                .map_err(|message| ("GitOperationFailed".to_owned(), message));
            ctx.memo
                .lock()
                .expect("the memo lock is not poisoned because holders do not panic")
                .insert(
                    uid.clone(),
                    Fetched {
                        inputs,
                        at: Instant::now(),
                        outcome: outcome.clone(),
                    },
                );
            outcome
        }
    };

    let mut desired = match &outcome {
        Ok(revision) => {
            let sha = revision.rsplit(':').next().unwrap_or_default();
            let path = format!("gitrepository/{namespace}/{}/{sha}.tar.gz", obj.name_any());
            let digest =
                Sha256::digest(revision.as_bytes())
                    .iter()
                    .fold(String::new(), |mut hex, b| {
                        let _ = write!(hex, "{b:02x}");
                        hex
                    });
            let message = format!("stored artifact for revision '{revision}'");
            json!({
                "observedGeneration": generation,
                "artifact": {
                    "path": path,
                    "url": format!("http://source-controller.{namespace}.svc.cluster.local./{path}"),
                    "revision": revision,
                    "digest": format!("sha256:{digest}"),
                    "lastUpdateTime": now(),
                },
                "conditions": [condition("True", "Succeeded", &message, generation)],
            })
        }
        Err((reason, message)) => json!({
            "observedGeneration": generation,
            "conditions": [condition("False", reason, message, generation)],
        }),
    };
    if let Some(requested_at) = requested_at {
        desired["lastHandledReconcileAt"] = json!(requested_at);
    }
    patch_status(
        &ctx,
        &git_repository_resource(),
        &obj,
        desired,
        &[
            "/observedGeneration",
            "/artifact/revision",
            "/lastHandledReconcileAt",
        ],
    )
    .await?;
    Ok(Action::requeue(REFETCH))
}

async fn reconcile_kustomization(
    obj: Arc<DynamicObject>,
    ctx: Arc<Ctx>,
) -> Result<Action, ReconcileError> {
    let spec = obj.data.get("spec").cloned().unwrap_or(Value::Null);
    if obj.metadata.deletion_timestamp.is_some() || spec.get("suspend") == Some(&json!(true)) {
        return Ok(Action::await_change());
    }
    if str_at(&spec, "/sourceRef/kind") != Some("GitRepository") {
        return Ok(Action::await_change());
    }
    let namespace = obj.namespace().unwrap_or_default();
    let generation = obj.metadata.generation;
    let source_namespace = str_at(&spec, "/sourceRef/namespace")
        .unwrap_or(&namespace)
        .to_owned();
    let source_name = str_at(&spec, "/sourceRef/name")
        .unwrap_or_default()
        .to_owned();
    let path = str_at(&spec, "/path").unwrap_or_default().to_owned();
    let source_key = format!("GitRepository/{source_namespace}/{source_name}");

    let source = Api::<DynamicObject>::namespaced_with(
        ctx.client.clone(),
        &source_namespace,
        &git_repository_resource(),
    )
    .get_opt(&source_name)
    .await?;
    let source_ready = source.as_ref().and_then(|s| {
        let status = s.data.get("status")?;
        let ready = status.get("conditions")?.as_array()?.iter().any(|c| {
            c.get("type") == Some(&json!("Ready")) && c.get("status") == Some(&json!("True"))
        });
        let revision = str_at(status, "/artifact/revision")?;
        ready.then(|| (s.uid().unwrap_or_default(), revision.to_owned()))
    });
    let mut desired = match source_ready {
        None => {
            let message = if source.is_some() {
                format!("Source '{source_key}' is not ready")
            } else {
                format!("Source '{source_key}' not found")
            };
            json!({"conditions": [condition("Unknown", "Progressing", &message, generation)]})
        }
        Some((uid, revision)) => {
            let sha = revision.rsplit(':').next().unwrap_or_default();
            match git::path_exists(&ctx.repos.join(&uid), sha, &path).await {
                Ok(true) => json!({
                    "observedGeneration": generation,
                    "lastAttemptedRevision": revision,
                    "lastAppliedRevision": revision,
                    "conditions": [condition("True", "ReconciliationSucceeded", &format!("Applied revision: {revision}"), generation)],
                }),
                Ok(false) => json!({
                    "observedGeneration": generation,
                    "lastAttemptedRevision": revision,
                    "conditions": [condition(
                        "False",
                        "ArtifactFailed",
                        &format!("kustomization path not found: stat {path}: no such file or directory"),
                        generation,
                    )],
                }),
                // Other fake controllers (another test's) fetched this source: leave the
                // status to them rather than fight over it.
                Err(_) => return Ok(Action::requeue(RECHECK)),
            }
        }
    };
    if let Some(requested_at) = obj.annotations().get(REQUESTED_AT) {
        desired["lastHandledReconcileAt"] = json!(requested_at);
    }
    patch_status(
        &ctx,
        &kustomization_resource(),
        &obj,
        desired,
        &[
            "/observedGeneration",
            "/lastAttemptedRevision",
            "/lastAppliedRevision",
            "/lastHandledReconcileAt",
        ],
    )
    .await?;
    Ok(Action::requeue(RECHECK))
}

/// The CA of [`crate::GitServer::shared`], starting that server if needed.
async fn shared_git_server_ca() -> Option<Vec<u8>> {
    static CA: tokio::sync::OnceCell<Option<Vec<u8>>> = tokio::sync::OnceCell::const_new();
    CA.get_or_init(|| async {
        // The git server starts its own runtime, which cannot happen on a runtime thread.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = tx.send(fs_err::read(crate::GitServer::shared().ca_file()).ok());
        });
        rx.await.ok().flatten()
    })
    .await
    .clone()
}
