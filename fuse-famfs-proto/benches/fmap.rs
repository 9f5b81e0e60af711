//! fmap micro-benchmarks: build + parse of a 32-strip interleaved fmap, and resolving 1 M random
//! offsets, printed as ns/op against the targets (< 1 µs per build, < 20 ns per resolve) and
//! against baselines measured in the same run (a plain copy of the same bytes; the kernel-style
//! linear walk).
//!
//! Run with `cargo bench -p fuse-famfs-proto`. Each figure is the best of several rounds, to damp
//! noise from other work on the machine.

use std::hint::black_box;
use std::time::Instant;

use fuse_famfs_proto::fmap::{Extent, FileOffset, FileType, InterleavedExtent};
use fuse_famfs_proto::{AbiGeneration, Fmap, FmapMessage, FmapWire};

const MIB: u64 = 1 << 20;
const ROUNDS: usize = 7;

/// Best-of-`ROUNDS` nanoseconds per iteration of `f` run `iters` times.
fn measure(iters: u64, mut f: impl FnMut(u64)) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for i in 0..iters {
            f(i);
        }
        best = best.min(t.elapsed().as_nanos() as f64 / iters as f64);
    }
    best
}

fn verdict(ns: f64, target: f64) -> &'static str {
    if ns < target { "OK" } else { "MISSED" }
}

/// One interleaved extent, 32 strips of 64 MiB, 2 MiB chunks: 2 GiB file, 824 bytes on the wire.
fn interleaved32() -> Fmap {
    let strips = (0..32)
        .map(|i| Extent::new(0, (1 + 64 * i) * 64 * MIB, 64 * MIB))
        .collect();
    Fmap::interleaved(
        32 * 64 * MIB,
        vec![InterleavedExtent {
            chunk_size: 2 * MIB,
            nbytes: 32 * 64 * MIB,
            strips,
        }],
    )
}

/// 32 simple extents of mixed sizes (no power-of-two shortcut).
fn simple32() -> Fmap {
    let exts: Vec<Extent> = (0..32u64)
        .map(|i| Extent::new(0, i * 256 * MIB, (2 + 2 * (i % 5)) * MIB))
        .collect();
    let size = exts.iter().map(|e| e.len).sum();
    Fmap::simple(size, exts)
}

/// xorshift64* offsets below `max`.
fn offsets(n: usize, max: u64) -> Vec<u64> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D) % max
        })
        .collect()
}

fn bench_resolve(name: &str, fmap: &Fmap, offs: &[u64]) {
    let resolver = fmap.resolver();
    let n = offs.len() as u64;
    let fast = measure(1, |_| {
        let mut acc = 0u64;
        for &o in offs {
            let r = black_box(&resolver).resolve(FileOffset(o));
            acc = acc.wrapping_add(r.map_or(0, |r| r.dev_offset.0));
        }
        black_box(acc);
    }) / n as f64;
    let walk = measure(1, |_| {
        let mut acc = 0u64;
        for &o in offs {
            let r = black_box(fmap).resolve(FileOffset(o));
            acc = acc.wrapping_add(r.map_or(0, |r| r.dev_offset.0));
        }
        black_box(acc);
    }) / n as f64;
    // Same answers, or the figures mean nothing.
    for &o in offs.iter().step_by(997) {
        assert_eq!(resolver.resolve(FileOffset(o)), fmap.resolve(FileOffset(o)));
    }
    println!(
        "resolve {name}, {} random offsets: {fast:.1} ns/op (target < 20 ns: {}); \
         baseline kernel-style walk {walk:.1} ns/op, speed-up x{:.1}",
        offs.len(),
        verdict(fast, 20.0),
        walk / fast
    );
}

fn main() {
    let abi_gen = AbiGeneration::V1;
    let fmap = interleaved32();
    let mut buf = [0u8; 4096];
    let ft = FileType::Regular;
    let len = fmap.encode(ft, abi_gen, &mut buf).expect("encode");
    let bytes = buf[..len].to_vec();
    assert_eq!(
        FmapMessage::parse(&bytes, abi_gen).expect("parse").fmap,
        fmap
    );

    let iters = 200_000;
    let build = measure(iters, |_| {
        black_box(
            black_box(&fmap)
                .encode(ft, abi_gen, black_box(&mut buf))
                .ok(),
        );
    });
    let parse = measure(iters, |_| {
        black_box(FmapMessage::parse(black_box(&bytes), abi_gen).ok());
    });
    let both = measure(iters, |_| {
        let n = black_box(&fmap).encode(ft, abi_gen, &mut buf).unwrap_or(0);
        black_box(FmapMessage::parse(black_box(&buf[..n]), abi_gen).ok());
    });
    let mut dst = [0u8; 4096];
    let copy = measure(iters, |_| {
        black_box(&mut dst[..len]).copy_from_slice(black_box(&bytes));
    });
    println!("fmap: 1 interleaved extent x 32 strips, {len} bytes on the wire");
    println!(
        "fmap build:         {build:.0} ns/op (target < 1000 ns: {}); baseline copy of the same \
         bytes {copy:.0} ns/op, ratio x{:.1}",
        verdict(build, 1000.0),
        build / copy.max(0.001)
    );
    println!("fmap parse+validate: {parse:.0} ns/op (allocates the extent lists)");
    println!(
        "fmap build + parse: {both:.0} ns/op (target < 1000 ns: {})",
        verdict(both, 1000.0)
    );

    let offs = offsets(1_000_000, fmap.file_size);
    bench_resolve("interleaved 32 strips", &fmap, &offs);
    let s = simple32();
    let offs = offsets(1_000_000, s.file_size);
    bench_resolve("simple 32 extents", &s, &offs);
}
