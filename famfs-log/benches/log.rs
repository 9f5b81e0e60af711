//! Log benchmarks (run with `cargo bench -p famfs-log`):
//!
//! * replay of a full 8 MiB log (15,420 entries) and of a full 256 MiB log (493,447 entries),
//!   against a baseline measured in the same run: copying the same bytes out of the mapping and
//!   checking every entry CRC (the floor any replay must pay). Target: 8 MiB replay < 5 ms.
//!   The copy itself is made by the kernel (so a device that shrinks is an error, not SIGBUS);
//!   its cost is shown against a CPU copy of the same bytes.
//! * the look at the log a reader takes on every poll (`has_new_entries`: header and the last
//!   entry replayed, to notice a rewritten log), in µs.
//! * create throughput (files/s) with an empty log and with a nearly full one; the ratio shows
//!   creates are O(1) in log size (target ≈ 1).
//!
//! Every figure is the median of several runs. The device is a memfd mapped shared, the same
//! code path as a real `/dev/dax` mapping.

use std::hint::black_box;
use std::time::{Duration, Instant};

use famfs_fsdev::{DaxDevice, Mapping};
use famfs_log::alloc::AllocPolicy;
use famfs_log::layout::{LOG_ENTRY_SIZE, LOG_OFFSET, crc32, log_slots};
use famfs_log::namespace::Attr;
use famfs_log::{Famfs, MkfsOptions, OffsetMedia, OpenOptions, mkfs};
use uuid::Uuid;

const AU: u64 = 2 << 20;

/// CPU time of this thread (user and system).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

struct Dev {
    map: Mapping,
    me: Uuid,
    _dev: DaxDevice,
}

fn device(log_len: u64, dev_size: u64) -> Dev {
    let meta = LOG_OFFSET + log_len;
    let dev = DaxDevice::memfd("bench", meta + 2 * AU).unwrap();
    let map = dev.map_all().unwrap();
    let me = Uuid::new_v4();
    let mut o = MkfsOptions::new(me, "/dev/dax0.0");
    o.log_len = log_len;
    mkfs(&map, dev_size, &o).unwrap();
    Dev { map, me, _dev: dev }
}

fn open(d: &Dev) -> Famfs<OffsetMedia<&Mapping>> {
    Famfs::open_device(
        &d.map,
        OpenOptions {
            system_uuid: Some(d.me),
            ..Default::default()
        },
    )
    .unwrap()
}

/// Fill the log: one directory per 64 files, files of 1 AU each, until `n` entries are used.
fn fill(d: &Dev, n: u64) {
    let mut fs = open(d);
    let mut w = fs.writer().unwrap();
    let a = Attr {
        mode: 0o755,
        uid: 0,
        gid: 0,
    };
    let mut used = w.famfs().header().next_index;
    let mut dir = 0;
    while used < n {
        let dname = format!("dir{dir:05}");
        w.mkdir(dname.as_ref(), a).unwrap();
        used += 1;
        for f in 0..64 {
            if used >= n {
                break;
            }
            w.create(
                format!("{dname}/file{f:02}.arrow").as_ref(),
                AU,
                a,
                &AllocPolicy::Contiguous,
            )
            .unwrap();
            used += 1;
        }
        dir += 1;
    }
}

fn replay_bench(label: &str, log_len: u64, runs: usize) {
    let slots = log_slots(log_len);
    let d = device(log_len, (slots + 64) * AU * 2);
    let t = Instant::now();
    fill(&d, slots);
    let fill_time = t.elapsed();
    let used = (LOG_OFFSET as usize)..(LOG_OFFSET + 48 + slots * LOG_ENTRY_SIZE as u64) as usize;
    let mut buf = vec![0u8; used.len()];
    let kernel_copy = time(runs, || d.map.read(used.start as u64, &mut buf).unwrap());
    let src = d.map.raw_range(used.start as u64, used.len()).unwrap();
    let cpu_copy = time(runs, || {
        // SAFETY: `src` covers `used.len()` bytes of the live mapping (checked by raw_range),
        // which nobody shrinks during the benchmark; `buf` is as long and ours.
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) }
    });
    let floor = time(runs, || {
        d.map.read(used.start as u64, &mut buf).unwrap();
        buf[48..]
            .chunks_exact(LOG_ENTRY_SIZE)
            .map(|e| crc32(&e[..536]))
            .fold(0u32, |a, c| a ^ c)
    });
    // Time the replay only: the tree is dropped outside the timed region. The CPU time of
    // this thread is shown too: on a busy machine the wall time includes waiting for a CPU.
    let (walls, cpus): (Vec<_>, Vec<_>) = (0..runs)
        .map(|_| {
            let (t, c) = (Instant::now(), thread_cpu());
            let fs = open(&d);
            let e = (t.elapsed(), thread_cpu() - c);
            assert_eq!(fs.state().stats().entries, slots);
            drop(black_box(fs));
            e
        })
        .unzip();
    let (replay, replay_cpu) = (median(walls), median(cpus));
    println!(
        "replay {label}: {slots} entries in {:.3} ms (CPU {:.3} ms, {:.0} ns/entry); baseline \
         copy+CRC {:.3} ms; ratio replay/baseline {:.1}x (log built in {:.1} s)",
        replay.as_secs_f64() * 1e3,
        replay_cpu.as_secs_f64() * 1e3,
        replay.as_nanos() as f64 / slots as f64,
        floor.as_secs_f64() * 1e3,
        replay.as_secs_f64() / floor.as_secs_f64(),
        fill_time.as_secs_f64()
    );
    println!(
        "  copy of the log out of the mapping: by the kernel {:.3} ms, by the CPU {:.3} ms; \
         ratio kernel/CPU {:.2}x",
        kernel_copy.as_secs_f64() * 1e3,
        cpu_copy.as_secs_f64() * 1e3,
        kernel_copy.as_secs_f64() / cpu_copy.as_secs_f64()
    );
    let fs = open(&d);
    let look = time(runs * 50, || fs.has_new_entries().unwrap());
    println!(
        "  a look at the log (header + last entry replayed): {:.2} µs",
        look.as_secs_f64() * 1e6
    );
    if log_len == 8 << 20 {
        let ok = replay < Duration::from_millis(5);
        println!(
            "  target: full 8 MiB log replay < 5 ms: {} ({:.3} ms)",
            if ok { "MET" } else { "NOT MET" },
            replay.as_secs_f64() * 1e3
        );
    }
}

fn create_rate(d: &Dev, n: u64, tag: &str) -> f64 {
    let mut fs = open(d);
    let mut w = fs.writer().unwrap();
    let a = Attr {
        mode: 0o644,
        uid: 0,
        gid: 0,
    };
    w.mkdir(format!("bench-{tag}").as_ref(), a).unwrap();
    let t = Instant::now();
    for i in 0..n {
        w.create(
            format!("bench-{tag}/f{i}").as_ref(),
            AU,
            a,
            &AllocPolicy::Contiguous,
        )
        .unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn create_bench(log_len: u64, n: u64, rounds: usize) {
    let slots = log_slots(log_len);
    let dev_size = (slots + 64) * AU * 2;
    let mut empty = Vec::new();
    let mut full = Vec::new();
    let prefill = slots - n - 1;
    for round in 0..rounds {
        let d = device(log_len, dev_size);
        empty.push(create_rate(&d, n, &format!("e{round}")));
        let d = device(log_len, dev_size);
        fill(&d, prefill);
        full.push(create_rate(&d, n, &format!("f{round}")));
    }
    empty.sort_by(f64::total_cmp);
    full.sort_by(f64::total_cmp);
    let (e, f) = (empty[rounds / 2], full[rounds / 2]);
    println!(
        "create ({} MiB log): {e:.0} files/s with an empty log, {f:.0} files/s with {prefill} of \
         {slots} entries used; ratio full/empty {:.2} (creates are O(1) in log size when ~1)",
        log_len >> 20,
        f / e
    );
}

fn cold_open_bench() {
    // A fresh process pays one replay before its first create (as each CLI call does).
    let log_len = 8 << 20;
    let slots = log_slots(log_len);
    let d = device(log_len, (slots + 64) * AU * 2);
    fill(&d, slots - 10);
    let cold = time(5, || {
        let mut fs = open(&d);
        let w = fs.writer().unwrap();
        w.famfs().header().next_index
    });
    println!(
        "  (open + replay + lock of a nearly full 8 MiB log, paid once per process: {:.3} ms)",
        cold.as_secs_f64() * 1e3
    );
}

fn main() {
    // `cargo bench` passes --bench; a filter argument selects parts.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |s: &str| args.is_empty() || args.iter().any(|a| s.contains(a.as_str()));
    if want("replay8") {
        replay_bench("8 MiB", 8 << 20, 21);
    }
    if want("replay256") {
        replay_bench("256 MiB", 256 << 20, 5);
    }
    if want("create") {
        create_bench(8 << 20, 4000, 7);
        create_bench(256 << 20, 20000, 3);
        cold_open_bench();
    }
}
