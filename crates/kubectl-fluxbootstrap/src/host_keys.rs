//! The SSH host key decision of a run: `--known-hosts-file`, the pinned Azure DevOps key, or
//! a scan (trust on first use), made once per host.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fluxbootstrap_azdo::RepoUrl;
use fluxbootstrap_plan::GitMode;

use crate::cli::RenderArgs;
use crate::error::Hinted;
use crate::printer::Printer;

/// The SSH host key decision of a run: the `known_hosts` text for the Secret and the push,
/// and whether the host offers an RSA key (then the controllers get the rsa-sha2 host key
/// algorithms patch; a host with no RSA key does not).
#[derive(Debug, Clone)]
pub(crate) struct HostKeys {
    /// One `host type base64` line per key.
    pub(crate) known_hosts: String,
    /// Whether one of them is `ssh-rsa`.
    pub(crate) rsa: bool,
}

/// The host key decisions made so far in this run, by `host[:port]`: a host is scanned and
/// its fingerprint shown once, however many clusters or steps need it.
static DECIDED: tokio::sync::Mutex<BTreeMap<String, HostKeys>> =
    tokio::sync::Mutex::const_new(BTreeMap::new());

/// The host keys of `ssh_host` (`host[:port]`), decided once per run: the host's entries in
/// `--known-hosts-file` when given, else the pinned key for Azure DevOps, else a scan (trust
/// on first use, like flux) with the fingerprint shown so the user can compare.
pub(crate) async fn known_hosts_for(
    ssh_host: &str,
    known_hosts_file: Option<&Path>,
    printer: Printer,
) -> Result<HostKeys> {
    let mut decided = DECIDED.lock().await;
    if let Some(keys) = decided.get(ssh_host) {
        return Ok(keys.clone());
    }
    let (host, port) = split_host_port(ssh_host)?;
    let lines = if let Some(file) = known_hosts_file {
        let text = fs_err::read_to_string(file).context("failed to read `--known-hosts-file`")?;
        let lines =
            fluxbootstrap_auth::known_hosts_entries(&text, &host, port).with_context(|| {
                format!(
                    "`--known-hosts-file {}` is not a known_hosts file",
                    file.display()
                )
            })?;
        if lines.is_empty() {
            bail!(Hinted::new(
                format!(
                    "`--known-hosts-file {}` has no key for `{}`",
                    file.display(),
                    fluxbootstrap_auth::known_hosts_host(&host, port)
                ),
                format!(
                    "add the host's key (`ssh-keyscan -p {port} {host}`, then compare its fingerprint with the one the server's administrator publishes); hashed host names are not read"
                ),
            ));
        }
        lines
    } else if let Some(pinned) = fluxbootstrap_auth::pinned_known_hosts(&host) {
        vec![pinned]
    } else {
        let scan_host = host.clone();
        let scanned = tokio::task::spawn_blocking(move || {
            fluxbootstrap_auth::scan_host_key(&scan_host, port, Duration::from_secs(30))
        })
        .await
        .context("the host key scan task failed")??;
        printer.warning(format_args!(
            "trusting the {} host key of \"{ssh_host}\" on first use: {}",
            scanned.key_type, scanned.fingerprint
        ));
        vec![scanned.known_hosts]
    };
    let keys = HostKeys {
        rsa: lines
            .iter()
            .any(|l| l.split_whitespace().nth(1) == Some("ssh-rsa")),
        known_hosts: lines.join("\n"),
    };
    decided.insert(ssh_host.to_owned(), keys.clone());
    Ok(keys)
}

/// The host key decision for the SSH host the cluster connects to, in the SSH modes.
pub(crate) async fn cluster_host_keys(
    mode: &GitMode,
    repo: &RepoUrl,
    render: &RenderArgs,
    printer: Printer,
) -> Result<Option<HostKeys>> {
    match mode.cluster_ssh_host(repo) {
        Some(host) => Ok(Some(
            known_hosts_for(&host, render.known_hosts_file.as_deref(), printer).await?,
        )),
        None => Ok(None),
    }
}

/// `--ssh-hostname` (or the URL's SSH host) as host and port, 22 unless given.
fn split_host_port(host_port: &str) -> Result<(String, u16)> {
    let (host, port) = fluxbootstrap_auth::split_host_port(host_port).ok_or_else(|| {
        Hinted::new(
            format!("invalid SSH host `{host_port}`"),
            "pass `HOST`, `HOST:PORT` or `[IPV6]:PORT`",
        )
    })?;
    Ok((host.to_owned(), port.unwrap_or(22)))
}
