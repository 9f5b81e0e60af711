//! INIT: a connection is negotiated once, on its first descriptor, before any worker starts, so
//! what INIT settles (famfs path on or off, flags, `max_write`, open flags) never changes
//! afterwards.

use std::sync::Arc;

use fuse_famfs_proto::abi::{self, InitIn};
use fuse_famfs_proto::reply::{self, InitConfig, Negotiated};
use fuse_famfs_proto::{Errno, Operation};

use super::{Adapter, Reply, bytes, respond};
use crate::{Config, DaxPolicy, FileSystem};

/// What INIT settled for a connection; fixed for its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The protocol minor version in force.
    pub minor: u32,
    /// The flags in force (64-bit word, `FUSE_*`).
    pub flags: u64,
    /// Largest WRITE the kernel may send.
    pub max_write: u32,
    /// `FOPEN_*` flags of every opened file.
    pub open_flags: u32,
    /// The flags the kernel offered (64-bit word).
    pub offered: u64,
}

impl Connection {
    /// Whether the kernel took the famfs path: it sends GET_FMAP after each OPEN of a regular
    /// file, resolves faults itself, and sends no READ or WRITE for those files.
    pub fn famfs(&self) -> bool {
        self.flags & abi::FUSE_DAX_FMAP != 0
    }

    /// Whether the kernel accepted FUSE over io_uring: it holds every request until the
    /// server's ring queues are registered, or until a registration fails.
    pub fn uring(&self) -> bool {
        self.flags & abi::FUSE_OVER_IO_URING != 0
    }
}

/// How a connection's first requests were answered ([`Adapter::init`]).
#[derive(Debug)]
pub enum Handshake {
    /// INIT was negotiated: send `reply`, then serve the connection with `adapter`.
    Ready {
        /// Answers the connection's requests from now on.
        adapter: Adapter,
        /// The INIT reply.
        reply: Reply,
    },
    /// Not an INIT that could be accepted: send the reply (an error, or nothing) and wait for
    /// the next request.
    Pending(Reply),
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

/// Where the kernel states how many pages one request may carry (`fs.fuse.max_pages_limit`,
/// Linux 6.13+; 256 before, and when unreadable).
const MAX_PAGES_LIMIT: &str = "/proc/sys/fs/fuse/max_pages_limit";
/// The kernel's limit before the sysctl existed (`FUSE_MAX_MAX_PAGES`).
const OLD_MAX_PAGES_LIMIT: u32 = 256;
const PAGE: u32 = 4096;

/// `fs.fuse.max_pages_limit` as the kernel reports it (256 when the file is missing or
/// unreadable). The daemon never changes it: an administrator may raise it (up to 65535).
pub fn max_pages_limit() -> u32 {
    std::fs::read_to_string(MAX_PAGES_LIMIT)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(OLD_MAX_PAGES_LIMIT)
}

/// The request size asked for in INIT, `(max_pages, max_write)`: `cfg.max_io` rounded down to
/// pages, at most `limit` pages (the kernel would cap it there anyway), at least one page.
pub fn request_size(cfg: &Config, limit: u32) -> (u16, u32) {
    let pages = (cfg.max_io / PAGE).min(limit).clamp(1, u32::from(u16::MAX));
    (pages as u16, pages * PAGE)
}

/// What this server asks of the kernel; `famfs_device`: the device is in famfs mode (not
/// mapped: only the kernel can reach its data).
fn wanted(cfg: &Config, rawio: bool, uring: bool, famfs_device: bool) -> InitConfig {
    let mut flags = abi::FUSE_ASYNC_READ
        | abi::FUSE_BIG_WRITES
        | abi::FUSE_MAX_PAGES
        | abi::FUSE_DO_READDIRPLUS
        | abi::FUSE_READDIRPLUS_AUTO
        | abi::FUSE_PARALLEL_DIROPS
        | abi::FUSE_DIRECT_IO_ALLOW_MMAP;
    let dax_ok = match cfg.dax {
        DaxPolicy::Always => true,
        // The kernel maps files only onto a device in famfs mode (fsdev_dax); for a stand-in
        // file or a devdax device it would fail every I/O with EIO, so READ/WRITE are served.
        DaxPolicy::Auto => famfs_device,
        DaxPolicy::Off => false,
    };
    if dax_ok && rawio {
        flags |= abi::FUSE_DAX_FMAP;
    }
    if uring {
        flags |= abi::FUSE_OVER_IO_URING;
    }
    let (max_pages, max_write) = request_size(cfg, max_pages_limit());
    InitConfig {
        flags,
        max_write,
        max_pages,
        ..Default::default()
    }
}

/// Negotiate the kernel's offer `init` (EPROTO if it cannot be answered).
fn negotiate(
    fs: &FileSystem,
    init: &InitIn,
    uring: bool,
) -> Result<(Connection, Negotiated), Errno> {
    let cfg = fs.config();
    let want = wanted(cfg, has_cap_sys_rawio(), uring, !fs.is_mapped());
    let neg = reply::negotiate(init, &want).map_err(|_| Errno::EPROTO)?;
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
    let conn = Connection {
        offered: init.flags64(),
        minor: neg.minor,
        flags: neg.flags,
        max_write: neg.reply.max_write,
        open_flags: if neg.famfs() {
            0
        } else {
            // Every read goes to the shared memory: no page cache that could go stale when
            // another host writes. mmap still works (FUSE_DIRECT_IO_ALLOW_MMAP).
            abi::FOPEN_DIRECT_IO | abi::FOPEN_PARALLEL_DIRECT_WRITES
        },
    };
    Ok((conn, neg))
}

/// The answer to an INIT on a connection already negotiated: EPROTO for an offer this server
/// can never accept, EIO for any other (a connection is negotiated once; its state stays).
pub(super) fn again(init: &InitIn) -> Errno {
    if reply::negotiate(init, &InitConfig::default()).is_err() {
        return Errno::EPROTO;
    }
    tracing::warn!("INIT on a connection already initialised; refused");
    Errno::EIO
}

impl Adapter {
    /// Answer one of a connection's first requests (`req`, into `out`, as
    /// [`Adapter::handle`]): INIT is negotiated and gives the adapter for the rest of the
    /// connection; anything before it is answered EIO (nothing for requests that take no
    /// reply), and an INIT that cannot be accepted EPROTO, after which INIT is awaited again.
    pub fn init(fs: &Arc<FileSystem>, req: &[u8], out: &mut [u8]) -> Handshake {
        Self::init_with(fs, req, out, false)
    }

    /// As [`Adapter::init`], and also accept FUSE over io_uring if `uring` is set and the
    /// kernel offers it ([`Connection::uring`] tells), for a transport whose rings are ready
    /// to be registered.
    pub fn init_with(fs: &Arc<FileSystem>, req: &[u8], out: &mut [u8], uring: bool) -> Handshake {
        let mut ready = None;
        let reply = respond(req, out, |r, out| match &r.op {
            Operation::Init(init) => {
                let (conn, neg) = negotiate(fs, init, uring)?;
                let reply = bytes(neg.write_reply(out, r.header.unique))?;
                ready = Some(Adapter {
                    fs: Arc::clone(fs),
                    conn,
                });
                Ok(reply)
            }
            op if !op.opcode().expects_reply() => Ok(Reply::None),
            op => {
                tracing::warn!("{:?} before INIT; answering EIO", op.opcode());
                Err(Errno::EIO)
            }
        });
        fs.stats().record(req, out, &reply);
        match ready {
            Some(adapter) => {
                fs.stats().set_data_path(adapter.conn.famfs());
                Handshake::Ready { adapter, reply }
            }
            None => Handshake::Pending(reply),
        }
    }
}

/// Why a famfs-mode device (not mapped) cannot be served on connection `conn` (`None` if it
/// can, or if the device is mapped): only the famfs kernel path reaches its data.
pub(crate) fn famfs_needed(fs: &FileSystem, conn: &Connection) -> Option<String> {
    if fs.is_mapped() || conn.famfs() {
        return None;
    }
    let why = if conn.offered & abi::FUSE_DAX_FMAP == 0 {
        "the kernel does not offer FUSE_DAX_FMAP (it has no famfs support)"
    } else if fs.config().dax == DaxPolicy::Off {
        "--dax off was given"
    } else {
        "the daemon lacks CAP_SYS_RAWIO"
    };
    Some(famfs_needed_message(fs.config(), why))
}

/// The message for a famfs-mode device that cannot take the famfs kernel path because of `why`.
pub(crate) fn famfs_needed_message(cfg: &Config, why: &str) -> String {
    format!(
        "{} is a dax device in famfs mode, {}, and {why}; \
         switch the device to devdax mode (daxctl-famfs reconfigure-device -m devdax {}) and \
         mount it again",
        cfg.device.display(),
        crate::error::FAMFS_KERNEL_NEEDED_MARK,
        cfg.device
            .file_name()
            .map_or_else(|| "daxX.Y".into(), |n| n.to_string_lossy().into_owned())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_size_follows_max_io_and_the_kernel_limit() {
        let mut cfg = Config::new("/dev/null");
        cfg.max_io = 4 << 20;
        // The default limit (256 pages) caps a 4 MiB wish at 1 MiB.
        assert_eq!(request_size(&cfg, 256), (256, 1 << 20));
        // A raised limit lets the whole 4 MiB through, and no more.
        assert_eq!(request_size(&cfg, 1024), (1024, 4 << 20));
        assert_eq!(request_size(&cfg, 65535), (1024, 4 << 20));
        // Partial pages round down, and a request always has a page.
        cfg.max_io = 4096 * 3 + 100;
        assert_eq!(request_size(&cfg, 256), (3, 3 * 4096));
        cfg.max_io = 0;
        assert_eq!(request_size(&cfg, 256), (1, 4096));
        assert_eq!(request_size(&cfg, 0), (1, 4096));
        // The u16 field cannot overflow.
        cfg.max_io = u32::MAX;
        assert_eq!(request_size(&cfg, u32::MAX).0, u16::MAX);
    }

    #[test]
    fn the_limit_is_read_from_proc() {
        let want = std::fs::read_to_string(MAX_PAGES_LIMIT)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(OLD_MAX_PAGES_LIMIT);
        assert_eq!(max_pages_limit(), want);
        assert!(max_pages_limit() >= 1);
    }
}
