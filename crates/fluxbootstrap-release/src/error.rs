//! The release crate's error type.

use std::path::PathBuf;

use fluxbootstrap_manifests::BundleError;

/// Why a Flux release bundle could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// A download of a pinned version whose files are not that release's.
    #[error(
        "the downloaded Flux {version} is not the release this build was tested with: `{file}` has SHA-256 {actual}, not {expected}"
    )]
    NotThePinnedRelease {
        /// The version.
        version: String,
        /// The first file that differs.
        file: String,
        /// The pinned digest.
        expected: String,
        /// What the download has (`missing` when absent).
        actual: String,
    },
    /// A plain-HTTP release mirror without the opt-in.
    #[error("the Flux release mirror `{url}` uses plain `http://`")]
    InsecureMirror {
        /// The mirror's base URL.
        url: String,
    },
    /// The version is neither `latest` nor a `v`-prefixed release tag.
    #[error("invalid Flux version `{version}`")]
    InvalidVersion {
        /// The rejected version.
        version: String,
    },
    /// The HTTP client could not be built.
    #[error("failed to set up the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The request failed (connection, TLS, timeout, or the body broke off).
    #[error("failed to download `{url}`")]
    Http {
        /// The URL requested.
        url: String,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a non-success status.
    #[error("`{url}` answered HTTP {status}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The body is shorter than its advertised `Content-Length`.
    #[error("download of `{url}` was truncated: {received} of {expected} bytes")]
    Truncated {
        /// The URL requested.
        url: String,
        /// Advertised length.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// The body exceeds the size limit.
    #[error("`{url}` is larger than {limit} bytes")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The GitHub releases API answer has no `tag_name`.
    #[error("`{url}` did not name the latest release")]
    LatestVersion {
        /// The API URL.
        url: String,
    },
    /// The release's checksums file does not list `manifests.tar.gz`.
    #[error("`{url}` has no checksum for `manifests.tar.gz`")]
    MissingChecksum {
        /// The checksums file URL.
        url: String,
    },
    /// The downloaded tarball does not match the release's checksum.
    #[error("checksum mismatch for `{url}`: expected sha256 {expected}, got {actual}")]
    ChecksumMismatch {
        /// The tarball URL.
        url: String,
        /// The checksum the release publishes.
        expected: String,
        /// The checksum of what was received.
        actual: String,
    },
    /// The tarball tries to write outside its directory, holds a link, or is too big.
    #[error("refusing unsafe entry `{entry}` in the manifests archive: {reason}")]
    UnsafeArchive {
        /// The entry path as stored in the archive.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The tarball is not a valid gzip-compressed tar archive.
    #[error("the manifests archive is corrupt")]
    CorruptArchive(#[source] std::io::Error),
    /// A bundle file is not UTF-8 text.
    #[error("`{file}` in the manifests bundle is not UTF-8 text")]
    NotText {
        /// The file name.
        file: String,
    },
    /// The files do not form a bundle.
    #[error("invalid Flux manifests bundle")]
    Bundle(#[source] BundleError),
    /// A local file or directory could not be read.
    #[error("failed to read `{}`", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No cache directory could be determined.
    #[error("no user cache directory is available")]
    NoCacheDir,
}

impl ReleaseError {
    /// User-actionable advice.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NotThePinnedRelease { .. } => Some(
                "check the release mirror (`FLUXBOOTSTRAP_RELEASES_URL`): it serves other files under this version; or pass `--manifests DIR` with a bundle you have verified"
                    .to_owned(),
            ),
            Self::InsecureMirror { .. } => Some(
                "use an `https://` mirror, or set `FLUXBOOTSTRAP_RELEASES_ALLOW_HTTP=1` for one on a network you trust"
                    .to_owned(),
            ),
            ReleaseError::InvalidVersion { .. } => {
                Some("pass a release tag such as `--version=v2.9.4`, or `latest`".to_owned())
            }
            ReleaseError::Status { status: 404, .. } => Some(
                "check that this Flux version exists; offline, pass `--manifests` with the release's `manifests.tar.gz`"
                    .to_owned(),
            ),
            ReleaseError::Http { .. } | ReleaseError::Status { .. } | ReleaseError::Truncated { .. } => Some(
                "check the network or set `FLUXBOOTSTRAP_RELEASES_URL` to a mirror; offline, pass `--manifests`"
                    .to_owned(),
            ),
            ReleaseError::ChecksumMismatch { .. } => Some(
                "the download was altered or corrupted; retry, and check any proxy or mirror in between"
                    .to_owned(),
            ),
            ReleaseError::Bundle(source) => source.hint(),
            ReleaseError::NoCacheDir => Some("set `XDG_CACHE_HOME` or `HOME`".to_owned()),
            _ => None,
        }
    }
}
