//! The meta files of a mount as one media with device offsets: `.meta/.superblock` at 0 (the
//! 2 MiB superblock region) and `.meta/.log` right after it (the log), so that `mkfs` writes
//! the same bytes through the files as it writes on a mapped device.

use std::path::Path;

use famfs_fsdev::{FileMedia, FsdevError, Media, MediaLock};
use famfs_log::layout::LOG_OFFSET;

/// `.meta/.superblock` and `.meta/.log` of a mount, as device offsets `0..LOG_OFFSET + log`.
#[derive(Debug)]
pub struct MetaMedia {
    sb: FileMedia,
    log: FileMedia,
}

impl MetaMedia {
    /// Open the meta files of the mount at `root` (for writing with `write`).
    pub fn open(root: &Path, write: bool) -> Result<MetaMedia, FsdevError> {
        Ok(MetaMedia {
            sb: FileMedia::open(root.join(".meta/.superblock"), write)?,
            log: FileMedia::open(root.join(".meta/.log"), write)?,
        })
    }

    /// Run `f(file, offset in it, range of the request)` for each file a request of `len`
    /// bytes at device offset `off` touches.
    fn split(
        &self,
        off: u64,
        len: u64,
        mut f: impl FnMut(&FileMedia, u64, std::ops::Range<usize>) -> Result<(), FsdevError>,
    ) -> Result<(), FsdevError> {
        FsdevError::check_range(off, len, self.size(), "outside the meta files")?;
        let end = off + len;
        if off < LOG_OFFSET {
            let n = end.min(LOG_OFFSET) - off;
            f(&self.sb, off, 0..n as usize)?;
        }
        if end > LOG_OFFSET {
            let from = off.max(LOG_OFFSET);
            let skip = (from - off) as usize;
            f(&self.log, from - LOG_OFFSET, skip..len as usize)?;
        }
        Ok(())
    }
}

impl Media for MetaMedia {
    fn size(&self) -> u64 {
        LOG_OFFSET + self.log.size()
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), FsdevError> {
        self.split(off, buf.len() as u64, |m, at, r| m.read_at(at, &mut buf[r]))
    }
    fn write_at(&self, off: u64, data: &[u8]) -> Result<(), FsdevError> {
        self.split(off, data.len() as u64, |m, at, r| m.write_at(at, &data[r]))
    }
    fn flush(&self, off: u64, len: u64) -> Result<(), FsdevError> {
        self.split(off, len, |m, at, r| m.flush(at, r.len() as u64))
    }
    fn invalidate(&self, off: u64, len: u64) -> Result<(), FsdevError> {
        self.split(off, len, |m, at, r| m.invalidate(at, r.len() as u64))
    }
    fn lock_exclusive(&self) -> Result<MediaLock, FsdevError> {
        // Every writer of a famfs log takes the log's lock.
        self.log.lock_exclusive()
    }
    fn describe(&self) -> String {
        self.log.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_split_at_the_log() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".meta")).unwrap();
        let sb = dir.path().join(".meta/.superblock");
        let log = dir.path().join(".meta/.log");
        std::fs::File::create(&sb)
            .unwrap()
            .set_len(LOG_OFFSET)
            .unwrap();
        std::fs::File::create(&log).unwrap().set_len(8192).unwrap();
        let m = MetaMedia::open(dir.path(), true).unwrap();
        assert_eq!(m.size(), LOG_OFFSET + 8192);
        m.write_at(LOG_OFFSET - 3, b"abcdef").unwrap();
        let mut buf = [0u8; 6];
        m.read_at(LOG_OFFSET - 3, &mut buf).unwrap();
        assert_eq!(&buf, b"abcdef");
        let s = std::fs::read(&sb).unwrap();
        assert_eq!(&s[s.len() - 3..], b"abc");
        assert_eq!(&std::fs::read(&log).unwrap()[..3], b"def");
        assert!(
            m.write_at(LOG_OFFSET + 8190, b"xyz").is_err(),
            "past the log"
        );
        m.flush(0, m.size()).unwrap();
    }
}
