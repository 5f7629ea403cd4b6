//! `kustomization.yaml` of the flux folder: flux's default plus the patches Azure DevOps
//! needs, and the same patches applied to objects in memory for the cluster apply.
//!
//! The file is only written when absent (the caller decides); it is the supported place
//! for user patches, so a later run must never rewrite it.

use std::fmt::Write as _;

use crate::emit;
use crate::node::{Map, Node};

/// Controllers that clone or push git and so take the SSH and identity patches.
const GIT_CONTROLLERS: &str = "(source-controller|image-automation-controller)";

/// Workload identity of the source-controller (and image-automation-controller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureIdentity {
    /// Client id of the user-assigned managed identity / app registration.
    pub client_id: String,
    /// Tenant id; optional on AKS.
    pub tenant_id: Option<String>,
}

/// Patches added to `kustomization.yaml` when it is created.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KustomizationPatches {
    /// `--ssh-hostkey-algos` for the git controllers (SSH mode on Azure DevOps:
    /// `rsa-sha2-512`, `rsa-sha2-256`); empty adds nothing.
    pub ssh_hostkey_algos: Vec<String>,
    /// Service account annotation and pod label for Azure workload identity.
    pub azure_workload_identity: Option<AzureIdentity>,
}

impl KustomizationPatches {
    /// Whether there is any patch.
    pub fn is_empty(&self) -> bool {
        self.ssh_hostkey_algos.is_empty() && self.azure_workload_identity.is_none()
    }
}

fn s(value: &str) -> Node {
    Node::Str(value.to_owned())
}

fn patch_entry(kind: &str, patch: String) -> Node {
    let mut target = Map::default();
    target.insert("kind", s(kind));
    target.insert("name", s(GIT_CONTROLLERS));
    let mut entry = Map::default();
    entry.insert("patch", Node::Str(patch));
    entry.insert("target", Node::Map(target));
    Node::Map(entry)
}

/// Renders `kustomization.yaml` listing `gotk-components.yaml` and `gotk-sync.yaml`,
/// with `patches` when any are requested.
pub fn render_kustomization(patches: &KustomizationPatches) -> String {
    let mut root = Map::default();
    root.insert("apiVersion", s("kustomize.config.k8s.io/v1beta1"));
    root.insert("kind", s("Kustomization"));
    root.insert(
        "resources",
        Node::Seq(vec![s("gotk-components.yaml"), s("gotk-sync.yaml")]),
    );
    let mut entries = Vec::new();
    if !patches.ssh_hostkey_algos.is_empty() {
        entries.push(patch_entry(
            "Deployment",
            format!(
                "- op: add\n  path: /spec/template/spec/containers/0/args/-\n  value: --ssh-hostkey-algos={}\n",
                patches.ssh_hostkey_algos.join(",")
            ),
        ));
    }
    if let Some(identity) = &patches.azure_workload_identity {
        let mut sa = format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: controller\n  annotations:\n    azure.workload.identity/client-id: {}\n",
            identity.client_id
        );
        if let Some(tenant) = &identity.tenant_id {
            let _ = writeln!(sa, "    azure.workload.identity/tenant-id: {tenant}");
        }
        entries.push(patch_entry("ServiceAccount", sa));
        entries.push(patch_entry(
            "Deployment",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: controller\nspec:\n  template:\n    metadata:\n      labels:\n        azure.workload.identity/use: \"true\"\n"
                .to_owned(),
        ));
    }
    if !entries.is_empty() {
        root.insert("patches", Node::Seq(entries));
    }
    emit::document(&Node::Map(root))
}

/// Applies `patches` to rendered objects the way kustomize would when building the flux
/// folder, for callers that apply to the cluster without running kustomize.
pub fn patch_objects(objects: &mut [serde_json::Value], patches: &KustomizationPatches) {
    use serde_json::Value;
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        if !matches!(name, "source-controller" | "image-automation-controller") {
            continue;
        }
        match kind.as_str() {
            "Deployment" => {
                if !patches.ssh_hostkey_algos.is_empty()
                    && let Some(Value::Array(args)) =
                        object.pointer_mut("/spec/template/spec/containers/0/args")
                {
                    args.push(Value::String(format!(
                        "--ssh-hostkey-algos={}",
                        patches.ssh_hostkey_algos.join(",")
                    )));
                }
                if patches.azure_workload_identity.is_some() {
                    ensure_object(object, &["spec", "template", "metadata", "labels"]).insert(
                        "azure.workload.identity/use".to_owned(),
                        Value::from("true"),
                    );
                }
            }
            "ServiceAccount" => {
                if let Some(identity) = &patches.azure_workload_identity {
                    let annotations = ensure_object(object, &["metadata", "annotations"]);
                    annotations.insert(
                        "azure.workload.identity/client-id".to_owned(),
                        Value::from(identity.client_id.clone()),
                    );
                    if let Some(tenant) = &identity.tenant_id {
                        annotations.insert(
                            "azure.workload.identity/tenant-id".to_owned(),
                            Value::from(tenant.clone()),
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

fn ensure_object<'a>(
    value: &'a mut serde_json::Value,
    path: &[&str],
) -> &'a mut serde_json::Map<String, serde_json::Value> {
    let mut current = value;
    for key in path {
        if !current.is_object() {
            *current = serde_json::Value::Object(serde_json::Map::new());
        }
        current = current
            .as_object_mut()
            .expect("made an object just above")
            .entry((*key).to_owned())
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    }
    if !current.is_object() {
        *current = serde_json::Value::Object(serde_json::Map::new());
    }
    current.as_object_mut().expect("made an object just above")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matches_flux() {
        assert_eq!(
            render_kustomization(&KustomizationPatches::default()),
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- gotk-components.yaml\n- gotk-sync.yaml\n"
        );
    }

    #[test]
    fn renders_azure_patches() {
        let out = render_kustomization(&KustomizationPatches {
            ssh_hostkey_algos: vec!["rsa-sha2-512".to_owned(), "rsa-sha2-256".to_owned()],
            azure_workload_identity: Some(AzureIdentity {
                client_id: "00000000-0000-0000-0000-000000000001".to_owned(),
                tenant_id: Some("00000000-0000-0000-0000-000000000002".to_owned()),
            }),
        });
        assert_eq!(
            out,
            r#"apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
patches:
- patch: |
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --ssh-hostkey-algos=rsa-sha2-512,rsa-sha2-256
  target:
    kind: Deployment
    name: (source-controller|image-automation-controller)
- patch: |
    apiVersion: v1
    kind: ServiceAccount
    metadata:
      name: controller
      annotations:
        azure.workload.identity/client-id: 00000000-0000-0000-0000-000000000001
        azure.workload.identity/tenant-id: 00000000-0000-0000-0000-000000000002
  target:
    kind: ServiceAccount
    name: (source-controller|image-automation-controller)
- patch: |
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: controller
    spec:
      template:
        metadata:
          labels:
            azure.workload.identity/use: "true"
  target:
    kind: Deployment
    name: (source-controller|image-automation-controller)
resources:
- gotk-components.yaml
- gotk-sync.yaml
"#
        );
    }

    #[test]
    fn patches_objects_in_memory() {
        let mut objects = vec![
            serde_json::json!({"kind": "ServiceAccount", "metadata": {"name": "source-controller"}}),
            serde_json::json!({"kind": "Deployment", "metadata": {"name": "source-controller"},
                "spec": {"template": {"spec": {"containers": [{"args": ["--a"]}]}}}}),
            serde_json::json!({"kind": "Deployment", "metadata": {"name": "helm-controller"}}),
        ];
        patch_objects(
            &mut objects,
            &KustomizationPatches {
                ssh_hostkey_algos: vec!["rsa-sha2-512".to_owned()],
                azure_workload_identity: Some(AzureIdentity {
                    client_id: "c".to_owned(),
                    tenant_id: None,
                }),
            },
        );
        assert_eq!(
            objects[0]["metadata"]["annotations"]["azure.workload.identity/client-id"],
            "c"
        );
        assert_eq!(
            objects[1]["spec"]["template"]["spec"]["containers"][0]["args"][1],
            "--ssh-hostkey-algos=rsa-sha2-512"
        );
        assert_eq!(
            objects[1]["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"],
            "true"
        );
        assert_eq!(
            objects[2],
            serde_json::json!({"kind": "Deployment", "metadata": {"name": "helm-controller"}})
        );
    }
}
