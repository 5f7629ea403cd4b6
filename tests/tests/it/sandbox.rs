//! The `sandbox` binary behind `cargo xtask sandbox`: it starts every component, writes the env
//! file, answers control requests, and on SIGTERM stops everything it started.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the sandbox's whole process group if the test fails half-way.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}

fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    if fields.first().is_some_and(|s| *s == "Z") {
        return None;
    }
    fields.get(2)?.parse().ok()
}

fn group_members(pgid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| process_group(*pid) == Some(pgid))
        .collect()
}

fn control(dir: &Path, line: &str) -> String {
    let mut stream = UnixStream::connect(dir.join("control.sock")).expect("control socket");
    stream
        .write_all(format!("{line}\n").as_bytes())
        .expect("send");
    let mut reply = String::new();
    for l in BufReader::new(stream).lines() {
        reply.push_str(&l.expect("reply"));
        reply.push('\n');
    }
    reply
}

/// The sandbox's `env` file as (key, value) pairs (`export KEY='value'` lines).
fn parse_env(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect()
}

/// What a newcomer sees: Flux bootstrapped onto both sandbox clusters (by the real flux CLI;
/// the plugin is another package's binary, and its own fleet test covers it) becomes Ready
/// through the real controllers, and a manifest pushed under a cluster's path lands in it.
fn flux_runs_on_every_sandbox_cluster(env_file: &str) {
    let real_bundle = std::env::var_os("FLUXBOOTSTRAP_FLUX_MANIFESTS")
        .map(std::path::PathBuf::from)
        .is_some_and(|d| d.join("v2.9.4/source-controller.yaml").is_file());
    let Some(flux) = fluxbootstrap_test::flux_cli().filter(|_| real_bundle) else {
        assert!(
            std::env::var_os("FLUXBOOTSTRAP_REQUIRE_REAL_FLUX").is_none(),
            "FLUXBOOTSTRAP_REQUIRE_REAL_FLUX is set but the real Flux bundle or CLI is missing"
        );
        #[expect(clippy::print_stderr, reason = "a skipped check says so")]
        {
            eprintln!(
                "SKIPPED: bootstrapping the sandbox's clusters needs the real Flux bundle and \
                 CLI (FLUXBOOTSTRAP_FLUX_MANIFESTS, cargo xtask flux build)"
            );
        }
        return;
    };
    let vars = parse_env(env_file);
    let var = |k: &str| vars.get(k).unwrap_or_else(|| panic!("{k} missing")).clone();
    let home = tempfile::tempdir().expect("temp dir");
    let kubectl = fluxbootstrap_test::ControlPlane::bin_dir().join("kubectl");
    let contexts = [
        var("FLUXBOOTSTRAP_SANDBOX_ADMIN_CONTEXT"),
        var("FLUXBOOTSTRAP_SANDBOX_SECOND_CONTEXT"),
    ];
    for context in &contexts {
        let out = Command::new(&flux)
            .args(["bootstrap", "git", "--token-auth", "--url"])
            .arg(var("FLUXBOOTSTRAP_SANDBOX_HTTPS_URL"))
            .arg("--ca-file")
            .arg(var("FLUXBOOTSTRAP_SANDBOX_CA_FILE"))
            .args([
                "--path",
                &format!("clusters/{context}"),
                "--context",
                context,
            ])
            .args(["--timeout", "3m"])
            .env("KUBECONFIG", var("KUBECONFIG"))
            .env("GIT_PASSWORD", var("GIT_PASSWORD"))
            .env("HOME", home.path())
            .output()
            .expect("flux runs");
        assert!(
            out.status.success(),
            "flux bootstrap git onto sandbox context {context} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Flux's own status, as `kubectl get gitrepositories,kustomizations -A` shows it.
        let status = Command::new(&kubectl)
            .args(["--context", context, "get", "gitrepositories,kustomizations", "-A"])
            .args(["-o", "jsonpath={range .items[*]}{.kind}={.status.conditions[?(@.type==\"Ready\")].status} {end}"])
            .env("KUBECONFIG", var("KUBECONFIG"))
            .output()
            .expect("kubectl runs");
        assert_eq!(
            String::from_utf8_lossy(&status.stdout).trim(),
            "GitRepository=True Kustomization=True",
            "{context}"
        );
    }
    // A newcomer's push lands in the cluster of its path.
    let work = home.path().join("work");
    let git = |args: &[&str]| {
        let basic = base64_basic(&var("GIT_PASSWORD"));
        let out = Command::new("git")
            .args(args)
            .current_dir(home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", home.path())
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env(
                "GIT_CONFIG_VALUE_0",
                format!("Authorization: Basic {basic}"),
            )
            .env("GIT_SSL_CAINFO", var("FLUXBOOTSTRAP_SANDBOX_CA_FILE"))
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let work_str = work.to_str().expect("utf-8").to_owned();
    git(&[
        "clone",
        "-q",
        &var("FLUXBOOTSTRAP_SANDBOX_HTTPS_URL"),
        &work_str,
    ]);
    let target = work.join(format!("clusters/{}/apps/hello.yaml", contexts[1]));
    std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
    std::fs::write(
        &target,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello-sandbox\n  namespace: default\n",
    )
    .expect("writable");
    git(&["-C", &work_str, "add", "-A"]);
    git(&[
        "-C",
        &work_str,
        "-c",
        "user.name=New",
        "-c",
        "user.email=new@example.invalid",
        "commit",
        "-q",
        "-m",
        "Hello",
    ]);
    git(&["-C", &work_str, "push", "-q", "origin", "HEAD:main"]);
    for kind in ["gitrepository", "kustomization"] {
        let _ = Command::new(&kubectl)
            .args([
                "--context",
                &contexts[1],
                "-n",
                "flux-system",
                "annotate",
                "--overwrite",
                kind,
            ])
            .args(["flux-system", "reconcile.fluxcd.io/requestedAt=now"])
            .env("KUBECONFIG", var("KUBECONFIG"))
            .output();
    }
    let deadline = Instant::now() + Duration::from_mins(2);
    loop {
        let out = Command::new(&kubectl)
            .args([
                "--context",
                &contexts[1],
                "-n",
                "default",
                "get",
                "configmap",
                "hello-sandbox",
            ])
            .env("KUBECONFIG", var("KUBECONFIG"))
            .output()
            .expect("kubectl runs");
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pushed ConfigMap never landed"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `git:<pat>` in base64, for an `Authorization: Basic` header.
fn base64_basic(pat: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("git:{pat}"))
}

#[test]
fn sandbox_serves_and_leaves_no_process_behind() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = std::fs::File::create(dir.path().join("log")).expect("log");
    let child = Command::new("setsid")
        .arg(env!("CARGO_BIN_EXE_sandbox"))
        .arg("--dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the sandbox");
    let pid = child.id();
    let mut group = Group(child);

    let env_file = dir.path().join("env");
    let deadline = Instant::now() + Duration::from_mins(4);
    while !env_file.exists() {
        if let Ok(Some(status)) = group.0.try_wait() {
            panic!(
                "sandbox exited with {status}: {}",
                std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "sandbox did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }
    let env = std::fs::read_to_string(&env_file).expect("env file");
    for key in [
        "KUBECONFIG",
        "FLUXBOOTSTRAP_SANDBOX_HTTPS_URL",
        "FLUXBOOTSTRAP_SANDBOX_SSH_URL",
        "FLUXBOOTSTRAP_SANDBOX_SSH_HOST",
        "FLUXBOOTSTRAP_SANDBOX_CA_FILE",
        "GIT_PASSWORD",
        "FLUXBOOTSTRAP_SANDBOX_READONLY_PAT",
        "FLUXBOOTSTRAP_SANDBOX_ADMIN_CONTEXT",
        "FLUXBOOTSTRAP_SANDBOX_NONADMIN_CONTEXT",
        "FLUXBOOTSTRAP_SANDBOX_SECOND_CONTEXT",
        "FLUXBOOTSTRAP_RELEASES_URL",
        "FLUXBOOTSTRAP_RELEASES_ALLOW_HTTP",
    ] {
        assert!(
            env.contains(&format!("export {key}=")),
            "{key} missing:\n{env}"
        );
    }
    // The env file holds PATs: owner-only.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&env_file).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o077, 0, "env file mode {mode:o}");

    let reply = control(dir.path(), "repo another\tOther Project");
    assert!(reply.starts_with("ok\n"), "{reply}");
    assert!(
        reply.contains("/sandbox/Other%20Project/_git/another"),
        "{reply}"
    );
    let reply = control(dir.path(), "repo another\tOther Project");
    assert!(reply.starts_with("error:"), "{reply}");
    let reply = control(dir.path(), "add-key ecdsa-sha2-nistp256 AAAA test");
    assert!(reply.starts_with("error:"), "{reply}");

    assert!(
        group_members(pid).len() > 1,
        "components run in the sandbox's group"
    );
    flux_runs_on_every_sandbox_cluster(&env);
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    let status = group.0.wait().expect("wait");
    assert!(
        status.success(),
        "sandbox exit {status}: {}",
        std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !group_members(pid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "processes left behind: {:?}",
            group_members(pid)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!env_file.exists(), "env file removed on stop");
}
