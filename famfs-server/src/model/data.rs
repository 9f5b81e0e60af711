//! File data: who may open a file for what, its map (GET_FMAP), the device ranges that hold a
//! READ, and writes in place (the master only; files never grow). A write the device refuses
//! (it shrank or went away: the mapping reports a fault, never SIGBUS) is EIO, logged.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use famfs_fsdev::{FileView, Mapping};
use famfs_log::namespace::{Ino, Node};
use famfs_log::replay::{META_LOG_INO, META_SB_INO};
use famfs_log::role::Role;
use fuse_famfs_proto::fmap::FileType;
use fuse_famfs_proto::{Errno, Fmap};

use super::FileSystem;

type View = FileView<Arc<Mapping>>;

/// File views by inode, built on first use (a file's map never changes), with the generation
/// of the tree they were built from.
#[derive(Debug, Default)]
pub(super) struct ViewCache(RwLock<HashMap<Ino, (u64, Arc<View>)>>);

impl ViewCache {
    /// Forget every view (the tree was replaced).
    pub(super) fn clear(&self) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// The map of file node `n` (inode `ino`) and its GET_FMAP file type (the meta files are
/// typed as such).
fn typed_fmap(ino: Ino, n: &Node) -> Result<(FileType, Arc<Fmap>), Errno> {
    let f = n.as_file().ok_or(Errno::EISDIR)?;
    let file_type = match ino {
        META_SB_INO => FileType::Superblock,
        META_LOG_INO => FileType::Log,
        _ => FileType::Regular,
    };
    Ok((file_type, Arc::clone(&f.fmap)))
}

fn errno_of(e: &famfs_fsdev::FsdevError) -> Errno {
    Errno::from_io(&std::io::Error::from_raw_os_error(e.errno()))
}

impl FileSystem {
    /// The open policy (OPEN with open(2) `flags`): regular files only; writing only on the
    /// master, and never the superblock.
    pub fn open_file(&self, ino: Ino, flags: u32) -> Result<(), Errno> {
        let is_dir = match self.meta.node(ino) {
            Some(n) => n.is_dir(),
            None => self.log()?.node(ino)?.is_dir(),
        };
        if is_dir {
            return Err(Errno::EISDIR);
        }
        let writing = flags as i32 & libc::O_ACCMODE != libc::O_RDONLY;
        if writing && self.formatting {
            return Ok(());
        }
        if writing && self.role() != Role::Master {
            return Err(Errno::EROFS);
        }
        if writing && ino == META_SB_INO {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    /// The size of file `ino`.
    pub fn file_size(&self, ino: Ino) -> Result<u64, Errno> {
        if let Some(n) = self.meta.node(ino) {
            return Ok(n.as_file().ok_or(Errno::EISDIR)?.size);
        }
        let log = self.log()?;
        let n = log.node(ino)?;
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
        if let Some(n) = self.meta.node(ino) {
            return typed_fmap(ino, &n);
        }
        let log = self.log()?;
        typed_fmap(ino, log.node(ino)?)
    }

    /// Run `f` on the view of file `ino` in the tree being served, which stays served while `f`
    /// runs (a tree swapped in after a rewritten log waits): an inode of a replaced tree is
    /// ESTALE here, so its extents are never touched. Views are built once per tree and cached
    /// (a file's map never changes).
    fn with_view<R>(&self, ino: Ino, f: impl FnOnce(&View) -> R) -> Result<R, Errno> {
        if !self.mapped {
            // A famfs-mode device: only the kernel reaches file data (GET_FMAP).
            tracing::error!("file {ino}: READ or WRITE on an unmapped (famfs-mode) device");
            return Err(Errno::EIO);
        }
        if let Some(n) = self.meta.node(ino) {
            // The meta files: never the tree's lock (the daemon's own reads come here).
            let (_, fmap) = typed_fmap(ino, &n)?;
            let view = FileView::new(Arc::clone(&self.map), &fmap).map_err(|e| {
                tracing::error!("file {ino}: {e}");
                Errno::EIO
            })?;
            return Ok(f(&view));
        }
        let log = self.log()?;
        let node = log.node(ino)?;
        let generation = log.generation();
        if let Some((g, v)) = self
            .views
            .0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&ino)
            && *g == generation
        {
            return Ok(f(v));
        }
        let (_, fmap) = typed_fmap(ino, node)?;
        let view = FileView::new(Arc::clone(&self.map), &fmap).map_err(|e| {
            tracing::error!("file {ino}: {e}");
            Errno::EIO
        })?;
        let view = Arc::new(view);
        self.views
            .0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ino, (generation, Arc::clone(&view)));
        Ok(f(&view))
    }

    /// READ of `size` bytes (at most `Config::max_io`) at `off` of file `ino`: the
    /// `(mapping offset, length)` ranges of the device mapping that hold them, in file order,
    /// clipped at the end of the file.
    pub fn read(&self, ino: Ino, off: u64, size: u32) -> Result<Vec<(u64, u64)>, Errno> {
        let len = u64::from(size.min(self.cfg.max_io));
        self.with_view(ino, |view| {
            view.segments(off, len)
                .map(|s| (s.map_offset, s.len))
                .collect()
        })
    }

    /// WRITE of `data` at `off` of file `ino`, in place and flushed; returns the bytes
    /// written (clipped at the end of the file: files never grow). Only on the master, never
    /// to the superblock. A write to the log header shows the appended entry at once.
    pub fn write(&self, ino: Ino, off: u64, data: &[u8]) -> Result<u32, Errno> {
        if !self.formatting && self.role() != Role::Master {
            return Err(Errno::EROFS);
        }
        if !self.formatting && ino == META_SB_INO {
            return Err(Errno::EPERM);
        }
        let n = self.with_view(ino, |view| {
            if !data.is_empty() && off >= view.size() {
                // famfs files are allocated once and never grow.
                return Err(Errno::EFBIG);
            }
            let failed = |e: famfs_fsdev::FsdevError| {
                tracing::error!("file {ino}: write of {} bytes at {off}: {e}", data.len());
                errno_of(&e)
            };
            let n = view.write_at(off, data).map_err(failed)?;
            view.flush(off, n as u64).map_err(failed)?;
            Ok(n)
        })??;
        if ino == META_LOG_INO && off < famfs_log::layout::LOG_HEADER_SIZE as u64 {
            // An append completes with the header counters: show the new entry right away.
            self.refresh_from_handler();
        }
        Ok(n as u32)
    }
}
