//! File maps as the log stores them: a list of simple extents, or one interleaved extent.

use zerocopy::{FromBytes, FromZeros, IntoBytes};

use crate::layout::{
    ALLOC_UNIT, MAX_INTERLEAVED_EXTENTS, MAX_SIMPLE_EXTENTS, MAX_STRIPS, RawFmap,
    RawInterleavedExt, RawSimpleExtent, ext_type,
};

/// One contiguous device range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Extent {
    /// Device index (always 0 today).
    pub devindex: u64,
    /// Byte offset on the device.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Extent {
    /// A device-0 extent.
    pub fn new(offset: u64, len: u64) -> Extent {
        Extent {
            devindex: 0,
            offset,
            len,
        }
    }

    /// One past the last byte (saturating).
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// One interleaved (striped) extent: data is laid out in `chunk_size` chunks, round-robin over
/// the strips.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Interleave {
    /// Chunk size in bytes.
    pub chunk_size: u64,
    /// The strips, each a device range.
    pub strips: Vec<Extent>,
}

/// Where a file's bytes live.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Fmap {
    /// File bytes are the concatenation of these extents.
    Simple(Vec<Extent>),
    /// File bytes are striped over the strips of these interleaved extents (the log holds one).
    Interleaved(Vec<Interleave>),
}

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

fn check_extent(e: &Extent) -> Result<(), FmapProblem> {
    if e.devindex != 0 {
        return Err(FmapProblem::DevIndex(e.devindex));
    }
    if e.len == 0 || !e.offset.is_multiple_of(ALLOC_UNIT) || !e.len.is_multiple_of(ALLOC_UNIT) {
        return Err(FmapProblem::Unaligned {
            offset: e.offset,
            len: e.len,
        });
    }
    Ok(())
}

fn raw_extent(r: &RawSimpleExtent) -> Extent {
    Extent {
        devindex: r.devindex.get(),
        offset: r.offset.get(),
        len: r.len.get(),
    }
}

fn to_raw_extent(e: &Extent) -> RawSimpleExtent {
    RawSimpleExtent {
        devindex: e.devindex.into(),
        offset: e.offset.into(),
        len: e.len.into(),
    }
}

impl Fmap {
    /// Decode and structurally check a stored map: known type, counts within the entry's
    /// arrays, device 0, 2 MiB alignment, valid chunk sizes. Placement (inside the data area,
    /// no overlap) and coverage of the file size are checked by [`Fmap::check_placement`].
    pub fn decode(raw: &RawFmap) -> Result<Fmap, FmapProblem> {
        let n = raw.nextents.get();
        match raw.ext_type.get() {
            ext_type::SIMPLE => {
                if n == 0 || n as usize > MAX_SIMPLE_EXTENTS {
                    return Err(FmapProblem::BadCount(n));
                }
                let (se, _) = <[RawSimpleExtent; MAX_SIMPLE_EXTENTS]>::ref_from_prefix(&raw.body)
                    .map_err(|_| FmapProblem::TooBig("simple extent array"))?;
                let exts: Vec<Extent> = se[..n as usize].iter().map(raw_extent).collect();
                exts.iter().try_for_each(check_extent)?;
                Ok(Fmap::Simple(exts))
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
                let strips: Vec<Extent> = ie.strips[..nstrips as usize]
                    .iter()
                    .map(raw_extent)
                    .collect();
                strips.iter().try_for_each(check_extent)?;
                Ok(Fmap::Interleaved(vec![Interleave {
                    chunk_size: chunk,
                    strips,
                }]))
            }
            t => Err(FmapProblem::UnknownType(t)),
        }
    }

    /// Encode into the stored form (zero-filled where unused).
    pub fn encode(&self) -> Result<RawFmap, FmapProblem> {
        let mut raw = RawFmap::new_zeroed();
        match self {
            Fmap::Simple(exts) => {
                if exts.is_empty() || exts.len() > MAX_SIMPLE_EXTENTS {
                    return Err(FmapProblem::TooBig("1..=16 simple extents"));
                }
                raw.ext_type = ext_type::SIMPLE.into();
                raw.nextents = (exts.len() as u32).into();
                let (se, _) =
                    <[RawSimpleExtent; MAX_SIMPLE_EXTENTS]>::mut_from_prefix(&mut raw.body)
                        .map_err(|_| FmapProblem::TooBig("simple extent array"))?;
                for (slot, e) in se.iter_mut().zip(exts) {
                    *slot = to_raw_extent(e);
                }
            }
            Fmap::Interleaved(ies) => {
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
                    *slot = to_raw_extent(e);
                }
            }
        }
        debug_assert_eq!(raw.as_bytes().len(), 416);
        Ok(raw)
    }

    /// Every device range the map uses (extents, or all strips).
    pub fn ranges(&self) -> impl Iterator<Item = &Extent> {
        let (simple, inter): (&[Extent], &[Interleave]) = match self {
            Fmap::Simple(e) => (e, &[]),
            Fmap::Interleaved(i) => (&[], i),
        };
        simple
            .iter()
            .chain(inter.iter().flat_map(|i| i.strips.iter()))
    }

    /// Total device bytes the map occupies.
    pub fn allocated_bytes(&self) -> u64 {
        self.ranges().fold(0u64, |a, e| a.saturating_add(e.len))
    }

    /// Bytes of file data the map can address. For interleaved extents this is limited by the
    /// shortest strip: with chunk C over N strips each at least L long, ⌊L / C⌋·C·N bytes.
    pub fn capacity(&self) -> u64 {
        match self {
            Fmap::Simple(exts) => exts.iter().fold(0u64, |a, e| a.saturating_add(e.len)),
            Fmap::Interleaved(ies) => ies.iter().fold(0u64, |a, ie| {
                let shortest = ie.strips.iter().map(|s| s.len).min().unwrap_or(0);
                let per_strip = shortest / ie.chunk_size * ie.chunk_size;
                a.saturating_add(per_strip.saturating_mul(ie.strips.len() as u64))
            }),
        }
    }

    /// The wire form of this map for a file of `size` bytes, as GET_FMAP sends it and as the
    /// fault resolver ([`fuse_famfs_proto::fmap::Resolver`]) uses it. Each interleaved extent
    /// covers the whole file (`nbytes` = size), as the log holds one.
    pub fn to_wire(&self, size: u64) -> Result<fuse_famfs_proto::Fmap, FmapProblem> {
        use fuse_famfs_proto::fmap as w;
        let ext = |e: &Extent| -> Result<w::Extent, FmapProblem> {
            let dev = u32::try_from(e.devindex).map_err(|_| FmapProblem::DevIndex(e.devindex))?;
            Ok(w::Extent::new(dev, e.offset, e.len))
        };
        Ok(match self {
            Fmap::Simple(exts) => {
                w::Fmap::simple(size, exts.iter().map(ext).collect::<Result<_, _>>()?)
            }
            Fmap::Interleaved(ies) => w::Fmap::interleaved(
                size,
                ies.iter()
                    .map(|ie| {
                        Ok(w::InterleavedExtent {
                            chunk_size: u32::try_from(ie.chunk_size)
                                .map_err(|_| FmapProblem::BadChunk(ie.chunk_size))?,
                            nbytes: size,
                            strips: ie.strips.iter().map(ext).collect::<Result<_, _>>()?,
                        })
                    })
                    .collect::<Result<_, FmapProblem>>()?,
            ),
        })
    }

    /// Check that every range lies in `[data_start, dev_end)` and that the map holds `size`
    /// bytes, so that no byte of the file resolves outside its own extents.
    pub fn check_placement(
        &self,
        size: u64,
        data_start: u64,
        dev_end: u64,
    ) -> Result<(), FmapProblem> {
        for e in self.ranges() {
            if e.offset < data_start || e.offset.checked_add(e.len).is_none_or(|end| end > dev_end)
            {
                return Err(FmapProblem::OutOfRange {
                    offset: e.offset,
                    len: e.len,
                    start: data_start,
                    end: dev_end,
                });
            }
        }
        let mapped = self.capacity();
        if mapped < size {
            return Err(FmapProblem::TooShort { mapped, size });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const AU: u64 = ALLOC_UNIT;

    #[test]
    fn round_trip_and_layout() {
        let f = Fmap::Simple(vec![Extent::new(0xa0_0000, 0x40_0000)]);
        let raw = f.encode().unwrap();
        let b = raw.as_bytes();
        assert_eq!(&b[0..4], &[0, 0, 0, 0]);
        assert_eq!(&b[8..12], &[1, 0, 0, 0]);
        assert_eq!(u64::from_le_bytes(b[24..32].try_into().unwrap()), 0xa0_0000);
        assert_eq!(u64::from_le_bytes(b[32..40].try_into().unwrap()), 0x40_0000);
        assert_eq!(Fmap::decode(&raw).unwrap(), f);

        let i = Fmap::Interleaved(vec![Interleave {
            chunk_size: AU,
            strips: vec![
                Extent::new(0x4000_0000, 4 * AU),
                Extent::new(0x8000_0000, 4 * AU),
            ],
        }]);
        let raw = i.encode().unwrap();
        let b = raw.as_bytes();
        assert_eq!(&b[0..4], &[1, 0, 0, 0]);
        assert_eq!(u64::from_le_bytes(b[16..24].try_into().unwrap()), 2);
        assert_eq!(u64::from_le_bytes(b[24..32].try_into().unwrap()), AU);
        assert_eq!(
            u64::from_le_bytes(b[40..48].try_into().unwrap()),
            0x4000_0000
        );
        assert_eq!(Fmap::decode(&raw).unwrap(), i);
        assert_eq!(i.capacity(), 8 * AU);
    }

    #[test]
    fn structural_refusals() {
        let mut raw = Fmap::Simple(vec![Extent::new(AU * 8, AU)])
            .encode()
            .unwrap();
        raw.nextents = 17.into();
        assert_eq!(Fmap::decode(&raw), Err(FmapProblem::BadCount(17)));
        raw.nextents = 0.into();
        assert_eq!(Fmap::decode(&raw), Err(FmapProblem::BadCount(0)));
        raw.ext_type = 7.into();
        assert_eq!(Fmap::decode(&raw), Err(FmapProblem::UnknownType(7)));
        for (e, want) in [
            (
                Extent {
                    devindex: 1,
                    offset: AU * 8,
                    len: AU,
                },
                FmapProblem::DevIndex(1),
            ),
            (
                Extent::new(AU * 8 + 4096, AU),
                FmapProblem::Unaligned {
                    offset: AU * 8 + 4096,
                    len: AU,
                },
            ),
            (
                Extent::new(AU * 8, 0),
                FmapProblem::Unaligned {
                    offset: AU * 8,
                    len: 0,
                },
            ),
        ] {
            let raw = Fmap::Simple(vec![e]).encode().unwrap();
            assert_eq!(Fmap::decode(&raw), Err(want));
        }
        for chunk in [0, 3 * AU, 4096] {
            let raw = Fmap::Interleaved(vec![Interleave {
                chunk_size: chunk,
                strips: vec![Extent::new(AU * 8, AU)],
            }])
            .encode()
            .unwrap();
            assert_eq!(Fmap::decode(&raw), Err(FmapProblem::BadChunk(chunk)));
        }
    }

    #[test]
    fn placement() {
        let f = Fmap::Simple(vec![Extent::new(AU * 5, AU)]);
        assert!(f.check_placement(AU, AU * 5, AU * 6).is_ok());
        assert!(matches!(
            f.check_placement(AU + 1, AU * 5, AU * 6),
            Err(FmapProblem::TooShort { .. })
        ));
        assert!(matches!(
            f.check_placement(1, AU * 6, AU * 8),
            Err(FmapProblem::OutOfRange { .. })
        ));
        assert!(matches!(
            f.check_placement(1, AU, AU * 5 + 1),
            Err(FmapProblem::OutOfRange { .. })
        ));
        let hostile = Fmap::Simple(vec![Extent::new(u64::MAX - AU + 1, AU)]);
        assert!(hostile.check_placement(1, AU, u64::MAX).is_err());
        // Uneven strips: capacity follows the shortest one.
        let i = Fmap::Interleaved(vec![Interleave {
            chunk_size: AU,
            strips: vec![Extent::new(AU * 10, 4 * AU), Extent::new(AU * 20, 2 * AU)],
        }]);
        assert_eq!(i.capacity(), 4 * AU);
        assert!(i.check_placement(5 * AU, AU, AU * 100).is_err());
    }

    #[test]
    fn wire_form_resolves_like_our_capacity_says() {
        let i = Fmap::Interleaved(vec![Interleave {
            chunk_size: 2 * AU,
            strips: (0..3)
                .map(|k| Extent::new((10 + 4 * k) * AU, 4 * AU))
                .collect(),
        }]);
        let size = i.capacity();
        let w = i.to_wire(size).unwrap();
        w.check_geometry().unwrap();
        // Last byte: chunk 5 -> strip 2, stripe 1.
        let r = w.resolve(size - 1).unwrap();
        assert_eq!(r.dev_offset, 18 * AU + 2 * AU + 2 * AU - 1);
        let big = Fmap::Interleaved(vec![Interleave {
            chunk_size: 8 << 30,
            strips: vec![Extent::new(AU * 8, 8 << 30)],
        }]);
        assert!(big.to_wire(1).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 416)) {
            let raw = RawFmap::read_from_bytes(&bytes).unwrap();
            if let Ok(f) = Fmap::decode(&raw) {
                // Whatever decodes must encode back to the same bytes in the used part.
                let again = Fmap::decode(&f.encode().unwrap()).unwrap();
                prop_assert_eq!(again, f);
            }
        }
    }
}
