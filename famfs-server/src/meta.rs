//! Metadata access: where the daemon reads its superblock and log, and where the master's
//! appends go.
//!
//! There are two sources, and replay does not know which it has (it always works on a
//! [`Media`]):
//!
//! * **The device mapping** (devdax devices and stand-in files): the log is a window of the
//!   mapping, read and written in place, as before.
//! * **The daemon's own mount** ([`MetaFiles`], e.g. [`MountFiles`]): for a dax device in famfs
//!   mode, which cannot be mapped, the daemon serves `.meta/.superblock` and `.meta/.log` like
//!   any file (GET_FMAP on a famfs kernel) and reads them through its mount, where the kernel
//!   maps them onto the device. A request of the daemon's own reads is answered by its own
//!   workers, so no I/O through the mount may happen while the tree lock is held: the bytes are
//!   fetched first, with no lock held, into an in-memory copy (`Snapshot`) that replay then
//!   reads under the lock. Appends are written to the copy under the lock and recorded, then
//!   written through the mount after the lock is released (`Append::push`). Every access
//!   opens its file anew (an fd held inside the mount would make a plain `umount` fail with
//!   EBUSY) and checks that the path still leads into this daemon's mount.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use famfs_fsdev::{FileMedia, FsdevError, Media, MediaLock, MemMedia};
use famfs_log::header::LogHeader;
use famfs_log::layout::{LOG_ENTRY_SIZE, LOG_HEADER_SIZE, SUPERBLOCK_REGION, entry_offset};

fn io_err(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> FsdevError {
    FsdevError::Io {
        what,
        path: path.into(),
        source,
    }
}

/// The media replay reads the log from, whatever the source: a window of the device mapping,
/// or the in-memory copy of `.meta/.log`.
pub(crate) struct LogMedia(pub(crate) Box<dyn Media>);

impl std::fmt::Debug for LogMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LogMedia").field(&self.0.describe()).finish()
    }
}

impl Media for LogMedia {
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), FsdevError> {
        self.0.read_at(off, buf)
    }
    fn write_at(&self, off: u64, data: &[u8]) -> Result<(), FsdevError> {
        self.0.write_at(off, data)
    }
    fn flush(&self, off: u64, len: u64) -> Result<(), FsdevError> {
        self.0.flush(off, len)
    }
    fn invalidate(&self, off: u64, len: u64) -> Result<(), FsdevError> {
        self.0.invalidate(off, len)
    }
    fn lock_exclusive(&self) -> Result<MediaLock, FsdevError> {
        self.0.lock_exclusive()
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

/// One of the two meta files a mount shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaFile {
    /// `.meta/.superblock`: device offset 0, 2 MiB.
    Superblock,
    /// `.meta/.log`: where and how long the superblock says.
    Log,
}

impl MetaFile {
    /// Its path relative to the mount point.
    pub fn path(self) -> &'static str {
        match self {
            MetaFile::Superblock => ".meta/.superblock",
            MetaFile::Log => ".meta/.log",
        }
    }
}

/// A way to reach the meta files one access at a time (the daemon's own mount, or an emulated
/// kernel in tests). What [`MetaFiles::open`] returns is dropped after the access.
pub trait MetaFiles: Send + Sync + std::fmt::Debug {
    /// Open `file` for one access; `write` to write it (the master's appends).
    fn open(&self, file: MetaFile, write: bool) -> Result<Box<dyn Media>, FsdevError>;
    /// A short description for messages.
    fn describe(&self) -> String;
    /// Whether the meta files cannot be reached any more because the file system was
    /// unmounted (a failed access is then no error of the media).
    fn gone(&self) -> bool {
        false
    }
}

/// The meta files through the daemon's own mount at `mountpoint`.
#[derive(Debug, Clone)]
pub struct MountFiles {
    mountpoint: PathBuf,
    dev: u64,
}

/// `f_type` of a FUSE file system (statfs).
const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

impl MountFiles {
    /// The meta files under `mountpoint`, which must be a FUSE mount now (the daemon's own,
    /// just mounted and served): its device number is remembered, and every later access
    /// checks that the file it opened is on that mount.
    pub fn new(mountpoint: &Path) -> Result<MountFiles, FsdevError> {
        let st = nix::sys::statfs::statfs(mountpoint)
            .map_err(|e| io_err("statfs", mountpoint, e.into()))?;
        if st.filesystem_type().0 as i64 != FUSE_SUPER_MAGIC {
            return Err(io_err(
                "check",
                mountpoint,
                std::io::Error::other("not a FUSE mount (the famfs mount is gone)"),
            ));
        }
        let meta = std::fs::metadata(mountpoint).map_err(|e| io_err("stat", mountpoint, e))?;
        Ok(MountFiles {
            mountpoint: mountpoint.to_path_buf(),
            dev: std::os::unix::fs::MetadataExt::dev(&meta),
        })
    }
}

impl MetaFiles for MountFiles {
    fn open(&self, file: MetaFile, write: bool) -> Result<Box<dyn Media>, FsdevError> {
        let path = self.mountpoint.join(file.path());
        let f = FileMedia::open(&path, write)?;
        let st = nix::sys::stat::fstat(f.file()).map_err(|e| io_err("stat", &path, e.into()))?;
        if st.st_dev != self.dev {
            // Not our mount any more (unmounted, or something mounted over it): never read
            // someone else's file as our metadata.
            return Err(io_err(
                "open",
                &path,
                std::io::Error::from_raw_os_error(libc::ESTALE),
            ));
        }
        Ok(Box::new(f))
    }

    fn describe(&self) -> String {
        self.mountpoint.display().to_string()
    }

    fn gone(&self) -> bool {
        std::fs::metadata(&self.mountpoint).map_or(true, |m| {
            std::os::unix::fs::MetadataExt::dev(&m) != self.dev
        })
    }
}

/// An in-memory copy of a meta file that replay reads; writes to it are recorded so that
/// [`MountedMeta::push`] can write them through the mount, in order.
#[derive(Debug)]
pub(crate) struct Snapshot {
    mem: MemMedia,
    pending: Mutex<Vec<(u64, Vec<u8>)>>,
    name: String,
}

impl Snapshot {
    fn new(size: u64, name: String) -> Snapshot {
        Snapshot {
            mem: MemMedia::new(usize::try_from(size).unwrap_or(0)),
            pending: Mutex::new(Vec::new()),
            name,
        }
    }

    /// Store bytes fetched from the source (not a write to push).
    fn store(&self, off: u64, data: &[u8]) -> Result<(), FsdevError> {
        self.mem.write_at(off, data)
    }

    fn take_pending(&self) -> Vec<(u64, Vec<u8>)> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Media for Snapshot {
    fn size(&self) -> u64 {
        self.mem.size()
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), FsdevError> {
        self.mem.read_at(off, buf)
    }
    fn write_at(&self, off: u64, data: &[u8]) -> Result<(), FsdevError> {
        self.mem.write_at(off, data)?;
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((off, data.to_vec()));
        Ok(())
    }
    fn flush(&self, _off: u64, _len: u64) -> Result<(), FsdevError> {
        Ok(())
    }
    fn invalidate(&self, _off: u64, _len: u64) -> Result<(), FsdevError> {
        Ok(())
    }
    fn lock_exclusive(&self) -> Result<MediaLock, FsdevError> {
        // The log's own lock (flock on .meta/.log) is taken by `MountedMeta::begin_append`,
        // before the tree lock: this one only orders writers inside the daemon.
        self.mem.lock_exclusive()
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// Entries read per access when fetching.
const FETCH_BATCH: u64 = 240;
/// Bytes of `.meta/.superblock` kept (the superblock proper is 200 bytes).
const SB_BYTES: u64 = 4096;

/// The metadata of a file system whose meta files are read through a [`MetaFiles`]: the
/// in-memory copies replay reads, and the lock that orders fetches and appends (never needed by
/// a FUSE request handler, so it may be held across I/O through the mount).
#[derive(Debug)]
pub(crate) struct MountedMeta {
    files: Arc<dyn MetaFiles>,
    sb: Arc<Snapshot>,
    log: Arc<Snapshot>,
    io: Mutex<()>,
}

/// An append in progress: the fetch/append lock, the log opened for writing and its flock.
pub(crate) struct Append<'a> {
    meta: &'a MountedMeta,
    _io: MutexGuard<'a, ()>,
    file: Box<dyn Media>,
    _lock: MediaLock,
}

impl MountedMeta {
    /// Read the superblock region through `files`: the copy and the parsed superblock.
    pub(crate) fn read_superblock(
        files: &dyn MetaFiles,
    ) -> Result<(Snapshot, famfs_log::superblock::Superblock), famfs_log::LogError> {
        let snap = Snapshot::new(SB_BYTES, files.describe());
        fetch_superblock(files, &snap)?;
        let sb = famfs_log::superblock::Superblock::read(&snap)?;
        Ok((snap, sb))
    }

    /// The metadata behind `files`, whose superblock copy is `sb` and whose log is `log_len`
    /// bytes long; nothing of the log is fetched yet.
    pub(crate) fn new(files: Arc<dyn MetaFiles>, sb: Snapshot, log_len: u64) -> MountedMeta {
        let name = format!("{}/{}", files.describe(), MetaFile::Log.path());
        MountedMeta {
            files,
            sb: Arc::new(sb),
            log: Arc::new(Snapshot::new(log_len, name)),
            io: Mutex::new(()),
        }
    }

    /// The log copy, as replay's media.
    pub(crate) fn log_media(&self) -> LogMedia {
        LogMedia(Box::new(Arc::clone(&self.log)))
    }

    /// The superblock copy, for the re-checks of a refresh.
    pub(crate) fn superblock_media(&self) -> Box<dyn Media> {
        Box::new(Arc::clone(&self.sb))
    }

    /// Whether the source is gone (unmounted).
    pub(crate) fn gone(&self) -> bool {
        self.files.gone()
    }

    /// Take the fetch/append lock.
    pub(crate) fn lock_io(&self) -> MutexGuard<'_, ()> {
        self.io.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// With the fetch/append lock held: read the superblock, the log header and the entries
    /// from index `from` up to what the header counts into the copies. A header that does not
    /// parse is copied as it is (replay then says what is wrong with it).
    pub(crate) fn fetch(&self, _io: &MutexGuard<'_, ()>, from: u64) -> Result<(), FsdevError> {
        fetch_superblock(self.files.as_ref(), &self.sb)?;
        let file = self.files.open(MetaFile::Log, false)?;
        fetch_log(file.as_ref(), &self.log, from)
    }

    /// Start an append: take the fetch/append lock, open the log for writing, take its flock
    /// (as every writer of the log does) and catch up from entry `from`.
    pub(crate) fn begin_append(&self, from: u64) -> Result<Append<'_>, FsdevError> {
        let io = self.lock_io();
        let file = self.files.open(MetaFile::Log, true)?;
        let lock = file.lock_exclusive()?;
        fetch_superblock(self.files.as_ref(), &self.sb)?;
        fetch_log(file.as_ref(), &self.log, from)?;
        // Nothing from an earlier, failed append may be pushed now.
        self.log.take_pending();
        Ok(Append {
            meta: self,
            _io: io,
            file,
            _lock: lock,
        })
    }
}

impl Append<'_> {
    /// Write what was appended to the copy (entry first, then the header counters, in the
    /// order it was written) through the mount; the lock is released when this returns.
    pub(crate) fn push(self) -> Result<(), FsdevError> {
        for (off, data) in self.meta.log.take_pending() {
            self.file.write_at(off, &data)?;
            self.file.flush(off, data.len() as u64)?;
        }
        Ok(())
    }
}

fn fetch_superblock(files: &dyn MetaFiles, snap: &Snapshot) -> Result<(), FsdevError> {
    let f = files.open(MetaFile::Superblock, false)?;
    let n = SB_BYTES.min(f.size()).min(SUPERBLOCK_REGION);
    let mut buf = vec![0u8; n as usize];
    f.invalidate(0, n)?;
    f.read_at(0, &mut buf)?;
    snap.store(0, &buf)
}

/// Copy the header and the entries from `from` to the header's count from `file` into `snap`.
fn fetch_log(file: &dyn Media, snap: &Snapshot, from: u64) -> Result<(), FsdevError> {
    let size = file.size().min(snap.size());
    let mut head = [0u8; LOG_HEADER_SIZE];
    file.invalidate(0, LOG_HEADER_SIZE as u64)?;
    file.read_at(0, &mut head)?;
    snap.store(0, &head)?;
    let Ok(h) = LogHeader::parse(&head) else {
        return Ok(());
    };
    // Never past what the file holds, whatever the (untrusted) header says.
    let fits = size.saturating_sub(LOG_HEADER_SIZE as u64) / LOG_ENTRY_SIZE as u64;
    let end = h.next_index.min(fits);
    let mut i = from;
    let mut buf = Vec::new();
    while i < end {
        let n = (end - i).min(FETCH_BATCH);
        let len = n * LOG_ENTRY_SIZE as u64;
        buf.resize(len as usize, 0);
        file.invalidate(entry_offset(i), len)?;
        file.read_at(entry_offset(i), &mut buf)?;
        snap.store(entry_offset(i), &buf)?;
        i += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Meta files on a memory device: superblock at 0, log at 2 MiB.
    #[derive(Debug)]
    struct MemFiles(MemMedia, u64, std::sync::atomic::AtomicU64);

    impl MetaFiles for MemFiles {
        fn open(&self, file: MetaFile, _write: bool) -> Result<Box<dyn Media>, FsdevError> {
            self.2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (base, len) = match file {
                MetaFile::Superblock => (0, SUPERBLOCK_REGION),
                MetaFile::Log => (SUPERBLOCK_REGION, self.1),
            };
            Ok(Box::new(famfs_log::OffsetMedia::new(
                self.0.clone(),
                base,
                len,
            )?))
        }
        fn describe(&self) -> String {
            "mem".into()
        }
    }

    #[test]
    fn fetch_copies_and_push_writes_in_order() {
        let dev = MemMedia::new(16 << 20);
        let me = uuid::Uuid::new_v4();
        let mut o = famfs_log::MkfsOptions::new(me, "/dev/dax0.0");
        o.min_device_size = 0;
        famfs_log::mkfs(&dev, 16 << 20, &o).unwrap();
        let files: Arc<dyn MetaFiles> = Arc::new(MemFiles(
            dev.clone(),
            8 << 20,
            std::sync::atomic::AtomicU64::new(0),
        ));
        let (snap, sb) = MountedMeta::read_superblock(files.as_ref()).unwrap();
        let m = MountedMeta::new(Arc::clone(&files), snap, sb.log_len);
        m.fetch(&m.lock_io(), 0).unwrap();
        let opts = famfs_log::OpenOptions {
            system_uuid: Some(me),
            ..Default::default()
        };
        let mut fs = famfs_log::Famfs::open(sb, m.log_media(), opts).unwrap();
        let a = m.begin_append(0).unwrap();
        let attr = famfs_log::namespace::Attr {
            mode: 0o755,
            uid: 0,
            gid: 0,
        };
        fs.writer().unwrap().mkdir("d".as_ref(), attr).unwrap();
        // Written to the copy only, until pushed.
        let on_dev = || {
            let mut h = [0u8; LOG_HEADER_SIZE];
            dev.read_at(SUPERBLOCK_REGION, &mut h).unwrap();
            LogHeader::parse(&h).unwrap().next_index
        };
        assert_eq!(on_dev(), 0);
        a.push().unwrap();
        assert_eq!(on_dev(), 1);
        // Another reader replays it from a fresh copy.
        let (snap, sb) = MountedMeta::read_superblock(files.as_ref()).unwrap();
        let other = MountedMeta::new(files, snap, sb.log_len);
        other.fetch(&other.lock_io(), 0).unwrap();
        let fs2 = famfs_log::Famfs::open(sb, other.log_media(), Default::default()).unwrap();
        assert!(fs2.state().namespace().resolve(b"d").is_ok());
    }

    #[test]
    fn refresh_through_the_source_sees_appends_and_rewrites() {
        use crate::refresh::{Refreshed, SharedLog, SuperblockMedia};
        let dev = MemMedia::new(16 << 20);
        let me = uuid::Uuid::new_v4();
        let mkfs = |dev: &MemMedia| {
            let mut o = famfs_log::MkfsOptions::new(me, "/dev/dax0.0");
            o.min_device_size = 0;
            o.force = true;
            famfs_log::mkfs(dev, 16 << 20, &o).unwrap();
        };
        mkfs(&dev);
        let files: Arc<dyn MetaFiles> = Arc::new(MemFiles(
            dev.clone(),
            8 << 20,
            std::sync::atomic::AtomicU64::new(0),
        ));
        let (snap, sb) = MountedMeta::read_superblock(files.as_ref()).unwrap();
        let m = Arc::new(MountedMeta::new(files, snap, sb.log_len));
        m.fetch(&m.lock_io(), 0).unwrap();
        let fs = famfs_log::Famfs::open(sb, m.log_media(), Default::default()).unwrap();
        let shared = SharedLog::new(
            fs,
            Some(SuperblockMedia(m.superblock_media())),
            std::time::Duration::from_secs(1),
        )
        .with_mounted(Arc::clone(&m));
        assert_eq!(shared.refresh(), Refreshed::Nothing);
        // Another writer appends on the device itself.
        let attr = famfs_log::namespace::Attr {
            mode: 0o755,
            uid: 0,
            gid: 0,
        };
        let append = |name: &str| {
            let opts = famfs_log::OpenOptions {
                system_uuid: Some(me),
                ..Default::default()
            };
            let mut w = famfs_log::Famfs::open_device(dev.clone(), opts).unwrap();
            w.writer().unwrap().mkdir(name.as_ref(), attr).unwrap();
        };
        append("a");
        append("b");
        assert_eq!(shared.refresh(), Refreshed::Added);
        assert!(
            shared
                .read()
                .unwrap()
                .state()
                .namespace()
                .resolve(b"b")
                .is_ok()
        );
        // Re-formatted and one entry logged: the whole log is fetched and replayed again.
        mkfs(&dev);
        append("c");
        assert_eq!(shared.refresh(), Refreshed::Replaced);
        let log = shared.read().unwrap();
        let ns = log.state().namespace();
        assert!(ns.resolve(b"c").is_ok() && ns.resolve(b"a").is_err());
    }

    #[test]
    fn a_superblock_placing_the_log_past_the_device_is_refused_before_any_copy() {
        // A valid superblock claiming a 4 PiB device with a 1 TiB log, on a 16 MiB device.
        let me = uuid::Uuid::new_v4();
        let sb = famfs_log::superblock::Superblock::new(
            1 << 40,
            1 << 52,
            me,
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
            b"/dev/dax0.0",
        );
        let media = MemMedia::new(16 << 20);
        media.write_at(0, &sb.to_bytes()).unwrap();
        let files = Arc::new(MemFiles(
            media,
            8 << 20,
            std::sync::atomic::AtomicU64::new(0),
        ));
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("dev.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
        let mut cfg = crate::Config::new(&img);
        cfg.system_uuid = Some(me);
        cfg.meta = crate::MetaAccess::ThroughMount;
        let fs = crate::FileSystem::open(cfg).unwrap();
        assert!(!fs.is_ready());
        let e = fs.bootstrap(files).unwrap_err();
        assert!(e.to_string().contains("does not fit the device"), "{e}");
        assert!(!fs.is_ready());
    }
}
