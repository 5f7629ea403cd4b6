//! Downloading a release's `manifests.tar.gz`, verifying it against the release's
//! `GoReleaser` checksums file, and caching it per version.
//!
//! flux itself downloads without verification; we always check the SHA-256, and check
//! cached copies again on every read, so a corrupt or truncated cache entry is replaced
//! rather than used.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fluxbootstrap_manifests::Bundle;
use sha2::{Digest, Sha256};

use crate::ReleaseError;
use crate::archive::{MAX_ARCHIVE_BYTES, unpack_bundle};

/// Where Flux releases live.
pub const DEFAULT_BASE_URL: &str = "https://github.com";
/// The Flux version this tool is built and tested against.
pub const DEFAULT_VERSION: &str = "v2.9.4";
/// Environment variable overriding [`DEFAULT_BASE_URL`] (mirrors, tests).
const BASE_URL_ENV: &str = "FLUXBOOTSTRAP_RELEASES_URL";
/// Environment variable (`1`) allowing a plain-HTTP mirror.
const ALLOW_HTTP_ENV: &str = "FLUXBOOTSTRAP_RELEASES_ALLOW_HTTP";
/// Environment variable (`1`) accepting a pinned version's download that is not the pinned
/// release: for the test harness's synthetic bundle, never for users.
const UNPINNED_ENV: &str = "FLUXBOOTSTRAP_RELEASES_UNPINNED";
const REPO: &str = "fluxcd/flux2";

/// Where to download releases from and where to cache them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseSource {
    /// `https://github.com`, or a mirror laid out like it:
    /// `{base}/fluxcd/flux2/releases/download/<version>/<asset>`. For a mirror the
    /// releases API lives under the same base (`{base}/repos/fluxcd/flux2/releases/latest`).
    pub base_url: String,
    /// Per-version cache: `<cache_dir>/<version>/manifests.tar.gz` plus its checksum for
    /// GitHub's releases; a mirror's go under `<version>+<source>` (see
    /// [`ReleaseSource::cache_path`]).
    pub cache_dir: PathBuf,
    /// Whether a plain-`http://` base URL may be used.
    pub allow_http: bool,
    /// Whether a pinned version may differ from its pin (the test harness's fixture only).
    pub unpinned: bool,
}

impl ReleaseSource {
    /// GitHub (or `$FLUXBOOTSTRAP_RELEASES_URL`) with the user cache directory.
    pub fn from_env() -> Result<ReleaseSource, ReleaseError> {
        let base_url = std::env::var(BASE_URL_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let cache_dir = directories::ProjectDirs::from("", "", "kubectl-fluxbootstrap")
            .ok_or(ReleaseError::NoCacheDir)?
            .cache_dir()
            .join("flux-manifests");
        Ok(ReleaseSource::new(base_url, cache_dir))
    }

    /// `base_url` with `cache_dir`, and the policy switches from the environment:
    /// `FLUXBOOTSTRAP_RELEASES_ALLOW_HTTP=1` allows a plain-HTTP mirror,
    /// `FLUXBOOTSTRAP_RELEASES_UNPINNED=1` (the test harness's synthetic bundle) lifts the pin.
    pub fn new(base_url: String, cache_dir: PathBuf) -> ReleaseSource {
        let flag = |name: &str| std::env::var(name).is_ok_and(|v| v == "1");
        ReleaseSource {
            base_url,
            cache_dir,
            allow_http: flag(ALLOW_HTTP_ENV),
            unpinned: flag(UNPINNED_ENV),
        }
    }

    /// Where `version` from this source is cached. GitHub's releases live under the version
    /// alone; a mirror's (or a test server's) under the version plus a digest of its base URL,
    /// so a bundle served under a release's name by anything but GitHub is never later
    /// installed as that release.
    pub fn cache_path(&self, version: &str) -> PathBuf {
        if self.base() == DEFAULT_BASE_URL {
            return self.cache_dir.join(version);
        }
        let digest = sha256_hex(self.base().as_bytes());
        self.cache_dir
            .join(format!("{version}+mirror-{}", &digest[..12]))
    }

    fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }

    fn asset_url(&self, version: &str, asset: &str) -> String {
        format!("{}/{REPO}/releases/download/{version}/{asset}", self.base())
    }

    fn latest_url(&self) -> String {
        if self.base() == DEFAULT_BASE_URL {
            format!("https://api.github.com/repos/{REPO}/releases/latest")
        } else {
            format!("{}/repos/{REPO}/releases/latest", self.base())
        }
    }
}

/// Resolves `version` (`vX.Y.Z` or `latest`) and returns the verified bundle, from the
/// cache when a valid copy is there.
pub async fn fetch_bundle(
    src: &ReleaseSource,
    version: &str,
) -> Result<(String, Bundle), ReleaseError> {
    if src.base()[..src.base().len().min(7)].eq_ignore_ascii_case("http://") && !src.allow_http {
        return Err(ReleaseError::InsecureMirror {
            url: src.base().to_owned(),
        });
    }
    let client = client()?;
    let version = if version == "latest" {
        latest_version(&client, src).await?
    } else {
        version.to_owned()
    };
    validate_version(&version)?;

    let pinned = |bundle: &Bundle| {
        if src.unpinned {
            Ok(())
        } else {
            crate::pinned::check(&version, bundle)
        }
    };
    let cache = src.cache_path(&version);
    if let Some(bundle) = read_cache(&cache) {
        // Checked on every read: a cache written by another build or by hand is no release.
        pinned(&bundle)?;
        return Ok((version, bundle));
    }

    let checksums_url = src.asset_url(
        &version,
        &format!("flux_{}_checksums.txt", version.trim_start_matches('v')),
    );
    let checksums = get(&client, &checksums_url, 1024 * 1024).await?;
    let expected = String::from_utf8_lossy(&checksums)
        .lines()
        .find_map(|line| {
            let mut parts = line.split_whitespace();
            let hash = parts.next()?;
            let name = parts.next()?.trim_start_matches('*');
            (name == "manifests.tar.gz").then(|| hash.to_ascii_lowercase())
        })
        .ok_or_else(|| ReleaseError::MissingChecksum {
            url: checksums_url.clone(),
        })?;

    let url = src.asset_url(&version, "manifests.tar.gz");
    let tar_gz = get(&client, &url, MAX_ARCHIVE_BYTES).await?;
    let actual = sha256_hex(&tar_gz);
    if actual != expected {
        return Err(ReleaseError::ChecksumMismatch {
            url,
            expected,
            actual,
        });
    }
    let bundle = unpack_bundle(&tar_gz)?;
    pinned(&bundle)?;
    // A cache that cannot be written only costs a download next time.
    let _ = write_cache(&cache, &tar_gz, &expected);
    Ok((version, bundle))
}

fn client() -> Result<reqwest::Client, ReleaseError> {
    // reqwest is built without a bundled crypto provider; the workspace uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("kubectl-fluxbootstrap/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_mins(2))
        .build()
        .map_err(ReleaseError::Client)
}

async fn get(client: &reqwest::Client, url: &str, limit: u64) -> Result<Vec<u8>, ReleaseError> {
    let http = |source| ReleaseError::Http {
        url: url.to_owned(),
        source,
    };
    let mut response = client.get(url).send().await.map_err(http)?;
    let status = response.status();
    if !status.is_success() {
        return Err(ReleaseError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    let advertised = response.content_length();
    if advertised.is_some_and(|len| len > limit) {
        return Err(ReleaseError::TooLarge {
            url: url.to_owned(),
            limit,
        });
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() as u64 > limit {
                    return Err(ReleaseError::TooLarge {
                        url: url.to_owned(),
                        limit,
                    });
                }
            }
            Ok(None) => break,
            // A connection closed before `Content-Length` bytes arrived.
            Err(_) if advertised.is_some() => {
                return Err(ReleaseError::Truncated {
                    url: url.to_owned(),
                    expected: advertised.unwrap_or_default(),
                    received: body.len() as u64,
                });
            }
            Err(source) => return Err(http(source)),
        }
    }
    if let Some(expected) = advertised
        && body.len() as u64 != expected
    {
        {
            return Err(ReleaseError::Truncated {
                url: url.to_owned(),
                expected,
                received: body.len() as u64,
            });
        }
    }
    Ok(body)
}

async fn latest_version(
    client: &reqwest::Client,
    src: &ReleaseSource,
) -> Result<String, ReleaseError> {
    let url = src.latest_url();
    let body = get(client, &url, 4 * 1024 * 1024).await?;
    serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["tag_name"].as_str().map(str::to_owned))
        .ok_or(ReleaseError::LatestVersion { url })
}

/// `v` followed by a version made of ASCII alphanumerics, `.`, `-` and `+`: anything else
/// could escape the URL path or the cache directory.
fn validate_version(version: &str) -> Result<(), ReleaseError> {
    let rest = version.strip_prefix('v').unwrap_or_default();
    let ok = rest.starts_with(|c: char| c.is_ascii_digit())
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
        && !rest.contains("..");
    if ok {
        Ok(())
    } else {
        Err(ReleaseError::InvalidVersion {
            version: version.to_owned(),
        })
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

const CACHE_ARCHIVE: &str = "manifests.tar.gz";
const CACHE_SUM: &str = "manifests.tar.gz.sha256";

/// The cached bundle, if present and still matching the checksum recorded from the
/// release; anything else (missing, truncated, corrupt) reads as a miss.
fn read_cache(dir: &Path) -> Option<Bundle> {
    let expected = std::fs::read_to_string(dir.join(CACHE_SUM)).ok()?;
    let tar_gz = std::fs::read(dir.join(CACHE_ARCHIVE)).ok()?;
    if sha256_hex(&tar_gz) != expected.trim() {
        return None;
    }
    unpack_bundle(&tar_gz).ok()
}

/// Writes the archive then its checksum, each through a rename, so a crash never leaves
/// a checksum next to a partial archive.
fn write_cache(dir: &Path, tar_gz: &[u8], sha256: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let _ = std::fs::remove_file(dir.join(CACHE_SUM));
    for (name, bytes) in [(CACHE_ARCHIVE, tar_gz), (CACHE_SUM, sha256.as_bytes())] {
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, dir.join(name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_versions() {
        assert!(validate_version("v2.9.4").is_ok());
        assert!(validate_version("v2.10.0-rc.1").is_ok());
        for bad in ["2.9.4", "v", "v../../x", "v2/../..", "v2.9.4?x", "latest"] {
            assert!(validate_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn builds_urls() {
        let src = ReleaseSource {
            base_url: DEFAULT_BASE_URL.to_owned(),
            cache_dir: PathBuf::new(),
            allow_http: false,
            unpinned: false,
        };
        assert_eq!(
            src.asset_url("v2.9.4", "manifests.tar.gz"),
            "https://github.com/fluxcd/flux2/releases/download/v2.9.4/manifests.tar.gz"
        );
        assert_eq!(
            src.latest_url(),
            "https://api.github.com/repos/fluxcd/flux2/releases/latest"
        );
        let mirror = ReleaseSource {
            base_url: "http://127.0.0.1:1/".to_owned(),
            cache_dir: PathBuf::new(),
            allow_http: true,
            unpinned: false,
        };
        assert_eq!(
            mirror.latest_url(),
            "http://127.0.0.1:1/repos/fluxcd/flux2/releases/latest"
        );
    }
}
