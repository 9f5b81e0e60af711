//! The request loop: read a request from the channel, answer it, write the reply.
//!
//! The channel is `/dev/fuse` (one cloned descriptor per thread, so replies go back on the
//! descriptor the request came from) or, in tests, one end of a `SOCK_SEQPACKET` socket pair
//! shared by the threads. Every request gets exactly one reply except FORGET, BATCH_FORGET and
//! INTERRUPT. A reply write failing with ENOENT means the kernel gave up on the request
//! (interrupted) and is ignored; ENODEV (or end of file on a socket) means the file system was
//! unmounted, and the loop ends cleanly.

use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use fuse_famfs_proto::Errno;
use fuse_famfs_proto::abi::OutHeader;
use fuse_famfs_proto::reply;
use zerocopy::IntoBytes;

use crate::{Reply, Server, ServerError};

fn read_req(fd: &OwnedFd, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(n) => return Ok(n),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(e) => return Err(e.into()),
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
    server: &Server,
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
        match server.mapping().raw_range(off, len as usize) {
            Ok(p) => iovs.push(iov(p, len as usize)),
            Err(e) => {
                tracing::error!("READ reply range: {e}");
                let n = reply::error(out, unique, Errno::EIO).map_err(std::io::Error::other)?;
                return write_iov(fd, &[iov(out.as_ptr(), n)]);
            }
        }
    }
    write_iov(fd, &iovs)
}

/// Serve requests from `fd` until the file system is unmounted (or the socket closes), or
/// `stop` is set by another worker (DESTROY).
pub fn worker(server: &Server, fd: &OwnedFd, stop: &AtomicBool) -> Result<(), ServerError> {
    let mut req = vec![0u8; server.request_buffer_size()];
    let mut out = vec![0u8; server.request_buffer_size()];
    while !stop.load(Ordering::Relaxed) {
        let n = match read_req(fd, &mut req) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(()),
            Err(e) => return Err(ServerError::Channel(e)),
        };
        let reply =
            std::panic::catch_unwind(AssertUnwindSafe(|| server.handle(&req[..n], &mut out)))
                .unwrap_or_else(|_| {
                    tracing::error!("request handler panicked; answering EIO");
                    match fuse_famfs_proto::Request::parse(&req[..n]) {
                        Ok(r) if r.op.opcode().expects_reply() => {
                            reply::error(&mut out, r.header.unique, Errno::EIO)
                                .map_or(Reply::None, Reply::Bytes)
                        }
                        _ => Reply::None,
                    }
                });
        let sent = match reply {
            Reply::None => Ok(()),
            Reply::Bytes(k) => write_iov(fd, &[iov(out.as_ptr(), k)]),
            Reply::Last(k) => {
                stop.store(true, Ordering::Relaxed);
                write_iov(fd, &[iov(out.as_ptr(), k)])
            }
            Reply::Read { unique, segments } => send_read(server, fd, unique, &segments, &mut out),
        };
        match sent {
            Ok(()) => {}
            // The request was interrupted and the kernel no longer waits for it.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => return Ok(()),
            Err(e) => tracing::error!("writing a reply: {e}"),
        }
    }
    Ok(())
}

/// Run one worker thread per descriptor in `fds` and wait for all of them.
pub fn serve(server: &Arc<Server>, fds: Vec<OwnedFd>) -> Result<(), ServerError> {
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = fds
        .into_iter()
        .enumerate()
        .map(|(i, fd)| {
            let server = Arc::clone(server);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name(format!("famfs-fuse-{i}"))
                .spawn(move || worker(&server, &fd, &stop))
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
