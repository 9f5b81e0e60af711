//! The file-map type.

/// A contiguous range of a dax device: a simple extent, or one strip of an interleaved extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Extent {
    /// Dax device index (famfs uses device 0 only, today).
    pub dev_index: u32,
    /// Byte offset on the device.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Extent {
    /// A new extent.
    pub const fn new(dev_index: u32, offset: u64, len: u64) -> Self {
        Extent {
            dev_index,
            offset,
            len,
        }
    }

    /// One past its last byte on the device (saturating).
    pub const fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// An interleaved (striped) extent: `nbytes` of the file spread over `strips` in `chunk_size`
/// chunks, round robin (chunk k on strip k mod n, at `(k / n) * chunk_size` into it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct InterleavedExtent {
    /// Stripe chunk size in bytes.
    pub chunk_size: u64,
    /// Bytes of the file this extent holds; the kernel uses `min(nbytes, file_size)`.
    /// [`Fmap::striped`] sets it from the file size and the extents'
    /// [capacities](InterleavedExtent::capacity).
    pub nbytes: u64,
    /// The strips, in stripe order.
    pub strips: Vec<Extent>,
}

impl InterleavedExtent {
    /// An interleaved extent whose `nbytes` is still to be set (0), for [`Fmap::striped`].
    pub fn new(chunk_size: u64, strips: Vec<Extent>) -> Self {
        InterleavedExtent {
            chunk_size,
            nbytes: 0,
            strips,
        }
    }
}

/// The extents of an fmap.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FmapKind {
    /// Simple extents, concatenated in file order.
    Simple(Vec<Extent>),
    /// Interleaved extents, concatenated in file order.
    Interleaved(Vec<InterleavedExtent>),
}

impl FmapKind {
    /// The number of simple extents, or of interleaved extents (`nextents` in the log and on the
    /// wire).
    pub fn nextents(&self) -> usize {
        match self {
            FmapKind::Simple(v) => v.len(),
            FmapKind::Interleaved(v) => v.len(),
        }
    }
}

/// The map of a famfs file of `file_size` bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fmap {
    /// Logical file size: offsets at or past it resolve to nothing.
    pub file_size: u64,
    /// The extents.
    pub kind: FmapKind,
}

impl Fmap {
    /// A file of `file_size` bytes on simple extents.
    pub fn simple(file_size: u64, extents: Vec<Extent>) -> Self {
        Fmap {
            file_size,
            kind: FmapKind::Simple(extents),
        }
    }

    /// A file of `file_size` bytes on interleaved extents, taken as given (`nbytes` included).
    pub fn interleaved(file_size: u64, extents: Vec<InterleavedExtent>) -> Self {
        Fmap {
            file_size,
            kind: FmapKind::Interleaved(extents),
        }
    }

    /// A file of `file_size` bytes laid out over `extents` in order, each extent's `nbytes` set
    /// to the bytes of the file it holds: as many as its strips can hold
    /// ([`InterleavedExtent::capacity`]), and the last one the rest. The `nbytes` passed in are
    /// ignored. With one interleaved extent (all famfs user space makes), `nbytes` is the file
    /// size, as the reference daemon sends it.
    pub fn striped(file_size: u64, mut extents: Vec<InterleavedExtent>) -> Self {
        let mut left = file_size;
        let last = extents.len().saturating_sub(1);
        for (i, ie) in extents.iter_mut().enumerate() {
            ie.nbytes = if i == last {
                left
            } else {
                ie.capacity().min(left)
            };
            left -= ie.nbytes;
        }
        Fmap::interleaved(file_size, extents)
    }

    /// Every device range the map uses: the simple extents, or all strips in order.
    pub fn ranges(&self) -> impl Iterator<Item = &Extent> {
        let (simple, inter): (&[Extent], &[InterleavedExtent]) = match &self.kind {
            FmapKind::Simple(e) => (e, &[]),
            FmapKind::Interleaved(i) => (&[], i),
        };
        simple
            .iter()
            .chain(inter.iter().flat_map(|i| i.strips.iter()))
    }

    /// Total device bytes the map occupies (saturating).
    pub fn allocated_bytes(&self) -> u64 {
        self.ranges().fold(0u64, |a, e| a.saturating_add(e.len))
    }

    /// Bytes of file data the extents can hold (saturating): the sum of the simple extents'
    /// lengths, or of the interleaved extents' [capacities](InterleavedExtent::capacity).
    pub fn capacity(&self) -> u64 {
        match &self.kind {
            FmapKind::Simple(exts) => exts.iter().fold(0u64, |a, e| a.saturating_add(e.len)),
            FmapKind::Interleaved(ies) => ies
                .iter()
                .fold(0u64, |a, ie| a.saturating_add(ie.capacity())),
        }
    }

    /// The distinct device indices the map references, ascending.
    pub fn referenced_devices(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.ranges().map(|e| e.dev_index).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 1 << 20;

    #[test]
    fn striped_sets_each_extents_share() {
        let ie = |first: u64, n: u64| {
            InterleavedExtent::new(
                2 * M,
                (0..n)
                    .map(|k| Extent::new(0, (first + 4 * k) * M, 4 * M))
                    .collect(),
            )
        };
        // One extent: nbytes is the file size (what the reference daemon sends).
        let one = Fmap::striped(7 * M + 3, vec![ie(100, 3)]);
        let FmapKind::Interleaved(v) = &one.kind else {
            panic!()
        };
        assert_eq!(v[0].nbytes, 7 * M + 3);
        // Two extents: the first holds what its strips can (12 MiB), the second the rest.
        let two = Fmap::striped(20 * M, vec![ie(100, 3), ie(200, 2)]);
        let FmapKind::Interleaved(v) = &two.kind else {
            panic!()
        };
        assert_eq!((v[0].nbytes, v[1].nbytes), (12 * M, 8 * M));
        two.check_geometry().unwrap();
        // Not `nbytes = file size` on every extent: the second extent's bytes resolve into its
        // own strips.
        let at = two.resolve(crate::FileOffset(12 * M)).unwrap();
        assert_eq!(at.dev_offset, crate::DevOffset(200 * M));
        assert_eq!(two.capacity(), 20 * M);
        assert_eq!(two.allocated_bytes(), 20 * M);
        assert_eq!(two.ranges().count(), 5);
        assert_eq!(two.referenced_devices(), vec![0]);
    }
}
