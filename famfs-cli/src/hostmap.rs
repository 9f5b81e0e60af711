//! A shared read-only mapping of a host file (a file in a mounted famfs), for `flush` and
//! `chkread`. Bytes are only ever copied out, never borrowed: other hosts may change them.

use std::fs::File;
use std::num::NonZeroUsize;
use std::path::Path;
use std::ptr::NonNull;

use anyhow::{Context, Result};
use nix::sys::mman::{MapFlags, ProtFlags};

/// A `MAP_SHARED`, `PROT_READ` mapping of a whole file.
#[derive(Debug)]
pub struct HostMap {
    ptr: NonNull<u8>,
    len: usize,
}

impl HostMap {
    /// Map all of `file` (`path` for messages). Empty files cannot be mapped.
    pub fn new(file: &File, path: &Path) -> Result<HostMap> {
        let size = file
            .metadata()
            .with_context(|| format!("stat {}", path.display()))?
            .len();
        let len = usize::try_from(size).context("file too large to map")?;
        let nz = NonZeroUsize::new(len)
            .with_context(|| format!("{}: empty file, nothing to map", path.display()))?;
        // SAFETY: a fresh read-only shared mapping of an open file at an address the kernel
        // picks; it aliases no Rust object and lives until `Drop` unmaps it.
        let ptr = unsafe {
            nix::sys::mman::mmap(
                None,
                nz,
                ProtFlags::PROT_READ,
                MapFlags::MAP_SHARED,
                file,
                0,
            )
        }
        .with_context(|| format!("mmap {}", path.display()))?;
        Ok(HostMap {
            ptr: ptr.cast(),
            len,
        })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never: empty files are refused).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copy `[off, off + buf.len())` out (must be inside the mapping).
    pub fn read(&self, off: usize, buf: &mut [u8]) -> Result<()> {
        let end = off.checked_add(buf.len()).filter(|&e| e <= self.len);
        anyhow::ensure!(end.is_some(), "read outside the mapping");
        // SAFETY: the source range is inside the live mapping (checked) and cannot overlap the
        // Rust-owned buffer; bytes are copied, never referenced.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), buf.as_mut_ptr(), buf.len())
        };
        Ok(())
    }

    /// Write back the file's cache lines (so other hosts see what this host wrote).
    pub fn flush(&self) {
        // SAFETY: the whole range is the live mapping.
        unsafe { famfs_fsdev::cache::flush(self.ptr.as_ptr(), self.len) };
    }

    /// Drop the file's cached lines (so this host sees what other hosts wrote).
    pub fn invalidate(&self) {
        // SAFETY: the whole range is the live mapping.
        unsafe { famfs_fsdev::cache::invalidate(self.ptr.as_ptr(), self.len) };
    }
}

impl Drop for HostMap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping made in `new`; nothing borrows it.
        if let Err(e) = unsafe { nix::sys::mman::munmap(self.ptr.cast(), self.len) } {
            tracing::warn!("munmap failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_reads_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello famfs").unwrap();
        let f = File::open(&p).unwrap();
        let m = HostMap::new(&f, &p).unwrap();
        assert_eq!(m.len(), 11);
        let mut b = [0u8; 5];
        m.read(6, &mut b).unwrap();
        assert_eq!(&b, b"famfs");
        assert!(m.read(7, &mut b).is_err());
        m.flush();
        m.invalidate();
        std::fs::write(&p, b"").unwrap();
        assert!(HostMap::new(&File::open(&p).unwrap(), &p).is_err());
    }
}
