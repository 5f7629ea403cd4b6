//! SSH key pairs for the Flux `flux-system` Secret and for the user's Azure DevOps profile.
//!
//! Keys are generated with OpenSSL (RSA-4096 in pure Rust is 5-20x slower) and converted to
//! `ssh-key` types for the OpenSSH encodings. A pair carries the private key in the two
//! formats that matter: PKCS#8 PEM, which is what `flux bootstrap` stores as `identity`,
//! and the OpenSSH format that `ssh-keygen` writes for people.

use crate::ExposeSecret as _;
use std::path::Path;

use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use ssh_encoding::Decode;
use ssh_key::private::{Ed25519Keypair, Ed25519PrivateKey, KeypairData, RsaKeypair, RsaPrivateKey};
use ssh_key::public::{Ed25519PublicKey, RsaPublicKey};
use ssh_key::{HashAlg, LineEnding, Mpint, PrivateKey};

use crate::SecretString;
use crate::known_hosts::is_azure_devops_ssh_host;

/// An ECDSA curve, as in flux's `--ssh-ecdsa-curve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcdsaCurve {
    /// NIST P-256.
    P256,
    /// NIST P-384 (flux's default).
    P384,
    /// NIST P-521.
    P521,
}

impl EcdsaCurve {
    fn nid(self) -> Nid {
        match self {
            Self::P256 => Nid::X9_62_PRIME256V1,
            Self::P384 => Nid::SECP384R1,
            Self::P521 => Nid::SECP521R1,
        }
    }

    /// `(ssh algorithm, ssh curve name, scalar size)`.
    fn ssh_names(self) -> (&'static str, &'static str, usize) {
        match self {
            Self::P256 => ("ecdsa-sha2-nistp256", "nistp256", 32),
            Self::P384 => ("ecdsa-sha2-nistp384", "nistp384", 48),
            Self::P521 => ("ecdsa-sha2-nistp521", "nistp521", 66),
        }
    }
}

/// The kind of a key, as in flux's `--ssh-key-algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA with this modulus size.
    Rsa {
        /// Modulus size in bits.
        bits: u32,
    },
    /// ECDSA on this curve.
    Ecdsa(EcdsaCurve),
    /// Ed25519.
    Ed25519,
}

impl KeyAlgorithm {
    /// The RSA size Azure DevOps bootstraps use by default.
    pub const AZURE_DEVOPS_DEFAULT: Self = Self::Rsa { bits: 4096 };
}

/// A private key with its public half, ready to be stored.
#[derive(Debug, Clone)]
pub struct SshKeyPair {
    /// What kind of key this is.
    pub algorithm: KeyAlgorithm,
    /// The private key in the OpenSSH format (`-----BEGIN OPENSSH PRIVATE KEY-----`), unencrypted.
    pub private_openssh: SecretString,
    /// The private key as unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`): the
    /// `identity` entry of flux's Secret.
    pub private_pkcs8_pem: SecretString,
    /// The `authorized_keys` line without comment or newline (`ssh-rsa AAAA...`): the
    /// `identity.pub` entry of flux's Secret (flux adds a trailing newline) and what the
    /// user pastes into Azure DevOps.
    pub public_openssh: String,
    /// `SHA256:...` fingerprint of the public key, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

/// Failure to generate, load or use an SSH key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// RSA size out of range.
    #[error("RSA keys must have 2048 to 16384 bits, not {bits}")]
    RsaBits {
        /// The size asked for.
        bits: u32,
    },
    /// OpenSSL failed to generate or convert a key.
    #[error("failed to {action} the {what} key")]
    OpenSsl {
        /// What was being done (`generate`, `convert`).
        action: &'static str,
        /// Which key.
        what: &'static str,
        /// OpenSSL's error stack.
        #[source]
        source: openssl::error::ErrorStack,
    },
    /// `ssh-key` failed to encode or decode a key.
    #[error("failed to {action} the {what} key in the OpenSSH format")]
    Ssh {
        /// What was being done.
        action: &'static str,
        /// Which key.
        what: &'static str,
        /// The encoding error.
        #[source]
        source: ssh_key::Error,
    },
    /// The key file is encrypted but no passphrase was given.
    #[error("the private key is encrypted with a passphrase")]
    PassphraseRequired,
    /// The passphrase does not decrypt the key.
    #[error("the passphrase does not decrypt the private key")]
    WrongPassphrase,
    /// The text is not a private key we can read.
    #[error("the private key is not an OpenSSH or PEM (PKCS#1, PKCS#8, SEC1) private key")]
    UnsupportedFormat,
    /// An OpenSSH-format key that `ssh-key` cannot decode. Known case: ECDSA keys whose
    /// scalar OpenSSH wrote with a leading zero byte stripped (about 1 in 4 P-521 keys).
    #[error("failed to decode the OpenSSH private key")]
    Undecodable {
        /// The decoder's error.
        #[source]
        source: ssh_key::Error,
    },
    /// The key type cannot be used (DSA, security keys, ...).
    #[error("unsupported private key type `{key_type}`")]
    UnsupportedType {
        /// The type name.
        key_type: String,
    },
    /// Azure DevOps accepts only RSA user keys.
    #[error("Azure DevOps (`{host}`) accepts only RSA SSH keys, not {key_type}")]
    NotRsaForAzureDevOps {
        /// The SSH host.
        host: String,
        /// The offending type.
        key_type: String,
    },
    /// Writing a key file failed.
    #[error("failed to write `{}`", path.display())]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl KeyError {
    /// User-actionable advice for this error.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::RsaBits { .. } => Some("use `--ssh-rsa-bits` 2048, 3072 or 4096".to_owned()),
            Self::PassphraseRequired => Some("pass the key's passphrase with `--password` or `GIT_PASSWORD`".to_owned()),
            Self::WrongPassphrase => Some("check the passphrase; `ssh-keygen -y -f <file>` tests it".to_owned()),
            Self::UnsupportedFormat => Some(
                "convert the key with `ssh-keygen -p -f <file>` (OpenSSH format) or pass a PEM file; public keys and PuTTY keys are not accepted"
                    .to_owned(),
            ),
            Self::NotRsaForAzureDevOps { .. } => Some(
                "generate an RSA key (`--ssh-key-algorithm=rsa --ssh-rsa-bits=4096`) or pass an RSA private key"
                    .to_owned(),
            ),
            Self::UnsupportedType { .. } => Some("use an RSA key".to_owned()),
            Self::Undecodable { .. } => Some(
                "convert the key to PEM with `ssh-keygen -p -m PEM -f <file>` (it keeps the key), or use an RSA key".to_owned(),
            ),
            Self::OpenSsl { .. } | Self::Ssh { .. } | Self::Write { .. } => None,
        }
    }
}

/// Generates a key of the given kind.
pub fn generate(algorithm: KeyAlgorithm) -> Result<SshKeyPair, KeyError> {
    match algorithm {
        KeyAlgorithm::Rsa { bits } => generate_rsa(bits),
        KeyAlgorithm::Ecdsa(curve) => generate_ecdsa(curve),
        KeyAlgorithm::Ed25519 => generate_ed25519(),
    }
}

/// Generates an RSA key (2048 to 16384 bits) with OpenSSL.
pub fn generate_rsa(bits: u32) -> Result<SshKeyPair, KeyError> {
    if !(2048..=16384).contains(&bits) {
        return Err(KeyError::RsaBits { bits });
    }
    let rsa = Rsa::generate(bits).map_err(openssl_err("generate", "RSA"))?;
    let pkey = PKey::from_rsa(rsa).map_err(openssl_err("generate", "RSA"))?;
    pair_from_pkey(&pkey)
}

/// Generates an ECDSA key on `curve` with OpenSSL.
pub fn generate_ecdsa(curve: EcdsaCurve) -> Result<SshKeyPair, KeyError> {
    let group = EcGroup::from_curve_name(curve.nid()).map_err(openssl_err("generate", "ECDSA"))?;
    let key = EcKey::generate(&group).map_err(openssl_err("generate", "ECDSA"))?;
    let pkey = PKey::from_ec_key(key).map_err(openssl_err("generate", "ECDSA"))?;
    pair_from_pkey(&pkey)
}

/// Generates an Ed25519 key with OpenSSL.
pub fn generate_ed25519() -> Result<SshKeyPair, KeyError> {
    let pkey = PKey::generate_ed25519().map_err(openssl_err("generate", "Ed25519"))?;
    pair_from_pkey(&pkey)
}

/// Whether `text` is in a private key format [`load_private_key`] reads (OpenSSH or PEM),
/// checked without decrypting it, so a wrong file is named before any passphrase is asked.
pub fn check_private_key_format(text: &SecretString) -> Result<(), KeyError> {
    if is_private_key_format(text.expose_secret()) {
        Ok(())
    } else {
        Err(KeyError::UnsupportedFormat)
    }
}

fn is_private_key_format(text: &str) -> bool {
    text.contains("-----BEGIN OPENSSH PRIVATE KEY-----")
        || (text.contains("-----BEGIN ") && text.contains(" PRIVATE KEY-----"))
}

/// Loads a private key file's text: OpenSSH format (optionally passphrase-protected) or PEM
/// (PKCS#1 `RSA PRIVATE KEY`, PKCS#8 `PRIVATE KEY` / `ENCRYPTED PRIVATE KEY`, SEC1 `EC PRIVATE KEY`,
/// legacy `Proc-Type: 4,ENCRYPTED`).
pub fn load_private_key(
    text: &SecretString,
    passphrase: Option<&SecretString>,
) -> Result<SshKeyPair, KeyError> {
    let text = text.expose_secret();
    let passphrase = passphrase.filter(|p| !p.expose_secret().is_empty());
    if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
        let mut key = PrivateKey::from_openssh(text.trim())
            .map_err(|source| KeyError::Undecodable { source })?;
        if key.is_encrypted() {
            let passphrase = passphrase.ok_or(KeyError::PassphraseRequired)?;
            // A wrong passphrase shows as mismatched check integers (`Crypto`); anything
            // else is a decoding problem with the right passphrase.
            key = key.decrypt(passphrase.expose_secret().as_bytes()).map_err(
                |source| match source {
                    ssh_key::Error::Crypto => KeyError::WrongPassphrase,
                    source => KeyError::Undecodable { source },
                },
            )?;
        }
        let pkey = pkey_from_ssh(key.key_data())?;
        return pair_from_pkey(&pkey);
    }
    if !is_private_key_format(text) {
        return Err(KeyError::UnsupportedFormat);
    }
    let encrypted = text.contains("ENCRYPTED");
    if encrypted && passphrase.is_none() {
        return Err(KeyError::PassphraseRequired);
    }
    // The callback form stops OpenSSL from asking on the terminal by itself.
    let pkey = PKey::private_key_from_pem_callback(text.as_bytes(), |buf| {
        let Some(passphrase) = passphrase else {
            return Ok(0);
        };
        let bytes = passphrase.expose_secret().as_bytes();
        if bytes.len() > buf.len() {
            return Ok(0);
        }
        buf[..bytes.len()].copy_from_slice(bytes);
        Ok(bytes.len())
    })
    .map_err(|_| {
        if encrypted {
            KeyError::WrongPassphrase
        } else {
            KeyError::UnsupportedFormat
        }
    })?;
    pair_from_pkey(&pkey)
}

/// Writes `contents` to `path`, created with mode 0600 on Unix (never wider, even briefly).
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    use std::io::Write as _;
    let mut options = fs_err::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use fs_err::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let write_err = |source| KeyError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = options.open(path).map_err(write_err)?;
    #[cfg(unix)]
    {
        // An existing file keeps its mode through `open`; tighten it explicitly.
        use std::os::unix::fs::PermissionsExt as _;
        file.file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(write_err)?;
    }
    file.write_all(contents).map_err(write_err)
}

impl SshKeyPair {
    /// Fails when `ssh_host` is Azure DevOps and this is not an RSA key.
    pub fn ensure_accepted_by(&self, ssh_host: &str) -> Result<(), KeyError> {
        if is_azure_devops_ssh_host(ssh_host) && !matches!(self.algorithm, KeyAlgorithm::Rsa { .. })
        {
            return Err(KeyError::NotRsaForAzureDevOps {
                host: ssh_host.to_owned(),
                key_type: self.key_type().to_owned(),
            });
        }
        Ok(())
    }

    /// The SSH key type name (`ssh-rsa`, `ecdsa-sha2-nistp384`, `ssh-ed25519`).
    pub fn key_type(&self) -> &'static str {
        match self.algorithm {
            KeyAlgorithm::Rsa { .. } => "ssh-rsa",
            KeyAlgorithm::Ecdsa(curve) => curve.ssh_names().0,
            KeyAlgorithm::Ed25519 => "ssh-ed25519",
        }
    }

    /// Writes the OpenSSH private key to `path` (mode 0600) and the public key to `path.pub`.
    pub fn write_openssh(&self, path: &Path, comment: &str) -> Result<(), KeyError> {
        write_private_file(path, self.private_openssh.expose_secret().as_bytes())?;
        let mut public = path.as_os_str().to_owned();
        public.push(".pub");
        let public = std::path::PathBuf::from(public);
        let line = if comment.is_empty() {
            format!("{}\n", self.public_openssh)
        } else {
            format!("{} {comment}\n", self.public_openssh)
        };
        fs_err::write(&public, line).map_err(|source| KeyError::Write {
            path: public.clone(),
            source,
        })
    }
}

fn openssl_err(
    action: &'static str,
    what: &'static str,
) -> impl Fn(openssl::error::ErrorStack) -> KeyError {
    move |source| KeyError::OpenSsl {
        action,
        what,
        source,
    }
}

fn ssh_err(action: &'static str, what: &'static str) -> impl Fn(ssh_key::Error) -> KeyError {
    move |source| KeyError::Ssh {
        action,
        what,
        source,
    }
}

/// Builds both encodings of a key held by OpenSSL.
fn pair_from_pkey(pkey: &PKey<Private>) -> Result<SshKeyPair, KeyError> {
    let (algorithm, data) = ssh_from_pkey(pkey)?;
    let pkcs8 = pkey
        .private_key_to_pem_pkcs8()
        .map_err(openssl_err("convert", "private"))?;
    let private = PrivateKey::new(data, "").map_err(ssh_err("encode", "private"))?;
    let private_openssh = private
        .to_openssh(LineEnding::LF)
        .map_err(ssh_err("encode", "private"))?;
    let public = private.public_key();
    let public_openssh = public.to_openssh().map_err(ssh_err("encode", "public"))?;
    Ok(SshKeyPair {
        algorithm,
        private_openssh: SecretString::from(private_openssh.to_string()),
        private_pkcs8_pem: SecretString::from(
            String::from_utf8(pkcs8).expect("PEM is ASCII because OpenSSL base64-encodes it"),
        ),
        public_openssh: public_openssh.trim_end().to_owned(),
        fingerprint: public.fingerprint(HashAlg::Sha256).to_string(),
    })
}

fn mpint(value: &BigNumRef) -> Result<Mpint, KeyError> {
    Mpint::from_positive_bytes(&value.to_vec()).map_err(ssh_err("convert", "RSA"))
}

fn ssh_from_pkey(pkey: &PKey<Private>) -> Result<(KeyAlgorithm, KeypairData), KeyError> {
    match pkey.id() {
        Id::RSA => {
            let rsa = pkey.rsa().map_err(openssl_err("convert", "RSA"))?;
            let missing = || KeyError::UnsupportedType {
                key_type: "RSA without CRT parameters".to_owned(),
            };
            let keypair = RsaKeypair {
                public: RsaPublicKey {
                    e: mpint(rsa.e())?,
                    n: mpint(rsa.n())?,
                },
                private: RsaPrivateKey {
                    d: mpint(rsa.d())?,
                    iqmp: mpint(rsa.iqmp().ok_or_else(missing)?)?,
                    p: mpint(rsa.p().ok_or_else(missing)?)?,
                    q: mpint(rsa.q().ok_or_else(missing)?)?,
                },
            };
            Ok((
                KeyAlgorithm::Rsa {
                    bits: rsa.n().num_bits().unsigned_abs(),
                },
                keypair.into(),
            ))
        }
        Id::EC => {
            let ec = pkey.ec_key().map_err(openssl_err("convert", "ECDSA"))?;
            let curve = match ec.group().curve_name() {
                Some(Nid::X9_62_PRIME256V1) => EcdsaCurve::P256,
                Some(Nid::SECP384R1) => EcdsaCurve::P384,
                Some(Nid::SECP521R1) => EcdsaCurve::P521,
                other => {
                    return Err(KeyError::UnsupportedType {
                        key_type: format!(
                            "ECDSA on curve {}",
                            other.and_then(|n| n.short_name().ok()).unwrap_or("unknown")
                        ),
                    });
                }
            };
            let (name, curve_name, size) = curve.ssh_names();
            let mut ctx = BigNumContext::new().map_err(openssl_err("convert", "ECDSA"))?;
            let point = ec
                .public_key()
                .to_bytes(ec.group(), PointConversionForm::UNCOMPRESSED, &mut ctx)
                .map_err(openssl_err("convert", "ECDSA"))?;
            let scalar = ec
                .private_key()
                .to_vec_padded(i32::try_from(size).expect("curve sizes are tiny"))
                .map_err(openssl_err("convert", "ECDSA"))?;
            // ssh-key has no constructor from raw parts, so decode its own wire form:
            // string alg, string curve, string Q, mpint-style fixed-size scalar.
            let mut wire = Vec::new();
            put_string(&mut wire, name.as_bytes());
            put_string(&mut wire, curve_name.as_bytes());
            put_string(&mut wire, &point);
            let mut scalar_field = Vec::with_capacity(size + 1);
            if scalar[0] >= 0x80 {
                scalar_field.push(0);
            }
            scalar_field.extend_from_slice(&scalar);
            put_string(&mut wire, &scalar_field);
            let data =
                KeypairData::decode(&mut wire.as_slice()).map_err(ssh_err("convert", "ECDSA"))?;
            Ok((KeyAlgorithm::Ecdsa(curve), data))
        }
        Id::ED25519 => {
            let seed = pkey
                .raw_private_key()
                .map_err(openssl_err("convert", "Ed25519"))?;
            let public = pkey
                .raw_public_key()
                .map_err(openssl_err("convert", "Ed25519"))?;
            let bad = || KeyError::UnsupportedType {
                key_type: "Ed25519 with a malformed key".to_owned(),
            };
            let seed: [u8; 32] = seed.as_slice().try_into().map_err(|_| bad())?;
            let public: [u8; 32] = public.as_slice().try_into().map_err(|_| bad())?;
            let keypair = Ed25519Keypair {
                public: Ed25519PublicKey(public),
                private: Ed25519PrivateKey::from_bytes(&seed),
            };
            Ok((KeyAlgorithm::Ed25519, keypair.into()))
        }
        other => Err(KeyError::UnsupportedType {
            key_type: format!("{other:?}"),
        }),
    }
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("key fields are far below 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

fn bn(value: &Mpint) -> Result<BigNum, KeyError> {
    let bytes = value
        .as_positive_bytes()
        .ok_or_else(|| KeyError::UnsupportedType {
            key_type: "RSA with a negative parameter".to_owned(),
        })?;
    BigNum::from_slice(bytes).map_err(openssl_err("convert", "RSA"))
}

/// The reverse of [`ssh_from_pkey`], for OpenSSH-format input that must become PKCS#8.
fn pkey_from_ssh(data: &KeypairData) -> Result<PKey<Private>, KeyError> {
    if let Some(rsa) = data.rsa() {
        let (modulus, exponent, d) = (bn(&rsa.public.n)?, bn(&rsa.public.e)?, bn(&rsa.private.d)?);
        let (p, q, iqmp) = (
            bn(&rsa.private.p)?,
            bn(&rsa.private.q)?,
            bn(&rsa.private.iqmp)?,
        );
        let mut ctx = BigNumContext::new().map_err(openssl_err("convert", "RSA"))?;
        let one = BigNum::from_u32(1).map_err(openssl_err("convert", "RSA"))?;
        let crt = |prime: &BigNum,
                   ctx: &mut BigNumContext|
         -> Result<BigNum, openssl::error::ErrorStack> {
            let mut minus_one = BigNum::new()?;
            minus_one.checked_sub(prime, &one)?;
            let mut out = BigNum::new()?;
            out.nnmod(&d, &minus_one, ctx)?;
            Ok(out)
        };
        let dmp1 = crt(&p, &mut ctx).map_err(openssl_err("convert", "RSA"))?;
        let dmq1 = crt(&q, &mut ctx).map_err(openssl_err("convert", "RSA"))?;
        let rsa = Rsa::from_private_components(modulus, exponent, d, p, q, dmp1, dmq1, iqmp)
            .map_err(openssl_err("convert", "RSA"))?;
        return PKey::from_rsa(rsa).map_err(openssl_err("convert", "RSA"));
    }
    if let Some(ec) = data.ecdsa() {
        let curve = match ec.curve() {
            ssh_key::EcdsaCurve::NistP256 => EcdsaCurve::P256,
            ssh_key::EcdsaCurve::NistP384 => EcdsaCurve::P384,
            ssh_key::EcdsaCurve::NistP521 => EcdsaCurve::P521,
        };
        let group =
            EcGroup::from_curve_name(curve.nid()).map_err(openssl_err("convert", "ECDSA"))?;
        let mut ctx = BigNumContext::new().map_err(openssl_err("convert", "ECDSA"))?;
        let point = EcPoint::from_bytes(&group, ec.public_key_bytes(), &mut ctx)
            .map_err(openssl_err("convert", "ECDSA"))?;
        let scalar =
            BigNum::from_slice(ec.private_key_bytes()).map_err(openssl_err("convert", "ECDSA"))?;
        let key = EcKey::from_private_components(&group, &scalar, &point)
            .map_err(openssl_err("convert", "ECDSA"))?;
        key.check_key().map_err(openssl_err("convert", "ECDSA"))?;
        return PKey::from_ec_key(key).map_err(openssl_err("convert", "ECDSA"));
    }
    if let Some(ed) = data.ed25519() {
        return PKey::private_key_from_raw_bytes(&ed.private.to_bytes(), Id::ED25519)
            .map_err(openssl_err("convert", "Ed25519"));
    }
    let key_type = data
        .algorithm()
        .map_or_else(|_| "unknown".to_owned(), |a| a.as_str().to_owned());
    Err(KeyError::UnsupportedType { key_type })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_bits_are_checked() {
        assert!(matches!(
            generate_rsa(1024),
            Err(KeyError::RsaBits { bits: 1024 })
        ));
    }

    #[test]
    fn every_algorithm_round_trips_through_both_formats() {
        for algorithm in [
            KeyAlgorithm::Rsa { bits: 2048 },
            KeyAlgorithm::Ecdsa(EcdsaCurve::P256),
            KeyAlgorithm::Ecdsa(EcdsaCurve::P384),
            KeyAlgorithm::Ecdsa(EcdsaCurve::P521),
            KeyAlgorithm::Ed25519,
        ] {
            let pair = generate(algorithm).unwrap();
            assert_eq!(pair.algorithm, algorithm);
            assert!(
                pair.public_openssh.starts_with(pair.key_type()),
                "{}",
                pair.public_openssh
            );
            assert!(
                pair.private_pkcs8_pem
                    .expose_secret()
                    .starts_with("-----BEGIN PRIVATE KEY-----")
            );
            let from_openssh = load_private_key(&pair.private_openssh, None).unwrap();
            let from_pkcs8 = load_private_key(&pair.private_pkcs8_pem, None).unwrap();
            for loaded in [from_openssh, from_pkcs8] {
                assert_eq!(loaded.algorithm, algorithm);
                assert_eq!(loaded.public_openssh, pair.public_openssh);
                assert_eq!(loaded.fingerprint, pair.fingerprint);
            }
        }
    }

    #[test]
    fn azure_devops_rejects_non_rsa() {
        let pair = generate_ed25519().unwrap();
        let err = pair.ensure_accepted_by("ssh.dev.azure.com").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Azure DevOps (`ssh.dev.azure.com`) accepts only RSA SSH keys, not ssh-ed25519"
        );
        assert!(err.hint().unwrap().contains("--ssh-key-algorithm=rsa"));
        pair.ensure_accepted_by("127.0.0.1").unwrap();
    }

    #[test]
    fn garbage_is_unsupported() {
        let err =
            load_private_key(&SecretString::from("ssh-rsa AAAA".to_owned()), None).unwrap_err();
        assert!(matches!(err, KeyError::UnsupportedFormat));
    }
}
