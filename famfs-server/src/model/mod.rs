//! The file-system model: typed answers about the replayed namespace — entries, attributes,
//! directory listings, statfs, xattrs and which changes are refused here; file maps, data
//! segments, writes and the open policy in [`data`](self). It knows nothing of FUSE request
//! ids or reply bytes; a refusal is an [`Errno`].

mod data;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use famfs_fsdev::Mapping;
use famfs_log::namespace::{Ino, Node, ROOT_INO};
use famfs_log::replay::META_SB_INO;
use famfs_log::role::Role;
use fuse_famfs_proto::Errno;
use fuse_famfs_proto::abi::{self, AttrOut, EntryOut, Kstatfs, SetattrIn};

use crate::attr::AttrPolicy;
use crate::open::{LogMedia, Opened};
use crate::refresh::{Refreshed, SharedLog, SuperblockMedia};
use crate::{Config, ServerError};

use crate::stats::Stats;
use data::ViewCache;

/// The extended attributes of the root directory, NUL-separated (LISTXATTR).
const ROOT_XATTRS: &[u8] =
    b"user.famfs.pid\0user.famfs.device\0user.famfs.role\0user.famfs.stats\0";
/// As [`ROOT_XATTRS`], once the control channel is published.
const ROOT_XATTRS_CONTROL: &[u8] = b"user.famfs.pid\0user.famfs.device\0user.famfs.role\0\
      user.famfs.stats\0user.famfs.control\0";

/// An open famfs served to the kernel: the replayed log, the device mapping, and this host's
/// role. Shared by every worker; every answer takes the log's read lock only.
#[derive(Debug)]
pub struct FileSystem {
    cfg: Config,
    device_name: Vec<u8>,
    map: Arc<Mapping>,
    log: SharedLog<LogMedia>,
    role: Role,
    attrs: AttrPolicy,
    views: ViewCache,
    /// The control channel's socket path, once it listens (`user.famfs.control`).
    control: std::sync::OnceLock<Vec<u8>>,
    /// Request counters and run-time facts (`user.famfs.stats`).
    stats: Stats,
}

/// One directory entry, as [`FileSystem::readdir`] lists it.
#[derive(Debug)]
pub struct DirEntry<'a> {
    ino: Ino,
    cookie: u64,
    name: &'a [u8],
    node: &'a Node,
    dot: bool,
    attrs: &'a AttrPolicy,
}

impl DirEntry<'_> {
    /// The node it names.
    pub fn ino(&self) -> Ino {
        self.ino
    }

    /// Where a listing continues after this entry.
    pub fn cookie(&self) -> u64 {
        self.cookie
    }

    /// The name.
    pub fn name(&self) -> &[u8] {
        self.name
    }

    /// `DT_DIR` or `DT_REG`.
    pub fn typ(&self) -> u32 {
        if self.node.is_dir() {
            abi::DT_DIR
        } else {
            abi::DT_REG
        }
    }

    /// Whether it is "." or "..", which are not children.
    pub fn is_dot(&self) -> bool {
        self.dot
    }

    /// The lookup answer for the node.
    pub fn entry(&self) -> EntryOut {
        self.attrs.entry(self.ino, self.node)
    }
}

impl FileSystem {
    /// Open the device, check its superblock and log, and replay the log.
    pub fn open(cfg: Config) -> Result<Arc<FileSystem>, ServerError> {
        let Opened {
            map,
            log,
            role,
            device_name,
        } = crate::open::open(&cfg)?;
        let fs = Arc::new(FileSystem {
            device_name,
            map: Arc::clone(&map),
            log: SharedLog::new(
                log,
                Some(SuperblockMedia(Box::new(Arc::clone(&map)))),
                cfg.stall_timeout,
            ),
            role,
            attrs: AttrPolicy::new(cfg.timeout, role),
            views: ViewCache::default(),
            control: std::sync::OnceLock::new(),
            stats: Stats::default(),
            cfg,
        });
        // The log was just replayed.
        fs.stats.refreshed();
        Ok(fs)
    }

    /// This host's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The device mapping (READ segments are ranges of it).
    pub fn mapping(&self) -> &Mapping {
        &self.map
    }

    /// Number of files and directories currently served (meta files included).
    pub fn node_count(&self) -> usize {
        self.log
            .read()
            .map_or(0, |log| log.state().namespace().len())
    }

    /// How long the watcher sleeps between looks at the log.
    pub fn poll_interval(&self) -> Duration {
        self.cfg.poll
    }

    /// Request counters and run-time facts (`user.famfs.stats`).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The shared log (the control channel appends through it).
    pub(crate) fn shared_log(&self) -> &SharedLog<LogMedia> {
        &self.log
    }

    /// Publish the control channel's socket path in the root's `user.famfs.control`.
    pub(crate) fn publish_control(&self, socket: &std::path::Path) {
        let _ = self.control.set(socket.as_os_str().as_bytes().to_vec());
    }

    /// The device name, as bytes.
    pub(crate) fn device_name_bytes(&self) -> &[u8] {
        &self.device_name
    }

    /// The device name GET_DAXDEV reports.
    pub fn device_name(&self) -> PathBuf {
        PathBuf::from(OsStr::from_bytes(&self.device_name))
    }

    /// Bring the tree up to date with the log: replay new entries, or the whole log again if
    /// another host rewrote it (or stop serving, with EIO, while it holds no valid famfs).
    /// Returns whether the tree changed.
    pub fn refresh(&self) -> bool {
        let changed = match self.log.refresh() {
            Refreshed::Nothing => false,
            Refreshed::Added => true,
            Refreshed::Replaced => {
                self.views.clear();
                true
            }
        };
        if self.log.read().is_ok() {
            self.stats.refreshed();
        }
        changed
    }

    /// The error for a change only the famfs CLI may make (through the log): EPERM on the
    /// master, EROFS on a client.
    pub fn refuse_change(&self) -> Errno {
        if self.role == Role::Master {
            Errno::EPERM
        } else {
            Errno::EROFS
        }
    }

    /// LOOKUP: the entry for `name` in directory `parent`. A miss may be a file the master has
    /// just logged: the log is looked at once before answering ENOENT.
    pub fn lookup(&self, parent: Ino, name: &[u8]) -> Result<EntryOut, Errno> {
        for attempt in 0..2 {
            {
                let log = self.log.read()?;
                let ns = log.state().namespace();
                let pnode = log.node(parent)?;
                if !pnode.is_dir() {
                    return Err(Errno::ENOTDIR);
                }
                if let Some(ino) = ns.lookup(parent, OsStr::from_bytes(name)) {
                    let n = ns.get(ino).ok_or(Errno::ENOENT)?;
                    return Ok(self.attrs.entry(ino, n));
                }
            }
            if attempt == 0 && !self.refresh() {
                break;
            }
        }
        Err(Errno::ENOENT)
    }

    /// GETATTR.
    pub fn getattr(&self, ino: Ino) -> Result<AttrOut, Errno> {
        let log = self.log.read()?;
        let n = log.node(ino)?;
        Ok(self.attrs.attr_out(ino, n))
    }

    /// SETATTR: modes, owners and sizes live in the log, which only the CLI writes, and famfs
    /// has no timestamps, so every change is refused like a namespace change (see
    /// [`crate::attr::setattr_changes`]); only a truncate to the size the file has is accepted.
    pub fn setattr(&self, ino: Ino, s: &SetattrIn) -> Result<AttrOut, Errno> {
        let log = self.log.read()?;
        let n = log.node(ino)?;
        if crate::attr::setattr_changes(s, n) {
            return Err(self.refuse_change());
        }
        Ok(self.attrs.attr_out(ino, n))
    }

    /// OPENDIR: only directories.
    pub fn opendir(&self, ino: Ino) -> Result<(), Errno> {
        let log = self.log.read()?;
        let n = log.node(ino)?;
        if n.is_dir() {
            Ok(())
        } else {
            Err(Errno::ENOTDIR)
        }
    }

    /// ACCESS with `mask` (`R_OK | W_OK | ...`): writing is for the master, and never for the
    /// superblock.
    pub fn access(&self, ino: Ino, mask: u32) -> Result<(), Errno> {
        let log = self.log.read()?;
        log.node(ino)?;
        if mask & libc::W_OK as u32 != 0 && (self.role != Role::Master || ino == META_SB_INO) {
            return Err(Errno::EROFS);
        }
        Ok(())
    }

    /// READDIR(PLUS): calls `f` for each entry of directory `ino` after position `offset`
    /// ("." is at 1, ".." at 2, child k at 3 + k, in creation order, stable), until `f`
    /// returns false.
    pub fn readdir(
        &self,
        ino: Ino,
        offset: u64,
        mut f: impl FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        let log = self.log.read()?;
        let ns = log.state().namespace();
        let node = log.node(ino)?;
        let dir = node.as_dir().ok_or(Errno::ENOTDIR)?;
        let entries = [(ino, &b"."[..]), (node.parent, &b".."[..])]
            .into_iter()
            .chain(
                dir.children()
                    .iter()
                    .map(|&c| (c, ns.get(c).map_or(&b""[..], |n| n.name.as_bytes()))),
            )
            .enumerate()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX));
        for (i, (child, name)) in entries {
            let Some(n) = ns.get(child) else { continue };
            let e = DirEntry {
                ino: child,
                cookie: i as u64 + 1,
                name,
                node: n,
                dot: i < 2,
                attrs: &self.attrs,
            };
            if !f(&e) {
                break;
            }
        }
        Ok(())
    }

    /// STATFS: 2 MiB blocks of the allocation bitmap, log slots as inodes.
    pub fn statfs(&self) -> Result<Kstatfs, Errno> {
        let log = self.log.read()?;
        let bm = log.state().bitmap();
        let h = log.header();
        let free = bm.nbits() - bm.count_set();
        Ok(Kstatfs {
            blocks: bm.nbits(),
            bfree: free,
            bavail: free,
            files: h.slots(),
            ffree: h.slots() - h.next_index,
            bsize: famfs_fsdev::ALLOC_UNIT as u32,
            namelen: famfs_log::layout::RELPATH_MAX as u32,
            frsize: famfs_fsdev::ALLOC_UNIT as u32,
            ..Default::default()
        })
    }

    /// GETXATTR: the root directory tells the daemon's pid, device, role, control socket and
    /// statistics (`user.famfs.stats`, JSON: [`crate::stats::StatsV1`]); nothing else has
    /// extended attributes (ENODATA).
    pub fn getxattr(&self, ino: Ino, name: &[u8]) -> Result<Vec<u8>, Errno> {
        if ino != ROOT_INO {
            return Err(Errno::ENODATA);
        }
        match name {
            b"user.famfs.pid" => Ok(std::process::id().to_string().into_bytes()),
            b"user.famfs.device" => Ok(self.device_name.clone()),
            b"user.famfs.role" => Ok(match self.role {
                Role::Master => b"master".to_vec(),
                _ => b"client".to_vec(),
            }),
            b"user.famfs.control" => self.control.get().cloned().ok_or(Errno::ENODATA),
            b"user.famfs.stats" => crate::stats::xattr_value(self),
            _ => Err(Errno::ENODATA),
        }
    }

    /// LISTXATTR: the names [`FileSystem::getxattr`] answers for `ino`, NUL-terminated.
    pub fn listxattr(&self, ino: Ino) -> &'static [u8] {
        match (ino == ROOT_INO, self.control.get().is_some()) {
            (true, true) => ROOT_XATTRS_CONTROL,
            (true, false) => ROOT_XATTRS,
            (false, _) => b"",
        }
    }

    /// GET_DAXDEV: the path of device `index` (a famfs has one device, index 0).
    pub fn daxdev(&self, index: u64) -> Result<&[u8], Errno> {
        if index == 0 {
            Ok(&self.device_name)
        } else {
            Err(Errno::EINVAL)
        }
    }
}
