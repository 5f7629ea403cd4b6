//! Host-key scanning against the harness's OpenSSH server.

use std::time::Duration;

use fluxbootstrap_auth::{HostKeyError, known_hosts_fingerprint, scan_host_key};
use fluxbootstrap_test::GitServer;

#[test]
fn scans_the_harness_sshd_like_flux() {
    let server = GitServer::shared();
    let endpoint = server.ssh_host();
    let (host, port) = endpoint.rsplit_once(':').unwrap();
    let scanned = scan_host_key(host, port.parse().unwrap(), Duration::from_secs(10)).unwrap();
    assert_eq!(scanned.known_hosts, server.ssh_known_hosts().trim());
    assert_eq!(scanned.key_type, "ssh-rsa");
    assert!(!scanned.pinned);
    assert_eq!(
        known_hosts_fingerprint(&scanned.known_hosts).unwrap(),
        scanned.fingerprint
    );
}

#[test]
fn closed_port_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = scan_host_key("127.0.0.1", port, Duration::from_secs(5)).unwrap_err();
    assert!(matches!(err, HostKeyError::Connect { .. }), "{err:?}");
    assert!(err.hint().is_some());
}

#[test]
fn a_server_that_is_not_ssh_is_a_handshake_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let talker = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = std::io::Write::write_all(&mut stream, b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    let err = scan_host_key("127.0.0.1", port, Duration::from_secs(5)).unwrap_err();
    assert!(matches!(err, HostKeyError::Handshake { .. }), "{err:?}");
    talker.join().unwrap();
}
