//! `famfs_fused`, the famfs FUSE daemon, as a library.
//!
//! The daemon replays the famfs metadata log into an in-memory tree and serves it over its own
//! FUSE session (`/dev/fuse`, or any connected socket in tests):
//!
//! * On a famfs-enabled kernel (the kernel offers `FUSE_DAX_FMAP`, the daemon has
//!   `CAP_SYS_RAWIO` and the device is in famfs mode) it answers `GET_FMAP` with each file's
//!   extents and `GET_DAXDEV` with the device path; the kernel then maps file pages straight onto
//!   the device. Such a device cannot be mapped by the daemon: it reads its superblock and log
//!   through its own mount (`.meta/.superblock`, `.meta/.log`, mapped by the kernel like any
//!   file), see [`meta`].
//! * On a stock kernel it serves READ and WRITE itself from a shared mapping of the device, in
//!   `direct_io` mode with `FUSE_DIRECT_IO_ALLOW_MMAP`: every read(2) fetches the bytes from
//!   the shared memory (no page cache that could go stale when another host writes), and mmap
//!   still works.
//!
//! New log entries appended by the master — through this mount's `.meta/.log` or from another
//! host — are picked up by a watcher ([`watch`]) and by lookups that miss, so files appear on
//! clients by themselves.
//!
//! Layers, top down:
//!
//! | piece | what |
//! |---|---|
//! | [`session`], [`transport`] | INIT on the first descriptor, then the transport: FUSE over io_uring (a queue per CPU) or the /dev/fuse read/writev loop |
//! | [`Adapter`] | the protocol adapter: request bytes in, [`Reply`] out; owns `unique` and the reply bytes; [`Connection`] is what INIT settled |
//! | [`FileSystem`] | the model: typed answers (entries, attributes, listings, maps, READ segments, writes, statfs, xattrs) |
//! | `open`, `refresh`, `attr` | opening a device (probe, role, log), picking up new log entries (stall policy), attribute policy |
//! | [`meta`] | where the metadata is read: the device mapping, or the daemon's own mount (famfs-mode devices) |
//! | [`mount`], [`watch`] | mount(2) of `/dev/fuse`; the log watcher thread |
//! | [`control`] | the CLI's request channel: appends (creat, mkdir, cp, clone) and status |
//! | [`stats`] | request counters by opcode and errno, and `user.famfs.stats` (what `famfs status` shows) |
//! | [`ready`] | the readiness channel: one line to `famfs mount` once serving, or the error |
#![deny(unsafe_op_in_unsafe_fn)]

mod adapter;
mod attr;
#[cfg(feature = "cli")]
pub mod cli;
mod config;
pub mod control;
mod error;
pub mod meta;
mod model;
pub mod mount;
mod open;
pub mod ready;
mod refresh;
pub mod session;
pub mod stats;
pub mod transport;
pub mod watch;

pub use adapter::{Adapter, Connection, Handshake, Reply, has_cap_sys_rawio};
pub use config::{Config, DaxPolicy, MetaAccess, Transport};
pub use error::{FAMFS_KERNEL_NEEDED_MARK, ServerError};
pub use model::{DirEntry, FileSystem};
