//! `OpenPGP` commit signatures with the user's `GnuPG`, for flux's `--gpg-key-ring`,
//! `--gpg-key-id` and `--gpg-passphrase`.
//!
//! git itself signs by running `gpg`, and so does this: the key ring is imported into a
//! private, temporary `GnuPG` home (mode 0700, removed with its agent on drop), so the user's
//! own keyring is never touched, and the passphrase reaches `gpg` on a pipe, never in its
//! arguments. A pure-Rust `OpenPGP` stack would add a large dependency tree whose RSA code has
//! a known timing side channel.

use crate::ExposeSecret as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::SecretString;

/// Failure to sign with `GnuPG`; messages quote `gpg`'s diagnostics, which never contain the
/// passphrase.
#[derive(Debug, thiserror::Error)]
pub enum GpgError {
    /// `gpg` is not on `PATH`.
    #[error("`gpg` (GnuPG) is not installed, and `--gpg-key-ring` needs it")]
    NotInstalled,
    /// The key ring could not be read or imported.
    #[error("failed to import the GPG key ring `{}`: {message}", path.display())]
    Import {
        /// The key ring file.
        path: PathBuf,
        /// What gpg said.
        message: String,
    },
    /// No secret key that can sign (or none with the given id).
    #[error("the GPG key ring `{}` has no secret signing key{}", path.display(), key_id.as_ref().map(|k| format!(" `{k}`")).unwrap_or_default())]
    NoSigningKey {
        /// The key ring file.
        path: PathBuf,
        /// `--gpg-key-id`, if given.
        key_id: Option<String>,
    },
    /// Signing failed (e.g. a wrong passphrase).
    #[error("gpg failed to sign: {message}")]
    Sign {
        /// What gpg said.
        message: String,
    },
    /// Running gpg or handling its files failed.
    #[error("failed to run gpg: {source}")]
    Io {
        /// The I/O error.
        #[from]
        source: std::io::Error,
    },
}

impl GpgError {
    /// Advice for the user.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NotInstalled => Some("install GnuPG (e.g. `apt-get install gnupg`), or sign with `--ssh-signing-key-file`".to_owned()),
            Self::NoSigningKey { .. } => Some("export the secret key with `gpg --export-secret-keys KEYID > keyring.gpg` and pass its id with `--gpg-key-id`".to_owned()),
            Self::Sign { .. } => Some("check `--gpg-passphrase` (or FLUXBOOTSTRAP_GPG_PASSPHRASE)".to_owned()),
            _ => None,
        }
    }
}

/// A secret key imported into a private `GnuPG` home, ready to sign.
#[derive(Debug)]
pub struct GpgSigner {
    gpg: PathBuf,
    home: tempfile::TempDir,
    key_id: String,
    passphrase: Option<SecretString>,
}

impl GpgSigner {
    /// Imports `key_ring` (armored or binary) and picks `key_id`, or its first secret key that
    /// can sign.
    pub fn from_key_ring(
        key_ring: &Path,
        key_id: Option<&str>,
        passphrase: Option<SecretString>,
    ) -> Result<GpgSigner, GpgError> {
        let gpg = which::which("gpg").map_err(|_| GpgError::NotInstalled)?;
        let home = tempfile::Builder::new()
            .prefix("fluxbootstrap-gnupg-")
            .tempdir()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700))?;
        }
        let mut signer = GpgSigner {
            gpg,
            home,
            key_id: String::new(),
            passphrase,
        };
        let import = signer
            .command()
            .arg("--import")
            .arg(key_ring)
            .stdin(Stdio::null())
            .output()?;
        if !import.status.success() {
            return Err(GpgError::Import {
                path: key_ring.to_owned(),
                message: last_line(&import.stderr),
            });
        }
        let listing = signer
            .command()
            .args(["--list-secret-keys", "--with-colons"])
            .stdin(Stdio::null())
            .output()?;
        let listing = String::from_utf8_lossy(&listing.stdout);
        let wanted = key_id.map(|k| k.trim_start_matches("0x").to_ascii_uppercase());
        let chosen = listing
            .lines()
            .filter(|line| line.starts_with("sec:") || line.starts_with("ssb:"))
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                let id = (*fields.get(4)?).to_owned();
                let can_sign = fields.get(11).is_some_and(|caps| caps.contains('s'));
                can_sign.then_some(id)
            })
            .find(|id| {
                wanted
                    .as_ref()
                    .is_none_or(|w| id.to_ascii_uppercase().ends_with(w.as_str()))
            })
            .ok_or_else(|| GpgError::NoSigningKey {
                path: key_ring.to_owned(),
                key_id: key_id.map(str::to_owned),
            })?;
        signer.key_id = chosen;
        Ok(signer)
    }

    /// The long id of the key that signs.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The armored detached signature of `payload`.
    pub fn sign(&self, payload: &[u8]) -> Result<String, GpgError> {
        let input = self.home.path().join("payload");
        std::fs::write(&input, payload)?;
        let mut child = self
            .command()
            .args(["--pinentry-mode", "loopback", "--passphrase-fd", "0"])
            .args(["--local-user", &format!("{}!", self.key_id)])
            .args(["--armor", "--detach-sign", "--output", "-"])
            .arg(&input)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        {
            let mut stdin = child.stdin.take().expect("stdin is piped");
            let passphrase = self
                .passphrase
                .as_ref()
                .map_or("", SecretString::expose_secret);
            // gpg reads one line from the descriptor.
            let _ = stdin.write_all(format!("{passphrase}\n").as_bytes());
        }
        let out = child.wait_with_output()?;
        let _ = std::fs::remove_file(&input);
        if !out.status.success() {
            return Err(GpgError::Sign {
                message: last_line(&out.stderr),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.gpg);
        // The user's PAT or passphrase is ours, not the child's.
        cmd.env_remove(crate::SECRET_ENV)
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--batch", "--no-tty", "--yes", "--quiet"]);
        cmd
    }
}

impl Drop for GpgSigner {
    /// Stops the agent gpg started for the private home, before the home is removed.
    fn drop(&mut self) {
        let gpgconf = self.gpg.with_file_name("gpgconf");
        let _ = Command::new(if gpgconf.exists() {
            gpgconf
        } else {
            PathBuf::from("gpgconf")
        })
        .arg("--homedir")
        .arg(self.home.path())
        .args(["--kill", "gpg-agent"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    }
}

fn last_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("no diagnostics")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A passphrase-protected key ring made with gpg, signed with and verified by gpg.
    #[test]
    fn signs_what_gpg_verifies_and_refuses_a_wrong_passphrase() {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path().join("home");
        std::fs::create_dir(&home).expect("mkdir");
        let gpg = |args: &[&str]| {
            let out = Command::new("gpg")
                .arg("--homedir")
                .arg(&home)
                .args(["--batch", "--yes", "--pinentry-mode", "loopback"])
                .args(args)
                .output()
                .expect("gpg runs (install gnupg)");
            assert!(
                out.status.success(),
                "gpg {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        gpg(&[
            "--passphrase",
            "pw",
            "--quick-gen-key",
            "Flux Test <flux@example.invalid>",
            "ed25519",
            "sign",
            "never",
        ]);
        let ring = dir.path().join("ring.asc");
        std::fs::write(
            &ring,
            gpg(&["--passphrase", "pw", "--armor", "--export-secret-keys"]),
        )
        .expect("writable");

        let signer =
            GpgSigner::from_key_ring(&ring, None, Some(SecretString::from("pw".to_owned())))
                .expect("imports");
        let payload = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nmessage\n";
        let signature = signer.sign(payload).expect("signs");
        assert!(
            signature.starts_with("-----BEGIN PGP SIGNATURE-----"),
            "{signature}"
        );
        let (sig, data) = (dir.path().join("s.asc"), dir.path().join("data"));
        std::fs::write(&sig, &signature).expect("writable");
        std::fs::write(&data, payload).expect("writable");
        gpg(&[
            "--verify",
            sig.to_str().expect("utf-8"),
            data.to_str().expect("utf-8"),
        ]);

        let wrong =
            GpgSigner::from_key_ring(&ring, None, Some(SecretString::from("nope".to_owned())))
                .expect("imports");
        assert!(matches!(wrong.sign(payload), Err(GpgError::Sign { .. })));
        assert!(matches!(
            GpgSigner::from_key_ring(&ring, Some("DEADBEEF"), None),
            Err(GpgError::NoSigningKey { .. })
        ));
    }
}
