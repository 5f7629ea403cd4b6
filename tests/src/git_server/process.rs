//! Child-process plumbing for the git server: long-lived children die with the test process,
//! and git runs with a clean, predictable environment.

use std::path::Path;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// A command running `program` under `setpriv --pdeathsig KILL` (util-linux, always present on
/// Debian), so it is killed when the thread that spawns it dies; spawn it with
/// [`spawn_tied_to_process`].
pub(crate) fn tied_command(program: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--pdeathsig", "KILL", "--"]).arg(program);
    cmd
}

/// Spawn `cmd` on a thread that lives as long as the process: the parent-death signal fires
/// when the spawning *thread* exits, and test threads are short-lived.
pub(crate) fn spawn_tied_to_process(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("git-server-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    // The requester may have given up; nothing to do then.
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawning a thread works because the OS allows threads");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    sender
        .lock()
        .expect("the spawner lock is never poisoned")
        .send((cmd, reply_tx))
        .expect("the spawner thread lives as long as the process");
    reply_rx.recv().expect("the spawner thread always replies")
}

/// `git` with inherited `GIT_*` variables removed and `global_config` as its only global config.
pub(crate) fn git_command(global_config: &Path) -> Command {
    let mut cmd = Command::new("git");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("GIT_CONFIG_GLOBAL", global_config)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0");
    cmd
}

/// Set the permission bits of `path`.
pub(crate) fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .expect("changing permissions works on files the harness created");
}
