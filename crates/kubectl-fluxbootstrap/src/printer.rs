//! The one place that writes to the terminal.
//!
//! Every user-visible line goes through [`Printer`], so the quiet/verbose policy, colour
//! (`--color`, `NO_COLOR`, `FORCE_COLOR`) and the stdout/stderr split are decided once:
//! flux-style step lines (`►`, `✔`, `✗`, `◎`, `⚠️`) go to stderr, data goes to stdout.

use std::fmt::Display;
use std::io::{IsTerminal, Write};

use owo_colors::OwoColorize;

use crate::cli::{ColorChoice, GlobalArgs, OutputFormat};

/// How much to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Verbosity {
    /// Errors and warnings only.
    Quiet,
    /// Step lines.
    Normal,
    /// Step lines plus details.
    Verbose,
}

/// Writes step lines to stderr and data to stdout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Printer {
    verbosity: Verbosity,
    json: bool,
}

impl Printer {
    /// Builds the printer from the global flags and sets the process-wide colour choice.
    pub(crate) fn from_args(global: &GlobalArgs) -> Self {
        let forced = std::env::var_os("FORCE_COLOR").is_some_and(|v| !v.is_empty());
        let choice = match global.color {
            ColorChoice::Always => anstream::ColorChoice::Always,
            ColorChoice::Never => anstream::ColorChoice::Never,
            ColorChoice::Auto if forced => anstream::ColorChoice::Always,
            ColorChoice::Auto => anstream::ColorChoice::Auto,
        };
        choice.write_global();
        let verbosity = if global.quiet {
            Verbosity::Quiet
        } else if global.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        };
        Self {
            verbosity,
            json: global.output == OutputFormat::Json,
        }
    }

    /// Whether `--output json` was asked for.
    pub(crate) fn json(self) -> bool {
        self.json
    }

    /// `► message`: a step starts.
    pub(crate) fn action(self, message: impl Display) {
        self.step(Verbosity::Normal, format_args!("{} {message}", "►".cyan()));
    }

    /// `✔ message`: a step finished.
    pub(crate) fn success(self, message: impl Display) {
        self.step(Verbosity::Normal, format_args!("{} {message}", "✔".green()));
    }

    /// `◎ message`: waiting for something.
    pub(crate) fn waiting(self, message: impl Display) {
        self.step(
            Verbosity::Normal,
            format_args!("{} {message}", "◎".yellow()),
        );
    }

    /// `⚠️ message`: a non-fatal problem; shown even with `--quiet`.
    pub(crate) fn warning(self, message: impl Display) {
        self.step(
            Verbosity::Quiet,
            format_args!("{} {message}", "⚠️".yellow()),
        );
    }

    /// `✗ message`: a failure; shown even with `--quiet`.
    pub(crate) fn failure(self, message: impl Display) {
        self.step(Verbosity::Quiet, format_args!("{} {message}", "✗".red()));
    }

    /// An indented line under a step (the items of `--dry-run`'s plan).
    pub(crate) fn item(self, message: impl Display) {
        self.step(Verbosity::Normal, format_args!("  {message}"));
    }

    /// A detail line, shown only with `--verbose`.
    pub(crate) fn detail(self, message: impl Display) {
        self.step(Verbosity::Verbose, format_args!("  {message}"));
    }

    /// Raw text on stderr (error reports), always shown.
    #[expect(
        clippy::unused_self,
        reason = "every write goes through the printer, even unconditional ones"
    )]
    pub(crate) fn stderr(self, text: impl Display) {
        let mut err = anstream::stderr().lock();
        let _ = writeln!(err, "{text}");
    }

    /// Data on stdout (`--output json`, diffs, completion scripts, exported files).
    #[expect(
        clippy::unused_self,
        reason = "every write goes through the printer, even unconditional ones"
    )]
    pub(crate) fn data(self, text: impl Display) -> std::io::Result<()> {
        let mut out = anstream::stdout().lock();
        write!(out, "{text}")?;
        out.flush()
    }

    /// A spinner with `message` on stderr while a long step runs (clone, push, waits); shown
    /// only on a terminal at normal verbosity, and cleared when the returned guard drops.
    pub(crate) fn progress(self, message: impl Into<String>) -> Progress {
        let visible = self.verbosity == Verbosity::Normal && std::io::stderr().is_terminal();
        if !visible {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(message.into());
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        *active_spinner() = Some(bar.clone());
        Progress(Some(bar))
    }

    fn step(self, level: Verbosity, line: std::fmt::Arguments<'_>) {
        if self.verbosity >= level {
            let write = || {
                let mut err = anstream::stderr().lock();
                // A closed stderr is not worth failing the bootstrap for.
                let _ = writeln!(err, "{line}");
            };
            // Step lines printed while a spinner runs go above it, not through it.
            match active_spinner().as_ref() {
                Some(bar) => bar.suspend(write),
                None => write(),
            }
        }
    }
}

/// A running spinner; dropping it clears the line.
pub(crate) struct Progress(Option<indicatif::ProgressBar>);

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
            *active_spinner() = None;
        }
    }
}

/// The spinner on screen, if any: the printer writes step lines around it.
fn active_spinner() -> std::sync::MutexGuard<'static, Option<indicatif::ProgressBar>> {
    static ACTIVE: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);
    ACTIVE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
