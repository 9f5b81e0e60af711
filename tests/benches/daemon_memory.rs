//! The daemon's heap per file: `FileSystem::open` (the replayed tree and allocator the daemon
//! serves from) on a full 256 MiB log holding 460,000 files, measured with a counting
//! allocator. Target: ≤ 300 bytes per file (the replay sizes its tables from the log header,
//! so they are not left up to twice too large by doubling).
//!
//! Then, as root, the whole `famfs mount` of that log (release binaries, from the command's start
//! until it returns with the mount serving) against the in-process replay (`FileSystem::open`)
//! measured in the same run, rounds taking turns. Target: ≤ 1 s.
//!
//! `cargo bench -p famfs-tests --bench daemon_memory` (a sparse 1 TiB stand-in in /dev/shm, of
//! which the 256 MiB log is written; the mount part needs root and /dev/fuse and is skipped
//! with a message otherwise).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use famfs_fsdev::{Access, DaxDevice};
use famfs_log::alloc::AllocPolicy;
use famfs_log::namespace::Attr;
use famfs_log::{Famfs, MkfsOptions, OpenOptions, mkfs};
use famfs_server::{Config, FileSystem};

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` was allocated by `alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's pointer and layout.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE.fetch_sub(l.size(), Ordering::Relaxed);
            let now = LIVE.fetch_add(new, Ordering::Relaxed) + new;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const FILES: u64 = 460_000;
const PER_DIR: u64 = 1000;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("daemon_memory bench: quick check only (run with `cargo bench` for figures)");
        return;
    }
    let dir = tempfile::tempdir_in(if Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    })
    .unwrap();
    let img = dir.path().join("dax.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    let me = uuid::Uuid::new_v4();
    let t = Instant::now();
    {
        let dev = DaxDevice::open(&img, Access::ReadWrite).unwrap();
        let map = dev.map_all().unwrap();
        let mut o = MkfsOptions::new(me, "/dev/dax0.0");
        o.log_len = 256 << 20;
        mkfs(&map, dev.size(), &o).unwrap();
        let mut fs = Famfs::open_device(
            &map,
            OpenOptions {
                system_uuid: Some(me),
                ..Default::default()
            },
        )
        .unwrap();
        let mut w = fs.writer().unwrap();
        let a = Attr {
            mode: 0o644,
            uid: 0,
            gid: 0,
        };
        for d in 0..FILES / PER_DIR {
            let dname = format!("dir{d:04}");
            w.mkdir(dname.as_ref(), a).unwrap();
            for f in 0..PER_DIR {
                let p = format!("{dname}/file{f:04}.bin");
                w.create(p.as_ref(), 4096, a, &AllocPolicy::Contiguous)
                    .unwrap();
            }
        }
    }
    println!(
        "== daemon heap: {FILES} files in {} directories, 256 MiB log (built in {:.1} s)",
        FILES / PER_DIR,
        t.elapsed().as_secs_f64()
    );
    let mut cfg = Config::new(&img);
    cfg.system_uuid = Some(me);
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let t = Instant::now();
    let fs = FileSystem::open(cfg).unwrap();
    let took = t.elapsed();
    let live = LIVE.load(Ordering::Relaxed) - before;
    let peak = PEAK.load(Ordering::Relaxed) - before;
    assert_eq!(fs.node_count() as u64, FILES + FILES / PER_DIR + 4);
    let per = live as f64 / FILES as f64;
    println!(
        "  live heap after open: {:.1} MiB = {per:.0} bytes per file (peak during the replay \
         {:.1} MiB = {:.0} bytes per file); open took {:.2} s",
        live as f64 / (1 << 20) as f64,
        peak as f64 / (1 << 20) as f64,
        peak as f64 / FILES as f64,
        took.as_secs_f64()
    );
    println!(
        "  target <= 300 bytes per file: {}",
        if per <= 300.0 { "met" } else { "NOT MET" }
    );
    drop(fs);
    mount_time(&img, me);
}

/// `famfs mount` of the full log, whole command, vs one in-process replay, in turns.
fn mount_time(img: &Path, me: uuid::Uuid) {
    if !nix::unistd::Uid::effective().is_root() {
        println!("== famfs mount of the full log: skipped (needs root and /dev/fuse)");
        return;
    }
    let (famfs, fused) = famfs_tests::fused::release_bins();
    let mpt = img.with_file_name("mnt");
    std::fs::create_dir_all(&mpt).unwrap();
    let famfs_cmd = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(&famfs)
            .env("FAMFS_FUSED", &fused)
            .env("FAMFS_SYSTEM_UUID", me.to_string())
            .env("FAMFS_PROGRESS", "0")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "famfs {args:?}: {out:?}");
    };
    let (mut mounts, mut replays) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let t = Instant::now();
        famfs_cmd(&["mount".as_ref(), img.as_os_str(), mpt.as_os_str()]);
        mounts.push(t.elapsed().as_secs_f64());
        famfs_cmd(&["umount".as_ref(), mpt.as_os_str()]);
        let mut cfg = Config::new(img);
        cfg.system_uuid = Some(me);
        let t = Instant::now();
        drop(FileSystem::open(cfg).unwrap());
        replays.push(t.elapsed().as_secs_f64());
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (m, r) = (best(&mounts), best(&replays));
    println!(
        "== famfs mount of the full 256 MiB log: {m:.2} s (rounds {mounts:.2?}); one replay in \
         process {r:.2} s (rounds {replays:.2?}); mount / replay = {:.2}",
        m / r
    );
    println!(
        "  target <= 1 s: {}",
        if m <= 1.0 { "met" } else { "NOT MET" }
    );
}
