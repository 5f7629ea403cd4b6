//! The sync side of the repository change: the URL the cluster clones in each mode, the
//! `gotk-sync.yaml` flux writes, and the patches `kustomization.yaml` carries for the mode.
//!
//! These decide whether a cluster can move between this tool and `flux` without a diff, so
//! they live here, next to the mode, with unit tests, instead of in the binary's flag code.

use std::time::Duration;

use fluxbootstrap_azdo::{RepoUrl, UrlError};
use fluxbootstrap_manifests::{AzureIdentity, KustomizationPatches, SyncOptions};

use crate::{GitMode, PlanError, RepoPaths};

/// The sync flags, as the command line gave them.
#[derive(Debug, Clone, Default)]
pub struct SyncSettings {
    /// `--branch`.
    pub branch: String,
    /// `--interval`, written in Go's `time.Duration` form.
    pub interval: Duration,
    /// `--secret-name`: the source Secret the `GitRepository` names.
    pub secret_name: String,
    /// `--recurse-submodules`.
    pub recurse_submodules: bool,
    /// `--sparse-checkout` directories, as given.
    pub sparse_checkout: Vec<String>,
    /// `--ssh-hostkey-algos`; empty lets the host key decide.
    pub ssh_hostkey_algos: Vec<String>,
    /// `--azure-tenant-id` for workload identity.
    pub azure_tenant_id: Option<String>,
}

/// The URL the cluster's `GitRepository` clones: HTTPS in the token modes (plain `http://`
/// only for a server the parser accepted it for), the SSH rendering in the SSH modes, on
/// `--ssh-hostname` when the push is HTTPS and the cluster syncs over SSH.
///
/// # Errors
/// When `--ssh-hostname` cannot stand in for the repository's host.
pub fn sync_url(repo: &RepoUrl, mode: &GitMode) -> Result<String, UrlError> {
    Ok(match mode {
        GitMode::Token { .. } | GitMode::AzureProvider { .. } => repo.https_url(),
        GitMode::TokenPushSshSync { ssh_host } => repo.clone().with_ssh_host(ssh_host)?.ssh_url(),
        GitMode::Ssh => repo.ssh_url(),
    })
}

/// `gotk-sync.yaml` for one folder: the `GitRepository` and `Kustomization` flux writes,
/// both named after the namespace.
///
/// # Errors
/// When `--path` is not one of the `--sparse-checkout` directories.
pub fn sync_manifests(
    settings: &SyncSettings,
    namespace: &str,
    paths: &RepoPaths,
    url: String,
    mode: &GitMode,
) -> Result<String, PlanError> {
    let azure = matches!(mode, GitMode::AzureProvider { .. });
    let options = SyncOptions {
        name: namespace.to_owned(),
        namespace: namespace.to_owned(),
        url,
        branch: settings.branch.clone(),
        target_path: paths.sync_path(),
        interval: go_duration(settings.interval),
        // The Azure provider authenticates with the pod's identity: no Secret to name.
        secret_name: (!azure).then(|| settings.secret_name.clone()),
        recurse_submodules: settings.recurse_submodules,
        sparse_checkout: sparse_checkout(settings, paths)?,
        provider: azure.then(|| "azure".to_owned()),
    };
    Ok(fluxbootstrap_manifests::render_sync(&options))
}

/// The patches `kustomization.yaml` needs for the mode, `None` when it needs none (plain
/// token auth). `host_key_is_rsa` is the SSH host's key decision in the SSH modes: Azure
/// DevOps offers only RSA host keys, signed with rsa-sha2, which the controllers must ask for.
#[must_use]
pub fn kustomization_patches(
    settings: &SyncSettings,
    mode: &GitMode,
    host_key_is_rsa: bool,
) -> Option<KustomizationPatches> {
    let mut algos = settings.ssh_hostkey_algos.clone();
    if algos.is_empty() && mode.cluster_uses_ssh() && host_key_is_rsa {
        algos = vec!["rsa-sha2-512".to_owned(), "rsa-sha2-256".to_owned()];
    }
    let azure = mode.azure_client_id().map(|client_id| AzureIdentity {
        client_id: client_id.to_owned(),
        tenant_id: settings.azure_tenant_id.clone(),
    });
    if algos.is_empty() && azure.is_none() {
        return None;
    }
    Some(KustomizationPatches {
        ssh_hostkey_algos: algos,
        azure_workload_identity: azure,
    })
}

/// Go's `time.Duration.String()` for whole seconds (`1m0s`, `10m0s`, `1h0m0s`, `30s`): what
/// flux writes into `gotk-sync.yaml`.
#[must_use]
pub fn go_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// `--sparse-checkout` as given (flux writes the list unchanged), refused when the sync path
/// is not one of its directories: Flux could not build a path it did not check out.
fn sparse_checkout(settings: &SyncSettings, paths: &RepoPaths) -> Result<Vec<String>, PlanError> {
    let dirs: Vec<String> = settings
        .sparse_checkout
        .iter()
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty())
        .collect();
    if dirs.is_empty() {
        return Ok(dirs);
    }
    let clean = |p: &str| p.trim_start_matches("./").trim_end_matches('/').to_owned();
    let path = clean(&paths.sync_path());
    if !dirs.iter().any(|d| clean(d) == path) {
        return Err(PlanError::new(
            format!(
                "`--path {path}` is not one of the `--sparse-checkout` directories ({})",
                dirs.join(", ")
            ),
            format!("add it, e.g. `--sparse-checkout {},{path}`", dirs.join(",")),
        ));
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModeFlags;

    fn mode(ssh_hostname: Option<&str>, url_is_ssh: bool) -> GitMode {
        GitMode::from_flags(ModeFlags {
            url_is_ssh,
            token_auth: !url_is_ssh && ssh_hostname.is_none(),
            with_bearer_token: false,
            ssh_hostname,
            provider: None,
            azure_client_id: None,
            mint_cluster_pat: false,
        })
        .expect("a valid mode")
    }

    fn settings() -> SyncSettings {
        SyncSettings {
            branch: "main".to_owned(),
            interval: Duration::from_mins(1),
            secret_name: "flux-system".to_owned(),
            ..SyncSettings::default()
        }
    }

    #[test]
    fn formats_durations_like_go() {
        assert_eq!(go_duration(Duration::from_mins(1)), "1m0s");
        assert_eq!(go_duration(Duration::from_mins(10)), "10m0s");
        assert_eq!(go_duration(Duration::from_hours(1)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
    }

    #[test]
    fn each_mode_clones_its_own_url() {
        let repo = RepoUrl::parse("https://dev.azure.com/org/proj/_git/repo").expect("a URL");
        assert_eq!(
            sync_url(&repo, &mode(None, false)).expect("token mode"),
            "https://dev.azure.com/org/proj/_git/repo"
        );
        let ssh = sync_url(&repo, &mode(Some("ssh.dev.azure.com"), false)).expect("ssh sync");
        assert_eq!(ssh, "ssh://git@ssh.dev.azure.com/v3/org/proj/repo");
    }

    #[test]
    fn only_ssh_to_an_rsa_host_gets_the_rsa_sha2_patch() {
        let ssh = mode(Some("ssh.dev.azure.com"), false);
        let patches = kustomization_patches(&settings(), &ssh, true).expect("a patch");
        assert_eq!(patches.ssh_hostkey_algos, ["rsa-sha2-512", "rsa-sha2-256"]);
        assert!(kustomization_patches(&settings(), &ssh, false).is_none());
        assert!(kustomization_patches(&settings(), &mode(None, false), true).is_none());
    }

    #[test]
    fn a_sync_path_outside_the_sparse_checkout_is_refused_with_the_fix() {
        let paths = RepoPaths::new("clusters/a", "flux-system").expect("a path");
        let refused = SyncSettings {
            sparse_checkout: vec!["apps".to_owned()],
            ..settings()
        };
        let url = "https://example.invalid/repo".to_owned();
        let err = sync_manifests(
            &refused,
            "flux-system",
            &paths,
            url.clone(),
            &mode(None, false),
        )
        .expect_err("refused");
        assert!(err.to_string().contains("--sparse-checkout"), "{err}");
        assert!(err.hint().contains("apps,clusters/a"), "{}", err.hint());
        let kept = SyncSettings {
            sparse_checkout: vec!["apps".to_owned(), "./clusters/a/".to_owned()],
            ..settings()
        };
        let yaml = sync_manifests(&kept, "flux-system", &paths, url, &mode(None, false))
            .expect("accepted");
        assert!(yaml.contains("interval: 1m0s"), "{yaml}");
        assert!(yaml.contains("./clusters/a/"), "{yaml}");
    }
}
