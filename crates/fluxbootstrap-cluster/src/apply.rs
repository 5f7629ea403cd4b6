//! Staged server-side apply with a dry-run diff, the way `flux bootstrap` installs components.
//!
//! Every object is read first, all at once (bounded): an existing one is applied with
//! `dryRun=All` and compared with the live object, so an unchanged object costs two reads
//! and no write, and an unchanged install costs one round of reads. Then the writes, in
//! stages: stage 1 applies CRDs, Namespaces and `ClusterRoles` and waits until the CRDs are
//! Established; stage 2 applies everything else in Flux's kind order. Within one kind
//! priority, objects are independent and go concurrently (bounded). Objects of a kind whose
//! CRD stage 1 wrote are read again before they are written, against the new schema. Only
//! new or drifted objects are really applied, with field manager `flux` and `force`,
//! exactly like the flux CLI.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::Scope;
use serde_json::Value;
use tokio::time::Instant;

use crate::connect::{Cluster, FixedResource};
use crate::diff::diff;
use crate::error::{ClusterError, is_status};
use crate::object::{Change, ObjectRef, is_stage_one, kind_priority};
use crate::watch::{Step, WatchEnd, condition, watch_until};

/// The field manager Flux uses, so a later `flux bootstrap` finds the same owner.
pub const FIELD_MANAGER: &str = "flux";

/// How [`Cluster::apply`] behaves.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Plan only: report what would change, write nothing.
    pub dry_run: bool,
    /// Requests in flight at once (at least 1).
    pub concurrency: usize,
    /// How long CRDs may take to become Established.
    pub timeout: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            concurrency: 16,
            timeout: Duration::from_mins(1),
        }
    }
}

/// Which part of the staged apply is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyStage {
    /// CRDs, Namespaces and `ClusterRoles`.
    ClusterDefinitions,
    /// Waiting for the CRDs to be Established.
    WaitingForCrds,
    /// Everything else.
    Resources,
}

/// Progress of [`Cluster::apply`]; every method has an empty default.
pub trait ApplyReporter: Sync {
    /// A stage starts with `objects` objects (CRDs to wait for, for the wait stage).
    fn stage(&self, stage: ApplyStage, objects: usize) {
        let _ = (stage, objects);
    }
    /// One object was applied (or planned, in dry-run mode).
    fn object(&self, entry: &ApplyEntry) {
        let _ = entry;
    }
}

/// A reporter that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReporter;

impl ApplyReporter for NoReporter {}

/// The outcome for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyEntry {
    /// The object.
    pub object: ObjectRef,
    /// What happened (or would happen).
    pub change: Change,
    /// For [`Change::Configured`]: the changed fields, one per line; Secret values masked.
    pub diff: Option<String>,
}

/// The outcome of [`Cluster::apply`], in apply order.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    /// One entry per object.
    pub entries: Vec<ApplyEntry>,
    /// Non-dry-run write requests sent (0 for a no-op re-apply or a dry run).
    pub writes: usize,
}

impl ApplyReport {
    /// How many objects had `change`.
    pub fn count(&self, change: Change) -> usize {
        self.entries.iter().filter(|e| e.change == change).count()
    }
}

const CRDS: FixedResource = FixedResource {
    group: "apiextensions.k8s.io",
    version: "v1",
    kind: "CustomResourceDefinition",
    plural: "customresourcedefinitions",
    scope: Scope::Cluster,
};

/// What applying one object would do, found by reading before anything is written.
enum Outcome {
    /// Applying changes nothing; for a CRD, whether it is Established already.
    Unchanged { established: bool },
    /// The object exists and would change (the changed fields).
    Configured { diff: String },
    /// The object does not exist.
    Created,
    /// Its kind is defined by a CRD this run creates: it is read once that is served.
    KindAfterCrds,
}

/// What one apply run knows about the whole object set.
struct Plan<'a> {
    opts: &'a ApplyOptions,
    reporter: &'a dyn ApplyReporter,
    /// Namespaces created by this run (a dry run cannot validate objects inside them).
    namespaces: HashSet<String>,
    /// (group, kind) of CRDs in this run.
    kinds: HashSet<(String, String)>,
    writes: AtomicUsize,
}

impl Cluster {
    /// Applies `objects` in stages with server-side apply; see the module docs.
    pub async fn apply(
        &self,
        objects: Vec<Value>,
        opts: &ApplyOptions,
        reporter: &dyn ApplyReporter,
    ) -> Result<ApplyReport, ClusterError> {
        let mut items = objects
            .into_iter()
            .enumerate()
            .map(|(i, v)| Ok((ObjectRef::from_manifest(i, &v)?, v)))
            .collect::<Result<Vec<_>, ClusterError>>()?;
        items.sort_by_key(|(r, _)| kind_priority(&r.kind));
        let plan = Plan {
            opts,
            reporter,
            namespaces: items
                .iter()
                .filter(|(r, _)| r.kind == "Namespace" && r.api_version == "v1")
                .map(|(r, _)| r.name.clone())
                .collect(),
            kinds: items
                .iter()
                .filter(|(r, _)| r.kind == "CustomResourceDefinition")
                .filter_map(|(_, v)| {
                    let text = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
                    Some((text("/spec/group")?, text("/spec/names/kind")?))
                })
                .collect(),
            writes: AtomicUsize::new(0),
        };
        // Read first: every object against the live cluster at once (bounded), so an
        // unchanged install costs one round of reads instead of one per kind priority.
        // (Collected first: a stream over a borrowing closure trips the compiler's `Send`
        // check of the spawned future that awaits it.)
        let reads: Vec<_> = items
            .iter()
            .map(|(r, v)| self.classify(&plan, r, v))
            .collect();
        let outcomes: Vec<Outcome> = futures::stream::iter(reads)
            .buffered(opts.concurrency.max(1))
            .try_collect()
            .await?;
        // Objects of a kind whose CRD this run writes are read again once it is Established:
        // their dry run must see the new schema.
        let rewritten_kinds: HashSet<(String, String)> = items
            .iter()
            .zip(&outcomes)
            .filter(|((r, _), o)| {
                r.kind == "CustomResourceDefinition" && !matches!(o, Outcome::Unchanged { .. })
            })
            .filter_map(|((_, v), _)| {
                let text = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
                Some((text("/spec/group")?, text("/spec/names/kind")?))
            })
            .collect();
        let (first, rest): (Vec<_>, Vec<_>) = items
            .into_iter()
            .zip(outcomes)
            .partition(|((r, _), _)| is_stage_one(r));

        // Then write, in stages, only what is new or drifted.
        reporter.stage(ApplyStage::ClusterDefinitions, first.len());
        let mut entries = Vec::new();
        let mut pending_crds = Vec::new();
        for bucket in buckets(first) {
            for (entry, established) in self.write_bucket(&plan, bucket, &rewritten_kinds).await? {
                if entry.object.kind == "CustomResourceDefinition" && !established {
                    pending_crds.push(entry.object.name.clone());
                }
                entries.push(entry);
            }
        }
        if !opts.dry_run && !pending_crds.is_empty() {
            reporter.stage(ApplyStage::WaitingForCrds, pending_crds.len());
            self.wait_crds_established(&pending_crds, opts.timeout)
                .await?;
        }

        reporter.stage(ApplyStage::Resources, rest.len());
        for bucket in buckets(rest) {
            entries.extend(
                self.write_bucket(&plan, bucket, &rewritten_kinds)
                    .await?
                    .into_iter()
                    .map(|(e, _)| e),
            );
        }
        Ok(ApplyReport {
            entries,
            writes: plan.writes.load(Ordering::Relaxed),
        })
    }

    /// Writes what a bucket's outcomes ask for, concurrently, and reports each object.
    async fn write_bucket(
        &self,
        plan: &Plan<'_>,
        bucket: Vec<((ObjectRef, Value), Outcome)>,
        rewritten_kinds: &HashSet<(String, String)>,
    ) -> Result<Vec<(ApplyEntry, bool)>, ClusterError> {
        let writes: Vec<_> = bucket
            .into_iter()
            .map(|((object, value), outcome)| {
                self.write_one(plan, object, value, outcome, rewritten_kinds)
            })
            .collect();
        futures::stream::iter(writes)
            .buffered(plan.opts.concurrency.max(1))
            .try_collect()
            .await
    }

    /// Writes one object if its outcome asks for it (reading it again first when its kind
    /// is new or was just redefined) and reports it.
    async fn write_one(
        &self,
        plan: &Plan<'_>,
        object: ObjectRef,
        value: Value,
        outcome: Outcome,
        rewritten_kinds: &HashSet<(String, String)>,
    ) -> Result<(ApplyEntry, bool), ClusterError> {
        let new_kind = matches!(outcome, Outcome::KindAfterCrds);
        let outcome = if new_kind
            || rewritten_kinds.contains(&(object.group().to_owned(), object.kind.clone()))
        {
            if new_kind {
                self.api_after_discovery_catches_up(&object).await?;
            }
            self.classify(plan, &object, &value).await?
        } else {
            outcome
        };
        let (change, diff, established) = match outcome {
            Outcome::Unchanged { established } => (Change::Unchanged, None, established),
            Outcome::Configured { diff } => (Change::Configured, Some(diff), false),
            Outcome::Created => (Change::Created, None, false),
            Outcome::KindAfterCrds => {
                return Err(ClusterError::UnknownKind {
                    api_version: object.api_version,
                    kind: object.kind,
                });
            }
        };
        if change != Change::Unchanged && !plan.opts.dry_run {
            let api =
                self.dynamic_api(&object)
                    .await?
                    .ok_or_else(|| ClusterError::UnknownKind {
                        api_version: object.api_version.clone(),
                        kind: object.kind.clone(),
                    })?;
            self.write(plan, &api, &object, &value).await?;
        }
        Ok(report(plan, object, change, diff, established))
    }

    /// What applying one object would do, from reads and a dry run only.
    async fn classify(
        &self,
        plan: &Plan<'_>,
        object: &ObjectRef,
        value: &Value,
    ) -> Result<Outcome, ClusterError> {
        let dry_run = plan.opts.dry_run;
        let planned_kind = plan
            .kinds
            .contains(&(object.group().to_owned(), object.kind.clone()));
        let api = match self.dynamic_api(object).await? {
            Some(api) => api,
            // The CRD is created by this run: nothing of its kind exists yet.
            None if planned_kind && dry_run => return Ok(Outcome::Created),
            None if planned_kind => return Ok(Outcome::KindAfterCrds),
            None => {
                return Err(ClusterError::UnknownKind {
                    api_version: object.api_version.clone(),
                    kind: object.kind.clone(),
                });
            }
        };
        let fail = |source| ClusterError::Apply {
            object: Box::new(object.clone()),
            source,
        };
        let live = api.get_opt(&object.name).await.map_err(fail)?;
        let dry = PatchParams::apply(FIELD_MANAGER).force().dry_run();
        let Some(live) = live else {
            if dry_run {
                // Validate what we can; objects in a namespace this run creates cannot be checked.
                if let Err(e) = api.patch(&object.name, &dry, &Patch::Apply(value)).await {
                    let in_new_ns = object
                        .namespace
                        .as_ref()
                        .is_some_and(|n| plan.namespaces.contains(n));
                    if !(is_status(&e, 404) && in_new_ns) {
                        return Err(fail(e));
                    }
                }
            }
            return Ok(Outcome::Created);
        };
        let planned = api
            .patch(&object.name, &dry, &Patch::Apply(value))
            .await
            .map_err(fail)?;
        let live = serde_json::to_value(&live).unwrap_or_default();
        let planned = serde_json::to_value(&planned).unwrap_or_default();
        Ok(match diff(&live, &planned) {
            None => Outcome::Unchanged {
                established: crd_established(&live),
            },
            Some(diff) => Outcome::Configured { diff },
        })
    }

    async fn write(
        &self,
        plan: &Plan<'_>,
        api: &Api<DynamicObject>,
        object: &ObjectRef,
        value: &Value,
    ) -> Result<(), ClusterError> {
        plan.writes.fetch_add(1, Ordering::Relaxed);
        api.patch(
            &object.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(value),
        )
        .await
        .map_err(|source| ClusterError::Apply {
            object: Box::new(object.clone()),
            source,
        })?;
        Ok(())
    }

    /// A CRD just became Established but discovery may lag a moment behind it.
    async fn api_after_discovery_catches_up(
        &self,
        object: &ObjectRef,
    ) -> Result<Api<DynamicObject>, ClusterError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(api) = self.dynamic_api(object).await? {
                return Ok(api);
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::UnknownKind {
                    api_version: object.api_version.clone(),
                    kind: object.kind.clone(),
                });
            }
        }
    }

    /// Waits (watching) until every CRD in `names` is Established with its names accepted.
    ///
    /// kube-apiserver queues a CRD for establishing only on CRD *update* events. A CRD
    /// written just before the API server went down therefore stays `Established=False`
    /// (names accepted) after a restart until the informer resync minutes later. Such CRDs
    /// are nudged once, by adding and removing an annotation, which is an update.
    pub(crate) async fn wait_crds_established(
        &self,
        names: &[String],
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let api = self.fixed_api(&CRDS, None);
        let deadline = Instant::now() + timeout;
        let mut stuck: Vec<String> = Vec::new();
        let mut nudged = false;
        loop {
            let phase_end = if nudged {
                deadline
            } else {
                deadline.min(Instant::now() + NUDGE_AFTER)
            };
            stuck.clear();
            let end = watch_until(&api, None, phase_end, self.request_timeout, |crds| {
                stuck.clear();
                let pending: Vec<String> = names
                    .iter()
                    .filter_map(|name| match crds.get(name) {
                        None => Some(format!("{name} (not found)")),
                        Some(crd) if crd_established(crd) => None,
                        Some(crd) => Some(match condition(crd, "NamesAccepted") {
                            Some(("False", reason, message)) => {
                                format!("{name} (NamesAccepted=False, {reason}: {message})")
                            }
                            Some(("True", ..)) => {
                                stuck.push(name.clone());
                                format!("{name} (not established yet)")
                            }
                            _ => format!("{name} (not established yet)"),
                        }),
                    })
                    .collect();
                if pending.is_empty() {
                    Step::Done
                } else {
                    Step::Pending(pending.join(", "))
                }
            })
            .await;
            match end {
                WatchEnd::Done => return Ok(()),
                WatchEnd::TimedOut(_) if !nudged && Instant::now() < deadline => {
                    nudged = true;
                    for name in &stuck {
                        self.nudge(&api, name).await;
                    }
                }
                WatchEnd::Failed(pending) | WatchEnd::TimedOut(pending) => {
                    return Err(ClusterError::CrdsNotEstablished { pending, timeout });
                }
            }
        }
    }

    /// Two metadata updates that leave the CRD as it was; errors are ignored because the
    /// wait that follows reports what matters.
    async fn nudge(&self, api: &Api<DynamicObject>, name: &str) {
        let params = PatchParams {
            field_manager: Some("kubectl-fluxbootstrap".to_owned()),
            ..PatchParams::default()
        };
        for value in [Value::String("1".to_owned()), Value::Null] {
            let patch = serde_json::json!({"metadata": {"annotations": {NUDGE_ANNOTATION: value}}});
            let _ = api.patch(name, &params, &Patch::Merge(&patch)).await;
        }
    }
}

/// How long a CRD with accepted names may stay unestablished before it is nudged.
const NUDGE_AFTER: Duration = Duration::from_secs(3);

/// The temporary annotation of [`Cluster::nudge`].
const NUDGE_ANNOTATION: &str = "kubectl-fluxbootstrap/establish";

fn report(
    plan: &Plan<'_>,
    object: ObjectRef,
    change: Change,
    diff: Option<String>,
    established: bool,
) -> (ApplyEntry, bool) {
    let entry = ApplyEntry {
        object,
        change,
        diff,
    };
    plan.reporter.object(&entry);
    (entry, established)
}

/// Whether a (live) CRD is Established with its names accepted.
fn crd_established(crd: &Value) -> bool {
    matches!(condition(crd, "Established"), Some(("True", ..)))
        && matches!(condition(crd, "NamesAccepted"), Some(("True", ..)))
}

/// Splits objects (already sorted by priority, each with what goes with it) into runs of
/// equal priority.
fn buckets<T>(items: Vec<((ObjectRef, Value), T)>) -> Vec<Vec<((ObjectRef, Value), T)>> {
    let mut out: Vec<Vec<((ObjectRef, Value), T)>> = Vec::new();
    for item in items {
        match out.last_mut() {
            Some(last) if kind_priority(&last[0].0.0.kind) == kind_priority(&item.0.0.kind) => {
                last.push(item);
            }
            _ => out.push(vec![item]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn buckets_group_equal_priorities() {
        let item = |kind: &str, name: &str| {
            let v = json!({"apiVersion":"v1","kind":kind,"metadata":{"name":name}});
            ((ObjectRef::from_manifest(0, &v).unwrap(), v), ())
        };
        let b = buckets(vec![
            item("ServiceAccount", "a"),
            item("ServiceAccount", "b"),
            item("Service", "c"),
        ]);
        let names: Vec<Vec<&str>> = b
            .iter()
            .map(|b| b.iter().map(|((r, _), ())| r.name.as_str()).collect())
            .collect();
        assert_eq!(names, [vec!["a", "b"], vec!["c"]]);
    }

    #[test]
    fn crd_established_needs_both_conditions() {
        let crd = json!({"status":{"conditions":[
            {"type":"NamesAccepted","status":"True"},{"type":"Established","status":"True"}]}});
        assert!(crd_established(&crd));
        let clash = json!({"status":{"conditions":[
            {"type":"NamesAccepted","status":"False"},{"type":"Established","status":"False"}]}});
        assert!(!crd_established(&clash));
    }
}
