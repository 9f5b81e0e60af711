//! `famfs_fused`, the famfs FUSE daemon, as a library.
//!
//! The daemon replays the famfs metadata log into an in-memory tree and serves it over its own
//! FUSE session (`/dev/fuse`, or any connected socket in tests):
//!
//! * On a famfs-enabled kernel (the kernel offers `FUSE_DAX_FMAP` and the daemon has
//!   `CAP_SYS_RAWIO`) it answers `GET_FMAP` with each file's extents and `GET_DAXDEV` with the
//!   device path; the kernel then maps file pages straight onto the device.
//! * On a stock kernel it serves READ and WRITE itself from a shared mapping of the device, in
//!   `direct_io` mode with `FUSE_DIRECT_IO_ALLOW_MMAP`: every read(2) fetches the bytes from
//!   the shared memory (no page cache that could go stale when another host writes), and mmap
//!   still works.
//!
//! New log entries appended by the master — through this mount's `.meta/.log` or from another
//! host — are picked up by a watcher ([`watch`]) and by lookups that miss, so files appear on
//! clients by themselves.
//!
//! [`Server`] holds the state and answers requests ([`Server::handle`]); [`session`] runs the
//! request loop on a file descriptor; [`mount`] mounts `/dev/fuse`.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod cli;
mod config;
mod error;
pub mod mount;
mod ops;
pub mod session;
pub mod watch;

pub use config::{Config, DaxPolicy};
pub use error::ServerError;
pub use ops::{Reply, Server, has_cap_sys_rawio};
