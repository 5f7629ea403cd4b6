//! What parity with `flux bootstrap git` depends on, decided without I/O: the authentication
//! mode the flags select ([`GitMode`]), where the files go in the repository ([`RepoPaths`]),
//! and the data of the source Secret for each mode ([`token_secret`], [`ssh_secret`]).
//!
//! The binary's plan is built from these; keeping them here makes each rule testable on its
//! own instead of only end to end.
//!
//! Invariant: pure. No filesystem, network, environment, prompt or output.

mod error;
mod mode;
mod paths;
mod secret;

pub use error::PlanError;
pub use mode::{GitMode, ModeFlags};
pub use paths::RepoPaths;
pub use secret::{ssh_secret, token_secret};

/// The advice for `err` when it is this crate's [`PlanError`], else `None` (see the binary's
/// error report).
#[must_use]
pub fn hint_for(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    err.downcast_ref::<PlanError>()
        .map(|err| err.hint().to_owned())
}
