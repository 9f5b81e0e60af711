//! The famfs on-media format, byte-compatible with the reference C user space (superblock
//! version 48): superblock, metadata log, allocator, replay, fsck and mkfs.
//!
//! Everything works over [`famfs_fsdev::Media`] — a device mapping, a mounted meta file, or
//! memory — and treats every byte read from it as untrusted: a corrupt or hostile log gives a
//! typed error or a skipped entry ([`replay::Problem`]), never a panic, and never a path outside
//! the file system.
//!
//! * [`layout`]: offsets, sizes and raw structs; [`superblock`], [`header`], [`entry`],
//!   [`fmap`], [`path`]: checked decoding and encoding of each structure.
//! * [`replay`]: applying entries to a [`namespace::Namespace`] and an [`alloc::Bitmap`].
//! * [`Famfs`]: an open file system; [`Famfs::refresh`] picks up new entries and notices a log
//!   rewritten under it ([`Rewritten`]), [`Famfs::reload`] replays it again;
//!   [`Famfs::writer`] gives the master a locked [`Writer`] that appends.
//! * [`mkfs()`], [`FsckReport`], [`role`].
//!
//! ```
//! use famfs_fsdev::{Media, MemMedia};
//! use famfs_log::{Famfs, MkfsOptions, OpenOptions, mkfs, namespace::Attr, alloc::AllocPolicy};
//!
//! let dev = MemMedia::new(16 << 20);
//! let me = uuid::Uuid::new_v4();
//! let mut opts = MkfsOptions::new(me, "/dev/dax0.0");
//! opts.min_device_size = 0; // a tiny device, for the example
//! mkfs(&dev, 1 << 30, &opts).unwrap();
//! let mut fs = Famfs::open_device(dev, OpenOptions { system_uuid: Some(me), ..Default::default() }).unwrap();
//! let attr = Attr { mode: 0o644, uid: 0, gid: 0 };
//! let mut w = fs.writer().unwrap();
//! w.mkdir_p("data/set1".as_ref(), Attr { mode: 0o755, ..attr }).unwrap();
//! let (ino, entry) = w.create("data/set1/a.arrow".as_ref(), 5 << 20, attr, &AllocPolicy::Contiguous).unwrap();
//! drop(w);
//! assert_eq!(fs.state().namespace().resolve(b"data/set1/a.arrow").unwrap(), ino);
//! assert_eq!(entry.fmap.allocated_bytes(), 6 << 20);
//! ```
#![deny(unsafe_code)]

pub mod alloc;
pub mod entry;
mod error;
pub mod fmap;
mod fs;
mod fsck;
pub mod header;
pub mod layout;
mod mkfs;
pub mod namespace;
mod offset;
pub mod path;
mod prefetch;
pub mod replay;
mod rewrite;
pub mod role;
pub mod superblock;

pub use error::{LogError, Rewritten};
pub use fs::{Famfs, OpenOptions, RefreshReport, ReplayMode, Writer};
pub use fsck::{Capacity, FsckReport};
pub use mkfs::{MIN_MKFS_DEVICE_SIZE, MkfsOptions, MkfsOutcome, check_log_len, mkfs};
pub use offset::OffsetMedia;
