//! GET_FMAP: a file's map in the form the kernel's ABI generation takes.

use fuse_famfs_proto::reply;
use fuse_famfs_proto::{AbiGeneration, Errno};

use famfs_log::namespace::Ino;

use super::Reply;
use crate::FileSystem;

/// Answer GET_FMAP for `ino`: V1 (no argument) gets the map as it is; the development
/// generation (which sends its buffer `size`) gets simple extents only
/// ([`AbiGeneration::of_get_fmap`], [`AbiGeneration::adapt_fmap`]).
pub(super) fn get_fmap(
    fs: &FileSystem,
    ino: Ino,
    size: Option<u32>,
    unique: u64,
    out: &mut [u8],
) -> Result<Reply, Errno> {
    let (file_type, fmap) = fs
        .fmap(ino)
        .map_err(|e| if e == Errno::EISDIR { Errno::ENOENT } else { e })?;
    let generation = AbiGeneration::of_get_fmap(size);
    let fmap = generation.adapt_fmap(&fmap);
    reply::get_fmap(out, unique, &fmap, file_type, generation, size)
        .map(Reply::Bytes)
        .map_err(|e| {
            tracing::error!("GET_FMAP for inode {ino}: {e}");
            Errno::EINVAL
        })
}
