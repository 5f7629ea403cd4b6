//! The repository side of a bootstrap: `--create-repository`, the clone with its commit signer,
//! and the dry-run diff.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fluxbootstrap_auth::SshKeyPair;
use fluxbootstrap_azdo::{RepoUrl, RestClient};

use crate::cli::AzdoArgs;
use crate::credentials::PushAuth;
use crate::error::Hinted;
use crate::inputs::read_private_key;
use crate::printer::Printer;
use crate::reporters::{GitPrinter, retry_warning};
use fluxbootstrap_git::{Author, Checkout, FileWrite};

/// `--create-repository`: makes sure the repository exists, creating it through REST; `false`
/// when it does not and this is a dry run (it would be created).
async fn ensure_repository(
    repo: &RepoUrl,
    push: &PushAuth,
    ca_pem: Option<&Vec<u8>>,
    dry_run: bool,
    printer: Printer,
) -> Result<bool> {
    let Some(auth) = push.rest_auth() else {
        bail!(Hinted::new(
            "`--create-repository` needs a PAT or an Entra token",
            "use the HTTPS URL with `GIT_PASSWORD` set to a PAT with Code (Read, write & manage)"
        ));
    };
    let client = RestClient::new(repo, auth, ca_pem.cloned())?.on_retry(Arc::new(
        move |error: &str, attempt: u32, of: u32, delay: Duration| {
            retry_warning(printer, error, attempt, of, delay);
        },
    ));
    if client.get_repository().await?.is_some() {
        printer.success(format_args!("repository \"{}\" exists", repo.repo));
        return Ok(true);
    }
    if dry_run {
        printer.success(format_args!(
            "repository \"{}\" would be created",
            repo.repo
        ));
        return Ok(false);
    }
    printer.action(format_args!(
        "creating repository \"{}\" in project \"{}\"",
        repo.repo, repo.project
    ));
    match client.create_repository().await {
        Ok(_) => printer.success("created repository"),
        // Created between our check and our request: by another client, or by an attempt of
        // ours whose answer was lost before the retry. Either way it is there to use.
        Err(fluxbootstrap_azdo::AzdoError::RepositoryExists { .. }) => {
            printer.success(format_args!("repository \"{}\" exists", repo.repo));
        }
        Err(err) => return Err(err.into()),
    }
    Ok(true)
}

/// Clones `--branch` of the repository into a private temporary directory, with the push
/// credentials; prints flux's clone line first.
/// The checkout the bootstrap commits to: with `--create-repository`, the repository is made
/// first (in a dry run that would create it, the checkout is empty and nothing is fetched).
pub(crate) async fn clone_repository(
    args: &AzdoArgs,
    repo: &RepoUrl,
    push_auth: &PushAuth,
    ca_pem: Option<&Vec<u8>>,
    printer: Printer,
) -> Result<fluxbootstrap_git::Checkout> {
    let exists = !args.create_repository
        || ensure_repository(repo, push_auth, ca_pem, args.dry_run, printer).await?;
    printer.action(format_args!(
        "cloning branch \"{}\" from Git repository \"{}\"",
        args.render.branch,
        push_auth.display_url()
    ));
    let remote = fluxbootstrap_git::RemoteOptions {
        url: push_auth.url.clone(),
        auth: push_auth.remote.clone(),
        ca_file: args.repo.ca_file.clone(),
        timeout: Duration::from_secs(30),
    };
    let signer = commit_signer(args, push_auth)?;
    let branch = args.render.branch.clone();
    let create_branch = args.create_branch;
    let _spinner = printer.progress("cloning");
    let mut checkout = tokio::task::spawn_blocking(move || {
        if exists {
            fluxbootstrap_git::Checkout::clone(
                &remote,
                &branch,
                create_branch,
                &GitPrinter(printer),
            )
        } else {
            fluxbootstrap_git::Checkout::empty(&remote, &branch)
        }
    })
    .await
    .context("the clone task failed")??;
    if let Some(signer) = signer {
        checkout.sign_commits_with(signer);
    }
    Ok(checkout)
}

/// Signs commits with an SSH key, as `git -c gpg.format=ssh commit -S` and flux's
/// `--ssh-signing-*` flags do.
struct SshCommitSigner(SshKeyPair);

impl fluxbootstrap_git::CommitSigner for SshCommitSigner {
    fn sign(&self, raw_commit: &[u8]) -> Result<String, String> {
        fluxbootstrap_auth::sign_sshsig(&self.0, fluxbootstrap_auth::GIT_NAMESPACE, raw_commit)
            .map_err(|e| format!("{e} ({})", self.0.fingerprint))
    }
}

/// The commit signer the flags ask for: `--gpg-key-ring` (with `--gpg-key-id` and
/// `--gpg-passphrase`), the key of `--ssh-signing-key-file` (decrypted with
/// `--ssh-signing-password`), or the transport key with `--ssh-signing-reuse-private-key`;
/// `None` when commits are not signed. The two formats exclude each other, as in flux.
fn commit_signer(
    args: &AzdoArgs,
    push: &PushAuth,
) -> Result<Option<Box<dyn fluxbootstrap_git::CommitSigner>>> {
    let ssh_signing = args.ssh_signing_key_file.is_some() || args.ssh_signing_reuse_private_key;
    if let Some(ring) = &args.gpg_key_ring {
        if ssh_signing {
            bail!(Hinted::new(
                "`--gpg-*` and `--ssh-signing-*` are mutually exclusive",
                "pick one signing format",
            ));
        }
        let signer = fluxbootstrap_auth::GpgSigner::from_key_ring(
            ring,
            args.gpg_key_id.as_deref(),
            args.gpg_passphrase.clone(),
        )
        .map_err(|e| {
            let hint = e.hint().unwrap_or_default();
            anyhow::Error::from(Hinted::new(e.to_string(), hint))
        })?;
        return Ok(Some(Box::new(GpgCommitSigner(signer))));
    }
    let key = if args.ssh_signing_reuse_private_key {
        Some(push.ssh_key().cloned().ok_or_else(|| {
            Hinted::new(
                "`--ssh-signing-reuse-private-key` needs the SSH transport key",
                "pass `--private-key-file` with an SSH URL, or sign with `--ssh-signing-key-file`",
            )
        })?)
    } else if let Some(path) = &args.ssh_signing_key_file {
        let text = read_private_key(Some(path))?.expect("a path was given");
        Some(
            fluxbootstrap_auth::load_private_key(&text, args.ssh_signing_password.as_ref())
                .with_context(|| {
                    format!("failed to load the SSH signing key `{}`", path.display())
                })?,
        )
    } else {
        None
    };
    Ok(key.map(|key| Box::new(SshCommitSigner(key)) as Box<dyn fluxbootstrap_git::CommitSigner>))
}

/// Signs commits with `GnuPG`, as `git commit -S` and flux's `--gpg-*` flags do.
struct GpgCommitSigner(fluxbootstrap_auth::GpgSigner);

impl fluxbootstrap_git::CommitSigner for GpgCommitSigner {
    fn sign(&self, raw_commit: &[u8]) -> Result<String, String> {
        self.0
            .sign(raw_commit)
            .map_err(|e| format!("{e} (key {})", self.0.key_id()))
    }
}

/// A unified diff of one repository file, for `--dry-run`.
pub(crate) fn unified_diff(path: &str, old: Option<&[u8]>, new: &[u8]) -> String {
    let old = old.map(String::from_utf8_lossy).unwrap_or_default();
    let new = String::from_utf8_lossy(new);
    similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

/// Commits `files` and pushes, or in dry-run mode prints the diff; returns the checkout back.
#[expect(
    clippy::too_many_arguments,
    reason = "a linear step of the bootstrap; a struct would only rename them"
)]
pub(crate) async fn commit_step(
    mut checkout: Checkout,
    files: Vec<FileWrite>,
    message: String,
    author: Author,
    dry_run: bool,
    what: &'static str,
    branch: &str,
    printer: Printer,
) -> Result<(Checkout, Option<String>)> {
    if dry_run {
        let mut changed = false;
        for file in &files {
            let old = checkout.read_file(&file.path)?;
            if file.keep_existing && old.is_some() {
                continue;
            }
            if old.as_deref() != Some(file.contents.as_slice()) {
                changed = true;
                printer.data(unified_diff(&file.path, old.as_deref(), &file.contents))?;
            }
        }
        if changed {
            printer.success(format_args!("{what} would be committed to \"{branch}\""));
        } else {
            printer.success(format_args!("{what} are up to date"));
        }
        return Ok((checkout, None));
    }
    let spinner = printer.progress(format!("pushing {what}"));
    let (checkout, sha) = tokio::task::spawn_blocking(move || {
        let sha = checkout.commit_and_push(&files, &message, &author, &GitPrinter(printer));
        (checkout, sha)
    })
    .await
    .context("the push task failed")?;
    drop(spinner);
    let sha = sha.with_context(|| format!("failed to push {what}"))?;
    match &sha {
        Some(sha) => printer.success(format_args!(
            "committed and pushed {what} to \"{branch}\" (\"{sha}\")"
        )),
        None => printer.success(format_args!("{what} are up to date")),
    }
    Ok((checkout, sha))
}
