//! Loading bundles for the tests: the real Flux v2.9.4 files when
//! `FLUXBOOTSTRAP_FLUX_MANIFESTS` points at them, and the project's synthetic fixture.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use fluxbootstrap_manifests::{BUNDLE_FILES, Bundle};

/// Reads the nine bundle files from `dir`.
pub(crate) fn load_bundle(dir: &Path) -> Bundle {
    let files: BTreeMap<String, String> = BUNDLE_FILES
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(name))
                .unwrap_or_else(|e| panic!("reading {}: {e}", dir.join(name).display()));
            ((*name).to_owned(), text)
        })
        .collect();
    Bundle::from_files(files).expect("the test bundle is complete")
}

/// The project's synthetic bundle (no Flux files).
pub(crate) fn fixture_bundle() -> Bundle {
    load_bundle(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bundle"))
}

/// `../shared/flux-manifests` (through the environment variable), or `None` with a note.
#[expect(clippy::print_stderr, reason = "tells why golden tests are skipped")]
pub(crate) fn flux_manifests_dir() -> Option<PathBuf> {
    match std::env::var_os("FLUXBOOTSTRAP_FLUX_MANIFESTS").map(PathBuf::from) {
        Some(dir) if dir.join("v2.9.4/rbac.yaml").is_file() => Some(dir),
        _ => {
            eprintln!(
                "note: FLUXBOOTSTRAP_FLUX_MANIFESTS is unset or has no v2.9.4/; skipping the test against the real Flux manifests"
            );
            None
        }
    }
}

/// A `kubectl` with kustomize built in, if one is installed.
pub(crate) fn kubectl() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("FLUXBOOTSTRAP_KUBE_BIN_DIR").map(|d| PathBuf::from(d).join("kubectl")),
        Some(PathBuf::from("/usr/bin/kubectl")),
        Some(PathBuf::from("/usr/local/bin/kubectl")),
    ];
    candidates.into_iter().flatten().find(|p| {
        Command::new(p)
            .args(["kustomize", "--help"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}
