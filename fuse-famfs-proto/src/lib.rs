//! The FUSE wire protocol with the famfs extension, as a reusable crate with no I/O.
//!
//! famfs serves files whose data lives in shared (CXL) memory exposed as a dax device. A
//! famfs-enabled kernel asks the FUSE server for each file's map with `FUSE_GET_FMAP` (opcode 54)
//! after OPEN, and for each dax device's path with `FUSE_GET_DAXDEV` (55), then resolves every
//! read, write and page fault itself. The capability is the INIT flag
//! [`FUSE_DAX_FMAP`](abi::FUSE_DAX_FMAP) (bit 43, i.e. bit 11 of `flags2`, which needs
//! `FUSE_INIT_EXT`).
//!
//! | module | what |
//! |---|---|
//! | [`abi`] | `#[repr(C)]` zerocopy wire structs, constants, the [`Opcode`](abi::Opcode) newtype, the FUSE-over-io_uring ring entry ([`UringReqHeader`](abi::UringReqHeader)) |
//! | [`request`] | `&[u8]` → [`Request`] (and back, for harnesses playing the kernel) |
//! | [`reply`] | reply builders into `&mut [u8]`, INIT negotiation, dirent packing; [`ReplyRef`](reply::ReplyRef) parses replies |
//! | [`fmap`] | the GET_FMAP message of an [`Fmap`] (the `famfs-fmap` type, re-exported): encode ([`FmapWire`]), parse ([`FmapMessage`]), the kernel's validation with its errnos |
//! | [`generation`] | [`AbiGeneration`]: every rule that differs between kernel generations, telling them apart, unrolling maps for the one without interleave |
//! | [`errno`] | [`Errno`], a reply-safe errno |
//!
//! The hot paths (request parsing, reply building, fmap encoding, resolving) never allocate and
//! never panic on bad input; [`FmapMessage::parse`] allocates the extent lists once the counts
//! have been checked against the payload. The fault resolver is `famfs-fmap`'s
//! ([`fmap::Resolver`]).
//!
//! # Tests, benchmarks, fuzzing
//!
//! - `cargo test -p fuse-famfs-proto`: golden bytes built from the protocol tables
//!   (`tests/golden.rs`), every kernel rejection rule with its errno (`tests/kernel_rules.rs`),
//!   property tests against a naive layout model (`tests/fmap_props.rs`), and fuzz-style
//!   property tests on arbitrary bytes for every parser (`tests/fuzz_props.rs`).
//! - `cargo bench -p fuse-famfs-proto`: ns/op for fmap build/parse and for resolving 1 M random
//!   offsets, against the targets and against baselines measured in the same run.
//! - `scripts/fuzz.sh [SECONDS] [request fmap reply]`: the libFuzzer targets under `fuzz/`
//!   (on the stable toolchain), seeded by `tests/fuzz_seeds.rs`; results in `fuzz/README.md`.
//! - `cargo test -p vendor-headers`: compiles the C header `famfs_fuse_abi.h` and compares every
//!   struct layout and constant with [`abi`].
//!
//! # Example: a minimal server answering GET_FMAP for one file
//!
//! ```
//! use fuse_famfs_proto::{AbiGeneration, Errno, Fmap, FmapMessage, Operation, Request, reply};
//! use fuse_famfs_proto::fmap::{DevOffset, Extent, FileOffset, FileType, InterleavedExtent};
//! use fuse_famfs_proto::abi::DaxdevOut;
//!
//! const MIB: u64 = 1 << 20;
//! const FILE_NODE: u64 = 2;
//!
//! // The one file: 10 MiB striped over 4 strips of 4 MiB in 2 MiB chunks, on dax device 0.
//! let strips = (0..4).map(|i| Extent::new(0, (16 + 4 * i) * MIB, 4 * MIB)).collect();
//! let fmap = Fmap::striped(10 * MIB, vec![InterleavedExtent::new(2 * MIB, strips)]);
//! fmap.check_geometry().expect("strips hold every chunk");
//!
//! /// Answers one request read from /dev/fuse; returns the reply bytes to write.
//! fn serve<'o>(req: &[u8], fmap: &Fmap, out: &'o mut [u8]) -> Option<&'o [u8]> {
//!     let n = match Request::parse(req) {
//!         Ok(r) => {
//!             let unique = r.header.unique;
//!             match r.op {
//!                 Operation::GetFmap { size } if r.header.nodeid == FILE_NODE => {
//!                     // The kernel's generation shows in the request; it may need the map
//!                     // unrolled into simple extents.
//!                     let generation = AbiGeneration::of_get_fmap(size);
//!                     let fmap = generation.adapt_fmap(fmap);
//!                     match reply::get_fmap(out, unique, &fmap, FileType::Regular, generation, size) {
//!                         Ok(n) => n,
//!                         Err(_) => reply::error(out, unique, Errno::EINVAL).ok()?,
//!                     }
//!                 }
//!                 Operation::GetFmap { .. } => reply::error(out, unique, Errno::ENOENT).ok()?,
//!                 Operation::GetDaxdev { index: 0 } => {
//!                     let dev = DaxdevOut::new(0, b"/dev/dax0.0").ok()?;
//!                     reply::daxdev(out, unique, &dev).ok()?
//!                 }
//!                 op if !op.opcode().expects_reply() => return None,
//!                 _ => reply::error(out, unique, Errno::ENOSYS).ok()?,
//!             }
//!         }
//!         // A malformed request still has a header to answer, unless it needs no answer.
//!         Err(e) => {
//!             let (unique, errno) = e.reply_errno()?;
//!             reply::error(out, unique, errno).ok()?
//!         }
//!     };
//!     Some(&out[..n])
//! }
//!
//! // What the kernel sends after OPEN (V3–V10 form: the header alone, nodeid = the file).
//! let req = Request::new(10, FILE_NODE, Operation::GetFmap { size: None }).to_bytes().unwrap();
//! let mut out = vec![0u8; 16 + 4096];
//! let bytes = serve(&req, &fmap, &mut out).unwrap();
//!
//! // The kernel's side: check the reply and resolve a fault.
//! let r = reply::ReplyRef::parse(bytes).unwrap();
//! let got = FmapMessage::parse(r.payload, AbiGeneration::V1).unwrap();
//! assert_eq!((got.file_type, &got.fmap), (FileType::Regular, &fmap));
//! let at = got.fmap.resolver().resolve(FileOffset(7 * MIB)).unwrap(); // chunk 3: strip 3, stripe 0
//! assert_eq!((at.dev_index, at.dev_offset), (0, DevOffset(28 * MIB + MIB)));
//! ```

#![forbid(unsafe_code)]

pub mod abi;
pub mod errno;
pub mod fmap;
pub mod generation;
pub mod reply;
pub mod request;

pub use errno::Errno;
pub use fmap::{Fmap, FmapError, FmapMessage, FmapWire};
pub use generation::AbiGeneration;
pub use request::{Operation, Request, RequestError};
