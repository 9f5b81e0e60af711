//! `famfs_fused` when the device changes under a mount: a stand-in that shrinks (no access to
//! the mapping may kill the daemon: the request gets EIO and the daemon says why), a device
//! re-formatted or a log rewritten by another host (never serve old names with new bytes), and
//! attribute changes famfs cannot store (utimes is refused like chmod).
//!
//! Needs root and /dev/fuse: under `CI=true` a missing prerequisite fails, otherwise the tests
//! skip loudly. The daemon binary is `$FAMFS_FUSED` or built on first use
//! (see `famfs_tests::fused`).

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use famfs_log::alloc::AllocPolicy;
use famfs_log::header::COUNTERS_OFFSET;
use famfs_log::layout::LOG_OFFSET;
use famfs_tests::fused::{FusedMount, names};
use famfs_tests::standin::{StandIn, raw_file_entry};
use famfs_tests::{pattern, prereq};
use uuid::Uuid;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn mount(dev: &StandIn, name: &str, uuid: Uuid) -> (FusedMount, PathBuf) {
    let mpt = dev.mountpoint(name);
    let m = FusedMount::start(dev.path(), &mpt, &["--system-uuid", &uuid.to_string()])
        .unwrap_or_else(|e| panic!("mounting {name}: {e}"));
    (m, mpt)
}

/// Waits up to `timeout` for `cond`; returns whether it became true.
fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_alive(m: &mut FusedMount, what: &str) {
    if let Some(st) = m.try_wait() {
        panic!("{what}: the daemon died ({st}):\n{}", m.output());
    }
}

fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

// ------------------------------------------------------------------------------------------
// A stand-in that shrinks under a mounted master

#[test]
fn a_shrunken_device_gives_eio_and_the_daemon_lives_on() {
    if !prereq::root_and_fuse("a_shrunken_device_gives_eio...") {
        return;
    }
    let mut dev = StandIn::create(8 * GIB).unwrap();
    let low = dev
        .add_file("low", 3 * MIB + 5, AllocPolicy::Contiguous)
        .unwrap();
    // A file at 4 GiB, past where the stand-in will end.
    dev.append_raw(|i| raw_file_entry(i, b"high", 2 * MIB, &[(4 * GIB, 2 * MIB)]))
        .unwrap();
    let (mut m, mpt) = mount(&dev, "mnt", dev.master_uuid());
    let high = OpenOptions::new()
        .read(true)
        .write(true)
        .open(mpt.join("high"))
        .unwrap();
    high.write_all_at(b"before", 0).unwrap();

    // `truncate -s 1G` of the 8 GiB stand-in.
    set_len(dev.path(), GIB);
    for (what, at) in [("write at 0", 0u64), ("write at 1 MiB", MIB)] {
        let e = high.write_all_at(b"after the shrink", at).unwrap_err();
        assert_eq!(errno(&e), libc::EIO, "{what}: {e}");
        assert_alive(&mut m, what);
    }
    let mut buf = [0u8; 16];
    let e = high.read_exact_at(&mut buf, 0).unwrap_err();
    assert_eq!(errno(&e), libc::EIO, "read past the end: {e}");
    assert_alive(&mut m, "read past the end");
    // Files inside the new size still work, reads and writes.
    let back = std::fs::read(mpt.join("low")).unwrap();
    assert!(back == dev.expected("low", 0, low.size), "low differs");
    let lowf = OpenOptions::new()
        .write(true)
        .open(mpt.join("low"))
        .unwrap();
    lowf.write_all_at(b"still fine", MIB).unwrap();
    let mut b = [0u8; 10];
    std::fs::File::open(mpt.join("low"))
        .unwrap()
        .read_exact_at(&mut b, MIB)
        .unwrap();
    assert_eq!(&b, b"still fine");
    let out = m.output();
    assert!(
        out.contains("cannot be accessed") && out.contains("ERROR"),
        "no log line explains the EIO:\n{out}"
    );

    // Shrink below the log: the log watcher's look at the log faults, and the daemon lives.
    set_len(dev.path(), MIB);
    std::thread::sleep(Duration::from_millis(500));
    assert_alive(&mut m, "log unreadable");
    let e = std::fs::read(mpt.join("low")).unwrap_err();
    assert_eq!(errno(&e), libc::EIO, "read with the log gone: {e}");
    let e = std::fs::metadata(mpt.join("no-such-name")).unwrap_err();
    assert_eq!(errno(&e), libc::EIO, "lookup with the log gone: {e}");
    assert_alive(&mut m, "lookup with the log gone");
    let out = m.output();
    assert!(
        out.contains("stopped serving"),
        "no log line says the log is unreadable:\n{out}"
    );
    drop(high);
    drop(lowf);
    drop(m);
}

// ------------------------------------------------------------------------------------------
// The device re-formatted or the log rewritten under a client

/// Reads `path`, and fails the test if it holds the bytes of file `seed` of the new file
/// system (an old name served with new bytes).
fn assert_not_served_with(path: &Path, new: &[(u64, u64)]) -> Option<std::io::Error> {
    match std::fs::read(path) {
        Err(e) => Some(e),
        Ok(bytes) => {
            for &(seed, size) in new {
                let n = bytes.len().min(size as usize);
                assert!(
                    n == 0 || bytes[..n] != pattern::bytes(seed, 0, n)[..],
                    "{} served with the bytes of a file of the new file system",
                    path.display()
                );
            }
            panic!(
                "{} still readable ({} bytes) after the log was rewritten",
                path.display(),
                bytes.len()
            );
        }
    }
}

#[test]
fn a_client_never_serves_old_names_after_the_device_is_reformatted() {
    if !prereq::root_and_fuse("a_client_never_serves_old_names...") {
        return;
    }
    let mut dev = StandIn::create(4 * GIB).unwrap();
    dev.add_file("old_a", 3 * MIB, AllocPolicy::Contiguous)
        .unwrap();
    dev.add_file("old_b", 5 * MIB, AllocPolicy::Contiguous)
        .unwrap();
    let (mut m, cm) = mount(&dev, "client", Uuid::new_v4());
    assert_eq!(names(&cm), [".meta", "old_a", "old_b"]);
    assert!(std::fs::read(cm.join("old_a")).unwrap() == dev.expected("old_a", 0, 3 * MIB));
    let held = std::fs::File::open(cm.join("old_a")).unwrap();

    // Another host: mkfs -f with another UUID, then different files (the first one lands
    // where old_a was).
    dev.reformat(Uuid::new_v4()).unwrap();
    let x = dev
        .add_file("new_x", 3 * MIB, AllocPolicy::Contiguous)
        .unwrap();
    let y = dev
        .add_file("new_y", 2 * MIB, AllocPolicy::Contiguous)
        .unwrap();
    let new = [(x.seed.unwrap(), x.size), (y.seed.unwrap(), y.size)];
    let appeared = wait_for(Duration::from_secs(3), || {
        names(&cm).contains(&"new_x".to_string())
    });
    // Old names: gone or an error, never the new bytes, also through a descriptor held
    // across the change.
    for old in ["old_a", "old_b"] {
        let e = assert_not_served_with(&cm.join(old), &new).unwrap();
        assert!(
            matches!(errno(&e), libc::ENOENT | libc::ESTALE),
            "{old}: {e}"
        );
    }
    let mut buf = vec![0u8; 4096];
    match held.read_at(&mut buf, 0) {
        Ok(n) => panic!("a descriptor of old_a still reads ({n} bytes)"),
        Err(e) => assert!(
            matches!(errno(&e), libc::ESTALE | libc::EIO | libc::ENOENT),
            "held descriptor: {e}"
        ),
    }
    assert!(appeared, "new_x never appeared on the client");
    assert_eq!(names(&cm), [".meta", "new_x", "new_y"]);
    assert!(std::fs::read(cm.join("new_x")).unwrap() == dev.expected("new_x", 0, x.size));
    assert!(std::fs::read(cm.join("new_y")).unwrap() == dev.expected("new_y", 0, y.size));
    assert_alive(&mut m, "after the reformat");
    let out = m.output();
    assert!(
        out.contains("replayed from scratch") && out.to_lowercase().contains("re-formatted"),
        "no log line explains the new tree:\n{out}"
    );
    drop(held);
    drop(m);
}

#[test]
fn a_zeroed_log_stops_serving_with_eio_and_says_why() {
    if !prereq::root_and_fuse("a_zeroed_log_stops_serving...") {
        return;
    }
    let mut dev = StandIn::create(4 * GIB).unwrap();
    dev.add_file("f", 3 * MIB, AllocPolicy::Contiguous).unwrap();
    let (mut m, cm) = mount(&dev, "client", Uuid::new_v4());
    assert!(std::fs::read(cm.join("f")).unwrap() == dev.expected("f", 0, 3 * MIB));
    let held = std::fs::File::open(cm.join("f")).unwrap();
    let map = dev.map().unwrap();
    map.fill(LOG_OFFSET, (8 * MIB) as usize, 0).unwrap();
    map.flush(LOG_OFFSET, (8 * MIB) as usize).unwrap();
    let stopped = wait_for(
        Duration::from_secs(3),
        || matches!(std::fs::read(cm.join("f")), Err(e) if errno(&e) == libc::EIO),
    );
    assert!(stopped, "f still served after the log was zeroed");
    let mut buf = [0u8; 16];
    let e = held.read_exact_at(&mut buf, 0).unwrap_err();
    assert_eq!(errno(&e), libc::EIO, "held descriptor: {e}");
    let e = std::fs::read_dir(&cm).map(|_| ()).unwrap_err();
    assert_eq!(errno(&e), libc::EIO, "readdir of the root: {e}");
    assert_alive(&mut m, "zeroed log");
    let out = m.output();
    assert!(
        out.contains("stopped serving") && out.contains("no famfs log"),
        "no clear log line:\n{out}"
    );
    drop(held);
    drop(m);
}

#[test]
fn next_index_going_backwards_is_detected() {
    if !prereq::root_and_fuse("next_index_going_backwards...") {
        return;
    }
    let mut dev = StandIn::create(4 * GIB).unwrap();
    for name in ["one", "two", "three"] {
        dev.add_file(name, 2 * MIB, AllocPolicy::Contiguous)
            .unwrap();
    }
    let (mut m, cm) = mount(&dev, "client", Uuid::new_v4());
    assert_eq!(names(&cm), [".meta", "one", "three", "two"]);
    // Rewind the header counters to one entry.
    let map = dev.map().unwrap();
    let mut counters = [0u8; 16];
    counters[..8].copy_from_slice(&1u64.to_le_bytes());
    counters[8..].copy_from_slice(&1u64.to_le_bytes());
    map.write(LOG_OFFSET + COUNTERS_OFFSET, &counters).unwrap();
    map.flush(LOG_OFFSET, 48).unwrap();
    let shrunk = wait_for(Duration::from_secs(3), || names(&cm) == [".meta", "one"]);
    assert!(
        shrunk,
        "the tree still holds entries past next_index: {:?}",
        names(&cm)
    );
    for gone in ["two", "three"] {
        let e = std::fs::read(cm.join(gone)).unwrap_err();
        assert!(
            matches!(errno(&e), libc::ENOENT | libc::ESTALE),
            "{gone}: {e}"
        );
    }
    assert!(std::fs::read(cm.join("one")).unwrap() == dev.expected("one", 0, 2 * MIB));
    assert_alive(&mut m, "rewound log");
    let out = m.output();
    assert!(
        out.contains("went backwards"),
        "no log line says the log went backwards:\n{out}"
    );
    drop(m);
}

// ------------------------------------------------------------------------------------------
// utimes: famfs has no timestamps to store

fn touch(args: &[&str], path: &Path) -> (bool, String) {
    let out = Command::new("touch").args(args).arg(path).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn utimes_is_refused_on_the_master_and_on_clients() {
    if !prereq::root_and_fuse("utimes_is_refused...") {
        return;
    }
    let mut dev = StandIn::create(4 * GIB).unwrap();
    dev.add_file("f", MIB, AllocPolicy::Contiguous).unwrap();
    let (master, mm) = mount(&dev, "master", dev.master_uuid());
    let (client, cm) = mount(&dev, "client", Uuid::new_v4());
    for (mpt, errno_want, text) in [
        (&mm, libc::EPERM, "Operation not permitted"),
        (&cm, libc::EROFS, "Read-only file system"),
    ] {
        let f = mpt.join("f");
        let before = std::fs::metadata(&f).unwrap();
        // touch (the current time), touch -c (no open first), touch -d (a given time).
        for args in [&[][..], &["-c"][..], &["-d", "2001-02-03 04:05:06"][..]] {
            let (ok, err) = touch(args, &f);
            assert!(!ok, "touch {args:?} {} succeeded", f.display());
            assert!(err.contains(text), "touch {args:?}: {err}");
        }
        let ts = nix::sys::time::TimeSpec::new(1_000_000_000, 0);
        let e = nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &f,
            &ts,
            &ts,
            nix::sys::stat::UtimensatFlags::FollowSymlink,
        )
        .unwrap_err();
        assert_eq!(e as i32, errno_want, "utimensat on {}", f.display());
        let after = std::fs::metadata(&f).unwrap();
        assert_eq!(
            (after.mtime(), after.atime()),
            (before.mtime(), before.atime())
        );
        // Copying the times of another file (what `cp -p`, `rsync -t` and `tar x` do after
        // the data) gets the same clear error.
        let src = dev.dir().join("src");
        std::fs::write(&src, b"x").unwrap();
        let (ok, err) = touch(&["-r", src.to_str().unwrap()], &f);
        assert!(!ok && err.contains(text), "touch -r: {err}");
    }
    drop(client);
    drop(master);
}
