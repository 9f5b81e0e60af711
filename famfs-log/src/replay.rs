//! Applying log entries to an in-memory state: the namespace, the allocation bitmap, and the
//! counts fsck reports. The same code path serves the first replay, incremental catch-up, and
//! the writer's own appends, so a writer's view never differs from a reader's.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::alloc::Bitmap;
use crate::entry::{AddDaxdevEntry, EntryError, EntryRef, FileEntry, check_integrity};
use famfs_fmap::{Extent, Fmap};

use crate::fmap::FmapProblem;
use crate::layout::{ALLOC_UNIT, LOG_ENTRY_SIZE, SUPERBLOCK_REGION};
use crate::namespace::{
    Attr, DirNode, FileNode, Ino, Namespace, NodeKind, NsError, ROOT_INO, split_parent,
};
use crate::path::{PathProblem, is_reserved};
use crate::superblock::Superblock;

/// Inode of `.meta` when [`LogState::add_meta_files`] was used.
pub const META_DIR_INO: Ino = Ino::new(2);
/// Inode of `.meta/.superblock` when [`LogState::add_meta_files`] was used.
pub const META_SB_INO: Ino = Ino::new(3);
/// Inode of `.meta/.log` when [`LogState::add_meta_files`] was used.
pub const META_LOG_INO: Ino = Ino::new(4);

/// Most entries [`LogState::reserve`] makes room for at once (a 2 GiB log): a header is
/// untrusted, so a huge `next_index` must not turn into a huge allocation up front.
const MAX_RESERVE: u64 = 1 << 22;

/// Most problems kept in memory (the count is always exact).
pub const MAX_KEPT_PROBLEMS: usize = 1000;

/// What was wrong with an entry that was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// Could not be decoded: bad CRC or seqnum (integrity) or bad path/map (content).
    Entry(EntryError),
    /// The map reaches outside the data area or does not hold the file size.
    Placement(FmapProblem),
    /// The map overlaps space already in use (count of 2 MiB units in collision).
    Overlap(u64),
    /// The path could not be created in the tree.
    Namespace(NsError),
    /// An ADD_DAXDEV entry out of order or duplicated.
    Daxdev(String),
    /// The path is reserved ([`crate::path::META_DIR`] or under it): the same rule in the daemon
    /// and in every tool, so what a mount serves and what fsck/logplay list never differ.
    Reserved,
}

/// An entry that was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Log index.
    pub index: u64,
    /// The entry's path, when it could be decoded.
    pub path: Option<PathBuf>,
    /// What was wrong.
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "log entry {}", self.index)?;
        if let Some(p) = &self.path {
            write!(f, " ({})", p.display())?;
        }
        match &self.kind {
            ProblemKind::Entry(e) => write!(f, ": {e}"),
            ProblemKind::Placement(e) => write!(f, ": {e}"),
            ProblemKind::Overlap(n) => {
                write!(f, ": extents overlap space already in use ({n} x 2 MiB)")
            }
            ProblemKind::Namespace(e) => write!(f, ": {e}"),
            ProblemKind::Daxdev(s) => write!(f, ": {s}"),
            ProblemKind::Reserved => write!(f, ": {}", PathProblem::Reserved),
        }
    }
}

/// Counters over all applied and skipped entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Entries examined.
    pub entries: u64,
    /// Files in the tree.
    pub files: u64,
    /// Directories in the tree (root excluded).
    pub dirs: u64,
    /// Entries failing CRC or seqnum checks.
    pub bad_entries: u64,
    /// Decodable entries skipped for their content (paths, maps, overlaps, duplicates).
    pub skipped: u64,
    /// 2 MiB units claimed by more than one file or by a file and the metadata region — the
    /// reference's "allocation collisions", fsck's exit code.
    pub collisions: u64,
    /// Sum of the sizes of the files in the tree.
    pub file_bytes: u64,
    /// Bytes of device space claimed by files (each unit counted once).
    pub allocated: u64,
    /// ADD_DAXDEV entries recorded.
    pub daxdevs: u64,
}

/// What applying one entry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A file was added.
    File(Ino),
    /// A directory was added.
    Dir(Ino),
    /// A MKDIR of a directory that already exists (harmless, as in the reference).
    DirExisted(Ino),
    /// Recorded but nothing to add (ADD_DAXDEV, DELETE, unknown types).
    Ignored,
    /// Skipped; see the problem.
    Skipped(Problem),
}

/// The state derived from the log.
#[derive(Debug, Clone)]
pub struct LogState {
    ns: Namespace,
    bitmap: Bitmap,
    data_start: u64,
    dev_size: u64,
    applied: u64,
    stats: Stats,
    problems: Vec<Problem>,
    daxdevs: Vec<AddDaxdevEntry>,
    /// With [`LogState::skip_maps`]: the map every file node shares.
    shared_map: Option<Arc<Fmap>>,
    /// The directory part of the last file path applied, and its inode: consecutive entries
    /// mostly share a directory, and a directory, once in the tree, stays (nothing is removed).
    last_parent: (Vec<u8>, Option<Ino>),
}

impl LogState {
    /// An empty state for the file system described by `sb`: a root directory (mode 0755,
    /// owned by root) and a bitmap with the metadata region reserved.
    pub fn new(sb: &Superblock) -> LogState {
        Self::with_root(
            sb,
            Attr {
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
        )
    }

    /// As [`LogState::new`] with a given root directory owner and mode.
    pub fn with_root(sb: &Superblock, root: Attr) -> LogState {
        let mut bitmap = Bitmap::new(sb.dev_size / ALLOC_UNIT);
        bitmap.mark(0, sb.data_start().div_ceil(ALLOC_UNIT));
        LogState {
            ns: Namespace::new(root),
            bitmap,
            data_start: sb.data_start(),
            dev_size: sb.dev_size,
            applied: 0,
            stats: Stats::default(),
            problems: Vec::new(),
            daxdevs: Vec::new(),
            shared_map: None,
            last_parent: (Vec::new(), None),
        }
    }

    /// Keep no file maps from now on: each file node applied gets one shared empty map (see
    /// [`crate::OpenOptions::skip_maps`]).
    pub fn skip_maps(&mut self) {
        self.shared_map = Some(Arc::new(Fmap::simple(0, Vec::new())));
    }

    /// Add the meta files the mounted file system shows, before any log entry is applied:
    /// `.meta/` ([`META_DIR_INO`], 0755), `.meta/.superblock` ([`META_SB_INO`], 0444, device
    /// [0, 2 MiB)) and `.meta/.log` ([`META_LOG_INO`], `log_mode`, the log's device range). Like
    /// the reference, they are not in the log. A log entry that names `.meta` or anything under
    /// it is skipped as [`ProblemKind::Reserved`], whether or not the meta files were added.
    pub fn add_meta_files(&mut self, sb: &Superblock, log_mode: u32) {
        assert_eq!(self.applied, 0, "meta files are added before replay");
        let root = Attr {
            mode: 0o755,
            uid: 0,
            gid: 0,
        };
        let meta = self
            .ns
            .add(
                ROOT_INO,
                OsStr::new(crate::path::META_DIR),
                root,
                NodeKind::Dir(DirNode::default()),
                None,
            )
            .expect("fresh tree");
        let file = |size: u64, offset: u64| {
            NodeKind::File(FileNode {
                size,
                flags: 0,
                fmap: Arc::new(Fmap::simple(size, vec![Extent::new(0, offset, size)])),
            })
        };
        let sb_ino = self
            .ns
            .add(
                meta,
                OsStr::new(".superblock"),
                Attr {
                    mode: 0o444,
                    ..root
                },
                file(SUPERBLOCK_REGION, 0),
                None,
            )
            .expect("fresh tree");
        let log_ino = self
            .ns
            .add(
                meta,
                OsStr::new(".log"),
                Attr {
                    mode: log_mode,
                    ..root
                },
                file(sb.log_len, sb.log_offset),
                None,
            )
            .expect("fresh tree");
        debug_assert_eq!(
            (meta, sb_ino, log_ino),
            (META_DIR_INO, META_SB_INO, META_LOG_INO)
        );
    }

    /// Make room for `entries` more log entries (each adds at most one node), so that a replay
    /// of that many entries allocates its tables once instead of growing them step by step.
    pub fn reserve(&mut self, entries: u64) {
        self.ns
            .reserve(usize::try_from(entries.min(MAX_RESERVE)).unwrap_or(0));
    }

    /// The tree.
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    /// The tree, for adding nodes that are not in the log (e.g. a server's `.meta`).
    pub fn namespace_mut(&mut self) -> &mut Namespace {
        &mut self.ns
    }

    /// The allocation bitmap.
    pub fn bitmap(&self) -> &Bitmap {
        &self.bitmap
    }

    /// Bitmap and device size for allocating.
    pub(crate) fn alloc_parts(&self) -> (&Bitmap, u64) {
        (&self.bitmap, self.dev_size)
    }

    /// Number of log slots consumed (the index of the next entry to apply).
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Skipped entries (the first [`MAX_KEPT_PROBLEMS`]).
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// ADD_DAXDEV entries in log order.
    pub fn daxdevs(&self) -> &[AddDaxdevEntry] {
        &self.daxdevs
    }

    fn skip(&mut self, index: u64, path: Option<PathBuf>, kind: ProblemKind) -> Applied {
        if matches!(&kind, ProblemKind::Entry(e) if e.is_integrity()) {
            self.stats.bad_entries += 1;
        } else {
            self.stats.skipped += 1;
        }
        let p = Problem { index, path, kind };
        tracing::warn!("skipping {p}");
        if self.problems.len() < MAX_KEPT_PROBLEMS {
            self.problems.push(p.clone());
        }
        Applied::Skipped(p)
    }

    /// Count slot `index` as unreadable without applying it (the caller gave up on it).
    pub fn skip_bad(&mut self, index: u64, err: EntryError) -> Applied {
        self.stats.entries += 1;
        self.applied = index + 1;
        self.skip(index, None, ProblemKind::Entry(err))
    }

    /// Decode and apply the 544 bytes of slot `index`, which must be the next slot
    /// ([`LogState::applied`]). Problems are recorded and the entry skipped; this never fails.
    pub fn apply(&mut self, index: u64, bytes: &[u8; LOG_ENTRY_SIZE]) -> Applied {
        if let Err(e) = check_integrity(bytes, index) {
            return self.skip_bad(index, e);
        }
        self.apply_checked(index, bytes)
    }

    /// As [`LogState::apply`] for a slot whose integrity the caller has checked.
    pub(crate) fn apply_checked(&mut self, index: u64, bytes: &[u8; LOG_ENTRY_SIZE]) -> Applied {
        debug_assert_eq!(index, self.applied, "entries are applied in order");
        self.stats.entries += 1;
        self.applied = index + 1;
        let entry = match EntryRef::decode_content(bytes) {
            Ok(e) => e,
            Err(e) => return self.skip(index, None, ProblemKind::Entry(e)),
        };
        self.apply_entry(index, entry)
    }

    fn apply_entry(&mut self, index: u64, entry: EntryRef<'_>) -> Applied {
        match entry {
            EntryRef::File { path, meta } => self.apply_file(index, path, meta),
            EntryRef::Mkdir {
                path,
                uid,
                gid,
                mode,
            } => self.apply_mkdir(index, path, Attr { mode, uid, gid }),
            EntryRef::AddDaxdev(dd) => self.apply_daxdev(index, dd),
            EntryRef::Delete | EntryRef::Unknown(_) => Applied::Ignored,
        }
    }

    /// A file entry: claim its extents, check them, add the file.
    fn apply_file(&mut self, index: u64, path: &[u8], f: FileEntry) -> Applied {
        // Claim the space first, even for entries that are then refused, so that no
        // later allocation can hand out bytes an existing entry points at.
        let mut collisions = 0;
        for e in f.fmap.ranges() {
            collisions += self
                .bitmap
                .mark(e.offset / ALLOC_UNIT, e.len.div_ceil(ALLOC_UNIT));
        }
        self.stats.collisions += collisions;
        if is_reserved(path) {
            return self.skip(index, lossy(path), ProblemKind::Reserved);
        }
        if let Err(p) = crate::fmap::check_placement(&f.fmap, self.data_start, self.dev_size) {
            return self.skip(index, lossy(path), ProblemKind::Placement(p));
        }
        if collisions > 0 {
            return self.skip(index, lossy(path), ProblemKind::Overlap(collisions));
        }
        let (allocated, size) = (f.fmap.allocated_bytes(), f.fmap.file_size);
        let attr = Attr {
            mode: f.mode,
            uid: f.uid,
            gid: f.gid,
        };
        let node = NodeKind::File(FileNode {
            size,
            flags: f.flags,
            fmap: match &self.shared_map {
                Some(m) => Arc::clone(m),
                None => Arc::new(f.fmap),
            },
        });
        let added = self
            .parent_dir_of(path)
            .and_then(|(parent, name)| self.ns.add(parent, name, attr, node, Some(index)));
        match added {
            Ok(ino) => {
                self.stats.files += 1;
                self.stats.file_bytes = self.stats.file_bytes.saturating_add(size);
                self.stats.allocated = self.stats.allocated.saturating_add(allocated);
                Applied::File(ino)
            }
            Err(e) => self.skip(index, lossy(path), ProblemKind::Namespace(e)),
        }
    }

    /// [`Namespace::parent_of`], remembering the last directory found.
    fn parent_dir_of<'p>(&mut self, path: &'p [u8]) -> Result<(Ino, &'p OsStr), NsError> {
        let (dir, name) = split_parent(path);
        if let (last, Some(ino)) = &self.last_parent
            && last.as_slice() == dir
        {
            return Ok((*ino, OsStr::from_bytes(name)));
        }
        let (ino, name) = self.ns.parent_of(path)?;
        self.last_parent.0.clear();
        self.last_parent.0.extend_from_slice(dir);
        self.last_parent.1 = Some(ino);
        Ok((ino, name))
    }

    /// A directory entry: add the directory unless it exists already.
    fn apply_mkdir(&mut self, index: u64, path: &[u8], attr: Attr) -> Applied {
        if is_reserved(path) {
            return self.skip(index, lossy(path), ProblemKind::Reserved);
        }
        if let Ok(ino) = self.ns.resolve(path)
            && self.ns.get(ino).is_some_and(|n| n.is_dir())
        {
            return Applied::DirExisted(ino);
        }
        let added = self.ns.parent_of(path).and_then(|(parent, name)| {
            self.ns.add(
                parent,
                name,
                attr,
                NodeKind::Dir(DirNode::default()),
                Some(index),
            )
        });
        match added {
            Ok(ino) => {
                self.stats.dirs += 1;
                Applied::Dir(ino)
            }
            Err(e) => self.skip(index, lossy(path), ProblemKind::Namespace(e)),
        }
    }

    /// A device entry: record the device if it comes in order and is new.
    fn apply_daxdev(&mut self, index: u64, dd: AddDaxdevEntry) -> Applied {
        // Slot 0 is the primary device from the superblock; added devices count up.
        let want = self.daxdevs.len() as u32 + 1;
        if dd.index != want {
            return self.skip(
                index,
                None,
                ProblemKind::Daxdev(format!(
                    "daxdev index {} out of order (expected {want})",
                    dd.index
                )),
            );
        }
        if self.daxdevs.iter().any(|d| d.uuid == dd.uuid) {
            return self.skip(
                index,
                None,
                ProblemKind::Daxdev(format!("daxdev {} added twice", dd.uuid)),
            );
        }
        self.daxdevs.push(dd);
        self.stats.daxdevs += 1;
        Applied::Ignored
    }

    /// Inode of the root.
    pub fn root(&self) -> Ino {
        ROOT_INO
    }
}

/// A path from the log as a `PathBuf` for a problem report.
fn lossy(p: &[u8]) -> Option<PathBuf> {
    Some(PathBuf::from(OsStr::from_bytes(p)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{DirEntry, FileEntry, LogEntry};
    use crate::layout::FM_ALL_HOSTS_RW;

    fn sb() -> Superblock {
        let dev = famfs_fsdev::MemMedia::new(64 << 20);
        let mut o = crate::MkfsOptions::new(uuid::Uuid::new_v4(), "/dev/dax0.0");
        o.min_device_size = 0;
        crate::mkfs(&dev, 1 << 30, &o).unwrap();
        let mut b = [0u8; 200];
        famfs_fsdev::Media::read_at(&dev, 0, &mut b).unwrap();
        Superblock::parse(&b).unwrap()
    }

    fn file(path: &str, offset: u64) -> LogEntry {
        LogEntry::File(FileEntry {
            path: path.into(),
            flags: FM_ALL_HOSTS_RW,
            uid: 0,
            gid: 0,
            mode: 0o666,
            fmap: Fmap::simple(4096, vec![Extent::new(0, offset, ALLOC_UNIT)]),
        })
    }

    fn dir(path: &str) -> LogEntry {
        LogEntry::Mkdir(DirEntry {
            path: path.into(),
            uid: 0,
            gid: 0,
            mode: 0o777,
        })
    }

    /// Replay `entries` with or without the mount's meta files; the skipped entries' messages.
    fn replay(sb: &Superblock, meta: bool, entries: &[LogEntry]) -> (LogState, Vec<String>) {
        let mut st = LogState::new(sb);
        if meta {
            st.add_meta_files(sb, 0o644);
        }
        let mut skipped = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            if let Applied::Skipped(p) = st.apply(i as u64, &e.encode(i as u64).unwrap()) {
                skipped.push(p.to_string());
            }
        }
        (st, skipped)
    }

    #[test]
    fn meta_entries_are_skipped_the_same_way_mounted_or_not() {
        let sb = sb();
        let base = sb.data_start();
        let entries = [
            dir(".meta"),
            file(".meta/evil", base),
            file(".meta", base + ALLOC_UNIT),
            dir(".meta/sub"),
            file("good", base + 2 * ALLOC_UNIT),
            dir("d"),
            file("d/.meta", base + 3 * ALLOC_UNIT),
        ];
        let (tool, tool_skips) = replay(&sb, false, &entries);
        let (mount, mount_skips) = replay(&sb, true, &entries);
        assert_eq!(
            tool_skips, mount_skips,
            "one rule for the daemon and the tools"
        );
        assert_eq!(tool_skips.len(), 4, "{tool_skips:?}");
        for (k, s) in tool_skips.iter().enumerate() {
            assert!(s.starts_with(&format!("log entry {k} (.meta")), "{s}");
            assert!(
                s.ends_with("reserved for the meta files of a mounted famfs"),
                "{s}"
            );
        }
        assert!(
            tool.namespace().resolve(b".meta").is_err(),
            "no .meta in a tool's tree"
        );
        assert!(mount.namespace().resolve(b".meta/evil").is_err());
        assert_eq!(mount.namespace().resolve(b".meta").unwrap(), META_DIR_INO);
        for st in [&tool, &mount] {
            assert!(st.namespace().resolve(b"good").is_ok());
            assert!(
                st.namespace().resolve(b"d/.meta").is_ok(),
                "only the root's .meta"
            );
            assert_eq!(st.stats().skipped, 4);
            assert_eq!((st.stats().files, st.stats().dirs), (2, 1));
            // The reserved entries' space is still claimed, as the reference's bitmap does.
            assert!(st.bitmap().is_set(base / ALLOC_UNIT));
            assert!(st.bitmap().is_set(base / ALLOC_UNIT + 1));
        }
    }
}
