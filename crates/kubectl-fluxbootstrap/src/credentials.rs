//! The push credential in flux's order (flag, `GIT_PASSWORD`, pipe, prompt) or from the Azure
//! CLI, and the cluster PATs `--cluster-pat mint` makes.

use fluxbootstrap_auth::ExposeSecret as _;
use std::io::{IsTerminal, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fluxbootstrap_auth::{SecretString, SshKeyPair};
use fluxbootstrap_azdo::{RepoUrl, RestAuth, RestClient};
use fluxbootstrap_cluster::Cluster;
use fluxbootstrap_git::RemoteAuth;
use fluxbootstrap_plan::GitMode;

use crate::cli::{AzdoArgs, RepoArgs};
use crate::error::Hinted;
use crate::host_keys::{HostKeys, cluster_host_keys, known_hosts_for};
use crate::inputs::read_private_key;
use crate::printer::Printer;
use crate::reporters::retry_warning;

/// The one credential the user gave for the push. Exactly one kind, so a key's passphrase can
/// never be sent where a PAT goes (an HTTP header, the REST API).
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    /// A personal access token, sent as the HTTP Basic password.
    Pat(SecretString),
    /// An Entra ID (or other OAuth) access token, sent as `Authorization: Bearer`.
    Bearer(SecretString),
    /// An SSH private key and the passphrase it was decrypted with (flux stores that one in
    /// the Secret as `password`).
    SshKey {
        /// The decoded key.
        key: SshKeyPair,
        /// Its passphrase, if it has one.
        passphrase: Option<SecretString>,
    },
}

/// How the plugin itself pushes, and which credential it got from the user.
#[derive(Debug, Clone)]
pub(crate) struct PushAuth {
    /// The clone URL (HTTPS canonical, or SSH).
    pub(crate) url: String,
    /// The credential for libgit2.
    pub(crate) remote: RemoteAuth,
    /// What the user gave.
    pub(crate) credential: Credential,
}

impl PushAuth {
    /// Credentials for the REST API: a PAT or a token, never an SSH key's passphrase.
    pub(crate) fn rest_auth(&self) -> Option<RestAuth> {
        match &self.credential {
            Credential::Pat(pat) => Some(RestAuth::Basic(pat.clone())),
            Credential::Bearer(token) => Some(RestAuth::Bearer(token.clone())),
            Credential::SshKey { .. } => None,
        }
    }

    /// The PAT or token (HTTPS modes), for a token-auth Secret.
    pub(crate) fn token(&self) -> Option<&SecretString> {
        match &self.credential {
            Credential::Pat(token) | Credential::Bearer(token) => Some(token),
            Credential::SshKey { .. } => None,
        }
    }

    /// The SSH transport key (SSH mode).
    pub(crate) fn ssh_key(&self) -> Option<&SshKeyPair> {
        match &self.credential {
            Credential::SshKey { key, .. } => Some(key),
            Credential::Pat(_) | Credential::Bearer(_) => None,
        }
    }

    /// The SSH key's passphrase (SSH mode).
    pub(crate) fn passphrase(&self) -> Option<&SecretString> {
        match &self.credential {
            Credential::SshKey { passphrase, .. } => passphrase.as_ref(),
            Credential::Pat(_) | Credential::Bearer(_) => None,
        }
    }
}

/// What a bootstrap authenticates with, all taken before anything that writes is contacted.
pub(crate) struct Credentials {
    /// The contents of `--private-key-file`.
    pub(crate) private_key: Option<SecretString>,
    /// The push credential.
    pub(crate) push: PushAuth,
    /// The cluster's SSH host key decision (SSH modes), made once for the run.
    pub(crate) host_keys: Option<HostKeys>,
}

/// Reads the private key, resolves the push credential and decides the cluster's SSH host
/// key (a failed scan stops the run here, before any commit).
pub(crate) async fn credentials(
    args: &AzdoArgs,
    mode: &GitMode,
    repo: &RepoUrl,
    printer: Printer,
) -> Result<Credentials> {
    let private_key = read_private_key(args.private_key_file.as_deref())?;
    let push = push_credentials(
        &args.repo,
        mode,
        private_key.as_ref(),
        args.render.known_hosts_file.as_deref(),
        repo,
        printer,
    )
    .await?;
    let host_keys = cluster_host_keys(mode, repo, &args.render, printer).await?;
    Ok(Credentials {
        private_key,
        push,
        host_keys,
    })
}

/// Resolves the user's credential for the push in flux's order (flag, `GIT_PASSWORD`, pipe,
/// prompt) or, for `--provider azure` without a PAT, from the Azure CLI.
pub(crate) async fn push_credentials(
    args: &RepoArgs,
    mode: &GitMode,
    private_key: Option<&SecretString>,
    known_hosts_file: Option<&Path>,
    repo: &RepoUrl,
    printer: Printer,
) -> Result<PushAuth> {
    let flag = args.password.clone();
    let env = std::env::var(fluxbootstrap_auth::SECRET_ENV)
        .ok()
        .map(SecretString::from);
    match mode {
        GitMode::Ssh => {
            let Some(key_text) = private_key else {
                bail!(Hinted::new(
                    "an SSH repository URL needs `--private-key-file`",
                    "pass the private key whose public key is registered in Azure DevOps (User settings > SSH public keys), or use the HTTPS URL with a PAT"
                ));
            };
            let passphrase = flag.or(env).filter(|p| !p.expose_secret().is_empty());
            let key = fluxbootstrap_auth::load_private_key(key_text, passphrase.as_ref())?;
            key.ensure_accepted_by(&repo.ssh_host())?;
            let known_hosts = known_hosts_for(&repo.ssh_host(), known_hosts_file, printer)
                .await?
                .known_hosts;
            Ok(PushAuth {
                url: repo.ssh_url(),
                remote: RemoteAuth::Ssh {
                    username: "git".to_owned(),
                    private_key: key.private_openssh.clone(),
                    passphrase: None,
                    known_hosts,
                },
                credential: Credential::SshKey { key, passphrase },
            })
        }
        GitMode::AzureProvider { .. } if flag.is_none() && env.is_none() => {
            printer.action("getting an Entra ID token from the Azure CLI for the push");
            let token = fluxbootstrap_auth::azure_cli_token(None).await?;
            Ok(PushAuth {
                url: repo.https_url(),
                remote: RemoteAuth::Bearer {
                    token: token.token.clone(),
                },
                credential: Credential::Bearer(token.token),
            })
        }
        GitMode::Token { .. }
        | GitMode::TokenPushSshSync { .. }
        | GitMode::AzureProvider { .. } => {
            let bearer = matches!(mode, GitMode::Token { bearer: true });
            let stdin_is_terminal = std::io::stdin().is_terminal();
            // On a blocking thread, so Ctrl-C still ends the command during the prompt.
            let (pat, source) = tokio::task::spawn_blocking(move || {
                // Not `stdin().lock()`: the masked prompt reads stdin itself, and std's stdin
                // lock is not reentrant, so holding it here would deadlock the prompt.
                let mut stdin = std::io::stdin();
                fluxbootstrap_auth::resolve_pat(
                    flag,
                    env,
                    &mut stdin as &mut dyn Read,
                    stdin_is_terminal,
                    &|prompt| crate::prompt::masked(prompt),
                )
            })
            .await
            .context("the PAT prompt task failed")??;
            if let Some(warning) = source.warning() {
                printer.warning(warning);
            }
            let remote = if bearer {
                RemoteAuth::Bearer { token: pat.clone() }
            } else {
                RemoteAuth::Basic {
                    username: args.username.clone(),
                    password: pat.clone(),
                }
            };
            Ok(PushAuth {
                url: repo.https_url(),
                remote,
                credential: if bearer {
                    Credential::Bearer(pat)
                } else {
                    Credential::Pat(pat)
                },
            })
        }
    }
}

/// The client of `repo`'s PAT lifecycle API, with the user's Entra ID token from the Azure CLI.
pub(crate) async fn pat_client(
    repo: &RepoUrl,
    ca_pem: Option<&Vec<u8>>,
    printer: Printer,
) -> Result<RestClient> {
    printer.action("getting an Entra ID token from the Azure CLI for the PAT lifecycle API");
    let entra = fluxbootstrap_auth::azure_cli_token(None).await?;
    Ok(
        RestClient::for_pats(repo, entra.token, ca_pem.cloned())?.on_retry(Arc::new(
            move |error: &str, attempt: u32, of: u32, delay: Duration| {
                retry_warning(printer, error, attempt, of, delay);
            },
        )),
    )
}

/// Mints a read-only PAT (scope `vso.code`) named `display_name` for `days` days with
/// `client`, saying when the organization shortened its lifetime.
pub(crate) async fn mint_cluster_pat(
    client: &RestClient,
    display_name: &str,
    days: u32,
    printer: Printer,
) -> Result<fluxbootstrap_azdo::MintedPat> {
    let asked = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24 * i64::from(days)))
        .context("the cluster PAT's expiry is out of range")?;
    let asked_text = asked.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let minted = client
        .create_pat(display_name, "vso.code", &asked_text)
        .await?;
    let shortened = minted
        .valid_to
        .parse::<jiff::Timestamp>()
        .is_ok_and(|got| got + jiff::SignedDuration::from_hours(1) < asked);
    if shortened {
        printer.warning(format_args!(
            "the organization's maximum PAT lifetime shortened the cluster PAT to {}",
            minted.valid_to
        ));
    }
    printer.success(format_args!(
        "minted read-only PAT \"{display_name}\" for the cluster, valid until {}",
        minted.valid_to
    ));
    Ok(minted)
}

/// The name a minted cluster PAT gets: who holds it.
pub(crate) fn cluster_pat_name(repo: &RepoUrl, cluster: &Cluster, namespace: &str) -> String {
    format!("flux {}/{namespace} {}", cluster.context(), repo.repo)
}

/// A CA bundle written to a private temporary file for libgit2, removed on drop. CA
/// certificates are public, but the file still lives only as long as the command.
pub(crate) struct TempCaFile(Option<tempfile::NamedTempFile>);

impl TempCaFile {
    /// Writes `pem` (if any) to a temporary file.
    pub(crate) fn new(pem: Option<&[u8]>) -> Result<Self> {
        let Some(pem) = pem else {
            return Ok(Self(None));
        };
        let mut file =
            tempfile::NamedTempFile::new().context("failed to create a temporary CA file")?;
        std::io::Write::write_all(&mut file, pem).context("failed to write a temporary CA file")?;
        Ok(Self(Some(file)))
    }

    /// The file's path, if there is one.
    pub(crate) fn path(&self) -> Option<std::path::PathBuf> {
        self.0.as_ref().map(|f| f.path().to_owned())
    }
}
