//! A connection from INIT to unmount: INIT is answered on the first /dev/fuse descriptor, then
//! the connection is served by the transport the configuration and the kernel allow:
//!
//! * FUSE over io_uring ([`transport::uring`](crate::transport::uring)) when
//!   [`Config::transport`](crate::Config::transport) is `Auto` or `Uring`, the channel is
//!   /dev/fuse, the rings can be built, and the kernel offers `FUSE_OVER_IO_URING` (Linux 6.14+
//!   with the `fuse` module parameter `enable_uring` on) and accepts the registrations;
//! * otherwise the /dev/fuse read/writev loop ([`transport::dev`](crate::transport::dev)), on
//!   `Config::threads` cloned descriptors; `Auto` says why in an info log line, `Uring` fails.
//!
//! In tests the channel may be one end of a socket pair: that always uses the /dev/fuse loop.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::adapter::{max_pages_limit, request_size};
use crate::transport::dev::{read_req, send};
use crate::transport::uring::{self, Prepared};
use crate::{Adapter, FileSystem, Handshake, ServerError, Transport};

pub use crate::transport::dev::{serve, worker};

/// Answer the requests on `fd` until INIT is negotiated, and return the adapter for the rest
/// of the connection; `None` if the file system was unmounted (or the socket closed) first.
pub fn handshake(fs: &Arc<FileSystem>, fd: &OwnedFd) -> Result<Option<Adapter>, ServerError> {
    handshake_with(fs, fd, false)
}

/// [`handshake`], accepting FUSE over io_uring if `uring` (the rings are ready).
fn handshake_with(
    fs: &Arc<FileSystem>,
    fd: &OwnedFd,
    uring: bool,
) -> Result<Option<Adapter>, ServerError> {
    let mut req = vec![0u8; fs.config().request_buffer_size()];
    let mut out = vec![0u8; fs.config().request_buffer_size()];
    loop {
        let Some(n) = read_req(fd, &mut req)? else {
            return Ok(None);
        };
        let (reply, adapter) = match Adapter::init_with(fs, &req[..n], &mut out, uring) {
            Handshake::Ready { adapter, reply } => (reply, Some(adapter)),
            Handshake::Pending(reply) => (reply, None),
        };
        if !send(fs.mapping(), fd, &reply, &mut out) {
            return Ok(None);
        }
        if adapter.is_some() {
            return Ok(adapter);
        }
    }
}

fn is_char_device(fd: &OwnedFd) -> bool {
    nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFCHR)
}

/// Payload buffer size of a ring entry: what the kernel requires for the request size INIT
/// asks for (`max(FUSE_MIN_READ_BUFFER, max_write, max_pages * 4096)`).
fn ring_payload(fs: &FileSystem) -> usize {
    let (pages, max_write) = request_size(fs.config(), max_pages_limit());
    (max_write as usize)
        .max(usize::from(pages) * 4096)
        .max(fuse_famfs_proto::abi::FUSE_MIN_READ_BUFFER)
}

/// Build the rings if the configuration and channel allow; `Err` only when io_uring is
/// required and impossible.
fn prepare_uring(
    fs: &Arc<FileSystem>,
    first: &Arc<OwnedFd>,
    stop: &Arc<AtomicBool>,
) -> Result<Option<Prepared>, ServerError> {
    let cfg = fs.config();
    let why = match cfg.transport {
        Transport::Dev => return Ok(None),
        _ if !is_char_device(first) => "the channel is not /dev/fuse".to_string(),
        _ if uring::switched_off() => uring::not_offered_reason(),
        _ => match uring::prepare(first, cfg.uring_depth, ring_payload(fs), stop) {
            Ok(p) => return Ok(Some(p)),
            Err(e) => e.to_string(),
        },
    };
    if cfg.transport == Transport::Uring {
        return Err(ServerError::Uring(why));
    }
    tracing::info!("FUSE over io_uring not used: {why}; using the /dev/fuse loop");
    Ok(None)
}

/// Serve one connection: negotiate INIT on `first`, show the adapter to `ready`, then serve
/// it over io_uring (see the module docs) or with `Config::threads` /dev/fuse workers
/// (descriptors made by `clone`; fewer, with a warning, if that fails) until the file system
/// is unmounted.
pub fn run(
    fs: &Arc<FileSystem>,
    first: OwnedFd,
    clone: impl Fn(&OwnedFd) -> Result<OwnedFd, ServerError>,
    ready: impl FnOnce(&Arc<Adapter>),
) -> Result<(), ServerError> {
    let first = Arc::new(first);
    let stop = Arc::new(AtomicBool::new(false));
    let prepared = prepare_uring(fs, &first, &stop)?;
    let Some(adapter) = handshake_with(fs, &first, prepared.is_some())? else {
        return Ok(());
    };
    if let Some(why) = crate::adapter::famfs_needed(fs, adapter.connection()) {
        return Err(ServerError::FamfsKernelNeeded(why));
    }
    let adapter = Arc::new(adapter);
    ready(&adapter);
    if let Some(p) = prepared {
        let required = fs.config().transport == Transport::Uring;
        if !adapter.connection().uring() {
            let why = uring::not_offered_reason();
            drop(p);
            if required {
                return Err(ServerError::Uring(why));
            }
            tracing::info!("FUSE over io_uring not used: {why}; using the /dev/fuse loop");
        } else {
            let n = p.len();
            let (running, registered) = p.start(&adapter);
            match registered {
                Ok(()) => {
                    tracing::info!("FUSE over io_uring: {n} queues, one per CPU");
                    // FORGET and INTERRUPT still come over /dev/fuse.
                    let result = worker(&adapter, &first, &stop);
                    running.join();
                    return result;
                }
                Err(why) if required => {
                    drop(running);
                    return Err(ServerError::Uring(why));
                }
                Err(why) => {
                    tracing::info!("FUSE over io_uring not used: {why}; using the /dev/fuse loop");
                    let result = serve_dev(&adapter, first, clone);
                    running.join();
                    return result;
                }
            }
        }
    }
    serve_dev(&adapter, first, clone)
}

/// The /dev/fuse loop on `first` and `Config::threads - 1` clones of it.
fn serve_dev(
    adapter: &Arc<Adapter>,
    first: Arc<OwnedFd>,
    clone: impl Fn(&OwnedFd) -> Result<OwnedFd, ServerError>,
) -> Result<(), ServerError> {
    let mut fds = Vec::new();
    // The daemon's own reads through its mount need a worker besides the one that may be
    // busy with the request that caused them.
    let least = if adapter.fs().meta_through_mount() {
        2
    } else {
        1
    };
    for _ in 1..adapter.fs().config().threads.max(least) {
        match clone(&first) {
            Ok(fd) => fds.push(fd),
            Err(e) => {
                tracing::warn!("{e}; using fewer threads");
                break;
            }
        }
    }
    // Queue threads of a ring not used may still hold the descriptor for a moment.
    let first = Arc::try_unwrap(first)
        .or_else(|shared| shared.try_clone())
        .map_err(ServerError::Channel)?;
    fds.insert(0, first);
    serve(adapter, fds)
}
