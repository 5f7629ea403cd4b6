//! Preflight: version, cluster-admin, other-tool installs, path conflicts.

use fluxbootstrap_cluster::{ApplyOptions, ClusterError, NoReporter, PreflightRequest};
use fluxbootstrap_test::ControlPlane;
use serde_json::json;

use crate::{bundle_crds, connect, namespace, rt, shared_with_flux_crds};

fn request(ns: &str, path: &str, force: bool) -> PreflightRequest {
    PreflightRequest {
        namespace: ns.to_owned(),
        path: path.to_owned(),
        force,
    }
}

#[test]
fn an_admin_on_a_supported_version_passes() {
    let cp = ControlPlane::shared();
    let ns = cp.unique_name("pre");
    rt().block_on(async {
        let cluster = connect(cp, cp.admin_context()).await;
        let report = cluster
            .preflight(&request(&ns, "./clusters/a", false))
            .await
            .unwrap();
        assert!(
            report.server_version.starts_with("v1.36."),
            "{}",
            report.server_version
        );
        if let Some(existing) = report.existing {
            assert_eq!(
                existing.kustomization_path, None,
                "no Kustomization in a fresh namespace"
            );
        }
    });
}

#[test]
fn a_user_without_cluster_admin_is_refused_before_anything_is_applied() {
    let cp = ControlPlane::shared();
    let ns = cp.unique_name("jane");
    rt().block_on(async {
        let cluster = connect(cp, cp.nonadmin_context()).await;
        let err = cluster
            .preflight(&request(&ns, "./x", true))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClusterError::NotClusterAdmin { .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "The user of context `nonadmin` is not cluster-admin"
        );
        assert_eq!(
            err.hint().unwrap(),
            "bootstrap needs cluster-admin; pass `--context` with an admin user"
        );
        // The same user applying directly is refused on the first object, with the same advice.
        let err = cluster
            .apply(vec![namespace(&ns)], &ApplyOptions::default(), &NoReporter)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("Failed to apply `Namespace/{ns}`")),
            "{err}"
        );
        assert_eq!(
            err.hint().unwrap(),
            "the user needs cluster-admin rights to install Flux"
        );
    });
}

#[test]
fn an_install_managed_by_another_tool_needs_force() {
    // The second cluster of the shared control plane: only this test changes its Flux CRDs.
    let cp = ControlPlane::shared();
    rt().block_on(async {
        let cluster = connect(cp, cp.second_context()).await;
        let crds = bundle_crds()
            .into_iter()
            .map(|mut crd| {
                crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] = json!("Helm");
                crd
            })
            .collect();
        cluster
            .apply(crds, &ApplyOptions::default(), &NoReporter)
            .await
            .unwrap();

        let err = cluster
            .preflight(&request("flux-system", "./clusters/a", false))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Flux v2.9.4 on this cluster is managed by `Helm`"
        );
        assert_eq!(
            err.hint().unwrap(),
            "remove the `Helm` installation first, or pass `--force` to take it over"
        );

        let report = cluster
            .preflight(&request("flux-system", "./clusters/a", true))
            .await
            .unwrap();
        let existing = report.existing.unwrap();
        assert_eq!(existing.managed_by.as_deref(), Some("Helm"));
        assert_eq!(existing.version.as_deref(), Some("v2.9.4"));
        assert_eq!(
            cluster.flux_version().await.unwrap().as_deref(),
            Some("v2.9.4")
        );
    });
}

#[test]
fn a_kustomization_syncing_another_path_is_refused_like_flux() {
    let cp = shared_with_flux_crds();
    let ns = cp.unique_name("path");
    rt().block_on(async {
        let cluster = connect(cp, cp.admin_context()).await;
        let k = json!({"apiVersion":"kustomize.toolkit.fluxcd.io/v1","kind":"Kustomization","metadata":{"name":ns,"namespace":ns},
            "spec":{"interval":"10m","path":"./clusters/a","prune":true,"sourceRef":{"kind":"GitRepository","name":ns}}});
        cluster.apply(vec![namespace(&ns), k], &ApplyOptions::default(), &NoReporter).await.unwrap();

        let err = cluster.preflight(&request(&ns, "clusters/b/", false)).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Sync path `./clusters/b` would overwrite path `./clusters/a` of the existing Kustomization `{ns}/{ns}`")
        );
        assert_eq!(err.hint().unwrap(), "pass `--path ./clusters/a`, or change the Kustomization's path first");

        let report = cluster.preflight(&request(&ns, "clusters/a/", false)).await.unwrap();
        let existing = report.existing.unwrap();
        assert_eq!(existing.kustomization_path.as_deref(), Some("./clusters/a"));
        assert_eq!(existing.applied_revision, None);
    });
}

#[test]
fn a_namespace_protected_by_an_admission_policy_is_reported() {
    let cp = ControlPlane::shared();
    let ns = cp.unique_name("guarded");
    let policy = format!(
        "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {ns}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [\"\"]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [serviceaccounts]
  validations:
  - expression: \"false\"
    message: namespace {ns} is reserved
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {ns}
spec:
  policyName: {ns}
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: {ns}
"
    );
    let created = cp
        .kubectl()
        .args(["create", "namespace", &ns])
        .status()
        .unwrap();
    assert!(created.success());
    let mut apply = cp
        .kubectl()
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut apply.stdin.take().unwrap(), policy.as_bytes()).unwrap();
    assert!(apply.wait().unwrap().success());
    rt().block_on(async {
        let cluster = connect(cp, cp.admin_context()).await;
        // A new policy takes a moment to be enforced.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let err = loop {
            match cluster
                .preflight(&request(&ns, "./clusters/a", false))
                .await
            {
                Err(err) => break err,
                Ok(_) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
                Ok(_) => panic!("the protected namespace was not reported"),
            }
        };
        assert!(
            matches!(err, ClusterError::NamespaceProtected { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("is reserved"), "{err}");
        assert!(err.hint().unwrap().contains("-n"));
    });
    let other = cp.unique_name("free");
    rt().block_on(async {
        let cluster = connect(cp, cp.admin_context()).await;
        cluster
            .preflight(&request(&other, "./clusters/a", false))
            .await
            .unwrap();
    });
}
