//! Reading rendered manifests back as objects, and the repository path rules.
//!
//! The cluster apply path needs the objects of `gotk-components.yaml` / `gotk-sync.yaml`
//! as JSON; the `--path` flag must stay inside the repository.

use crate::node::{Node, YamlError, parse_documents};

/// Why a manifest could not be split into objects.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// The text is not valid YAML.
    #[error("failed to parse the manifest")]
    Yaml(#[source] YamlError),
    /// A document is not a mapping (a Kubernetes object).
    #[error("document {index} of the manifest is not a Kubernetes object")]
    NotAnObject {
        /// Zero-based index among the non-empty documents.
        index: usize,
    },
}

/// Whether `object` is one of the sync objects of `gotk-sync.yaml`: a Flux `GitRepository`
/// or `Kustomization`.
pub fn is_sync_object(object: &serde_json::Value) -> bool {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    matches!(
        (api_version.split('/').next(), object["kind"].as_str()),
        (Some("source.toolkit.fluxcd.io"), Some("GitRepository"))
            | (Some("kustomize.toolkit.fluxcd.io"), Some("Kustomization"))
    )
}

/// Splits multi-document YAML into objects, in order; empty documents are skipped.
pub fn split_objects(yaml: &str) -> Result<Vec<serde_json::Value>, SplitError> {
    let docs = parse_documents(yaml).map_err(SplitError::Yaml)?;
    docs.iter()
        .enumerate()
        .map(|(index, doc)| match doc {
            Node::Map(_) => Ok(doc.to_json()),
            _ => Err(SplitError::NotAnObject { index }),
        })
        .collect()
}

/// Why a `--path` was rejected.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// The path is absolute.
    #[error("path `{path}` must be relative to the repository root")]
    Absolute {
        /// The rejected path.
        path: String,
    },
    /// The path has a NUL or another control character.
    #[error("path {path:?} contains a control character")]
    ControlCharacter {
        /// The rejected path.
        path: String,
    },
    /// The path climbs out of the repository with `..`.
    #[error("path `{path}` points outside the repository")]
    Escapes {
        /// The rejected path.
        path: String,
    },
}

impl PathError {
    /// User-actionable advice.
    pub fn hint(&self) -> Option<String> {
        Some("pass a path inside the repository, e.g. `--path=clusters/my-cluster`".to_owned())
    }
}

/// Normalises `--path` like flux (`./a//b/` -> `a/b`; empty or `.` -> the root, `""`),
/// rejecting absolute paths and paths that leave the repository.
pub fn normalize_target_path(path: &str) -> Result<String, PathError> {
    if path.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter {
            path: path.to_owned(),
        });
    }
    let trimmed = path.trim();
    if trimmed.starts_with('/') || trimmed.starts_with('\\') || trimmed.contains(":\\") {
        return Err(PathError::Absolute {
            path: path.to_owned(),
        });
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in trimmed.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathError::Escapes {
                        path: path.to_owned(),
                    });
                }
            }
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        assert_eq!(
            normalize_target_path("./clusters//prod/").ok().as_deref(),
            Some("clusters/prod")
        );
        assert_eq!(normalize_target_path("").ok().as_deref(), Some(""));
        // Found by `cargo xtask fuzz` (`manifest_yaml`): NULs went through.
        assert!(matches!(
            normalize_target_path("clusters/\0dev"),
            Err(PathError::ControlCharacter { .. })
        ));
        assert_eq!(normalize_target_path("a/../b").ok().as_deref(), Some("b"));
        assert!(matches!(
            normalize_target_path("../x"),
            Err(PathError::Escapes { .. })
        ));
        assert!(matches!(
            normalize_target_path("a/../../x"),
            Err(PathError::Escapes { .. })
        ));
        assert!(matches!(
            normalize_target_path("/etc"),
            Err(PathError::Absolute { .. })
        ));
    }

    #[test]
    fn splits_objects() {
        let objects = split_objects("---\n# c\n---\na: 1\n---\nb: '2'\n").expect("valid");
        assert_eq!(
            objects,
            vec![serde_json::json!({"a": 1}), serde_json::json!({"b": "2"})]
        );
        assert!(matches!(
            split_objects("- x\n"),
            Err(SplitError::NotAnObject { index: 0 })
        ));
    }
}
