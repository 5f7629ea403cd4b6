//! What parity with `flux bootstrap git` depends on, decided without I/O: the authentication
//! mode the flags select ([`GitMode`]), where the files go in the repository ([`RepoPaths`]),
//! the sync manifests and `kustomization.yaml` patches of each mode ([`sync_manifests`],
//! [`kustomization_patches`]), the commits of the repository change ([`repository_change`]),
//! the [`Plan`] a run carries out, and the data of the Secrets each mode stores ([`token_secret`], [`ssh_secret`],
//! [`docker_config_json`]).
//!
//! The binary's plan is built from these, and `export` writes the same repository change a
//! bootstrap commits; keeping them here makes each rule testable on its own instead of only
//! end to end.
//!
//! Invariant: pure. No filesystem, network, environment, prompt or output.

mod change;
mod error;
mod mode;
mod paths;
mod plan;
mod secret;
mod sync;

pub use change::{ChangeInputs, Folder, PlannedCommit, PlannedFile, WriteRule, repository_change};
pub use error::PlanError;
pub use mode::{GitMode, ModeFlags};
pub use paths::RepoPaths;
pub use plan::{MINTED_PAT_ANNOTATION, Plan, PlannedTarget, SourceSecret, Step};
pub use secret::{docker_config_json, ssh_secret, token_secret};
pub use sync::{SyncSettings, go_duration, kustomization_patches, sync_manifests, sync_url};

/// The advice for `err` when it is this crate's [`PlanError`], else `None` (see the binary's
/// error report).
#[must_use]
pub fn hint_for(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    err.downcast_ref::<PlanError>()
        .map(|err| err.hint().to_owned())
}
