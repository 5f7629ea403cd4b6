//! The crate's one error type, so the binary can render every cluster failure with a hint.

use std::path::PathBuf;
use std::time::Duration;

use crate::object::ObjectRef;

/// Everything that can go wrong while talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No kubeconfig file exists and the process does not run in a pod.
    #[error("No kubeconfig found (looked at {looked_at}) and not running inside a cluster")]
    NoKubeconfig {
        /// Where we looked, for the message.
        looked_at: String,
    },
    /// A kubeconfig file could not be read or parsed.
    #[error("Failed to read kubeconfig `{}`", path.display())]
    ReadKubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// Neither `--context` nor `current-context` names a context.
    #[error("No context selected: kubeconfig {files} has no `current-context`")]
    NoCurrentContext {
        /// The kubeconfig files, joined.
        files: String,
    },
    /// The requested context does not exist.
    #[error("Context `{context}` not found in kubeconfig {files}")]
    ContextNotFound {
        /// The context name.
        context: String,
        /// The kubeconfig files, joined.
        files: String,
    },
    /// The context exists but its cluster or user stanza is unusable.
    #[error("Invalid kubeconfig context `{context}` (defined in `{}`)", file.display())]
    InvalidContext {
        /// The context name.
        context: String,
        /// The file defining the context.
        file: PathBuf,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// In-cluster configuration failed.
    #[error("Failed to load the in-cluster configuration")]
    InCluster {
        /// Why.
        #[source]
        source: kube::config::InClusterError,
    },
    /// Building the HTTP client failed (TLS material, proxy).
    #[error("Failed to create a Kubernetes client for context `{context}`")]
    Client {
        /// The context name.
        context: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// A request failed.
    #[error("Failed to {action} (context `{context}`)")]
    Api {
        /// What we tried, e.g. "get `CustomResourceDefinition`/x".
        action: String,
        /// The context name.
        context: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The API server is older than Flux supports.
    #[error("Kubernetes {found} is not supported: Flux needs {minimum} or newer")]
    ServerTooOld {
        /// The server's `gitVersion`.
        found: String,
        /// The minimum, e.g. `1.33`.
        minimum: String,
    },
    /// The user cannot do everything (`SelfSubjectAccessReview` for `*` was denied).
    #[error("The user of context `{context}` is not cluster-admin")]
    NotClusterAdmin {
        /// The context name.
        context: String,
        /// The reason the API server gave, if any.
        reason: String,
    },
    /// An admission policy or webhook refuses what bootstrap must create in the namespace.
    #[error(
        "An admission policy of context `{context}` refuses objects in namespace `{namespace}`: {message}"
    )]
    NamespaceProtected {
        /// The context name.
        context: String,
        /// The Flux namespace.
        namespace: String,
        /// What the admission chain said.
        message: String,
    },
    /// Flux was installed by another tool.
    #[error("Flux {version} on this cluster is managed by `{tool}`")]
    ManagedByOtherTool {
        /// The installed version.
        version: String,
        /// The `app.kubernetes.io/managed-by` label value.
        tool: String,
    },
    /// An existing Kustomization syncs a different path.
    #[error(
        "Sync path `{new}` would overwrite path `{old}` of the existing Kustomization `{namespace}/{name}`"
    )]
    PathConflict {
        /// Namespace of the Kustomization.
        namespace: String,
        /// Name of the Kustomization.
        name: String,
        /// Requested path (normalized).
        new: String,
        /// Path in the cluster (normalized).
        old: String,
    },
    /// An object given to `apply` is malformed.
    #[error("Object #{index} to apply is invalid: {problem}")]
    InvalidObject {
        /// Position in the input.
        index: usize,
        /// What is missing.
        problem: String,
    },
    /// The API server does not serve a kind.
    #[error("The API server does not serve kind `{kind}` of `{api_version}`")]
    UnknownKind {
        /// The apiVersion.
        api_version: String,
        /// The kind.
        kind: String,
    },
    /// Applying one object failed.
    #[error("Failed to apply `{object}`")]
    Apply {
        /// The object (boxed to keep the error small).
        object: Box<ObjectRef>,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// CRDs were applied but did not become Established in time.
    #[error("CustomResourceDefinitions not established within {}s: {pending}", timeout.as_secs())]
    CrdsNotEstablished {
        /// The CRDs still pending, with their condition messages.
        pending: String,
        /// The timeout.
        timeout: Duration,
    },
    /// A wait ran out of time.
    #[error("Timed out after {}s waiting for {pending}", timeout.as_secs())]
    WaitTimeout {
        /// What was still not ready, with the last status seen.
        pending: String,
        /// The timeout.
        timeout: Duration,
    },
    /// A Flux object reported `Ready=False` (or a Deployment failed to progress).
    #[error("{kind} `{namespace}/{name}` is not ready: {message}")]
    NotReady {
        /// Kind.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The controller's message.
        message: String,
    },
    /// A Flux object is suspended, so it will never become ready.
    #[error("{kind} `{namespace}/{name}` is suspended")]
    Suspended {
        /// Kind.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// `request_reconcile` got a kind it does not know.
    #[error("Unknown Flux kind `{kind}`")]
    UnknownFluxKind {
        /// The kind.
        kind: String,
    },
    /// Some objects could not be removed.
    #[error("Uninstall failed for {}: {}", failures.len(), failures.join("; "))]
    Uninstall {
        /// One line per failed object.
        failures: Vec<String>,
    },
}

impl ClusterError {
    /// User-actionable advice for this error, if there is any.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NoKubeconfig { .. } => Some(
                "pass `--kubeconfig`, set `KUBECONFIG`, or create `~/.kube/config`".to_owned(),
            ),
            Self::ReadKubeconfig { path, .. } => Some(format!(
                "fix or replace `{}` (`kubectl config view --kubeconfig {}` shows what kubectl makes of it), or pass another file with `--kubeconfig`",
                path.display(),
                path.display()
            )),
            Self::NoCurrentContext { .. } | Self::ContextNotFound { .. } => {
                Some("pass `--context` with one of `kubectl config get-contexts`".to_owned())
            }
            Self::Api { context, .. } | Self::Client { context, .. } => Some(format!(
                "check the cluster with `kubectl --context {context} cluster-info`"
            )),
            Self::ServerTooOld { minimum, .. } => {
                Some(format!("upgrade the cluster to Kubernetes {minimum} or newer"))
            }
            Self::NotClusterAdmin { .. } => Some(
                "bootstrap needs cluster-admin; pass `--context` with an admin user".to_owned(),
            ),
            Self::NamespaceProtected { namespace, .. } => Some(format!(
                "exempt namespace `{namespace}` from the policy, or install Flux into another namespace with `-n`"
            )),
            Self::ManagedByOtherTool { tool, .. } => Some(format!(
                "remove the `{tool}` installation first, or pass `--force` to take it over"
            )),
            Self::PathConflict { old, .. } => Some(format!(
                "pass `--path {old}`, or change the Kustomization's path first"
            )),
            Self::CrdsNotEstablished { .. } => Some(
                "check `kubectl get crd` for a `NamesAccepted=False` condition (a name clash with another CRD)"
                    .to_owned(),
            ),
            Self::WaitTimeout { .. } => {
                Some("pass a longer `--timeout`, or look at `kubectl -n <namespace> get events`".to_owned())
            }
            Self::Suspended { kind, name, namespace } => Some(format!(
                "resume it with `flux resume {} {name} -n {namespace}`",
                kind.to_lowercase()
            )),
            Self::Apply { source, .. } if is_status(source, 403) => {
                Some("the user needs cluster-admin rights to install Flux".to_owned())
            }
            _ => None,
        }
    }
}

/// Whether `err` is an API status with HTTP `code`.
pub(crate) fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == code)
}
