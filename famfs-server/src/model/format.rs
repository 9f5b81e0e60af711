//! Formatting mode (`famfs_fused --format-log-len BYTES`): for `mkfs.famfs` on a dax device in
//! famfs mode, which only the kernel can map. The daemon serves `.meta/.superblock` (device
//! offset 0, 2 MiB) and `.meta/.log` (2 MiB, BYTES bytes), both writable, and nothing else: no
//! superblock is read (there may be none yet), no log is replayed and there is no tree. mkfs
//! writes the superblock and the empty log through the two files.

use std::sync::Arc;
use std::time::Duration;

use famfs_log::layout::LOG_OFFSET;
use famfs_log::role::Role;

use super::{FileSystem, MetaNodes, Stats, ViewCache};
use crate::attr::AttrPolicy;
use crate::{Config, ServerError};

impl FileSystem {
    /// A file system in formatting mode with a log of `log_len` bytes; the device is mapped
    /// only if `mapped` (never a famfs-mode device).
    pub(super) fn open_formatting(
        cfg: Config,
        mapped: bool,
        log_len: u64,
    ) -> Result<Arc<FileSystem>, ServerError> {
        let (device_size, map) = crate::open::open_unmounted(&cfg, mapped)?;
        if log_len == 0 || LOG_OFFSET.saturating_add(log_len) > device_size {
            return Err(ServerError::Famfs {
                device: cfg.device.clone(),
                source: famfs_log::LogError::Geometry(format!(
                    "a log of {log_len} bytes at {LOG_OFFSET:#x} does not fit the device \
                     ({device_size} bytes)"
                )),
            });
        }
        let map = match map {
            Some(m) => m,
            // Nothing is ever read from it: READ and WRITE answer EIO when not `mapped`.
            None => Arc::new(
                famfs_fsdev::DaxDevice::memfd("unmapped", famfs_fsdev::MIN_DEVICE_SIZE)?
                    .map_all()?,
            ),
        };
        Ok(Arc::new(FileSystem {
            device_name: crate::open::device_name(&cfg),
            device_size,
            map,
            mapped,
            formatting: true,
            tree: std::sync::OnceLock::new(),
            meta: MetaNodes::formatting(log_len),
            // Writable for the owner (root), and not cached: the files are rewritten under it.
            boot_attrs: AttrPolicy::new(Duration::ZERO, Role::Master),
            views: ViewCache::default(),
            control: std::sync::OnceLock::new(),
            stats: Stats::default(),
            cfg,
        }))
    }

    /// Whether this is formatting mode (only the meta files, both writable; never a tree).
    pub fn is_formatting(&self) -> bool {
        self.formatting
    }

    /// Whether `ino` may be written: both meta files in formatting mode; else anything but
    /// the superblock, on the master.
    pub(super) fn may_write(&self, ino: famfs_log::namespace::Ino) -> bool {
        self.formatting
            || (self.role() == Role::Master && ino != famfs_log::replay::META_SB_INO)
    }
}
