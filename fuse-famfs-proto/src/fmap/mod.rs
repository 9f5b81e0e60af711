//! famfs file maps (fmaps) on the wire: the GET_FMAP encoding and the kernel's validation.
//!
//! The map itself is [`famfs_fmap::Fmap`] (re-exported here with its parts, its geometry check
//! and its fault [`Resolver`]); this module adds the wire side.
//!
//! - [`FmapWire::encode`] writes a GET_FMAP reply payload into a caller buffer (no allocation);
//!   the header's [`FileType`] is an argument, as the map does not carry one.
//! - [`FmapMessage::parse`] reads one and applies exactly the kernel's checks for an
//!   [`AbiGeneration`], failing with the errno open(2) would see ([`FmapError::errno`]).
//! - [`FmapWire::validate`] applies the same checks to a typed fmap before a server sends it.
//! - [`Fmap::check_geometry`] adds checks the kernel does not make but a sane server should
//!   (strips long enough for the stripe arithmetic, non-zero chunk size).

mod error;
mod validate;
mod wire;

pub use error::{ExtentFault, ExtentFaultReason, ExtentLocation, FmapEncodeError, FmapError};
pub use famfs_fmap::{
    DevOffset, Extent, FileOffset, Fmap, FmapKind, GeometryError, InterleavedExtent, Resolved,
    Resolver,
};
pub use wire::{FmapReply, parse_reply};

use crate::AbiGeneration;
use crate::abi::{
    FUSE_FAMFS_EXT_INTERLEAVE, FUSE_FAMFS_EXT_SIMPLE, FUSE_FAMFS_FILE_LOG, FUSE_FAMFS_FILE_REG,
    FUSE_FAMFS_FILE_SUPERBLOCK,
};

/// `enum fuse_famfs_file_type`. The kernel stores but never checks it, so any byte is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FileType {
    /// 0: a regular file.
    #[default]
    Regular,
    /// 1: `.meta/.superblock`.
    Superblock,
    /// 2: `.meta/.log`.
    Log,
    /// Any other value (accepted by every kernel seen).
    Other(u8),
}

impl From<u8> for FileType {
    fn from(v: u8) -> Self {
        match v {
            FUSE_FAMFS_FILE_REG => FileType::Regular,
            FUSE_FAMFS_FILE_SUPERBLOCK => FileType::Superblock,
            FUSE_FAMFS_FILE_LOG => FileType::Log,
            other => FileType::Other(other),
        }
    }
}

impl From<FileType> for u8 {
    fn from(v: FileType) -> Self {
        match v {
            FileType::Regular => FUSE_FAMFS_FILE_REG,
            FileType::Superblock => FUSE_FAMFS_FILE_SUPERBLOCK,
            FileType::Log => FUSE_FAMFS_FILE_LOG,
            FileType::Other(o) => o,
        }
    }
}

/// `enum famfs_ext_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtType {
    /// 0: simple extents.
    Simple,
    /// 1: interleaved extents.
    Interleave,
}

impl ExtType {
    /// The wire value.
    pub const fn raw(self) -> u32 {
        match self {
            ExtType::Simple => FUSE_FAMFS_EXT_SIMPLE,
            ExtType::Interleave => FUSE_FAMFS_EXT_INTERLEAVE,
        }
    }

    /// From the wire value; `None` for an unknown type (the kernel answers EINVAL).
    pub const fn from_raw(v: u32) -> Option<Self> {
        match v {
            FUSE_FAMFS_EXT_SIMPLE => Some(ExtType::Simple),
            FUSE_FAMFS_EXT_INTERLEAVE => Some(ExtType::Interleave),
            _ => None,
        }
    }
}

/// A GET_FMAP reply payload as decoded by [`FmapMessage::parse`]: the header's file type and the
/// map. Encoding takes the file type as an argument ([`FmapWire::encode`]), so a server sends the
/// map it already holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FmapMessage {
    /// The header's file type (the kernel stores it and never checks it).
    pub file_type: FileType,
    /// The map.
    pub fmap: Fmap,
}

/// The wire side of an [`Fmap`]: encoding a GET_FMAP reply payload and the kernel's validation.
pub trait FmapWire {
    /// Bytes the encoded fmap takes.
    fn encoded_len(&self) -> usize;

    /// Encodes the fmap with header file type `file_type` as a GET_FMAP reply payload into `out`
    /// and returns the length used.
    ///
    /// No allocation. Checks only what the wire needs (counts and chunk sizes fit their u32
    /// fields, the result fits in `out` and within the generation's reply limit, 4096 bytes for
    /// V1); it does not apply the kernel's semantic checks, so a test harness can build invalid
    /// fmaps. Servers should call [`FmapWire::validate`] first (the [`crate::reply::get_fmap`]
    /// builder does).
    ///
    /// V1 writes header word 12 (`reserved0`) as 0; Dev writes `fmap_size` = the encoded length.
    fn encode(
        &self,
        file_type: FileType,
        generation: AbiGeneration,
        out: &mut [u8],
    ) -> Result<usize, FmapEncodeError>;

    /// [`FmapWire::encode`] into a new `Vec`.
    fn to_bytes(
        &self,
        file_type: FileType,
        generation: AbiGeneration,
    ) -> Result<Vec<u8>, FmapEncodeError>;

    /// Encodes the reply to a GET_FMAP request whose kernel buffer is `kernel_buffer` bytes
    /// (V1: always 4096; dev: the request's `size`).
    ///
    /// Validates first. In the dev generation an fmap larger than the kernel's buffer is answered
    /// with the 32-byte header alone, carrying the needed size in `fmap_size`, so the kernel
    /// retries with a buffer that large.
    fn encode_reply(
        &self,
        file_type: FileType,
        generation: AbiGeneration,
        kernel_buffer: usize,
        out: &mut [u8],
    ) -> Result<usize, FmapEncodeError>;

    /// Applies the kernel's validation for `generation` to this fmap as it would arrive on the
    /// wire: the same checks and errnos as [`FmapMessage::parse`], plus the reply-size limit (a
    /// reply larger than the kernel's buffer fails the open with EIO).
    fn validate(&self, generation: AbiGeneration) -> Result<(), FmapError>;
}

/// The wire extent type of a map.
pub fn ext_type(kind: &FmapKind) -> ExtType {
    match kind {
        FmapKind::Simple(_) => ExtType::Simple,
        FmapKind::Interleaved(_) => ExtType::Interleave,
    }
}
