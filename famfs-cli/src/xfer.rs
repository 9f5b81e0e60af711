//! Moving bytes: filling a file with the pattern, verifying it, copying a host file in, comparing.
//!
//! Everything works in large chunks; pattern work is split over threads (the pattern can be
//! produced from any offset), and copies overlap reading the source with writing the
//! destination.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::mpsc;

use anyhow::{Context, Result};

use crate::open::FileData;
use crate::pattern::Pattern;
use crate::progress::Progress;

/// Bytes per worker range unit: files are split over threads in multiples of this.
pub const CHUNK: usize = 8 << 20;

/// Bytes moved per step: small enough that a buffer stays in the CPU cache between being filled
/// and being written out (measured: 1 MiB steps copy about twice as fast as 8 MiB steps).
pub const STEP: usize = 1 << 20;

/// Ranges `[start, end)` splitting `size` bytes over up to `threads` workers, each at least
/// [`CHUNK`] long (except a lone short one).
pub fn split_ranges(size: u64, threads: usize) -> Vec<(u64, u64)> {
    let threads = threads.max(1) as u64;
    let by_chunks = size.div_ceil(CHUNK as u64).max(1);
    let n = threads.min(by_chunks);
    let per = size.div_ceil(n);
    // Keep boundaries 4-byte aligned so each worker starts on a pattern word.
    let per = per.div_ceil(4) * 4;
    (0..n)
        .map(|i| (i * per, ((i + 1) * per).min(size)))
        .filter(|(s, e)| s < e)
        .collect()
}

/// Default worker count: the CPUs available (at least 1).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Fill all of `dst` with the pattern of `seed`, then flush it.
pub fn fill_pattern(dst: &FileData, seed: u64, threads: usize, progress: &Progress) -> Result<()> {
    let pattern = Pattern::new(seed);
    let size = dst.size();
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = split_ranges(size, threads)
            .into_iter()
            .map(|(start, end)| {
                s.spawn(move || -> Result<()> {
                    let mut buf = vec![0u8; STEP.min((end - start) as usize)];
                    let mut off = start;
                    while off < end {
                        let n = ((end - off) as usize).min(buf.len());
                        pattern.fill(off, &mut buf[..n]);
                        dst.write_at(off, &buf[..n])?;
                        progress.inc(n as u64);
                        off += n as u64;
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a pattern worker panicked"))??;
        }
        Ok(())
    })?;
    dst.flush(0, size)
}

/// Check all of `src` against the pattern of `seed`; the first differing offset, if any.
pub fn verify_pattern(
    src: &FileData,
    seed: u64,
    threads: usize,
    progress: &Progress,
) -> Result<Option<u64>> {
    let pattern = Pattern::new(seed);
    let size = src.size();
    src.invalidate(0, size)?;
    let first = std::thread::scope(|s| -> Result<Option<u64>> {
        let workers: Vec<_> = split_ranges(size, threads)
            .into_iter()
            .map(|(start, end)| {
                s.spawn(move || -> Result<Option<u64>> {
                    let mut scratch = Vec::new();
                    first_difference(src, start, end, progress, |off, _, got| {
                        Ok(pattern.first_mismatch(off, got, &mut scratch))
                    })
                })
            })
            .collect();
        let mut first: Option<u64> = None;
        for w in workers {
            if let Some(o) = w
                .join()
                .map_err(|_| anyhow::anyhow!("a verify worker panicked"))??
            {
                first = Some(first.map_or(o, |f| f.min(o)));
            }
        }
        Ok(first)
    })?;
    Ok(first)
}

/// Copy `size` bytes of host file `src` into `dst`, reading ahead on a second thread.
pub fn copy_in(
    src: &File,
    src_name: &str,
    dst: &FileData,
    size: u64,
    progress: &Progress,
) -> Result<()> {
    const BUFFERS: usize = 4;
    let (full_tx, full_rx) = mpsc::sync_channel::<(u64, Vec<u8>, usize)>(BUFFERS);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS {
        empty_tx
            .send(vec![0u8; STEP.min(size.max(1) as usize)])
            .expect("the receiver is alive");
    }
    std::thread::scope(|s| -> Result<()> {
        let reader = s.spawn(move || -> Result<()> {
            let mut off = 0u64;
            while off < size {
                let Ok(mut buf) = empty_rx.recv() else {
                    return Ok(()); // the writer stopped (it reports why)
                };
                let want = ((size - off) as usize).min(buf.len());
                let mut got = 0;
                while got < want {
                    let n = src
                        .read_at(&mut buf[got..want], off + got as u64)
                        .with_context(|| format!("read {src_name}"))?;
                    if n == 0 {
                        anyhow::bail!(
                            "{src_name}: file shrank while being copied (ended at {} of {size} bytes)",
                            off + got as u64
                        );
                    }
                    got += n;
                }
                if full_tx.send((off, buf, got)).is_err() {
                    return Ok(());
                }
                off += got as u64;
            }
            Ok(())
        });
        let mut result = Ok(());
        while let Ok((off, buf, n)) = full_rx.recv() {
            if let Err(e) = dst.write_at(off, &buf[..n]) {
                result = Err(e);
                break;
            }
            progress.inc(n as u64);
            let _ = empty_tx.send(buf);
        }
        drop(full_rx);
        drop(empty_tx);
        let read_result = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the copy reader panicked"))?;
        read_result?;
        result
    })?;
    dst.flush(0, size)
}

/// Compare host file `src` with `dst` (same size); the first differing offset, if any.
pub fn compare(
    src: &File,
    src_name: &str,
    dst: &FileData,
    progress: &Progress,
) -> Result<Option<u64>> {
    let size = dst.size();
    dst.invalidate(0, size)?;
    let mut a = vec![0u8; STEP.min(size.max(1) as usize)];
    first_difference(dst, 0, size, progress, |off, want, got| {
        src.read_exact_at(&mut a[..want], off)
            .with_context(|| format!("read {src_name}"))?;
        Ok(a[..got.len()].iter().zip(got).position(|(x, y)| x != y))
    })
}

/// Read `[start, end)` of `data` in [`STEP`] chunks and ask `differs(off, want, got)` where the
/// chunk `got` read at `off` (asked for `want` bytes) first differs from what is expected. The
/// first differing offset, if any; a short read differs where it ends.
fn first_difference(
    data: &FileData,
    start: u64,
    end: u64,
    progress: &Progress,
    mut differs: impl FnMut(u64, usize, &[u8]) -> Result<Option<usize>>,
) -> Result<Option<u64>> {
    let mut buf = vec![0u8; STEP.min(end.saturating_sub(start).max(1) as usize)];
    let mut off = start;
    while off < end {
        let n = ((end - off) as usize).min(buf.len());
        let got = data.read_at(off, &mut buf[..n])?;
        if let Some(i) = differs(off, n, &buf[..got])? {
            return Ok(Some(off + i as u64));
        }
        if got < n {
            return Ok(Some(off + got as u64));
        }
        progress.inc(n as u64);
        off += n as u64;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_everything_once_and_stay_word_aligned() {
        for (size, threads) in [
            (0u64, 4usize),
            (1, 4),
            (CHUNK as u64, 4),
            (100 << 20, 2),
            (100 << 20, 3),
            ((1 << 30) + 7, 8),
        ] {
            let r = split_ranges(size, threads);
            assert!(r.len() <= threads.max(1));
            let mut at = 0;
            for &(s, e) in &r {
                assert_eq!(s, at);
                assert!(e > s);
                assert_eq!(s % 4, 0);
                at = e;
            }
            assert_eq!(at, size, "{size} {threads}: {r:?}");
        }
        assert_eq!(
            split_ranges(CHUNK as u64, 4).len(),
            1,
            "small files stay on one thread"
        );
    }
}
