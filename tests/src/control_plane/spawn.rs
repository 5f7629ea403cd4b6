//! Spawns the harness's long-running children so they cannot outlive the test process.
//!
//! Linux's `PR_SET_PDEATHSIG` kills a child when the *thread* that forked it exits, not the
//! process. Test threads come and go (libtest runs each test on its own thread), so all
//! children are forked from one dedicated thread that lives until the process exits.

use std::io;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::mpsc::{Sender, channel};

type Request = (Command, Sender<io::Result<Child>>);

/// Spawns `cmd` from the harness's spawner thread with `PR_SET_PDEATHSIG` = `SIGKILL`.
pub(crate) fn spawn(cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Sender<Request>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<Request>();
        std::thread::Builder::new()
            .name("harness-spawner".to_owned())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(spawn_with_parent_death_signal(&mut cmd));
                }
            })
            .expect("spawning the harness spawner thread succeeds because threads are available");
        tx
    });
    let (reply_tx, reply_rx) = channel();
    spawner
        .send((cmd, reply_tx))
        .expect("the spawner thread is alive because it never exits");
    reply_rx
        .recv()
        .expect("the spawner thread replies because it never exits")
}

fn spawn_with_parent_death_signal(cmd: &mut Command) -> io::Result<Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY-relevant value read before fork: the pid the child must see as its parent.
    let parent = std::process::id();
    #[expect(
        unsafe_code,
        reason = "`pre_exec` and `prctl` are the only way to ask Linux to kill a child when the \
                  test process dies; the closure only calls async-signal-safe functions"
    )]
    // SAFETY: the closure runs between fork and exec and only calls `prctl`, `getppid` and
    // `_exit`, which are async-signal-safe; it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody will signal us.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd.spawn()
}
