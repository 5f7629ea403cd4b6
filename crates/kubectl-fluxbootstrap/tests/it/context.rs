//! The test context: shared harness components, a scrubbed environment for the plugin, and
//! snapshot filters for ports, hashes, keys and temporary paths.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use fluxbootstrap_test::{
    ControlPlane, FakeControllerOptions, FakeControllers, GitServer, ReleaseServer, Repo,
};

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
    pub(crate) control_plane: &'static ControlPlane,
    pub(crate) git: &'static GitServer,
    pub(crate) releases: ReleaseServer,
    _controllers: FakeControllers,
    _second_controllers: FakeControllers,
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
        let controllers = FakeControllers::start(FakeControllerOptions {
            kubeconfig: control_plane.kubeconfig().to_owned(),
            context: control_plane.admin_context().to_owned(),
            azure_token: Some(git.bearer_token().to_owned()),
        });
        let second_controllers = FakeControllers::start(FakeControllerOptions {
            kubeconfig: control_plane.kubeconfig().to_owned(),
            context: control_plane.second_context().to_owned(),
            azure_token: None,
        });
        Env {
            control_plane,
            git,
            releases,
            _controllers: controllers,
            _second_controllers: second_controllers,
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
        cmd.env("PATH", path)
            .env("KUBECONFIG", self.control_plane.kubeconfig())
            .env("FLUXBOOTSTRAP_RELEASES_URL", self.releases.base_url())
            .env("XDG_CACHE_HOME", self.cache.path())
            .env("NO_COLOR", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null());
        cmd
    }

    /// `kubectl` (the built v1.36 one) against the harness.
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

/// A private control plane with its own fake controllers, for tests that must not share a
/// cluster (zero-diff re-runs, labelled CRDs, uninstall).
pub(crate) fn private_cluster() -> (ControlPlane, FakeControllers) {
    let private = ControlPlane::start();
    let controllers = FakeControllers::start(FakeControllerOptions {
        kubeconfig: private.kubeconfig().to_owned(),
        context: private.admin_context().to_owned(),
        azure_token: None,
    });
    (private, controllers)
}

/// Runs `cmd` and returns (exit code, stdout, stderr).
pub(crate) fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("the plugin runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
