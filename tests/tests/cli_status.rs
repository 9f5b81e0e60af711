//! `famfs status` (issue 12.2) with the real daemon: `--json` checked against the text output,
//! counters that follow the reads made through the mount, errors counted, a non-root reader,
//! the log level changed at run time (the daemon reports the new filter and logs debug lines
//! afterwards), the counters logged when the daemon stops, and the refusals (a directory that
//! is not a famfs mount, a missing path, `--log-level` without root).
//!
//! The mount tests need root, `/dev/fuse` and the `famfs_fused` binary: without them they skip
//! loudly, or fail when `CI=true`.

mod cli_support;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::*;
use famfs_tests::fused::is_famfs_mounted as famfs_mounted;
use serde_json::Value;

/// A formatted stand-in device with two files, mounted by a `famfs_fused` this test started
/// (its output in `log`); stopped and unmounted on drop.
struct Mounted {
    dir: TempDir,
    mpt: PathBuf,
    log: PathBuf,
    daemon: Child,
    r: Runner,
}

impl Mounted {
    fn new(tag: &str, fused_args: &[&str]) -> Mounted {
        let dir = TempDir::new(tag);
        let img = standin(dir.path(), "dev.img", 8 * GIB);
        let mpt = dir.path().join("mnt");
        std::fs::create_dir(&mpt).unwrap();
        let r = Runner::new(dir.path());
        let dev = img.to_str().unwrap();
        r.mkfs(&[dev]).ok("mkfs");
        r.famfs(&["mkdir", "-d", dev, "/d"]).ok("mkdir");
        for (f, seed) in [("/d/a", "1"), ("/d/b", "2")] {
            r.famfs(&["creat", "-d", dev, "-s", "3m", "-r", "-S", seed, f])
                .ok("creat");
        }
        let log = dir.path().join("fused.log");
        let out = std::fs::File::create(&log).unwrap();
        let daemon = Command::new(bins().fused.as_ref().unwrap())
            .args(fused_args)
            .args(["--poll-ms", "20"])
            .arg(&img)
            .arg(&mpt)
            .env("FAMFS_SYSTEM_UUID", MASTER_UUID)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn famfs_fused");
        let m = Mounted {
            dir,
            mpt,
            log,
            daemon,
            r,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !(famfs_mounted(&m.mpt) && m.mpt.join(".meta/.log").exists()) {
            assert!(Instant::now() < deadline, "not mounted:\n{}", m.output());
            std::thread::sleep(Duration::from_millis(10));
        }
        m
    }

    fn mp(&self) -> &str {
        self.mpt.to_str().unwrap()
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn status_json(&self) -> Value {
        let out = self
            .r
            .famfs(&["status", "--json", self.mp()])
            .ok("status --json");
        let v: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", out.stdout));
        let a = v.as_array().expect("an array");
        assert_eq!(a.len(), 1, "{v}");
        a[0].clone()
    }

    /// Unmount and wait for the daemon to exit.
    fn stop(&mut self) {
        // EBUSY can last a moment after the last close: a process another test forked in
        // between may still hold a copy of the descriptor until it execs.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match nix::mount::umount2(&self.mpt, nix::mount::MntFlags::empty()) {
                Ok(()) => break,
                Err(nix::errno::Errno::EBUSY) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("umount: {e}"),
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.daemon.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "daemon still running");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.daemon.try_wait().ok().flatten().is_none() {
            let _ = self.daemon.kill();
            let _ = self.daemon.wait();
        }
        if famfs_mounted(&self.mpt) {
            let _ = nix::mount::umount2(&self.mpt, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = self.dir.path();
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn counter(j: &Value, table: &str, op: &str) -> u64 {
    j[table][op].as_u64().unwrap_or(0)
}

/// The text report: its `key: value` lines, and the counters table (opcode → requests, errors).
fn parse_text(t: &str) -> (BTreeMap<String, String>, BTreeMap<String, (u64, u64)>) {
    let mut keys = BTreeMap::new();
    let mut table = BTreeMap::new();
    let mut in_table = false;
    for line in t.lines() {
        if line.starts_with("opcode ") {
            in_table = true;
            continue;
        }
        if in_table && !line.starts_with("errors by errno:") {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 3, "table row: {line}");
            table.insert(
                f[0].to_string(),
                (f[1].parse().unwrap(), f[2].parse().unwrap()),
            );
        } else if let Some((k, v)) = line.split_once(':') {
            keys.insert(k.to_string(), v.trim().to_string());
        }
    }
    (keys, table)
}

/// The text and the JSON of `famfs status MPT` say the same.
fn check_text_against_json(text: &str, j: &Value) {
    let (k, table) = parse_text(text);
    assert_eq!(k["mountpoint"], j["mountpoint"].as_str().unwrap());
    assert_eq!(k["pid"], u(&j["pid"]).to_string());
    for (key, field) in [
        ("device", "device"),
        ("dax mode", "dax_mode"),
        ("role", "role"),
        ("metadata source", "metadata_source"),
        ("log filter", "log_filter"),
    ] {
        assert_eq!(k[key], j[field].as_str().unwrap(), "{key}");
    }
    assert!(k["data path"].starts_with(j["data_path"].as_str().unwrap()));
    assert_eq!(
        k["log entries"],
        format!(
            "{} of {}",
            u(&j["log"]["entries_replayed"]),
            u(&j["log"]["capacity"])
        )
    );
    for (key, field) in [
        ("files", "files"),
        ("directories", "directories"),
        ("total bytes", "total_bytes"),
    ] {
        assert_eq!(k[key], u(&j[field]).to_string(), "{key}");
    }
    assert!(k["free bytes"].starts_with(&format!("{} (", u(&j["free_bytes"]))));
    assert!(
        k["last refresh"].ends_with("s ago)"),
        "{}",
        k["last refresh"]
    );
    // Counters that status itself does not move are the same in both.
    for op in ["READ", "OPEN", "INIT"] {
        let (req, err) = table.get(op).copied().unwrap_or((0, 0));
        assert_eq!(req, counter(j, "requests", op), "{op}");
        assert_eq!(err, counter(j, "errors", op), "{op}");
    }
    let ops: Vec<&String> = table.keys().collect();
    let json_ops: Vec<&String> = j["requests"].as_object().unwrap().keys().collect();
    assert_eq!(ops, json_ops, "the same opcodes");
}

#[test]
fn json_matches_text_and_counters_follow_reads() {
    if !can_mount() {
        return;
    }
    let m = Mounted::new("status", &[]);
    let a = m.mpt.join("d/a");
    assert_eq!(std::fs::read(&a).unwrap().len(), 3 << 20);
    let j = m.status_json();
    assert_eq!(j["error"], Value::Null);
    assert_eq!(j["version"], 1);
    assert_eq!(j["role"], "master");
    assert_eq!(j["dax_mode"], "file");
    assert_eq!(j["data_path"], "daemon");
    assert_eq!(j["metadata_source"], "device-mapping");
    assert_eq!((u(&j["files"]), u(&j["directories"])), (2, 1));
    assert_eq!(u(&j["log"]["entries_replayed"]), 3);
    assert_eq!(j["pid"], m.daemon.id());
    assert_eq!(j["log_filter"], "warn", "the daemon's default filter");
    let reads = counter(&j, "requests", "READ");
    assert!(reads >= 1, "{j}");

    let text = m.r.famfs(&["status", m.mp()]).ok("status").stdout;
    let j2 = m.status_json();
    check_text_against_json(&text, &j2);

    // More reads through the mount, and a lookup that fails: the counters follow.
    assert_eq!(std::fs::read(m.mpt.join("d/b")).unwrap().len(), 3 << 20);
    assert!(std::fs::metadata(m.mpt.join("d/missing")).is_err());
    let j3 = m.status_json();
    assert!(counter(&j3, "requests", "READ") > reads, "{j3}");
    assert!(counter(&j3, "errors", "LOOKUP") > counter(&j2, "errors", "LOOKUP"));
    assert!(counter(&j3, "errnos", "ENOENT") > counter(&j2, "errnos", "ENOENT"));

    // Without MPT every famfs mount is listed, this one among them.
    let all: Value = serde_json::from_str(&m.r.famfs(&["status", "--json"]).stdout).unwrap();
    let mine = all
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["mountpoint"] == m.mp())
        .expect("listed");
    assert_eq!(mine["device"], j["device"]);

    // Any user may read the figures (not the log filter, which is root's).
    let out = Command::new(&bins().famfs)
        .args(["status", "--json", m.mp()])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["files"], 2);
    assert_eq!(v[0]["log_filter"], Value::Null);
}

#[test]
fn log_level_changes_at_run_time_and_counters_are_logged_at_exit() {
    if !can_mount() {
        return;
    }
    let mut m = Mounted::new("status-log", &["-v"]);
    let names = fs_names(&m.mpt.join("d"));
    assert_eq!(names, ["a", "b"]);
    assert!(!m.output().contains(" DEBUG "), "{}", m.output());

    // Not root: refused with a clear message, nothing changed.
    let out = Command::new(&bins().famfs)
        .args(["status", "--log-level", "debug", m.mp()])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(13), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs root"), "{err}");
    assert_eq!(m.status_json()["log_filter"], "info");

    // A filter the daemon cannot parse: EINVAL.
    let bad =
        m.r.famfs(&["status", "--log-level", "a[b", m.mp()])
            .expect(22, "bad");
    assert!(bad.stderr.contains("refused log level"), "{}", bad.stderr);

    let text =
        m.r.famfs(&["status", "--log-level", "debug", m.mp()])
            .ok("--log-level debug")
            .stdout;
    assert_eq!(parse_text(&text).0["log filter"], "debug");
    assert_eq!(m.status_json()["log_filter"], "debug");
    std::fs::read(m.mpt.join("d/a")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !m.output().contains(" DEBUG ") {
        assert!(Instant::now() < deadline, "no debug line:\n{}", m.output());
        std::thread::sleep(Duration::from_millis(20));
    }
    let reads = counter(&m.status_json(), "requests", "READ");
    assert!(reads > 0);
    m.stop();
    let out = m.output();
    let line = out
        .lines()
        .find(|l| l.contains("request counters at exit:"))
        .unwrap_or_else(|| panic!("no exit summary:\n{out}"));
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains(&format!("READ={reads}")), "{line}");
    assert!(line.contains("LOOKUP="), "{line}");
}

fn fs_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn status_refuses_what_is_not_a_famfs_mount() {
    let dir = TempDir::new("status-no");
    let r = Runner::new(dir.path());
    let d = dir.path().to_str().unwrap();
    let out = r.famfs(&["status", d]).expect(1, "plain directory");
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr.contains("is not a famfs mount point"),
        "{}",
        out.stderr
    );
    let out = r
        .famfs(&["status", "--json", d])
        .expect(1, "plain directory --json");
    assert!(out.stdout.is_empty(), "nothing on stdout: {}", out.stdout);
    let missing = dir.path().join("missing");
    let out = r
        .famfs(&["status", missing.to_str().unwrap()])
        .expect(2, "missing");
    assert!(
        out.stderr.contains("no such file or directory"),
        "{}",
        out.stderr
    );
    r.famfs(&["status", "--log-level", "debug"])
        .expect(1, "--log-level needs MPT");
    let help = r.famfs(&["status", "--help"]).ok("help").stdout;
    assert!(help.contains("Exit status:"), "{help}");
}

/// FUSE over io_uring goes through the same counting as /dev/fuse.
#[test]
fn counters_are_kept_over_io_uring_too() {
    if !can_mount() {
        return;
    }
    let Some(_on) = famfs_tests::knobs::uring_on("counters_are_kept_over_io_uring_too") else {
        return;
    };
    let m = Mounted::new("status-uring", &["-v", "--transport", "uring"]);
    assert!(m.output().contains("FUSE over io_uring:"), "{}", m.output());
    let before = counter(&m.status_json(), "requests", "READ");
    assert_eq!(std::fs::read(m.mpt.join("d/a")).unwrap().len(), 3 << 20);
    assert!(std::fs::metadata(m.mpt.join("d/nope")).is_err());
    let j = m.status_json();
    assert!(counter(&j, "requests", "READ") > before, "{j}");
    assert!(counter(&j, "errors", "LOOKUP") >= 1, "{j}");
}

/// A mount whose daemon died: named, it fails with 107 and the fix; listed, it is reported with
/// its error while the command goes on.
#[test]
fn a_stale_mount_is_named_with_the_fix() {
    if !can_mount() {
        return;
    }
    let mut m = Mounted::new("status-stale", &[]);
    m.daemon.kill().unwrap();
    m.daemon.wait().unwrap();
    let out = m.r.famfs(&["status", m.mp()]).expect(107, "stale");
    assert!(out.stderr.contains("stale famfs mount"), "{}", out.stderr);
    assert!(out.stderr.contains("famfs umount"), "{}", out.stderr);
    let out =
        m.r.famfs(&["status", "--log-level", "debug", m.mp()])
            .expect(107, "stale, --log-level");
    assert!(out.stderr.contains("stale famfs mount"), "{}", out.stderr);
    let out = m.r.famfs(&["status", "--json"]);
    assert_ne!(out.code, 0, "a mount could not be reported");
    let all: Value = serde_json::from_str(&out.stdout).unwrap();
    let mine = all
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["mountpoint"] == m.mp())
        .expect("listed");
    assert!(
        mine["error"]
            .as_str()
            .unwrap()
            .contains("stale famfs mount"),
        "{mine}"
    );
    assert_eq!(mine.get("files"), None, "no figures: {mine}");
}
