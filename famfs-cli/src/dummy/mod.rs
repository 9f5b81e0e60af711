//! The "dummy mount": how the commands that work on an unmounted device (`mkfs.famfs`, `fsck`,
//! `logplay`, the offline `-d DEV` commands) reach a dax device in famfs mode, which cannot be
//! mapped. They start `famfs_fused` on a private temporary directory, wait on its readiness
//! pipe, and work on the mount's `.meta/.superblock` and `.meta/.log` (and files) as on any
//! mount; `mkfs.famfs` starts it in formatting mode (`--format-log-len`), where it serves only
//! the two meta files, writable, at the places the new file system will have them.
//!
//! Every temporary mount is unmounted and its directory removed when the command ends, also
//! on errors ([`Cleanup`]) and on SIGINT, SIGTERM and SIGHUP (a thread waits for them). Without
//! a famfs kernel the daemon refuses (its message names `daxctl-famfs reconfigure-device`), and
//! so does the command, adding that `-M` switches the device to devdax mode.
//!
//! Tests on kernels without famfs set [`TEST_ENV`] to take this path with stand-in files.

mod media;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use anyhow::Result;
use famfs_fsdev::{Access, DaxDevice};
use nix::mount::MntFlags;
use nix::sys::signal::{SigSet, Signal};

use crate::cmd::mount::launch::{self, Output, Started};
use crate::error::fail;
use crate::open::Location;
pub use media::MetaMedia;

/// Tests only: `1` treats any device (a stand-in file) as one in famfs mode and has the daemon
/// read the metadata through its mount on a mapped device (`--test-meta-through-mount`);
/// `famfs-mode` has it treat the device as unmappable (`--test-famfs-mode`), which a kernel
/// without famfs support refuses.
pub const TEST_ENV: &str = "FAMFS_TEST_DUMMY_MOUNT";

/// Seconds to wait for the daemon's ready line.
const WAIT_SECS: f64 = 30.0;

/// What a temporary mount is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Serve the file system (fsck, logplay, offline commands).
    Serve,
    /// Formatting mode with a log of this many bytes (mkfs).
    Format(u64),
}

/// One temporary mount.
#[derive(Debug)]
struct Active {
    dev: PathBuf,
    mpt: PathBuf,
    purpose: Purpose,
    log: PathBuf,
    child: Option<Child>,
}

/// The temporary mounts of this process.
static ACTIVE: Mutex<Vec<Active>> = Mutex::new(Vec::new());

fn active() -> std::sync::MutexGuard<'static, Vec<Active>> {
    ACTIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The test mode, if [`TEST_ENV`] asks for one.
fn test_mode() -> Option<&'static str> {
    match std::env::var(TEST_ENV).ok()?.as_str() {
        "1" => Some("--test-meta-through-mount"),
        "famfs-mode" => Some("--test-famfs-mode"),
        _ => None,
    }
}

/// Whether `dev` is a dax device bound to fsdev_dax (famfs mode), which only a famfs-enabled
/// kernel can serve: the daemon's own test (a stand-in file never is).
pub fn in_famfs_mode(dev: &Path) -> bool {
    DaxDevice::open(dev, Access::ReadOnly).is_ok_and(|d| d.is_famfs_mode())
}

/// Whether a command on unmounted `dev` goes through a temporary mount: a famfs-mode device
/// not to be switched to devdax mode (`-M`), or any existing device in the test mode.
pub fn applies(dev: &Path, set_daxmode: bool) -> bool {
    if set_daxmode || !dev.exists() {
        return false;
    }
    test_mode().is_some() || in_famfs_mode(dev)
}

/// `loc` itself, or for a device that [`applies`], a mount of it: the one it already has (the
/// commands that accept a mounted device read, or append, through it), else a temporary one.
pub fn read_location(loc: &Location, set_daxmode: bool) -> Result<Location> {
    match loc {
        Location::Device(dev) if applies(dev, set_daxmode) => {
            let table = crate::mounts::read_mounts();
            if let Some(m) = crate::mounts::mounts_of_device(&table, dev).first() {
                return Ok(Location::Mount(m.target.clone()));
            }
            Ok(Location::Mount(mount(dev, Purpose::Serve)?))
        }
        _ => Ok(loc.clone()),
    }
}

/// Tears down every temporary mount when dropped (hold one for the length of a command).
#[derive(Debug)]
pub struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        teardown_all();
    }
}

/// The temporary mount of `dev` for `purpose`: one already made by this process, or a new one.
pub fn mount(dev: &Path, purpose: Purpose) -> Result<PathBuf> {
    if let Some(a) = active()
        .iter()
        .find(|a| a.dev == dev && a.purpose == purpose)
    {
        return Ok(a.mpt.clone());
    }
    watch_signals();
    let exe = crate::cmd::mount::find_daemon()?;
    let template = std::env::temp_dir().join("famfs-dummy-XXXXXX");
    let mpt = nix::unistd::mkdtemp(&template)
        .map_err(|e| fail(1, format!("cannot make a temporary mount point: {e}")))?;
    let log = crate::cmd::mount::daemon_log_path(&mpt);
    active().push(Active {
        dev: dev.to_path_buf(),
        mpt: mpt.clone(),
        purpose,
        log: log.clone(),
        child: None,
    });
    let started = launch::start(
        &exe,
        &daemon_args(dev, &mpt, purpose),
        &Output::Log(log.clone()),
        WAIT_SECS,
    );
    let d = match started {
        Ok(d) => d,
        Err(e) => {
            teardown(&mpt);
            return Err(e);
        }
    };
    if !matches!(d.started, Started::Ready) {
        let e = start_error(dev, &d.started, &log);
        teardown(&mpt);
        return Err(e);
    }
    tracing::info!("{}: temporary mount at {}", dev.display(), mpt.display());
    match active().iter_mut().find(|a| a.mpt == mpt) {
        Some(a) => a.child = Some(d.child),
        // Torn down meanwhile (a signal): the process is ending.
        None => return Err(fail(libc::EINTR, "interrupted")),
    }
    Ok(mpt)
}

/// The daemon's command line for a temporary mount.
fn daemon_args(dev: &Path, mpt: &Path, purpose: Purpose) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["--poll-ms".into(), "20".into()];
    if let Some(flag) = test_mode() {
        v.push(flag.into());
    }
    if let Purpose::Format(len) = purpose {
        v.push("--format-log-len".into());
        v.push(len.to_string().into());
        v.push("--no-control".into());
    }
    v.push(dev.into());
    v.push(mpt.into());
    v
}

/// The error for a daemon that did not get ready.
fn start_error(dev: &Path, started: &Started, log: &Path) -> anyhow::Error {
    let shown = dev.display();
    // The daemon's message without its context ("FUSE session: ", "cannot serve DEV: DEV: ").
    let canon = std::fs::canonicalize(dev).unwrap_or_else(|_| dev.to_path_buf());
    let inner = |msg: &str| -> String {
        let msg = msg.rsplit_once("FUSE session: ").map_or(msg, |(_, m)| m);
        let prefix = format!("{}: ", canon.display());
        msg.rsplit_once(prefix.as_str())
            .map_or(msg, |(_, m)| m)
            .to_string()
    };
    match started {
        Started::Failed(msg) if msg.contains(famfs_server::FAMFS_KERNEL_NEEDED_MARK) => fail(
            1,
            format!(
                "{}; or re-run this command with -M/--set-daxmode to switch it",
                inner(msg).trim_end_matches(" and mount it again")
            ),
        ),
        Started::Failed(msg) if no_famfs(msg) => fail(
            libc::EUCLEAN,
            format!("{shown}: no valid famfs file system: {}", inner(msg)),
        ),
        Started::Failed(msg) => fail(
            libc::EIO,
            format!("{shown}: the temporary mount failed: {msg}"),
        ),
        // Not an error; never passed here.
        Started::Ready => fail(libc::EIO, format!("{shown}: temporary mount")),
        Started::Exited(st) => fail(
            libc::EIO,
            format!(
                "{shown}: famfs_fused exited ({st}) before its temporary mount was ready:\n{}",
                launch::tail(log, 20)
            ),
        ),
        Started::TimedOut => fail(
            libc::ETIMEDOUT,
            format!(
                "{shown}: timed out waiting for the temporary mount:\n{}",
                launch::tail(log, 20)
            ),
        ),
    }
}

/// Whether a daemon's error says the device holds no valid famfs (the superblock and log
/// header errors of famfs-log).
fn no_famfs(msg: &str) -> bool {
    [
        "no famfs superblock",
        "no famfs log",
        "superblock CRC",
        "log header",
        "superblock truncated",
    ]
    .iter()
    .any(|w| msg.contains(w))
}

/// Whether this process has a temporary mount.
pub fn any_active() -> bool {
    !active().is_empty()
}

/// Tear down every temporary mount of this process.
pub fn teardown_all() {
    let all: Vec<PathBuf> = active().iter().map(|a| a.mpt.clone()).collect();
    for mpt in all {
        teardown(&mpt);
    }
}

/// Unmount the temporary mount at `mpt` (waiting a moment for a busy one, then detaching it),
/// let its daemon exit, and remove the directory and the daemon's log.
fn teardown(mpt: &Path) {
    let Some(mut a) = ({
        let mut g = active();
        g.iter()
            .position(|a| a.mpt == mpt)
            .map(|i| g.swap_remove(i))
    }) else {
        return;
    };
    let mut clean = unmount(mpt);
    if let Some(child) = a.child.as_mut() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => break launch::stop(child),
            }
        };
        clean &= status.success();
    }
    if let Err(e) = std::fs::remove_dir(mpt) {
        eprintln!("famfs: cannot remove {}: {e}", mpt.display());
    }
    if clean {
        let _ = std::fs::remove_file(&a.log);
    } else {
        eprintln!(
            "famfs: the temporary mount of {} did not end cleanly; see {}",
            a.dev.display(),
            a.log.display()
        );
    }
}

/// Unmount whatever famfs is mounted at `mpt`; false if it had to be detached or could not be.
fn unmount(mpt: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while crate::mounts::famfs_mount_at(&crate::mounts::read_mounts(), mpt).is_some() {
        match nix::mount::umount2(mpt, MntFlags::empty()) {
            Ok(()) => return true,
            Err(nix::errno::Errno::EBUSY) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => {
                let _ = nix::mount::umount2(mpt, MntFlags::MNT_DETACH);
                return false;
            }
        }
    }
    true
}

/// Once: block SIGINT, SIGTERM and SIGHUP in this thread (and so in threads it starts later)
/// and start a thread that waits for them, tears down the temporary mounts and exits with
/// 128 + the signal's number, as the signal would have.
fn watch_signals() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut sigs = SigSet::empty();
        for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            sigs.add(s);
        }
        if sigs.thread_block().is_err() {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("famfs-dummy-signals".into())
            .spawn(move || {
                if let Ok(sig) = sigs.wait() {
                    teardown_all();
                    std::process::exit(128 + sig as i32);
                }
            });
        if spawned.is_err() {
            let _ = sigs.thread_unblock();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemons_refusals_become_the_commands() {
        let dev = Path::new("/nonexistent/dax0.0");
        let log = Path::new("/nonexistent/log");
        let refusal = format!(
            "FUSE session: {} is a dax device in famfs mode, {}, and the kernel does not offer \
             FUSE_DAX_FMAP (it has no famfs support); switch the device to devdax mode \
             (daxctl-famfs reconfigure-device -m devdax dax0.0) and mount it again",
            dev.display(),
            famfs_server::FAMFS_KERNEL_NEEDED_MARK
        );
        let e = start_error(dev, &Started::Failed(refusal), log);
        let msg = format!("{e:#}");
        assert_eq!(crate::error::exit_code_of(&e), 1, "as the mode refusal");
        assert!(
            msg.starts_with("/nonexistent/dax0.0 is a dax device"),
            "{msg}"
        );
        assert!(msg.contains("reconfigure-device -m devdax dax0.0"), "{msg}");
        assert!(msg.ends_with("-M/--set-daxmode to switch it"), "{msg}");
        assert!(!msg.contains("mount it again"), "{msg}");

        let bad = format!(
            "cannot serve {0}: {0}: no famfs superblock (magic 0x0, expected 0x87b282ff)",
            dev.display()
        );
        let e = start_error(dev, &Started::Failed(bad), log);
        assert_eq!(crate::error::exit_code_of(&e), libc::EUCLEAN);
        assert_eq!(
            format!("{e:#}"),
            "/nonexistent/dax0.0: no valid famfs file system: no famfs superblock (magic 0x0, \
             expected 0x87b282ff)"
        );
        let e = start_error(dev, &Started::Failed("mount: EPERM".into()), log);
        assert_eq!(crate::error::exit_code_of(&e), libc::EIO);
        let e = start_error(dev, &Started::TimedOut, log);
        assert_eq!(crate::error::exit_code_of(&e), libc::ETIMEDOUT);
    }

    #[test]
    fn the_daemons_command_line() {
        let v = daemon_args(
            Path::new("/dev/dax0.0"),
            Path::new("/mnt/m"),
            Purpose::Format(8 << 20),
        );
        let v: Vec<String> = v
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.starts_with("--test-"))
            .collect();
        assert_eq!(
            v,
            [
                "--poll-ms",
                "20",
                "--format-log-len",
                "8388608",
                "--no-control",
                "/dev/dax0.0",
                "/mnt/m"
            ]
        );
    }
}
