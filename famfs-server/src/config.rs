//! Daemon configuration.

use std::path::PathBuf;
use std::time::Duration;

use uuid::Uuid;

/// Whether to take the famfs kernel path (GET_FMAP / GET_DAXDEV) when the kernel offers it.
///
/// A famfs kernel can only map files onto a dax character device bound to the `fsdev_dax`
/// driver (famfs mode); for a stand-in file, or a device in devdax mode, it would fail every
/// I/O with EIO. So `Auto` accepts only for such a device, and otherwise serves READ/WRITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DaxPolicy {
    /// Accept `FUSE_DAX_FMAP` when the kernel offers it, the daemon has `CAP_SYS_RAWIO`, and
    /// the device is one the kernel can map (a dax device in famfs mode).
    #[default]
    Auto,
    /// Accept whenever the kernel offers it and the daemon has `CAP_SYS_RAWIO`, whatever the
    /// device (for emulated kernels in tests, which resolve maps on any device).
    Always,
    /// Never accept it: always serve READ and WRITE from the device mapping.
    Off,
}

/// Where the daemon reads its metadata, and whether it maps the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetaAccess {
    /// From the device: a dax device in famfs mode (which cannot be mapped) is never mapped and
    /// its metadata is read through the daemon's own mount; anything else is mapped and its
    /// metadata read from the mapping.
    #[default]
    Auto,
    /// Map the device (data is served from the mapping) but read the metadata through the
    /// daemon's own mount, as for a famfs-mode device (tests of that path on stock kernels).
    ThroughMount,
    /// Treat the device as one in famfs mode: never map it, metadata through the own mount
    /// (emulated famfs-mode devices in tests).
    FamfsMode,
}

/// How requests travel between the kernel and the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// FUSE over io_uring when the kernel offers it (Linux 6.14+ with the `fuse` module
    /// parameter `enable_uring` on) and the rings can be set up; the /dev/fuse loop otherwise.
    #[default]
    Auto,
    /// FUSE over io_uring, or fail.
    Uring,
    /// The /dev/fuse read/writev loop.
    Dev,
}

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The dax device or stand-in file.
    pub device: PathBuf,
    /// This host's system UUID (`None`: the usual lookup, see `famfs_log::role::system_uuid`).
    pub system_uuid: Option<Uuid>,
    /// Entry and attribute cache timeout given to the kernel.
    pub timeout: Duration,
    /// famfs kernel path policy.
    pub dax: DaxPolicy,
    /// How often the log watcher looks for new entries.
    pub poll: Duration,
    /// How long an unreadable log entry may block the entries after it before it is skipped.
    pub stall_timeout: Duration,
    /// Request-handling threads.
    pub threads: usize,
    /// Largest WRITE accepted (and READ served) in one request. INIT asks for this much, in
    /// pages, but never more than `fs.fuse.max_pages_limit` allows (256 pages, 1 MiB, by
    /// default; raise the sysctl to let 4 MiB requests through).
    pub max_io: u32,
    /// Kernel-daemon transport.
    pub transport: Transport,
    /// io_uring transport: entries registered per queue (one queue per CPU), each with a
    /// payload buffer of a request's size (mapped lazily; the kernel reuses the entry freed
    /// last, so a queue touches more than one only under concurrent requests from its CPU).
    /// One thread serves a queue, so a second entry only lets a request wait in it.
    pub uring_depth: usize,
    /// Where the metadata is read (see [`MetaAccess`]).
    pub meta: MetaAccess,
    /// Formatting mode (`--format-log-len`): serve only `.meta/.superblock` (device offset 0,
    /// 2 MiB) and `.meta/.log` (2 MiB, this many bytes), both writable, with no superblock
    /// read, no replay and no tree, for `mkfs.famfs` to write a new file system through them.
    pub format_log_len: Option<u64>,
}

impl Config {
    /// Defaults for `device`.
    pub fn new(device: impl Into<PathBuf>) -> Self {
        Config {
            device: device.into(),
            system_uuid: None,
            timeout: Duration::from_secs(1),
            dax: DaxPolicy::Auto,
            poll: Duration::from_millis(100),
            stall_timeout: Duration::from_secs(2),
            threads: 4,
            max_io: 4 << 20,
            transport: Transport::Auto,
            uring_depth: 2,
            meta: MetaAccess::Auto,
            format_log_len: None,
        }
    }

    /// How many bytes a request (and a reply) buffer must hold: the largest WRITE (or READ)
    /// plus room for headers and names.
    pub fn request_buffer_size(&self) -> usize {
        self.max_io as usize + 64 * 1024
    }
}
