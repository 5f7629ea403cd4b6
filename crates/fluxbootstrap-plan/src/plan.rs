//! A bootstrap's plan as data: the resolved choices, the repository change and one target per
//! cluster, each with the source Secret it gets. The binary builds it (prompts, preflight,
//! the bundle) and runs it; keeping the shape here lets what it says be checked without a
//! cluster, and `--dry-run` prints [`Plan::describe`].
//!
//! Generic over the handle `C` the executor applies a target with, so this crate stays free
//! of connections.

use std::collections::BTreeMap;

use fluxbootstrap_auth::SecretBytes;
use fluxbootstrap_manifests::KustomizationPatches;

use crate::{Folder, GitMode, PlannedCommit, RepoPaths, WriteRule};

/// The annotation on the source Secret that holds a minted cluster PAT's authorization id
/// (what revokes it; never the token).
pub const MINTED_PAT_ANNOTATION: &str = "fluxbootstrap.io/cluster-pat-authorization-id";

/// The source Secret a target gets: its data, and the authorization id of the cluster PAT
/// minted for it (`--cluster-pat mint`), which goes into [`MINTED_PAT_ANNOTATION`].
#[derive(Debug)]
pub struct SourceSecret {
    /// The Secret's data, key for key what flux writes for the mode.
    pub data: BTreeMap<String, SecretBytes>,
    /// The minted PAT's authorization id, when one was minted for this Secret.
    pub minted_pat: Option<String>,
}

/// Everything a run will do, decided.
#[derive(Debug)]
pub struct Plan<C> {
    /// The repository's HTTPS URL, as the report names it.
    pub repository: String,
    /// The authentication mode.
    pub mode: GitMode,
    /// `--branch`.
    pub branch: String,
    /// The namespace Flux is installed in.
    pub namespace: String,
    /// `--secret-name`.
    pub secret_name: String,
    /// The resolved Flux version of the bundle.
    pub flux_version: String,
    /// `gotk-components.yaml`, the same in every target's folder.
    pub components_yaml: String,
    /// The patches the generated `kustomization.yaml` carries, if any.
    pub patches: Option<KustomizationPatches>,
    /// The repository change: flux's commits with every target's files.
    pub commits: Vec<PlannedCommit>,
    /// One target per cluster that passed preflight.
    pub targets: Vec<PlannedTarget<C>>,
}

/// One cluster, checked, with what its part of the run needs.
#[derive(Debug)]
pub struct PlannedTarget<C> {
    /// The cluster's place among the selected ones (the report's order).
    pub index: usize,
    /// The context name as connected.
    pub name: String,
    /// The API server, as the kubeconfig names it.
    pub server_url: String,
    /// Where its files go.
    pub paths: RepoPaths,
    /// Its `gotk-sync.yaml`.
    pub sync_yaml: String,
    /// flux's `mustInstallManifests`: no Kustomization has applied a revision yet, so the
    /// components are installed directly instead of left to Flux.
    pub must_install: bool,
    /// The source Secret to write; `None` keeps the existing one (or the mode needs none).
    pub secret: Option<SourceSecret>,
    /// What the executor applies with.
    pub handle: C,
}

impl<C> PlannedTarget<C> {
    /// The folder this target's files go to, for [`crate::repository_change`].
    #[must_use]
    pub fn folder(&self) -> Folder<'_> {
        Folder {
            paths: &self.paths,
            sync_yaml: &self.sync_yaml,
        }
    }
}

impl<C> Plan<C> {
    /// What the plan will do, as a heading and its indented lines: the commits with their
    /// files, then each cluster with what it gets.
    #[must_use]
    pub fn describe(&self) -> (String, Vec<String>) {
        let clusters = match self.targets.len() {
            1 => "1 cluster".to_owned(),
            n => format!("{n} clusters"),
        };
        let heading = format!(
            "plan: Flux {} from {} (branch \"{}\", {}) to {clusters}",
            self.flux_version,
            self.repository,
            self.branch,
            self.mode.name(),
        );
        let mut lines = Vec::new();
        for commit in &self.commits {
            let subject = commit.message.lines().next().unwrap_or_default();
            lines.push(format!("commit \"{subject}\""));
            for file in &commit.files {
                let rule = match file.rule {
                    WriteRule::Always => "",
                    WriteRule::UnlessPresent => " (unless the branch has one)",
                };
                lines.push(format!("  {}{rule}", file.path));
            }
        }
        for target in &self.targets {
            let components = if target.must_install {
                "components installed directly"
            } else {
                "components left to Flux"
            };
            let secret = if target.secret.is_some() {
                format!(
                    "source secret \"{}/{}\" written",
                    self.namespace, self.secret_name
                )
            } else if matches!(self.mode, GitMode::AzureProvider { .. }) {
                "no source secret (workload identity)".to_owned()
            } else {
                "source secret kept".to_owned()
            };
            lines.push(format!(
                "cluster \"{}\" ({}): path \"{}\", {components}, {secret}, then the sync objects",
                target.name,
                target.server_url,
                target.paths.sync_path(),
            ));
        }
        (heading, lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChangeInputs, ModeFlags, repository_change};

    fn target(index: usize, path: &str, must_install: bool, secret: bool) -> PlannedTarget<()> {
        PlannedTarget {
            index,
            name: format!("ctx-{index}"),
            server_url: format!("https://10.0.0.{index}:6443"),
            paths: RepoPaths::new(path, "flux-system").expect("a path"),
            sync_yaml: "sync".to_owned(),
            must_install,
            secret: secret.then(|| SourceSecret {
                data: BTreeMap::new(),
                minted_pat: None,
            }),
            handle: (),
        }
    }

    #[test]
    fn the_description_lists_commits_files_and_clusters_in_order() {
        let targets = vec![
            target(0, "clusters/a", true, true),
            target(1, "clusters/b", false, false),
        ];
        let folders: Vec<Folder<'_>> = targets.iter().map(PlannedTarget::folder).collect();
        let commits = repository_change(&ChangeInputs {
            flux_version: "v2.9.4",
            components_yaml: "c",
            kustomization_yaml: "k",
            folders: &folders,
            single_commit: true,
            message_appendix: "second line",
        });
        let plan = Plan {
            repository: "https://dev.azure.com/o/p/_git/r".to_owned(),
            mode: GitMode::from_flags(ModeFlags {
                url_is_ssh: false,
                token_auth: true,
                with_bearer_token: false,
                ssh_hostname: None,
                provider: None,
                azure_client_id: None,
                mint_cluster_pat: false,
            })
            .expect("token mode"),
            branch: "main".to_owned(),
            namespace: "flux-system".to_owned(),
            secret_name: "flux-system".to_owned(),
            flux_version: "v2.9.4".to_owned(),
            components_yaml: "c".to_owned(),
            patches: None,
            commits,
            targets,
        };
        let (heading, lines) = plan.describe();
        assert_eq!(
            heading,
            "plan: Flux v2.9.4 from https://dev.azure.com/o/p/_git/r (branch \"main\", token) to 2 clusters"
        );
        assert_eq!(
            lines,
            [
                "commit \"Add Flux v2.9.4 component and sync manifests\"",
                "  clusters/a/flux-system/gotk-components.yaml",
                "  clusters/b/flux-system/gotk-components.yaml",
                "  clusters/a/flux-system/gotk-sync.yaml",
                "  clusters/a/flux-system/kustomization.yaml (unless the branch has one)",
                "  clusters/b/flux-system/gotk-sync.yaml",
                "  clusters/b/flux-system/kustomization.yaml (unless the branch has one)",
                "cluster \"ctx-0\" (https://10.0.0.0:6443): path \"./clusters/a\", components installed directly, source secret \"flux-system/flux-system\" written, then the sync objects",
                "cluster \"ctx-1\" (https://10.0.0.1:6443): path \"./clusters/b\", components left to Flux, source secret kept, then the sync objects",
            ]
        );
    }
}
