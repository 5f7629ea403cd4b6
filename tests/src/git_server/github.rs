//! `github.com` and `api.github.com` on the harness endpoint: what the real `flux` CLI asks
//! GitHub for when it bootstraps a `--version` other than the one it embeds (the release's
//! existence through the releases API, then its `manifests.tar.gz`), answered by a
//! [`crate::ReleaseServer`] the test publishes releases on.
//!
//! The CLI reaches these names through [`crate::EgressProxy`] and verifies the endpoint's
//! certificate (which carries them) against the harness CA, as it would GitHub's. Requests
//! are forwarded unchanged, path and query, so the release server's layout is GitHub's.

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::http::{Body, full, text};
use super::state::State;

/// The names this endpoint answers for.
pub(crate) const HOSTS: [&str; 2] = ["github.com", "api.github.com"];

pub(crate) fn is_for_github(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split(':').next())
        .is_some_and(|h| HOSTS.contains(&h))
}

/// Forwards the request to the release server, or answers 502 when none is set or it fails.
pub(crate) async fn forward(state: &State, req: Request<Incoming>) -> Response<Body> {
    let Some(backend) = state.github_releases() else {
        return text(
            StatusCode::BAD_GATEWAY,
            "no release server: call GitServer::serve_github_releases first",
        );
    };
    match send(&backend, &req).await {
        Ok(response) => response,
        Err(e) => text(
            StatusCode::BAD_GATEWAY,
            &format!("release server {backend}: {e}"),
        ),
    }
}

async fn send(backend: &str, req: &Request<Incoming>) -> Result<Response<Body>, String> {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", hyper::http::uri::PathAndQuery::as_str);
    let stream = tokio::net::TcpStream::connect(backend)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = Request::builder()
        .method(req.method())
        .uri(path)
        .header(hyper::header::HOST, backend)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Response::from_parts(parts, full(bytes)))
}
