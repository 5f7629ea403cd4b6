//! The one error of this crate: a step of the run that failed, naming the step, with the
//! library error under it as its source.

use fluxbootstrap_azdo::AzdoError;
use fluxbootstrap_cluster::ClusterError;
use fluxbootstrap_git::GitError;
use fluxbootstrap_manifests::SplitError;

/// A step of the run that failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// Reading the checkout, or cloning it.
    #[error(transparent)]
    Git(#[from] GitError),
    /// A commit could not be pushed.
    #[error("failed to push {what}")]
    Push {
        /// What the commit holds (`component manifests`, `sync manifests`).
        what: &'static str,
        /// Why.
        #[source]
        source: GitError,
    },
    /// `--create-repository` could not check or create the repository.
    #[error(transparent)]
    Azdo(#[from] AzdoError),
    /// Applying objects, or reading one of the cluster's Secrets.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The controllers did not report ready.
    #[error("bootstrap failed")]
    Wait(#[source] ClusterError),
    /// Writing the source Secret.
    #[error("failed to reconcile the source secret")]
    SourceSecret(#[source] ClusterError),
    /// Writing the `--registry-creds` pull Secret.
    #[error("failed to reconcile the image pull secret")]
    PullSecret(#[source] ClusterError),
    /// Manifests this run rendered, or `kubectl kustomize` printed, did not parse.
    #[error("failed to read {what}")]
    Manifests {
        /// Whose manifests.
        what: &'static str,
        /// Why.
        #[source]
        source: SplitError,
    },
    /// The folder's `kustomization.yaml` is the user's and kubectl is not on `PATH`.
    #[error(
        "the existing `kustomization.yaml` is not the generated one, and building it needs `kubectl`, which is not on PATH"
    )]
    KubectlMissing,
    /// `kubectl kustomize` of the user's `kustomization.yaml` failed.
    #[error("`kubectl kustomize` of the existing `kustomization.yaml` failed: {stderr}")]
    Kustomize {
        /// What kubectl said.
        stderr: String,
    },
    /// A local file operation of the run (the kustomize build folder, kubectl itself).
    #[error("failed to {what}")]
    Local {
        /// The operation.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The caller's sink refused a diff (a closed stdout).
    #[error("failed to write the diff")]
    Output(#[source] std::io::Error),
    /// The repository step failed, so this cluster was left alone.
    #[error("the repository step failed: {0}")]
    RepositoryStep(String),
    /// A task of the run panicked or was cancelled: a failure of the plugin, not of the input.
    #[error("the {0} task failed")]
    Task(&'static str),
}

impl ExecuteError {
    /// What to do about it, when there is advice.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            ExecuteError::Git(err) => err.hint(),
            ExecuteError::Azdo(err) => fluxbootstrap_azdo::hint_for(err),
            ExecuteError::Cluster(err) => fluxbootstrap_cluster::hint_for(err),
            ExecuteError::KubectlMissing => Some(
                "install kubectl (its `kubectl kustomize` builds the folder exactly as Flux will)"
                    .to_owned(),
            ),
            ExecuteError::Kustomize { .. } => Some(
                "fix the kustomization in the repository; Flux would fail to build it the same way"
                    .to_owned(),
            ),
            _ => None,
        }
    }

    /// Whether this is a failure of the plugin itself (exit code 2), not of the input or a
    /// cluster.
    #[must_use]
    pub fn is_internal(&self) -> bool {
        matches!(self, ExecuteError::Task(_))
    }
}
