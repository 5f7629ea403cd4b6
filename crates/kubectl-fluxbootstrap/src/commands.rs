//! One module per subcommand; [`dispatch`] maps the parsed command line onto them.

mod azdo;
mod check;
mod completion;
mod export;
mod fleet;
mod rotate;
mod shared;
mod uninstall;
mod version;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::printer::Printer;

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
