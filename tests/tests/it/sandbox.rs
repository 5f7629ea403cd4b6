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
