//! `famfs mount`.
//!
//! The mount: validate the device, start
//! `famfs_fused DEV MPT` in its own session with its output in a log file, wait until
//! `MPT/.meta/.log` is visible on a famfs FUSE mount, and leave nothing mounted on failure.
//! It runs in steps: a plan (arguments, paths, the mount table and the dax mode checked; nothing
//! touched), preparing the device (mode switch if asked, superblock and log validated), the
//! launch (the daemon started and waited for), and the report (messages, exit status).

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Result;
use nix::mount::MntFlags;

use crate::cli::MountArgs;
use crate::cmd::stale::{is_disconnected, stale_message, stale_mount_containing};
use crate::error::fail;
use crate::mounts::{famfs_mount_at, mounts_of_device, read_mounts};
use crate::open::{OpenFs, OpenHow, check_daxmode};

/// Environment variable naming the daemon binary.
pub const FUSED_ENV: &str = "FAMFS_FUSED";
/// The daemon's file name.
pub const FUSED_NAME: &str = "famfs_fused";

/// Where the daemon is: `$FAMFS_FUSED`, else next to this program, else on `$PATH`.
pub fn find_daemon() -> Result<PathBuf> {
    find_daemon_with(std::env::var_os(FUSED_ENV))
}

/// [`find_daemon`] with the value of `$FAMFS_FUSED` given.
pub fn find_daemon_with(env: Option<std::ffi::OsString>) -> Result<PathBuf> {
    if let Some(p) = env.filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(fail(
                1,
                format!("${FUSED_ENV} = {}: no such file", p.display()),
            ));
        }
        return Ok(p);
    }
    let exe = std::env::current_exe().ok();
    if let Some(dir) = exe.as_ref().and_then(|e| e.parent()) {
        let cand = dir.join(FUSED_NAME);
        if cand.is_file() {
            return Ok(cand);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let cand = dir.join(FUSED_NAME);
            if cand.is_file() {
                return Ok(cand);
            }
        }
    }
    Err(fail(
        1,
        format!(
            "{FUSED_NAME} not found next to {} or on $PATH (set ${FUSED_ENV} to its path)",
            exe.map_or_else(|| "famfs".into(), |e| e.display().to_string())
        ),
    ))
}

/// 64-bit FNV-1a, for naming a mount point's daemon log.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The daemon's log file for mount point `mpt`: `/run/famfs/<hash>.log`, or in `$TMPDIR` when
/// `/run/famfs` cannot be created.
pub fn daemon_log_path(mpt: &Path) -> PathBuf {
    let name = format!("{:016x}.log", fnv1a(mpt.as_os_str().as_bytes()));
    let run = Path::new("/run/famfs");
    if std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(run)
        .is_ok()
        && tempfile_writable(run)
    {
        return run.join(name);
    }
    std::env::temp_dir().join(format!("famfs-{name}"))
}

fn tempfile_writable(dir: &Path) -> bool {
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// The last `lines` lines of a file (for reporting a daemon's death).
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(16 << 10);
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(from)).is_err() || f.read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Whether `mpt` is a famfs mount with its meta files visible.
fn ready(mpt: &Path) -> bool {
    famfs_mount_at(&read_mounts(), mpt).is_some() && mpt.join(".meta/.log").exists()
}

/// Detach a famfs mount at `mpt` if one is there (cleanup after a failed mount).
fn detach_if_mounted(mpt: &Path) {
    if famfs_mount_at(&read_mounts(), mpt).is_some()
        && let Err(e) = nix::mount::umount2(mpt, MntFlags::MNT_DETACH)
    {
        eprintln!("famfs mount: could not detach {}: {e}", mpt.display());
    }
}

/// The daemon's command line for our options.
pub fn daemon_args(a: &MountArgs, verbose: u8, dev: &Path, mpt: &Path) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = Vec::new();
    if let Some(t) = a.timeout {
        v.push("--timeout".into());
        v.push(t.to_string().into());
    }
    if a.nouseraccess {
        v.push("--no-allow-other".into());
    }
    if a.nodefaultperm {
        v.push("--no-default-permissions".into());
    }
    if let Some(d) = &a.dax {
        v.push("--dax".into());
        v.push(d.into());
    }
    if let Some(p) = a.poll_ms {
        v.push("--poll-ms".into());
        v.push(p.to_string().into());
    }
    let threads = if a.debug { Some(1) } else { a.threads };
    if let Some(t) = threads {
        v.push("--threads".into());
        v.push(t.to_string().into());
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
    /// The daemon's command line.
    daemon_args: Vec<OsString>,
    /// Seconds to wait for the mount.
    wait: f64,
}

/// How starting the daemon ended.
#[derive(Debug)]
enum Started {
    /// Mounted, served by the daemon of this pid.
    Ready(u32),
    /// The daemon exited before the mount was ready (anything it mounted is detached).
    Exited(ExitStatus),
    /// The mount was not ready in time: the daemon was stopped, anything mounted detached.
    TimedOut,
}

/// A started daemon: its binary, its log and how the start ended.
#[derive(Debug)]
struct Launch {
    exe: PathBuf,
    log_path: PathBuf,
    started: Started,
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
        if !a.set_daxmode {
            check_daxmode(&dev, false)?;
        }
        Ok(MountPlan {
            daemon_args: daemon_args(a, verbose, &dev, &mpt),
            dev,
            mpt,
            set_daxmode: a.set_daxmode,
            wait: a.wait,
        })
    }

    /// Switch the device's mode if asked, then validate its superblock and log.
    fn prepare_device(&self) -> Result<()> {
        if self.set_daxmode {
            check_daxmode(&self.dev, true)?;
        }
        let open = OpenFs::device(
            &self.dev,
            OpenHow {
                write: false,
                set_daxmode: false,
                allow_mounted: false,
            },
        )
        .map_err(|e| fail(1, format!("cannot mount {}: {e:#}", self.dev.display())))?;
        let st = open.fs.state().stats();
        tracing::info!(
            "{}: valid famfs, role {:?}, {} files, {} directories",
            self.dev.display(),
            open.fs.role(),
            st.files,
            st.dirs
        );
        Ok(())
    }

    /// Start the daemon in its own session, its output going to its log file, and wait until
    /// the mount is ready, the daemon exits, or the wait times out.
    fn launch(&self) -> Result<Launch> {
        let exe = find_daemon()?;
        let log_path = daemon_log_path(&self.mpt);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| {
                fail(
                    1,
                    format!("cannot open daemon log {}: {e}", log_path.display()),
                )
            })?;
        let log2 = log.try_clone()?;
        let mut cmd = Command::new(&exe);
        // The log is a file: no colour escape codes in it (tracing-subscriber honours NO_COLOR).
        cmd.env("NO_COLOR", "1")
            .args(&self.daemon_args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent; it is the only
        // thing run between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid()
                    .map(|_| ())
                    .map_err(std::io::Error::from)
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| fail(1, format!("cannot start {}: {e}", exe.display())))?;
        let started = self.wait_ready(child)?;
        Ok(Launch {
            exe,
            log_path,
            started,
        })
    }

    /// Wait for the mount; on failure leave nothing mounted (and no daemon running).
    fn wait_ready(&self, mut child: Child) -> Result<Started> {
        let deadline = Instant::now() + Duration::from_secs_f64(self.wait.max(0.1));
        loop {
            if let Some(status) = child.try_wait()? {
                detach_if_mounted(&self.mpt);
                return Ok(Started::Exited(status));
            }
            if ready(&self.mpt) {
                return Ok(Started::Ready(child.id()));
            }
            if Instant::now() > deadline {
                stop(&mut child);
                detach_if_mounted(&self.mpt);
                return Ok(Started::TimedOut);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the user sees of a launch, and the exit status.
    fn report(&self, launch: &Launch, verbose: u8) -> Result<i32> {
        let Launch {
            exe,
            log_path,
            started,
        } = launch;
        match started {
            Started::Ready(pid) => {
                if verbose > 0 {
                    println!(
                        "famfs mount: {} on {} (daemon pid {pid}, log {})",
                        self.dev.display(),
                        self.mpt.display(),
                        log_path.display()
                    );
                }
                Ok(0)
            }
            Started::Exited(status) => Err(fail(
                1,
                format!(
                    "{} exited ({status}) before the mount was ready; nothing is mounted. \
                     The end of its log {}:\n{}",
                    exe.display(),
                    log_path.display(),
                    tail(log_path, 20)
                ),
            )),
            Started::TimedOut => Err(fail(
                1,
                format!(
                    "timed out after {:.1} s waiting for {}/.meta/.log; the daemon was stopped \
                     and nothing is mounted. The end of its log {}:\n{}",
                    self.wait,
                    self.mpt.display(),
                    log_path.display(),
                    tail(log_path, 20)
                ),
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

/// Stop a daemon: SIGTERM, up to 3 s to exit, then SIGKILL.
fn stop(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
        std::thread::sleep(Duration::from_millis(20));
    }
    if child.try_wait().ok().flatten().is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `famfs mount DEV MPT`: plan (check everything), prepare the device, start the daemon, report.
/// Every failure exits 1, as the reference's mount does (and as `famfs mount --help` says).
pub fn mount(a: MountArgs, verbose: u8) -> Result<i32> {
    let run = || -> Result<i32> {
        let plan = MountPlan::new(&a, verbose)?;
        plan.prepare_device()?;
        println!("daxdev={}, mpt={}", plan.dev.display(), plan.mpt.display());
        let launch = plan.launch()?;
        plan.report(&launch, verbose)
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
                "--no-allow-other",
                "--no-default-permissions",
                "--dax",
                "off",
                "--poll-ms",
                "50",
                "--threads",
                "1",
                "-v",
                "-v",
                "-v",
                "/dev/dax0.0",
                "/mnt/f"
            ]
        );
    }

    #[test]
    fn log_path_and_tail() {
        let p = daemon_log_path(Path::new("/mnt/famfs"));
        assert!(p.to_string_lossy().ends_with(".log"));
        assert_eq!(
            p,
            daemon_log_path(Path::new("/mnt/famfs")),
            "stable per mount point"
        );
        assert_ne!(p, daemon_log_path(Path::new("/mnt/other")));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("log");
        std::fs::write(
            &f,
            (0..100).map(|i| format!("line {i}\n")).collect::<String>(),
        )
        .unwrap();
        assert_eq!(tail(&f, 2), "line 98\nline 99");
        assert_eq!(tail(&dir.path().join("none"), 2), "");
    }

    #[test]
    fn daemon_lookup_honours_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("famfs_fused");
        std::fs::write(&fake, b"#!/bin/sh\n").unwrap();
        assert_eq!(find_daemon_with(Some(fake.clone().into())).unwrap(), fake);
        assert!(find_daemon_with(Some(dir.path().join("nope").into())).is_err());
    }
}
