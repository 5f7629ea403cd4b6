//! Carrying out a bootstrap plan ([`fluxbootstrap_plan::Plan`]): one clone, the plan's
//! commits and pushes, then every target concurrently (at most `parallel` at once) in flux's
//! write order: components, the pull and source Secrets, the sync objects, the waits.
//! What happened goes into one [`Report`] (the text lines, a fleet's table and
//! `--output json` all come from it); progress goes to the caller's [`Progress`] sink.
//!
//! Invariants:
//! - the repository changes before any cluster does, so each cluster's Kustomization points
//!   at a pushed commit, and a failed repository step leaves every cluster alone;
//! - a failing cluster never stops the others;
//! - `kustomization.yaml` is written only where the branch has none, decided again on every
//!   push attempt, and what each cluster gets applied is built from the branch as pushed;
//! - nothing is asked and nothing printed: every answer is in the plan, every line goes to the
//!   caller's sink.

mod error;
mod kustomize;
mod progress;
mod report;
mod repository;
mod run;
mod secrets;

pub use error::ExecuteError;
pub use progress::{Line, Lines, Progress, Spinner, change_word, retry_line};
pub use report::{Counts, Outcome, Report, Row};
pub use repository::{RepositoryAccess, RepositoryCreation};
pub use run::{Connected, Execution, PlannedTarget, run};

/// The advice for `err` when it is this crate's [`ExecuteError`], else `None` (see the
/// binary's error report).
#[must_use]
pub fn hint_for(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    err.downcast_ref::<ExecuteError>()
        .and_then(ExecuteError::hint)
}

/// Whether `err` is this crate's failure of the run itself (exit code 2).
#[must_use]
pub fn is_internal(err: &(dyn std::error::Error + 'static)) -> bool {
    err.downcast_ref::<ExecuteError>()
        .is_some_and(ExecuteError::is_internal)
}
