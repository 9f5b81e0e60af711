//! Base FUSE wire structs (Linux uapi `fuse.h`, protocol 7.45 layout).
//!
//! Every struct is `#[repr(C)]`, has no implicit padding (checked by the `IntoBytes` derive) and
//! is host-endian like the protocol (little-endian on x86-64 and arm64). Field names follow the
//! kernel's. Parsers copy these structs out of the request buffer (`read_from_bytes`), so callers
//! need not align their buffers.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Derive list shared by every wire struct.
macro_rules! wire_struct {
    ($(#[$m:meta])* pub struct $name:ident ($size:expr) { $($(#[$fm:meta])* pub $f:ident : $t:ty,)* }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
        pub struct $name { $($(#[$fm])* pub $f: $t,)* }

        const _: () = assert!(core::mem::size_of::<$name>() == $size);

        impl $name {
            /// Size of this struct on the wire, in bytes.
            pub const SIZE: usize = $size;
        }
    };
}
pub(crate) use wire_struct;

wire_struct! {
    /// `struct fuse_in_header` (40 bytes): precedes every request.
    pub struct InHeader(40) {
        /// Header plus all arguments, in bytes.
        pub len: u32,
        /// The request's [`Opcode`](crate::abi::Opcode) value.
        pub opcode: u32,
        /// Request id, echoed in the reply. Bit 0 set marks an INTERRUPT.
        pub unique: u64,
        /// Target inode. For GET_DAXDEV: the daxdev index.
        pub nodeid: u64,
        /// Caller's fs uid.
        pub uid: u32,
        /// Caller's fs gid.
        pub gid: u32,
        /// Caller's pid (thread group id).
        pub pid: u32,
        /// Length of request extensions after the arguments, in units of 8 bytes.
        pub total_extlen: u16,
        /// Zero.
        pub padding: u16,
    }
}

wire_struct! {
    /// `struct fuse_out_header` (16 bytes): precedes every reply.
    pub struct OutHeader(16) {
        /// Header plus payload, in bytes; must equal the size of the write(2).
        pub len: u32,
        /// 0 or a negative errno (−511..=−1). For notifications (`unique` 0): the notify code.
        pub error: i32,
        /// Echo of the request's `unique`.
        pub unique: u64,
    }
}

wire_struct! {
    /// `struct fuse_attr` (88 bytes): inode attributes.
    pub struct Attr(88) {
        /// Inode number (`st_ino`).
        pub ino: u64,
        /// Size in bytes. For a famfs file this must equal the fmap `file_size`.
        pub size: u64,
        /// Blocks of 512 bytes.
        pub blocks: u64,
        /// Access time, seconds.
        pub atime: u64,
        /// Modification time, seconds.
        pub mtime: u64,
        /// Change time, seconds.
        pub ctime: u64,
        /// Access time, nanoseconds.
        pub atimensec: u32,
        /// Modification time, nanoseconds.
        pub mtimensec: u32,
        /// Change time, nanoseconds.
        pub ctimensec: u32,
        /// File type and permission bits (`st_mode`).
        pub mode: u32,
        /// Link count.
        pub nlink: u32,
        /// Owner.
        pub uid: u32,
        /// Group.
        pub gid: u32,
        /// Device number for device nodes.
        pub rdev: u32,
        /// Preferred I/O block size.
        pub blksize: u32,
        /// `FUSE_ATTR_*` flags.
        pub flags: u32,
    }
}

wire_struct! {
    /// `struct fuse_kstatfs` (80 bytes).
    pub struct Kstatfs(80) {
        /// Total blocks (of `frsize`).
        pub blocks: u64,
        /// Free blocks.
        pub bfree: u64,
        /// Free blocks available to unprivileged users.
        pub bavail: u64,
        /// Total inodes.
        pub files: u64,
        /// Free inodes.
        pub ffree: u64,
        /// Block size.
        pub bsize: u32,
        /// Maximum name length.
        pub namelen: u32,
        /// Fragment size.
        pub frsize: u32,
        /// Zero.
        pub padding: u32,
        /// Zero.
        pub spare: [u32; 6],
    }
}

wire_struct! {
    /// `struct fuse_file_lock` (24 bytes).
    pub struct FileLock(24) {
        /// First byte.
        pub start: u64,
        /// Last byte (inclusive; `OFFSET_MAX` for "to EOF").
        pub end: u64,
        /// `F_RDLCK`, `F_WRLCK` or `F_UNLCK`.
        pub typ: u32,
        /// Owner's tgid.
        pub pid: u32,
    }
}

wire_struct! {
    /// `struct fuse_entry_out` (128 bytes): reply to LOOKUP (and part of each READDIRPLUS entry).
    pub struct EntryOut(128) {
        /// Node id (0 with a non-zero `entry_valid` caches a negative entry).
        pub nodeid: u64,
        /// Inode generation; (nodeid, generation) must be unique for the mount's lifetime.
        pub generation: u64,
        /// Name cache timeout, seconds.
        pub entry_valid: u64,
        /// Attribute cache timeout, seconds.
        pub attr_valid: u64,
        /// Name cache timeout, nanoseconds.
        pub entry_valid_nsec: u32,
        /// Attribute cache timeout, nanoseconds.
        pub attr_valid_nsec: u32,
        /// The attributes.
        pub attr: Attr,
    }
}

wire_struct! {
    /// `struct fuse_forget_in` (8 bytes).
    pub struct ForgetIn(8) {
        /// Number of lookups to drop.
        pub nlookup: u64,
    }
}

wire_struct! {
    /// `struct fuse_forget_one` (16 bytes): one entry of a BATCH_FORGET.
    pub struct ForgetOne(16) {
        /// The node.
        pub nodeid: u64,
        /// Number of lookups to drop.
        pub nlookup: u64,
    }
}

wire_struct! {
    /// `struct fuse_batch_forget_in` (8 bytes), followed by `count` × [`ForgetOne`].
    pub struct BatchForgetIn(8) {
        /// Number of entries that follow.
        pub count: u32,
        /// Zero.
        pub dummy: u32,
    }
}

wire_struct! {
    /// `struct fuse_getattr_in` (16 bytes).
    pub struct GetattrIn(16) {
        /// `FUSE_GETATTR_FH` if `fh` is valid.
        pub getattr_flags: u32,
        /// Zero.
        pub dummy: u32,
        /// File handle.
        pub fh: u64,
    }
}

wire_struct! {
    /// `struct fuse_attr_out` (104 bytes): reply to GETATTR and SETATTR.
    pub struct AttrOut(104) {
        /// Attribute cache timeout, seconds.
        pub attr_valid: u64,
        /// Attribute cache timeout, nanoseconds.
        pub attr_valid_nsec: u32,
        /// Zero.
        pub dummy: u32,
        /// The attributes.
        pub attr: Attr,
    }
}

wire_struct! {
    /// `struct fuse_setattr_in` (88 bytes).
    pub struct SetattrIn(88) {
        /// `FATTR_*` bits saying which fields are valid.
        pub valid: u32,
        /// Zero.
        pub padding: u32,
        /// File handle (with `FATTR_FH`).
        pub fh: u64,
        /// New size (with `FATTR_SIZE`).
        pub size: u64,
        /// Lock owner (with `FATTR_LOCKOWNER`).
        pub lock_owner: u64,
        /// Access time, seconds.
        pub atime: u64,
        /// Modification time, seconds.
        pub mtime: u64,
        /// Change time, seconds.
        pub ctime: u64,
        /// Access time, nanoseconds.
        pub atimensec: u32,
        /// Modification time, nanoseconds.
        pub mtimensec: u32,
        /// Change time, nanoseconds.
        pub ctimensec: u32,
        /// New mode.
        pub mode: u32,
        /// Unused.
        pub unused4: u32,
        /// New owner.
        pub uid: u32,
        /// New group.
        pub gid: u32,
        /// Unused.
        pub unused5: u32,
    }
}

wire_struct! {
    /// `struct fuse_open_in` (8 bytes): OPEN and OPENDIR.
    pub struct OpenIn(8) {
        /// open(2) flags (`O_*`), without O_CREAT/O_EXCL/O_NOCTTY.
        pub flags: u32,
        /// `FUSE_OPEN_*` flags.
        pub open_flags: u32,
    }
}

wire_struct! {
    /// `struct fuse_create_in` (16 bytes), followed by the NUL-terminated name.
    pub struct CreateIn(16) {
        /// open(2) flags.
        pub flags: u32,
        /// Mode of the new file.
        pub mode: u32,
        /// The caller's umask.
        pub umask: u32,
        /// `FUSE_OPEN_*` flags.
        pub open_flags: u32,
    }
}

wire_struct! {
    /// `struct fuse_open_out` (16 bytes): reply to OPEN and OPENDIR.
    pub struct OpenOut(16) {
        /// File handle chosen by the server, echoed in later requests.
        pub fh: u64,
        /// `FOPEN_*` flags.
        pub open_flags: u32,
        /// Backing file id for passthrough (0 otherwise).
        pub backing_id: i32,
    }
}

wire_struct! {
    /// `struct fuse_release_in` (24 bytes): RELEASE and RELEASEDIR.
    pub struct ReleaseIn(24) {
        /// File handle.
        pub fh: u64,
        /// open(2) flags of the file.
        pub flags: u32,
        /// `FUSE_RELEASE_*` flags.
        pub release_flags: u32,
        /// Lock owner (for `FUSE_RELEASE_FLOCK_UNLOCK`).
        pub lock_owner: u64,
    }
}

wire_struct! {
    /// `struct fuse_flush_in` (24 bytes).
    pub struct FlushIn(24) {
        /// File handle.
        pub fh: u64,
        /// Unused.
        pub unused: u32,
        /// Zero.
        pub padding: u32,
        /// Lock owner.
        pub lock_owner: u64,
    }
}

wire_struct! {
    /// `struct fuse_read_in` (40 bytes): READ, READDIR, READDIRPLUS.
    pub struct ReadIn(40) {
        /// File handle.
        pub fh: u64,
        /// Offset (for READDIR: the `off` cookie of the last entry returned).
        pub offset: u64,
        /// Maximum reply payload size.
        pub size: u32,
        /// `FUSE_READ_*` flags.
        pub read_flags: u32,
        /// Lock owner (with `FUSE_READ_LOCKOWNER`).
        pub lock_owner: u64,
        /// open(2) flags.
        pub flags: u32,
        /// Zero.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_write_in` (40 bytes), followed by `size` data bytes.
    pub struct WriteIn(40) {
        /// File handle.
        pub fh: u64,
        /// File offset.
        pub offset: u64,
        /// Number of data bytes that follow.
        pub size: u32,
        /// `FUSE_WRITE_*` flags.
        pub write_flags: u32,
        /// Lock owner (with `FUSE_WRITE_LOCKOWNER`).
        pub lock_owner: u64,
        /// open(2) flags.
        pub flags: u32,
        /// Zero.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_write_out` (8 bytes).
    pub struct WriteOut(8) {
        /// Bytes written.
        pub size: u32,
        /// Zero.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_statfs_out` (80 bytes).
    pub struct StatfsOut(80) {
        /// The statistics.
        pub st: Kstatfs,
    }
}

wire_struct! {
    /// `struct fuse_fsync_in` (16 bytes): FSYNC and FSYNCDIR.
    pub struct FsyncIn(16) {
        /// File handle.
        pub fh: u64,
        /// `FUSE_FSYNC_FDATASYNC`.
        pub fsync_flags: u32,
        /// Zero.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_getxattr_in` (8 bytes): GETXATTR (then the name) and LISTXATTR. The famfs
    /// dev-variant GET_FMAP reuses it to carry the kernel's buffer size.
    pub struct GetxattrIn(8) {
        /// Caller's buffer size; 0 asks for the value's size only.
        pub size: u32,
        /// Zero.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_getxattr_out` (8 bytes): reply to a size probe (`size` 0).
    pub struct GetxattrOut(8) {
        /// Size of the value (or of the name list).
        pub size: u32,
        /// Zero.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_lk_in` (48 bytes): GETLK, SETLK, SETLKW.
    pub struct LkIn(48) {
        /// File handle.
        pub fh: u64,
        /// Lock owner.
        pub owner: u64,
        /// The lock.
        pub lk: FileLock,
        /// `FUSE_LK_FLOCK` for flock(2) requests.
        pub lk_flags: u32,
        /// Zero.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_lk_out` (24 bytes): reply to GETLK.
    pub struct LkOut(24) {
        /// The conflicting lock, or `F_UNLCK`.
        pub lk: FileLock,
    }
}

wire_struct! {
    /// `struct fuse_access_in` (8 bytes).
    pub struct AccessIn(8) {
        /// `R_OK | W_OK | X_OK` or `F_OK`.
        pub mask: u32,
        /// Zero.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_interrupt_in` (8 bytes).
    pub struct InterruptIn(8) {
        /// `unique` of the request to interrupt.
        pub unique: u64,
    }
}

wire_struct! {
    /// `struct fuse_lseek_in` (24 bytes).
    pub struct LseekIn(24) {
        /// File handle.
        pub fh: u64,
        /// Start offset.
        pub offset: u64,
        /// `SEEK_DATA` (3) or `SEEK_HOLE` (4) (others are handled by the kernel).
        pub whence: u32,
        /// Zero.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_lseek_out` (8 bytes).
    pub struct LseekOut(8) {
        /// Resulting offset.
        pub offset: u64,
    }
}

wire_struct! {
    /// `struct fuse_dirent` without its name (24 bytes); the name follows, padded to 8 bytes.
    pub struct Dirent(24) {
        /// Inode number.
        pub ino: u64,
        /// Cookie the kernel passes back as `ReadIn::offset` to continue after this entry.
        pub off: u64,
        /// Name length in bytes (no NUL).
        pub namelen: u32,
        /// `DT_*` type.
        pub typ: u32,
    }
}

wire_struct! {
    /// `struct fuse_direntplus` without its name (152 bytes).
    pub struct DirentPlus(152) {
        /// Lookup result for the entry (counts as a lookup when `nodeid` ≠ 0).
        pub entry_out: EntryOut,
        /// The dirent.
        pub dirent: Dirent,
    }
}

wire_struct! {
    /// `struct fuse_notify_inval_inode_out` (24 bytes): invalidate cached data of an inode.
    pub struct NotifyInvalInodeOut(24) {
        /// The inode.
        pub ino: u64,
        /// Start offset (negative: attributes only).
        pub off: i64,
        /// Length (≤ 0: to EOF).
        pub len: i64,
    }
}

wire_struct! {
    /// `struct fuse_notify_inval_entry_out` (16 bytes), followed by the name and a NUL.
    pub struct NotifyInvalEntryOut(16) {
        /// Parent directory.
        pub parent: u64,
        /// Name length (no NUL).
        pub namelen: u32,
        /// `FUSE_EXPIRE_ONLY` or 0.
        pub flags: u32,
    }
}

impl InHeader {
    /// A header with the given `unique` and `nodeid`; `len` and `opcode` are filled in when a
    /// request is encoded, everything else is zero.
    pub fn new(unique: u64, nodeid: u64) -> Self {
        InHeader {
            unique,
            nodeid,
            ..Default::default()
        }
    }
}

impl OutHeader {
    /// The header of a successful reply carrying `payload_len` bytes after it. Use this with
    /// writev(2) to send data from elsewhere without copying it behind the header.
    pub fn success(unique: u64, payload_len: usize) -> Self {
        OutHeader {
            len: (OutHeader::SIZE + payload_len) as u32,
            error: 0,
            unique,
        }
    }
}

impl EntryOut {
    /// An entry with both timeouts set from `timeout`.
    pub fn new(nodeid: u64, generation: u64, attr: Attr, timeout: core::time::Duration) -> Self {
        EntryOut {
            nodeid,
            generation,
            entry_valid: timeout.as_secs(),
            attr_valid: timeout.as_secs(),
            entry_valid_nsec: timeout.subsec_nanos(),
            attr_valid_nsec: timeout.subsec_nanos(),
            attr,
        }
    }
}

impl AttrOut {
    /// Attributes with a cache timeout.
    pub fn new(attr: Attr, timeout: core::time::Duration) -> Self {
        AttrOut {
            attr_valid: timeout.as_secs(),
            attr_valid_nsec: timeout.subsec_nanos(),
            dummy: 0,
            attr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        let e = EntryOut::new(
            5,
            0,
            Attr::default(),
            core::time::Duration::from_millis(1500),
        );
        assert_eq!((e.entry_valid, e.entry_valid_nsec), (1, 500_000_000));
        assert_eq!((e.attr_valid, e.attr_valid_nsec), (1, 500_000_000));
        let a = AttrOut::new(Attr::default(), core::time::Duration::from_secs(3));
        assert_eq!((a.attr_valid, a.attr_valid_nsec), (3, 0));
    }
}
