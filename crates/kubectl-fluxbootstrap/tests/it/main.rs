//! End-to-end tests: the real `kubectl-fluxbootstrap` binary against the harness (a real
//! kube-apiserver, an Azure-DevOps-shaped git server and, for every bootstrap that runs to
//! completion, a private control plane running the real Flux controllers), with results
//! checked through the real `git` and `kubectl`.

mod bad_input;
mod beyond_flux;
mod bootstrap;
mod cli;
mod cluster_pat;
mod context;
mod faults;
mod fleet;
mod flux_peer;
mod guards;
mod host_keys;
mod leaks;
mod real_flux;
