//! The data of the source Secret each mode stores, key for key what flux's
//! `ReconcileSourceSecret` writes, and nothing stale from an earlier mode.

use std::collections::BTreeMap;

use fluxbootstrap_auth::{SecretBytes, SecretString};

/// Token auth: `username` and `password` (or `bearerToken` alone with `--with-bearer-token`),
/// and `ca.crt` with `--ca-file`.
#[must_use]
pub fn token_secret(
    username: &str,
    pat: &SecretString,
    bearer: bool,
    ca_pem: Option<&[u8]>,
) -> BTreeMap<String, SecretBytes> {
    let mut data = BTreeMap::new();
    if bearer {
        data.insert(
            "bearerToken".to_owned(),
            fluxbootstrap_auth::secret_bytes(pat),
        );
    } else {
        data.insert(
            "username".to_owned(),
            SecretBytes::from(username.as_bytes().to_vec()),
        );
        data.insert("password".to_owned(), fluxbootstrap_auth::secret_bytes(pat));
    }
    if let Some(ca) = ca_pem {
        data.insert("ca.crt".to_owned(), SecretBytes::from(ca.to_vec()));
    }
    data
}

/// The SSH modes: the private key as given (`identity`), its public key with a newline
/// (`identity.pub`), the host's `known_hosts` lines, and the key's passphrase as `password`.
#[must_use]
pub fn ssh_secret(
    private_key: &SecretString,
    public_openssh: &str,
    known_hosts: &str,
    passphrase: Option<&SecretString>,
) -> BTreeMap<String, SecretBytes> {
    let mut data = BTreeMap::new();
    data.insert(
        "identity".to_owned(),
        fluxbootstrap_auth::secret_bytes(private_key),
    );
    data.insert(
        "identity.pub".to_owned(),
        SecretBytes::from(format!("{public_openssh}\n").into_bytes()),
    );
    data.insert(
        "known_hosts".to_owned(),
        SecretBytes::from(known_hosts.trim().as_bytes().to_vec()),
    );
    if let Some(passphrase) = passphrase {
        data.insert(
            "password".to_owned(),
            fluxbootstrap_auth::secret_bytes(passphrase),
        );
    }
    data
}

#[cfg(test)]
mod tests {
    use fluxbootstrap_auth::ExposeSecret as _;

    use super::*;

    fn text(data: &BTreeMap<String, SecretBytes>, key: &str) -> String {
        String::from_utf8(data[key].expose_secret().to_vec()).unwrap()
    }

    #[test]
    fn token_secrets_hold_what_flux_writes() {
        let pat = SecretString::from("pat".to_owned());
        let basic = token_secret("git", &pat, false, Some(b"CA"));
        assert_eq!(
            basic.keys().collect::<Vec<_>>(),
            ["ca.crt", "password", "username"]
        );
        assert_eq!(text(&basic, "username"), "git");
        assert_eq!(text(&basic, "password"), "pat");
        let bearer = token_secret("git", &pat, true, None);
        assert_eq!(bearer.keys().collect::<Vec<_>>(), ["bearerToken"]);
    }

    #[test]
    fn ssh_secrets_hold_the_key_its_public_half_and_the_host() {
        let key = SecretString::from("-----BEGIN PRIVATE KEY-----".to_owned());
        let data = ssh_secret(&key, "ssh-rsa AAAA", "host ssh-rsa AAAA\n", None);
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            ["identity", "identity.pub", "known_hosts"]
        );
        assert_eq!(text(&data, "identity.pub"), "ssh-rsa AAAA\n");
        assert_eq!(text(&data, "known_hosts"), "host ssh-rsa AAAA");
        let passphrase = SecretString::from("p".to_owned());
        let data = ssh_secret(&key, "ssh-rsa AAAA", "h", Some(&passphrase));
        assert_eq!(text(&data, "password"), "p");
    }
}
