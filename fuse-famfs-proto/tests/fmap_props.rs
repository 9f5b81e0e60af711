//! Property tests for fmaps: for random valid fmaps, parse(build(x)) == x, and the resolvers map
//! every byte of the file to a device offset inside exactly one extent, agreeing with a naive
//! reference model written here (it lays chunks out one by one with a write cursor per strip,
//! instead of the div/mod arithmetic of the code under test).

use fuse_famfs_proto::fmap::{
    DevOffset, Extent, FileOffset, FileType, FmapKind, FmapMessage, FmapWire, InterleavedExtent,
    Resolved,
};
use fuse_famfs_proto::{AbiGeneration, Fmap};
use proptest::prelude::*;

const MIB: u64 = 1 << 20;
const AU: u64 = 2 * MIB;

/// A run of file bytes that is contiguous on one device.
#[derive(Debug, Clone, Copy)]
struct Seg {
    file_start: u64,
    len: u64,
    dev: u32,
    dev_off: u64,
}

/// The naive model: every file byte's place, as a list of runs in file order.
fn model(f: &Fmap) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut base = 0u64;
    match &f.kind {
        FmapKind::Simple(exts) => {
            for e in exts {
                segs.push(Seg {
                    file_start: base,
                    len: e.len,
                    dev: e.dev_index,
                    dev_off: e.offset,
                });
                base += e.len;
            }
        }
        FmapKind::Interleaved(ies) => {
            for ie in ies {
                let size = ie.nbytes.min(f.file_size);
                let chunk = ie.chunk_size;
                let mut cursor = vec![0u64; ie.strips.len()];
                let mut strip = 0usize;
                let mut done = 0u64;
                while done < size {
                    let len = chunk.min(size - done);
                    let s = &ie.strips[strip];
                    segs.push(Seg {
                        file_start: base + done,
                        len,
                        dev: s.dev_index,
                        dev_off: s.offset + cursor[strip],
                    });
                    cursor[strip] += chunk;
                    done += len;
                    strip = (strip + 1) % ie.strips.len();
                }
                base += size;
            }
        }
    }
    segs.retain(|s| s.len > 0);
    segs
}

fn model_lookup(segs: &[Seg], off: u64) -> Option<&Seg> {
    segs.iter()
        .find(|s| off >= s.file_start && off < s.file_start + s.len)
}

/// The device extents (simple extents or strips) an fmap owns.
fn device_extents(f: &Fmap) -> Vec<Extent> {
    match &f.kind {
        FmapKind::Simple(e) => e.clone(),
        FmapKind::Interleaved(ies) => ies.iter().flat_map(|i| i.strips.clone()).collect(),
    }
}

/// Checks one resolution against the model and the device extents; returns the checked run.
fn check_at(f: &Fmap, segs: &[Seg], exts: &[Extent], r: Resolved, off: u64) -> (u32, u64, u64) {
    let s = model_lookup(segs, off).unwrap_or_else(|| panic!("model has no byte {off}"));
    assert_eq!(r.dev_index, s.dev, "device at {off}");
    assert_eq!(
        r.dev_offset,
        DevOffset(s.dev_off + (off - s.file_start)),
        "device offset at {off}"
    );
    assert_eq!(
        r.contiguous_len,
        s.file_start + s.len - off,
        "run length at {off}"
    );
    let run = r.contiguous_len.min(f.file_size - off);
    let DevOffset(dev_offset) = r.dev_offset;
    let owners = exts
        .iter()
        .filter(|e| {
            e.len > 0
                && e.dev_index == r.dev_index
                && dev_offset >= e.offset
                && dev_offset + run <= e.offset + e.len
        })
        .count();
    assert_eq!(
        owners, 1,
        "run at file {off} (dev {dev_offset:#x}+{run:#x}) must lie in exactly one extent",
    );
    (r.dev_index, dev_offset, run)
}

/// Walks the whole file run by run (so every byte is covered), probing both resolvers at the
/// start, the end and a pseudo-random middle of each run, and checks no device byte is used
/// twice.
fn check_resolution(f: &Fmap, salt: u64) {
    let segs = model(f);
    let exts = device_extents(f);
    let fast = f.resolver();
    let mut runs = Vec::new();
    let mut off = 0u64;
    while off < f.file_size {
        let walk = f
            .resolve(FileOffset(off))
            .unwrap_or_else(|| panic!("walk: no mapping for {off}"));
        assert_eq!(
            fast.resolve(FileOffset(off)),
            Some(walk),
            "resolver vs walk at {off}"
        );
        let run = check_at(f, &segs, &exts, walk, off);
        let len = run.2;
        for probe in [off + len - 1, off + (salt % len)] {
            let r = fast.resolve(FileOffset(probe)).expect("probe resolves");
            assert_eq!(f.resolve(FileOffset(probe)), Some(r));
            check_at(f, &segs, &exts, r, probe);
            assert_eq!(
                r.dev_offset,
                DevOffset(run.1 + (probe - off)),
                "run is affine at {probe}"
            );
        }
        runs.push(run);
        off += len;
    }
    for past in [f.file_size, f.file_size.saturating_add(1), u64::MAX] {
        assert_eq!(f.resolve(FileOffset(past)), None);
        assert_eq!(fast.resolve(FileOffset(past)), None);
    }
    runs.sort();
    for w in runs.windows(2) {
        let (a, b) = (w[0], w[1]);
        assert!(
            a.0 != b.0 || a.1 + a.2 <= b.1,
            "device bytes used twice: {a:?} {b:?}"
        );
    }
}

fn file_type() -> impl Strategy<Value = FileType> {
    prop_oneof![
        Just(FileType::Regular),
        Just(FileType::Superblock),
        Just(FileType::Log),
        any::<u8>().prop_map(FileType::from),
    ]
}

/// Places `lens` on device 0 without overlap, in random order, with random gaps.
fn place(lens: Vec<u64>, gaps: Vec<u64>, order: Vec<usize>) -> Vec<u64> {
    let mut offsets = vec![0; lens.len()];
    let mut cursor = 0u64;
    for (k, &i) in order.iter().enumerate() {
        cursor += gaps[k % gaps.len()] * AU;
        offsets[i] = cursor;
        cursor += lens[i];
    }
    offsets
}

/// Valid simple fmaps with 1..=max extents (some of length 0, as the kernel allows).
fn simple_fmap(max: usize) -> impl Strategy<Value = FmapMessage> {
    (1..=max)
        .prop_flat_map(|n| {
            (
                proptest::collection::vec(prop_oneof![1 => Just(0u64), 8 => 1u64..=16], n),
                proptest::collection::vec(0u64..4, 1..4),
                Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
                any::<u64>(),
                file_type(),
            )
        })
        .prop_map(|(units, gaps, order, r, ft)| {
            let lens: Vec<u64> = units.iter().map(|u| u * AU).collect();
            let offs = place(lens.clone(), gaps, order);
            let total: u64 = lens.iter().sum();
            let exts = lens
                .iter()
                .zip(offs)
                .map(|(&len, off)| Extent::new(0, off, len))
                .collect();
            FmapMessage {
                file_type: ft,
                fmap: Fmap {
                    file_size: total - r % (total + 1),
                    kind: FmapKind::Simple(exts),
                },
            }
        })
}

/// Valid interleaved fmaps: 1..=4 interleaved extents of 1..=32 strips, chunk sizes 2..8 MiB,
/// strips long enough for the stripe arithmetic (plus slack), within 4096 bytes on the wire.
fn interleaved_fmap() -> impl Strategy<Value = FmapMessage> {
    proptest::collection::vec(
        (
            1usize..=32,
            1u64..=4,
            1u64..=96 * MIB,
            proptest::collection::vec(0u64..3, 32),
        ),
        1..=4,
    )
    .prop_flat_map(|spec| {
        let nstrips: usize = spec.iter().map(|s| s.0).sum();
        (
            Just(spec),
            proptest::collection::vec(0u64..3, 1..4),
            Just((0..nstrips).collect::<Vec<_>>()).prop_shuffle(),
            any::<u64>(),
            file_type(),
        )
    })
    .prop_map(|(spec, gaps, order, r, ft)| {
        let total: u64 = spec.iter().map(|s| s.2).sum();
        // Whole interleaved extents stay addressable: shrink only within the last one.
        let last = spec.last().map_or(0, |s| s.2);
        let file_size = total - r % last;
        let mut lens = Vec::new();
        for &(n, chunk_units, size, ref slack) in &spec {
            let chunk = chunk_units * AU;
            let n = n as u64;
            let nchunks = size.div_ceil(chunk);
            for j in 0..n {
                // Whole chunks of this strip (naively: count k < nchunks with k % n == j).
                let mine = (0..nchunks).filter(|k| k % n == j).count() as u64;
                lens.push(mine * chunk + slack[j as usize] * AU);
            }
        }
        let offs = place(lens.clone(), gaps, order);
        let mut it = lens.into_iter().zip(offs);
        let ies = spec
            .iter()
            .map(|&(n, chunk_units, size, _)| InterleavedExtent {
                chunk_size: chunk_units * AU,
                nbytes: size,
                strips: it
                    .by_ref()
                    .take(n)
                    .map(|(len, off)| Extent::new(0, off, len))
                    .collect(),
            })
            .collect();
        FmapMessage {
            file_type: ft,
            fmap: Fmap {
                file_size,
                kind: FmapKind::Interleaved(ies),
            },
        }
    })
    .prop_filter("fits in 4096 bytes", |m| m.fmap.encoded_len() <= 4096)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn simple_round_trip_and_resolution(m in simple_fmap(32), salt in any::<u64>()) {
        let f = &m.fmap;
        for abi_gen in AbiGeneration::ALL {
            prop_assert_eq!(f.validate(abi_gen), Ok(()));
            let bytes = f.to_bytes(m.file_type, abi_gen).unwrap();
            prop_assert_eq!(bytes.len(), 32 + 24 * f.kind.nextents());
            prop_assert_eq!(FmapMessage::parse(&bytes, abi_gen), Ok(m.clone()));
        }
        prop_assert_eq!(f.check_geometry(), Ok(()));
        check_resolution(f, salt);
    }

    #[test]
    fn dev_simple_beyond_32_extents(m in simple_fmap(120)) {
        let bytes = m.fmap.to_bytes(m.file_type, AbiGeneration::Dev).unwrap();
        prop_assert_eq!(FmapMessage::parse(&bytes, AbiGeneration::Dev), Ok(m.clone()));
        // fmap_size (word 12) is the total length in the dev generation.
        prop_assert_eq!(u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize, bytes.len());
    }

    #[test]
    fn interleaved_round_trip_and_resolution(m in interleaved_fmap(), salt in any::<u64>()) {
        let f = &m.fmap;
        prop_assert_eq!(f.validate(AbiGeneration::V1), Ok(()));
        prop_assert_eq!(f.check_geometry(), Ok(()));
        let bytes = f.to_bytes(m.file_type, AbiGeneration::V1).unwrap();
        prop_assert_eq!(FmapMessage::parse(&bytes, AbiGeneration::V1), Ok(m.clone()));
        check_resolution(f, salt);
    }
}

// ---- arbitrary (mostly invalid) fmaps: validators and resolvers agree with each other ----

fn any_extent() -> impl Strategy<Value = Extent> {
    (
        prop_oneof![4 => Just(0u32), 1 => any::<u32>()],
        prop_oneof![3 => (0u64..64).prop_map(|u| u * AU), 1 => any::<u64>()],
        prop_oneof![3 => (0u64..8).prop_map(|u| u * AU), 1 => any::<u64>()],
    )
        .prop_map(|(d, o, l)| Extent::new(d, o, l))
}

fn any_fmap() -> impl Strategy<Value = FmapMessage> {
    let simple = proptest::collection::vec(any_extent(), 0..40).prop_map(FmapKind::Simple);
    let ie = (
        prop_oneof![3 => (0u32..4).prop_map(|u| u * AU as u32), 1 => any::<u32>()]
            .prop_map(u64::from),
        prop_oneof![3 => (0u64..64).prop_map(|u| u * MIB), 1 => any::<u64>()],
        proptest::collection::vec(any_extent(), 0..36),
    )
        .prop_map(|(chunk_size, nbytes, strips)| InterleavedExtent {
            chunk_size,
            nbytes,
            strips,
        });
    let inter = proptest::collection::vec(ie, 0..4).prop_map(FmapKind::Interleaved);
    (
        prop_oneof![simple, inter],
        prop_oneof![3 => (0u64..128).prop_map(|u| u * MIB), 1 => any::<u64>()],
        file_type(),
    )
        .prop_map(|(kind, file_size, file_type)| FmapMessage {
            file_type,
            fmap: Fmap { file_size, kind },
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Typed validation and byte parsing give the same verdict (and the same error).
    #[test]
    fn validate_matches_parse(m in any_fmap()) {
        for abi_gen in AbiGeneration::ALL {
            let verdict = m.fmap.validate(abi_gen);
            match m.fmap.to_bytes(m.file_type, abi_gen) {
                Ok(bytes) => {
                    let parsed = FmapMessage::parse(&bytes, abi_gen);
                    match (&verdict, &parsed) {
                        (Ok(()), Ok(p)) => prop_assert_eq!(p, &m),
                        (Err(a), Err(b)) => prop_assert_eq!(a, b),
                        _ => prop_assert!(false, "validate {:?} but parse {:?}", verdict, parsed),
                    }
                }
                Err(_) => prop_assert_eq!(verdict.map_err(|e| e.errno()), Err(fuse_famfs_proto::Errno::EIO)),
            }
        }
    }

    /// The fast resolver and the kernel-style walk agree on any fmap, valid or not, and neither
    /// panics.
    #[test]
    fn resolvers_agree_on_anything(m in any_fmap(), offs in proptest::collection::vec(any::<u64>(), 16)) {
        let f = &m.fmap;
        let r = f.resolver();
        let size = f.file_size.max(1);
        for o in offs.iter().flat_map(|&o| [o, o % size, size - 1 - o % size]) {
            prop_assert_eq!(r.resolve(FileOffset(o)), f.resolve(FileOffset(o)), "offset {}", o);
        }
    }
}
