//! The values inside requests and replies: paths, owners, placement policies, file maps and
//! nodes, each with its conversion to and from the model's types.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use famfs_fmap::{Extent, Fmap, FmapKind, InterleavedExtent};
use famfs_log::alloc::{AllocPolicy, InterleaveParams};
use famfs_log::namespace::{Attr, FileNode, Node, NodeKind};
use serde::{Deserialize, Serialize};

/// A path relative to the famfs root: text when it is UTF-8, bytes otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WirePath {
    /// A UTF-8 path.
    Text(String),
    /// Any other path, byte by byte.
    Bytes(Vec<u8>),
}

impl WirePath {
    /// The wire form of `p`.
    pub fn of(p: &Path) -> WirePath {
        match p.to_str() {
            Some(s) => WirePath::Text(s.to_owned()),
            None => WirePath::Bytes(p.as_os_str().as_bytes().to_vec()),
        }
    }

    /// The path's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            WirePath::Text(s) => s.as_bytes(),
            WirePath::Bytes(b) => b,
        }
    }

    /// The path.
    pub fn to_path(&self) -> PathBuf {
        PathBuf::from(OsStr::from_bytes(self.as_bytes()))
    }
}

/// Owner and permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireAttr {
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

impl From<Attr> for WireAttr {
    fn from(a: Attr) -> Self {
        WireAttr {
            mode: a.mode,
            uid: a.uid,
            gid: a.gid,
        }
    }
}

impl From<WireAttr> for Attr {
    fn from(a: WireAttr) -> Self {
        Attr {
            mode: a.mode,
            uid: a.uid,
            gid: a.gid,
        }
    }
}

/// How to place a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WirePolicy {
    /// One contiguous extent.
    Contiguous,
    /// Striped.
    Interleaved {
        /// Buckets.
        nbuckets: u64,
        /// Strips.
        nstrips: u64,
        /// Chunk size in bytes.
        chunk_size: u64,
    },
}

impl From<&AllocPolicy> for WirePolicy {
    fn from(p: &AllocPolicy) -> Self {
        match p {
            AllocPolicy::Contiguous => WirePolicy::Contiguous,
            AllocPolicy::Interleaved(i) => WirePolicy::Interleaved {
                nbuckets: i.nbuckets,
                nstrips: i.nstrips,
                chunk_size: i.chunk_size,
            },
        }
    }
}

impl From<WirePolicy> for AllocPolicy {
    fn from(p: WirePolicy) -> Self {
        match p {
            WirePolicy::Contiguous => AllocPolicy::Contiguous,
            WirePolicy::Interleaved {
                nbuckets,
                nstrips,
                chunk_size,
            } => AllocPolicy::Interleaved(InterleaveParams {
                nbuckets,
                nstrips,
                chunk_size,
            }),
        }
    }
}

/// A file map as the log stores it: `[devindex, offset, len]` extents, or striped extents (whose
/// share of the file follows from the file size, as in the log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WireFmap {
    /// Concatenated extents.
    Simple(Vec<[u64; 3]>),
    /// Striped extents.
    Interleaved(Vec<WireStripes>),
}

/// One interleaved extent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireStripes {
    /// Chunk size in bytes.
    pub chunk_size: u64,
    /// The strips, `[devindex, offset, len]`.
    pub strips: Vec<[u64; 3]>,
}

fn wire_extent(e: &Extent) -> [u64; 3] {
    [u64::from(e.dev_index), e.offset, e.len]
}

fn extent(e: &[u64; 3]) -> Result<Extent, String> {
    let dev = u32::try_from(e[0]).map_err(|_| format!("device index {}", e[0]))?;
    Ok(Extent::new(dev, e[1], e[2]))
}

impl From<&Fmap> for WireFmap {
    fn from(m: &Fmap) -> Self {
        match &m.kind {
            FmapKind::Simple(v) => WireFmap::Simple(v.iter().map(wire_extent).collect()),
            FmapKind::Interleaved(v) => WireFmap::Interleaved(
                v.iter()
                    .map(|i| WireStripes {
                        chunk_size: i.chunk_size,
                        strips: i.strips.iter().map(wire_extent).collect(),
                    })
                    .collect(),
            ),
        }
    }
}

impl WireFmap {
    /// The map of a file of `size` bytes, checked as a log entry's map is (counts, alignment,
    /// device 0, chunk sizes).
    pub fn to_fmap(&self, size: u64) -> Result<Fmap, String> {
        let m = match self {
            WireFmap::Simple(v) => {
                Fmap::simple(size, v.iter().map(extent).collect::<Result<_, _>>()?)
            }
            WireFmap::Interleaved(v) => Fmap::striped(
                size,
                v.iter()
                    .map(|i| {
                        let strips = i.strips.iter().map(extent).collect::<Result<_, _>>()?;
                        Ok(InterleavedExtent::new(i.chunk_size, strips))
                    })
                    .collect::<Result<_, String>>()?,
            ),
        };
        let raw = famfs_log::fmap::encode(&m).map_err(|e| e.to_string())?;
        famfs_log::fmap::decode(&raw, size).map_err(|e| e.to_string())
    }
}

/// A file or directory as [`Request::Lookup`](super::Request::Lookup) and
/// [`Request::Create`](super::Request::Create) report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireNode {
    /// Owner and mode.
    pub attr: WireAttr,
    /// For a file: size, flags and map; `None` for a directory.
    pub file: Option<WireFile>,
}

/// The file part of a [`WireNode`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireFile {
    /// Size in bytes.
    pub size: u64,
    /// `fm_flags` from the log.
    pub flags: u32,
    /// Where its bytes are.
    pub fmap: WireFmap,
}

impl From<&Node> for WireNode {
    fn from(n: &Node) -> Self {
        WireNode {
            attr: n.attr.into(),
            file: match &n.kind {
                NodeKind::Dir(_) => None,
                NodeKind::File(f) => Some(WireFile {
                    size: f.size,
                    flags: f.flags,
                    fmap: WireFmap::from(&*f.fmap),
                }),
            },
        }
    }
}

impl WireFile {
    /// The file node (its map checked).
    pub fn to_file_node(&self) -> Result<FileNode, String> {
        Ok(FileNode {
            size: self.size,
            flags: self.flags,
            fmap: std::sync::Arc::new(self.fmap.to_fmap(self.size)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_checked_on_the_way_in() {
        let m = Fmap::simple(5, vec![Extent::new(0, 4 << 20, 2 << 20)]);
        let w = WireFmap::from(&m);
        assert_eq!(w.to_fmap(5).unwrap(), m);
        assert!(WireFmap::Simple(vec![[0, 1, 2]]).to_fmap(5).is_err());
        assert!(WireFmap::Simple(vec![]).to_fmap(5).is_err());
        assert!(
            WireFmap::Simple(vec![[1 << 40, 0, 2 << 20]])
                .to_fmap(5)
                .is_err()
        );
    }
}
