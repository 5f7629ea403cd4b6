//! `version`: the plugin version, the Flux version it installs by default, and (unless
//! `--client`) the Flux version found on the cluster.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use fluxbootstrap_cluster::Cluster;
use serde_json::json;

use crate::cli::{GlobalArgs, VersionArgs};
use crate::inputs::kube_options;
use crate::printer::Printer;

/// The plugin's own version, from the workspace.
pub(crate) const PLUGIN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Flux release installed when `--version` is not given.
pub(crate) const DEFAULT_FLUX_VERSION: &str = "v2.9.4";

pub(crate) async fn run(args: &VersionArgs, global: &GlobalArgs, printer: Printer) -> Result<()> {
    let client = format!(
        "kubectl-fluxbootstrap: v{PLUGIN_VERSION}\nflux (default): {DEFAULT_FLUX_VERSION}\n"
    );
    // The client's versions come first, like flux's: they are known without a cluster.
    if !printer.json() {
        printer.data(&client)?;
    }
    let on_cluster = if args.client {
        None
    } else {
        Some(cluster_version(global).await)
    };
    let mut summary = json!({ "plugin": PLUGIN_VERSION, "flux": DEFAULT_FLUX_VERSION });
    let result = match on_cluster {
        None => Ok(()),
        Some(Ok((context, version))) => {
            if printer.json() {
                summary["cluster"] = json!({ "context": context, "flux": version });
            } else {
                let version = version.as_deref().unwrap_or("not installed");
                let mut line = String::new();
                let _ = writeln!(line, "flux on \"{context}\": {version}");
                printer.data(line)?;
            }
            Ok(())
        }
        Some(Err(err)) => Err(err),
    };
    if printer.json() {
        printer.data(format_args!("{summary:#}\n"))?;
    }
    result
}

/// The current context and the Flux version installed there (`None`: not installed).
async fn cluster_version(global: &GlobalArgs) -> Result<(String, Option<String>)> {
    let cluster = Cluster::connect(&kube_options(global)).await?;
    let version = cluster
        .flux_version()
        .await
        .context("failed to read the Flux version on the cluster")?;
    Ok((cluster.context().to_owned(), version))
}
