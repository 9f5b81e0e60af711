//! [`OffsetMedia`]: a window onto part of another media (the log inside a device mapping).

use famfs_fsdev::{FsdevError, Media, MediaLock};

/// A view of part of another media: offset 0 here is `base` there.
#[derive(Debug)]
pub struct OffsetMedia<M> {
    inner: M,
    base: u64,
    len: u64,
}

impl<M: Media> OffsetMedia<M> {
    /// `[base, base + len)` of `inner`.
    pub fn new(inner: M, base: u64, len: u64) -> Result<Self, FsdevError> {
        if base.checked_add(len).is_none_or(|e| e > inner.size()) {
            return Err(FsdevError::BadRange {
                offset: base,
                len,
                size: inner.size(),
                why: "past the end of the media",
            });
        }
        Ok(OffsetMedia { inner, base, len })
    }

    /// The underlying media.
    pub fn inner(&self) -> &M {
        &self.inner
    }
}

impl<M: Media> Media for OffsetMedia<M> {
    fn size(&self) -> u64 {
        self.len
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), FsdevError> {
        self.bound(off, buf.len() as u64)?;
        self.inner.read_at(self.base + off, buf)
    }
    fn write_at(&self, off: u64, data: &[u8]) -> Result<(), FsdevError> {
        self.bound(off, data.len() as u64)?;
        self.inner.write_at(self.base + off, data)
    }
    fn flush(&self, off: u64, len: u64) -> Result<(), FsdevError> {
        self.bound(off, len)?;
        self.inner.flush(self.base + off, len)
    }
    fn invalidate(&self, off: u64, len: u64) -> Result<(), FsdevError> {
        self.bound(off, len)?;
        self.inner.invalidate(self.base + off, len)
    }
    fn lock_exclusive(&self) -> Result<MediaLock, FsdevError> {
        self.inner.lock_exclusive()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

impl<M: Media> OffsetMedia<M> {
    fn bound(&self, off: u64, len: u64) -> Result<(), FsdevError> {
        FsdevError::check_range(off, len, self.len, "outside the view")
    }
}
