//! Staged server-side apply with small objects on the shared control plane.

use std::time::Duration;

use fluxbootstrap_cluster::{ApplyOptions, Change, ClusterError, NoReporter};
use fluxbootstrap_test::ControlPlane;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::{api, config_map, connect, deployment, namespace, raw_client, rt};

fn changes(report: &fluxbootstrap_cluster::ApplyReport) -> Vec<(String, Change)> {
    report
        .entries
        .iter()
        .map(|e| (e.object.to_string(), e.change))
        .collect()
}

#[test]
fn created_configured_unchanged_and_a_noop_reapply_writes_nothing() {
    let cp = ControlPlane::shared();
    let ns = cp.unique_name("apply");
    let role = cp.unique_name("role");
    rt().block_on(async {
        let cluster = connect(cp, cp.admin_context()).await;
        let objects = |value: &str| {
            vec![
                deployment(&ns, "controller"),
                config_map(&ns, "settings", &json!({"key": value})),
                json!({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"controller","namespace":ns}}),
                json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":role},
                    "rules":[{"apiGroups":[""],"resources":["configmaps"],"verbs":["get"]}]}),
                namespace(&ns),
            ]
        };
        let opts = ApplyOptions::default();
        let first = cluster.apply(objects("a"), &opts, &NoReporter).await.unwrap();
        assert_eq!(
            changes(&first),
            [
                (format!("Namespace/{ns}"), Change::Created),
                (format!("ClusterRole/{role}"), Change::Created),
                (format!("ServiceAccount/{ns}/controller"), Change::Created),
                (format!("ConfigMap/{ns}/settings"), Change::Created),
                (format!("Deployment/{ns}/controller"), Change::Created),
            ],
            "stage 1 first, then Flux's kind order"
        );
        assert_eq!(first.writes, 5);

        let again = cluster.apply(objects("a"), &opts, &NoReporter).await.unwrap();
        assert_eq!(again.count(Change::Unchanged), 5, "{:?}", changes(&again));
        assert_eq!(again.writes, 0, "a no-op re-apply sends no write request");

        let plan = cluster.apply(objects("b"), &ApplyOptions { dry_run: true, ..opts.clone() }, &NoReporter).await.unwrap();
        let entry = plan.entries.iter().find(|e| e.object.kind == "ConfigMap").unwrap();
        assert_eq!(entry.change, Change::Configured);
        assert_eq!(entry.diff.as_deref(), Some("~ data.key: \"a\" -> \"b\""));
        assert_eq!(plan.count(Change::Unchanged), 4);
        assert_eq!(plan.writes, 0);
        let client = raw_client(cp, cp.admin_context()).await;
        let live = api(&client, "v1", "ConfigMap", "configmaps", Some(&ns)).get("settings").await.unwrap();
        assert_eq!(live.data["data"]["key"], "a", "dry run wrote nothing");

        let real = cluster.apply(objects("b"), &opts, &NoReporter).await.unwrap();
        assert_eq!(real.count(Change::Configured), 1);
        assert_eq!(real.writes, 1);
        let live = api(&client, "v1", "ConfigMap", "configmaps", Some(&ns)).get("settings").await.unwrap();
        assert_eq!(live.data["data"]["key"], "b");
    });
}

#[test]
fn dry_run_into_a_namespace_that_does_not_exist_yet_writes_nothing() {
    let cp = ControlPlane::shared();
    let ns = cp.unique_name("dry");
    rt().block_on(async {
        let cluster = connect(cp, cp.admin_context()).await;
        let opts = ApplyOptions {
            dry_run: true,
            ..ApplyOptions::default()
        };
        let objects = vec![namespace(&ns), config_map(&ns, "c", &json!({"a": "1"}))];
        let plan = cluster.apply(objects, &opts, &NoReporter).await.unwrap();
        assert_eq!(plan.count(Change::Created), 2);
        assert_eq!(plan.writes, 0);
        let client = raw_client(cp, cp.admin_context()).await;
        let namespaces = api(&client, "v1", "Namespace", "namespaces", None);
        assert!(namespaces.get_opt(&ns).await.unwrap().is_none());
    });
}

#[test]
fn a_conflict_with_another_field_manager_is_resolved_by_force() {
    let cp = ControlPlane::shared();
    let ns = cp.unique_name("conflict");
    rt().block_on(async {
        let cluster = connect(cp, cp.admin_context()).await;
        let client = raw_client(cp, cp.admin_context()).await;
        cluster
            .apply(vec![namespace(&ns)], &ApplyOptions::default(), &NoReporter)
            .await
            .unwrap();
        let cms = api(&client, "v1", "ConfigMap", "configmaps", Some(&ns));
        cms.patch(
            "owned",
            &PatchParams::apply("intruder"),
            &Patch::Apply(config_map(&ns, "owned", &json!({"a": "2"}))),
        )
        .await
        .unwrap();
        // Without force the API server refuses (409): the field belongs to `intruder`.
        let err = cms
            .patch(
                "owned",
                &PatchParams::apply("flux"),
                &Patch::Apply(config_map(&ns, "owned", &json!({"a": "1"}))),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, kube::Error::Api(s) if s.code == 409),
            "{err:?}"
        );

        let report = cluster
            .apply(
                vec![config_map(&ns, "owned", &json!({"a": "1"}))],
                &ApplyOptions::default(),
                &NoReporter,
            )
            .await
            .unwrap();
        assert_eq!(report.entries[0].change, Change::Configured);
        let live = cms.get("owned").await.unwrap();
        assert_eq!(live.data["data"]["a"], "1");
        let managers: Vec<String> = live
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .filter(|f| {
                f.fields_v1
                    .as_ref()
                    .is_some_and(|v| v.0.to_string().contains("f:a"))
            })
            .filter_map(|f| f.manager)
            .collect();
        assert_eq!(managers, ["flux"], "flux took the field over");
    });
}

fn crd(group: &str, plural: &str, kind: &str) -> serde_json::Value {
    json!({"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
        "metadata":{"name":format!("{plural}.{group}")},
        "spec":{"group":group,"scope":"Namespaced",
            "names":{"plural":plural,"singular":plural.trim_end_matches('s'),"kind":kind,"listKind":format!("{kind}List")},
            "versions":[{"name":"v1","served":true,"storage":true,
                "schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}]}})
}

#[test]
fn custom_resources_are_applied_after_their_crd_is_established() {
    let cp = ControlPlane::shared();
    let group = format!("{}.example.com", cp.unique_name("g"));
    let ns = cp.unique_name("cr");
    rt().block_on(async {
        let cluster = connect(cp, cp.admin_context()).await;
        let widget = json!({"apiVersion":format!("{group}/v1"),"kind":"Widget","metadata":{"name":"w","namespace":ns},"spec":{"size":1}});
        let objects = vec![widget, crd(&group, "widgets", "Widget"), namespace(&ns)];
        let dry = cluster.apply(objects.clone(), &ApplyOptions { dry_run: true, ..ApplyOptions::default() }, &NoReporter).await;
        assert_eq!(dry.unwrap().count(Change::Created), 3, "a dry run plans CRs of CRDs it would create");
        let report = cluster.apply(objects.clone(), &ApplyOptions::default(), &NoReporter).await.unwrap();
        assert_eq!(report.count(Change::Created), 3);
        let again = cluster.apply(objects, &ApplyOptions::default(), &NoReporter).await.unwrap();
        assert_eq!((again.count(Change::Unchanged), again.writes), (3, 0));
    });
}

#[test]
fn a_crd_that_never_becomes_established_fails_with_a_clear_error() {
    let cp = ControlPlane::shared();
    let group = format!("{}.example.com", cp.unique_name("clash"));
    rt().block_on(async {
        let cluster = connect(cp, cp.admin_context()).await;
        cluster
            .apply(
                vec![crd(&group, "foos", "Foo")],
                &ApplyOptions::default(),
                &NoReporter,
            )
            .await
            .unwrap();
        // Same kind in the same group: the API server refuses the names, so it never establishes.
        let opts = ApplyOptions {
            timeout: Duration::from_secs(3),
            ..ApplyOptions::default()
        };
        let err = cluster
            .apply(vec![crd(&group, "bars", "Foo")], &opts, &NoReporter)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClusterError::CrdsNotEstablished { .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with("CustomResourceDefinitions not established within 3s: "),
            "{message}"
        );
        assert!(
            message.contains(&format!("bars.{group} (NamesAccepted=False")),
            "{message}"
        );
        assert!(err.hint().unwrap().contains("NamesAccepted=False"));
    });
}

#[test]
fn an_unknown_kind_is_reported_by_name() {
    let cp = ControlPlane::shared();
    rt().block_on(async {
        let cluster = connect(cp, cp.admin_context()).await;
        let object = json!({"apiVersion":"nothing.example.com/v1","kind":"Ghost","metadata":{"name":"g","namespace":"default"}});
        let err = cluster.apply(vec![object], &ApplyOptions::default(), &NoReporter).await.unwrap_err();
        assert_eq!(err.to_string(), "The API server does not serve kind `Ghost` of `nothing.example.com/v1`");
    });
}
