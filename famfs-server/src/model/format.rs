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
        self.formatting || (self.role() == Role::Master && ino != famfs_log::replay::META_SB_INO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use famfs_log::namespace::ROOT_INO;
    use famfs_log::replay::{META_DIR_INO, META_LOG_INO, META_SB_INO};
    use std::os::unix::fs::FileExt;

    #[test]
    fn formatting_serves_both_meta_files_writable_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("dev.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        let mut cfg = Config::new(&img);
        cfg.format_log_len = Some(8 << 20);
        let fs = FileSystem::open(cfg.clone()).unwrap();
        assert!(fs.is_formatting() && !fs.is_ready());
        let meta = fs.lookup(ROOT_INO, b".meta").unwrap();
        assert_eq!(meta.nodeid, META_DIR_INO.get());
        assert_eq!(
            fs.lookup(META_DIR_INO, b".log").unwrap().nodeid,
            META_LOG_INO.get()
        );
        assert_eq!(fs.file_size(META_SB_INO).unwrap(), LOG_OFFSET);
        assert_eq!(fs.file_size(META_LOG_INO).unwrap(), 8 << 20);
        // Both writable (no superblock has been read: there is no role), at their offsets.
        fs.open_file(META_SB_INO, libc::O_RDWR as u32).unwrap();
        fs.access(META_SB_INO, libc::W_OK as u32).unwrap();
        assert_eq!(fs.write(META_SB_INO, 0, b"super").unwrap(), 5);
        assert_eq!(fs.write(META_LOG_INO, 16, b"log").unwrap(), 3);
        let f = std::fs::File::open(&img).unwrap();
        let mut buf = [0u8; 5];
        f.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"super");
        f.read_exact_at(&mut buf[..3], LOG_OFFSET + 16).unwrap();
        assert_eq!(&buf[..3], b"log");
        // Files never grow, and there is no tree.
        assert!(fs.write(META_LOG_INO, 8 << 20, b"x").is_err());
        assert!(fs.readdir(ROOT_INO, 0, |_| true).is_err());
        // A log that does not fit the device is refused before anything is served.
        cfg.format_log_len = Some(64 << 20);
        let e = FileSystem::open(cfg).unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");
    }
}
