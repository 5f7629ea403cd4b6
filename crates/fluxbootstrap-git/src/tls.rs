//! Verifying an HTTPS server certificate against a user-supplied CA bundle (`--ca-file`).
//!
//! libgit2's own CA locations are process-global (`GIT_OPT_SET_SSL_CERT_LOCATIONS`); checking
//! in the certificate callback instead keeps each remote's trust separate, and leaves the
//! system trust store in place as a fallback, like flux appends `caFile` to the system pool.
//!
//! The callback gets only the server's own certificate, not the intermediates the server
//! sends with it, and a bundle that holds only the root (as an Azure DevOps Server's usually
//! does) cannot verify a leaf without them. So the intermediates are read with a TLS
//! handshake of our own first ([`server_intermediates`]); they only help build the chain,
//! trust still comes from the bundle alone, the way the REST client (rustls) verifies.

use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509StoreContext};

/// CA certificates parsed from a PEM bundle, and the intermediates a server sent.
pub(crate) struct CaBundle {
    certs: Vec<X509>,
    intermediates: Vec<X509>,
}

impl CaBundle {
    /// Parses every certificate in `pem`; `None` when there is none.
    pub(crate) fn from_pem(pem: &[u8]) -> Option<CaBundle> {
        let certs = X509::stack_from_pem(pem).ok()?;
        (!certs.is_empty()).then_some(CaBundle {
            certs,
            intermediates: Vec::new(),
        })
    }

    /// Uses `intermediates` (untrusted) to build chains from a leaf to the bundle.
    pub(crate) fn with_intermediates(mut self, intermediates: Vec<X509>) -> CaBundle {
        self.intermediates = intermediates;
        self
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
        let mut chain = Stack::new().map_err(|e| e.to_string())?;
        for cert in &self.intermediates {
            chain.push(cert.clone()).map_err(|e| e.to_string())?;
        }
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

/// The certificates `host:port` sends after its own in a TLS handshake (its intermediates),
/// or none when the handshake fails (a proxy in the way, a server that is down: the clone
/// that follows reports that). Nothing from this connection is trusted: it verifies no
/// certificate, sends nothing after the handshake, and only lends the chain builder
/// candidates.
pub(crate) fn server_intermediates(host: &str, port: u16, timeout: Duration) -> Vec<X509> {
    let handshake = || -> Option<Vec<X509>> {
        let addr = (host, port).to_socket_addrs().ok()?.next()?;
        let tcp = TcpStream::connect_timeout(&addr, timeout).ok()?;
        tcp.set_read_timeout(Some(timeout)).ok()?;
        tcp.set_write_timeout(Some(timeout)).ok()?;
        let mut builder = SslConnector::builder(SslMethod::tls_client()).ok()?;
        builder.set_verify(SslVerifyMode::NONE);
        let mut config = builder.build().configure().ok()?;
        let is_ip = host.parse::<IpAddr>().is_ok();
        config.set_verify_hostname(false);
        config.set_use_server_name_indication(!is_ip);
        let stream = config.connect(host, tcp).ok()?;
        let chain = stream.ssl().peer_cert_chain()?;
        // On the client side the chain starts with the server's own certificate.
        Some(chain.iter().skip(1).map(ToOwned::to_owned).collect())
    };
    handshake().unwrap_or_default()
}
