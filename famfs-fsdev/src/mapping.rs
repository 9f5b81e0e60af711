//! A shared mapping of a device range, and the one place where this process touches it.
//!
//! Shared memory can fault at any time: a stand-in file truncated by someone else, a dax device
//! torn down. A fault on a CPU access is SIGBUS, which kills the process; so no byte of a
//! mapping is ever copied by the CPU here. Copies in and out are made by the kernel on our behalf
//! (`process_vm_readv`/`process_vm_writev` on this process, see `kcopy`), which turns a fault
//! into [`FsdevError::Fault`]. The only instructions that touch the mapping directly are the
//! cache-line flushes of [`Mapping::flush`] and [`Mapping::invalidate`]; they run only on memory
//! that can be shared with other hosts (a dax device, or a file mapped with
//! [`Mapping::of_file`]), after the kernel has brought every page of the range in, and are
//! skipped on a stand-in (a regular file or memfd lives in the page cache, coherent for every
//! process of the host). The one window left is a dax device torn down between that check and
//! the flush itself. [`Mapping::raw_range`] hands ranges to the kernel (`writev`), which faults
//! the same way: EFAULT, never SIGBUS.

use std::fs::File;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

use nix::sys::mman::{MapFlags, ProtFlags};

use crate::{FsdevError, cache, kcopy};

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
    /// Whether the memory may be shared with other hosts, so CPU caches need maintenance.
    cache_ops: bool,
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
        cache_ops: bool,
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
            cache_ops,
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
        Mapping::new(Arc::new(own), path, 0, size, false, true)
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
    /// lives; the bytes behind it may change at any time, and may fault: never access them
    /// with the CPU (the kernel turns a fault into EFAULT).
    pub fn raw_range(&self, off: u64, len: usize) -> Result<*const u8, FsdevError> {
        let o = self.check(off, len)?;
        // SAFETY: `o + len <= self.len`, so the result stays inside the mapping.
        Ok(unsafe { self.ptr.as_ptr().add(o) })
    }

    /// The error for a fault at `[off, off + len)` of the mapping.
    fn fault(&self, off: usize, len: usize, e: std::io::Error) -> FsdevError {
        let err = FsdevError::Fault {
            path: self.path.clone(),
            offset: self.device_offset + off as u64,
            len: len as u64,
            source: e,
        };
        tracing::debug!("{err}");
        err
    }

    fn check_writable(&self) -> Result<(), FsdevError> {
        if self.writable {
            Ok(())
        } else {
            Err(FsdevError::ReadOnly(self.path.display().to_string()))
        }
    }

    /// Copy `buf.len()` bytes starting at `off` out of the mapping. A range the device no longer
    /// backs (a stand-in that shrank, a device torn down) is [`FsdevError::Fault`].
    pub fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), FsdevError> {
        let o = self.check(off, buf.len())?;
        // SAFETY: the source range is inside the live mapping (checked); the kernel copies it
        // into `buf`, which is Rust-owned and cannot overlap it.
        unsafe { kcopy::read(self.ptr.as_ptr().add(o), buf) }
            .map_err(|e| self.fault(o, buf.len(), e))
    }

    /// Copy `data` into the mapping at `off` ([`FsdevError::Fault`] as for [`Mapping::read`]).
    pub fn write(&self, off: u64, data: &[u8]) -> Result<(), FsdevError> {
        self.check_writable()?;
        let o = self.check(off, data.len())?;
        // SAFETY: the destination is inside the live, writable mapping (checked); the kernel
        // copies `data`, Rust-owned memory that cannot overlap it, into it.
        unsafe { kcopy::write(self.ptr.as_ptr().add(o), data) }
            .map_err(|e| self.fault(o, data.len(), e))
    }

    /// Set `len` bytes at `off` to `byte`.
    pub fn fill(&self, off: u64, len: usize, byte: u8) -> Result<(), FsdevError> {
        self.check_writable()?;
        let o = self.check(off, len)?;
        // SAFETY: the range is inside the live, writable mapping (checked).
        unsafe { kcopy::fill(self.ptr.as_ptr().add(o), len, byte) }
            .map_err(|e| self.fault(o, len, e))
    }

    /// Run cache operation `op` over `[off, off + len)` if this memory needs it, after the
    /// kernel has brought every page of the range in.
    fn cache_op(
        &self,
        off: u64,
        len: usize,
        op: unsafe fn(*const u8, usize),
    ) -> Result<(), FsdevError> {
        let o = self.check(off, len)?;
        if !self.cache_ops {
            return Ok(());
        }
        // SAFETY: the range is inside the live mapping (checked).
        let p = unsafe { self.ptr.as_ptr().add(o) };
        // SAFETY: as above; the kernel reads one byte of each page, faults are errors.
        unsafe { kcopy::probe(p, len) }.map_err(|e| self.fault(o, len, e))?;
        // SAFETY: the range is inside the live mapping and every page of it is present (just
        // probed); `op` only touches cache state.
        unsafe { op(p, len) };
        Ok(())
    }

    /// Write back the cache lines of `[off, off + len)` so other hosts see them (nothing to do
    /// on a stand-in, whose page cache every process shares).
    pub fn flush(&self, off: u64, len: usize) -> Result<(), FsdevError> {
        self.cache_op(off, len, cache::flush)
    }

    /// Drop cached copies of `[off, off + len)` so the next read sees what other hosts wrote
    /// (nothing to do on a stand-in).
    pub fn invalidate(&self, off: u64, len: usize) -> Result<(), FsdevError> {
        self.cache_op(off, len, cache::invalidate)
    }

    /// Whether [`Mapping::flush`] and [`Mapping::invalidate`] run cache-line instructions: on
    /// memory other hosts may share, not on a stand-in.
    pub fn has_cache_ops(&self) -> bool {
        self.cache_ops
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
    fn a_shrunken_stand_in_gives_errors_not_sigbus() {
        let (_dir, p, f) = crate::tests::rw_file(8 * ALLOC_UNIT);
        let dev = DaxDevice::open(&p, crate::Access::ReadWrite).unwrap();
        let m = dev.map_all().unwrap();
        assert!(!m.has_cache_ops(), "a stand-in needs no cache maintenance");
        m.write(5 * ALLOC_UNIT, b"before").unwrap();
        f.set_len(ALLOC_UNIT).unwrap();
        let mut b = [0u8; 6];
        for e in [
            m.read(5 * ALLOC_UNIT, &mut b).unwrap_err(),
            m.write(5 * ALLOC_UNIT, b"after").unwrap_err(),
            m.write(ALLOC_UNIT - 2, b"straddles").unwrap_err(),
            m.fill(3 * ALLOC_UNIT, 10, 0).unwrap_err(),
        ] {
            assert!(matches!(e, crate::FsdevError::Fault { .. }), "{e}");
            assert_eq!(e.errno(), libc::EIO);
            assert!(e.to_string().contains("cannot be accessed"), "{e}");
        }
        // Inside the new size all is well.
        m.write(100, b"inside").unwrap();
        m.read(100, &mut b).unwrap();
        assert_eq!(&b, b"inside");
        m.flush(0, m.len()).unwrap();
        m.invalidate(0, m.len()).unwrap();
        // A whole-file mapping (which may be shared memory) probes before flushing.
        let ro = super::Mapping::of_file(&f, &p).unwrap();
        assert!(ro.has_cache_ops());
        ro.invalidate(0, ro.len()).unwrap();
        drop(dev);
        f.set_len(4096).unwrap();
        let e = ro.invalidate(0, ro.len()).unwrap_err();
        assert!(matches!(e, crate::FsdevError::Fault { .. }), "{e}");
        assert!(ro.flush(ALLOC_UNIT / 2, 64).is_err());
        ro.flush(0, 4096).unwrap();
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
