//! `cargo xtask bench <name>`: runs one of the project's benchmarks in release mode.
//!
//! Each benchmark is a `harness = false` bench target in the crate it measures, so xtask
//! stays free of the heavy crates; it prints its figures and ratios side by side itself.

use std::fmt::Write as _;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// (name, package, bench target, what it measures)
const BENCHES: &[(&str, &str, &str, &str)] = &[
    (
        "apply",
        "fluxbootstrap-cluster",
        "apply",
        "Flux bundle first apply + no-op re-apply vs `kubectl apply --server-side`",
    ),
    (
        "binary",
        "kubectl-fluxbootstrap",
        "binary",
        "dist binary size; `kubectl fluxbootstrap --help` vs `kubectl version --client`",
    ),
    (
        "e2e",
        "kubectl-fluxbootstrap",
        "e2e",
        "first bootstrap + no-op re-run vs the real `flux bootstrap git`, real controllers, medians",
    ),
    (
        "fleet",
        "kubectl-fluxbootstrap",
        "fleet",
        "azdo bootstrap of 1 vs 8 harness clusters in one run: wall time, ratio, commits, clones",
    ),
    (
        "git",
        "fluxbootstrap-git",
        "git",
        "clone + commit + push of a 300-file repo over HTTPS vs the `git` CLI, median of 7",
    ),
    (
        "keygen",
        "fluxbootstrap-auth",
        "keygen",
        "RSA-4096 key generation (OpenSSL) vs `ssh-keygen -t rsa -b 4096`, median of 7",
    ),
    (
        "render",
        "fluxbootstrap-manifests",
        "render",
        "gotk-components.yaml default case vs `kubectl kustomize` of flux's overlay",
    ),
];

pub(crate) fn run(args: &[String]) -> Result<()> {
    let Some((name, rest)) = args.split_first() else {
        bail!("usage: cargo xtask bench <name>\n\n{}", list());
    };
    let Some((_, package, target, _)) = BENCHES.iter().find(|(n, ..)| n == name) else {
        bail!("unknown benchmark `{name}`\n\n{}", list());
    };
    let mut bench = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    bench
        .args(["bench", "--package", package, "--bench", target, "--"])
        .args(rest);
    if *name == "binary" {
        // Measure what users download: the binary `cargo xtask dist` ships for this platform.
        let (binary, triple) = crate::dist::build_for_host(&crate::dist::workspace_root())?;
        bench
            .env("FLUXBOOTSTRAP_BENCH_BINARY", binary)
            .env("FLUXBOOTSTRAP_BENCH_TRIPLE", triple);
    }
    let status = bench.status().context("failed to run `cargo bench`")?;
    if !status.success() {
        bail!("benchmark `{name}` failed ({status})");
    }
    Ok(())
}

fn list() -> String {
    let mut out = String::from("benchmarks:");
    for (name, _, _, about) in BENCHES {
        let _ = write!(out, "\n  {name:<10} {about}");
    }
    out
}
