//! `check --pre` (what bootstrap checks before it changes anything) and `check` (the health of
//! an installed Flux), printed like `flux check`.

use anyhow::{Context, Result, bail};
use fluxbootstrap_cluster::{Cluster, PreflightRequest};
use serde_json::json;

use crate::cli::{CheckArgs, GlobalArgs};
use crate::inputs::kube_options;
use crate::printer::Printer;
use fluxbootstrap_auth::ExposeSecret as _;

pub(crate) async fn run(args: &CheckArgs, global: &GlobalArgs, printer: Printer) -> Result<()> {
    let cluster = Cluster::connect(&kube_options(global)).await?;
    printer.action("checking prerequisites");
    // `check` reports an existing install, so it neither refuses one managed by another tool
    // nor compares sync paths: it checks against the path the install already has.
    let existing_path = cluster
        .kustomization(&global.namespace, &global.namespace)
        .await
        .context("failed to read the Flux Kustomization")?
        .map(|k| k.path)
        .unwrap_or_default();
    let request = PreflightRequest {
        namespace: global.namespace.clone(),
        path: existing_path,
        force: true,
    };
    let preflight = cluster
        .preflight(&request)
        .await
        .context("prerequisites checks failed")?;
    printer.success(format_args!(
        "Kubernetes {} >=1.33.0-0",
        preflight.server_version
    ));
    printer.success("cluster-admin rights");
    if let Some(existing) = &preflight.existing {
        let tool = existing.managed_by.as_deref().unwrap_or("flux");
        printer.success(format_args!(
            "Flux {} is installed (managed by {tool})",
            existing.version.as_deref().unwrap_or("(unknown version)")
        ));
    }
    printer.success("prerequisites checks passed");
    if args.pre {
        if printer.json() {
            let out = json!({"context": cluster.context(), "kubernetes": preflight.server_version, "prerequisites": "passed"});
            printer.data(format_args!("{out:#}\n"))?;
        }
        return Ok(());
    }

    printer.action("checking controllers");
    let report = cluster
        .check(&global.namespace)
        .await
        .context("failed to read the Flux install")?;
    for component in &report.components {
        if component.ready {
            printer.success(format_args!("{}: deployment ready", component.name));
        } else {
            printer.failure(format_args!(
                "{}: {}",
                component.name,
                component
                    .message
                    .as_deref()
                    .unwrap_or("deployment not ready")
            ));
        }
        for image in &component.images {
            printer.action(image);
        }
    }
    printer.action("checking crds");
    for crd in &report.crds {
        if crd.established {
            printer.success(format_args!(
                "{}/{}",
                crd.name,
                crd.stored_versions.join(",")
            ));
        } else {
            printer.failure(format_args!("{}: not established", crd.name));
        }
    }
    let cluster_pat = cluster_pat_expiry(&cluster, &global.namespace, printer).await;
    if printer.json() {
        let components: Vec<_> = report
            .components
            .iter()
            .map(|c| json!({"name": c.name, "ready": c.ready, "message": c.message, "images": c.images}))
            .collect();
        let out = json!({"context": cluster.context(), "version": report.version, "healthy": report.is_healthy(), "components": components, "clusterPat": cluster_pat});
        printer.data(format_args!("{out:#}\n"))?;
    }
    if !report.is_healthy() {
        if report.components.is_empty() {
            bail!(crate::error::Hinted::new(
                format!(
                    "no Flux components were found in namespace `{}`",
                    global.namespace
                ),
                "bootstrap Flux with `kubectl fluxbootstrap azdo`, or pass the namespace it runs in with `-n`"
            ));
        }
        bail!("check failed");
    }
    printer.success("all checks passed");
    Ok(())
}

/// Warn when a minted cluster PAT has fewer days left than this.
const EXPIRY_WARNING_DAYS: i64 = 14;

/// The expiry of the cluster PAT minted for the source Secret (`--cluster-pat mint`), read
/// from the PAT lifecycle API with the user's Entra ID token: `null` in JSON when there is
/// no minted PAT, or when no token or answer is to be had (said on stderr, never fatal).
/// The source Secret is the one the `GitRepository` names, whatever `--secret-name` was.
async fn cluster_pat_expiry(
    cluster: &Cluster,
    namespace: &str,
    printer: Printer,
) -> serde_json::Value {
    let Ok(Some(source)) = cluster.git_repository_source(namespace, namespace).await else {
        return serde_json::Value::Null;
    };
    let Some(secret) = source.secret_name.as_deref() else {
        return serde_json::Value::Null;
    };
    let Ok(Some(id)) = cluster
        .secret_annotation(
            namespace,
            secret,
            crate::source_secret::MINTED_PAT_ANNOTATION,
        )
        .await
    else {
        return serde_json::Value::Null;
    };
    printer.action("checking the cluster PAT");
    match read_expiry(cluster, namespace, &source.url, secret, &id, printer).await {
        Ok((valid_to, days)) => {
            if days < EXPIRY_WARNING_DAYS {
                printer.warning(format_args!(
                    "the cluster PAT expires in {days} days ({valid_to}): run `kubectl fluxbootstrap rotate --mint`"
                ));
            } else {
                printer.success(format_args!(
                    "cluster PAT valid until {valid_to} ({days} days)"
                ));
            }
            json!({"authorizationId": id, "validTo": valid_to, "daysLeft": days})
        }
        Err(err) => {
            printer.warning(format_args!(
                "cannot read the cluster PAT's expiry: {err:#}"
            ));
            json!({"authorizationId": id, "validTo": null, "daysLeft": null})
        }
    }
}

async fn read_expiry(
    cluster: &Cluster,
    namespace: &str,
    url: &str,
    secret: &str,
    id: &str,
    printer: Printer,
) -> Result<(String, i64)> {
    let repo = fluxbootstrap_azdo::RepoUrl::parse(url)?;
    let ca = cluster
        .get_secret(namespace, secret)
        .await?
        .and_then(|data| data.get("ca.crt").map(|ca| ca.expose_secret().to_vec()));
    let client = crate::credentials::pat_client(&repo, ca.as_ref(), printer).await?;
    let pat = client
        .get_pat(id)
        .await?
        .context("the PAT lifecycle API does not know the cluster PAT (revoked?)")?;
    let expires: jiff::Timestamp = pat
        .valid_to
        .parse()
        .with_context(|| format!("the PAT's expiry `{}` is not a time", pat.valid_to))?;
    let days = expires.duration_since(jiff::Timestamp::now()).as_hours() / 24;
    Ok((pat.valid_to, days))
}
