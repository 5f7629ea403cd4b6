//! The nine files of a Flux release's `manifests.tar.gz`, and the component names they
//! cover.
//!
//! Where the files come from (download, cache, a local directory) is the release crate's
//! business; this type only checks that the set is usable for rendering.

use std::collections::BTreeMap;

/// Components installed by default, in flux's order.
pub const DEFAULT_COMPONENTS: [&str; 4] = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
];

/// Opt-in components (`--components-extra`).
pub const EXTRA_COMPONENTS: [&str; 3] = [
    "image-reflector-controller",
    "image-automation-controller",
    "source-watcher",
];

/// Components every installation needs (flux refuses to bootstrap without them).
pub const REQUIRED_COMPONENTS: [&str; 2] = ["source-controller", "kustomize-controller"];

/// The file names a complete v2.7+ bundle holds (`<component>.yaml`, `rbac.yaml`,
/// `policies.yaml`).
pub const BUNDLE_FILES: [&str; 9] = [
    "source-controller.yaml",
    "kustomize-controller.yaml",
    "helm-controller.yaml",
    "notification-controller.yaml",
    "image-reflector-controller.yaml",
    "image-automation-controller.yaml",
    "source-watcher.yaml",
    "rbac.yaml",
    "policies.yaml",
];

/// Every component name flux knows, defaults first.
pub fn known_components() -> impl Iterator<Item = &'static str> {
    DEFAULT_COMPONENTS.into_iter().chain(EXTRA_COMPONENTS)
}

/// The install manifests of one Flux release, by file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    files: BTreeMap<String, String>,
}

/// Why a set of files is not a usable bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file every bundle must have is absent.
    #[error("the Flux manifests bundle has no `{file}`")]
    MissingFile {
        /// The missing file name.
        file: String,
    },
    /// A file name outside the bundle layout.
    #[error("unexpected file `{file}` in the Flux manifests bundle")]
    UnexpectedFile {
        /// The unexpected file name.
        file: String,
    },
}

impl BundleError {
    /// User-actionable advice.
    pub fn hint(&self) -> Option<String> {
        match self {
            BundleError::MissingFile { .. } => Some(
                "`--manifests` must point at a directory or `manifests.tar.gz` holding the files of a Flux release's `manifests.tar.gz`".to_owned(),
            ),
            BundleError::UnexpectedFile { .. } => None,
        }
    }
}

impl Bundle {
    /// Builds a bundle from file name -> content. `rbac.yaml`, `policies.yaml` and the
    /// required components must be present; other component files may be missing
    /// (older releases have no `source-watcher.yaml`), which only matters when selected.
    /// Names outside [`BUNDLE_FILES`] are rejected.
    pub fn from_files(files: BTreeMap<String, String>) -> Result<Bundle, BundleError> {
        if let Some(file) = files.keys().find(|f| !BUNDLE_FILES.contains(&f.as_str())) {
            return Err(BundleError::UnexpectedFile { file: file.clone() });
        }
        for required in ["rbac.yaml", "policies.yaml"]
            .into_iter()
            .map(str::to_owned)
            .chain(REQUIRED_COMPONENTS.iter().map(|c| format!("{c}.yaml")))
        {
            if !files.contains_key(&required) {
                return Err(BundleError::MissingFile { file: required });
            }
        }
        Ok(Bundle { files })
    }

    /// The content of one file (e.g. `rbac.yaml`).
    pub fn file(&self, name: &str) -> Option<&str> {
        self.files.get(name).map(String::as_str)
    }

    /// All files, by name.
    pub fn files(&self) -> &BTreeMap<String, String> {
        &self.files
    }
}
