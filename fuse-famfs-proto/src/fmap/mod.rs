//! famfs file maps (fmaps): the typed form, the wire encoding, the kernel's validation and the
//! fault resolver.
//!
//! - [`Fmap::encode`] writes a GET_FMAP reply payload into a caller buffer (no allocation).
//! - [`Fmap::parse`] reads one and applies exactly the kernel's checks for an
//!   [`AbiGeneration`](crate::AbiGeneration), failing with the errno open(2) would see ([`FmapError::errno`]).
//! - [`Fmap::validate`] applies the same checks to a typed fmap before a server sends it.
//! - [`Fmap::resolve`] is the kernel's linear walk (file offset → device index and offset);
//!   [`Resolver`] gives the same answers in O(log n) with precomputed prefix sums and shifts.
//! - [`Fmap::check_geometry`] adds checks the kernel does not make but a sane server should
//!   (strips long enough for the stripe arithmetic, non-zero chunk size).

mod error;
mod resolve;
mod validate;
mod wire;

pub use error::{
    ExtentFault, ExtentFaultReason, ExtentLocation, FmapEncodeError, FmapError, GeometryError,
};
pub use resolve::{Resolved, Resolver};
pub use wire::{FmapReply, parse_reply};

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

/// A contiguous range of a dax device (a simple extent, or one strip of an interleaved extent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Extent {
    /// Dax device index.
    pub dev_index: u32,
    /// Byte offset on the device.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Extent {
    /// A new extent.
    pub const fn new(dev_index: u32, offset: u64, len: u64) -> Self {
        Extent {
            dev_index,
            offset,
            len,
        }
    }
}

/// An interleaved (striped) extent: `nbytes` of the file spread over `strips` in `chunk_size`
/// chunks, round robin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct InterleavedExtent {
    /// Stripe chunk size in bytes.
    pub chunk_size: u32,
    /// Logical bytes of the file this extent covers (the kernel uses `min(nbytes, file_size)`).
    pub nbytes: u64,
    /// The strips, in stripe order.
    pub strips: Vec<Extent>,
}

/// The extents of an fmap.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FmapKind {
    /// Simple extents, concatenated in file order.
    Simple(Vec<Extent>),
    /// Interleaved extents, concatenated in file order.
    Interleaved(Vec<InterleavedExtent>),
}

impl FmapKind {
    /// The wire extent type.
    pub fn ext_type(&self) -> ExtType {
        match self {
            FmapKind::Simple(_) => ExtType::Simple,
            FmapKind::Interleaved(_) => ExtType::Interleave,
        }
    }

    /// `nextents` on the wire: simple extents, or interleaved extents.
    pub fn nextents(&self) -> usize {
        match self {
            FmapKind::Simple(v) => v.len(),
            FmapKind::Interleaved(v) => v.len(),
        }
    }
}

/// A famfs file map: what GET_FMAP returns for one file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fmap {
    /// The file type (informational).
    pub file_type: FileType,
    /// Logical file size; the kernel sets i_size from it and refuses I/O if they later differ.
    pub file_size: u64,
    /// The extents.
    pub kind: FmapKind,
}

impl Fmap {
    /// A regular file of `file_size` bytes on simple extents.
    pub fn simple(file_size: u64, extents: Vec<Extent>) -> Self {
        Fmap {
            file_type: FileType::Regular,
            file_size,
            kind: FmapKind::Simple(extents),
        }
    }

    /// A regular file of `file_size` bytes on interleaved extents.
    pub fn interleaved(file_size: u64, extents: Vec<InterleavedExtent>) -> Self {
        Fmap {
            file_type: FileType::Regular,
            file_size,
            kind: FmapKind::Interleaved(extents),
        }
    }

    /// Builds a fast [`Resolver`] for this fmap.
    pub fn resolver(&self) -> Resolver {
        Resolver::new(self)
    }

    /// The distinct device indices the fmap references, ascending (the devices the kernel will
    /// ask for with GET_DAXDEV, or the server must push).
    pub fn referenced_devices(&self) -> Vec<u32> {
        let mut v: Vec<u32> = match &self.kind {
            FmapKind::Simple(e) => e.iter().map(|e| e.dev_index).collect(),
            FmapKind::Interleaved(ie) => ie
                .iter()
                .flat_map(|ie| ie.strips.iter().map(|s| s.dev_index))
                .collect(),
        };
        v.sort_unstable();
        v.dedup();
        v
    }
}
