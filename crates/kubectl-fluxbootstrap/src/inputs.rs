//! Flags into library inputs: the repository URL, paths, install and sync options, the
//! kubeconfig options, and the other values a command line decides before anything is contacted.

use fluxbootstrap_auth::ExposeSecret as _;
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use fluxbootstrap_auth::{EcdsaCurve, SecretBytes, SecretString, SshKeyPair};
use fluxbootstrap_azdo::RepoUrl;
use fluxbootstrap_cluster::KubeOptions;
use fluxbootstrap_manifests::{InstallOptions, KustomizationPatches, SyncOptions};
use fluxbootstrap_plan::{GitMode, RepoPaths};

use crate::cli::{AzdoArgs, GlobalArgs, RegistryCreds, RenderArgs, RepoArgs};
use crate::duration::format_go_duration;
use crate::error::Hinted;
use crate::host_keys::HostKeys;

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

pub(crate) fn generate_key(args: &AzdoArgs) -> Result<SshKeyPair> {
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
