//! Generated keys cross-checked with `ssh-keygen`, and keys written by `ssh-keygen` loaded.

use fluxbootstrap_auth::ExposeSecret as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use fluxbootstrap_auth::{
    EcdsaCurve, KeyAlgorithm, KeyError, SecretString, SshKeyPair, generate, load_private_key,
    write_private_file,
};

fn ssh_keygen_public(path: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen -y: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn mode(path: &Path) -> u32 {
    fs_err::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn generated_keys_are_what_ssh_keygen_reads() {
    let dir = tempfile::tempdir().unwrap();
    for (i, algorithm) in [
        KeyAlgorithm::Rsa { bits: 3072 },
        KeyAlgorithm::Ecdsa(EcdsaCurve::P384),
        KeyAlgorithm::Ed25519,
    ]
    .into_iter()
    .enumerate()
    {
        let pair = generate(algorithm).unwrap();
        let openssh = dir.path().join(format!("id{i}"));
        pair.write_openssh(&openssh, "flux").unwrap();
        assert_eq!(mode(&openssh), 0o600);
        assert_eq!(ssh_keygen_public(&openssh), pair.public_openssh);
        let pub_line = fs_err::read_to_string(openssh.with_extension("pub")).unwrap();
        assert_eq!(pub_line, format!("{} flux\n", pair.public_openssh));

        // flux's `identity`: PKCS#8 PEM.
        let pkcs8 = dir.path().join(format!("identity{i}"));
        write_private_file(&pkcs8, pair.private_pkcs8_pem.expose_secret().as_bytes()).unwrap();
        assert_eq!(mode(&pkcs8), 0o600);
        // OpenSSH cannot read PKCS#8 Ed25519 (Go, and so flux, can); check the others.
        if algorithm != KeyAlgorithm::Ed25519 {
            assert_eq!(ssh_keygen_public(&pkcs8), pair.public_openssh);
        }

        let out = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(&openssh)
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains(&pair.fingerprint));
    }
}

#[test]
fn write_private_file_tightens_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    fs_err::write(&path, "old").unwrap();
    fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_private_file(&path, b"new").unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(fs_err::read_to_string(&path).unwrap(), "new");
}

/// Runs `ssh-keygen` to create a key at `dir/name`; returns (private text, public line without comment).
fn keygen(dir: &Path, name: &str, args: &[&str]) -> (SecretString, String) {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-C", "test"])
        .args(args)
        .arg("-f")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let public = fs_err::read_to_string(path.with_extension("pub")).unwrap();
    let public = public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    (
        SecretString::from(fs_err::read_to_string(&path).unwrap()),
        public,
    )
}

fn check(loaded: &SshKeyPair, public: &str) {
    assert_eq!(loaded.public_openssh, public);
}

#[test]
fn loads_every_format_ssh_keygen_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str], Option<&str>)] = &[
        ("openssh_rsa", &["-t", "rsa", "-b", "2048", "-N", ""], None),
        (
            "openssh_rsa_enc",
            &["-t", "rsa", "-b", "2048", "-N", "hunter2"],
            Some("hunter2"),
        ),
        (
            "pem_rsa",
            &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""],
            None,
        ),
        (
            "pem_rsa_enc",
            &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "hunter2"],
            Some("hunter2"),
        ),
        (
            "pkcs8_rsa_enc",
            &["-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", "hunter2"],
            Some("hunter2"),
        ),
        (
            "pem_ecdsa",
            &["-t", "ecdsa", "-b", "256", "-m", "PEM", "-N", ""],
            None,
        ),
        (
            "openssh_ecdsa_enc",
            &["-t", "ecdsa", "-b", "521", "-N", "hunter2"],
            Some("hunter2"),
        ),
        (
            "openssh_ed25519_enc",
            &["-t", "ed25519", "-N", "hunter2"],
            Some("hunter2"),
        ),
    ];
    for (name, args, passphrase) in cases {
        let (private, public) = keygen(dir.path(), name, args);
        let passphrase = passphrase.map(secret);
        let loaded = match load_private_key(&private, passphrase.as_ref()) {
            Ok(loaded) => loaded,
            // ssh-key 0.6 cannot decode ECDSA scalars OpenSSH wrote without their leading zero
            // byte (random: ~1 in 4 P-521 keys); the error says so and suggests PEM.
            Err(KeyError::Undecodable { .. }) if name.contains("ecdsa") => continue,
            Err(e) => panic!("{name}: {e}"),
        };
        check(&loaded, &public);
        // The loaded key round-trips through what we store.
        check(
            &load_private_key(&loaded.private_pkcs8_pem, None).unwrap(),
            &public,
        );
        check(
            &load_private_key(&loaded.private_openssh, None).unwrap(),
            &public,
        );
        if passphrase.is_some() {
            let err = load_private_key(&private, None).unwrap_err();
            assert!(
                matches!(err, KeyError::PassphraseRequired),
                "{name}: {err:?}"
            );
            let err = load_private_key(&private, Some(&secret("wrong"))).unwrap_err();
            assert!(matches!(err, KeyError::WrongPassphrase), "{name}: {err:?}");
            assert!(err.hint().is_some());
            assert!(!format!("{err} {err:?}").contains("hunter2"));
        }
    }
}

#[test]
fn azure_devops_wants_rsa() {
    let dir = tempfile::tempdir().unwrap();
    let (private, _) = keygen(dir.path(), "ed", &["-t", "ed25519", "-N", ""]);
    let loaded = load_private_key(&private, None).unwrap();
    let err = loaded.ensure_accepted_by("ssh.dev.azure.com").unwrap_err();
    assert!(matches!(err, KeyError::NotRsaForAzureDevOps { .. }));
    loaded.ensure_accepted_by("github.com").unwrap();
    let (private, _) = keygen(dir.path(), "rsa", &["-t", "rsa", "-b", "2048", "-N", ""]);
    load_private_key(&private, None)
        .unwrap()
        .ensure_accepted_by("vs-ssh.visualstudio.com")
        .unwrap();
}
