//! `check --pre` (what bootstrap checks before it changes anything) and `check` (the health of
//! an installed Flux), printed like `flux check`.

use anyhow::{Context, Result, bail};
use fluxbootstrap_cluster::{Cluster, PreflightRequest};
use serde_json::json;

use crate::cli::{CheckArgs, GlobalArgs};
use crate::commands::shared::kube_options;
use crate::printer::Printer;

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
    if printer.json() {
        let components: Vec<_> = report
            .components
            .iter()
            .map(|c| json!({"name": c.name, "ready": c.ready, "message": c.message, "images": c.images}))
            .collect();
        let out = json!({"context": cluster.context(), "version": report.version, "healthy": report.is_healthy(), "components": components});
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
