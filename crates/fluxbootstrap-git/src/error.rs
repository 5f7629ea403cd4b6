//! The one error type of the crate, with user-actionable hints.
//!
//! URLs in here are always the sanitized form (no user-info), and no variant holds a
//! credential, so errors can be printed as they are.

use std::path::PathBuf;
use std::time::Duration;

/// Why a git operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GitError {
    /// The remote URL is not an HTTPS, SSH, scp-like or local URL.
    #[error("Invalid git remote URL `{url}`")]
    InvalidUrl {
        /// The URL, with any user-info removed.
        url: String,
    },
    /// `--ca-file` could not be read.
    #[error("Failed to read the CA file `{}`", path.display())]
    ReadCaFile {
        /// The CA file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `--ca-file` holds no PEM certificate.
    #[error("The CA file `{}` contains no PEM certificate", path.display())]
    InvalidCaFile {
        /// The CA file.
        path: PathBuf,
    },
    /// The HTTPS server certificate is not trusted.
    #[error("The TLS certificate of `{url}` is not trusted{}", detail.as_ref().map(|d| format!(" (CA file check: {d})")).unwrap_or_default())]
    CertificateNotTrusted {
        /// The remote URL.
        url: String,
        /// The CA file that was tried, if any.
        ca_file: Option<PathBuf>,
        /// OpenSSL's verdict against the CA file, if one was given.
        detail: Option<String>,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
    /// The SSH server presented a key that `known_hosts` does not list for it.
    #[error(
        "The SSH host key of `{host}` does not match known_hosts (the server presented {fingerprint})"
    )]
    HostKeyMismatch {
        /// `host` or `[host]:port`.
        host: String,
        /// SHA256 fingerprint of the presented key.
        fingerprint: String,
    },
    /// `known_hosts` has no line for the SSH server.
    #[error("known_hosts has no entry for `{host}` (the server presented {fingerprint})")]
    UnknownHost {
        /// `host` or `[host]:port`.
        host: String,
        /// SHA256 fingerprint of the presented key.
        fingerprint: String,
    },
    /// HTTPS basic authentication with a PAT was rejected (HTTP 401).
    #[error("Azure DevOps rejected the personal access token for `{url}` (HTTP 401)")]
    PatRejected {
        /// The remote URL.
        url: String,
        /// The organisation, when the URL tells it.
        org: Option<String>,
    },
    /// The bearer token was rejected (HTTP 401).
    #[error("Azure DevOps rejected the bearer token for `{url}` (HTTP 401)")]
    TokenRejected {
        /// The remote URL.
        url: String,
    },
    /// The server asked for credentials and none were configured.
    #[error("`{url}` requires authentication")]
    AuthenticationRequired {
        /// The remote URL.
        url: String,
    },
    /// The credentials are valid but lack permission (HTTP 403).
    #[error("Access to `{url}` was denied (HTTP 403)")]
    PermissionDenied {
        /// The remote URL.
        url: String,
    },
    /// The repository does not exist or the credentials cannot see it (HTTP 404).
    #[error("Repository `{url}` was not found (HTTP 404)")]
    RepositoryNotFound {
        /// The remote URL.
        url: String,
    },
    /// The SSH server did not accept the key.
    #[error("SSH public-key authentication as `{username}` to `{url}` failed")]
    SshAuthenticationFailed {
        /// The remote URL.
        url: String,
        /// The SSH user name.
        username: String,
        /// The organisation, when the URL tells it.
        org: Option<String>,
    },
    /// libssh2 could not load the private key (wrong passphrase or format).
    #[error("The SSH private key for `{url}` could not be loaded")]
    SshKeyUnusable {
        /// The remote URL.
        url: String,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
    /// The server did not answer in time.
    #[error("Timed out after {}s talking to `{url}`", timeout.as_secs_f32())]
    Timeout {
        /// The remote URL.
        url: String,
        /// The configured connect/IO timeout.
        timeout: Duration,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
    /// The server answered 429 (throttled) or a 5xx (briefly unavailable).
    #[error("Failed to {operation} `{url}`: the server answered HTTP {status}{}", tried(*attempts))]
    ServerBusy {
        /// What was being done (`fetch from`, `push to`, `list refs of`).
        operation: &'static str,
        /// The remote URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// How many times the operation ran (more than 1: it was retried).
        attempts: u32,
    },
    /// Any other failure talking to the remote.
    #[error("Failed to {operation} `{url}`{}", tried(*attempts))]
    Transport {
        /// What was being done (`clone`, `fetch from`, `push to`, `list refs of`).
        operation: &'static str,
        /// The remote URL.
        url: String,
        /// How many times the operation ran (more than 1: it was retried).
        attempts: u32,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
    /// The branch does not exist in a non-empty repository.
    #[error("Branch `{branch}` does not exist in `{url}`")]
    BranchNotFound {
        /// The remote URL.
        url: String,
        /// The missing branch.
        branch: String,
        /// The remote's default branch (its `HEAD`), if it has one.
        default_branch: Option<String>,
    },
    /// The branch name is not a valid git ref name.
    #[error("Invalid branch name `{branch}`")]
    InvalidBranch {
        /// The branch name.
        branch: String,
    },
    /// The server refused the ref update for a reason other than a concurrent push.
    #[error("`{url}` rejected the push to `{branch}`: {reason}")]
    PushRejected {
        /// The remote URL.
        url: String,
        /// The branch.
        branch: String,
        /// The server's status message.
        reason: String,
    },
    /// Concurrent pushes kept winning the race.
    #[error("Pushing to `{branch}` of `{url}` still conflicted after {attempts} attempts")]
    PushConflict {
        /// The remote URL.
        url: String,
        /// The branch.
        branch: String,
        /// How many pushes were tried.
        attempts: u32,
    },
    /// A file path to write is absolute, escapes the repository or touches `.git`.
    #[error("Invalid repository path `{path}`")]
    InvalidRepoPath {
        /// The offending path.
        path: String,
    },
    /// The commit author contains characters git cannot store.
    #[error("Invalid commit author `{name}` <{email}>")]
    InvalidAuthor {
        /// Author name.
        name: String,
        /// Author e-mail.
        email: String,
    },
    /// The commit signer failed (its message names the key, never its content).
    #[error("Failed to sign the commit: {message}")]
    Sign {
        /// The signer's error.
        message: String,
    },
    /// A local repository operation failed.
    #[error("Failed to {operation} in the local checkout")]
    Local {
        /// What was being done.
        operation: &'static str,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
    /// Reading or writing a file of the checkout failed.
    #[error("Failed to access `{}`", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The private temporary directory could not be created.
    #[error("Failed to create a temporary directory for the checkout")]
    TempDir {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// ` (tried 4 times)` after a retried operation's error.
fn tried(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (tried {attempts} times)")
    } else {
        String::new()
    }
}

impl GitError {
    /// Records that the operation ran `total` times (see [`GitError::is_transient`]).
    pub(crate) fn after_attempts(mut self, total: u32) -> GitError {
        if let GitError::ServerBusy { attempts, .. } | GitError::Transport { attempts, .. } =
            &mut self
        {
            *attempts = total;
        }
        self
    }

    /// Whether running the same operation again may succeed: the server throttled us or was
    /// briefly unavailable ([`GitError::ServerBusy`]), or the connection broke mid-way. A
    /// push is safe to repeat: it never forces, and a ref update that landed before the
    /// connection broke makes the repeat a no-op.
    pub fn is_transient(&self) -> bool {
        match self {
            GitError::ServerBusy { .. } => true,
            GitError::Transport { source, .. } => {
                matches!(
                    source.class(),
                    git2::ErrorClass::Net | git2::ErrorClass::Os | git2::ErrorClass::Ssl
                ) && !source.message().contains("failed to resolve address")
            }
            _ => false,
        }
    }

    /// Advice the user can act on, if there is any.
    pub fn hint(&self) -> Option<String> {
        let org_or_placeholder =
            |org: &Option<String>| org.clone().unwrap_or_else(|| "{org}".to_owned());
        Some(match self {
            GitError::InvalidUrl { .. } => "use the repository's HTTPS clone URL \
                (`https://dev.azure.com/{org}/{project}/_git/{repo}`) or SSH URL \
                (`ssh://git@ssh.dev.azure.com/v3/{org}/{project}/{repo}`)"
                .to_owned(),
            GitError::InvalidCaFile { .. } => {
                "the CA file must contain PEM certificates (`-----BEGIN CERTIFICATE-----`)".to_owned()
            }
            GitError::CertificateNotTrusted { ca_file: None, .. } => {
                "pass `--ca-file` with the CA certificate that signed the server certificate"
                    .to_owned()
            }
            GitError::CertificateNotTrusted {
                ca_file: Some(path),
                ..
            } => format!(
                "check that `{}` holds the CA (and any intermediate CAs) that signed the server certificate",
                path.display()
            ),
            GitError::HostKeyMismatch { .. } => "the server's host key is not the one in known_hosts: \
                the key changed or the connection is intercepted. Compare the fingerprint with the one \
                shown on the SSH public keys settings page before changing known_hosts"
                .to_owned(),
            GitError::UnknownHost { host, .. } => format!(
                "add a known_hosts line for `{host}` (for example from `ssh-keyscan`) after checking its fingerprint"
            ),
            GitError::PatRejected { org, .. } => format!(
                "the PAT is invalid, expired or revoked; create a new one with the Code (Read & write) \
                 scope at https://dev.azure.com/{}/_usersSettings/tokens",
                org_or_placeholder(org)
            ),
            GitError::TokenRejected { .. } => "the Entra token is expired, issued by another tenant, or its \
                identity is not a member of the organisation; get a fresh one with \
                `az account get-access-token --resource 499b84ac-1321-427f-aa17-267ca6975798`"
                .to_owned(),
            GitError::AuthenticationRequired { .. } => {
                "pass a personal access token, or use an SSH URL with a private key".to_owned()
            }
            GitError::PermissionDenied { .. } => "the PAT lacks the Code (Read & write) scope, or its user \
                lacks the Contribute permission on the repository"
                .to_owned(),
            GitError::RepositoryNotFound { .. } => "check the organisation, project and repository names, \
                and that the credentials' user can read the repository"
                .to_owned(),
            GitError::SshAuthenticationFailed { org, .. } => format!(
                "add the public key to the user's SSH public keys at \
                 https://dev.azure.com/{}/_usersSettings/keys (Azure DevOps accepts only RSA keys, \
                 and keys expire after a year)",
                org_or_placeholder(org)
            ),
            GitError::SshKeyUnusable { .. } => {
                "check the passphrase, and that the key is an RSA private key in OpenSSH or PEM format"
                    .to_owned()
            }
            GitError::Timeout { .. } => {
                "check the URL, the network and any proxy (`HTTPS_PROXY`), or raise the timeout"
                    .to_owned()
            }
            GitError::ServerBusy { status: 429, .. } => "Azure DevOps is throttling this user; \
                wait a few minutes and run the command again (a rerun finishes what this one \
                started, without a second commit)"
                .to_owned(),
            GitError::ServerBusy { .. } => "the git server is unavailable; wait a few minutes and \
                run the command again (a rerun finishes what this one started, without a second \
                commit)"
                .to_owned(),
            GitError::Transport { .. } if self.is_transient() => "the connection broke: check \
                the network and any proxy, then run the command again (a push either landed or \
                did not; a rerun finishes it without a second commit)"
                .to_owned(),
            GitError::BranchNotFound {
                branch,
                default_branch: Some(default),
                ..
            } => format!(
                "the repository's default branch is `{default}`: pass `--branch {default}`, \
                 or `--create-branch` to create `{branch}` from it"
            ),
            GitError::BranchNotFound {
                default_branch: None,
                ..
            } => "the repository has no default branch; push a first commit or pick an existing branch"
                .to_owned(),
            GitError::PushRejected { branch, .. } => format!(
                "check the branch policies of `{branch}`: a branch that requires pull requests \
                 rejects direct pushes"
            ),
            GitError::PushConflict { branch, .. } => {
                format!("another client keeps pushing to `{branch}`; run the command again")
            }
            GitError::InvalidAuthor { .. } => {
                "author names and e-mails must not contain `<`, `>` or line breaks".to_owned()
            }
            GitError::InvalidBranch { .. } => "pass a branch name git accepts with `--branch`, \
                e.g. `main` or `clusters/dev` (`git check-ref-format --branch <name>` tests one)"
                .to_owned(),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_settings_pages() {
        let err = GitError::SshAuthenticationFailed {
            url: "ssh://git@ssh.dev.azure.com/v3/contoso/p/r".to_owned(),
            username: "git".to_owned(),
            org: Some("contoso".to_owned()),
        };
        assert!(
            err.hint()
                .unwrap()
                .contains("https://dev.azure.com/contoso/_usersSettings/keys")
        );
        let err = GitError::BranchNotFound {
            url: "u".to_owned(),
            branch: "flux".to_owned(),
            default_branch: Some("main".to_owned()),
        };
        assert_eq!(err.to_string(), "Branch `flux` does not exist in `u`");
        assert!(err.hint().unwrap().contains("`--branch main`"));
    }
}
