//! Library progress drawn by the printer: the executor's lines, git and REST retries, applied
//! objects and readiness waits, with a cluster prefix when several clusters report at once.

use std::fmt;
use std::time::Duration;

use fluxbootstrap_execute::{Line, Lines, Progress, Spinner};

use crate::printer::Printer;

/// `⚠️ <error>; retrying in 2.0s (attempt 2 of 4)`: git and REST retries read the same.
pub(crate) fn retry_warning(printer: Printer, error: &str, attempt: u32, of: u32, delay: Duration) {
    printer.warning(fluxbootstrap_execute::retry_line(error, attempt, of, delay));
}

/// Draws library progress as flux-style lines. In a fleet every line about a cluster starts
/// with its context (`"<context>: "`), and only the repository steps get a spinner (the
/// clusters wait together, their lines say enough); with one cluster the lines read like
/// flux's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PrinterProgress {
    pub(crate) printer: Printer,
    pub(crate) fleet: bool,
}

impl PrinterProgress {
    /// Progress of a command that talks to one cluster.
    pub(crate) fn single(printer: Printer) -> Self {
        Self {
            printer,
            fleet: false,
        }
    }

    /// The apply and wait lines of such a command.
    pub(crate) fn lines(&self) -> Lines<'_> {
        Lines::new(self, None)
    }

    fn prefix(self, cluster: Option<&str>) -> String {
        match cluster {
            Some(name) if self.fleet => format!("{name}: "),
            _ => String::new(),
        }
    }
}

impl Progress for PrinterProgress {
    fn line(&self, kind: Line, cluster: Option<&str>, text: fmt::Arguments<'_>) {
        let line = format_args!("{}{text}", self.prefix(cluster));
        match kind {
            Line::Action => self.printer.action(line),
            Line::Success => self.printer.success(line),
            Line::Waiting => self.printer.waiting(line),
            Line::Warning => self.printer.warning(line),
            Line::Failure => self.printer.failure(line),
            Line::Detail => self.printer.detail(line),
        }
    }

    fn diff(&self, text: &str) -> std::io::Result<()> {
        self.printer.data(text)
    }

    fn spinner(&self, cluster: Option<&str>, message: &str) -> Spinner {
        if self.fleet && cluster.is_some() {
            return Box::new(());
        }
        Box::new(self.printer.progress(message))
    }

    fn cluster_failed(&self, cluster: &str, error: &dyn fmt::Display) {
        if self.fleet {
            self.printer.failure(format_args!("{cluster}: {error:#}"));
        }
    }
}
