//! Building a [`Cluster`] the way kubectl picks its cluster: `--kubeconfig`, else every file
//! of `KUBECONFIG` merged (first file to define a name wins), else `~/.kube/config`, else the
//! in-cluster service account; then kubectl's connection flags (`--server`, `--token`,
//! `--as`, ...) override the chosen context's cluster and user, as client-go's
//! `ConfigOverrides` do. It also holds a small discovery cache keyed by apiVersion.

use fluxbootstrap_auth::ExposeSecret as _;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{ApiResource, Scope};

use crate::error::{ClusterError, is_status};
use crate::object::ObjectRef;

/// The kubectl-style flags that choose the cluster and user.
#[derive(Debug, Clone, Default)]
pub struct KubeOptions {
    /// `--kubeconfig`: only this file, no merging.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`: instead of `current-context`.
    pub context: Option<String>,
    /// `--cluster`: overrides the context's cluster.
    pub cluster: Option<String>,
    /// `--user`: overrides the context's user.
    pub user: Option<String>,
    /// `--request-timeout`: per request; `None` (kubectl's `0`) means no timeout.
    pub request_timeout: Option<Duration>,
    /// kubectl's connection flags, applied over the chosen context.
    pub overrides: KubeOverrides,
}

/// kubectl's (and flux's) connection flags; each set one replaces the kubeconfig's value.
#[derive(Debug, Clone, Default)]
pub struct KubeOverrides {
    /// `--server`: the API server URL (also without any kubeconfig).
    pub server: Option<String>,
    /// `--certificate-authority`: CA file for the API server's certificate.
    pub certificate_authority: Option<PathBuf>,
    /// `--insecure-skip-tls-verify`.
    pub insecure_skip_tls_verify: bool,
    /// `--tls-server-name`: the name to verify the server certificate against.
    pub tls_server_name: Option<String>,
    /// `--disable-compression`.
    pub disable_compression: bool,
    /// `--token`: a bearer token.
    pub token: Option<fluxbootstrap_auth::SecretString>,
    /// `--client-certificate` and `--client-key`: files for TLS client authentication.
    pub client_certificate: Option<PathBuf>,
    /// See `client_certificate`.
    pub client_key: Option<PathBuf>,
    /// `--as`, `--as-uid`, `--as-group`, `--as-user-extra key=value`: impersonation.
    pub impersonate: Option<String>,
    /// See `impersonate`.
    pub impersonate_uid: Option<String>,
    /// See `impersonate`.
    pub impersonate_groups: Vec<String>,
    /// See `impersonate`.
    pub impersonate_user_extra: Vec<(String, String)>,
}

impl KubeOverrides {
    /// Whether no connection flag was given.
    fn is_empty(&self) -> bool {
        self.server.is_none()
            && self.certificate_authority.is_none()
            && !self.insecure_skip_tls_verify
            && self.tls_server_name.is_none()
            && !self.disable_compression
            && self.token.is_none()
            && self.client_certificate.is_none()
            && self.client_key.is_none()
            && self.impersonate.is_none()
            && self.impersonate_uid.is_none()
            && self.impersonate_groups.is_empty()
            && self.impersonate_user_extra.is_empty()
    }

    /// Applies the set flags to `cluster` and `user`.
    fn apply(&self, cluster: &mut kube::config::Cluster, user: &mut kube::config::AuthInfo) {
        let path = |p: &PathBuf| p.display().to_string();
        if let Some(server) = &self.server {
            cluster.server = Some(server.clone());
        }
        if let Some(ca) = &self.certificate_authority {
            cluster.certificate_authority = Some(path(ca));
            cluster.certificate_authority_data = None;
        }
        if self.insecure_skip_tls_verify {
            cluster.insecure_skip_tls_verify = Some(true);
        }
        if let Some(name) = &self.tls_server_name {
            cluster.tls_server_name = Some(name.clone());
        }
        if self.disable_compression {
            cluster.disable_compression = Some(true);
        }
        if let Some(token) = &self.token {
            user.token = Some(token.expose_secret().to_owned().into());
            user.token_file = None;
        }
        if let Some(cert) = &self.client_certificate {
            user.client_certificate = Some(path(cert));
            user.client_certificate_data = None;
        }
        if let Some(key) = &self.client_key {
            user.client_key = Some(path(key));
            user.client_key_data = None;
        }
        if let Some(name) = &self.impersonate {
            user.impersonate = Some(name.clone());
        }
        if let Some(uid) = &self.impersonate_uid {
            user.impersonate_uid = Some(uid.clone());
        }
        if !self.impersonate_groups.is_empty() {
            user.impersonate_groups = Some(self.impersonate_groups.clone());
        }
        if !self.impersonate_user_extra.is_empty() {
            let mut extra: HashMap<String, Vec<String>> = HashMap::new();
            for (key, value) in &self.impersonate_user_extra {
                extra.entry(key.clone()).or_default().push(value.clone());
            }
            user.impersonate_user_extra = Some(extra);
        }
    }
}

/// The context name used when `--server` stands in for a missing kubeconfig.
const FLAGS_CONTEXT: &str = "command-line";

/// A connected client with its discovery cache; cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    pub(crate) client: Client,
    context: String,
    server: String,
    pub(crate) request_timeout: Option<Duration>,
    discovery: Arc<Mutex<HashMap<String, Arc<Vec<Served>>>>>,
}

/// One kind served under an apiVersion.
#[derive(Debug, Clone)]
struct Served {
    kind: String,
    plural: String,
    namespaced: bool,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("context", &self.context)
            .field("server", &self.server)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Loads the kubeconfig like kubectl and builds a client for the chosen context.
    pub async fn connect(opts: &KubeOptions) -> Result<Cluster, ClusterError> {
        Self::connect_with(opts, std::env::var_os("KUBECONFIG")).await
    }

    /// [`Cluster::connect`] with the value of `KUBECONFIG` passed in (tests cannot set it safely).
    async fn connect_with(
        opts: &KubeOptions,
        env: Option<OsString>,
    ) -> Result<Cluster, ClusterError> {
        let files = kubeconfig_files(opts, env.as_deref())?;
        if files.is_empty()
            && let Some(server) = &opts.overrides.server
        {
            // kubectl connects with `--server` (and credentials flags) alone.
            let mut cluster = kube::config::Cluster {
                server: Some(server.clone()),
                ..kube::config::Cluster::default()
            };
            let mut user = kube::config::AuthInfo::default();
            opts.overrides.apply(&mut cluster, &mut user);
            let config = Kubeconfig {
                clusters: vec![kube::config::NamedCluster {
                    name: FLAGS_CONTEXT.to_owned(),
                    cluster: Some(cluster),
                    other: std::collections::BTreeMap::default(),
                }],
                auth_infos: vec![kube::config::NamedAuthInfo {
                    name: FLAGS_CONTEXT.to_owned(),
                    auth_info: Some(user),
                    other: std::collections::BTreeMap::default(),
                }],
                contexts: vec![kube::config::NamedContext {
                    name: FLAGS_CONTEXT.to_owned(),
                    context: Some(kube::config::Context {
                        cluster: FLAGS_CONTEXT.to_owned(),
                        user: Some(FLAGS_CONTEXT.to_owned()),
                        ..kube::config::Context::default()
                    }),
                    other: std::collections::BTreeMap::default(),
                }],
                current_context: Some(FLAGS_CONTEXT.to_owned()),
                ..Kubeconfig::default()
            };
            let kube_opts = KubeConfigOptions {
                context: Some(FLAGS_CONTEXT.to_owned()),
                ..KubeConfigOptions::default()
            };
            let config = kube::Config::from_custom_kubeconfig(config, &kube_opts)
                .await
                .map_err(|source| ClusterError::InvalidContext {
                    context: FLAGS_CONTEXT.to_owned(),
                    file: PathBuf::from("--server"),
                    source,
                })?;
            return Self::from_config(config, server.clone(), opts.request_timeout);
        }
        if files.is_empty() {
            if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
                let config = kube::Config::incluster()
                    .map_err(|source| ClusterError::InCluster { source })?;
                return Self::from_config(config, "in-cluster".to_owned(), opts.request_timeout);
            }
            return Err(ClusterError::NoKubeconfig {
                looked_at: looked_at(env.as_deref()),
            });
        }
        let mut per_file = Vec::with_capacity(files.len());
        for path in &files {
            let config =
                Kubeconfig::read_from(path).map_err(|source| ClusterError::ReadKubeconfig {
                    path: path.clone(),
                    source,
                })?;
            per_file.push((path.clone(), config));
        }
        let mut merged = Kubeconfig::default();
        for (path, config) in &per_file {
            merged =
                merged
                    .merge(config.clone())
                    .map_err(|source| ClusterError::ReadKubeconfig {
                        path: path.clone(),
                        source,
                    })?;
        }
        let files_text = files
            .iter()
            .map(|p| format!("`{}`", p.display()))
            .collect::<Vec<_>>()
            .join(", ");
        let context = match opts
            .context
            .clone()
            .or_else(|| merged.current_context.clone())
        {
            Some(c) if !c.is_empty() => c,
            _ => return Err(ClusterError::NoCurrentContext { files: files_text }),
        };
        let Some(file) = per_file
            .iter()
            .find(|(_, k)| k.contexts.iter().any(|c| c.name == context))
            .map(|(p, _)| p.clone())
        else {
            return Err(ClusterError::ContextNotFound {
                context,
                files: files_text,
            });
        };
        apply_overrides(&mut merged, &context, opts);
        let kube_opts = KubeConfigOptions {
            context: Some(context.clone()),
            cluster: opts.cluster.clone(),
            user: opts.user.clone(),
        };
        let config = kube::Config::from_custom_kubeconfig(merged, &kube_opts)
            .await
            .map_err(|source| ClusterError::InvalidContext {
                context: context.clone(),
                file,
                source,
            })?;
        Self::from_config(config, context, opts.request_timeout)
    }

    fn from_config(
        mut config: kube::Config,
        context: String,
        request_timeout: Option<Duration>,
    ) -> Result<Cluster, ClusterError> {
        if let Some(t) = request_timeout {
            config.read_timeout = Some(t);
            config.reset_reader_on_write = true;
            config.connect_timeout = Some(t);
            config.write_timeout = Some(t);
        }
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config).map_err(|source| ClusterError::Client {
            context: context.clone(),
            source,
        })?;
        Ok(Cluster {
            client,
            context,
            server,
            request_timeout,
            discovery: Arc::default(),
        })
    }

    /// The kubeconfig context in use (`in-cluster` inside a pod).
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The API server URL of that context, to show before changing anything.
    pub fn server_url(&self) -> &str {
        &self.server
    }

    /// Wraps a failed request with what we were doing.
    pub(crate) fn api_err(
        &self,
        action: impl Into<String>,
    ) -> impl FnOnce(kube::Error) -> ClusterError {
        let (action, context) = (action.into(), self.context.clone());
        move |source| ClusterError::Api {
            action,
            context,
            source,
        }
    }

    /// Resolves kind -> plural and scope; `None` when the server does not serve it (yet).
    ///
    /// A cached list that lacks the kind is fetched again, because CRDs applied a moment ago
    /// add kinds to a group we may have already listed.
    pub(crate) async fn resolve(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<(ApiResource, bool)>, ClusterError> {
        let find = |list: &[Served]| list.iter().find(|s| s.kind == kind).cloned();
        let cached = self
            .discovery
            .lock()
            .expect("discovery lock is never poisoned because no code panics while holding it")
            .get(api_version)
            .cloned();
        let served = if let Some(s) = cached.as_deref().and_then(|l| find(l)) {
            s
        } else {
            let fetched = if api_version == "v1" {
                self.client.list_core_api_resources("v1").await
            } else {
                self.client.list_api_group_resources(api_version).await
            };
            let list = match fetched {
                Ok(list) => list,
                Err(e) if is_status(&e, 404) => return Ok(None),
                Err(e) => return Err(self.api_err(format!("discover `{api_version}`"))(e)),
            };
            let served: Vec<Served> = list
                .resources
                .iter()
                .filter(|r| !r.name.contains('/'))
                .map(|r| Served {
                    kind: r.kind.clone(),
                    plural: r.name.clone(),
                    namespaced: r.namespaced,
                })
                .collect();
            let hit = find(&served);
            self.discovery
                .lock()
                .expect("discovery lock is never poisoned because no code panics while holding it")
                .insert(api_version.to_owned(), Arc::new(served));
            match hit {
                Some(s) => s,
                None => return Ok(None),
            }
        };
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
        Ok(Some((
            ApiResource::from_gvk_with_plural(&gvk, &served.plural),
            served.namespaced,
        )))
    }

    /// A dynamic API handle for `obj`, or `None` if the kind is not served.
    pub(crate) async fn dynamic_api(
        &self,
        obj: &ObjectRef,
    ) -> Result<Option<Api<DynamicObject>>, ClusterError> {
        let Some((resource, namespaced)) = self.resolve(&obj.api_version, &obj.kind).await? else {
            return Ok(None);
        };
        Ok(Some(if namespaced {
            let ns = obj.namespace.as_deref().unwrap_or("default");
            Api::namespaced_with(self.client.clone(), ns, &resource)
        } else {
            Api::all_with(self.client.clone(), &resource)
        }))
    }

    /// A dynamic API handle for a fixed, well-known resource (no discovery round trip).
    pub(crate) fn fixed_api(
        &self,
        fixed: &FixedResource,
        namespace: Option<&str>,
    ) -> Api<DynamicObject> {
        let gvk = kube::api::GroupVersionKind::gvk(fixed.group, fixed.version, fixed.kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, fixed.plural);
        match (&fixed.scope, namespace) {
            (Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(self.client.clone(), ns, &resource)
            }
            _ => Api::all_with(self.client.clone(), &resource),
        }
    }
}

/// A resource whose plural and scope are fixed by its API, so no discovery is needed.
pub(crate) struct FixedResource {
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) plural: &'static str,
    pub(crate) scope: Scope,
}

/// Flux's `GitRepository` (`source.toolkit.fluxcd.io/v1`).
pub(crate) const GIT_REPOSITORY: FixedResource = FixedResource {
    group: "source.toolkit.fluxcd.io",
    version: "v1",
    kind: "GitRepository",
    plural: "gitrepositories",
    scope: Scope::Namespaced,
};

/// Flux's Kustomization (`kustomize.toolkit.fluxcd.io/v1`).
pub(crate) const KUSTOMIZATION: FixedResource = FixedResource {
    group: "kustomize.toolkit.fluxcd.io",
    version: "v1",
    kind: "Kustomization",
    plural: "kustomizations",
    scope: Scope::Namespaced,
};

/// The contexts of the kubeconfig [`Cluster::connect`] reads, merged like kubectl merges them
/// (first definition of a name wins), for selecting a fleet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeContexts {
    /// Every context name, in merge order.
    pub names: Vec<String>,
    /// The cluster name each context points at.
    pub clusters: std::collections::BTreeMap<String, String>,
    /// The current context, if one is set.
    pub current: Option<String>,
}

/// The contexts of the kubeconfig files `opts` selects, from the same files and with the same
/// merge [`Cluster::connect`] uses, so a fleet lists exactly what it can connect to.
pub fn kubeconfig_contexts(opts: &KubeOptions) -> Result<KubeContexts, ClusterError> {
    let env = std::env::var_os("KUBECONFIG");
    let files = kubeconfig_files(opts, env.as_deref())?;
    if files.is_empty() {
        return Err(ClusterError::NoKubeconfig {
            looked_at: looked_at(env.as_deref()),
        });
    }
    let merged = merged_kubeconfig(&files)?;
    Ok(KubeContexts {
        names: merged.contexts.iter().map(|c| c.name.clone()).collect(),
        clusters: merged
            .contexts
            .iter()
            .filter_map(|c| Some((c.name.clone(), c.context.as_ref()?.cluster.clone())))
            .collect(),
        current: merged.current_context.filter(|c| !c.is_empty()),
    })
}

/// The namespace of the context `opts` chooses (`--context`, else the current one), from the
/// same merged kubeconfig [`Cluster::connect`] reads; `None` when it sets none. For flux's
/// `--ns-follows-kube-context`.
pub fn context_namespace(opts: &KubeOptions) -> Result<Option<String>, ClusterError> {
    let env = std::env::var_os("KUBECONFIG");
    let merged = merged_kubeconfig(&kubeconfig_files(opts, env.as_deref())?)?;
    let Some(name) = opts.context.clone().or(merged.current_context) else {
        return Ok(None);
    };
    Ok(merged
        .contexts
        .into_iter()
        .find(|c| c.name == name)
        .and_then(|c| c.context)
        .and_then(|c| c.namespace)
        .filter(|ns| !ns.is_empty()))
}

/// `files` read and merged in order, as kubectl merges them.
fn merged_kubeconfig(files: &[PathBuf]) -> Result<Kubeconfig, ClusterError> {
    let mut merged = Kubeconfig::default();
    for path in files {
        let config =
            Kubeconfig::read_from(path).map_err(|source| ClusterError::ReadKubeconfig {
                path: path.clone(),
                source,
            })?;
        merged = merged
            .merge(config)
            .map_err(|source| ClusterError::ReadKubeconfig {
                path: path.clone(),
                source,
            })?;
    }
    Ok(merged)
}

/// Applies the connection flags to the cluster and user `context` resolves to (after
/// `--cluster` and `--user`), creating them when the kubeconfig lacks them.
fn apply_overrides(merged: &mut Kubeconfig, context: &str, opts: &KubeOptions) {
    // Without flags the kubeconfig stays as it is, missing entries and their errors included.
    if opts.overrides.is_empty() {
        return;
    }
    let named = merged
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.clone())
        .unwrap_or_default();
    let cluster_name = opts.cluster.clone().unwrap_or(named.cluster);
    let user_name = opts.user.clone().or(named.user).unwrap_or_default();
    if !merged.clusters.iter().any(|c| c.name == cluster_name) {
        merged.clusters.push(kube::config::NamedCluster {
            name: cluster_name.clone(),
            cluster: None,
            other: std::collections::BTreeMap::default(),
        });
    }
    if !merged.auth_infos.iter().any(|a| a.name == user_name) {
        merged.auth_infos.push(kube::config::NamedAuthInfo {
            name: user_name.clone(),
            auth_info: None,
            other: std::collections::BTreeMap::default(),
        });
    }
    let cluster_index = merged
        .clusters
        .iter()
        .position(|c| c.name == cluster_name)
        .expect("the cluster entry was just ensured");
    let user_index = merged
        .auth_infos
        .iter()
        .position(|a| a.name == user_name)
        .expect("the user entry was just ensured");
    let cluster = merged.clusters[cluster_index]
        .cluster
        .get_or_insert_with(kube::config::Cluster::default);
    let user = merged.auth_infos[user_index]
        .auth_info
        .get_or_insert_with(kube::config::AuthInfo::default);
    opts.overrides.apply(cluster, user);
}

/// The files kubectl would read, in precedence order, skipping missing `KUBECONFIG` entries
/// (as client-go does); an explicit `--kubeconfig` must exist.
fn kubeconfig_files(opts: &KubeOptions, env: Option<&OsStr>) -> Result<Vec<PathBuf>, ClusterError> {
    if let Some(path) = &opts.kubeconfig {
        if !path.exists() {
            return Err(ClusterError::ReadKubeconfig {
                path: path.clone(),
                source: kube::config::KubeconfigError::ReadConfig(
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                    path.clone(),
                ),
            });
        }
        return Ok(vec![path.clone()]);
    }
    if let Some(value) = env {
        let paths: Vec<PathBuf> = std::env::split_paths(value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !paths.is_empty() {
            return Ok(paths.into_iter().filter(|p| p.exists()).collect());
        }
    }
    Ok(default_path().filter(|p| p.exists()).into_iter().collect())
}

fn default_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".kube").join("config"))
}

fn looked_at(env: Option<&OsStr>) -> String {
    if let Some(value) = env.filter(|v| !v.is_empty()) {
        return format!("`KUBECONFIG={}`", value.to_string_lossy());
    }
    default_path().map_or_else(
        || "`~/.kube/config`".to_owned(),
        |p| format!("`{}`", p.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n";
    const B: &str = "apiVersion: v1\nkind: Config\ncurrent-context: b\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:2'}\n- name: d\n  cluster: {server: 'https://127.0.0.1:3'}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: b\n  context: {cluster: d, user: u}\n";

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[tokio::test]
    async fn connection_flags_override_the_context_or_stand_alone() {
        let dir = tempfile::tempdir().unwrap();
        let b = write(dir.path(), "b", B);
        let overrides = KubeOverrides {
            server: Some("https://127.0.0.1:9".into()),
            ..KubeOverrides::default()
        };
        let opts = KubeOptions {
            kubeconfig: Some(b),
            overrides: overrides.clone(),
            ..KubeOptions::default()
        };
        let cluster = Cluster::connect_with(&opts, None).await.unwrap();
        assert_eq!(
            (cluster.context(), cluster.server_url()),
            ("b", "https://127.0.0.1:9/")
        );

        // kubectl --server without any kubeconfig.
        let opts = KubeOptions {
            overrides,
            ..KubeOptions::default()
        };
        let missing = dir.path().join("missing");
        let cluster = Cluster::connect_with(&opts, Some(missing.into_os_string()))
            .await
            .unwrap();
        assert_eq!(cluster.server_url(), "https://127.0.0.1:9/");

        // A user the kubeconfig lacks gets the flags' credentials.
        let mut merged = Kubeconfig::from_yaml(A).unwrap();
        let opts = KubeOptions {
            user: Some("new".into()),
            overrides: KubeOverrides {
                token: Some(fluxbootstrap_auth::SecretString::from("tok")),
                impersonate: Some("jane".into()),
                impersonate_groups: vec!["g".into()],
                impersonate_user_extra: vec![
                    ("scope".into(), "a".into()),
                    ("scope".into(), "b".into()),
                ],
                ..KubeOverrides::default()
            },
            ..KubeOptions::default()
        };
        apply_overrides(&mut merged, "a", &opts);
        let user = merged
            .auth_infos
            .iter()
            .find(|a| a.name == "new")
            .and_then(|a| a.auth_info.clone())
            .unwrap();
        assert_eq!(user.impersonate.as_deref(), Some("jane"));
        assert_eq!(user.impersonate_groups, Some(vec!["g".to_owned()]));
        assert_eq!(
            user.impersonate_user_extra.unwrap()["scope"],
            ["a".to_owned(), "b".to_owned()]
        );
        assert!(user.token.is_some());
    }

    #[tokio::test]
    async fn explicit_kubeconfig_and_context() {
        let dir = tempfile::tempdir().unwrap();
        let b = write(dir.path(), "b", B);
        let opts = KubeOptions {
            kubeconfig: Some(b.clone()),
            ..KubeOptions::default()
        };
        let cluster = Cluster::connect_with(&opts, None).await.unwrap();
        assert_eq!(cluster.context(), "b");
        assert_eq!(cluster.server_url(), "https://127.0.0.1:3/");

        let opts = KubeOptions {
            kubeconfig: Some(b.clone()),
            context: Some("a".into()),
            ..KubeOptions::default()
        };
        let err = Cluster::connect_with(&opts, None).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Context `a` not found in kubeconfig `{}`", b.display())
        );
        assert!(err.hint().unwrap().contains("--context"));

        let opts = KubeOptions {
            kubeconfig: Some(b),
            cluster: Some("c".into()),
            ..KubeOptions::default()
        };
        assert_eq!(
            Cluster::connect_with(&opts, None)
                .await
                .unwrap()
                .server_url(),
            "https://127.0.0.1:2/"
        );
    }

    #[tokio::test]
    async fn kubeconfig_env_merges_files_and_skips_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a", A);
        let b = write(dir.path(), "b", B);
        let env = std::env::join_paths([a.clone(), dir.path().join("missing"), b.clone()]).unwrap();
        let cluster = Cluster::connect_with(&KubeOptions::default(), Some(env.clone()))
            .await
            .unwrap();
        assert_eq!(
            cluster.context(),
            "a",
            "current-context comes from the first file"
        );
        assert_eq!(cluster.server_url(), "https://127.0.0.1:1/");
        let opts = KubeOptions {
            context: Some("b".into()),
            ..KubeOptions::default()
        };
        let cluster = Cluster::connect_with(&opts, Some(env.clone()))
            .await
            .unwrap();
        assert_eq!(
            cluster.server_url(),
            "https://127.0.0.1:3/",
            "context b found in the second file"
        );

        let opts = KubeOptions {
            context: Some("zz".into()),
            ..KubeOptions::default()
        };
        let err = Cluster::connect_with(&opts, Some(env)).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "Context `zz` not found in kubeconfig `{}`, `{}`",
                a.display(),
                b.display()
            )
        );

        let bad = write(dir.path(), "bad", "clusters: [");
        let err = Cluster::connect_with(&KubeOptions::default(), Some(bad.clone().into()))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Failed to read kubeconfig `{}`", bad.display())
        );
    }

    #[test]
    fn merge_order_first_file_wins() {
        // `Kubeconfig::merge` is kube's implementation of kubectl's rules; this pins the
        // behaviour we rely on: current-context and same-named clusters come from the first file.
        let a = Kubeconfig::from_yaml(A).unwrap();
        let b = Kubeconfig::from_yaml(B).unwrap();
        let merged = Kubeconfig::default().merge(a).unwrap().merge(b).unwrap();
        assert_eq!(merged.current_context.as_deref(), Some("a"));
        let c = merged.clusters.iter().find(|c| c.name == "c").unwrap();
        assert_eq!(
            c.cluster.as_ref().unwrap().server.as_deref(),
            Some("https://127.0.0.1:1")
        );
        assert_eq!(merged.contexts.len(), 2);
    }
}
