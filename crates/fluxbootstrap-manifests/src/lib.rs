//! Everything `kubectl fluxbootstrap` writes into the repository, rendered without I/O.
//!
//! Inputs in, bytes out: a Flux release [`Bundle`] and [`InstallOptions`] give
//! `gotk-components.yaml` ([`render_components`]), byte-compatible with what `flux
//! bootstrap` v2.9.4 writes; [`render_sync`] gives `gotk-sync.yaml` and
//! [`render_kustomization`] the folder's `kustomization.yaml`. Architecture invariant:
//! no filesystem, network or environment access in this crate.
//!
//! ```ignore
//! let yaml = render_components(&bundle, &InstallOptions::default())?;
//! ```

mod bundle;
mod emit;
mod install;
mod kustomization;
mod node;
mod objects;
mod sync;

pub use bundle::{
    BUNDLE_FILES, Bundle, BundleError, DEFAULT_COMPONENTS, EXTRA_COMPONENTS, REQUIRED_COMPONENTS,
    known_components,
};
pub use install::{
    GEN_WARNING, InstallOptions, LOG_LEVELS, RenderError, render_components, validate_components,
};
pub use kustomization::{AzureIdentity, KustomizationPatches, patch_objects, render_kustomization};
pub use node::YamlError;
pub use objects::{PathError, SplitError, is_sync_object, normalize_target_path, split_objects};
pub use sync::{SyncOptions, kustomization_path, render_sync};

/// The advice for `err` when it is one of this crate's errors, else `None`. The binary's error
/// report asks each crate through this one function, so a new error type here is listed here
/// and nowhere else.
#[must_use]
pub fn hint_for(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(err) = err.downcast_ref::<BundleError>() {
        return err.hint();
    }
    if let Some(err) = err.downcast_ref::<RenderError>() {
        return err.hint();
    }
    if let Some(err) = err.downcast_ref::<PathError>() {
        return err.hint();
    }
    None
}
