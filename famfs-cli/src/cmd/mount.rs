//! `famfs mount`.
//!
//! The mount: check the cheap things (arguments, the mount table, the dax mode, a readable
//! superblock), start `famfs_fused --ready-fd N DEV MPT` in its own session with its output in a
//! log file, and wait for its one line on the readiness pipe: "ok" once it is mounted and serving,
//! or the error that stopped it (printed as it is; the daemon leaves nothing mounted). The log is
//! replayed once, by the daemon: the CLI never reads it.
//! It runs in steps: a plan (arguments, paths, the mount table and the dax mode checked; nothing
//! touched), checking the device (mode switch if asked, superblock), the launch (the daemon
//! started and waited for), and the report (messages, exit status) — or, with `--foreground`,
//! supervising the daemon until the file system is unmounted ([`foreground`]).
//! `mount.fuse.famfs` (what mount(8) runs for `-t fuse.famfs` and fstab) is in [`helper`].

mod foreground;
pub mod helper;
pub(crate) mod launch;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Result;
use famfs_fsdev::{Access, DaxDevice};
use famfs_log::LogError;
use famfs_log::superblock::Superblock;
use nix::mount::MntFlags;

use crate::cli::MountArgs;
use crate::cmd::stale::{is_disconnected, stale_message, stale_mount_containing};
use crate::dummy::in_famfs_mode;
use crate::error::fail;
use crate::mounts::{famfs_mount_at, mounts_of_device, read_mounts};
use crate::open::check_daxmode;
use launch::{Daemon, Output, Started};
pub use launch::{FUSED_ENV, FUSED_NAME, daemon_log_path, find_daemon, find_daemon_with, tail};

/// Detach a famfs mount at `mpt` if one is there (cleanup after a failed mount).
fn detach_if_mounted(mpt: &Path) {
    if famfs_mount_at(&read_mounts(), mpt).is_some()
        && let Err(e) = nix::mount::umount2(mpt, MntFlags::MNT_DETACH)
    {
        eprintln!("famfs mount: could not detach {}: {e}", mpt.display());
    }
}

/// The daemon's command line for our options (`--ready-fd` is added at the launch).
pub fn daemon_args(a: &MountArgs, verbose: u8, dev: &Path, mpt: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = Vec::new();
    let mut opt = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            v.push(name.into());
            v.push(value.into());
        }
    };
    opt("--timeout", a.timeout.map(|t| t.to_string()));
    opt("--system-uuid", a.system_uuid.map(|u| u.to_string()));
    opt("--dax", a.dax.clone());
    opt("--transport", a.transport.clone());
    opt("--poll-ms", a.poll_ms.map(|p| p.to_string()));
    let threads = if a.debug { Some(1) } else { a.threads };
    opt("--threads", threads.map(|t| t.to_string()));
    if a.nouseraccess {
        v.push("--no-allow-other".into());
    }
    if a.nodefaultperm {
        v.push("--no-default-permissions".into());
    }
    let verbosity = verbose + if a.debug { 2 } else { 0 };
    for _ in 0..verbosity.min(3) {
        v.push("-v".into());
    }
    v.push(dev.into());
    v.push(mpt.into());
    v
}

/// What `famfs mount` will do, decided (and checked) before anything is touched.
#[derive(Debug)]
struct MountPlan {
    /// The device, canonical.
    dev: PathBuf,
    /// The mount point, canonical.
    mpt: PathBuf,
    /// `--set-daxmode`: switch the device to devdax mode if needed (else its mode is checked).
    set_daxmode: bool,
    /// The device is in famfs mode (and stays so): it cannot be mapped here, the daemon reads
    /// its superblock through its own mount.
    famfs_mode: bool,
    /// The daemon's command line.
    daemon_args: Vec<OsString>,
    /// Seconds to wait for the daemon's ready line.
    wait: f64,
    /// `--foreground`: supervise the daemon until unmounted.
    foreground: bool,
}

/// The superblock of `dev`, read through a small read-only mapping (never the log).
fn read_superblock(dev: &Path) -> std::result::Result<Superblock, String> {
    let d = DaxDevice::open(dev, Access::ReadOnly).map_err(|e| e.to_string())?;
    let probe = d
        .map(0, d.align().max(famfs_fsdev::ALLOC_UNIT))
        .map_err(|e| e.to_string())?;
    Superblock::read(&probe).map_err(|e| match e {
        LogError::Superblock(_) => format!("no valid famfs file system: {e}"),
        e => e.to_string(),
    })
}

impl MountPlan {
    /// Check the arguments, the paths, the mount table and (unless it is to be switched) the
    /// device's dax mode.
    fn new(a: &MountArgs, verbose: u8) -> Result<MountPlan> {
        if !nix::unistd::geteuid().is_root() {
            return Err(fail(1, "must run as root (mount(2) needs it)"));
        }
        if let Some(stale) = stale_mount_containing(&a.mpt) {
            return Err(fail(1, stale_message(&stale)));
        }
        let dev = std::fs::canonicalize(&a.dev)
            .map_err(|e| fail(1, format!("daxdev ({}) not found: {e}", a.dev.display())))?;
        let mpt = std::fs::canonicalize(&a.mpt)
            .map_err(|e| fail(1, format!("mount pt ({}) not found: {e}", a.mpt.display())))?;
        if !mpt.is_dir() {
            return Err(fail(
                1,
                format!("mount pt ({}) is not a directory", mpt.display()),
            ));
        }
        refuse_mounted(&dev, &mpt)?;
        let famfs_mode = !a.set_daxmode && in_famfs_mode(&dev);
        if !a.set_daxmode && !famfs_mode {
            check_daxmode(&dev, false)?;
        }
        Ok(MountPlan {
            daemon_args: daemon_args(a, verbose, &dev, &mpt),
            dev,
            mpt,
            set_daxmode: a.set_daxmode,
            famfs_mode,
            wait: a.wait,
            foreground: a.foreground,
        })
    }

    /// Switch the device's mode if asked, then check that its superblock is readable and valid.
    /// The log is the daemon's: it replays it once and reports any error on the ready pipe.
    fn check_device(&self) -> Result<()> {
        if self.set_daxmode {
            check_daxmode(&self.dev, true)?;
        }
        if self.famfs_mode {
            tracing::info!(
                "{}: famfs mode; the daemon reads the superblock through its mount",
                self.dev.display()
            );
            return Ok(());
        }
        let sb = read_superblock(&self.dev)
            .map_err(|e| fail(1, format!("cannot mount {}: {e}", self.dev.display())))?;
        tracing::info!(
            "{}: famfs superblock of master {}",
            self.dev.display(),
            sb.system_uuid
        );
        Ok(())
    }

    /// Where the daemon's output goes: its log file, or ours in the foreground.
    fn output(&self) -> Output {
        if self.foreground {
            Output::Inherit
        } else {
            Output::Log(daemon_log_path(&self.mpt))
        }
    }

    /// Start the daemon and wait for its ready line; on failure nothing is left mounted.
    fn launch(&self) -> Result<(PathBuf, Daemon)> {
        let exe = find_daemon()?;
        let d = launch::start(&exe, &self.daemon_args, &self.output(), self.wait)?;
        if !matches!(d.started, Started::Ready) {
            // The daemon unmounts its own mount on failure; a daemon that was stopped or died
            // may not have.
            detach_if_mounted(&self.mpt);
        }
        Ok((exe, d))
    }

    /// What the user sees of a launch, and the exit status.
    fn report(&self, exe: &Path, started: &Started, pid: u32, verbose: u8) -> Result<i32> {
        let out = self.output();
        let log_end = |what: &str| match &out {
            Output::Log(p) => format!(
                "{what} The end of its log {}:\n{}",
                p.display(),
                tail(p, 20)
            ),
            Output::Inherit => what.to_string(),
        };
        match started {
            Started::Ready => {
                if verbose > 0 {
                    let log = match &out {
                        Output::Log(p) => format!(", log {}", p.display()),
                        Output::Inherit => String::new(),
                    };
                    println!(
                        "famfs mount: {} on {} (daemon pid {pid}{log})",
                        self.dev.display(),
                        self.mpt.display(),
                    );
                }
                Ok(0)
            }
            Started::Failed(msg) => {
                Err(fail(1, format!("{FUSED_NAME}: {msg} (nothing is mounted)")))
            }
            Started::Exited(status) => Err(fail(
                1,
                log_end(&format!(
                    "{} exited ({status}) before the mount was ready; nothing is mounted.",
                    exe.display()
                )),
            )),
            Started::TimedOut => Err(fail(
                1,
                log_end(&format!(
                    "timed out after {:.1} s waiting for the daemon to mount {}; the daemon \
                     was stopped and nothing is mounted.",
                    self.wait,
                    self.mpt.display()
                )),
            )),
        }
    }
}

/// Refuse a device that is mounted somewhere, or a mount point that is already a famfs mount.
fn refuse_mounted(dev: &Path, mpt: &Path) -> Result<()> {
    let table = read_mounts();
    if let Some(m) = mounts_of_device(&table, dev).first() {
        if is_disconnected(&m.target) {
            return Err(fail(1, stale_message(&m.target)));
        }
        return Err(fail(
            1,
            format!(
                "cannot mount while {} is mounted on {}",
                dev.display(),
                m.target.display()
            ),
        ));
    }
    if let Some(m) = famfs_mount_at(&table, mpt) {
        return Err(fail(
            1,
            format!(
                "{} is already a famfs mount point (of {})",
                mpt.display(),
                m.source.display()
            ),
        ));
    }
    Ok(())
}

/// `famfs mount DEV MPT`: plan (check everything), check the device, start the daemon, report
/// (or supervise it, `--foreground`). Every failure exits 1, as the reference's mount does (and
/// as `famfs mount --help` says).
pub fn mount(a: MountArgs, verbose: u8) -> Result<i32> {
    let run = || -> Result<i32> {
        let plan = MountPlan::new(&a, verbose)?;
        plan.check_device()?;
        println!("daxdev={}, mpt={}", plan.dev.display(), plan.mpt.display());
        let (exe, d) = plan.launch()?;
        let code = plan.report(&exe, &d.started, d.child.id(), verbose)?;
        if plan.foreground {
            return foreground::supervise(d.child, &plan.mpt);
        }
        Ok(code)
    };
    run().map_err(|e| match crate::error::exit_code_of(&e) {
        1 => e,
        _ => fail(1, format!("{e:#}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn daemon_command_line() {
        let cli = crate::cli::Famfs::try_parse_from([
            "famfs",
            "mount",
            "-t",
            "2.5",
            "-u",
            "-p",
            "--dax",
            "off",
            "--poll-ms",
            "50",
            "--system-uuid",
            "0b5e1f2c-33c4-4c1e-9f0e-6f2d3c4b5a69",
            "--transport",
            "dev",
            "-d",
            "/dev/dax0.0",
            "/mnt/f",
        ])
        .unwrap();
        let crate::cli::Cmd::Mount(a) = cli.cmd else {
            panic!()
        };
        let v: Vec<String> = daemon_args(&a, 1, Path::new("/dev/dax0.0"), Path::new("/mnt/f"))
            .into_iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            v,
            [
                "--timeout",
                "2.5",
                "--system-uuid",
                "0b5e1f2c-33c4-4c1e-9f0e-6f2d3c4b5a69",
                "--dax",
                "off",
                "--transport",
                "dev",
                "--poll-ms",
                "50",
                "--threads",
                "1",
                "--no-allow-other",
                "--no-default-permissions",
                "-v",
                "-v",
                "-v",
                "/dev/dax0.0",
                "/mnt/f"
            ]
        );
    }

    /// The CLI reads the superblock only: a device whose log header is destroyed passes its
    /// check (the daemon, which replays the log, reports that), one without a superblock not.
    #[test]
    fn the_device_check_reads_the_superblock_not_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("dev.img");
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(1 << 30).unwrap();
        drop(f);
        let map = DaxDevice::open(&img, Access::ReadWrite)
            .unwrap()
            .map_all()
            .unwrap();
        let mut opts = famfs_log::MkfsOptions::new(
            uuid::Uuid::new_v4(),
            std::os::unix::ffi::OsStrExt::as_bytes(img.as_os_str()),
        );
        opts.min_device_size = 0;
        famfs_log::mkfs(&map, 1 << 30, &opts).unwrap();
        let garbage = vec![0x5au8; 4096];
        map.write(famfs_log::layout::LOG_OFFSET, &garbage).unwrap();
        map.flush(famfs_log::layout::LOG_OFFSET, 4096).unwrap();
        assert!(
            famfs_log::Famfs::open_device(&map, famfs_log::OpenOptions::default()).is_err(),
            "the log is unusable"
        );
        read_superblock(&img).expect("the superblock check passes");
        map.write(0, &garbage).unwrap();
        map.flush(0, 4096).unwrap();
        let e = read_superblock(&img).unwrap_err();
        assert!(e.contains("no valid famfs"), "{e}");
    }
}
