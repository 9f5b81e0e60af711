//! Attribute policy: what the kernel is told about a node.
//!
//! * Modes come from the log; on a client every write bit is cleared (only the master writes).
//! * Sizes are the file sizes; blocks count the whole allocation (2 MiB units).
//! * famfs has no timestamps: every time is when the daemon started, and setting one (utimes,
//!   `touch`) is refused like every other attribute change ([`setattr_changes`]).
//! * Entries and attributes may be cached by the kernel for `Config::timeout`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use famfs_log::namespace::{Ino, Node, NodeKind};
use famfs_log::role::Role;
use fuse_famfs_proto::abi::{self, Attr, AttrOut, EntryOut, SetattrIn};

/// The SETATTR bits that set a time.
const TIMES: u32 = abi::FATTR_ATIME
    | abi::FATTR_MTIME
    | abi::FATTR_ATIME_NOW
    | abi::FATTR_MTIME_NOW
    | abi::FATTR_CTIME;

/// Whether SETATTR `s` on node `n` asks for a change famfs cannot make here: a mode or an
/// owner (they live in the log, which only the CLI writes), a size (files are allocated once),
/// or a time (famfs keeps none, so accepting it would report success and store nothing). A
/// truncate to the size the file already has changes nothing, and the times the kernel sends
/// along with it are ignored, so that `open(O_TRUNC)` of an empty file still works.
pub(crate) fn setattr_changes(s: &SetattrIn, n: &Node) -> bool {
    let size = n.as_file().map_or(0, |f| f.size);
    let owner = s.valid & (abi::FATTR_MODE | abi::FATTR_UID | abi::FATTR_GID) != 0;
    let truncate = s.valid & abi::FATTR_SIZE != 0;
    let resize = truncate && (n.is_dir() || s.size != size);
    let times = !truncate && s.valid & TIMES != 0;
    owner || resize || times
}

/// How nodes are presented: fixed when the file system is opened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttrPolicy {
    /// Every timestamp: (seconds, nanoseconds) since the epoch.
    started: (u64, u32),
    /// Entry and attribute cache timeout.
    timeout: (u64, u32),
    /// Clear the write bits (a client).
    read_only: bool,
}

impl AttrPolicy {
    /// The policy for a host of `role`, with cache `timeout`, starting now.
    pub(crate) fn new(timeout: Duration, role: Role) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        AttrPolicy {
            started: (now.as_secs(), now.subsec_nanos()),
            timeout: (timeout.as_secs(), timeout.subsec_nanos()),
            read_only: role != Role::Master,
        }
    }

    /// The attributes of node `ino`.
    pub(crate) fn attr(&self, ino: Ino, n: &Node) -> Attr {
        let (s, ns) = self.started;
        let strip = |m: u32| if self.read_only { m & !0o222 } else { m };
        let (mode, size, blocks, nlink) = match &n.kind {
            NodeKind::Dir(_) => (libc::S_IFDIR | strip(n.attr.mode), 0, 0, 2),
            NodeKind::File(f) => (
                libc::S_IFREG | strip(n.attr.mode),
                f.size,
                f.fmap.allocated_bytes() / 512,
                1,
            ),
        };
        Attr {
            ino: ino.get(),
            size,
            blocks,
            atime: s,
            mtime: s,
            ctime: s,
            atimensec: ns,
            mtimensec: ns,
            ctimensec: ns,
            mode,
            nlink,
            uid: n.attr.uid,
            gid: n.attr.gid,
            rdev: 0,
            blksize: famfs_fsdev::ALLOC_UNIT as u32,
            flags: 0,
        }
    }

    /// A lookup answer for node `ino`.
    pub(crate) fn entry(&self, ino: Ino, n: &Node) -> EntryOut {
        let (s, ns) = self.timeout;
        EntryOut {
            nodeid: ino.get(),
            generation: 1,
            entry_valid: s,
            attr_valid: s,
            entry_valid_nsec: ns,
            attr_valid_nsec: ns,
            attr: self.attr(ino, n),
        }
    }

    /// A GETATTR answer for node `ino`.
    pub(crate) fn attr_out(&self, ino: Ino, n: &Node) -> AttrOut {
        let (s, ns) = self.timeout;
        AttrOut {
            attr_valid: s,
            attr_valid_nsec: ns,
            dummy: 0,
            attr: self.attr(ino, n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use famfs_log::namespace::{DirNode, FileNode};
    use fuse_famfs_proto::fmap::{Extent, Fmap};
    use std::sync::Arc;

    fn node(kind: NodeKind) -> Node {
        Node {
            parent: famfs_log::namespace::ROOT_INO,
            name: "f".into(),
            attr: famfs_log::namespace::Attr {
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
            kind,
            log_index: Some(0),
        }
    }

    #[test]
    fn every_change_is_refused_but_a_same_size_truncate() {
        let file = node(NodeKind::File(FileNode {
            size: 100,
            flags: 2,
            fmap: Arc::new(Fmap::simple(100, vec![Extent::new(0, 10 << 20, 2 << 20)])),
        }));
        let dir = node(NodeKind::Dir(DirNode::default()));
        let set = |valid, size| SetattrIn {
            valid,
            size,
            ..Default::default()
        };
        for (what, s, n, refused) in [
            ("chmod", set(abi::FATTR_MODE, 0), &file, true),
            ("chgrp", set(abi::FATTR_GID, 0), &file, true),
            (
                "utimes",
                set(abi::FATTR_ATIME | abi::FATTR_MTIME, 0),
                &file,
                true,
            ),
            ("touch", set(TIMES & !abi::FATTR_CTIME, 0), &file, true),
            (
                "touch dir",
                set(abi::FATTR_MTIME_NOW | abi::FATTR_MTIME, 0),
                &dir,
                true,
            ),
            ("ctime", set(abi::FATTR_CTIME, 0), &file, true),
            (
                "truncate",
                set(abi::FATTR_SIZE | abi::FATTR_MTIME, 5),
                &file,
                true,
            ),
            ("truncate dir", set(abi::FATTR_SIZE, 0), &dir, true),
            ("same size", set(abi::FATTR_SIZE | TIMES, 100), &file, false),
            (
                "handle only",
                set(abi::FATTR_FH | abi::FATTR_LOCKOWNER, 0),
                &file,
                false,
            ),
            ("nothing", set(0, 0), &dir, false),
        ] {
            assert_eq!(setattr_changes(&s, n), refused, "{what}");
        }
    }
}
