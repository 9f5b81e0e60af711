/* SPDX-License-Identifier: Apache-2.0 */
/*
 * famfs_fuse_abi.h - the FUSE wire protocol as used by famfs, stated by the famfs-rs project.
 *
 * Written for famfs-rs from the project's protocol notes:
 * the base FUSE messages a famfs server needs (protocol 7.45 layout) and the famfs extension
 * posted for Linux in the "famfs: port into fuse" series V3..V10 (GET_FMAP = 54,
 * GET_DAXDEV = 55, INIT flag FUSE_DAX_FMAP = bit 43). It is not a copy of the kernel's uapi
 * header; names follow the kernel's so code can be moved between the two.
 *
 * Every struct and constant here is checked against the Rust crate fuse-famfs-proto by
 * vendor-headers/tests/abi_layout.rs (sizeof, alignment, offsetof and sizeof of every field,
 * the value of every constant).
 *
 * All integers are host-endian (little-endian on x86-64 and arm64). No struct has implicit
 * padding.
 */
#ifndef FAMFS_FUSE_ABI_H
#define FAMFS_FUSE_ABI_H

#include <stdint.h>

/* ---------------------------------------------------------------- versions and fixed values */

#define FUSE_KERNEL_VERSION 7
#define FUSE_KERNEL_MINOR_VERSION 45
#define FUSE_ROOT_ID 1
#define FUSE_MIN_READ_BUFFER 8192
#define FUSE_INT_REQ_BIT 1
#define FUSE_DEV_IOC_MAGIC 229

/* Reply sizes expected by kernels with an older minor version. */
#define FUSE_COMPAT_INIT_OUT_SIZE 8
#define FUSE_COMPAT_22_INIT_OUT_SIZE 24
#define FUSE_COMPAT_ENTRY_OUT_SIZE 120
#define FUSE_COMPAT_ATTR_OUT_SIZE 96
#define FUSE_COMPAT_STATFS_SIZE 48
#define FUSE_COMPAT_WRITE_IN_SIZE 24

/* ---------------------------------------------------------------- opcodes (fuse_in_header.opcode) */

#define FUSE_LOOKUP 1
#define FUSE_FORGET 2
#define FUSE_GETATTR 3
#define FUSE_SETATTR 4
#define FUSE_READLINK 5
#define FUSE_SYMLINK 6
#define FUSE_MKNOD 8
#define FUSE_MKDIR 9
#define FUSE_UNLINK 10
#define FUSE_RMDIR 11
#define FUSE_RENAME 12
#define FUSE_LINK 13
#define FUSE_OPEN 14
#define FUSE_READ 15
#define FUSE_WRITE 16
#define FUSE_STATFS 17
#define FUSE_RELEASE 18
#define FUSE_FSYNC 20
#define FUSE_SETXATTR 21
#define FUSE_GETXATTR 22
#define FUSE_LISTXATTR 23
#define FUSE_REMOVEXATTR 24
#define FUSE_FLUSH 25
#define FUSE_INIT 26
#define FUSE_OPENDIR 27
#define FUSE_READDIR 28
#define FUSE_RELEASEDIR 29
#define FUSE_FSYNCDIR 30
#define FUSE_GETLK 31
#define FUSE_SETLK 32
#define FUSE_SETLKW 33
#define FUSE_ACCESS 34
#define FUSE_CREATE 35
#define FUSE_INTERRUPT 36
#define FUSE_BMAP 37
#define FUSE_DESTROY 38
#define FUSE_IOCTL 39
#define FUSE_POLL 40
#define FUSE_NOTIFY_REPLY 41
#define FUSE_BATCH_FORGET 42
#define FUSE_FALLOCATE 43
#define FUSE_READDIRPLUS 44
#define FUSE_RENAME2 45
#define FUSE_LSEEK 46
#define FUSE_COPY_FILE_RANGE 47
#define FUSE_SETUPMAPPING 48
#define FUSE_REMOVEMAPPING 49
#define FUSE_SYNCFS 50
#define FUSE_TMPFILE 51
#define FUSE_STATX 52
#define FUSE_COPY_FILE_RANGE_64 53
/* famfs: fetch a file's map after OPEN (request: the header alone, nodeid = the file). */
#define FUSE_GET_FMAP 54
/* famfs: fetch a dax device's path (request: the header alone, nodeid = the device index). */
#define FUSE_GET_DAXDEV 55
#define CUSE_INIT 4096

/* ---------------------------------------------------------------- notification codes */

#define FUSE_NOTIFY_POLL 1
#define FUSE_NOTIFY_INVAL_INODE 2
#define FUSE_NOTIFY_INVAL_ENTRY 3
#define FUSE_NOTIFY_STORE 4
#define FUSE_NOTIFY_RETRIEVE 5
#define FUSE_NOTIFY_DELETE 6
#define FUSE_EXPIRE_ONLY (1U << 0)

/* ---------------------------------------------------------------- INIT flags
 * Bits of the 64-bit flag word. Bits 0..31 travel in fuse_init_in/out.flags; bits 32..63 in
 * flags2 (shifted down by 32), which counts only when FUSE_INIT_EXT is set in flags.
 */

#define FUSE_ASYNC_READ (1ULL << 0)
#define FUSE_POSIX_LOCKS (1ULL << 1)
#define FUSE_FILE_OPS (1ULL << 2)
#define FUSE_ATOMIC_O_TRUNC (1ULL << 3)
#define FUSE_EXPORT_SUPPORT (1ULL << 4)
#define FUSE_BIG_WRITES (1ULL << 5)
#define FUSE_DONT_MASK (1ULL << 6)
#define FUSE_SPLICE_WRITE (1ULL << 7)
#define FUSE_SPLICE_MOVE (1ULL << 8)
#define FUSE_SPLICE_READ (1ULL << 9)
#define FUSE_FLOCK_LOCKS (1ULL << 10)
#define FUSE_HAS_IOCTL_DIR (1ULL << 11)
#define FUSE_AUTO_INVAL_DATA (1ULL << 12)
#define FUSE_DO_READDIRPLUS (1ULL << 13)
#define FUSE_READDIRPLUS_AUTO (1ULL << 14)
#define FUSE_ASYNC_DIO (1ULL << 15)
#define FUSE_WRITEBACK_CACHE (1ULL << 16)
#define FUSE_NO_OPEN_SUPPORT (1ULL << 17)
#define FUSE_PARALLEL_DIROPS (1ULL << 18)
#define FUSE_HANDLE_KILLPRIV (1ULL << 19)
#define FUSE_POSIX_ACL (1ULL << 20)
#define FUSE_ABORT_ERROR (1ULL << 21)
#define FUSE_MAX_PAGES (1ULL << 22)
#define FUSE_CACHE_SYMLINKS (1ULL << 23)
#define FUSE_NO_OPENDIR_SUPPORT (1ULL << 24)
#define FUSE_EXPLICIT_INVAL_DATA (1ULL << 25)
#define FUSE_MAP_ALIGNMENT (1ULL << 26)
#define FUSE_SUBMOUNTS (1ULL << 27)
#define FUSE_HANDLE_KILLPRIV_V2 (1ULL << 28)
#define FUSE_SETXATTR_EXT (1ULL << 29)
#define FUSE_INIT_EXT (1ULL << 30)
#define FUSE_INIT_RESERVED (1ULL << 31)
#define FUSE_SECURITY_CTX (1ULL << 32)
#define FUSE_HAS_INODE_DAX (1ULL << 33)
#define FUSE_CREATE_SUPP_GROUP (1ULL << 34)
#define FUSE_HAS_EXPIRE_ONLY (1ULL << 35)
#define FUSE_DIRECT_IO_ALLOW_MMAP (1ULL << 36)
#define FUSE_PASSTHROUGH (1ULL << 37)
#define FUSE_NO_EXPORT_SUPPORT (1ULL << 38)
#define FUSE_HAS_RESEND (1ULL << 39)
#define FUSE_ALLOW_IDMAP (1ULL << 40)
#define FUSE_OVER_IO_URING (1ULL << 41)
#define FUSE_REQUEST_TIMEOUT (1ULL << 42)
/* famfs: the kernel resolves faults from GET_FMAP maps; flags2 bit 11 (0x800). */
#define FUSE_DAX_FMAP (1ULL << 43)

/* ---------------------------------------------------------------- per-request flag bits */

/* fuse_open_out.open_flags */
#define FOPEN_DIRECT_IO (1U << 0)
#define FOPEN_KEEP_CACHE (1U << 1)
#define FOPEN_NONSEEKABLE (1U << 2)
#define FOPEN_CACHE_DIR (1U << 3)
#define FOPEN_STREAM (1U << 4)
#define FOPEN_NOFLUSH (1U << 5)
#define FOPEN_PARALLEL_DIRECT_WRITES (1U << 6)
#define FOPEN_PASSTHROUGH (1U << 7)

/* fuse_open_in.open_flags */
#define FUSE_OPEN_KILL_SUIDGID (1U << 0)

/* fuse_getattr_in.getattr_flags */
#define FUSE_GETATTR_FH (1U << 0)

/* fuse_setattr_in.valid */
#define FATTR_MODE (1U << 0)
#define FATTR_UID (1U << 1)
#define FATTR_GID (1U << 2)
#define FATTR_SIZE (1U << 3)
#define FATTR_ATIME (1U << 4)
#define FATTR_MTIME (1U << 5)
#define FATTR_FH (1U << 6)
#define FATTR_ATIME_NOW (1U << 7)
#define FATTR_MTIME_NOW (1U << 8)
#define FATTR_LOCKOWNER (1U << 9)
#define FATTR_CTIME (1U << 10)
#define FATTR_KILL_SUIDGID (1U << 11)

/* fuse_release_in.release_flags */
#define FUSE_RELEASE_FLUSH (1U << 0)
#define FUSE_RELEASE_FLOCK_UNLOCK (1U << 1)

/* fuse_lk_in.lk_flags: the request comes from flock(2), not fcntl(2) */
#define FUSE_LK_FLOCK (1U << 0)

/* fuse_read_in.read_flags */
#define FUSE_READ_LOCKOWNER (1U << 1)

/* fuse_write_in.write_flags */
#define FUSE_WRITE_CACHE (1U << 0)
#define FUSE_WRITE_LOCKOWNER (1U << 1)
#define FUSE_WRITE_KILL_SUIDGID (1U << 2)

/* fuse_fsync_in.fsync_flags */
#define FUSE_FSYNC_FDATASYNC (1U << 0)

/*
 * fuse_file_lock.type takes the fcntl(2) lock types F_RDLCK, F_WRLCK, F_UNLCK (flock(2)'s
 * LOCK_SH, LOCK_EX, LOCK_UN map onto them) and fuse_dirent.type the DT_* values of readdir(3);
 * include <fcntl.h> and <dirent.h> for those.
 */

/* A dirent's name follows its fixed part at this offset; records are padded to 8 bytes. */
#define FUSE_NAME_OFFSET 24
#define FUSE_NAME_OFFSET_DIRENTPLUS 152
#define FUSE_NAME_MAX 1024
#define FUSE_DIRENT_ALIGN(len) (((len) + 7) & ~(uint64_t)7)

/* ---------------------------------------------------------------- famfs values */

#define FAMFS_FMAP_VERSION 1
/* Caps checked by the V3..V10 kernels (nextents for both extent types; strips per iext). */
#define FUSE_FAMFS_MAX_EXTENTS 32
#define FUSE_FAMFS_MAX_STRIPS 32
/* Defined by the posted uapi, used by no kernel seen. */
#define FAMFS_FMAP_MAX 32768
/* Extent offsets and lengths and chunk sizes must be multiples of this (PMD_SIZE). */
#define FAMFS_EXTENT_ALIGN (2ULL * 1024 * 1024)
#define DAXDEV_NAME_MAX 256
#define FAMFS_MAX_DAXDEVS 24

/* fuse_famfs_fmap_header.file_type (stored, never acted on by the kernel) */
#define FUSE_FAMFS_FILE_REG 0
#define FUSE_FAMFS_FILE_SUPERBLOCK 1
#define FUSE_FAMFS_FILE_LOG 2

/* fuse_famfs_fmap_header.ext_type */
#define FUSE_FAMFS_EXT_SIMPLE 0
#define FUSE_FAMFS_EXT_INTERLEAVE 1

/* ---------------------------------------------------------------- headers */

/* Precedes every request. */
struct fuse_in_header {
	uint32_t len;          /* header plus arguments, bytes */
	uint32_t opcode;
	uint64_t unique;       /* echoed in the reply */
	uint64_t nodeid;       /* GET_DAXDEV: the daxdev index */
	uint32_t uid;
	uint32_t gid;
	uint32_t pid;
	uint16_t total_extlen; /* extensions after the arguments, in 8-byte units */
	uint16_t padding;
};

/* Precedes every reply. */
struct fuse_out_header {
	uint32_t len;          /* header plus payload; equals the write(2) size */
	int32_t error;         /* 0 or -errno (-511..-1); notify code when unique is 0 */
	uint64_t unique;
};

/* ---------------------------------------------------------------- attributes and entries */

struct fuse_attr {
	uint64_t ino;
	uint64_t size;
	uint64_t blocks;
	uint64_t atime;
	uint64_t mtime;
	uint64_t ctime;
	uint32_t atimensec;
	uint32_t mtimensec;
	uint32_t ctimensec;
	uint32_t mode;
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint32_t rdev;
	uint32_t blksize;
	uint32_t flags;
};

struct fuse_kstatfs {
	uint64_t blocks;
	uint64_t bfree;
	uint64_t bavail;
	uint64_t files;
	uint64_t ffree;
	uint32_t bsize;
	uint32_t namelen;
	uint32_t frsize;
	uint32_t padding;
	uint32_t spare[6];
};

struct fuse_file_lock {
	uint64_t start;
	uint64_t end;
	uint32_t type;
	uint32_t pid;
};

struct fuse_entry_out {
	uint64_t nodeid;
	uint64_t generation;
	uint64_t entry_valid;
	uint64_t attr_valid;
	uint32_t entry_valid_nsec;
	uint32_t attr_valid_nsec;
	struct fuse_attr attr;
};

struct fuse_attr_out {
	uint64_t attr_valid;
	uint32_t attr_valid_nsec;
	uint32_t dummy;
	struct fuse_attr attr;
};

/* ---------------------------------------------------------------- request arguments */

struct fuse_forget_in {
	uint64_t nlookup;
};

struct fuse_forget_one {
	uint64_t nodeid;
	uint64_t nlookup;
};

/* Followed by count x struct fuse_forget_one. */
struct fuse_batch_forget_in {
	uint32_t count;
	uint32_t dummy;
};

struct fuse_getattr_in {
	uint32_t getattr_flags;
	uint32_t dummy;
	uint64_t fh;
};

struct fuse_setattr_in {
	uint32_t valid;
	uint32_t padding;
	uint64_t fh;
	uint64_t size;
	uint64_t lock_owner;
	uint64_t atime;
	uint64_t mtime;
	uint64_t ctime;
	uint32_t atimensec;
	uint32_t mtimensec;
	uint32_t ctimensec;
	uint32_t mode;
	uint32_t unused4;
	uint32_t uid;
	uint32_t gid;
	uint32_t unused5;
};

struct fuse_open_in {
	uint32_t flags;
	uint32_t open_flags;
};

/* Followed by the NUL-terminated name. */
struct fuse_create_in {
	uint32_t flags;
	uint32_t mode;
	uint32_t umask;
	uint32_t open_flags;
};

struct fuse_open_out {
	uint64_t fh;
	uint32_t open_flags;
	int32_t backing_id;
};

struct fuse_release_in {
	uint64_t fh;
	uint32_t flags;
	uint32_t release_flags;
	uint64_t lock_owner;
};

struct fuse_flush_in {
	uint64_t fh;
	uint32_t unused;
	uint32_t padding;
	uint64_t lock_owner;
};

/* READ, READDIR and READDIRPLUS. */
struct fuse_read_in {
	uint64_t fh;
	uint64_t offset;
	uint32_t size;
	uint32_t read_flags;
	uint64_t lock_owner;
	uint32_t flags;
	uint32_t padding;
};

/* Followed by size bytes of data. */
struct fuse_write_in {
	uint64_t fh;
	uint64_t offset;
	uint32_t size;
	uint32_t write_flags;
	uint64_t lock_owner;
	uint32_t flags;
	uint32_t padding;
};

struct fuse_write_out {
	uint32_t size;
	uint32_t padding;
};

struct fuse_statfs_out {
	struct fuse_kstatfs st;
};

struct fuse_fsync_in {
	uint64_t fh;
	uint32_t fsync_flags;
	uint32_t padding;
};

/* GETXATTR (followed by the name) and LISTXATTR; the famfs dev variant's GET_FMAP too. */
struct fuse_getxattr_in {
	uint32_t size;
	uint32_t padding;
};

struct fuse_getxattr_out {
	uint32_t size;
	uint32_t padding;
};

struct fuse_lk_in {
	uint64_t fh;
	uint64_t owner;
	struct fuse_file_lock lk;
	uint32_t lk_flags;
	uint32_t padding;
};

struct fuse_lk_out {
	struct fuse_file_lock lk;
};

struct fuse_access_in {
	uint32_t mask;
	uint32_t padding;
};

struct fuse_init_in {
	uint32_t major;
	uint32_t minor;
	uint32_t max_readahead;
	uint32_t flags;
	uint32_t flags2;       /* famfs: bit 11 = FUSE_DAX_FMAP >> 32 */
	uint32_t unused[11];
};

struct fuse_init_out {
	uint32_t major;
	uint32_t minor;
	uint32_t max_readahead;
	uint32_t flags;
	uint16_t max_background;
	uint16_t congestion_threshold;
	uint32_t max_write;
	uint32_t time_gran;
	uint16_t max_pages;
	uint16_t map_alignment;
	uint32_t flags2;       /* famfs: set bit 11 to accept FUSE_DAX_FMAP */
	uint32_t max_stack_depth;
	uint16_t request_timeout;
	uint16_t unused[11];
};

struct fuse_interrupt_in {
	uint64_t unique;
};

struct fuse_lseek_in {
	uint64_t fh;
	uint64_t offset;
	uint32_t whence;
	uint32_t padding;
};

struct fuse_lseek_out {
	uint64_t offset;
};

/* The fixed part of a READDIR record; namelen name bytes follow at FUSE_NAME_OFFSET. */
struct fuse_dirent {
	uint64_t ino;
	uint64_t off;
	uint32_t namelen;
	uint32_t type;
};

/* The fixed part of a READDIRPLUS record; the name follows at FUSE_NAME_OFFSET_DIRENTPLUS. */
struct fuse_direntplus {
	struct fuse_entry_out entry_out;
	struct fuse_dirent dirent;
};

struct fuse_notify_inval_inode_out {
	uint64_t ino;
	int64_t off;
	int64_t len;
};

/* Followed by the name and a NUL. */
struct fuse_notify_inval_entry_out {
	uint64_t parent;
	uint32_t namelen;
	uint32_t flags;
};

/* ---------------------------------------------------------------- famfs messages */

/*
 * GET_FMAP reply: this header, then
 *   ext_type SIMPLE:     nextents x struct fuse_famfs_simple_ext;
 *   ext_type INTERLEAVE: for each of nextents interleaved extents, a struct fuse_famfs_iext
 *                        followed by its ie_nstrips x struct fuse_famfs_simple_ext.
 * V3..V10 kernels receive at most 4096 bytes.
 */
struct fuse_famfs_fmap_header {
	uint8_t file_type;     /* FUSE_FAMFS_FILE_* */
	uint8_t reserved;
	uint16_t fmap_version; /* FAMFS_FMAP_VERSION */
	uint32_t ext_type;     /* FUSE_FAMFS_EXT_* */
	uint32_t nextents;
	uint32_t fmap_size;    /* V3..V10: reserved0 (zero); dev variant: total reply bytes */
	uint64_t file_size;
	uint64_t reserved1;
};

/* A simple extent, also one strip of an interleaved extent. */
struct fuse_famfs_simple_ext {
	uint32_t se_devindex;  /* V3..V10: must be 0 */
	uint32_t reserved;
	uint64_t se_offset;    /* multiple of FAMFS_EXTENT_ALIGN */
	uint64_t se_len;       /* multiple of FAMFS_EXTENT_ALIGN */
};

struct fuse_famfs_iext {
	uint32_t ie_nstrips;   /* 1..FUSE_FAMFS_MAX_STRIPS */
	uint32_t ie_chunk_size; /* multiple of FAMFS_EXTENT_ALIGN */
	uint64_t ie_nbytes;    /* file bytes covered; not 0 */
	uint64_t reserved;
};

/* Defined for completeness; V3..V10 kernels send no argument with GET_DAXDEV. */
struct fuse_get_daxdev_in {
	uint32_t daxdev_num;
};

/* GET_DAXDEV reply: exactly this many bytes. */
struct fuse_daxdev_out {
	uint16_t index;
	uint16_t reserved;
	uint32_t reserved2;
	uint64_t reserved3;
	uint64_t reserved4;
	char name[DAXDEV_NAME_MAX]; /* NUL-terminated absolute path of the dax device */
};

/* Dev variant push ioctl payload (FUSE_DEV_IOC_DAXDEV_OPEN; request number not settled). */
struct fuse_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t daxdev_index;
};

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct fuse_in_header) == 40, "fuse_in_header");
_Static_assert(sizeof(struct fuse_out_header) == 16, "fuse_out_header");
_Static_assert(sizeof(struct fuse_attr) == 88, "fuse_attr");
_Static_assert(sizeof(struct fuse_entry_out) == 128, "fuse_entry_out");
_Static_assert(sizeof(struct fuse_attr_out) == 104, "fuse_attr_out");
_Static_assert(sizeof(struct fuse_init_in) == 64, "fuse_init_in");
_Static_assert(sizeof(struct fuse_init_out) == 64, "fuse_init_out");
_Static_assert(sizeof(struct fuse_famfs_fmap_header) == 32, "fuse_famfs_fmap_header");
_Static_assert(sizeof(struct fuse_famfs_simple_ext) == 24, "fuse_famfs_simple_ext");
_Static_assert(sizeof(struct fuse_famfs_iext) == 24, "fuse_famfs_iext");
_Static_assert(sizeof(struct fuse_daxdev_out) == 280, "fuse_daxdev_out");
#endif

#endif /* FAMFS_FUSE_ABI_H */
