//! SSH signatures (`ssh-keygen -Y sign`, the SSHSIG format of OpenSSH's `PROTOCOL.sshsig`), for
//! signing commits like `flux bootstrap --ssh-signing-key-file` and `git -c gpg.format=ssh`.
//!
//! Written on OpenSSL, which already holds every key this crate loads: the pure-Rust RSA
//! signer behind `ssh-key`'s own SSHSIG support has a known timing side channel, and a key
//! that signs the commits a cluster applies deserves constant-time code.

use crate::ExposeSecret as _;
use base64::Engine as _;
use openssl::hash::{MessageDigest, hash};
use openssl::pkey::PKey;
use openssl::sign::Signer;

use crate::ssh_key::{EcdsaCurve, KeyAlgorithm, KeyError, SshKeyPair};

/// The namespace git signs commits and tags in.
pub const GIT_NAMESPACE: &str = "git";

const MAGIC: &[u8] = b"SSHSIG";
const HASH_ALGORITHM: &str = "sha512";

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("SSH strings are shorter than 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// An SSH `mpint`: big-endian, no redundant leading zeros, a zero byte before a set high bit.
fn put_mpint(out: &mut Vec<u8>, magnitude: &[u8]) {
    let start = magnitude
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(magnitude.len());
    let mut value = magnitude[start..].to_vec();
    if value.first().is_some_and(|b| b & 0x80 != 0) {
        value.insert(0, 0);
    }
    put_string(out, &value);
}

/// The armored SSH signature of `message` in `namespace`, with SHA-512 as the message hash.
pub fn sign_sshsig(pair: &SshKeyPair, namespace: &str, message: &[u8]) -> Result<String, KeyError> {
    let convert = |source| KeyError::OpenSsl {
        action: "sign with",
        what: "SSH signing",
        source,
    };
    let pkey = PKey::private_key_from_pem(pair.private_pkcs8_pem.expose_secret().as_bytes())
        .map_err(convert)?;
    let public_blob = pair
        .public_openssh
        .split_whitespace()
        .nth(1)
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .ok_or(KeyError::UnsupportedFormat)?;
    let digest = hash(MessageDigest::sha512(), message).map_err(convert)?;
    let mut signed = MAGIC.to_vec();
    put_string(&mut signed, namespace.as_bytes());
    put_string(&mut signed, b"");
    put_string(&mut signed, HASH_ALGORITHM.as_bytes());
    put_string(&mut signed, &digest);

    let (algorithm, signature) = match pair.algorithm {
        KeyAlgorithm::Rsa { .. } => {
            let mut signer = Signer::new(MessageDigest::sha512(), &pkey).map_err(convert)?;
            (
                "rsa-sha2-512",
                signer.sign_oneshot_to_vec(&signed).map_err(convert)?,
            )
        }
        KeyAlgorithm::Ed25519 => {
            let mut signer = Signer::new_without_digest(&pkey).map_err(convert)?;
            (
                "ssh-ed25519",
                signer.sign_oneshot_to_vec(&signed).map_err(convert)?,
            )
        }
        KeyAlgorithm::Ecdsa(curve) => {
            let (name, digest) = match curve {
                EcdsaCurve::P256 => ("ecdsa-sha2-nistp256", MessageDigest::sha256()),
                EcdsaCurve::P384 => ("ecdsa-sha2-nistp384", MessageDigest::sha384()),
                EcdsaCurve::P521 => ("ecdsa-sha2-nistp521", MessageDigest::sha512()),
            };
            let mut signer = Signer::new(digest, &pkey).map_err(convert)?;
            let der = signer.sign_oneshot_to_vec(&signed).map_err(convert)?;
            let parsed = openssl::ecdsa::EcdsaSig::from_der(&der).map_err(convert)?;
            let mut inner = Vec::new();
            put_mpint(&mut inner, &parsed.r().to_vec());
            put_mpint(&mut inner, &parsed.s().to_vec());
            (name, inner)
        }
    };
    let mut signature_blob = Vec::new();
    put_string(&mut signature_blob, algorithm.as_bytes());
    put_string(&mut signature_blob, &signature);

    let mut blob = MAGIC.to_vec();
    blob.extend_from_slice(&1_u32.to_be_bytes());
    put_string(&mut blob, &public_blob);
    put_string(&mut blob, namespace.as_bytes());
    put_string(&mut blob, b"");
    put_string(&mut blob, HASH_ALGORITHM.as_bytes());
    put_string(&mut blob, &signature_blob);

    let encoded = base64::engine::general_purpose::STANDARD.encode(&blob);
    let mut armored = String::from("-----BEGIN SSH SIGNATURE-----\n");
    // ssh-keygen wraps at 70 columns.
    for line in encoded.as_bytes().chunks(70) {
        armored.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        armored.push('\n');
    }
    armored.push_str("-----END SSH SIGNATURE-----");
    Ok(armored)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::process::Command;

    use super::*;
    use crate::ssh_key::{generate_ecdsa, generate_ed25519, generate_rsa};

    /// Every key type's signature is one `ssh-keygen -Y verify` accepts.
    #[test]
    fn ssh_keygen_verifies_the_signatures() {
        assert!(
            Command::new("ssh-keygen").arg("-?").output().is_ok(),
            "ssh-keygen is missing: install openssh-client (`cargo xtask test` does this)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let message = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor Flux <> 0 +0000\n";
        for pair in [
            generate_rsa(2048).expect("rsa"),
            generate_ed25519().expect("ed25519"),
            generate_ecdsa(EcdsaCurve::P256).expect("p256"),
            generate_ecdsa(EcdsaCurve::P384).expect("p384"),
        ] {
            let signature = sign_sshsig(&pair, GIT_NAMESPACE, message).expect("signs");
            let signers = dir.path().join("allowed_signers");
            std::fs::write(&signers, format!("flux {}\n", pair.public_openssh)).expect("writable");
            let sig = dir.path().join("message.sig");
            std::fs::write(&sig, format!("{signature}\n")).expect("writable");
            let mut child = Command::new("ssh-keygen")
                .args(["-Y", "verify", "-n", GIT_NAMESPACE, "-I", "flux", "-f"])
                .arg(&signers)
                .arg("-s")
                .arg(&sig)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("ssh-keygen runs");
            child
                .stdin
                .take()
                .expect("piped")
                .write_all(message)
                .expect("writes");
            let out = child.wait_with_output().expect("ssh-keygen finishes");
            assert!(
                out.status.success(),
                "{:?}: {}{}",
                pair.algorithm,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
