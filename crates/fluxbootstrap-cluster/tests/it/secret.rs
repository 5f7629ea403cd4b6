//! The Flux source Secret: exact key set, labels, dry run.

use fluxbootstrap_auth::ExposeSecret as _;
use std::collections::BTreeMap;

use fluxbootstrap_auth::SecretBytes;
use fluxbootstrap_cluster::{ApplyOptions, Change, NoReporter};
use fluxbootstrap_test::ControlPlane;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::{connect, namespace, raw_client, rt};

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, SecretBytes> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), SecretBytes::from(v.as_bytes().to_vec())))
        .collect()
}

fn keys(map: &BTreeMap<String, SecretBytes>) -> Vec<&str> {
    map.keys().map(String::as_str).collect()
}

#[test]
fn the_secret_holds_exactly_the_new_keys_and_stale_ones_are_removed() {
    let cp = ControlPlane::shared();
    let ns = cp.unique_name("secret");
    rt().block_on(async {
        let cluster = connect(cp, cp.admin_context()).await;
        cluster
            .apply(vec![namespace(&ns)], &ApplyOptions::default(), &NoReporter)
            .await
            .unwrap();
        assert!(
            cluster
                .get_secret(&ns, "flux-system")
                .await
                .unwrap()
                .is_none()
        );

        let token = data(&[("username", "git"), ("password", "pat-1")]);
        assert_eq!(
            cluster
                .reconcile_secret(&ns, "flux-system", token.clone(), false)
                .await
                .unwrap(),
            Change::Created
        );
        assert_eq!(
            cluster
                .reconcile_secret(&ns, "flux-system", token, false)
                .await
                .unwrap(),
            Change::Unchanged
        );

        // Switching to SSH: username/password must disappear.
        let ssh = data(&[
            ("identity", "PRIVATE"),
            ("identity.pub", "ssh-ed25519 AAAA\n"),
            ("known_hosts", "[h]:22 ssh-rsa AAAA"),
        ]);
        let planned = cluster
            .reconcile_secret(&ns, "flux-system", ssh.clone(), true)
            .await
            .unwrap();
        assert_eq!(planned, Change::Configured);
        let live = cluster
            .get_secret(&ns, "flux-system")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            keys(&live),
            ["password", "username"],
            "the dry run changed nothing"
        );

        assert_eq!(
            cluster
                .reconcile_secret(&ns, "flux-system", ssh, false)
                .await
                .unwrap(),
            Change::Configured
        );
        let live = cluster
            .get_secret(&ns, "flux-system")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(keys(&live), ["identity", "identity.pub", "known_hosts"]);
        assert_eq!(live["identity"].expose_secret(), b"PRIVATE");

        let client = raw_client(cp, cp.admin_context()).await;
        let secret = Api::<Secret>::namespaced(client, &ns)
            .get("flux-system")
            .await
            .unwrap();
        // As flux writes it: no labels, field manager `flux`.
        assert_eq!(secret.metadata.labels, None);
        let managers: Vec<String> = secret
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .filter_map(|f| f.manager)
            .collect();
        assert_eq!(managers, ["flux"]);
    });
}

#[test]
fn secret_errors_do_not_contain_the_values() {
    let cp = ControlPlane::shared();
    let ns = cp.unique_name("nosuchns");
    rt().block_on(async {
        let cluster = connect(cp, cp.admin_context()).await;
        let err = cluster
            .reconcile_secret(
                &ns,
                "flux-system",
                data(&[("password", "super-secret-value")]),
                false,
            )
            .await
            .unwrap_err();
        let rendered = format!("{err} {err:?}");
        assert!(
            rendered.contains(&format!("Secret `{ns}/flux-system`")),
            "{rendered}"
        );
        assert!(!rendered.contains("super-secret-value"));
    });
}
