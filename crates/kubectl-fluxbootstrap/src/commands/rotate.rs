//! `rotate`: replaces the PAT in the auth Secret in place.
//!
//! The seed advice ("delete the secret and re-run bootstrap") leaves the cluster without a
//! credential in between; here the new PAT is first validated against the repository, then
//! written over the old one in one update, and Flux is asked to reconcile with it.

use fluxbootstrap_auth::ExposeSecret as _;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fluxbootstrap_cluster::{Cluster, WaitSpec};
use fluxbootstrap_git::RemoteOptions;

use crate::cli::{GlobalArgs, RotateArgs};
use crate::commands::azdo::token_secret;
use crate::commands::shared::{self, ClusterPrinter, kube_options};
use crate::error::Hinted;
use crate::git_mode::GitMode;
use crate::printer::Printer;

pub(crate) async fn run(args: &RotateArgs, global: &GlobalArgs, printer: Printer) -> Result<()> {
    let namespace = global.namespace.as_str();
    let repo = shared::resolve_repo_url(&args.repo)?;
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
    let mode = GitMode::Token { bearer };
    let push = shared::push_credentials(&args.repo, &mode, None, None, &repo, printer).await?;
    let ca_pem = match shared::read_ca_file(args.repo.ca_file.as_deref())? {
        Some(ca) => Some(ca),
        None => existing.get("ca.crt").map(|ca| ca.expose_secret().to_vec()),
    };

    printer.action(format_args!(
        "validating the new credential against \"{}\"",
        repo.https_url()
    ));
    let ca_file = shared::TempCaFile::new(ca_pem.as_deref())?;
    let remote = RemoteOptions {
        url: push.url.clone(),
        auth: push.remote.clone(),
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

    let username = existing.get("username").map_or_else(
        || args.repo.username.clone(),
        |u| String::from_utf8_lossy(u.expose_secret()).into_owned(),
    );
    let token = push.token().context("token auth without a token")?;
    let data = token_secret(&username, token, bearer, ca_pem.as_ref());
    printer.action(format_args!(
        "updating source secret \"{namespace}/{}\"",
        args.secret_name
    ));
    cluster
        .reconcile_secret(namespace, &args.secret_name, data, false)
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
        .wait_ready(&spec, &ClusterPrinter(printer))
        .await
        .context("Flux did not accept the new credential")?;
    printer.success("rotated the credential");
    Ok(())
}
