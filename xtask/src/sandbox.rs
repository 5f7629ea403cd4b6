//! `cargo xtask sandbox up|down|repo|add-key`: a local Azure-DevOps-shaped git server, two
//! Kubernetes clusters with the real Flux controllers and a Flux release download, for trying
//! the plugin without Azure or a cluster.
//!
//! xtask stays light: it builds and starts the `sandbox` binary of the harness package
//! (`fluxbootstrap-test`) in its own session, and talks to it over `target/sandbox/control.sock`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask sandbox <command>

commands:
  up                      build and start the sandbox in the background, write target/sandbox/env
  down                    stop the sandbox and every process it started
  repo NAME [--project P] create another empty repository and print its HTTPS and SSH URLs
  add-key FILE.pub        register an RSA public key with the sandbox's sshd";

/// How long `up` waits for the control plane and the other components.
const START_TIMEOUT: Duration = Duration::from_mins(5);

pub(crate) fn run(args: &[String]) -> Result<()> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["up"] => up(),
        ["down"] => down(),
        ["repo", name] => repo(name, None),
        ["repo", name, "--project", project] | ["repo", "--project", project, name] => {
            repo(name, Some(project))
        }
        ["add-key", file] => add_key(Path::new(file)),
        _ => bail!("{USAGE}"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_owned()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

/// `target/sandbox`, or `$FLUXBOOTSTRAP_SANDBOX_DIR` (the demo's test runs its own sandbox
/// beside a developer's).
pub(crate) fn sandbox_dir() -> PathBuf {
    std::env::var_os("FLUXBOOTSTRAP_SANDBOX_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| target_dir().join("sandbox"), PathBuf::from)
}

fn progress(message: &str) {
    #[expect(clippy::print_stderr, reason = "xtask reports progress on stderr")]
    {
        eprintln!("sandbox: {message}");
    }
}

fn output(text: &str) {
    #[expect(clippy::print_stdout, reason = "xtask's results are its output")]
    {
        print!("{text}");
    }
}

/// The pid of a running sandbox, if any (a stale pid file is removed).
fn running_pid() -> Option<u32> {
    let pid_file = sandbox_dir().join("pid");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if Path::new(&format!("/proc/{pid}")).exists() && process_group(pid) == Some(pid) {
        Some(pid)
    } else {
        let _ = std::fs::remove_file(pid_file);
        None
    }
}

fn up() -> Result<()> {
    let dir = sandbox_dir();
    let env_file = dir.join("env");
    if let Some(pid) = running_pid() {
        progress(&format!(
            "already running (pid {pid}); `source {}`",
            env_file.display()
        ));
        return Ok(());
    }
    // The same system setup as the test suite: sshd and git, and the `git` login user.
    crate::test::install_packages(crate::test::HARNESS_PACKAGES)?;
    crate::test::ensure_git_user()?;
    // Cheap when the cached kube-apiserver, kubectl and etcd exist; builds them otherwise.
    crate::kube::run(&["build".to_owned()])?;
    crate::flux::run(&["build".to_owned()])?;
    progress("building the sandbox binary");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(workspace_root())
        .args([
            "build",
            "--quiet",
            "-p",
            "fluxbootstrap-test",
            "--bin",
            "sandbox",
        ])
        .status()
        .context("failed to run `cargo build`")?;
    if !status.success() {
        bail!("`cargo build -p fluxbootstrap-test --bin sandbox` failed");
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    let _ = std::fs::remove_file(&env_file);
    let log_path = dir.join("sandbox.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("failed to create `{}`", log_path.display()))?;
    let binary = target_dir().join("debug").join("sandbox");
    // `setsid` makes the sandbox the leader of a new session and process group, detached from
    // this terminal, so `down` can find and stop everything it started.
    let mut child = Command::new("setsid")
        .arg(&binary)
        .arg("--dir")
        .arg(&dir)
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(
            log.try_clone()
                .context("failed to duplicate the log handle")?,
        )
        .stderr(log)
        .spawn()
        .with_context(|| format!("failed to start `{}`", binary.display()))?;
    let pid = child.id();
    std::fs::write(dir.join("pid"), format!("{pid}\n")).context("failed to write the pid file")?;
    progress(&format!(
        "starting (pid {pid}, log {}); the control plane takes up to a minute",
        log_path.display()
    ));
    let deadline = Instant::now() + START_TIMEOUT;
    while !env_file.exists() {
        if let Some(status) = child.try_wait().context("failed to poll the sandbox")? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let _ = std::fs::remove_file(dir.join("pid"));
            bail!("the sandbox exited ({status}) while starting; its log:\n{log}");
        }
        if Instant::now() > deadline {
            stop_group(pid)?;
            bail!(
                "the sandbox did not become ready within {}s; see `{}`",
                START_TIMEOUT.as_secs(),
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let env = std::fs::read_to_string(&env_file).context("failed to read the env file")?;
    let mut summary = String::new();
    for line in env.lines().filter(|l| l.starts_with("export ")) {
        let (key, _) = line.split_once('=').unwrap_or((line, ""));
        let key = key.trim_start_matches("export ");
        // The file holds PATs and a token; only name them here.
        if key
            .split('_')
            .any(|word| matches!(word, "PASSWORD" | "PAT" | "TOKEN"))
        {
            let _ = writeln!(summary, "  {key}=<secret>");
        } else {
            let _ = writeln!(summary, "  {}", line.trim_start_matches("export "));
        }
    }
    output(&format!(
        "sandbox is up. Load it with:\n\n  source {}\n\n{summary}\nStop it with `cargo xtask sandbox down`.\n",
        env_file.display()
    ));
    Ok(())
}

fn down() -> Result<()> {
    let dir = sandbox_dir();
    let Some(pid) = running_pid() else {
        progress("not running");
        return Ok(());
    };
    stop_group(pid)?;
    for file in ["pid", "env", "control.sock"] {
        let _ = std::fs::remove_file(dir.join(file));
    }
    progress("stopped; no sandbox process is left");
    Ok(())
}

/// SIGTERM the sandbox (it tears its components down), then SIGKILL whatever is left in its
/// process group, and check that nothing is.
fn stop_group(pid: u32) -> Result<()> {
    signal(&pid.to_string(), "TERM")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if !group_members(pid).is_empty() {
        signal(&format!("-{pid}"), "KILL")?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<u32> = group_members(pid)
            .into_iter()
            .filter(|p| !is_zombie(*p))
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("processes of the sandbox survived SIGKILL: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(target: &str, sig: &str) -> Result<()> {
    // `kill` exits non-zero when the target is already gone, which is fine.
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg("--")
        .arg(target)
        .stderr(Stdio::null())
        .status()
        .context("failed to run `kill`")?;
    Ok(())
}

/// Fields after the `(comm)` of `/proc/PID/stat`: state, ppid, pgrp, ...
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    Some(after.split_whitespace().map(str::to_owned).collect())
}

fn process_group(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(2)?.parse().ok()
}

fn is_zombie(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s == "Z" || s == "X"))
}

/// Every process whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| process_group(*pid) == Some(pgid))
        .collect()
}

/// Send one request line to the running sandbox and return its reply.
fn request(line: &str) -> Result<String> {
    if running_pid().is_none() {
        bail!("the sandbox is not running; start it with `cargo xtask sandbox up`");
    }
    let socket = sandbox_dir().join("control.sock");
    let mut stream = UnixStream::connect(&socket)
        .with_context(|| format!("failed to connect to `{}`", socket.display()))?;
    stream
        .set_read_timeout(Some(Duration::from_mins(1)))
        .context("failed to set a timeout")?;
    stream
        .write_all(format!("{line}\n").as_bytes())
        .context("failed to send the request")?;
    let mut reply = String::new();
    for l in BufReader::new(stream).lines() {
        reply.push_str(&l.context("failed to read the reply")?);
        reply.push('\n');
    }
    match reply.strip_prefix("ok\n") {
        Some(rest) => Ok(rest.to_owned()),
        None => bail!("{}", reply.trim().trim_start_matches("error: ")),
    }
}

fn repo(name: &str, project: Option<&str>) -> Result<()> {
    if name.contains(['\t', '\n']) || project.is_some_and(|p| p.contains(['\t', '\n'])) {
        bail!("names cannot contain tabs or newlines");
    }
    let line = match project {
        Some(project) => format!("repo {name}\t{project}"),
        None => format!("repo {name}"),
    };
    let reply = request(&line)?;
    let mut urls = reply.lines();
    output(&format!(
        "HTTPS: {}\nSSH:   {}\n",
        urls.next().unwrap_or_default(),
        urls.next().unwrap_or_default()
    ));
    Ok(())
}

fn add_key(file: &Path) -> Result<()> {
    let key = std::fs::read_to_string(file)
        .with_context(|| format!("failed to read `{}`", file.display()))?;
    let key = key.trim();
    if key.lines().count() != 1 {
        bail!(
            "`{}` is not a single OpenSSH public key line",
            file.display()
        );
    }
    request(&format!("add-key {key}"))?;
    progress(&format!("registered `{}`", file.display()));
    Ok(())
}
