//! Library progress drawn by the printer: git retries, applied objects and readiness waits,
//! with a cluster prefix when several clusters report at once.

use std::time::Duration;

use fluxbootstrap_cluster::{ApplyEntry, ApplyReporter, Change, WaitReporter, WaitTarget};

use crate::printer::Printer;

/// Reports git retries as warnings (transfer progress: nothing yet; the step lines say what
/// is happening).
pub(crate) struct GitPrinter(pub(crate) Printer);

impl fluxbootstrap_git::Reporter for GitPrinter {
    fn retrying(&self, error: &str, attempt: u32, of: u32, delay: Duration) {
        retry_warning(self.0, error, attempt, of, delay);
    }
}

/// `⚠️ <error>; retrying in 2.0s (attempt 2 of 4)`: git and REST retries read the same.
pub(crate) fn retry_warning(printer: Printer, error: &str, attempt: u32, of: u32, delay: Duration) {
    printer.warning(format_args!(
        "{error}; retrying in {:.1}s (attempt {attempt} of {of})",
        delay.as_secs_f32()
    ));
}

/// Draws one cluster's progress as flux-style lines. In a run over several clusters every
/// line starts with the cluster's context (`prefix` is `"<context>: "`); with one cluster
/// the prefix is empty and the lines read like flux's.
#[derive(Debug, Clone)]
pub(crate) struct ClusterPrinter {
    pub(crate) printer: Printer,
    pub(crate) prefix: String,
}

impl ClusterPrinter {
    /// Lines without a prefix, for commands that talk to one cluster.
    pub(crate) fn plain(printer: Printer) -> Self {
        Self {
            printer,
            prefix: String::new(),
        }
    }
}

impl ApplyReporter for ClusterPrinter {
    fn object(&self, entry: &ApplyEntry) {
        self.printer.detail(format_args!(
            "{}{} {}",
            self.prefix,
            entry.object,
            change_word(entry.change)
        ));
    }
}

impl WaitReporter for ClusterPrinter {
    fn waiting(&self, target: &WaitTarget) {
        let prefix = &self.prefix;
        // Bootstrap's Flux objects are named after their namespace, as flux names them.
        match target {
            WaitTarget::GitRepository(name) => {
                self.printer.waiting(format_args!(
                    "{prefix}waiting for GitRepository \"{name}/{name}\" to be reconciled"
                ));
            }
            WaitTarget::Kustomization(name) => {
                self.printer.waiting(format_args!(
                    "{prefix}waiting for Kustomization \"{name}/{name}\" to be reconciled"
                ));
            }
            WaitTarget::Deployment(_) => {}
        }
    }

    fn ready(&self, target: &WaitTarget) {
        let prefix = &self.prefix;
        match target {
            WaitTarget::Deployment(name) => {
                self.printer
                    .success(format_args!("{prefix}{name}: deployment ready"));
            }
            WaitTarget::GitRepository(_) => self.printer.success(format_args!(
                "{prefix}GitRepository reconciled successfully"
            )),
            WaitTarget::Kustomization(_) => self.printer.success(format_args!(
                "{prefix}Kustomization reconciled successfully"
            )),
        }
    }

    fn failed(&self, target: &WaitTarget, message: &str) {
        self.printer
            .failure(format_args!("{}{target}: {message}", self.prefix));
    }
}

/// The word a change is reported with.
pub(crate) fn change_word(change: Change) -> &'static str {
    match change {
        Change::Created => "created",
        Change::Configured => "configured",
        Change::Unchanged => "unchanged",
    }
}
