//! Protocol constants: versions, INIT flags, open/release/lock/attr flag bits, famfs values.
//!
//! Names are the kernel's, so they can be grepped against `include/uapi/linux/fuse.h` and our own
//! `vendor-headers/include/famfs_fuse_abi.h`. INIT flags are given as bits of the 64-bit flag word
//! (`flags | flags2 << 32`); see [`crate::abi::InitIn::flags64`].

// ---- versions and fixed values ----

/// Protocol major version spoken by this crate.
pub const FUSE_KERNEL_VERSION: u32 = 7;
/// Protocol minor version of the base this crate follows (Linux 6.19 header, 7.45). The famfs
/// patches add a "7.46" changelog entry but do not bump the constant; famfs is negotiated by the
/// [`FUSE_DAX_FMAP`] INIT flag alone.
pub const FUSE_KERNEL_MINOR_VERSION: u32 = 45;
/// Node id of the root directory.
pub const FUSE_ROOT_ID: u64 = 1;
/// Smallest read buffer the kernel accepts on /dev/fuse.
pub const FUSE_MIN_READ_BUFFER: usize = 8192;
/// Bit 0 of `fuse_in_header.unique` marks an INTERRUPT request.
pub const FUSE_INT_REQ_BIT: u64 = 1;
/// `ioctl` magic of /dev/fuse (`FUSE_DEV_IOC_MAGIC`).
pub const FUSE_DEV_IOC_MAGIC: u32 = 229;

// ---- notification codes (fuse_out_header.error when unique is 0) ----

/// `FUSE_NOTIFY_POLL`.
pub const FUSE_NOTIFY_POLL: i32 = 1;
/// `FUSE_NOTIFY_INVAL_INODE`: drop cached data/attributes of an inode.
pub const FUSE_NOTIFY_INVAL_INODE: i32 = 2;
/// `FUSE_NOTIFY_INVAL_ENTRY`: drop a cached name.
pub const FUSE_NOTIFY_INVAL_ENTRY: i32 = 3;
/// `FUSE_NOTIFY_STORE`.
pub const FUSE_NOTIFY_STORE: i32 = 4;
/// `FUSE_NOTIFY_RETRIEVE`.
pub const FUSE_NOTIFY_RETRIEVE: i32 = 5;
/// `FUSE_NOTIFY_DELETE`: a name was deleted.
pub const FUSE_NOTIFY_DELETE: i32 = 6;
/// `FUSE_EXPIRE_ONLY` (`fuse_notify_inval_entry_out.flags`): expire instead of drop.
pub const FUSE_EXPIRE_ONLY: u32 = 1 << 0;

// ---- compat reply sizes for old minors ----

/// `fuse_init_out` size for minor < 5.
pub const FUSE_COMPAT_INIT_OUT_SIZE: usize = 8;
/// `fuse_init_out` size for minor < 23.
pub const FUSE_COMPAT_22_INIT_OUT_SIZE: usize = 24;
/// `fuse_entry_out` size for minor < 9.
pub const FUSE_COMPAT_ENTRY_OUT_SIZE: usize = 120;
/// `fuse_attr_out` size for minor < 9.
pub const FUSE_COMPAT_ATTR_OUT_SIZE: usize = 96;
/// `fuse_statfs_out` size for minor < 4.
pub const FUSE_COMPAT_STATFS_SIZE: usize = 48;
/// `fuse_write_in` size for minor < 9.
pub const FUSE_COMPAT_WRITE_IN_SIZE: usize = 24;

// ---- INIT flags (bits of the 64-bit flags word) ----

/// Asynchronous read requests.
pub const FUSE_ASYNC_READ: u64 = 1 << 0;
/// Remote POSIX locks.
pub const FUSE_POSIX_LOCKS: u64 = 1 << 1;
/// Kernel sends file handles for fstat etc.
pub const FUSE_FILE_OPS: u64 = 1 << 2;
/// Handles O_TRUNC inside open.
pub const FUSE_ATOMIC_O_TRUNC: u64 = 1 << 3;
/// Handles lookups of "." and "..".
pub const FUSE_EXPORT_SUPPORT: u64 = 1 << 4;
/// Writes larger than 4 KiB.
pub const FUSE_BIG_WRITES: u64 = 1 << 5;
/// Do not apply umask to mode on create.
pub const FUSE_DONT_MASK: u64 = 1 << 6;
/// Kernel supports splice write on the device.
pub const FUSE_SPLICE_WRITE: u64 = 1 << 7;
/// Kernel supports splice move on the device.
pub const FUSE_SPLICE_MOVE: u64 = 1 << 8;
/// Kernel supports splice read on the device.
pub const FUSE_SPLICE_READ: u64 = 1 << 9;
/// Remote flock locks (`SETLK` with `FUSE_LK_FLOCK`).
pub const FUSE_FLOCK_LOCKS: u64 = 1 << 10;
/// Kernel supports ioctl on directories.
pub const FUSE_HAS_IOCTL_DIR: u64 = 1 << 11;
/// Automatically invalidate cached pages.
pub const FUSE_AUTO_INVAL_DATA: u64 = 1 << 12;
/// READDIRPLUS supported.
pub const FUSE_DO_READDIRPLUS: u64 = 1 << 13;
/// Adaptive readdirplus.
pub const FUSE_READDIRPLUS_AUTO: u64 = 1 << 14;
/// Asynchronous direct I/O.
pub const FUSE_ASYNC_DIO: u64 = 1 << 15;
/// Writeback caching.
pub const FUSE_WRITEBACK_CACHE: u64 = 1 << 16;
/// Kernel supports zero-message opens.
pub const FUSE_NO_OPEN_SUPPORT: u64 = 1 << 17;
/// Parallel lookups and readdir in one directory.
pub const FUSE_PARALLEL_DIROPS: u64 = 1 << 18;
/// Server handles killing suid/sgid on write/chown/truncate.
pub const FUSE_HANDLE_KILLPRIV: u64 = 1 << 19;
/// POSIX ACL support.
pub const FUSE_POSIX_ACL: u64 = 1 << 20;
/// Reading the device after abort returns ECONNABORTED.
pub const FUSE_ABORT_ERROR: u64 = 1 << 21;
/// `fuse_init_out.max_pages` is valid.
pub const FUSE_MAX_PAGES: u64 = 1 << 22;
/// Cache READLINK responses.
pub const FUSE_CACHE_SYMLINKS: u64 = 1 << 23;
/// Kernel supports zero-message opendir.
pub const FUSE_NO_OPENDIR_SUPPORT: u64 = 1 << 24;
/// Only invalidate cached pages on explicit request.
pub const FUSE_EXPLICIT_INVAL_DATA: u64 = 1 << 25;
/// `fuse_init_out.map_alignment` is valid.
pub const FUSE_MAP_ALIGNMENT: u64 = 1 << 26;
/// Kernel supports auto-mounting submounts.
pub const FUSE_SUBMOUNTS: u64 = 1 << 27;
/// Server handles killing suid/sgid (v2 semantics).
pub const FUSE_HANDLE_KILLPRIV_V2: u64 = 1 << 28;
/// Extended `fuse_setxattr_in`.
pub const FUSE_SETXATTR_EXT: u64 = 1 << 29;
/// `flags2` is valid: carries bits 32..63 of the flag word. Needed for [`FUSE_DAX_FMAP`].
pub const FUSE_INIT_EXT: u64 = 1 << 30;
/// Reserved, do not use.
pub const FUSE_INIT_RESERVED: u64 = 1 << 31;
/// Security context on create (flags2 bit 0).
pub const FUSE_SECURITY_CTX: u64 = 1 << 32;
/// Per-inode DAX (virtio-fs) (flags2 bit 1).
pub const FUSE_HAS_INODE_DAX: u64 = 1 << 33;
/// Supplementary group on create (flags2 bit 2).
pub const FUSE_CREATE_SUPP_GROUP: u64 = 1 << 34;
/// Expire-only invalidation (flags2 bit 3).
pub const FUSE_HAS_EXPIRE_ONLY: u64 = 1 << 35;
/// Allow shared mmap with FOPEN_DIRECT_IO (flags2 bit 4).
pub const FUSE_DIRECT_IO_ALLOW_MMAP: u64 = 1 << 36;
/// Passthrough (flags2 bit 5).
pub const FUSE_PASSTHROUGH: u64 = 1 << 37;
/// Explicitly no export support (flags2 bit 6).
pub const FUSE_NO_EXPORT_SUPPORT: u64 = 1 << 38;
/// Kernel supports request resend (flags2 bit 7).
pub const FUSE_HAS_RESEND: u64 = 1 << 39;
/// Idmapped mounts (flags2 bit 8).
pub const FUSE_ALLOW_IDMAP: u64 = 1 << 40;
/// io_uring transport (flags2 bit 9).
pub const FUSE_OVER_IO_URING: u64 = 1 << 41;
/// `fuse_init_out.request_timeout` is valid (flags2 bit 10). The 2025 famfs RFCs used this bit
/// for FUSE_DAX_FMAP; it is upstream's now.
pub const FUSE_REQUEST_TIMEOUT: u64 = 1 << 42;
/// famfs: the kernel resolves faults from fmaps fetched with GET_FMAP (flags2 bit 11, `0x800`).
///
/// Only meaningful together with [`FUSE_INIT_EXT`] in `flags`. The kernel offers it only when the
/// mounting task has CAP_SYS_RAWIO, and enables famfs only if the reply carries it too.
pub const FUSE_DAX_FMAP: u64 = 1 << 43;

// ---- open_out.open_flags (FOPEN_*) ----

/// Bypass the page cache for this open file.
pub const FOPEN_DIRECT_IO: u32 = 1 << 0;
/// Do not invalidate the data cache on open.
pub const FOPEN_KEEP_CACHE: u32 = 1 << 1;
/// The file is not seekable.
pub const FOPEN_NONSEEKABLE: u32 = 1 << 2;
/// Allow caching this directory.
pub const FOPEN_CACHE_DIR: u32 = 1 << 3;
/// The file is stream-like (no file position).
pub const FOPEN_STREAM: u32 = 1 << 4;
/// Do not flush data cache on close.
pub const FOPEN_NOFLUSH: u32 = 1 << 5;
/// Allow concurrent direct writes on the same inode.
pub const FOPEN_PARALLEL_DIRECT_WRITES: u32 = 1 << 6;
/// Passthrough read/write to a backing file.
pub const FOPEN_PASSTHROUGH: u32 = 1 << 7;

// ---- open_in.open_flags ----

/// Kill suid/sgid on open (with FUSE_HANDLE_KILLPRIV_V2).
pub const FUSE_OPEN_KILL_SUIDGID: u32 = 1 << 0;

// ---- getattr_in.getattr_flags ----

/// `fuse_getattr_in.fh` is valid.
pub const FUSE_GETATTR_FH: u32 = 1 << 0;

// ---- setattr_in.valid (FATTR_*) ----

/// `mode` is valid.
pub const FATTR_MODE: u32 = 1 << 0;
/// `uid` is valid.
pub const FATTR_UID: u32 = 1 << 1;
/// `gid` is valid.
pub const FATTR_GID: u32 = 1 << 2;
/// `size` is valid (truncate).
pub const FATTR_SIZE: u32 = 1 << 3;
/// `atime` is valid.
pub const FATTR_ATIME: u32 = 1 << 4;
/// `mtime` is valid.
pub const FATTR_MTIME: u32 = 1 << 5;
/// `fh` is valid.
pub const FATTR_FH: u32 = 1 << 6;
/// Set atime to now.
pub const FATTR_ATIME_NOW: u32 = 1 << 7;
/// Set mtime to now.
pub const FATTR_MTIME_NOW: u32 = 1 << 8;
/// `lock_owner` is valid.
pub const FATTR_LOCKOWNER: u32 = 1 << 9;
/// `ctime` is valid.
pub const FATTR_CTIME: u32 = 1 << 10;
/// Kill suid/sgid.
pub const FATTR_KILL_SUIDGID: u32 = 1 << 11;

// ---- release / flush / lock / read / write / fsync flags ----

/// Flush on release.
pub const FUSE_RELEASE_FLUSH: u32 = 1 << 0;
/// Release the flock held by this file on release.
pub const FUSE_RELEASE_FLOCK_UNLOCK: u32 = 1 << 1;
/// `fuse_lk_in.lk_flags`: the lock is a BSD flock, not a POSIX lock.
pub const FUSE_LK_FLOCK: u32 = 1 << 0;
/// `fuse_read_in.read_flags`: `lock_owner` is valid.
pub const FUSE_READ_LOCKOWNER: u32 = 1 << 1;
/// `fuse_write_in.write_flags`: delayed write from the page cache.
pub const FUSE_WRITE_CACHE: u32 = 1 << 0;
/// `fuse_write_in.write_flags`: `lock_owner` is valid.
pub const FUSE_WRITE_LOCKOWNER: u32 = 1 << 1;
/// `fuse_write_in.write_flags`: kill suid/sgid.
pub const FUSE_WRITE_KILL_SUIDGID: u32 = 1 << 2;
/// `fuse_fsync_in.fsync_flags`: fdatasync.
pub const FUSE_FSYNC_FDATASYNC: u32 = 1 << 0;

// ---- lock types (fuse_file_lock.type, the F_* values of fcntl) ----

/// Shared (read) lock; also `LOCK_SH` for flock.
pub const F_RDLCK: u32 = 0;
/// Exclusive (write) lock; also `LOCK_EX` for flock.
pub const F_WRLCK: u32 = 1;
/// Unlock; also `LOCK_UN` for flock.
pub const F_UNLCK: u32 = 2;

// ---- directory entry types (fuse_dirent.type, the DT_* values) ----

/// Unknown type.
pub const DT_UNKNOWN: u32 = 0;
/// Named pipe.
pub const DT_FIFO: u32 = 1;
/// Character device.
pub const DT_CHR: u32 = 2;
/// Directory.
pub const DT_DIR: u32 = 4;
/// Block device.
pub const DT_BLK: u32 = 6;
/// Regular file.
pub const DT_REG: u32 = 8;
/// Symbolic link.
pub const DT_LNK: u32 = 10;
/// Socket.
pub const DT_SOCK: u32 = 12;

/// Offset of the name inside a `fuse_dirent` (`FUSE_NAME_OFFSET`).
pub const FUSE_NAME_OFFSET: usize = 24;
/// Offset of the name inside a `fuse_direntplus` (`FUSE_NAME_OFFSET_DIRENTPLUS`).
pub const FUSE_NAME_OFFSET_DIRENTPLUS: usize = 152;
/// Longest name the kernel accepts in a dirent.
pub const FUSE_NAME_MAX: usize = 1024;

/// `FUSE_DIRENT_ALIGN`: rounds a dirent record length up to 8 bytes.
pub const fn fuse_dirent_align(len: usize) -> usize {
    (len + 7) & !7
}

/// The `DT_*` type of a `st_mode` value (`(mode & S_IFMT) >> 12`).
pub const fn dirent_type_from_mode(mode: u32) -> u32 {
    (mode & 0o170000) >> 12
}

// ---- famfs extension ----

/// famfs: `fmap_version` written in every fmap header. No kernel checks it.
pub const FAMFS_FMAP_VERSION: u16 = 1;
/// famfs: `FUSE_FAMFS_MAX_EXTENTS`, the V3–V10 cap on `nextents` (both extent types).
pub const FUSE_FAMFS_MAX_EXTENTS: u32 = 32;
/// famfs: `FUSE_FAMFS_MAX_STRIPS`, the cap on strips per interleaved extent.
pub const FUSE_FAMFS_MAX_STRIPS: u32 = 32;
/// famfs: `FAMFS_FMAP_MAX`, defined in the uapi (32768) but not used by any kernel seen.
pub const FAMFS_FMAP_MAX: u32 = 32768;
/// famfs: alignment of every extent offset/length and chunk size (PMD_SIZE on x86-64).
pub const FAMFS_EXTENT_ALIGN: u64 = 2 * 1024 * 1024;
/// famfs: `DAXDEV_NAME_MAX`, the size of `fuse_daxdev_out.name`.
pub const DAXDEV_NAME_MAX: usize = 256;
/// famfs: daxdev table slots per connection in the kernel (`MAX_DAXDEVS`).
pub const FAMFS_MAX_DAXDEVS: u32 = 24;
/// famfs `enum fuse_famfs_file_type`: regular file.
pub const FUSE_FAMFS_FILE_REG: u8 = 0;
/// famfs `enum fuse_famfs_file_type`: the `.meta/.superblock` file.
pub const FUSE_FAMFS_FILE_SUPERBLOCK: u8 = 1;
/// famfs `enum fuse_famfs_file_type`: the `.meta/.log` file.
pub const FUSE_FAMFS_FILE_LOG: u8 = 2;
/// famfs `enum famfs_ext_type`: a list of simple extents.
pub const FUSE_FAMFS_EXT_SIMPLE: u32 = 0;
/// famfs `enum famfs_ext_type`: a list of interleaved (striped) extents.
pub const FUSE_FAMFS_EXT_INTERLEAVE: u32 = 1;
