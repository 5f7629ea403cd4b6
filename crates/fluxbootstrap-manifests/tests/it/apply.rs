//! The rendered manifest applied with server-side apply to the harness's real
//! kube-apiserver: every object is accepted and the CRDs become Established.

use fluxbootstrap_manifests::{InstallOptions, render_components, split_objects};
use fluxbootstrap_test::ControlPlane;

use crate::support::{fixture_bundle, flux_manifests_dir, load_bundle};

#[test]
fn server_side_apply_establishes_crds() {
    let bundle =
        flux_manifests_dir().map_or_else(fixture_bundle, |d| load_bundle(&d.join("v2.9.4")));
    let cp = ControlPlane::shared();
    let namespace = cp.unique_name("flux");
    let opts = InstallOptions {
        namespace: namespace.clone(),
        components_extra: vec![
            "image-reflector-controller".to_owned(),
            "image-automation-controller".to_owned(),
            "source-watcher".to_owned(),
        ],
        ..InstallOptions::default()
    };
    let yaml = render_components(&bundle, &opts).expect("renders");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("gotk-components.yaml");
    std::fs::write(&file, &yaml).expect("writable");

    let out = cp
        .kubectl()
        .args([
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=flux",
            "-f",
        ])
        .arg(&file)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "server-side apply failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let objects = split_objects(&yaml).expect("parses");
    let crds: Vec<String> = objects
        .iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition")
        .map(|o| format!("crd/{}", o["metadata"]["name"].as_str().unwrap_or_default()))
        .collect();
    assert!(!crds.is_empty());
    let out = cp
        .kubectl()
        .args(["wait", "--for=condition=Established", "--timeout=60s"])
        .args(&crds)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "CRDs not Established:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Read one object back: the server kept what we rendered.
    let out = cp
        .kubectl()
        .args([
            "get",
            "deployment",
            "source-controller",
            "-n",
            &namespace,
            "-o",
            "json",
        ])
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        live["metadata"]["labels"]["app.kubernetes.io/instance"],
        namespace.as_str()
    );
    assert_eq!(
        live["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/os"],
        "linux"
    );
    let objects_in_ns = objects
        .iter()
        .filter(|o| o["metadata"]["namespace"] == namespace.as_str())
        .count();
    assert!(objects_in_ns > 5);
}
