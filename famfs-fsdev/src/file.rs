//! The kernel's fault path in user space: reading and writing a famfs file's bytes through its
//! file map, straight from the device mapping — what a famfs-enabled kernel does on a fault,
//! and what the server and the CLI do on a stock kernel.

use famfs_fmap::{DevOffset, FileOffset, Fmap, Resolver};

use std::borrow::Borrow;
use std::sync::Arc;

use crate::{FsdevError, Mapping};

/// A file's bytes on a device mapping. `M` is how the mapping is held: `&Mapping`, or
/// `Arc<Mapping>` for views that outlive a scope (a server's open files).
#[derive(Debug, Clone)]
pub struct FileView<M: Borrow<Mapping> = Arc<Mapping>> {
    map: M,
    resolver: Resolver,
    size: u64,
}

/// One contiguous piece of a file range on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Offset in the file.
    pub file_offset: u64,
    /// Offset in the mapping (device offset minus the mapping's start).
    pub map_offset: u64,
    /// Length in bytes.
    pub len: u64,
}

impl<M: Borrow<Mapping>> FileView<M> {
    /// A view of the file described by `fmap` on `map`. Refuses maps that reference another
    /// device than 0, whose geometry cannot be served (see [`Fmap::check_geometry`]), or that
    /// reach outside the mapping — so no file byte can ever resolve outside its extents or the
    /// device.
    pub fn new(map: M, fmap: &Fmap) -> Result<Self, FsdevError> {
        let m: &Mapping = map.borrow();
        let bad = |offset: u64, len: u64, why| FsdevError::BadRange {
            offset,
            len,
            size: m.len() as u64,
            why,
        };
        fmap.check_geometry()
            .map_err(|_| bad(0, fmap.file_size, "a file map the resolver cannot serve"))?;
        let start = m.device_offset();
        let end = start + m.len() as u64;
        for e in fmap.ranges() {
            if e.dev_index != 0 {
                return Err(bad(e.offset, e.len, "on a device other than device 0"));
            }
            if e.offset < start || e.offset.checked_add(e.len).is_none_or(|x| x > end) {
                return Err(bad(e.offset, e.len, "outside the device mapping"));
            }
        }
        Ok(FileView {
            map,
            resolver: fmap.resolver(),
            size: fmap.file_size,
        })
    }

    /// File size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The mapping.
    pub fn mapping(&self) -> &Mapping {
        self.map.borrow()
    }

    /// The device pieces of file range `[off, off + len)`, clipped to the file size.
    pub fn segments(&self, off: u64, len: u64) -> impl Iterator<Item = Segment> + '_ {
        let end = off.saturating_add(len).min(self.size);
        let base = self.mapping().device_offset();
        let mut pos = off;
        std::iter::from_fn(move || {
            if pos >= end {
                return None;
            }
            let r = self.resolver.resolve(FileOffset(pos))?;
            let n = r.contiguous_len.min(end - pos);
            let DevOffset(dev_offset) = r.dev_offset;
            let seg = Segment {
                file_offset: pos,
                map_offset: dev_offset - base,
                len: n,
            };
            pos += n;
            Some(seg)
        })
    }

    /// Read from file offset `off` into `buf`, as a read(2) would: clipped at the end of the
    /// file; returns the number of bytes read.
    pub fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, FsdevError> {
        let mut done = 0usize;
        for s in self.segments(off, buf.len() as u64) {
            let n = s.len as usize;
            self.mapping()
                .read(s.map_offset, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(done)
    }

    /// Write `data` at file offset `off`: clipped at the end of the file (famfs files never
    /// grow); returns the number of bytes written.
    pub fn write_at(&self, off: u64, data: &[u8]) -> Result<usize, FsdevError> {
        let mut done = 0usize;
        for s in self.segments(off, data.len() as u64) {
            let n = s.len as usize;
            self.mapping().write(s.map_offset, &data[done..done + n])?;
            done += n;
        }
        Ok(done)
    }

    /// Write back the cache lines of file range `[off, off + len)` (after writing data that
    /// other hosts will read).
    pub fn flush(&self, off: u64, len: u64) -> Result<(), FsdevError> {
        for s in self.segments(off, len) {
            self.mapping().flush(s.map_offset, s.len as usize)?;
        }
        Ok(())
    }

    /// Drop cached lines of file range `[off, off + len)` (before reading what other hosts
    /// wrote).
    pub fn invalidate(&self, off: u64, len: u64) -> Result<(), FsdevError> {
        for s in self.segments(off, len) {
            self.mapping().invalidate(s.map_offset, s.len as usize)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ALLOC_UNIT, DaxDevice};
    use famfs_fmap::{Extent, InterleavedExtent};

    const AU: u64 = ALLOC_UNIT;

    #[test]
    fn striped_file_round_trips_and_lands_where_the_kernel_would() {
        let dev = DaxDevice::memfd("f", 32 * AU).unwrap();
        let map = dev.map_all().unwrap();
        // 4 strips of 2 AU, chunk 1 AU: chunk k -> strip k % 4, stripe k / 4.
        let strips: Vec<Extent> = (0..4)
            .map(|i| Extent::new(0, (8 + 2 * i) * AU, 2 * AU))
            .collect();
        let size = 7 * AU + 123;
        let fmap = Fmap::interleaved(
            size,
            vec![InterleavedExtent {
                chunk_size: AU,
                nbytes: size,
                strips,
            }],
        );
        let f = FileView::new(&map, &fmap).unwrap();
        let shared = FileView::new(Arc::new(dev.map_all().unwrap()), &fmap).unwrap();
        assert_eq!(shared.size(), f.size());
        let data: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
        assert_eq!(f.write_at(0, &data).unwrap(), size as usize);
        let mut back = vec![0u8; size as usize + 100];
        assert_eq!(f.read_at(0, &mut back).unwrap(), size as usize);
        assert_eq!(&back[..size as usize], &data[..]);
        // Chunk 5 (file offset 5 AU) is strip 1, stripe 1: device 10 AU + 1 AU.
        let mut b = [0u8; 1];
        map.read(11 * AU, &mut b).unwrap();
        assert_eq!(b[0], (5 * AU % 253) as u8);
        // Writes never grow the file.
        assert_eq!(f.write_at(size - 1, b"xyz").unwrap(), 1);
        assert_eq!(f.read_at(size, &mut b).unwrap(), 0);
        f.flush(0, size).unwrap();
        f.invalidate(0, size).unwrap();
    }

    #[test]
    fn refuses_maps_outside_the_mapping_or_on_other_devices() {
        let dev = DaxDevice::memfd("f", 16 * AU).unwrap();
        let map = dev.map(4 * AU, 8 * AU).unwrap();
        let ok = Fmap::simple(AU, vec![Extent::new(0, 5 * AU, AU)]);
        assert!(FileView::new(&map, &ok).is_ok());
        for bad in [
            Fmap::simple(AU, vec![Extent::new(0, 2 * AU, AU)]),
            Fmap::simple(AU, vec![Extent::new(0, 12 * AU, AU)]),
            Fmap::simple(AU, vec![Extent::new(1, 5 * AU, AU)]),
            Fmap::simple(2 * AU, vec![Extent::new(0, 5 * AU, AU)]),
        ] {
            assert!(FileView::new(&map, &bad).is_err(), "{bad:?}");
        }
    }
}
