//! famfs file maps: where each byte of a famfs file lives on the dax devices.
//!
//! A famfs file is pre-allocated: its map never changes after creation. The map is either a list
//! of simple extents concatenated in file order, or a list of interleaved extents, each striping
//! its share of the file over several strips in fixed-size chunks, round robin. This crate holds
//! the one file-map type every other crate converts to and from: famfs-log from the on-media log
//! entry, fuse-famfs-proto to and from the GET_FMAP wire message, famfs-fsdev to read and write
//! a file's bytes.
//!
//! | item | what |
//! |---|---|
//! | [`Fmap`], [`FmapKind`], [`Extent`], [`InterleavedExtent`] | the map of a file of `file_size` bytes |
//! | [`InterleavedExtent::capacity`] | the bytes an interleaved extent's strips can hold |
//! | [`Fmap::striped`] | an interleaved map with each extent's `nbytes` set to its share of the file |
//! | [`Fmap::check_geometry`] | every byte below the file size resolves inside the extents |
//! | [`Fmap::resolve`] | the kernel's linear walk: [`FileOffset`] → device index and [`DevOffset`] |
//! | [`Resolver`] | the same answers in O(log n) with precomputed prefix sums and shifts |
//!
//! No I/O and no unsafe code. Resolving never allocates and never panics, whatever the map.
//!
//! ```
//! use famfs_fmap::{DevOffset, Extent, FileOffset, Fmap, InterleavedExtent};
//!
//! const MIB: u64 = 1 << 20;
//! // 10 MiB striped over 4 strips of 4 MiB in 2 MiB chunks.
//! let strips = (0..4).map(|i| Extent::new(0, (16 + 4 * i) * MIB, 4 * MIB)).collect();
//! let fmap = Fmap::striped(10 * MIB, vec![InterleavedExtent::new(2 * MIB, strips)]);
//! assert_eq!(fmap.capacity(), 16 * MIB);
//! fmap.check_geometry().unwrap();
//! // File offset 7 MiB is in chunk 3: strip 3, stripe 0, 1 MiB into the chunk.
//! let at = fmap.resolver().resolve(FileOffset(7 * MIB)).unwrap();
//! assert_eq!((at.dev_index, at.dev_offset), (0, DevOffset(28 * MIB + MIB)));
//! assert_eq!(fmap.resolve(FileOffset(7 * MIB)), Some(at));
//! ```

#![forbid(unsafe_code)]

mod geometry;
mod map;
mod offset;
mod resolve;

pub use geometry::GeometryError;
pub use map::{Extent, Fmap, FmapKind, InterleavedExtent};
pub use offset::{DevOffset, FileOffset};
pub use resolve::{Resolved, Resolver};
