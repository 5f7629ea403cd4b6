//! Errors of the Azure DevOps REST client ([`AzdoError`]), with hints keyed on the
//! `TFnnnnnn` codes Azure DevOps returns.

use std::fmt;
use std::time::Duration;

/// Which credential the client sent, so hints can say what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A PAT over Basic auth.
    Pat,
    /// An Entra ID token over Bearer auth.
    Bearer,
}

/// The REST call that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `GET _apis/connectionData`.
    ConnectionData,
    /// `GET _apis/projects/{project}`.
    GetProject,
    /// `GET _apis/git/repositories/{repo}`.
    GetRepository,
    /// `POST _apis/git/repositories`.
    CreateRepository,
    /// `GET _apis/git/repositories/{repo}/refs`.
    ListRefs,
    /// `POST {vssps}/_apis/tokens/pats`.
    CreatePat,
    /// `GET {vssps}/_apis/tokens/pats?authorizationId=`.
    GetPat,
    /// `DELETE {vssps}/_apis/tokens/pats?authorizationId=`.
    RevokePat,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ConnectionData => "validate the credentials",
            Self::GetProject => "read the project",
            Self::GetRepository => "read the repository",
            Self::CreateRepository => "create the repository",
            Self::ListRefs => "list the branches",
            Self::CreatePat => "create a personal access token",
            Self::GetPat => "read a personal access token",
            Self::RevokePat => "revoke a personal access token",
        })
    }
}

/// A failed Azure DevOps REST call.
#[derive(Debug, thiserror::Error)]
pub enum AzdoError {
    /// The HTTP client could not be set up (TLS roots, CA file).
    #[error("failed to set up the HTTPS client")]
    Client {
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The CA PEM has no certificate in it.
    #[error("the CA file contains no PEM certificate")]
    EmptyCa,
    /// Connecting or reading failed.
    #[error("failed to {operation} at `{url}`{}", tried(*attempts))]
    Http {
        /// The call.
        operation: Operation,
        /// How many times the call was made (more than 1: it was retried).
        attempts: u32,
        /// The request URL.
        url: String,
        /// reqwest's error (it never holds the Authorization header).
        #[source]
        source: reqwest::Error,
    },
    /// 401, or 203 with a sign-in page.
    #[error("Azure DevOps rejected the credentials ({operation}): {message}")]
    Unauthorized {
        /// The call.
        operation: Operation,
        /// Organization or collection.
        org: String,
        /// The credential sent.
        credential: CredentialKind,
        /// The server's message.
        message: String,
    },
    /// 403.
    #[error("permission denied to {operation}: {message}")]
    Forbidden {
        /// The call.
        operation: Operation,
        /// The credential sent.
        credential: CredentialKind,
        /// The server's message.
        message: String,
    },
    /// TF200016.
    #[error("project `{project}` does not exist in `{org}`")]
    ProjectNotFound {
        /// Organization or collection.
        org: String,
        /// Project.
        project: String,
    },
    /// TF401019 where the repository must exist.
    #[error(
        "repository `{repo}` does not exist in project `{project}` or the credentials cannot read it"
    )]
    RepositoryNotFound {
        /// Project.
        project: String,
        /// Repository.
        repo: String,
    },
    /// TF400948.
    #[error("repository `{repo}` already exists in project `{project}`")]
    RepositoryExists {
        /// Project.
        project: String,
        /// Repository.
        repo: String,
    },
    /// 429 (throttled) or a 5xx (briefly unavailable); retried before it is returned.
    #[error("Azure DevOps answered HTTP {status} to {operation}{}{}: {message}", retry_after.map(|d| format!(" (Retry-After: {}s)", d.as_secs())).unwrap_or_default(), tried(*attempts))]
    Busy {
        /// The call.
        operation: Operation,
        /// How many times the call was made (more than 1: it was retried).
        attempts: u32,
        /// HTTP status code.
        status: u16,
        /// How long the server asked us to wait (`Retry-After`).
        retry_after: Option<Duration>,
        /// The server's message (or the status' reason).
        message: String,
    },
    /// The PAT lifecycle API answered with a `patTokenError` other than `none`.
    #[error("Azure DevOps refused to {operation}: {error}{}", if message.is_empty() { String::new() } else { format!(" ({message})") })]
    PatRefused {
        /// The call.
        operation: Operation,
        /// The `patTokenError` value, e.g. `disablePatCreationPolicyViolation`.
        error: String,
        /// `patTokenErrorMessage`, when the server sent one.
        message: String,
    },
    /// Any other non-success status.
    #[error("failed to {operation}: HTTP {status}: {message}")]
    Api {
        /// The call.
        operation: Operation,
        /// HTTP status code.
        status: u16,
        /// The server's message (or the start of the body).
        message: String,
    },
    /// A success response whose body is not what the API documents.
    #[error("unexpected response to {operation} from `{url}`")]
    Decode {
        /// The call.
        operation: Operation,
        /// The request URL.
        url: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// ` (tried 4 times)` after a retried call's error.
fn tried(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (tried {attempts} times)")
    } else {
        String::new()
    }
}

impl AzdoError {
    /// Records that the call was made `total` times (see [`AzdoError::is_transient`]).
    pub(crate) fn after_attempts(mut self, total: u32) -> AzdoError {
        if let Self::Busy { attempts, .. } | Self::Http { attempts, .. } = &mut self {
            *attempts = total;
        }
        self
    }

    /// Whether the same call may succeed later: throttling or a brief outage
    /// ([`AzdoError::Busy`]), or a connection that could not be made or broke off.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Busy { .. } => true,
            Self::Http { source, .. } => source.is_connect(),
            _ => false,
        }
    }

    /// User-actionable advice for this error.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Unauthorized { operation: Operation::CreatePat | Operation::GetPat | Operation::RevokePat, .. } => Some(
                "the PAT lifecycle API takes only a user's Entra ID token: run `az login` as a member of the organization (a service principal cannot mint PATs)".to_owned(),
            ),
            Self::Unauthorized { credential: CredentialKind::Pat, org, .. } => Some(format!(
                "the PAT is invalid, expired or revoked, or not valid for organization `{org}`: create one with the scope Code (Read & write) under User settings > Personal access tokens"
            )),
            Self::Unauthorized { credential: CredentialKind::Bearer, org, .. } => Some(format!(
                "the Entra ID token was rejected: run `az login` for the tenant of organization `{org}` and make sure your identity is a member of it"
            )),
            Self::Forbidden { operation: Operation::CreateRepository, credential, .. } => Some(match credential {
                CredentialKind::Pat => "creating a repository needs a PAT with the scope Code (Read, write & manage) and the Create repository permission in the project; or create it in the web UI".to_owned(),
                CredentialKind::Bearer => "creating a repository needs the Create repository permission in the project; or create it in the web UI".to_owned(),
            }),
            Self::Forbidden { operation: Operation::GetProject, .. } => Some(
                "reading project details needs the PAT scope Project and Team (Read); the bootstrap itself only needs Code (Read & write)".to_owned(),
            ),
            Self::Forbidden { credential: CredentialKind::Pat, .. } => {
                Some("the PAT needs the scope Code (Read & write) and Contribute permission on the repository".to_owned())
            }
            Self::Forbidden { credential: CredentialKind::Bearer, .. } => {
                Some("your identity needs Contribute permission on the repository (e.g. the project's Contributors group)".to_owned())
            }
            Self::ProjectNotFound { .. } => {
                Some("check the project name in the URL; projects are created in the Azure DevOps web UI".to_owned())
            }
            Self::RepositoryNotFound { .. } => {
                Some("check the repository name in the URL, or let the bootstrap create it".to_owned())
            }
            Self::RepositoryExists { .. } => Some("use the existing repository or choose another name".to_owned()),
            Self::Http { .. } => Some(
                "check the URL and your network; for Azure DevOps Server with a private CA pass `--ca-file`".to_owned(),
            ),
            Self::Busy { status: 429, .. } => Some(
                "Azure DevOps is throttling this user (see https://learn.microsoft.com/azure/devops/integrate/concepts/rate-limits); wait a few minutes and run the command again".to_owned(),
            ),
            Self::Busy { .. } => Some(
                "Azure DevOps is briefly unavailable; wait a few minutes and run the command again".to_owned(),
            ),
            Self::PatRefused { error, .. } => Some(match error.as_str() {
                "disablePatCreationPolicyViolation" => "the organization's policy restricts who may create PATs: ask an administrator to allow you, or store the push PAT with `--cluster-pat push`".to_owned(),
                "patLifespanPolicyViolation" => "ask for a shorter lifetime with `--cluster-pat-days` (the organization sets a maximum)".to_owned(),
                "globalPatPolicyViolation" | "fullScopePatPolicyViolation" => "the organization's PAT policy refused the token; ask an administrator, or use `--cluster-pat push`".to_owned(),
                _ => "check that `az login` is for a user of the organization, or store the push PAT with `--cluster-pat push`".to_owned(),
            }),
            Self::EmptyCa => Some("pass a PEM file with `-----BEGIN CERTIFICATE-----` blocks".to_owned()),
            Self::Client { .. } | Self::Api { .. } | Self::Decode { .. } => None,
        }
    }
}
