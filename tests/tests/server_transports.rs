//! The daemon's transports on real mounts: FUSE over io_uring serves the same file system as
//! the /dev/fuse loop (bytes, attributes, listings, writes in place), and with the `fuse`
//! module parameter `enable_uring` off, `--transport auto` falls back to /dev/fuse with a clear
//! log line while `--transport uring` fails clearly and leaves nothing mounted.
//!
//! The tests set `enable_uring` as root and restore it. They need root, `/dev/fuse` and a
//! kernel with FUSE over io_uring (6.14+); under `CI=true` a missing prerequisite fails.
//! (The other mount tests run over io_uring with `FAMFS_TEST_TRANSPORT=uring`.)

use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use famfs_log::alloc::AllocPolicy;
use famfs_tests::fused::{FusedMount, is_mounted, run_expecting_exit};
use famfs_tests::standin::{FILE_ATTR, INTERLEAVE_3X2M, StandIn};
use famfs_tests::{knobs, prereq};

const MIB: u64 = 1 << 20;

/// The tests set one kernel-wide parameter to different values: one at a time.
static KNOB: Mutex<()> = Mutex::new(());

fn device() -> (StandIn, PathBuf) {
    let mut dev = StandIn::create(8 << 30).unwrap();
    dev.mkdir_p("d/e").unwrap();
    dev.add_file("d/e/plain", 9 * MIB + 77, AllocPolicy::Contiguous)
        .unwrap();
    dev.add_file("striped", 9 * MIB + 77, INTERLEAVE_3X2M)
        .unwrap();
    let mpt = dev.dir().join("mnt");
    std::fs::create_dir_all(&mpt).unwrap();
    (dev, mpt)
}

fn args(dev: &StandIn, transport: &str) -> Vec<String> {
    vec![
        "-v".into(),
        "--transport".into(),
        transport.into(),
        "--system-uuid".into(),
        dev.master_uuid().to_string(),
    ]
}

fn start(dev: &StandIn, mpt: &std::path::Path, transport: &str) -> FusedMount {
    let a = args(dev, transport);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    FusedMount::start(dev.path(), mpt, &a).unwrap()
}

/// What every transport must serve the same way.
fn check_served(dev: &StandIn, m: &FusedMount) {
    let mpt = m.mountpoint();
    let size = 9 * MIB + 77;
    for p in ["d/e/plain", "striped"] {
        let got = std::fs::read(mpt.join(p)).unwrap();
        assert!(got == dev.expected(p, 0, size), "{p}: bytes differ");
        // Reads crossing extent and strip boundaries, and one at the end.
        let f = std::fs::File::open(mpt.join(p)).unwrap();
        for (off, len) in [(2 * MIB - 3, 10u64), (5 * MIB + 1, MIB), (size - 5, 5)] {
            let mut buf = vec![0u8; len as usize];
            f.read_exact_at(&mut buf, off).unwrap();
            assert!(buf == dev.expected(p, off, len), "{p} at {off}");
        }
    }
    let md = std::fs::metadata(mpt.join("d/e/plain")).unwrap();
    assert_eq!(
        (md.len(), md.mode() & 0o7777, md.uid()),
        (size, FILE_ATTR.mode, FILE_ATTR.uid)
    );
    let mut names: Vec<_> = std::fs::read_dir(mpt)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, vec![".meta", "d", "striped"]);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(mpt.join("striped"))
        .unwrap();
    f.write_all_at(b"HELLO", 5 * MIB).unwrap();
    assert!(f.write_all_at(b"x", size).is_err(), "files never grow");
    let back = std::fs::read(mpt.join("striped")).unwrap();
    assert_eq!(&back[(5 * MIB) as usize..(5 * MIB) as usize + 5], b"HELLO");
    assert!(std::fs::create_dir(mpt.join("newdir")).is_err());
}

#[test]
fn io_uring_serves_what_dev_fuse_serves() {
    if !prereq::root_and_fuse("io_uring_serves_what_dev_fuse_serves") {
        return;
    }
    let _one = KNOB.lock().unwrap_or_else(|e| e.into_inner());
    let Some(_on) = knobs::uring_on("io_uring_serves_what_dev_fuse_serves") else {
        return;
    };
    for transport in ["uring", "dev"] {
        let (dev, mpt) = device();
        let m = start(&dev, &mpt, transport);
        check_served(&dev, &m);
        let log = m.output();
        let queues = format!(
            "FUSE over io_uring: {} queues",
            famfs_server::transport::uring::possible_cpus()
        );
        assert_eq!(
            log.contains(&queues),
            transport == "uring",
            "{transport}: want {queues:?} only over io_uring:\n{log}"
        );
        drop(m);
        assert!(!is_mounted(&mpt));
    }
}

/// Root, /dev/fuse, and `enable_uring` held off (one test at a time); `None` after failing
/// (CI) or skipping loudly.
fn uring_off(test: &str) -> Option<(MutexGuard<'static, ()>, knobs::Knob)> {
    if !prereq::root_and_fuse(test) {
        return None;
    }
    let one = KNOB.lock().unwrap_or_else(|e| e.into_inner());
    let Some(off) = knobs::uring_off() else {
        prereq::missing(test, "the fuse module parameter enable_uring (Linux 6.14+)");
        return None;
    };
    Some((one, off))
}

#[test]
fn with_the_module_parameter_off_auto_falls_back_to_dev_fuse_and_says_so() {
    let test = "with_the_module_parameter_off_auto_falls_back...";
    let Some(_off) = uring_off(test) else {
        return;
    };
    let (dev, mpt) = device();
    let m = start(&dev, &mpt, "auto");
    check_served(&dev, &m);
    let log = m.output();
    assert!(
        log.contains(
            "FUSE over io_uring not used: the fuse module parameter enable_uring is off \
             (/sys/module/fuse/parameters/enable_uring); using the /dev/fuse loop"
        ),
        "no clear fallback line:\n{log}"
    );
    assert!(!log.contains("queues, one per CPU"), "{log}");
}

#[test]
fn with_the_module_parameter_off_uring_fails_clearly_and_leaves_nothing_mounted() {
    let test = "with_the_module_parameter_off_uring_fails...";
    let Some(_off) = uring_off(test) else {
        return;
    };
    let (dev, mpt) = device();
    let a = args(&dev, "uring");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (st, out) = run_expecting_exit(dev.path(), &mpt, &a, Duration::from_secs(15)).unwrap();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(
        out.contains("famfs_fused: FUSE session: FUSE over io_uring: the fuse module parameter enable_uring is off"),
        "unclear error:\n{out}"
    );
    assert!(!is_mounted(&mpt), "left mounted:\n{out}");
}
