//! The one way out of loopback: an HTTP `CONNECT` proxy that tunnels a short allow-list of
//! public HTTPS hosts to the git server's endpoint, which answers for them under their own
//! names (its certificate carries them), and refuses every other host.
//!
//! Real clients reach `login.microsoftonline.com` (the Entra stand-in, for the controllers'
//! workload identity) and `github.com`/`api.github.com` (the releases stand-in, for the real
//! `flux` CLI's `--version`) through `HTTPS_PROXY` exactly as they would through a corporate
//! proxy, so nothing in them is patched and nothing leaves this machine. A refused host is
//! logged, so a test that needs a new one fails with its name instead of timing out.

use std::path::PathBuf;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::control_plane::runtime;

/// A running proxy; stops on drop.
pub struct EgressProxy {
    port: u16,
    task: tokio::task::AbortHandle,
}

impl EgressProxy {
    /// Starts a proxy on a free loopback port that tunnels `hosts` (port 443) to
    /// `127.0.0.1:https_port` and logs refusals to `log`.
    pub fn start(hosts: &[&str], https_port: u16, log: PathBuf) -> Result<EgressProxy, String> {
        let listener =
            runtime::block_on(async { tokio::net::TcpListener::bind("127.0.0.1:0").await })
                .map_err(|e| format!("cannot bind the egress proxy: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let allowed = hosts.iter().map(|h| format!("{h}:443")).collect();
        let task = runtime::runtime()
            .spawn(serve(listener, allowed, https_port, log))
            .abort_handle();
        Ok(EgressProxy { port, task })
    }

    /// The proxy's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The value for `HTTPS_PROXY`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections forever; one task per `CONNECT`.
async fn serve(
    listener: tokio::net::TcpListener,
    allowed: Vec<String>,
    https_port: u16,
    log: PathBuf,
) {
    let allowed = std::sync::Arc::new(allowed);
    while let Ok((inbound, _)) = listener.accept().await {
        let (allowed, log) = (std::sync::Arc::clone(&allowed), log.clone());
        tokio::spawn(tunnel(inbound, allowed, https_port, log));
    }
}

async fn tunnel(
    mut inbound: tokio::net::TcpStream,
    allowed: std::sync::Arc<Vec<String>>,
    https_port: u16,
    log: PathBuf,
) {
    use std::io::Write as _;
    let mut head = Vec::new();
    let mut buf = [0_u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match inbound.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let request_line = text.lines().next().unwrap_or_default().to_owned();
    let target = request_line
        .strip_prefix("CONNECT ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default();
    if !allowed.iter().any(|a| a == target) {
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
        {
            let _ = writeln!(file, "refused: {request_line}");
        }
        let _ = inbound
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            .await;
        return;
    }
    let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", https_port)).await else {
        return;
    };
    if inbound
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
}
