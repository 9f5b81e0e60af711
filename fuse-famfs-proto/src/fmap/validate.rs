//! The kernel's fmap validation (shared by the byte parser and [`Fmap::validate`]) and the
//! stricter geometry check.
//!
//! Arithmetic follows the kernel's types: the total of extent lengths is a wrapping 64-bit sum
//! (`size_t`), and the interleave remainder is a wrapping signed 64-bit difference (`s64`), so
//! adversarial lengths are accepted or refused exactly as the kernel would.

use super::error::{ExtentFault, ExtentFaultReason, ExtentLocation, FmapError, GeometryError};
use super::{Extent, Fmap, FmapKind};
use crate::generation::{AbiGeneration, FmapRules};

/// Checks 2 and 3 of [`Fmap::parse`]: the extent count.
pub(super) fn check_counts(nextents: u64, rules: &FmapRules) -> Result<(), FmapError> {
    if nextents < 1 {
        return Err(FmapError::NoExtents {
            errno: rules.no_extents_errno,
        });
    }
    if let Some(max) = rules.max_extents
        && nextents > u64::from(max)
    {
        return Err(FmapError::TooManyExtents { nextents, max });
    }
    Ok(())
}

/// Collects counted extent faults the way the kernel does (it fails after its loop).
struct Faults {
    count: usize,
    first: Option<ExtentFault>,
}

impl Faults {
    fn add(&mut self, location: ExtentLocation, reason: ExtentFaultReason) {
        self.count += 1;
        self.first.get_or_insert(ExtentFault { location, reason });
    }

    fn check_extent(&mut self, e: &Extent, location: ExtentLocation, rules: &FmapRules) {
        let reason = if e.dev_index > rules.max_dev_index {
            ExtentFaultReason::DevIndex(e.dev_index)
        } else if !e.offset.is_multiple_of(rules.align) {
            ExtentFaultReason::OffsetUnaligned(e.offset)
        } else if !e.len.is_multiple_of(rules.align) {
            ExtentFaultReason::LenUnaligned(e.len)
        } else {
            return;
        };
        self.add(location, reason);
    }
}

/// Checks 6 to 8 of [`Fmap::parse`] on decoded extents.
pub(super) fn check_extents(fmap: &Fmap, rules: &FmapRules) -> Result<(), FmapError> {
    let mut faults = Faults {
        count: 0,
        first: None,
    };
    let mut total: u64 = 0;
    match &fmap.kind {
        FmapKind::Simple(exts) => {
            for (index, e) in exts.iter().enumerate() {
                faults.check_extent(e, ExtentLocation::Simple { index }, rules);
                total = total.wrapping_add(e.len);
            }
        }
        FmapKind::Interleaved(ies) => {
            let mut remainder = fmap.file_size as i64;
            for (iext, ie) in ies.iter().enumerate() {
                if !u64::from(ie.chunk_size).is_multiple_of(rules.align) {
                    return Err(FmapError::ChunkSizeUnaligned {
                        iext,
                        chunk_size: ie.chunk_size,
                    });
                }
                if ie.nbytes == 0 {
                    return Err(FmapError::ZeroNbytes { iext });
                }
                let n = ie.strips.len();
                if n < 1 || n > rules.max_strips as usize {
                    faults.add(
                        ExtentLocation::Interleaved { iext },
                        ExtentFaultReason::StripCount(u32::try_from(n).unwrap_or(u32::MAX)),
                    );
                }
                for (strip, s) in ie.strips.iter().enumerate() {
                    faults.check_extent(s, ExtentLocation::Strip { iext, strip }, rules);
                    total = total.wrapping_add(s.len);
                    remainder = remainder.wrapping_sub(s.len as i64);
                }
            }
            if remainder > 0 {
                return Err(FmapError::ShortCoverage {
                    covered: total,
                    file_size: fmap.file_size,
                });
            }
        }
    }
    if let Some(first) = faults.first {
        return Err(FmapError::BadExtents {
            count: faults.count,
            first,
        });
    }
    if total < fmap.file_size {
        return Err(FmapError::ShortCoverage {
            covered: total,
            file_size: fmap.file_size,
        });
    }
    Ok(())
}

impl Fmap {
    /// Applies the kernel's validation for `generation` to this fmap as it would arrive on the
    /// wire: the same checks and errnos as [`Fmap::parse`], plus the reply-size limit (a reply
    /// larger than the kernel's buffer fails the open with EIO).
    pub fn validate(&self, generation: AbiGeneration) -> Result<(), FmapError> {
        let rules = generation.rules();
        let len = self.encoded_len();
        if len > rules.max_reply {
            return Err(FmapError::ReplyTooLarge {
                len,
                max: rules.max_reply,
            });
        }
        check_counts(self.kind.nextents() as u64, rules)?;
        if matches!(self.kind, FmapKind::Interleaved(_)) && !rules.interleave {
            return Err(FmapError::InterleaveUnsupported);
        }
        check_extents(self, rules)
    }

    /// Checks what the V3–V10 kernel does not, but a working layout needs: every interleaved
    /// extent has a non-zero chunk size and at least one strip, each strip is long enough for the
    /// bytes the stripe arithmetic places on it, the resolver reaches every byte below
    /// `file_size`, and no device range wraps past 2^64.
    pub fn check_geometry(&self) -> Result<(), GeometryError> {
        let mut reachable: u64 = 0;
        match &self.kind {
            FmapKind::Simple(exts) => {
                for e in exts {
                    e.offset
                        .checked_add(e.len)
                        .ok_or(GeometryError::DeviceOverflow { offset: e.offset })?;
                    reachable = reachable.saturating_add(e.len);
                }
            }
            FmapKind::Interleaved(ies) => {
                for (iext, ie) in ies.iter().enumerate() {
                    let chunk = u64::from(ie.chunk_size);
                    if chunk == 0 {
                        return Err(GeometryError::ZeroChunk { iext });
                    }
                    let n = ie.strips.len() as u64;
                    if n == 0 {
                        return Err(GeometryError::NoStrips { iext });
                    }
                    let size = ie.nbytes.min(self.file_size);
                    for (strip, s) in ie.strips.iter().enumerate() {
                        let needed = strip_bytes_needed(size, chunk, n, strip as u64);
                        if s.len < needed {
                            return Err(GeometryError::StripTooShort {
                                iext,
                                strip,
                                len: s.len,
                                needed,
                            });
                        }
                        s.offset
                            .checked_add(needed)
                            .ok_or(GeometryError::DeviceOverflow { offset: s.offset })?;
                    }
                    reachable = reachable.saturating_add(size);
                }
            }
        }
        if reachable < self.file_size {
            return Err(GeometryError::Uncovered {
                covered: reachable,
                file_size: self.file_size,
            });
        }
        Ok(())
    }
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

    #[test]
    fn strip_need() {
        const M: u64 = 1 << 20;
        // 4 strips, 2 MiB chunks, 15 MiB: chunks 0..8 (last one 1 MiB).
        assert_eq!(strip_bytes_needed(15 * M, 2 * M, 4, 0), 4 * M);
        assert_eq!(strip_bytes_needed(15 * M, 2 * M, 4, 2), 4 * M);
        assert_eq!(strip_bytes_needed(15 * M, 2 * M, 4, 3), 3 * M);
        // More strips than chunks.
        assert_eq!(strip_bytes_needed(2 * M, 2 * M, 4, 1), 0);
        assert_eq!(strip_bytes_needed(0, 2 * M, 4, 0), 0);
    }
}
