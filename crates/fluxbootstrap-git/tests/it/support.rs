//! Helpers shared by the integration tests: a clean `git` CLI, bare repositories, remotes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use fluxbootstrap_git::{FileWrite, Phase, RemoteAuth, RemoteOptions, Reporter};

/// The real `git` with inherited `GIT_*` variables and user/system config out of the way.
pub(crate) fn git_cmd() -> Command {
    let mut cmd = Command::new("git");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Someone Else")
        .env("GIT_AUTHOR_EMAIL", "else@example.com")
        .env("GIT_COMMITTER_NAME", "Someone Else")
        .env("GIT_COMMITTER_EMAIL", "else@example.com");
    cmd
}

/// Runs `cmd`, panics with its stderr on failure, returns trimmed stdout.
pub(crate) fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("git runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `git -C dir args…`.
pub(crate) fn git_in(dir: &Path, args: &[&str]) -> String {
    run(git_cmd().arg("-C").arg(dir).args(args))
}

/// A bare repository `name` (may contain spaces) inside a fresh temp dir, HEAD on `main`.
pub(crate) fn bare_repo(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join(name);
    run(git_cmd()
        .args(["init", "--bare", "-q", "-b", "main"])
        .arg(&bare));
    (dir, bare)
}

/// Commits `files` to `branch` of the repository at `url` with the git CLI, as another client.
pub(crate) fn push_as_someone_else(
    url: &str,
    branch: &str,
    files: &[(&str, &str)],
    configure: impl Fn(&mut Command),
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("w");
    let mut clone = git_cmd();
    configure(&mut clone);
    run(clone
        .args(["clone", "-q", "--branch", branch, url])
        .arg(&work));
    for (path, contents) in files {
        let path = work.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    git_in(&work, &["add", "-A"]);
    git_in(&work, &["commit", "-q", "-m", "Concurrent change"]);
    let mut push = git_cmd();
    configure(&mut push);
    run(push
        .arg("-C")
        .arg(&work)
        .args(["push", "-q", "origin", branch]));
    git_in(&work, &["rev-parse", "HEAD"])
}

/// Seeds `branch` of a bare repository with one commit by the git CLI; returns its sha.
pub(crate) fn seed(bare: &Path, branch: &str, files: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("w");
    run(git_cmd().args(["init", "-q", "-b", branch]).arg(&work));
    for (path, contents) in files {
        let path = work.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    git_in(&work, &["add", "-A"]);
    git_in(&work, &["commit", "-q", "-m", "Seed"]);
    git_in(&work, &["push", "-q", bare.to_str().unwrap(), branch]);
    git_in(&work, &["rev-parse", "HEAD"])
}

/// `git --git-dir bare args…`.
pub(crate) fn git_bare(bare: &Path, args: &[&str]) -> String {
    run(git_cmd().arg("--git-dir").arg(bare).args(args))
}

pub(crate) fn remote(url: &str, auth: RemoteAuth) -> RemoteOptions {
    RemoteOptions {
        url: url.to_owned(),
        auth,
        ca_file: None,
        timeout: Duration::from_secs(30),
    }
}

pub(crate) fn files(pairs: &[(&str, &str)]) -> Vec<FileWrite> {
    pairs
        .iter()
        .map(|(p, c)| FileWrite::new(*p, c.as_bytes()))
        .collect()
}

/// Records every progress event.
#[derive(Default)]
pub(crate) struct Recorder(pub(crate) Mutex<Vec<(Phase, usize, usize)>>);

impl Reporter for Recorder {
    fn transfer(&self, phase: Phase, done: usize, total: usize) {
        self.0.lock().unwrap().push((phase, done, total));
    }
}

impl Recorder {
    pub(crate) fn saw(&self, phase: Phase) -> bool {
        self.0.lock().unwrap().iter().any(|(p, ..)| *p == phase)
    }
}
