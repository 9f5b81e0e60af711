//! A famfs kernel in user space: speaks the FUSE protocol to a famfs server (a
//! [`famfs_server::FileSystem`] behind its [`Adapter`]) over a `SOCK_SEQPACKET` socket pair
//! standing in for `/dev/fuse`, applies the kernel's rules to every reply, and resolves file
//! reads through GET_FMAP maps straight from the device mapping, as the famfs kernel (the
//! "famfs: port into fuse" series, V3–V10) does.
//!
//! What it plays:
//! * INIT offering the flags a 6.x kernel offers, plus `FUSE_DAX_FMAP` (with `FUSE_INIT_EXT`)
//!   when asked; famfs is on only if the reply accepts it ([`KernelEmu::famfs_enabled`]).
//! * LOOKUP / GETATTR / READDIR(PLUS) with lookup counting and FORGET, so an inode (and its
//!   cached fmap) lives until forgotten, as in the kernel.
//! * OPEN of a regular file on a famfs session: GET_FMAP (V1: the bare header; Dev: with the
//!   8-byte buffer size and the grow-and-retry-once rule), validated with
//!   [`FmapMessage::parse`]'s kernel rules — a refused map releases the handle and fails the open — then
//!   GET_DAXDEV for every device the map references not yet known (reply exactly 280 bytes, a
//!   NUL-terminated absolute path naming the device; a bad answer marks the slot unusable but never
//!   fails the open).
//! * Reads through the map ([`KernelEmu::read_fmap`]): i_size checked against the map's
//!   `file_size` (ENXIO), every piece resolved with [`Resolver`] and copied from the device
//!   mapping. No READ is ever sent for such a file.
//! * The stock path ([`KernelEmu::read_via_fuse`]): READ requests of at most `max_pages` pages.
//! * The device's mode ([`EmuOptions::device_mode`]): in famfs mode the server may not map the
//!   device and reads its meta files through its own mount, which [`EmuMount`] serves as the
//!   kernel does (GET_FMAP once per inode, then the bytes through the map); in devdax mode
//!   `fs_dax_get` refuses the device at GET_DAXDEV, every file's I/O fails with EIO, and the
//!   device is not asked for again.
//! * STATX ([`KernelEmu::stat_node`]): sent first, and never again once the server answers
//!   ENOSYS (GETATTR instead).
//!
//! Every reply is checked as the FUSE core does (header length, error range, error replies
//! without payload, exact sizes for fixed replies, at most the buffer for variable ones) and must
//! carry the unique of the request; anything else is a typed [`EmuError`], never a panic.
//!
//! ```no_run
//! use famfs_tests::kernel_emu::KernelEmu;
//! # let (dev, uuid) = (std::path::Path::new("/tmp/dax.img"), uuid::Uuid::nil());
//! let mut k = KernelEmu::start(dev, uuid, true).unwrap();
//! assert!(k.famfs_enabled());
//! let bytes = k.read_via_fmap("dir/file", 4096, 100).unwrap();
//! let same = k.read_via_fuse("dir/file", 4096, 100).unwrap();
//! assert_eq!(bytes, same);
//! ```

mod channel;
mod error;
mod meta;
#[cfg(test)]
mod selftest;

pub use error::EmuError;
pub use meta::EmuMount;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use famfs_fsdev::{Access, DaxDevice, Mapping};
use famfs_server::{Adapter, Config, FileSystem, ServerError};
use fuse_famfs_proto::abi::{
    self, AccessIn, Attr, DaxdevOut, EntryOut, FlushIn, ForgetIn, ForgetOne, GetattrIn, GetxattrIn,
    InHeader, InitIn, InitOut, InterruptIn, Kstatfs, Opcode, OpenIn, OutHeader, ReadIn, ReleaseIn,
    SetattrIn, WriteIn,
};
use fuse_famfs_proto::fmap::{FileOffset, FileType, FmapMessage, FmapReply, Resolved, Resolver};
use fuse_famfs_proto::reply::{DirentIter, DirentPlusIter, ReplyError, ReplyRef, famfs_enabled};
use fuse_famfs_proto::request::ForgetList;
use fuse_famfs_proto::{AbiGeneration, Errno, Fmap, Operation, Request};
use uuid::Uuid;
use zerocopy::IntoBytes;

use channel::{Channel, Received};

/// The flags a 6.x kernel offers in INIT (without `FUSE_DAX_FMAP`).
pub const KERNEL_OFFER: u64 = abi::FUSE_ASYNC_READ
    | abi::FUSE_POSIX_LOCKS
    | abi::FUSE_ATOMIC_O_TRUNC
    | abi::FUSE_EXPORT_SUPPORT
    | abi::FUSE_BIG_WRITES
    | abi::FUSE_DONT_MASK
    | abi::FUSE_SPLICE_WRITE
    | abi::FUSE_SPLICE_MOVE
    | abi::FUSE_SPLICE_READ
    | abi::FUSE_FLOCK_LOCKS
    | abi::FUSE_HAS_IOCTL_DIR
    | abi::FUSE_AUTO_INVAL_DATA
    | abi::FUSE_DO_READDIRPLUS
    | abi::FUSE_READDIRPLUS_AUTO
    | abi::FUSE_ASYNC_DIO
    | abi::FUSE_WRITEBACK_CACHE
    | abi::FUSE_NO_OPEN_SUPPORT
    | abi::FUSE_PARALLEL_DIROPS
    | abi::FUSE_HANDLE_KILLPRIV
    | abi::FUSE_POSIX_ACL
    | abi::FUSE_ABORT_ERROR
    | abi::FUSE_MAX_PAGES
    | abi::FUSE_CACHE_SYMLINKS
    | abi::FUSE_NO_OPENDIR_SUPPORT
    | abi::FUSE_EXPLICIT_INVAL_DATA
    | abi::FUSE_HANDLE_KILLPRIV_V2
    | abi::FUSE_SETXATTR_EXT
    | abi::FUSE_INIT_EXT
    | abi::FUSE_SECURITY_CTX
    | abi::FUSE_CREATE_SUPP_GROUP
    | abi::FUSE_HAS_EXPIRE_ONLY
    | abi::FUSE_DIRECT_IO_ALLOW_MMAP
    | abi::FUSE_NO_EXPORT_SUPPORT
    | abi::FUSE_HAS_RESEND
    | abi::FUSE_ALLOW_IDMAP;

/// The FUSE root node id.
pub const ROOT: u64 = abi::FUSE_ROOT_ID;

const PAGE: usize = 4096;
/// Largest GET_FMAP reply a dev-generation kernel accepts, plus the out header.
const MAX_REPLY: usize = (16 << 20) + OutHeader::SIZE;

/// How to start an emulated kernel and its server.
#[derive(Debug, Clone)]
pub struct EmuOptions {
    /// The server's configuration (device, system UUID, dax policy, threads...).
    pub config: Config,
    /// Offer `FUSE_DAX_FMAP` in INIT (a kernel with famfs whose mounter has CAP_SYS_RAWIO).
    pub offer_famfs: bool,
    /// The famfs ABI generation the kernel speaks: which GET_FMAP form it sends and which
    /// validation it applies.
    pub generation: AbiGeneration,
    /// Protocol minor the kernel offers.
    pub minor: u32,
    /// How long to wait for each reply.
    pub timeout: Duration,
    /// Run the server's log watcher (as the daemon does).
    pub watch: bool,
    /// The mode the stand-in device plays (`None`: accepted by GET_DAXDEV as if in famfs
    /// mode while the server also maps it, as only a stand-in allows: for protocol tests).
    pub device_mode: Option<DeviceMode>,
}

/// The mode an emulated dax device is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceMode {
    /// Bound to fsdev_dax: the kernel maps famfs files onto it, and it cannot be mmapped
    /// (ENODEV), so the server never maps it and reads its metadata through its own mount
    /// ([`EmuMount`]).
    Famfs,
    /// Bound to device_dax: `fs_dax_get` refuses it, so GET_DAXDEV marks it unusable and the
    /// I/O of every file on it fails with EIO (it is not asked again).
    Devdax,
}

impl EmuOptions {
    /// Defaults: the server's defaults for `device` with `system_uuid`, V1, minor 45, 2 worker
    /// threads, 10 s reply timeout, log watcher on.
    pub fn new(device: impl Into<PathBuf>, system_uuid: Uuid, offer_famfs: bool) -> Self {
        let mut config = Config::new(device);
        config.system_uuid = Some(system_uuid);
        config.threads = 2;
        // The emulator resolves maps on any device, stand-in files included.
        config.dax = famfs_server::DaxPolicy::Always;
        EmuOptions {
            config,
            offer_famfs,
            generation: AbiGeneration::V1,
            minor: abi::FUSE_KERNEL_MINOR_VERSION,
            timeout: Duration::from_secs(10),
            watch: true,
            device_mode: None,
        }
    }
}

/// A reply as received, already checked against the FUSE core's header rules and matched to its
/// request.
#[derive(Debug, Clone)]
pub struct Reply {
    opcode: Opcode,
    bytes: Vec<u8>,
}

impl Reply {
    /// The opcode of the request it answers.
    pub fn opcode(&self) -> Opcode {
        self.opcode
    }

    /// The raw bytes (header included).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The parsed reply.
    pub fn parsed(&self) -> ReplyRef<'_> {
        // Checked when received; an unparsable reply never becomes a `Reply`.
        ReplyRef::parse(&self.bytes).unwrap_or(ReplyRef {
            header: OutHeader::default(),
            payload: &[],
        })
    }

    /// The server's errno, for an error reply.
    pub fn errno(&self) -> Option<Errno> {
        let e = self.parsed().header.error;
        (e != 0).then(|| Errno::new_clamped(-e))
    }

    /// Applies a [`ReplyRef`] accessor, mapping its failures to [`EmuError`].
    pub fn get<'a, T>(
        &'a self,
        f: impl FnOnce(&ReplyRef<'a>) -> Result<T, ReplyError>,
    ) -> Result<T, EmuError> {
        let r = ReplyRef::parse(&self.bytes).map_err(|source| EmuError::BadReply {
            opcode: self.opcode,
            source,
        })?;
        f(&r).map_err(|source| match source {
            ReplyError::Errno(errno) => EmuError::Errno {
                opcode: self.opcode,
                errno,
            },
            source => EmuError::BadReply {
                opcode: self.opcode,
                source,
            },
        })
    }
}

/// A file handle from OPEN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFile {
    /// The node.
    pub nodeid: u64,
    /// The server's handle.
    pub fh: u64,
    /// `FOPEN_*` flags from the reply.
    pub open_flags: u32,
    /// The open(2) flags used.
    pub flags: u32,
}

/// One directory entry from READDIR or READDIRPLUS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name.
    pub name: Vec<u8>,
    /// Inode number.
    pub ino: u64,
    /// Continuation cookie.
    pub off: u64,
    /// `DT_*` type.
    pub typ: u32,
    /// READDIRPLUS: the lookup part.
    pub entry: Option<EntryOut>,
}

impl DirEntry {
    /// The name as a string (lossy), for messages and comparisons.
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// A file map the kernel accepted and cached on an inode.
#[derive(Debug, Clone)]
pub struct KernelFmap {
    /// The file type the reply's header carried.
    pub file_type: FileType,
    /// The map as parsed.
    pub fmap: Fmap,
    resolver: Resolver,
}

#[derive(Debug, Default)]
struct Inode {
    nlookup: u64,
    attr: Attr,
    fmap: Option<Arc<KernelFmap>>,
    bad: bool,
}

#[derive(Debug, Clone)]
enum DaxSlot {
    Valid(Arc<Mapping>),
    Bad(String),
}

/// An emulated famfs kernel driving a server over a socket pair. See the module docs.
pub struct KernelEmu {
    chan: Channel,
    max_message: usize,
    server: Option<Arc<Adapter>>,
    session: Option<JoinHandle<Result<(), ServerError>>>,
    watcher: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    device_id: (u64, u64),
    timeout: Duration,
    generation: AbiGeneration,
    next_unique: u64,
    creds: (u32, u32, u32),
    init_in: InitIn,
    init_out: InitOut,
    famfs: bool,
    inodes: HashMap<u64, Inode>,
    daxdevs: BTreeMap<u32, DaxSlot>,
    sent: BTreeMap<u32, u64>,
    device_mode: Option<DeviceMode>,
    mount: Option<Arc<EmuMount>>,
    no_statx: bool,
}

impl std::fmt::Debug for KernelEmu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelEmu")
            .field("famfs", &self.famfs)
            .field("generation", &self.generation)
            .field("inodes", &self.inodes.len())
            .field("daxdevs", &self.daxdevs.len())
            .finish_non_exhaustive()
    }
}

fn is_reg(mode: u32) -> bool {
    mode & libc::S_IFMT == libc::S_IFREG
}

fn is_dir(mode: u32) -> bool {
    mode & libc::S_IFMT == libc::S_IFDIR
}

impl KernelEmu {
    /// Opens the server on `device` as host `system_uuid`, starts its session on a socket pair,
    /// and sends INIT (offering famfs when `offer_famfs`).
    pub fn start(
        device: impl AsRef<Path>,
        system_uuid: Uuid,
        offer_famfs: bool,
    ) -> Result<KernelEmu, EmuError> {
        Self::start_with(EmuOptions::new(device.as_ref(), system_uuid, offer_famfs))
    }

    /// As [`KernelEmu::start`], with every option. The server runs as the daemon does: INIT
    /// is answered on its end of the pair before its workers start (on clones of that end).
    pub fn start_with(mut opts: EmuOptions) -> Result<KernelEmu, EmuError> {
        let device = opts.config.device.clone();
        let famfs_mode = opts.device_mode == Some(DeviceMode::Famfs);
        if famfs_mode {
            opts.config.meta = famfs_server::MetaAccess::FamfsMode;
        }
        let fs = FileSystem::open(opts.config.clone())?;
        if famfs_mode && fs.is_mapped() {
            return Err(EmuError::Protocol {
                opcode: Opcode::INIT,
                why: "the server mapped a device in famfs mode (mmap fails with ENODEV)".into(),
            });
        }
        // What the kernel's DAX reaches the device through (the own mount's meta files).
        let dax = if famfs_mode {
            let map = DaxDevice::open(&device, Access::ReadWrite)
                .and_then(|d| d.map_all())
                .map_err(ServerError::from)?;
            Some(Arc::new(map))
        } else {
            None
        };
        let (kernel_end, server_end) = famfs_server::mount::socket_channel()?;
        let server_max = channel::raise_buffers(&server_end);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (boot_tx, boot_rx) = std::sync::mpsc::channel();
        let f = Arc::clone(&fs);
        let session = std::thread::Builder::new()
            .name("emu-server".into())
            .spawn(move || {
                let clone = |fd: &OwnedFd| fd.try_clone().map_err(ServerError::Channel);
                famfs_server::session::run(&f, server_end, clone, |a| {
                    let _ = ready_tx.send(Arc::clone(a));
                    if let Some(dax) = dax {
                        // As the daemon does: the bootstrap reads through the mount once the
                        // workers run.
                        let mount = Arc::new(EmuMount::new(Arc::clone(a), dax));
                        let fs = Arc::clone(&f);
                        std::thread::spawn(move || {
                            let r = fs.bootstrap(Arc::clone(&mount) as _);
                            let _ = boot_tx.send((mount, r));
                        });
                    }
                })
            })?;
        let watcher = if opts.watch {
            let stop = Arc::new(AtomicBool::new(false));
            let h = famfs_server::watch::spawn(Arc::clone(&fs), Arc::clone(&stop))?;
            Some((stop, h))
        } else {
            None
        };
        let mut k = Self::new(kernel_end, &device, &opts)?;
        k.max_message = k.max_message.min(server_max);
        k.session = Some(session);
        k.watcher = watcher;
        k.init()?;
        let Ok(adapter) = ready_rx.recv_timeout(opts.timeout) else {
            // The session may have ended with a reason (a device it cannot serve this way).
            if let Some(h) = k.session.take_if(|h| h.is_finished())
                && let Ok(Err(e)) = h.join()
            {
                return Err(e.into());
            }
            return Err(EmuError::Protocol {
                opcode: Opcode::INIT,
                why: "INIT was answered but the server did not start serving".into(),
            });
        };
        k.server = Some(adapter);
        if famfs_mode {
            let (mount, r) =
                boot_rx
                    .recv_timeout(opts.timeout)
                    .map_err(|_| EmuError::Protocol {
                        opcode: Opcode::GET_FMAP,
                        why: "the server did not read its metadata through the mount".into(),
                    })?;
            r?;
            k.mount = Some(mount);
        }
        Ok(k)
    }

    /// The daemon's own mount, when the device plays famfs mode: what its own reads of the
    /// meta files cost.
    pub fn own_mount(&self) -> Option<&Arc<EmuMount>> {
        self.mount.as_ref()
    }

    /// An emulated kernel on an existing channel (the kernel's end of a `SOCK_SEQPACKET` pair)
    /// whose other end some other server answers; `device` is the dax device (or stand-in) that
    /// GET_DAXDEV replies must name. Sends INIT as [`KernelEmu::start_with`] does; the
    /// `config` of `opts` is not used.
    pub fn connect(
        kernel_end: OwnedFd,
        device: impl AsRef<Path>,
        opts: &EmuOptions,
    ) -> Result<KernelEmu, EmuError> {
        let mut k = Self::new(kernel_end, device.as_ref(), opts)?;
        k.init()?;
        Ok(k)
    }

    fn new(kernel_end: OwnedFd, device: &Path, opts: &EmuOptions) -> Result<KernelEmu, EmuError> {
        let meta = std::fs::metadata(device)?;
        let max_message = channel::raise_buffers(&kernel_end);
        let mut flags = KERNEL_OFFER;
        if opts.offer_famfs {
            flags |= abi::FUSE_DAX_FMAP;
        }
        let mut k = KernelEmu {
            chan: Channel::new(kernel_end, MAX_REPLY),
            max_message,
            server: None,
            session: None,
            watcher: None,
            device_id: (meta.dev(), meta.ino()),
            timeout: opts.timeout,
            generation: opts.generation,
            next_unique: 0,
            creds: (0, 0, std::process::id()),
            init_in: InitIn::offer(opts.minor, 128 * 1024, flags),
            init_out: InitOut::default(),
            famfs: false,
            inodes: HashMap::new(),
            daxdevs: BTreeMap::new(),
            sent: BTreeMap::new(),
            device_mode: opts.device_mode,
            mount: None,
            no_statx: false,
        };
        k.inodes.insert(
            ROOT,
            Inode {
                nlookup: 1,
                attr: Attr {
                    ino: ROOT,
                    mode: libc::S_IFDIR | 0o755,
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        Ok(k)
    }

    fn init(&mut self) -> Result<(), EmuError> {
        let offered = self.init_in;
        let r = self.call(0, Operation::Init(offered))?;
        let out = r.get(|r| r.init())?;
        let bad = |why: String| EmuError::Protocol {
            opcode: Opcode::INIT,
            why,
        };
        if out.major != abi::FUSE_KERNEL_VERSION {
            return Err(bad(format!("major {} (kernel speaks 7)", out.major)));
        }
        if out.minor > offered.minor {
            return Err(bad(format!(
                "minor {} above the offered {}",
                out.minor, offered.minor
            )));
        }
        let extra = out.flags64() & !offered.flags64();
        if extra != 0 {
            return Err(bad(format!(
                "accepts flags the kernel did not offer: {extra:#x}"
            )));
        }
        self.init_out = out;
        self.famfs = famfs_enabled(&offered, &out);
        Ok(())
    }

    /// The server being driven, as INIT left it (`None` for [`KernelEmu::connect`]).
    pub fn server(&self) -> Option<&Arc<Adapter>> {
        self.server.as_ref()
    }

    /// The INIT the emulator sent.
    pub fn init_offer(&self) -> &InitIn {
        &self.init_in
    }

    /// The server's INIT reply.
    pub fn init_reply(&self) -> &InitOut {
        &self.init_out
    }

    /// Whether famfs is on for the session (offered, and accepted with flags2 bit 11).
    pub fn famfs_enabled(&self) -> bool {
        self.famfs
    }

    /// The ABI generation the emulator speaks.
    pub fn generation(&self) -> AbiGeneration {
        self.generation
    }

    /// Changes the ABI generation for later GET_FMAPs (cached maps stay).
    pub fn set_generation(&mut self, g: AbiGeneration) {
        self.generation = g;
    }

    /// Sets the uid, gid and pid of later requests.
    pub fn set_creds(&mut self, uid: u32, gid: u32, pid: u32) {
        self.creds = (uid, gid, pid);
    }

    /// Largest READ the kernel sends: `max_pages` pages (32 without `FUSE_MAX_PAGES`), capped by
    /// what the socket pair can carry in one message.
    pub fn max_read(&self) -> usize {
        let pages = if self.init_out.flags64() & abi::FUSE_MAX_PAGES != 0 {
            usize::from(self.init_out.max_pages.max(1))
        } else {
            32
        };
        (pages * PAGE).min(self.max_message - OutHeader::SIZE)
    }

    /// Largest WRITE the kernel sends: `max_write` (at least 4096), capped like [`Self::max_read`].
    pub fn max_write(&self) -> usize {
        (self.init_out.max_write.max(4096) as usize)
            .min(self.max_read())
            .min(self.max_message - InHeader::SIZE - WriteIn::SIZE)
    }

    /// How many requests of `opcode` the emulator has sent.
    pub fn sent(&self, opcode: Opcode) -> u64 {
        self.sent.get(&opcode.0).copied().unwrap_or(0)
    }

    /// The next request id (even, step 2, as the kernel allocates them).
    pub fn next_unique(&mut self) -> u64 {
        self.next_unique += 2;
        self.next_unique
    }

    fn encode(&mut self, nodeid: u64, op: Operation<'_>) -> Result<(u64, Vec<u8>), EmuError> {
        let unique = self.next_unique();
        let opcode = op.opcode();
        let mut req = Request::new(unique, nodeid, op);
        (req.header.uid, req.header.gid, req.header.pid) = self.creds;
        let bytes = req
            .to_bytes()
            .map_err(|source| EmuError::Encode { opcode, source })?;
        Ok((unique, bytes))
    }

    /// Sends one request without waiting; returns its unique id.
    pub fn send(&mut self, nodeid: u64, op: Operation<'_>) -> Result<u64, EmuError> {
        let (unique, bytes) = self.encode(nodeid, op)?;
        self.send_raw(&bytes)?;
        Ok(unique)
    }

    /// Sends raw request bytes (possibly malformed) without waiting.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), EmuError> {
        if bytes.len() >= 8 {
            let op = u32::from_ne_bytes(bytes[4..8].try_into().unwrap_or_default());
            *self.sent.entry(op).or_default() += 1;
        }
        self.chan.send(bytes)?;
        Ok(())
    }

    /// Receives the next reply, whatever it answers, checked against the FUSE core's header
    /// rules; `Ok(None)` if nothing came within `timeout`.
    pub fn recv_any(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, EmuError> {
        match self.chan.recv(timeout)? {
            Received::Nothing => Ok(None),
            Received::Closed => Err(EmuError::Closed {
                opcode: Opcode(0),
                unique: 0,
            }),
            Received::Truncated(len) => Err(EmuError::Oversized {
                len,
                max: self.chan.capacity(),
            }),
            Received::Message(n) => Ok(Some(self.chan.message(n).to_vec())),
        }
    }

    /// Waits for the reply to request `unique` (of `opcode`); any other reply is an error.
    pub fn wait_reply(&mut self, opcode: Opcode, unique: u64) -> Result<Reply, EmuError> {
        let n = match self.chan.recv(self.timeout)? {
            Received::Nothing => {
                return Err(EmuError::Timeout {
                    opcode,
                    unique,
                    timeout: self.timeout,
                });
            }
            Received::Closed => return Err(EmuError::Closed { opcode, unique }),
            Received::Truncated(len) => {
                return Err(EmuError::Oversized {
                    len,
                    max: self.chan.capacity(),
                });
            }
            Received::Message(n) => n,
        };
        let bytes = self.chan.message(n);
        let r = ReplyRef::parse(bytes).map_err(|source| EmuError::BadReply { opcode, source })?;
        if r.header.unique != unique {
            return Err(EmuError::UnexpectedReply {
                opcode,
                expected: unique,
                got: r.header.unique,
            });
        }
        Ok(Reply {
            opcode,
            bytes: bytes.to_vec(),
        })
    }

    /// Checks that no message arrives within `wait` (after a request that must not be
    /// answered).
    pub fn expect_silence(&mut self, wait: Duration) -> Result<(), EmuError> {
        match self.chan.recv(wait)? {
            Received::Nothing => Ok(()),
            Received::Closed => Err(EmuError::Closed {
                opcode: Opcode(0),
                unique: 0,
            }),
            Received::Truncated(len) | Received::Message(len) => {
                let got = if len >= OutHeader::SIZE && len <= self.chan.capacity() {
                    u64::from_ne_bytes(self.chan.message(len)[8..16].try_into().unwrap_or_default())
                } else {
                    0
                };
                Err(EmuError::UnexpectedReply {
                    opcode: Opcode(0),
                    expected: 0,
                    got,
                })
            }
        }
    }

    /// Sends a request and waits for its reply.
    pub fn call(&mut self, nodeid: u64, op: Operation<'_>) -> Result<Reply, EmuError> {
        let opcode = op.opcode();
        let unique = self.send(nodeid, op)?;
        self.wait_reply(opcode, unique)
    }

    /// Sends raw request bytes and waits for the reply carrying their unique id.
    pub fn call_raw(&mut self, bytes: &[u8]) -> Result<Reply, EmuError> {
        let opcode = Opcode(
            bytes
                .get(4..8)
                .map_or(0, |b| u32::from_ne_bytes(b.try_into().unwrap_or_default())),
        );
        let unique = bytes
            .get(8..16)
            .map_or(0, |b| u64::from_ne_bytes(b.try_into().unwrap_or_default()));
        self.send_raw(bytes)?;
        self.wait_reply(opcode, unique)
    }

    fn note_entry(&mut self, e: &EntryOut) {
        let ino = self.inodes.entry(e.nodeid).or_default();
        ino.nlookup += 1;
        ino.attr = e.attr;
    }

    /// LOOKUP `name` in directory `parent`. A successful lookup counts one reference on the
    /// node, released by [`KernelEmu::forget`].
    pub fn lookup(&mut self, parent: u64, name: &[u8]) -> Result<EntryOut, EmuError> {
        let e = self
            .call(parent, Operation::Lookup { name })?
            .get(|r| r.entry())?;
        if e.nodeid == 0 {
            // A negative entry: the kernel caches it and reports ENOENT.
            return Err(EmuError::Errno {
                opcode: Opcode::LOOKUP,
                errno: Errno::ENOENT,
            });
        }
        if e.nodeid == ROOT {
            return Err(EmuError::Protocol {
                opcode: Opcode::LOOKUP,
                why: format!("{:?} resolves to the root node", OsStr::from_bytes(name)),
            });
        }
        self.note_entry(&e);
        Ok(e)
    }

    /// Looks up every component of `path` (relative to the root, or absolute within the file
    /// system) and returns the last entry. The root itself is returned with nodeid 1.
    pub fn lookup_path(&mut self, path: impl AsRef<Path>) -> Result<EntryOut, EmuError> {
        let path = path.as_ref();
        let mut cur = EntryOut {
            nodeid: ROOT,
            attr: self.inodes.get(&ROOT).map(|i| i.attr).unwrap_or_default(),
            ..Default::default()
        };
        for c in path.components() {
            let name = match c {
                Component::RootDir | Component::CurDir => continue,
                Component::Normal(n) => n.as_bytes(),
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(EmuError::Lookup {
                        path: path.to_path_buf(),
                        errno: Errno::EINVAL,
                    });
                }
            };
            cur = self.lookup(cur.nodeid, name).map_err(|e| match e.errno() {
                Some(errno) if matches!(e, EmuError::Errno { .. }) => EmuError::Lookup {
                    path: path.to_path_buf(),
                    errno,
                },
                _ => e,
            })?;
        }
        Ok(cur)
    }

    /// What stat(2) sends: STATX first (opcode 52, with a `fuse_statx_in`); a server that answers
    /// ENOSYS is not asked again, and GETATTR is used instead. Returns the attributes.
    pub fn stat_node(&mut self, nodeid: u64) -> Result<Attr, EmuError> {
        if !self.no_statx {
            // fuse_statx_in: getattr_flags, reserved, fh, sx_flags, sx_mask.
            let mut arg = [0u8; 24];
            arg[20..24].copy_from_slice(&0x7ffu32.to_ne_bytes());
            let r = self.call(
                nodeid,
                Operation::Other {
                    opcode: Opcode::STATX,
                    payload: &arg,
                },
            )?;
            match r.errno() {
                Some(e) if e == Errno::ENOSYS => self.no_statx = true,
                Some(errno) => {
                    return Err(EmuError::Errno {
                        opcode: Opcode::STATX,
                        errno,
                    });
                }
                None => {
                    return Err(EmuError::Protocol {
                        opcode: Opcode::STATX,
                        why: "answered without the emulator knowing fuse_statx_out".into(),
                    });
                }
            }
        }
        self.getattr(nodeid)
    }

    /// GETATTR; updates the cached attributes (i_size).
    pub fn getattr(&mut self, nodeid: u64) -> Result<Attr, EmuError> {
        let a = self
            .call(nodeid, Operation::Getattr(GetattrIn::default()))?
            .get(|r| r.attr())?;
        if a.attr.ino != nodeid && nodeid != ROOT {
            return Err(EmuError::Protocol {
                opcode: Opcode::GETATTR,
                why: format!("attributes of {} for node {nodeid}", a.attr.ino),
            });
        }
        self.inodes.entry(nodeid).or_default().attr = a.attr;
        Ok(a.attr)
    }

    /// SETATTR; updates the cached attributes on success.
    pub fn setattr(&mut self, nodeid: u64, s: SetattrIn) -> Result<Attr, EmuError> {
        let a = self
            .call(nodeid, Operation::Setattr(s))?
            .get(|r| r.attr())?;
        self.inodes.entry(nodeid).or_default().attr = a.attr;
        Ok(a.attr)
    }

    /// The attributes the emulator holds for `nodeid` (from the last LOOKUP/GETATTR).
    pub fn cached_attr(&self, nodeid: u64) -> Option<Attr> {
        self.inodes.get(&nodeid).map(|i| i.attr)
    }

    /// The fmap cached on `nodeid`, if an open fetched one.
    pub fn cached_fmap(&self, nodeid: u64) -> Option<Arc<KernelFmap>> {
        self.inodes.get(&nodeid).and_then(|i| i.fmap.clone())
    }

    /// OPEN, as `fuse_open` does: on a famfs session, a regular file without a cached map gets
    /// GET_FMAP (validated; a refusal releases the handle and fails the open) and GET_DAXDEV for
    /// new devices (failures mark the device unusable, never fail the open).
    pub fn open(&mut self, nodeid: u64, flags: i32) -> Result<OpenFile, EmuError> {
        if !self.inodes.contains_key(&nodeid) {
            self.getattr(nodeid)?;
        }
        let o = self
            .call(
                nodeid,
                Operation::Open(OpenIn {
                    flags: flags as u32,
                    open_flags: 0,
                }),
            )?
            .get(|r| r.open())?;
        let file = OpenFile {
            nodeid,
            fh: o.fh,
            open_flags: o.open_flags,
            flags: flags as u32,
        };
        let (reg, cached) = self
            .inodes
            .get(&nodeid)
            .map_or((false, false), |i| (is_reg(i.attr.mode), i.fmap.is_some()));
        if self.famfs && reg && !cached {
            let FmapMessage { file_type, fmap } =
                match self.fetch_fmap(nodeid, self.generation, None) {
                    Ok(m) => m,
                    Err(e) => {
                        // fuse_open: the handle is released before the error is returned.
                        let _ = self.release(&file);
                        return Err(e);
                    }
                };
            self.fetch_daxdevs(&fmap);
            let ino = self.inodes.entry(nodeid).or_default();
            ino.attr.size = fmap.file_size;
            ino.bad = false;
            ino.fmap = Some(Arc::new(KernelFmap {
                file_type,
                resolver: fmap.resolver(),
                fmap,
            }));
        }
        Ok(file)
    }

    /// LOOKUP of every component of `path`, then [`KernelEmu::open`].
    pub fn open_path(&mut self, path: impl AsRef<Path>, flags: i32) -> Result<OpenFile, EmuError> {
        let e = self.lookup_path(path)?;
        self.open(e.nodeid, flags)
    }

    /// GET_FMAP for `nodeid` as a kernel of `generation` sends it (V1: no argument, 4096-byte
    /// buffer; Dev: an 8-byte size of `dev_buffer` (default 4096), retrying once with the size
    /// the header asks for), validated with that generation's rules. Does not cache.
    pub fn fetch_fmap(
        &mut self,
        nodeid: u64,
        generation: AbiGeneration,
        dev_buffer: Option<u32>,
    ) -> Result<FmapMessage, EmuError> {
        let fmap_err = |source| EmuError::Fmap { nodeid, source };
        if !generation.get_fmap_has_size_input() {
            let buffer = generation.initial_fmap_buffer();
            let r = self.call(nodeid, Operation::GetFmap { size: None })?;
            return match r.get(|r| r.fmap(generation, buffer, false))? {
                FmapReply::Fmap(f) => Ok(f),
                FmapReply::Retry { buffer } => Err(EmuError::Protocol {
                    opcode: Opcode::GET_FMAP,
                    why: format!("V1 reply asks for a {buffer}-byte buffer"),
                }),
            };
        }
        let mut buffer = dev_buffer.unwrap_or(generation.initial_fmap_buffer() as u32);
        let mut retried = false;
        loop {
            let r = self.call(nodeid, Operation::GetFmap { size: Some(buffer) })?;
            let parsed = r.get(|r| match r.result() {
                Ok(p) => Ok(fuse_famfs_proto::fmap::parse_reply(
                    p,
                    generation,
                    buffer as usize,
                    retried,
                )),
                Err(e) => Err(e),
            })?;
            match parsed.map_err(fmap_err)? {
                FmapReply::Fmap(f) => return Ok(f),
                FmapReply::Retry { buffer: b } => {
                    buffer = u32::try_from(b).map_err(|_| EmuError::Protocol {
                        opcode: Opcode::GET_FMAP,
                        why: format!("retry buffer {b}"),
                    })?;
                    retried = true;
                }
            }
        }
    }

    /// GET_DAXDEV for device `index`: the reply must be exactly 280 bytes.
    pub fn get_daxdev(&mut self, index: u32) -> Result<DaxdevOut, EmuError> {
        self.call(
            0,
            Operation::GetDaxdev {
                index: u64::from(index),
            },
        )?
        .get(|r| r.daxdev())
    }

    /// What `famfs_verify_daxdev` and `fs_dax_get` check, for a stand-in: a NUL-terminated
    /// absolute path naming the device the server was started on; then it is mapped.
    fn verify_daxdev(&self, index: u32, out: &DaxdevOut) -> Result<Arc<Mapping>, EmuError> {
        let bad = |why: String| EmuError::Daxdev { index, why };
        if !out.name_is_terminated() {
            return Err(bad("name is not NUL-terminated".into()));
        }
        let name = Path::new(OsStr::from_bytes(out.name_bytes()));
        if !name.is_absolute() {
            return Err(bad(format!("{} is not an absolute path", name.display())));
        }
        let meta = std::fs::metadata(name).map_err(|e| bad(format!("{}: {e}", name.display())))?;
        if !meta.file_type().is_char_device() && (meta.dev(), meta.ino()) != self.device_id {
            return Err(bad(format!(
                "{} is neither a dax device nor the stand-in the server serves",
                name.display()
            )));
        }
        let dev = DaxDevice::open(name, Access::ReadOnly).map_err(|e| bad(e.to_string()))?;
        // fs_dax_get: only a device bound to fsdev_dax (famfs mode) will do.
        let famfs_mode = match dev.kind() {
            famfs_fsdev::DeviceKind::DaxChar { mode, .. } => *mode == famfs_fsdev::DaxMode::Famfs,
            _ => self.device_mode != Some(DeviceMode::Devdax),
        };
        if !famfs_mode {
            return Err(bad(format!(
                "fs_dax_get failed: {} is not in famfs mode (fsdev_dax)",
                name.display()
            )));
        }
        let map = dev.map_all().map_err(|e| bad(e.to_string()))?;
        Ok(Arc::new(map))
    }

    fn fetch_daxdevs(&mut self, fmap: &Fmap) {
        for index in fmap.referenced_devices() {
            if self.daxdevs.contains_key(&index) {
                continue;
            }
            let slot = match self
                .get_daxdev(index)
                .and_then(|out| self.verify_daxdev(index, &out))
            {
                Ok(m) => DaxSlot::Valid(m),
                Err(e) => DaxSlot::Bad(e.to_string()),
            };
            self.daxdevs.insert(index, slot);
        }
    }

    /// Whether dax device `index` is known and usable (`Some(Err(why))` if it was refused).
    pub fn daxdev_state(&self, index: u32) -> Option<Result<(), String>> {
        self.daxdevs.get(&index).map(|s| match s {
            DaxSlot::Valid(_) => Ok(()),
            DaxSlot::Bad(why) => Err(why.clone()),
        })
    }

    /// FLUSH then RELEASE, as close(2) of the last descriptor does.
    pub fn close(&mut self, file: &OpenFile) -> Result<(), EmuError> {
        let f = self
            .call(
                file.nodeid,
                Operation::Flush(FlushIn {
                    fh: file.fh,
                    ..Default::default()
                }),
            )?
            .get(|r| r.empty());
        let r = self.release(file);
        f.and(r)
    }

    /// RELEASE.
    pub fn release(&mut self, file: &OpenFile) -> Result<(), EmuError> {
        self.call(
            file.nodeid,
            Operation::Release(ReleaseIn {
                fh: file.fh,
                flags: file.flags,
                ..Default::default()
            }),
        )?
        .get(|r| r.empty())
    }

    /// Where file offset `off` of an open famfs file lives (the iomap of a fault), after the
    /// kernel's checks: a cached map, a usable file, i_size equal to the map's size, `off` below
    /// it.
    pub fn resolve(&mut self, nodeid: u64, off: u64) -> Result<Resolved, EmuError> {
        let (kf, _) = self.famfs_file(nodeid)?;
        kf.resolver
            .resolve(FileOffset(off))
            .ok_or(EmuError::Unresolved {
                nodeid,
                offset: off,
            })
    }

    fn famfs_file(&mut self, nodeid: u64) -> Result<(Arc<KernelFmap>, u64), EmuError> {
        let ino = self.inodes.get_mut(&nodeid).ok_or(EmuError::NotFamfsFile {
            nodeid,
            why: "unknown node",
        })?;
        let kf = ino.fmap.clone().ok_or(EmuError::NotFamfsFile {
            nodeid,
            why: "no file map (famfs is off or the file was not opened)",
        })?;
        if ino.bad {
            return Err(EmuError::Protocol {
                opcode: Opcode::GET_FMAP,
                why: format!("node {nodeid} was marked bad"),
            });
        }
        if ino.attr.size != kf.fmap.file_size {
            ino.bad = true;
            return Err(EmuError::SizeMismatch {
                nodeid,
                i_size: ino.attr.size,
                fmap_size: kf.fmap.file_size,
            });
        }
        Ok((kf, ino.attr.size))
    }

    /// Reads `len` bytes at `off` of an open famfs file through its map, straight from the
    /// device (the kernel's `dax_iomap_rw`): clipped at i_size, no request sent.
    pub fn read_fmap(
        &mut self,
        file: &OpenFile,
        off: u64,
        len: usize,
    ) -> Result<Vec<u8>, EmuError> {
        let nodeid = file.nodeid;
        let (kf, size) = self.famfs_file(nodeid)?;
        let end = off.saturating_add(len as u64).min(size);
        let mut out = vec![0u8; end.saturating_sub(off) as usize];
        let mut pos = off;
        while pos < end {
            let r = kf
                .resolver
                .resolve(FileOffset(pos))
                .ok_or(EmuError::Unresolved {
                    nodeid,
                    offset: pos,
                })?;
            let n = r.contiguous_len.min(end - pos);
            let map = match self.daxdevs.get(&r.dev_index) {
                Some(DaxSlot::Valid(m)) => Arc::clone(m),
                Some(DaxSlot::Bad(why)) => {
                    return Err(EmuError::Daxdev {
                        index: r.dev_index,
                        why: why.clone(),
                    });
                }
                None => {
                    return Err(EmuError::Daxdev {
                        index: r.dev_index,
                        why: "never registered".into(),
                    });
                }
            };
            let outside = EmuError::OutsideDevice {
                nodeid,
                offset: pos,
                dev_offset: r.dev_offset.0,
                len: n,
            };
            let local = r
                .dev_offset
                .0
                .checked_sub(map.device_offset())
                .filter(|l| l.saturating_add(n) <= map.len() as u64);
            let Some(local) = local else {
                return Err(outside);
            };
            let at = (pos - off) as usize;
            map.read(local, &mut out[at..at + n as usize])
                .map_err(|_| outside)?;
            pos += n;
        }
        Ok(out)
    }

    /// Looks up `path`, opens it read-only, runs `f` on it, and closes it (also when `f` fails;
    /// `f`'s error comes first).
    fn with_open<T>(
        &mut self,
        path: impl AsRef<Path>,
        f: impl FnOnce(&mut Self, &OpenFile) -> Result<T, EmuError>,
    ) -> Result<T, EmuError> {
        let e = self.lookup_path(path)?;
        let file = self.open(e.nodeid, libc::O_RDONLY)?;
        let r = f(self, &file);
        let c = self.close(&file);
        let v = r?;
        c?;
        Ok(v)
    }

    /// Looks up `path`, opens it read-only (fetching its map), reads through the map, and closes
    /// it: what `pread(2)` on a famfs kernel does.
    pub fn read_via_fmap(
        &mut self,
        path: impl AsRef<Path>,
        off: u64,
        len: usize,
    ) -> Result<Vec<u8>, EmuError> {
        self.with_open(path, |k, f| k.read_fmap(f, off, len))
    }

    /// One READ of at most `size` bytes; the reply may not exceed `size`.
    pub fn read(&mut self, file: &OpenFile, off: u64, size: u32) -> Result<Vec<u8>, EmuError> {
        let r = self.call(
            file.nodeid,
            Operation::Read(ReadIn {
                fh: file.fh,
                offset: off,
                size,
                flags: file.flags,
                ..Default::default()
            }),
        )?;
        r.get(|r| r.data(size as usize)).map(<[u8]>::to_vec)
    }

    /// Reads `len` bytes at `off` with READ requests of at most [`KernelEmu::max_read`] bytes,
    /// stopping at a short reply (end of file).
    pub fn read_file(
        &mut self,
        file: &OpenFile,
        off: u64,
        len: usize,
    ) -> Result<Vec<u8>, EmuError> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let want = (len - out.len()).min(self.max_read());
            let got = self.read(file, off + out.len() as u64, want as u32)?;
            let short = got.len() < want;
            out.extend_from_slice(&got);
            if short {
                break;
            }
        }
        Ok(out)
    }

    /// The stock-kernel path: looks up `path`, opens it, reads with READ requests, closes it.
    pub fn read_via_fuse(
        &mut self,
        path: impl AsRef<Path>,
        off: u64,
        len: usize,
    ) -> Result<Vec<u8>, EmuError> {
        self.with_open(path, |k, f| k.read_file(f, off, len))
    }

    /// One WRITE; returns the byte count the server reports (which may not exceed the data).
    pub fn write(&mut self, file: &OpenFile, off: u64, data: &[u8]) -> Result<u32, EmuError> {
        let size = u32::try_from(data.len()).map_err(|_| EmuError::Protocol {
            opcode: Opcode::WRITE,
            why: "write larger than 4 GiB".into(),
        })?;
        let r = self.call(
            file.nodeid,
            Operation::Write {
                arg: WriteIn {
                    fh: file.fh,
                    offset: off,
                    size,
                    flags: file.flags,
                    ..Default::default()
                },
                data,
            },
        )?;
        let n = r.get(|r| r.write())?.size;
        if n > size {
            return Err(EmuError::Protocol {
                opcode: Opcode::WRITE,
                why: format!("reports {n} bytes written of {size}"),
            });
        }
        Ok(n)
    }

    fn read_dir(&mut self, nodeid: u64, plus: bool) -> Result<Vec<DirEntry>, EmuError> {
        let o = self
            .call(nodeid, Operation::Opendir(OpenIn::default()))?
            .get(|r| r.open())?;
        let size = PAGE as u32;
        let mut all = Vec::new();
        let mut off = 0u64;
        let result = loop {
            let arg = ReadIn {
                fh: o.fh,
                offset: off,
                size,
                ..Default::default()
            };
            let op = if plus {
                Operation::Readdirplus(arg)
            } else {
                Operation::Readdir(arg)
            };
            let r = match self.call(nodeid, op) {
                Ok(r) => r,
                Err(e) => break Err(e),
            };
            let batch = r.get(|r| r.data(size as usize)).and_then(|payload| {
                let to_owned = |e: fuse_famfs_proto::reply::DirentEntry<'_>| DirEntry {
                    name: e.name.to_vec(),
                    ino: e.ino,
                    off: e.off,
                    typ: e.typ,
                    entry: e.entry,
                };
                let v: Result<Vec<_>, _> = if plus {
                    DirentPlusIter::new(payload)
                        .map(|e| e.map(to_owned))
                        .collect()
                } else {
                    DirentIter::new(payload).map(|e| e.map(to_owned)).collect()
                };
                v.map_err(|e| EmuError::Protocol {
                    opcode: if plus {
                        Opcode::READDIRPLUS
                    } else {
                        Opcode::READDIR
                    },
                    why: format!("directory entries: {e}"),
                })
            });
            let batch = match batch {
                Ok(b) => b,
                Err(e) => break Err(e),
            };
            let Some(last) = batch.last() else {
                break Ok(());
            };
            if last.off <= off {
                break Err(EmuError::Protocol {
                    opcode: Opcode::READDIR,
                    why: format!("cookie {} does not advance past {off}", last.off),
                });
            }
            off = last.off;
            for e in &batch {
                if let Some(entry) = &e.entry
                    && entry.nodeid != 0
                {
                    self.note_entry(entry);
                }
            }
            all.extend(batch);
        };
        let rel = self
            .call(
                nodeid,
                Operation::Releasedir(ReleaseIn {
                    fh: o.fh,
                    ..Default::default()
                }),
            )
            .and_then(|r| r.get(|r| r.empty()));
        result?;
        rel?;
        Ok(all)
    }

    /// OPENDIR, READDIR until an empty reply, RELEASEDIR.
    pub fn readdir(&mut self, nodeid: u64) -> Result<Vec<DirEntry>, EmuError> {
        self.read_dir(nodeid, false)
    }

    /// As [`KernelEmu::readdir`] with READDIRPLUS; entries with a nodeid count as lookups.
    pub fn readdirplus(&mut self, nodeid: u64) -> Result<Vec<DirEntry>, EmuError> {
        self.read_dir(nodeid, true)
    }

    /// STATFS.
    pub fn statfs(&mut self) -> Result<Kstatfs, EmuError> {
        Ok(self.call(ROOT, Operation::Statfs)?.get(|r| r.statfs())?.st)
    }

    /// ACCESS with `mask` (`libc::R_OK | ...`).
    pub fn access(&mut self, nodeid: u64, mask: i32) -> Result<(), EmuError> {
        self.call(
            nodeid,
            Operation::Access(AccessIn {
                mask: mask as u32,
                padding: 0,
            }),
        )?
        .get(|r| r.empty())
    }

    /// GETXATTR, as getxattr(2) with a zero-size probe first.
    pub fn getxattr(&mut self, nodeid: u64, name: &str) -> Result<Vec<u8>, EmuError> {
        let probe = self
            .call(
                nodeid,
                Operation::Getxattr {
                    arg: GetxattrIn::default(),
                    name: name.as_bytes(),
                },
            )?
            .get(|r| r.xattr_size())?;
        let r = self.call(
            nodeid,
            Operation::Getxattr {
                arg: GetxattrIn {
                    size: probe.size,
                    padding: 0,
                },
                name: name.as_bytes(),
            },
        )?;
        r.get(|r| r.data(probe.size as usize)).map(<[u8]>::to_vec)
    }

    /// FORGET `nlookup` references to `nodeid` (no reply); the inode and its cached map are
    /// dropped when none remain.
    pub fn forget(&mut self, nodeid: u64, nlookup: u64) -> Result<(), EmuError> {
        self.send(nodeid, Operation::Forget(ForgetIn { nlookup }))?;
        self.drop_refs(nodeid, nlookup);
        Ok(())
    }

    fn drop_refs(&mut self, nodeid: u64, n: u64) {
        if nodeid == ROOT {
            return;
        }
        if let Some(i) = self.inodes.get_mut(&nodeid) {
            i.nlookup = i.nlookup.saturating_sub(n);
            if i.nlookup == 0 {
                self.inodes.remove(&nodeid);
            }
        }
    }

    /// BATCH_FORGET of every reference the emulator holds (what evicting all inodes does); the
    /// cached maps go with them. Returns the number of nodes forgotten.
    pub fn forget_all(&mut self) -> Result<usize, EmuError> {
        let list: Vec<ForgetOne> = self
            .inodes
            .iter()
            .filter(|(id, i)| **id != ROOT && i.nlookup > 0)
            .map(|(&nodeid, i)| ForgetOne {
                nodeid,
                nlookup: i.nlookup,
            })
            .collect();
        if list.is_empty() {
            return Ok(0);
        }
        let bytes = list.as_bytes();
        let fl = ForgetList::from_bytes(bytes).ok_or(EmuError::Protocol {
            opcode: Opcode::BATCH_FORGET,
            why: "forget list".into(),
        })?;
        self.send(0, Operation::BatchForget(fl))?;
        for f in &list {
            self.drop_refs(f.nodeid, f.nlookup);
        }
        Ok(list.len())
    }

    /// INTERRUPT request `unique` (no reply expected). As in the kernel, the INTERRUPT's own
    /// header carries `unique | FUSE_INT_REQ_BIT`.
    pub fn interrupt(&mut self, unique: u64) -> Result<(), EmuError> {
        let mut req = Request::new(
            unique | abi::FUSE_INT_REQ_BIT,
            0,
            Operation::Interrupt(InterruptIn { unique }),
        );
        (req.header.uid, req.header.gid, req.header.pid) = self.creds;
        let bytes = req.to_bytes().map_err(|source| EmuError::Encode {
            opcode: Opcode::INTERRUPT,
            source,
        })?;
        self.send_raw(&bytes)
    }

    /// DESTROY: the server answers and ends the session; waits for it to stop.
    pub fn destroy(mut self) -> Result<(), EmuError> {
        self.call(0, Operation::Destroy)?.get(|r| r.empty())?;
        self.finish()
    }

    /// Closes the channel (like an unmount), stops the server and its watcher, and returns how
    /// the session ended.
    pub fn shutdown(mut self) -> Result<(), EmuError> {
        self.chan.shutdown();
        self.finish()
    }

    fn finish(&mut self) -> Result<(), EmuError> {
        if let Some((stop, h)) = self.watcher.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = h.join();
        }
        let Some(h) = self.session.take() else {
            return Ok(());
        };
        // DESTROY stops only the worker that answered it; the others stop at end of file.
        self.chan.shutdown();
        match h.join() {
            Ok(r) => Ok(r?),
            Err(_) => Err(EmuError::Protocol {
                opcode: Opcode::DESTROY,
                why: "server session thread panicked".into(),
            }),
        }
    }

    /// Whether the server's session is still running.
    pub fn session_alive(&self) -> bool {
        self.session.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// The attributes of `path` (LOOKUP of each component).
    pub fn stat(&mut self, path: impl AsRef<Path>) -> Result<Attr, EmuError> {
        Ok(self.lookup_path(path)?.attr)
    }

    /// Whether `nodeid`'s cached attributes say it is a directory.
    pub fn is_dir(&self, nodeid: u64) -> bool {
        self.inodes
            .get(&nodeid)
            .is_some_and(|i| is_dir(i.attr.mode))
    }
}

impl Drop for KernelEmu {
    fn drop(&mut self) {
        self.chan.shutdown();
        let _ = self.finish();
    }
}
