//! How the library touches sysfs: a small trait so that tests can substitute a backend that
//! emulates the kernel's side effects (see the `fake` module), while the real backend is plain
//! file I/O.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Access to a sysfs tree. Paths are absolute (already joined with the sysfs root).
///
/// Only [`SysfsBackend::write`] has side effects; the reads default to plain file-system access,
/// which is also right for an emulated tree kept on disk.
pub trait SysfsBackend: Send + Sync + std::fmt::Debug {
    /// Writes `data` to an attribute in a single `write(2)`, as sysfs requires.
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()>;

    /// Reads an attribute's whole contents.
    fn read(&self, path: &Path) -> io::Result<String> {
        fs::read_to_string(path)
    }

    /// Reads a symbolic link.
    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        fs::read_link(path)
    }

    /// Resolves a path (realpath).
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        fs::canonicalize(path)
    }

    /// Lists a directory's entry names (unsorted).
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect()
    }

    /// Whether the path exists, without following a final symlink (lstat).
    fn exists(&self, path: &Path) -> bool {
        fs::symlink_metadata(path).is_ok()
    }

    /// Whether this backend emulates the kernel (a fake tree) rather than talking to one.
    fn is_emulated(&self) -> bool {
        false
    }
}

/// The real backend: plain file I/O on a live `/sys`.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealBackend;

impl SysfsBackend for RealBackend {
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut f = fs::OpenOptions::new().write(true).open(path)?;
        let n = f.write(data)?;
        if n != data.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write ({n} of {} bytes)", data.len()),
            ));
        }
        Ok(())
    }
}

/// Encodes a string the way libdaxctl writes attributes: the bytes plus a terminating NUL.
pub fn daxctl_encoding(value: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(value.len() + 1);
    v.extend_from_slice(value.as_bytes());
    v.push(0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_backend_writes_and_reports_errno() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("attr");
        fs::write(&p, "").unwrap();
        RealBackend.write(&p, &daxctl_encoding("dax0.0")).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"dax0.0\0");
        let err = RealBackend
            .write(&dir.path().join("missing"), b"x")
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(RealBackend.read_dir(dir.path()).unwrap(), vec!["attr"]);
        assert!(RealBackend.exists(&p));
    }
}
