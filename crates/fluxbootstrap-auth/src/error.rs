//! The error of PAT and Entra token acquisition ([`AuthError`]).
//!
//! Key files and host keys have their own enums next to their code; this one covers the
//! credentials a user supplies or that come from the Azure CLI.

use std::path::PathBuf;

/// Failure to obtain a PAT or an Entra ID token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No flag, no `GIT_PASSWORD`, nothing on stdin and no terminal to prompt on.
    #[error(
        "no Azure DevOps PAT was given: `--password` and `GIT_PASSWORD` are unset and stdin was empty"
    )]
    NoPat,
    /// The PAT has whitespace or control characters inside it (trailing line breaks are
    /// removed before this check): a pasted sentence, two values, a mangled copy.
    #[error("the PAT from {source_name} contains whitespace or a control character")]
    MalformedPat {
        /// Where it came from (`--password`, `GIT_PASSWORD`, `stdin`, the prompt).
        source_name: &'static str,
    },
    /// The prompt returned an empty PAT.
    #[error("the PAT read from the {source_name} is empty")]
    EmptyPat {
        /// Where it was read (`prompt`).
        source_name: &'static str,
    },
    /// Reading stdin failed.
    #[error("failed to read the PAT from stdin")]
    Stdin {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The interactive prompt failed.
    #[error("failed to prompt for the PAT")]
    Prompt {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `az` is not on `PATH` (or the given path does not exist).
    #[error("the Azure CLI (`az`) was not found")]
    AzMissing {
        /// The explicit path that was tried, if any.
        path: Option<PathBuf>,
    },
    /// `az` could not be started.
    #[error("failed to run `{}`", path.display())]
    AzSpawn {
        /// The `az` executable.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `az` says nobody is logged in.
    #[error("the Azure CLI is not logged in: {message}")]
    AzNotLoggedIn {
        /// The first line `az` printed on stderr.
        message: String,
    },
    /// `az` failed for another reason.
    #[error("`az account get-access-token` failed ({status}): {message}")]
    AzFailed {
        /// Exit status.
        status: String,
        /// The first line `az` printed on stderr.
        message: String,
    },
    /// `az` printed something that is not the expected JSON.
    #[error("`az account get-access-token` printed unexpected output")]
    AzOutput {
        /// The JSON error (it never contains the token: serde reports positions, not values).
        #[source]
        source: serde_json::Error,
    },
}

impl AuthError {
    /// User-actionable advice for this error.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NoPat => Some(
                "pass the PAT in `GIT_PASSWORD` or pipe it to stdin (`echo \"$PAT\" | kubectl fluxbootstrap azdo ...`), or run in a terminal to be prompted for it"
                    .to_owned(),
            ),
            Self::EmptyPat { .. } => Some("enter a PAT with the scope Code (Read & write)".to_owned()),
            Self::MalformedPat { .. } => Some(
                "a PAT is a single word of letters and digits: copy it again from Azure DevOps (User settings, Personal access tokens)"
                    .to_owned(),
            ),
            Self::AzMissing { .. } => Some(
                "install the Azure CLI (https://aka.ms/azure-cli) and run `az login`, or authenticate with a PAT instead"
                    .to_owned(),
            ),
            Self::AzNotLoggedIn { .. } => Some(
                "run `az login` (add `--tenant <tenant>` for the tenant your Azure DevOps organization is connected to)"
                    .to_owned(),
            ),
            Self::AzFailed { .. } => Some("run `az account get-access-token --resource 499b84ac-1321-427f-aa17-267ca6975798` to see the full error".to_owned()),
            Self::Stdin { .. } | Self::Prompt { .. } | Self::AzSpawn { .. } | Self::AzOutput { .. } => None,
        }
    }
}
