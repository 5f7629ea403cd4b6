//! Writes the kustomize overlay flux builds for `gotk-components.yaml` (its
//! `pkg/manifestgen/install` templates), so tests and the `render` bench can run the real
//! `kubectl kustomize` on exactly what flux would. flux's kustomize keeps resource order;
//! `sortOptions: fifo` makes kubectl's kustomize (which sorts by kind by default) do the same.
//!
//! Shared by the integration tests and `benches/render.rs` through `#[path]`.

use std::fmt::Write as _;
use std::path::Path;

use fluxbootstrap_manifests::{Bundle, InstallOptions, validate_components};

/// Writes the bundle files and flux's generated kustomization into `dir`.
pub(crate) fn write_overlay(dir: &Path, bundle: &Bundle, opts: &InstallOptions) {
    let components = validate_components(&opts.components, &opts.components_extra)
        .expect("overlay options are valid because tests choose them");
    let ns = &opts.namespace;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("has a parent because it is in dir"))
            .expect("temp dir is writable");
        std::fs::write(path, text).expect("temp dir is writable");
    };
    for (name, text) in bundle.files() {
        if name == "rbac.yaml" {
            write("roles/rbac.yaml", &text.replace("flux-system", ns));
        } else {
            write(name, text);
        }
    }
    write(
        "roles/kustomization.yaml",
        &format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: {ns}\nresources:\n  - rbac.yaml\nnameSuffix: -{ns}\n"
        ),
    );
    write(
        "namespace.yaml",
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    pod-security.kubernetes.io/warn: restricted\n    pod-security.kubernetes.io/warn-version: latest\n"
        ),
    );
    write(
        "labels.yaml",
        &format!(
            "apiVersion: builtin\nkind: LabelTransformer\nmetadata:\n  name: labels\nlabels:\n  app.kubernetes.io/instance: {ns}\n  app.kubernetes.io/version: \"{}\"\n  app.kubernetes.io/part-of: flux\nfieldSpecs:\n  - path: metadata/labels\n    create: true\n  - kind: Deployment\n    path: spec/template/metadata/labels\n    create: true\n",
            opts.version
        ),
    );
    let mut node_selector = String::from(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: all\nspec:\n  template:\n    spec:\n      nodeSelector:\n        kubernetes.io/os: linux\n",
    );
    if let Some(secret) = &opts.image_pull_secret {
        let _ = write!(
            node_selector,
            "      imagePullSecrets:\n       - name: {secret}\n"
        );
    }
    if !opts.toleration_keys.is_empty() {
        node_selector.push_str("      tolerations:\n");
        for key in &opts.toleration_keys {
            let _ = write!(
                node_selector,
                "       - key: \"{key}\"\n         operator: \"Exists\"\n"
            );
        }
    }
    write("node-selector.yaml", &node_selector);

    let events_addr = if components.iter().any(|c| c == "notification-controller") {
        format!(
            "http://notification-controller.$(RUNTIME_NAMESPACE).svc.{}./",
            opts.cluster_domain
        )
    } else {
        String::new()
    };
    let mut k = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: {ns}\nsortOptions:\n  order: fifo\ntransformers:\n  - labels.yaml\nresources:\n  - namespace.yaml\n"
    );
    if opts.network_policy {
        k.push_str("  - policies.yaml\n");
    }
    k.push_str("  - roles\n");
    for c in &components {
        let _ = writeln!(k, "  - {c}.yaml");
    }
    k.push_str("patches:\n- path: node-selector.yaml\n  target:\n    kind: Deployment\n");
    let watch = format!("--watch-all-namespaces={}", opts.watch_all_namespaces);
    let level = format!("--log-level={}", opts.log_level);
    for c in &components {
        let mut ops: Vec<(String, String, String)> = Vec::new();
        let replace = |i: usize, v: &str| {
            (
                "replace".to_owned(),
                format!("/spec/template/spec/containers/0/args/{i}"),
                v.to_owned(),
            )
        };
        if c == "notification-controller" {
            ops.push(replace(0, &watch));
            ops.push(replace(1, &level));
        } else {
            ops.push(replace(0, &format!("--events-addr={events_addr}")));
            ops.push(replace(1, &watch));
            ops.push(replace(2, &level));
            if c == "source-controller" || c == "source-watcher" {
                ops.push(replace(
                    6,
                    &format!(
                        "--storage-adv-addr={c}.$(RUNTIME_NAMESPACE).svc.{}.",
                        opts.cluster_domain
                    ),
                ));
            }
        }
        if components.iter().any(|x| x == "source-watcher")
            && (c == "kustomize-controller" || c == "helm-controller")
        {
            ops.push((
                "add".to_owned(),
                "/spec/template/spec/containers/0/args/-".to_owned(),
                "--feature-gates=ExternalArtifact=true".to_owned(),
            ));
        }
        let _ = write!(
            k,
            "- target:\n    group: apps\n    version: v1\n    kind: Deployment\n    name: {c}\n  patch: |-\n"
        );
        for (op, path, value) in ops {
            let _ = write!(
                k,
                "    - op: {op}\n      path: {path}\n      value: {value}\n"
            );
        }
    }
    if !opts.registry.is_empty() {
        k.push_str("images:\n");
        for c in &components {
            let _ = write!(
                k,
                "  - name: fluxcd/{c}\n    newName: {}/{c}\n",
                opts.registry
            );
        }
    }
    write("kustomization.yaml", &k);
}
