//! A throw-away CA and a server certificate for `127.0.0.1` and `localhost`, so clients are
//! tested with real certificate verification against a CA file they are handed.
//!
//! Shaped like an Azure DevOps Server behind an enterprise PKI: the root CA (the file clients
//! get) signs an intermediate CA, which signs the server certificate; the server sends the
//! intermediate with its certificate, and a client must build the chain to the root.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// The generated certificates.
pub(crate) struct Tls {
    pub(crate) ca_file: PathBuf,
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

impl Tls {
    /// Generate a CA and a server certificate; the CA is written to `dir/ca.crt`.
    pub(crate) fn generate(dir: &Path) -> Tls {
        let ca_key = KeyPair::generate().expect("generating an ECDSA key works");
        let mut ca_params = CertificateParams::new(Vec::<String>::new())
            .expect("empty subject alternative names are valid");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "fluxbootstrap test git server CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .expect("self-signing the CA works");
        let root = Issuer::new(ca_params, ca_key);

        let intermediate_key = KeyPair::generate().expect("generating an ECDSA key works");
        let mut intermediate_params = CertificateParams::new(Vec::<String>::new())
            .expect("empty subject alternative names are valid");
        intermediate_params.distinguished_name.push(
            DnType::CommonName,
            "fluxbootstrap test git server issuing CA",
        );
        intermediate_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        intermediate_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let intermediate_cert = intermediate_params
            .signed_by(&intermediate_key, &root)
            .expect("signing the intermediate CA works");
        let issuer = Issuer::new(intermediate_params, intermediate_key);

        let key = KeyPair::generate().expect("generating an ECDSA key works");
        let mut params =
            // The Entra and GitHub stand-ins answer for their hosts on the same endpoint.
            CertificateParams::new(vec![
                "127.0.0.1".to_owned(),
                "localhost".to_owned(),
                super::entra::AUTHORITY_HOST.to_owned(),
                super::github::HOSTS[0].to_owned(),
                super::github::HOSTS[1].to_owned(),
            ])
                .expect("IP and DNS names are valid subject alternative names");
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params
            .signed_by(&key, &issuer)
            .expect("signing the server certificate works");

        let ca_file = dir.join("ca.crt");
        fs_err::write(&ca_file, ca_cert.pem()).expect("writing the CA file works");
        super::process::chmod(&ca_file, 0o644);
        Tls {
            ca_file,
            chain: vec![cert.der().clone(), intermediate_cert.der().clone()],
            key: key.serialize_der(),
        }
    }

    /// A TLS acceptor (TLS 1.2 and 1.3, ring provider, HTTP/1.1 only).
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                self.chain.clone(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone())),
            )
            .expect("the generated certificate matches its key");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }
}
