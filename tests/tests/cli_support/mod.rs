//! Shared helpers of the CLI end-to-end tests (`cli_offline.rs`, `cli_mounted.rs`): building and
//! locating the real binaries, temporary stand-in devices, running commands, parsing outputs.
#![allow(dead_code)] // each test file uses a different subset

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The system UUID of the master in these tests (never the machine's own /opt/famfs file).
pub const MASTER_UUID: &str = "6a1c4d2e-0000-4000-8000-00000000f00d";
/// Another host.
pub const CLIENT_UUID: &str = "6a1c4d2e-0000-4000-8000-0000000c11e7";

/// 1 GiB.
pub const GIB: u64 = 1 << 30;
/// The allocation unit.
pub const AU: u64 = 2 << 20;
/// Superblock + default log: where data starts.
pub const DATA_START: u64 = (2 << 20) + (8 << 20);

/// Where the binaries are.
#[derive(Debug)]
pub struct Bins {
    /// `famfs`.
    pub famfs: PathBuf,
    /// `mkfs.famfs` (a symlink to `famfs`, which dispatches on its name).
    pub mkfs: PathBuf,
    /// `famfs_fused`, if the workspace builds it.
    pub fused: Option<PathBuf>,
}

fn say(msg: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "cli-tests: {msg}");
}

/// The profile directory of this test build (`<target>/<profile>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

fn cargo_build(packages: &[&str]) -> bool {
    let profile = profile_dir();
    let target = profile.parent().expect("target dir");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.arg("build")
        .arg("--bins")
        .env("CARGO_TARGET_DIR", target);
    for p in packages {
        cmd.args(["-p", p]);
    }
    match profile.file_name().and_then(OsStr::to_str) {
        Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
        None => {}
    }
    match cmd.status() {
        Ok(s) => s.success(),
        Err(e) => {
            say(&format!("cannot run cargo: {e}"));
            false
        }
    }
}

/// Build (if needed) and locate `famfs`, `mkfs.famfs` and `famfs_fused`.
pub fn bins() -> &'static Bins {
    static B: OnceLock<Bins> = OnceLock::new();
    B.get_or_init(|| {
        assert!(
            cargo_build(&["famfs-cli"]),
            "cargo build -p famfs-cli failed"
        );
        let profile = profile_dir();
        let famfs = profile.join("famfs");
        assert!(famfs.is_file(), "{} was not built", famfs.display());
        let links = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-bins");
        std::fs::create_dir_all(&links).unwrap();
        let mkfs = links.join("mkfs.famfs");
        let _ = std::fs::remove_file(&mkfs);
        std::os::unix::fs::symlink(&famfs, &mkfs).unwrap();
        let fused = if cargo_build(&["famfs-server"]) {
            Some(profile.join("famfs_fused")).filter(|p| p.is_file())
        } else {
            None
        };
        Bins { famfs, mkfs, fused }
    })
}

/// A temporary directory under the cargo target tmpdir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory whose name starts with `tag`.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "cli-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A command's outcome.
#[derive(Debug, Clone)]
pub struct Out {
    /// Exit status (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    fn from(o: Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Panics with the output unless the exit status is `code`.
    #[track_caller]
    pub fn expect(self, code: i32, what: &str) -> Out {
        assert_eq!(
            self.code, code,
            "{what}: exit {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// Panics unless successful.
    #[track_caller]
    pub fn ok(self, what: &str) -> Out {
        self.expect(0, what)
    }
}

/// How to run a command.
#[derive(Debug, Clone)]
pub struct Runner {
    /// Working directory.
    pub cwd: PathBuf,
    /// System UUID for the command.
    pub uuid: String,
    /// Extra environment.
    pub env: Vec<(String, String)>,
}

impl Runner {
    /// Commands run in `cwd` as the master, with umask 022.
    pub fn new(cwd: &Path) -> Runner {
        Runner {
            cwd: cwd.to_path_buf(),
            uuid: MASTER_UUID.into(),
            env: Vec::new(),
        }
    }

    /// The same, as another host.
    pub fn as_client(&self) -> Runner {
        Runner {
            uuid: CLIENT_UUID.into(),
            ..self.clone()
        }
    }

    /// With an extra environment variable.
    pub fn with_env(&self, k: &str, v: &str) -> Runner {
        let mut r = self.clone();
        r.env.push((k.into(), v.into()));
        r
    }

    /// Run `prog args...` under umask 022 (through `sh`, so the umask is deterministic).
    pub fn run(&self, prog: &Path, args: &[&str]) -> Out {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg("umask 022; exec \"$0\" \"$@\"")
            .arg(prog)
            .args(args)
            .current_dir(&self.cwd)
            .env("FAMFS_SYSTEM_UUID", &self.uuid)
            .env_remove("FAMFS_SYSTEM_UUID_FILE")
            .env("FAMFS_PROGRESS", "0")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        Out::from(cmd.output().expect("spawn"))
    }

    /// `famfs args...`.
    pub fn famfs(&self, args: &[&str]) -> Out {
        self.run(&bins().famfs, args)
    }

    /// `mkfs.famfs args...`.
    pub fn mkfs(&self, args: &[&str]) -> Out {
        self.run(&bins().mkfs, args)
    }
}

/// A sparse stand-in device file of `size` bytes at `dir/name`.
pub fn standin(dir: &Path, name: &str, size: u64) -> PathBuf {
    let p = dir.join(name);
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(size).unwrap();
    p
}

/// Deterministic "random" bytes (xorshift), for host source files.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// One line of `famfs logplay --ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// 'd' or 'f'.
    pub kind: char,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size (0 for directories).
    pub size: u64,
}

/// Parse the tree lines of `logplay --ls` into path → entry (directories keep their '/').
pub fn parse_ls(stdout: &str) -> BTreeMap<String, Listed> {
    let mut m = BTreeMap::new();
    for line in stdout.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 6 || !(f[0] == "d" || f[0] == "f") {
            continue;
        }
        m.insert(
            f[5].to_string(),
            Listed {
                kind: f[0].chars().next().unwrap(),
                mode: u32::from_str_radix(f[1], 8).unwrap(),
                uid: f[2].parse().unwrap(),
                gid: f[3].parse().unwrap(),
                size: f[4].parse().unwrap(),
            },
        );
    }
    m
}

/// A file map as `famfs getmap` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    /// File size.
    pub size: u64,
    /// Chunk size if interleaved.
    pub chunk: Option<u64>,
    /// Extents (or strips): (device offset, length).
    pub extents: Vec<(u64, u64)>,
}

/// Parse the output of `famfs getmap` for one file.
pub fn parse_getmap(stdout: &str) -> Map {
    let mut size = None;
    let mut chunk = None;
    let mut extents = Vec::new();
    for line in stdout.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("size:") {
            size = Some(v.trim().parse().unwrap());
        } else if let Some(v) = t.strip_prefix("Interleave_Param chunk_size:") {
            chunk = Some(v.trim().parse().unwrap());
        } else if line.starts_with("\t\t") {
            let mut it = t.split_whitespace();
            let off = u64::from_str_radix(it.next().unwrap(), 16).unwrap();
            let len = it.next().unwrap().parse().unwrap();
            extents.push((off, len));
        }
    }
    Map {
        size: size.expect("a size line"),
        chunk,
        extents,
    }
}

impl Map {
    /// Read the file's bytes straight from the device image, resolving the map here (simple:
    /// extents in order; interleaved: chunk k is in strip k % n at (k / n) * chunk).
    pub fn read_from_image(&self, img: &Path) -> Vec<u8> {
        let f = std::fs::File::open(img).unwrap();
        let mut out = vec![0u8; self.size as usize];
        let mut pos = 0u64;
        while pos < self.size {
            let (dev, n) = match self.chunk {
                None => {
                    let mut base = 0;
                    let mut hit = None;
                    for &(o, l) in &self.extents {
                        if pos < base + l {
                            hit = Some((o + pos - base, base + l - pos));
                            break;
                        }
                        base += l;
                    }
                    hit.expect("file offset beyond the extents")
                }
                Some(c) => {
                    let k = pos / c;
                    let n = self.extents.len() as u64;
                    let (so, _) = self.extents[(k % n) as usize];
                    (so + (k / n) * c + pos % c, c - pos % c)
                }
            };
            let n = n.min(self.size - pos) as usize;
            f.read_exact_at(&mut out[pos as usize..pos as usize + n], dev)
                .unwrap();
            pos += n as u64;
        }
        out
    }

    /// Bytes of device space the map holds.
    pub fn allocated(&self) -> u64 {
        self.extents.iter().map(|e| e.1).sum()
    }
}

/// The number at the end of the fsck line starting with `label` (the reference's scripts read
/// `Free space:` and `Device capacity:` as awk field 3).
pub fn fsck_field(stdout: &str, label: &str) -> u64 {
    stdout
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("no {label} in:\n{stdout}"))
        .parse()
        .unwrap()
}

/// Whether `CI=true`: tests that cannot run must fail instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether this machine can mount FUSE file systems with our daemon (root, /dev/fuse, a built
/// `famfs_fused`); otherwise skips, or under `CI=true` fails, saying why.
pub fn can_mount() -> bool {
    let why = if !nix::unistd::geteuid().is_root() {
        "mount tests need root"
    } else if !Path::new("/dev/fuse").exists() {
        "mount tests need /dev/fuse"
    } else if bins().fused.is_none() {
        "the workspace does not build famfs_fused"
    } else {
        return true;
    };
    skip_or_fail(why);
    false
}

/// Skip loudly, or fail under CI.
pub fn skip_or_fail(why: &str) {
    if in_ci() {
        panic!("cannot run under CI=true: {why}");
    }
    say(&format!("SKIPPED: {why}"));
}
