//! The file system: state, and one handler per FUSE operation.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use famfs_fsdev::{Access, DaxDevice, DaxMode, DeviceKind, FileView, Mapping};
use famfs_log::namespace::{Ino, Node, NodeKind, ROOT_INO};
use famfs_log::replay::{META_LOG_INO, META_SB_INO};
use famfs_log::role::Role;
use famfs_log::{Famfs, OffsetMedia, OpenOptions, ReplayMode};
use fuse_famfs_proto::abi::Opcode;
use fuse_famfs_proto::abi::{self, Attr, AttrOut, DaxdevOut, EntryOut, InitIn, Kstatfs, SetattrIn};
use fuse_famfs_proto::fmap::{Extent, FileType, FmapKind};
use fuse_famfs_proto::reply::{self, InitConfig, ReaddirPlusWriter, ReaddirWriter};
use fuse_famfs_proto::{AbiGeneration, Errno, Fmap, Operation, Request};

use crate::{Config, DaxPolicy, ServerError};

type Log = Famfs<OffsetMedia<Arc<Mapping>>>;
type View = FileView<Arc<Mapping>>;

/// What to send back for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Nothing (FORGET, BATCH_FORGET, INTERRUPT).
    None,
    /// `out[..n]` is the whole reply.
    Bytes(usize),
    /// A READ reply: a 16-byte header followed by these ranges of the device mapping, sent
    /// without copying them into a buffer first.
    Read {
        /// The request's unique id.
        unique: u64,
        /// `(mapping offset, length)` pieces, in file order.
        segments: Vec<(u64, u64)>,
    },
    /// `out[..n]` is the reply, after which the session ends (DESTROY).
    Last(usize),
}

/// The daemon's state.
#[derive(Debug)]
pub struct Server {
    cfg: Config,
    device_name: Vec<u8>,
    map: Arc<Mapping>,
    log: RwLock<Log>,
    role: Role,
    rawio: bool,
    famfs: AtomicBool,
    views: RwLock<HashMap<Ino, Arc<View>>>,
    stall: Mutex<Option<(u64, Instant)>>,
    started: (u64, u32),
}

fn errno_of(e: &famfs_fsdev::FsdevError) -> Errno {
    Errno::from_io(&std::io::Error::from_raw_os_error(e.errno()))
}

/// Whether this process holds `CAP_SYS_RAWIO` in its effective set, which a famfs kernel
/// requires of the mounter before it offers `FUSE_DAX_FMAP` (CapEff in /proc/self/status;
/// CAP_SYS_RAWIO is bit 17).
pub fn has_cap_sys_rawio() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps >> 17 & 1 == 1)
}

impl Server {
    /// Open the device, check its superblock and log, and replay the log.
    pub fn open(cfg: Config) -> Result<Arc<Server>, ServerError> {
        let famfs_err = |source| ServerError::Famfs {
            device: cfg.device.clone(),
            source,
        };
        let local = match cfg.system_uuid {
            Some(u) => Some(u),
            None => match famfs_log::role::system_uuid() {
                Ok(u) => Some(u),
                Err(e) => {
                    tracing::warn!("{e}; running as a client");
                    None
                }
            },
        };
        // Read the superblock through a read-only mapping first: only the master maps the
        // device writable.
        let ro = DaxDevice::open(&cfg.device, Access::ReadOnly)?;
        // The kernel maps famfs files only onto a dax device bound to fsdev_dax (famfs mode),
        // and a device in that mode has no mmap: this daemon, which reads the log through a
        // mapping, needs devdax mode and then serves data itself. So no device it can open is
        // one a famfs kernel can map (see `DaxPolicy::Auto`).
        if let DeviceKind::DaxChar {
            mode: DaxMode::Famfs,
            ..
        } = ro.kind()
        {
            return Err(ServerError::Device(
                famfs_fsdev::FsdevError::WrongFileType {
                    path: cfg.device.clone(),
                    found: "dax device in famfs mode (fsdev_dax), which cannot be \
                            memory-mapped; switch it to devdax mode \
                            (daxctl-famfs reconfigure-device -m devdax)",
                },
            ));
        }
        let probe = ro.map(0, ro.align().max(famfs_fsdev::ALLOC_UNIT))?;
        let sb = famfs_log::superblock::Superblock::read(&probe).map_err(famfs_err)?;
        drop(probe);
        let role = Role::of(Some(&sb), local);
        let dev = if role == Role::Master {
            DaxDevice::open(&cfg.device, Access::ReadWrite)?
        } else {
            ro
        };
        let map = Arc::new(dev.map_all()?);
        let log = Famfs::open_device(
            Arc::clone(&map),
            OpenOptions {
                system_uuid: local,
                device_size: Some(dev.size()),
                replay: ReplayMode::Strict,
                meta_files: true,
                root: None,
            },
        )
        .map_err(famfs_err)?;
        for p in log.state().problems() {
            tracing::warn!("{p}");
        }
        let device_name = std::fs::canonicalize(&cfg.device)
            .unwrap_or_else(|_| cfg.device.clone())
            .into_os_string()
            .into_vec();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        tracing::info!(
            "{}: {} files, {} directories, role {:?}",
            cfg.device.display(),
            log.state().stats().files,
            log.state().stats().dirs,
            role
        );
        Ok(Arc::new(Server {
            device_name,
            map,
            log: RwLock::new(log),
            role,
            rawio: has_cap_sys_rawio(),
            famfs: AtomicBool::new(false),
            views: RwLock::new(HashMap::new()),
            stall: Mutex::new(None),
            started: (now.as_secs(), now.subsec_nanos()),
            cfg,
        }))
    }

    /// This host's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Whether the kernel took the famfs path (GET_FMAP) in INIT.
    pub fn famfs_enabled(&self) -> bool {
        self.famfs.load(Ordering::Relaxed)
    }

    /// The device mapping (READ replies point into it).
    pub fn mapping(&self) -> &Mapping {
        &self.map
    }

    /// Number of files and directories currently served (meta files included).
    pub fn node_count(&self) -> usize {
        self.read_log().state().namespace().len()
    }

    fn read_log(&self) -> RwLockReadGuard<'_, Log> {
        self.log.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_log(&self) -> RwLockWriteGuard<'_, Log> {
        self.log.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Replay new log entries if the log header says there are any. Returns whether anything
    /// was added. An entry that stays unreadable for longer than the stall timeout is skipped
    /// with an error, so one corrupt entry cannot hide the rest of the log forever.
    pub fn refresh(&self) -> bool {
        // A header that does not validate counts as nothing new (as before: the cheap check
        // stays quiet; a full replay would report it on every poll).
        if !matches!(self.read_log().has_new_entries(), Ok(true)) {
            return false;
        }
        let mut log = self.write_log();
        let before = log.state().namespace().len();
        match log.refresh() {
            Ok(report) => {
                for p in &report.problems {
                    tracing::warn!("{p}");
                }
                let mut stall = self.stall.lock().unwrap_or_else(|p| p.into_inner());
                match report.stalled {
                    Some((idx, err)) => match *stall {
                        Some((i, since))
                            if i == idx && since.elapsed() >= self.cfg.stall_timeout =>
                        {
                            tracing::error!(
                                "log entry {idx} is still unreadable after {:?} ({err}); skipping it",
                                self.cfg.stall_timeout
                            );
                            log.state_mut().skip_bad(idx, err);
                            *stall = None;
                            drop(stall);
                            let _ = log.refresh();
                        }
                        Some((i, _)) if i == idx => {}
                        _ => {
                            tracing::warn!("log entry {idx} is not readable yet ({err}); retrying");
                            *stall = Some((idx, Instant::now()));
                        }
                    },
                    None => *stall = None,
                }
            }
            Err(e) => tracing::error!("cannot read the log: {e}; serving what was read before"),
        }
        log.state().namespace().len() > before
    }

    fn attr_of(&self, ino: Ino, n: &Node) -> Attr {
        let (s, ns) = self.started;
        let client = self.role != Role::Master;
        let strip = |m: u32| if client { m & !0o222 } else { m };
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

    fn timeout(&self) -> (u64, u32) {
        let t = self.cfg.timeout;
        (t.as_secs(), t.subsec_nanos())
    }

    fn entry_of(&self, ino: Ino, n: &Node) -> EntryOut {
        let (s, ns) = self.timeout();
        EntryOut {
            nodeid: ino,
            generation: 1,
            entry_valid: s,
            attr_valid: s,
            entry_valid_nsec: ns,
            attr_valid_nsec: ns,
            attr: self.attr_of(ino, n),
        }
    }

    fn attr_out(&self, ino: Ino, n: &Node) -> AttrOut {
        let (s, ns) = self.timeout();
        AttrOut {
            attr_valid: s,
            attr_valid_nsec: ns,
            dummy: 0,
            attr: self.attr_of(ino, n),
        }
    }

    /// The view of file `ino`, built once and cached (files never change).
    fn view(&self, ino: Ino) -> Result<Arc<View>, Errno> {
        if let Some(v) = self
            .views
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&ino)
        {
            return Ok(Arc::clone(v));
        }
        let wire = self.wire_fmap(ino)?;
        let view = FileView::new(Arc::clone(&self.map), &wire).map_err(|e| {
            tracing::error!("file {ino}: {e}");
            Errno::EIO
        })?;
        let view = Arc::new(view);
        self.views
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ino, Arc::clone(&view));
        Ok(view)
    }

    fn wire_fmap(&self, ino: Ino) -> Result<Fmap, Errno> {
        let log = self.read_log();
        let n = log.state().namespace().get(ino).ok_or(Errno::ENOENT)?;
        let f = n.as_file().ok_or(Errno::EISDIR)?;
        let mut wire = f.fmap.to_wire(f.size).map_err(|e| {
            tracing::error!("file {ino}: {e}");
            Errno::EINVAL
        })?;
        wire.file_type = match ino {
            META_SB_INO => FileType::Superblock,
            META_LOG_INO => FileType::Log,
            _ => FileType::Regular,
        };
        Ok(wire)
    }

    /// Answer one request (`req`: exactly the bytes read from the channel) into `out`, which
    /// must hold at least 16 bytes plus the largest READ/READDIR size negotiated.
    pub fn handle(&self, req: &[u8], out: &mut [u8]) -> Reply {
        let r = match Request::parse(req) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("malformed request: {e}");
                return match e.reply_errno() {
                    Some((unique, errno)) => Self::err(out, unique, errno),
                    None => Reply::None,
                };
            }
        };
        let unique = r.header.unique;
        match self.dispatch(&r, out) {
            Ok(rep) => rep,
            Err(errno) => Self::err(out, unique, errno),
        }
    }

    fn err(out: &mut [u8], unique: u64, errno: Errno) -> Reply {
        reply::error(out, unique, errno).map_or(Reply::None, Reply::Bytes)
    }

    fn bytes(n: Result<usize, reply::BuildError>) -> Result<Reply, Errno> {
        n.map(Reply::Bytes).map_err(|e| {
            tracing::error!("cannot build reply: {e}");
            Errno::EIO
        })
    }

    fn dispatch(&self, r: &Request<'_>, out: &mut [u8]) -> Result<Reply, Errno> {
        let unique = r.header.unique;
        let ino = r.header.nodeid;
        match &r.op {
            Operation::Init(init) => self.init(init, unique, out),
            Operation::Destroy => Ok(Reply::Last(
                reply::empty(out, unique).map_err(|_| Errno::EIO)?,
            )),
            Operation::Forget(_) | Operation::BatchForget(_) | Operation::Interrupt(_) => {
                Ok(Reply::None)
            }
            Operation::Lookup { name } => self.lookup(ino, name, unique, out),
            Operation::Getattr(_) => {
                let log = self.read_log();
                let n = log.state().namespace().get(ino).ok_or(Errno::ENOENT)?;
                Self::bytes(reply::attr(out, unique, &self.attr_out(ino, n)))
            }
            Operation::Setattr(s) => self.setattr(ino, s, unique, out),
            Operation::Open(o) => self.open_file(ino, o.flags, unique, out),
            Operation::Opendir(_) => {
                let log = self.read_log();
                let n = log.state().namespace().get(ino).ok_or(Errno::ENOENT)?;
                if !n.is_dir() {
                    return Err(Errno::ENOTDIR);
                }
                Self::bytes(reply::open(out, unique, ino, 0))
            }
            Operation::Read(rd) => self.read(ino, rd.offset, rd.size, unique, out),
            Operation::Write { arg, data } => self.write(ino, arg.offset, data, unique, out),
            Operation::Release(_)
            | Operation::Releasedir(_)
            | Operation::Flush(_)
            | Operation::Fsync(_)
            | Operation::Fsyncdir(_) => Self::bytes(reply::empty(out, unique)),
            Operation::Readdir(rd) => self.readdir(ino, rd.offset, rd.size, false, unique, out),
            Operation::Readdirplus(rd) => self.readdir(ino, rd.offset, rd.size, true, unique, out),
            Operation::Statfs => self.statfs(unique, out),
            Operation::Access(a) => {
                let log = self.read_log();
                log.state().namespace().get(ino).ok_or(Errno::ENOENT)?;
                if a.mask & libc::W_OK as u32 != 0
                    && (self.role != Role::Master || ino == META_SB_INO)
                {
                    return Err(Errno::EROFS);
                }
                Self::bytes(reply::empty(out, unique))
            }
            Operation::Getxattr { arg, name } => {
                let v = self.xattr(ino, name).ok_or(Errno::ENODATA)?;
                Self::bytes(reply::xattr(out, unique, arg.size, &v))
            }
            Operation::Listxattr(arg) => {
                let names: &[u8] = if ino == ROOT_INO {
                    b"user.famfs.pid\0user.famfs.device\0user.famfs.role\0"
                } else {
                    b""
                };
                Self::bytes(reply::xattr(out, unique, arg.size, names))
            }
            Operation::Lseek(l) => {
                let size = self.file_size(ino)?;
                if l.offset >= size {
                    return Err(Errno::ENXIO);
                }
                let to = match l.whence as i32 {
                    libc::SEEK_DATA => l.offset,
                    libc::SEEK_HOLE => size,
                    _ => return Err(Errno::EINVAL),
                };
                Self::bytes(reply::lseek(out, unique, to))
            }
            Operation::GetFmap { size } => self.get_fmap(ino, *size, unique, out),
            Operation::GetDaxdev { index } => {
                if *index != 0 {
                    return Err(Errno::EINVAL);
                }
                let dev = DaxdevOut::new(0, &self.device_name).map_err(|_| Errno::ENAMETOOLONG)?;
                Self::bytes(reply::daxdev(out, unique, &dev))
            }
            Operation::Create { .. } => Err(self.no_namespace_changes()),
            Operation::Getlk(_) | Operation::Setlk(_) | Operation::Setlkw(_) => Err(Errno::ENOSYS),
            // NOTIFY_REPLY (the kernel's answer to a retrieve) is never answered.
            Operation::Other { opcode, .. } if !opcode.expects_reply() => Ok(Reply::None),
            Operation::Other { opcode, .. } => Err(self.other(*opcode)),
        }
    }

    fn no_namespace_changes(&self) -> Errno {
        if self.role == Role::Master {
            Errno::EPERM
        } else {
            Errno::EROFS
        }
    }

    fn other(&self, op: Opcode) -> Errno {
        const NAMESPACE: [Opcode; 10] = [
            Opcode::SYMLINK,
            Opcode::MKNOD,
            Opcode::MKDIR,
            Opcode::UNLINK,
            Opcode::RMDIR,
            Opcode::RENAME,
            Opcode::LINK,
            Opcode::SETXATTR,
            Opcode::REMOVEXATTR,
            Opcode(45), // RENAME2
        ];
        if NAMESPACE.contains(&op) || op == Opcode(43) {
            // Files and directories are created with the famfs CLI, which logs them; FALLOCATE
            // (43) cannot grow a famfs file either.
            self.no_namespace_changes()
        } else {
            Errno::ENOSYS
        }
    }

    fn init(&self, init: &InitIn, unique: u64, out: &mut [u8]) -> Result<Reply, Errno> {
        let mut flags = abi::FUSE_ASYNC_READ
            | abi::FUSE_BIG_WRITES
            | abi::FUSE_MAX_PAGES
            | abi::FUSE_DO_READDIRPLUS
            | abi::FUSE_READDIRPLUS_AUTO
            | abi::FUSE_PARALLEL_DIROPS
            | abi::FUSE_DIRECT_IO_ALLOW_MMAP;
        let dax_ok = match self.cfg.dax {
            DaxPolicy::Always => true,
            // Only a device in famfs mode could be mapped by the kernel, and `open` refuses
            // those (no mmap): the kernel path would fail every I/O with EIO.
            DaxPolicy::Auto => false,
            DaxPolicy::Off => false,
        };
        if dax_ok && self.rawio {
            flags |= abi::FUSE_DAX_FMAP;
        }
        let cfg = InitConfig {
            flags,
            max_write: self.cfg.max_io,
            max_pages: (self.cfg.max_io / 4096).min(u32::from(u16::MAX)) as u16,
            ..Default::default()
        };
        let neg = reply::negotiate(init, &cfg).map_err(|_| Errno::EPROTO)?;
        self.famfs.store(neg.famfs(), Ordering::Relaxed);
        tracing::info!(
            "FUSE {}.{}: {}",
            init.major,
            neg.minor,
            if neg.famfs() {
                "famfs kernel path (GET_FMAP/GET_DAXDEV)"
            } else if init.flags64() & abi::FUSE_DAX_FMAP != 0 {
                "kernel offers famfs but it is not used (no CAP_SYS_RAWIO, --dax off, or a device \
                 the kernel cannot map: a stand-in file or a devdax-mode device); serving READ/WRITE"
            } else {
                "stock kernel; serving READ/WRITE from the device mapping"
            }
        );
        Self::bytes(neg.write_reply(out, unique))
    }

    fn lookup(
        &self,
        parent: Ino,
        name: &[u8],
        unique: u64,
        out: &mut [u8],
    ) -> Result<Reply, Errno> {
        for attempt in 0..2 {
            {
                let log = self.read_log();
                let ns = log.state().namespace();
                let pnode = ns.get(parent).ok_or(Errno::ENOENT)?;
                if !pnode.is_dir() {
                    return Err(Errno::ENOTDIR);
                }
                if let Some(ino) = ns.lookup(parent, OsStr::from_bytes(name)) {
                    let n = ns.get(ino).ok_or(Errno::ENOENT)?;
                    return Self::bytes(reply::entry(out, unique, &self.entry_of(ino, n)));
                }
            }
            // A miss may be a file the master has just logged: look at the log once.
            if attempt == 0 && !self.refresh() {
                break;
            }
        }
        Err(Errno::ENOENT)
    }

    fn setattr(
        &self,
        ino: Ino,
        s: &SetattrIn,
        unique: u64,
        out: &mut [u8],
    ) -> Result<Reply, Errno> {
        let log = self.read_log();
        let n = log.state().namespace().get(ino).ok_or(Errno::ENOENT)?;
        let size = n.as_file().map_or(0, |f| f.size);
        let changes_owner = s.valid & (abi::FATTR_MODE | abi::FATTR_UID | abi::FATTR_GID) != 0;
        let changes_size = s.valid & abi::FATTR_SIZE != 0 && (n.is_dir() || s.size != size);
        if changes_owner || changes_size {
            // Modes and owners live in the log, which only the CLI writes; sizes never change.
            return Err(self.no_namespace_changes());
        }
        // Time updates are accepted and not kept: famfs has no timestamps.
        Self::bytes(reply::attr(out, unique, &self.attr_out(ino, n)))
    }

    fn open_file(&self, ino: Ino, flags: u32, unique: u64, out: &mut [u8]) -> Result<Reply, Errno> {
        {
            let log = self.read_log();
            let n = log.state().namespace().get(ino).ok_or(Errno::ENOENT)?;
            if n.is_dir() {
                return Err(Errno::EISDIR);
            }
        }
        let writing = flags as i32 & libc::O_ACCMODE != libc::O_RDONLY;
        if writing && self.role != Role::Master {
            return Err(Errno::EROFS);
        }
        if writing && ino == META_SB_INO {
            return Err(Errno::EPERM);
        }
        let open_flags = if self.famfs_enabled() {
            0
        } else {
            // Every read goes to the shared memory: no page cache that could go stale when
            // another host writes. mmap still works (FUSE_DIRECT_IO_ALLOW_MMAP).
            abi::FOPEN_DIRECT_IO | abi::FOPEN_PARALLEL_DIRECT_WRITES
        };
        Self::bytes(reply::open(out, unique, ino, open_flags))
    }

    fn file_size(&self, ino: Ino) -> Result<u64, Errno> {
        let log = self.read_log();
        let n = log.state().namespace().get(ino).ok_or(Errno::ENOENT)?;
        Ok(n.as_file().ok_or(Errno::EISDIR)?.size)
    }

    fn read(
        &self,
        ino: Ino,
        off: u64,
        size: u32,
        unique: u64,
        _out: &mut [u8],
    ) -> Result<Reply, Errno> {
        let view = self.view(ino)?;
        let len = u64::from(size.min(self.cfg.max_io));
        let segments = view
            .segments(off, len)
            .map(|s| (s.map_offset, s.len))
            .collect();
        Ok(Reply::Read { unique, segments })
    }

    fn write(
        &self,
        ino: Ino,
        off: u64,
        data: &[u8],
        unique: u64,
        out: &mut [u8],
    ) -> Result<Reply, Errno> {
        if self.role != Role::Master {
            return Err(Errno::EROFS);
        }
        if ino == META_SB_INO {
            return Err(Errno::EPERM);
        }
        let view = self.view(ino)?;
        if !data.is_empty() && off >= view.size() {
            // famfs files are allocated once and never grow.
            return Err(Errno::EFBIG);
        }
        let n = view.write_at(off, data).map_err(|e| errno_of(&e))?;
        view.flush(off, n as u64).map_err(|e| errno_of(&e))?;
        if ino == META_LOG_INO && off < famfs_log::layout::LOG_HEADER_SIZE as u64 {
            // An append completes with the header counters: show the new entry right away.
            self.refresh();
        }
        Self::bytes(reply::write(out, unique, n as u32))
    }

    #[allow(clippy::too_many_arguments)]
    fn readdir(
        &self,
        ino: Ino,
        offset: u64,
        size: u32,
        plus: bool,
        unique: u64,
        out: &mut [u8],
    ) -> Result<Reply, Errno> {
        let log = self.read_log();
        let ns = log.state().namespace();
        let node = ns.get(ino).ok_or(Errno::ENOENT)?;
        let dir = node.as_dir().ok_or(Errno::ENOTDIR)?;
        let size = size.min(self.cfg.max_io);
        // Offsets: 1 is ".", 2 is "..", 2 + k is child k (in creation order, stable).
        let entries = [(ino, &b"."[..]), (node.parent, &b".."[..])]
            .into_iter()
            .chain(
                dir.children()
                    .iter()
                    .map(|&c| (c, ns.get(c).map_or(&b""[..], |n| n.name.as_bytes()))),
            )
            .enumerate()
            .skip(offset as usize);
        let typ = |n: &Node| if n.is_dir() { abi::DT_DIR } else { abi::DT_REG };
        if plus {
            let mut w = ReaddirPlusWriter::new(out, size);
            for (i, (child, name)) in entries {
                let Some(n) = ns.get(child) else { continue };
                // "." and ".." carry no lookup (nodeid 0), as the kernel expects.
                let mut e = self.entry_of(child, n);
                if i < 2 {
                    e.nodeid = 0;
                }
                if w.push(&e, i as u64 + 1, typ(n), name).is_err() {
                    break;
                }
            }
            Ok(Reply::Bytes(w.finish(unique)))
        } else {
            let mut w = ReaddirWriter::new(out, size);
            for (i, (child, name)) in entries {
                let Some(n) = ns.get(child) else { continue };
                if w.push(child, i as u64 + 1, typ(n), name).is_err() {
                    break;
                }
            }
            Ok(Reply::Bytes(w.finish(unique)))
        }
    }

    fn statfs(&self, unique: u64, out: &mut [u8]) -> Result<Reply, Errno> {
        let log = self.read_log();
        let bm = log.state().bitmap();
        let h = log.header();
        let free = bm.nbits() - bm.count_set();
        let st = Kstatfs {
            blocks: bm.nbits(),
            bfree: free,
            bavail: free,
            files: h.slots(),
            ffree: h.slots() - h.next_index,
            bsize: famfs_fsdev::ALLOC_UNIT as u32,
            namelen: famfs_log::layout::RELPATH_MAX as u32,
            frsize: famfs_fsdev::ALLOC_UNIT as u32,
            ..Default::default()
        };
        Self::bytes(reply::statfs(out, unique, &st))
    }

    fn xattr(&self, ino: Ino, name: &[u8]) -> Option<Vec<u8>> {
        if ino != ROOT_INO {
            return None;
        }
        match name {
            b"user.famfs.pid" => Some(std::process::id().to_string().into_bytes()),
            b"user.famfs.device" => Some(self.device_name.clone()),
            b"user.famfs.role" => Some(
                match self.role {
                    Role::Master => "master",
                    _ => "client",
                }
                .as_bytes()
                .to_vec(),
            ),
            _ => None,
        }
    }

    fn get_fmap(
        &self,
        ino: Ino,
        size: Option<u32>,
        unique: u64,
        out: &mut [u8],
    ) -> Result<Reply, Errno> {
        let mut wire = self
            .wire_fmap(ino)
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

    /// How many bytes a request buffer must hold.
    pub fn request_buffer_size(&self) -> usize {
        self.cfg.max_io as usize + 64 * 1024
    }

    /// How long the watcher sleeps between looks at the log.
    pub fn poll_interval(&self) -> Duration {
        self.cfg.poll
    }

    /// The device name GET_DAXDEV reports.
    pub fn device_name(&self) -> PathBuf {
        PathBuf::from(OsStr::from_bytes(&self.device_name))
    }
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
