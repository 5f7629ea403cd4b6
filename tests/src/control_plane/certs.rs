//! The control plane's key material: a CA, the apiservers' serving certificate and the
//! `ServiceAccount` token signing key, generated fresh for every control plane.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// Paths of the files [`write`] created, as the apiserver flags name them.
pub(crate) struct CertFiles {
    /// PEM of the CA that signed the serving certificate (the kubeconfig's CA).
    pub(crate) ca_pem: String,
    /// The `ServiceAccount` token signing key's public half, an uncompressed P-256 point.
    pub(crate) sa_public_key: Vec<u8>,
}

/// Writes `ca.crt`, `apiserver.crt`/`apiserver.key` (SANs 127.0.0.1 and localhost) and
/// `sa.key`/`sa.pub` into `dir`.
pub(crate) fn write(dir: &Path) -> CertFiles {
    let ca_key = KeyPair::generate().expect("ECDSA P-256 key generation succeeds");
    let mut ca_params = CertificateParams::new(Vec::<String>::new())
        .expect("an empty SAN list is valid because there is nothing to parse");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "fluxbootstrap-test control plane CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .expect("self-signing the CA succeeds");
    let issuer = Issuer::new(ca_params, &ca_key);

    let serving_key = KeyPair::generate().expect("ECDSA P-256 key generation succeeds");
    let mut serving = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("the SANs are a valid IP and DNS name");
    serving
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    let serving_cert = serving
        .signed_by(&serving_key, &issuer)
        .expect("signing the serving certificate succeeds");

    let sa_key = KeyPair::generate().expect("ECDSA P-256 key generation succeeds");

    let ca_pem = ca_cert.pem();
    for (name, contents) in [
        ("ca.crt", ca_pem.clone()),
        ("apiserver.crt", serving_cert.pem()),
        ("apiserver.key", serving_key.serialize_pem()),
        ("sa.key", sa_key.serialize_pem()),
        ("sa.pub", sa_key.public_key_pem()),
    ] {
        let path = dir.join(name);
        fs_err::write(&path, contents)
            .expect("writing into the control plane's directory succeeds");
    }
    CertFiles {
        ca_pem,
        sa_public_key: sa_key.public_key_raw().to_vec(),
    }
}
