use std::path::PathBuf;

/// Errors from opening, mapping and accessing a device.
#[derive(Debug, thiserror::Error)]
pub enum FsdevError {
    /// The device path does not exist.
    #[error("{path}: no such device or file")]
    NotFound {
        /// The path that was opened.
        path: PathBuf,
    },
    /// The path exists but is neither a character device nor a regular file.
    #[error(
        "{path}: is a {found}; expected a dax character device (/dev/daxX.Y) or a regular file"
    )]
    WrongFileType {
        /// The path that was opened.
        path: PathBuf,
        /// What was found instead.
        found: &'static str,
    },
    /// A character device that is not a device-dax instance.
    #[error("{path}: character device {major}:{minor} is not a dax device (no {sysfs} in sysfs)")]
    NotDax {
        /// The path that was opened.
        path: PathBuf,
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
        /// The sysfs directory that was expected.
        sysfs: PathBuf,
    },
    /// The device is smaller than the minimum a famfs needs.
    #[error("{path}: device is too small: {size} bytes (at least {min} bytes needed)")]
    TooSmall {
        /// The path that was opened.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The minimum size in bytes.
        min: u64,
    },
    /// The device size is not a multiple of the 2 MiB allocation unit.
    #[error("{path}: size {size} is not a multiple of {align} bytes")]
    UnalignedSize {
        /// The path that was opened.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The required alignment.
        align: u64,
    },
    /// A range outside the device or the mapping, or misaligned for the device.
    #[error("range [{offset:#x}, +{len:#x}) is {why} (size {size:#x})")]
    BadRange {
        /// Start of the range.
        offset: u64,
        /// Length of the range.
        len: u64,
        /// Size of the device or mapping.
        size: u64,
        /// Why it was refused.
        why: &'static str,
    },
    /// The device no longer backs a mapped range (a stand-in file that shrank, a device torn
    /// down): the kernel refused the copy (EFAULT) where a CPU access would have been SIGBUS.
    #[error(
        "{path}: the device cannot be accessed at [{offset:#x}, +{len:#x}) ({source}): did it \
         shrink or go away?"
    )]
    Fault {
        /// The device path.
        path: PathBuf,
        /// Device offset of the range.
        offset: u64,
        /// Length of the range.
        len: u64,
        /// The OS error (EFAULT).
        #[source]
        source: std::io::Error,
    },
    /// A write through a read-only mapping or media.
    #[error("write refused: {0} is read-only")]
    ReadOnly(String),
    /// A sysfs attribute could not be read or parsed.
    #[error("{path}: cannot read sysfs attribute: {detail}")]
    Sysfs {
        /// The sysfs file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// An operating-system call failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// The operation (open, mmap, flock, ...).
        what: &'static str,
        /// The path it was applied to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl FsdevError {
    /// `Ok` when `[offset, offset + len)` lies within `[0, size)`; else [`FsdevError::BadRange`]
    /// saying `why` (e.g. "outside the file"). The bounds check of every [`Media`](crate::Media).
    pub fn check_range(offset: u64, len: u64, size: u64, why: &'static str) -> Result<(), Self> {
        match offset.checked_add(len) {
            Some(end) if end <= size => Ok(()),
            _ => Err(FsdevError::BadRange {
                offset,
                len,
                size,
                why,
            }),
        }
    }

    /// [`FsdevError::Io`]: operation `what` on `path` failed with `source`.
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FsdevError::Io {
            what,
            path: path.into(),
            source,
        }
    }

    /// The errno that best describes this error (for exit codes and FUSE replies).
    pub fn errno(&self) -> i32 {
        match self {
            FsdevError::NotFound { .. } => libc::ENOENT,
            FsdevError::WrongFileType { .. } | FsdevError::NotDax { .. } => libc::ENODEV,
            FsdevError::TooSmall { .. } | FsdevError::UnalignedSize { .. } => libc::EINVAL,
            FsdevError::BadRange { .. } => libc::ERANGE,
            FsdevError::ReadOnly(_) => libc::EROFS,
            FsdevError::Sysfs { .. } | FsdevError::Fault { .. } => libc::EIO,
            FsdevError::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_range_accepts_exactly_the_ranges_inside() {
        assert!(FsdevError::check_range(0, 10, 10, "x").is_ok());
        assert!(FsdevError::check_range(10, 0, 10, "x").is_ok());
        assert!(matches!(
            FsdevError::check_range(5, 6, 10, "outside"),
            Err(FsdevError::BadRange {
                offset: 5,
                len: 6,
                size: 10,
                why: "outside"
            })
        ));
        assert!(FsdevError::check_range(u64::MAX, 2, u64::MAX, "x").is_err());
        assert!(FsdevError::check_range(11, 0, 10, "x").is_err());
    }
}
