//! `cargo xtask bench render`: time to render the default `gotk-components.yaml` versus
//! `kubectl kustomize` of the overlay flux builds for the same options, in one run.
//!
//! Uses the real Flux v2.9.4 bundle from `$FLUXBOOTSTRAP_FLUX_MANIFESTS` (or
//! `../shared/flux-manifests` next to the checkout), else the project's fixture bundle.
//! kubectl is the harness's built one when present, else the one on the system.

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

#[path = "../tests/it/overlay.rs"]
mod overlay;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fluxbootstrap_manifests::{BUNDLE_FILES, Bundle, InstallOptions, render_components};

fn bundle_dir() -> (PathBuf, &'static str) {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        std::env::var_os("FLUXBOOTSTRAP_FLUX_MANIFESTS").map(PathBuf::from),
        Some(manifest_dir.join("../../../shared/flux-manifests")),
    ];
    for dir in candidates.into_iter().flatten() {
        if dir.join("v2.9.4/rbac.yaml").is_file() {
            return (dir.join("v2.9.4"), "Flux v2.9.4 bundle");
        }
    }
    (manifest_dir.join("tests/fixtures/bundle"), "fixture bundle")
}

fn kubectl() -> Option<PathBuf> {
    let built = fluxbootstrap_test::ControlPlane::bin_dir().join("kubectl");
    [built, PathBuf::from("/usr/bin/kubectl")]
        .into_iter()
        .find(|p| p.is_file())
}

/// (median, minimum): on a shared machine the minimum is the best estimate of the
/// uncontended cost, the median what a user typically sees.
fn stats(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (samples[samples.len() / 2], samples[0])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let (dir, what) = bundle_dir();
    let files: BTreeMap<String, String> = BUNDLE_FILES
        .iter()
        .filter_map(|name| {
            std::fs::read_to_string(dir.join(name))
                .ok()
                .map(|t| ((*name).to_owned(), t))
        })
        .collect();
    let bundle = Bundle::from_files(files).expect("the bench bundle is complete");
    let opts = InstallOptions::default();

    // Warm up, then time the renderer.
    let reference = render_components(&bundle, &opts).expect("renders");
    let runs = 50;
    let (ours, ours_min) = stats(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                let out = render_components(&bundle, &opts).expect("renders");
                let elapsed = start.elapsed();
                assert_eq!(out.len(), reference.len());
                elapsed
            })
            .collect(),
    );
    println!("bundle: {what} ({})", dir.display());
    println!(
        "render_components (default case, {} bytes): median {:.2} ms, min {:.2} ms over {runs} runs",
        reference.len(),
        ms(ours),
        ms(ours_min)
    );

    let Some(kubectl) = kubectl() else {
        println!("kubectl not found: skipping the kustomize comparison");
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    overlay::write_overlay(tmp.path(), &bundle, &opts);
    let kustomize_runs = 7;
    let (theirs, theirs_min) = stats(
        (0..kustomize_runs)
            .map(|_| {
                let start = Instant::now();
                let out = Command::new(&kubectl)
                    .arg("kustomize")
                    .arg(tmp.path())
                    .output()
                    .expect("kubectl runs");
                let elapsed = start.elapsed();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                elapsed
            })
            .collect(),
    );
    println!(
        "kubectl kustomize ({}): median {:.2} ms, min {:.2} ms over {kustomize_runs} runs",
        kubectl.display(),
        ms(theirs),
        ms(theirs_min)
    );
    println!(
        "ratio: {:.1}x faster by median, {:.1}x by min (targets: >= 20x, < 20 ms)",
        ms(theirs) / ms(ours),
        ms(theirs_min) / ms(ours_min)
    );
}
