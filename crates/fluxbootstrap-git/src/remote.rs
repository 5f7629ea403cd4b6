//! What the caller says about a remote: URL, credentials, CA bundle, timeout; and
//! `ls_remote`, the cheapest authenticated round trip (used to validate a PAT).

use std::path::PathBuf;
use std::time::Duration;

use fluxbootstrap_auth::SecretString;

use crate::GitError;
use crate::session::Session;

/// How to authenticate to the remote.
#[derive(Debug, Clone)]
pub enum RemoteAuth {
    /// No credentials (public repositories, local paths).
    None,
    /// HTTPS basic authentication: any non-empty user name plus a PAT as password.
    Basic {
        /// User name; Azure DevOps ignores it but requires it non-empty (`git` is used when empty).
        username: String,
        /// The personal access token.
        password: SecretString,
    },
    /// HTTPS `Authorization: Bearer` (an Entra ID access token).
    Bearer {
        /// The access token.
        token: SecretString,
    },
    /// SSH public-key authentication.
    Ssh {
        /// SSH user name, `git` for Azure DevOps.
        username: String,
        /// The private key, OpenSSH or PEM text.
        private_key: SecretString,
        /// The key's passphrase, if it is encrypted.
        passphrase: Option<SecretString>,
        /// `known_hosts` lines; the server's host key must be listed for its host.
        known_hosts: String,
    },
}

/// Where the remote is and how to talk to it.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// Clone URL (HTTPS, `ssh://`, scp-like, `file://` or a path). User-info in it is dropped.
    pub url: String,
    /// Credentials.
    pub auth: RemoteAuth,
    /// PEM CA bundle trusted for HTTPS in addition to the system roots.
    pub ca_file: Option<PathBuf>,
    /// Connect and I/O timeout for each network operation.
    pub timeout: Duration,
}

/// Lists the remote's refs as `(ref name, sha)`, without cloning; proves the credentials
/// can read the repository.
pub fn ls_remote(remote: &RemoteOptions) -> Result<Vec<(String, String)>, GitError> {
    let session = Session::new(remote)?;
    // libgit2 only sends custom headers (bearer tokens) on fetch-style connections, and a
    // fetch needs a repository: a throwaway bare one with an anonymous remote that has no
    // refspecs negotiates nothing and downloads nothing.
    let dir = tempfile::Builder::new()
        .prefix("fluxbootstrap-ls-remote-")
        .tempdir()
        .map_err(|source| GitError::TempDir { source })?;
    let repo = git2::Repository::init_bare(dir.path()).map_err(|source| GitError::Local {
        operation: "initialise a scratch repository",
        source,
    })?;
    let mut anonymous = repo
        .remote_anonymous(&session.endpoint.sanitized)
        .map_err(|source| GitError::Local {
            operation: "configure the remote",
            source,
        })?;
    let reporter = crate::NoReporter;
    crate::session::retrying(&reporter, || {
        let mut options = session.fetch_options(&reporter);
        session.begin();
        anonymous
            .download::<&str>(&[], Some(&mut options))
            .map_err(|e| session.classify("list refs of", e))
    })?;
    let refs = anonymous
        .list()
        .map_err(|e| session.classify("list refs of", e))?
        .iter()
        .map(|head| (head.name().to_owned(), head.oid().to_string()))
        .collect();
    Ok(refs)
}
