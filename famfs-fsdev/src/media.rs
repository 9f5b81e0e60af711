//! [`Media`]: the byte-addressed view of a device that the on-media format code works against.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use nix::fcntl::{Flock, FlockArg};

use crate::{FsdevError, Mapping};

/// Byte-addressed access to a famfs device, or to part of one.
///
/// Offsets are relative to the start of the media. Implementations exist for a device
/// [`Mapping`] (the usual case), for a [`FileMedia`] (pread/pwrite on a file, such as the
/// mounted `.meta/.log`) and for [`MemMedia`] (tests).
pub trait Media: Send + Sync {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Copy `buf.len()` bytes at `off` into `buf`.
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), FsdevError>;
    /// Copy `data` to `off`.
    fn write_at(&self, off: u64, data: &[u8]) -> Result<(), FsdevError>;
    /// Make `[off, off + len)` visible to other hosts (cache write-back + fence).
    fn flush(&self, off: u64, len: u64) -> Result<(), FsdevError>;
    /// Forget cached copies of `[off, off + len)` before reading what other hosts wrote.
    fn invalidate(&self, off: u64, len: u64) -> Result<(), FsdevError>;
    /// Take the exclusive writer lock of this media (blocking). Released when the guard drops.
    fn lock_exclusive(&self) -> Result<MediaLock, FsdevError>;
    /// A short description for messages (the device path).
    fn describe(&self) -> String;
}

macro_rules! forward_media {
    ($($t:ty),*) => {$(
        impl<M: Media + ?Sized> Media for $t {
            fn size(&self) -> u64 {
                (**self).size()
            }
            fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), FsdevError> {
                (**self).read_at(off, buf)
            }
            fn write_at(&self, off: u64, data: &[u8]) -> Result<(), FsdevError> {
                (**self).write_at(off, data)
            }
            fn flush(&self, off: u64, len: u64) -> Result<(), FsdevError> {
                (**self).flush(off, len)
            }
            fn invalidate(&self, off: u64, len: u64) -> Result<(), FsdevError> {
                (**self).invalidate(off, len)
            }
            fn lock_exclusive(&self) -> Result<MediaLock, FsdevError> {
                (**self).lock_exclusive()
            }
            fn describe(&self) -> String {
                (**self).describe()
            }
        }
    )*};
}

forward_media!(&M, Arc<M>, Box<M>);

/// Guard of [`Media::lock_exclusive`]; the lock is released on drop.
#[derive(Debug)]
pub struct MediaLock {
    _inner: LockInner,
}

#[derive(Debug)]
enum LockInner {
    Flock(#[allow(dead_code)] Flock<File>),
    Mem(#[allow(dead_code)] MemLockGuard),
}

fn flock_exclusive(file: &File, path: &Path) -> Result<MediaLock, FsdevError> {
    let dup = file
        .try_clone()
        .map_err(|e| FsdevError::io("dup", path, e))?;
    let lock = Flock::lock(dup, FlockArg::LockExclusive)
        .map_err(|(_, e)| FsdevError::io("flock", path, e.into()))?;
    Ok(MediaLock {
        _inner: LockInner::Flock(lock),
    })
}

fn usize_len(off: u64, len: u64) -> Result<usize, FsdevError> {
    usize::try_from(len).map_err(|_| FsdevError::BadRange {
        offset: off,
        len,
        size: 0,
        why: "too long",
    })
}

impl Media for Mapping {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), FsdevError> {
        self.read(off, buf)
    }
    fn write_at(&self, off: u64, data: &[u8]) -> Result<(), FsdevError> {
        self.write(off, data)
    }
    fn flush(&self, off: u64, len: u64) -> Result<(), FsdevError> {
        Mapping::flush(self, off, usize_len(off, len)?)
    }
    fn invalidate(&self, off: u64, len: u64) -> Result<(), FsdevError> {
        Mapping::invalidate(self, off, usize_len(off, len)?)
    }
    fn lock_exclusive(&self) -> Result<MediaLock, FsdevError> {
        flock_exclusive(self.file(), self.path())
    }
    fn describe(&self) -> String {
        self.path().display().to_string()
    }
}

/// A file accessed with `pread`/`pwrite` as media, e.g. the mounted `.meta/.log`.
///
/// Cache maintenance is the file system's business here, so [`Media::flush`] and
/// [`Media::invalidate`] do nothing; the lock is `flock(LOCK_EX)` on the file.
#[derive(Debug)]
pub struct FileMedia {
    file: File,
    path: PathBuf,
    size: u64,
    writable: bool,
}

impl FileMedia {
    /// Open `path` for reading, or for reading and writing.
    pub fn open(path: impl AsRef<Path>, writable: bool) -> Result<Self, FsdevError> {
        let path = path.as_ref().to_path_buf();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(writable)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => FsdevError::NotFound { path: path.clone() },
                _ => FsdevError::io("open", &path, e),
            })?;
        let size = file
            .metadata()
            .map_err(|e| FsdevError::io("stat", &path, e))?
            .len();
        Ok(FileMedia {
            file,
            path,
            size,
            writable,
        })
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    fn check(&self, off: u64, len: usize) -> Result<(), FsdevError> {
        FsdevError::check_range(off, len as u64, self.size, "outside the file")
    }
}

impl Media for FileMedia {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), FsdevError> {
        self.check(off, buf.len())?;
        self.file
            .read_exact_at(buf, off)
            .map_err(|e| FsdevError::io("read", &self.path, e))
    }
    fn write_at(&self, off: u64, data: &[u8]) -> Result<(), FsdevError> {
        if !self.writable {
            return Err(FsdevError::ReadOnly(self.path.display().to_string()));
        }
        self.check(off, data.len())?;
        self.file
            .write_all_at(data, off)
            .map_err(|e| FsdevError::io("write", &self.path, e))
    }
    fn flush(&self, _off: u64, _len: u64) -> Result<(), FsdevError> {
        Ok(())
    }
    fn invalidate(&self, _off: u64, _len: u64) -> Result<(), FsdevError> {
        Ok(())
    }
    fn lock_exclusive(&self) -> Result<MediaLock, FsdevError> {
        flock_exclusive(&self.file, &self.path)
    }
    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// An in-memory device for tests: a zero-filled buffer with a lock shared by its clones.
#[derive(Debug, Clone)]
pub struct MemMedia {
    bytes: Arc<Mutex<Vec<u8>>>,
    lock: Arc<(Mutex<bool>, Condvar)>,
}

#[derive(Debug)]
struct MemLockGuard(Arc<(Mutex<bool>, Condvar)>);

impl Drop for MemLockGuard {
    fn drop(&mut self) {
        let (m, cv) = &*self.0;
        *m.lock().unwrap_or_else(|p| p.into_inner()) = false;
        cv.notify_one();
    }
}

impl MemMedia {
    /// A zero-filled media of `size` bytes.
    pub fn new(size: usize) -> Self {
        MemMedia {
            bytes: Arc::new(Mutex::new(vec![0; size])),
            lock: Arc::new((Mutex::new(false), Condvar::new())),
        }
    }

    /// A copy of the current contents.
    pub fn snapshot(&self) -> Vec<u8> {
        self.bytes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn range(&self, off: u64, len: usize) -> Result<std::ops::Range<usize>, FsdevError> {
        let size = self.size();
        usize::try_from(off)
            .ok()
            .and_then(|o| Some(o..o.checked_add(len)?))
            .filter(|r| r.end as u64 <= size)
            .ok_or(FsdevError::BadRange {
                offset: off,
                len: len as u64,
                size,
                why: "outside the media",
            })
    }
}

impl Media for MemMedia {
    fn size(&self) -> u64 {
        self.bytes.lock().unwrap_or_else(|p| p.into_inner()).len() as u64
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), FsdevError> {
        let r = self.range(off, buf.len())?;
        buf.copy_from_slice(&self.bytes.lock().unwrap_or_else(|p| p.into_inner())[r]);
        Ok(())
    }
    fn write_at(&self, off: u64, data: &[u8]) -> Result<(), FsdevError> {
        let r = self.range(off, data.len())?;
        self.bytes.lock().unwrap_or_else(|p| p.into_inner())[r].copy_from_slice(data);
        Ok(())
    }
    fn flush(&self, off: u64, len: u64) -> Result<(), FsdevError> {
        self.range(off, usize_len(off, len)?).map(|_| ())
    }
    fn invalidate(&self, off: u64, len: u64) -> Result<(), FsdevError> {
        self.range(off, usize_len(off, len)?).map(|_| ())
    }
    fn lock_exclusive(&self) -> Result<MediaLock, FsdevError> {
        let (m, cv) = &*self.lock;
        let mut held = m.lock().unwrap_or_else(|p| p.into_inner());
        while *held {
            held = cv.wait(held).unwrap_or_else(|p| p.into_inner());
        }
        *held = true;
        Ok(MediaLock {
            _inner: LockInner::Mem(MemLockGuard(Arc::clone(&self.lock))),
        })
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ALLOC_UNIT, Access, DaxDevice};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    fn exercise(m: &dyn Media) {
        m.write_at(100, b"abc").unwrap();
        m.flush(100, 3).unwrap();
        m.invalidate(100, 3).unwrap();
        let mut b = [0u8; 3];
        m.read_at(100, &mut b).unwrap();
        assert_eq!(&b, b"abc");
        assert!(m.read_at(m.size() - 1, &mut b).is_err());
        assert!(m.write_at(m.size(), b"x").is_err());
        assert!(!m.describe().is_empty());
    }

    #[test]
    fn all_media_behave_alike() {
        exercise(&MemMedia::new(4096));
        let dev = DaxDevice::memfd("x", 8 * ALLOC_UNIT).unwrap();
        exercise(&dev.map_all().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![0u8; 4096]).unwrap();
        exercise(&FileMedia::open(&p, true).unwrap());
        let ro = FileMedia::open(&p, false).unwrap();
        assert_eq!(ro.write_at(0, b"x").unwrap_err().errno(), libc::EROFS);
    }

    fn lock_excludes(a: Arc<dyn Media>, b: Arc<dyn Media>) {
        let inside = Arc::new(AtomicU32::new(0));
        let guard = a.lock_exclusive().unwrap();
        let t = {
            let inside = Arc::clone(&inside);
            std::thread::spawn(move || {
                let _g = b.lock_exclusive().unwrap();
                inside.store(1, Ordering::SeqCst);
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(inside.load(Ordering::SeqCst), 0, "second locker got in");
        drop(guard);
        t.join().unwrap();
        assert_eq!(inside.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn locks_exclude_each_other() {
        let m = MemMedia::new(64);
        lock_excludes(Arc::new(m.clone()), Arc::new(m));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dev");
        std::fs::File::create(&p)
            .unwrap()
            .set_len(8 * ALLOC_UNIT)
            .unwrap();
        // Two separate opens of the same device: flock excludes across open file descriptions.
        let a = DaxDevice::open(&p, Access::ReadWrite).unwrap();
        let b = DaxDevice::open(&p, Access::ReadWrite).unwrap();
        lock_excludes(
            Arc::new(a.map_all().unwrap()),
            Arc::new(b.map_all().unwrap()),
        );
        lock_excludes(
            Arc::new(FileMedia::open(&p, true).unwrap()),
            Arc::new(FileMedia::open(&p, true).unwrap()),
        );
    }
}
