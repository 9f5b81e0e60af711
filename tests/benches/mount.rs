//! Benchmarks of a real famfs mount on the stock-kernel path, against baselines measured in the
//! same run (figures and ratios are printed; nothing is asserted on timing):
//!
//! (a) sequential read of a 1 GiB file through the mount with read(2) (4 MiB, 1 MiB and
//!     `cat`-like 128 KiB buffers) vs memcpy of the same bytes from the device mapping — target
//!     ≥ 50%;
//! (b) `stat` of 10,000 files through the mount (cold: every name looked up by the server) vs
//!     the same tree on tmpfs — target ≥ 50k stats/s; once more with the stat thread and the
//!     server pinned to one CPU, which shows what the cross-CPU wakeups of each round trip cost.
//!
//! The stand-in lives in /dev/shm when there is room (else $TMPDIR) and is first-touched, so
//! both sides read RAM. The server runs in this process ([`InProcessMount`], same code and
//! configuration as `famfs_fused`: 4 workers on cloned channels, 1 s timeouts).
//!
//! `cargo bench -p famfs-tests --bench mount` (root and /dev/fuse). Environment:
//! `FAMFS_BENCH_MIB` (file size, default 1024), `FAMFS_BENCH_FILES` (default 10000),
//! `FAMFS_BENCH_PASSES` (default 3), `FAMFS_BENCH_THREADS` (server workers, default 4),
//! `FAMFS_BENCH_ONLY=read|stat`.

use std::fs::File;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use famfs_fsdev::{Access, DaxDevice};
use famfs_log::alloc::AllocPolicy;
use famfs_server::Config;
use famfs_tests::inproc::InProcessMount;
use famfs_tests::prereq;
use famfs_tests::standin::StandIn;

const MIB: u64 = 1 << 20;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// /dev/shm if it has room for `need` bytes (plus slack), else the temp dir.
fn parent_dir(need: u64) -> PathBuf {
    let shm = Path::new("/dev/shm");
    if let Ok(st) = nix::sys::statvfs::statvfs(shm) {
        let free = st.blocks_available() * st.fragment_size();
        if free > need + (2 << 30) {
            return shm.to_path_buf();
        }
    }
    std::env::temp_dir()
}

fn gbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

/// CPU time (user + system) this process has used so far, all threads — the reader and, for
/// in-process mounts, the server's workers.
fn cpu_time() -> Duration {
    let ru = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .expect("getrusage");
    let tv =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, (t.tv_usec() * 1000) as u32);
    tv(ru.user_time()) + tv(ru.system_time())
}

/// Timings of `passes` runs of `f` after one warm-up run.
struct Runs {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
    out: u64,
}

impl Runs {
    fn best(&self) -> Duration {
        self.wall.iter().min().copied().unwrap_or_default()
    }
    fn median(&self) -> Duration {
        let mut w = self.wall.clone();
        w.sort();
        w[w.len() / 2]
    }
    fn cpu_median(&self) -> Duration {
        let mut c = self.cpu.clone();
        c.sort();
        c[c.len() / 2]
    }
}

fn measure(passes: u64, mut f: impl FnMut() -> u64) -> Runs {
    let mut out = f();
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..passes {
        let (t, c) = (Instant::now(), cpu_time());
        out = f();
        wall.push(t.elapsed());
        cpu.push(cpu_time().saturating_sub(c));
    }
    Runs { wall, cpu, out }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "meets target" } else { "BELOW TARGET" }
}

fn mount_config(dev: &StandIn) -> Config {
    let mut cfg = Config::new(dev.path());
    cfg.system_uuid = Some(dev.master_uuid());
    cfg.threads = env_u64("FAMFS_BENCH_THREADS", 4) as usize;
    cfg
}

fn bench_read(passes: u64) {
    let size = env_u64("FAMFS_BENCH_MIB", 1024) * MIB;
    let dev_size = (size + (1 << 30)).next_multiple_of(1 << 30).max(4 << 30);
    let parent = parent_dir(size);
    println!(
        "\n== (a) sequential read of a {} MiB file (stand-in in {}) ==",
        size / MIB,
        parent.display()
    );
    let t = Instant::now();
    let mut dev = StandIn::create_in(&parent, dev_size).expect("stand-in");
    let f = dev
        .add_file("big", size, AllocPolicy::Contiguous)
        .expect("1 GiB file");
    println!(
        "   setup: wrote {} MiB in {:.1} s",
        size / MIB,
        t.elapsed().as_secs_f64()
    );
    let fuse_famfs_proto::fmap::FmapKind::Simple(exts) = &f.fmap.kind else {
        panic!("contiguous file with an interleaved map");
    };
    let ext = exts[0];

    // Baseline: memcpy of the file's bytes from a read-only mapping of the device into a
    // 4 MiB buffer (what read(2) must at least do), pages first touched by the warm-up pass.
    let map = DaxDevice::open(dev.path(), Access::ReadOnly)
        .and_then(|d| d.map_all())
        .expect("map device");
    let mut buf = vec![0u8; 4 << 20];
    let runs = measure(passes, || {
        let mut off = 0;
        while off < size {
            let n = (size - off).min(buf.len() as u64) as usize;
            map.read(ext.offset + off, &mut buf[..n])
                .expect("read mapping");
            black_box(&buf);
            off += n as u64;
        }
        off
    });
    let base = gbps(size, runs.best());
    let base_cpu = gbps(size, runs.cpu_median());
    println!(
        "   memcpy from the device mapping, 4 MiB buffer:  best {base:6.2} GB/s  median {:6.2} GB/s  {base_cpu:6.2} GB per CPU-second  (baseline)",
        gbps(size, runs.median())
    );
    drop(map);

    let mpt = dev.dir().join("mnt");
    std::fs::create_dir_all(&mpt).unwrap();
    let m = InProcessMount::start(mount_config(&dev), &mpt).expect("mount");
    let path = mpt.join("big");
    let file = File::open(&path).expect("open through the mount");
    // Check the bytes once (the benchmark must read the right thing).
    let mut check = vec![0u8; 1 << 20];
    file.read_exact_at(&mut check, size / 2).unwrap();
    assert!(
        check == dev.expected("big", size / 2, 1 << 20),
        "bytes through the mount differ"
    );
    for (label, bufsize) in [
        ("read(2), 4 MiB buffer ", 4 << 20),
        ("read(2), 1 MiB buffer ", 1 << 20),
        ("read(2), 128 KiB (cat)", 128 << 10),
    ] {
        let mut buf = vec![0u8; bufsize];
        let runs = measure(passes, || {
            let mut off = 0u64;
            loop {
                let n = file.read_at(&mut buf, off).expect("read through the mount");
                if n == 0 {
                    break;
                }
                black_box(&buf[..n]);
                off += n as u64;
            }
            off
        });
        assert_eq!(runs.out, size, "short read through the mount");
        let r = gbps(size, runs.best());
        let cpu = gbps(size, runs.cpu_median());
        println!(
            "   {label} via the mount: best {r:6.2} GB/s  median {:6.2} GB/s  {cpu:6.2} GB per CPU-second\n   {:>24}  {:5.1}% of memcpy (best/best; target >= 50%: {}), CPU cost {:4.1}x memcpy's",
            gbps(size, runs.median()),
            "",
            100.0 * r / base,
            verdict(r / base >= 0.5),
            base_cpu / cpu
        );
    }
    drop(file);

    // For information: mmap through the mount (FUSE_DIRECT_IO_ALLOW_MMAP). The first pass
    // faults the pages in with READ requests; later passes read the kernel's page cache.
    match DaxDevice::open(&path, Access::ReadOnly).and_then(|d| d.map_all()) {
        Ok(fm) => {
            let pass = |buf: &mut [u8]| {
                let mut off = 0;
                while off < size {
                    let n = (size - off).min(buf.len() as u64) as usize;
                    fm.read(off, &mut buf[..n]).expect("read the mmap");
                    black_box(&buf);
                    off += n as u64;
                }
            };
            let t = Instant::now();
            pass(&mut buf);
            let first = gbps(size, t.elapsed());
            let runs = measure(passes, || {
                pass(&mut buf);
                size
            });
            println!(
                "   mmap via the mount (info): first touch {first:6.2} GB/s, then {:6.2} GB/s from the page cache",
                gbps(size, runs.best())
            );
        }
        Err(e) => println!("   mmap via the mount (info): not possible: {e}"),
    }
    m.stop().expect("unmount");
}

fn stat_all(paths: &[PathBuf], threads: usize) -> u64 {
    std::thread::scope(|s| {
        let chunk = paths.len().div_ceil(threads);
        let hs: Vec<_> = paths
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let mut n = 0u64;
                    for p in part {
                        let md = std::fs::metadata(p).expect("stat");
                        n += u64::from(md.len() > 0);
                    }
                    n
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

/// Restricts this thread (and the threads it creates from now on) to CPU 0; returns the
/// previous affinity.
fn pin_to_cpu0() -> Option<nix::sched::CpuSet> {
    use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
    let me = nix::unistd::Pid::from_raw(0);
    let old = sched_getaffinity(me).ok()?;
    let mut one = CpuSet::new();
    one.set(0).ok()?;
    sched_setaffinity(me, &one).ok()?;
    Some(old)
}

fn bench_stat(passes: u64) {
    let nfiles = env_u64("FAMFS_BENCH_FILES", 10_000);
    let ndirs = nfiles.div_ceil(100);
    let dev_size = (nfiles * 2 * MIB + (2 << 30)).next_multiple_of(1 << 30);
    let parent = parent_dir(1 << 30);
    println!("\n== (b) stat of {nfiles} files in {ndirs} directories ==");
    let t = Instant::now();
    let mut dev = StandIn::create_in(&parent, dev_size).expect("stand-in");
    for d in 0..ndirs {
        dev.mkdir_p(&format!("d{d:03}")).expect("mkdir");
    }
    let rel: Vec<String> = (0..nfiles)
        .map(|i| format!("d{:03}/file{i:05}", i / 100))
        .collect();
    dev.add_files_unwritten(rel.iter().cloned(), 4096)
        .expect("create files");
    println!(
        "   setup: logged {nfiles} files in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Baseline: the same tree of empty files on tmpfs (the kernel alone, no FUSE).
    let base_dir = tempfile::tempdir_in(&parent).unwrap();
    for d in 0..ndirs {
        std::fs::create_dir(base_dir.path().join(format!("d{d:03}"))).unwrap();
    }
    let base_paths: Vec<PathBuf> = rel.iter().map(|r| base_dir.path().join(r)).collect();
    for p in &base_paths {
        File::create(p).unwrap().set_len(4096).unwrap();
    }
    let runs = measure(passes, || stat_all(&base_paths, 1));
    let base = nfiles as f64 / runs.best().as_secs_f64();
    println!("   tmpfs (kernel only), 1 thread:        {base:>8.0} stats/s  (baseline)");

    let mpt = dev.dir().join("mnt");
    std::fs::create_dir_all(&mpt).unwrap();
    let paths: Vec<PathBuf> = rel.iter().map(|r| mpt.join(r)).collect();
    // (stat threads, pin everything to one CPU)
    for (threads, pinned) in [(1usize, false), (2, false), (1, true)] {
        // Cold: a fresh mount per pass, so every name is a LOOKUP answered by the server.
        // Pinned: the stat thread and the server's threads share CPU 0, so a request and its
        // reply wake a thread on the same CPU (no cross-CPU wakeup).
        let saved = pinned.then(pin_to_cpu0).flatten();
        if pinned && saved.is_none() {
            println!("   (cannot pin to CPU 0; skipping the pinned run)");
            continue;
        }
        let mut times = Vec::new();
        for _ in 0..passes {
            let m = InProcessMount::start(mount_config(&dev), &mpt).expect("mount");
            let t = Instant::now();
            let n = stat_all(&paths, threads);
            times.push(t.elapsed());
            assert_eq!(n, nfiles, "every file has its size");
            m.stop().expect("unmount");
        }
        if let Some(set) = saved {
            let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
        }
        times.sort();
        let r = nfiles as f64 / times[0].as_secs_f64();
        let med = nfiles as f64 / times[times.len() / 2].as_secs_f64();
        let label = if pinned {
            "1 thread, one CPU".to_string()
        } else {
            format!("{threads} thread(s)")
        };
        println!(
            "   {:<38}{r:>8.0} stats/s (median {med:.0})  {:5.1}% of tmpfs  (target >= 50k/s: {})",
            format!("famfs mount, cold, {label}:"),
            100.0 * r / base,
            verdict(r >= 50_000.0)
        );
    }
    // Warm: names and attributes cached by the kernel (within the 1 s timeout).
    let m = InProcessMount::start(mount_config(&dev), &mpt).expect("mount");
    stat_all(&paths, 1);
    let t = Instant::now();
    stat_all(&paths, 1);
    let d = t.elapsed();
    let r = nfiles as f64 / d.as_secs_f64();
    println!(
        "   famfs mount, warm (kernel cache):     {r:>8.0} stats/s  {:5.1}% of tmpfs{}",
        100.0 * r / base,
        if d > Duration::from_millis(900) {
            "  (pass longer than the 1 s timeout: partly cold)"
        } else {
            ""
        }
    );
    m.stop().expect("unmount");
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing special: run anyway.
    if !prereq::root_and_fuse("bench mount") {
        return;
    }
    let passes = env_u64("FAMFS_BENCH_PASSES", 3).max(1);
    let only = std::env::var("FAMFS_BENCH_ONLY").unwrap_or_default();
    println!(
        "famfs mount benchmarks (best of {passes} passes after a warm-up; {} CPUs)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if only.is_empty() || only == "read" {
        bench_read(passes);
    }
    if only.is_empty() || only == "stat" {
        bench_stat(passes);
    }
}
