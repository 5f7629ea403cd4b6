//! `version`: the plugin version, the Flux version it installs by default, and (unless
//! `--client`) the Flux version found on the cluster.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use fluxbootstrap_cluster::Cluster;
use serde_json::json;

use crate::cli::{GlobalArgs, VersionArgs};
use crate::commands::shared::kube_options;
use crate::printer::Printer;

/// The plugin's own version, from the workspace.
pub(crate) const PLUGIN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Flux release installed when `--version` is not given.
pub(crate) const DEFAULT_FLUX_VERSION: &str = "v2.9.4";

pub(crate) async fn run(args: &VersionArgs, global: &GlobalArgs, printer: Printer) -> Result<()> {
    let on_cluster = if args.client {
        None
    } else {
        let cluster = Cluster::connect(&kube_options(global)).await?;
        let version = cluster
            .flux_version()
            .await
            .context("failed to read the Flux version on the cluster")?;
        Some((cluster.context().to_owned(), version))
    };
    if printer.json() {
        let mut summary = json!({ "plugin": PLUGIN_VERSION, "flux": DEFAULT_FLUX_VERSION });
        if let Some((context, version)) = &on_cluster {
            summary["cluster"] = json!({ "context": context, "flux": version });
        }
        printer.data(format_args!("{summary:#}\n"))?;
    } else {
        let mut text = format!(
            "kubectl-fluxbootstrap: v{PLUGIN_VERSION}\nflux (default): {DEFAULT_FLUX_VERSION}\n"
        );
        if let Some((context, version)) = &on_cluster {
            let version = version.as_deref().unwrap_or("not installed");
            let _ = writeln!(text, "flux on \"{context}\": {version}");
        }
        printer.data(text)?;
    }
    Ok(())
}
