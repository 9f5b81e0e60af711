//! famfs FUSE ABI generations: every generation-dependent rule lives here.
//!
//! The GET_FMAP/GET_DAXDEV wire format is still moving upstream. Everything that differs between
//! the posted kernels and the later development variant is a field of [`FmapRules`] or a method of
//! [`AbiGeneration`] (including telling the generation from a GET_FMAP request,
//! [`AbiGeneration::of_get_fmap`], and reshaping a map for it, [`AbiGeneration::adapt_fmap`]), so
//! following an upstream change means editing this file only.

use std::borrow::Cow;

use crate::abi::{FAMFS_EXTENT_ALIGN, FUSE_FAMFS_MAX_EXTENTS, FUSE_FAMFS_MAX_STRIPS};
use crate::errno::Errno;
use crate::fmap::{Extent, FileOffset, Fmap, FmapKind};

/// A famfs FUSE ABI generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AbiGeneration {
    /// The posted kernel series V3 (Jan 2026) through V10 (Mar 2026), byte-identical on the wire:
    /// GET_FMAP has no input (a bare 40-byte header), the reply fits in 4096 bytes, header word 12
    /// is `reserved0` (zero), at most 32 extents and 32 strips, every extent on device 0 and
    /// 2 MiB-aligned, dax devices pulled with GET_DAXDEV (index in `nodeid`, 280-byte reply).
    #[default]
    V1,
    /// The later, unposted development variant ("variant A"): GET_FMAP carries an 8-byte
    /// `fuse_getxattr_in` with the kernel's buffer size, header word 12 is `fmap_size` (the total
    /// reply size; a too-large fmap is answered with the header alone and the kernel retries once
    /// with a buffer of exactly that size, up to 16 MiB), no cap on the extent count, simple
    /// extents only, and dax devices pushed by the server with the `FUSE_DEV_IOC_DAXDEV_OPEN`
    /// ioctl instead of GET_DAXDEV.
    Dev,
}

/// How header word 12 (`fuse_famfs_fmap_header` offset 12) is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderWord12 {
    /// `reserved0`: written as zero, ignored by the kernel.
    Reserved,
    /// `fmap_size`: total reply bytes, header included.
    FmapSize,
}

/// How the kernel learns the path of a dax device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DaxdevDelivery {
    /// The kernel asks with GET_DAXDEV (opcode 55) after a GET_FMAP reply references a device.
    Pull,
    /// The server registers devices with the `FUSE_DEV_IOC_DAXDEV_OPEN` ioctl; GET_DAXDEV is
    /// never sent.
    Push,
}

/// The kernel's GET_FMAP reply validation parameters for one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FmapRules {
    /// Largest reply payload the kernel can receive (its largest out-arg buffer).
    pub max_reply: usize,
    /// errno for a reply shorter than the 32-byte header.
    pub short_reply_errno: Errno,
    /// errno for `nextents` < 1.
    pub no_extents_errno: Errno,
    /// Cap on `nextents` (exceeding it gives E2BIG), or `None` for no cap.
    pub max_extents: Option<u32>,
    /// Cap on strips per interleaved extent (exceeding it, or 0 strips, gives EINVAL).
    pub max_strips: u32,
    /// Whether INTERLEAVE fmaps are accepted (else EINVAL).
    pub interleave: bool,
    /// Required alignment of extent offsets, lengths and chunk sizes.
    pub align: u64,
    /// Largest accepted `se_devindex`.
    pub max_dev_index: u32,
}

impl AbiGeneration {
    /// Every generation, oldest first.
    pub const ALL: [AbiGeneration; 2] = [AbiGeneration::V1, AbiGeneration::Dev];

    /// The GET_FMAP validation rules.
    pub const fn rules(self) -> &'static FmapRules {
        match self {
            AbiGeneration::V1 => &V1_RULES,
            AbiGeneration::Dev => &DEV_RULES,
        }
    }

    /// Whether GET_FMAP carries the 8-byte `fuse_getxattr_in` buffer-size argument (request
    /// length 48 instead of 40).
    pub const fn get_fmap_has_size_input(self) -> bool {
        matches!(self, AbiGeneration::Dev)
    }

    /// The buffer size the kernel offers in its first GET_FMAP.
    pub const fn initial_fmap_buffer(self) -> usize {
        4096
    }

    /// Meaning of fmap header word 12.
    pub const fn header_word12(self) -> HeaderWord12 {
        match self {
            AbiGeneration::V1 => HeaderWord12::Reserved,
            AbiGeneration::Dev => HeaderWord12::FmapSize,
        }
    }

    /// How dax devices reach the kernel.
    pub const fn daxdev_delivery(self) -> DaxdevDelivery {
        match self {
            AbiGeneration::V1 => DaxdevDelivery::Pull,
            AbiGeneration::Dev => DaxdevDelivery::Push,
        }
    }

    /// Whether the kernel grows its buffer to the header's `fmap_size` and retries once.
    pub const fn retries_with_fmap_size(self) -> bool {
        matches!(self.header_word12(), HeaderWord12::FmapSize)
    }

    /// The generation of the kernel that sent a GET_FMAP, told from the request: the
    /// development variant sends its buffer size (`size`, a 48-byte request), V3–V10 send the
    /// bare header. Nothing else distinguishes them on the wire.
    pub const fn of_get_fmap(size: Option<u32>) -> Self {
        if size.is_some() {
            AbiGeneration::Dev
        } else {
            AbiGeneration::V1
        }
    }

    /// `fmap` in a form this generation's kernel accepts: as it is when the kernel takes
    /// interleaved extents or the map has none, else [`unroll`]ed into simple extents.
    pub fn adapt_fmap(self, fmap: &Fmap) -> Cow<'_, Fmap> {
        match fmap.kind {
            FmapKind::Interleaved(_) if !self.rules().interleave => Cow::Owned(unroll(fmap)),
            _ => Cow::Borrowed(fmap),
        }
    }
}

/// Rewrites an interleaved map as the equivalent list of simple extents, one per run of chunks
/// contiguous on a device (the development kernel variant takes simple extents only; famfs user
/// space does the same). A simple map is returned unchanged.
///
/// The last interleaved extent keeps whole chunks, so with aligned strips every extent stays
/// 2 MiB-aligned (each strip holds whole chunks; the last chunk may extend past the file size,
/// as the strip does). An earlier interleaved extent holding a partial last chunk is unrolled
/// exactly, to a piece shorter than a chunk: no aligned simple map can say the same, so the
/// kernel's validation then refuses the result rather than misplacing the bytes after it.
pub fn unroll(fmap: &Fmap) -> Fmap {
    let FmapKind::Interleaved(ies) = &fmap.kind else {
        return fmap.clone();
    };
    let mut exts: Vec<Extent> = Vec::new();
    let mut start = 0u64;
    for (i, ie) in ies.iter().enumerate() {
        let chunk = ie.chunk_size;
        let size = ie.nbytes.min(fmap.file_size.saturating_sub(start));
        let last_iext = i + 1 == ies.len();
        let mut off = 0;
        while chunk > 0 && off < size {
            let Some(r) = fmap.resolve(FileOffset(start + off)) else {
                break;
            };
            let piece = if last_iext {
                chunk
            } else {
                chunk.min(size - off)
            };
            let dev_offset = r.dev_offset.0;
            match exts.last_mut() {
                Some(last) if last.dev_index == r.dev_index && last.end() == dev_offset => {
                    last.len += piece;
                }
                _ => exts.push(Extent::new(r.dev_index, dev_offset, piece)),
            }
            off += piece;
        }
        start += size;
    }
    Fmap::simple(fmap.file_size, exts)
}

const V1_RULES: FmapRules = FmapRules {
    max_reply: 4096,
    short_reply_errno: Errno::EINVAL,
    no_extents_errno: Errno::EINVAL,
    max_extents: Some(FUSE_FAMFS_MAX_EXTENTS),
    max_strips: FUSE_FAMFS_MAX_STRIPS,
    interleave: true,
    align: FAMFS_EXTENT_ALIGN,
    max_dev_index: 0,
};

const DEV_RULES: FmapRules = FmapRules {
    max_reply: 16 * 1024 * 1024,
    short_reply_errno: Errno::EIO,
    no_extents_errno: Errno::ERANGE,
    max_extents: None,
    max_strips: FUSE_FAMFS_MAX_STRIPS,
    interleave: false,
    align: FAMFS_EXTENT_ALIGN,
    max_dev_index: 0,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmap::{FmapWire, InterleavedExtent};

    #[test]
    fn generation_from_the_get_fmap_request() {
        assert_eq!(AbiGeneration::of_get_fmap(None), AbiGeneration::V1);
        assert_eq!(AbiGeneration::of_get_fmap(Some(4096)), AbiGeneration::Dev);
        assert!(AbiGeneration::of_get_fmap(Some(0)).get_fmap_has_size_input());
    }

    #[test]
    fn unrolled_maps_resolve_identically() {
        const MIB: u64 = 1 << 20;
        let strips = (0..3)
            .map(|i| Extent::new(0, (64 + 8 * i) * MIB, 8 * MIB))
            .collect();
        let f = Fmap::interleaved(
            20 * MIB + 5,
            vec![InterleavedExtent {
                chunk_size: 2 * MIB,
                nbytes: 20 * MIB + 5,
                strips,
            }],
        );
        let u = unroll(&f);
        assert!(matches!(u.kind, FmapKind::Simple(_)));
        for off in (0..f.file_size).step_by(4093) {
            let off = FileOffset(off);
            assert_eq!(
                f.resolve(off).unwrap().dev_offset,
                u.resolve(off).unwrap().dev_offset
            );
        }
        u.validate(AbiGeneration::Dev).unwrap();
        // Only the generation without interleave gets the unrolled form.
        assert_eq!(*AbiGeneration::Dev.adapt_fmap(&f), u);
        assert!(matches!(AbiGeneration::V1.adapt_fmap(&f), Cow::Borrowed(m) if *m == f));
        assert!(matches!(
            AbiGeneration::Dev.adapt_fmap(&u),
            Cow::Borrowed(_)
        ));
    }

    /// Found by the fmap fuzz target: an interleaved extent holding only part of a chunk
    /// (`nbytes` 4, chunk 2 MiB) followed by another one. Unrolling kept the whole chunk, so
    /// file offsets from 4 on resolved into the first extent's strip instead of the second's.
    #[test]
    fn unrolling_keeps_a_partial_chunk_partial() {
        const MIB: u64 = 1 << 20;
        let f = Fmap::interleaved(
            12 * MIB,
            vec![
                InterleavedExtent {
                    chunk_size: 2 * MIB,
                    nbytes: 4,
                    strips: vec![
                        Extent::new(0, 0x41_0000_0000_0000, 4 * MIB),
                        Extent::new(0, 32 * MIB, 4 * MIB),
                    ],
                },
                InterleavedExtent {
                    chunk_size: 4 * MIB,
                    nbytes: 16 * MIB,
                    strips: vec![Extent::new(0, 0, 0x6_0000_0000_0000)],
                },
            ],
        );
        f.check_geometry().unwrap();
        let u = unroll(&f);
        for mib in 0..12 {
            for off in [mib * MIB, (mib * MIB).saturating_sub(4), mib * MIB + 3] {
                let off = FileOffset(off);
                let (a, b) = (f.resolve(off).unwrap(), u.resolve(off).unwrap());
                assert_eq!(
                    (a.dev_index, a.dev_offset),
                    (b.dev_index, b.dev_offset),
                    "{off:?}"
                );
            }
        }
        // No 2 MiB-aligned simple map can say this: the kernel without interleave refuses it.
        assert!(u.validate(AbiGeneration::Dev).is_err());
    }
}
