//! famfs extension wire structs: the GET_FMAP reply pieces and the GET_DAXDEV reply.
//!
//! Layouts are identical in every posted series from V3 (Jan 2026) to V10 (Mar 2026); the one
//! difference in the unposted dev variant is the meaning of [`FmapHeader::fmap_size`] (formerly
//! `reserved0`), which [`crate::AbiGeneration`] decides.

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use super::consts::{DAXDEV_NAME_MAX, FAMFS_FMAP_VERSION};
use super::fuse::wire_struct;

wire_struct! {
    /// `struct fuse_famfs_fmap_header` (32 bytes): start of every GET_FMAP reply.
    pub struct FmapHeader(32) {
        /// `enum fuse_famfs_file_type` (0 regular, 1 superblock, 2 log). Stored, never acted on.
        pub file_type: u8,
        /// Zero.
        pub reserved: u8,
        /// `FAMFS_FMAP_VERSION` (1). No kernel checks it.
        pub fmap_version: u16,
        /// `enum famfs_ext_type` (0 simple, 1 interleave).
        pub ext_type: u32,
        /// Simple: number of simple extents. Interleave: number of interleaved extents.
        pub nextents: u32,
        /// V3–V10: `reserved0`, zero. Dev variant: `fmap_size`, total reply bytes incl. header.
        pub fmap_size: u32,
        /// Logical file size; the kernel sets i_size from it.
        pub file_size: u64,
        /// Zero.
        pub reserved1: u64,
    }
}

wire_struct! {
    /// `struct fuse_famfs_simple_ext` (24 bytes): a simple extent, also used for strips.
    pub struct SimpleExt(24) {
        /// Dax device index (V3–V10: must be 0).
        pub se_devindex: u32,
        /// Zero.
        pub reserved: u32,
        /// Byte offset into the dax device.
        pub se_offset: u64,
        /// Length in bytes.
        pub se_len: u64,
    }
}

wire_struct! {
    /// `struct fuse_famfs_iext` (24 bytes): an interleaved extent header, followed on the wire by
    /// `ie_nstrips` × [`SimpleExt`].
    pub struct Iext(24) {
        /// Number of strips that follow.
        pub ie_nstrips: u32,
        /// Stripe chunk size in bytes.
        pub ie_chunk_size: u32,
        /// Logical bytes covered by this interleaved extent.
        pub ie_nbytes: u64,
        /// Zero.
        pub reserved: u64,
    }
}

wire_struct! {
    /// `struct fuse_get_daxdev_in` (4 bytes). Defined in the uapi but **never sent**: the V3–V10
    /// kernel passes the index in `fuse_in_header.nodeid` and sends no argument.
    pub struct GetDaxdevIn(4) {
        /// The daxdev index.
        pub daxdev_num: u32,
    }
}

wire_struct! {
    /// `struct fuse_backing_map` (16 bytes) as extended by the famfs dev variant for the
    /// `FUSE_DEV_IOC_DAXDEV_OPEN` push ioctl (the u64 at offset 8 becomes `daxdev_index`).
    ///
    /// The ioctl's request number is not known from the sources examined; this crate defines the
    /// payload only.
    pub struct BackingMap(16) {
        /// Open file descriptor of the dax character device.
        pub fd: i32,
        /// Zero.
        pub flags: u32,
        /// The daxdev index (upstream: `padding`).
        pub daxdev_index: u64,
    }
}

/// `struct fuse_daxdev_out` (280 bytes): the GET_DAXDEV reply. Fixed size: the payload must be
/// exactly 280 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct DaxdevOut {
    /// Meant to echo the index; not read by the kernel.
    pub index: u16,
    /// Zero.
    pub reserved: u16,
    /// Zero.
    pub reserved2: u32,
    /// Zero (room for a uuid with `reserved4`).
    pub reserved3: u64,
    /// Zero.
    pub reserved4: u64,
    /// NUL-terminated path of the dax character device, e.g. `/dev/dax0.0`.
    pub name: [u8; DAXDEV_NAME_MAX],
}

const _: () = assert!(core::mem::size_of::<DaxdevOut>() == 280);

/// The device path given to [`DaxdevOut::new`] does not fit in 255 bytes plus a NUL, or contains
/// a NUL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dax device path of {len} bytes is empty, longer than 255 bytes, or contains a NUL")]
pub struct DaxdevNameError {
    /// Length of the rejected path.
    pub len: usize,
}

impl Default for DaxdevOut {
    fn default() -> Self {
        Self::new_zeroed()
    }
}

impl DaxdevOut {
    /// Size on the wire, in bytes.
    pub const SIZE: usize = 280;

    /// A reply naming the device at `path` (an absolute path is what the kernel needs), always
    /// NUL-terminated, with every reserved field zero.
    pub fn new(index: u16, path: &[u8]) -> Result<Self, DaxdevNameError> {
        if path.is_empty() || path.len() >= DAXDEV_NAME_MAX || path.contains(&0) {
            return Err(DaxdevNameError { len: path.len() });
        }
        let mut out = Self::new_zeroed();
        out.index = index;
        out.name[..path.len()].copy_from_slice(path);
        Ok(out)
    }

    /// The name up to its first NUL (the whole array if there is none, which a V3–V10 kernel would
    /// read past).
    pub fn name_bytes(&self) -> &[u8] {
        let end = self
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(DAXDEV_NAME_MAX);
        &self.name[..end]
    }

    /// Whether `name` has a NUL terminator within its 256 bytes.
    pub fn name_is_terminated(&self) -> bool {
        self.name.contains(&0)
    }
}

impl FmapHeader {
    /// A header with `fmap_version` 1 and every reserved field zero.
    pub fn new(file_type: u8, ext_type: u32, nextents: u32, file_size: u64) -> Self {
        FmapHeader {
            file_type,
            fmap_version: FAMFS_FMAP_VERSION,
            ext_type,
            nextents,
            file_size,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daxdev_name() {
        let d = DaxdevOut::new(0, b"/dev/dax0.0").unwrap();
        assert_eq!(d.name_bytes(), b"/dev/dax0.0");
        assert!(d.name_is_terminated());
        assert!(DaxdevOut::new(0, &[b'a'; 255]).is_ok());
        assert_eq!(
            DaxdevOut::new(0, &[b'a'; 256]),
            Err(DaxdevNameError { len: 256 })
        );
        assert!(DaxdevOut::new(0, b"").is_err());
        assert!(DaxdevOut::new(0, b"/dev/\0dax").is_err());
        let unterminated = DaxdevOut {
            name: [b'x'; 256],
            ..Default::default()
        };
        assert!(!unterminated.name_is_terminated());
        assert_eq!(unterminated.name_bytes().len(), 256);
    }
}
