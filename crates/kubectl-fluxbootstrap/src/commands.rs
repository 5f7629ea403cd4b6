//! One module per subcommand; [`dispatch`] maps the parsed command line onto them.

mod azdo;
mod check;
mod completion;
mod export;
mod rotate;
mod uninstall;
mod version;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::printer::Printer;

/// flux's `--ns-follows-kube-context` (or `FLUX_NS_FOLLOWS_KUBE_CONTEXT`): unless `-n` was on
/// the command line, the kubeconfig context's namespace replaces the default. An unreadable
/// kubeconfig is left for the command itself to report.
pub(crate) fn follow_kube_context_namespace(cli: &mut Cli, namespace_given: bool) {
    let wanted = cli.global.ns_follows_kube_context
        || std::env::var_os("FLUX_NS_FOLLOWS_KUBE_CONTEXT").is_some_and(|v| !v.is_empty());
    if !wanted || namespace_given {
        return;
    }
    if let Ok(Some(namespace)) =
        fluxbootstrap_cluster::context_namespace(&crate::inputs::kube_options(&cli.global))
    {
        cli.global.namespace = namespace;
    }
}

/// Runs the subcommand of `cli`.
pub(crate) async fn dispatch(cli: Cli, printer: Printer) -> Result<()> {
    match cli.command {
        Command::Version(args) => version::run(&args, &cli.global, printer).await,
        Command::Completion(args) => completion::run(&args, printer),
        Command::Azdo(args) => azdo::run(&args, &cli.global, printer).await,
        Command::Check(args) => check::run(&args, &cli.global, printer).await,
        Command::Rotate(args) => rotate::run(&args, &cli.global, printer).await,
        Command::Uninstall(args) => uninstall::run(&args, &cli.global, printer).await,
        Command::Export(args) => export::run(&args, &cli.global, printer).await,
    }
}
