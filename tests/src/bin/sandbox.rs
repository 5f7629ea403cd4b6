//! The sandbox behind `cargo xtask sandbox up`: every harness component in one long-running
//! process, so a newcomer can try `kubectl fluxbootstrap azdo` without Azure or a cluster.
//!
//! It starts the git server (HTTPS + SSH), the control plane (two clusters, each running the
//! real source-controller and kustomize-controller through the process kubelet when the real
//! Flux bundle and binaries are there; it says so when they are not) and the release server, writes `<dir>/env` (`KEY=VALUE` lines a shell can
//! source), serves `repo` / `add-key` requests on the Unix socket `<dir>/control.sock`, and
//! tears everything down on SIGTERM or SIGINT.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use fluxbootstrap_test::{
    ControlPlane, GitServer, IdentityEndpoint, ReleaseServer, Workloads, flux_bundle_tar_gz,
    missing_flux_binaries,
};

/// Organization, project and repository of the sandbox's first empty repository.
const ORG: &str = "sandbox";
const PROJECT: &str = "fleet";
const REPO: &str = "fleet-infra";
/// The managed identity `--provider azure --azure-client-id` names in the sandbox.
const SANDBOX_AZURE_CLIENT_ID: &str = "00000000-0000-0000-0000-0000000005a1";

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = match (args.next().as_deref(), args.next()) {
        (Some("--dir"), Some(dir)) => PathBuf::from(dir),
        _ => fail("usage: sandbox --dir DIR"),
    };
    fs_err::create_dir_all(&dir).unwrap_or_else(|e| fail(&e.to_string()));
    let env_file = dir.join("env");
    let socket = dir.join("control.sock");
    // A stale env file must not be mistaken for a ready sandbox.
    let _ = fs_err::remove_file(&env_file);
    let _ = fs_err::remove_file(&socket);

    log("starting the git server");
    let git = GitServer::start();
    let repo = git.create_repo(ORG, PROJECT, REPO);
    let real_bundle = std::env::var_os("FLUXBOOTSTRAP_FLUX_MANIFESTS")
        .map(PathBuf::from)
        .is_some_and(|d| d.join("v2.9.4/source-controller.yaml").is_file());
    let cluster = match (real_bundle, missing_flux_binaries()) {
        (true, None) => {
            log("starting the control plane (two clusters, each with the real Flux controllers)");
            let cluster = ControlPlane::start_with_workloads(&Workloads {
                trusted_ca_file: Some(git.ca_file().to_owned()),
                identity: Some(IdentityEndpoint {
                    https_port: git.https_port(),
                    default_tenant_id: git.tenant_id().to_owned(),
                }),
            });
            // Workload identity: both clusters' source-controllers may act as the sandbox app.
            for (issuer, key) in cluster.service_account_issuers() {
                git.trust_issuer(&issuer, key);
                git.add_federated_credential(
                    &issuer,
                    "system:serviceaccount:flux-system:source-controller",
                    SANDBOX_AZURE_CLIENT_ID,
                );
            }
            cluster
        }
        (real_bundle, missing) => {
            log(&format!(
                "the real Flux controllers cannot run here ({}): the clusters run no Flux \
                 controllers, so a bootstrap will wait until its --timeout",
                if real_bundle {
                    missing.unwrap_or_default()
                } else {
                    "FLUXBOOTSTRAP_FLUX_MANIFESTS has no v2.9.4 bundle".to_owned()
                }
            ));
            ControlPlane::start()
        }
    };

    log("starting the release server");
    let releases = ReleaseServer::start();
    let (version, bundle) = flux_bundle_tar_gz();
    releases.publish(&version, bundle);
    releases.set_latest(&version);

    // A user's RSA key, already added to the git server, for trying the SSH-only mode.
    let user_key = dir.join("id_rsa");
    let _ = fs_err::remove_file(&user_key);
    let _ = fs_err::remove_file(user_key.with_extension("pub"));
    let keygen = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "rsa",
            "-b",
            "4096",
            "-N",
            "",
            "-C",
            "sandbox-user",
            "-f",
        ])
        .arg(&user_key)
        .status()
        .unwrap_or_else(|e| fail(&format!("running ssh-keygen: {e}")));
    if !keygen.success() {
        fail("ssh-keygen failed to create the sandbox user's key");
    }
    let public_key = fs_err::read_to_string(user_key.with_extension("pub"))
        .unwrap_or_else(|e| fail(&e.to_string()));
    git.add_ssh_key(public_key.trim());

    let known_hosts = dir.join("known_hosts");
    fs_err::write(&known_hosts, format!("{}\n", git.ssh_known_hosts()))
        .unwrap_or_else(|e| fail(&e.to_string()));
    let vars = [
        ("KUBECONFIG", cluster.kubeconfig().display().to_string()),
        ("FLUXBOOTSTRAP_SANDBOX_HTTPS_URL", repo.https_url.clone()),
        ("FLUXBOOTSTRAP_SANDBOX_SSH_URL", repo.ssh_url.clone()),
        ("FLUXBOOTSTRAP_SANDBOX_SSH_HOST", git.ssh_host()),
        (
            "FLUXBOOTSTRAP_SANDBOX_SSH_KNOWN_HOSTS",
            known_hosts.display().to_string(),
        ),
        (
            "FLUXBOOTSTRAP_SANDBOX_SSH_KEY",
            user_key.display().to_string(),
        ),
        (
            "FLUXBOOTSTRAP_SANDBOX_CA_FILE",
            git.ca_file().display().to_string(),
        ),
        ("GIT_PASSWORD", git.pat().to_owned()),
        (
            "FLUXBOOTSTRAP_SANDBOX_READONLY_PAT",
            git.readonly_pat().to_owned(),
        ),
        (
            "FLUXBOOTSTRAP_SANDBOX_BEARER_TOKEN",
            git.bearer_token().to_owned(),
        ),
        (
            "FLUXBOOTSTRAP_SANDBOX_ADMIN_CONTEXT",
            cluster.admin_context().to_owned(),
        ),
        (
            "FLUXBOOTSTRAP_SANDBOX_NONADMIN_CONTEXT",
            cluster.nonadmin_context().to_owned(),
        ),
        (
            "FLUXBOOTSTRAP_SANDBOX_SECOND_CONTEXT",
            cluster.second_context().to_owned(),
        ),
        // What `kubectl fluxbootstrap` reads instead of https://github.com.
        ("FLUXBOOTSTRAP_RELEASES_URL", releases.base_url()),
        // It is plain HTTP on loopback, and the synthetic bundle (without the real one) is
        // not the v2.9.4 the plugin pins.
        ("FLUXBOOTSTRAP_RELEASES_ALLOW_HTTP", "1".to_owned()),
        (
            "FLUXBOOTSTRAP_RELEASES_UNPINNED",
            if fluxbootstrap_test::flux_bundle_is_real() {
                "0"
            } else {
                "1"
            }
            .to_owned(),
        ),
        ("FLUXBOOTSTRAP_SANDBOX_FLUX_VERSION", version.clone()),
        (
            "FLUXBOOTSTRAP_SANDBOX_AZURE_CLIENT_ID",
            SANDBOX_AZURE_CLIENT_ID.to_owned(),
        ),
    ];
    let listener = UnixListener::bind(&socket).unwrap_or_else(|e| fail(&e.to_string()));
    write_env(&env_file, &vars);
    log(&format!("ready: source {}", env_file.display()));

    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        wait_for_termination();
        let _ = stop_tx.send(());
    });
    serve_control(&listener, &git, &stop_rx);

    log("stopping");
    let _ = fs_err::remove_file(&env_file);
    let _ = fs_err::remove_file(&socket);
    drop(releases);
    drop(cluster);
    drop(git);
    log("stopped");
}

/// Write the env file atomically (rename), readable only by the user: it holds PATs.
fn write_env(path: &Path, vars: &[(&str, String)]) {
    use std::os::unix::fs::PermissionsExt;
    let mut text = String::from("# Written by `cargo xtask sandbox up`; `source` it.\n");
    for (key, value) in vars {
        let _ = writeln!(text, "export {key}={}", shell_quote(value));
    }
    // `kubectl fluxbootstrap` (built next to this binary) and the sandbox's kubectl.
    let plugin_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let search_path = std::env::join_paths([plugin_dir, ControlPlane::bin_dir()])
        .unwrap_or_else(|e| fail(&e.to_string()));
    let _ = writeln!(
        text,
        "export PATH={}:\"$PATH\"",
        shell_quote(&search_path.to_string_lossy())
    );
    let tmp = path.with_extension("tmp");
    fs_err::write(&tmp, text).unwrap_or_else(|e| fail(&e.to_string()));
    fs_err::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| fail(&e.to_string()));
    fs_err::rename(&tmp, path).unwrap_or_else(|e| fail(&e.to_string()));
}

fn shell_quote(value: &str) -> String {
    if value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./:@%+=,".contains(&b))
    {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// Answer one-line requests (`repo NAME[\tPROJECT]`, `add-key PUBLIC-KEY-LINE`) until `stop`.
fn serve_control(listener: &UnixListener, git: &GitServer, stop: &std::sync::mpsc::Receiver<()>) {
    listener
        .set_nonblocking(true)
        .unwrap_or_else(|e| fail(&e.to_string()));
    while stop.try_recv().is_err() {
        match listener.accept() {
            Ok((stream, _)) => {
                // A client that misbehaves only loses its own answer.
                let _ = stream
                    .set_nonblocking(false)
                    .and_then(|()| answer(&stream, git));
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
}

fn answer(stream: &UnixStream, git: &GitServer) -> std::io::Result<()> {
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    let mut writer = stream;
    let line = line.trim_end_matches(['\r', '\n']);
    let reply = match line.split_once(' ') {
        Some(("repo", rest)) => {
            let (name, project) = rest.split_once('\t').unwrap_or((rest, PROJECT));
            if name.is_empty() || project.is_empty() {
                "error: expected `repo NAME [PROJECT]`\n".to_owned()
            } else if git.repo(ORG, project, name).is_some() {
                format!("error: repository `{project}/{name}` already exists\n")
            } else {
                let repo = git.create_repo(ORG, project, name);
                format!("ok\n{}\n{}\n", repo.https_url, repo.ssh_url)
            }
        }
        Some(("add-key", key)) => {
            let kind = key.split_whitespace().next().unwrap_or("");
            if kind == "ssh-rsa" {
                git.add_ssh_key(key);
                "ok\n".to_owned()
            } else {
                format!("error: Azure DevOps only accepts RSA keys (`ssh-rsa ...`), got `{kind}`\n")
            }
        }
        _ => "error: unknown request\n".to_owned(),
    };
    writer.write_all(reply.as_bytes())
}

/// Block until SIGTERM or SIGINT.
fn wait_for_termination() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&e.to_string()));
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).unwrap_or_else(|e| fail(&e.to_string()));
        let mut int = signal(SignalKind::interrupt()).unwrap_or_else(|e| fail(&e.to_string()));
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    });
}

#[expect(clippy::print_stderr, reason = "the sandbox's log is its stderr")]
fn log(message: &str) {
    eprintln!("sandbox: {message}");
}

#[expect(clippy::exit, reason = "a failed sandbox start ends the process")]
fn fail(message: &str) -> ! {
    log(&format!("error: {message}"));
    std::process::exit(1);
}
