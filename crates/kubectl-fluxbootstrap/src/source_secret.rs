//! The source Secret each mode needs (flux's `ReconcileSourceSecret`), decided while the plan
//! is built: the token, a minted read-only cluster PAT, or an SSH key the user registers.

use anyhow::{Context, Result};
use fluxbootstrap_auth::SecretString;
use fluxbootstrap_azdo::{RepoUrl, RestClient};
use fluxbootstrap_cluster::Cluster;
use fluxbootstrap_plan::GitMode;

use crate::cli::AzdoArgs;
use crate::credentials::{PushAuth, cluster_pat_name, mint_cluster_pat, pat_client};
use crate::host_keys::known_hosts_for;
use crate::inputs::generate_key;
use crate::printer::Printer;

pub(crate) use fluxbootstrap_plan::{MINTED_PAT_ANNOTATION, SourceSecret};

/// `--cluster-pat mint`: a read-only PAT (scope Code (Read)) minted for this cluster with the
/// user's Entra ID token from the Azure CLI, or `None` when the Secret already holds one
/// minted before (kept, like an SSH key: a rerun must not mint a PAT each time).
async fn minted_cluster_secret(inputs: &SecretInputs<'_>) -> Result<Option<SourceSecret>> {
    let &SecretInputs {
        args,
        repo,
        cluster,
        namespace,
        ca_pem,
        printer,
        pat_client: client,
        ..
    } = inputs;
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
    // One Entra token (one `az` call) for the whole fleet.
    let client = client
        .get_or_try_init(|| pat_client(repo, ca_pem, printer))
        .await?;
    let minted = mint_cluster_pat(client, &display_name, args.cluster_pat_days, printer).await?;
    Ok(Some(SourceSecret {
        data: fluxbootstrap_plan::token_secret(
            &args.repo.username,
            &minted.token,
            false,
            ca_pem.map(Vec::as_slice),
        ),
        minted_pat: Some(minted.authorization_id),
    }))
}

/// What the source Secret of one cluster is made from: every input of flux's
/// `ReconcileSourceSecret`.
pub(crate) struct SecretInputs<'a> {
    pub(crate) mode: &'a GitMode,
    pub(crate) args: &'a AzdoArgs,
    pub(crate) push: &'a PushAuth,
    /// The contents of `--private-key-file`.
    pub(crate) private_key: Option<&'a SecretString>,
    pub(crate) ca_pem: Option<&'a Vec<u8>>,
    pub(crate) repo: &'a RepoUrl,
    pub(crate) cluster: &'a Cluster,
    pub(crate) namespace: &'a str,
    pub(crate) printer: Printer,
    /// The PAT lifecycle client of `--cluster-pat mint`, made on first use and shared by every
    /// target of the plan.
    pub(crate) pat_client: &'a tokio::sync::OnceCell<RestClient>,
}

/// The Secret for the mode, or `None` when it is to be kept as it is (or there is none).
/// Asks the user to add a generated public key: this runs while the plan is built.
pub(crate) async fn secret_for_mode(inputs: &SecretInputs<'_>) -> Result<Option<SourceSecret>> {
    let &SecretInputs {
        mode,
        args,
        push,
        private_key,
        ca_pem,
        repo,
        cluster,
        namespace,
        printer,
        ..
    } = inputs;
    let repo_args = &args.repo;
    let secret_name = &args.render.secret_name;
    match mode {
        GitMode::AzureProvider { .. } => Ok(None),
        GitMode::Token { .. } if args.cluster_pat == crate::cli::ClusterPat::Mint => {
            minted_cluster_secret(inputs).await
        }
        GitMode::Token { bearer } => {
            let token = push.token().context("token auth without a token")?;
            Ok(Some(SourceSecret {
                data: fluxbootstrap_plan::token_secret(
                    &repo_args.username,
                    token,
                    *bearer,
                    ca_pem.map(Vec::as_slice),
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
            crate::prompt::prompt_public_key(
                &key.public_openssh,
                &format!("https://dev.azure.com/{}/_usersSettings/keys", repo.org),
                args.silent || args.yes || args.dry_run,
                printer,
            )
            .await?;
            // The key as the user gave it, or the generated one in PKCS#8 PEM, as flux stores it.
            let identity = private_key.unwrap_or(&key.private_pkcs8_pem);
            Ok(Some(SourceSecret {
                data: fluxbootstrap_plan::ssh_secret(
                    identity,
                    &key.public_openssh,
                    &known_hosts,
                    push.passphrase(),
                ),
                minted_pat: None,
            }))
        }
    }
}
