//! The in-memory file tree replayed from the log: O(1) lookup by inode number and by name.
//!
//! Inode numbers are dense and start at [`ROOT_INO`] = 1 (FUSE's root id), assigned in the order
//! nodes are added. Every host replays the same log in the same order, so every host assigns
//! the same numbers. Nothing is ever removed (famfs has no delete). A tree replayed again after
//! the log was rewritten under a mount numbers its log nodes past every number the tree it
//! replaces used ([`Namespace::number_from`]), so an old number never names a new node.

use std::ffi::{OsStr, OsString};
use std::hash::{BuildHasher, Hasher};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

use famfs_fmap::Fmap;
use hashbrown::{DefaultHashBuilder, HashTable};

use crate::path::components;

/// An inode number: a node's id in the tree, and the nodeid FUSE names it by.
///
/// A newtype, so that a node id cannot be passed where an offset, a size, a generation or a
/// file handle (all `u64` too) is meant, nor the other way round. The FUSE wire format keeps
/// plain `u64` nodeids; the server converts at its protocol adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ino(u64);

impl Ino {
    /// The inode number `n` (any value: a number no node has is simply not found).
    pub const fn new(n: u64) -> Ino {
        Ino(n)
    }

    /// The number, as FUSE and `stat` carry it.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for Ino {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Inode number of the root directory.
pub const ROOT_INO: Ino = Ino(1);

/// Owner and permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// A regular file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNode {
    /// Size in bytes (the same as `fmap.file_size`).
    pub size: u64,
    /// `fm_flags` from the log.
    pub flags: u32,
    /// Where its bytes are.
    pub fmap: Arc<Fmap>,
}

/// A directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirNode {
    order: Vec<Ino>,
}

impl DirNode {
    /// Children in the order they were added (stable across replays: good readdir offsets).
    pub fn children(&self) -> &[Ino] {
        &self.order
    }

    /// Number of children.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the directory is empty.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// File or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// A directory.
    Dir(DirNode),
    /// A regular file.
    File(FileNode),
}

/// One file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Parent directory (the root is its own parent).
    pub parent: Ino,
    /// Name in the parent (empty for the root).
    pub name: OsString,
    /// Owner and mode.
    pub attr: Attr,
    /// File or directory.
    pub kind: NodeKind,
    /// Index of the log entry that created it (`None` for the root and local additions).
    pub log_index: Option<u64>,
}

impl Node {
    /// The file part, if a file.
    pub fn as_file(&self) -> Option<&FileNode> {
        match &self.kind {
            NodeKind::File(f) => Some(f),
            NodeKind::Dir(_) => None,
        }
    }

    /// The directory part, if a directory.
    pub fn as_dir(&self) -> Option<&DirNode> {
        match &self.kind {
            NodeKind::Dir(d) => Some(d),
            NodeKind::File(_) => None,
        }
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, NodeKind::Dir(_))
    }
}

/// Why a node could not be added or a path resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NsError {
    /// The name is taken.
    #[error("{0} already exists")]
    Exists(PathBuf),
    /// A parent component is missing.
    #[error("{0} does not exist")]
    Missing(PathBuf),
    /// A parent component is a file.
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
}

/// The tree.
///
/// Names are stored once, in their nodes; one hash table over (parent, name) indexes them all,
/// so a lookup is one probe and adding a node costs one allocation for its name.
#[derive(Clone)]
pub struct Namespace {
    nodes: Vec<Node>,
    index: HashTable<Ino>,
    hasher: DefaultHashBuilder,
    files: u64,
    dirs: u64,
    /// Nodes at this position and after are numbered `gap` higher (no gap: `usize::MAX`).
    gap_at: usize,
    gap: u64,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("nodes", &self.nodes)
            .field("files", &self.files)
            .field("dirs", &self.dirs)
            .finish()
    }
}

impl PartialEq for Namespace {
    fn eq(&self, other: &Self) -> bool {
        self.nodes == other.nodes
    }
}

impl Eq for Namespace {}

impl Namespace {
    /// A tree holding only the root directory.
    pub fn new(root: Attr) -> Namespace {
        Namespace {
            nodes: vec![Node {
                parent: ROOT_INO,
                name: OsString::new(),
                attr: root,
                kind: NodeKind::Dir(DirNode::default()),
                log_index: None,
            }],
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            files: 0,
            dirs: 0,
            gap_at: usize::MAX,
            gap: 0,
        }
    }

    /// Number the nodes added from now on from `first` on, if that is past the next number:
    /// the numbers in between stay unused. For a tree replayed again after the log was
    /// rewritten, so that no number of the tree it replaces names one of its nodes. Only the
    /// first call counts.
    pub fn number_from(&mut self, first: Ino) {
        let next = self.nodes.len() as u64 + 1;
        if self.gap_at == usize::MAX && first.0 > next {
            self.gap_at = self.nodes.len();
            self.gap = first.0 - next;
        }
    }

    /// Make room for `additional` more nodes (a replay knows how many entries it will apply).
    pub fn reserve(&mut self, additional: usize) {
        self.nodes.reserve(additional);
        let (at, gap) = (self.gap_at, self.gap);
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        self.index.reserve(additional, |&i| {
            let n = &nodes[Self::pos_of(i, at, gap).expect("indexed inodes exist")];
            Self::key_hash(hasher, n.parent, n.name.as_bytes())
        });
    }

    /// Addresses of the room [`Namespace::reserve`] made for nodes not added yet, for faulting
    /// it in on another thread while this one adds nodes
    /// ([`famfs_fsdev::prefault_for_writing`]).
    pub fn reserved_node_memory(&self) -> std::ops::Range<usize> {
        let start = self.nodes.as_ptr().wrapping_add(self.nodes.len()) as usize;
        let spare = self.nodes.capacity() - self.nodes.len();
        start..start + spare * std::mem::size_of::<Node>()
    }

    /// The inode number the next node added gets: one past the highest in use.
    pub fn next_ino(&self) -> Ino {
        Self::ino_at(self.nodes.len(), self.gap_at, self.gap)
    }

    fn ino_at(pos: usize, gap_at: usize, gap: u64) -> Ino {
        Ino(pos as u64 + 1 + if pos >= gap_at { gap } else { 0 })
    }

    fn pos_of(ino: Ino, gap_at: usize, gap: u64) -> Option<usize> {
        let i = ino.0.checked_sub(1)?;
        let i = match usize::try_from(i).ok()? {
            i if i < gap_at => i,
            _ => usize::try_from(i.checked_sub(gap)?)
                .ok()
                .filter(|&p| p >= gap_at)?,
        };
        Some(i)
    }

    fn key_hash(hasher: &DefaultHashBuilder, parent: Ino, name: &[u8]) -> u64 {
        let mut h = hasher.build_hasher();
        h.write_u64(parent.0);
        h.write(name);
        h.finish()
    }

    /// The node with inode number `ino`.
    pub fn get(&self, ino: Ino) -> Option<&Node> {
        self.nodes.get(Self::pos_of(ino, self.gap_at, self.gap)?)
    }

    /// The child `name` of directory `parent`.
    pub fn lookup(&self, parent: Ino, name: &OsStr) -> Option<Ino> {
        let name = name.as_bytes();
        let h = Self::key_hash(&self.hasher, parent, name);
        self.index
            .find(h, |&ino| {
                self.get(ino)
                    .is_some_and(|n| n.parent == parent && n.name.as_bytes() == name)
            })
            .copied()
    }

    /// Resolve a relative path (`a/b/c`, as stored in the log; "" is the root).
    pub fn resolve(&self, path: &[u8]) -> Result<Ino, NsError> {
        let mut ino = ROOT_INO;
        if path.is_empty() {
            return Ok(ino);
        }
        // The first `n` components, for an error (built only then: replay resolves a parent for
        // every entry).
        let walked = |n: usize| components(path).take(n).collect::<PathBuf>();
        for (k, comp) in components(path).enumerate() {
            let node = self.get(ino).expect("inode numbers in the tree are valid");
            if !node.is_dir() {
                return Err(NsError::NotADirectory(walked(k.max(1))));
            }
            ino = self
                .lookup(ino, comp)
                .ok_or_else(|| NsError::Missing(walked(k + 1)))?;
        }
        Ok(ino)
    }

    /// Number of nodes, root included (the highest inode number, unless
    /// [`Namespace::number_from`] left a gap).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: the root exists.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Number of regular files.
    pub fn file_count(&self) -> u64 {
        self.files
    }

    /// Number of directories, root excluded.
    pub fn dir_count(&self) -> u64 {
        self.dirs
    }

    /// All nodes with their inode numbers, in creation order.
    pub fn iter(&self) -> impl Iterator<Item = (Ino, &Node)> {
        let (at, gap) = (self.gap_at, self.gap);
        self.nodes
            .iter()
            .enumerate()
            .map(move |(i, n)| (Self::ino_at(i, at, gap), n))
    }

    /// The relative path of `ino` ("" for the root).
    pub fn path_of(&self, ino: Ino) -> PathBuf {
        let mut parts = Vec::new();
        let mut cur = ino;
        while cur != ROOT_INO {
            let Some(n) = self.get(cur) else { break };
            parts.push(n.name.as_os_str());
            cur = n.parent;
        }
        parts.iter().rev().collect()
    }

    /// Add a child to directory `parent`.
    pub fn add(
        &mut self,
        parent: Ino,
        name: &OsStr,
        attr: Attr,
        kind: NodeKind,
        log_index: Option<u64>,
    ) -> Result<Ino, NsError> {
        let ino = self.next_ino();
        let is_dir = matches!(kind, NodeKind::Dir(_));
        let Some(pnode) = self.get(parent) else {
            return Err(NsError::Missing(PathBuf::from(format!("inode {parent}"))));
        };
        if !pnode.is_dir() {
            return Err(NsError::NotADirectory(self.path_of(parent)));
        }
        // One hash for the duplicate check and the insertion.
        let h = Self::key_hash(&self.hasher, parent, name.as_bytes());
        let taken = self.index.find(h, |&i| {
            self.get(i)
                .is_some_and(|n| n.parent == parent && n.name.as_bytes() == name.as_bytes())
        });
        if taken.is_some() {
            return Err(NsError::Exists(self.path_of(parent).join(name)));
        }
        let (at, gap) = (self.gap_at, self.gap);
        let ppos = Self::pos_of(parent, at, gap).expect("checked above");
        let NodeKind::Dir(dir) = &mut self.nodes[ppos].kind else {
            unreachable!("checked above")
        };
        dir.order.push(ino);
        self.nodes.push(Node {
            parent,
            name: name.to_os_string(),
            attr: Attr {
                mode: attr.mode & 0o7777,
                ..attr
            },
            kind,
            log_index,
        });
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        self.index.insert_unique(h, ino, |&i| {
            let n = &nodes[Self::pos_of(i, at, gap).expect("indexed inodes exist")];
            Self::key_hash(hasher, n.parent, n.name.as_bytes())
        });
        if is_dir {
            self.dirs += 1;
        } else {
            self.files += 1;
        }
        Ok(ino)
    }

    /// Split a relative path into (parent inode, last name), requiring the parent to exist.
    pub fn parent_of<'p>(&self, path: &'p [u8]) -> Result<(Ino, &'p OsStr), NsError> {
        let (dir, name) = split_parent(path);
        let parent = self.resolve(dir)?;
        if !self.get(parent).is_some_and(Node::is_dir) {
            return Err(NsError::NotADirectory(PathBuf::from(OsStr::from_bytes(
                dir,
            ))));
        }
        Ok((parent, OsStr::from_bytes(name)))
    }
}

/// A relative path split at its last `/`: (directory part, last name); the directory part of
/// a name without `/` is empty (the root).
pub fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&path[..0], path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use famfs_fmap::Extent;

    fn a(mode: u32) -> Attr {
        Attr {
            mode,
            uid: 0,
            gid: 0,
        }
    }

    fn file() -> NodeKind {
        NodeKind::File(FileNode {
            size: 1,
            flags: 2,
            fmap: Arc::new(Fmap::simple(1, vec![Extent::new(0, 1 << 30, 1 << 21)])),
        })
    }

    #[test]
    fn build_and_resolve() {
        let mut ns = Namespace::new(a(0o755));
        let d = ns
            .add(
                ROOT_INO,
                OsStr::new("d"),
                a(0o40755),
                NodeKind::Dir(DirNode::default()),
                Some(0),
            )
            .unwrap();
        let f = ns
            .add(d, OsStr::new("f"), a(0o644), file(), Some(1))
            .unwrap();
        assert_eq!((d, f), (Ino::new(2), Ino::new(3)));
        assert_eq!(ns.get(d).unwrap().attr.mode, 0o755, "type bits are dropped");
        assert_eq!(ns.resolve(b"d/f"), Ok(f));
        assert_eq!(ns.resolve(b""), Ok(ROOT_INO));
        assert_eq!(ns.lookup(d, OsStr::new("f")), Some(f));
        assert_eq!(ns.path_of(f), PathBuf::from("d/f"));
        assert_eq!(ns.resolve(b"d/x"), Err(NsError::Missing("d/x".into())));
        assert_eq!(
            ns.resolve(b"d/f/g"),
            Err(NsError::NotADirectory("d/f".into()))
        );
        assert!(matches!(
            ns.add(d, OsStr::new("f"), a(0o644), file(), None),
            Err(NsError::Exists(_))
        ));
        assert!(matches!(
            ns.add(f, OsStr::new("x"), a(0o644), file(), None),
            Err(NsError::NotADirectory(_))
        ));
        assert!(matches!(
            ns.add(Ino::new(99), OsStr::new("x"), a(0o644), file(), None),
            Err(NsError::Missing(_))
        ));
        assert_eq!(ns.parent_of(b"d/new").unwrap(), (d, OsStr::new("new")));
        assert_eq!(ns.parent_of(b"top").unwrap(), (ROOT_INO, OsStr::new("top")));
        assert!(ns.parent_of(b"d/f/new").is_err());
        assert_eq!((ns.file_count(), ns.dir_count(), ns.len()), (1, 1, 3));
        assert_eq!(ns.get(ROOT_INO).unwrap().as_dir().unwrap().children(), &[d]);
        assert!(ns.get(Ino::new(0)).is_none() && ns.get(Ino::new(4)).is_none());
    }

    /// Messages and the wire show an inode number as the plain number, as before the newtype.
    #[test]
    fn ino_is_shown_and_sent_as_its_number() {
        assert_eq!(ROOT_INO.get(), 1);
        assert_eq!(Ino::new(4_000_000_000).get(), 4_000_000_000);
        assert_eq!(format!("inode {}", Ino::new(42)), "inode 42");
        assert!(
            Ino::new(2) < Ino::new(10),
            "ordered as numbers (stale_below compares)"
        );
    }

    #[test]
    fn numbering_past_an_older_tree() {
        let dir = || NodeKind::Dir(DirNode::default());
        let mut ns = Namespace::new(a(0o755));
        let meta = ns.add(ROOT_INO, OsStr::new(".meta"), a(0o755), dir(), None);
        ns.number_from(Ino::new(1));
        assert_eq!(ns.next_ino(), Ino::new(3), "a number in use is no gap");
        ns.number_from(Ino::new(100));
        ns.number_from(Ino::new(500));
        assert_eq!(ns.next_ino(), Ino::new(100), "only the first call counts");
        let d = ns.add(ROOT_INO, OsStr::new("d"), a(0o755), dir(), Some(0));
        let d = d.unwrap();
        let f = ns.add(d, OsStr::new("f"), a(0o644), file(), Some(1));
        let (meta, f) = (meta.unwrap(), f.unwrap());
        let want = [2, 100, 101, 102].map(Ino::new);
        assert_eq!([meta, d, f, ns.next_ino()], want);
        for gone in [0, 3, 4, 50, 99, 102, u64::MAX] {
            assert!(ns.get(Ino::new(gone)).is_none(), "{gone}");
        }
        assert_eq!(ns.resolve(b"d/f"), Ok(f));
        assert_eq!(ns.lookup(ROOT_INO, OsStr::new(".meta")), Some(meta));
        assert_eq!(ns.path_of(f), PathBuf::from("d/f"));
        let inos: Vec<Ino> = ns.iter().map(|(i, _)| i).collect();
        assert_eq!(inos, [1, 2, 100, 101].map(Ino::new));
        assert_eq!(ns.get(d).unwrap().as_dir().unwrap().children(), &[f]);
        assert_eq!(ns.len(), 4);
    }

    /// Adding next to nodes numbered past a gap: the duplicate check must look at the node an
    /// indexed number names, not at `number - 1` (which is past the end or another node).
    #[test]
    fn adding_after_a_gap_checks_the_right_nodes() {
        let dir = || NodeKind::Dir(DirNode::default());
        let mut ns = Namespace::new(a(0o755));
        ns.number_from(Ino::new(1_000));
        let mut added = Vec::new();
        for i in 0..2_000 {
            let name = format!("n{i}");
            let ino = ns
                .add(ROOT_INO, OsStr::new(&name), a(0o755), dir(), None)
                .unwrap();
            added.push((name, ino));
        }
        for (name, ino) in &added {
            assert_eq!(ns.lookup(ROOT_INO, OsStr::new(name)), Some(*ino), "{name}");
            assert!(matches!(
                ns.add(ROOT_INO, OsStr::new(name), a(0o755), dir(), None),
                Err(NsError::Exists(_))
            ));
        }
    }
}
