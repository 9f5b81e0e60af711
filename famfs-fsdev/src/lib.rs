//! The device layer of famfs: open a dax character device (`/dev/daxX.Y`) or a stand-in
//! (a regular file or a memfd of the same shape), map ranges of it shared, and keep CPU caches
//! honest when the memory is shared with other hosts.
//!
//! * [`DaxDevice`] opens and inspects a device (size, alignment and [`DaxMode`] of a real dax
//!   device from daxctl-famfs, which owns sysfs; size from the file for a stand-in) and hands
//!   out [`Mapping`]s.
//! * [`Mapping`] is a `MAP_SHARED` window onto the device, or onto a whole host file
//!   ([`Mapping::of_file`]): the one mmap wrapper. Every access copies bytes in or out: no Rust
//!   reference into memory that another host may be writing is ever created, so callers parse
//!   copies, never live shared bytes. The copies are made by the kernel, so a range the device
//!   no longer backs (a stand-in that shrank) is an error ([`FsdevError::Fault`]), never SIGBUS.
//! * [`FileView`] is the kernel's fault path in user space: a file's bytes, read and written
//!   through its file map (resolved with `famfs-fmap`'s resolver) on a mapping.
//! * [`cache`] has the x86 cache-line write-back (`clwb`/`clflushopt`/`clflush` + `sfence`) and
//!   invalidate primitives used after metadata writes and before metadata reads.
//! * [`Media`] is the small byte-addressed interface the on-media format code (famfs-log) works
//!   against, implemented by [`Mapping`], by [`FileMedia`] (pread/pwrite on a file, used for the
//!   mounted `.meta` files) and by [`MemMedia`] (an in-memory device for tests).
//! * [`mounts`] parses the mount table: which famfs is mounted where, from which device
//!   (daxctl-famfs's parser, re-exported: it needs it to name the mount of a busy device).
#![deny(unsafe_op_in_unsafe_fn)]

pub mod cache;
mod device;
mod error;
mod file;
mod kcopy;
mod mapping;
mod media;
mod prefault;

/// A dax device's mode (devdax, famfs, system-ram), as [`DeviceKind::DaxChar`] reports it.
pub use daxctl_famfs::DaxMode;
pub use daxctl_famfs::mounts;
pub use device::{Access, DaxDevice, DeviceKind, MIN_DEVICE_SIZE};
pub use error::FsdevError;
pub use file::{FileView, Segment};
pub use mapping::Mapping;
pub use media::{FileMedia, Media, MediaLock, MemMedia};
pub use prefault::prefault_for_writing;

/// The famfs allocation unit and the alignment of every dax mapping: 2 MiB.
pub const ALLOC_UNIT: u64 = 2 * 1024 * 1024;

#[cfg(test)]
mod tests {
    /// A new `size`-byte file opened for reading and writing, in a temporary directory that
    /// lives as long as the first element.
    pub(crate) fn rw_file(size: u64) -> (tempfile::TempDir, std::path::PathBuf, std::fs::File) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let f = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        f.set_len(size).unwrap();
        (dir, p, f)
    }
}
