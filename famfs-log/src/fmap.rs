//! File maps as the log stores them — a list of up to 16 simple extents, or one interleaved
//! extent of up to 16 strips — read into and written from [`famfs_fmap::Fmap`], the one file-map
//! type, and the checks of a map's placement on the device.
//!
//! The stored form has no `nbytes` for an interleaved extent: [`decode`] lays the file over it
//! with [`Fmap::striped`], so the map resolves exactly as the kernel resolves what GET_FMAP sends.

use famfs_fmap::{Extent, Fmap, FmapKind, InterleavedExtent};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

use crate::layout::{
    ALLOC_UNIT, MAX_INTERLEAVED_EXTENTS, MAX_SIMPLE_EXTENTS, MAX_STRIPS, RawFmap,
    RawInterleavedExt, RawSimpleExtent, ext_type,
};

/// Why a stored file map was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FmapProblem {
    /// An extent type other than simple or interleaved.
    #[error("unknown extent type {0}")]
    UnknownType(u32),
    /// Zero extents, or more than the entry can hold.
    #[error("bad extent count {0}")]
    BadCount(u32),
    /// Zero strips, or more than 16.
    #[error("bad strip count {0}")]
    BadStripCount(u64),
    /// A chunk size that is zero, not a power of two, or not a multiple of 2 MiB.
    #[error("bad chunk size {0:#x}")]
    BadChunk(u64),
    /// A device index other than 0 (multi-device file systems are not supported).
    #[error("extent on device {0}; only device 0 is supported")]
    DevIndex(u64),
    /// An offset or length not aligned to 2 MiB, or a zero length.
    #[error("extent {offset:#x}+{len:#x} is not 2 MiB aligned or is empty")]
    Unaligned {
        /// Offset.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// An extent inside the superblock/log region or past the end of the device.
    #[error("extent {offset:#x}+{len:#x} is outside the data area [{start:#x}, {end:#x})")]
    OutOfRange {
        /// Offset.
        offset: u64,
        /// Length.
        len: u64,
        /// First data byte.
        start: u64,
        /// End of the device.
        end: u64,
    },
    /// The extents do not hold the whole file.
    #[error("extents hold {mapped} bytes, fewer than the file size {size}")]
    TooShort {
        /// Bytes reachable through the map.
        mapped: u64,
        /// File size.
        size: u64,
    },
    /// A map that cannot be written into one log entry.
    #[error("file map does not fit a log entry: {0}")]
    TooBig(&'static str),
}

/// A stored extent, checked: device 0, 2 MiB-aligned, not empty.
fn decode_extent(r: &RawSimpleExtent) -> Result<Extent, FmapProblem> {
    let (devindex, offset, len) = (r.devindex.get(), r.offset.get(), r.len.get());
    if devindex != 0 {
        return Err(FmapProblem::DevIndex(devindex));
    }
    if len == 0 || !offset.is_multiple_of(ALLOC_UNIT) || !len.is_multiple_of(ALLOC_UNIT) {
        return Err(FmapProblem::Unaligned { offset, len });
    }
    Ok(Extent::new(0, offset, len))
}

fn encode_extent(e: &Extent) -> RawSimpleExtent {
    RawSimpleExtent {
        devindex: u64::from(e.dev_index).into(),
        offset: e.offset.into(),
        len: e.len.into(),
    }
}

/// Decodes and structurally checks a stored map of a file of `size` bytes: known type, counts
/// within the entry's arrays, device 0, 2 MiB alignment, valid chunk sizes. Placement (inside
/// the data area) and coverage of the file size are checked by [`check_placement`].
pub fn decode(raw: &RawFmap, size: u64) -> Result<Fmap, FmapProblem> {
    let n = raw.nextents.get();
    match raw.ext_type.get() {
        ext_type::SIMPLE => {
            if n == 0 || n as usize > MAX_SIMPLE_EXTENTS {
                return Err(FmapProblem::BadCount(n));
            }
            let (se, _) = <[RawSimpleExtent; MAX_SIMPLE_EXTENTS]>::ref_from_prefix(&raw.body)
                .map_err(|_| FmapProblem::TooBig("simple extent array"))?;
            let exts = se[..n as usize]
                .iter()
                .map(decode_extent)
                .collect::<Result<_, _>>();
            Ok(Fmap::simple(size, exts?))
        }
        ext_type::INTERLEAVE => {
            if n == 0 || n as usize > MAX_INTERLEAVED_EXTENTS {
                return Err(FmapProblem::BadCount(n));
            }
            let ie = RawInterleavedExt::ref_from_bytes(&raw.body)
                .map_err(|_| FmapProblem::TooBig("interleaved extent"))?;
            let nstrips = ie.nstrips.get();
            if nstrips == 0 || nstrips > MAX_STRIPS as u64 {
                return Err(FmapProblem::BadStripCount(nstrips));
            }
            let chunk = ie.chunk_size.get();
            if chunk == 0 || !chunk.is_power_of_two() || chunk % ALLOC_UNIT != 0 {
                return Err(FmapProblem::BadChunk(chunk));
            }
            let strips = ie.strips[..nstrips as usize]
                .iter()
                .map(decode_extent)
                .collect::<Result<_, _>>()?;
            Ok(Fmap::striped(
                size,
                vec![InterleavedExtent::new(chunk, strips)],
            ))
        }
        t => Err(FmapProblem::UnknownType(t)),
    }
}

/// Encodes a map into the stored form (zero-filled where unused). The file size is stored in
/// the entry, not here; an interleaved extent's `nbytes` is not stored (see [`decode`]).
pub fn encode(fmap: &Fmap) -> Result<RawFmap, FmapProblem> {
    let mut raw = RawFmap::new_zeroed();
    match &fmap.kind {
        FmapKind::Simple(exts) => {
            if exts.is_empty() || exts.len() > MAX_SIMPLE_EXTENTS {
                return Err(FmapProblem::TooBig("1..=16 simple extents"));
            }
            raw.ext_type = ext_type::SIMPLE.into();
            raw.nextents = (exts.len() as u32).into();
            let (se, _) = <[RawSimpleExtent; MAX_SIMPLE_EXTENTS]>::mut_from_prefix(&mut raw.body)
                .map_err(|_| FmapProblem::TooBig("simple extent array"))?;
            for (slot, e) in se.iter_mut().zip(exts) {
                *slot = encode_extent(e);
            }
        }
        FmapKind::Interleaved(ies) => {
            let [ie] = ies.as_slice() else {
                return Err(FmapProblem::TooBig("exactly one interleaved extent"));
            };
            if ie.strips.is_empty() || ie.strips.len() > MAX_STRIPS {
                return Err(FmapProblem::TooBig("1..=16 strips"));
            }
            raw.ext_type = ext_type::INTERLEAVE.into();
            raw.nextents = 1.into();
            let r = RawInterleavedExt::mut_from_bytes(&mut raw.body)
                .map_err(|_| FmapProblem::TooBig("interleaved extent"))?;
            r.nstrips = (ie.strips.len() as u64).into();
            r.chunk_size = ie.chunk_size.into();
            for (slot, e) in r.strips.iter_mut().zip(&ie.strips) {
                *slot = encode_extent(e);
            }
        }
    }
    debug_assert_eq!(raw.as_bytes().len(), 416);
    Ok(raw)
}

/// Checks that every range of `fmap` lies in `[data_start, dev_end)` and that its extents hold
/// the whole file ([`Fmap::capacity`]), so that no byte of the file resolves outside its own
/// extents.
pub fn check_placement(fmap: &Fmap, data_start: u64, dev_end: u64) -> Result<(), FmapProblem> {
    for e in fmap.ranges() {
        if e.offset < data_start || e.offset.checked_add(e.len).is_none_or(|end| end > dev_end) {
            return Err(FmapProblem::OutOfRange {
                offset: e.offset,
                len: e.len,
                start: data_start,
                end: dev_end,
            });
        }
    }
    let (mapped, size) = (fmap.capacity(), fmap.file_size);
    if mapped < size {
        return Err(FmapProblem::TooShort { mapped, size });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use famfs_fmap::{DevOffset, FileOffset};
    use proptest::prelude::*;

    const AU: u64 = ALLOC_UNIT;

    fn striped(size: u64, chunk: u64, strips: Vec<Extent>) -> Fmap {
        Fmap::striped(size, vec![InterleavedExtent::new(chunk, strips)])
    }

    #[test]
    fn round_trip_and_layout() {
        let f = Fmap::simple(0x30_0000, vec![Extent::new(0, 0xa0_0000, 0x40_0000)]);
        let raw = encode(&f).unwrap();
        let b = raw.as_bytes();
        assert_eq!(&b[0..4], &[0, 0, 0, 0]);
        assert_eq!(&b[8..12], &[1, 0, 0, 0]);
        assert_eq!(u64::from_le_bytes(b[24..32].try_into().unwrap()), 0xa0_0000);
        assert_eq!(u64::from_le_bytes(b[32..40].try_into().unwrap()), 0x40_0000);
        assert_eq!(decode(&raw, 0x30_0000).unwrap(), f);

        let i = striped(
            7 * AU,
            AU,
            vec![
                Extent::new(0, 0x4000_0000, 4 * AU),
                Extent::new(0, 0x8000_0000, 4 * AU),
            ],
        );
        let raw = encode(&i).unwrap();
        let b = raw.as_bytes();
        assert_eq!(&b[0..4], &[1, 0, 0, 0]);
        assert_eq!(u64::from_le_bytes(b[16..24].try_into().unwrap()), 2);
        assert_eq!(u64::from_le_bytes(b[24..32].try_into().unwrap()), AU);
        assert_eq!(
            u64::from_le_bytes(b[40..48].try_into().unwrap()),
            0x4000_0000
        );
        assert_eq!(decode(&raw, 7 * AU).unwrap(), i);
        assert_eq!(i.capacity(), 8 * AU);
    }

    #[test]
    fn structural_refusals() {
        let mut raw = encode(&Fmap::simple(AU, vec![Extent::new(0, AU * 8, AU)])).unwrap();
        raw.nextents = 17.into();
        assert_eq!(decode(&raw, AU), Err(FmapProblem::BadCount(17)));
        raw.nextents = 0.into();
        assert_eq!(decode(&raw, AU), Err(FmapProblem::BadCount(0)));
        raw.ext_type = 7.into();
        assert_eq!(decode(&raw, AU), Err(FmapProblem::UnknownType(7)));
        for (e, want) in [
            (Extent::new(1, AU * 8, AU), FmapProblem::DevIndex(1)),
            (
                Extent::new(0, AU * 8 + 4096, AU),
                FmapProblem::Unaligned {
                    offset: AU * 8 + 4096,
                    len: AU,
                },
            ),
            (
                Extent::new(0, AU * 8, 0),
                FmapProblem::Unaligned {
                    offset: AU * 8,
                    len: 0,
                },
            ),
        ] {
            let raw = encode(&Fmap::simple(AU, vec![e])).unwrap();
            assert_eq!(decode(&raw, AU), Err(want));
        }
        // A device index past 32 bits is refused, not truncated.
        let mut raw = encode(&Fmap::simple(AU, vec![Extent::new(0, AU * 8, AU)])).unwrap();
        raw.body[0..8].copy_from_slice(&(1u64 << 32).to_le_bytes());
        assert_eq!(decode(&raw, AU), Err(FmapProblem::DevIndex(1 << 32)));
        for chunk in [0, 3 * AU, 4096] {
            let raw = encode(&striped(AU, chunk, vec![Extent::new(0, AU * 8, AU)])).unwrap();
            assert_eq!(decode(&raw, AU), Err(FmapProblem::BadChunk(chunk)));
        }
    }

    #[test]
    fn placement() {
        let f = |size| Fmap::simple(size, vec![Extent::new(0, AU * 5, AU)]);
        assert!(check_placement(&f(AU), AU * 5, AU * 6).is_ok());
        assert!(matches!(
            check_placement(&f(AU + 1), AU * 5, AU * 6),
            Err(FmapProblem::TooShort { .. })
        ));
        assert!(matches!(
            check_placement(&f(1), AU * 6, AU * 8),
            Err(FmapProblem::OutOfRange { .. })
        ));
        assert!(matches!(
            check_placement(&f(1), AU, AU * 5 + 1),
            Err(FmapProblem::OutOfRange { .. })
        ));
        let hostile = Fmap::simple(1, vec![Extent::new(0, u64::MAX - AU + 1, AU)]);
        assert!(check_placement(&hostile, AU, u64::MAX).is_err());
        // Uneven strips: the capacity is what the stripe arithmetic can place (chunks 0..5:
        // strip 0 holds 0, 2, 4 and strip 1 holds 1, 3), less than the strips' 6 AU.
        let i = |size| {
            striped(
                size,
                AU,
                vec![
                    Extent::new(0, AU * 10, 4 * AU),
                    Extent::new(0, AU * 20, 2 * AU),
                ],
            )
        };
        assert_eq!(i(0).capacity(), 5 * AU);
        assert!(check_placement(&i(5 * AU), AU, AU * 100).is_ok());
        assert!(check_placement(&i(5 * AU + 1), AU, AU * 100).is_err());
        assert!(check_placement(&i(6 * AU), AU, AU * 100).is_err());
    }

    #[test]
    fn decoded_maps_resolve_like_our_capacity_says() {
        let strips = (0..3)
            .map(|k| Extent::new(0, (10 + 4 * k) * AU, 4 * AU))
            .collect();
        let stored = encode(&striped(0, 2 * AU, strips)).unwrap();
        let size = decode(&stored, 0).unwrap().capacity();
        let w = decode(&stored, size).unwrap();
        w.check_geometry().unwrap();
        // One interleaved extent holds the whole file: nbytes is the file size.
        let FmapKind::Interleaved(ies) = &w.kind else {
            panic!()
        };
        assert_eq!(ies[0].nbytes, size);
        // Last byte: chunk 5 -> strip 2, stripe 1.
        let r = w.resolve(FileOffset(size - 1)).unwrap();
        assert_eq!(r.dev_offset, DevOffset(18 * AU + 2 * AU + 2 * AU - 1));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 416), size: u64) {
            let raw = RawFmap::read_from_bytes(&bytes).unwrap();
            if let Ok(f) = decode(&raw, size) {
                // Whatever decodes must encode back to the same bytes in the used part.
                let again = decode(&encode(&f).unwrap(), size).unwrap();
                prop_assert_eq!(again, f);
            }
        }
    }
}
