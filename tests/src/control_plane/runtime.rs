//! The harness's background tokio runtime and kube clients built on it.
//!
//! The harness API is blocking so tests stay plain `#[test]` functions; the async kube-rs
//! work (readiness probes, the process kubelet) runs on this one runtime, which lives as long
//! as the test process.

use std::future::Future;
use std::path::Path;
use std::sync::OnceLock;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// The harness's multi-threaded runtime, started on first use.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("harness-runtime")
            .enable_all()
            .build()
            .expect("building the harness tokio runtime succeeds")
    })
}

/// Runs `future` to completion on the harness runtime from blocking code.
pub(crate) fn block_on<F: Future + Send + 'static>(future: F) -> F::Output
where
    F::Output: Send + 'static,
{
    let handle = runtime().spawn(future);
    futures::executor::block_on(handle).expect("a harness task does not panic")
}

/// A kube client for `context` of the kubeconfig at `kubeconfig`.
pub(crate) async fn client(kubeconfig: &Path, context: &str) -> Result<kube::Client, String> {
    let file = Kubeconfig::read_from(kubeconfig)
        .map_err(|e| format!("cannot read kubeconfig `{}`: {e}", kubeconfig.display()))?;
    let options = KubeConfigOptions {
        context: Some(context.to_owned()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(file, &options)
        .await
        .map_err(|e| format!("cannot load context `{context}`: {e}"))?;
    kube::Client::try_from(config).map_err(|e| format!("cannot build a kube client: {e}"))
}
