//! When is a Deployment, a `GitRepository` or a Kustomization ready: pure functions over the
//! object JSON, following kstatus (Deployments) and `flux bootstrap`'s `objectReconciled`
//! (Flux objects), so they are unit-tested without a cluster.

use serde_json::Value;

use crate::watch::{Step, condition};

/// kstatus "Current" for a Deployment; `ProgressDeadlineExceeded` fails.
pub(crate) fn deployment(obj: &Value) -> Step {
    let int = |p: &str| obj.pointer(p).and_then(Value::as_i64);
    let generation = int("/metadata/generation").unwrap_or(0);
    match int("/status/observedGeneration") {
        Some(g) if g >= generation => {}
        _ => return Step::Pending("waiting for the rollout to be observed".to_owned()),
    }
    if let Some(("False", "ProgressDeadlineExceeded", message)) = condition(obj, "Progressing") {
        return Step::Failed(format!("progress deadline exceeded: {message}"));
    }
    let want = int("/spec/replicas").unwrap_or(1);
    let replicas = int("/status/replicas").unwrap_or(0);
    let updated = int("/status/updatedReplicas").unwrap_or(0);
    let ready = int("/status/readyReplicas").unwrap_or(0);
    let available = int("/status/availableReplicas").unwrap_or(0);
    if updated < want {
        return Step::Pending(format!("{updated} of {want} replicas updated"));
    }
    if replicas > want {
        return Step::Pending(format!(
            "{} old replicas pending termination",
            replicas - want
        ));
    }
    if available < updated || ready < want || replicas < want {
        return Step::Pending(format!("{available} of {want} replicas available"));
    }
    let progress_deadline = obj.pointer("/spec/progressDeadlineSeconds").is_some();
    if progress_deadline
        && !matches!(
            condition(obj, "Progressing"),
            Some(("True", "NewReplicaSetAvailable", _))
        )
    {
        return Step::Pending("rollout still progressing".to_owned());
    }
    if !matches!(condition(obj, "Available"), Some(("True", ..))) {
        return Step::Pending("not Available".to_owned());
    }
    Step::Done
}

/// Flux readiness: not suspended, observed the current generation, `Ready=True` at
/// `revision` (read from `revision_pointer`), and, when a reconcile was requested, handled it.
/// `Ready=False` fails immediately with the controller's message, unless the controller says
/// it is waiting for its source or dependencies and will retry ([`waits_for_its_source`]).
pub(crate) fn flux_object(
    obj: &Value,
    revision_pointer: &str,
    revision: Option<&str>,
    requested_at: Option<&str>,
) -> Step {
    if obj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return Step::Failed(SUSPENDED.to_owned());
    }
    let int = |p: &str| obj.pointer(p).and_then(Value::as_i64);
    // As flux's `objectReconciled`: a missing observedGeneration reads as 0, and
    // kustomize-controller's first reconcile leaves its CRD default of -1 while it reports
    // `Ready=False` (`ArtifactFailed`) before source-controller has an artifact.
    if int("/status/observedGeneration").unwrap_or(0) != int("/metadata/generation").unwrap_or(0) {
        // The last Ready condition still says why the controller is stuck (e.g. an
        // authentication error), so a timeout can name it.
        return Step::Pending(match condition(obj, "Ready") {
            Some((status, reason, message)) if !message.is_empty() => format!(
                "waiting for the controller to observe the latest generation (last Ready={status}, {reason}: {message})"
            ),
            _ => "waiting for the controller to observe the latest generation".to_owned(),
        });
    }
    if let Some(token) = requested_at
        && obj
            .pointer("/status/lastHandledReconcileAt")
            .and_then(Value::as_str)
            != Some(token)
    {
        return Step::Pending("waiting for the requested reconciliation to be handled".to_owned());
    }
    match condition(obj, "Ready") {
        Some(("True", _, message)) => {
            let Some(want) = revision else {
                return Step::Done;
            };
            let have = obj
                .pointer(revision_pointer)
                .and_then(Value::as_str)
                .map(normalize_revision);
            if have.as_deref() == Some(&normalize_revision(want)) {
                Step::Done
            } else {
                Step::Pending(format!(
                    "Ready at revision {}, waiting for {want} ({message})",
                    have.as_deref().unwrap_or("<none>")
                ))
            }
        }
        Some(("False", reason, message)) if waits_for_its_source(reason, message) => {
            Step::Pending(message.to_owned())
        }
        Some(("False", _, message)) => Step::Failed(message.to_owned()),
        Some((_, _, message)) if !message.is_empty() => Step::Pending(message.to_owned()),
        _ => Step::Pending("waiting for the Ready condition".to_owned()),
    }
}

/// kustomize-controller's `Ready=False` states that only wait for something else and requeue
/// on their own: the source has no artifact yet, or its artifact is not served (yet or any
/// more: source-controller keeps artifacts on an `emptyDir`, so a restarted controller serves
/// none until it has rebuilt them, which every upgrade that rolls it causes), or a dependency
/// is not ready. The controller words each "…, retrying in <interval>". A source that fails
/// for its own reasons (authentication, a path that does not exist) is not among them.
fn waits_for_its_source(reason: &str, message: &str) -> bool {
    match reason {
        "ArtifactFailed" => message.contains("artifact not found, retrying in"),
        "DependencyNotReady" => true,
        _ => false,
    }
}

/// The sentinel message of a suspended object (mapped to its own error).
pub(crate) const SUSPENDED: &str = "\0suspended";

/// Turns legacy `<branch>/<sha>` revisions into `<branch>@sha1:<sha>` (`sha256:` for 64 hex).
pub(crate) fn normalize_revision(revision: &str) -> String {
    if revision.contains('@') || revision.contains(':') {
        return revision.to_owned();
    }
    match revision.rsplit_once('/') {
        Some((branch, sha)) if sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()) => {
            format!("{branch}@sha1:{sha}")
        }
        Some((branch, sha)) if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()) => {
            format!("{branch}@sha256:{sha}")
        }
        _ => revision.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn available(generation: i64, observed: i64) -> Value {
        json!({"metadata":{"generation":generation},"spec":{"replicas":1,"progressDeadlineSeconds":600},
            "status":{"observedGeneration":observed,"replicas":1,"updatedReplicas":1,"readyReplicas":1,"availableReplicas":1,
            "conditions":[{"type":"Available","status":"True"},
                          {"type":"Progressing","status":"True","reason":"NewReplicaSetAvailable"}]}})
    }

    #[test]
    fn deployment_kstatus() {
        assert_eq!(deployment(&available(2, 2)), Step::Done);
        assert!(matches!(deployment(&available(3, 2)), Step::Pending(_)));
        assert!(matches!(
            deployment(&json!({"metadata":{"generation":1},"spec":{}})),
            Step::Pending(_)
        ));
        let mut stuck = available(1, 1);
        stuck["status"]["conditions"][1] = json!({"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded","message":"too slow"});
        assert_eq!(
            deployment(&stuck),
            Step::Failed("progress deadline exceeded: too slow".to_owned())
        );
        let mut unready = available(1, 1);
        unready["status"]["availableReplicas"] = json!(0);
        assert_eq!(
            deployment(&unready),
            Step::Pending("0 of 1 replicas available".to_owned())
        );
    }

    fn repo(status: &str, message: &str, revision: &str) -> Value {
        json!({"metadata":{"generation":1},"spec":{},
            "status":{"observedGeneration":1,"artifact":{"revision":revision},
            "conditions":[{"type":"Ready","status":status,"reason":"R","message":message}]}})
    }

    #[test]
    fn flux_object_readiness() {
        let p = "/status/artifact/revision";
        let rev = "main@sha1:0123456789012345678901234567890123456789";
        let want = Some(rev);
        assert_eq!(
            flux_object(&repo("True", "ok", rev), p, want, None),
            Step::Done
        );
        assert_eq!(
            flux_object(
                &repo(
                    "True",
                    "ok",
                    "main/0123456789012345678901234567890123456789"
                ),
                p,
                want,
                None
            ),
            Step::Done
        );
        assert!(matches!(
            flux_object(&repo("True", "ok", "main@sha1:ffff"), p, want, None),
            Step::Pending(_)
        ));
        assert_eq!(
            flux_object(&repo("False", "auth failed", "x"), p, want, None),
            Step::Failed("auth failed".to_owned())
        );
        // kustomize-controller waiting for its source's artifact retries on its own.
        let mut waiting = repo("False", "", "x");
        for (reason, message, pending) in [
            (
                "ArtifactFailed",
                "Source is not ready, artifact not found, retrying in 30s",
                true,
            ),
            (
                "ArtifactFailed",
                "Source artifact not found, retrying in 30s",
                true,
            ),
            (
                "DependencyNotReady",
                "dependency 'flux-system/infra' is not ready",
                true,
            ),
            (
                "ArtifactFailed",
                "kustomization path not found: stat /tmp/x/clusters/y: no such file or directory",
                false,
            ),
        ] {
            waiting["status"]["conditions"][0] =
                json!({"type":"Ready","status":"False","reason":reason,"message":message});
            let step = flux_object(&waiting, p, want, None);
            assert_eq!(
                matches!(step, Step::Pending(_)),
                pending,
                "{reason}: {message}: {step:?}"
            );
        }
        assert!(matches!(
            flux_object(&repo("Unknown", "reconciling", "x"), p, want, None),
            Step::Pending(_)
        ));
        let mut suspended = repo("True", "ok", "x");
        suspended["spec"]["suspend"] = json!(true);
        assert_eq!(
            flux_object(&suspended, p, want, None),
            Step::Failed(SUSPENDED.to_owned())
        );
        let mut stale = repo("False", "old failure", "x");
        stale["metadata"]["generation"] = json!(2);
        assert!(matches!(
            flux_object(&stale, p, want, None),
            Step::Pending(_)
        ));
        assert!(matches!(
            flux_object(&repo("True", "ok", rev), p, want, Some("t1")),
            Step::Pending(_)
        ));
        // kustomize-controller v1.9.4's first status on a fresh cluster: pending, not failed.
        let mut first = repo("False", "Source artifact not found, retrying in 30s", "x");
        first["status"]["observedGeneration"] = json!(-1);
        first["status"]["conditions"][0]["reason"] = json!("ArtifactFailed");
        assert!(matches!(
            flux_object(&first, p, want, None),
            Step::Pending(_)
        ));
        let mut unobserved = repo("False", "not yet", "x");
        unobserved["status"]
            .as_object_mut()
            .expect("status is an object")
            .remove("observedGeneration");
        assert!(matches!(
            flux_object(&unobserved, p, want, None),
            Step::Pending(_)
        ));
    }
}
