//! A shared mapping of a device range.

use std::fs::File;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

use nix::sys::mman::{MapFlags, ProtFlags};

use crate::{FsdevError, cache};

/// A `MAP_SHARED` window onto `[device_offset, device_offset + len)` of a device.
///
/// Offsets given to the methods are relative to the start of the mapping. All access goes
/// through copies: the memory may be written by another host at any time, so no Rust reference
/// into it is ever handed out.
#[derive(Debug)]
pub struct Mapping {
    file: Arc<File>,
    path: PathBuf,
    device_offset: u64,
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
    /// Whether [`Mapping::flush`] and [`Mapping::invalidate`] run the cache instructions: true
    /// for dax memory; false for a stand-in regular file, whose pages live in this host's page
    /// cache, coherent for every process and VM sharing the file (flushing 8 MiB of log there
    /// costs milliseconds and buys nothing).
    cache_maintenance: bool,
}

// SAFETY: the mapping is plain shared memory; all access is through raw-pointer copies that
// are valid from any thread, and the pointer stays valid until `Drop` unmaps it.
unsafe impl Send for Mapping {}
// SAFETY: as above; concurrent copies in or out of shared memory are the intended use (other
// hosts do the same), and no `&`/`&mut` to the bytes is ever created.
unsafe impl Sync for Mapping {}

impl Mapping {
    pub(crate) fn new(
        file: Arc<File>,
        path: &Path,
        device_offset: u64,
        len: u64,
        writable: bool,
    ) -> Result<Self, FsdevError> {
        let range_err = |why| FsdevError::BadRange {
            offset: device_offset,
            len,
            size: len,
            why,
        };
        let ulen = usize::try_from(len).map_err(|_| range_err("too large to map"))?;
        let nz = NonZeroUsize::new(ulen).ok_or_else(|| range_err("empty"))?;
        let off = libc::off_t::try_from(device_offset).map_err(|_| range_err("too far"))?;
        let prot = if writable {
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE
        } else {
            ProtFlags::PROT_READ
        };
        // SAFETY: a fresh shared mapping of an open file at an address of the kernel's choice;
        // it aliases no Rust object. Length and offset were checked by the caller.
        let ptr =
            unsafe { nix::sys::mman::mmap(None, nz, prot, MapFlags::MAP_SHARED, &*file, off) }
                .map_err(|e| FsdevError::io("mmap", path, e.into()))?;
        Ok(Mapping {
            file,
            path: path.to_path_buf(),
            device_offset,
            ptr: ptr.cast(),
            len: ulen,
            writable,
            cache_maintenance: true,
        })
    }

    /// A read-only shared mapping of all of `file` (`path` names it in messages): a host file
    /// such as a file in a mounted famfs, for `flush`/`chkread`. Empty files cannot be mapped.
    /// The mapping keeps its own descriptor (a duplicate of `file`'s).
    pub fn of_file(file: &File, path: &Path) -> Result<Self, FsdevError> {
        let size = file
            .metadata()
            .map_err(|e| FsdevError::io("stat", path, e))?
            .len();
        let own = file
            .try_clone()
            .map_err(|e| FsdevError::io("dup", path, e))?;
        Mapping::new(Arc::new(own), path, 0, size, false)
    }

    /// The same mapping without cache maintenance ([`Mapping::flush`] and
    /// [`Mapping::invalidate`] only check their range): for memory that is coherent anyway.
    pub(crate) fn without_cache_maintenance(mut self) -> Self {
        self.cache_maintenance = false;
        self
    }

    /// Whether flush and invalidate run cache instructions (false for a stand-in regular file).
    pub fn has_cache_maintenance(&self) -> bool {
        self.cache_maintenance
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never true for a mapping that exists).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Device offset of the first mapped byte.
    pub fn device_offset(&self) -> u64 {
        self.device_offset
    }

    /// Whether writes are allowed.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The device path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The device file this mapping came from.
    pub fn file(&self) -> &File {
        &self.file
    }

    fn check(&self, off: u64, len: usize) -> Result<usize, FsdevError> {
        let ok = usize::try_from(off)
            .ok()
            .filter(|o| o.checked_add(len).is_some_and(|end| end <= self.len));
        ok.ok_or(FsdevError::BadRange {
            offset: off,
            len: len as u64,
            size: self.len as u64,
            why: "outside the mapping",
        })
    }

    /// A raw pointer to `[off, off + len)` of the mapping after a bounds check, for handing the
    /// range to the kernel (e.g. `writev`) without copying. The pointer is valid while `self`
    /// lives; the bytes behind it may change at any time.
    pub fn raw_range(&self, off: u64, len: usize) -> Result<*const u8, FsdevError> {
        let o = self.check(off, len)?;
        // SAFETY: `o + len <= self.len`, so the result stays inside the mapping.
        Ok(unsafe { self.ptr.as_ptr().add(o) })
    }

    /// Copy `buf.len()` bytes starting at `off` out of the mapping.
    pub fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), FsdevError> {
        let o = self.check(off, buf.len())?;
        // SAFETY: the source range is inside the live mapping (checked) and cannot overlap a
        // Rust-owned buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(o), buf.as_mut_ptr(), buf.len())
        };
        Ok(())
    }

    /// Copy `data` into the mapping at `off`.
    pub fn write(&self, off: u64, data: &[u8]) -> Result<(), FsdevError> {
        if !self.writable {
            return Err(FsdevError::ReadOnly(self.path.display().to_string()));
        }
        let o = self.check(off, data.len())?;
        // SAFETY: the destination is inside the live, writable mapping (checked) and cannot
        // overlap `data`, which is Rust-owned memory.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(o), data.len())
        };
        Ok(())
    }

    /// Set `len` bytes at `off` to `byte`.
    pub fn fill(&self, off: u64, len: usize, byte: u8) -> Result<(), FsdevError> {
        if !self.writable {
            return Err(FsdevError::ReadOnly(self.path.display().to_string()));
        }
        let o = self.check(off, len)?;
        // SAFETY: the range is inside the live, writable mapping (checked).
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(o), byte, len) };
        Ok(())
    }

    /// Write back the cache lines of `[off, off + len)` so other hosts see them.
    pub fn flush(&self, off: u64, len: usize) -> Result<(), FsdevError> {
        let o = self.check(off, len)?;
        if self.cache_maintenance {
            // SAFETY: the range is inside the live mapping (checked).
            unsafe { cache::flush(self.ptr.as_ptr().add(o), len) };
        }
        Ok(())
    }

    /// Drop cached copies of `[off, off + len)` so the next read sees what other hosts wrote.
    pub fn invalidate(&self, off: u64, len: usize) -> Result<(), FsdevError> {
        let o = self.check(off, len)?;
        if self.cache_maintenance {
            // SAFETY: the range is inside the live mapping (checked).
            unsafe { cache::invalidate(self.ptr.as_ptr().add(o), len) };
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe exactly the mapping created in `new`, and no reference
        // into it can outlive `self`.
        if let Err(e) = unsafe { nix::sys::mman::munmap(self.ptr.cast(), self.len) } {
            tracing::warn!("munmap of {} failed: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{ALLOC_UNIT, DaxDevice};

    #[test]
    fn two_mappings_of_one_file_see_each_other() {
        let dev = DaxDevice::memfd("m", 8 * ALLOC_UNIT).unwrap();
        let a = dev.map_all().unwrap();
        let b = dev.map(ALLOC_UNIT, ALLOC_UNIT).unwrap();
        a.write(ALLOC_UNIT + 10, b"hello").unwrap();
        a.flush(ALLOC_UNIT + 10, 5).unwrap();
        let mut buf = [0u8; 5];
        b.invalidate(10, 5).unwrap();
        b.read(10, &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        assert_eq!(b.device_offset(), ALLOC_UNIT);
        assert!(b.read(ALLOC_UNIT - 2, &mut buf).is_err());
        assert!(b.write(u64::MAX, b"x").is_err());
        b.fill(0, 4, 0xaa).unwrap();
        a.read(ALLOC_UNIT, &mut buf[..4]).unwrap();
        assert_eq!(&buf[..4], &[0xaa; 4]);
    }

    #[test]
    fn whole_host_files_map_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello famfs").unwrap();
        let f = std::fs::File::open(&p).unwrap();
        let m = super::Mapping::of_file(&f, &p).unwrap();
        drop(f);
        assert_eq!(m.len(), 11);
        let mut b = [0u8; 5];
        m.read(6, &mut b).unwrap();
        assert_eq!(&b, b"famfs");
        assert!(m.read(7, &mut b).is_err());
        m.flush(0, m.len()).unwrap();
        m.invalidate(0, m.len()).unwrap();
        assert_eq!(m.write(0, b"x").unwrap_err().errno(), libc::EROFS);
        assert_eq!(m.file().metadata().unwrap().len(), 11, "its own descriptor");
        drop(m);
        std::fs::write(&p, b"").unwrap();
        let e = super::Mapping::of_file(&std::fs::File::open(&p).unwrap(), &p).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }

    #[test]
    fn read_only_mapping_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d");
        std::fs::File::create(&p)
            .unwrap()
            .set_len(8 * ALLOC_UNIT)
            .unwrap();
        let dev = DaxDevice::open(&p, crate::Access::ReadOnly).unwrap();
        let m = dev.map_all().unwrap();
        let e = m.write(0, b"x").unwrap_err();
        assert_eq!(e.errno(), libc::EROFS);
        let mut b = [1u8; 3];
        m.read(0, &mut b).unwrap();
        assert_eq!(b, [0; 3]);
    }
}
