//! CPU cache maintenance for memory shared between hosts.
//!
//! CXL shared memory is not guaranteed to be cache-coherent between hosts. A writer must write
//! its cache lines back to memory before another host can see them ([`flush`]); a reader must
//! drop possibly stale lines before reading ([`invalidate`]). On x86-64 the best available
//! instruction is chosen once at run time: `clwb` (write back, keep the line), then
//! `clflushopt`, then `clflush`; a store fence (`sfence`) orders the flushes before later stores.
//! On other architectures only a full fence is issued.

use std::sync::OnceLock;

/// Size of a cache line on every platform famfs supports.
pub const CACHE_LINE: usize = 64;

/// The flush instruction this CPU offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushInsn {
    /// `clwb`: write back and keep the line cached.
    Clwb,
    /// `clflushopt`: write back and evict, weakly ordered.
    Clflushopt,
    /// `clflush`: write back and evict, strongly ordered.
    Clflush,
    /// No cache-line instruction (non-x86): a fence only.
    FenceOnly,
}

/// The instruction [`flush`] uses on this CPU.
pub fn flush_insn() -> FlushInsn {
    static INSN: OnceLock<FlushInsn> = OnceLock::new();
    *INSN.get_or_init(detect)
}

/// The instruction [`invalidate`] uses: `clwb` does not evict, so it is never chosen.
pub fn invalidate_insn() -> FlushInsn {
    match flush_insn() {
        FlushInsn::Clwb => {
            if has_clflushopt() {
                FlushInsn::Clflushopt
            } else {
                FlushInsn::Clflush
            }
        }
        other => other,
    }
}

#[cfg(target_arch = "x86_64")]
fn has_clflushopt() -> bool {
    let r = std::arch::x86_64::__cpuid_count(7, 0);
    (r.ebx >> 23) & 1 == 1
}

#[cfg(not(target_arch = "x86_64"))]
fn has_clflushopt() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn detect() -> FlushInsn {
    let r = std::arch::x86_64::__cpuid_count(7, 0);
    if (r.ebx >> 24) & 1 == 1 {
        FlushInsn::Clwb
    } else if (r.ebx >> 23) & 1 == 1 {
        FlushInsn::Clflushopt
    } else {
        FlushInsn::Clflush
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> FlushInsn {
    FlushInsn::FenceOnly
}

/// Write back every cache line overlapping `[ptr, ptr + len)` and fence.
///
/// # Safety
/// `[ptr, ptr + len)` must lie inside one live mapping owned by the caller (the instructions
/// fault on unmapped addresses like a load would).
pub unsafe fn flush(ptr: *const u8, len: usize) {
    // SAFETY: the caller guarantees the range is mapped.
    unsafe { for_each_line(ptr, len, flush_insn()) };
}

/// Write back and evict every cache line overlapping `[ptr, ptr + len)` and fence, so the next
/// read fetches the bytes from memory.
///
/// # Safety
/// As for [`flush`].
pub unsafe fn invalidate(ptr: *const u8, len: usize) {
    // SAFETY: the caller guarantees the range is mapped.
    unsafe { for_each_line(ptr, len, invalidate_insn()) };
}

/// A store fence: orders earlier stores and flushes before later stores.
pub fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: sfence has no memory operands and is available on every x86-64 CPU.
        unsafe { std::arch::x86_64::_mm_sfence() };
    }
    #[cfg(not(target_arch = "x86_64"))]
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}

#[cfg(target_arch = "x86_64")]
unsafe fn for_each_line(ptr: *const u8, len: usize, insn: FlushInsn) {
    if len == 0 {
        return;
    }
    let start = (ptr as usize) & !(CACHE_LINE - 1);
    let end = ptr as usize + len;
    let mut line = start;
    while line < end {
        // SAFETY: `line` is inside the caller's mapping (the first line may start before `ptr`
        // but lies on the same page, which is mapped). The instructions only touch cache state.
        unsafe {
            match insn {
                FlushInsn::Clwb => {
                    std::arch::asm!("clwb [{0}]", in(reg) line, options(nostack, preserves_flags))
                }
                FlushInsn::Clflushopt => std::arch::asm!(
                    "clflushopt [{0}]",
                    in(reg) line,
                    options(nostack, preserves_flags)
                ),
                FlushInsn::Clflush | FlushInsn::FenceOnly => {
                    std::arch::x86_64::_mm_clflush(line as *const u8)
                }
            }
        }
        line += CACHE_LINE;
    }
    store_fence();
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn for_each_line(_ptr: *const u8, _len: usize, _insn: FlushInsn) {
    store_fence();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_and_invalidate_keep_data() {
        let mut buf = vec![0u8; 4096 + 7];
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        // SAFETY: the ranges are inside `buf`.
        unsafe {
            flush(buf.as_ptr().add(3), 4000);
            invalidate(buf.as_ptr().add(1), 4100);
            flush(buf.as_ptr(), 0);
        }
        assert!(buf.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    }

    #[test]
    fn invalidate_never_uses_clwb() {
        assert_ne!(invalidate_insn(), FlushInsn::Clwb);
    }
}
