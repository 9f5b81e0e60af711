//! Attribute policy: what the kernel is told about a node.
//!
//! * Modes come from the log; on a client every write bit is cleared (only the master writes).
//! * Sizes are the file sizes; blocks count the whole allocation (2 MiB units).
//! * famfs has no timestamps: every time is when the daemon started.
//! * Entries and attributes may be cached by the kernel for `Config::timeout`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use famfs_log::namespace::{Ino, Node, NodeKind};
use famfs_log::role::Role;
use fuse_famfs_proto::abi::{Attr, AttrOut, EntryOut};

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
            ino,
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
            nodeid: ino,
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
