//! How a run tells its caller what is happening, without printing: the caller's [`Progress`]
//! sink receives flux-style lines, each tagged with the cluster it is about, and decides how
//! they look (prefixes, colour, spinners, verbosity).
//!
//! The adapters here turn the git, apply and wait callbacks of the library crates into those
//! lines, so every command that applies or waits reports the same way.

use std::fmt;
use std::time::Duration;

use fluxbootstrap_cluster::{ApplyEntry, ApplyReporter, Change, WaitReporter, WaitTarget};

/// The kind of a progress line; flux marks them `►`, `✔`, `◎`, `⚠️`, `✗`, or indents them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// A step starts.
    Action,
    /// A step finished.
    Success,
    /// Waiting for something.
    Waiting,
    /// A non-fatal problem.
    Warning,
    /// A failure.
    Failure,
    /// A detail under a step (one applied object).
    Detail,
}

/// A running spinner; dropping it ends it.
pub type Spinner = Box<dyn Send>;

/// Where a run's progress goes. `cluster` names the cluster a line is about (`None` for the
/// repository steps): a caller running several clusters at once tells them apart with it.
pub trait Progress: Send + Sync {
    /// One line of `kind`.
    fn line(&self, kind: Line, cluster: Option<&str>, text: fmt::Arguments<'_>);

    /// A unified diff of a file `--dry-run` would change: data, not a progress line.
    fn diff(&self, text: &str) -> std::io::Result<()>;

    /// A spinner saying `message` while a long step runs (clone, push, waits), for as long as
    /// the returned guard lives.
    fn spinner(&self, cluster: Option<&str>, message: &str) -> Spinner;

    /// `cluster` failed with `error` while others may go on.
    fn cluster_failed(&self, cluster: &str, error: &dyn fmt::Display);
}

/// The word a change is reported with.
#[must_use]
pub fn change_word(change: Change) -> &'static str {
    match change {
        Change::Created => "created",
        Change::Configured => "configured",
        Change::Unchanged => "unchanged",
    }
}

/// `<error>; retrying in 2.0s (attempt 2 of 4)`: git and REST retries read the same.
#[must_use]
pub fn retry_line(error: &str, attempt: u32, of: u32, delay: Duration) -> String {
    format!(
        "{error}; retrying in {:.1}s (attempt {attempt} of {of})",
        delay.as_secs_f32()
    )
}

/// The lines of one cluster (or of the repository, `cluster` `None`): git retries, applied
/// objects and readiness waits, through a [`Progress`] sink.
#[derive(Clone, Copy)]
pub struct Lines<'a> {
    progress: &'a dyn Progress,
    cluster: Option<&'a str>,
}

impl<'a> Lines<'a> {
    /// Lines about `cluster` (or about no cluster in particular).
    pub fn new(progress: &'a dyn Progress, cluster: Option<&'a str>) -> Self {
        Self { progress, cluster }
    }

    pub(crate) fn action(self, text: impl fmt::Display) {
        self.say(Line::Action, text);
    }

    pub(crate) fn success(self, text: impl fmt::Display) {
        self.say(Line::Success, text);
    }

    pub(crate) fn warning(self, text: impl fmt::Display) {
        self.say(Line::Warning, text);
    }

    pub(crate) fn spinner(self, message: &str) -> Spinner {
        self.progress.spinner(self.cluster, message)
    }

    pub(crate) fn diff(self, text: &str) -> std::io::Result<()> {
        self.progress.diff(text)
    }

    fn say(self, kind: Line, text: impl fmt::Display) {
        self.progress
            .line(kind, self.cluster, format_args!("{text}"));
    }
}

impl fluxbootstrap_git::Reporter for Lines<'_> {
    fn retrying(&self, error: &str, attempt: u32, of: u32, delay: Duration) {
        self.warning(retry_line(error, attempt, of, delay));
    }
}

impl ApplyReporter for Lines<'_> {
    fn object(&self, entry: &ApplyEntry) {
        self.say(
            Line::Detail,
            format_args!("{} {}", entry.object, change_word(entry.change)),
        );
    }
}

impl WaitReporter for Lines<'_> {
    fn waiting(&self, target: &WaitTarget) {
        // Bootstrap's Flux objects are named after their namespace, as flux names them.
        match target {
            WaitTarget::GitRepository(name) => self.say(
                Line::Waiting,
                format_args!("waiting for GitRepository \"{name}/{name}\" to be reconciled"),
            ),
            WaitTarget::Kustomization(name) => self.say(
                Line::Waiting,
                format_args!("waiting for Kustomization \"{name}/{name}\" to be reconciled"),
            ),
            WaitTarget::Deployment(_) => {}
        }
    }

    fn ready(&self, target: &WaitTarget) {
        match target {
            WaitTarget::Deployment(name) => self.success(format_args!("{name}: deployment ready")),
            WaitTarget::GitRepository(_) => self.success("GitRepository reconciled successfully"),
            WaitTarget::Kustomization(_) => self.success("Kustomization reconciled successfully"),
        }
    }

    fn failed(&self, target: &WaitTarget, message: &str) {
        self.say(Line::Failure, format_args!("{target}: {message}"));
    }
}
