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
    /// `--dry-run`: every step compares instead of writing, and nothing is waited for.
    pub dry_run: bool,
    /// The `--registry-creds` image pull Secret, as (name, data).
    pub image_pull_secret: Option<(String, BTreeMap<String, SecretBytes>)>,
    /// One target per cluster that passed preflight.
    pub targets: Vec<PlannedTarget<C>>,
}

/// One step of a target's part of the run, in flux's write order ([`Plan::steps`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Apply the components directly: Flux is not syncing the cluster yet.
    InstallComponents,
    /// Write the `--registry-creds` image pull Secret.
    ImagePullSecret,
    /// Write the source Secret.
    SourceSecret,
    /// Keep the source Secret the cluster has (a generated key already registered, a minted
    /// PAT already stored).
    KeepSourceSecret,
    /// Apply the sync objects; with the components too when they were not just installed
    /// (Flux owns them, or a dry run installed nothing and compares them).
    ApplySync {
        /// Whether the components are applied (compared) together with the sync objects.
        with_components: bool,
    },
    /// Wait for the controllers and for Flux to apply the pushed revision.
    WaitReady,
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
    /// What `target` goes through, in order: the components (installed directly when Flux
    /// is not syncing the cluster yet), the pull and source Secrets, the sync objects, and
    /// the wait (not in a dry run).
    #[must_use]
    pub fn steps(&self, target: &PlannedTarget<C>) -> Vec<Step> {
        let mut steps = Vec::new();
        if target.must_install {
            steps.push(Step::InstallComponents);
        }
        if self.image_pull_secret.is_some() {
            steps.push(Step::ImagePullSecret);
        }
        if target.secret.is_some() {
            steps.push(Step::SourceSecret);
        } else if !matches!(self.mode, GitMode::AzureProvider { .. }) {
            steps.push(Step::KeepSourceSecret);
        }
        // Components just installed are as wanted; re-diffing them would only cost the API
        // server time that the other clusters of a fleet share.
        steps.push(Step::ApplySync {
            with_components: !target.must_install || self.dry_run,
        });
        if !self.dry_run {
            steps.push(Step::WaitReady);
        }
        steps
    }

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
            let steps: Vec<String> = self
                .steps(target)
                .into_iter()
                .map(|step| match step {
                    Step::InstallComponents => "install the components".to_owned(),
                    Step::ImagePullSecret => format!(
                        "image pull secret \"{}\"",
                        self.image_pull_secret
                            .as_ref()
                            .map_or("", |(name, _)| name.as_str())
                    ),
                    Step::SourceSecret => {
                        format!("source secret \"{}/{}\"", self.namespace, self.secret_name)
                    }
                    Step::KeepSourceSecret => "keep the source secret".to_owned(),
                    Step::ApplySync {
                        with_components: true,
                    } => "components and sync objects".to_owned(),
                    Step::ApplySync {
                        with_components: false,
                    } => "sync objects".to_owned(),
                    Step::WaitReady => "wait for Flux".to_owned(),
                })
                .collect();
            lines.push(format!(
                "cluster \"{}\" ({}), path \"{}\": {}",
                target.name,
                target.server_url,
                target.paths.sync_path(),
                steps.join(", "),
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
            patches: None,
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
            dry_run: false,
            image_pull_secret: None,
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
                "cluster \"ctx-0\" (https://10.0.0.0:6443), path \"./clusters/a\": install the components, source secret \"flux-system/flux-system\", sync objects, wait for Flux",
                "cluster \"ctx-1\" (https://10.0.0.1:6443), path \"./clusters/b\": keep the source secret, components and sync objects, wait for Flux",
            ]
        );
    }

    #[test]
    fn a_dry_run_compares_the_components_with_the_sync_objects_and_waits_for_nothing() {
        let mut plan = Plan {
            repository: String::new(),
            mode: GitMode::Ssh,
            branch: "main".to_owned(),
            namespace: "flux-system".to_owned(),
            secret_name: "flux-system".to_owned(),
            flux_version: "v2.9.4".to_owned(),
            components_yaml: String::new(),
            patches: None,
            commits: Vec::new(),
            dry_run: true,
            image_pull_secret: Some(("regcred".to_owned(), BTreeMap::new())),
            targets: vec![target(0, "clusters/a", true, true)],
        };
        assert_eq!(
            plan.steps(&plan.targets[0]),
            [
                Step::InstallComponents,
                Step::ImagePullSecret,
                Step::SourceSecret,
                Step::ApplySync {
                    with_components: true
                },
            ]
        );
        plan.dry_run = false;
        assert_eq!(
            plan.steps(&plan.targets[0]),
            [
                Step::InstallComponents,
                Step::ImagePullSecret,
                Step::SourceSecret,
                Step::ApplySync {
                    with_components: false
                },
                Step::WaitReady,
            ]
        );
    }
}
