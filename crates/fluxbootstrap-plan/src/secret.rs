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

/// flux's `.dockerconfigjson` for `--registry-creds`: `{"auths":{<registry>:{"username",
/// "password","auth"}}}` as Go's `json.Marshal` prints it (field order, `omitempty`, HTML
/// characters escaped), so the image pull Secret is byte-identical to flux's.
#[must_use]
pub fn docker_config_json(registry: &str, username: &str, password: &SecretString) -> SecretBytes {
    use base64::Engine as _;
    use fluxbootstrap_auth::ExposeSecret as _;
    let go_string = |text: &str| {
        serde_json::to_string(text)
            .expect("a string serializes")
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029")
    };
    let password = password.expose_secret();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let mut entry = Vec::new();
    if !username.is_empty() {
        entry.push(format!("\"username\":{}", go_string(username)));
    }
    if !password.is_empty() {
        entry.push(format!("\"password\":{}", go_string(password)));
    }
    entry.push(format!("\"auth\":{}", go_string(&auth)));
    SecretBytes::from(
        format!(
            "{{\"auths\":{{{}:{{{}}}}}}}",
            go_string(registry),
            entry.join(",")
        )
        .into_bytes(),
    )
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

    #[test]
    fn registry_credentials_marshal_like_go() {
        let password = SecretString::from("p<&>".to_owned());
        let json = docker_config_json("ghcr.io", "bot", &password);
        let text = String::from_utf8(json.expose_secret().to_vec()).unwrap();
        assert_eq!(
            text,
            "{\"auths\":{\"ghcr.io\":{\"username\":\"bot\",\"password\":\"p\\u003c\\u0026\\u003e\",\"auth\":\"Ym90OnA8Jj4=\"}}}"
        );
        let anonymous = docker_config_json("r", "", &SecretString::from(String::new()));
        let text = String::from_utf8(anonymous.expose_secret().to_vec()).unwrap();
        assert_eq!(text, "{\"auths\":{\"r\":{\"auth\":\"Og==\"}}}");
    }
}
