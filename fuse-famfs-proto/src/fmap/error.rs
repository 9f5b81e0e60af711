//! fmap errors. [`FmapError`] mirrors the kernel's rejections and knows each one's errno.

use crate::errno::Errno;

/// Where in an fmap a faulty extent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtentLocation {
    /// Simple extent `index`.
    Simple {
        /// Position in the extent list.
        index: usize,
    },
    /// Interleaved extent `iext` as a whole.
    Interleaved {
        /// Position in the interleaved-extent list.
        iext: usize,
    },
    /// Strip `strip` of interleaved extent `iext`.
    Strip {
        /// Position in the interleaved-extent list.
        iext: usize,
        /// Position in its strip list.
        strip: usize,
    },
}

/// What is wrong with an extent. The kernel counts these and fails with EINVAL after its loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtentFaultReason {
    /// `se_devindex` above the generation's limit (V3–V10: anything but 0).
    DevIndex(u32),
    /// `se_offset` not a multiple of the alignment (2 MiB).
    OffsetUnaligned(u64),
    /// `se_len` not a multiple of the alignment (2 MiB).
    LenUnaligned(u64),
    /// `ie_nstrips` is 0 or above the strip cap (32).
    StripCount(u32),
}

/// One faulty extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtentFault {
    /// Where.
    pub location: ExtentLocation,
    /// What.
    pub reason: ExtentFaultReason,
}

impl core::fmt::Display for ExtentFault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.location {
            ExtentLocation::Simple { index } => write!(f, "extent {index}: ")?,
            ExtentLocation::Interleaved { iext } => write!(f, "interleaved extent {iext}: ")?,
            ExtentLocation::Strip { iext, strip } => {
                write!(f, "interleaved extent {iext} strip {strip}: ")?
            }
        }
        match self.reason {
            ExtentFaultReason::DevIndex(d) => write!(f, "device index {d} not allowed"),
            ExtentFaultReason::OffsetUnaligned(o) => {
                write!(f, "offset {o:#x} is not 2 MiB-aligned")
            }
            ExtentFaultReason::LenUnaligned(l) => write!(f, "length {l:#x} is not 2 MiB-aligned"),
            ExtentFaultReason::StripCount(n) => write!(f, "{n} strips (allowed 1..=32)"),
        }
    }
}

/// A GET_FMAP reply the kernel would reject. [`FmapError::errno`] is what open(2) returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FmapError {
    /// The payload is larger than the kernel's buffer: the FUSE core fails the server's write
    /// with EINVAL and the open with EIO.
    #[error("fmap reply of {len} bytes exceeds the kernel's {max}-byte buffer")]
    ReplyTooLarge {
        /// Payload length.
        len: usize,
        /// Buffer size.
        max: usize,
    },
    /// Shorter than the 32-byte header (V1: EINVAL; dev: EIO).
    #[error("fmap reply of {len} bytes is shorter than the 32-byte header")]
    ShortReply {
        /// Payload length.
        len: usize,
        /// The generation's errno.
        errno: Errno,
    },
    /// `nextents` is 0 (V1: EINVAL; dev: ERANGE).
    #[error("fmap has no extents")]
    NoExtents {
        /// The generation's errno.
        errno: Errno,
    },
    /// `nextents` above the cap (E2BIG).
    #[error("fmap has {nextents} extents, more than the limit of {max}")]
    TooManyExtents {
        /// The count.
        nextents: u64,
        /// The cap.
        max: u32,
    },
    /// Unknown `ext_type` (EINVAL).
    #[error("unknown fmap extent type {0}")]
    UnknownExtType(u32),
    /// Interleaved fmap for a generation that accepts simple extents only (EINVAL).
    #[error("interleaved fmaps are not accepted by this ABI generation")]
    InterleaveUnsupported,
    /// The extents (or an interleaved extent's header or strips) run past the payload (EINVAL).
    #[error("fmap needs at least {needed} bytes but the reply has {len}")]
    Truncated {
        /// Bytes needed up to the end of the piece that did not fit.
        needed: u64,
        /// Payload length.
        len: usize,
    },
    /// An interleaved extent's chunk size is not 2 MiB-aligned (EINVAL).
    #[error("interleaved extent {iext}: chunk size {chunk_size:#x} is not 2 MiB-aligned")]
    ChunkSizeUnaligned {
        /// Which interleaved extent.
        iext: usize,
        /// Its chunk size.
        chunk_size: u64,
    },
    /// An interleaved extent has `ie_nbytes` 0 (EINVAL).
    #[error("interleaved extent {iext} covers 0 bytes")]
    ZeroNbytes {
        /// Which interleaved extent.
        iext: usize,
    },
    /// One or more extents have a bad device index, alignment or strip count (EINVAL).
    #[error("{count} bad extent(s); first: {first}")]
    BadExtents {
        /// How many faults the kernel would count.
        count: usize,
        /// The first one.
        first: ExtentFault,
    },
    /// The extents cover less than `file_size` (EINVAL).
    #[error("extents cover {covered} bytes, less than the file size {file_size}")]
    ShortCoverage {
        /// Sum of extent (strip) lengths, wrapping like the kernel's.
        covered: u64,
        /// The header's file size.
        file_size: u64,
    },
    /// Dev variant: `fmap_size` larger than the 16 MiB limit (EFBIG).
    #[error("fmap_size {fmap_size} exceeds the {max}-byte limit")]
    FmapSizeTooLarge {
        /// The header's fmap_size.
        fmap_size: u32,
        /// The limit.
        max: usize,
    },
    /// Dev variant: the fmap grew again on the retry (EINVAL).
    #[error("fmap_size {fmap_size} still exceeds the {buffer}-byte buffer after the retry")]
    GrewOnRetry {
        /// The header's fmap_size.
        fmap_size: u32,
        /// The retry buffer size.
        buffer: usize,
    },
}

impl FmapError {
    /// The errno the kernel fails open(2) with.
    pub fn errno(&self) -> Errno {
        match self {
            FmapError::ReplyTooLarge { .. } => Errno::EIO,
            FmapError::ShortReply { errno, .. } | FmapError::NoExtents { errno } => *errno,
            FmapError::TooManyExtents { .. } => Errno::E2BIG,
            FmapError::FmapSizeTooLarge { .. } => Errno::EFBIG,
            FmapError::UnknownExtType(_)
            | FmapError::InterleaveUnsupported
            | FmapError::Truncated { .. }
            | FmapError::ChunkSizeUnaligned { .. }
            | FmapError::ZeroNbytes { .. }
            | FmapError::BadExtents { .. }
            | FmapError::ShortCoverage { .. }
            | FmapError::GrewOnRetry { .. } => Errno::EINVAL,
        }
    }
}

/// Failure to encode an fmap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FmapEncodeError {
    /// The caller's buffer is too small.
    #[error("fmap needs {needed} bytes, buffer has {available}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Buffer size.
        available: usize,
    },
    /// The encoded fmap exceeds what the generation's kernel can receive (V1: 4096 bytes).
    #[error("fmap of {len} bytes exceeds the {max}-byte limit of this ABI generation")]
    TooLarge {
        /// Encoded length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A count does not fit its u32 wire field.
    #[error("fmap has too many extents or strips to encode")]
    CountOverflow,
    /// An interleaved extent's chunk size does not fit the u32 wire field (4 GiB or more).
    #[error(
        "interleaved extent {iext}: chunk size {chunk_size:#x} does not fit the wire's 32 bits"
    )]
    ChunkTooLarge {
        /// Which interleaved extent.
        iext: usize,
        /// Its chunk size.
        chunk_size: u64,
    },
    /// The fmap fails the kernel's validation (returned by the validating reply builders).
    #[error("fmap would be rejected by the kernel: {0}")]
    Invalid(#[from] FmapError),
}
