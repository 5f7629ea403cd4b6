//! `cargo xtask bench apply`: installing the full default Flux v2.9.4 component set with
//! [`Cluster::apply`] versus `kubectl apply --server-side --field-manager flux
//! --force-conflicts -f` of the same file, in one run, on the two fresh clusters of a private
//! harness control plane (same etcd, same binaries).
//!
//! Figures: the first apply (both include connecting; ours also waits for the CRDs to be
//! Established, kubectl does not) and the no-op re-apply (median of several runs), plus the
//! write requests the API server counted (`apiserver_request_total`, non-dry-run mutating
//! verbs) during the no-op runs. Targets: first apply no slower than kubectl; no-op re-apply
//! under 1 s with zero writes.

#![expect(
    clippy::print_stdout,
    reason = "a benchmark reports its figures on stdout"
)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fluxbootstrap_cluster::{ApplyOptions, Change, Cluster, KubeOptions, NoReporter};
use fluxbootstrap_test::ControlPlane;
use serde_json::Value;

const NOOP_RUNS: usize = 5;

fn main() {
    let manifests = std::env::var_os("FLUXBOOTSTRAP_FLUX_MANIFESTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/flux-manifests"),
        PathBuf::from,
    );
    let file = manifests.join("golden/default/gotk-components.yaml");
    let text = std::fs::read_to_string(&file)
        .expect("the Flux reference manifests are in ../shared/flux-manifests");
    let objects: Vec<Value> = serde_saphyr::from_multiple::<Value>(&text)
        .expect("the golden file is valid YAML")
        .into_iter()
        .filter(Value::is_object)
        .collect();
    println!(
        "apply benchmark: {} objects ({} KiB) from {}",
        objects.len(),
        text.len() / 1024,
        file.display()
    );
    println!("starting a private control plane (two fresh clusters)...");
    let cp = ControlPlane::start();
    let (ours_ctx, kubectl_ctx) = (
        cp.admin_context().to_owned(),
        cp.second_context().to_owned(),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime builds");
    let opts = KubeOptions {
        kubeconfig: Some(cp.kubeconfig().to_owned()),
        context: Some(ours_ctx.clone()),
        ..KubeOptions::default()
    };
    let apply = |expect_unchanged: bool| {
        rt.block_on(async {
            let start = Instant::now();
            let cluster = Cluster::connect(&opts)
                .await
                .expect("connects to the harness");
            let report = cluster
                .apply(objects.clone(), &ApplyOptions::default(), &NoReporter)
                .await
                .expect("the apply succeeds");
            let took = start.elapsed();
            if expect_unchanged {
                assert_eq!(
                    report.count(Change::Unchanged),
                    objects.len(),
                    "a re-apply changes nothing"
                );
            } else {
                assert_eq!(
                    report.count(Change::Created),
                    objects.len(),
                    "a first apply creates everything"
                );
            }
            (took, report.writes)
        })
    };
    let kubectl = || {
        let start = Instant::now();
        let out = cp
            .kubectl()
            .args([
                "--context",
                &kubectl_ctx,
                "apply",
                "--server-side",
                "--field-manager",
                "flux",
                "--force-conflicts",
                "-f",
            ])
            .arg(&file)
            .output()
            .expect("kubectl runs");
        let took = start.elapsed();
        assert!(
            out.status.success(),
            "kubectl apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        took
    };

    let ours_first = apply(false).0;
    let kubectl_first = kubectl();

    let writes_before = (
        write_requests(&cp, &ours_ctx),
        write_requests(&cp, &kubectl_ctx),
    );
    let mut ours_noop = Vec::new();
    let mut our_writes = 0;
    for _ in 0..NOOP_RUNS {
        let (took, writes) = apply(true);
        ours_noop.push(took);
        our_writes += writes;
    }
    let ours_server_writes = write_requests(&cp, &ours_ctx) - writes_before.0;
    let kubectl_noop: Vec<Duration> = (0..NOOP_RUNS).map(|_| kubectl()).collect();
    let kubectl_server_writes = write_requests(&cp, &kubectl_ctx) - writes_before.1;

    let (ours_noop, kubectl_noop) = (median(ours_noop), median(kubectl_noop));
    println!();
    println!("{:<34} {:>12} {:>12} {:>8}", "", "ours", "kubectl", "ratio");
    row("first apply", ours_first, kubectl_first);
    row(
        &format!("no-op re-apply (median of {NOOP_RUNS})"),
        ours_noop,
        kubectl_noop,
    );
    println!(
        "{:<34} {:>12} {:>12}",
        "writes per no-op re-apply (server)",
        format!("{:.1}", per_run(ours_server_writes)),
        format!("{:.1}", per_run(kubectl_server_writes)),
    );
    println!(
        "{:<34} {:>12}",
        "writes per no-op re-apply (client)",
        format!("{:.1}", per_run(our_writes))
    );
    println!();
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "target first apply <= kubectl:        {}",
        verdict(ours_first <= kubectl_first)
    );
    println!(
        "target no-op re-apply < 1 s:          {}",
        verdict(ours_noop < Duration::from_secs(1))
    );
    println!(
        "target zero writes on no-op re-apply: {}",
        verdict(ours_server_writes == 0 && our_writes == 0)
    );
}

fn row(name: &str, ours: Duration, kubectl: Duration) {
    println!(
        "{name:<34} {:>10.0}ms {:>10.0}ms {:>7.2}x",
        ours.as_secs_f64() * 1e3,
        kubectl.as_secs_f64() * 1e3,
        ours.as_secs_f64() / kubectl.as_secs_f64()
    );
}

#[expect(clippy::cast_precision_loss, reason = "small counts")]
fn per_run(total: usize) -> f64 {
    total as f64 / NOOP_RUNS as f64
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Non-dry-run mutating requests the API server behind `context` has served so far.
fn write_requests(cp: &ControlPlane, context: &str) -> usize {
    let out: std::process::Output = cp
        .kubectl()
        .args(["--context", context, "get", "--raw", "/metrics"])
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "reading /metrics failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    count_writes(&String::from_utf8_lossy(&out.stdout))
}

/// The resources of the bundle's objects; the API server's own writes (leases, events) are
/// not counted.
const BUNDLE_RESOURCES: &[&str] = &[
    "customresourcedefinitions",
    "namespaces",
    "clusterroles",
    "clusterrolebindings",
    "resourcequotas",
    "serviceaccounts",
    "services",
    "deployments",
    "networkpolicies",
];

/// Sums `apiserver_request_total` over mutating verbs without `dry_run` on bundle resources.
fn count_writes(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| {
            BUNDLE_RESOURCES
                .iter()
                .any(|r| l.contains(&format!("resource=\"{r}\"")))
        })
        .filter(|l| {
            [
                "verb=\"POST\"",
                "verb=\"PUT\"",
                "verb=\"PATCH\"",
                "verb=\"APPLY\"",
                "verb=\"DELETE\"",
                "verb=\"DELETECOLLECTION\"",
            ]
            .iter()
            .any(|v| l.contains(v))
        })
        .filter(|l| l.contains("dry_run=\"\"") || !l.contains("dry_run="))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "counters are small non-negative integers"
            )]
            let n = v as usize;
            n
        })
        .sum()
}
