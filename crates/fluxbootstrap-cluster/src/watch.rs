//! Watch until a condition over a set of objects holds.
//!
//! Every wait in the crate (CRDs Established, Deployments available, `GitRepository` and
//! Kustomization Ready) goes through [`watch_until`], so a cluster that is already ready is
//! detected with the initial list, and a change is seen as soon as the API server sends it
//! instead of after a fixed 2-5 s poll. The list+watch cycle is `kube::runtime::watcher`: it
//! resumes a closed watch from the last version (bookmarks on), relists after `410 Gone`, and
//! backs off exponentially after an error (the API server restarting, a CRD not served yet),
//! which is retried until the deadline and reported with the last pending status.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use tokio::time::{Instant, timeout_at};

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

/// Watches `api` (optionally narrowed by a field selector) until `eval` returns
/// [`Step::Done`] or [`Step::Failed`], or `deadline` passes. `eval` sees the complete set
/// after every (re)list and after each change.
pub(crate) async fn watch_until(
    api: &Api<DynamicObject>,
    fields: Option<&str>,
    deadline: Instant,
    request_timeout: Option<Duration>,
    mut eval: impl FnMut(&Objects) -> Step,
) -> WatchEnd {
    // The server closes each watch after this long; the watcher then resumes it.
    let remaining = deadline.saturating_duration_since(Instant::now());
    let mut secs = remaining.as_secs().clamp(1, 290);
    if let Some(t) = request_timeout {
        secs = secs.min(t.as_secs().max(1));
    }
    let mut config = watcher::Config::default().timeout(u32::try_from(secs).unwrap_or(290));
    if let Some(f) = fields {
        config = config.fields(f);
    }
    let stream = watcher::watcher(api.clone(), config).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut objects = Objects::new();
    let mut listing: Option<Objects> = None;
    let mut last = "no status yet".to_owned();
    let mut error: Option<String> = None;
    loop {
        let event = match timeout_at(deadline, stream.next()).await {
            Err(_) | Ok(None) => {
                return WatchEnd::TimedOut(match error {
                    Some(e) => format!("{last}; last request failed: {e}"),
                    None => last,
                });
            }
            Ok(Some(Err(e))) => {
                error = Some(first_line(&e));
                continue;
            }
            Ok(Some(Ok(event))) => event,
        };
        error = None;
        match event {
            Event::Init => {
                listing = Some(Objects::new());
                continue;
            }
            Event::InitApply(o) => {
                if let (Some(list), Some((name, value))) = (listing.as_mut(), named(&o)) {
                    list.insert(name, value);
                }
                continue;
            }
            Event::InitDone => objects = listing.take().unwrap_or_default(),
            Event::Apply(o) => {
                if let Some((name, value)) = named(&o) {
                    objects.insert(name, value);
                }
            }
            Event::Delete(o) => {
                if let Some(name) = &o.metadata.name {
                    objects.remove(name);
                }
            }
        }
        match eval(&objects) {
            Step::Done => return WatchEnd::Done,
            Step::Failed(m) => return WatchEnd::Failed(m),
            Step::Pending(m) => last = m,
        }
    }
}

/// An object as (name, JSON).
fn named(object: &DynamicObject) -> Option<(String, Value)> {
    Some((
        object.metadata.name.clone()?,
        serde_json::to_value(object).ok()?,
    ))
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
