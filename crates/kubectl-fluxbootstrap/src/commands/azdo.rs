//! `azdo`: bootstrap one cluster or a fleet, as one plan run by one pipeline
//! ([`crate::bootstrap`]); this module only prints the outcome and picks the error.

use std::sync::Arc;

use anyhow::Result;

use crate::bootstrap::plan;
use crate::cli::{AzdoArgs, GlobalArgs};
use crate::error::Hinted;
use crate::printer::Printer;
use crate::reporters::PrinterProgress;

pub(crate) async fn run(args: &AzdoArgs, global: &GlobalArgs, printer: Printer) -> Result<()> {
    let (plan, report) = plan::build(args, global, printer).await?;
    if args.dry_run {
        plan.print(printer);
    }
    let fleet = plan.fleet;
    let progress = Arc::new(PrinterProgress { printer, fleet });
    let mut report = fluxbootstrap_execute::run(plan.execution, report, progress).await?;
    report.sort();
    if fleet {
        printer.stderr(report.table());
    }
    if printer.json() {
        printer.data(format_args!("{:#}\n", report.json()))?;
    }
    if let Some(err) = report.repository_error.take() {
        return Err(err);
    }
    let failed = report.failed();
    if failed == 0 {
        return Ok(());
    }
    // One cluster: its own error, with its cause chain and hint.
    if !fleet && let Some(err) = report.rows.pop().and_then(|row| row.error) {
        return Err(err);
    }
    Err(Hinted::new(
        format!(
            "{failed} of {} clusters were not bootstrapped",
            report.rows.len()
        ),
        "fix what the table says and run the same command again: clusters that are up to date are left alone",
    )
    .into())
}
