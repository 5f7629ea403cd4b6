//! Where the Flux install manifests come from: a GitHub release (downloaded, verified
//! against the release's SHA-256 checksums file, cached per version) or a local
//! `--manifests` directory or tarball.
//!
//! Every tarball, downloaded or local, is unpacked in memory with limits: no absolute
//! paths, no `..`, no links, bounded sizes.
//!
//! ```ignore
//! let source = ReleaseSource::from_env()?;
//! let (version, bundle) = fetch_bundle(&source, "v2.9.4").await?;
//! ```

mod archive;
mod download;
mod error;
mod pinned;

pub use archive::{MAX_ARCHIVE_BYTES, MAX_FILE_BYTES, load_local, unpack_bundle};
pub use download::{DEFAULT_BASE_URL, DEFAULT_VERSION, ReleaseSource, fetch_bundle};
pub use error::ReleaseError;
pub use pinned::is_pinned;

/// The advice for `err` when it is one of this crate's errors, else `None`. The binary's error
/// report asks each crate through this one function, so a new error type here is listed here
/// and nowhere else.
#[must_use]
pub fn hint_for(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(err) = err.downcast_ref::<ReleaseError>() {
        return err.hint();
    }
    None
}
