//! One container of a Pod as a local process: its environment and arguments resolved the way
//! the kubelet resolves them, and the one list of what the harness substitutes because it
//! cannot work outside a pod.
//!
//! Substitutions ([`substitute`]), and nothing else:
//! - listen addresses (`--storage-addr`, `--metrics-addr`, `--health-addr`) become free
//!   loopback ports, added when the pod leaves a flag at its default, since several
//!   controllers share this machine's network namespace; the readiness probe's container
//!   port follows its address;
//! - the advertised artifact address (`--storage-adv-addr`, a Service name) becomes a stable
//!   loopback port that the kubelet forwards to the newest process serving that name, as a
//!   Service and kube-proxy would, so artifact URLs survive restarts and rollouts;
//! - `--events-addr` (notification-controller's event receiver, not run here) becomes the
//!   kubelet's event sink, which accepts every event: controllers post events synchronously
//!   with retries, so a closed port would slow every reconcile down;
//! - `--storage-path` and the pod's `emptyDir` mounts (`/data`, `/tmp` through `TMPDIR`)
//!   become directories of the pod;
//! - leader election is off (it needs the in-cluster namespace file);
//! - the API server is reached through `KUBECONFIG`, a kubeconfig holding a `TokenRequest`
//!   token of the pod's `ServiceAccount`, so the controller runs with its own RBAC;
//! - `SSL_CERT_FILE` is the harness CA, the "system trust store" of the cluster (a real
//!   cluster trusts dev.azure.com's CA the same way).
//!
//! Not modelled, because nothing here pulls or limits: the image's registry and the pod's
//! `imagePullSecrets` (only the image name and tag choose the binary), resource requests and
//! limits (beyond what the downward API reports), and liveness probes.
//!
//! Added like a real cluster's admission would ([`super::inject_workload_identity`]): the Azure
//! workload-identity webhook's variables and token file, and `HTTPS_PROXY` to the kubelet's
//! egress proxy, the one way the authority host `login.microsoftonline.com` is reached here.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;

use k8s_openapi::api::core::v1::{Container, Pod};

/// Address flags and the port each listens on when the pod does not set it.
const LISTEN_FLAGS: &[(&str, u16)] = &[
    ("--storage-addr", 9090),
    ("--metrics-addr", 8080),
    ("--health-addr", 9440),
];

/// Which address flags each controller binary knows: adding a flag a binary lacks would
/// make it exit.
pub(crate) fn known_address_flags(binary: &str) -> &'static [&'static str] {
    match binary {
        "source-controller" => &[
            "--storage-addr",
            "--storage-adv-addr",
            "--metrics-addr",
            "--health-addr",
            "--events-addr",
        ],
        _ => &["--metrics-addr", "--health-addr", "--events-addr"],
    }
}

/// The process to start for a container: arguments, environment and the mapped ports.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProcessSpec {
    pub(crate) args: Vec<String>,
    pub(crate) env: BTreeMap<String, String>,
    /// The readiness probe as (loopback port, path), when the container has an HTTP one.
    pub(crate) readiness: Option<(u16, String)>,
    /// The Service name this process serves behind (its advertised address) and its port.
    pub(crate) service: Option<(String, u16)>,
}

/// Resolves `(kind, name, key)` of a `configMapKeyRef`/`secretKeyRef`/`envFrom` to its data.
pub(crate) type Lookup<'a> = dyn Fn(&str, &str, Option<&str>) -> BTreeMap<String, String> + 'a;

/// The container's environment as the kubelet computes it (`env` after `envFrom`), with
/// `lookup` resolving `configMapKeyRef`/`secretKeyRef` and `envFrom` sources.
pub(crate) fn environment(
    pod: &Pod,
    container: &Container,
    lookup: &Lookup<'_>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let source = if let Some(cm) = &from.config_map_ref {
            lookup("configmap", &cm.name, None)
        } else if let Some(secret) = &from.secret_ref {
            lookup("secret", &secret.name, None)
        } else {
            BTreeMap::new()
        };
        for (k, v) in source {
            env.insert(format!("{prefix}{k}"), v);
        }
    }
    for var in container.env.iter().flatten() {
        let value = if let Some(value) = &var.value {
            expand(value, &env)
        } else if let Some(from) = &var.value_from {
            if let Some(field) = &from.field_ref {
                field_value(pod, &field.field_path)
            } else if let Some(resource) = &from.resource_field_ref {
                resource_value(pod, container, resource)
            } else if let Some(key) = &from.config_map_key_ref {
                lookup("configmap", &key.name, Some(&key.key))
                    .remove(&key.key)
                    .unwrap_or_default()
            } else if let Some(key) = &from.secret_key_ref {
                lookup("secret", &key.name, Some(&key.key))
                    .remove(&key.key)
                    .unwrap_or_default()
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        env.insert(var.name.clone(), value);
    }
    env
}

fn field_value(pod: &Pod, path: &str) -> String {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let from_map = |map: Option<&BTreeMap<String, String>>, rest: &str| {
        let key = rest.trim_start_matches("['").trim_end_matches("']");
        map.and_then(|m| m.get(key)).cloned().unwrap_or_default()
    };
    match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" => super::pod_ip(pod),
        "status.hostIP" => "127.0.0.1".to_owned(),
        other => {
            if let Some(rest) = other.strip_prefix("metadata.labels") {
                from_map(meta.labels.as_ref(), rest)
            } else if let Some(rest) = other.strip_prefix("metadata.annotations") {
                from_map(meta.annotations.as_ref(), rest)
            } else {
                String::new()
            }
        }
    }
}

fn resource_value(
    pod: &Pod,
    container: &Container,
    field: &k8s_openapi::api::core::v1::ResourceFieldSelector,
) -> String {
    let target = field
        .container_name
        .as_deref()
        .and_then(|name| {
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .find(|c| c.name == name)
        })
        .unwrap_or(container);
    let resources = target.resources.as_ref();
    let (kind, name) = field
        .resource
        .split_once('.')
        .unwrap_or(("limits", &field.resource));
    let quantity = resources
        .and_then(|r| match kind {
            "requests" => r.requests.as_ref(),
            _ => r.limits.as_ref(),
        })
        .and_then(|m| m.get(name))
        .map(|q| q.0.clone());
    let divisor = field
        .divisor
        .as_ref()
        .and_then(|q| parse_quantity(&q.0))
        // The API server defaults the divisor to "0", which the kubelet reads as 1.
        .filter(|d| *d > 0.0)
        .unwrap_or(1.0);
    match quantity.and_then(|q| parse_quantity(&q)) {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "resource quantities are small positive numbers; the kubelet rounds up too"
        )]
        Some(value) => ((value / divisor).ceil() as u64).to_string(),
        // No limit: the kubelet reports the node's allocatable amount.
        None if name == "memory" => (32_u64 << 30).to_string(),
        None => "8".to_owned(),
    }
}

/// A Kubernetes quantity (`1Gi`, `64Mi`, `100m`, `2`) as a number.
fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(number * factor)
}

/// `$(VAR)` references expanded from `env`, `$$` escaping, unknown references kept, as the
/// kubelet does for `args` and `env` values.
pub(crate) fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            if let Some(value) = env.get(name) {
                out.push_str(value);
            } else {
                out.push_str("$(");
                out.push_str(name);
                out.push(')');
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The container's `args` expanded, with the harness's substitutions applied (see the module
/// documentation); `dir` is the pod's directory.
pub(crate) fn substitute(
    binary: &str,
    container: &Container,
    env: &BTreeMap<String, String>,
    dir: &Path,
    events_port: u16,
    service_port: &dyn Fn(&str) -> u16,
) -> ProcessSpec {
    let known = known_address_flags(binary);
    let mut args: Vec<String> = container
        .args
        .iter()
        .flatten()
        .map(|a| expand(a, env))
        .collect();
    let mut ports = BTreeMap::new();
    let mut storage_port = None;
    // Listen addresses: a free loopback port each, remembering the container port it replaced.
    for (flag, default_port) in LISTEN_FLAGS {
        if !known.contains(flag) {
            continue;
        }
        let local = free_port();
        let prefix = format!("{flag}=");
        let original = args
            .iter()
            .position(|a| a.starts_with(&prefix))
            .map(|i| args.remove(i));
        let container_port = original
            .as_deref()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(*default_port);
        ports.insert(i32::from(container_port), local);
        if *flag == "--storage-addr" {
            storage_port = Some(local);
        }
        args.push(format!("{flag}=127.0.0.1:{local}"));
    }
    // The advertised address is a Service's: stable across pod restarts and rollouts, so it
    // becomes the kubelet's forwarding port for that Service name, pointed at this process.
    let mut service = None;
    if known.contains(&"--storage-adv-addr") {
        let advertised = args
            .iter()
            .position(|a| a.starts_with("--storage-adv-addr="))
            .map(|i| args.remove(i))
            .and_then(|a| a.split_once('=').map(|(_, v)| v.to_owned()));
        if let (Some(name), Some(port)) = (advertised, storage_port) {
            let stable = service_port(&name);
            args.push(format!("--storage-adv-addr=127.0.0.1:{stable}"));
            service = Some((name, port));
        }
    }
    // Events go to notification-controller's receiver, which the kubelet stands in for.
    if args.iter().any(|a| a.starts_with("--events-addr=")) {
        args.retain(|a| !a.starts_with("--events-addr="));
        args.push(format!("--events-addr=http://127.0.0.1:{events_port}/"));
    }
    for arg in &mut args {
        if arg == "--enable-leader-election" || arg.starts_with("--enable-leader-election=") {
            "--enable-leader-election=false".clone_into(arg);
        } else if let Some(path) = arg.strip_prefix("--storage-path=") {
            *arg = format!("--storage-path={}", mounted(dir, path).display());
        }
    }
    let readiness = container
        .readiness_probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref())
        .and_then(|get| {
            let container_port = match &get.port {
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => Some(*n),
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(name) => {
                    container
                        .ports
                        .iter()
                        .flatten()
                        .find(|p| p.name.as_deref() == Some(name))
                        .map(|p| p.container_port)
                }
            }?;
            Some((
                *ports.get(&container_port)?,
                get.path.clone().unwrap_or_else(|| "/".to_owned()),
            ))
        });
    ProcessSpec {
        args,
        env: env.clone(),
        readiness,
        service,
    }
}

/// A path inside the container, mapped into the pod's directory.
pub(crate) fn mounted(dir: &Path, path: &str) -> std::path::PathBuf {
    dir.join("root").join(path.trim_start_matches('/'))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a loopback port succeeds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_the_kubelet() {
        let env = BTreeMap::from([("NS".to_owned(), "flux".to_owned())]);
        assert_eq!(expand("a.$(NS).svc", &env), "a.flux.svc");
        assert_eq!(expand("$$(NS) $(MISSING) $x", &env), "$(NS) $(MISSING) $x");
    }

    #[test]
    fn parses_quantities() {
        assert_eq!(parse_quantity("1Gi"), Some(1_073_741_824.0));
        assert_eq!(parse_quantity("100m"), Some(0.1));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("x"), None);
    }
}
