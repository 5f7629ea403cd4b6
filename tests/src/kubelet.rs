//! A process kubelet: registers a Node and runs the Pods bound to it as local processes.
//!
//! The harness has no container runtime, but the plugin's result is only real when the real
//! Flux controllers run with exactly what the plugin wrote into their pod templates (the SSH
//! patch, a user's patch, log level, `GOMEMLIMIT`, proxy variables). So, for each Pod the
//! real scheduler binds to this Node:
//! - a container whose image is a Flux controller the harness has a binary for
//!   (`<registry>/source-controller:<tag>` with the tag that binary was built at, see
//!   `cargo xtask flux build`) runs that binary with the container's own `args` and `env`,
//!   changed only by the substitutions listed in [`container`];
//! - a container of another Flux controller image (helm-, notification-, image-*) is reported
//!   Running and Ready without a process;
//! - any other image waits with `ErrImagePull`, as a cluster that cannot pull it would.
//!
//! Pod status comes from the process: Running once started, Ready when the readiness probe
//! answers 200, restarts with back-off when it exits (`CrashLoopBackOff` in between, from
//! 1 s doubling to 30 s, where the kubelet starts at 10 s, so tests wait less). The real
//! deployment controller turns that into Deployment status. A Pod marked for deletion has its
//! processes stopped (SIGTERM, SIGKILL after the grace period) and is then removed, as the
//! kubelet's final delete does. The Node's Lease is renewed every 10 s. Every process dies
//! with the test process (`PR_SET_PDEATHSIG`) or when the [`Kubelet`] is dropped.

mod container;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt as _;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Node, Pod, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt as _};
use serde_json::json;

use crate::control_plane::runtime;

/// Flux controller images the kubelet reports Running without a process.
const PROCESSLESS_FLUX_IMAGES: &[&str] = &[
    "helm-controller",
    "notification-controller",
    "image-reflector-controller",
    "image-automation-controller",
    "source-watcher",
];

/// Where Azure workload identity's authority host (`login.microsoftonline.com`) is served,
/// and the tenant the workload-identity webhook defaults to.
#[derive(Clone, Debug)]
pub struct IdentityEndpoint {
    /// Loopback HTTPS port answering for the authority host (its certificate is trusted
    /// through the kubelet's trusted CA file).
    pub https_port: u16,
    /// `AZURE_TENANT_ID` when the `ServiceAccount` names none.
    pub default_tenant_id: String,
}

/// What a kubelet needs to run.
#[derive(Clone, Debug)]
pub struct KubeletOptions {
    /// A kubeconfig with cluster-admin rights on the cluster, and its context.
    pub kubeconfig: PathBuf,
    pub context: String,
    /// The API server URL and CA the pods' kubeconfigs point at.
    pub server: String,
    pub server_ca_pem: String,
    /// The Node's name.
    pub node_name: String,
    /// Directory of the Flux controller binaries (`cargo xtask flux build`), and the version
    /// each binary was built at, by image name (e.g. `source-controller` → `v1.9.4`).
    pub binaries: BTreeMap<String, (PathBuf, String)>,
    /// The cluster's "system trust store" (`SSL_CERT_FILE` of every process).
    pub trusted_ca_file: Option<PathBuf>,
    /// Azure workload identity, injected like its mutating webhook does.
    pub identity: Option<IdentityEndpoint>,
    /// Where pods keep their files and logs.
    pub work_dir: PathBuf,
}

/// A running kubelet; its processes stop when it is dropped.
pub struct Kubelet {
    task: tokio::task::AbortHandle,
    sink: tokio::task::AbortHandle,
    /// Held for its lifetime: the proxy stops when the kubelet does.
    _egress: Option<crate::egress::EgressProxy>,
    pods: Arc<Mutex<HashMap<String, PodHandle>>>,
}

impl Kubelet {
    /// Registers the Node and starts running the Pods bound to it.
    pub fn start(opts: KubeletOptions) -> Result<Kubelet, String> {
        fs_err::create_dir_all(&opts.work_dir).map_err(|e| e.to_string())?;
        let (kubeconfig, context) = (opts.kubeconfig.clone(), opts.context.clone());
        let client =
            runtime::block_on(async move { runtime::client(&kubeconfig, &context).await })?;
        let node = opts.node_name.clone();
        let register_client = client.clone();
        runtime::block_on(async move { register_node(register_client, &node).await })?;
        let pods: Arc<Mutex<HashMap<String, PodHandle>>> = Arc::default();
        let events =
            runtime::block_on(async { tokio::net::TcpListener::bind("127.0.0.1:0").await })
                .map_err(|e| format!("cannot bind the event sink: {e}"))?;
        let events_port = events.local_addr().map_err(|e| e.to_string())?.port();
        let egress = opts
            .identity
            .as_ref()
            .map(|identity| {
                crate::egress::EgressProxy::start(
                    &[crate::git_server::AUTHORITY_HOST],
                    identity.https_port,
                    opts.work_dir.join("egress-proxy.log"),
                )
            })
            .transpose()?;
        let ctx = Arc::new(Ctx {
            client,
            opts,
            events_port,
            egress_port: egress.as_ref().map(crate::egress::EgressProxy::port),
            services: Mutex::default(),
            pods: pods.clone(),
        });
        let sink = runtime::runtime().spawn(event_sink(events)).abort_handle();
        let task = runtime::runtime().spawn(run(ctx)).abort_handle();
        Ok(Kubelet {
            task,
            sink,
            _egress: egress,
            pods,
        })
    }

    /// The command lines of the processes running now, as (pod name, arguments).
    pub fn processes(&self) -> Vec<(String, Vec<String>)> {
        let pods = self
            .pods
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<(String, Vec<String>)> = pods
            .values()
            .flat_map(|pod| {
                let running = pod
                    .running
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                running
                    .iter()
                    .map(|(_, args)| (pod.name.clone(), args.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
        self.sink.abort();
        let pods: Vec<PodHandle> = self
            .pods
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain()
            .map(|(_, pod)| pod)
            .collect();
        for pod in pods {
            pod.stop(Duration::ZERO);
        }
    }
}

/// A live process of a pod: (pid, argv).
type RunningProcess = (u32, Vec<String>);

struct Ctx {
    client: kube::Client,
    opts: KubeletOptions,
    /// Loopback port of the event sink standing in for notification-controller's receiver.
    events_port: u16,
    /// The egress proxy's port (with workload identity): it tunnels only the authority host.
    egress_port: Option<u16>,
    /// Service names (advertised addresses) → their stable forwarding port and current backend.
    services: Mutex<HashMap<String, (u16, Arc<std::sync::atomic::AtomicU16>)>>,
    pods: Arc<Mutex<HashMap<String, PodHandle>>>,
}

/// A pod the kubelet runs: a stop signal for its supervisors and their live children.
struct PodHandle {
    name: String,
    stop: tokio::sync::watch::Sender<bool>,
    /// Live processes: (pid, argv).
    running: Arc<Mutex<Vec<RunningProcess>>>,
}

impl PodHandle {
    /// Signals the supervisors and ends the processes: SIGTERM, then SIGKILL after `grace`.
    fn stop(&self, grace: Duration) {
        let _ = self.stop.send(true);
        let pids: Vec<u32> = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(pid, _)| *pid)
            .collect();
        for pid in &pids {
            signal(*pid, libc::SIGTERM);
        }
        if !grace.is_zero() {
            std::thread::sleep(grace.min(Duration::from_secs(2)));
        }
        for pid in pids {
            signal(pid, libc::SIGKILL);
        }
    }
}

fn signal(pid: u32, sig: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        #[expect(
            unsafe_code,
            reason = "`kill` is the only way to signal a child whose `Child` another task owns"
        )]
        // SAFETY: `kill` takes plain integers and has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

async fn register_node(client: kube::Client, name: &str) -> Result<(), String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": name,
        }},
    }))
    .map_err(|e| e.to_string())?;
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(format!("cannot register Node `{name}`: {e}")),
    }
    patch_node_status(&nodes, name).await?;
    renew_lease(&client, name).await
}

async fn patch_node_status(nodes: &Api<Node>, name: &str) -> Result<(), String> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let capacity =
        json!({"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    let status = json!({"status": {
        "capacity": capacity,
        "allocatable": capacity,
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady",
             "message": "the harness's process kubelet is posting ready status",
             "lastHeartbeatTime": now, "lastTransitionTime": now},
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "lastHeartbeatTime": now, "lastTransitionTime": now},
            {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "lastHeartbeatTime": now, "lastTransitionTime": now},
            {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "lastHeartbeatTime": now, "lastTransitionTime": now},
        ],
        "nodeInfo": {
            "architecture": "amd64", "operatingSystem": "linux", "osImage": "harness",
            "kernelVersion": "", "containerRuntimeVersion": "process://harness",
            "kubeletVersion": "v1.36.3", "kubeProxyVersion": "", "machineID": "", "systemUUID": "",
            "bootID": "",
        },
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map(|_| ())
        .map_err(|e| format!("cannot report Node `{name}` Ready: {e}"))
}

async fn renew_lease(client: &kube::Client, name: &str) -> Result<(), String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = Lease {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.to_owned()),
            lease_duration_seconds: Some(40),
            renew_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
            ..Default::default()
        }),
    };
    leases
        .patch(
            name,
            &PatchParams::apply("harness-kubelet").force(),
            &Patch::Apply(&lease),
        )
        .await
        .map(|_| ())
        .map_err(|e| format!("cannot renew the Lease of Node `{name}`: {e}"))
}

async fn run(ctx: Arc<Ctx>) {
    let heartbeat = {
        let ctx = ctx.clone();
        async move {
            let nodes: Api<Node> = Api::all(ctx.client.clone());
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let _ = renew_lease(&ctx.client, &ctx.opts.node_name).await;
                let _ = patch_node_status(&nodes, &ctx.opts.node_name).await;
            }
        }
    };
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let config =
        watcher::Config::default().fields(&format!("spec.nodeName={}", ctx.opts.node_name));
    let watch = watcher(pods, config).for_each(|event| {
        let ctx = ctx.clone();
        async move {
            match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                    on_pod(&ctx, pod);
                }
                Ok(watcher::Event::Delete(pod)) => forget(&ctx, &pod, Duration::ZERO),
                Ok(watcher::Event::Init | watcher::Event::InitDone) | Err(_) => {}
            }
        }
    });
    tokio::join!(heartbeat, watch);
}

fn pod_key(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn forget(ctx: &Ctx, pod: &Pod, grace: Duration) {
    let handle = ctx
        .pods
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&pod_key(pod));
    if let Some(handle) = handle {
        tokio::task::spawn_blocking(move || handle.stop(grace));
    }
}

fn on_pod(ctx: &Arc<Ctx>, pod: Pod) {
    let key = pod_key(&pod);
    if pod.metadata.deletion_timestamp.is_some() {
        let grace = Duration::from_secs(
            pod.metadata
                .deletion_grace_period_seconds
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(0),
        );
        let handle = ctx
            .pods
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&key);
        let (client, namespace, name) = (
            ctx.client.clone(),
            pod.namespace().unwrap_or_default(),
            pod.name_any(),
        );
        tokio::spawn(async move {
            if let Some(handle) = handle {
                let _ = tokio::task::spawn_blocking(move || handle.stop(grace)).await;
            }
            // The kubelet's final delete, once the containers are gone.
            let _ = Api::<Pod>::namespaced(client, &namespace)
                .delete(&name, &DeleteParams::default().grace_period(0))
                .await;
        });
        return;
    }
    let known = ctx
        .pods
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .contains_key(&key);
    if known {
        return;
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running: Arc<Mutex<Vec<RunningProcess>>> = Arc::default();
    ctx.pods
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(
            key,
            PodHandle {
                name: pod.name_any(),
                stop,
                running: running.clone(),
            },
        );
    let ctx = ctx.clone();
    tokio::spawn(async move { run_pod(ctx, pod, stopped, running).await });
}

/// What the kubelet knows about one container, for the Pod status.
#[derive(Clone, Debug, Default)]
struct ContainerState {
    name: String,
    image: String,
    ready: bool,
    restarts: i32,
    /// `running` with a start time, or `waiting` with a reason and message.
    running_since: Option<k8s_openapi::jiff::Timestamp>,
    waiting: Option<(String, String)>,
    last_exit: Option<i32>,
}

async fn run_pod(
    ctx: Arc<Ctx>,
    pod: Pod,
    stopped: tokio::sync::watch::Receiver<bool>,
    running: Arc<Mutex<Vec<RunningProcess>>>,
) {
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    let states: Arc<Mutex<Vec<ContainerState>>> = Arc::new(Mutex::new(
        containers
            .iter()
            .map(|c| ContainerState {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                waiting: Some(("ContainerCreating".to_owned(), String::new())),
                ..ContainerState::default()
            })
            .collect(),
    ));
    let started = k8s_openapi::jiff::Timestamp::now();
    let mut supervisors = Vec::new();
    for (index, container) in containers.into_iter().enumerate() {
        let ctx = ctx.clone();
        let pod = pod.clone();
        let states = states.clone();
        let stopped = stopped.clone();
        let running = running.clone();
        supervisors.push(tokio::spawn(async move {
            supervise(
                ctx, pod, index, container, states, stopped, running, started,
            )
            .await;
        }));
    }
    for supervisor in supervisors {
        let _ = supervisor.await;
    }
}

/// Runs one container until the pod stops, reporting every state change.
#[expect(
    clippy::too_many_arguments,
    reason = "one supervisor per container, with the pod-wide shared state"
)]
async fn supervise(
    ctx: Arc<Ctx>,
    pod: Pod,
    index: usize,
    container: Container,
    states: Arc<Mutex<Vec<ContainerState>>>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    running: Arc<Mutex<Vec<RunningProcess>>>,
    started: k8s_openapi::jiff::Timestamp,
) {
    let image = container.image.clone().unwrap_or_default();
    let (image_name, tag) = image_name_and_tag(&image);
    let set = |f: &dyn Fn(&mut ContainerState)| {
        let mut states = states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut states[index]);
    };
    let binary = match ctx.opts.binaries.get(image_name) {
        Some((path, version)) if version == tag => Some(path.clone()),
        Some((_, version)) => {
            let message = format!(
                "the harness kubelet runs {image_name} {version} only (image `{image}`); build \
                 that version with `cargo xtask flux build`"
            );
            set(&|s| s.waiting = Some(("ErrImagePull".to_owned(), message.clone())));
            report(&ctx, &pod, &states, started).await;
            return;
        }
        None if PROCESSLESS_FLUX_IMAGES.contains(&image_name) => None,
        None => {
            let message = format!("the harness kubelet cannot run image `{image}`");
            set(&|s| s.waiting = Some(("ErrImagePull".to_owned(), message.clone())));
            report(&ctx, &pod, &states, started).await;
            return;
        }
    };
    let Some(binary) = binary else {
        set(&|s| {
            s.waiting = None;
            s.running_since = Some(k8s_openapi::jiff::Timestamp::now());
            s.ready = true;
        });
        report(&ctx, &pod, &states, started).await;
        return;
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        if *stopped.borrow() {
            return;
        }
        let spec = match prepare(&ctx, &pod, &container, &binary).await {
            Ok(spec) => spec,
            Err(message) => {
                set(&|s| {
                    s.waiting = Some(("CreateContainerConfigError".to_owned(), message.clone()));
                });
                report(&ctx, &pod, &states, started).await;
                if wait_or_stop(&mut stopped, backoff).await {
                    return;
                }
                continue;
            }
        };
        let log = ctx.opts.work_dir.join(format!(
            "{}_{}_{}.log",
            pod.namespace().unwrap_or_default(),
            pod.name_any(),
            container.name
        ));
        let child = spawn_process(&binary, &spec, &log);
        let mut child = match child {
            Ok(child) => child,
            Err(message) => {
                set(&|s| s.waiting = Some(("RunContainerError".to_owned(), message.clone())));
                report(&ctx, &pod, &states, started).await;
                if wait_or_stop(&mut stopped, backoff).await {
                    return;
                }
                continue;
            }
        };
        let pid = child.id();
        if let (Some((name, port)), None) = (&spec.service, &spec.readiness) {
            route_service(&ctx, name, *port);
        }
        let mut argv = vec![binary.display().to_string()];
        argv.extend(spec.args.iter().cloned());
        running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((pid, argv));
        set(&|s| {
            s.waiting = None;
            s.ready = spec.readiness.is_none();
            s.running_since = Some(k8s_openapi::jiff::Timestamp::now());
        });
        report(&ctx, &pod, &states, started).await;
        let exit = loop {
            if wait_or_stop(&mut stopped, Duration::from_millis(200)).await {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            if let Ok(Some(status)) = child.try_wait() {
                break status.code().unwrap_or(137);
            }
            if let Some((port, path)) = &spec.readiness {
                let ready = probe(*port, path).await;
                let changed = {
                    let states = states
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    states[index].ready != ready
                };
                if changed {
                    // A Service sends traffic to a pod once it is Ready.
                    if let (true, Some((name, port))) = (ready, &spec.service) {
                        route_service(&ctx, name, *port);
                    }
                    set(&|s| s.ready = ready);
                    report(&ctx, &pod, &states, started).await;
                }
            }
        };
        running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|(p, _)| *p != pid);
        set(&|s| {
            s.ready = false;
            s.running_since = None;
            s.restarts += 1;
            s.last_exit = Some(exit);
            s.waiting = Some((
                "CrashLoopBackOff".to_owned(),
                format!(
                    "back-off {backoff:?} restarting failed container={} pod={}",
                    container.name,
                    pod.name_any()
                ),
            ));
        });
        report(&ctx, &pod, &states, started).await;
        if wait_or_stop(&mut stopped, backoff).await {
            return;
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Sleeps for `duration`; true when the pod was stopped meanwhile.
async fn wait_or_stop(
    stopped: &mut tokio::sync::watch::Receiver<bool>,
    duration: Duration,
) -> bool {
    if *stopped.borrow() {
        return true;
    }
    let _ = tokio::time::timeout(duration, stopped.changed()).await;
    *stopped.borrow()
}

/// `ghcr.io/fluxcd/source-controller:v1.9.4` → (`source-controller`, `v1.9.4`).
fn image_name_and_tag(image: &str) -> (&str, &str) {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split_once(':').unwrap_or((last, "latest"))
}

/// The process of a container: environment, substituted arguments and the kubeconfig.
async fn prepare(
    ctx: &Ctx,
    pod: &Pod,
    container: &Container,
    binary: &Path,
) -> Result<container::ProcessSpec, String> {
    let namespace = pod.namespace().unwrap_or_default();
    let dir = ctx
        .opts
        .work_dir
        .join(format!("{namespace}_{}", pod.name_any()));
    for mount in container.volume_mounts.iter().flatten() {
        fs_err::create_dir_all(container::mounted(&dir, &mount.mount_path))
            .map_err(|e| e.to_string())?;
    }
    let sources = lookup_sources(ctx, &namespace, container).await;
    let env = container::environment(pod, container, &|kind, name, _key| {
        sources
            .get(&(kind.to_owned(), name.to_owned()))
            .cloned()
            .unwrap_or_default()
    });
    let binary_name = binary
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let service_port = |name: &str| service_port(ctx, name);
    let mut spec = container::substitute(
        &binary_name,
        container,
        &env,
        &dir,
        ctx.events_port,
        &service_port,
    );
    let kubeconfig = write_kubeconfig(ctx, pod, &dir).await?;
    spec.env
        .insert("KUBECONFIG".to_owned(), kubeconfig.display().to_string());
    let tmp = container::mounted(&dir, "/tmp");
    fs_err::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    spec.env
        .insert("TMPDIR".to_owned(), tmp.display().to_string());
    spec.env
        .insert("HOME".to_owned(), dir.join("root").display().to_string());
    if let Some(ca) = &ctx.opts.trusted_ca_file {
        spec.env
            .insert("SSL_CERT_FILE".to_owned(), ca.display().to_string());
    }
    inject_workload_identity(ctx, pod, &dir, &mut spec.env).await?;
    Ok(spec)
}

/// What the Azure workload-identity webhook injects into a pod labelled
/// `azure.workload.identity/use: "true"` whose `ServiceAccount` has a client id: the client and
/// tenant ids, the authority host, and a projected `ServiceAccount` token for audience
/// `api://AzureADTokenExchange`. The authority host is reached through the kubelet's egress
/// proxy (`HTTPS_PROXY`, unless the pod sets its own), which tunnels only that host.
async fn inject_workload_identity(
    ctx: &Ctx,
    pod: &Pod,
    dir: &Path,
    env: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    let (Some(identity), Some(egress)) = (&ctx.opts.identity, ctx.egress_port) else {
        return Ok(());
    };
    let uses = pod
        .labels()
        .get("azure.workload.identity/use")
        .is_some_and(|v| v == "true");
    if !uses {
        return Ok(());
    }
    let namespace = pod.namespace().unwrap_or_default();
    let account_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".to_owned());
    let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &namespace);
    let account = accounts
        .get(&account_name)
        .await
        .map_err(|e| format!("cannot read ServiceAccount {namespace}/{account_name}: {e}"))?;
    let annotations = account.annotations();
    let Some(client_id) = annotations.get("azure.workload.identity/client-id") else {
        return Ok(());
    };
    let tenant = annotations
        .get("azure.workload.identity/tenant-id")
        .cloned()
        .unwrap_or_else(|| identity.default_tenant_id.clone());
    let token = pod_token(
        &accounts,
        pod,
        &account_name,
        Some("api://AzureADTokenExchange"),
        3600,
    )
    .await?;
    let token_file = container::mounted(dir, "/var/run/secrets/azure/tokens/azure-identity-token");
    if let Some(parent) = token_file.parent() {
        fs_err::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    write_private(&token_file, token.as_bytes())?;
    env.insert("AZURE_CLIENT_ID".to_owned(), client_id.clone());
    env.insert("AZURE_TENANT_ID".to_owned(), tenant);
    env.insert(
        "AZURE_FEDERATED_TOKEN_FILE".to_owned(),
        token_file.display().to_string(),
    );
    env.insert(
        "AZURE_AUTHORITY_HOST".to_owned(),
        "https://login.microsoftonline.com/".to_owned(),
    );
    if !env.keys().any(|k| k.eq_ignore_ascii_case("https_proxy")) {
        env.insert(
            "HTTPS_PROXY".to_owned(),
            format!("http://127.0.0.1:{egress}"),
        );
    }
    Ok(())
}

/// The `ConfigMaps` and `Secrets` a container's environment refers to, by (kind, name).
async fn lookup_sources(
    ctx: &Ctx,
    namespace: &str,
    container: &Container,
) -> HashMap<(String, String), BTreeMap<String, String>> {
    let mut wanted: Vec<(String, String)> = Vec::new();
    for from in container.env_from.iter().flatten() {
        if let Some(cm) = &from.config_map_ref {
            wanted.push(("configmap".to_owned(), cm.name.clone()));
        }
        if let Some(s) = &from.secret_ref {
            wanted.push(("secret".to_owned(), s.name.clone()));
        }
    }
    for var in container.env.iter().flatten() {
        if let Some(from) = &var.value_from {
            if let Some(k) = &from.config_map_key_ref {
                wanted.push(("configmap".to_owned(), k.name.clone()));
            }
            if let Some(k) = &from.secret_key_ref {
                wanted.push(("secret".to_owned(), k.name.clone()));
            }
        }
    }
    let mut out = HashMap::new();
    for (kind, name) in wanted {
        let data: BTreeMap<String, String> = if kind == "configmap" {
            Api::<ConfigMap>::namespaced(ctx.client.clone(), namespace)
                .get_opt(&name)
                .await
                .ok()
                .flatten()
                .and_then(|cm| cm.data)
                .unwrap_or_default()
        } else {
            Api::<Secret>::namespaced(ctx.client.clone(), namespace)
                .get_opt(&name)
                .await
                .ok()
                .flatten()
                .and_then(|s| s.data)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect()
        };
        out.insert((kind, name), data);
    }
    out
}

/// A `TokenRequest` token of `account`, bound to `pod`, for `audience` (the API server's
/// when `None`), as the kubelet's projected token volumes hold.
async fn pod_token(
    accounts: &Api<ServiceAccount>,
    pod: &Pod,
    account: &str,
    audience: Option<&str>,
    expiration_seconds: i64,
) -> Result<String, String> {
    let mut spec = json!({
        "expirationSeconds": expiration_seconds,
        "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod.name_any(), "uid": pod.metadata.uid},
    });
    if let Some(audience) = audience {
        spec["audiences"] = json!([audience]);
    }
    let request: k8s_openapi::api::authentication::v1::TokenRequest = serde_json::from_value(
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}),
    )
    .map_err(|e| e.to_string())?;
    let namespace = pod.namespace().unwrap_or_default();
    accounts
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .map_err(|e| format!("cannot get a token for ServiceAccount {namespace}/{account}: {e}"))?
        .status
        .and_then(|s| s.token)
        .ok_or_else(|| format!("the TokenRequest for {namespace}/{account} returned no token"))
}

/// A kubeconfig with a `TokenRequest` token of the pod's `ServiceAccount`, bound to the pod.
async fn write_kubeconfig(ctx: &Ctx, pod: &Pod, dir: &Path) -> Result<PathBuf, String> {
    let namespace = pod.namespace().unwrap_or_default();
    let account = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".to_owned());
    let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &namespace);
    let token = pod_token(&accounts, pod, &account, None, 86_400).await?;
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "pod",
        "clusters": [{"name": "cluster", "cluster": {
            "server": ctx.opts.server,
            "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(&ctx.opts.server_ca_pem),
        }}],
        "users": [{"name": "pod", "user": {"token": token}}],
        "contexts": [{"name": "pod", "context": {"cluster": "cluster", "user": "pod", "namespace": namespace}}],
    });
    fs_err::create_dir_all(dir).map_err(|e| e.to_string())?;
    let path = dir.join("kubeconfig");
    write_private(&path, config.to_string().as_bytes())?;
    Ok(path)
}

/// Writes a file that holds a token, created with mode 0600.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
    file.write_all(contents)
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

fn spawn_process(
    binary: &Path,
    spec: &container::ProcessSpec,
    log: &Path,
) -> Result<Child, String> {
    let mut cmd = Command::new(binary);
    cmd.args(&spec.args)
        .env_clear()
        .envs(&spec.env)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin");
    crate::control_plane::spawn_logged(cmd, log)
}

/// The stable port of Service `name`, starting its forwarder on first use.
fn service_port(ctx: &Ctx, name: &str) -> u16 {
    let mut services = ctx
        .services
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((port, _)) = services.get(name) {
        return *port;
    }
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").expect("binding a loopback port succeeds");
    let port = listener
        .local_addr()
        .expect("a bound listener has an address")
        .port();
    listener
        .set_nonblocking(true)
        .expect("a listener can be non-blocking");
    let backend = Arc::new(std::sync::atomic::AtomicU16::new(0));
    services.insert(name.to_owned(), (port, backend.clone()));
    runtime::runtime().spawn(async move {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = backend.load(std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) =
                    tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    port
}

/// Points Service `name` at a process's port (the newest process wins, like a rollout's).
fn route_service(ctx: &Ctx, name: &str, port: u16) {
    if let Some((_, backend)) = ctx
        .services
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(name)
    {
        backend.store(port, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Accepts every event a controller posts (HTTP 202), as notification-controller does.
async fn event_sink(listener: tokio::net::TcpListener) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    while let Ok((mut stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            let mut buf = vec![0_u8; 64 * 1024];
            let mut request = Vec::new();
            // Read the head and the body its Content-Length announces, then answer.
            loop {
                let Ok(n) = stream.read(&mut buf).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            let _ = stream
                .write_all(
                    b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
        });
    }
}

async fn probe(port: u16, path: &str) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut head = [0_u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        Some(head.ends_with(b"200"))
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// A stable address in 10.244.0.0/16 per pod, derived from its uid.
pub(crate) fn pod_ip(pod: &Pod) -> String {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let hash = uid
        .bytes()
        .fold(0_u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("10.244.{}.{}", (hash >> 8) % 256, hash % 254 + 1)
}

/// Writes the pod's status from its containers' states, retrying (every 500 ms, for up to two
/// minutes) while the API server cannot take it, as a kubelet keeps syncing pod status: a
/// status lost while the API server restarts would otherwise stay stale until the next
/// change. A pod that is gone is not retried.
async fn report(
    ctx: &Ctx,
    pod: &Pod,
    states: &Mutex<Vec<ContainerState>>,
    started: k8s_openapi::jiff::Timestamp,
) {
    let deadline = std::time::Instant::now() + Duration::from_mins(2);
    loop {
        let retry = match report_once(ctx, pod, states, started).await {
            Ok(()) => false,
            Err(kube::Error::Api(status)) if status.code == 404 => false,
            Err(_) => std::time::Instant::now() < deadline,
        };
        if !retry {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One attempt of [`report`], with the states as they are now.
async fn report_once(
    ctx: &Ctx,
    pod: &Pod,
    states: &Mutex<Vec<ContainerState>>,
    started: k8s_openapi::jiff::Timestamp,
) -> Result<(), kube::Error> {
    let states = states
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let now = k8s_openapi::jiff::Timestamp::now();
    let all_ready = states.iter().all(|s| s.ready);
    let any_running = states.iter().any(|s| s.running_since.is_some());
    let condition = |kind: &str, ok: bool| json!({"type": kind, "status": if ok { "True" } else { "False" }, "lastTransitionTime": Time(now)});
    let container_statuses: Vec<serde_json::Value> = states
        .iter()
        .map(|s| {
            let state = match (&s.running_since, &s.waiting) {
                (Some(since), _) => json!({"running": {"startedAt": Time(*since)}}),
                (None, Some((reason, message))) => {
                    json!({"waiting": {"reason": reason, "message": message}})
                }
                (None, None) => json!({"waiting": {"reason": "ContainerCreating"}}),
            };
            let mut status = json!({
                "name": s.name, "image": s.image, "imageID": format!("process://{}", s.image),
                "ready": s.ready, "started": s.running_since.is_some(), "restartCount": s.restarts,
                "state": state,
            });
            if s.running_since.is_some() {
                status["containerID"] = json!(format!("process://{}", s.name));
            }
            if let Some(code) = s.last_exit {
                status["lastState"] = json!({"terminated": {"exitCode": code, "reason": "Error"}});
            }
            status
        })
        .collect();
    let status = json!({"status": {
        "phase": if any_running || all_ready { "Running" } else { "Pending" },
        "hostIP": "127.0.0.1",
        // EndpointSlices refuse loopback addresses; nothing routes to a pod IP here anyway.
        "podIP": pod_ip(pod),
        "podIPs": [{"ip": pod_ip(pod)}],
        "startTime": Time(started),
        "conditions": [
            condition("PodScheduled", true),
            condition("Initialized", true),
            condition("ContainersReady", all_ready),
            condition("Ready", all_ready),
        ],
        "containerStatuses": container_statuses,
    }});
    Api::<Pod>::namespaced(ctx.client.clone(), &pod.namespace().unwrap_or_default())
        .patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await
        .map(drop)
}
