//! Messages shared by the integration tests (`golden.rs` checks their bytes; `fuzz_seeds.rs`
//! seeds the fuzz targets with them).

use fuse_famfs_proto::Fmap;
use fuse_famfs_proto::fmap::{Extent, InterleavedExtent};

const MIB: u64 = 1 << 20;

/// A 12 MiB file over two interleaved extents (2 strips of 2 MiB chunks, then 1 strip of 4 MiB
/// chunks), to check that each interleaved extent is followed by its own strips.
pub fn two_interleaved_extents() -> Fmap {
    Fmap::interleaved(
        12 * MIB,
        vec![
            InterleavedExtent {
                chunk_size: 2 * MIB,
                nbytes: 8 * MIB,
                strips: vec![
                    Extent::new(0, 0, 4 * MIB),
                    Extent::new(0, 32 * MIB, 4 * MIB),
                ],
            },
            InterleavedExtent {
                chunk_size: 4 * MIB,
                nbytes: 4 * MIB,
                strips: vec![Extent::new(0, 96 * MIB, 4 * MIB)],
            },
        ],
    )
}
