//! Raw wire definitions: `#[repr(C)]` zerocopy structs, constants and the [`Opcode`] newtype.
//!
//! This is the layer the C header `vendor-headers/include/famfs_fuse_abi.h` mirrors; a test there
//! compiles the header and compares every size, offset and constant with these definitions.

mod consts;
mod famfs;
mod fuse;
mod init;
mod opcode;
mod uring;

pub use consts::*;
pub use famfs::*;
pub use fuse::*;
pub use init::*;
pub use opcode::Opcode;
pub use uring::*;
