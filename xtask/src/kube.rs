//! `cargo xtask kube build`: builds kube-apiserver, kubectl and etcd from the Go module proxy.

use anyhow::{Result, bail};

pub(crate) fn run(_args: &[String]) -> Result<()> {
    bail!("`cargo xtask kube build` is not implemented yet")
}
