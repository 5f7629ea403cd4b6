//! The HTTPS endpoint: TLS, Azure-DevOps-style authentication, routing, and git smart HTTP
//! through the real `git http-backend` as a CGI with streamed bodies.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as HttpBody, Frame, Incoming};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::TcpListener;
use tokio::process::ChildStdout;
use tokio_rustls::TlsAcceptor;

use super::faults::{self, FaultAction};
use super::rest;
use super::state::{Access, RepoMeta, State, decode_segment, guid};

/// Response body type of every handler.
pub(crate) type Body = BoxBody<Bytes, std::io::Error>;

/// Accept TLS connections forever, one task per connection.
pub(crate) async fn serve(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { handle_with_faults(&state, req).await }
            });
            // Connection errors (client went away) are not the server's concern.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// The server "died" serving a request ([`FaultAction::DieBefore`], [`FaultAction::DieAfter`]):
/// returned to hyper, it closes the connection without an answer.
#[derive(Debug)]
struct ServerDied;

impl std::fmt::Display for ServerDied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the server died (injected fault)")
    }
}

impl std::error::Error for ServerDied {}

/// [`handle`], unless an injected fault decides otherwise.
async fn handle_with_faults(
    state: &State,
    req: Request<Incoming>,
) -> Result<Response<Body>, ServerDied> {
    let segments: Vec<String> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .filter_map(decode_segment)
        .collect();
    let org = segments.first().cloned().unwrap_or_default();
    let target = faults::target_of(req.method(), &segments, req.uri().query().unwrap_or(""));
    match state.faults.meet(&org, target) {
        None => Ok(handle(state, req).await),
        Some(FaultAction::Status {
            status,
            retry_after_secs,
        }) => Ok(faults::status_response(status, retry_after_secs)),
        Some(FaultAction::DieBefore) => Err(ServerDied),
        Some(FaultAction::DieAfter) => {
            // Let git finish (its whole answer is read, so a push's refs are updated), then
            // die after the status line: the answer's body breaks off before its first byte.
            let response = handle(state, req).await;
            let (parts, body) = response.into_parts();
            let _ = body.collect().await;
            let broken = http_body_util::StreamBody::new(futures::stream::once(async {
                Err::<Frame<Bytes>, _>(std::io::Error::other(ServerDied))
            }));
            Ok(Response::from_parts(parts, broken.boxed()))
        }
    }
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    if super::entra::is_for_authority(&req) {
        return super::entra::handle(state, req).await;
    }
    if super::github::is_for_github(&req) {
        return super::github::forward(state, req).await;
    }
    let Some(segments) = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode_segment)
        .collect::<Option<Vec<String>>>()
    else {
        return text(StatusCode::BAD_REQUEST, "invalid percent-encoding in path");
    };
    if super::pats::is_pats_route(&segments) {
        super::pats::handle(state, req, &segments[0]).await
    } else if segments.iter().any(|s| s == "_apis") {
        rest::handle(state, req, &segments).await
    } else if segments.iter().any(|s| s == "_git") {
        git(state, req, &segments).await
    } else {
        text(StatusCode::NOT_FOUND, "not found")
    }
}

/// The outcome of checking the `Authorization` header.
pub(crate) enum Credential {
    /// No `Authorization` header.
    Missing,
    /// A header that grants nothing (unknown or revoked PAT, wrong token, empty user for git).
    Invalid,
    /// A valid PAT or token.
    Valid(Access),
}

/// Check Basic (any user, PAT or Entra token as password) or Bearer (Entra token) credentials.
/// Git requires a non-empty user name; REST does not (`curl -u :PAT`).
pub(crate) fn authenticate(state: &State, headers: &HeaderMap, require_user: bool) -> Credential {
    let Some(value) = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Credential::Missing;
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    let access = if scheme.eq_ignore_ascii_case("basic") {
        base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|pair| {
                let (user, secret) = pair.split_once(':')?;
                if require_user && user.is_empty() {
                    return None;
                }
                state.access_for(secret)
            })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        (!rest.is_empty() && rest == state.bearer_token).then_some(Access::Full)
    } else {
        None
    };
    access.map_or(Credential::Invalid, Credential::Valid)
}

/// The Azure DevOps TF error envelope.
pub(crate) fn tf_error(status: StatusCode, message: &str, type_key: &str) -> Response<Body> {
    let body = serde_json::json!({
        "$id": "1",
        "innerException": null,
        "message": message,
        "typeName": format!("Microsoft.TeamFoundation.Framework.Server.{type_key}, Microsoft.TeamFoundation.Framework.Server"),
        "typeKey": type_key,
        "errorCode": 0,
        "eventId": 3000,
    });
    json(status, &body)
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    add_tracing_headers(response.headers_mut());
    response
}

/// A plain-text response.
pub(crate) fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(full(body.to_owned()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    add_tracing_headers(response.headers_mut());
    response
}

pub(crate) fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn add_tracing_headers(headers: &mut HeaderMap) {
    for name in ["activityid", "x-tfs-session", "x-vss-e2eid"] {
        if let Ok(value) = HeaderValue::from_str(&guid()) {
            headers.insert(name, value);
        }
    }
    headers.insert(
        "x-tfs-processid",
        HeaderValue::from_static("5e5d9a53-2e5b-4f4e-9d4b-0123456789ab"),
    );
}

/// 401 with the headers Azure DevOps sends (`azure-devops.md` §3.3) and the TF400813 body.
pub(crate) fn unauthorized(state: &State) -> Response<Body> {
    let mut response = tf_error(
        StatusCode::UNAUTHORIZED,
        "TF400813: Resource not available for anonymous access. Client authentication required.",
        "UnauthorizedRequestException",
    );
    let headers = response.headers_mut();
    let base = state.https_base();
    for value in [
        format!(
            "Bearer authorization_uri=https://login.microsoftonline.com/{}",
            state.tenant_id
        ),
        format!("Basic realm=\"{base}/\""),
        "TFS-Federated".to_owned(),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(hyper::header::WWW_AUTHENTICATE, value);
        }
    }
    for (name, value) in [
        ("x-vss-resourcetenant", state.tenant_id.clone()),
        ("x-tfs-fedauthrealm", format!("{base}/")),
        ("x-tfs-fedauthissuer", format!("{base}/_signin")),
        (
            "x-vss-authorizationendpoint",
            format!("{base}/_apis/Token/SessionTokens"),
        ),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Service {
    UploadPack,
    ReceivePack,
}

/// Git smart HTTP on `/{org}/{project}/_git/[_optimized/|_full/]{repo}[.git]/...` and
/// `/{org}/_git/{repo}/...` (project named like the repository).
async fn git(state: &State, req: Request<Incoming>, segments: &[String]) -> Response<Body> {
    let Some(git_at) = segments.iter().position(|s| s == "_git") else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    let (org, project) = match git_at {
        1 => (&segments[0], None),
        2 => (&segments[0], Some(&segments[1])),
        _ => return text(StatusCode::NOT_FOUND, "not found"),
    };
    let mut rest = &segments[git_at + 1..];
    if rest
        .first()
        .is_some_and(|s| s == "_optimized" || s == "_full")
    {
        rest = &rest[1..];
    }
    let Some((repo, tail)) = rest.split_first() else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    let repo = repo.strip_suffix(".git").unwrap_or(repo);
    let project = project.map_or(repo, String::as_str);
    let tail = tail.join("/");
    let query = req.uri().query().unwrap_or("").to_owned();
    let service = match (req.method(), tail.as_str()) {
        (&Method::GET, "info/refs") => {
            match query.split('&').find_map(|kv| kv.strip_prefix("service=")) {
                Some("git-upload-pack") => Service::UploadPack,
                Some("git-receive-pack") => Service::ReceivePack,
                // Azure DevOps speaks only the smart protocol.
                _ => return text(StatusCode::FORBIDDEN, "dumb HTTP is not supported"),
            }
        }
        (&Method::POST, "git-upload-pack") => Service::UploadPack,
        (&Method::POST, "git-receive-pack") => Service::ReceivePack,
        _ => return text(StatusCode::NOT_FOUND, "not found"),
    };
    let access = match authenticate(state, req.headers(), true) {
        Credential::Valid(access) => access,
        Credential::Missing | Credential::Invalid => return unauthorized(state),
    };
    let Some(meta) = state.find_repo(org, project, repo) else {
        return tf_error(
            StatusCode::NOT_FOUND,
            &format!(
                "TF401019: The Git repository with name or identifier {repo} does not exist or you do not have permissions for the operation you are attempting."
            ),
            "GitRepositoryNotFoundException",
        );
    };
    if service == Service::ReceivePack && access == Access::ReadOnly {
        return tf_error(
            StatusCode::FORBIDDEN,
            &format!(
                "TF401027: You need the Git 'GenericContribute' permission to perform this action. Details: identity 'Test User', scope 'repository {}'.",
                meta.name
            ),
            "GitNeedsPermissionException",
        );
    }
    match cgi(state, req, &meta, &tail, &query).await {
        Ok(response) => response,
        Err(err) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("git http-backend failed: {err}"),
        ),
    }
}

/// Run `git http-backend` for one request, streaming the request body to its stdin and its
/// stdout (after the CGI headers) back to the client.
async fn cgi(
    state: &State,
    req: Request<Incoming>,
    meta: &RepoMeta,
    tail: &str,
    query: &str,
) -> std::io::Result<Response<Body>> {
    let relative = meta
        .bare_path
        .strip_prefix(&state.repos_root)
        .map_err(std::io::Error::other)?;
    let path_info = format!("/{}/{tail}", relative.display());
    let log = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&state.backend_log)?;
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_GLOBAL", &state.git_config)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_PROJECT_ROOT", &state.repos_root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REQUEST_METHOD", req.method().as_str())
        .env("PATH_INFO", path_info)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        // http-backend only enables receive-pack for authenticated users.
        .env("REMOTE_USER", "azure-devops-user")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::from(log.into_parts().0))
        .kill_on_drop(true);
    let headers = req.headers();
    for (header, var) in [
        (hyper::header::CONTENT_TYPE, "CONTENT_TYPE"),
        (hyper::header::CONTENT_LENGTH, "CONTENT_LENGTH"),
        // http-backend inflates gzip request bodies itself.
        (hyper::header::CONTENT_ENCODING, "HTTP_CONTENT_ENCODING"),
    ] {
        if let Some(value) = headers.get(header).and_then(|v| v.to_str().ok()) {
            cmd.env(var, value);
        }
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().expect("stdin was piped");
    let mut stdout = child.stdout.take().expect("stdout was piped");
    let mut body = req.into_body();
    tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            if let Ok(data) = frame.into_data()
                && stdin.write_all(&data).await.is_err()
            {
                break;
            }
        }
        drop(stdin);
        let _ = child.wait().await;
    });

    // Read the CGI header block.
    let mut buf = Vec::new();
    let header_end = loop {
        if let Some(end) = find_header_end(&buf) {
            break end;
        }
        let mut chunk = [0u8; 8192];
        let n = stdout.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other(
                "git http-backend exited before sending headers",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let (head, body_start) = header_end;
    let mut response = Response::new(
        CgiBody {
            pending: Some(Bytes::copy_from_slice(&buf[body_start..])),
            stdout,
            done: false,
        }
        .boxed(),
    );
    for line in String::from_utf8_lossy(&buf[..head]).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            if let Some(code) = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
            {
                *response.status_mut() = code;
            }
        } else if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    Ok(response)
}

/// `(end of headers, start of body)` in a CGI output buffer.
fn find_header_end(buf: &[u8]) -> Option<(usize, usize)> {
    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some((i, i + 4));
    }
    buf.windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2))
}

/// The CGI's stdout after its headers, streamed as the response body.
struct CgiBody {
    pending: Option<Bytes>,
    stdout: ChildStdout,
    done: bool,
}

impl HttpBody for CgiBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(pending) = self.pending.take()
            && !pending.is_empty()
        {
            return Poll::Ready(Some(Ok(Frame::data(pending))));
        }
        if self.done {
            return Poll::Ready(None);
        }
        let mut chunk = vec![0u8; 16 * 1024];
        let mut read_buf = ReadBuf::new(&mut chunk);
        match Pin::new(&mut self.stdout).poll_read(cx, &mut read_buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(err)) => Poll::Ready(Some(Err(err))),
            Poll::Ready(Ok(())) => {
                let n = read_buf.filled().len();
                if n == 0 {
                    self.done = true;
                    Poll::Ready(None)
                } else {
                    chunk.truncate(n);
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
                }
            }
        }
    }
}
