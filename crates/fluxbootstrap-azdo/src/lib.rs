//! Azure DevOps knowledge: which URLs name a repository, and the REST calls a bootstrap needs.
//!
//! [`RepoUrl::parse`] accepts every clone-URL form Azure DevOps and Azure DevOps Server hand
//! out (HTTPS, SSH, scp-like, legacy `visualstudio.com`, `_optimized`/`_full`, the
//! project-equals-repo shorthand) and renders canonical HTTPS, SSH and REST base URLs.
//! [`RestClient`] gets projects and repositories, creates repositories, lists refs and
//! validates a credential, mapping Azure DevOps' `TFnnnnnn` errors to [`AzdoError`]s with hints.
//!
//! ```
//! use fluxbootstrap_azdo::RepoUrl;
//! let url = RepoUrl::parse("git@ssh.dev.azure.com:v3/fabrikam/My%20Project/fleet").unwrap();
//! assert_eq!(url.https_url(), "https://dev.azure.com/fabrikam/My%20Project/_git/fleet");
//! ```

mod error;
mod rest;
mod url;

pub use crate::error::{AzdoError, CredentialKind, Operation};
pub use crate::rest::{
    ConnectionData, GitRef, MintedPat, PatInfo, Project, Repository, RestAuth, RestClient,
    RetryNotice,
};
pub use crate::url::{EXPECTED_FORMS, HostKind, RepoUrl, UrlError};

/// The advice for `err` when it is one of this crate's errors, else `None`. The binary's error
/// report asks each crate through this one function, so a new error type here is listed here
/// and nowhere else.
#[must_use]
pub fn hint_for(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(err) = err.downcast_ref::<UrlError>() {
        return err.hint();
    }
    if let Some(err) = err.downcast_ref::<AzdoError>() {
        return err.hint();
    }
    None
}
