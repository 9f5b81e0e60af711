//! The /dev/fuse transport: read a request from the channel, hand it to the [`Adapter`], and
//! write the reply it describes.
//!
//! The channel is `/dev/fuse` (one cloned descriptor per thread, so replies go back on the
//! descriptor the request came from) or, in tests, one end of a `SOCK_SEQPACKET` socket pair
//! shared by the threads. Every request gets exactly one reply except FORGET, BATCH_FORGET and
//! INTERRUPT. A reply write failing with ENOENT means the kernel gave
//! up on the request (interrupted) and is ignored; ENODEV (or end of file on a socket) means
//! the file system was unmounted, and the loop ends cleanly.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use famfs_fsdev::Mapping;
use fuse_famfs_proto::Errno;
use fuse_famfs_proto::abi::OutHeader;
use zerocopy::IntoBytes;

use crate::adapter::error_reply;
use crate::{Adapter, Reply, ServerError};

/// Read one request into `buf`: its length, or `None` once the file system is unmounted (or
/// the socket closed).
pub(crate) fn read_req(fd: &OwnedFd, buf: &mut [u8]) -> Result<Option<usize>, ServerError> {
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(0) | Err(nix::errno::Errno::ENODEV) => return Ok(None),
            Ok(n) => return Ok(Some(n)),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(e) => return Err(ServerError::Channel(e.into())),
        }
    }
}

/// Write `iovs` as one message (the FUSE device takes a reply in a single write).
fn write_iov(fd: &OwnedFd, iovs: &[libc::iovec]) -> std::io::Result<()> {
    let total: usize = iovs.iter().map(|v| v.iov_len).sum();
    loop {
        // SAFETY: every iovec points into memory that stays alive and mapped for the call: the
        // reply buffer, the header on this stack frame, or the server's device mapping (whose
        // ranges were bounds-checked by `Mapping::raw_range`). The kernel only reads them.
        let n = unsafe { libc::writev(fd.as_raw_fd(), iovs.as_ptr(), iovs.len() as libc::c_int) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        if n as usize != total {
            return Err(std::io::Error::other(format!(
                "short reply write: {n} of {total}"
            )));
        }
        return Ok(());
    }
}

fn iov(ptr: *const u8, len: usize) -> libc::iovec {
    libc::iovec {
        iov_base: ptr as *mut libc::c_void,
        iov_len: len,
    }
}

/// Send a READ reply: the header, then the device ranges straight from the mapping.
fn send_read(
    map: &Mapping,
    fd: &OwnedFd,
    unique: u64,
    segments: &[(u64, u64)],
    out: &mut [u8],
) -> std::io::Result<()> {
    let total: u64 = segments.iter().map(|s| s.1).sum();
    let mut iovs = Vec::with_capacity(segments.len() + 1);
    let hdr = OutHeader {
        len: (OutHeader::SIZE as u64 + total) as u32,
        error: 0,
        unique,
    };
    let hdr = hdr.as_bytes();
    iovs.push(iov(hdr.as_ptr(), hdr.len()));
    for &(off, len) in segments {
        match map.raw_range(off, len as usize) {
            Ok(p) => iovs.push(iov(p, len as usize)),
            Err(e) => {
                tracing::error!("READ reply range: {e}");
                return match error_reply(out, unique, Errno::EIO) {
                    Reply::Bytes(n) => write_iov(fd, &[iov(out.as_ptr(), n)]),
                    _ => Err(std::io::Error::other("cannot build an error reply")),
                };
            }
        }
    }
    write_iov(fd, &iovs)
}

/// Send what `reply` describes (built in `out`; READ segments are ranges of `map`). Returns
/// false once the file system is unmounted.
pub(crate) fn send(map: &Mapping, fd: &OwnedFd, reply: &Reply, out: &mut [u8]) -> bool {
    let sent = match reply {
        Reply::None => Ok(()),
        Reply::Bytes(k) | Reply::Last(k) => write_iov(fd, &[iov(out.as_ptr(), *k)]),
        Reply::Read { unique, segments } => send_read(map, fd, *unique, segments, out),
    };
    match sent {
        Ok(()) => true,
        // The request was interrupted and the kernel no longer waits for it.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => false,
        Err(e) if e.raw_os_error() == Some(libc::EPIPE) => false,
        Err(e) => {
            tracing::error!("writing a reply: {e}");
            true
        }
    }
}

/// Serve requests from `fd` until the file system is unmounted (or the socket closes), or
/// `stop` is set by another worker (DESTROY).
pub fn worker(adapter: &Adapter, fd: &OwnedFd, stop: &AtomicBool) -> Result<(), ServerError> {
    let size = adapter.fs().config().request_buffer_size();
    let (mut req, mut out) = (vec![0u8; size], vec![0u8; size]);
    while !stop.load(Ordering::Relaxed) {
        let Some(n) = read_req(fd, &mut req)? else {
            return Ok(());
        };
        let reply = adapter.handle(&req[..n], &mut out);
        if matches!(reply, Reply::Last(_)) {
            stop.store(true, Ordering::Relaxed);
        }
        if !send(adapter.fs().mapping(), fd, &reply, &mut out) {
            return Ok(());
        }
    }
    Ok(())
}

/// Run one worker thread per descriptor in `fds` and wait for all of them.
pub fn serve(adapter: &Arc<Adapter>, fds: Vec<OwnedFd>) -> Result<(), ServerError> {
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = fds
        .into_iter()
        .enumerate()
        .map(|(i, fd)| {
            let adapter = Arc::clone(adapter);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name(format!("famfs-fuse-{i}"))
                .spawn(move || worker(&adapter, &fd, &stop))
                .map_err(ServerError::Channel)
        })
        .collect::<Result<_, _>>()?;
    let mut result = Ok(());
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(_) => {
                result = Err(ServerError::Channel(std::io::Error::other(
                    "worker panicked",
                )))
            }
        }
    }
    result
}
