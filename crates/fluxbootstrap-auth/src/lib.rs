//! Credentials for talking to Azure DevOps and for the cluster's Flux Secret.
//!
//! Every PAT, bearer token, private key and passphrase in the project travels in a
//! [`SecretString`] or [`SecretBytes`], whose `Debug` prints `[redacted]` and which
//! implement no `Display`, so a secret cannot end up in a log line or an error by accident.
//!
//! Besides the secret types this crate finds the credentials a bootstrap needs: the PAT
//! (flag, `GIT_PASSWORD`, piped stdin or a masked prompt, in flux's order), an Entra ID
//! token from the Azure CLI, SSH key pairs (generated with OpenSSL or loaded from a file)
//! and SSH host keys (scanned, and pinned for `ssh.dev.azure.com`).
//!
//! ```
//! use fluxbootstrap_auth::SecretString;
//! let pat = SecretString::from("s3cr3t".to_owned());
//! assert_eq!(format!("{pat:?}"), "SecretString([redacted])");
//! assert_eq!(pat.expose_secret(), "s3cr3t");
//! ```

mod azure_cli;
mod error;
mod gpg;
mod host_port;
mod known_hosts;
mod pat;
mod secret;
mod ssh_key;
mod ssh_signature;

pub use azure_cli::{
    AZURE_DEVOPS_RESOURCE, EntraToken, azure_cli_token, azure_cli_token_with_path,
};
pub use error::AuthError;
pub use gpg::{GpgError, GpgSigner};
pub use host_port::split_host_port;
pub use known_hosts::{
    AZURE_DEVOPS_HOST_KEY, AZURE_DEVOPS_HOST_KEY_SHA256, AZURE_DEVOPS_LEGACY_SSH_HOST,
    AZURE_DEVOPS_SSH_HOST, HostKeyError, ScannedHostKey, is_azure_devops_ssh_host,
    known_hosts_entries, known_hosts_fingerprint, known_hosts_host, pinned_known_hosts,
    scan_host_key,
};
pub use pat::{PatSource, resolve_pat};
/// The environment variable the user's PAT or key passphrase comes in (as for flux); every
/// child process the plugin starts gets an environment without it.
pub const SECRET_ENV: &str = "GIT_PASSWORD";

pub use secret::{ExposeSecret, SecretBytes, SecretString, same_secret_data, secret_bytes};
pub use ssh_key::{
    EcdsaCurve, KeyAlgorithm, KeyError, SshKeyPair, check_private_key_format, generate,
    generate_ecdsa, generate_ed25519, generate_rsa, load_private_key, write_private_file,
};
pub use ssh_signature::{GIT_NAMESPACE, sign_sshsig};

/// The advice for `err` when it is one of this crate's errors, else `None`. The binary's error
/// report asks each crate through this one function, so a new error type here is listed here
/// and nowhere else.
#[must_use]
pub fn hint_for(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(err) = err.downcast_ref::<AuthError>() {
        return err.hint();
    }
    if let Some(err) = err.downcast_ref::<KeyError>() {
        return err.hint();
    }
    if let Some(err) = err.downcast_ref::<HostKeyError>() {
        return err.hint();
    }
    if let Some(err) = err.downcast_ref::<GpgError>() {
        return err.hint();
    }
    None
}
