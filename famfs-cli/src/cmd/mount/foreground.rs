//! `famfs mount --foreground`: stay with the daemon until the file system is unmounted, for
//! supervisors (systemd units). SIGTERM, SIGINT and SIGHUP are passed on to the daemon as
//! SIGTERM, which unmounts its own mount and exits 0; the exit status is the daemon's.

use std::path::Path;
use std::process::{Child, ExitStatus};

use anyhow::Result;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::unistd::Pid;

use crate::cmd::stale::is_disconnected;
use crate::error::fail;

/// The shell's convention for a status: the exit code, or 128 + the signal that killed it.
pub fn exit_code(st: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code()
        .or_else(|| st.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Wait for the daemon (mounted and serving) to exit, passing termination signals on.
pub fn supervise(mut child: Child, mpt: &Path) -> Result<i32> {
    let mut sigs = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        sigs.add(s);
    }
    sigs.thread_block()
        .map_err(|e| fail(1, format!("blocking signals: {e}")))?;
    let pid = Pid::from_raw(child.id() as i32);
    std::thread::Builder::new()
        .name("famfs-signals".into())
        .spawn(move || {
            while let Ok(sig) = sigs.wait() {
                tracing::info!("{sig}: asking the daemon (pid {pid}) to unmount");
                let _ = kill(pid, Signal::SIGTERM);
            }
        })?;
    let st = child.wait()?;
    let code = exit_code(st);
    if code != 0 {
        eprintln!("famfs mount: the daemon exited ({st})");
        // A daemon that died leaves its mount dead (ENOTCONN); a supervisor's restart would
        // find it in the way. A mount that still answers is someone else's: left alone.
        if is_disconnected(mpt) {
            let _ = nix::mount::umount2(mpt, nix::mount::MntFlags::MNT_DETACH);
            eprintln!("famfs mount: detached the dead mount {}", mpt.display());
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn exit_codes_follow_the_shell() {
        let st = Command::new("sh").args(["-c", "exit 7"]).status().unwrap();
        assert_eq!(exit_code(st), 7);
        let st = Command::new("sh")
            .args(["-c", "kill -TERM $$"])
            .status()
            .unwrap();
        assert_eq!(exit_code(st), 128 + 15);
    }
}
