//! How the plugin and the cluster authenticate to Azure DevOps, decided from the flags.
//!
//! flux turns an HTTPS URL without `--token-auth` into a broken `ssh://git@dev.azure.com/...`
//! URL; here an HTTPS URL implies token auth, `--ssh-hostname` selects "PAT push, SSH sync",
//! an SSH URL selects SSH for both, and `--provider azure` stores no credential at all.

use crate::PlanError;

/// The authentication mode of one bootstrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitMode {
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
    AzureProvider {
        /// `--azure-client-id`: the managed identity the controllers' service accounts are
        /// federated with.
        client_id: String,
    },
}

/// The flags that decide the mode.
#[derive(Debug, Clone, Copy)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "one field per command-line flag"
)]
pub struct ModeFlags<'a> {
    /// `--url` is an `ssh://` or scp-like URL.
    pub url_is_ssh: bool,
    /// `--token-auth`.
    pub token_auth: bool,
    /// `--with-bearer-token`.
    pub with_bearer_token: bool,
    /// `--ssh-hostname`.
    pub ssh_hostname: Option<&'a str>,
    /// `--provider`.
    pub provider: Option<&'a str>,
    /// `--azure-client-id`.
    pub azure_client_id: Option<&'a str>,
    /// `--cluster-pat mint`: only token auth stores a PAT in the cluster, so only it can mint
    /// one.
    pub mint_cluster_pat: bool,
}

impl GitMode {
    /// Picks the mode, refusing contradictory flags with a hint.
    pub fn from_flags(flags: ModeFlags<'_>) -> Result<GitMode, PlanError> {
        let mode = Self::from_auth_flags(flags)?;
        if flags.mint_cluster_pat && !matches!(mode, GitMode::Token { .. }) {
            return Err(PlanError::new(
                format!(
                    "`--cluster-pat mint` needs token auth, but the mode is `{}`",
                    mode.name()
                ),
                "the cluster stores a PAT only in token auth: pass the repository's HTTPS URL without `--ssh-hostname` or `--provider azure`, or drop `--cluster-pat mint`",
            ));
        }
        Ok(mode)
    }

    fn from_auth_flags(flags: ModeFlags<'_>) -> Result<GitMode, PlanError> {
        if flags.provider == Some("azure") {
            if flags.url_is_ssh || flags.ssh_hostname.is_some() {
                return Err(PlanError::new(
                    "`--provider azure` cannot be combined with SSH",
                    "workload identity only works over HTTPS: pass the repository's `https://dev.azure.com/...` URL and drop `--ssh-hostname`",
                ));
            }
            let Some(client_id) = flags
                .azure_client_id
                .map(str::trim)
                .filter(|c| !c.is_empty())
            else {
                return Err(PlanError::new(
                    "`--provider azure` needs `--azure-client-id`",
                    "pass the client ID of the managed identity federated with the controllers' service accounts, e.g. `--azure-client-id \"$(az identity show -g <group> -n <identity> --query clientId -o tsv)\"`",
                ));
            };
            if !is_guid(client_id) {
                return Err(PlanError::new(
                    format!("`--azure-client-id {client_id}` is not a client ID"),
                    "a client ID is a GUID such as `8d2f4c1e-6a0b-4f1e-9c3d-2b7a5e9f0c41`: `az identity show -g <group> -n <identity> --query clientId -o tsv` prints it",
                ));
            }
            return Ok(GitMode::AzureProvider {
                client_id: client_id.to_owned(),
            });
        }
        if flags.url_is_ssh {
            if flags.token_auth || flags.with_bearer_token {
                return Err(PlanError::new(
                    "`--token-auth` needs an HTTPS repository URL, but `--url` is an SSH URL",
                    "pass `--url https://dev.azure.com/{org}/{project}/_git/{repo}` for token auth, or drop `--token-auth` to use SSH",
                ));
            }
            return Ok(GitMode::Ssh);
        }
        if let Some(ssh_host) = flags.ssh_hostname {
            if flags.token_auth || flags.with_bearer_token {
                return Err(PlanError::new(
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

    /// The managed identity's client ID (`--provider azure`).
    pub fn azure_client_id(&self) -> Option<&str> {
        match self {
            Self::AzureProvider { client_id } => Some(client_id),
            _ => None,
        }
    }

    /// The SSH `host[:port]` the cluster connects to, in the SSH modes.
    pub fn cluster_ssh_host(&self, repo: &fluxbootstrap_azdo::RepoUrl) -> Option<String> {
        match self {
            Self::TokenPushSshSync { ssh_host } => Some(ssh_host.clone()),
            Self::Ssh => Some(repo.ssh_host()),
            Self::Token { .. } | Self::AzureProvider { .. } => None,
        }
    }

    /// Whether the cluster connects over SSH.
    pub fn cluster_uses_ssh(&self) -> bool {
        matches!(self, GitMode::Ssh | GitMode::TokenPushSshSync { .. })
    }

    /// A short name for summaries (`--output json`).
    pub fn name(&self) -> &'static str {
        match self {
            GitMode::Token { bearer: false } => "token",
            GitMode::Token { bearer: true } => "bearer",
            GitMode::TokenPushSshSync { .. } => "token-push-ssh-sync",
            GitMode::Ssh => "ssh",
            GitMode::AzureProvider { .. } => "azure-workload-identity",
        }
    }
}

/// `8-4-4-4-12` hexadecimal digits, as Entra prints a client ID.
fn is_guid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
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
            azure_client_id: None,
            mint_cluster_pat: false,
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
            azure_client_id: Some("8d2f4c1e-6a0b-4f1e-9c3d-2b7a5e9f0c41"),
            ..flags()
        };
        assert!(GitMode::from_flags(f).is_err());
    }

    #[test]
    fn minting_a_cluster_pat_needs_token_auth() {
        let mint = ModeFlags {
            mint_cluster_pat: true,
            ..flags()
        };
        assert_eq!(
            GitMode::from_flags(mint).unwrap(),
            GitMode::Token { bearer: false }
        );
        let err = GitMode::from_flags(ModeFlags {
            url_is_ssh: true,
            ..mint
        })
        .unwrap_err();
        assert!(err.hint().contains("drop `--cluster-pat mint`"), "{err}");
    }

    #[test]
    fn provider_azure_needs_a_client_id_guid() {
        let azure = |client_id| ModeFlags {
            provider: Some("azure"),
            azure_client_id: client_id,
            ..flags()
        };
        for missing in [None, Some(""), Some("  ")] {
            let err = GitMode::from_flags(azure(missing)).unwrap_err();
            assert_eq!(
                err.to_string(),
                "`--provider azure` needs `--azure-client-id`"
            );
        }
        let err = GitMode::from_flags(azure(Some("my-identity"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`--azure-client-id my-identity` is not a client ID"
        );
        assert_eq!(
            GitMode::from_flags(azure(Some("8D2F4C1E-6a0b-4f1e-9c3d-2b7a5e9f0c41")))
                .unwrap()
                .azure_client_id(),
            Some("8D2F4C1E-6a0b-4f1e-9c3d-2b7a5e9f0c41")
        );
    }
}
