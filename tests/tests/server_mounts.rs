//! `famfs_fused` on real FUSE mounts of stand-in devices: refusing corrupt devices without leaving
//! a mount behind, skipping hostile log entries, dying (SIGKILL) and stopping (SIGTERM) cleanly,
//! and showing new files — appended by a master through `MPT/.meta/.log` — at once on the master
//! and within the poll interval on a client mount of the same device.
//!
//! Needs root and /dev/fuse: under `CI=true` a missing prerequisite fails, otherwise the tests
//! skip loudly. The daemon binary is `$FAMFS_FUSED` or built on first use
//! (see `famfs_tests::fused`).

use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use famfs_fsdev::FileMedia;
use famfs_log::alloc::AllocPolicy;
use famfs_log::layout::LOG_OFFSET;
use famfs_log::superblock::Superblock;
use famfs_log::{Famfs, OpenOptions};
use famfs_tests::fused::{
    FusedMount, famfs_cli, is_famfs_mounted, is_mounted, names, run_expecting_exit,
};
use famfs_tests::standin::{FILE_ATTR, INTERLEAVE_3X2M, StandIn, raw_file_entry};
use famfs_tests::{pattern, prereq};
use nix::sys::signal::Signal;
use uuid::Uuid;

const MIB: u64 = 1 << 20;

fn uuid_arg(u: Uuid) -> String {
    u.to_string()
}

// ------------------------------------------------------------------------------------------
// Corrupt devices

fn assert_refused(dev: &StandIn, what: &str, want_in_message: &[&str]) {
    let mpt = dev.mountpoint(&format!("mnt-{}", what.replace(' ', "-")));
    let (status, out) = run_expecting_exit(
        dev.path(),
        &mpt,
        &["--system-uuid", &uuid_arg(dev.master_uuid())],
        Duration::from_secs(15),
    )
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(!status.success(), "{what}: famfs_fused succeeded:\n{out}");
    assert_eq!(
        status.code(),
        Some(1),
        "{what}: exit status {status}:\n{out}"
    );
    let lower = out.to_lowercase();
    assert!(
        lower.contains("famfs_fused:") && want_in_message.iter().any(|w| lower.contains(w)),
        "{what}: unclear message (want one of {want_in_message:?}):\n{out}"
    );
    assert!(
        lower.contains(
            &dev.path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_lowercase()
        ),
        "{what}: message does not name the device:\n{out}"
    );
    // Said once: no clause of the error chain repeated.
    let line = out
        .lines()
        .find(|l| l.starts_with("famfs_fused:"))
        .unwrap_or_else(|| panic!("{what}: no error line:\n{out}"));
    let clauses: Vec<&str> = line.split(": ").collect();
    for (i, c) in clauses.iter().enumerate() {
        assert!(
            !clauses[i + 1..].contains(c),
            "{what}: {c:?} repeated in the message:\n{line}"
        );
    }
    assert!(
        !is_mounted(&mpt),
        "{what}: something is mounted at {}",
        mpt.display()
    );
    assert!(names(&mpt).is_empty(), "{what}: mount point not empty");
}

#[test]
fn a_corrupt_superblock_is_refused_and_nothing_is_mounted() {
    if !prereq::root_and_fuse("a_corrupt_superblock_is_refused...") {
        return;
    }
    let dev = StandIn::create(4 << 30).unwrap();
    // A flipped bit inside the CRC-covered part (the log length field).
    dev.corrupt(24, 0x10).unwrap();
    assert_refused(&dev, "superblock crc", &["superblock", "crc"]);
    // No superblock at all (magic gone).
    dev.corrupt(24, 0x10).unwrap();
    dev.corrupt(0, 0xff).unwrap();
    assert_refused(
        &dev,
        "superblock magic",
        &["superblock", "magic", "not a famfs"],
    );
}

#[test]
fn a_corrupt_log_header_is_refused_and_nothing_is_mounted() {
    if !prereq::root_and_fuse("a_corrupt_log_header_is_refused...") {
        return;
    }
    let mut dev = StandIn::create(4 << 30).unwrap();
    dev.add_file("f", MIB, AllocPolicy::Contiguous).unwrap();
    dev.corrupt(LOG_OFFSET, 0x01).unwrap();
    assert_refused(&dev, "log magic", &["log"]);
    dev.corrupt(LOG_OFFSET, 0x01).unwrap();
    dev.corrupt(LOG_OFFSET + 9, 0x40).unwrap();
    assert_refused(&dev, "log header crc", &["log"]);
    dev.corrupt(LOG_OFFSET + 9, 0x40).unwrap();
    // next_index (not CRC-protected) pointing past the end of the log.
    let map = dev.map().unwrap();
    let mut counters = [0u8; 16];
    map.read(LOG_OFFSET + 32, &mut counters).unwrap();
    let mut bad = counters;
    bad[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    map.write(LOG_OFFSET + 32, &bad).unwrap();
    assert_refused(&dev, "log next_index", &["log", "next_index"]);
    map.write(LOG_OFFSET + 32, &counters).unwrap();
    // Repaired: it mounts again.
    let mpt = dev.mountpoint("mnt-ok");
    let m = FusedMount::start(
        dev.path(),
        &mpt,
        &["--system-uuid", &uuid_arg(dev.master_uuid())],
    )
    .unwrap();
    assert_eq!(names(&mpt), [".meta", "f"]);
    drop(m);
}

// ------------------------------------------------------------------------------------------
// Hostile log entries

#[test]
fn hostile_log_entries_are_skipped_with_a_warning_and_never_served() {
    if !prereq::root_and_fuse("hostile_log_entries_are_skipped...") {
        return;
    }
    let mut dev = StandIn::create(4 << 30).unwrap();
    let good = dev
        .add_file("good", 3 * MIB + 1, AllocPolicy::Contiguous)
        .unwrap();
    let fuse_famfs_proto::fmap::FmapKind::Simple(exts) = &good.fmap.kind else {
        panic!("contiguous file with interleaved map");
    };
    let (good_off, good_len) = (exts[0].offset, exts[0].len);
    let size = dev.size();
    // (what, stored path, one extent)
    let one_gib = (1u64 << 30, 2 * MIB);
    let hostile: [(&str, &[u8], (u64, u64)); 8] = [
        ("dotdot", b"../escape", one_gib),
        ("inner dotdot", b"x/../../escape2", one_gib),
        ("dot", b"./dotted", one_gib),
        ("absolute", b"/abs", one_gib),
        ("overlap", b"overlap", (good_off, good_len)),
        ("past the device", b"pastdev", (size - 2 * MIB, 4 * MIB)),
        ("far past the device", b"farpast", (size * 4, 2 * MIB)),
        ("in the log", b"metasteal", (0, 4 * MIB)),
    ];
    for (what, path, ext) in hostile {
        dev.append_raw(|i| raw_file_entry(i, path, MIB, &[ext]))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
    }
    let after = dev.add_file("after", MIB + 7, INTERLEAVE_3X2M).unwrap();
    let mpt = dev.mountpoint("mnt");
    let m = FusedMount::start(
        dev.path(),
        &mpt,
        &["--system-uuid", &uuid_arg(dev.master_uuid())],
    )
    .unwrap();
    // Only the good files; nothing outside the file system.
    assert_eq!(names(&mpt), [".meta", "after", "good"]);
    assert_eq!(
        names(dev.dir())
            .iter()
            .filter(|n| n.contains("escape"))
            .count(),
        0
    );
    for name in [
        "overlap",
        "pastdev",
        "farpast",
        "metasteal",
        "escape",
        "dotted",
        "abs",
    ] {
        let e = std::fs::metadata(mpt.join(name)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{name}: {e}");
    }
    // The good files are intact and readable.
    assert!(std::fs::read(mpt.join("good")).unwrap() == dev.expected("good", 0, good.size));
    assert!(std::fs::read(mpt.join("after")).unwrap() == dev.expected("after", 0, after.size));
    // One warning per skipped entry, naming it.
    let out = m.output();
    for (k, (what, path, _)) in hostile.iter().enumerate() {
        let shown = String::from_utf8_lossy(path);
        let index = k + 1; // entry 0 is "good"
        assert!(
            out.contains(&format!("log entry {index}")) && out.to_lowercase().contains("warn"),
            "{what} ({shown}): no warning for entry {index}:\n{out}"
        );
    }
    // A hostile entry appended while mounted is skipped too; the good one after it appears.
    dev.append_raw(|i| raw_file_entry(i, b"../late", MIB, &[(2 << 30, 2 * MIB)]))
        .unwrap();
    dev.append_raw(|i| raw_file_entry(i, b"late_overlap", MIB, &[(good_off, 2 * MIB)]))
        .unwrap();
    let late = dev
        .add_file("late_good", 2 * MIB, AllocPolicy::Contiguous)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !names(&mpt).contains(&"late_good".to_string()) {
        assert!(Instant::now() < deadline, "late_good never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(names(&mpt), [".meta", "after", "good", "late_good"]);
    assert!(
        std::fs::read(mpt.join("late_good")).unwrap() == dev.expected("late_good", 0, late.size)
    );
    assert!(std::fs::metadata(mpt.join("late_overlap")).is_err());
    drop(m);
}

// ------------------------------------------------------------------------------------------
// Dying and stopping

fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Option<std::process::ExitStatus> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// With FUSE over io_uring the kernel tears the connection down asynchronously after the
/// daemon dies (the rings go away in a kernel worker, ~10 ms here): a request made in that
/// window fails with ECONNABORTED or ECANCELED instead of ENOTCONN. Waits (at most 2 s) until
/// the connection is aborted, so the assertions below see the steady state on either
/// transport. Nothing to wait for on /dev/fuse.
fn settle_after_kill(mpt: &Path) {
    if famfs_tests::knobs::transport_from_env() != Some(famfs_server::Transport::Uring) {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    for i in 0.. {
        let e = std::fs::metadata(mpt.join(format!("settle-probe-{i}"))).unwrap_err();
        match e.raw_os_error() {
            Some(libc::ENOTCONN) => return,
            Some(libc::ECONNABORTED | libc::ECANCELED) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            _ => panic!("after SIGKILL: {e}"),
        }
    }
}

#[test]
fn sigkill_leaves_enotconn_no_hung_process_and_umount_l_cleans_up() {
    if !prereq::root_and_fuse("sigkill_leaves_enotconn...") {
        return;
    }
    let mut dev = StandIn::create(4 << 30).unwrap();
    dev.add_file("f", 5 * MIB, AllocPolicy::Contiguous).unwrap();
    let mpt = dev.mountpoint("mnt");
    let mut m = FusedMount::start(
        dev.path(),
        &mpt,
        &["--system-uuid", &uuid_arg(dev.master_uuid())],
    )
    .unwrap();
    // A reader holding the file open when the daemon dies.
    let held = std::fs::File::open(mpt.join("f")).unwrap();
    m.signal(Signal::SIGKILL).unwrap();
    let st = m
        .wait_exit(Duration::from_secs(5))
        .expect("daemon gone after SIGKILL");
    assert!(!st.success());
    settle_after_kill(&mpt);
    // The mount is still there but dead: ENOTCONN, never a hang.
    assert!(is_mounted(&mpt), "a killed daemon cannot unmount");
    // (Names and attributes cached within the entry timeout may still be answered by the
    // kernel; anything that needs the daemon fails.)
    let e = std::fs::metadata(mpt.join("not-cached")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN), "{e}");
    let mut buf = [0u8; 16];
    let e = held.read_at(&mut buf, 0).unwrap_err();
    assert_eq!(
        e.raw_os_error(),
        Some(libc::ENOTCONN),
        "read on a held fd: {e}"
    );
    for (what, arg) in [
        ("ls", mpt.clone()),
        ("cat", mpt.join("f")),
        ("stat", mpt.join("uncached")),
    ] {
        let st = run_with_timeout(Command::new(what).arg(&arg), Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{what} on the dead mount hung"));
        assert!(!st.success(), "{what} succeeded on a dead mount");
    }
    drop(held);
    // umount -l detaches it.
    let st = Command::new("umount").arg("-l").arg(&mpt).status().unwrap();
    assert!(st.success(), "umount -l failed");
    assert!(!is_mounted(&mpt));
    assert!(names(&mpt).is_empty(), "mount point usable and empty again");
    // It can be mounted again; killed again, `famfs umount` cleans up too.
    let mut m2 = FusedMount::start(
        dev.path(),
        &mpt,
        &["--system-uuid", &uuid_arg(dev.master_uuid())],
    )
    .unwrap();
    assert!(std::fs::read(mpt.join("f")).unwrap() == dev.expected("f", 0, 5 * MIB));
    m2.signal(Signal::SIGKILL).unwrap();
    m2.wait_exit(Duration::from_secs(5)).expect("daemon gone");
    settle_after_kill(&mpt);
    let e = std::fs::metadata(mpt.join("uncached")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN), "{e}");
    let out = Command::new(famfs_cli())
        .arg("umount")
        .arg(&mpt)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "famfs umount of a dead mount: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!is_mounted(&mpt), "still mounted after famfs umount");
    assert!(names(&mpt).is_empty());
}

#[test]
fn sigterm_unmounts_and_exits_zero_even_with_a_file_open() {
    if !prereq::root_and_fuse("sigterm_unmounts_and_exits_zero...") {
        return;
    }
    let mut dev = StandIn::create(4 << 30).unwrap();
    dev.add_file("f", 3 * MIB, AllocPolicy::Contiguous).unwrap();
    let mpt = dev.mountpoint("mnt");
    for (sig, busy) in [
        (Signal::SIGTERM, false),
        (Signal::SIGINT, false),
        (Signal::SIGTERM, true),
    ] {
        let mut m = FusedMount::start(
            dev.path(),
            &mpt,
            &["--system-uuid", &uuid_arg(dev.master_uuid())],
        )
        .unwrap();
        let held = busy.then(|| std::fs::File::open(mpt.join("f")).unwrap());
        m.signal(sig).unwrap();
        if let Some(f) = held {
            // Detached at once; the open file keeps working until it is closed.
            let deadline = Instant::now() + Duration::from_secs(5);
            while is_mounted(&mpt) {
                assert!(Instant::now() < deadline, "still mounted after {sig}");
                std::thread::sleep(Duration::from_millis(10));
            }
            let mut buf = vec![0u8; 4096];
            f.read_exact_at(&mut buf, MIB).unwrap();
            assert_eq!(buf, dev.expected("f", MIB, 4096));
            assert!(m.try_wait().is_none(), "daemon left while a file was open");
        }
        let st = m
            .wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("daemon still running after {sig} (busy {busy})"));
        assert!(st.success(), "{sig}: exit status {st}:\n{}", m.output());
        assert!(!is_mounted(&mpt), "{sig}: still mounted");
    }
}

// ------------------------------------------------------------------------------------------
// New files: master through .meta/.log, client by polling

/// Opens the file system through the mounted meta files, as the CLI does in mounted mode.
fn open_meta(mpt: &Path, me: Uuid) -> Famfs<FileMedia> {
    let sb = FileMedia::open(mpt.join(".meta/.superblock"), false).unwrap();
    let log = FileMedia::open(mpt.join(".meta/.log"), true).unwrap();
    Famfs::open(
        Superblock::read(&sb).unwrap(),
        log,
        OpenOptions {
            system_uuid: Some(me),
            ..Default::default()
        },
    )
    .unwrap()
}

/// Creates `path` through the meta files and writes its pattern through the mount.
fn create_through_mount(fs: &mut Famfs<FileMedia>, mpt: &Path, path: &str, size: u64, seed: u64) {
    {
        let mut w = fs.writer().unwrap();
        w.create(Path::new(path), size, FILE_ATTR, &AllocPolicy::Contiguous)
            .unwrap();
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(mpt.join(path))
        .unwrap_or_else(|e| panic!("{path} not visible right after the append: {e}"));
    f.write_all_at(&pattern::bytes(seed, 0, size as usize), 0)
        .unwrap();
}

#[test]
fn a_master_appending_through_meta_log_sees_the_file_at_once() {
    if !prereq::root_and_fuse("a_master_appending_through_meta_log...") {
        return;
    }
    let dev = StandIn::create(4 << 30).unwrap();
    let mpt = dev.mountpoint("mnt");
    // A poll interval far beyond the test: only the synchronous refresh can show the files.
    let m = FusedMount::start(
        dev.path(),
        &mpt,
        &[
            "--system-uuid",
            &uuid_arg(dev.master_uuid()),
            "--poll-ms",
            "600000",
        ],
    )
    .unwrap();
    let mut fs = open_meta(&mpt, dev.master_uuid());
    {
        let mut w = fs.writer().unwrap();
        w.mkdir_p(Path::new("d/e"), famfs_tests::standin::DIR_ATTR)
            .unwrap();
        // READDIR never triggers a refresh, so this shows the append itself refreshed the tree.
        assert!(
            names(&mpt).contains(&"d".to_string()),
            "mkdir not visible at once"
        );
    }
    for (i, size) in [1u64, MIB + 3, 5 * MIB].into_iter().enumerate() {
        let path = format!("d/e/file{i}");
        create_through_mount(&mut fs, &mpt, &path, size, 100 + i as u64);
        let md = std::fs::metadata(mpt.join(&path)).unwrap();
        assert_eq!((md.len(), md.mode() & 0o7777), (size, FILE_ATTR.mode));
        let back = std::fs::read(mpt.join(&path)).unwrap();
        assert!(
            back == pattern::bytes(100 + i as u64, 0, size as usize),
            "{path}"
        );
    }
    assert_eq!(names(&mpt.join("d/e")), ["file0", "file1", "file2"]);
    drop(fs);
    drop(m);
}

#[test]
fn a_client_mount_sees_new_files_within_the_poll_interval() {
    if !prereq::root_and_fuse("a_client_mount_sees_new_files...") {
        return;
    }
    let dev = StandIn::create(4 << 30).unwrap();
    let (mm, cm) = (dev.mountpoint("master"), dev.mountpoint("client"));
    let client_uuid = Uuid::new_v4();
    let master = FusedMount::start(
        dev.path(),
        &mm,
        &["--system-uuid", &uuid_arg(dev.master_uuid())],
    )
    .unwrap();
    let client =
        FusedMount::start(dev.path(), &cm, &["--system-uuid", &uuid_arg(client_uuid)]).unwrap();
    assert!(is_famfs_mounted(&mm) && is_famfs_mounted(&cm));
    assert_eq!(names(&cm), [".meta"]);
    let mut fs = open_meta(&mm, dev.master_uuid());
    let poll = Duration::from_millis(100);
    let slack = Duration::from_millis(400);
    let mut latencies = Vec::new();
    for i in 0..5u64 {
        let name = format!("shared{i}");
        let size = (i + 1) * MIB + i;
        let created = Instant::now();
        create_through_mount(&mut fs, &mm, &name, size, 500 + i);
        // READDIR only: no lookup that could trigger a refresh on the client.
        while !names(&cm).contains(&name) {
            assert!(
                created.elapsed() < poll + slack,
                "{name} not visible on the client after {:?}",
                created.elapsed()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        latencies.push(created.elapsed());
        let back = std::fs::read(cm.join(&name)).unwrap();
        assert!(
            back == pattern::bytes(500 + i, 0, size as usize),
            "{name}: client bytes"
        );
        let e = std::fs::OpenOptions::new()
            .write(true)
            .open(cm.join(&name))
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "client write: {e}");
    }
    prereq::say(&format!(
        "client visibility latencies (poll {poll:?}): {:?}",
        latencies
    ));
    // The client's meta files are read-only, and it is not the master.
    let e = std::fs::OpenOptions::new()
        .write(true)
        .open(cm.join(".meta/.log"))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    drop(fs);
    drop(client);
    drop(master);
}
