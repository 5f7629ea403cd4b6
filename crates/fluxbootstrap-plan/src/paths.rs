//! Where bootstrap writes in the repository: `<path>/<namespace>/` and its three files, with
//! `--path` cleaned like flux cleans it and refused when it leaves the repository.

use crate::PlanError;

/// Where bootstrap writes in the repository.
#[derive(Debug, Clone)]
pub struct RepoPaths {
    /// The cleaned `--path` without leading `./` (empty for the repository root).
    base: String,
    namespace: String,
}

impl RepoPaths {
    /// Cleans `--path` like flux (`./x`, no trailing slash) and refuses paths that leave the repo.
    pub fn new(path: &str, namespace: &str) -> Result<Self, PlanError> {
        if path.chars().any(char::is_control) {
            return Err(PlanError::new(
                format!(
                    "`--path {}` contains a control character",
                    path.escape_debug()
                ),
                "pass a path inside the repository, e.g. `--path clusters/my-cluster`",
            ));
        }
        let mut parts = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    return Err(PlanError::new(
                        format!("`--path {path}` points outside the repository"),
                        "pass a path inside the repository, e.g. `--path clusters/my-cluster`",
                    ));
                }
                other => parts.push(other),
            }
        }
        if path.starts_with('/') {
            return Err(PlanError::new(
                format!("`--path {path}` is absolute"),
                "pass a path relative to the repository root, e.g. `--path clusters/my-cluster`",
            ));
        }
        Ok(Self {
            base: parts.join("/"),
            namespace: namespace.to_owned(),
        })
    }

    fn file(&self, name: &str) -> String {
        if self.base.is_empty() {
            format!("{}/{name}", self.namespace)
        } else {
            format!("{}/{}/{name}", self.base, self.namespace)
        }
    }

    /// `<path>/<ns>/gotk-components.yaml`.
    pub fn components_file(&self) -> String {
        self.file("gotk-components.yaml")
    }

    /// `<path>/<ns>/gotk-sync.yaml`.
    pub fn sync_file(&self) -> String {
        self.file("gotk-sync.yaml")
    }

    /// `<path>/<ns>`: the folder the three files live in.
    pub fn folder(&self) -> String {
        self.file("").trim_end_matches('/').to_owned()
    }

    /// `<path>/<ns>/kustomization.yaml`.
    pub fn kustomization_file(&self) -> String {
        self.file("kustomization.yaml")
    }

    /// The Kustomization's `spec.path`: `./<path>` or `./`.
    pub fn sync_path(&self) -> String {
        format!("./{}", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_like_flux_and_kept_inside_the_repository() {
        let paths = RepoPaths::new("./clusters//prod/", "flux-system").unwrap();
        assert_eq!(paths.sync_path(), "./clusters/prod");
        assert_eq!(
            paths.components_file(),
            "clusters/prod/flux-system/gotk-components.yaml"
        );
        assert_eq!(paths.folder(), "clusters/prod/flux-system");
        let root = RepoPaths::new("", "ns").unwrap();
        assert_eq!(root.sync_path(), "./");
        assert_eq!(root.kustomization_file(), "ns/kustomization.yaml");
        for bad in ["../x", "a/../../b", "/abs", "a\u{7}b"] {
            let err = RepoPaths::new(bad, "ns").unwrap_err();
            assert!(err.hint().contains("--path"), "{bad}: {err}");
        }
    }
}
