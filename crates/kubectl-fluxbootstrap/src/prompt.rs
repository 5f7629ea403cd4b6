//! Questions to the user. Only the binary prompts; every prompt happens while the plan is
//! built, before the repository or a cluster changes.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, Result};
use fluxbootstrap_auth::SecretString;

use crate::printer::Printer;

/// A y/N question: a prompt on a terminal, else one line read from stdin.
///
/// The read runs on a blocking thread so that Ctrl-C, which the runtime handles, still ends
/// the command while it waits for an answer.
pub(crate) async fn confirm(question: &str, interactive: bool) -> Result<bool> {
    let question = question.to_owned();
    tokio::task::spawn_blocking(move || -> Result<bool> {
        if interactive {
            return Ok(dialoguer::Confirm::new()
                .with_prompt(question)
                .default(false)
                .interact()?);
        }
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("failed to read the answer from stdin")?;
        Ok(matches!(
            line.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        ))
    })
    .await
    .context("the prompt task failed")?
}

/// Asks the user to add `public_key` to Azure DevOps, unless `--silent`/`--yes`.
pub(crate) async fn prompt_public_key(
    public_key: &str,
    org_keys_url: &str,
    silent: bool,
    printer: Printer,
) -> Result<()> {
    printer.success(format_args!("public key: {public_key}"));
    if silent {
        return Ok(());
    }
    printer.action(format_args!("add it to the SSH public keys of an Azure DevOps user with access to the repository: {org_keys_url}"));
    if !confirm(
        "Please give the key access to your repository",
        std::io::stdin().is_terminal(),
    )
    .await?
    {
        return Err(Declined.into());
    }
    Ok(())
}

/// The user answered "no" to adding the public key: the run stops before the first commit.
#[derive(Debug)]
pub(crate) struct Declined;

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("aborting: the public key was not confirmed; nothing was committed or applied")
    }
}

impl std::error::Error for Declined {}

impl Declined {
    /// What to do next.
    pub(crate) const HINT: &str =
        "add the public key in Azure DevOps, then run the command again (or pass `--silent`)";
}

/// Asks for a secret on the terminal without echoing it (the PAT prompt; the auth crate
/// decides when to ask, the binary asks).
pub(crate) fn masked(prompt: &str) -> std::io::Result<SecretString> {
    dialoguer::Password::new()
        .with_prompt(prompt)
        .allow_empty_password(true)
        .interact()
        .map(SecretString::from)
        .map_err(std::io::Error::from)
}
