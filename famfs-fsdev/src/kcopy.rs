//! Copies in and out of a shared mapping done by the kernel, so that a fault is an error.
//!
//! A `MAP_SHARED` mapping can fault at any time: a stand-in file truncated by someone else, a
//! dax device torn down. A CPU load or store that faults raises SIGBUS, which kills the
//! process; the same access made by the kernel on our behalf returns EFAULT instead. So every
//! copy touching the mapping goes through `process_vm_readv`/`process_vm_writev` on this very
//! process (always permitted: a process may access its own memory), which copies with the
//! kernel's fault handling. If a seccomp policy forbids these calls (EPERM, ENOSYS), the copy
//! falls back to a plain CPU copy and says so once: the process then works as before, without
//! the protection.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Pages are probed at this stride: every page of any size starts on a 4 KiB boundary.
const PROBE_STRIDE: usize = 4096;
/// Most iovecs per call (`IOV_MAX`).
const IOV_MAX: usize = 1024;

/// Set once the kernel refused the calls (seccomp): the CPU copies from then on.
static REFUSED: AtomicBool = AtomicBool::new(false);

fn iov(ptr: *const u8, len: usize) -> libc::iovec {
    libc::iovec {
        iov_base: ptr as *mut libc::c_void,
        iov_len: len,
    }
}

/// Whether the kernel may be asked to copy; `false` once it refused (seccomp).
fn kernel_allowed() -> bool {
    !REFUSED.load(Ordering::Relaxed)
}

/// Note that the kernel refused with `e`; returns whether a CPU fallback is in order.
fn refused(e: &io::Error) -> bool {
    if !matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) {
        return false;
    }
    if !REFUSED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "process_vm_readv/process_vm_writev are not permitted here ({e}); copying device \
             bytes with the CPU, so a device that shrinks or goes away will kill this process"
        );
    }
    true
}

/// Which way a copy goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// From the mapping (`remote`) into local memory.
    Read,
    /// From local memory into the mapping (`remote`).
    Write,
}

/// One `process_vm_*` call: bytes moved, or the OS error.
///
/// # Safety
/// Every iovec must describe memory of this process that stays mapped for the call; for
/// `Dir::Read` the local ones must be writable and not aliased by any Rust reference.
unsafe fn call(dir: Dir, local: &[libc::iovec], remote: &[libc::iovec]) -> io::Result<usize> {
    let pid = std::process::id() as libc::pid_t;
    let syscall = match dir {
        Dir::Read => libc::process_vm_readv,
        Dir::Write => libc::process_vm_writev,
    };
    // SAFETY: the caller guarantees the iovecs; the counts are the slices' lengths. The kernel
    // checks every address and returns EFAULT (or a short count) instead of faulting us.
    let n = unsafe {
        syscall(
            pid,
            local.as_ptr(),
            local.len() as libc::c_ulong,
            remote.as_ptr(),
            remote.len() as libc::c_ulong,
            0,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Copy `len` bytes between `local` and `remote` (the mapping) by the kernel, retrying short
/// transfers; `Ok(false)` if the kernel refuses and the caller must copy itself.
///
/// # Safety
/// `remote..remote + len` must lie inside a live mapping (writable for `Dir::Write`), and
/// `local..local + len` inside memory the caller owns (writable for `Dir::Read`).
unsafe fn copy(dir: Dir, local: *const u8, remote: *const u8, len: usize) -> io::Result<bool> {
    let mut done = 0usize;
    while done < len {
        if !kernel_allowed() {
            return Ok(false);
        }
        // SAFETY: `done < len`, so both offsets stay inside the caller's ranges.
        let (l, r) = unsafe { (local.add(done), remote.add(done)) };
        let rest = len - done;
        // SAFETY: the ranges are the caller's (see above), shortened by what was copied.
        match unsafe { call(dir, &[iov(l, rest)], &[iov(r, rest)]) } {
            Ok(0) => return Err(io::Error::from_raw_os_error(libc::EFAULT)),
            Ok(n) => done += n,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) if done == 0 && refused(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Copy `buf.len()` bytes at `src` (inside a mapping) into `buf`.
///
/// # Safety
/// `src..src + buf.len()` must lie inside a live mapping.
pub(crate) unsafe fn read(src: *const u8, buf: &mut [u8]) -> io::Result<()> {
    // SAFETY: `buf` is ours and writable; the caller vouches for the source range.
    if !unsafe { copy(Dir::Read, buf.as_mut_ptr(), src, buf.len())? } {
        // SAFETY: as above; the CPU copy is the pre-existing behaviour where the kernel
        // refuses to copy (see the module documentation).
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
    }
    Ok(())
}

/// Copy `data` to `dst` (inside a writable mapping).
///
/// # Safety
/// `dst..dst + data.len()` must lie inside a live, writable mapping.
pub(crate) unsafe fn write(dst: *mut u8, data: &[u8]) -> io::Result<()> {
    // SAFETY: `data` is ours; the caller vouches for the destination range.
    if !unsafe { copy(Dir::Write, data.as_ptr(), dst, data.len())? } {
        // SAFETY: as above (CPU fallback where the kernel refuses).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
    }
    Ok(())
}

/// Set `len` bytes at `dst` (inside a writable mapping) to `byte`.
///
/// # Safety
/// As for [`write`].
pub(crate) unsafe fn fill(dst: *mut u8, len: usize, byte: u8) -> io::Result<()> {
    let chunk = vec![byte; len.min(1 << 20)];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len());
        // SAFETY: `done + n <= len`: inside the caller's range.
        unsafe { write(dst.add(done), &chunk[..n])? };
        done += n;
    }
    Ok(())
}

/// Make sure every page of `ptr..ptr + len` (inside a mapping) is present, by having the kernel
/// read one byte of each: a page that cannot be brought in is an error here, before a CPU
/// instruction (a cache-line flush) touches it.
///
/// # Safety
/// `ptr..ptr + len` must lie inside a live mapping.
pub(crate) unsafe fn probe(ptr: *const u8, len: usize) -> io::Result<()> {
    if len == 0 || !kernel_allowed() {
        return Ok(());
    }
    let first = ptr as usize & !(PROBE_STRIDE - 1);
    let end = ptr as usize + len;
    let mut pages = (first..end)
        .step_by(PROBE_STRIDE)
        .map(|p| iov(p.max(ptr as usize) as *const u8, 1));
    let mut sink = [0u8; IOV_MAX];
    let mut remote = Vec::with_capacity(IOV_MAX.min(len / PROBE_STRIDE + 2));
    loop {
        remote.clear();
        remote.extend(pages.by_ref().take(IOV_MAX));
        if remote.is_empty() {
            return Ok(());
        }
        let local = [iov(sink.as_mut_ptr(), remote.len())];
        // SAFETY: every remote byte is inside the caller's range; `sink` is ours and holds
        // one byte per remote iovec.
        match unsafe { call(Dir::Read, &local, &remote) } {
            Ok(n) if n == remote.len() => {}
            Ok(_) => return Err(io::Error::from_raw_os_error(libc::EFAULT)),
            Err(e) if refused(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_and_faults_are_errors_not_signals() {
        let (_dir, _, f) = crate::tests::rw_file(4 * 4096);
        let len = std::num::NonZeroUsize::new(4 * 4096).unwrap();
        let prot = nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE;
        // SAFETY: a fresh shared mapping of a file; unmapped at the end of the test.
        let m = unsafe {
            nix::sys::mman::mmap(None, len, prot, nix::sys::mman::MapFlags::MAP_SHARED, &f, 0)
        }
        .unwrap();
        let base = m.as_ptr().cast::<u8>();
        // SAFETY: every range below is inside the 16 KiB mapping.
        unsafe {
            write(base.add(4000), b"across a page").unwrap();
            let mut b = [0u8; 13];
            read(base.add(4000), &mut b).unwrap();
            assert_eq!(&b, b"across a page");
            fill(base.add(8192), 4096, 7).unwrap();
            probe(base, 4 * 4096).unwrap();
            // The file shrinks to one page: the rest of the mapping faults.
            f.set_len(4096).unwrap();
            let mut b = [0u8; 8];
            let e = read(base.add(8192), &mut b).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EFAULT));
            let e = write(base.add(4090), b"straddles the end").unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EFAULT));
            assert!(fill(base.add(4096), 10, 1).is_err());
            assert!(probe(base, 2 * 4096).is_err());
            probe(base.add(10), 100).unwrap();
            read(base.add(4000), &mut b).unwrap();
            assert_eq!(&b, b"across a");
            nix::sys::mman::munmap(m, len.get()).unwrap();
        }
    }
}
