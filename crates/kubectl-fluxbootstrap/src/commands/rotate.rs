//! `rotate`: replaces the PAT in the auth Secret in place.
//!
//! The seed advice ("delete the secret and re-run bootstrap") leaves the cluster without a
//! credential in between; here the new PAT is first validated against the repository, then
//! written over the old one in one update, and Flux is asked to reconcile with it.
//!
//! `--mint` makes the new PAT itself (read-only, through the PAT lifecycle API) and, once
//! Flux is Ready with it, revokes the one minted before. If Flux does not accept the new
//! PAT, the old Secret is put back, Flux asked to reconcile with it, and the new PAT revoked:
//! the old one keeps working. A plain rotation away from a minted PAT revokes that PAT too.

use fluxbootstrap_auth::ExposeSecret as _;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fluxbootstrap_auth::SecretString;
use fluxbootstrap_cluster::{Cluster, WaitSpec};
use fluxbootstrap_git::{RemoteAuth, RemoteOptions};
use fluxbootstrap_plan::{GitMode, token_secret};

use crate::cli::{GlobalArgs, RotateArgs};
use crate::error::Hinted;
use crate::inputs::kube_options;
use crate::printer::Printer;
use crate::reporters::PrinterProgress;
use crate::source_secret::MINTED_PAT_ANNOTATION;

pub(crate) async fn run(args: &RotateArgs, global: &GlobalArgs, printer: Printer) -> Result<()> {
    let namespace = global.namespace.as_str();
    let repo = crate::inputs::resolve_repo_url(&args.repo)?;
    let cluster = Cluster::connect(&kube_options(global)).await?;
    let Some(existing) = cluster.get_secret(namespace, &args.secret_name).await? else {
        bail!(Hinted::new(
            format!("Secret `{namespace}/{}` does not exist", args.secret_name),
            "bootstrap the cluster first with `kubectl fluxbootstrap azdo`"
        ));
    };
    let bearer = existing.contains_key("bearerToken");
    if !bearer && !existing.contains_key("password") || existing.contains_key("identity") {
        bail!(Hinted::new(
            format!(
                "Secret `{namespace}/{}` does not hold a PAT",
                args.secret_name
            ),
            "`rotate` replaces token credentials; for SSH, register a new key and re-run bootstrap with `--private-key-file`"
        ));
    }
    let previous_pat = cluster
        .secret_annotation(namespace, &args.secret_name, MINTED_PAT_ANNOTATION)
        .await?;
    let ca_pem = match crate::inputs::read_ca_file(args.repo.ca_file.as_deref())? {
        Some(ca) => Some(ca),
        None => existing.get("ca.crt").map(|ca| ca.expose_secret().to_vec()),
    };
    let username = existing.get("username").map_or_else(
        || args.repo.username.clone(),
        |u| String::from_utf8_lossy(u.expose_secret()).into_owned(),
    );
    // The new credential: minted here, or given by the user like a bootstrap's.
    let (token, pats) = if args.mint {
        if bearer {
            bail!(Hinted::new(
                format!(
                    "Secret `{namespace}/{}` holds a bearer token, not a PAT",
                    args.secret_name
                ),
                "`rotate --mint` replaces a PAT; re-run bootstrap with `--cluster-pat mint` to switch"
            ));
        }
        let client = crate::credentials::pat_client(&repo, ca_pem.as_ref(), printer).await?;
        let name = crate::credentials::cluster_pat_name(&repo, &cluster, namespace);
        let minted =
            crate::credentials::mint_cluster_pat(&client, &name, args.cluster_pat_days, printer)
                .await?;
        (minted.token, Some((client, minted.authorization_id)))
    } else {
        let mode = GitMode::Token { bearer };
        let push =
            crate::credentials::push_credentials(&args.repo, &mode, None, None, &repo, printer)
                .await?;
        let token = push.token().context("token auth without a token")?.clone();
        (token, None)
    };
    let result = switch_to(
        args,
        &cluster,
        &repo,
        namespace,
        &username,
        &token,
        bearer,
        ca_pem.as_ref(),
        pats.as_ref().map(|(_, id)| id.as_str()),
        global,
        printer,
    )
    .await;
    let Some((client, new_id)) = pats else {
        result?;
        // The Secret no longer holds the PAT minted for it: revoke that one too, so no unused
        // credential to the repository stays valid.
        if let Some(old) = previous_pat {
            revoke_unused_minted_pat(&repo, ca_pem.as_ref(), &old, printer).await;
        }
        return Ok(());
    };
    match result {
        Ok(()) => {
            if let Some(old) = previous_pat.filter(|old| *old != new_id) {
                client.revoke_pat(&old).await.with_context(|| {
                    format!("Flux works with the new PAT, but revoking the old one ({old}) failed")
                })?;
                printer.success(format_args!("revoked the PAT minted before ({old})"));
            }
            Ok(())
        }
        Err(err) => {
            // Put the old credential back (it was never revoked), then drop the new PAT.
            if cluster
                .get_secret(namespace, &args.secret_name)
                .await?
                .as_ref()
                .is_some_and(|live| !fluxbootstrap_auth::same_secret_data(live, &existing))
            {
                cluster
                    .reconcile_secret(namespace, &args.secret_name, existing, false)
                    .await?;
                cluster
                    .annotate_secret(
                        namespace,
                        &args.secret_name,
                        MINTED_PAT_ANNOTATION,
                        previous_pat.as_deref(),
                    )
                    .await?;
                printer.warning(format_args!(
                    "put the previous credential back into \"{namespace}/{}\"",
                    args.secret_name
                ));
                // Flux last tried the refused PAT; have it fetch with the old one now rather
                // than at its next interval.
                match cluster
                    .request_reconcile(namespace, "GitRepository", namespace)
                    .await
                {
                    Ok(_) => {
                        printer.success("asked Flux to reconcile with the previous credential");
                    }
                    Err(err) => printer.warning(format_args!(
                        "could not ask Flux to reconcile ({err}); it retries at its interval"
                    )),
                }
            }
            client.revoke_pat(&new_id).await?;
            printer.warning(format_args!("revoked the new PAT ({new_id})"));
            Err(err)
        }
    }
}

/// Revokes the minted PAT `authorization_id` a plain rotation replaced. Failing (no `az`, no
/// Entra sign-in) is not failing the rotation, which is done: the warning says what is left.
async fn revoke_unused_minted_pat(
    repo: &fluxbootstrap_azdo::RepoUrl,
    ca_pem: Option<&Vec<u8>>,
    authorization_id: &str,
    printer: Printer,
) {
    let revoked = async {
        let client = crate::credentials::pat_client(repo, ca_pem, printer).await?;
        client.revoke_pat(authorization_id).await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    match revoked {
        Ok(()) => printer.success(format_args!(
            "revoked the PAT minted before ({authorization_id}), which the Secret no longer holds"
        )),
        Err(err) => printer.warning(format_args!(
            "the PAT minted before ({authorization_id}) is no longer used but could not be \
             revoked ({err:#}); revoke it in Azure DevOps under User settings > Personal access tokens"
        )),
    }
}

/// Validates `token`, writes it into the Secret (with the authorization id of a minted PAT,
/// or none) and waits until Flux reconciles with it.
#[expect(clippy::too_many_arguments, reason = "the rotation's inputs")]
async fn switch_to(
    args: &RotateArgs,
    cluster: &Cluster,
    repo: &fluxbootstrap_azdo::RepoUrl,
    namespace: &str,
    username: &str,
    token: &SecretString,
    bearer: bool,
    ca_pem: Option<&Vec<u8>>,
    minted_pat: Option<&str>,
    global: &GlobalArgs,
    printer: Printer,
) -> Result<()> {
    let remote_auth = if bearer {
        RemoteAuth::Bearer {
            token: token.clone(),
        }
    } else {
        RemoteAuth::Basic {
            username: username.to_owned(),
            password: token.clone(),
        }
    };
    printer.action(format_args!(
        "validating the new credential against \"{}\"",
        repo.https_url()
    ));
    let ca_file = crate::credentials::TempCaFile::new(ca_pem.map(Vec::as_slice))?;
    let remote = RemoteOptions {
        url: repo.https_url(),
        auth: remote_auth,
        ca_file: ca_file.path(),
        timeout: Duration::from_secs(30),
    };
    let refs = tokio::task::spawn_blocking(move || fluxbootstrap_git::ls_remote(&remote))
        .await
        .context("the validation task failed")??;
    let branch_ref = format!("refs/heads/{}", args.branch);
    if !refs.iter().any(|(name, _)| *name == branch_ref) {
        bail!(Hinted::new(
            format!(
                "the new credential works, but branch `{}` does not exist in the repository",
                args.branch
            ),
            "pass the branch Flux syncs with `--branch`"
        ));
    }
    printer.success("the new credential can read the repository");

    let data = token_secret(username, token, bearer, ca_pem.map(Vec::as_slice));
    printer.action(format_args!(
        "updating source secret \"{namespace}/{}\"",
        args.secret_name
    ));
    cluster
        .reconcile_secret(namespace, &args.secret_name, data, false)
        .await?;
    // The annotation names the PAT the Secret holds now (none for a PAT the user gave).
    cluster
        .annotate_secret(
            namespace,
            &args.secret_name,
            MINTED_PAT_ANNOTATION,
            minted_pat,
        )
        .await?;
    printer.success("updated source secret");

    let requested_at = cluster
        .request_reconcile(namespace, "GitRepository", namespace)
        .await?;
    let spec = WaitSpec {
        namespace: namespace.to_owned(),
        deployments: Vec::new(),
        git_repository: Some(namespace.to_owned()),
        kustomization: None,
        revision: None,
        reconcile_requested_at: Some(requested_at),
        timeout: global.timeout,
    };
    cluster
        .wait_ready(&spec, &PrinterProgress::single(printer).lines())
        .await
        .context("Flux did not accept the new credential")?;
    printer.success("rotated the credential");
    Ok(())
}
