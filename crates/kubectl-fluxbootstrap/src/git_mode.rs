//! How the plugin and the cluster authenticate to Azure DevOps, decided from the flags.
//!
//! flux turns an HTTPS URL without `--token-auth` into a broken `ssh://git@dev.azure.com/...`
//! URL; here an HTTPS URL implies token auth, `--ssh-hostname` selects "PAT push, SSH sync",
//! an SSH URL selects SSH for both, and `--provider azure` stores no credential at all.

use crate::error::Hinted;

/// The authentication mode of one bootstrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GitMode {
    /// PAT over HTTPS for the push and for the cluster (`--token-auth`), Secret keys
    /// `username`/`password` (or `bearerToken` with `--with-bearer-token`) and `ca.crt`.
    Token {
        /// Send the credential as `Authorization: Bearer`.
        bearer: bool,
    },
    /// PAT over HTTPS for the push, SSH for the cluster (`--ssh-hostname`).
    TokenPushSshSync {
        /// `host[:port]` the cluster connects to.
        ssh_host: String,
    },
    /// SSH for both (an `ssh://` or scp-like URL).
    Ssh,
    /// Workload identity (`--provider azure`): push with a PAT or an Entra token, no Secret.
    AzureProvider,
}

/// The flags that decide the mode.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModeFlags<'a> {
    pub(crate) url_is_ssh: bool,
    pub(crate) token_auth: bool,
    pub(crate) with_bearer_token: bool,
    pub(crate) ssh_hostname: Option<&'a str>,
    pub(crate) provider: Option<&'a str>,
}

impl GitMode {
    /// Picks the mode, refusing contradictory flags with a hint.
    pub(crate) fn from_flags(flags: ModeFlags<'_>) -> Result<GitMode, Hinted> {
        if flags.provider == Some("azure") {
            if flags.url_is_ssh || flags.ssh_hostname.is_some() {
                return Err(Hinted::new(
                    "`--provider azure` cannot be combined with SSH",
                    "workload identity only works over HTTPS: pass the repository's `https://dev.azure.com/...` URL and drop `--ssh-hostname`",
                ));
            }
            return Ok(GitMode::AzureProvider);
        }
        if flags.url_is_ssh {
            if flags.token_auth || flags.with_bearer_token {
                return Err(Hinted::new(
                    "`--token-auth` needs an HTTPS repository URL, but `--url` is an SSH URL",
                    "pass `--url https://dev.azure.com/{org}/{project}/_git/{repo}` for token auth, or drop `--token-auth` to use SSH",
                ));
            }
            return Ok(GitMode::Ssh);
        }
        if let Some(ssh_host) = flags.ssh_hostname {
            if flags.token_auth || flags.with_bearer_token {
                return Err(Hinted::new(
                    "`--ssh-hostname` selects SSH for the cluster and cannot be combined with `--token-auth`",
                    "drop `--token-auth` to push with the PAT and let the cluster use SSH, or drop `--ssh-hostname` to store the PAT in the cluster",
                ));
            }
            return Ok(GitMode::TokenPushSshSync {
                ssh_host: ssh_host.to_owned(),
            });
        }
        Ok(GitMode::Token {
            bearer: flags.with_bearer_token,
        })
    }

    /// Whether the cluster connects over SSH.
    pub(crate) fn cluster_uses_ssh(&self) -> bool {
        matches!(self, GitMode::Ssh | GitMode::TokenPushSshSync { .. })
    }

    /// A short name for summaries (`--output json`).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            GitMode::Token { bearer: false } => "token",
            GitMode::Token { bearer: true } => "bearer",
            GitMode::TokenPushSshSync { .. } => "token-push-ssh-sync",
            GitMode::Ssh => "ssh",
            GitMode::AzureProvider => "azure-workload-identity",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> ModeFlags<'static> {
        ModeFlags {
            url_is_ssh: false,
            token_auth: false,
            with_bearer_token: false,
            ssh_hostname: None,
            provider: None,
        }
    }

    #[test]
    fn https_url_implies_token_auth() {
        assert_eq!(
            GitMode::from_flags(flags()).unwrap(),
            GitMode::Token { bearer: false }
        );
        let bearer = ModeFlags {
            with_bearer_token: true,
            ..flags()
        };
        assert_eq!(
            GitMode::from_flags(bearer).unwrap(),
            GitMode::Token { bearer: true }
        );
    }

    #[test]
    fn ssh_hostname_selects_pat_push_and_ssh_sync() {
        let f = ModeFlags {
            ssh_hostname: Some("ssh.dev.azure.com"),
            ..flags()
        };
        assert_eq!(
            GitMode::from_flags(f).unwrap(),
            GitMode::TokenPushSshSync {
                ssh_host: "ssh.dev.azure.com".to_owned()
            }
        );
    }

    #[test]
    fn contradictions_are_refused() {
        let f = ModeFlags {
            url_is_ssh: true,
            token_auth: true,
            ..flags()
        };
        assert!(GitMode::from_flags(f).is_err());
        let f = ModeFlags {
            provider: Some("azure"),
            ssh_hostname: Some("h"),
            ..flags()
        };
        assert!(GitMode::from_flags(f).is_err());
    }
}
