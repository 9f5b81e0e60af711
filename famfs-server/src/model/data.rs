//! File data: who may open a file for what, its map (GET_FMAP), the device ranges that hold a
//! READ, and writes in place (the master only; files never grow).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use famfs_fsdev::{FileView, Mapping};
use famfs_log::namespace::Ino;
use famfs_log::replay::{META_LOG_INO, META_SB_INO};
use famfs_log::role::Role;
use fuse_famfs_proto::fmap::FileType;
use fuse_famfs_proto::{Errno, Fmap};

use super::FileSystem;

type View = FileView<Arc<Mapping>>;

/// File views by inode, built on first use (a file's map never changes).
#[derive(Debug, Default)]
pub(super) struct ViewCache(RwLock<HashMap<Ino, Arc<View>>>);

fn errno_of(e: &famfs_fsdev::FsdevError) -> Errno {
    Errno::from_io(&std::io::Error::from_raw_os_error(e.errno()))
}

impl FileSystem {
    /// The open policy (OPEN with open(2) `flags`): regular files only; writing only on the
    /// master, and never the superblock.
    pub fn open_file(&self, ino: Ino, flags: u32) -> Result<(), Errno> {
        {
            let log = self.log.read();
            let n = log.state().namespace().get(ino).ok_or(Errno::ENOENT)?;
            if n.is_dir() {
                return Err(Errno::EISDIR);
            }
        }
        let writing = flags as i32 & libc::O_ACCMODE != libc::O_RDONLY;
        if writing && self.role != Role::Master {
            return Err(Errno::EROFS);
        }
        if writing && ino == META_SB_INO {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    /// The size of file `ino`.
    pub fn file_size(&self, ino: Ino) -> Result<u64, Errno> {
        let log = self.log.read();
        let n = log.state().namespace().get(ino).ok_or(Errno::ENOENT)?;
        Ok(n.as_file().ok_or(Errno::EISDIR)?.size)
    }

    /// LSEEK with `whence` `SEEK_DATA` or `SEEK_HOLE` from `offset`: famfs files have no
    /// holes, so data is where you are and the hole at the end.
    pub fn lseek(&self, ino: Ino, offset: u64, whence: u32) -> Result<u64, Errno> {
        let size = self.file_size(ino)?;
        if offset >= size {
            return Err(Errno::ENXIO);
        }
        match whence as i32 {
            libc::SEEK_DATA => Ok(offset),
            libc::SEEK_HOLE => Ok(size),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The map of file `ino` (its extents on the device and its size) and the file type
    /// GET_FMAP reports for it: the meta files are typed as such.
    pub fn fmap(&self, ino: Ino) -> Result<(FileType, Arc<Fmap>), Errno> {
        let log = self.log.read();
        let n = log.state().namespace().get(ino).ok_or(Errno::ENOENT)?;
        let f = n.as_file().ok_or(Errno::EISDIR)?;
        let file_type = match ino {
            META_SB_INO => FileType::Superblock,
            META_LOG_INO => FileType::Log,
            _ => FileType::Regular,
        };
        Ok((file_type, Arc::clone(&f.fmap)))
    }

    /// The view of file `ino`, built once and cached (files never change).
    fn view(&self, ino: Ino) -> Result<Arc<View>, Errno> {
        if let Some(v) = self
            .views
            .0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&ino)
        {
            return Ok(Arc::clone(v));
        }
        let (_, fmap) = self.fmap(ino)?;
        let view = FileView::new(Arc::clone(&self.map), &fmap).map_err(|e| {
            tracing::error!("file {ino}: {e}");
            Errno::EIO
        })?;
        let view = Arc::new(view);
        self.views
            .0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ino, Arc::clone(&view));
        Ok(view)
    }

    /// READ of `size` bytes (at most `Config::max_io`) at `off` of file `ino`: the
    /// `(mapping offset, length)` ranges of the device mapping that hold them, in file order,
    /// clipped at the end of the file.
    pub fn read(&self, ino: Ino, off: u64, size: u32) -> Result<Vec<(u64, u64)>, Errno> {
        let view = self.view(ino)?;
        let len = u64::from(size.min(self.cfg.max_io));
        Ok(view
            .segments(off, len)
            .map(|s| (s.map_offset, s.len))
            .collect())
    }

    /// WRITE of `data` at `off` of file `ino`, in place and flushed; returns the bytes
    /// written (clipped at the end of the file: files never grow). Only on the master, never
    /// to the superblock. A write to the log header shows the appended entry at once.
    pub fn write(&self, ino: Ino, off: u64, data: &[u8]) -> Result<u32, Errno> {
        if self.role != Role::Master {
            return Err(Errno::EROFS);
        }
        if ino == META_SB_INO {
            return Err(Errno::EPERM);
        }
        let view = self.view(ino)?;
        if !data.is_empty() && off >= view.size() {
            // famfs files are allocated once and never grow.
            return Err(Errno::EFBIG);
        }
        let n = view.write_at(off, data).map_err(|e| errno_of(&e))?;
        view.flush(off, n as u64).map_err(|e| errno_of(&e))?;
        if ino == META_LOG_INO && off < famfs_log::layout::LOG_HEADER_SIZE as u64 {
            // An append completes with the header counters: show the new entry right away.
            self.refresh();
        }
        Ok(n as u32)
    }
}
