//! A fake proc tree for tests: the few files [`crate::Procfs`] reads (`<pid>/comm`,
//! `<pid>/fd/N` links, `<pid>/maps`, `self/mounts`), so that a device can be made "open",
//! "mapped" or "mounted" without another process.

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::Procfs;
use crate::mounts::escape;
use crate::parse::split_dev_t;

/// A directory laid out like `/proc`, with processes added by the test.
#[derive(Debug, Clone)]
pub struct FakeProc {
    root: PathBuf,
}

impl FakeProc {
    /// An empty proc tree at `dir` (created), with an empty mount table.
    pub fn new(dir: impl AsRef<Path>) -> io::Result<Self> {
        let root = dir.as_ref().to_path_buf();
        fs::create_dir_all(root.join("self"))?;
        fs::write(root.join("self/mounts"), "")?;
        Ok(FakeProc { root })
    }

    /// The tree's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A [`Procfs`] over this tree.
    pub fn procfs(&self) -> Procfs {
        Procfs::new(&self.root)
    }

    fn process(&self, pid: u32, comm: &str) -> io::Result<PathBuf> {
        let dir = self.root.join(pid.to_string());
        fs::create_dir_all(dir.join("fd"))?;
        fs::write(dir.join("comm"), format!("{comm}\n"))?;
        if !dir.join("maps").exists() {
            fs::write(dir.join("maps"), "")?;
        }
        Ok(dir)
    }

    /// Process `pid` (named `comm`) has `target` open as fd `fd`.
    pub fn open_fd(&self, pid: u32, comm: &str, fd: u32, target: &Path) -> io::Result<&Self> {
        let dir = self.process(pid, comm)?;
        std::os::unix::fs::symlink(target, dir.join("fd").join(fd.to_string()))?;
        Ok(self)
    }

    /// Process `pid` (named `comm`) maps 2 MiB of `file` at `start`; the line carries the
    /// file's device and inode, as the kernel writes it, and `shown_path` as its path.
    pub fn map(
        &self,
        pid: u32,
        comm: &str,
        start: u64,
        file: &Path,
        shown_path: &str,
    ) -> io::Result<&Self> {
        let dir = self.process(pid, comm)?;
        let m = fs::metadata(file)?;
        let (major, minor) = split_dev_t(m.dev());
        let line = format!(
            "{start:x}-{:x} rw-s 00000000 {major:02x}:{minor:02x} {:<26}{shown_path}\n",
            start + (2 << 20),
            m.ino()
        );
        fs::OpenOptions::new()
            .append(true)
            .open(dir.join("maps"))?
            .write_all(line.as_bytes())?;
        Ok(self)
    }

    /// Adds a line to the mount table.
    pub fn mount(&self, source: &Path, target: &Path, fstype: &str) -> io::Result<&Self> {
        let mut line = escape(source.as_os_str().as_bytes());
        line.push(b' ');
        line.extend(escape(target.as_os_str().as_bytes()));
        line.extend_from_slice(format!(" {fstype} rw,nosuid,nodev 0 0\n").as_bytes());
        fs::OpenOptions::new()
            .append(true)
            .open(self.root.join("self/mounts"))?
            .write_all(&line)?;
        Ok(self)
    }

    /// Empties the mount table.
    pub fn clear_mounts(&self) -> io::Result<&Self> {
        fs::write(self.root.join("self/mounts"), "")?;
        Ok(self)
    }

    /// Process `pid` exits.
    pub fn exit(&self, pid: u32) -> io::Result<&Self> {
        fs::remove_dir_all(self.root.join(pid.to_string()))?;
        Ok(self)
    }
}
