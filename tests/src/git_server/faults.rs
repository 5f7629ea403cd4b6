//! Faults the HTTPS endpoint can be told to inject, the way Azure DevOps and networks fail:
//! throttling (429 with Azure DevOps' rate-limit headers), brief outages (503), and a server
//! that dies in the middle of a request, before or after git carried it out.
//!
//! Faults are scoped to one organization (the first path segment), so a test that injects
//! them into the shared server only hits its own requests. Every request to an organization
//! that ever had a fault is logged with the time it arrived, so tests can check how far apart
//! the client's retries were.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};

use super::http::{Body, full, tf_error};

/// Which requests a [`Fault`] hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTarget {
    /// Any `_apis` (REST) request.
    Rest,
    /// `GET info/refs?service=git-upload-pack` (the ref advertisement of a fetch).
    FetchAdvertisement,
    /// `POST git-upload-pack` (a fetch's negotiation and pack).
    Fetch,
    /// `GET info/refs?service=git-receive-pack` (the ref advertisement of a push).
    PushAdvertisement,
    /// `POST git-receive-pack` (a push's commands and pack).
    Push,
}

/// What a [`Fault`] does to the request it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with `status` and no work done; a 429 carries `Retry-After` (seconds) and the
    /// `X-RateLimit-*` headers Azure DevOps sends when it throttles.
    Status {
        /// The HTTP status.
        status: u16,
        /// The `Retry-After` seconds, if any.
        retry_after_secs: Option<u64>,
    },
    /// The server dies before git sees the request: the connection closes without an answer
    /// and nothing is carried out.
    DieBefore,
    /// The server dies after git carried the request out (a push's refs are updated), as it
    /// starts answering: the connection closes after the status line, before the answer.
    DieAfter,
}

/// A fault for the next `times` requests of organization `org` that match `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The organization whose requests it hits.
    pub org: String,
    /// Which of its requests.
    pub target: FaultTarget,
    /// What it does.
    pub action: FaultAction,
    /// How many matching requests it hits before it is used up.
    pub times: u32,
}

/// One request to an organization that had faults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// When it arrived.
    pub at: Instant,
    /// What kind of request it was (`None`: not one a fault can target).
    pub target: Option<FaultTarget>,
    /// The fault it met, if any.
    pub fault: Option<FaultAction>,
}

/// The pending faults and the request log.
#[derive(Default)]
pub(crate) struct Faults {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    pending: Vec<Fault>,
    watched: Vec<String>,
    log: Vec<(String, LoggedRequest)>,
}

impl Faults {
    pub(crate) fn inject(&self, fault: Fault) {
        let mut inner = self.lock();
        if !inner.watched.contains(&fault.org) {
            inner.watched.push(fault.org.clone());
        }
        inner.pending.push(fault);
    }

    /// The fault this request meets (using one of its `times`), logging the request.
    pub(crate) fn meet(&self, org: &str, target: Option<FaultTarget>) -> Option<FaultAction> {
        let mut inner = self.lock();
        if !inner.watched.iter().any(|o| o == org) {
            return None;
        }
        let action = target.and_then(|target| {
            let fault = inner
                .pending
                .iter_mut()
                .find(|f| f.org == org && f.target == target && f.times > 0)?;
            fault.times -= 1;
            Some(fault.action)
        });
        inner.log.push((
            org.to_owned(),
            LoggedRequest {
                at: Instant::now(),
                target,
                fault: action,
            },
        ));
        action
    }

    pub(crate) fn log(&self, org: &str) -> Vec<LoggedRequest> {
        self.lock()
            .log
            .iter()
            .filter(|(o, _)| o == org)
            .map(|(_, request)| request.clone())
            .collect()
    }

    /// How many hits the faults of `org` have left.
    pub(crate) fn remaining(&self, org: &str) -> u32 {
        self.lock()
            .pending
            .iter()
            .filter(|f| f.org == org)
            .map(|f| f.times)
            .sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The kind of request `method` on `segments` (decoded path) with `query` is.
pub(crate) fn target_of(method: &Method, segments: &[String], query: &str) -> Option<FaultTarget> {
    if segments.iter().any(|s| s == "_apis") {
        return Some(FaultTarget::Rest);
    }
    if !segments.iter().any(|s| s == "_git") {
        return None;
    }
    let service = query.split('&').find_map(|kv| kv.strip_prefix("service="));
    match (method, segments.last().map(String::as_str), service) {
        (&Method::GET, Some("refs"), Some("git-upload-pack")) => {
            Some(FaultTarget::FetchAdvertisement)
        }
        (&Method::GET, Some("refs"), Some("git-receive-pack")) => {
            Some(FaultTarget::PushAdvertisement)
        }
        (&Method::POST, Some("git-upload-pack"), _) => Some(FaultTarget::Fetch),
        (&Method::POST, Some("git-receive-pack"), _) => Some(FaultTarget::Push),
        _ => None,
    }
}

/// The answer of [`FaultAction::Status`], shaped like Azure DevOps' (a TF error envelope,
/// and for 429 the throttling headers).
pub(crate) fn status_response(status: u16, retry_after_secs: Option<u64>) -> hyper::Response<Body> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut response = if status == StatusCode::TOO_MANY_REQUESTS {
        tf_error(
            status,
            "TF400733: The request has been canceled: Request was blocked due to exceeding usage of resource 'Concurrency' in namespace 'User'.",
            "RequestBlockedException",
        )
    } else {
        // An outage answers from the front door, with an HTML page rather than JSON.
        let mut response = hyper::Response::new(full(
            "<html><body><h1>Service Unavailable</h1></body></html>",
        ));
        *response.status_mut() = status;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    };
    let headers = response.headers_mut();
    if let Some(secs) = retry_after_secs {
        headers.insert(hyper::header::RETRY_AFTER, HeaderValue::from(secs));
        let reset = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs()
            + secs;
        headers.insert(
            "x-ratelimit-resource",
            HeaderValue::from_static("Concurrency/User"),
        );
        headers.insert("x-ratelimit-delay", HeaderValue::from_static("0.000"));
        headers.insert("x-ratelimit-limit", HeaderValue::from_static("200"));
        headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
    }
    response
}
