//! The file-system model: typed answers about the replayed namespace — entries, attributes,
//! directory listings, statfs, xattrs and which changes are refused here; file maps, data
//! segments, writes and the open policy in [`data`](self). It knows nothing of FUSE request
//! ids or reply bytes; a refusal is an [`Errno`].

mod data;
mod format;
mod meta;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use famfs_fsdev::Mapping;
use famfs_log::namespace::{Ino, Node, ROOT_INO};
use famfs_log::role::Role;
use fuse_famfs_proto::Errno;
use fuse_famfs_proto::abi::{self, AttrOut, EntryOut, Kstatfs, SetattrIn};

use crate::attr::AttrPolicy;
use crate::meta::MetaFiles;
use crate::open::{Bootstrapped, LogMedia, Opened};
use crate::refresh::{LogGuard, Refreshed, SharedLog, SuperblockMedia};
use crate::{Config, ServerError};

use crate::stats::Stats;
use data::ViewCache;
use meta::MetaNodes;

/// The extended attributes of the root directory, NUL-separated (LISTXATTR).
const ROOT_XATTRS: &[u8] =
    b"user.famfs.pid\0user.famfs.device\0user.famfs.role\0user.famfs.stats\0";
/// As [`ROOT_XATTRS`], once the control channel is published.
const ROOT_XATTRS_CONTROL: &[u8] = b"user.famfs.pid\0user.famfs.device\0user.famfs.role\0\
      user.famfs.stats\0user.famfs.control\0";

/// An open famfs served to the kernel: the replayed log, the device mapping, and this host's
/// role. Shared by every worker; every answer takes the log's read lock only, and the meta
/// files (`.meta`, `.meta/.superblock`, `.meta/.log`) are answered without it.
///
/// A file system whose metadata is read through the daemon's own mount
/// ([`crate::MetaAccess`]) shows only `.meta/.superblock` until
/// [`FileSystem::bootstrap`] has read the superblock and the log through the mount; until then
/// everything else answers EAGAIN.
#[derive(Debug)]
pub struct FileSystem {
    cfg: Config,
    device_name: Vec<u8>,
    /// The device mapping (READ segments are ranges of it); a small placeholder when the device
    /// is not mapped (`mapped` false: a famfs-mode device, whose data only the kernel reaches).
    map: Arc<Mapping>,
    mapped: bool,
    /// Formatting mode (`Config::format_log_len`): only the two meta files, both writable.
    formatting: bool,
    device_size: u64,
    /// The replayed log, once there is one.
    tree: std::sync::OnceLock<Tree>,
    /// The meta files, answered without the tree's lock.
    meta: MetaNodes,
    /// How nodes are shown before the role is known (not to be cached).
    boot_attrs: AttrPolicy,
    views: ViewCache,
    /// The control channel's socket path, once it listens (`user.famfs.control`).
    control: std::sync::OnceLock<Vec<u8>>,
    /// Request counters and run-time facts (`user.famfs.stats`).
    stats: Stats,
}

/// The replayed log and what depends on the superblock.
#[derive(Debug)]
struct Tree {
    log: SharedLog<LogMedia>,
    role: Role,
    attrs: AttrPolicy,
}

/// EAGAIN: the log has not been read yet (bootstrap through the own mount).
const EAGAIN: Errno = Errno::new_clamped(libc::EAGAIN);

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
    /// Open the device, check its superblock and log, and replay the log; or, if its metadata
    /// is to be read through the own mount ([`crate::MetaAccess`]), only probe (and, unless it
    /// is in famfs mode, map) the device: the log is read by [`FileSystem::bootstrap`] once
    /// mounted.
    pub fn open(cfg: Config) -> Result<Arc<FileSystem>, ServerError> {
        let (through_mount, mapped) = crate::open::access_of(&cfg)?;
        if let Some(log_len) = cfg.format_log_len {
            return Self::open_formatting(cfg, mapped, log_len);
        }
        if through_mount {
            return Self::open_unmounted(cfg, mapped);
        }
        let Opened {
            map,
            log,
            role,
            device_name,
        } = crate::open::open(&cfg)?;
        let fs = FileSystem {
            device_name,
            device_size: map.len() as u64,
            map: Arc::clone(&map),
            mapped: true,
            formatting: false,
            tree: std::sync::OnceLock::new(),
            meta: MetaNodes::default(),
            boot_attrs: AttrPolicy::new(cfg.timeout, Role::Client),
            views: ViewCache::default(),
            control: std::sync::OnceLock::new(),
            stats: Stats::default(),
            cfg,
        };
        let tree = Tree {
            log: SharedLog::new(
                log,
                Some(SuperblockMedia(Box::new(Arc::clone(&map)))),
                fs.cfg.stall_timeout,
            ),
            role,
            attrs: AttrPolicy::new(fs.cfg.timeout, role),
        };
        fs.install(tree);
        // The log was just replayed.
        fs.stats.refreshed();
        Ok(Arc::new(fs))
    }

    /// A file system whose metadata will be read through the own mount: only
    /// `.meta/.superblock` is shown until [`FileSystem::bootstrap`]. The device is mapped only
    /// if `mapped` (never a famfs-mode device).
    fn open_unmounted(cfg: Config, mapped: bool) -> Result<Arc<FileSystem>, ServerError> {
        let (device_size, map) = crate::open::open_unmounted(&cfg, mapped)?;
        let map = match map {
            Some(m) => m,
            // Nothing is ever read from it: READ and WRITE answer EIO when not `mapped`.
            None => Arc::new(
                famfs_fsdev::DaxDevice::memfd("unmapped", famfs_fsdev::MIN_DEVICE_SIZE)?
                    .map_all()?,
            ),
        };
        // Not cached by the kernel: the role (write bits) is known only after the bootstrap.
        let boot_attrs = AttrPolicy::new(Duration::ZERO, Role::Client);
        let fs = Arc::new(FileSystem {
            device_name: crate::open::device_name(&cfg),
            device_size,
            map,
            mapped,
            formatting: false,
            tree: std::sync::OnceLock::new(),
            meta: MetaNodes::superblock_only(),
            boot_attrs,
            views: ViewCache::default(),
            control: std::sync::OnceLock::new(),
            stats: Stats::default(),
            cfg,
        });
        fs.stats
            .set_metadata_source(crate::stats::MetadataSource::OwnMount);
        Ok(fs)
    }

    /// Read the superblock and the log through `files` (the own mount, now served), replay
    /// the log and publish the tree. Only for a file system opened to be read through the own
    /// mount, and only once.
    pub fn bootstrap(&self, files: Arc<dyn MetaFiles>) -> Result<(), ServerError> {
        if self.tree.get().is_some() {
            return Ok(());
        }
        let Bootstrapped { log, meta, role } =
            crate::open::bootstrap(&self.cfg, files, self.device_size, |sb, role| {
                self.meta.publish_log(sb, role == Role::Master)
            })?;
        let tree = Tree {
            log: SharedLog::new(
                log,
                Some(SuperblockMedia(meta.superblock_media())),
                self.cfg.stall_timeout,
            )
            .with_mounted(meta),
            role,
            attrs: AttrPolicy::new(self.cfg.timeout, role),
        };
        self.install(tree);
        self.stats.refreshed();
        Ok(())
    }

    /// [`FileSystem::bootstrap`] through the daemon's own mount at `mountpoint` (mounted, and
    /// served by running workers).
    pub fn bootstrap_through_mount(&self, mountpoint: &std::path::Path) -> Result<(), ServerError> {
        let files = crate::meta::MountFiles::new(mountpoint)?;
        self.bootstrap(Arc::new(files))
    }

    /// Whether the log has been read (always, unless read through the own mount and not
    /// bootstrapped yet).
    pub fn is_ready(&self) -> bool {
        self.tree.get().is_some()
    }

    /// Whether the metadata is read through the own mount.
    pub fn meta_through_mount(&self) -> bool {
        self.tree.get().is_none_or(|t| t.log.mounted().is_some())
    }

    /// Whether the device is mapped (its data can be served with READ/WRITE); a famfs-mode
    /// device never is, and needs the famfs kernel path.
    pub fn is_mapped(&self) -> bool {
        self.mapped
    }

    fn install(&self, tree: Tree) {
        if let Ok(log) = tree.log.read() {
            self.meta.update(log.state().namespace());
        }
        let _ = self.tree.set(tree);
    }

    fn tree(&self) -> Result<&Tree, Errno> {
        self.tree.get().ok_or(EAGAIN)
    }

    /// The tree, for reading (EAGAIN before the bootstrap, EIO while stopped).
    fn log(&self) -> Result<LogGuard<'_, LogMedia>, Errno> {
        self.tree()?.log.read()
    }

    /// How nodes are shown.
    fn attrs(&self) -> &AttrPolicy {
        self.tree.get().map_or(&self.boot_attrs, |t| &t.attrs)
    }

    /// This host's role (a client until the superblock has been read).
    pub fn role(&self) -> Role {
        self.tree.get().map_or(Role::Client, |t| t.role)
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
        self.log().map_or(0, |log| log.state().namespace().len())
    }

    /// How long the watcher sleeps between looks at the log.
    pub fn poll_interval(&self) -> Duration {
        self.cfg.poll
    }

    /// Request counters and run-time facts (`user.famfs.stats`).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The shared log (the control channel appends through it), once there is one.
    pub(crate) fn shared_log(&self) -> Option<&SharedLog<LogMedia>> {
        self.tree.get().map(|t| &t.log)
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
        match self.tree() {
            Ok(t) => self.refreshed(&t.log, t.log.refresh()),
            Err(_) => false,
        }
    }

    /// A refresh from a request handler: none when the metadata is read through the own
    /// mount (see [`SharedLog::refresh_from_handler`]).
    fn refresh_from_handler(&self) -> bool {
        match self.tree() {
            Ok(t) => self.refreshed(&t.log, t.log.refresh_from_handler()),
            Err(_) => false,
        }
    }

    fn refreshed(&self, log: &SharedLog<LogMedia>, r: Refreshed) -> bool {
        let replaced = matches!(r, Refreshed::Replaced);
        if replaced {
            self.views.clear();
        }
        // While serving (not stopped), the tree is now up to date with the log.
        if let Ok(l) = log.read() {
            if replaced {
                self.meta.update(l.state().namespace());
            }
            self.stats.refreshed();
        }
        !matches!(r, Refreshed::Nothing)
    }

    /// The error for a change only the famfs CLI may make (through the log): EPERM on the
    /// master, EROFS on a client.
    pub fn refuse_change(&self) -> Errno {
        if self.role() == Role::Master {
            Errno::EPERM
        } else {
            Errno::EROFS
        }
    }

    /// LOOKUP: the entry for `name` in directory `parent`. A miss may be a file the master has
    /// just logged: the log is looked at once before answering ENOENT.
    pub fn lookup(&self, parent: Ino, name: &[u8]) -> Result<EntryOut, Errno> {
        if let Some((ino, n)) = self.meta.lookup(parent, name) {
            return Ok(self.attrs().entry(ino, &n));
        }
        for attempt in 0..2 {
            {
                let log = self.log()?;
                let ns = log.state().namespace();
                let pnode = log.node(parent)?;
                if !pnode.is_dir() {
                    return Err(Errno::ENOTDIR);
                }
                if let Some(ino) = ns.lookup(parent, OsStr::from_bytes(name)) {
                    let n = ns.get(ino).ok_or(Errno::ENOENT)?;
                    return Ok(self.attrs().entry(ino, n));
                }
            }
            if attempt == 0 && !self.refresh_from_handler() {
                break;
            }
        }
        Err(Errno::ENOENT)
    }

    /// GETATTR.
    pub fn getattr(&self, ino: Ino) -> Result<AttrOut, Errno> {
        if let Some(n) = self.meta.node(ino) {
            return Ok(self.attrs().attr_out(ino, &n));
        }
        let log = self.log()?;
        let n = log.node(ino)?;
        Ok(self.attrs().attr_out(ino, n))
    }

    /// SETATTR: modes, owners and sizes live in the log, which only the CLI writes, and famfs
    /// has no timestamps, so every change is refused like a namespace change (see
    /// [`crate::attr::setattr_changes`]); only a truncate to the size the file has is accepted.
    pub fn setattr(&self, ino: Ino, s: &SetattrIn) -> Result<AttrOut, Errno> {
        let log = self.log()?;
        let n = log.node(ino)?;
        if crate::attr::setattr_changes(s, n) {
            return Err(self.refuse_change());
        }
        Ok(self.attrs().attr_out(ino, n))
    }

    /// OPENDIR: only directories.
    pub fn opendir(&self, ino: Ino) -> Result<(), Errno> {
        let log = self.log()?;
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
        if self.meta.node(ino).is_none() {
            self.log()?.node(ino)?;
        }
        if mask & libc::W_OK as u32 != 0 && !self.may_write(ino) {
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
        let log = self.log()?;
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
                attrs: self.attrs(),
            };
            if !f(&e) {
                break;
            }
        }
        Ok(())
    }

    /// STATFS: 2 MiB blocks of the allocation bitmap, log slots as inodes.
    pub fn statfs(&self) -> Result<Kstatfs, Errno> {
        if self.tree.get().is_none() {
            // Before the log is read (through the mount): an empty file system.
            return Ok(Kstatfs {
                bsize: famfs_fsdev::ALLOC_UNIT as u32,
                namelen: famfs_log::layout::RELPATH_MAX as u32,
                frsize: famfs_fsdev::ALLOC_UNIT as u32,
                ..Default::default()
            });
        }
        let log = self.log()?;
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
            b"user.famfs.role" => Ok(match self.role() {
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
