//! SSH host keys: the pinned Azure DevOps key and scanning any other server's key.
//!
//! Flux needs a `known_hosts` entry in its Secret. For `ssh.dev.azure.com` we ship the key
//! Microsoft publishes (checked against its SHA256 fingerprint in a test) and refuse a
//! server that presents anything else; other hosts are scanned over a real SSH handshake
//! with libssh2 (the same library git2 links), preferring the RSA key with SHA-2
//! signatures as Azure DevOps and Azure DevOps Server do.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use ssh_key::{HashAlg, PublicKey};

/// The Azure DevOps SSH host.
pub const AZURE_DEVOPS_SSH_HOST: &str = "ssh.dev.azure.com";

/// The legacy Azure DevOps SSH host; it presents the same key.
pub const AZURE_DEVOPS_LEGACY_SSH_HOST: &str = "vs-ssh.visualstudio.com";

/// Microsoft's published host key of `ssh.dev.azure.com` (RSA 2048).
pub const AZURE_DEVOPS_HOST_KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7Hr1oTWqNqOlzGJOfGJ4NakVyIzf1rXYd4d7wo6jBlkLvCA4odBlL0mDUyZ0/QUfTTqeu+tm22gOsv+VrVTMk6vwRU75gY/y9ut5Mb3bR5BV58dKXyq9A9UeB5Cakehn5Zgm6x1mKoVyf+FFn26iYqXJRgzIZZcZ5V6hrE0Qg39kZm4az48o0AUbf6Sp4SLdvnuMa2sVNwHBboS7EJkm57XQPVU3/QpyNLHbWDdzwtrlS+ez30S3AdYhLKEOxAG8weOnyrtLJAUen9mTkol8oII1edf7mWWbWVf0nBmly21+nZcmCTISQBtdcyPaEno7fFQMDD26/s0lfKob4Kw8H";

/// The SHA256 fingerprint Microsoft publishes for [`AZURE_DEVOPS_HOST_KEY`].
pub const AZURE_DEVOPS_HOST_KEY_SHA256: &str = "SHA256:ohD8VZEXGWo6Ez8GSEJQ9WpafgLFsOfLOtGGQCQo6Og";

/// Host-key algorithms in order of preference: RSA with SHA-2 first (Azure DevOps offers only
/// those), then the others so any server can be scanned.
const HOST_KEY_PREFERENCE: &str = "rsa-sha2-512,rsa-sha2-256,ssh-rsa,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,ssh-ed25519";

/// A host key read from a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedHostKey {
    /// The `known_hosts` line as flux writes it: `host key-type base64`, with the host as
    /// `[host]:port` when the port is not 22.
    pub known_hosts: String,
    /// The key's `SHA256:...` fingerprint.
    pub fingerprint: String,
    /// The key type (`ssh-rsa`, `ssh-ed25519`, ...).
    pub key_type: String,
    /// Whether this host has a pinned key and the server presented exactly it.
    pub pinned: bool,
}

/// Failure to obtain or check a host key.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    /// Name resolution or the TCP connection failed.
    #[error("failed to connect to `{host}:{port}`")]
    Connect {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The SSH handshake failed.
    #[error("SSH handshake with `{host}:{port}` failed")]
    Handshake {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// libssh2's error.
        #[source]
        source: ssh2::Error,
    },
    /// The server presented a key we cannot parse.
    #[error("`{host}:{port}` presented an unreadable host key")]
    BadKey {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The parse error.
        #[source]
        source: ssh_key::Error,
    },
    /// The server is an Azure DevOps host but did not present Microsoft's key.
    #[error(
        "the host key of `{host}` is {presented}, not Microsoft's published {expected}: the connection may be intercepted"
    )]
    PinnedMismatch {
        /// Host.
        host: String,
        /// Fingerprint we expected.
        expected: String,
        /// Fingerprint the server presented.
        presented: String,
    },
    /// A `known_hosts` line could not be parsed.
    #[error("not a `known_hosts` line: `{line}`")]
    BadLine {
        /// The line.
        line: String,
    },
}

impl HostKeyError {
    /// User-actionable advice for this error.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Connect { .. } | Self::Handshake { .. } => Some(
                "check the SSH host and port and that outbound SSH is allowed, or pass a `--known-hosts-file`".to_owned(),
            ),
            Self::PinnedMismatch { .. } => Some(
                "do not continue on this network; compare with the fingerprint shown under User settings > SSH public keys in Azure DevOps".to_owned(),
            ),
            Self::BadKey { .. } | Self::BadLine { .. } => None,
        }
    }
}

/// Whether `host` (optionally `host:port`) is one of the Azure DevOps SSH hosts.
pub fn is_azure_devops_ssh_host(host: &str) -> bool {
    let name = split_port(host).0.to_ascii_lowercase();
    name == AZURE_DEVOPS_SSH_HOST || name == AZURE_DEVOPS_LEGACY_SSH_HOST
}

/// The `known_hosts` line for a host whose key is pinned (the Azure DevOps hosts on port 22).
pub fn pinned_known_hosts(host: &str) -> Option<String> {
    let (name, port) = split_port(host);
    (is_azure_devops_ssh_host(name) && port.is_none_or(|p| p == 22))
        .then(|| format!("{} {AZURE_DEVOPS_HOST_KEY}", name.to_ascii_lowercase()))
}

/// Connects to `host:port`, performs the SSH key exchange and returns the server's host key
/// (RSA preferred). For a pinned host the key must match the pin.
pub fn scan_host_key(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<ScannedHostKey, HostKeyError> {
    let connect_err = |source| HostKeyError::Connect {
        host: host.to_owned(),
        port,
        source,
    };
    let handshake_err = |source| HostKeyError::Handshake {
        host: host.to_owned(),
        port,
        source,
    };
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(connect_err)?
        .collect();
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "the host name resolved to no address",
    );
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(err) => last = err,
        }
    }
    let stream = stream.ok_or_else(|| connect_err(last))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(connect_err)?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(connect_err)?;

    let mut session = ssh2::Session::new().map_err(handshake_err)?;
    session.set_timeout(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
    session
        .method_pref(ssh2::MethodType::HostKey, HOST_KEY_PREFERENCE)
        .map_err(handshake_err)?;
    session.set_tcp_stream(stream);
    session.handshake().map_err(handshake_err)?;
    let (blob, _) = session.host_key().ok_or_else(|| {
        handshake_err(ssh2::Error::new(
            ssh2::ErrorCode::Session(-1),
            "the server sent no host key",
        ))
    })?;
    let key = PublicKey::from_bytes(blob).map_err(|source| HostKeyError::BadKey {
        host: host.to_owned(),
        port,
        source,
    })?;
    // Best effort: the scan is complete whether or not the goodbye reaches the server.
    let _ = session.disconnect(None, "host key scan", None);

    let encoded = key.to_openssh().map_err(|source| HostKeyError::BadKey {
        host: host.to_owned(),
        port,
        source,
    })?;
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    let pinned = is_azure_devops_ssh_host(host) && port == 22;
    if pinned && fingerprint != AZURE_DEVOPS_HOST_KEY_SHA256 {
        return Err(HostKeyError::PinnedMismatch {
            host: host.to_owned(),
            expected: AZURE_DEVOPS_HOST_KEY_SHA256.to_owned(),
            presented: fingerprint,
        });
    }
    Ok(ScannedHostKey {
        known_hosts: format!("{} {}", known_hosts_host(host, port), encoded.trim_end()),
        fingerprint,
        key_type: key.algorithm().as_str().to_owned(),
        pinned,
    })
}

/// The host field of a `known_hosts` line: `host`, or `[host]:port` when the port is not 22.
pub fn known_hosts_host(host: &str, port: u16) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The `SHA256:...` fingerprint of the key on a `known_hosts` line (`host type base64`) or of
/// a bare `type base64` key.
pub fn known_hosts_fingerprint(line: &str) -> Result<String, HostKeyError> {
    let bad = || HostKeyError::BadLine {
        line: line.to_owned(),
    };
    let line = line.trim();
    let key = if let Ok(key) = PublicKey::from_openssh(line) {
        key
    } else {
        let (_hosts, key) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
        PublicKey::from_openssh(key.trim()).map_err(|_| bad())?
    };
    Ok(key.fingerprint(HashAlg::Sha256).to_string())
}

/// The lines of a `known_hosts` file (`text`) for `host` on `port`, each as
/// `host key-type base64` with the host written as [`known_hosts_host`] writes it, lower case.
///
/// A line matches when one of its comma-separated host patterns is exactly that host
/// (case-insensitive). Comments, blank lines, `@cert-authority` and `@revoked` lines and
/// hashed (`|1|...`) hosts are skipped; a matching line whose key does not parse is an error.
pub fn known_hosts_entries(text: &str, host: &str, port: u16) -> Result<Vec<String>, HostKeyError> {
    let wanted = known_hosts_host(host, port).to_ascii_lowercase();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
            continue;
        }
        let Some((hosts, key)) = line.split_once(char::is_whitespace) else {
            return Err(HostKeyError::BadLine {
                line: line.to_owned(),
            });
        };
        if !hosts
            .split(',')
            .any(|pattern| pattern.to_ascii_lowercase() == wanted)
        {
            continue;
        }
        let key = key.trim();
        let parsed = PublicKey::from_openssh(key).map_err(|_| HostKeyError::BadLine {
            line: line.to_owned(),
        })?;
        let encoded = parsed.to_openssh().map_err(|_| HostKeyError::BadLine {
            line: line.to_owned(),
        })?;
        // Drop the comment: flux's Secret holds `host type base64`.
        let without_comment = encoded
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        out.push(format!("{wanted} {without_comment}"));
    }
    Ok(out)
}

/// Splits `host[:port]` or `[v6]:port`; an unparsable port leaves the text as the host.
fn split_port(host: &str) -> (&str, Option<u16>) {
    crate::split_host_port(host).unwrap_or((host, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_entries_select_the_host_and_port() {
        let file = format!(
            "# a comment\n\n\
             ssh.dev.azure.com,vs-ssh.visualstudio.com {AZURE_DEVOPS_HOST_KEY} the pin\n\
             [tfs.contoso.com]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n\
             |1|abc=|def= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n\
             @revoked * ssh-rsa AAAA\n"
        );
        assert_eq!(
            known_hosts_entries(&file, "SSH.dev.azure.com", 22).unwrap(),
            [format!("ssh.dev.azure.com {AZURE_DEVOPS_HOST_KEY}")]
        );
        let entries = known_hosts_entries(&file, "tfs.contoso.com", 2222).unwrap();
        assert_eq!(entries.len(), 1);
        assert!(entries[0].starts_with("[tfs.contoso.com]:2222 ssh-ed25519 "));
        assert!(
            known_hosts_entries(&file, "tfs.contoso.com", 22)
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            known_hosts_entries(
                "ssh.dev.azure.com ssh-rsa not-base64!",
                "ssh.dev.azure.com",
                22
            ),
            Err(HostKeyError::BadLine { .. })
        ));
    }

    #[test]
    fn the_pinned_key_has_microsofts_fingerprint() {
        let key = PublicKey::from_openssh(AZURE_DEVOPS_HOST_KEY).unwrap();
        assert_eq!(
            key.fingerprint(HashAlg::Sha256).to_string(),
            AZURE_DEVOPS_HOST_KEY_SHA256
        );
        assert_eq!(
            key.key_data()
                .rsa()
                .unwrap()
                .n
                .as_positive_bytes()
                .unwrap()
                .len()
                * 8,
            2048
        );
        let line = pinned_known_hosts("ssh.dev.azure.com").unwrap();
        assert_eq!(
            known_hosts_fingerprint(&line).unwrap(),
            AZURE_DEVOPS_HOST_KEY_SHA256
        );
        assert!(
            pinned_known_hosts("vs-ssh.visualstudio.com:22")
                .unwrap()
                .starts_with("vs-ssh.visualstudio.com ssh-rsa ")
        );
        assert_eq!(pinned_known_hosts("ssh.dev.azure.com:2222"), None);
        assert_eq!(pinned_known_hosts("github.com"), None);
    }

    #[test]
    fn known_hosts_host_matches_flux() {
        assert_eq!(
            known_hosts_host("ssh.dev.azure.com", 22),
            "ssh.dev.azure.com"
        );
        assert_eq!(known_hosts_host("127.0.0.1", 2222), "[127.0.0.1]:2222");
        assert_eq!(known_hosts_host("::1", 2222), "[::1]:2222");
    }

    #[test]
    fn fingerprint_of_bare_key_and_line() {
        assert_eq!(
            known_hosts_fingerprint(AZURE_DEVOPS_HOST_KEY).unwrap(),
            AZURE_DEVOPS_HOST_KEY_SHA256
        );
        assert_eq!(
            known_hosts_fingerprint(&format!("[127.0.0.1]:2222 {AZURE_DEVOPS_HOST_KEY}")).unwrap(),
            AZURE_DEVOPS_HOST_KEY_SHA256
        );
        assert!(known_hosts_fingerprint("nonsense").is_err());
    }
}
