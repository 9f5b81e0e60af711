//! C headers written by the famfs-rs project for the famfs ABI.
//!
//! `include/famfs_fuse_abi.h` states the FUSE wire protocol as famfs uses it: the base FUSE
//! structs a famfs server needs (protocol 7.45 layout), the INIT/open/lock flag constants, and the
//! famfs extension (`FUSE_GET_FMAP` = 54, `FUSE_GET_DAXDEV` = 55, `FUSE_DAX_FMAP` = bit 43, the
//! fmap header, simple and interleaved extents, the GET_DAXDEV reply). It is written from the
//! project's protocol notes, not copied from the kernel.
//!
//! The test `tests/abi_layout.rs` compiles a C program against the header with `cc` and checks
//! the size and alignment of every struct, the offset and size of every field and the value of
//! every constant against the Rust definitions in `fuse-famfs-proto`, and that the header and the
//! Rust side list the same structs, fields and constants.

use std::path::{Path, PathBuf};

/// File name of the famfs FUSE ABI header.
pub const FAMFS_FUSE_ABI_H_NAME: &str = "famfs_fuse_abi.h";

/// Text of `famfs_fuse_abi.h`.
pub const FAMFS_FUSE_ABI_H: &str = include_str!("../include/famfs_fuse_abi.h");

/// The directory to pass to a C compiler with `-I` (inside this crate's source tree).
pub fn include_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("include")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_where_it_says() {
        let on_disk = std::fs::read_to_string(include_dir().join(FAMFS_FUSE_ABI_H_NAME)).unwrap();
        assert_eq!(on_disk, FAMFS_FUSE_ABI_H);
        assert!(FAMFS_FUSE_ABI_H.contains("#define FUSE_GET_FMAP 54"));
    }
}
