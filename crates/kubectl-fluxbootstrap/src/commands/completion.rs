//! `completion <shell>`: prints a shell completion script on stdout.

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs};
use crate::printer::Printer;

pub(crate) fn run(args: &CompletionArgs, printer: Printer) -> Result<()> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(
        args.shell,
        &mut command,
        "kubectl-fluxbootstrap",
        &mut script,
    );
    printer.data(String::from_utf8_lossy(&script))?;
    Ok(())
}
