//! Clone, commit and push to Azure DevOps over HTTPS and SSH, on libgit2.
//!
//! This is the only crate in the project that talks git. It clones one branch into a
//! private temporary directory ([`Checkout`], removed on drop), writes generated files,
//! commits them with flux's author conventions and pushes without force, retrying on top of
//! a concurrent pusher's commit instead of losing it. Credentials never reach `.git/config`,
//! remote URLs or error messages; host keys and custom CAs are checked in libgit2's
//! certificate callback.
//!
//! ```no_run
//! use std::time::Duration;
//! use fluxbootstrap_auth::SecretString;
//! use fluxbootstrap_git::{Author, Checkout, FileWrite, NoReporter, RemoteAuth, RemoteOptions};
//!
//! let remote = RemoteOptions {
//!     url: "https://dev.azure.com/org/project/_git/fleet".to_owned(),
//!     auth: RemoteAuth::Basic {
//!         username: "git".to_owned(),
//!         password: SecretString::from("pat".to_owned()),
//!     },
//!     ca_file: None,
//!     timeout: Duration::from_secs(30),
//! };
//! let mut checkout = Checkout::clone(&remote, "main", false, &NoReporter)?;
//! let files = [FileWrite::new("clusters/prod/flux-system/gotk-sync.yaml", b"...".to_vec())];
//! checkout.commit_and_push(&files, "Add Flux sync manifests", &Author::default(), &NoReporter)?;
//! # Ok::<(), fluxbootstrap_git::GitError>(())
//! ```

mod checkout;
mod error;
mod known_hosts;
mod remote;
mod reporter;
mod session;
mod tls;
mod url;

pub use checkout::{Author, Checkout, CommitSigner, FileWrite};
pub use error::GitError;
pub use remote::{RemoteAuth, RemoteOptions, ls_remote};
pub use reporter::{NoReporter, Phase, Reporter};

/// The advice for `err` when it is one of this crate's errors, else `None`. The binary's error
/// report asks each crate through this one function, so a new error type here is listed here
/// and nowhere else.
#[must_use]
pub fn hint_for(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(err) = err.downcast_ref::<GitError>() {
        return err.hint();
    }
    None
}
