//! The `famfs_fused` daemon as tests use it: the binary (found or built), a running mount that
//! cleans up after itself, and helpers to look at `/proc/self/mounts`.
//!
//! The binaries are `$FAMFS_FUSED` / `$FAMFS_CLI` when set; otherwise each is built once per
//! test process with `cargo build -p famfs-server --bin famfs_fused` (`-p famfs-cli --bin
//! famfs`) into its own target directory (`<target>/famfs-tests-bin`), so the build never waits
//! on the lock of the `cargo test` that runs us.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use famfs_fsdev::mounts;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The workspace root (this package's parent directory).
pub fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

/// The target directory the running test binary was built in (`<target>/<profile>/deps/x`).
fn target_dir() -> PathBuf {
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t);
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| e.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| repo_dir().join("target"))
}

/// Builds binary `bin` of workspace package `package` (dev profile) into the tests' own target
/// directory, unless `env_override` names an existing file.
fn build_bin(package: &str, bin: &str, env_override: &str) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(env_override) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{env_override}={} is not a file", p.display()))
        };
    }
    let dir = target_dir().join("famfs-tests-bin");
    let started = Instant::now();
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .arg("--manifest-path")
        .arg(repo_dir().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running cargo build: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build -p {package} --bin {bin} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let path = dir.join("debug").join(bin);
    if !path.is_file() {
        return Err(format!("cargo did not produce {}", path.display()));
    }
    crate::prereq::say(&format!(
        "famfs-tests: built {} in {:.1} s",
        path.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(path)
}

/// Release builds of `famfs` and `famfs_fused` (process start and replay costs are the point,
/// so debug builds would measure the wrong thing), for benchmarks: `$FAMFS_CLI` and
/// `$FAMFS_FUSED` if both are set, else built into `<target>/famfs-bench-bin` (panics if the
/// build fails).
pub fn release_bins() -> (PathBuf, PathBuf) {
    if let (Some(c), Some(f)) = (
        std::env::var_os("FAMFS_CLI"),
        std::env::var_os("FAMFS_FUSED"),
    ) {
        return (c.into(), f.into());
    }
    let repo = repo_dir();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo.join("target"), PathBuf::from)
        .join("famfs-bench-bin");
    let t = Instant::now();
    // The build the install does (statically linked), so the figures are the installed programs'.
    let out = Command::new(repo.join("scripts/build-release.sh"))
        .arg("-d")
        .arg(&target)
        .args(["-p", "famfs-cli", "--bin", "famfs"])
        .args(["-p", "famfs-server", "--bin", "famfs_fused"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("scripts/build-release.sh");
    assert!(out.status.success(), "building release binaries failed");
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    println!(
        "release binaries in {} ({:.0} s)",
        dir.display(),
        t.elapsed().as_secs_f64()
    );
    (dir.join("famfs"), dir.join("famfs_fused"))
}

/// The value of extended attribute `name` of `path` (up to 64 KiB), if it has one.
pub fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 64 << 10];
    // SAFETY: both strings are NUL-terminated and live across the call; the buffer is valid for
    // its length and the kernel writes at most that many bytes.
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    buf.truncate(usize::try_from(r).ok()?);
    Some(buf)
}

/// The pid of the daemon serving the mount at `mpt` (its `user.famfs.pid` attribute).
pub fn daemon_pid(mpt: &Path) -> Option<i32> {
    let v = xattr(mpt, "user.famfs.pid")?;
    String::from_utf8_lossy(&v)
        .trim_end_matches('\0')
        .trim()
        .parse()
        .ok()
}

/// The `famfs_fused` binary: `$FAMFS_FUSED`, or built on first use. Panics with the build
/// output if it cannot be built: every mount test needs it.
pub fn famfs_fused() -> &'static Path {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BIN.get_or_init(|| build_bin("famfs-server", "famfs_fused", "FAMFS_FUSED")) {
        Ok(p) => p,
        Err(e) => panic!("famfs_fused: {e}"),
    }
}

/// The `famfs` CLI binary: `$FAMFS_CLI`, or built on first use (panics if it cannot be).
pub fn famfs_cli() -> &'static Path {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BIN.get_or_init(|| build_bin("famfs-cli", "famfs", "FAMFS_CLI")) {
        Ok(p) => p,
        Err(e) => panic!("famfs: {e}"),
    }
}

/// The names in directory `dir`, sorted (panics if it cannot be listed: a test failure).
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("readdir {}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("readdir {}: {e}", dir.display()))
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

/// Whether a famfs FUSE file system is mounted at `mpt` (per `/proc/self/mounts`).
pub fn is_famfs_mounted(mpt: &Path) -> bool {
    famfs_server::mount::famfs_mount_source(mpt).is_some()
}

/// Whether anything is mounted at `mpt` (any type).
pub fn is_mounted(mpt: &Path) -> bool {
    let Ok(want) = std::fs::canonicalize(mpt) else {
        // A dead FUSE mount cannot be canonicalized (ENOTCONN); compare the raw path.
        return mounts_contain(mpt);
    };
    mounts_contain(&want)
}

/// Whether anything is mounted at or below `dir`.
pub fn any_mount_under(dir: &Path) -> bool {
    mounts::read_mounts()
        .iter()
        .any(|m| m.target.starts_with(dir))
}

fn mounts_contain(p: &Path) -> bool {
    mounts::read_mounts().iter().any(|m| m.target == p)
}

/// A `famfs_fused DEV MPT` process; on drop it is stopped (SIGTERM, then SIGKILL) and anything
/// left mounted at MPT is detached.
#[derive(Debug)]
pub struct FusedMount {
    child: Option<Child>,
    mpt: PathBuf,
    log: PathBuf,
    status: Option<ExitStatus>,
    /// `enable_uring` held on for a daemon started with `--transport uring`.
    _knob: Option<crate::knobs::Knob>,
}

impl FusedMount {
    /// Starts `famfs_fused [args] device mpt` with stderr and stdout going to a log file next to
    /// the mount point, and waits up to 15 s until `mpt/.meta/.log` is visible on a famfs mount.
    /// If the daemon exits first, the error carries its exit status and output.
    pub fn start(device: &Path, mpt: &Path, args: &[&str]) -> Result<FusedMount, String> {
        let mut m = Self::spawn(device, mpt, args)?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if is_famfs_mounted(mpt) && mpt.join(".meta/.log").exists() {
                return Ok(m);
            }
            if let Some(st) = m.try_wait() {
                return Err(format!(
                    "famfs_fused exited with {st} before mounting:\n{}",
                    m.output()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "famfs_fused did not mount {} within 15 s:\n{}",
                    mpt.display(),
                    m.output()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the daemon without waiting for the mount. With `$FAMFS_TEST_TRANSPORT` set and no
    /// `--transport` in `args`, it gets `--transport` with that value first (and
    /// `enable_uring` is held on for `uring`).
    pub fn spawn(device: &Path, mpt: &Path, args: &[&str]) -> Result<FusedMount, String> {
        let log = mpt.with_extension("fused.log");
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let transport = crate::knobs::transport_from_env()
            .filter(|_| !args.iter().any(|a| a.starts_with("--transport")));
        let knob = crate::knobs::for_transport(transport, "famfs_fused");
        let mut cmd = Command::new(famfs_fused());
        if let Some(t) = transport {
            cmd.args(["--transport", crate::knobs::transport_arg(t)]);
        }
        let child = cmd
            .args(args)
            .arg(device)
            .arg(mpt)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawning famfs_fused: {e}"))?;
        Ok(FusedMount {
            child: Some(child),
            mpt: mpt.to_path_buf(),
            log,
            status: None,
            _knob: knob,
        })
    }

    /// The daemon's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The mount point.
    pub fn mountpoint(&self) -> &Path {
        &self.mpt
    }

    /// Everything the daemon printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status, if the daemon has exited (reaps it).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Some(c) = self.child.as_mut()
            && let Ok(Some(st)) = c.try_wait()
        {
            self.status = Some(st);
        }
        self.status
    }

    /// Waits up to `timeout` for the daemon to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends `sig` to the daemon.
    pub fn signal(&self, sig: Signal) -> Result<(), String> {
        let pid = self.pid().ok_or("no daemon")?;
        kill(Pid::from_raw(pid as i32), sig).map_err(|e| format!("kill -{sig} {pid}: {e}"))
    }
}

impl Drop for FusedMount {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            let _ = self.signal(Signal::SIGTERM);
            if self.wait_exit(Duration::from_secs(5)).is_none() {
                let _ = self.signal(Signal::SIGKILL);
                let _ = self.wait_exit(Duration::from_secs(5));
            }
        }
        if is_mounted(&self.mpt) {
            let _ = nix::mount::umount2(&self.mpt, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Runs `famfs_fused [args] device mpt` expecting it to fail: returns its exit status and
/// output, or an error if it is still running after `timeout` (it is then killed).
pub fn run_expecting_exit(
    device: &Path,
    mpt: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<(ExitStatus, String), String> {
    let mut m = FusedMount::spawn(device, mpt, args)?;
    match m.wait_exit(timeout) {
        Some(st) => Ok((st, m.output())),
        None => Err(format!(
            "famfs_fused still running after {timeout:?}:\n{}",
            m.output()
        )),
    }
}
