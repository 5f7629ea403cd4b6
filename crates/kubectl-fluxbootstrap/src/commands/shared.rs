//! Pieces several subcommands share: turning flags into library inputs, credentials,
//! bundle loading, the Secret for each mode, and the reporters that draw library progress.

use fluxbootstrap_auth::ExposeSecret as _;
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fluxbootstrap_auth::{EcdsaCurve, SecretBytes, SecretString, SshKeyPair};
use fluxbootstrap_azdo::{RepoUrl, RestAuth, RestClient};
use fluxbootstrap_cluster::{
    ApplyEntry, ApplyReporter, Change, Cluster, KubeOptions, WaitReporter, WaitTarget,
};
use fluxbootstrap_git::RemoteAuth;
use fluxbootstrap_manifests::{Bundle, InstallOptions, KustomizationPatches, SyncOptions};
use fluxbootstrap_release::ReleaseSource;

use crate::cli::{AzdoArgs, GlobalArgs, RegistryCreds, RenderArgs, RepoArgs};
use crate::duration::format_go_duration;
use crate::error::Hinted;
use crate::git_mode::GitMode;
use crate::printer::Printer;

/// The kubeconfig flags as the cluster crate takes them.
pub(crate) fn kube_options(global: &GlobalArgs) -> KubeOptions {
    KubeOptions {
        kubeconfig: global.kubeconfig.clone(),
        // Several contexts are refused before dispatch except for `azdo`, which has its fleet.
        context: global.context.first().cloned(),
        cluster: global.cluster.clone(),
        user: global.user.clone(),
        request_timeout: global.request_timeout.filter(|d| !d.is_zero()),
        overrides: connection_overrides(&global.connection),
    }
}

/// kubectl's connection flags as the cluster crate takes them.
fn connection_overrides(args: &crate::cli::ConnectionArgs) -> fluxbootstrap_cluster::KubeOverrides {
    fluxbootstrap_cluster::KubeOverrides {
        server: args.server.clone(),
        certificate_authority: args.certificate_authority.clone(),
        insecure_skip_tls_verify: args.insecure_skip_tls_verify,
        tls_server_name: args.tls_server_name.clone(),
        disable_compression: args.disable_compression,
        token: args.token.clone(),
        client_certificate: args.client_certificate.clone(),
        client_key: args.client_key.clone(),
        impersonate: args.as_user.clone(),
        impersonate_uid: args.as_uid.clone(),
        impersonate_groups: args.as_group.clone(),
        impersonate_user_extra: args.as_user_extra.clone(),
    }
}

/// `--url`, or `--org`/`--project`/`--repository`, as an Azure DevOps repository.
pub(crate) fn resolve_repo_url(args: &RepoArgs) -> Result<RepoUrl> {
    let parsed = match (&args.url, &args.org, &args.project, &args.repository) {
        (Some(url), ..) => RepoUrl::parse(url)?,
        (None, Some(org), Some(project), Some(repo)) => {
            RepoUrl::from_cloud_names(org, project, repo)?
        }
        _ => bail!(Hinted::new(
            "no repository was given",
            "pass `--url https://dev.azure.com/{org}/{project}/_git/{repo}`, or `--org`, `--project` and `--repository`"
        )),
    };
    // Decided on the parsed scheme: `HTTP://` and ` http://` are plain HTTP too.
    if parsed.insecure_http && !args.allow_insecure_http {
        bail!(Hinted::new(
            "the repository URL uses plain `http://`, which would send the PAT in clear text",
            "use `https://`, or pass `--allow-insecure-http` for an Azure DevOps Server without TLS"
        ));
    }
    Ok(parsed)
}

/// Whether the user gave an SSH URL (`ssh://…` or scp-like `git@host:path`).
pub(crate) fn is_ssh_input(args: &RepoArgs) -> bool {
    args.url.as_deref().is_some_and(is_ssh_url)
}

/// Whether `url` is an SSH URL (`ssh://…` or scp-like `git@host:path`).
pub(crate) fn is_ssh_url(url: &str) -> bool {
    let url = url.trim();
    match url.split_once("://") {
        Some((scheme, _)) => scheme.to_ascii_lowercase().contains("ssh"),
        None => url.contains(':'),
    }
}

/// Every component the install has: `--components` then `--components-extra`.
pub(crate) fn all_components(options: &InstallOptions) -> Vec<String> {
    options
        .components
        .iter()
        .chain(&options.components_extra)
        .cloned()
        .collect()
}

/// Where bootstrap writes in the repository.
#[derive(Debug, Clone)]
pub(crate) struct RepoPaths {
    /// The cleaned `--path` without leading `./` (empty for the repository root).
    base: String,
    namespace: String,
}

impl RepoPaths {
    /// Cleans `--path` like flux (`./x`, no trailing slash) and refuses paths that leave the repo.
    pub(crate) fn new(path: &str, namespace: &str) -> Result<Self, Hinted> {
        if path.chars().any(char::is_control) {
            return Err(Hinted::new(
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
                    return Err(Hinted::new(
                        format!("`--path {path}` points outside the repository"),
                        "pass a path inside the repository, e.g. `--path clusters/my-cluster`",
                    ));
                }
                other => parts.push(other),
            }
        }
        if path.starts_with('/') {
            return Err(Hinted::new(
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
    pub(crate) fn components_file(&self) -> String {
        self.file("gotk-components.yaml")
    }

    /// `<path>/<ns>/gotk-sync.yaml`.
    pub(crate) fn sync_file(&self) -> String {
        self.file("gotk-sync.yaml")
    }

    /// `<path>/<ns>`: the folder the three files live in.
    pub(crate) fn folder(&self) -> String {
        self.file("").trim_end_matches('/').to_owned()
    }

    /// `<path>/<ns>/kustomization.yaml`.
    pub(crate) fn kustomization_file(&self) -> String {
        self.file("kustomization.yaml")
    }

    /// The Kustomization's `spec.path`: `./<path>` or `./`.
    pub(crate) fn sync_path(&self) -> String {
        format!("./{}", self.base)
    }
}

/// The render flags as the manifests crate takes them; unknown components are refused here.
pub(crate) fn install_options(render: &RenderArgs, namespace: &str) -> Result<InstallOptions> {
    let options = InstallOptions {
        namespace: namespace.to_owned(),
        components: render.components.clone(),
        components_extra: render.components_extra.clone(),
        registry: render.registry.clone(),
        image_pull_secret: render.image_pull_secret.clone(),
        network_policy: render.network_policy,
        watch_all_namespaces: render.watch_all_namespaces,
        log_level: render.log_level.clone(),
        cluster_domain: render.cluster_domain.clone(),
        toleration_keys: render.toleration_keys.clone(),
        version: render.flux_version.clone(),
    };
    fluxbootstrap_manifests::validate_components(&options.components, &options.components_extra)?;
    Ok(options)
}

/// The bytes of `--ca-file`.
pub(crate) fn read_ca_file(path: Option<&Path>) -> Result<Option<Vec<u8>>> {
    path.map(|p| {
        fs_err::read(p)
            .map_err(anyhow::Error::from)
            .context("failed to read `--ca-file`")
    })
    .transpose()
}

/// The contents of `--private-key-file`, kept secret.
pub(crate) fn read_private_key(path: Option<&Path>) -> Result<Option<SecretString>> {
    let Some(path) = path else { return Ok(None) };
    let text = fs_err::read_to_string(path).context("failed to read `--private-key-file`")?;
    let text = SecretString::from(text);
    fluxbootstrap_auth::check_private_key_format(&text)
        .with_context(|| format!("`{}` is not a private key", path.display()))?;
    Ok(Some(text))
}

/// The one credential the user gave for the push. Exactly one kind, so a key's passphrase can
/// never be sent where a PAT goes (an HTTP header, the REST API).
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    /// A personal access token, sent as the HTTP Basic password.
    Pat(SecretString),
    /// An Entra ID (or other OAuth) access token, sent as `Authorization: Bearer`.
    Bearer(SecretString),
    /// An SSH private key and the passphrase it was decrypted with (flux stores that one in
    /// the Secret as `password`).
    SshKey {
        /// The decoded key.
        key: SshKeyPair,
        /// Its passphrase, if it has one.
        passphrase: Option<SecretString>,
    },
}

/// How the plugin itself pushes, and which credential it got from the user.
#[derive(Debug, Clone)]
pub(crate) struct PushAuth {
    /// The clone URL (HTTPS canonical, or SSH).
    pub(crate) url: String,
    /// The credential for libgit2.
    pub(crate) remote: RemoteAuth,
    /// What the user gave.
    pub(crate) credential: Credential,
}

impl PushAuth {
    /// The URL to show the user (never carries credentials).
    pub(crate) fn display_url(&self) -> &str {
        &self.url
    }

    /// Credentials for the REST API: a PAT or a token, never an SSH key's passphrase.
    pub(crate) fn rest_auth(&self) -> Option<RestAuth> {
        match &self.credential {
            Credential::Pat(pat) => Some(RestAuth::Basic(pat.clone())),
            Credential::Bearer(token) => Some(RestAuth::Bearer(token.clone())),
            Credential::SshKey { .. } => None,
        }
    }

    /// The PAT or token (HTTPS modes), for a token-auth Secret.
    pub(crate) fn token(&self) -> Option<&SecretString> {
        match &self.credential {
            Credential::Pat(token) | Credential::Bearer(token) => Some(token),
            Credential::SshKey { .. } => None,
        }
    }

    /// The SSH transport key (SSH mode).
    pub(crate) fn ssh_key(&self) -> Option<&SshKeyPair> {
        match &self.credential {
            Credential::SshKey { key, .. } => Some(key),
            Credential::Pat(_) | Credential::Bearer(_) => None,
        }
    }

    /// The SSH key's passphrase (SSH mode).
    pub(crate) fn passphrase(&self) -> Option<&SecretString> {
        match &self.credential {
            Credential::SshKey { passphrase, .. } => passphrase.as_ref(),
            Credential::Pat(_) | Credential::Bearer(_) => None,
        }
    }
}

/// What a bootstrap authenticates with, all taken before anything that writes is contacted.
pub(crate) struct Credentials {
    /// The contents of `--private-key-file`.
    pub(crate) private_key: Option<SecretString>,
    /// The push credential.
    pub(crate) push: PushAuth,
    /// The cluster's SSH host key decision (SSH modes), made once for the run.
    pub(crate) host_keys: Option<HostKeys>,
}

/// Reads the private key, resolves the push credential and decides the cluster's SSH host
/// key (a failed scan stops the run here, before any commit).
pub(crate) async fn credentials(
    args: &AzdoArgs,
    mode: &GitMode,
    repo: &RepoUrl,
    printer: Printer,
) -> Result<Credentials> {
    let private_key = read_private_key(args.private_key_file.as_deref())?;
    let push = push_credentials(
        &args.repo,
        mode,
        private_key.as_ref(),
        args.render.known_hosts_file.as_deref(),
        repo,
        printer,
    )
    .await?;
    let host_keys = cluster_host_keys(mode, repo, &args.render, printer).await?;
    Ok(Credentials {
        private_key,
        push,
        host_keys,
    })
}

/// Resolves the user's credential for the push in flux's order (flag, `GIT_PASSWORD`, pipe,
/// prompt) or, for `--provider azure` without a PAT, from the Azure CLI.
pub(crate) async fn push_credentials(
    args: &RepoArgs,
    mode: &GitMode,
    private_key: Option<&SecretString>,
    known_hosts_file: Option<&Path>,
    repo: &RepoUrl,
    printer: Printer,
) -> Result<PushAuth> {
    let flag = args.password.clone();
    let env = std::env::var(fluxbootstrap_auth::SECRET_ENV)
        .ok()
        .map(SecretString::from);
    match mode {
        GitMode::Ssh => {
            let Some(key_text) = private_key else {
                bail!(Hinted::new(
                    "an SSH repository URL needs `--private-key-file`",
                    "pass the private key whose public key is registered in Azure DevOps (User settings > SSH public keys), or use the HTTPS URL with a PAT"
                ));
            };
            let passphrase = flag.or(env).filter(|p| !p.expose_secret().is_empty());
            let key = fluxbootstrap_auth::load_private_key(key_text, passphrase.as_ref())?;
            key.ensure_accepted_by(&repo.ssh_host())?;
            let known_hosts = known_hosts_for(&repo.ssh_host(), known_hosts_file, printer)
                .await?
                .known_hosts;
            Ok(PushAuth {
                url: repo.ssh_url(),
                remote: RemoteAuth::Ssh {
                    username: "git".to_owned(),
                    private_key: key.private_openssh.clone(),
                    passphrase: None,
                    known_hosts,
                },
                credential: Credential::SshKey { key, passphrase },
            })
        }
        GitMode::AzureProvider { .. } if flag.is_none() && env.is_none() => {
            printer.action("getting an Entra ID token from the Azure CLI for the push");
            let token = fluxbootstrap_auth::azure_cli_token(None).await?;
            Ok(PushAuth {
                url: repo.https_url(),
                remote: RemoteAuth::Bearer {
                    token: token.token.clone(),
                },
                credential: Credential::Bearer(token.token),
            })
        }
        GitMode::Token { .. }
        | GitMode::TokenPushSshSync { .. }
        | GitMode::AzureProvider { .. } => {
            let bearer = matches!(mode, GitMode::Token { bearer: true });
            let stdin_is_terminal = std::io::stdin().is_terminal();
            // On a blocking thread, so Ctrl-C still ends the command during the prompt.
            let (pat, source) = tokio::task::spawn_blocking(move || {
                // Not `stdin().lock()`: the masked prompt reads stdin itself, and std's stdin
                // lock is not reentrant, so holding it here would deadlock the prompt.
                let mut stdin = std::io::stdin();
                fluxbootstrap_auth::resolve_pat(
                    flag,
                    env,
                    &mut stdin as &mut dyn Read,
                    stdin_is_terminal,
                    &|prompt| fluxbootstrap_auth::prompt_masked(prompt),
                )
            })
            .await
            .context("the PAT prompt task failed")??;
            if let Some(warning) = source.warning() {
                printer.warning(warning);
            }
            let remote = if bearer {
                RemoteAuth::Bearer { token: pat.clone() }
            } else {
                RemoteAuth::Basic {
                    username: args.username.clone(),
                    password: pat.clone(),
                }
            };
            Ok(PushAuth {
                url: repo.https_url(),
                remote,
                credential: if bearer {
                    Credential::Bearer(pat)
                } else {
                    Credential::Pat(pat)
                },
            })
        }
    }
}

/// The SSH host key decision of a run: the `known_hosts` text for the Secret and the push,
/// and whether the host offers an RSA key (then the controllers get the rsa-sha2 host key
/// algorithms patch; a host with no RSA key does not).
#[derive(Debug, Clone)]
pub(crate) struct HostKeys {
    /// One `host type base64` line per key.
    pub(crate) known_hosts: String,
    /// Whether one of them is `ssh-rsa`.
    pub(crate) rsa: bool,
}

/// The host key decisions made so far in this run, by `host[:port]`: a host is scanned and
/// its fingerprint shown once, however many clusters or steps need it.
static DECIDED: tokio::sync::Mutex<BTreeMap<String, HostKeys>> =
    tokio::sync::Mutex::const_new(BTreeMap::new());

/// The host keys of `ssh_host` (`host[:port]`), decided once per run: the host's entries in
/// `--known-hosts-file` when given, else the pinned key for Azure DevOps, else a scan (trust
/// on first use, like flux) with the fingerprint shown so the user can compare.
pub(crate) async fn known_hosts_for(
    ssh_host: &str,
    known_hosts_file: Option<&Path>,
    printer: Printer,
) -> Result<HostKeys> {
    let mut decided = DECIDED.lock().await;
    if let Some(keys) = decided.get(ssh_host) {
        return Ok(keys.clone());
    }
    let (host, port) = split_host_port(ssh_host)?;
    let lines = if let Some(file) = known_hosts_file {
        let text = fs_err::read_to_string(file).context("failed to read `--known-hosts-file`")?;
        let lines =
            fluxbootstrap_auth::known_hosts_entries(&text, &host, port).with_context(|| {
                format!(
                    "`--known-hosts-file {}` is not a known_hosts file",
                    file.display()
                )
            })?;
        if lines.is_empty() {
            bail!(Hinted::new(
                format!(
                    "`--known-hosts-file {}` has no key for `{}`",
                    file.display(),
                    fluxbootstrap_auth::known_hosts_host(&host, port)
                ),
                format!(
                    "add the host's key (`ssh-keyscan -p {port} {host}`, then compare its fingerprint with the one the server's administrator publishes); hashed host names are not read"
                ),
            ));
        }
        lines
    } else if let Some(pinned) = fluxbootstrap_auth::pinned_known_hosts(&host) {
        vec![pinned]
    } else {
        let scan_host = host.clone();
        let scanned = tokio::task::spawn_blocking(move || {
            fluxbootstrap_auth::scan_host_key(&scan_host, port, Duration::from_secs(30))
        })
        .await
        .context("the host key scan task failed")??;
        printer.warning(format_args!(
            "trusting the {} host key of \"{ssh_host}\" on first use: {}",
            scanned.key_type, scanned.fingerprint
        ));
        vec![scanned.known_hosts]
    };
    let keys = HostKeys {
        rsa: lines
            .iter()
            .any(|l| l.split_whitespace().nth(1) == Some("ssh-rsa")),
        known_hosts: lines.join("\n"),
    };
    decided.insert(ssh_host.to_owned(), keys.clone());
    Ok(keys)
}

/// The host key decision for the SSH host the cluster connects to, in the SSH modes.
pub(crate) async fn cluster_host_keys(
    mode: &GitMode,
    repo: &RepoUrl,
    render: &RenderArgs,
    printer: Printer,
) -> Result<Option<HostKeys>> {
    match mode.cluster_ssh_host(repo) {
        Some(host) => Ok(Some(
            known_hosts_for(&host, render.known_hosts_file.as_deref(), printer).await?,
        )),
        None => Ok(None),
    }
}

fn split_host_port(host_port: &str) -> Result<(String, u16)> {
    match host_port.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
            let port = port.parse().map_err(|_| {
                Hinted::new(
                    format!("invalid SSH port in `{host_port}`"),
                    "pass `HOST` or `HOST:PORT`",
                )
            })?;
            Ok((
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port,
            ))
        }
        _ => Ok((host_port.to_owned(), 22)),
    }
}

/// `--create-repository`: makes sure the repository exists, creating it through REST; `false`
/// when it does not and this is a dry run (it would be created).
async fn ensure_repository(
    repo: &RepoUrl,
    push: &PushAuth,
    ca_pem: Option<&Vec<u8>>,
    dry_run: bool,
    printer: Printer,
) -> Result<bool> {
    let Some(auth) = push.rest_auth() else {
        bail!(Hinted::new(
            "`--create-repository` needs a PAT or an Entra token",
            "use the HTTPS URL with `GIT_PASSWORD` set to a PAT with Code (Read, write & manage)"
        ));
    };
    let client = RestClient::new(repo, auth, ca_pem.cloned())?.on_retry(Arc::new(
        move |error: &str, attempt: u32, of: u32, delay: Duration| {
            retry_warning(printer, error, attempt, of, delay);
        },
    ));
    if client.get_repository().await?.is_some() {
        printer.success(format_args!("repository \"{}\" exists", repo.repo));
        return Ok(true);
    }
    if dry_run {
        printer.success(format_args!(
            "repository \"{}\" would be created",
            repo.repo
        ));
        return Ok(false);
    }
    printer.action(format_args!(
        "creating repository \"{}\" in project \"{}\"",
        repo.repo, repo.project
    ));
    match client.create_repository().await {
        Ok(_) => printer.success("created repository"),
        // Created between our check and our request: by another client, or by an attempt of
        // ours whose answer was lost before the retry. Either way it is there to use.
        Err(fluxbootstrap_azdo::AzdoError::RepositoryExists { .. }) => {
            printer.success(format_args!("repository \"{}\" exists", repo.repo));
        }
        Err(err) => return Err(err.into()),
    }
    Ok(true)
}

/// The Flux release bundle, downloaded (verified, cached) or read from `--manifests`.
pub(crate) struct BundleFiles {
    /// The resolved Flux version (`latest` resolved).
    pub(crate) version: String,
    bundle: Bundle,
}

impl BundleFiles {
    /// Loads the bundle `render` asks for.
    pub(crate) async fn load(
        render: &RenderArgs,
        timeout: Duration,
        printer: Printer,
    ) -> Result<Self> {
        if let Some(path) = &render.manifests {
            let bundle = fluxbootstrap_release::load_local(path)?;
            return Ok(Self {
                version: render.flux_version.clone(),
                bundle,
            });
        }
        let cache_dir = directories::ProjectDirs::from("", "", "kubectl-fluxbootstrap")
            .map(|dirs| dirs.cache_dir().join("flux-releases"))
            .context("no cache directory could be determined for this user")?;
        let source = ReleaseSource::new(render.releases_url.clone(), cache_dir);
        printer.detail(format_args!(
            "fetching Flux {} manifests",
            render.flux_version
        ));
        let (version, bundle) = tokio::time::timeout(
            timeout,
            fluxbootstrap_release::fetch_bundle(&source, &render.flux_version),
        )
        .await
        .map_err(|_| {
            Hinted::new(
                "downloading the Flux manifests timed out",
                "check the network, or pass `--manifests PATH` to use a local bundle",
            )
        })??;
        Ok(Self { version, bundle })
    }

    /// `gotk-components.yaml` for `options` (version forced to the resolved one).
    pub(crate) fn render(&self, options: &InstallOptions) -> Result<String> {
        let mut options = options.clone();
        options.version.clone_from(&self.version);
        Ok(fluxbootstrap_manifests::render_components(
            &self.bundle,
            &options,
        )?)
    }
}

/// The kustomization patches the mode needs (none for plain token auth).
///
/// `host_keys` is the SSH host's key decision ([`known_hosts_for`]) in the SSH modes: an RSA
/// host key gets the rsa-sha2 algorithms patch, any other key type none.
pub(crate) fn kustomization_patches(
    render: &RenderArgs,
    mode: &GitMode,
    host_keys: Option<&HostKeys>,
) -> Option<KustomizationPatches> {
    let mut algos = render.ssh_hostkey_algos.clone();
    if algos.is_empty() && mode.cluster_uses_ssh() && host_keys.is_some_and(|k| k.rsa) {
        // Azure DevOps offers only rsa-sha2 host keys; the controllers must ask for them.
        algos = vec!["rsa-sha2-512".to_owned(), "rsa-sha2-256".to_owned()];
    }
    let azure = mode
        .azure_client_id()
        .map(|client_id| fluxbootstrap_manifests::AzureIdentity {
            client_id: client_id.to_owned(),
            tenant_id: render.azure_tenant_id.clone(),
        });
    if algos.is_empty() && azure.is_none() {
        return None;
    }
    Some(KustomizationPatches {
        ssh_hostkey_algos: algos,
        azure_workload_identity: azure,
    })
}

/// The objects of `components_yaml` with `patches` applied, as kustomize would.
pub(crate) fn objects_with_patches(
    components_yaml: &str,
    patches: Option<&KustomizationPatches>,
) -> Result<Vec<serde_json::Value>> {
    let mut objects = fluxbootstrap_manifests::split_objects(components_yaml)
        .context("failed to read the rendered components")?;
    if let Some(patches) = patches {
        fluxbootstrap_manifests::patch_objects(&mut objects, patches);
    }
    Ok(objects)
}

/// The objects the Kustomization will own, as flux applies them: `kustomize build` of the
/// `<path>/<ns>` folder when its `kustomization.yaml` is the user's (patches the Flux docs use
/// for proxies, tolerations, controller flags), else our rendering with our patches.
///
/// `folder` is the checkout's copy of that folder; our `gotk-components.yaml` and
/// `gotk-sync.yaml` are written over it in a temporary copy, so a dry run builds what would be
/// committed. The build runs the user's `kubectl kustomize`.
pub(crate) fn flux_system_objects(
    components_yaml: &str,
    sync_yaml: &str,
    patches: Option<&KustomizationPatches>,
    existing_kustomization: Option<&[u8]>,
    folder: &Path,
) -> Result<Vec<serde_json::Value>> {
    let ours = fluxbootstrap_manifests::render_kustomization(&patches.cloned().unwrap_or_default());
    let users = existing_kustomization.filter(|existing| *existing != ours.as_bytes());
    let Some(users) = users else {
        let mut objects = objects_with_patches(components_yaml, patches)?;
        objects.extend(
            fluxbootstrap_manifests::split_objects(sync_yaml)
                .context("failed to read the generated sync manifests")?,
        );
        return Ok(objects);
    };
    let kubectl = which::which("kubectl").map_err(|_| {
        Hinted::new(
            "the existing `kustomization.yaml` is not the generated one, and building it needs              `kubectl`, which is not on PATH",
            "install kubectl (its `kubectl kustomize` builds the folder exactly as Flux will)",
        )
    })?;
    let build = tempfile::Builder::new()
        .prefix("fluxbootstrap-kustomize-")
        .tempdir()
        .context("failed to create a temporary directory")?;
    copy_folder(folder, build.path())?;
    for (name, contents) in [
        ("gotk-components.yaml", components_yaml.as_bytes()),
        ("gotk-sync.yaml", sync_yaml.as_bytes()),
        ("kustomization.yaml", users),
    ] {
        fs_err::write(build.path().join(name), contents)
            .context("failed to write the folder to build")?;
    }
    let out = std::process::Command::new(&kubectl)
        .env_remove(fluxbootstrap_auth::SECRET_ENV)
        .arg("kustomize")
        .arg(build.path())
        .output()
        .with_context(|| format!("failed to run `{}`", kubectl.display()))?;
    if !out.status.success() {
        return Err(Hinted::new(
            format!(
                "`kubectl kustomize` of the existing `kustomization.yaml` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "fix the kustomization in the repository; Flux would fail to build it the same way",
        )
        .into());
    }
    let text = String::from_utf8(out.stdout).context("`kubectl kustomize` printed non-UTF-8")?;
    fluxbootstrap_manifests::split_objects(&text)
        .context("failed to read the output of `kubectl kustomize`")
}

/// Copies the files of `from` (a directory of the checkout, possibly missing) into `to`.
fn copy_folder(from: &Path, to: &Path) -> Result<()> {
    let Ok(entries) = fs_err::read_dir(from) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.context("failed to read the flux-system folder")?;
        let target = to.join(entry.file_name());
        if entry
            .file_type()
            .context("failed to read the flux-system folder")?
            .is_dir()
        {
            fs_err::create_dir_all(&target).context("failed to copy the flux-system folder")?;
            copy_folder(&entry.path(), &target)?;
        } else {
            fs_err::copy(entry.path(), &target).context("failed to copy the flux-system folder")?;
        }
    }
    Ok(())
}

/// `gotk-sync.yaml` for the mode.
pub(crate) fn render_sync(
    render: &RenderArgs,
    namespace: &str,
    paths: &RepoPaths,
    repo: &RepoUrl,
    mode: &GitMode,
) -> Result<String> {
    let url = match mode {
        // `https_url` keeps `http://` for an Azure DevOps Server without TLS, which the
        // parser only accepts with `--allow-insecure-http`.
        GitMode::Token { .. } | GitMode::AzureProvider { .. } => repo.https_url(),
        GitMode::TokenPushSshSync { ssh_host } => repo.clone().with_ssh_host(ssh_host)?.ssh_url(),
        GitMode::Ssh => repo.ssh_url(),
    };
    let options = SyncOptions {
        name: namespace.to_owned(),
        namespace: namespace.to_owned(),
        url,
        branch: render.branch.clone(),
        target_path: paths.sync_path(),
        interval: format_go_duration(render.interval),
        secret_name: (!matches!(mode, GitMode::AzureProvider { .. }))
            .then(|| render.secret_name.clone()),
        recurse_submodules: render.recurse_submodules,
        sparse_checkout: sparse_checkout(render, paths)?,
        provider: matches!(mode, GitMode::AzureProvider { .. }).then(|| "azure".to_owned()),
    };
    Ok(fluxbootstrap_manifests::render_sync(&options))
}

/// flux's `.dockerconfigjson` for `--registry-creds`: `{"auths":{<registry>:{"username",
/// "password","auth"}}}` as Go's `json.Marshal` prints it (field order, `omitempty`, HTML
/// characters escaped), so the Secret is byte-identical to flux's.
pub(crate) fn docker_config_json(registry: &str, creds: &RegistryCreds) -> SecretBytes {
    use base64::Engine as _;
    let go_string = |text: &str| {
        serde_json::to_string(text)
            .expect("a string serializes")
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029")
    };
    let password = creds.password.expose_secret();
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", creds.username));
    let mut entry = Vec::new();
    if !creds.username.is_empty() {
        entry.push(format!("\"username\":{}", go_string(&creds.username)));
    }
    if !password.is_empty() {
        entry.push(format!("\"password\":{}", go_string(password)));
    }
    entry.push(format!("\"auth\":{}", go_string(&auth)));
    SecretBytes::from(
        format!(
            "{{\"auths\":{{{}:{{{}}}}}}}",
            go_string(registry),
            entry.join(",")
        )
        .into_bytes(),
    )
}

/// The `--image-pull-secret` Secret `--registry-creds` asks for, as (name, data); `None`
/// without credentials. Refused without `--image-pull-secret`, before anything changes.
pub(crate) fn image_pull_secret(
    args: &AzdoArgs,
) -> Result<Option<(String, BTreeMap<String, SecretBytes>)>> {
    let Some(creds) = &args.registry_creds else {
        return Ok(None);
    };
    let Some(name) = &args.render.image_pull_secret else {
        bail!(Hinted::new(
            "`--registry-creds` needs `--image-pull-secret`",
            "name the Secret the controllers pull with, e.g. `--image-pull-secret flux-registry`",
        ));
    };
    let data = BTreeMap::from([(
        ".dockerconfigjson".to_owned(),
        docker_config_json(&args.render.registry, creds),
    )]);
    Ok(Some((name.clone(), data)))
}

/// Creates or updates the image pull Secret like flux's `reconcileImagePullSecret` (a dry
/// run only compares).
pub(crate) async fn reconcile_image_pull_secret(
    cluster: &Cluster,
    namespace: &str,
    (name, data): &(String, BTreeMap<String, SecretBytes>),
    dry_run: bool,
) -> Result<Change> {
    if dry_run {
        return Ok(match cluster.get_secret(namespace, name).await? {
            Some(live) if fluxbootstrap_auth::same_secret_data(&live, data) => Change::Unchanged,
            Some(_) => Change::Configured,
            None => Change::Created,
        });
    }
    cluster
        .reconcile_typed_secret(
            namespace,
            name,
            Some(fluxbootstrap_cluster::DOCKER_CONFIG_JSON),
            data.clone(),
            false,
        )
        .await
        .context("failed to reconcile the image pull secret")
}

/// `--sparse-checkout` as given (flux writes the list unchanged), refused when `--path` is not
/// one of its directories: Flux could not build a path it did not check out.
fn sparse_checkout(render: &RenderArgs, paths: &RepoPaths) -> Result<Vec<String>, Hinted> {
    let dirs: Vec<String> = render
        .sparse_checkout
        .iter()
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty())
        .collect();
    if dirs.is_empty() {
        return Ok(dirs);
    }
    let clean = |p: &str| p.trim_start_matches("./").trim_end_matches('/').to_owned();
    let path = clean(&paths.sync_path());
    if !dirs.iter().any(|d| clean(d) == path) {
        return Err(Hinted::new(
            format!(
                "`--path {}` is not one of the `--sparse-checkout` directories ({})",
                render.path,
                dirs.join(", ")
            ),
            format!("add it, e.g. `--sparse-checkout {},{path}`", dirs.join(",")),
        ));
    }
    Ok(dirs)
}

/// The source Secret a bootstrap writes: its data, and the authorization id of the cluster PAT
/// minted for it (`--cluster-pat mint`), which goes into [`MINTED_PAT_ANNOTATION`].
pub(crate) struct SourceSecret {
    pub(crate) data: BTreeMap<String, SecretBytes>,
    pub(crate) minted_pat: Option<String>,
}

/// The annotation on the source Secret that holds a minted cluster PAT's authorization id
/// (what revokes it; never the token).
pub(crate) const MINTED_PAT_ANNOTATION: &str = "fluxbootstrap.io/cluster-pat-authorization-id";

/// What writing the source Secret did, or in a dry run would do.
pub(crate) enum SecretWrite {
    /// Dry run: `created`, `left unchanged` or `updated`.
    WouldBe(&'static str),
    /// Written.
    Done(Change),
}

/// Writes `secret` as Secret `namespace/name` (in a dry run, says what would happen): the
/// one path azdo and fleet write it through.
pub(crate) async fn write_source_secret(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    secret: &SourceSecret,
    dry_run: bool,
) -> Result<SecretWrite> {
    if dry_run {
        // A dry-run apply would fail in a namespace this run has not created; compare instead.
        return Ok(SecretWrite::WouldBe(
            match cluster.get_secret(namespace, name).await? {
                None => "created",
                Some(live) if fluxbootstrap_auth::same_secret_data(&live, &secret.data) => {
                    "left unchanged"
                }
                Some(_) => "updated",
            },
        ));
    }
    let change = cluster
        .reconcile_secret(namespace, name, secret.data.clone(), false)
        .await
        .context("failed to reconcile the source secret")?;
    if let Some(id) = &secret.minted_pat {
        cluster
            .annotate_secret(namespace, name, MINTED_PAT_ANNOTATION, Some(id))
            .await?;
    }
    Ok(SecretWrite::Done(change))
}

/// `--cluster-pat mint`: a read-only PAT (scope Code (Read)) minted for this cluster with the
/// user's Entra ID token from the Azure CLI, or `None` when the Secret already holds one
/// minted before (kept, like an SSH key: a rerun must not mint a PAT each time).
async fn minted_cluster_secret(
    args: &AzdoArgs,
    repo: &RepoUrl,
    cluster: &Cluster,
    namespace: &str,
    ca_pem: Option<&Vec<u8>>,
    printer: Printer,
) -> Result<Option<SourceSecret>> {
    let name = &args.render.secret_name;
    if let Some(id) = cluster
        .secret_annotation(namespace, name, MINTED_PAT_ANNOTATION)
        .await?
    {
        printer.success(format_args!(
            "source secret \"{namespace}/{name}\" holds the cluster PAT minted before (authorization id {id}); kept"
        ));
        return Ok(None);
    }
    let display_name = cluster_pat_name(repo, cluster, namespace);
    if args.dry_run {
        printer.success(format_args!(
            "a read-only PAT \"{display_name}\" would be minted for the cluster"
        ));
        return Ok(None);
    }
    let client = pat_client(repo, ca_pem, printer).await?;
    let minted = mint_cluster_pat(&client, &display_name, args.cluster_pat_days, printer).await?;
    Ok(Some(SourceSecret {
        data: crate::commands::azdo::token_secret(
            &args.repo.username,
            &minted.token,
            false,
            ca_pem,
        ),
        minted_pat: Some(minted.authorization_id),
    }))
}

/// The client of `repo`'s PAT lifecycle API, with the user's Entra ID token from the Azure CLI.
pub(crate) async fn pat_client(
    repo: &RepoUrl,
    ca_pem: Option<&Vec<u8>>,
    printer: Printer,
) -> Result<RestClient> {
    printer.action("getting an Entra ID token from the Azure CLI for the PAT lifecycle API");
    let entra = fluxbootstrap_auth::azure_cli_token(None).await?;
    Ok(
        RestClient::for_pats(repo, entra.token, ca_pem.cloned())?.on_retry(Arc::new(
            move |error: &str, attempt: u32, of: u32, delay: Duration| {
                retry_warning(printer, error, attempt, of, delay);
            },
        )),
    )
}

/// Mints a read-only PAT (scope `vso.code`) named `display_name` for `days` days with
/// `client`, saying when the organization shortened its lifetime.
pub(crate) async fn mint_cluster_pat(
    client: &RestClient,
    display_name: &str,
    days: u32,
    printer: Printer,
) -> Result<fluxbootstrap_azdo::MintedPat> {
    let asked = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24 * i64::from(days)))
        .context("the cluster PAT's expiry is out of range")?;
    let asked_text = asked.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let minted = client
        .create_pat(display_name, "vso.code", &asked_text)
        .await?;
    let shortened = minted
        .valid_to
        .parse::<jiff::Timestamp>()
        .is_ok_and(|got| got + jiff::SignedDuration::from_hours(1) < asked);
    if shortened {
        printer.warning(format_args!(
            "the organization's maximum PAT lifetime shortened the cluster PAT to {}",
            minted.valid_to
        ));
    }
    printer.success(format_args!(
        "minted read-only PAT \"{display_name}\" for the cluster, valid until {}",
        minted.valid_to
    ));
    Ok(minted)
}

/// The name a minted cluster PAT gets: who holds it.
pub(crate) fn cluster_pat_name(repo: &RepoUrl, cluster: &Cluster, namespace: &str) -> String {
    format!("flux {}/{namespace} {}", cluster.context(), repo.repo)
}

/// The Secret for the mode, or `None` when it is to be kept as it is (or there is none).
#[expect(
    clippy::too_many_arguments,
    reason = "every input of flux's ReconcileSourceSecret"
)]
pub(crate) async fn secret_for_mode(
    mode: &GitMode,
    repo_args: &RepoArgs,
    push: &PushAuth,
    private_key: Option<&SecretString>,
    ca_pem: Option<&Vec<u8>>,
    args: &AzdoArgs,
    repo: &RepoUrl,
    cluster: &Cluster,
    namespace: &str,
    printer: Printer,
) -> Result<Option<SourceSecret>> {
    let secret_name = &args.render.secret_name;
    match mode {
        GitMode::AzureProvider { .. } => Ok(None),
        GitMode::Token { .. } if args.cluster_pat == crate::cli::ClusterPat::Mint => {
            minted_cluster_secret(args, repo, cluster, namespace, ca_pem, printer).await
        }
        GitMode::Token { bearer } => {
            let token = push.token().context("token auth without a token")?;
            Ok(Some(SourceSecret {
                data: crate::commands::azdo::token_secret(
                    &repo_args.username,
                    token,
                    *bearer,
                    ca_pem,
                ),
                minted_pat: None,
            }))
        }
        GitMode::Ssh | GitMode::TokenPushSshSync { .. } => {
            printer.action(format_args!(
                "determining if source secret \"{namespace}/{secret_name}\" exists"
            ));
            let existing = cluster.get_secret(namespace, secret_name).await?;
            let ssh_host = mode
                .cluster_ssh_host(repo)
                .expect("an SSH mode has a cluster SSH host");
            // Like flux: without new key material an existing SSH Secret is kept, so re-runs
            // do not replace a key the user already registered.
            if private_key.is_none()
                && existing
                    .as_ref()
                    .is_some_and(|d| d.contains_key("identity"))
            {
                return Ok(None);
            }
            let key = match (push.ssh_key(), private_key) {
                (Some(key), _) => key.clone(),
                (None, Some(text)) => fluxbootstrap_auth::load_private_key(text, None)?,
                (None, None) => {
                    printer.action("generating source secret");
                    generate_key(args)?
                }
            };
            key.ensure_accepted_by(&ssh_host)?;
            let known_hosts =
                known_hosts_for(&ssh_host, args.render.known_hosts_file.as_deref(), printer)
                    .await?
                    .known_hosts;
            crate::commands::azdo::prompt_public_key(
                &key.public_openssh,
                &format!("https://dev.azure.com/{}/_usersSettings/keys", repo.org),
                args.silent || args.yes || args.dry_run,
                printer,
            )
            .await?;
            let mut data = BTreeMap::new();
            let identity = match private_key {
                Some(text) => fluxbootstrap_auth::secret_bytes(text),
                None => fluxbootstrap_auth::secret_bytes(&key.private_pkcs8_pem),
            };
            data.insert("identity".to_owned(), identity);
            data.insert(
                "identity.pub".to_owned(),
                SecretBytes::from(format!("{}\n", key.public_openssh).into_bytes()),
            );
            data.insert(
                "known_hosts".to_owned(),
                SecretBytes::from(known_hosts.trim().as_bytes().to_vec()),
            );
            if let Some(passphrase) = push.passphrase() {
                data.insert(
                    "password".to_owned(),
                    fluxbootstrap_auth::secret_bytes(passphrase),
                );
            }
            Ok(Some(SourceSecret {
                data,
                minted_pat: None,
            }))
        }
    }
}

fn generate_key(args: &AzdoArgs) -> Result<SshKeyPair> {
    let key = match args.ssh_key_algorithm.as_str() {
        "rsa" => fluxbootstrap_auth::generate_rsa(args.ssh_rsa_bits)?,
        "ecdsa" => fluxbootstrap_auth::generate_ecdsa(match args.ssh_ecdsa_curve.as_str() {
            "p256" => EcdsaCurve::P256,
            "p521" => EcdsaCurve::P521,
            _ => EcdsaCurve::P384,
        })?,
        _ => fluxbootstrap_auth::generate_ed25519()?,
    };
    Ok(key)
}

/// Clones `--branch` of the repository into a private temporary directory, with the push
/// credentials; prints flux's clone line first.
/// The checkout the bootstrap commits to: with `--create-repository`, the repository is made
/// first (in a dry run that would create it, the checkout is empty and nothing is fetched).
pub(crate) async fn clone_repository(
    args: &AzdoArgs,
    repo: &RepoUrl,
    push_auth: &PushAuth,
    ca_pem: Option<&Vec<u8>>,
    printer: Printer,
) -> Result<fluxbootstrap_git::Checkout> {
    let exists = !args.create_repository
        || ensure_repository(repo, push_auth, ca_pem, args.dry_run, printer).await?;
    printer.action(format_args!(
        "cloning branch \"{}\" from Git repository \"{}\"",
        args.render.branch,
        push_auth.display_url()
    ));
    let remote = fluxbootstrap_git::RemoteOptions {
        url: push_auth.url.clone(),
        auth: push_auth.remote.clone(),
        ca_file: args.repo.ca_file.clone(),
        timeout: Duration::from_secs(30),
    };
    let signer = commit_signer(args, push_auth)?;
    let branch = args.render.branch.clone();
    let create_branch = args.create_branch;
    let _spinner = printer.progress("cloning");
    let mut checkout = tokio::task::spawn_blocking(move || {
        if exists {
            fluxbootstrap_git::Checkout::clone(
                &remote,
                &branch,
                create_branch,
                &GitPrinter(printer),
            )
        } else {
            fluxbootstrap_git::Checkout::empty(&remote, &branch)
        }
    })
    .await
    .context("the clone task failed")??;
    if let Some(signer) = signer {
        checkout.sign_commits_with(signer);
    }
    Ok(checkout)
}

/// Signs commits with an SSH key, as `git -c gpg.format=ssh commit -S` and flux's
/// `--ssh-signing-*` flags do.
struct SshCommitSigner(SshKeyPair);

impl fluxbootstrap_git::CommitSigner for SshCommitSigner {
    fn sign(&self, raw_commit: &[u8]) -> Result<String, String> {
        fluxbootstrap_auth::sign_sshsig(&self.0, fluxbootstrap_auth::GIT_NAMESPACE, raw_commit)
            .map_err(|e| format!("{e} ({})", self.0.fingerprint))
    }
}

/// The commit signer the flags ask for: `--gpg-key-ring` (with `--gpg-key-id` and
/// `--gpg-passphrase`), the key of `--ssh-signing-key-file` (decrypted with
/// `--ssh-signing-password`), or the transport key with `--ssh-signing-reuse-private-key`;
/// `None` when commits are not signed. The two formats exclude each other, as in flux.
fn commit_signer(
    args: &AzdoArgs,
    push: &PushAuth,
) -> Result<Option<Box<dyn fluxbootstrap_git::CommitSigner>>> {
    let ssh_signing = args.ssh_signing_key_file.is_some() || args.ssh_signing_reuse_private_key;
    if let Some(ring) = &args.gpg_key_ring {
        if ssh_signing {
            bail!(Hinted::new(
                "`--gpg-*` and `--ssh-signing-*` are mutually exclusive",
                "pick one signing format",
            ));
        }
        let signer = fluxbootstrap_auth::GpgSigner::from_key_ring(
            ring,
            args.gpg_key_id.as_deref(),
            args.gpg_passphrase.clone(),
        )
        .map_err(|e| {
            let hint = e.hint().unwrap_or_default();
            anyhow::Error::from(Hinted::new(e.to_string(), hint))
        })?;
        return Ok(Some(Box::new(GpgCommitSigner(signer))));
    }
    let key = if args.ssh_signing_reuse_private_key {
        Some(push.ssh_key().cloned().ok_or_else(|| {
            Hinted::new(
                "`--ssh-signing-reuse-private-key` needs the SSH transport key",
                "pass `--private-key-file` with an SSH URL, or sign with `--ssh-signing-key-file`",
            )
        })?)
    } else if let Some(path) = &args.ssh_signing_key_file {
        let text = read_private_key(Some(path))?.expect("a path was given");
        Some(
            fluxbootstrap_auth::load_private_key(&text, args.ssh_signing_password.as_ref())
                .with_context(|| {
                    format!("failed to load the SSH signing key `{}`", path.display())
                })?,
        )
    } else {
        None
    };
    Ok(key.map(|key| Box::new(SshCommitSigner(key)) as Box<dyn fluxbootstrap_git::CommitSigner>))
}

/// Signs commits with `GnuPG`, as `git commit -S` and flux's `--gpg-*` flags do.
struct GpgCommitSigner(fluxbootstrap_auth::GpgSigner);

impl fluxbootstrap_git::CommitSigner for GpgCommitSigner {
    fn sign(&self, raw_commit: &[u8]) -> Result<String, String> {
        self.0
            .sign(raw_commit)
            .map_err(|e| format!("{e} (key {})", self.0.key_id()))
    }
}

/// The commit author and the `--commit-message-appendix` suffix (`\n\n<appendix>` or empty).
pub(crate) fn author_and_appendix(args: &AzdoArgs) -> (fluxbootstrap_git::Author, String) {
    let author = fluxbootstrap_git::Author {
        name: args.author_name.clone(),
        email: args.author_email.clone(),
    };
    let appendix = if args.commit_message_appendix.is_empty() {
        String::new()
    } else {
        format!("\n\n{}", args.commit_message_appendix)
    };
    (author, appendix)
}

/// A unified diff of one repository file, for `--dry-run`.
pub(crate) fn unified_diff(path: &str, old: Option<&[u8]>, new: &[u8]) -> String {
    let old = old.map(String::from_utf8_lossy).unwrap_or_default();
    let new = String::from_utf8_lossy(new);
    similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

/// A y/N question: a prompt on a terminal, else one line read from stdin.
///
/// The read runs on a blocking thread so that Ctrl-C, which the runtime handles, still ends
/// the command while it waits for an answer.
pub(crate) async fn confirm(question: &str, interactive: bool) -> Result<bool> {
    let question = question.to_owned();
    tokio::task::spawn_blocking(move || -> Result<bool> {
        if interactive {
            return Ok(dialoguer::Confirm::new()
                .with_prompt(question)
                .default(false)
                .interact()?);
        }
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("failed to read the answer from stdin")?;
        Ok(matches!(
            line.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        ))
    })
    .await
    .context("the prompt task failed")?
}

/// Reports git retries as warnings (transfer progress: nothing yet; the step lines say what
/// is happening).
pub(crate) struct GitPrinter(pub(crate) Printer);

impl fluxbootstrap_git::Reporter for GitPrinter {
    fn retrying(&self, error: &str, attempt: u32, of: u32, delay: Duration) {
        retry_warning(self.0, error, attempt, of, delay);
    }
}

/// `⚠️ <error>; retrying in 2.0s (attempt 2 of 4)`: git and REST retries read the same.
fn retry_warning(printer: Printer, error: &str, attempt: u32, of: u32, delay: Duration) {
    printer.warning(format_args!(
        "{error}; retrying in {:.1}s (attempt {attempt} of {of})",
        delay.as_secs_f32()
    ));
}

/// Draws cluster progress as flux-style lines.
pub(crate) struct ClusterPrinter(pub(crate) Printer);

impl ApplyReporter for ClusterPrinter {
    fn object(&self, entry: &ApplyEntry) {
        let verb = match entry.change {
            Change::Created => "created",
            Change::Configured => "configured",
            Change::Unchanged => "unchanged",
        };
        self.0.detail(format_args!("{} {verb}", entry.object));
    }
}

impl WaitReporter for ClusterPrinter {
    fn waiting(&self, target: &WaitTarget) {
        // Bootstrap's Flux objects are named after their namespace, as flux names them.
        match target {
            WaitTarget::GitRepository(name) => {
                self.0.waiting(format_args!(
                    "waiting for GitRepository \"{name}/{name}\" to be reconciled"
                ));
            }
            WaitTarget::Kustomization(name) => {
                self.0.waiting(format_args!(
                    "waiting for Kustomization \"{name}/{name}\" to be reconciled"
                ));
            }
            WaitTarget::Deployment(_) => {}
        }
    }

    fn ready(&self, target: &WaitTarget) {
        match target {
            WaitTarget::Deployment(name) => {
                self.0.success(format_args!("{name}: deployment ready"));
            }
            WaitTarget::GitRepository(_) => self.0.success("GitRepository reconciled successfully"),
            WaitTarget::Kustomization(_) => self.0.success("Kustomization reconciled successfully"),
        }
    }

    fn failed(&self, target: &WaitTarget, message: &str) {
        self.0.failure(format_args!("{target}: {message}"));
    }
}

/// A CA bundle written to a private temporary file for libgit2, removed on drop. CA
/// certificates are public, but the file still lives only as long as the command.
pub(crate) struct TempCaFile(Option<tempfile::NamedTempFile>);

impl TempCaFile {
    /// Writes `pem` (if any) to a temporary file.
    pub(crate) fn new(pem: Option<&[u8]>) -> Result<Self> {
        let Some(pem) = pem else {
            return Ok(Self(None));
        };
        let mut file =
            tempfile::NamedTempFile::new().context("failed to create a temporary CA file")?;
        std::io::Write::write_all(&mut file, pem).context("failed to write a temporary CA file")?;
        Ok(Self(Some(file)))
    }

    /// The file's path, if there is one.
    pub(crate) fn path(&self) -> Option<std::path::PathBuf> {
        self.0.as_ref().map(|f| f.path().to_owned())
    }
}
