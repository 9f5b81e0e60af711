//! The on-media layout, byte for byte (x86-64 / little-endian, as the reference writes it).
//!
//! These are raw views for copying bytes in and out; [`crate::superblock`] and
//! [`crate::entry`] turn them into checked, typed values. Every struct is `Unaligned` and has no
//! implicit padding (explicit `_pad` fields stand where the C compiler put padding), so the
//! `IntoBytes` derive proves the layout has no hidden bytes.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Superblock magic, `ts_magic`.
pub const SUPER_MAGIC: u64 = 0x87b2_82ff;
/// The only superblock version this implementation (and the reference) accepts.
pub const CURRENT_VERSION: u64 = 48;
/// On-media format version written in `ts_omf_ver_major` / `_minor`.
pub const OMF_VERSION: (u32, u32) = (2, 2);
/// Size of the superblock region; also the device offset of the log.
pub const SUPERBLOCK_REGION: u64 = 0x20_0000;
/// Device offset of the metadata log (always 2 MiB).
pub const LOG_OFFSET: u64 = 0x20_0000;
/// Default and minimum log length (8 MiB).
pub const DEFAULT_LOG_LEN: u64 = 0x80_0000;
/// Allocation unit (2 MiB).
pub const ALLOC_UNIT: u64 = 0x20_0000;
/// Log header magic, `famfs_log_magic`.
pub const LOG_MAGIC: u64 = 0x0BAD_CAFE_F00D;
/// Size of the log header in bytes.
pub const LOG_HEADER_SIZE: usize = 48;
/// Size of one log entry in bytes.
pub const LOG_ENTRY_SIZE: usize = 544;
/// Bytes of an entry covered by its CRC (all but the trailing CRC field).
pub const LOG_ENTRY_CRC_LEN: usize = LOG_ENTRY_SIZE - 8;
/// Size of the relative-path fields (`fm_relpath`, `md_relpath`), NUL included.
pub const RELPATH_FIELD: usize = 80;
/// Longest relative path: the field minus its NUL.
pub const RELPATH_MAX: usize = RELPATH_FIELD - 1;
/// Most simple extents a FILE entry can hold.
pub const MAX_SIMPLE_EXTENTS: usize = 16;
/// Most interleaved extents a FILE entry can hold.
pub const MAX_INTERLEAVED_EXTENTS: usize = 1;
/// Most strips in one interleaved extent.
pub const MAX_STRIPS: usize = 16;
/// Most allocation buckets for interleaved allocation.
pub const MAX_NBUCKETS: u64 = 64;
/// `fm_flags` value the reference CLI always writes (`FAMFS_FM_ALL_HOSTS_RW`).
pub const FM_ALL_HOSTS_RW: u32 = 2;
/// Largest device size a superblock may claim: 4 PiB, the x86-64 physical address space
/// (52 bits), which no dax device can exceed. The free-space bitmap built from the claimed size
/// then stays below 256 MiB; an untrusted superblock cannot make replay allocate more.
pub const MAX_DEVICE_SIZE: u64 = 1 << 52;
/// Length of the device-name field in the superblock.
pub const DEVNAME_LEN: usize = 64;
/// Bytes of the superblock covered by its CRC.
pub const SUPERBLOCK_CRC_LEN: usize = 96;
/// Size of the on-media superblock (`struct famfs_superblock`) in bytes.
pub const SUPERBLOCK_SIZE: usize = 200;

/// Log entry types (`famfs_log_entry_type`).
pub mod entry_type {
    /// A file.
    pub const FILE: u32 = 0;
    /// A directory.
    pub const MKDIR: u32 = 1;
    /// Reserved; never produced.
    pub const DELETE: u32 = 2;
    /// A device added to the file system (format version 48).
    pub const ADD_DAXDEV: u32 = 3;
}

/// Extent list types (`famfs_extent_type`).
pub mod ext_type {
    /// A list of simple extents.
    pub const SIMPLE: u32 = 0;
    /// Interleaved (striped) extents.
    pub const INTERLEAVE: u32 = 1;
}

/// `struct famfs_daxdev` inside the superblock (88 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawDaxdev {
    /// Device size in bytes (`dd_size`).
    pub size: U64,
    /// Device UUID (`dd_uuid`, unused).
    pub uuid: [u8; 16],
    /// Device path as typed at mkfs (`dd_daxdev`), zero padded.
    pub name: [u8; DEVNAME_LEN],
}

/// `struct famfs_superblock` (200 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawSuperblock {
    /// `ts_magic`.
    pub magic: U64,
    /// `ts_version`.
    pub version: U64,
    /// `ts_log_offset`.
    pub log_offset: U64,
    /// `ts_log_len`.
    pub log_len: U64,
    /// `ts_alloc_unit`.
    pub alloc_unit: U64,
    /// `ts_omf_ver_major`.
    pub omf_major: U32,
    /// `ts_omf_ver_minor`.
    pub omf_minor: U32,
    /// `ts_uuid`.
    pub uuid: [u8; 16],
    /// `ts_dev_uuid`.
    pub dev_uuid: [u8; 16],
    /// `ts_system_uuid`.
    pub system_uuid: [u8; 16],
    /// `ts_crc`.
    pub crc: U64,
    /// `ts_sb_flags`.
    pub sb_flags: U32,
    /// Padding at 108..112.
    pub _pad: [u8; 4],
    /// `ts_daxdev`.
    pub daxdev: RawDaxdev,
}

/// `struct famfs_log` header (48 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawLogHeader {
    /// `famfs_log_magic`.
    pub magic: U64,
    /// `famfs_log_len`.
    pub len: U64,
    /// `famfs_log_last_index`.
    pub last_index: U64,
    /// `famfs_log_crc` (CRC32 of bytes 0..24).
    pub crc: U64,
    /// `famfs_log_next_seqnum`.
    pub next_seqnum: U64,
    /// `famfs_log_next_index`.
    pub next_index: U64,
}

/// `struct famfs_simple_extent` (24 bytes).
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawSimpleExtent {
    /// `se_devindex`.
    pub devindex: U64,
    /// `se_offset`.
    pub offset: U64,
    /// `se_len`.
    pub len: U64,
}

/// `struct famfs_interleaved_ext` (400 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawInterleavedExt {
    /// `ie_nstrips`.
    pub nstrips: U64,
    /// `ie_chunk_size`.
    pub chunk_size: U64,
    /// `ie_strips`.
    pub strips: [RawSimpleExtent; MAX_STRIPS],
}

/// `struct famfs_log_fmap` (416 bytes); the extent area is a union, kept as bytes.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawFmap {
    /// `fmap_ext_type`.
    pub ext_type: U32,
    /// Padding at 4..8.
    pub _pad0: [u8; 4],
    /// `fmap_nextents` / `fmap_niext`.
    pub nextents: U32,
    /// Padding at 12..16.
    pub _pad1: [u8; 4],
    /// `se[16]` (384 bytes) or `ie[1]` (400 bytes).
    pub body: [u8; 400],
}

/// `struct famfs_log_file_meta` (520 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawFileMeta {
    /// `fm_size`.
    pub size: U64,
    /// `fm_flags`.
    pub flags: U32,
    /// `fm_uid`.
    pub uid: U32,
    /// `fm_gid`.
    pub gid: U32,
    /// `fm_mode`.
    pub mode: U32,
    /// `fm_relpath`.
    pub relpath: [u8; RELPATH_FIELD],
    /// `fm_fmap`.
    pub fmap: RawFmap,
}

/// `struct famfs_log_mkdir` (92 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawMkdir {
    /// `md_uid`.
    pub uid: U32,
    /// `md_gid`.
    pub gid: U32,
    /// `md_mode`.
    pub mode: U32,
    /// `md_relpath`.
    pub relpath: [u8; RELPATH_FIELD],
}

/// `struct famfs_log_add_daxdev` (32 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawAddDaxdev {
    /// `dd_size`.
    pub size: U64,
    /// `dd_uuid`.
    pub uuid: [u8; 16],
    /// `dd_index`.
    pub index: U32,
    /// Padding at 28..32.
    pub _pad: [u8; 4],
}

/// `struct famfs_log_entry` (544 bytes); the payload is a union, kept as bytes.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawLogEntry {
    /// `famfs_log_entry_seqnum`.
    pub seqnum: U64,
    /// `famfs_log_entry_type`.
    pub entry_type: U32,
    /// Padding at 12..16 (CRC-covered, must be zero).
    pub _pad: [u8; 4],
    /// The union payload (520 bytes).
    pub payload: [u8; 520],
    /// `famfs_log_entry_crc`: CRC32 of bytes 0..536.
    pub crc: U64,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<RawSuperblock>() == SUPERBLOCK_SIZE);
    assert!(offset_of!(RawSuperblock, crc) == 96);
    assert!(offset_of!(RawSuperblock, sb_flags) == 104);
    assert!(offset_of!(RawSuperblock, daxdev) == 112);
    assert!(size_of::<RawDaxdev>() == 88);
    assert!(size_of::<RawLogHeader>() == LOG_HEADER_SIZE);
    assert!(size_of::<RawLogEntry>() == LOG_ENTRY_SIZE);
    assert!(offset_of!(RawLogEntry, payload) == 16);
    assert!(offset_of!(RawLogEntry, crc) == 536);
    assert!(size_of::<RawFileMeta>() == 520);
    assert!(offset_of!(RawFileMeta, relpath) == 24);
    assert!(offset_of!(RawFileMeta, fmap) == 104);
    assert!(size_of::<RawFmap>() == 416);
    assert!(size_of::<RawSimpleExtent>() == 24);
    assert!(size_of::<RawInterleavedExt>() == 400);
    assert!(size_of::<RawMkdir>() == 92);
    assert!(size_of::<RawAddDaxdev>() == 32);
};

/// Number of entry slots in a log of `log_len` bytes: ⌊(len − 48) / 544⌋.
pub fn log_slots(log_len: u64) -> u64 {
    log_len.saturating_sub(LOG_HEADER_SIZE as u64) / LOG_ENTRY_SIZE as u64
}

/// Byte offset of entry `index` inside the log.
pub fn entry_offset(index: u64) -> u64 {
    LOG_HEADER_SIZE as u64 + LOG_ENTRY_SIZE as u64 * index
}

/// zlib `crc32(0, bytes)`: CRC-32/ISO-HDLC, the checksum every famfs structure uses.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(&[0u8; LOG_ENTRY_CRC_LEN]), 0x11E5_C2A9);
    }

    #[test]
    fn capacity_table_from_the_reference() {
        for (len, slots, tail) in [
            (8u64 << 20, 15420u64, 80u64),
            (16 << 20, 30840, 208),
            (32 << 20, 61680, 464),
            (64 << 20, 123361, 432),
            (256 << 20, 493447, 240),
            (1 << 30, 1973790, 16),
        ] {
            assert_eq!(log_slots(len), slots, "log_len {len}");
            assert_eq!(len - entry_offset(slots), tail, "tail of {len}");
        }
    }
}
