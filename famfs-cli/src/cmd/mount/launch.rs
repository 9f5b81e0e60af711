//! Starting the daemon for `famfs mount`: finding `famfs_fused`, its log file, the readiness
//! pipe (`--ready-fd`), and waiting for its one line ("ok" or the error that stopped it).

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Result;
use famfs_server::ready::READY_OK;

use crate::error::fail;

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
        && nix::unistd::access(run, nix::unistd::AccessFlags::W_OK).is_ok()
    {
        return run.join(name);
    }
    std::env::temp_dir().join(format!("famfs-{name}"))
}

/// The last `lines` lines of a file (for reporting a daemon's death).
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
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

/// Where the daemon's stdout and stderr go.
#[derive(Debug, Clone)]
pub enum Output {
    /// Appended to this file (a detached daemon).
    Log(PathBuf),
    /// Ours (a daemon supervised in the foreground: its lines reach our journal).
    Inherit,
}

/// How starting the daemon ended.
#[derive(Debug)]
pub enum Started {
    /// It said "ok": mounted and serving.
    Ready,
    /// It reported this error (and is gone, or was stopped; it unmounted its own mount).
    Failed(String),
    /// It exited without a word.
    Exited(ExitStatus),
    /// No word in time: it was stopped.
    TimedOut,
}

/// A started daemon.
#[derive(Debug)]
pub struct Daemon {
    /// The process (reaped unless [`Started::Ready`]).
    pub child: Child,
    /// How the start ended.
    pub started: Started,
}

/// Start `exe args --ready-fd N` in its own session and wait (up to `wait`) for its line.
pub fn start(exe: &Path, args: &[std::ffi::OsString], out: &Output, wait: f64) -> Result<Daemon> {
    let (rx, tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| fail(1, format!("pipe: {e}")))?;
    let mut cmd = Command::new(exe);
    // The log is a file: no colour escape codes in it (tracing-subscriber honours NO_COLOR).
    cmd.env("NO_COLOR", "1")
        .arg("--ready-fd")
        .arg(tx.as_raw_fd().to_string())
        .args(args)
        .stdin(Stdio::null());
    if let Output::Log(path) = out {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| fail(1, format!("cannot open daemon log {}: {e}", path.display())))?;
        cmd.stderr(log.try_clone()?).stdout(log);
    }
    let fd = tx.as_raw_fd();
    // SAFETY: setsid, sigprocmask and fcntl are async-signal-safe and touch no memory of the
    // parent; they are the only things run between fork and exec. The daemon starts with no
    // signal blocked (the CLI may block some while it has temporary mounts, see `dummy`).
    // Clearing FD_CLOEXEC on the pipe's write end (a descriptor this process owns) lets the
    // daemon inherit it under the same number.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&nix::sys::signal::SigSet::empty()),
                None,
            )
            .map_err(std::io::Error::from)?;
            if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| fail(1, format!("cannot start {}: {e}", exe.display())))?;
    // Only the daemon holds the write end now: its exit is our end of file.
    drop(tx);
    wait_line(child, rx, wait)
}

/// Wait for the daemon's line on `rx`, its exit, or the deadline.
fn wait_line(mut child: Child, rx: OwnedFd, wait: f64) -> Result<Daemon> {
    nix::fcntl::fcntl(
        &rx,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .map_err(|e| fail(1, format!("pipe: {e}")))?;
    let mut rx = File::from(rx);
    let deadline = Instant::now() + Duration::from_secs_f64(wait.max(0.1));
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    let eof = loop {
        match rx.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => {
                line.extend_from_slice(&buf[..n]);
                if line.contains(&b'\n') {
                    break false;
                }
                continue;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(fail(1, format!("reading the daemon's ready pipe: {e}"))),
        }
        if Instant::now() > deadline {
            stop(&mut child);
            return Ok(Daemon {
                child,
                started: Started::TimedOut,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let text = String::from_utf8_lossy(&line);
    let first = text.lines().next().unwrap_or("").trim().to_string();
    let started = match (eof && first.is_empty(), first == READY_OK) {
        (false, true) => Started::Ready,
        (true, _) => Started::Exited(reap(&mut child)),
        (false, false) => {
            reap(&mut child);
            Started::Failed(first)
        }
    };
    Ok(Daemon { child, started })
}

/// Wait (up to 5 s) for a daemon that reported its end to exit, then stop it.
fn reap(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return st;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    stop(child)
}

/// Stop a daemon: SIGTERM, up to 3 s to exit, then SIGKILL. Returns its exit status.
pub fn stop(child: &mut Child) -> ExitStatus {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return st;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child
        .wait()
        .unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(9))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("fake_fused");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// A fake daemon: `$2` is the ready descriptor (after `--ready-fd`).
    fn run(body: &str, wait: f64) -> Started {
        let dir = tempfile::tempdir().unwrap();
        let exe = script(dir.path(), body);
        let out = Output::Log(dir.path().join("log"));
        start(&exe, &[], &out, wait).unwrap().started
    }

    #[test]
    fn the_daemons_line_decides() {
        match run("echo ok >&$2; exec sleep 0.2", 30.0) {
            Started::Ready => {}
            s => panic!("{s:?}"),
        }
        match run("echo 'dev.img: bad log header' >&$2; exit 1", 5.0) {
            Started::Failed(m) => assert_eq!(m, "dev.img: bad log header"),
            s => panic!("{s:?}"),
        }
        match run("exit 3", 5.0) {
            Started::Exited(st) => assert_eq!(st.code(), Some(3)),
            s => panic!("{s:?}"),
        }
        assert!(matches!(run("exec sleep 30", 0.3), Started::TimedOut));
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
