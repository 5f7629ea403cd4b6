//! Error reports: `error:`, the cause chain, and a `hint:` line; exit codes.
//!
//! Library crates describe only their own layer and offer a `hint()`, which each exposes
//! through one `hint_for` function; this module walks the chain once, prints every layer, and
//! asks the binary's own errors and each crate's `hint_for` for advice.

use std::error::Error;
use std::fmt::{self, Write as _};

use owo_colors::OwoColorize;

use crate::printer::Printer;

/// Exit codes, documented in the README.
pub(crate) mod exit_code {
    /// The command did what was asked.
    pub(crate) const SUCCESS: i32 = 0;
    /// Bootstrap or user-input failure.
    pub(crate) const FAILURE: i32 = 1;
    /// Usage error or an unexpected internal failure.
    pub(crate) const USAGE: i32 = 2;
    /// Interrupted with Ctrl-C.
    pub(crate) const INTERRUPTED: i32 = 130;
}

/// An error raised by the binary itself, with advice for the user.
#[derive(Debug)]
pub(crate) struct Hinted {
    message: String,
    hint: String,
}

impl Hinted {
    /// An error `message` with the `hint` shown after it.
    pub(crate) fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for Hinted {}

/// The user pressed Ctrl-C.
#[derive(Debug)]
pub(crate) struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted")
    }
}

impl Error for Interrupted {}

/// A failure of the plugin itself, not of the input or the cluster: a task that panicked or
/// never finished. Exit code 2, as the README says.
#[derive(Debug)]
pub(crate) struct Internal(String);

impl Internal {
    /// An internal failure described by `message`.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Internal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "internal error: {}", self.0)
    }
}

impl Error for Internal {}

/// Prints `err` and returns the exit code for it.
pub(crate) fn report(printer: Printer, err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<Interrupted>().is_some() {
        printer.stderr(format_args!("{} interrupted", "✗".red()));
        return exit_code::INTERRUPTED;
    }
    printer.stderr(render(err));
    exit_code_of(err)
}

/// 2 when the chain holds an [`Internal`] failure (the binary's or the executor's), else 1.
fn exit_code_of(err: &anyhow::Error) -> i32 {
    if err.chain().any(|cause| {
        cause.downcast_ref::<Internal>().is_some() || fluxbootstrap_execute::is_internal(cause)
    }) {
        exit_code::USAGE
    } else {
        exit_code::FAILURE
    }
}

/// The text of an error report, without colour decisions (anstream strips them when needed).
pub(crate) fn render(err: &anyhow::Error) -> String {
    let mut out = format!("{}: {err}", "error".red().bold());
    let mut hint = None;
    let mut caused_by = false;
    for (index, cause) in err.chain().enumerate() {
        if index > 0 && !cause.to_string().trim().is_empty() {
            if !caused_by {
                caused_by = true;
                let _ = write!(out, "\n  {}:", "Caused by".bold());
            }
            let _ = write!(out, "\n    {cause}");
        }
        hint = hint.or_else(|| hint_for(cause));
    }
    if let Some(hint) = hint {
        let _ = write!(out, "\n{}: {hint}", "hint".cyan().bold());
    }
    out
}

/// Every library crate's hint lookup: a crate lists its own error types, so only a new crate
/// is added here.
const LIBRARY_HINTS: &[fn(&(dyn Error + 'static)) -> Option<String>] = &[
    fluxbootstrap_auth::hint_for,
    fluxbootstrap_azdo::hint_for,
    fluxbootstrap_cluster::hint_for,
    fluxbootstrap_execute::hint_for,
    fluxbootstrap_git::hint_for,
    fluxbootstrap_manifests::hint_for,
    fluxbootstrap_plan::hint_for,
    fluxbootstrap_release::hint_for,
];

/// Asks the binary's own errors, then every library crate, for advice on one cause of the
/// chain; the outermost advice wins.
fn hint_for(cause: &(dyn Error + 'static)) -> Option<String> {
    if let Some(err) = cause.downcast_ref::<Hinted>() {
        return Some(err.hint.clone());
    }
    if cause.downcast_ref::<crate::prompt::Declined>().is_some() {
        return Some(crate::prompt::Declined::HINT.to_owned());
    }
    LIBRARY_HINTS.iter().find_map(|hint| hint(cause))
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    #[test]
    fn renders_chain_and_hint() {
        anstream::ColorChoice::Never.write_global();
        let err = Err::<(), _>(Hinted::new("no PAT was given", "set `GIT_PASSWORD`"))
            .context("failed to authenticate")
            .unwrap_err();
        let text = anstream::adapter::strip_str(&render(&err)).to_string();
        assert_eq!(
            text,
            "error: failed to authenticate\n  Caused by:\n    no PAT was given\nhint: set `GIT_PASSWORD`"
        );
    }

    #[test]
    fn a_cause_that_says_caused_by_still_gets_its_header() {
        anstream::ColorChoice::Never.write_global();
        let err = Err::<(), _>(anyhow::anyhow!("inner"))
            .context("Caused by a bad flag")
            .unwrap_err();
        let text = anstream::adapter::strip_str(&render(&err)).to_string();
        assert_eq!(text, "error: Caused by a bad flag\n  Caused by:\n    inner");
    }

    /// Every library's errors get their hints through the crate's `hint_for`; the GPG errors
    /// were missing from the old hand-kept list of types and were printed without one.
    #[test]
    fn library_errors_get_their_crates_hint() {
        anstream::ColorChoice::Never.write_global();
        let err = anyhow::Error::new(fluxbootstrap_auth::GpgError::NotInstalled)
            .context("failed to set up commit signing");
        let text = anstream::adapter::strip_str(&render(&err)).to_string();
        assert!(text.ends_with("hint: install GnuPG (e.g. `apt-get install gnupg`), or sign with `--ssh-signing-key-file`"), "{text}");
        let err = anyhow::Error::new(fluxbootstrap_plan::RepoPaths::new("../x", "ns").unwrap_err());
        assert!(render(&err).contains("--path clusters/my-cluster"));
    }

    #[test]
    fn internal_failures_exit_with_two() {
        let err = anyhow::Error::new(Internal::new("a task panicked")).context("bootstrap failed");
        assert_eq!(exit_code_of(&err), exit_code::USAGE);
        assert_eq!(
            exit_code_of(&anyhow::anyhow!("bad input")),
            exit_code::FAILURE
        );
    }
}
