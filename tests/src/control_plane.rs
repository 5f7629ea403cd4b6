//! A real Kubernetes control plane for the tests: etcd plus two kube-apiservers, and, for a
//! control plane started with [`ControlPlane::start_with_workloads`], a kube-controller-manager,
//! a kube-scheduler and a process kubelet ([`crate::kubelet`]) per cluster, so Deployments get
//! `ReplicaSets` and Pods, namespaces are really deleted, owner references are garbage-collected
//! and the real Flux controllers run.
//!
//! The plugin's behaviour depends on real admission, RBAC, server-side apply, CRD
//! validation and status subresources, so the tests run against the real kube-apiserver
//! built by `cargo xtask kube build` (see `docs`: test-infra §1–3). One etcd serves two
//! independent clusters: the second apiserver uses its own `--etcd-prefix`. Users
//! authenticate with static tokens: `admin` is in `system:masters`, `jane` has no RBAC
//! bindings. Children are killed on drop and, through `PR_SET_PDEATHSIG`, when the test
//! process dies.

mod certs;
pub(crate) mod runtime;
pub(crate) mod spawn;

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use sha2::{Digest, Sha256};

/// How long an apiserver may take to become ready: several minutes of CPU are shared by
/// parallel builds on CI machines, and first starts on 2 contended cores took 30+ s.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

const ADMIN_CONTEXT: &str = "admin";
const NONADMIN_CONTEXT: &str = "nonadmin";
const SECOND_CONTEXT: &str = "second";

/// etcd plus two kube-apiservers on free loopback ports, with a kubeconfig for them.
pub struct ControlPlane {
    dir: PathBuf,
    kubeconfig: PathBuf,
    etcd: Mutex<Option<Child>>,
    etcd_log: PathBuf,
    first: Apiserver,
    second: Apiserver,
    /// kube-controller-manager and kube-scheduler of each cluster (with workloads only).
    workload_controllers: Mutex<Vec<Child>>,
    /// The process kubelet of each cluster (with workloads only).
    kubelets: Vec<crate::kubelet::Kubelet>,
    /// The `ServiceAccount` token signing key's public half (both clusters share it).
    sa_public_key: Vec<u8>,
    /// Set when startup failed, so the logs named in the panic message survive the drop.
    keep_dir: bool,
}

/// What a control plane runs besides etcd and the API servers.
#[derive(Clone, Debug, Default)]
pub struct Workloads {
    /// The CA every pod trusts as its system trust store (e.g. [`crate::GitServer::ca_file`]).
    pub trusted_ca_file: Option<PathBuf>,
    /// Where Azure workload identity's authority host is served (e.g. the git server's
    /// Entra stand-in), for pods that use workload identity.
    pub identity: Option<crate::kubelet::IdentityEndpoint>,
}

/// One kube-apiserver process, restartable with the same flags.
struct Apiserver {
    port: u16,
    context: &'static str,
    args: Vec<String>,
    log: PathBuf,
    child: Mutex<Option<Child>>,
}

impl ControlPlane {
    /// The control plane shared by every test of this test binary, started on first use.
    ///
    /// Panics with a clear message when the kube binaries are missing (run
    /// `cargo xtask kube build`) or the control plane does not start; the message names the
    /// log file to read.
    pub fn shared() -> &'static ControlPlane {
        static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
        match SHARED.get_or_init(|| Self::try_start_with(None)) {
            Ok(plane) => plane,
            Err(message) => panic!("{message}"),
        }
    }

    /// A private control plane (for uninstall or fault tests), stopped on drop.
    pub fn start() -> ControlPlane {
        Self::try_start_with(None).unwrap_or_else(|message| panic!("{message}"))
    }

    /// A private control plane whose two clusters each run kube-controller-manager,
    /// kube-scheduler and a process kubelet that runs the real Flux controllers, stopped on
    /// drop.
    ///
    /// Panics when the kube or Flux binaries are missing, naming the command that builds them.
    pub fn start_with_workloads(workloads: &Workloads) -> ControlPlane {
        if let Some(message) = crate::flux_binaries::missing_controller_binaries() {
            panic!("{message}");
        }
        Self::try_start_with(Some(workloads)).unwrap_or_else(|message| panic!("{message}"))
    }

    /// The kubelet of the cluster behind `context` (a control plane with workloads only).
    pub fn kubelet(&self, context: &str) -> &crate::kubelet::Kubelet {
        let index = match context {
            ADMIN_CONTEXT | NONADMIN_CONTEXT => 0,
            SECOND_CONTEXT => 1,
            other => panic!("the control plane has no context `{other}`"),
        };
        self.kubelets
            .get(index)
            .expect("the control plane was started with workloads")
    }

    /// The directory holding this control plane's files and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Each cluster's `ServiceAccount` token issuer with the public key that signs its tokens
    /// (an uncompressed P-256 point), for an identity provider to trust.
    pub fn service_account_issuers(&self) -> Vec<(String, Vec<u8>)> {
        [self.first.port, self.second.port]
            .into_iter()
            .map(|port| {
                (
                    format!("https://127.0.0.1:{port}/"),
                    self.sa_public_key.clone(),
                )
            })
            .collect()
    }

    /// The kubeconfig with the contexts `admin` (current), `nonadmin` and `second`.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The current context: user `admin` (group `system:masters`) on the first cluster.
    pub fn admin_context(&self) -> &str {
        ADMIN_CONTEXT
    }

    /// User `jane` on the first cluster: authenticated, but with no RBAC bindings.
    pub fn nonadmin_context(&self) -> &str {
        NONADMIN_CONTEXT
    }

    /// User `admin` on the second, independent cluster.
    pub fn second_context(&self) -> &str {
        SECOND_CONTEXT
    }

    /// The apiserver URL behind `context`, e.g. `https://127.0.0.1:PORT`.
    pub fn server_url(&self, context: &str) -> String {
        let port = match context {
            ADMIN_CONTEXT | NONADMIN_CONTEXT => self.first.port,
            SECOND_CONTEXT => self.second.port,
            other => panic!("the control plane has no context `{other}`"),
        };
        format!("https://127.0.0.1:{port}")
    }

    /// A name unique per call in this process, valid as a DNS-1123 label (e.g. a namespace).
    pub fn unique_name(&self, prefix: &str) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut name: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        name = name.trim_matches('-').to_owned();
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            name.insert_str(0, "t-");
        }
        format!("{name}-{:x}-{n}", std::process::id() & 0xffff)
    }

    /// CPU time the control plane's processes (etcd and both apiservers) have used so far, for
    /// benchmarks that need to tell the server side's work from the client's.
    pub fn cpu_time(&self) -> Duration {
        // /proc reports CPU times in USER_HZ ticks, 100 per second on x86_64 and aarch64.
        const TICKS_PER_SECOND: u64 = 100;
        let id = |child: &Mutex<Option<Child>>| {
            child
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
                .map(Child::id)
        };
        let child_ids = [
            id(&self.etcd),
            id(&self.first.child),
            id(&self.second.child),
        ];
        let ticks: u64 = child_ids
            .into_iter()
            .flatten()
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .filter_map(|stat| {
                // Fields after the parenthesised command name; utime and stime are 14 and 15.
                let rest = &stat[stat.rfind(')')? + 2..];
                let fields: Vec<&str> = rest.split_whitespace().collect();
                Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
            })
            .sum();
        Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
    }

    /// Stops the first cluster's apiserver (for fault tests); etcd and `second` keep running.
    pub fn stop_apiserver(&self) {
        self.first.stop();
    }

    /// Restarts the first cluster's apiserver on the same port and waits until it is ready.
    pub fn start_apiserver(&self) {
        self.first
            .start()
            .unwrap_or_else(|message| panic!("{message}"));
        self.first
            .wait_ready(&self.kubeconfig)
            .unwrap_or_else(|message| panic!("{message}"));
    }

    /// The directory holding `kube-apiserver`, `kubectl` and `etcd`.
    ///
    /// `$FLUXBOOTSTRAP_KUBE_BIN_DIR` when set, else the cache directory `cargo xtask kube
    /// build` fills: `~/.cache/kubectl-fluxbootstrap/kube/<k8s version>-<go.sum hash>/`.
    pub fn bin_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("FLUXBOOTSTRAP_KUBE_BIN_DIR").filter(|d| !d.is_empty())
        {
            return PathBuf::from(dir);
        }
        let go = Path::new(env!("CARGO_MANIFEST_DIR")).join("../xtask/go");
        let mut hasher = Sha256::new();
        for module in ["kube", "etcd"] {
            let go_sum = go.join(module).join("go.sum");
            hasher.update(
                fs_err::read(&go_sum).expect("the Go wrapper modules are in the source tree"),
            );
        }
        let hash: String = hasher.finalize()[..6]
            .iter()
            .fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            });
        let go_mod = fs_err::read_to_string(go.join("kube/go.mod"))
            .expect("the Go wrapper modules are in the source tree");
        let version = go_mod
            .lines()
            .map(str::trim)
            .map(|line| line.strip_prefix("require ").unwrap_or(line))
            .find_map(|line| line.strip_prefix("k8s.io/kubernetes "))
            .and_then(|rest| rest.split_whitespace().next())
            .expect("xtask/go/kube/go.mod requires k8s.io/kubernetes");
        cache_dir("kube", &format!("{version}-{hash}"))
    }

    /// The built kubectl (same version as the apiserver) with `KUBECONFIG` set to
    /// [`Self::kubeconfig`].
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(Self::bin_dir().join("kubectl"));
        cmd.env("KUBECONFIG", &self.kubeconfig);
        cmd
    }

    fn try_start_with(workloads: Option<&Workloads>) -> Result<ControlPlane, String> {
        let bin = Self::bin_dir();
        let required: &[&str] = if workloads.is_some() {
            &[
                "etcd",
                "kube-apiserver",
                "kubectl",
                "kube-controller-manager",
                "kube-scheduler",
            ]
        } else {
            &["etcd", "kube-apiserver", "kubectl"]
        };
        for name in required {
            if !bin.join(name).is_file() {
                return Err(format!(
                    "the kube test binaries are missing (`{}` does not exist): run `cargo xtask kube build`",
                    bin.join(name).display()
                ));
            }
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::try_start_once(&bin, workloads) {
                // Free ports are picked by binding port 0 and closing the socket, so another
                // process may take one before the child binds it: retry with new ports.
                Err(message) if attempt < 3 && message.contains("address already in use") => {}
                result => return result,
            }
        }
    }

    fn try_start_once(bin: &Path, workloads: Option<&Workloads>) -> Result<ControlPlane, String> {
        let started = Instant::now();
        let dir = new_work_dir();
        let certs = certs::write(&dir);
        let admin_token = random_token();
        let jane_token = random_token();
        fs_err::write(
            dir.join("tokens.csv"),
            format!("{admin_token},admin,1000,\"system:masters\"\n{jane_token},jane,1001,\n"),
        )
        .map_err(|e| e.to_string())?;

        let [etcd_port, peer_port, first_port, second_port] = free_ports();
        let etcd_log = dir.join("etcd.log");
        let mut etcd_cmd = Command::new(bin.join("etcd"));
        etcd_cmd.args([
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
            format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
            format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
            format!("--initial-cluster=default=http://127.0.0.1:{peer_port}"),
            "--unsafe-no-fsync=true".to_owned(),
            "--log-level=warn".to_owned(),
        ]);
        let etcd = spawn_logged(etcd_cmd, &etcd_log)?;
        let mut plane = ControlPlane {
            kubeconfig: dir.join("kubeconfig"),
            etcd: Mutex::new(Some(etcd)),
            etcd_log,
            first: Apiserver::new(
                &dir,
                bin,
                (ADMIN_CONTEXT, first_port),
                etcd_port,
                "/registry",
                workloads.is_some(),
            ),
            second: Apiserver::new(
                &dir,
                bin,
                (SECOND_CONTEXT, second_port),
                etcd_port,
                "/registry-second",
                workloads.is_some(),
            ),
            dir,
            workload_controllers: Mutex::new(Vec::new()),
            kubelets: Vec::new(),
            sa_public_key: certs.sa_public_key.clone(),
            keep_dir: false,
        };
        let startup = (|| {
            plane.write_kubeconfig(&certs.ca_pem, &admin_token, &jane_token)?;
            plane.wait_etcd(etcd_port)?;
            plane.first.start()?;
            plane.second.start()?;
            plane.first.wait_ready(&plane.kubeconfig)?;
            plane.second.wait_ready(&plane.kubeconfig)?;
            if let Some(workloads) = workloads {
                plane.start_workloads(bin, &certs.ca_pem, &admin_token, workloads)?;
            }
            Ok(())
        })();
        if let Err(message) = startup {
            // Dropping `plane` stops the children; keep the logs the message points at.
            plane.keep_dir = true;
            return Err(message);
        }
        let _ = fs_err::write(
            plane.dir.join("started-in.txt"),
            format!("{:.1}s\n", started.elapsed().as_secs_f64()),
        );
        Ok(plane)
    }

    /// Starts kube-controller-manager, kube-scheduler and a kubelet for each cluster.
    fn start_workloads(
        &mut self,
        bin: &Path,
        ca_pem: &str,
        admin_token: &str,
        workloads: &Workloads,
    ) -> Result<(), String> {
        let binaries = crate::flux_binaries::controller_binaries();
        for (context, port) in [
            (ADMIN_CONTEXT, self.first.port),
            (SECOND_CONTEXT, self.second.port),
        ] {
            let kubeconfig = self.dir.join(format!("kubeconfig-{context}"));
            write_single_kubeconfig(&kubeconfig, port, ca_pem, admin_token)?;
            let flag = |name: &str, value: &Path| format!("--{name}={}", value.display());
            for (name, args) in [
                (
                    "kube-controller-manager",
                    vec![
                        flag("kubeconfig", &kubeconfig),
                        "--leader-elect=false".to_owned(),
                        "--secure-port=0".to_owned(),
                        flag("root-ca-file", &self.dir.join("ca.crt")),
                        flag("service-account-private-key-file", &self.dir.join("sa.key")),
                        // Deletions and garbage collection without waiting seconds per pass.
                        "--concurrent-namespace-syncs=4".to_owned(),
                    ],
                ),
                (
                    "kube-scheduler",
                    vec![
                        flag("kubeconfig", &kubeconfig),
                        "--leader-elect=false".to_owned(),
                        "--secure-port=0".to_owned(),
                    ],
                ),
            ] {
                let log = self.dir.join(format!("{name}-{context}.log"));
                let mut cmd = Command::new(bin.join(name));
                cmd.args(&args);
                let child = spawn_logged(cmd, &log)?;
                self.workload_controllers
                    .lock()
                    .expect("the workload lock is not poisoned because holders do not panic")
                    .push(child);
            }
            let kubelet = crate::kubelet::Kubelet::start(crate::kubelet::KubeletOptions {
                kubeconfig: self.kubeconfig.clone(),
                context: context.to_owned(),
                server: format!("https://127.0.0.1:{port}"),
                server_ca_pem: ca_pem.to_owned(),
                node_name: format!("node-{context}"),
                binaries: binaries.clone(),
                trusted_ca_file: workloads.trusted_ca_file.clone(),
                identity: workloads.identity.clone(),
                work_dir: self.dir.join(format!("kubelet-{context}")),
            })?;
            self.kubelets.push(kubelet);
        }
        Ok(())
    }

    fn wait_etcd(&self, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self
                .etcd
                .lock()
                .expect("the etcd lock is not poisoned because holders do not panic")
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                return Err(failure(
                    "etcd exited during startup",
                    &status.to_string(),
                    &self.etcd_log,
                ));
            }
            if http_get_ok(port, "/health") {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(failure(
                    "etcd did not become healthy",
                    "timeout",
                    &self.etcd_log,
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn write_kubeconfig(
        &self,
        ca_pem: &str,
        admin_token: &str,
        jane_token: &str,
    ) -> Result<(), String> {
        let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
        let cluster = |name: &str, port: u16| {
            serde_json::json!({"name": name, "cluster": {
                "server": format!("https://127.0.0.1:{port}"),
                "certificate-authority-data": ca,
            }})
        };
        let context = |name: &str, cluster: &str, user: &str| serde_json::json!({"name": name, "context": {"cluster": cluster, "user": user}});
        let config = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": ADMIN_CONTEXT,
            "clusters": [cluster("first", self.first.port), cluster("second", self.second.port)],
            "users": [
                {"name": "admin", "user": {"token": admin_token}},
                {"name": "jane", "user": {"token": jane_token}},
            ],
            "contexts": [
                context(ADMIN_CONTEXT, "first", "admin"),
                context(NONADMIN_CONTEXT, "first", "jane"),
                context(SECOND_CONTEXT, "second", "admin"),
            ],
        });
        // JSON is YAML, and every kubeconfig reader accepts it.
        fs_err::write(
            &self.kubeconfig,
            serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // The kubelets' processes first, then what schedules and controls them.
        self.kubelets.clear();
        for mut child in self
            .workload_controllers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.first.stop();
        self.second.stop();
        if let Some(mut etcd) = self
            .etcd
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            let _ = etcd.kill();
            let _ = etcd.wait();
        }
        // A failing test's control plane keeps its logs for the message that names them.
        if !self.keep_dir && !std::thread::panicking() {
            let _ = fs_err::remove_dir_all(&self.dir);
        }
    }
}

impl Apiserver {
    fn new(
        dir: &Path,
        bin: &Path,
        (context, port): (&'static str, u16),
        etcd_port: u16,
        prefix: &str,
        with_controller_manager: bool,
    ) -> Self {
        let file = |name: &str| dir.join(name).display().to_string();
        let mut args = vec![
            bin.join("kube-apiserver").display().to_string(),
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            format!("--etcd-prefix={prefix}"),
            format!("--secure-port={port}"),
            "--bind-address=127.0.0.1".to_owned(),
            // Without it the apiserver looks for the default route's interface and dies on
            // machines that have none.
            "--advertise-address=127.0.0.1".to_owned(),
            format!("--cert-dir={}", file(&format!("apiserver-{context}"))),
            format!("--tls-cert-file={}", file("apiserver.crt")),
            format!("--tls-private-key-file={}", file("apiserver.key")),
            "--service-cluster-ip-range=10.0.0.0/24".to_owned(),
            "--allow-privileged=true".to_owned(),
            // Nothing creates the `default` ServiceAccounts without kube-controller-manager.
            "--disable-admission-plugins=ServiceAccount".to_owned(),
            "--authorization-mode=RBAC".to_owned(),
            format!("--token-auth-file={}", file("tokens.csv")),
            format!("--service-account-issuer=https://127.0.0.1:{port}/"),
            format!("--service-account-key-file={}", file("sa.pub")),
            format!("--service-account-signing-key-file={}", file("sa.key")),
            "--endpoint-reconciler-type=none".to_owned(),
        ];
        if with_controller_manager {
            // kube-controller-manager creates the `default` ServiceAccounts, so the admission
            // plugin a real cluster runs can run too.
            args.retain(|a| a != "--disable-admission-plugins=ServiceAccount");
        }
        Apiserver {
            port,
            context,
            args,
            log: dir.join(format!("apiserver-{context}.log")),
            child: Mutex::new(None),
        }
    }

    fn start(&self) -> Result<(), String> {
        let mut guard = self
            .child
            .lock()
            .expect("the apiserver lock is not poisoned because holders do not panic");
        if guard.is_some() {
            return Ok(());
        }
        let mut cmd = Command::new(&self.args[0]);
        cmd.args(&self.args[1..]);
        *guard = Some(spawn_logged(cmd, &self.log)?);
        Ok(())
    }

    fn stop(&self) {
        let child = self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for `/readyz` and for namespace `default`, as envtest does.
    fn wait_ready(&self, kubeconfig: &Path) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let (kubeconfig, context) = (kubeconfig.to_owned(), self.context);
        let client = runtime::block_on(async move { runtime::client(&kubeconfig, context).await })?;
        loop {
            if let Some(status) = self
                .child
                .lock()
                .expect("the apiserver lock is not poisoned because holders do not panic")
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                return Err(failure(
                    "kube-apiserver exited during startup",
                    &status.to_string(),
                    &self.log,
                ));
            }
            let client = client.clone();
            let probe = runtime::block_on(async move {
                let request = http::Request::get("/readyz")
                    .body(Vec::new())
                    .map_err(|e| e.to_string())?;
                let ready =
                    tokio::time::timeout(Duration::from_secs(5), client.request_text(request))
                        .await
                        .map_err(|_| "`/readyz` timed out".to_owned())?
                        .map_err(|e| e.to_string())?;
                if ready.trim() != "ok" {
                    return Err(format!("`/readyz` answered `{ready}`"));
                }
                Api::<Namespace>::all(client)
                    .get_opt("default")
                    .await
                    .map_err(|e| e.to_string())?
                    .map(|_| ())
                    .ok_or_else(|| "namespace `default` does not exist yet".to_owned())
            });
            let Err(last_error) = probe else {
                return Ok(());
            };
            if Instant::now() > deadline {
                return Err(failure(
                    &format!(
                        "kube-apiserver ({}) was not ready within {READY_TIMEOUT:?}",
                        self.context
                    ),
                    &last_error,
                    &self.log,
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// A kubeconfig with one cluster and the admin user, for the controllers of that cluster.
fn write_single_kubeconfig(
    path: &Path,
    port: u16,
    ca_pem: &str,
    token: &str,
) -> Result<(), String> {
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "admin",
        "clusters": [{"name": "cluster", "cluster": {
            "server": format!("https://127.0.0.1:{port}"),
            "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(ca_pem),
        }}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "admin", "context": {"cluster": "cluster", "user": "admin"}}],
    });
    fs_err::write(path, config.to_string()).map_err(|e| e.to_string())
}

/// `~/.cache/kubectl-fluxbootstrap/<tool>/<key>` (`XDG_CACHE_HOME` respected): where
/// `cargo xtask` keeps the binaries it builds.
pub(crate) fn cache_dir(tool: &str, key: &str) -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map_or_else(
            || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"),
            PathBuf::from,
        )
        .join(format!("kubectl-fluxbootstrap/{tool}/{key}"))
}

/// A failure message naming the log file and quoting its last lines.
fn failure(what: &str, detail: &str, log: &Path) -> String {
    let text = fs_err::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
    format!(
        "{what}: {detail}\nlog: {}\n--- last lines ---\n{tail}",
        log.display()
    )
}

/// Spawns `cmd` (see [`spawn::spawn`]) with stdout and stderr appended to `log`.
pub(crate) fn spawn_logged(mut cmd: Command, log: &Path) -> Result<Child, String> {
    let file = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| e.to_string())?;
    let err = file.file().try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null())
        .stdout(file.into_parts().0)
        .stderr(err);
    spawn::spawn(cmd).map_err(|e| format!("cannot start `{}`: {e}", cmd_name(log)))
}

fn cmd_name(log: &Path) -> String {
    log.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A plain HTTP/1.0 GET on loopback that reports whether the answer was `200`.
fn http_get_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
}

fn free_ports<const N: usize>() -> [u16; N] {
    // Hold all listeners until every port is picked, so the N ports differ.
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("binding a loopback port succeeds"))
        .collect();
    std::array::from_fn(|i| {
        listeners[i]
            .local_addr()
            .expect("a bound listener has an address")
            .port()
    })
}

fn random_token() -> String {
    (0..4).fold(String::new(), |mut s, _| {
        let _ = write!(s, "{:016x}", RandomState::new().build_hasher().finish());
        s
    })
}

/// `<workspace>/target/harness`: where control planes keep their files and logs.
fn harness_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness package lives inside the workspace")
        .join("target/harness")
}

/// A fresh `cp-<pid>-<n>` directory; removes those left by processes that no longer exist.
fn new_work_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let root = harness_root();
    if let Ok(entries) = fs_err::read_dir(&root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix("cp-")
                .and_then(|rest| rest.split('-').next())
            else {
                continue;
            };
            if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
                let _ = fs_err::remove_dir_all(entry.path());
            }
        }
    }
    let dir = root.join(format!(
        "cp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs_err::remove_dir_all(&dir);
    fs_err::create_dir_all(&dir)
        .expect("creating the control plane's directory under `target/harness` succeeds");
    dir
}
