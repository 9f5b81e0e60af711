//! Throughput of the CLI's data paths, each printed next to a baseline measured in the same run:
//!
//! * pattern generation (`creat -r`, `verify`): [`Pattern::fill`] (8 interleaved lanes) against a
//!   plain sequential xoroshiro128+ loop and against `memset` (memory bandwidth);
//! * `famfs cp --device` of a 1 GiB host file into a stand-in device, fresh and restarted (the
//!   destination already exists), against copying the same file with `std::fs::copy` into a new
//!   file and overwriting an existing file, on the same file system;
//! * `famfs verify --device` against reading the source file once;
//! * `famfs fsck DEV` of a full 8 MiB log (15,420 entries), a whole process, against the
//!   process start of `famfs --version` (target: ≤ 5 ms); both with the installed build
//!   (`scripts/build-release.sh`: release, statically linked; `$FAMFS_CLI` overrides).
//!
//! Run: `cargo bench -p famfs-cli` (set `FAMFS_BENCH_DIR` to pick the file system; default
//! `/dev/shm` when present, so the page cache is not throttled by a disk); `-- fsck`, `-- cp`
//! or `-- pattern` runs one part.

use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use famfs_cli::pattern::{Pattern, Xoroshiro128Plus};

const GIB: u64 = 1 << 30;

fn gbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e9
}

fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed().as_secs_f64())
}

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> f64 {
    (0..n).map(|_| time(&mut f).1).fold(f64::MAX, f64::min)
}

fn bench_pattern() {
    let len = 256usize << 20;
    let mut buf = vec![1u8; len];
    let p = Pattern::new(42);
    let t_fill = best_of(5, || p.fill(0, black_box(&mut buf)));
    let t_seq = best_of(5, || {
        let mut g = Xoroshiro128Plus::seeded(42);
        for w in buf.chunks_exact_mut(4) {
            w.copy_from_slice(&(g.next_u64() as u32).to_le_bytes());
        }
        black_box(&buf);
    });
    let t_memset = best_of(5, || {
        black_box(&mut buf).fill(black_box(7));
    });
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t_par = best_of(5, || {
        std::thread::scope(|s| {
            let per = len / threads / 4 * 4;
            let mut rest: &mut [u8] = &mut buf;
            let mut off = 0u64;
            for i in 0..threads {
                let n = if i + 1 == threads { rest.len() } else { per };
                let (mine, r) = rest.split_at_mut(n);
                rest = r;
                let o = off;
                s.spawn(move || p.fill(o, mine));
                off += n as u64;
            }
        });
    });
    let mut scratch = Vec::new();
    p.fill(0, &mut buf);
    let t_verify = best_of(5, || {
        assert!(p.first_mismatch(0, black_box(&buf), &mut scratch).is_none())
    });
    println!("pattern (256 MiB in memory):");
    println!(
        "  Pattern::fill, 1 thread        {:6.2} GB/s",
        gbps(len as u64, t_fill)
    );
    println!(
        "  Pattern::fill, {threads} threads       {:6.2} GB/s",
        gbps(len as u64, t_par)
    );
    println!(
        "  Pattern::first_mismatch        {:6.2} GB/s",
        gbps(len as u64, t_verify)
    );
    println!(
        "  baseline: sequential generator {:6.2} GB/s  (fill is {:.2}x)",
        gbps(len as u64, t_seq),
        t_seq / t_fill
    );
    println!(
        "  baseline: memset               {:6.2} GB/s  (fill reaches {:.0}% of it)",
        gbps(len as u64, t_memset),
        100.0 * t_memset / t_fill
    );
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn famfs(dir: &Path) -> Command {
    famfs_at(Path::new(env!("CARGO_BIN_EXE_famfs")), dir)
}

fn famfs_at(bin: &Path, dir: &Path) -> Command {
    let mut c = Command::new(bin);
    c.current_dir(dir)
        .env("FAMFS_SYSTEM_UUID", "6a1c4d2e-0000-4000-8000-00000000be4c")
        .env("FAMFS_PROGRESS", "0");
    c
}

fn bench_dir() -> PathBuf {
    let base = std::env::var_os("FAMFS_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            if Path::new("/dev/shm").is_dir() {
                PathBuf::from("/dev/shm")
            } else {
                std::env::temp_dir()
            }
        });
    let d = base.join(format!("famfs-cli-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn bench_cp(dir: &Path) {
    let size = GIB;
    let src = dir.join("src.bin");
    {
        let f = std::fs::File::create(&src).unwrap();
        let mut buf = vec![0u8; 8 << 20];
        let p = Pattern::new(7);
        for i in 0..size / buf.len() as u64 {
            p.fill(i * buf.len() as u64, &mut buf);
            f.write_all_at(&buf, i * buf.len() as u64).unwrap();
        }
    }
    let img = dir.join("dev.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(8 * GIB)
        .unwrap();
    let mkfs = Command::new(env!("CARGO_BIN_EXE_mkfs-famfs"))
        .current_dir(dir)
        .env("FAMFS_SYSTEM_UUID", "6a1c4d2e-0000-4000-8000-00000000be4c")
        .arg(&img)
        .output()
        .unwrap();
    assert!(mkfs.status.success(), "{mkfs:?}");
    let dev = img.to_str().unwrap();
    let s = src.to_str().unwrap();

    // Baselines first (they also warm the source's page cache).
    let t_read = best_of(3, || {
        let f = std::fs::File::open(&src).unwrap();
        let mut buf = vec![0u8; 8 << 20];
        let mut off = 0;
        while off < size {
            off += f.read_at(&mut buf, off).unwrap() as u64;
        }
    });
    let copy1 = dir.join("copy1.bin");
    let (_, t_copy_fresh) = time(|| std::fs::copy(&src, &copy1).unwrap());
    let t_copy_over = best_of(3, || {
        let from = std::fs::File::open(&src).unwrap();
        let to = std::fs::OpenOptions::new()
            .write(true)
            .open(&copy1)
            .unwrap();
        let mut buf = vec![0u8; 8 << 20];
        let mut off = 0;
        while off < size {
            let n = from.read_at(&mut buf, off).unwrap();
            to.write_all_at(&buf[..n], off).unwrap();
            off += n as u64;
        }
    });
    let (_, t_cp_fresh) = time(|| run(famfs(dir).args(["cp", "-d", dev, s, "/big"])));
    let t_cp_restart = best_of(3, || run(famfs(dir).args(["cp", "-d", dev, s, "/big"])));
    let t_cp_mmap = best_of(3, || {
        run(famfs(dir)
            .env("FAMFS_DATA_VIA", "mmap")
            .args(["cp", "-d", dev, s, "/big"]))
    });
    let (_, t_creat_fresh) =
        time(|| run(famfs(dir).args(["creat", "-d", dev, "-s", "1g", "-r", "-S", "5", "/pat"])));
    let t_creat_again = best_of(3, || {
        run(famfs(dir).args(["creat", "-d", dev, "-r", "-S", "5", "/pat"]))
    });
    let t_verify = best_of(3, || {
        run(famfs(dir).args(["verify", "-d", dev, "-S", "5", "/pat"]))
    });
    let t_verify_mmap = best_of(3, || {
        run(famfs(dir)
            .env("FAMFS_DATA_VIA", "mmap")
            .args(["verify", "-d", dev, "-S", "5", "/pat"]))
    });

    println!(
        "1 GiB through the famfs binary (stand-in device in {}):",
        dir.display()
    );
    let row = |what: &str, t: f64, base: &str, tb: f64| {
        println!(
            "  {what:<34} {:6.2} GB/s   {base:<32} {:6.2} GB/s   ratio {:.2}",
            gbps(size, t),
            gbps(size, tb),
            tb / t
        )
    };
    row(
        "famfs cp (fresh destination)",
        t_cp_fresh,
        "std::fs::copy (new file)",
        t_copy_fresh,
    );
    row(
        "famfs cp (restart, same size)",
        t_cp_restart,
        "read+pwrite over a file",
        t_copy_over,
    );
    row(
        "famfs cp (restart, via mapping)",
        t_cp_mmap,
        "read+pwrite over a file",
        t_copy_over,
    );
    row(
        "famfs creat -r (fresh)",
        t_creat_fresh,
        "std::fs::copy (new file)",
        t_copy_fresh,
    );
    row(
        "famfs creat -r (existing file)",
        t_creat_again,
        "read+pwrite over a file",
        t_copy_over,
    );
    row("famfs verify", t_verify, "reading the source once", t_read);
    row(
        "famfs verify (via mapping)",
        t_verify_mmap,
        "reading the source once",
        t_read,
    );
}

/// CPU time (user + system) of this process's waited-for children.
fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given and keeps no pointer to it.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Wall and CPU time of one run of `cmd`, in ms.
fn run_timed(cmd: &mut Command) -> (f64, f64) {
    let (t, c) = (Instant::now(), children_cpu());
    let out = cmd.output().expect("spawn");
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    (t.elapsed().as_secs_f64() * 1e3, (children_cpu() - c) * 1e3)
}

fn median_range(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// Fill the log of stand-in `img` (formatted for `me`) to the last slot with 4 KiB files in
/// directories of 1000.
fn fill_log(img: &Path, me: uuid::Uuid) -> u64 {
    use famfs_fsdev::{Access, DaxDevice};
    use famfs_log::alloc::AllocPolicy;
    use famfs_log::namespace::Attr;
    let dev = DaxDevice::open(img, Access::ReadWrite).unwrap();
    let map = dev.map_all().unwrap();
    let opts = famfs_log::OpenOptions {
        system_uuid: Some(me),
        ..Default::default()
    };
    let mut fs = famfs_log::Famfs::open_device(&map, opts).unwrap();
    let mut w = fs.writer().unwrap();
    let slots = w.famfs().header().slots();
    let a = Attr {
        mode: 0o644,
        uid: 0,
        gid: 0,
    };
    let mut n = w.famfs().header().next_index;
    while n < slots {
        let d = format!("d{:03}", n / 1001);
        w.mkdir(d.as_ref(), a).unwrap();
        n += 1;
        for i in 0..1000.min(slots - n) {
            w.create(
                format!("{d}/f{i:04}").as_ref(),
                4096,
                a,
                &AllocPolicy::Contiguous,
            )
            .unwrap();
            n += 1;
        }
    }
    n
}

/// The `famfs` whose process cost is measured: `$FAMFS_CLI`, else the installed build
/// (`scripts/build-release.sh`: release, statically linked) in `<target>/famfs-bench-bin`.
fn installed_famfs() -> PathBuf {
    if let Some(p) = std::env::var_os("FAMFS_CLI") {
        return p.into();
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo.join("target"), PathBuf::from)
        .join("famfs-bench-bin");
    let out = Command::new(repo.join("scripts/build-release.sh"))
        .arg("-d")
        .arg(&target)
        .args(["-p", "famfs-cli", "--bin", "famfs"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("scripts/build-release.sh");
    assert!(out.status.success(), "building the release famfs failed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("famfs")
}

fn bench_fsck(dir: &Path) {
    let bin = installed_famfs();
    let famfs = |dir: &Path| famfs_at(&bin, dir);
    const UUID: &str = "6a1c4d2e-0000-4000-8000-00000000be4c";
    let img = dir.join("full.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(64 * GIB)
        .unwrap();
    run(famfs(dir).args(["--version"]));
    let mkfs = Command::new(env!("CARGO_BIN_EXE_mkfs-famfs"))
        .env("FAMFS_SYSTEM_UUID", UUID)
        .arg(&img)
        .output()
        .unwrap();
    assert!(mkfs.status.success(), "{mkfs:?}");
    let entries = fill_log(&img, UUID.parse().unwrap());
    let dev = img.to_str().unwrap();
    let (mut fsck, mut start, mut fsck_cpu, mut start_cpu) = (vec![], vec![], vec![], vec![]);
    for _ in 0..31 {
        let (w, c) = run_timed(famfs(dir).args(["--version"]));
        start.push(w);
        start_cpu.push(c);
        let (w, c) = run_timed(famfs(dir).args(["fsck", dev]));
        fsck.push(w);
        fsck_cpu.push(c);
    }
    let show = |what: &str, wall: &[f64], cpu: &[f64]| {
        let (m, lo, hi) = median_range(wall.to_vec());
        let (c, _, _) = median_range(cpu.to_vec());
        println!("  {what:<28} {m:6.2} ms [{lo:5.2}, {hi:6.2}]   CPU {c:5.2} ms");
        m
    };
    println!(
        "famfs fsck of a full 8 MiB log ({entries} entries), whole process, 31 runs ({}):",
        bin.display()
    );
    let f = show("famfs fsck DEV", &fsck, &fsck_cpu);
    let s = show("famfs --version (start)", &start, &start_cpu);
    println!(
        "  fsck beyond process start: {:.2} ms; ratio fsck/start {:.2}; target fsck <= 5 ms: {}",
        f - s,
        f / s,
        if f <= 5.0 { "met" } else { "NOT MET" }
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run a quick check.
    let quick = !std::env::args().any(|a| a == "--bench");
    if quick {
        let mut b = vec![0u8; 64];
        Pattern::new(1).fill(0, &mut b);
        println!("cli bench: quick check only (run with `cargo bench` for figures)");
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |s: &str| args.is_empty() || args.iter().any(|a| s.contains(a.as_str()));
    if want("pattern") {
        bench_pattern();
    }
    let dir = bench_dir();
    if want("fsck") {
        bench_fsck(&dir);
    }
    if want("cp") {
        bench_cp(&dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
