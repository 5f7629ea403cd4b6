//! Where the real Flux binaries are: the controllers the process kubelet runs and the `flux`
//! CLI the differential tests run beside the plugin.
//!
//! `cargo xtask flux build` compiles them into a cache directory keyed by the hash of
//! `xtask/go/flux/builds.txt`; this module derives the same directory and reads the same file
//! for the version each binary was built at.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn builds_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../xtask/go/flux/builds.txt")
}

/// `$FLUXBOOTSTRAP_FLUX_BIN_DIR`, else `~/.cache/kubectl-fluxbootstrap/flux/builds-<hash>/`.
pub fn flux_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FLUXBOOTSTRAP_FLUX_BIN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let text = fs_err::read(builds_file()).expect("xtask/go/flux/builds.txt is in the source tree");
    let hash: String = Sha256::digest(&text)[..6]
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
    crate::control_plane::cache_dir("flux", &format!("builds-{hash}"))
}

/// Every built binary by name, with the module version it was built at.
fn builds() -> Vec<(String, String)> {
    let text = fs_err::read_to_string(builds_file())
        .expect("xtask/go/flux/builds.txt is in the source tree");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let binary = fields.next()?;
            let (_, version) = fields.next()?.split_once('@')?;
            Some((binary.to_owned(), version.to_owned()))
        })
        .collect()
}

/// The controller binaries that exist, by image name: (path, image tag they were built at).
pub(crate) fn controller_binaries() -> BTreeMap<String, (PathBuf, String)> {
    let dir = flux_bin_dir();
    builds()
        .into_iter()
        .filter(|(name, _)| name.ends_with("-controller"))
        .map(|(name, version)| (dir.join(&name), name, version))
        .filter(|(path, _, _)| path.is_file())
        .map(|(path, name, version)| (name, (path, version)))
        .collect()
}

/// The real `flux` CLI, if `cargo xtask flux build` built it (it needs the release bundle
/// from `$FLUXBOOTSTRAP_FLUX_MANIFESTS`).
pub fn flux_cli() -> Option<PathBuf> {
    Some(flux_bin_dir().join("flux")).filter(|p| p.is_file())
}

/// Why the real Flux binaries are missing, and the command that builds them.
pub fn missing_flux_binaries() -> Option<String> {
    missing(|_| true)
}

/// Like [`missing_flux_binaries`], for the controllers the kubelet runs (not the CLI, which
/// needs the real bundle to be built).
pub(crate) fn missing_controller_binaries() -> Option<String> {
    missing(|name| name.ends_with("-controller"))
}

fn missing(wanted: impl Fn(&str) -> bool) -> Option<String> {
    let dir = flux_bin_dir();
    let missing: Vec<String> = builds()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| wanted(name) && !dir.join(name).is_file())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "the real Flux binaries {} are missing from `{}`: run `cargo xtask flux build` \
             (with FLUXBOOTSTRAP_FLUX_MANIFESTS pointing at the Flux manifests for the CLI)",
            missing.join(", "),
            dir.display()
        )
    })
}
