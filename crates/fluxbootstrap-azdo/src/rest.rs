//! The Azure DevOps REST calls a bootstrap needs, with Azure DevOps' quirks handled.
//!
//! Every request sends `Accept: application/json` and `X-TFS-FedAuthRedirect: Suppress`, so a
//! bad credential yields 401 rather than `203` and an HTML sign-in page (which we still
//! treat as an authentication failure). TLS is rustls on the `ring` provider that the rest
//! of the program already links, with the platform's roots plus an optional extra CA.

use fluxbootstrap_auth::ExposeSecret as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use fluxbootstrap_auth::SecretString;
use percent_encoding::utf8_percent_encode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde::Deserialize;

use crate::error::{AzdoError, CredentialKind, Operation};
use crate::url::RepoUrl;

const API_VERSION: &str = "7.1";
/// `connectionData` exists only as a preview resource.
const CONNECTION_DATA_API_VERSION: &str = "7.1-preview.1";
/// The PAT lifecycle API exists only as a preview resource.
const PATS_API_VERSION: &str = "7.1-preview.1";
const ZERO_ID: &str = "00000000-0000-0000-0000-000000000000";
/// How many times a transient failure is retried ([`RestClient::send_paged`]).
const RETRIES: u32 = 3;
/// The longest a call keeps retrying, waits included.
const RETRY_BUDGET: Duration = Duration::from_mins(1);

/// How the client authenticates.
#[derive(Debug, Clone)]
pub enum RestAuth {
    /// A PAT, sent as Basic auth with an empty user name.
    Basic(SecretString),
    /// An Entra ID access token, sent as `Authorization: Bearer`.
    Bearer(SecretString),
}

/// A client for one repository's organization, project and repository.
#[derive(Debug, Clone)]
pub struct RestClient {
    http: reqwest::Client,
    base: String,
    org: String,
    project: String,
    repo: String,
    credential: CredentialKind,
    notices: Option<RetryNotices>,
}

/// Told about each retry: the error, the attempt that follows, the most attempts, the wait.
pub type RetryNotice = dyn Fn(&str, u32, u32, Duration) + Send + Sync;

#[derive(Clone)]
struct RetryNotices(Arc<RetryNotice>);

impl std::fmt::Debug for RetryNotices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetryNotices")
    }
}

/// A personal access token the PAT lifecycle API created.
#[derive(Debug, Clone)]
pub struct MintedPat {
    /// The id that gets, updates and revokes it (never a secret).
    pub authorization_id: String,
    /// The token itself.
    pub token: SecretString,
    /// When it expires (RFC 3339), as the server set it: a lifetime over the organization's
    /// maximum is shortened to the maximum.
    pub valid_to: String,
}

/// What the PAT lifecycle API says about a PAT (never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatInfo {
    /// Its name.
    pub display_name: String,
    /// Its scopes, space-separated.
    pub scope: String,
    /// When it expires (RFC 3339).
    pub valid_to: String,
}

#[derive(Deserialize)]
struct PatTokenResult {
    #[serde(default, rename = "patToken")]
    token: Option<RawPatToken>,
    #[serde(default, rename = "patTokenError")]
    error: Option<String>,
    #[serde(default, rename = "patTokenErrorMessage")]
    error_message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPatToken {
    #[serde(default)]
    authorization_id: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    valid_to: Option<String>,
}

/// A project (`TeamProject`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    /// GUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// `wellFormed`, `createPending`, ...
    #[serde(default)]
    pub state: Option<String>,
}

/// A Git repository (`GitRepository`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    /// GUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// `refs/heads/...`; absent while the repository is empty.
    #[serde(default)]
    pub default_branch: Option<String>,
    /// HTTPS clone URL as the server spells it.
    #[serde(default)]
    pub remote_url: Option<String>,
    /// SSH clone URL as the server spells it (often scp-like).
    #[serde(default)]
    pub ssh_url: Option<String>,
    /// Web URL.
    #[serde(default)]
    pub web_url: Option<String>,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Disabled repositories cannot be read or pushed.
    #[serde(default)]
    pub is_disabled: bool,
    /// The owning project.
    #[serde(default)]
    pub project: Option<ProjectRef>,
}

impl Repository {
    /// Whether nothing was ever pushed (no default branch).
    pub fn is_empty(&self) -> bool {
        self.default_branch.is_none()
    }
}

/// The project inside a [`Repository`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProjectRef {
    /// GUID.
    pub id: String,
    /// Name.
    pub name: String,
}

/// A ref (`GitRef`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitRef {
    /// Full name, `refs/heads/main`.
    pub name: String,
    /// Commit SHA.
    pub object_id: String,
}

/// Who the credential belongs to (`connectionData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionData {
    /// The authenticated identity's id.
    pub user_id: String,
    /// Its display name, when the server gives one.
    pub display_name: Option<String>,
}

#[derive(Deserialize)]
struct List<T> {
    value: Vec<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConnectionData {
    #[serde(default)]
    authenticated_user: Option<RawIdentity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIdentity {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    provider_display_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    type_key: Option<String>,
}

impl RestClient {
    /// A client for the organization (collection), project and repository of `url`.
    /// `ca_pem` adds trusted roots (Azure DevOps Server, TLS-intercepting proxies).
    pub fn new(
        url: &RepoUrl,
        auth: RestAuth,
        ca_pem: Option<Vec<u8>>,
    ) -> Result<RestClient, AzdoError> {
        let client_err =
            |source: Box<dyn std::error::Error + Send + Sync>| AzdoError::Client { source };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = match ca_pem {
            Some(pem) => {
                let roots = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| client_err(Box::new(e)))?;
                if roots.is_empty() {
                    return Err(AzdoError::EmptyCa);
                }
                rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider.clone())
            }
            None => rustls_platform_verifier::Verifier::new(provider.clone()),
        }
        .map_err(|e| client_err(Box::new(e)))?;
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| client_err(Box::new(e)))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();

        let (mut authorization, credential) = match auth {
            RestAuth::Basic(pat) => {
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!(":{}", pat.expose_secret()));
                (format!("Basic {encoded}"), CredentialKind::Pat)
            }
            RestAuth::Bearer(token) => (
                format!("Bearer {}", token.expose_secret()),
                CredentialKind::Bearer,
            ),
        };
        let mut value =
            HeaderValue::from_str(&authorization).map_err(|e| client_err(Box::new(e)))?;
        authorization.clear();
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(
            "X-TFS-FedAuthRedirect",
            HeaderValue::from_static("Suppress"),
        );
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .default_headers(headers)
            .user_agent(concat!("kubectl-fluxbootstrap/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_mins(2))
            .build()
            .map_err(|e| client_err(Box::new(e)))?;
        Ok(RestClient {
            http,
            base: url.rest_base(),
            org: url.org.clone(),
            project: url.project.clone(),
            repo: url.repo.clone(),
            credential,
            notices: None,
        })
    }

    /// A client for the PAT lifecycle API of `url`'s organization ([`RepoUrl::vssps_base`]):
    /// it takes only a user's Entra token, never a PAT.
    pub fn for_pats(
        url: &RepoUrl,
        entra_token: SecretString,
        ca_pem: Option<Vec<u8>>,
    ) -> Result<RestClient, AzdoError> {
        let mut client = RestClient::new(url, RestAuth::Bearer(entra_token), ca_pem)?;
        client.base = url.vssps_base();
        Ok(client)
    }

    /// Creates a PAT for the signed-in user, for this organization only, with `scope`
    /// (space-separated, e.g. `vso.code`) until `valid_to` (RFC 3339).
    pub async fn create_pat(
        &self,
        display_name: &str,
        scope: &str,
        valid_to: &str,
    ) -> Result<MintedPat, AzdoError> {
        let url = format!("{}/_apis/tokens/pats", self.base);
        let op = Operation::CreatePat;
        let body = serde_json::json!({
            "displayName": display_name,
            "scope": scope,
            "validTo": valid_to,
            "allOrgs": false,
        });
        let body = self
            .send(op, Method::POST, &url, PATS_API_VERSION, &[], Some(body))
            .await?;
        let result: PatTokenResult = decode(op, &url, &body)?;
        let pat = pat_result(op, result)?;
        match (pat.authorization_id, pat.token) {
            (Some(authorization_id), Some(token)) if !token.is_empty() => Ok(MintedPat {
                authorization_id,
                token: SecretString::from(token),
                valid_to: pat.valid_to.unwrap_or_default(),
            }),
            _ => Err(AzdoError::PatRefused {
                operation: op,
                error: "noToken".to_owned(),
                message: "the answer holds no token".to_owned(),
            }),
        }
    }

    /// The PAT with `authorization_id`, or `None` when the server does not know it.
    pub async fn get_pat(&self, authorization_id: &str) -> Result<Option<PatInfo>, AzdoError> {
        let url = format!("{}/_apis/tokens/pats", self.base);
        let op = Operation::GetPat;
        let query = [("authorizationId", authorization_id)];
        let body = match self
            .send(op, Method::GET, &url, PATS_API_VERSION, &query, None)
            .await
        {
            Ok(body) => body,
            Err(AzdoError::Api { status: 404, .. }) => return Ok(None),
            Err(err) => return Err(err),
        };
        let result: PatTokenResult = decode(op, &url, &body)?;
        let pat = pat_result(op, result)?;
        Ok(Some(PatInfo {
            display_name: pat.display_name.unwrap_or_default(),
            scope: pat.scope.unwrap_or_default(),
            valid_to: pat.valid_to.unwrap_or_default(),
        }))
    }

    /// Revokes the PAT with `authorization_id`.
    pub async fn revoke_pat(&self, authorization_id: &str) -> Result<(), AzdoError> {
        let url = format!("{}/_apis/tokens/pats", self.base);
        let query = [("authorizationId", authorization_id)];
        self.send(
            Operation::RevokePat,
            Method::DELETE,
            &url,
            PATS_API_VERSION,
            &query,
            None,
        )
        .await
        .map(drop)
    }

    /// Calls `notice` before each retry of a throttled or failed request.
    #[must_use]
    pub fn on_retry(mut self, notice: Arc<RetryNotice>) -> RestClient {
        self.notices = Some(RetryNotices(notice));
        self
    }

    /// Checks the credential: who is it? Fails with [`AzdoError::Unauthorized`] when anonymous.
    pub async fn connection_data(&self) -> Result<ConnectionData, AzdoError> {
        let url = format!("{}/_apis/connectionData", self.base);
        let op = Operation::ConnectionData;
        let body = self
            .send(
                op,
                Method::GET,
                &url,
                CONNECTION_DATA_API_VERSION,
                &[],
                None,
            )
            .await?;
        let raw: RawConnectionData = decode(op, &url, &body)?;
        let user = raw.authenticated_user.unwrap_or(RawIdentity {
            id: None,
            provider_display_name: None,
        });
        match user.id {
            Some(id) if !id.is_empty() && id != ZERO_ID => Ok(ConnectionData {
                user_id: id,
                display_name: user.provider_display_name,
            }),
            _ => Err(self.unauthorized(op, "the request was treated as anonymous".to_owned())),
        }
    }

    /// The project, or `None` when it does not exist.
    pub async fn get_project(&self) -> Result<Option<Project>, AzdoError> {
        let url = format!("{}/_apis/projects/{}", self.base, seg(&self.project));
        let op = Operation::GetProject;
        match self
            .send(op, Method::GET, &url, API_VERSION, &[], None)
            .await
        {
            Ok(body) => decode(op, &url, &body).map(Some),
            Err(AzdoError::ProjectNotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The repository, or `None` when it does not exist (or the credential cannot see it).
    /// A missing project is an error ([`AzdoError::ProjectNotFound`]).
    pub async fn get_repository(&self) -> Result<Option<Repository>, AzdoError> {
        let url = self.repo_url();
        let op = Operation::GetRepository;
        match self
            .send(op, Method::GET, &url, API_VERSION, &[], None)
            .await
        {
            Ok(body) => decode(op, &url, &body).map(Some),
            Err(AzdoError::RepositoryNotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Creates the (empty) repository; [`AzdoError::RepositoryExists`] when it exists.
    pub async fn create_repository(&self) -> Result<Repository, AzdoError> {
        let url = format!(
            "{}/{}/_apis/git/repositories",
            self.base,
            seg(&self.project)
        );
        let op = Operation::CreateRepository;
        let body = serde_json::json!({ "name": self.repo });
        let body = self
            .send(op, Method::POST, &url, API_VERSION, &[], Some(body))
            .await?;
        decode(op, &url, &body)
    }

    /// The refs under `filter` (`heads/` for branches; no `refs/` prefix), all pages: Azure
    /// DevOps answers at most 1000 refs at a time and sends `x-ms-continuationtoken` while
    /// more remain.
    pub async fn list_refs(&self, filter: &str) -> Result<Vec<GitRef>, AzdoError> {
        const PAGE_SIZE: &str = "1000";
        let url = format!("{}/refs", self.repo_url());
        let op = Operation::ListRefs;
        let mut refs = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let mut query = vec![("filter", filter), ("$top", PAGE_SIZE)];
            if let Some(token) = &continuation {
                query.push(("continuationToken", token));
            }
            let (body, next) = self
                .send_paged(op, Method::GET, &url, API_VERSION, &query, None)
                .await?;
            let list: List<GitRef> = decode(op, &url, &body)?;
            refs.extend(list.value);
            match next {
                // A server that hands back the token it was given would loop forever.
                Some(next) if continuation.as_ref() != Some(&next) => continuation = Some(next),
                _ => return Ok(refs),
            }
        }
    }

    fn repo_url(&self) -> String {
        format!(
            "{}/{}/_apis/git/repositories/{}",
            self.base,
            seg(&self.project),
            seg(&self.repo)
        )
    }

    fn unauthorized(&self, operation: Operation, message: String) -> AzdoError {
        AzdoError::Unauthorized {
            operation,
            org: self.org.clone(),
            credential: self.credential,
            message,
        }
    }

    async fn send(
        &self,
        operation: Operation,
        method: Method,
        url: &str,
        api_version: &str,
        query: &[(&str, &str)],
        json: Option<serde_json::Value>,
    ) -> Result<Vec<u8>, AzdoError> {
        let (body, _) = self
            .send_paged(operation, method, url, api_version, query, json)
            .await?;
        Ok(body)
    }

    /// [`Self::send`], also returning the `x-ms-continuationtoken` of a paged list.
    ///
    /// Throttling (429) and brief outages (5xx), and connections that could not be made, are
    /// retried up to [`RETRIES`] more times with exponential backoff and jitter; a 429's
    /// `Retry-After` is waited out when it fits in [`RETRY_BUDGET`], and a longer one ends the
    /// retries at once. The error that outlasts them says how many calls were made. A POST is repeated too:
    /// those statuses mean the request was not carried out, and the one POST here (creating
    /// a repository) cannot be carried out twice.
    async fn send_paged(
        &self,
        operation: Operation,
        method: Method,
        url: &str,
        api_version: &str,
        query: &[(&str, &str)],
        json: Option<serde_json::Value>,
    ) -> Result<(Vec<u8>, Option<String>), AzdoError> {
        use backon::Retryable as _;
        let started = Instant::now();
        let attempts = AtomicU32::new(1);
        let policy = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_secs(1))
            .with_max_delay(Duration::from_secs(8))
            .with_max_times(RETRIES as usize)
            .with_jitter();
        (|| {
            self.send_once(
                operation,
                method.clone(),
                url,
                api_version,
                query,
                json.as_ref(),
            )
        })
        .retry(policy)
        .when(AzdoError::is_transient)
        .adjust(|err, backoff| {
            let backoff = backoff?;
            let wait = match err {
                AzdoError::Busy {
                    retry_after: Some(asked),
                    ..
                } => backoff.max(*asked),
                _ => backoff,
            };
            (started.elapsed() + wait <= RETRY_BUDGET).then_some(wait)
        })
        .notify(|err, delay| {
            let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(notices) = &self.notices {
                (notices.0)(&err.to_string(), attempt, RETRIES + 1, delay);
            }
        })
        .await
        .map_err(|last| last.after_attempts(attempts.load(Ordering::Relaxed)))
    }

    /// One request: the body and continuation token, or the error its status means.
    async fn send_once(
        &self,
        operation: Operation,
        method: Method,
        url: &str,
        api_version: &str,
        query: &[(&str, &str)],
        json: Option<&serde_json::Value>,
    ) -> Result<(Vec<u8>, Option<String>), AzdoError> {
        let http_err = |source| AzdoError::Http {
            operation,
            attempts: 1,
            url: url.to_owned(),
            source,
        };
        let mut full = url::Url::parse(url).map_err(|e| AzdoError::Client {
            source: Box::new(e),
        })?;
        full.query_pairs_mut()
            .append_pair("api-version", api_version)
            .extend_pairs(query);
        let mut request = self.http.request(method, full);
        if let Some(json) = json {
            request = request.json(json);
        }
        let response = request.send().await.map_err(http_err)?;
        let status = response.status();
        let html = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("text/html"));
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let continuation = response
            .headers()
            .get("x-ms-continuationtoken")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(http_err)?.to_vec();
        if status == StatusCode::NON_AUTHORITATIVE_INFORMATION || (status.is_success() && html) {
            return Err(self.unauthorized(
                operation,
                "the server answered with a sign-in page".to_owned(),
            ));
        }
        if status.is_success() {
            return Ok((body, continuation));
        }
        let parsed: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
        let message = parsed.message.unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            if text.is_empty() || html {
                status.canonical_reason().unwrap_or("no message").to_owned()
            } else {
                text.chars().take(200).collect()
            }
        });
        let type_key = parsed.type_key.unwrap_or_default();
        let has = |code: &str, key: &str| message.starts_with(code) || type_key == key;
        Err(match status {
            StatusCode::UNAUTHORIZED => self.unauthorized(operation, message),
            StatusCode::TOO_MANY_REQUESTS
            | StatusCode::INTERNAL_SERVER_ERROR
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => AzdoError::Busy {
                operation,
                attempts: 1,
                status: status.as_u16(),
                retry_after,
                message,
            },
            _ if has("TF200016", "ProjectDoesNotExistWithNameException")
                || type_key == "ProjectDoesNotExistException" =>
            {
                AzdoError::ProjectNotFound {
                    org: self.org.clone(),
                    project: self.project.clone(),
                }
            }
            _ if has("TF401019", "GitRepositoryNotFoundException") => {
                AzdoError::RepositoryNotFound {
                    project: self.project.clone(),
                    repo: self.repo.clone(),
                }
            }
            _ if status == StatusCode::CONFLICT
                || has("TF400948", "GitRepositoryNameAlreadyExistsException") =>
            {
                AzdoError::RepositoryExists {
                    project: self.project.clone(),
                    repo: self.repo.clone(),
                }
            }
            StatusCode::FORBIDDEN => AzdoError::Forbidden {
                operation,
                credential: self.credential,
                message,
            },
            _ => AzdoError::Api {
                operation,
                status: status.as_u16(),
                message,
            },
        })
    }
}

/// The token of a `PatTokenResult`, or the refusal it carries (`patTokenError` other
/// than `none`).
fn pat_result(operation: Operation, result: PatTokenResult) -> Result<RawPatToken, AzdoError> {
    match result.error.as_deref() {
        None | Some("" | "none") => {}
        Some(error) => {
            return Err(AzdoError::PatRefused {
                operation,
                error: error.to_owned(),
                message: result.error_message.unwrap_or_default(),
            });
        }
    }
    result.token.ok_or_else(|| AzdoError::PatRefused {
        operation,
        error: "noToken".to_owned(),
        message: "the answer holds no token".to_owned(),
    })
}

fn seg(name: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    utf8_percent_encode(name, SEGMENT).to_string()
}

fn decode<T: serde::de::DeserializeOwned>(
    operation: Operation,
    url: &str,
    body: &[u8],
) -> Result<T, AzdoError> {
    serde_json::from_slice(body).map_err(|source| AzdoError::Decode {
        operation,
        url: url.to_owned(),
        source,
    })
}
