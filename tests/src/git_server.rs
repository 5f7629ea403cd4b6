//! An Azure-DevOps-shaped git server on loopback, so git, REST and SSH code is tested against
//! real protocol implementations instead of mocks.
//!
//! HTTPS (generated CA) serves git smart HTTP through the real `git http-backend` at
//! `/{org}/{project}/_git/{repo}` plus the REST subset of `azure-devops.md` §4; a real OpenSSH
//! `sshd` serves `v3/{org}/{project}/{repo}` through a forced command. Authentication behaves
//! like Azure DevOps: Basic with any non-empty user and a PAT, Bearer with an Entra-style token,
//! 401/203 answers on bad credentials, 403 on pushes with a read-only PAT, RSA-only SSH keys with
//! SHA-2 signatures.

mod entra;
mod faults;
mod github;
mod http;
mod pats;
mod process;
mod rest;
mod sshd;
mod state;
mod tls;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use state::{Access, State};

pub(crate) use entra::AUTHORITY_HOST;
pub use faults::{Fault, FaultAction, FaultTarget, LoggedRequest};
pub(crate) use github::HOSTS as GITHUB_HOSTS;
pub use pats::MintedPatRecord;

/// A running git server: HTTPS (smart HTTP + REST) and SSH on free loopback ports.
///
/// Dropping it stops `sshd` and the HTTPS listener and removes its directory.
pub struct GitServer {
    state: Arc<State>,
    sshd: sshd::Sshd,
    runtime: Option<tokio::runtime::Runtime>,
    // Declared last so the files outlive the processes using them.
    _dir: tempfile::TempDir,
}

/// One repository on a [`GitServer`], with the URLs clients use for it.
#[derive(Debug, Clone)]
pub struct Repo {
    /// `https://127.0.0.1:PORT/{org}/{project}/_git/{repo}`, segments percent-encoded.
    pub https_url: String,
    /// `ssh://git@127.0.0.1:PORT/v3/{org}/{project}/{repo}`, segments percent-encoded.
    pub ssh_url: String,
    /// The bare repository on disk.
    pub bare_path: PathBuf,
    /// Organization name as given at creation.
    pub org: String,
    /// Project name as given at creation.
    pub project: String,
    /// Repository name as given at creation.
    pub name: String,
    /// Repository GUID, as the REST API reports it.
    pub id: String,
    git_config: PathBuf,
}

impl Repo {
    /// The real `git` CLI acting on the bare repository (`GIT_DIR` set, inherited `GIT_*`
    /// variables and the user's global config cleared).
    pub fn git(&self) -> std::process::Command {
        let mut cmd = process::git_command(&self.git_config);
        cmd.env("GIT_DIR", &self.bare_path);
        cmd
    }

    /// Full commit id `refs/heads/{branch}` points at, or `None` when the branch does not exist.
    pub fn branch_sha(&self, branch: &str) -> Option<String> {
        let out = self
            .git()
            .args(["rev-parse", "--verify", "--quiet"])
            .arg(format!("refs/heads/{branch}^{{commit}}"))
            .output()
            .expect("running `git rev-parse` works because git is installed");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

impl GitServer {
    /// The server shared by every test of this process, started on first use.
    pub fn shared() -> &'static GitServer {
        static SHARED: OnceLock<GitServer> = OnceLock::new();
        SHARED.get_or_init(GitServer::start)
    }

    /// Start a private server (stopped on drop).
    ///
    /// Panics with an actionable message when `git`, `sshd`, `ssh-keygen` or the `git` system
    /// user are missing.
    pub fn start() -> GitServer {
        remove_stale_dirs();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir()
            .expect("creating a temporary directory works because the temp dir is writable");
        // sshd's forced command runs as user `git` and must reach the repositories.
        process::chmod(dir.path(), 0o755);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("git-server")
            .enable_all()
            .build()
            .expect("building a tokio runtime works because the OS allows threads");
        let tls = tls::Tls::generate(dir.path());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binding a loopback port works because port 0 picks a free one");
        let https_port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        let state = Arc::new(State::new(dir.path(), https_port, &tls.ca_file));
        let sshd = sshd::Sshd::start(dir.path(), &state);
        state.set_ssh_port(sshd.port());
        runtime.spawn(http::serve(listener, tls.acceptor(), Arc::clone(&state)));
        GitServer {
            state,
            sshd,
            runtime: Some(runtime),
            _dir: dir,
        }
    }

    /// Base URL of the HTTPS endpoint, `https://127.0.0.1:PORT`.
    pub fn https_base(&self) -> String {
        self.state.https_base()
    }

    /// PEM file of the CA that signed the HTTPS server certificate.
    pub fn ca_file(&self) -> &Path {
        &self.state.ca_file
    }

    /// `127.0.0.1:PORT` of the SSH endpoint.
    pub fn ssh_host(&self) -> String {
        format!("127.0.0.1:{}", self.sshd.port())
    }

    /// The `known_hosts` line for the SSH endpoint: `[127.0.0.1]:PORT ssh-rsa AAAA...`.
    pub fn ssh_known_hosts(&self) -> String {
        format!(
            "[127.0.0.1]:{} {}",
            self.sshd.port(),
            self.sshd.host_public_key()
        )
    }

    /// A full-access PAT (Code read, write and manage).
    pub fn pat(&self) -> &str {
        &self.state.full_pat
    }

    /// A read-only PAT: clone works, push gets 403.
    pub fn readonly_pat(&self) -> &str {
        &self.state.readonly_pat
    }

    /// An Entra-style access token accepted as `Authorization: Bearer` (and as Basic password).
    pub fn bearer_token(&self) -> &str {
        &self.state.bearer_token
    }

    /// The tenant GUID reported in `X-VSS-ResourceTenant`.
    pub fn tenant_id(&self) -> &str {
        &self.state.tenant_id
    }

    /// Create a project (no-op when it exists).
    pub fn create_project(&self, org: &str, project: &str) {
        self.state.create_project(org, project);
    }

    /// Create an empty repository (no refs at all), creating the org and project if needed.
    ///
    /// Panics when the repository already exists.
    pub fn create_repo(&self, org: &str, project: &str, repo: &str) -> Repo {
        match self.state.create_repo(org, project, repo) {
            Ok(meta) => self.repo_handle(&meta),
            Err(state::CreateError::Exists) => {
                panic!("repository `{org}/{project}/{repo}` already exists on the test git server")
            }
            Err(state::CreateError::NoProject) => {
                unreachable!("`create_repo` creates the project first")
            }
        }
    }

    /// The handle of an existing repository (names are case-insensitive like Azure DevOps).
    pub fn repo(&self, org: &str, project: &str, repo: &str) -> Option<Repo> {
        self.state
            .find_repo(org, project, repo)
            .map(|meta| self.repo_handle(&meta))
    }

    /// Register a user's OpenSSH public key (what the Azure DevOps "SSH public keys" page does).
    /// Only RSA keys are ever accepted by the server, whatever is registered.
    pub fn add_ssh_key(&self, public_key_openssh: &str) {
        self.sshd.add_key(public_key_openssh);
    }

    /// Accept `pat` from now on, read-only (clone) or full (push, create repositories).
    pub fn add_pat(&self, pat: &str, read_only: bool) {
        let access = if read_only {
            Access::ReadOnly
        } else {
            Access::Full
        };
        self.state.add_pat(pat, access);
    }

    /// Trust `ServiceAccount` tokens of `issuer` (a cluster's `--service-account-issuer`) signed
    /// by `public_key` (an uncompressed P-256 point) in the Entra stand-in.
    pub fn trust_issuer(&self, issuer: &str, public_key: Vec<u8>) {
        self.state
            .federation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .trust_issuer(issuer, public_key);
    }

    /// A federated credential of app `client_id`: tokens of `issuer` for `subject` (e.g.
    /// `system:serviceaccount:flux-system:source-controller`) may be exchanged for it.
    pub fn add_federated_credential(&self, issuer: &str, subject: &str, client_id: &str) {
        self.state
            .federation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .add_credential(issuer, subject, client_id);
    }

    /// Requests the Entra stand-in did not understand (each also logged on stderr).
    pub fn unknown_entra_requests(&self) -> Vec<String> {
        self.state
            .federation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .unknown_requests()
    }

    /// Answers for `github.com` and `api.github.com` (reached through an [`crate::EgressProxy`]
    /// for [`GitServer::github_hosts`]) from `releases`, as GitHub serves Flux releases.
    pub fn serve_github_releases(&self, releases: &crate::ReleaseServer) {
        self.state.set_github_releases(releases.authority());
    }

    /// The host names the GitHub stand-in answers for.
    pub fn github_hosts(&self) -> [&'static str; 2] {
        GITHUB_HOSTS
    }

    /// The loopback port of the HTTPS endpoint (which also answers as the Entra authority
    /// and as GitHub).
    pub fn https_port(&self) -> u16 {
        self.state.https_port
    }

    /// Stop accepting `pat` (as if it expired or was revoked).
    pub fn revoke_pat(&self, pat: &str) {
        self.state.revoke_pat(pat);
    }

    /// Injects `fault` into the HTTPS endpoint (REST and git smart HTTP) for requests of its
    /// organization; from now on that organization's requests are logged ([`Self::requests`]).
    pub fn inject_fault(&self, fault: Fault) {
        self.state.faults.inject(fault);
    }

    /// The requests of `org` since its first fault was injected, oldest first.
    pub fn requests(&self, org: &str) -> Vec<LoggedRequest> {
        self.state.faults.log(org)
    }

    /// The PATs the PAT lifecycle API created in `org`, revoked ones included.
    pub fn minted_pats(&self, org: &str) -> Vec<MintedPatRecord> {
        self.state.minted_pats(org)
    }

    /// Makes `org` one backed by Microsoft accounts, not Entra ID: its PAT lifecycle API
    /// refuses Entra tokens.
    pub fn detach_from_entra(&self, org: &str) {
        self.state.detach_from_entra(org);
    }

    /// Turns on `org`'s policy that disables PAT creation.
    pub fn disable_pat_creation(&self, org: &str) {
        self.state.disable_pat_creation(org);
    }

    /// Whether `token` (a PAT or the Entra token) is valid, and if so whether it may push.
    pub fn token_can_push(&self, token: &str) -> Option<bool> {
        self.state
            .access_for(token)
            .map(|access| access == state::Access::Full)
    }

    /// How many hits the faults injected for `org` have left (0: all were met).
    pub fn faults_left(&self, org: &str) -> u32 {
        self.state.faults.remaining(org)
    }

    fn repo_handle(&self, meta: &state::RepoMeta) -> Repo {
        Repo {
            https_url: self.state.https_url(meta),
            ssh_url: self.state.ssh_url(meta),
            bare_path: meta.bare_path.clone(),
            org: meta.org.clone(),
            project: meta.project.clone(),
            name: meta.name.clone(),
            id: meta.id.clone(),
            git_config: self.state.git_config.clone(),
        }
    }
}

/// Prefix of server directories in the temp dir: `{DIR_PREFIX}{pid}-{random}`.
const DIR_PREFIX: &str = "fluxbootstrap-git-server-";

/// Remove the directories of servers whose process is gone: the shared server lives in a
/// `static` and is never dropped, so its directory outlives the test binary.
fn remove_stale_dirs() {
    let Ok(entries) = fs_err::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            // Best effort: another process may be removing it at the same time.
            let _ = fs_err::remove_dir_all(entry.path());
        }
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.sshd.stop();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(std::time::Duration::from_secs(2));
        }
    }
}
