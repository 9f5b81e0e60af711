//! The free-space bitmap and the allocators (contiguous and interleaved).
//!
//! Free space is never stored: it is rebuilt from the log. Bit *k* stands for allocation unit
//! *k* (2 MiB at device offset 2 MiB·k). The superblock and log region is reserved.

use crate::layout::{ALLOC_UNIT, MAX_NBUCKETS, MAX_STRIPS};
use famfs_fmap::{Extent, Fmap, InterleavedExtent};

/// One bit per allocation unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    words: Vec<u64>,
    nbits: u64,
    set: u64,
}

impl Bitmap {
    /// An empty bitmap of `nbits` bits.
    pub fn new(nbits: u64) -> Bitmap {
        Bitmap {
            words: vec![0; nbits.div_ceil(64) as usize],
            nbits,
            set: 0,
        }
    }

    /// Number of bits.
    pub fn nbits(&self) -> u64 {
        self.nbits
    }

    /// Number of set bits.
    pub fn count_set(&self) -> u64 {
        self.set
    }

    /// Whether bit `k` is set (bits past the end read as set).
    pub fn is_set(&self, k: u64) -> bool {
        k >= self.nbits || self.words[(k / 64) as usize] >> (k % 64) & 1 == 1
    }

    /// Apply `f(word_index, mask)` to the words covering bits `[start, start + n)`, clipped.
    fn for_masks(&mut self, start: u64, n: u64, mut f: impl FnMut(&mut u64, u64) -> i64) {
        let end = start.saturating_add(n).min(self.nbits);
        let mut k = start;
        while k < end {
            let w = (k / 64) as usize;
            let lo = k % 64;
            let hi = (end - (k - lo)).min(64);
            let mask = if hi - lo == 64 {
                u64::MAX
            } else {
                ((1u64 << (hi - lo)) - 1) << lo
            };
            let delta = f(&mut self.words[w], mask);
            self.set = self.set.wrapping_add_signed(delta);
            k = k - lo + hi;
        }
    }

    /// Set bits `[start, start + n)` (clipped to the bitmap); returns how many were already set.
    pub fn mark(&mut self, start: u64, n: u64) -> u64 {
        let mut collisions = 0u64;
        self.for_masks(start, n, |w, mask| {
            let already = (*w & mask).count_ones();
            collisions += u64::from(already);
            *w |= mask;
            i64::from(mask.count_ones() - already)
        });
        collisions
    }

    /// Clear bits `[start, start + n)` (clipped to the bitmap).
    pub fn clear(&mut self, start: u64, n: u64) {
        self.for_masks(start, n, |w, mask| {
            let was = (*w & mask).count_ones();
            *w &= !mask;
            -i64::from(was)
        });
    }

    /// First bit in `[from, to)` with value `want`.
    fn next_with(&self, from: u64, to: u64, want: bool) -> Option<u64> {
        let to = to.min(self.nbits);
        let mut k = from;
        while k < to {
            let w = (k / 64) as usize;
            let word = if want { self.words[w] } else { !self.words[w] };
            let bits = word >> (k % 64);
            if bits != 0 {
                let hit = k + bits.trailing_zeros() as u64;
                return (hit < to).then_some(hit);
            }
            k = (k / 64 + 1) * 64;
        }
        None
    }

    /// First run of `n` clear bits that starts and ends inside `[from, to)`.
    pub fn find_free_run(&self, from: u64, to: u64, n: u64) -> Option<u64> {
        if n == 0 {
            return None;
        }
        let to = to.min(self.nbits);
        let mut k = from;
        loop {
            k = self.next_with(k, to, false)?;
            let end = k.checked_add(n).filter(|&e| e <= to)?;
            match self.next_with(k, end, true) {
                None => return Some(k),
                Some(set) => k = set + 1,
            }
        }
    }
}

/// Parameters of interleaved ("strided") allocation, as `famfs creat/cp -N -B -C` give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterleaveParams {
    /// Number of buckets the device is cut into (≤ 64).
    pub nbuckets: u64,
    /// Number of strips per file (≤ nbuckets, ≤ 16).
    pub nstrips: u64,
    /// Chunk size in bytes (a power of two, a multiple of 2 MiB).
    pub chunk_size: u64,
}

/// How to place a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllocPolicy {
    /// One contiguous extent (the default).
    #[default]
    Contiguous,
    /// Striped over `nstrips` buckets.
    Interleaved(InterleaveParams),
}

/// Why space could not be allocated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// No free run is large enough.
    #[error("out of space: no free run of {needed} bytes ({free} bytes free in all)")]
    NoSpace {
        /// Bytes needed in one run.
        needed: u64,
        /// Total free bytes.
        free: u64,
    },
    /// Fewer buckets than strips could hold a strip.
    #[error("out of space: only {found} of {nstrips} buckets have a free run of {strip} bytes")]
    NoStripSpace {
        /// Buckets with room.
        found: u64,
        /// Strips wanted.
        nstrips: u64,
        /// Strip length in bytes.
        strip: u64,
    },
    /// Interleave parameters the reference would refuse.
    #[error("invalid interleave parameters: {0}")]
    BadInterleave(String),
    /// A zero-byte file.
    #[error("cannot allocate an empty file")]
    Empty,
}

impl InterleaveParams {
    /// Check the parameters against a device of `dev_size` bytes, with the reference's rules.
    pub fn validate(&self, dev_size: u64) -> Result<(), AllocError> {
        let bad = |s: String| Err(AllocError::BadInterleave(s));
        let c = self.chunk_size;
        if c == 0 || !c.is_power_of_two() || !c.is_multiple_of(ALLOC_UNIT) {
            return bad(format!(
                "chunk size {c} must be a power of two and a multiple of 2 MiB"
            ));
        }
        if self.nbuckets == 0 || self.nbuckets > MAX_NBUCKETS {
            return bad(format!(
                "nbuckets {} must be 1..={MAX_NBUCKETS}",
                self.nbuckets
            ));
        }
        if self.nstrips == 0 || self.nstrips > MAX_STRIPS as u64 {
            return bad(format!("nstrips {} must be 1..={MAX_STRIPS}", self.nstrips));
        }
        if self.nstrips > self.nbuckets {
            return bad(format!(
                "nstrips {} > nbuckets {}",
                self.nstrips, self.nbuckets
            ));
        }
        if dev_size / self.nbuckets < 1 << 30 {
            return bad(format!(
                "bucket size {} is below 1 GiB; use fewer buckets",
                dev_size / self.nbuckets
            ));
        }
        Ok(())
    }
}

/// A small deterministic PRNG (splitmix64) for the bucket order.
#[derive(Debug, Clone)]
pub struct BucketRng(u64);

impl BucketRng {
    /// Seeded generator.
    pub fn new(seed: u64) -> BucketRng {
        BucketRng(seed)
    }

    /// Seeded from the clock and the process id.
    pub fn from_entropy() -> BucketRng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        BucketRng(t ^ (u64::from(std::process::id()) << 32))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A random permutation of `0..n` (Fisher-Yates).
    pub fn permutation(&mut self, n: u64) -> Vec<u64> {
        let mut v: Vec<u64> = (0..n).collect();
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
        v
    }
}

/// The allocator: plans where a new file goes, from a bitmap over the device.
///
/// It never marks the bitmap: the caller claims the planned extents (a writer does so by
/// appending the entry, whose replay marks them exactly as every reader's replay does). One plan
/// never overlaps itself; two plans from the same bitmap may overlap each other.
#[derive(Debug, Clone, Copy)]
pub struct Allocator<'a> {
    bitmap: &'a Bitmap,
    dev_size: u64,
}

impl<'a> Allocator<'a> {
    /// Plan against `bitmap`, which covers a device of `dev_size` bytes.
    pub fn new(bitmap: &'a Bitmap, dev_size: u64) -> Self {
        Allocator { bitmap, dev_size }
    }

    fn free_bytes(&self) -> u64 {
        (self.bitmap.nbits() - self.bitmap.count_set()) * ALLOC_UNIT
    }

    /// One extent of `round_up(size, 2 MiB)` bytes: next fit from `*cursor`, wrapping once to
    /// the start (the reference never wraps, which can fail with space left below the cursor).
    /// `*cursor` moves past the planned extent.
    pub fn contiguous(&self, size: u64, cursor: &mut u64) -> Result<Fmap, AllocError> {
        if size == 0 {
            return Err(AllocError::Empty);
        }
        let n = size.div_ceil(ALLOC_UNIT);
        let nbits = self.bitmap.nbits();
        let start = self
            .bitmap
            .find_free_run(*cursor, nbits, n)
            .or_else(|| self.bitmap.find_free_run(0, nbits, n))
            .ok_or(AllocError::NoSpace {
                needed: n * ALLOC_UNIT,
                free: self.free_bytes(),
            })?;
        *cursor = start + n;
        Ok(Fmap::simple(
            size,
            vec![Extent::new(0, start * ALLOC_UNIT, n * ALLOC_UNIT)],
        ))
    }

    /// Interleaved allocation with the reference's algorithm: the device is cut into
    /// `nbuckets` equal buckets; strips of `ceil(size / (nstrips·chunk))·chunk` bytes are taken
    /// first-fit from buckets in a random order until `nstrips` are found. A file smaller than
    /// one chunk gets a contiguous extent instead (searched from the start of the device).
    pub fn interleaved(
        &self,
        size: u64,
        p: &InterleaveParams,
        rng: &mut BucketRng,
    ) -> Result<Fmap, AllocError> {
        if size == 0 {
            return Err(AllocError::Empty);
        }
        p.validate(self.dev_size)?;
        if size < p.chunk_size {
            return self.contiguous(size, &mut 0);
        }
        let alloc_au = size.div_ceil(ALLOC_UNIT);
        let chunk_au = p.chunk_size / ALLOC_UNIT;
        let dev_au = self.dev_size / ALLOC_UNIT;
        let bucket_au = dev_au / p.nbuckets;
        let stripe_au = p.nstrips * chunk_au;
        let strip_au = alloc_au.div_ceil(stripe_au) * chunk_au;
        let mut strips = Vec::with_capacity(p.nstrips as usize);
        for b in rng.permutation(p.nbuckets) {
            if strips.len() as u64 == p.nstrips {
                break;
            }
            let lo = b * bucket_au;
            // Buckets are disjoint, so the strips of one plan never overlap.
            if let Some(start) = self.bitmap.find_free_run(lo, lo + bucket_au, strip_au) {
                strips.push(Extent::new(0, start * ALLOC_UNIT, strip_au * ALLOC_UNIT));
            }
        }
        if (strips.len() as u64) < p.nstrips {
            return Err(AllocError::NoStripSpace {
                found: strips.len() as u64,
                nstrips: p.nstrips,
                strip: strip_au * ALLOC_UNIT,
            });
        }
        Ok(Fmap::striped(
            size,
            vec![InterleavedExtent::new(p.chunk_size, strips)],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use famfs_fmap::FmapKind;
    use proptest::prelude::*;

    const GIB: u64 = 1 << 30;

    /// Claim a plan as the replay of its entry does; returns the collisions.
    fn claim(bm: &mut Bitmap, f: &Fmap) -> u64 {
        f.ranges()
            .map(|e| bm.mark(e.offset / ALLOC_UNIT, e.len.div_ceil(ALLOC_UNIT)))
            .sum()
    }

    /// Plan with `plan`, check that planning left the bitmap alone, then claim the plan and
    /// check that it collided with nothing.
    fn plan_and_claim(
        bm: &mut Bitmap,
        dev: u64,
        plan: impl FnOnce(Allocator<'_>) -> Result<Fmap, AllocError>,
    ) -> Result<Fmap, AllocError> {
        let before = bm.clone();
        let r = plan(Allocator::new(bm, dev));
        assert_eq!(*bm, before, "planning must not mark the bitmap");
        if let Ok(f) = &r {
            assert_eq!(claim(bm, f), 0, "a plan must only use free space");
        }
        r
    }

    #[test]
    fn mark_counts_collisions_across_words() {
        let mut b = Bitmap::new(200);
        assert_eq!(b.mark(60, 10), 0);
        assert_eq!(b.count_set(), 10);
        assert_eq!(b.mark(0, 200), 10);
        assert_eq!(b.count_set(), 200);
        assert_eq!(b.mark(190, 100), 10); // clipped at the end
        b.clear(100, 50);
        assert_eq!(b.count_set(), 150);
        assert!(!b.is_set(120) && b.is_set(99) && b.is_set(500));
    }

    #[test]
    fn free_runs() {
        let mut b = Bitmap::new(300);
        b.mark(0, 5);
        b.mark(7, 1);
        b.mark(70, 130);
        assert_eq!(b.find_free_run(0, 300, 2), Some(5));
        assert_eq!(b.find_free_run(0, 300, 3), Some(8));
        assert_eq!(b.find_free_run(0, 300, 62), Some(8));
        assert_eq!(b.find_free_run(0, 300, 63), Some(200));
        assert_eq!(b.find_free_run(0, 300, 100), Some(200));
        assert_eq!(b.find_free_run(0, 300, 101), None);
        assert_eq!(b.find_free_run(201, 250, 49), Some(201));
        assert_eq!(b.find_free_run(201, 250, 50), None);
    }

    #[test]
    fn contiguous_is_next_fit_and_wraps() {
        let dev = 16 * ALLOC_UNIT;
        let mut bm = Bitmap::new(16);
        bm.mark(0, 5);
        let mut cur = 0;
        let f = plan_and_claim(&mut bm, dev, |a| a.contiguous(1, &mut cur)).unwrap();
        assert_eq!(
            f,
            Fmap::simple(1, vec![Extent::new(0, 5 * ALLOC_UNIT, ALLOC_UNIT)])
        );
        let f = plan_and_claim(&mut bm, dev, |a| a.contiguous(3 * ALLOC_UNIT, &mut cur)).unwrap();
        assert_eq!(
            f,
            Fmap::simple(
                3 * ALLOC_UNIT,
                vec![Extent::new(0, 6 * ALLOC_UNIT, 3 * ALLOC_UNIT)]
            )
        );
        assert_eq!(cur, 9);
        let mut cur = 14;
        let f =
            plan_and_claim(&mut bm, dev, |a| a.contiguous(2 * ALLOC_UNIT + 1, &mut cur)).unwrap();
        assert_eq!(
            f,
            Fmap::simple(
                2 * ALLOC_UNIT + 1,
                vec![Extent::new(0, 9 * ALLOC_UNIT, 3 * ALLOC_UNIT)]
            )
        );
        assert!(matches!(
            plan_and_claim(&mut bm, dev, |a| a.contiguous(10 * ALLOC_UNIT, &mut cur)),
            Err(AllocError::NoSpace { .. })
        ));
        assert_eq!(
            plan_and_claim(&mut bm, dev, |a| a.contiguous(0, &mut cur)),
            Err(AllocError::Empty)
        );
    }

    #[test]
    fn a_plan_is_not_a_claim() {
        // Two plans from the same bitmap are the same plan until one is claimed.
        let mut bm = Bitmap::new(16);
        bm.mark(0, 5);
        let a = Allocator::new(&bm, 16 * ALLOC_UNIT);
        let first = a.contiguous(ALLOC_UNIT, &mut 0).unwrap();
        assert_eq!(a.contiguous(ALLOC_UNIT, &mut 0).unwrap(), first);
        assert_eq!(bm.count_set(), 5);
        assert_eq!(claim(&mut bm, &first), 0);
        let a = Allocator::new(&bm, 16 * ALLOC_UNIT);
        assert_ne!(a.contiguous(ALLOC_UNIT, &mut 0).unwrap(), first);
    }

    #[test]
    fn interleave_validation_matches_reference() {
        let ok = InterleaveParams {
            nbuckets: 8,
            nstrips: 4,
            chunk_size: 2 << 20,
        };
        assert!(ok.validate(8 * GIB).is_ok());
        for bad in [
            InterleaveParams {
                nbuckets: 100,
                ..ok
            },
            InterleaveParams { nbuckets: 0, ..ok },
            InterleaveParams {
                chunk_size: 2_000_000,
                ..ok
            },
            InterleaveParams {
                chunk_size: 0,
                ..ok
            },
            InterleaveParams {
                chunk_size: 3 << 20,
                ..ok
            },
            InterleaveParams { nstrips: 9, ..ok },
            InterleaveParams {
                nstrips: 17,
                nbuckets: 20,
                ..ok
            },
        ] {
            assert!(bad.validate(64 * GIB).is_err(), "{bad:?}");
        }
        assert!(ok.validate(4 * GIB).is_err(), "bucket below 1 GiB");
    }

    #[test]
    fn interleaved_shapes_follow_the_reference() {
        // ref1: `-N 8 -C 4m -B 8 -s 100m` gives 8 strips of 16 MiB; `-N 3 -C 2m -s 7m` 4 MiB.
        let dev = 8 * GIB;
        let mut bm = Bitmap::new(dev / ALLOC_UNIT);
        bm.mark(0, 5);
        let mut rng = BucketRng::new(1);
        let p = InterleaveParams {
            nbuckets: 8,
            nstrips: 8,
            chunk_size: 4 << 20,
        };
        let plan = plan_and_claim(&mut bm, dev, |a| a.interleaved(100 << 20, &p, &mut rng));
        let FmapKind::Interleaved(ie) = plan.unwrap().kind else {
            panic!()
        };
        assert_eq!(ie[0].strips.len(), 8);
        assert!(ie[0].strips.iter().all(|s| s.len == 16 << 20));
        // One strip per bucket.
        let mut buckets: Vec<u64> = ie[0].strips.iter().map(|s| s.offset / GIB).collect();
        buckets.sort();
        assert_eq!(buckets, (0..8).collect::<Vec<_>>());
        let p = InterleaveParams {
            nbuckets: 8,
            nstrips: 3,
            chunk_size: 2 << 20,
        };
        let plan = plan_and_claim(&mut bm, dev, |a| a.interleaved(7 << 20, &p, &mut rng));
        let FmapKind::Interleaved(ie) = plan.unwrap().kind else {
            panic!()
        };
        assert!(ie[0].strips.iter().all(|s| s.len == 4 << 20));
        // Below one chunk: contiguous fallback.
        let p = InterleaveParams {
            nbuckets: 8,
            nstrips: 4,
            chunk_size: 2 << 20,
        };
        assert!(matches!(
            plan_and_claim(&mut bm, dev, |a| a.interleaved(1 << 20, &p, &mut rng))
                .unwrap()
                .kind,
            FmapKind::Simple(_)
        ));
    }

    #[test]
    fn failed_interleave_takes_no_space() {
        let dev = 4 * GIB;
        let mut bm = Bitmap::new(dev / ALLOC_UNIT);
        // Fill bucket 1 of 4 completely.
        bm.mark(512, 512);
        let before = bm.clone();
        let p = InterleaveParams {
            nbuckets: 4,
            nstrips: 4,
            chunk_size: 2 << 20,
        };
        let e = plan_and_claim(&mut bm, dev, |a| {
            a.interleaved(64 << 20, &p, &mut BucketRng::new(7))
        })
        .unwrap_err();
        assert!(
            matches!(e, AllocError::NoStripSpace { found: 3, .. }),
            "{e}"
        );
        assert_eq!(bm, before);
    }

    proptest! {
        /// Random sequences of allocations, each claimed as its entry's replay claims it, never
        /// overlap each other or the reserved area; planning never marks the bitmap.
        #[test]
        fn allocations_never_overlap(
            ops in proptest::collection::vec((1u64..(300 << 20), any::<bool>(), 1u64..5), 1..60),
            seed: u64,
        ) {
            let dev = 16 * GIB;
            let reserved = 5;
            let mut bm = Bitmap::new(dev / ALLOC_UNIT);
            bm.mark(0, reserved);
            let mut used: Vec<(u64, u64)> = vec![(0, reserved * ALLOC_UNIT)];
            let mut rng = BucketRng::new(seed);
            let mut cur = 0;
            for (size, striped, nstrips) in ops {
                let r = plan_and_claim(&mut bm, dev, |a| if striped {
                    let p = InterleaveParams { nbuckets: 8, nstrips, chunk_size: 2 << 20 };
                    a.interleaved(size, &p, &mut rng)
                } else {
                    a.contiguous(size, &mut cur)
                });
                let Ok(f) = r else { continue };
                prop_assert!(f.capacity() >= size);
                for e in f.ranges() {
                    for &(o, l) in &used {
                        prop_assert!(e.offset >= o + l || e.offset + e.len <= o,
                            "overlap {:#x}+{:#x} with {:#x}+{:#x}", e.offset, e.len, o, l);
                    }
                    prop_assert!(e.offset + e.len <= dev);
                    used.push((e.offset, e.len));
                }
            }
            let total: u64 = used.iter().map(|u| u.1 / ALLOC_UNIT).sum();
            prop_assert_eq!(total, bm.count_set());
        }
    }
}
