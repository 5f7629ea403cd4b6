//! `uninstall`: removes Flux like `flux uninstall`, touching nothing outside the install.

use anyhow::{Context, Result};
use fluxbootstrap_cluster::{Cluster, ObjectRef, UninstallOptions, UninstallReporter};
use std::io::IsTerminal;

use crate::cli::{GlobalArgs, UninstallArgs};
use crate::error::Hinted;
use crate::inputs::kube_options;
use crate::printer::Printer;
use crate::prompt::confirm;

struct UninstallPrinter(Printer);

impl UninstallReporter for UninstallPrinter {
    fn finalizers_removed(&self, object: &ObjectRef, dry_run: bool) {
        let suffix = if dry_run { " (dry run)" } else { "" };
        self.0
            .success(format_args!("{object} finalizers deleted{suffix}"));
    }

    fn deleted(&self, object: &ObjectRef, dry_run: bool) {
        let suffix = if dry_run { " (dry run)" } else { "" };
        self.0.success(format_args!("{object} deleted{suffix}"));
    }

    fn failed(&self, object: &ObjectRef, message: &str) {
        self.0.failure(format_args!("{object}: {message}"));
    }
}

pub(crate) async fn run(args: &UninstallArgs, global: &GlobalArgs, printer: Printer) -> Result<()> {
    let cluster = Cluster::connect(&kube_options(global)).await?;
    if !args.silent && !args.dry_run {
        let question = format!(
            "Are you sure you want to delete Flux and its custom resource definitions from \"{}\"",
            cluster.context()
        );
        if !confirm(&question, std::io::stdin().is_terminal()).await? {
            return Err(Hinted::new(
                "uninstall cancelled",
                "pass `--silent` to skip the question",
            )
            .into());
        }
    }
    let options = UninstallOptions {
        namespace: global.namespace.clone(),
        keep_namespace: args.keep_namespace,
        dry_run: args.dry_run,
    };
    let report = cluster
        .uninstall(&options, &UninstallPrinter(printer))
        .await
        .context("uninstall failed")?;
    if printer.json() {
        let deleted: Vec<String> = report.deleted.iter().map(ToString::to_string).collect();
        let out = serde_json::json!({"context": cluster.context(), "dryRun": args.dry_run, "deleted": deleted});
        printer.data(format_args!("{out:#}\n"))?;
    }
    printer.success("uninstall finished");
    Ok(())
}
