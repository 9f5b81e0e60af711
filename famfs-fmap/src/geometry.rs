//! Capacity of interleaved extents, and the geometry check: what a working layout needs beyond
//! what the kernel checks.

use crate::map::{Fmap, FmapKind, InterleavedExtent};

/// A layout that cannot work although the kernel may accept it (see [`Fmap::check_geometry`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    /// Chunk size 0 (the kernel would divide by zero on the first fault).
    #[error("interleaved extent {iext} has chunk size 0")]
    ZeroChunk {
        /// Which interleaved extent.
        iext: usize,
    },
    /// No strips.
    #[error("interleaved extent {iext} has no strips")]
    NoStrips {
        /// Which interleaved extent.
        iext: usize,
    },
    /// A strip is shorter than the bytes the stripe arithmetic places on it.
    #[error("interleaved extent {iext} strip {strip}: length {len:#x} < {needed:#x} needed")]
    StripTooShort {
        /// Which interleaved extent.
        iext: usize,
        /// Which strip.
        strip: usize,
        /// Its length.
        len: u64,
        /// Bytes the arithmetic places on it.
        needed: u64,
    },
    /// The resolver would not reach every byte below `file_size`.
    #[error("extents map {covered} bytes, less than the file size {file_size}")]
    Uncovered {
        /// Bytes reachable.
        covered: u64,
        /// The file size.
        file_size: u64,
    },
    /// A device range wraps past 2^64.
    #[error("a device range starting at {offset:#x} overflows")]
    DeviceOverflow {
        /// The range's start.
        offset: u64,
    },
}

impl InterleavedExtent {
    /// The bytes of file data the strips can hold: the largest size whose every chunk the stripe
    /// arithmetic places inside its strip (the last chunk may be partial). With n strips of
    /// equal length L this is ⌊L / chunk⌋ · chunk · n; a longer strip adds nothing past the first
    /// chunk that does not fit. 0 for a chunk size of 0 or no strips (saturating).
    pub fn capacity(&self) -> u64 {
        let chunk = self.chunk_size;
        let n = self.strips.len() as u64;
        if chunk == 0 || n == 0 {
            return 0;
        }
        // Strip j holds chunks j, j + n, j + 2n, ...: the first it cannot hold whole is chunk
        // j + ⌊len_j / chunk⌋·n, of which it holds len_j mod chunk bytes. Every chunk before the
        // earliest such chunk fits whole.
        let first_short = self
            .strips
            .iter()
            .enumerate()
            .map(|(j, s)| {
                (
                    (s.len / chunk).saturating_mul(n).saturating_add(j as u64),
                    j,
                )
            })
            .min();
        first_short.map_or(0, |(k, j)| {
            k.saturating_mul(chunk)
                .saturating_add(self.strips[j].len % chunk)
        })
    }
}

impl Fmap {
    /// Checks what the V3–V10 kernel does not, but a working layout needs: every interleaved
    /// extent has a non-zero chunk size and at least one strip and holds its share of the file
    /// (`min(nbytes, file_size)` bytes, at most its [capacity](InterleavedExtent::capacity)),
    /// the extents reach every byte below `file_size`, and no device range wraps past 2^64.
    pub fn check_geometry(&self) -> Result<(), GeometryError> {
        if let Some(e) = self
            .ranges()
            .find(|e| e.offset.checked_add(e.len).is_none())
        {
            return Err(GeometryError::DeviceOverflow { offset: e.offset });
        }
        let reachable = match &self.kind {
            FmapKind::Simple(exts) => exts.iter().fold(0u64, |a, e| a.saturating_add(e.len)),
            FmapKind::Interleaved(ies) => {
                let mut reachable = 0u64;
                for (iext, ie) in ies.iter().enumerate() {
                    let size = ie.nbytes.min(self.file_size);
                    check_share(iext, ie, size)?;
                    reachable = reachable.saturating_add(size);
                }
                reachable
            }
        };
        if reachable < self.file_size {
            return Err(GeometryError::Uncovered {
                covered: reachable,
                file_size: self.file_size,
            });
        }
        Ok(())
    }
}

/// Checks that interleaved extent `iext` holds `size` bytes of the file.
fn check_share(iext: usize, ie: &InterleavedExtent, size: u64) -> Result<(), GeometryError> {
    if ie.chunk_size == 0 {
        return Err(GeometryError::ZeroChunk { iext });
    }
    let n = ie.strips.len() as u64;
    if n == 0 {
        return Err(GeometryError::NoStrips { iext });
    }
    let capacity = ie.capacity();
    if size <= capacity {
        return Ok(());
    }
    // Name the first strip that is too short for the error.
    let short = ie.strips.iter().enumerate().find_map(|(strip, s)| {
        let needed = strip_bytes_needed(size, ie.chunk_size, n, strip as u64);
        (s.len < needed).then_some(GeometryError::StripTooShort {
            iext,
            strip,
            len: s.len,
            needed,
        })
    });
    Err(short.unwrap_or(GeometryError::Uncovered {
        covered: capacity,
        file_size: size,
    }))
}

/// Bytes of strip `j` that the stripe arithmetic uses for an interleaved extent of `size` bytes
/// with `n` strips of `chunk`-byte chunks (chunk k goes to strip k mod n).
fn strip_bytes_needed(size: u64, chunk: u64, n: u64, j: u64) -> u64 {
    if size == 0 {
        return 0;
    }
    let nchunks = size.div_ceil(chunk);
    if j >= nchunks {
        return 0;
    }
    let count = (nchunks - 1 - j) / n + 1;
    let last = j + (count - 1) * n;
    let used_in_last = chunk.min(size - last * chunk);
    (count - 1) * chunk + used_in_last
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::Extent;

    const M: u64 = 1 << 20;
    const AU: u64 = 2 * M;

    #[test]
    fn strip_need() {
        // 4 strips, 2 MiB chunks, 15 MiB: chunks 0..8 (last one 1 MiB).
        assert_eq!(strip_bytes_needed(15 * M, 2 * M, 4, 0), 4 * M);
        assert_eq!(strip_bytes_needed(15 * M, 2 * M, 4, 2), 4 * M);
        assert_eq!(strip_bytes_needed(15 * M, 2 * M, 4, 3), 3 * M);
        // More strips than chunks.
        assert_eq!(strip_bytes_needed(2 * M, 2 * M, 4, 1), 0);
        assert_eq!(strip_bytes_needed(0, 2 * M, 4, 0), 0);
    }

    fn ie(chunk: u64, lens: &[u64]) -> InterleavedExtent {
        let strips = lens
            .iter()
            .enumerate()
            .map(|(i, &l)| Extent::new(0, (i as u64 + 1) << 40, l))
            .collect();
        InterleavedExtent::new(chunk, strips)
    }

    #[test]
    fn capacity() {
        // Equal strips: whole stripes.
        assert_eq!(ie(AU, &[4 * AU, 4 * AU]).capacity(), 8 * AU);
        assert_eq!(ie(2 * AU, &[4 * AU; 3]).capacity(), 12 * AU);
        // Uneven strips: chunks 0..5 fit (strip 0 holds 0, 2, 4; strip 1 holds 1, 3), chunk 5
        // would be strip 1's third.
        assert_eq!(ie(AU, &[4 * AU, 2 * AU]).capacity(), 5 * AU);
        // A partial last chunk counts.
        assert_eq!(ie(2 * M, &[4 * M, 3 * M]).capacity(), 7 * M);
        assert_eq!(ie(2 * M, &[M, 8 * M]).capacity(), M);
        // Degenerate.
        assert_eq!(ie(0, &[4 * AU]).capacity(), 0);
        assert_eq!(ie(AU, &[]).capacity(), 0);
        assert_eq!(ie(AU, &[u64::MAX, u64::MAX]).capacity(), u64::MAX);
    }

    #[test]
    fn geometry_errors() {
        let f = |size, ie: InterleavedExtent| {
            let mut f = Fmap::striped(size, vec![ie]);
            if let FmapKind::Interleaved(v) = &mut f.kind {
                v[0].nbytes = v[0].nbytes.max(1);
            }
            f.check_geometry()
        };
        assert_eq!(
            f(AU, ie(0, &[AU])),
            Err(GeometryError::ZeroChunk { iext: 0 })
        );
        assert_eq!(f(AU, ie(AU, &[])), Err(GeometryError::NoStrips { iext: 0 }));
        assert_eq!(
            f(6 * AU, ie(AU, &[4 * AU, 2 * AU])),
            Err(GeometryError::StripTooShort {
                iext: 0,
                strip: 1,
                len: 2 * AU,
                needed: 3 * AU
            })
        );
        assert_eq!(f(5 * AU, ie(AU, &[4 * AU, 2 * AU])), Ok(()));
        let overflow = Fmap::simple(AU, vec![Extent::new(0, u64::MAX - M, AU)]);
        assert_eq!(
            overflow.check_geometry(),
            Err(GeometryError::DeviceOverflow {
                offset: u64::MAX - M
            })
        );
        assert_eq!(
            Fmap::simple(3 * AU, vec![Extent::new(0, 0, 2 * AU)]).check_geometry(),
            Err(GeometryError::Uncovered {
                covered: 2 * AU,
                file_size: 3 * AU
            })
        );
    }
}
