//! How a bootstrap reaches the repository, decided from the flags while the plan is built:
//! the push remote, the `--create-repository` client and the commit signer.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fluxbootstrap_auth::SshKeyPair;
use fluxbootstrap_azdo::{RepoUrl, RestClient};
use fluxbootstrap_execute::{RepositoryAccess, RepositoryCreation};

use crate::cli::AzdoArgs;
use crate::credentials::PushAuth;
use crate::error::Hinted;
use crate::inputs::{self, read_private_key};
use crate::printer::Printer;
use crate::reporters::retry_warning;

/// How the run reaches the repository: the remote with the push credential, the
/// `--create-repository` client and the commit signer, all checked before anything is contacted.
pub(crate) fn repository_access(
    args: &AzdoArgs,
    repo: &RepoUrl,
    push: &PushAuth,
    ca_pem: Option<&Vec<u8>>,
    printer: Printer,
) -> Result<RepositoryAccess> {
    let create = if args.create_repository {
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
        Some(RepositoryCreation {
            repo: repo.clone(),
            client,
        })
    } else {
        None
    };
    Ok(RepositoryAccess {
        remote: fluxbootstrap_git::RemoteOptions {
            url: push.url.clone(),
            auth: push.remote.clone(),
            ca_file: args.repo.ca_file.clone(),
            timeout: Duration::from_secs(30),
        },
        create,
        create_branch: args.create_branch,
        signer: commit_signer(args, push)?,
        author: inputs::author(args),
    })
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
