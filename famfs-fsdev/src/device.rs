//! Opening a dax device or a stand-in file and finding its size and alignment.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use daxctl_famfs::{DaxMode, Sysfs};

use crate::{ALLOC_UNIT, FsdevError, Mapping};

/// Smallest device famfs can live on: the 2 MiB superblock, the minimum 8 MiB log, and one
/// 2 MiB allocation unit of data.
pub const MIN_DEVICE_SIZE: u64 = 2 * ALLOC_UNIT + 8 * 1024 * 1024;

/// Whether a device is opened for reading only or for reading and writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read-only: mappings are `PROT_READ`.
    ReadOnly,
    /// Read-write: mappings are `PROT_READ | PROT_WRITE`.
    ReadWrite,
}

/// What kind of object backs a [`DaxDevice`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceKind {
    /// A device-dax character device (`/dev/daxX.Y`).
    DaxChar {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
        /// The device's sysfs directory (`<sysfs>/dev/char/M:m`).
        sysfs_dir: PathBuf,
        /// Its mode when opened (from the bound driver). Only devdax mode can be mapped: a
        /// device in famfs mode (`fsdev_dax`) has no mmap.
        mode: DaxMode,
    },
    /// A regular file standing in for a device.
    File,
    /// An anonymous memory file (memfd).
    Memfd,
}

/// An open dax device or stand-in file.
#[derive(Debug, Clone)]
pub struct DaxDevice {
    file: Arc<File>,
    path: PathBuf,
    kind: DeviceKind,
    size: u64,
    align: u64,
    access: Access,
}

impl DaxDevice {
    /// Open `path` (a `/dev/daxX.Y` character device or a regular file), checking that it is
    /// at least [`MIN_DEVICE_SIZE`] bytes and a multiple of 2 MiB. A dax device's size,
    /// alignment and mode come from daxctl-famfs ([`Sysfs::from_env`]: `/sys`, or the root in
    /// `$DAXCTL_FAMFS_SYSFS_ROOT`).
    pub fn open(path: impl AsRef<Path>, access: Access) -> Result<Self, FsdevError> {
        Self::open_with_sysfs(path, access, &Sysfs::from_env())
    }

    /// As [`DaxDevice::open`], reading device attributes through `sysfs`.
    pub fn open_with_sysfs(
        path: impl AsRef<Path>,
        access: Access,
        sysfs: &Sysfs,
    ) -> Result<Self, FsdevError> {
        let path = path.as_ref().to_path_buf();
        let meta = std::fs::metadata(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => FsdevError::NotFound { path: path.clone() },
            _ => FsdevError::io("stat", &path, e),
        })?;
        let ft = meta.file_type();
        let (kind, size, align) = if ft.is_char_device() {
            let rdev = meta.rdev();
            let (major, minor) = (libc::major(rdev), libc::minor(rdev));
            let info = sysfs
                .chardev_info(major, minor)
                .map_err(|e| FsdevError::Sysfs {
                    path: sysfs.chardev_dir(major, minor),
                    detail: e.to_string(),
                })?
                .ok_or_else(|| FsdevError::NotDax {
                    path: path.clone(),
                    major,
                    minor,
                    sysfs: sysfs.chardev_dir(major, minor).join("size"),
                })?;
            (
                DeviceKind::DaxChar {
                    major,
                    minor,
                    sysfs_dir: info.sysfs_dir,
                    mode: info.mode,
                },
                info.size,
                info.align.unwrap_or(ALLOC_UNIT).max(ALLOC_UNIT),
            )
        } else if ft.is_file() {
            (DeviceKind::File, meta.len(), ALLOC_UNIT)
        } else {
            let found = if ft.is_dir() {
                "directory"
            } else if ft.is_block_device() {
                "block device"
            } else if ft.is_fifo() {
                "fifo"
            } else if ft.is_socket() {
                "socket"
            } else {
                "special file"
            };
            return Err(FsdevError::WrongFileType { path, found });
        };
        let file = OpenOptions::new()
            .read(true)
            .write(access == Access::ReadWrite)
            .open(&path)
            .map_err(|e| FsdevError::io("open", &path, e))?;
        Self::checked(file, path, kind, size, align, access)
    }

    /// Create an anonymous in-memory device of `size` bytes (a memfd, zero-filled).
    pub fn memfd(name: &str, size: u64) -> Result<Self, FsdevError> {
        let cname = if name.contains('\0') { "famfs" } else { name };
        let fd = nix::sys::memfd::memfd_create(cname, nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| FsdevError::io("memfd_create", name, e.into()))?;
        let file = File::from(fd);
        file.set_len(size)
            .map_err(|e| FsdevError::io("ftruncate", name, e))?;
        Self::checked(
            file,
            PathBuf::from(format!("memfd:{name}")),
            DeviceKind::Memfd,
            size,
            ALLOC_UNIT,
            Access::ReadWrite,
        )
    }

    fn checked(
        file: File,
        path: PathBuf,
        kind: DeviceKind,
        size: u64,
        align: u64,
        access: Access,
    ) -> Result<Self, FsdevError> {
        if size < MIN_DEVICE_SIZE {
            return Err(FsdevError::TooSmall {
                path,
                size,
                min: MIN_DEVICE_SIZE,
            });
        }
        if !size.is_multiple_of(ALLOC_UNIT) {
            return Err(FsdevError::UnalignedSize {
                path,
                size,
                align: ALLOC_UNIT,
            });
        }
        Ok(DaxDevice {
            file: Arc::new(file),
            path,
            kind,
            size,
            align,
            access,
        })
    }

    /// The path the device was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What backs the device.
    pub fn kind(&self) -> &DeviceKind {
        &self.kind
    }

    /// Whether this is a dax device in famfs mode (bound to fsdev_dax): a famfs kernel maps
    /// files onto it, and it cannot be memory-mapped. A stand-in file never is.
    pub fn is_famfs_mode(&self) -> bool {
        matches!(
            self.kind,
            DeviceKind::DaxChar {
                mode: DaxMode::Famfs,
                ..
            }
        )
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Mapping alignment in bytes (the dax device's `align`, at least 2 MiB).
    pub fn align(&self) -> u64 {
        self.align
    }

    /// How the device was opened.
    pub fn access(&self) -> Access {
        self.access
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Map `[offset, offset + len)` of the device, shared. `offset` and `len` must be multiples
    /// of [`DaxDevice::align`] (dax devices refuse anything else) and inside the device.
    pub fn map(&self, offset: u64, len: u64) -> Result<Mapping, FsdevError> {
        let bad = |why| FsdevError::BadRange {
            offset,
            len,
            size: self.size,
            why,
        };
        if len == 0 {
            return Err(bad("empty"));
        }
        if !offset.is_multiple_of(self.align) || !len.is_multiple_of(self.align) {
            return Err(bad("not aligned to the device alignment"));
        }
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(bad("past the end of the device"));
        }
        Mapping::new(
            Arc::clone(&self.file),
            &self.path,
            offset,
            len,
            self.access == Access::ReadWrite,
            // A stand-in lives in the page cache, which every process of the host sees alike.
            !matches!(self.kind, DeviceKind::File),
        )
    }

    /// Map the whole device.
    pub fn map_all(&self) -> Result<Mapping, FsdevError> {
        self.map(0, self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn regular_file_size_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dev.img");
        let f = File::create(&p).unwrap();
        f.set_len(4 * GIB).unwrap();
        let dev = DaxDevice::open(&p, Access::ReadOnly).unwrap();
        assert_eq!(dev.size(), 4 * GIB);
        assert_eq!(dev.kind(), &DeviceKind::File);
        assert_eq!(dev.align(), ALLOC_UNIT);
        let m = dev.map(0, ALLOC_UNIT).unwrap();
        assert!(
            !m.has_cache_ops(),
            "a stand-in file's mapping skips cache flushes"
        );
        m.invalidate(0, m.len()).unwrap();
        assert!(
            m.invalidate(0, m.len() + 1).is_err(),
            "ranges still checked"
        );
        let mem = DaxDevice::memfd("t", 16 * ALLOC_UNIT).unwrap();
        assert!(mem.map_all().unwrap().has_cache_ops());

        f.set_len(4 * GIB + 4096).unwrap();
        let e = DaxDevice::open(&p, Access::ReadOnly).unwrap_err();
        assert!(matches!(e, FsdevError::UnalignedSize { .. }), "{e}");
        assert_eq!(e.errno(), libc::EINVAL);

        f.set_len(ALLOC_UNIT).unwrap();
        let e = DaxDevice::open(&p, Access::ReadOnly).unwrap_err();
        assert!(matches!(e, FsdevError::TooSmall { .. }), "{e}");
        assert!(e.to_string().contains("too small"));
    }

    #[test]
    fn missing_and_wrong_types() {
        let dir = tempfile::tempdir().unwrap();
        let e = DaxDevice::open(dir.path().join("nope"), Access::ReadOnly).unwrap_err();
        assert!(matches!(e, FsdevError::NotFound { .. }));
        assert_eq!(e.errno(), libc::ENOENT);
        let e = DaxDevice::open(dir.path(), Access::ReadOnly).unwrap_err();
        assert!(
            matches!(
                e,
                FsdevError::WrongFileType {
                    found: "directory",
                    ..
                }
            ),
            "{e}"
        );
        // /dev/null is a character device but not a dax device.
        let e = DaxDevice::open("/dev/null", Access::ReadOnly).unwrap_err();
        assert!(matches!(e, FsdevError::NotDax { .. }), "{e}");
    }

    #[test]
    fn char_device_size_align_and_mode_come_from_sysfs() {
        // Use /dev/null's major:minor with a fake sysfs that claims it is a dax device.
        let meta = std::fs::metadata("/dev/null").unwrap();
        let (ma, mi) = (libc::major(meta.rdev()), libc::minor(meta.rdev()));
        let root = tempfile::tempdir().unwrap();
        let sysfs = Sysfs::new(root.path());
        let e = DaxDevice::open_with_sysfs("/dev/null", Access::ReadOnly, &sysfs).unwrap_err();
        assert!(matches!(e, FsdevError::NotDax { .. }), "{e}");
        let d = root.path().join(format!("dev/char/{ma}:{mi}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("size"), "8589934592\n").unwrap();
        std::fs::write(d.join("align"), "2097152\n").unwrap();
        let dev = DaxDevice::open_with_sysfs("/dev/null", Access::ReadOnly, &sysfs).unwrap();
        assert_eq!(dev.size(), 8 * GIB);
        assert!(matches!(dev.kind(), DeviceKind::DaxChar { major, .. } if *major == ma));
        assert!(
            matches!(
                dev.kind(),
                DeviceKind::DaxChar {
                    mode: DaxMode::Disabled,
                    ..
                }
            ),
            "no driver link: unbound"
        );
        // Hex sizes are numbers too; the bound driver gives the mode.
        std::fs::write(d.join("size"), "0x200000000").unwrap();
        let drivers = root.path().join("bus/dax/drivers/fsdev_dax");
        std::fs::create_dir_all(&drivers).unwrap();
        std::os::unix::fs::symlink(&drivers, d.join("driver")).unwrap();
        let dev = DaxDevice::open_with_sysfs("/dev/null", Access::ReadOnly, &sysfs).unwrap();
        assert_eq!(dev.size(), 8 * GIB);
        assert!(dev.is_famfs_mode(), "{:?}", dev.kind());
        std::fs::write(d.join("size"), "garbage").unwrap();
        let e = DaxDevice::open_with_sysfs("/dev/null", Access::ReadOnly, &sysfs).unwrap_err();
        assert!(matches!(e, FsdevError::Sysfs { .. }), "{e}");
    }

    #[test]
    fn map_rejects_bad_ranges() {
        let dev = DaxDevice::memfd("t", 16 * ALLOC_UNIT).unwrap();
        assert!(dev.map(0, 0).is_err());
        assert!(dev.map(4096, ALLOC_UNIT).is_err());
        assert!(dev.map(0, 17 * ALLOC_UNIT).is_err());
        assert!(dev.map(u64::MAX - ALLOC_UNIT + 1, ALLOC_UNIT).is_err());
        assert!(dev.map(ALLOC_UNIT, ALLOC_UNIT).is_ok());
    }
}
