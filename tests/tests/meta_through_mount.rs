//! The famfs-kernel metadata path on a stock kernel: two daemons (two "hosts", different system
//! UUIDs) serve the same stand-in device with the test-only switch `--test-meta-through-mount`,
//! so that — as for a dax device in famfs mode, which cannot be mapped — each reads its
//! superblock and log only through its own mount (`MPT/.meta/.superblock`, `MPT/.meta/.log`),
//! and the master's appends (from the CLI, through the control channel) are written through
//! `MPT/.meta/.log`. The client must see the master's files by itself, `famfs fsck` and
//! `famfs logplay` must agree with the listing, nothing may hang (every command runs under a
//! deadline), and a plain `umount` must work (no descriptor is held inside the mount).
//!
//! Needs root, `/dev/fuse` and the binaries; skips loudly without them (fails with `CI=true`).

mod cli_support;

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cli_support::*;
use famfs_tests::fused::{is_famfs_mounted as is_mounted, xattr};

/// How long any one command may take before the test calls it a hang.
const DEADLINE: Duration = Duration::from_secs(60);

/// The `requests` count of the control channel of the daemon serving `mpt`.
fn control_requests(mpt: &Path) -> u64 {
    use famfs_server::control::proto::{self, Answer, Request};
    let sock = xattr(mpt, "user.famfs.control").expect("control channel");
    let sock = PathBuf::from(std::ffi::OsStr::from_bytes(&sock));
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    proto::write_frame(&mut s, &proto::encode_request(&Request::Status)).unwrap();
    let mut reply = Vec::new();
    assert!(proto::read_frame(&mut s, &mut reply).unwrap());
    match proto::parse_reply(&reply).unwrap() {
        Ok(Answer::Status(st)) => st.requests,
        other => panic!("status: {other:?}"),
    }
}

/// One daemon serving the stand-in at a mount point; unmounted and stopped on drop.
struct Daemon {
    child: Child,
    mpt: PathBuf,
    log: PathBuf,
}

impl Daemon {
    fn start(img: &Path, mpt: &Path, uuid: &str, log: PathBuf) -> Daemon {
        std::fs::create_dir_all(mpt).unwrap();
        let child = Command::new(bins().fused.as_ref().unwrap())
            .args(["--test-meta-through-mount", "--poll-ms", "20", "-v"])
            .args(["--system-uuid", uuid])
            .arg(img)
            .arg(mpt)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn famfs_fused");
        let mut d = Daemon {
            child,
            mpt: mpt.to_path_buf(),
            log,
        };
        // The control channel is published once the log has been read through the mount.
        let until = Instant::now() + Duration::from_secs(20);
        while xattr(mpt, "user.famfs.control").is_none() {
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("famfs_fused exited ({st}):\n{}", d.log_text());
            }
            assert!(Instant::now() < until, "no bootstrap:\n{}", d.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A plain umount (no lazy detach): must not be refused as busy; the daemon then exits 0.
    fn umount(mut self) -> String {
        let r = nix::mount::umount2(&self.mpt, nix::mount::MntFlags::empty());
        assert!(r.is_ok(), "umount {}: {r:?}", self.mpt.display());
        let until = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < until, "daemon did not exit after umount");
            std::thread::sleep(Duration::from_millis(20));
        };
        let log = self.log_text();
        assert!(status.success(), "daemon exit {status}:\n{log}");
        log
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if is_mounted(&self.mpt) {
            let _ = nix::mount::umount2(&self.mpt, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `f` on another thread and wait at most [`DEADLINE`] for it: a hang fails the test.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("{what}: no answer within {DEADLINE:?} (hang)"))
}

/// Every path under `root` (files as "p", directories as "p/"), without `.meta`.
fn listing(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            if rel == ".meta" {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                out.insert(format!("{rel}/"));
                walk(root, &e.path(), out);
            } else {
                out.insert(rel);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

/// The number of a fsck summary line `N <what>`.
fn count(stdout: &str, what: &str) -> u64 {
    stdout
        .lines()
        .filter_map(|l| l.trim().strip_suffix(what))
        .find_map(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no '<n> {what}' in:\n{stdout}"))
}

#[test]
fn two_hosts_read_and_append_the_log_through_their_mounts() {
    if !can_mount() {
        return;
    }
    let dir = TempDir::new("meta-mount");
    let img = standin(dir.path(), "dev.img", 8 * GIB);
    let r = Runner::new(dir.path());
    r.mkfs(&[img.to_str().unwrap()]).ok("mkfs");
    let (m1, m2) = (dir.path().join("master"), dir.path().join("client"));
    let master = Daemon::start(&img, &m1, MASTER_UUID, dir.path().join("master.log"));
    let client = Daemon::start(&img, &m2, CLIENT_UUID, dir.path().join("client.log"));
    assert!(
        master
            .log_text()
            .contains("metadata read through the mount")
    );
    assert_eq!(
        xattr(&m1, "user.famfs.role").as_deref(),
        Some(&b"master"[..])
    );
    assert_eq!(
        xattr(&m2, "user.famfs.role").as_deref(),
        Some(&b"client"[..])
    );

    // The master creates through its mount with the CLI (control channel appends).
    let host = dir.path().join("host.bin");
    let data = bytes(5, (3 << 20) + 17);
    std::fs::write(&host, &data).unwrap();
    let at = |m: &Path, rel: &str| m.join(rel).to_str().unwrap().to_string();
    for args in [
        vec!["mkdir".to_string(), "-p".into(), at(&m1, "a/b")],
        vec![
            "cp".into(),
            host.to_str().unwrap().into(),
            at(&m1, "a/b/f1"),
        ],
        vec![
            "creat".into(),
            "-s".into(),
            "1m".into(),
            "-r".into(),
            "-S".into(),
            "7".into(),
            at(&m1, "c1"),
        ],
    ] {
        let r = r.clone();
        within(&format!("famfs {args:?}"), move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            r.famfs(&a).ok("famfs through the master mount");
        });
    }
    // Concurrent appends while the tree is listed on the master: no deadlock between the
    // appends' writes through the mount and the requests that need the tree.
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (r, m1) = (r.clone(), m1.clone());
            std::thread::spawn(move || {
                for i in 0..6 {
                    let f = m1.join(format!("w{w}-{i}"));
                    r.famfs(&["creat", "-s", "64k", f.to_str().unwrap()])
                        .ok("creat");
                }
            })
        })
        .collect();
    let m1c = m1.clone();
    within("listing the master during appends", move || {
        for _ in 0..20 {
            listing(&m1c);
        }
    });
    within("concurrent creat", move || {
        for w in writers {
            w.join().unwrap();
        }
    });

    // Every append went through the master's control channel (two requests or more each).
    assert!(
        control_requests(&m1) >= 2 * 15,
        "the CLI appended by itself"
    );

    // The client sees everything by itself (its watcher reads through its own mount).
    let want = listing(&m1);
    assert_eq!(want.len(), 2 + 2 + 12, "{want:?}");
    let until = Instant::now() + Duration::from_secs(10);
    while listing(&m2) != want {
        assert!(
            Instant::now() < until,
            "client sees {:?}, master {want:?}",
            listing(&m2)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::read(m2.join("a/b/f1")).unwrap(), data);
    r.as_client()
        .famfs(&["verify", "-S", "7", &at(&m2, "c1")])
        .ok("verify on the client");

    // fsck and logplay, through either mount and on the device, agree with the listing.
    for m in [&m1, &m2] {
        let fsck = within("fsck", {
            let (r, m) = (r.clone(), at(m, ""));
            move || r.famfs(&["fsck", &m]).ok("fsck").stdout
        });
        assert_eq!(count(&fsck, "files"), 14, "{fsck}");
        assert_eq!(count(&fsck, "directories"), 2, "{fsck}");
        let ls = within("logplay", {
            let (r, m) = (r.clone(), at(m, ""));
            move || r.famfs(&["logplay", "--ls", &m]).ok("logplay").stdout
        });
        let names: BTreeSet<String> = parse_ls(&ls).into_keys().collect();
        assert_eq!(names, want, "logplay --ls through {}", m.display());
    }

    let client_log = client.umount();
    let master_log = master.umount();
    for (who, log) in [("client", client_log), ("master", master_log)] {
        assert!(
            !log.contains("ERROR") && !log.contains("WARN"),
            "{who} daemon log:\n{log}"
        );
    }
    let ls = r
        .famfs(&["logplay", "--ls", img.to_str().unwrap()])
        .ok("logplay dev");
    let names: BTreeSet<String> = parse_ls(&ls.stdout).into_keys().collect();
    assert_eq!(names, want);
}

/// A bootstrap that cannot read a valid superblock through the mount unmounts and exits
/// non-zero with a message saying why; nothing stays mounted.
#[test]
fn a_failed_bootstrap_unmounts_and_exits_non_zero() {
    if !can_mount() {
        return;
    }
    let dir = TempDir::new("meta-mount-bad");
    // Never formatted: the superblock read through the mount is all zeros.
    let img = standin(dir.path(), "dev.img", 8 * GIB);
    let mpt = dir.path().join("mnt");
    std::fs::create_dir(&mpt).unwrap();
    let fused = bins().fused.clone().unwrap();
    let (img2, mpt2) = (img.clone(), mpt.clone());
    let out = within("famfs_fused on an unformatted device", move || {
        Command::new(fused)
            .args(["--test-meta-through-mount", "--system-uuid", MASTER_UUID])
            .arg(&img2)
            .arg(&mpt2)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot serve") && err.contains("superblock"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!is_mounted(&mpt), "left mounted");
}
