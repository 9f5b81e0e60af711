//! The kernel's fmap validation, shared by the byte parser ([`FmapMessage::parse`]) and
//! [`FmapWire::validate`].
//!
//! [`FmapMessage::parse`]: super::FmapMessage::parse
//! [`FmapWire::validate`]: super::FmapWire::validate
//!
//! Arithmetic follows the kernel's types: the total of extent lengths is a wrapping 64-bit sum
//! (`size_t`), and the interleave remainder is a wrapping signed 64-bit difference (`s64`), so
//! adversarial lengths are accepted or refused exactly as the kernel would.

use super::error::{ExtentFault, ExtentFaultReason, ExtentLocation, FmapError};
use super::{Extent, Fmap, FmapKind};
use crate::generation::{AbiGeneration, FmapRules};

/// Checks 2 and 3 of [`FmapMessage::parse`](super::FmapMessage::parse): the extent count.
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

/// Checks 6 to 8 of [`FmapMessage::parse`](super::FmapMessage::parse) on decoded extents.
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
                if !ie.chunk_size.is_multiple_of(rules.align) {
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

/// [`FmapWire::validate`](super::FmapWire::validate).
pub(super) fn validate(fmap: &Fmap, generation: AbiGeneration) -> Result<(), FmapError> {
    let rules = generation.rules();
    let len = super::wire::encoded_len(fmap);
    if len > rules.max_reply {
        return Err(FmapError::ReplyTooLarge {
            len,
            max: rules.max_reply,
        });
    }
    check_counts(fmap.kind.nextents() as u64, rules)?;
    if matches!(fmap.kind, FmapKind::Interleaved(_)) && !rules.interleave {
        return Err(FmapError::InterleaveUnsupported);
    }
    check_extents(fmap, rules)
}
