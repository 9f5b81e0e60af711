//! GET_FMAP: a file's map in the form the kernel's ABI generation takes.

use fuse_famfs_proto::fmap::{Extent, FmapKind};
use fuse_famfs_proto::reply;
use fuse_famfs_proto::{AbiGeneration, Errno, Fmap};

use super::Reply;
use crate::FileSystem;

/// Answer GET_FMAP for `ino`: V1 (no argument) gets the map as it is; the development
/// generation (which sends its buffer `size`) gets simple extents only.
pub(super) fn get_fmap(
    fs: &FileSystem,
    ino: u64,
    size: Option<u32>,
    unique: u64,
    out: &mut [u8],
) -> Result<Reply, Errno> {
    let mut wire = fs
        .fmap(ino)
        .map_err(|e| if e == Errno::EISDIR { Errno::ENOENT } else { e })?;
    let generation = if size.is_some() {
        AbiGeneration::Dev
    } else {
        AbiGeneration::V1
    };
    if generation == AbiGeneration::Dev {
        wire = unroll(&wire);
    }
    reply::get_fmap(out, unique, &wire, generation, size)
        .map(Reply::Bytes)
        .map_err(|e| {
            tracing::error!("GET_FMAP for inode {ino}: {e}");
            Errno::EINVAL
        })
}

/// Rewrite an interleaved map as the equivalent list of simple extents, one per chunk run (the
/// development kernel variant takes simple extents only; famfs user space does the same).
fn unroll(fmap: &Fmap) -> Fmap {
    let FmapKind::Interleaved(ies) = &fmap.kind else {
        return fmap.clone();
    };
    // Whole chunks, so every extent stays 2 MiB aligned (each strip holds whole chunks; the
    // last chunk may extend past the file size, as the strip does).
    let mut exts: Vec<Extent> = Vec::new();
    let mut start = 0u64;
    for ie in ies {
        let chunk = u64::from(ie.chunk_size);
        let size = ie.nbytes.min(fmap.file_size.saturating_sub(start));
        let mut off = 0;
        while chunk > 0 && off < size {
            let Some(r) = fmap.resolve(start + off) else {
                break;
            };
            match exts.last_mut() {
                Some(last)
                    if last.dev_index == r.dev_index && last.offset + last.len == r.dev_offset =>
                {
                    last.len += chunk;
                }
                _ => exts.push(Extent::new(r.dev_index, r.dev_offset, chunk)),
            }
            off += chunk;
        }
        start += size;
    }
    Fmap {
        file_type: fmap.file_type,
        file_size: fmap.file_size,
        kind: FmapKind::Simple(exts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fuse_famfs_proto::fmap::InterleavedExtent;

    #[test]
    fn unrolled_maps_resolve_identically() {
        const MIB: u64 = 1 << 20;
        let strips = (0..3)
            .map(|i| Extent::new(0, (64 + 8 * i) * MIB, 8 * MIB))
            .collect();
        let f = Fmap::interleaved(
            20 * MIB + 5,
            vec![InterleavedExtent {
                chunk_size: (2 * MIB) as u32,
                nbytes: 20 * MIB + 5,
                strips,
            }],
        );
        let u = unroll(&f);
        assert!(matches!(u.kind, FmapKind::Simple(_)));
        for off in (0..f.file_size).step_by(4093) {
            assert_eq!(
                f.resolve(off).unwrap().dev_offset,
                u.resolve(off).unwrap().dev_offset
            );
        }
        u.validate(AbiGeneration::Dev).unwrap();
    }
}
