//! Reading a long stretch of the log on a second thread while the calling thread applies it.
//!
//! A replay of a full log spends about a third of its time copying entries out of the media and
//! checking their CRCs, and the rest decoding them and building the tree. For long stretches
//! ([`PREFETCH_MIN`] entries or more: opening a file system, fsck, a daemon's first replay) a
//! scoped reader thread reads batches ahead and checks each slot's integrity, and the calling
//! thread applies them in log order, so the two halves overlap. Short catch-ups (a few new
//! entries) stay on the calling thread: a thread start would cost more than it saves.

use std::ops::ControlFlow;
use std::sync::mpsc;

use famfs_fsdev::{FsdevError, Media};

use crate::entry::check_integrity;
use crate::layout::{LOG_ENTRY_SIZE, entry_offset};

/// Fewest entries replayed through the reader thread.
pub(crate) const PREFETCH_MIN: u64 = 2048;

/// Batches read ahead of the one being applied.
const AHEAD: usize = 3;

/// Consecutive log slots, read in one go, with the outcome of each slot's integrity check.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Index of the first slot.
    pub first: u64,
    /// The slots' bytes (a multiple of the entry size).
    pub bytes: Vec<u8>,
    /// Per slot: whether its seqnum and CRC checked out when read.
    pub ok: Vec<bool>,
}

impl Batch {
    /// Read slots `[first, first + n)` of `log` into this batch and check each one.
    pub fn fill<L: Media + ?Sized>(
        &mut self,
        log: &L,
        first: u64,
        n: u64,
    ) -> Result<(), FsdevError> {
        let off = entry_offset(first);
        let len = n * LOG_ENTRY_SIZE as u64;
        self.first = first;
        self.bytes.resize(len as usize, 0);
        log.invalidate(off, len)?;
        log.read_at(off, &mut self.bytes)?;
        let checked = self
            .bytes
            .chunks_exact(LOG_ENTRY_SIZE)
            .zip(first..)
            .map(|(s, idx)| {
                check_integrity(s.try_into().expect("chunk of entry size"), idx).is_ok()
            });
        self.ok.clear();
        self.ok.extend(checked);
        Ok(())
    }

    /// The slots with their log indexes.
    pub fn slots(&self) -> impl Iterator<Item = (u64, &[u8; LOG_ENTRY_SIZE])> {
        self.bytes
            .chunks_exact(LOG_ENTRY_SIZE)
            .enumerate()
            .map(|(k, s)| {
                (
                    self.first + k as u64,
                    s.try_into().expect("chunk of entry size"),
                )
            })
    }
}

/// Read slots `[start, end)` of `log` in batches of `per_batch` entries and hand each batch, in
/// order, to `apply` on the calling thread; stop early when `apply` breaks or fails. Stretches
/// of [`PREFETCH_MIN`] entries or more are read on a scoped thread, ahead of `apply`; that
/// thread also runs `meanwhile` once the first batch is on its way (e.g. faulting in memory
/// `apply` is going to fill).
pub(crate) fn for_each_batch<L, E>(
    log: &L,
    (start, end): (u64, u64),
    per_batch: u64,
    meanwhile: impl FnOnce() + Send,
    mut apply: impl FnMut(&Batch) -> Result<ControlFlow<()>, E>,
) -> Result<(), E>
where
    L: Media + ?Sized,
    E: From<FsdevError>,
{
    let per_batch = per_batch.max(1);
    let batches = (start..end).step_by(per_batch as usize);
    if end.saturating_sub(start) < PREFETCH_MIN {
        let mut b = Batch::default();
        for first in batches {
            b.fill(log, first, (end - first).min(per_batch))?;
            if apply(&b)?.is_break() {
                break;
            }
        }
        return Ok(());
    }
    std::thread::scope(|s| {
        let (ready, next) = mpsc::sync_channel::<Result<Batch, FsdevError>>(AHEAD);
        let (recycle, used) = mpsc::channel::<Batch>();
        s.spawn(move || {
            let mut meanwhile = Some(meanwhile);
            for first in batches {
                let mut b = used.try_recv().unwrap_or_default();
                let r = b.fill(log, first, (end - first).min(per_batch));
                let failed = r.is_err();
                // A closed channel: the applier stopped early; so does the reader.
                if ready.send(r.map(|()| b)).is_err() || failed {
                    return;
                }
                if let Some(f) = meanwhile.take() {
                    f();
                }
            }
        });
        for b in next {
            let b = b?;
            if apply(&b)?.is_break() {
                break;
            }
            let _ = recycle.send(b);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use famfs_fsdev::MemMedia;

    /// A log media of `slots` slots, each holding its index as seqnum (and no valid CRC).
    fn numbered(slots: u64) -> MemMedia {
        let m = MemMedia::new(entry_offset(slots) as usize);
        for i in 0..slots {
            m.write_at(entry_offset(i), &i.to_le_bytes()).unwrap();
        }
        m
    }

    fn collect(log: &MemMedia, start: u64, end: u64, stop_at: Option<u64>) -> Vec<u64> {
        let mut seen = Vec::new();
        for_each_batch::<_, FsdevError>(
            log,
            (start, end),
            100,
            || {},
            |b| {
                assert_eq!(
                    b.ok.len() as u64 * LOG_ENTRY_SIZE as u64,
                    b.bytes.len() as u64
                );
                for (idx, s) in b.slots() {
                    assert_eq!(u64::from_le_bytes(s[..8].try_into().unwrap()), idx);
                    seen.push(idx);
                    if Some(idx) == stop_at {
                        return Ok(ControlFlow::Break(()));
                    }
                }
                Ok(ControlFlow::Continue(()))
            },
        )
        .unwrap();
        seen
    }

    #[test]
    fn every_slot_once_in_order_serial_and_threaded() {
        let log = numbered(PREFETCH_MIN + 250);
        for (start, end) in [
            (0, 7),
            (3, 250),
            (0, PREFETCH_MIN + 250),
            (5, PREFETCH_MIN + 101),
        ] {
            assert_eq!(
                collect(&log, start, end, None),
                (start..end).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn stopping_early_ends_the_reader() {
        let log = numbered(PREFETCH_MIN * 4);
        let seen = collect(&log, 0, PREFETCH_MIN * 4, Some(1234));
        assert_eq!(seen, (0..=1234).collect::<Vec<_>>());
    }

    #[test]
    fn a_read_error_reaches_the_caller_after_the_batches_before_it() {
        let log = numbered(PREFETCH_MIN);
        let mut applied = 0u64;
        // Past the media's end: the first batch that reaches it fails.
        let r = for_each_batch::<_, FsdevError>(
            &log,
            (0, PREFETCH_MIN + 500),
            100,
            || {},
            |b| {
                applied += b.ok.len() as u64;
                Ok(ControlFlow::Continue(()))
            },
        );
        assert!(r.is_err(), "{r:?}");
        assert_eq!(applied, PREFETCH_MIN / 100 * 100);
    }

    #[test]
    fn integrity_is_checked_per_slot() {
        let log = numbered(3);
        let good = crate::entry::LogEntry::Mkdir(crate::entry::DirEntry {
            path: "d".into(),
            uid: 0,
            gid: 0,
            mode: 0o755,
        });
        log.write_at(entry_offset(1), &good.encode(1).unwrap())
            .unwrap();
        let mut oks = Vec::new();
        for_each_batch::<_, FsdevError>(
            &log,
            (0, 3),
            2,
            || {},
            |b| {
                oks.extend_from_slice(&b.ok);
                Ok(ControlFlow::Continue(()))
            },
        )
        .unwrap();
        assert_eq!(oks, [false, true, false], "only slot 1 holds a valid entry");
    }
}
