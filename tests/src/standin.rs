//! Formatted stand-in devices: a sparse regular file with a famfs on it, files whose contents
//! follow [`crate::pattern`], and tools to damage it (corrupt bytes, hostile log entries).
//!
//! ```no_run
//! use famfs_tests::standin::StandIn;
//! use famfs_log::alloc::AllocPolicy;
//!
//! let mut dev = StandIn::create(8 << 30).unwrap();
//! dev.mkdir_p("data").unwrap();
//! let f = dev.add_file("data/a", (3 << 20) + 5, AllocPolicy::Contiguous).unwrap();
//! assert_eq!(dev.expected("data/a", 0, 16).len(), 16);
//! # let _ = f;
//! ```

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

use famfs_fsdev::{Access, DaxDevice, FileView, FsdevError, Mapping, Media};
use famfs_log::alloc::{AllocPolicy, InterleaveParams};
use famfs_log::entry::{FileEntry, LogEntry};
use famfs_log::header::{COUNTERS_OFFSET, LogHeader};
use famfs_log::layout::{FM_ALL_HOSTS_RW, LOG_ENTRY_CRC_LEN, LOG_ENTRY_SIZE, LOG_OFFSET};
use famfs_log::namespace::{Attr, Ino};
use famfs_log::{Famfs, LogError, MkfsOptions, OffsetMedia, OpenOptions, mkfs};
use fuse_famfs_proto::fmap::{Extent, Fmap};
use uuid::Uuid;

use crate::pattern;

/// Why a fixture could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// A file-system call or opening or accessing the device failed.
    #[error(transparent)]
    Device(#[from] FsdevError),
    /// famfs-log refused.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> FixtureError + 'a {
    move |source| FixtureError::Device(FsdevError::io(what, path, source))
}

/// A file created by the fixture, with the seed of its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFile {
    /// Path relative to the file-system root.
    pub path: PathBuf,
    /// Inode number in the replayed tree (the server's nodeid).
    pub ino: Ino,
    /// Size in bytes.
    pub size: u64,
    /// Seed of its contents ([`crate::pattern`]); `None` for files whose bytes were not written.
    pub seed: Option<u64>,
    /// How it was asked to be allocated.
    pub policy: AllocPolicy,
    /// The map the log holds for it (the allocator may place a small file contiguously even
    /// when asked to interleave), which is also what GET_FMAP must return for it.
    pub fmap: Fmap,
}

/// The owner and mode the fixture gives files (0644, uid/gid 1000) and directories (0755).
pub const FILE_ATTR: Attr = Attr {
    mode: 0o644,
    uid: 1000,
    gid: 1000,
};

/// See [`FILE_ATTR`].
pub const DIR_ATTR: Attr = Attr {
    mode: 0o755,
    uid: 1000,
    gid: 1000,
};

/// Interleaving the tests use: 3 strips of 2 MiB chunks over 4 buckets (needs a device of at
/// least 4 GiB).
pub const INTERLEAVE_3X2M: AllocPolicy = AllocPolicy::Interleaved(InterleaveParams {
    nbuckets: 4,
    nstrips: 3,
    chunk_size: 2 << 20,
});

/// A stand-in device file holding a famfs, and what the fixture put in it.
#[derive(Debug)]
pub struct StandIn {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    size: u64,
    master: Uuid,
    files: BTreeMap<PathBuf, TestFile>,
    next_seed: u64,
}

/// Temporary directories of live stand-ins, removed at process exit if still there (a
/// stand-in kept in a `static` is never dropped).
static LIVE_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

extern "C" fn remove_live_dirs() {
    let dirs = LIVE_DIRS.lock().map(|v| v.clone()).unwrap_or_default();
    for d in dirs {
        // Never descend into a mount left behind.
        if !crate::fused::any_mount_under(&d) {
            let _ = std::fs::remove_dir_all(&d);
        }
    }
}

fn register_dir(dir: &Path) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // SAFETY: atexit registers a plain `extern "C" fn()` that takes no arguments and only
        // touches a static; it is called once at process exit.
        unsafe {
            libc::atexit(remove_live_dirs);
        }
    });
    if let Ok(mut v) = LIVE_DIRS.lock() {
        v.push(dir.to_path_buf());
    }
}

fn unregister_dir(dir: &Path) {
    if let Ok(mut v) = LIVE_DIRS.lock() {
        v.retain(|d| d != dir);
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(d) = &self.dir {
            unregister_dir(d.path());
        }
    }
}

impl StandIn {
    /// A sparse `size`-byte stand-in in a new temporary directory (under `$TMPDIR`), formatted
    /// with a random master system UUID. The directory (and any mount point made in it with
    /// [`StandIn::dir`]) is removed on drop, or at process exit for a stand-in never dropped.
    pub fn create(size: u64) -> Result<StandIn, FixtureError> {
        Self::create_in(&std::env::temp_dir(), size)
    }

    /// As [`StandIn::create`], in a new directory under `parent` (e.g. `/dev/shm` to keep the
    /// device in memory).
    pub fn create_in(parent: &Path, size: u64) -> Result<StandIn, FixtureError> {
        let dir = tempfile::Builder::new()
            .prefix("famfs-standin-")
            .tempdir_in(parent)
            .map_err(io_err("mkdtemp", parent))?;
        register_dir(dir.path());
        let path = dir.path().join("dax.img");
        let mut s = match StandIn::create_at(&path, size, Uuid::new_v4()) {
            Ok(s) => s,
            Err(e) => {
                unregister_dir(dir.path());
                return Err(e);
            }
        };
        s.dir = Some(dir);
        Ok(s)
    }

    /// A sparse `size`-byte stand-in at `path` (created or truncated), formatted for master
    /// `master`. The file is left in place on drop.
    pub fn create_at(path: &Path, size: u64, master: Uuid) -> Result<StandIn, FixtureError> {
        let f = std::fs::File::create(path).map_err(io_err("create", path))?;
        f.set_len(size).map_err(io_err("truncate", path))?;
        drop(f);
        let dev = DaxDevice::open(path, Access::ReadWrite)?;
        let map = dev.map_all()?;
        let mut opts = MkfsOptions::new(master, path.as_os_str().as_bytes());
        opts.min_device_size = 0;
        mkfs(&map, dev.size(), &opts)?;
        Ok(StandIn {
            dir: None,
            path: path.to_path_buf(),
            size,
            master,
            files: BTreeMap::new(),
            next_seed: 1,
        })
    }

    /// Formats the device again in place for master `master` (`mkfs.famfs -f` run by another
    /// host: the file keeps its size and nothing is truncated, as on a dax device). The
    /// fixture forgets its files; the pattern seeds continue, so new files get new contents.
    pub fn reformat(&mut self, master: Uuid) -> Result<(), FixtureError> {
        let map = self.map()?;
        let mut opts = MkfsOptions::new(master, self.path.as_os_str().as_bytes());
        opts.min_device_size = 0;
        opts.force = true;
        mkfs(&map, self.size, &opts)?;
        self.master = master;
        self.files.clear();
        Ok(())
    }

    /// The stand-in file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding it (a good place for mount points).
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    /// A directory `name` next to the stand-in (created if needed), for a mount point; removed
    /// with the stand-in's directory.
    pub fn mountpoint(&self, name: &str) -> PathBuf {
        let p = self.dir().join(name);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        p
    }

    /// Device size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The master's system UUID (recorded in the superblock).
    pub fn master_uuid(&self) -> Uuid {
        self.master
    }

    /// Every file the fixture created, by path.
    pub fn files(&self) -> impl Iterator<Item = &TestFile> {
        self.files.values()
    }

    /// The fixture's record of `path`.
    pub fn file(&self, path: impl AsRef<Path>) -> Option<&TestFile> {
        self.files.get(path.as_ref())
    }

    /// A writable mapping of the whole device.
    pub fn map(&self) -> Result<Mapping, FixtureError> {
        Ok(DaxDevice::open(&self.path, Access::ReadWrite)?.map_all()?)
    }

    /// Runs `f` with the master's log writer (holding the log lock).
    pub fn with_writer<R>(
        &self,
        f: impl FnOnce(&mut famfs_log::Writer<'_, OffsetMedia<&Mapping>>, &Mapping) -> R,
    ) -> Result<R, FixtureError> {
        let map = self.map()?;
        let mut fs = Famfs::open_device(
            &map,
            OpenOptions {
                system_uuid: Some(self.master),
                ..Default::default()
            },
        )?;
        let mut w = fs.writer()?;
        Ok(f(&mut w, &map))
    }

    /// `mkdir -p path` (owned by uid 1000, mode 0755).
    pub fn mkdir_p(&mut self, path: &str) -> Result<Ino, FixtureError> {
        Ok(self.with_writer(|w, _| w.mkdir_p(Path::new(path), DIR_ATTR))??)
    }

    /// Creates `path` (its parent must exist) of `size` bytes and fills it with a fresh pattern.
    pub fn add_file(
        &mut self,
        path: &str,
        size: u64,
        policy: AllocPolicy,
    ) -> Result<TestFile, FixtureError> {
        let seed = self.next_seed;
        self.next_seed += 1;
        let (ino, entry) = self.with_writer(|w, map| -> Result<_, FixtureError> {
            let (ino, entry) = w.create(Path::new(path), size, FILE_ATTR, &policy)?;
            write_pattern(map, &entry, seed)?;
            Ok((ino, entry))
        })??;
        let f = TestFile {
            path: entry.path,
            ino,
            size,
            seed: Some(seed),
            policy,
            fmap: entry.fmap,
        };
        self.files.insert(f.path.clone(), f.clone());
        Ok(f)
    }

    /// Creates many files of `size` bytes in one writer session without writing their data
    /// (for metadata benchmarks); parents must exist.
    pub fn add_files_unwritten(
        &mut self,
        paths: impl IntoIterator<Item = String>,
        size: u64,
    ) -> Result<usize, FixtureError> {
        let created = self.with_writer(|w, _| -> Result<Vec<TestFile>, FixtureError> {
            let mut v = Vec::new();
            for p in paths {
                let (ino, e) =
                    w.create(Path::new(&p), size, FILE_ATTR, &AllocPolicy::Contiguous)?;
                v.push(TestFile {
                    path: e.path,
                    ino,
                    size,
                    seed: None,
                    policy: AllocPolicy::Contiguous,
                    fmap: e.fmap,
                });
            }
            Ok(v)
        })??;
        let n = created.len();
        for f in created {
            self.files.insert(f.path.clone(), f);
        }
        Ok(n)
    }

    /// The bytes a read of `path` at `off` for `len` bytes must return (clipped at the end of
    /// the file). Panics if the fixture did not create `path` with data: a test bug.
    pub fn expected(&self, path: impl AsRef<Path>, off: u64, len: u64) -> Vec<u8> {
        let f = self
            .files
            .get(path.as_ref())
            .unwrap_or_else(|| panic!("fixture has no file {}", path.as_ref().display()));
        let seed = f.seed.expect("file was created with data");
        let end = off.saturating_add(len).min(f.size);
        pattern::bytes(seed, off, end.saturating_sub(off) as usize)
    }

    /// Reads `len` device bytes at `off` (straight from the stand-in).
    pub fn read_device(&self, off: u64, len: usize) -> Result<Vec<u8>, FixtureError> {
        let map = DaxDevice::open(&self.path, Access::ReadOnly)?.map_all()?;
        let mut v = vec![0u8; len];
        map.read(off, &mut v)?;
        Ok(v)
    }

    /// XORs the device byte at `off` with `mask` (to corrupt the superblock, the log header,
    /// an entry...).
    pub fn corrupt(&self, off: u64, mask: u8) -> Result<(), FixtureError> {
        let map = self.map()?;
        let mut b = [0u8; 1];
        map.read(off, &mut b)?;
        b[0] ^= mask;
        map.write(off, &b)?;
        map.flush(off, 1)?;
        Ok(())
    }

    /// Appends a raw 544-byte entry built by `build(slot_index)` to the log, under the log lock,
    /// exactly as a (possibly hostile) master would: entry first, then the header counters.
    /// Returns the slot index.
    pub fn append_raw(
        &self,
        build: impl FnOnce(u64) -> Result<[u8; LOG_ENTRY_SIZE], FixtureError>,
    ) -> Result<u64, FixtureError> {
        let map = self.map()?;
        let fs = Famfs::open_device(
            &map,
            OpenOptions {
                system_uuid: Some(self.master),
                ..Default::default()
            },
        )?;
        let _lock = fs.log_media().lock_exclusive()?;
        let mut hb = [0u8; famfs_log::layout::LOG_HEADER_SIZE];
        map.read(LOG_OFFSET, &mut hb)
            .map_err(FixtureError::Device)?;
        let h = LogHeader::parse(&hb).map_err(|e| FixtureError::Other(e.to_string()))?;
        let index = h.next_index;
        if index >= h.slots() {
            return Err(FixtureError::Other("log full".into()));
        }
        let bytes = build(index)?;
        let at = LOG_OFFSET + famfs_log::layout::entry_offset(index);
        map.write(at, &bytes)?;
        map.flush(at, LOG_ENTRY_SIZE)?;
        let next = LogHeader {
            next_seqnum: index + 1,
            next_index: index + 1,
            ..h
        };
        map.write(LOG_OFFSET + COUNTERS_OFFSET, &next.counter_bytes())?;
        map.flush(LOG_OFFSET, famfs_log::layout::LOG_HEADER_SIZE)?;
        Ok(index)
    }
}

/// Writes the pattern with `seed` over the whole of a freshly created file.
fn write_pattern(map: &Mapping, entry: &FileEntry, seed: u64) -> Result<(), FixtureError> {
    let view = FileView::new(map, &entry.fmap)?;
    let size = entry.size();
    let mut buf = vec![0u8; (8 << 20).min(size as usize)];
    let mut off = 0u64;
    while off < size {
        let n = (size - off).min(buf.len() as u64) as usize;
        pattern::fill(seed, off, &mut buf[..n]);
        view.write_at(off, &buf[..n])?;
        off += n as u64;
    }
    view.flush(0, size)?;
    Ok(())
}

/// The 544 bytes of a FILE entry in slot `index` with an arbitrary (even invalid) path and
/// simple extents `(offset, len)`, CRC and seqnum correct: what a buggy or hostile master could
/// write. The path may be anything up to 79 bytes without NUL, e.g. `b"../escape"`.
pub fn raw_file_entry(
    index: u64,
    path: &[u8],
    size: u64,
    extents: &[(u64, u64)],
) -> Result<[u8; LOG_ENTRY_SIZE], FixtureError> {
    if path.is_empty() || path.len() > 79 || path.contains(&0) {
        return Err(FixtureError::Other(format!(
            "path of {} bytes cannot be stored",
            path.len()
        )));
    }
    // Encode with a valid placeholder of the same length, then swap the path in.
    let placeholder = vec![b'P'; path.len()];
    let entry = LogEntry::File(FileEntry {
        path: PathBuf::from(std::ffi::OsStr::from_bytes(&placeholder)),
        flags: FM_ALL_HOSTS_RW,
        uid: FILE_ATTR.uid,
        gid: FILE_ATTR.gid,
        mode: FILE_ATTR.mode,
        fmap: Fmap::simple(
            size,
            extents.iter().map(|&(o, l)| Extent::new(0, o, l)).collect(),
        ),
    });
    let mut bytes = entry
        .encode(index)
        .map_err(|e| FixtureError::Other(e.to_string()))?;
    let at = bytes
        .windows(path.len() + 1)
        .position(|w| w[..path.len()] == placeholder[..] && w[path.len()] == 0)
        .ok_or_else(|| FixtureError::Other("placeholder path not found".into()))?;
    bytes[at..at + path.len()].copy_from_slice(path);
    let crc = u64::from(famfs_log::layout::crc32(&bytes[..LOG_ENTRY_CRC_LEN]));
    bytes[LOG_ENTRY_CRC_LEN..].copy_from_slice(&crc.to_le_bytes());
    Ok(bytes)
}
