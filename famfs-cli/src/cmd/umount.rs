//! `famfs umount MPT`: unmount a famfs and wait for its daemon to exit.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use nix::mount::MntFlags;

use crate::cli::UmountArgs;
use crate::cmd::mount::daemon_log_path;
use crate::error::fail;
use crate::mounts::{famfs_mount_at, read_mounts};

/// Read an extended attribute (`None` on any error).
pub fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    crate::xattr::read(path, name, 256).ok()
}

/// The mount point as given, made absolute without touching the (possibly dead) mount itself.
pub(crate) fn absolute_mpt(p: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    match (
        p.parent().and_then(|d| {
            std::fs::canonicalize(if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            })
            .ok()
        }),
        p.file_name(),
    ) {
        (Some(d), Some(n)) => d.join(n),
        _ => p.to_path_buf(),
    }
}

/// Whether process `pid` still runs. A daemon that exited stays a zombie until whoever
/// inherited it (the `famfs mount` that started it is gone) reaps it, which may take a while:
/// a zombie counts as gone.
fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_none_or(|(_, rest)| !matches!(rest.trim_start().chars().next(), Some('Z' | 'X'))),
        Err(_) => nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok(),
    }
}

/// `famfs umount MPT`.
pub fn umount(a: UmountArgs) -> Result<i32> {
    let mpt = absolute_mpt(&a.mpt);
    if famfs_mount_at(&read_mounts(), &mpt).is_none() {
        return Err(fail(
            1,
            format!("{} is not a famfs mount point", mpt.display()),
        ));
    }
    let pid = get_xattr(&mpt, "user.famfs.pid")
        .and_then(|b| {
            String::from_utf8_lossy(&b)
                .trim()
                .trim_end_matches('\0')
                .parse::<i32>()
                .ok()
        })
        .filter(|&p| p > 0);
    let daemon_pid = pid.filter(|p| {
        std::fs::read_to_string(format!("/proc/{p}/comm"))
            .map(|c| c.trim().starts_with("famfs_fused"))
            .unwrap_or(false)
    });
    match nix::mount::umount2(&mpt, MntFlags::empty()) {
        Ok(()) => {}
        Err(nix::errno::Errno::EBUSY) if a.lazy => {
            nix::mount::umount2(&mpt, MntFlags::MNT_DETACH)
                .map_err(|e| fail(e as i32, format!("lazy unmount of {}: {e}", mpt.display())))?;
        }
        Err(nix::errno::Errno::EBUSY) => {
            return Err(fail(
                libc::EBUSY,
                format!(
                    "{} is busy (open files or a working directory in it); use -l to detach it lazily",
                    mpt.display()
                ),
            ));
        }
        Err(nix::errno::Errno::ENOTCONN) => {
            nix::mount::umount2(&mpt, MntFlags::MNT_DETACH).map_err(|e| {
                fail(
                    e as i32,
                    format!("unmount of dead mount {}: {e}", mpt.display()),
                )
            })?;
        }
        Err(e) => return Err(fail(e as i32, format!("unmount {}: {e}", mpt.display()))),
    }
    let mut clean = true;
    if let Some(p) = daemon_pid {
        let stop = Instant::now() + Duration::from_secs(5);
        while process_alive(p) && Instant::now() < stop {
            std::thread::sleep(Duration::from_millis(20));
        }
        if process_alive(p) {
            clean = false;
            eprintln!("famfs umount: the daemon (pid {p}) is still running 5 s after the unmount");
        }
    } else {
        // The daemon was already gone (a stale mount): keep its log, it may say why.
        clean = false;
    }
    if famfs_mount_at(&read_mounts(), &mpt).is_some() {
        return Err(fail(1, format!("{} is still a famfs mount", mpt.display())));
    }
    if clean {
        // The daemon's log is only kept when something went wrong.
        let _ = std::fs::remove_file(daemon_log_path(&mpt));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umount_refuses_non_famfs_paths() {
        let dir = tempfile::tempdir().unwrap();
        let e = umount(UmountArgs {
            lazy: false,
            mpt: dir.path().to_path_buf(),
        })
        .unwrap_err();
        assert!(e.to_string().contains("not a famfs mount point"), "{e}");
        assert!(get_xattr(dir.path(), "user.famfs.pid").is_none());
    }

    #[test]
    fn zombies_are_not_alive() {
        assert!(process_alive(std::process::id() as i32));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        // Unreaped after exit: a zombie.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while process_alive(pid) {
            assert!(
                std::time::Instant::now() < deadline,
                "zombie counted as alive"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        child.wait().unwrap();
        assert!(!process_alive(pid));
    }
}
