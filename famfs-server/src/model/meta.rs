//! The meta files, answered without the tree's lock: `.meta`, `.meta/.superblock` and
//! `.meta/.log` (and the root, for a path walk). When the metadata is read through the
//! daemon's own mount, these are what its own reads need, and they must be served even while
//! the tree is locked for a replay or an append, or before there is a tree at all.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, RwLock};

use famfs_fmap::{Extent, Fmap};
use famfs_log::layout::SUPERBLOCK_REGION;
use famfs_log::namespace::{Attr, DirNode, FileNode, Ino, Namespace, Node, NodeKind, ROOT_INO};
use famfs_log::replay::{META_DIR_INO, META_LOG_INO, META_SB_INO};
use famfs_log::superblock::Superblock;

/// Copies of the meta nodes (and the root), taken from the tree whenever it is (re)built.
#[derive(Debug, Default)]
pub(super) struct MetaNodes(RwLock<Vec<(Ino, Node)>>);

const META_INOS: [Ino; 4] = [ROOT_INO, META_DIR_INO, META_SB_INO, META_LOG_INO];

impl MetaNodes {
    /// Before the superblock is read: the root, `.meta` and `.meta/.superblock` (device offset
    /// 0, 2 MiB), the one meta file whose place is fixed.
    pub(super) fn superblock_only() -> MetaNodes {
        let attr = Attr {
            mode: 0o755,
            uid: 0,
            gid: 0,
        };
        let dir = |parent, name: &str| Node {
            parent,
            name: name.into(),
            attr,
            kind: NodeKind::Dir(DirNode::default()),
            log_index: None,
        };
        let sb = Node {
            parent: META_DIR_INO,
            name: ".superblock".into(),
            attr: Attr {
                mode: 0o444,
                ..attr
            },
            kind: NodeKind::File(FileNode {
                size: SUPERBLOCK_REGION,
                flags: 0,
                fmap: Arc::new(Fmap::simple(
                    SUPERBLOCK_REGION,
                    vec![Extent::new(0, 0, SUPERBLOCK_REGION)],
                )),
            }),
            log_index: None,
        };
        MetaNodes(RwLock::new(vec![
            (ROOT_INO, dir(ROOT_INO, "")),
            (META_DIR_INO, dir(ROOT_INO, famfs_log::path::META_DIR)),
            (META_SB_INO, sb),
        ]))
    }

    /// Formatting mode: the root, `.meta`, `.meta/.superblock` and a `.meta/.log` of
    /// `log_len` bytes at 2 MiB, both files writable by the owner.
    pub(super) fn formatting(log_len: u64) -> MetaNodes {
        let nodes = MetaNodes::superblock_only();
        {
            let mut g = nodes.0.write().unwrap_or_else(|p| p.into_inner());
            for (_, n) in g.iter_mut() {
                if n.as_file().is_some() {
                    n.attr.mode = 0o644;
                }
            }
            g.push((META_LOG_INO, log_node(SUPERBLOCK_REGION, log_len, 0o644)));
        }
        nodes
    }

    /// Show `.meta/.log` where superblock `sb` places it (writable if `master`), before the
    /// log has been read.
    pub(super) fn publish_log(&self, sb: &Superblock, master: bool) {
        let mut g = self.0.write().unwrap_or_else(|p| p.into_inner());
        g.retain(|(i, _)| *i != META_LOG_INO);
        let mode = if master { 0o644 } else { 0o444 };
        g.push((META_LOG_INO, log_node(sb.log_offset, sb.log_len, mode)));
    }

    /// Take the meta nodes (those with no log entry) from `ns`; directories without their
    /// children (only their attributes are answered from here).
    pub(super) fn update(&self, ns: &Namespace) {
        let copy = |n: &Node| match &n.kind {
            NodeKind::Dir(_) => Node {
                kind: NodeKind::Dir(DirNode::default()),
                parent: n.parent,
                name: n.name.clone(),
                attr: n.attr,
                log_index: None,
            },
            NodeKind::File(_) => n.clone(),
        };
        let nodes = META_INOS
            .iter()
            .filter_map(|&i| {
                ns.get(i)
                    .filter(|n| n.log_index.is_none())
                    .map(|n| (i, copy(n)))
            })
            .collect();
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = nodes;
    }

    /// Node `ino`, if it is a meta node (or the root).
    pub(super) fn node(&self, ino: Ino) -> Option<Node> {
        let g = self.0.read().unwrap_or_else(|p| p.into_inner());
        g.iter().find(|(i, _)| *i == ino).map(|(_, n)| n.clone())
    }

    /// The meta node `name` in directory `parent`.
    pub(super) fn lookup(&self, parent: Ino, name: &[u8]) -> Option<(Ino, Node)> {
        if parent != ROOT_INO && parent != META_DIR_INO {
            return None;
        }
        let g = self.0.read().unwrap_or_else(|p| p.into_inner());
        g.iter()
            .find(|(i, n)| {
                *i != ROOT_INO
                    && n.parent == parent
                    && n.name.as_os_str() == OsStr::from_bytes(name)
            })
            .map(|(i, n)| (*i, n.clone()))
    }
}

/// The `.meta/.log` node: `len` bytes at device offset `offset`.
fn log_node(offset: u64, len: u64, mode: u32) -> Node {
    Node {
        parent: META_DIR_INO,
        name: ".log".into(),
        attr: Attr {
            mode,
            uid: 0,
            gid: 0,
        },
        kind: NodeKind::File(FileNode {
            size: len,
            flags: 0,
            fmap: Arc::new(Fmap::simple(len, vec![Extent::new(0, offset, len)])),
        }),
        log_index: None,
    }
}
