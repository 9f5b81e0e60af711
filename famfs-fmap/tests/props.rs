//! Property tests on small maps, checked byte by byte against a naive model written here: it
//! lays every file byte out one at a time with a write cursor per strip, instead of the
//! div/mod arithmetic, prefix sums and shifts of the code under test.
//!
//! - the fast [`Resolver`] gives exactly the answers of the kernel-style walk
//!   ([`Fmap::resolve`]) on any map, valid or not;
//! - on maps whose geometry checks out, both agree with the model at every byte;
//! - [`InterleavedExtent::capacity`] is the number of bytes the model can place;
//! - [`Fmap::check_geometry`] accepts a striped map exactly when its extents can hold the file.

use famfs_fmap::{
    DevOffset, Extent, FileOffset, Fmap, FmapKind, InterleavedExtent, Resolved, Resolver,
};
use proptest::prelude::*;

/// Where the model puts one file byte: device, device offset, and the last file offset of its
/// run (the same extent and chunk).
type Place = (u32, u64, u64);

/// What the kernel's walk answers for every offset below the file size, byte by byte: `None`
/// where the extents end or an interleaved extent is degenerate (no chunk size or no strips). Like
/// the kernel, it does not check that a strip is long enough.
fn model(f: &Fmap) -> Vec<Option<Place>> {
    let mut out: Vec<Option<Place>> = Vec::new();
    match &f.kind {
        FmapKind::Simple(exts) => {
            for e in exts.iter().filter(|e| e.len > 0) {
                let run_last = out.len() as u64 + e.len - 1;
                for b in 0..e.len {
                    out.push(Some((e.dev_index, e.offset + b, run_last)));
                }
            }
        }
        FmapKind::Interleaved(ies) => {
            for ie in ies {
                let size = ie.nbytes.min(f.file_size);
                if ie.chunk_size == 0 || ie.strips.is_empty() {
                    out.extend((0..size).map(|_| None));
                    continue;
                }
                let base = out.len() as u64;
                let mut cursor = vec![0u64; ie.strips.len()];
                let mut strip = 0usize;
                let mut done = 0u64;
                while done < size {
                    let len = ie.chunk_size.min(size - done);
                    let s = &ie.strips[strip];
                    for b in 0..len {
                        out.push(Some((
                            s.dev_index,
                            s.offset + cursor[strip] + b,
                            base + done + len - 1,
                        )));
                    }
                    cursor[strip] += ie.chunk_size;
                    done += len;
                    strip = (strip + 1) % ie.strips.len();
                }
            }
        }
    }
    out.resize(f.file_size as usize, None);
    out
}

/// Bytes the model can place on an interleaved extent before a chunk runs past its strip.
fn model_capacity(ie: &InterleavedExtent) -> u64 {
    if ie.chunk_size == 0 || ie.strips.is_empty() {
        return 0;
    }
    let mut cursor = vec![0u64; ie.strips.len()];
    let mut total = 0;
    for strip in (0..ie.strips.len()).cycle() {
        let room = ie.strips[strip].len - cursor[strip];
        if room < ie.chunk_size {
            return total + room;
        }
        cursor[strip] += ie.chunk_size;
        total += ie.chunk_size;
    }
    unreachable!()
}

/// Whether device byte `dev_offset` on `dev` lies in one of the map's ranges.
fn inside(f: &Fmap, dev: u32, dev_offset: u64) -> bool {
    f.ranges()
        .any(|e| e.dev_index == dev && dev_offset >= e.offset && dev_offset < e.offset + e.len)
}

fn check_every_byte(f: &Fmap) {
    let fast = Resolver::new(f);
    let places = model(f);
    let geometry_ok = f.check_geometry().is_ok();
    for off in 0..f.file_size + 3 {
        let walk = f.resolve(FileOffset(off));
        assert_eq!(
            fast.resolve(FileOffset(off)),
            walk,
            "resolver vs walk at {off}"
        );
        let want = places
            .get(off as usize)
            .copied()
            .flatten()
            .map(|(dev, dev_off, last)| Resolved {
                dev_index: dev,
                dev_offset: DevOffset(dev_off),
                contiguous_len: last + 1 - off,
            });
        assert_eq!(walk, want, "model at {off}");
        if let (true, Some(r)) = (geometry_ok, walk) {
            assert!(
                inside(f, r.dev_index, r.dev_offset.0),
                "byte {off} resolves outside the map"
            );
            assert!(inside(
                f,
                r.dev_index,
                r.dev_offset.0 + r.contiguous_len.min(f.file_size - off) - 1
            ));
        }
    }
}

fn extent(max_len: u64) -> impl Strategy<Value = Extent> {
    (
        prop_oneof![4 => Just(0u32), 1 => 1u32..3],
        0u64..64,
        0..=max_len,
    )
        .prop_map(|(d, slot, len)| Extent::new(d, slot * 256, len))
}

fn interleaved_extent() -> impl Strategy<Value = InterleavedExtent> {
    (
        prop_oneof![1 => Just(0u64), 8 => 1u64..12],
        0u64..200,
        proptest::collection::vec(extent(48), 0..7),
    )
        .prop_map(|(chunk_size, nbytes, strips)| InterleavedExtent {
            chunk_size,
            nbytes,
            strips,
        })
}

/// Small maps of any shape, valid or not.
fn any_fmap() -> impl Strategy<Value = Fmap> {
    let simple = proptest::collection::vec(extent(96), 0..6).prop_map(FmapKind::Simple);
    let inter =
        proptest::collection::vec(interleaved_extent(), 0..4).prop_map(FmapKind::Interleaved);
    (prop_oneof![simple, inter], 0u64..400).prop_map(|(kind, file_size)| Fmap { file_size, kind })
}

/// Interleaved extents with strips placed apart on device 0, and a file size the extents hold.
fn striped_fmap() -> impl Strategy<Value = (Fmap, u64)> {
    proptest::collection::vec((1u64..12, proptest::collection::vec(0u64..48, 1..7)), 1..4)
        .prop_flat_map(|spec| {
            let ies: Vec<InterleavedExtent> = spec
                .iter()
                .enumerate()
                .map(|(i, (chunk, lens))| {
                    let strips = lens
                        .iter()
                        .enumerate()
                        .map(|(j, &l)| Extent::new(0, (i * 8 + j) as u64 * 64, l))
                        .collect();
                    InterleavedExtent::new(*chunk, strips)
                })
                .collect();
            let total: u64 = ies.iter().map(InterleavedExtent::capacity).sum();
            (Just(ies), 0..=total + 3, Just(total))
        })
        .prop_map(|(ies, size, total)| (Fmap::striped(size, ies), total))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The resolver and the walk agree everywhere, and with the model where it vouches.
    #[test]
    fn resolver_matches_walk_and_model(f in any_fmap()) {
        check_every_byte(&f);
    }

    /// The one capacity function counts exactly the bytes the model can place.
    #[test]
    fn capacity_matches_model(ie in interleaved_extent()) {
        prop_assert_eq!(ie.capacity(), model_capacity(&ie));
    }

    /// A striped map is sound exactly when its extents hold the file, and then every byte of the
    /// file lands inside its own extent's strips, no device byte used twice.
    #[test]
    fn striped_maps_check_out_iff_they_fit((f, total) in striped_fmap()) {
        prop_assert_eq!(f.check_geometry().is_ok(), f.file_size <= total);
        prop_assert!(f.capacity() == total);
        check_every_byte(&f);
        if f.file_size <= total {
            let mut used: Vec<(u32, u64)> = (0..f.file_size)
                .map(|o| {
                    let r = f.resolve(FileOffset(o)).unwrap();
                    (r.dev_index, r.dev_offset.0)
                })
                .collect();
            used.sort_unstable();
            used.dedup();
            prop_assert_eq!(used.len() as u64, f.file_size);
        }
    }
}
