//! The test context: shared harness components, private control planes running the real
//! Flux controllers, a scrubbed environment for the plugin, and snapshot filters for ports,
//! hashes, keys and temporary paths.
//!
//! A test whose bootstrap runs to completion (the plugin waits for the `GitRepository`, the
//! `Kustomization` and the controllers) starts its own control plane with
//! [`real_flux_cluster`]: the real controllers watch every namespace, so two Flux installs on
//! one cluster would fight. Tests that never wait for Flux (usage errors, refusals, dry runs)
//! use the shared control plane [`Env::control_plane`], which runs no controllers at all.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use fluxbootstrap_test::{ControlPlane, GitServer, ReleaseServer, Repo, Workloads};

/// Filters that make output stable across runs.
pub(crate) const FILTERS: &[(&str, &str)] = &[
    (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
    (r"\b[0-9a-f]{40}\b", "[SHA]"),
    (r"SHA256:[A-Za-z0-9+/=]+", "SHA256:[FINGERPRINT]"),
    (r"ssh-rsa AAAA[A-Za-z0-9+/=]+", "ssh-rsa [PUBLIC-KEY]"),
    (r"e2e-[a-z0-9-]+", "[NAME]"),
    (r"v1\.\d+\.\d+", "v1.[MINOR].[PATCH]"),
    (
        r#""durationSeconds": [0-9.e-]+"#,
        r#""durationSeconds": [SECONDS]"#,
    ),
    (r#"": [0-9]+\.[0-9]+(e-?[0-9]+)?"#, r#"": [SECONDS]"#),
];

/// Everything a test needs, shared by the tests of this binary.
pub(crate) struct Env {
    /// The shared control plane: API servers only, no controllers, so nothing on it ever
    /// becomes ready.
    pub(crate) control_plane: &'static ControlPlane,
    pub(crate) git: &'static GitServer,
    pub(crate) releases: ReleaseServer,
    pub(crate) cache: tempfile::TempDir,
}

pub(crate) fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let control_plane = ControlPlane::shared();
        let git = GitServer::shared();
        let releases = ReleaseServer::start();
        let (version, bundle) = fluxbootstrap_test::flux_bundle_tar_gz();
        releases.publish(&version, bundle);
        Env {
            control_plane,
            git,
            releases,
            cache: tempfile::tempdir().expect("a temp dir can be created"),
        }
    })
}

impl Env {
    /// A new empty repository with a unique name.
    pub(crate) fn repo(&self) -> Repo {
        let name = self.control_plane.unique_name("e2e-repo");
        self.git.create_repo("e2e-org", "e2e-project", &name)
    }

    /// A unique Flux namespace, so tests do not share a `GitRepository`.
    pub(crate) fn namespace(&self) -> String {
        self.control_plane.unique_name("e2e-ns")
    }

    /// The plugin with a scrubbed environment pointed at the harness.
    pub(crate) fn plugin(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubectl-fluxbootstrap"));
        for (key, _) in std::env::vars_os() {
            let key_str = key.to_string_lossy();
            if key_str.starts_with("GIT_") || key_str.starts_with("FLUX") || key_str == "KUBECONFIG"
            {
                cmd.env_remove(&key);
            }
        }
        // A kubectl user has kubectl: the harness's own comes first on PATH.
        let path = std::env::join_paths(std::iter::once(ControlPlane::bin_dir()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .expect("PATH entries contain no separator");
        // A temporary directory of its own, which the leak scan checks is empty after it.
        let tmp = tempfile::Builder::new()
            .prefix("plugin-tmp-")
            .tempdir_in(self.cache.path())
            .expect("a temp dir can be created")
            .keep();
        cmd.env("PATH", path)
            .env("TMPDIR", tmp)
            .env("KUBECONFIG", self.control_plane.kubeconfig())
            .env("FLUXBOOTSTRAP_RELEASES_URL", self.releases.base_url())
            // The release server is plain HTTP on loopback; the synthetic bundle is no v2.9.4.
            .env("FLUXBOOTSTRAP_RELEASES_ALLOW_HTTP", "1")
            .env(
                "FLUXBOOTSTRAP_RELEASES_UNPINNED",
                if fluxbootstrap_test::flux_bundle_is_real() {
                    "0"
                } else {
                    "1"
                },
            )
            .env("XDG_CACHE_HOME", self.cache.path())
            .env("NO_COLOR", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null());
        cmd
    }

    /// The plugin as [`Env::plugin`] makes it, with `KUBECONFIG` pointing at `cluster`.
    pub(crate) fn plugin_on(&self, cluster: &ControlPlane) -> Command {
        let mut cmd = self.plugin();
        cmd.env("KUBECONFIG", cluster.kubeconfig());
        cmd
    }

    /// `kubectl` (the built v1.36 one) against the shared control plane.
    pub(crate) fn kubectl(&self, args: &[&str]) -> Output {
        self.control_plane
            .kubectl()
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    pub(crate) fn ca_file(&self) -> &Path {
        self.git.ca_file()
    }
}

/// A private control plane running the real Flux controllers, or `None` (said loudly) when the
/// real Flux bundle is not available.
pub(crate) fn real_flux_cluster(env: &Env) -> Option<ControlPlane> {
    let real_bundle = std::env::var_os("FLUXBOOTSTRAP_FLUX_MANIFESTS")
        .map(std::path::PathBuf::from)
        .is_some_and(|d| d.join("v2.9.4/source-controller.yaml").is_file());
    if !real_bundle {
        assert!(
            std::env::var_os("FLUXBOOTSTRAP_REQUIRE_REAL_FLUX").is_none(),
            "FLUXBOOTSTRAP_REQUIRE_REAL_FLUX is set but FLUXBOOTSTRAP_FLUX_MANIFESTS has no v2.9.4 bundle"
        );
        #[expect(clippy::print_stderr, reason = "a skipped test says so")]
        {
            eprintln!(
                "SKIPPED: this test runs the real Flux controllers and needs the real Flux v2.9.4 \
                 bundle: set FLUXBOOTSTRAP_FLUX_MANIFESTS (as .ci/run does)"
            );
        }
        return None;
    }
    let cluster = ControlPlane::start_with_workloads(&Workloads {
        trusted_ca_file: Some(env.ca_file().to_owned()),
        identity: Some(fluxbootstrap_test::IdentityEndpoint {
            https_port: env.git.https_port(),
            default_tenant_id: env.git.tenant_id().to_owned(),
        }),
    });
    // Workload identity: the clusters' source-controllers may act as the test app.
    for (issuer, key) in cluster.service_account_issuers() {
        env.git.trust_issuer(&issuer, key);
        for namespace in ["flux-system", "flux-wi"] {
            env.git.add_federated_credential(
                &issuer,
                &format!("system:serviceaccount:{namespace}:source-controller"),
                AZURE_CLIENT_ID,
            );
        }
    }
    Some(cluster)
}

/// The managed identity the workload-identity tests name with `--azure-client-id`; its
/// federated credentials trust every real-Flux cluster's source-controller.
pub(crate) const AZURE_CLIENT_ID: &str = "00000000-0000-0000-0000-00000000c11d";

/// Asserts that the real Flux controllers on `context` of `cluster` synced the head of `branch`:
/// source-controller fetched it (`GitRepository` artifact) and kustomize-controller applied it
/// (`Kustomization` `lastAppliedRevision`), both named after `namespace` as bootstrap names them.
pub(crate) fn assert_flux_synced(
    cluster: &ControlPlane,
    context: &str,
    namespace: &str,
    repo: &Repo,
    branch: &str,
) {
    crate::leaks::assert_repository_clean(env(), repo);
    let head = repo
        .branch_sha(branch)
        .unwrap_or_else(|| panic!("branch {branch} exists"));
    let expected = format!("{branch}@sha1:{head}");
    for (object, path) in [
        ("gitrepository", "{.status.artifact.revision}"),
        ("kustomization", "{.status.lastAppliedRevision}"),
    ] {
        let out = cluster
            .kubectl()
            .args([
                "--context",
                context,
                "-n",
                namespace,
                "get",
                object,
                namespace,
            ])
            .arg(format!("-o=jsonpath={path}"))
            .output()
            .expect("kubectl runs");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            expected,
            "{object} {namespace}/{namespace} on {context}: {} (logs under {})",
            String::from_utf8_lossy(&out.stderr),
            cluster.dir().display()
        );
    }
}

/// Runs `cmd` and returns (exit code, stdout, stderr). A run of the plugin goes through the
/// leak scan: no secret in its output, nothing left in its temporary directory.
pub(crate) fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("the plugin runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    scan_plugin_run(cmd, &stdout, &stderr);
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// [`run`] with `input` piped to stdin (then closed).
pub(crate) fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> (i32, String, String) {
    use std::io::Write as _;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the plugin starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // A plugin that refuses early may close its end first.
    let _ = stdin.write_all(input);
    drop(stdin);
    let out = child.wait_with_output().expect("the plugin finishes");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    scan_plugin_run(cmd, &stdout, &stderr);
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// The leak scan of one finished plugin run (other programs pass unscanned).
fn scan_plugin_run(cmd: &Command, stdout: &str, stderr: &str) {
    if cmd.get_program() != env!("CARGO_BIN_EXE_kubectl-fluxbootstrap") {
        return;
    }
    crate::leaks::assert_output_clean(env(), stdout, stderr);
    let tmp = cmd
        .get_envs()
        .find(|(k, _)| *k == "TMPDIR")
        .and_then(|(_, v)| v.map(PathBuf::from));
    if let Some(tmp) = tmp {
        crate::leaks::assert_temp_dir_empty(&tmp);
    }
}

/// Runs a bootstrap that generates an SSH key and does what its user does: adds the printed
/// public key to the Azure DevOps SSH keys page (the harness) and answers `y` when asked to.
/// Returns (exit status, stdout, stderr).
pub(crate) fn run_adding_the_public_key(
    env: &Env,
    cmd: &mut Command,
) -> (std::process::ExitStatus, String, String) {
    use std::io::Write as _;
    run_watching(cmd, |line, stdin| {
        if let Some(key) = line.trim().strip_prefix("✔ public key: ") {
            assert!(
                key.starts_with("ssh-rsa "),
                "Azure DevOps needs an RSA key: {key}"
            );
            env.git.add_ssh_key(key);
        }
        if line.contains("Please give the key access")
            || line.contains("add it to the SSH public keys")
        {
            let _ = writeln!(stdin, "y");
        }
    })
}

/// Runs the plugin, handing each stderr line to `on_line` as it arrives (with the plugin's
/// stdin, to answer prompts), then puts the run through the leak scan. Returns (exit status,
/// stdout, stderr).
pub(crate) fn run_watching(
    cmd: &mut Command,
    mut on_line: impl FnMut(&str, &mut std::process::ChildStdin),
) -> (std::process::ExitStatus, String, String) {
    use std::io::{BufRead as _, Read as _};
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the plugin starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr is piped"));
    let (mut transcript, mut line) = (String::new(), String::new());
    while stderr.read_line(&mut line).expect("stderr is readable") > 0 {
        transcript.push_str(&line);
        on_line(&line, &mut stdin);
        line.clear();
    }
    drop(stdin);
    let status = child.wait().expect("the plugin finishes");
    let stdout = reader.join().expect("stdout is read");
    scan_plugin_run(cmd, &stdout, &transcript);
    (status, stdout, transcript)
}

/// The file in the stand-in `az`'s directory where it records each call's arguments, a line
/// per call.
pub(crate) const AZ_CALLS: &str = "az.calls";

/// A `PATH` whose `az` is a stand-in in `bin` answering like `az account get-access-token`
/// with the harness's Entra token (and recording the call in [`AZ_CALLS`]), followed by
/// kubectl's directory and the inherited `PATH`.
pub(crate) fn path_with_stand_in_az(env: &Env, bin: &Path) -> std::ffi::OsString {
    use std::os::unix::fs::PermissionsExt as _;
    let az = bin.join("az");
    std::fs::write(
        &az,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\ncat <<'JSON'\n{{\"accessToken\": \"{}\", \"expiresOn\": \"2099-01-01 00:00:00.000000\", \"expires_on\": 4070908800, \"tenant\": \"{}\", \"tokenType\": \"Bearer\"}}\nJSON\n",
            bin.join(AZ_CALLS).display(),
            env.git.bearer_token(),
            env.git.tenant_id()
        ),
    )
    .expect("the stand-in az is written");
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755))
        .expect("az is executable");
    std::env::join_paths([bin.to_owned(), ControlPlane::bin_dir()].into_iter().chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH entries contain no separator")
}

/// The snapshot text of a run: exit code, stdout and stderr.
pub(crate) fn transcript((code, stdout, stderr): &(i32, String, String)) -> String {
    format!(
        "success: {}\nexit_code: {code}\n----- stdout -----\n{stdout}\n----- stderr -----\n{stderr}",
        *code == 0
    )
}

/// `stderr` with the lines whose order depends on timing (concurrent readiness waits) sorted
/// within their block, so a snapshot is stable.
pub(crate) fn stable_lines(stderr: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    let concurrent = |l: &str| {
        l.ends_with(": deployment ready")
            || l.contains("reconciled successfully")
            || l.starts_with("◎ waiting")
    };
    for line in stderr.lines() {
        if concurrent(line) {
            block.push(line);
            continue;
        }
        block.sort_unstable();
        out.extend(block.drain(..).map(str::to_owned));
        out.push(line.to_owned());
    }
    block.sort_unstable();
    out.extend(block.drain(..).map(str::to_owned));
    out.join("\n")
}

/// Snapshots `text` under `name` with the shared filters.
pub(crate) fn assert_filtered_snapshot(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    for (regex, replacement) in FILTERS {
        settings.add_filter(regex, *replacement);
    }
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

/// Commit subjects on `branch`, newest first, from the real git CLI.
pub(crate) fn commit_subjects(repo: &Repo, branch: &str) -> Vec<String> {
    let out = repo
        .git()
        .args(["log", "--format=%s", branch])
        .output()
        .expect("git log runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The file list of `branch`, from the real git CLI.
pub(crate) fn tree(repo: &Repo, branch: &str) -> Vec<String> {
    let out = repo
        .git()
        .args(["ls-tree", "-r", "--name-only", branch])
        .output()
        .expect("git ls-tree runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// One file of `branch`, from the real git CLI.
pub(crate) fn show(repo: &Repo, branch: &str, path: &str) -> String {
    let out = repo
        .git()
        .args(["show", &format!("{branch}:{path}")])
        .output()
        .expect("git show runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A passphrase-protected RSA key made by `ssh-keygen` in `dir`, registered with the git
/// server (what a user does on the Azure DevOps SSH keys page); returns the private key's path
/// and the public key line.
pub(crate) fn registered_rsa_key(env: &Env, dir: &Path, passphrase: &str) -> (PathBuf, String) {
    let key = dir.join("id_rsa");
    let status = Command::new("ssh-keygen")
        .args([
            "-q", "-t", "rsa", "-b", "3072", "-N", passphrase, "-C", "", "-f",
        ])
        .arg(&key)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen failed");
    let public = std::fs::read_to_string(dir.join("id_rsa.pub")).expect("public key written");
    crate::leaks::remember(passphrase);
    crate::leaks::remember_private_key(
        &std::fs::read_to_string(&key).expect("private key written"),
        &public,
    );
    env.git.add_ssh_key(public.trim());
    (key, public)
}

/// A fresh temp dir path for key files etc.
pub(crate) fn temp_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temp dir can be created");
    let path = dir.path().to_owned();
    (dir, path)
}

#[macro_export]
/// Snapshots a transcript with the shared filters.
macro_rules! assert_transcript {
    ($run:expr, @$snapshot:literal) => {{
        let mut settings = insta::Settings::clone_current();
        for (regex, replacement) in $crate::context::FILTERS {
            settings.add_filter(regex, *replacement);
        }
        settings.bind(|| insta::assert_snapshot!($crate::context::transcript(&$run), @$snapshot));
    }};
}

/// Panics, with the plugin's stderr and where the cluster's logs are, unless the run `out`
/// (from [`run`]) exited with 0.
pub(crate) fn assert_bootstrapped(out: &(i32, String, String), cluster: &ControlPlane) {
    assert_eq!(
        out.0,
        0,
        "bootstrap failed (logs under {}):\n{}",
        cluster.dir().display(),
        out.2
    );
}
