//! Mapping access benchmarks (run with `cargo bench -p famfs-fsdev`).
//!
//! Every copy in or out of a device mapping is made by the kernel (`process_vm_readv` /
//! `process_vm_writev` on this process), so that a device that shrinks or goes away is an
//! error instead of SIGBUS. This prints what that costs against a baseline measured in the same
//! run on the same mapping: a plain CPU copy (`memcpy`), which is how the bytes were copied
//! before. Cases: WRITE requests of 4 KiB, 128 KiB and 1 MiB (the daemon's largest), and the
//! 1 MiB reads of a log replay, on a memfd and on a regular-file stand-in.
//!
//! Every figure is the median of several runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use famfs_fsdev::{ALLOC_UNIT, Access, DaxDevice, Mapping};

const MIB: usize = 1 << 20;
/// Bytes moved per measurement.
const TOTAL: usize = 64 * MIB;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Time to move [`TOTAL`] bytes in `block`-byte pieces with `f(offset, block)`.
fn once(block: usize, f: &mut impl FnMut(u64, usize)) -> Duration {
    let t = Instant::now();
    for k in 0..TOTAL / block {
        f((k * block) as u64, block);
    }
    t.elapsed()
}

/// Median times of `a` and `b` over `runs` runs, taken in turns so that a busy machine slows
/// both alike.
fn time2(
    runs: usize,
    block: usize,
    mut a: impl FnMut(u64, usize),
    mut b: impl FnMut(u64, usize),
) -> (Duration, Duration) {
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ta.push(once(block, &mut a));
        tb.push(once(block, &mut b));
    }
    (median(ta), median(tb))
}

fn gib_s(d: Duration) -> f64 {
    TOTAL as f64 / d.as_secs_f64() / (1u64 << 30) as f64
}

fn bench(label: &str, map: &Mapping) {
    let src = vec![0x5au8; MIB];
    let mut dst = vec![0u8; MIB];
    let base = map.raw_range(0, TOTAL).unwrap() as *mut u8;
    // Bring every page in first, so that no case pays for allocating them.
    map.fill(0, TOTAL, 0).unwrap();
    for block in [4096, 128 << 10, MIB] {
        let (kernel, cpu) = time2(
            9,
            block,
            |off, n| map.write(off, &src[..n]).unwrap(),
            |off, n| {
                // SAFETY: `off + n <= TOTAL`, inside the writable mapping (checked by
                // raw_range), which nobody shrinks during the benchmark.
                unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), base.add(off as usize), n) }
            },
        );
        println!(
            "{label}: write {:>4} KiB blocks: kernel {:.2} GiB/s, CPU {:.2} GiB/s; ratio \
             kernel/CPU time {:.2}x ({:.2} µs per block more)",
            block >> 10,
            gib_s(kernel),
            gib_s(cpu),
            kernel.as_secs_f64() / cpu.as_secs_f64(),
            (kernel.as_secs_f64() - cpu.as_secs_f64()) * 1e6 / (TOTAL / block) as f64
        );
    }
    let mut dst2 = vec![0u8; MIB];
    let (kernel, cpu) = time2(
        9,
        MIB,
        |off, n| map.read(off, &mut dst[..n]).unwrap(),
        |off, n| {
            // SAFETY: as above, for reading.
            unsafe { std::ptr::copy_nonoverlapping(base.add(off as usize), dst2.as_mut_ptr(), n) }
        },
    );
    black_box((&dst, &dst2));

    println!(
        "{label}: read 1 MiB blocks (log replay): kernel {:.2} GiB/s, CPU {:.2} GiB/s; ratio \
         kernel/CPU time {:.2}x",
        gib_s(kernel),
        gib_s(cpu),
        kernel.as_secs_f64() / cpu.as_secs_f64()
    );
}

fn main() {
    let size = (TOTAL as u64).max(8 * ALLOC_UNIT);
    let memfd = DaxDevice::memfd("bench", size).unwrap();
    bench("memfd", &memfd.map_all().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("standin");
    std::fs::File::create(&p).unwrap().set_len(size).unwrap();
    let file = DaxDevice::open(&p, Access::ReadWrite).unwrap();
    bench("file", &file.map_all().unwrap());
}
