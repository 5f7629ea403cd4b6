//! Flags into library inputs: the repository URL, paths, install and sync options, the
//! kubeconfig options, and the other values a command line decides before anything is contacted.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use fluxbootstrap_auth::{EcdsaCurve, SecretBytes, SecretString, SshKeyPair};
use fluxbootstrap_azdo::RepoUrl;
use fluxbootstrap_cluster::KubeOptions;
use fluxbootstrap_manifests::{InstallOptions, KustomizationPatches};
use fluxbootstrap_plan::{GitMode, RepoPaths, SyncSettings};

use crate::cli::{AzdoArgs, GlobalArgs, RenderArgs, RepoArgs};
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

/// The sync flags as the plan crate takes them.
pub(crate) fn sync_settings(render: &RenderArgs) -> SyncSettings {
    SyncSettings {
        branch: render.branch.clone(),
        interval: render.interval,
        secret_name: render.secret_name.clone(),
        recurse_submodules: render.recurse_submodules,
        sparse_checkout: render.sparse_checkout.clone(),
        ssh_hostkey_algos: render.ssh_hostkey_algos.clone(),
        azure_tenant_id: render.azure_tenant_id.clone(),
    }
}

/// `gotk-sync.yaml` for one folder, cloning the URL the mode syncs from.
pub(crate) fn sync_yaml(
    render: &RenderArgs,
    namespace: &str,
    paths: &RepoPaths,
    repo: &RepoUrl,
    mode: &GitMode,
) -> Result<String> {
    let url = fluxbootstrap_plan::sync_url(repo, mode)?;
    Ok(fluxbootstrap_plan::sync_manifests(
        &sync_settings(render),
        namespace,
        paths,
        url,
        mode,
    )?)
}

/// The `kustomization.yaml` patches the mode needs; `host_keys` is the SSH host's key
/// decision in the SSH modes ([`crate::host_keys`]).
pub(crate) fn kustomization_patches(
    render: &RenderArgs,
    mode: &GitMode,
    host_keys: Option<&HostKeys>,
) -> Option<KustomizationPatches> {
    fluxbootstrap_plan::kustomization_patches(
        &sync_settings(render),
        mode,
        host_keys.is_some_and(|k| k.rsa),
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
        fluxbootstrap_plan::docker_config_json(
            &args.render.registry,
            &creds.username,
            &creds.password,
        ),
    )]);
    Ok(Some((name.clone(), data)))
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

/// The commit author of `--author-name` and `--author-email`.
pub(crate) fn author(args: &AzdoArgs) -> fluxbootstrap_git::Author {
    fluxbootstrap_git::Author {
        name: args.author_name.clone(),
        email: args.author_email.clone(),
    }
}
