//! An Entra ID access token for Azure DevOps from the Azure CLI.
//!
//! `az account get-access-token --resource <Azure DevOps app id>` is the documented way to
//! get a token for a signed-in user; the token is read from `az`'s stdout (never from an
//! argument or a file) and its expiry is kept so callers can refresh before long pushes.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::SecretString;
use crate::error::AuthError;

/// The Entra ID resource (application) id of Azure DevOps.
pub const AZURE_DEVOPS_RESOURCE: &str = "499b84ac-1321-427f-aa17-267ca6975798";

/// An Entra ID access token, sent to Azure DevOps as `Authorization: Bearer`.
#[derive(Debug, Clone)]
pub struct EntraToken {
    /// The token.
    pub token: SecretString,
    /// When it expires, if `az` said (`expires_on`, az 2.54 and later).
    pub expires_on: Option<SystemTime>,
    /// The tenant that issued it, if `az` said.
    pub tenant: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzToken {
    access_token: String,
    #[serde(default, rename = "expires_on")]
    expires_on: Option<u64>,
    #[serde(default)]
    tenant: Option<String>,
}

/// Gets a token from the Azure CLI: `az` is `az` when given, else found on `PATH`.
pub async fn azure_cli_token(az: Option<PathBuf>) -> Result<EntraToken, AuthError> {
    azure_cli_token_with_path(az, std::env::var_os("PATH")).await
}

/// [`azure_cli_token`] with an explicit search path instead of the process's `PATH`.
pub async fn azure_cli_token_with_path(
    az: Option<PathBuf>,
    path: Option<OsString>,
) -> Result<EntraToken, AuthError> {
    let az = locate(az, path)?;
    // `az` may have been written a moment ago (an update, or a test's stand-in) while another
    // thread forked: exec then fails with ETXTBSY until that child execs. Retry briefly.
    let mut attempts = 0;
    let output = loop {
        let result = tokio::process::Command::new(&az)
            .args([
                "account",
                "get-access-token",
                "--resource",
                AZURE_DEVOPS_RESOURCE,
                "--output",
                "json",
            ])
            // The user's PAT or passphrase is ours, not the child's.
            .env_remove(crate::SECRET_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await;
        match result {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 20 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => {
                break other.map_err(|source| AuthError::AzSpawn {
                    path: az.clone(),
                    source,
                })?;
            }
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = stderr
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .unwrap_or("no error message")
            .to_owned();
        let lower = stderr.to_lowercase();
        if lower.contains("az login") || lower.contains("not logged in") {
            return Err(AuthError::AzNotLoggedIn { message });
        }
        return Err(AuthError::AzFailed {
            status: output.status.to_string(),
            message,
        });
    }
    let parsed: AzToken =
        serde_json::from_slice(&output.stdout).map_err(|source| AuthError::AzOutput { source })?;
    Ok(EntraToken {
        token: SecretString::from(parsed.access_token),
        expires_on: parsed
            .expires_on
            .map(|secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs)),
        tenant: parsed.tenant,
    })
}

fn locate(az: Option<PathBuf>, path: Option<OsString>) -> Result<PathBuf, AuthError> {
    if let Some(az) = az {
        return if az.is_file() {
            Ok(az)
        } else {
            Err(AuthError::AzMissing { path: Some(az) })
        };
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    which::which_in("az", path, cwd).map_err(|_| AuthError::AzMissing { path: None })
}
