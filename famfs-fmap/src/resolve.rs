//! Fault resolution: file offset → (device index, device offset), with the kernel's arithmetic.
//!
//! Simple extents are concatenated in file order. An interleaved extent covering
//! `size = min(ie_nbytes, file_size)` bytes maps local offset `x` as
//!
//! ```text
//! chunk_num  = x / chunk_size        chunk_off = x % chunk_size
//! stripe_num = chunk_num / nstrips   strip_num = chunk_num % nstrips
//! device     = strips[strip_num].dev_index
//! dev_offset = strips[strip_num].offset + stripe_num * chunk_size + chunk_off
//! ```
//!
//! The kernel clips I/O to i_size before resolving, and faults past it raise SIGBUS, so offsets at
//! or past `file_size` resolve to `None` here. Degenerate layouts the kernel accepts but cannot
//! serve (chunk size 0, which would divide by zero in the kernel; no strips; a device offset past
//! 2^64) also give `None`, which a caller treats as the kernel's EIO.

use crate::map::{Fmap, FmapKind};
use crate::offset::{DevOffset, FileOffset};

/// Where a file offset lives on the devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Resolved {
    /// Dax device index.
    pub dev_index: u32,
    /// Byte offset on that device.
    pub dev_offset: DevOffset,
    /// Bytes from here that stay contiguous on the device and belong to the same extent: the
    /// rest of the simple extent, or of the interleave chunk clipped to the end of its interleaved
    /// extent. It is not clipped to the file size.
    ///
    /// This is the kernel's iomap length for an unbounded request, except that the V3–V10 kernel
    /// does not clip a chunk at the end of an interleaved extent: with several interleaved
    /// extents whose sizes are not multiples of the chunk size it would map the rest of the chunk
    /// although those file bytes belong to the next interleaved extent (famfs user space only
    /// ever makes one interleaved extent).
    pub contiguous_len: u64,
}

impl Fmap {
    /// Builds a fast [`Resolver`] for this fmap.
    pub fn resolver(&self) -> Resolver {
        Resolver::new(self)
    }

    /// Resolves `offset` by walking the extents like the kernel (`famfs_fileofs_to_daxofs`).
    /// O(number of extents); use [`Resolver`] for repeated lookups.
    pub fn resolve(&self, offset: FileOffset) -> Option<Resolved> {
        let FileOffset(offset) = offset;
        if offset >= self.file_size {
            return None;
        }
        let mut local = offset;
        match &self.kind {
            FmapKind::Simple(exts) => {
                for e in exts {
                    if local < e.len {
                        return Some(Resolved {
                            dev_index: e.dev_index,
                            dev_offset: DevOffset(e.offset.checked_add(local)?),
                            contiguous_len: e.len - local,
                        });
                    }
                    local -= e.len;
                }
                None
            }
            FmapKind::Interleaved(ies) => {
                for ie in ies {
                    let size = ie.nbytes.min(self.file_size);
                    if local < size {
                        let chunk = ie.chunk_size;
                        let nstrips = ie.strips.len() as u64;
                        if chunk == 0 || nstrips == 0 {
                            return None;
                        }
                        let chunk_num = local / chunk;
                        let chunk_off = local % chunk;
                        let stripe_num = chunk_num / nstrips;
                        let strip = &ie.strips[(chunk_num % nstrips) as usize];
                        let strip_off = chunk_off + stripe_num * chunk;
                        return Some(Resolved {
                            dev_index: strip.dev_index,
                            dev_offset: DevOffset(strip.offset.checked_add(strip_off)?),
                            contiguous_len: (chunk - chunk_off).min(size - local),
                        });
                    }
                    local -= size;
                }
                None
            }
        }
    }
}

/// A simple extent with its file range precomputed.
#[derive(Debug, Clone, Copy)]
struct Seg {
    /// File offset where the extent starts (saturating).
    start: u64,
    dev_index: u32,
    dev_offset: u64,
    len: u64,
}

/// An interleaved extent with its divisions precomputed.
#[derive(Debug, Clone, Copy)]
struct Piece {
    /// File offset where the piece starts.
    start: u64,
    /// Bytes of the file it covers (`min(nbytes, file_size)`).
    size: u64,
    chunk: u64,
    /// log2(chunk) when chunk is a power of two, else `NO_SHIFT`.
    chunk_shift: u32,
    nstrips: u64,
    /// log2(nstrips) when nstrips is a power of two, else `NO_SHIFT`.
    nstrips_shift: u32,
    /// Index of the first strip in `Resolver::strips`.
    first_strip: usize,
}

const NO_SHIFT: u32 = u32::MAX;

#[derive(Debug, Clone)]
enum Index {
    Simple {
        /// Exclusive file end offset of each extent (saturating).
        ends: Vec<u64>,
        segs: Vec<Seg>,
        /// `log2(E)` when every extent but the last is E bytes (a power of two) and the last is
        /// no larger, so the extent index is a shift.
        uniform_shift: u32,
    },
    Interleaved {
        /// Exclusive file end offset of each piece (saturating).
        ends: Vec<u64>,
        pieces: Vec<Piece>,
        strips: Vec<(u32, u64)>,
    },
}

/// A precomputed fault resolver: the answers of [`Fmap::resolve`] in O(log n) without division
/// when sizes are powers of two. Resolving does not allocate.
#[derive(Debug, Clone)]
pub struct Resolver {
    file_size: u64,
    index: Index,
}

fn pow2_shift(v: u64) -> u32 {
    if v.is_power_of_two() {
        v.trailing_zeros()
    } else {
        NO_SHIFT
    }
}

fn prefix_ends(lens: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut acc = 0u64;
    lens.map(|l| {
        acc = acc.saturating_add(l);
        acc
    })
    .collect()
}

impl Resolver {
    /// Precomputes the lookup tables for `fmap`.
    pub fn new(fmap: &Fmap) -> Self {
        let index = match &fmap.kind {
            FmapKind::Simple(exts) => {
                let ends = prefix_ends(exts.iter().map(|e| e.len));
                let segs: Vec<Seg> = exts
                    .iter()
                    .enumerate()
                    .map(|(i, e)| Seg {
                        start: if i == 0 { 0 } else { ends[i - 1] },
                        dev_index: e.dev_index,
                        dev_offset: e.offset,
                        len: e.len,
                    })
                    .collect();
                let uniform_shift = match exts.split_last() {
                    Some((last, rest)) if !rest.is_empty() => {
                        let e = rest[0].len;
                        if pow2_shift(e) != NO_SHIFT
                            && rest.iter().all(|x| x.len == e)
                            && last.len <= e
                        {
                            pow2_shift(e)
                        } else {
                            NO_SHIFT
                        }
                    }
                    _ => NO_SHIFT,
                };
                Index::Simple {
                    ends,
                    segs,
                    uniform_shift,
                }
            }
            FmapKind::Interleaved(ies) => {
                let sizes: Vec<u64> = ies.iter().map(|ie| ie.nbytes.min(fmap.file_size)).collect();
                let ends = prefix_ends(sizes.iter().copied());
                let mut strips = Vec::new();
                let mut pieces = Vec::with_capacity(ies.len());
                for (i, ie) in ies.iter().enumerate() {
                    let chunk = ie.chunk_size;
                    let nstrips = ie.strips.len() as u64;
                    pieces.push(Piece {
                        start: if i == 0 { 0 } else { ends[i - 1] },
                        size: sizes[i],
                        chunk,
                        chunk_shift: pow2_shift(chunk),
                        nstrips,
                        nstrips_shift: pow2_shift(nstrips),
                        first_strip: strips.len(),
                    });
                    strips.extend(ie.strips.iter().map(|s| (s.dev_index, s.offset)));
                }
                Index::Interleaved {
                    ends,
                    pieces,
                    strips,
                }
            }
        };
        Resolver {
            file_size: fmap.file_size,
            index,
        }
    }

    /// The file size the resolver clips to.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// Resolves `offset`; same result as [`Fmap::resolve`].
    #[inline]
    pub fn resolve(&self, offset: FileOffset) -> Option<Resolved> {
        let FileOffset(offset) = offset;
        if offset >= self.file_size {
            return None;
        }
        match &self.index {
            Index::Simple {
                ends,
                segs,
                uniform_shift,
            } => {
                let i = if *uniform_shift != NO_SHIFT {
                    (offset >> uniform_shift) as usize
                } else {
                    ends.partition_point(|&e| e <= offset)
                };
                let seg = segs.get(i)?;
                let local = offset.checked_sub(seg.start)?;
                if local >= seg.len {
                    return None;
                }
                Some(Resolved {
                    dev_index: seg.dev_index,
                    dev_offset: DevOffset(seg.dev_offset.checked_add(local)?),
                    contiguous_len: seg.len - local,
                })
            }
            Index::Interleaved {
                ends,
                pieces,
                strips,
            } => {
                let i = if ends.len() == 1 {
                    0
                } else {
                    ends.partition_point(|&e| e <= offset)
                };
                let p = pieces.get(i)?;
                if offset >= ends[i] || p.chunk == 0 || p.nstrips == 0 {
                    return None;
                }
                let local = offset.checked_sub(p.start)?;
                let (chunk_num, chunk_off) = if p.chunk_shift != NO_SHIFT {
                    (local >> p.chunk_shift, local & (p.chunk - 1))
                } else {
                    (local / p.chunk, local % p.chunk)
                };
                let (stripe_num, strip_num) = if p.nstrips_shift != NO_SHIFT {
                    (chunk_num >> p.nstrips_shift, chunk_num & (p.nstrips - 1))
                } else if chunk_num <= u64::from(u32::MAX) {
                    // 32-bit division is much cheaper, and chunk_num < 2^32 for any file below
                    // 8 PiB with 2 MiB chunks.
                    let (c, n) = (chunk_num as u32, p.nstrips as u32);
                    (u64::from(c / n), u64::from(c % n))
                } else {
                    (chunk_num / p.nstrips, chunk_num % p.nstrips)
                };
                let (dev_index, base) = strips[p.first_strip + strip_num as usize];
                let strip_off = chunk_off + stripe_num * p.chunk;
                Some(Resolved {
                    dev_index,
                    dev_offset: DevOffset(base.checked_add(strip_off)?),
                    contiguous_len: (p.chunk - chunk_off).min(p.size - local),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::{Extent, InterleavedExtent};

    const M: u64 = 1 << 20;

    #[test]
    fn kernel_doc_example() {
        // 4 strips, 2 MiB chunks: file offset 15 MiB is offset 1 MiB in chunk 7, strip 3,
        // stripe 1, so strip offset 3 MiB.
        let strips = (0..4)
            .map(|i| Extent::new(0, (100 + 10 * i) * M, 8 * M))
            .collect();
        let f = Fmap::interleaved(
            32 * M,
            vec![InterleavedExtent {
                chunk_size: 2 * M,
                nbytes: 32 * M,
                strips,
            }],
        );
        let want = Resolved {
            dev_index: 0,
            dev_offset: DevOffset(130 * M + 3 * M),
            contiguous_len: M,
        };
        assert_eq!(f.resolve(FileOffset(15 * M)), Some(want));
        assert_eq!(f.resolver().resolve(FileOffset(15 * M)), Some(want));
        assert_eq!(f.resolve(FileOffset(32 * M)), None);
    }

    #[test]
    fn simple_uniform_and_not() {
        let f = Fmap::simple(
            10 * M,
            vec![
                Extent::new(0, 0, 4 * M),
                Extent::new(0, 40 * M, 4 * M),
                Extent::new(0, 80 * M, 2 * M),
            ],
        );
        let r = f.resolver();
        assert!(matches!(
            r.index,
            Index::Simple {
                uniform_shift: 22,
                ..
            }
        ));
        for off in [0, 1, 4 * M - 1, 4 * M, 9 * M, 10 * M - 1] {
            assert_eq!(
                r.resolve(FileOffset(off)),
                f.resolve(FileOffset(off)),
                "{off}"
            );
        }
        assert_eq!(
            f.resolve(FileOffset(5 * M)).unwrap().dev_offset,
            DevOffset(41 * M)
        );
        assert_eq!(r.resolve(FileOffset(10 * M)), None);
    }

    #[test]
    fn degenerate_layouts_do_not_panic() {
        let zero_chunk = Fmap::interleaved(
            4 * M,
            vec![InterleavedExtent {
                chunk_size: 0,
                nbytes: 4 * M,
                strips: vec![Extent::new(0, 0, 4 * M)],
            }],
        );
        assert_eq!(zero_chunk.resolve(FileOffset(0)), None);
        assert_eq!(zero_chunk.resolver().resolve(FileOffset(0)), None);
        let no_strips = Fmap::interleaved(
            4 * M,
            vec![InterleavedExtent {
                chunk_size: 2 * M,
                nbytes: 4 * M,
                strips: vec![],
            }],
        );
        assert_eq!(no_strips.resolve(FileOffset(0)), None);
        assert_eq!(no_strips.resolver().resolve(FileOffset(0)), None);
        let overflow = Fmap::simple(4 * M, vec![Extent::new(0, u64::MAX - M, 4 * M)]);
        assert!(overflow.resolve(FileOffset(0)).is_some());
        assert_eq!(overflow.resolve(FileOffset(2 * M)), None);
        assert_eq!(overflow.resolver().resolve(FileOffset(2 * M)), None);
        let huge = Fmap::simple(
            u64::MAX,
            vec![Extent::new(0, 0, u64::MAX - 10), Extent::new(0, 0, 100)],
        );
        for off in [0, u64::MAX - 11, u64::MAX - 10, u64::MAX - 1] {
            assert_eq!(
                huge.resolver().resolve(FileOffset(off)),
                huge.resolve(FileOffset(off)),
                "{off}"
            );
        }
        assert_eq!(
            huge.resolve(FileOffset(u64::MAX - 1)).unwrap().dev_offset,
            DevOffset(9)
        );
    }
}
