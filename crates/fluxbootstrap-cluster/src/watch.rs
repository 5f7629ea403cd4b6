//! List-then-watch until a condition over a set of objects holds.
//!
//! Every wait in the crate (CRDs Established, Deployments available, `GitRepository` and
//! Kustomization Ready) goes through [`watch_until`], so a cluster that is already ready is
//! detected with one list request, and a change is seen as soon as the API server sends it
//! instead of after a fixed 2-5 s poll. Transient errors (the API server restarting, a CRD not
//! served yet) are retried until the deadline and reported as the last pending status.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams, WatchEvent, WatchParams};
use serde_json::Value;
use tokio::time::{Instant, sleep_until, timeout_at};

/// What a condition says about the current objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Satisfied.
    Done,
    /// Not yet; the text says what we are waiting for.
    Pending(String),
    /// Will not be satisfied (fail fast); the text is the reason.
    Failed(String),
}

/// How a watch ended.
#[derive(Debug)]
pub(crate) enum WatchEnd {
    Done,
    Failed(String),
    TimedOut(String),
}

/// Objects by `metadata.name`.
pub(crate) type Objects = BTreeMap<String, Value>;

/// Lists and watches `api` (optionally narrowed by a field selector) until `eval` returns
/// [`Step::Done`] or [`Step::Failed`], or `deadline` passes.
pub(crate) async fn watch_until(
    api: &Api<DynamicObject>,
    fields: Option<&str>,
    deadline: Instant,
    request_timeout: Option<Duration>,
    mut eval: impl FnMut(&Objects) -> Step,
) -> WatchEnd {
    let mut last = "no status yet".to_owned();
    let mut error: Option<String> = None;
    let timed_out = |last: String, error: Option<String>| match error {
        Some(e) => WatchEnd::TimedOut(format!("{last}; last request failed: {e}")),
        None => WatchEnd::TimedOut(last),
    };
    let mut backoff = Duration::from_millis(50);
    loop {
        if Instant::now() >= deadline {
            return timed_out(last, error);
        }
        let mut lp = ListParams::default();
        if let Some(f) = fields {
            lp = lp.fields(f);
        }
        let list = match timeout_at(deadline, api.list(&lp)).await {
            Err(_) => return timed_out(last, error),
            Ok(Err(e)) => {
                error = Some(first_line(&e));
                sleep_until((Instant::now() + backoff).min(deadline)).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
            Ok(Ok(list)) => list,
        };
        backoff = Duration::from_millis(50);
        error = None;
        let mut objects: Objects = list
            .items
            .into_iter()
            .filter_map(|o| Some((o.metadata.name.clone()?, serde_json::to_value(o).ok()?)))
            .collect();
        match eval(&objects) {
            Step::Done => return WatchEnd::Done,
            Step::Failed(m) => return WatchEnd::Failed(m),
            Step::Pending(m) => last = m,
        }
        let Some(mut version) = list.metadata.resource_version else {
            continue;
        };
        // Watch from the listed version; a watch that the server closed (its timeout) is
        // resumed from the last version seen, an error or `410 Gone` relists.
        'watching: loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let mut secs = remaining.as_secs().clamp(1, 290);
            if let Some(t) = request_timeout {
                secs = secs.min(t.as_secs().max(1));
            }
            let mut wp = WatchParams::default().timeout(u32::try_from(secs).unwrap_or(290));
            if let Some(f) = fields {
                wp = wp.fields(f);
            }
            let stream = match timeout_at(deadline, api.watch(&wp, &version)).await {
                Err(_) => return WatchEnd::TimedOut(last),
                Ok(Err(_)) => break 'watching,
                Ok(Ok(stream)) => stream,
            };
            let mut stream = std::pin::pin!(stream);
            loop {
                let event = match timeout_at(deadline, stream.next()).await {
                    Err(_) => return WatchEnd::TimedOut(last),
                    Ok(None) => continue 'watching,
                    Ok(Some(Err(_))) => break 'watching,
                    Ok(Some(Ok(event))) => event,
                };
                match event {
                    WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                        if let Some(v) = o.metadata.resource_version.clone() {
                            version = v;
                        }
                        if let (Some(name), Ok(value)) =
                            (o.metadata.name.clone(), serde_json::to_value(&o))
                        {
                            objects.insert(name, value);
                        }
                    }
                    WatchEvent::Deleted(o) => {
                        if let Some(v) = o.metadata.resource_version.clone() {
                            version = v;
                        }
                        if let Some(name) = &o.metadata.name {
                            objects.remove(name);
                        }
                    }
                    WatchEvent::Bookmark(b) => {
                        version = b.metadata.resource_version;
                        continue;
                    }
                    WatchEvent::Error(_) => break 'watching,
                }
                match eval(&objects) {
                    Step::Done => return WatchEnd::Done,
                    Step::Failed(m) => return WatchEnd::Failed(m),
                    Step::Pending(m) => last = m,
                }
            }
        }
    }
}

/// The first line of an error's message, for a one-line pending status.
pub(crate) fn first_line(err: &dyn std::fmt::Display) -> String {
    err.to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The condition `type_` of an object's `status.conditions`, as (status, reason, message).
pub(crate) fn condition<'a>(obj: &'a Value, type_: &str) -> Option<(&'a str, &'a str, &'a str)> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find_map(|c| {
            (c.get("type")?.as_str()? == type_).then(|| {
                let field = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default();
                (field("status"), field("reason"), field("message"))
            })
        })
}
