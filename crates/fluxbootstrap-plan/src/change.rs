//! The repository change of a bootstrap: which files go into which commit, under flux's commit
//! messages. `azdo` commits it, and `export` writes the same files to disk or stdout, so what a
//! pull request would carry is what a bootstrap would have pushed.

use fluxbootstrap_manifests::KustomizationPatches;

use crate::RepoPaths;

/// When a planned file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteRule {
    /// Always (flux owns the file).
    Always,
    /// Only where the branch has none: an existing one is the user's (`kustomization.yaml`).
    UnlessPresent,
}

/// One file of the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// The path in the repository, with `/`.
    pub path: String,
    /// What the file holds.
    pub contents: String,
    /// When it is written.
    pub rule: WriteRule,
}

/// One commit of the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCommit {
    /// flux's message, with the `--commit-message-appendix`.
    pub message: String,
    /// What the commit holds, for progress lines: `component manifests`, `sync manifests`.
    pub subject: &'static str,
    /// The files, in the order they are written.
    pub files: Vec<PlannedFile>,
}

/// One folder the change writes: a cluster's `--path`, and its `gotk-sync.yaml`.
#[derive(Debug, Clone, Copy)]
pub struct Folder<'a> {
    /// Where the folder's files go.
    pub paths: &'a RepoPaths,
    /// Its `gotk-sync.yaml` ([`crate::sync_manifests`]).
    pub sync_yaml: &'a str,
}

/// What the change is made of.
#[derive(Debug, Clone, Copy)]
pub struct ChangeInputs<'a> {
    /// The Flux version of the components, as in their commit message (`v2.9.4`).
    pub flux_version: &'a str,
    /// `gotk-components.yaml`, the same in every folder.
    pub components_yaml: &'a str,
    /// The patches the generated `kustomization.yaml` carries ([`crate::kustomization_patches`]).
    pub patches: Option<&'a KustomizationPatches>,
    /// The folders, one per cluster.
    pub folders: &'a [Folder<'a>],
    /// `--single-commit`: one commit for components and sync.
    pub single_commit: bool,
    /// `--commit-message-appendix`, empty for none.
    pub message_appendix: &'a str,
}

/// The commits flux makes: the components of every folder, then their sync manifests and
/// `kustomization.yaml`; one commit of both with `--single-commit`.
#[must_use]
pub fn repository_change(inputs: &ChangeInputs<'_>) -> Vec<PlannedCommit> {
    let appendix = if inputs.message_appendix.is_empty() {
        String::new()
    } else {
        format!("\n\n{}", inputs.message_appendix)
    };
    let version = inputs.flux_version;
    let kustomization_yaml =
        fluxbootstrap_manifests::render_kustomization(&inputs.patches.cloned().unwrap_or_default());
    let file = |path: String, contents: &str, rule| PlannedFile {
        path,
        contents: contents.to_owned(),
        rule,
    };
    let components: Vec<PlannedFile> = inputs
        .folders
        .iter()
        .map(|f| {
            file(
                f.paths.components_file(),
                inputs.components_yaml,
                WriteRule::Always,
            )
        })
        .collect();
    let sync: Vec<PlannedFile> = inputs
        .folders
        .iter()
        .flat_map(|f| {
            [
                file(f.paths.sync_file(), f.sync_yaml, WriteRule::Always),
                file(
                    f.paths.kustomization_file(),
                    &kustomization_yaml,
                    WriteRule::UnlessPresent,
                ),
            ]
        })
        .collect();
    if inputs.single_commit {
        return vec![PlannedCommit {
            message: format!("Add Flux {version} component and sync manifests{appendix}"),
            subject: "component and sync manifests",
            files: components.into_iter().chain(sync).collect(),
        }];
    }
    vec![
        PlannedCommit {
            message: format!("Add Flux {version} component manifests{appendix}"),
            subject: "component manifests",
            files: components,
        },
        PlannedCommit {
            message: format!("Add Flux sync manifests{appendix}"),
            subject: "sync manifests",
            files: sync,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(path: &str) -> RepoPaths {
        RepoPaths::new(path, "flux-system").expect("a path")
    }

    #[test]
    fn two_folders_get_flux_s_two_commits() {
        let (a, b) = (paths("clusters/a"), paths("clusters/b"));
        let folders = [
            Folder {
                paths: &a,
                sync_yaml: "sync a",
            },
            Folder {
                paths: &b,
                sync_yaml: "sync b",
            },
        ];
        let commits = repository_change(&ChangeInputs {
            flux_version: "v2.9.4",
            components_yaml: "components",
            patches: None,
            folders: &folders,
            single_commit: false,
            message_appendix: "",
        });
        let messages: Vec<&str> = commits.iter().map(|c| c.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "Add Flux v2.9.4 component manifests",
                "Add Flux sync manifests"
            ]
        );
        let files = |c: &PlannedCommit| -> Vec<(String, WriteRule)> {
            c.files.iter().map(|f| (f.path.clone(), f.rule)).collect()
        };
        assert_eq!(
            files(&commits[0]),
            [
                (
                    "clusters/a/flux-system/gotk-components.yaml".to_owned(),
                    WriteRule::Always
                ),
                (
                    "clusters/b/flux-system/gotk-components.yaml".to_owned(),
                    WriteRule::Always
                ),
            ]
        );
        assert_eq!(
            files(&commits[1]),
            [
                (
                    "clusters/a/flux-system/gotk-sync.yaml".to_owned(),
                    WriteRule::Always
                ),
                (
                    "clusters/a/flux-system/kustomization.yaml".to_owned(),
                    WriteRule::UnlessPresent
                ),
                (
                    "clusters/b/flux-system/gotk-sync.yaml".to_owned(),
                    WriteRule::Always
                ),
                (
                    "clusters/b/flux-system/kustomization.yaml".to_owned(),
                    WriteRule::UnlessPresent
                ),
            ]
        );
        assert_eq!(commits[1].files[2].contents, "sync b");
    }

    #[test]
    fn a_single_commit_carries_everything_and_the_appendix() {
        let a = paths("clusters/a");
        let commits = repository_change(&ChangeInputs {
            flux_version: "v2.9.4",
            components_yaml: "components",
            patches: None,
            folders: &[Folder {
                paths: &a,
                sync_yaml: "sync",
            }],
            single_commit: true,
            message_appendix: "[skip ci]",
        });
        assert_eq!(commits.len(), 1);
        assert_eq!(
            commits[0].message,
            "Add Flux v2.9.4 component and sync manifests\n\n[skip ci]"
        );
        assert_eq!(commits[0].files.len(), 3);
    }
}
