//! The test harness every crate's integration tests and the end-to-end tests run on.
//!
//! It starts real components on loopback, owned by the test process and killed with it:
//! a kube-apiserver + etcd control plane (two clusters, an admin and a non-admin user),
//! an Azure-DevOps-shaped git server (HTTPS smart HTTP through `git http-backend`, the
//! REST subset, OpenSSH `sshd`, an Entra-shaped token endpoint, `github.com` for the real
//! `flux` CLI), a GitHub-releases-shaped download server, a `CONNECT` proxy as the one way
//! out of loopback, and, on a control plane with workloads, kube-controller-manager,
//! kube-scheduler and a process kubelet that runs the real Flux controllers.

mod control_plane;
mod egress;
mod flux_binaries;
mod git_server;
mod kubelet;
mod release_server;

pub use control_plane::{ControlPlane, Workloads};
pub use egress::EgressProxy;
pub use flux_binaries::{flux_bin_dir, flux_cli, missing_flux_binaries};
pub use git_server::{
    Fault, FaultAction, FaultTarget, GitServer, LoggedRequest, MintedPatRecord, Repo,
};
pub use kubelet::{IdentityEndpoint, Kubelet};
pub use release_server::{ReleaseServer, flux_bundle_is_real, flux_bundle_tar_gz, release_path};
