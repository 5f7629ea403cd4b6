//! The test harness every crate's integration tests and the end-to-end tests run on.
//!
//! It starts real components on loopback, owned by the test process and killed with it:
//! a kube-apiserver + etcd control plane (two clusters, an admin and a non-admin user),
//! an Azure-DevOps-shaped git server (HTTPS smart HTTP through `git http-backend`, the
//! REST subset, OpenSSH `sshd`), a GitHub-releases-shaped download server, and fake Flux
//! controllers that make readiness waits behave like a real cluster.

mod control_plane;
mod fake_controllers;
mod git_server;
mod release_server;

pub use control_plane::ControlPlane;
pub use fake_controllers::{FakeControllerOptions, FakeControllers};
pub use git_server::{GitServer, Repo};
pub use release_server::{ReleaseServer, flux_bundle_tar_gz, release_path};
