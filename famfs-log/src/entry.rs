//! Log entries: decode and check the 544 stored bytes, or build them.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use uuid::Uuid;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

use famfs_fmap::Fmap;

use crate::fmap::FmapProblem;
use crate::layout::{
    LOG_ENTRY_CRC_LEN, LOG_ENTRY_SIZE, RawAddDaxdev, RawFileMeta, RawLogEntry, RawMkdir, crc32,
    entry_type,
};
use crate::path::{PathProblem, decode_relpath, encode_relpath};

/// A FILE entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the file-system root.
    pub path: PathBuf,
    /// `fm_flags` (2 = all hosts read-write, as the reference writes).
    pub flags: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Permission bits as stored.
    pub mode: u32,
    /// Where the bytes are; its `file_size` is the file's exact size (`fm_size`).
    pub fmap: Fmap,
}

impl FileEntry {
    /// The file's exact size in bytes (`fm_size`, kept as the map's `file_size`).
    pub fn size(&self) -> u64 {
        self.fmap.file_size
    }
}

/// A MKDIR entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Path relative to the file-system root.
    pub path: PathBuf,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Permission bits as stored.
    pub mode: u32,
}

/// An ADD_DAXDEV entry (format version 48; recorded, not used for allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddDaxdevEntry {
    /// Device size in bytes.
    pub size: u64,
    /// Device UUID.
    pub uuid: Uuid,
    /// Dense device index in log order.
    pub index: u32,
}

/// A decoded log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEntry {
    /// A file.
    File(FileEntry),
    /// A directory.
    Mkdir(DirEntry),
    /// A device added to the file system.
    AddDaxdev(AddDaxdevEntry),
    /// The reserved DELETE type (never written by the reference); ignored.
    Delete,
    /// A type this implementation does not know; ignored, as the reference does.
    Unknown(u32),
}

/// Why an entry could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// `seqnum` differs from the slot index (stale or torn entry).
    #[error("seqnum {found} in slot {expected}")]
    BadSeqnum {
        /// The slot index.
        expected: u64,
        /// The stored seqnum.
        found: u64,
    },
    /// CRC over bytes 0..536 does not match (stale, torn or corrupt entry).
    #[error("entry CRC mismatch: stored {stored:#x}, computed {computed:#x}")]
    BadCrc {
        /// Stored CRC.
        stored: u64,
        /// Computed CRC.
        computed: u32,
    },
    /// A bad path.
    #[error("bad path: {0}")]
    Path(#[from] PathProblem),
    /// A bad file map.
    #[error("bad file map: {0}")]
    Fmap(#[from] FmapProblem),
}

impl EntryError {
    /// True for errors that say the slot does not hold a complete entry (yet): CRC or seqnum.
    /// Such an entry may still be in flight from another host; re-reading may fix it.
    pub fn is_integrity(&self) -> bool {
        matches!(
            self,
            EntryError::BadSeqnum { .. } | EntryError::BadCrc { .. }
        )
    }
}

fn path_of(bytes: &[u8]) -> PathBuf {
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

/// A decoded entry that borrows its path from the slot bytes (no allocation for the path):
/// what replay works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryRef<'a> {
    /// A file; the path is a checked relative path.
    File {
        /// Path bytes (checked).
        path: &'a [u8],
        /// The rest of the entry (its `path` field is empty).
        meta: FileEntry,
    },
    /// A directory.
    Mkdir {
        /// Path bytes (checked).
        path: &'a [u8],
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
        /// Permission bits as stored.
        mode: u32,
    },
    /// A device added to the file system.
    AddDaxdev(AddDaxdevEntry),
    /// The reserved DELETE type.
    Delete,
    /// An unknown type.
    Unknown(u32),
}

impl<'a> EntryRef<'a> {
    /// Decode a slot whose integrity (seqnum, CRC) the caller has already checked with
    /// [`check_integrity`]; content is still fully checked.
    pub fn decode_content(bytes: &'a [u8; LOG_ENTRY_SIZE]) -> Result<EntryRef<'a>, EntryError> {
        let raw =
            RawLogEntry::ref_from_bytes(bytes.as_slice()).expect("544 bytes always hold one entry");
        match raw.entry_type.get() {
            entry_type::FILE => {
                let (fm, _) = RawFileMeta::ref_from_prefix(&raw.payload)
                    .expect("the payload holds a file meta");
                let path = decode_relpath(&fm.relpath)?;
                let fmap = crate::fmap::decode(&fm.fmap, fm.size.get())?;
                Ok(EntryRef::File {
                    path,
                    meta: FileEntry {
                        path: PathBuf::new(),
                        flags: fm.flags.get(),
                        uid: fm.uid.get(),
                        gid: fm.gid.get(),
                        mode: fm.mode.get(),
                        fmap,
                    },
                })
            }
            entry_type::MKDIR => {
                let (md, _) =
                    RawMkdir::ref_from_prefix(&raw.payload).expect("the payload holds a mkdir");
                let path = decode_relpath(&md.relpath)?;
                Ok(EntryRef::Mkdir {
                    path,
                    uid: md.uid.get(),
                    gid: md.gid.get(),
                    mode: md.mode.get(),
                })
            }
            entry_type::ADD_DAXDEV => {
                let (dd, _) = RawAddDaxdev::ref_from_prefix(&raw.payload)
                    .expect("the payload holds an add_daxdev");
                Ok(EntryRef::AddDaxdev(AddDaxdevEntry {
                    size: dd.size.get(),
                    uuid: Uuid::from_bytes(dd.uuid),
                    index: dd.index.get(),
                }))
            }
            entry_type::DELETE => Ok(EntryRef::Delete),
            t => Ok(EntryRef::Unknown(t)),
        }
    }

    /// The path, for FILE and MKDIR entries.
    pub fn path(&self) -> Option<&'a [u8]> {
        match self {
            EntryRef::File { path, .. } | EntryRef::Mkdir { path, .. } => Some(path),
            _ => None,
        }
    }

    /// An owned copy.
    pub fn to_owned(&self) -> LogEntry {
        match self {
            EntryRef::File { path, meta } => LogEntry::File(FileEntry {
                path: path_of(path),
                ..meta.clone()
            }),
            EntryRef::Mkdir {
                path,
                uid,
                gid,
                mode,
            } => LogEntry::Mkdir(DirEntry {
                path: path_of(path),
                uid: *uid,
                gid: *gid,
                mode: *mode,
            }),
            EntryRef::AddDaxdev(a) => LogEntry::AddDaxdev(*a),
            EntryRef::Delete => LogEntry::Delete,
            EntryRef::Unknown(t) => LogEntry::Unknown(*t),
        }
    }
}

impl LogEntry {
    /// Check the integrity (seqnum == `index`, CRC) of a 544-byte slot, then decode it.
    pub fn decode(bytes: &[u8; LOG_ENTRY_SIZE], index: u64) -> Result<LogEntry, EntryError> {
        check_integrity(bytes, index)?;
        Ok(EntryRef::decode_content(bytes)?.to_owned())
    }

    /// The 544 on-media bytes of this entry in slot `seqnum`: zero-filled, then the fields,
    /// then the CRC — exactly as the reference builds them.
    pub fn encode(&self, seqnum: u64) -> Result<[u8; LOG_ENTRY_SIZE], EntryError> {
        let mut raw = RawLogEntry::new_zeroed();
        raw.seqnum = seqnum.into();
        match self {
            LogEntry::File(f) => {
                raw.entry_type = entry_type::FILE.into();
                let mut fm = RawFileMeta::new_zeroed();
                fm.size = f.fmap.file_size.into();
                fm.flags = f.flags.into();
                fm.uid = f.uid.into();
                fm.gid = f.gid.into();
                fm.mode = f.mode.into();
                fm.relpath = encode_relpath(f.path.as_os_str().as_bytes())?;
                fm.fmap = crate::fmap::encode(&f.fmap)?;
                raw.payload[..size_of::<RawFileMeta>()].copy_from_slice(fm.as_bytes());
            }
            LogEntry::Mkdir(d) => {
                raw.entry_type = entry_type::MKDIR.into();
                let md = RawMkdir {
                    uid: d.uid.into(),
                    gid: d.gid.into(),
                    mode: d.mode.into(),
                    relpath: encode_relpath(d.path.as_os_str().as_bytes())?,
                };
                raw.payload[..size_of::<RawMkdir>()].copy_from_slice(md.as_bytes());
            }
            LogEntry::AddDaxdev(a) => {
                raw.entry_type = entry_type::ADD_DAXDEV.into();
                let dd = RawAddDaxdev {
                    size: a.size.into(),
                    uuid: a.uuid.into_bytes(),
                    index: a.index.into(),
                    _pad: [0; 4],
                };
                raw.payload[..size_of::<RawAddDaxdev>()].copy_from_slice(dd.as_bytes());
            }
            LogEntry::Delete => raw.entry_type = entry_type::DELETE.into(),
            LogEntry::Unknown(t) => raw.entry_type = (*t).into(),
        }
        raw.crc = u64::from(crc32(&raw.as_bytes()[..LOG_ENTRY_CRC_LEN])).into();
        let mut out = [0u8; LOG_ENTRY_SIZE];
        out.copy_from_slice(raw.as_bytes());
        Ok(out)
    }

    /// The path of a FILE or MKDIR entry.
    pub fn path(&self) -> Option<&Path> {
        match self {
            LogEntry::File(f) => Some(&f.path),
            LogEntry::Mkdir(d) => Some(&d.path),
            _ => None,
        }
    }
}

/// Check seqnum and CRC of a slot without decoding it.
pub fn check_integrity(bytes: &[u8; LOG_ENTRY_SIZE], index: u64) -> Result<(), EntryError> {
    let seq = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if seq != index {
        return Err(EntryError::BadSeqnum {
            expected: index,
            found: seq,
        });
    }
    let stored = u64::from_le_bytes(bytes[LOG_ENTRY_CRC_LEN..].try_into().expect("8 bytes"));
    let computed = crc32(&bytes[..LOG_ENTRY_CRC_LEN]);
    if stored != u64::from(computed) {
        return Err(EntryError::BadCrc { stored, computed });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use famfs_fmap::{Extent, InterleavedExtent};
    use proptest::prelude::*;

    fn crc_of(b: &[u8; LOG_ENTRY_SIZE]) -> u32 {
        u32::from_le_bytes(b[536..540].try_into().unwrap())
    }

    /// famfs-format.md §3.3 test vectors, with the leading bytes written out by hand.
    #[test]
    fn reference_entry_vectors() {
        let mkdir = LogEntry::Mkdir(DirEntry {
            path: "dir1".into(),
            uid: 0,
            gid: 0,
            mode: 0o755,
        });
        let b = mkdir.encode(0).unwrap();
        let mut lead = vec![0u8; 8];
        lead.extend([
            1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xed, 1, 0, 0,
        ]);
        lead.extend(b"dir1");
        assert_eq!(&b[..lead.len()], lead.as_slice());
        assert!(b[lead.len()..536].iter().all(|&x| x == 0));
        assert_eq!(crc_of(&b), 0xD6DB_820B);
        assert_eq!(LogEntry::decode(&b, 0).unwrap(), mkdir);

        let file = LogEntry::File(FileEntry {
            path: "dir1/file0".into(),
            flags: 2,
            uid: 1000,
            gid: 1000,
            mode: 0o644,
            fmap: Fmap::simple(3_145_728, vec![Extent::new(0, 0xa0_0000, 0x40_0000)]),
        });
        let b = file.encode(1).unwrap();
        // Absolute offsets from famfs-format.md §10.2 item 6.
        assert_eq!(u64::from_le_bytes(b[0..8].try_into().unwrap()), 1);
        assert_eq!(u64::from_le_bytes(b[16..24].try_into().unwrap()), 3_145_728);
        assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), 2);
        assert_eq!(u32::from_le_bytes(b[28..32].try_into().unwrap()), 1000);
        assert_eq!(u32::from_le_bytes(b[32..36].try_into().unwrap()), 1000);
        assert_eq!(u32::from_le_bytes(b[36..40].try_into().unwrap()), 0o644);
        assert_eq!(&b[40..51], b"dir1/file0\0");
        assert_eq!(u32::from_le_bytes(b[120..124].try_into().unwrap()), 0);
        assert_eq!(u32::from_le_bytes(b[128..132].try_into().unwrap()), 1);
        assert_eq!(u64::from_le_bytes(b[136..144].try_into().unwrap()), 0);
        assert_eq!(
            u64::from_le_bytes(b[144..152].try_into().unwrap()),
            0xa0_0000
        );
        assert_eq!(
            u64::from_le_bytes(b[152..160].try_into().unwrap()),
            0x40_0000
        );
        assert_eq!(crc_of(&b), 0xE1FC_5BEF);
        assert_eq!(LogEntry::decode(&b, 1).unwrap(), file);
    }

    #[test]
    fn interleaved_offsets() {
        let e = LogEntry::File(FileEntry {
            path: "s".into(),
            flags: 2,
            uid: 0,
            gid: 0,
            mode: 0o644,
            fmap: Fmap::striped(
                1,
                vec![InterleavedExtent::new(
                    0x20_0000,
                    (0..16)
                        .map(|i| Extent::new(0, (i + 1) << 30, 0x20_0000))
                        .collect(),
                )],
            ),
        });
        let b = e.encode(5).unwrap();
        assert_eq!(u64::from_le_bytes(b[136..144].try_into().unwrap()), 16);
        assert_eq!(
            u64::from_le_bytes(b[144..152].try_into().unwrap()),
            0x20_0000
        );
        assert_eq!(u64::from_le_bytes(b[160..168].try_into().unwrap()), 1 << 30);
        // strip 15 ends exactly at 536
        assert_eq!(152 + 24 * 16, 536);
        assert_eq!(
            u64::from_le_bytes(b[152 + 24 * 15 + 8..152 + 24 * 15 + 16].try_into().unwrap()),
            16 << 30
        );
        assert_eq!(LogEntry::decode(&b, 5).unwrap(), e);
    }

    #[test]
    fn integrity_failures() {
        let b = LogEntry::Delete.encode(3).unwrap();
        assert_eq!(
            LogEntry::decode(&b, 4),
            Err(EntryError::BadSeqnum {
                expected: 4,
                found: 3
            })
        );
        let mut bad = b;
        bad[12] = 1; // padding is CRC-covered
        assert!(matches!(
            LogEntry::decode(&bad, 3),
            Err(EntryError::BadCrc { .. })
        ));
        let zero = [0u8; LOG_ENTRY_SIZE];
        assert!(LogEntry::decode(&zero, 0).unwrap_err().is_integrity());
        assert_eq!(
            LogEntry::decode(&LogEntry::Unknown(9).encode(0).unwrap(), 0),
            Ok(LogEntry::Unknown(9))
        );
    }

    #[test]
    fn hostile_paths_are_refused_even_with_valid_crc() {
        for p in ["../etc/passwd", "/abs", "a/../../b", ""] {
            let mut raw = RawLogEntry::new_zeroed();
            raw.entry_type = entry_type::MKDIR.into();
            raw.payload[12..12 + p.len()].copy_from_slice(p.as_bytes());
            raw.crc = u64::from(crc32(&raw.as_bytes()[..536])).into();
            let b: [u8; 544] = raw.as_bytes().try_into().unwrap();
            assert!(
                matches!(LogEntry::decode(&b, 0), Err(EntryError::Path(_))),
                "{p}"
            );
        }
    }

    proptest! {
        #[test]
        fn random_slots_never_panic(bytes in proptest::collection::vec(any::<u8>(), LOG_ENTRY_SIZE), index in 0u64..4) {
            let b: [u8; LOG_ENTRY_SIZE] = bytes.try_into().unwrap();
            let _ = LogEntry::decode(&b, index);
        }

        /// Mutations of a valid entry whose CRC is then fixed up: decoding must never panic,
        /// and what decodes must re-encode to exactly the same bytes (no information is lost
        /// or invented).
        #[test]
        fn crc_fixed_mutations_round_trip(pos in 0usize..536, val: u8, kind in 0u8..3) {
            let e = match kind {
                0 => LogEntry::Mkdir(DirEntry { path: "a/b".into(), uid: 1, gid: 2, mode: 0o700 }),
                1 => LogEntry::File(FileEntry { path: "f".into(), flags: 2, uid: 0, gid: 0, mode: 0o644,
                    fmap: Fmap::simple(10, vec![Extent::new(0, 0x40_0000 * 8, 0x20_0000)]) }),
                _ => LogEntry::File(FileEntry { path: "g".into(), flags: 2, uid: 0, gid: 0, mode: 0o644,
                    fmap: Fmap::striped(10, vec![InterleavedExtent::new(0x20_0000,
                        vec![Extent::new(0, 1 << 30, 0x20_0000), Extent::new(0, 2 << 30, 0x20_0000)])]) }),
            };
            let mut b = e.encode(0).unwrap();
            b[pos] = val;
            let c = crc32(&b[..536]);
            b[536..544].copy_from_slice(&u64::from(c).to_le_bytes());
            if let Ok(d) = LogEntry::decode(&b, 0)
                && let Ok(again) = d.encode(0) {
                    // Padding/unused bytes are dropped by decode; compare the decoded values.
                    prop_assert_eq!(LogEntry::decode(&again, 0).unwrap(), d);
                }
        }
    }
}
