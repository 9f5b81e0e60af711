//! Faulting in memory ahead of its first use, from another thread.

use std::ops::Range;

/// Fault in the pages wholly inside the address range `addr` as if they were written, without
/// changing a byte: pages already present are left alone, missing anonymous pages are zero-
/// filled (what a first write would find). For a large buffer one thread is about to fill (a
/// replay's node table): a second thread takes the page faults while the first one works.
///
/// Advice only: nothing happens on kernels before 5.14 (no `MADV_POPULATE_WRITE`) or for
/// addresses that are not mapped; memory is the same afterwards whatever happened.
pub fn prefault_for_writing(addr: Range<usize>) {
    let page = page_size();
    let start = addr.start.next_multiple_of(page);
    let end = addr.end / page * page;
    if end <= start {
        return;
    }
    // SAFETY: MADV_POPULATE_WRITE only populates page tables for [start, end): it never
    // changes memory contents as seen by any thread (present pages are untouched, missing
    // anonymous pages become the zero-filled pages a first write would get), so it cannot
    // break an invariant of memory owned by Rust code; an unmapped range is an error
    // (ENOMEM/EFAULT), not undefined behaviour.
    let r = unsafe {
        libc::madvise(
            start as *mut libc::c_void,
            end - start,
            libc::MADV_POPULATE_WRITE,
        )
    };
    if r != 0 {
        tracing::trace!(
            "prefault of {} bytes: {}",
            end - start,
            std::io::Error::last_os_error()
        );
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minor page faults of this process so far.
    fn minor_faults() -> i64 {
        // SAFETY: getrusage writes into the struct it is given.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid rusage to fill.
        assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) }, 0);
        ru.ru_minflt
    }

    #[test]
    fn prefaulted_memory_is_written_without_faults_and_keeps_its_bytes() {
        let len = 64 << 20;
        let mut v: Vec<u8> = Vec::with_capacity(len);
        v.extend_from_slice(b"kept");
        let base = v.as_ptr() as usize;
        prefault_for_writing(base..base + len);
        assert_eq!(&v[..], b"kept", "contents unchanged");
        let before = minor_faults();
        v.resize(len, 7);
        let faults = minor_faults() - before;
        // Without the prefault, filling 64 MiB faults once per 4 KiB page (16,384 times).
        assert!(faults < 1000, "{faults} page faults after prefaulting");
        assert!(v[4..].iter().all(|&b| b == 7));
    }

    #[test]
    fn unmapped_or_empty_ranges_are_ignored() {
        prefault_for_writing(0..0);
        prefault_for_writing(4096..8192);
        prefault_for_writing(100..4000);
    }
}
