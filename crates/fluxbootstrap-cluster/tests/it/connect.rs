//! kubectl's connection flags against the real API server: `--token` authenticates,
//! `--as` impersonates (and RBAC judges the impersonated user).

use fluxbootstrap_cluster::{Cluster, KubeOptions, KubeOverrides};
use fluxbootstrap_test::ControlPlane;

use crate::rt;

/// The admin user's static token, read from the harness kubeconfig.
fn admin_token(cp: &ControlPlane) -> String {
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cp.kubeconfig()).unwrap()).unwrap();
    config["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "admin")
        .and_then(|u| u["user"]["token"].as_str())
        .unwrap()
        .to_owned()
}

/// Reads the cluster-scoped Flux CRD, which needs RBAC that jane does not have.
async fn can_read_crds(opts: &KubeOptions) -> Result<(), fluxbootstrap_cluster::ClusterError> {
    let cluster = Cluster::connect(opts).await.unwrap();
    cluster.flux_version().await.map(|_| ())
}

/// The error and its sources, where the API server's message names the user.
fn anyhow_chain(err: &dyn std::error::Error) -> Vec<String> {
    let mut out = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        out.push(e.to_string());
        source = e.source();
    }
    out
}

#[test]
fn token_and_impersonation_flags_reach_the_api_server() {
    let cp = ControlPlane::shared();
    let token = admin_token(cp);
    rt().block_on(async {
        let base = KubeOptions {
            kubeconfig: Some(cp.kubeconfig().to_owned()),
            ..KubeOptions::default()
        };
        // jane may not read CRDs ...
        let jane = KubeOptions {
            context: Some(cp.nonadmin_context().to_owned()),
            ..base.clone()
        };
        assert!(can_read_crds(&jane).await.is_err());
        // ... with the admin's `--token` she can.
        let with_token = KubeOptions {
            overrides: KubeOverrides {
                token: Some(fluxbootstrap_auth::SecretString::from(token)),
                ..KubeOverrides::default()
            },
            ..jane
        };
        can_read_crds(&with_token).await.unwrap();
        // The admin `--as jane` is judged as jane.
        let impersonating = KubeOptions {
            context: Some(cp.admin_context().to_owned()),
            overrides: KubeOverrides {
                impersonate: Some("jane".to_owned()),
                ..KubeOverrides::default()
            },
            ..base
        };
        let err = can_read_crds(&impersonating).await.unwrap_err();
        let chain = anyhow_chain(&err).join(": ");
        assert!(chain.contains("User \"jane\" cannot get"), "{chain}");
    });
}
