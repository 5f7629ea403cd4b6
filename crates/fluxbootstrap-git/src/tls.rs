//! Verifying an HTTPS server certificate against a user-supplied CA bundle (`--ca-file`).
//!
//! libgit2's own CA locations are process-global (`GIT_OPT_SET_SSL_CERT_LOCATIONS`); checking
//! in the certificate callback instead keeps each remote's trust separate, and leaves the
//! system trust store in place as a fallback, like flux appends `caFile` to the system pool.

use std::net::IpAddr;

use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509StoreContext};

/// CA certificates parsed from a PEM bundle.
pub(crate) struct CaBundle {
    certs: Vec<X509>,
}

impl CaBundle {
    /// Parses every certificate in `pem`; `None` when there is none.
    pub(crate) fn from_pem(pem: &[u8]) -> Option<CaBundle> {
        let certs = X509::stack_from_pem(pem).ok()?;
        (!certs.is_empty()).then_some(CaBundle { certs })
    }

    /// Checks that `leaf_der` chains to one of the CAs and is valid for `host`.
    /// The error is OpenSSL's verification message (never secret).
    pub(crate) fn verify(&self, leaf_der: &[u8], host: &str) -> Result<(), String> {
        let leaf = X509::from_der(leaf_der).map_err(|e| e.to_string())?;
        let mut builder = X509StoreBuilder::new().map_err(|e| e.to_string())?;
        for ca in &self.certs {
            builder.add_cert(ca.clone()).map_err(|e| e.to_string())?;
        }
        let mut param = X509VerifyParam::new().map_err(|e| e.to_string())?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match host.parse::<IpAddr>() {
            Ok(ip) => param.set_ip(ip),
            Err(_) => param.set_host(host),
        }
        .map_err(|e| e.to_string())?;
        builder.set_param(&param).map_err(|e| e.to_string())?;
        let store = builder.build();
        let chain = Stack::new().map_err(|e| e.to_string())?;
        let mut ctx = X509StoreContext::new().map_err(|e| e.to_string())?;
        let (ok, result) = ctx
            .init(&store, &leaf, &chain, |c| Ok((c.verify_cert()?, c.error())))
            .map_err(|e| e.to_string())?;
        if ok {
            Ok(())
        } else {
            Err(result.error_string().to_owned())
        }
    }
}
