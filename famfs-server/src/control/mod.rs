//! The control channel: how the famfs CLI asks the daemon to append to the log.
//!
//! The daemon already holds the replayed log and the allocator, so a command on a mounted famfs
//! (`famfs creat`, `mkdir`, `cp`, `clone`) asks it to allocate and log new files instead of
//! replaying the whole log in its own process: the cost of a create no longer grows with the
//! log. The CLI then moves file data through the mount itself, holding no lock.
//!
//! **Transport.** A Unix stream socket, root only: the socket file is mode 0600 in
//! `/run/famfs` (or the temporary directory), and every connection's peer is checked with
//! `SO_PEERCRED` (uid 0). The daemon publishes the socket's path in the extended attribute
//! `user.famfs.control` of the mount's root directory, so the CLI finds the channel of the
//! daemon that serves the path it was given. A socket works the same whether file data goes
//! through the daemon (stock kernel) or never does (famfs kernel), unlike an ioctl on a file in
//! the mount. A daemon without the attribute is an older one: the CLI then appends in its own
//! process under the `.meta/.log` lock, as before.
//!
//! **Wire format**: [`proto`] (length-prefixed JSON frames, versioned). **Requests** are
//! answered by [`ops`] from the model's shared [`Famfs`](famfs_log::Famfs) on one thread, which
//! polls every connection: requests are handled one at a time in arrival order, each append
//! under the log's lock (one writer per request, which also takes the media lock), so
//! concurrent clients interleave whole entries. A client holds nothing between its requests
//! (`cp` copies a file's data between two of them).
//!
//! Started from `famfs_fused` with [`start`]; the [`ControlServer`] it returns removes the
//! socket when dropped.

pub mod proto;

mod ops;

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::FileSystem;
use crate::refresh::SharedLog;

use ops::Session;

/// Most connections served at once; more are answered with an error and closed.
const MAX_CONNECTIONS: usize = 128;

/// The daemon's log filter, as `set-log-level` and `status` reach it.
pub trait LogControl: Send + Sync {
    /// The current filter (`RUST_LOG` syntax).
    fn filter(&self) -> String;
    /// Replace the filter.
    fn set_filter(&self, filter: &str) -> Result<(), String>;
}

/// How to run the channel.
#[derive(Clone)]
pub struct ControlOptions {
    /// The socket path (see [`default_socket_path`]).
    pub socket: PathBuf,
    /// Where the file system is mounted (reported by `status`).
    pub mountpoint: Option<PathBuf>,
    /// The daemon's log filter, if it can be changed at run time.
    pub log_control: Option<Arc<dyn LogControl>>,
}

impl std::fmt::Debug for ControlOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlOptions")
            .field("socket", &self.socket)
            .field("mountpoint", &self.mountpoint)
            .field("log_control", &self.log_control.is_some())
            .finish()
    }
}

/// The running channel; dropping it removes the socket (the accepting thread ends with the
/// process).
#[derive(Debug)]
pub struct ControlServer {
    socket: PathBuf,
}

impl ControlServer {
    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Where this process puts its socket: `/run/famfs/fused-<pid>.sock`, or in the temporary
/// directory when `/run/famfs` cannot be made.
pub fn default_socket_path() -> PathBuf {
    let name = format!("fused-{}.sock", std::process::id());
    let run = Path::new("/run/famfs");
    let ok = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(run)
        .is_ok();
    if ok && nix::unistd::access(run, nix::unistd::AccessFlags::W_OK).is_ok() {
        return run.join(name);
    }
    std::env::temp_dir().join(format!("famfs-{name}"))
}

/// Bind the socket (mode 0600), publish its path in the root's `user.famfs.control`, and start
/// accepting connections on a thread.
pub fn start(fs: Arc<FileSystem>, opts: ControlOptions) -> std::io::Result<ControlServer> {
    let path = opts.socket.clone();
    // A socket left by a daemon that died with this pid: nothing listens there any more.
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_socket()) {
        std::fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path)?;
    let server = ControlServer {
        socket: path.clone(),
    };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let shared = Shared {
        fs: Arc::clone(&fs),
        opts,
        requests: AtomicU64::new(0),
    };
    std::thread::Builder::new()
        .name("famfs-control".into())
        .spawn(move || serve(&listener, &shared))?;
    fs.publish_control(&path);
    tracing::info!("control channel at {}", path.display());
    Ok(server)
}

/// What the serving thread shares with nobody else but the file system.
struct Shared {
    fs: Arc<FileSystem>,
    opts: ControlOptions,
    requests: AtomicU64,
}

/// One client connection: its socket (non-blocking), bytes read but not yet a whole frame,
/// and its session.
struct Conn {
    stream: UnixStream,
    inbuf: Vec<u8>,
    session: Session,
}

/// Serve every connection from this one thread, woken by poll(2): a client's `connect` and its
/// first request usually cost one wake-up, and requests are answered one at a time, in
/// arrival order.
fn serve(listener: &UnixListener, shared: &Shared) {
    if let Err(e) = listener.set_nonblocking(true) {
        tracing::error!("control channel: {e}; not serving");
        return;
    }
    let mut conns: Vec<Conn> = Vec::new();
    loop {
        let ready = match wait_ready(listener, &conns) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("control channel: poll: {e}; not serving");
                return;
            }
        };
        // Back to front, so that removing a connection moves only one already handled.
        for i in (0..conns.len()).rev() {
            if ready[i + 1] && !service(&mut conns[i], shared) {
                conns.swap_remove(i);
            }
        }
        if ready[0] {
            accept_all(listener, &mut conns);
        }
    }
}

/// Which of the listener (index 0) and the connections (1..) have something to read (or hung
/// up).
fn wait_ready(listener: &UnixListener, conns: &[Conn]) -> nix::Result<Vec<bool>> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds: Vec<PollFd<'_>> = std::iter::once(listener.as_fd())
        .chain(conns.iter().map(|c| c.stream.as_fd()))
        .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
        .collect();
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(fds.iter().map(|f| f.any().unwrap_or(true)).collect())
}

fn accept_all(listener: &UnixListener, conns: &mut Vec<Conn>) {
    loop {
        match listener.accept() {
            Ok((stream, _)) if conns.len() >= MAX_CONNECTIONS => refuse_busy(stream),
            Ok((stream, _)) => {
                let root = peer_is_root(&stream);
                if stream.set_nonblocking(true).is_ok() {
                    conns.push(Conn {
                        stream,
                        inbuf: Vec::new(),
                        session: Session::new(root),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) => {
                tracing::warn!("control channel: accept: {e}");
                return;
            }
        }
    }
}

fn refuse_busy(mut stream: UnixStream) {
    let e = proto::WireError::new(
        proto::ErrorKind::Internal,
        libc::EBUSY,
        format!("the daemon is serving {MAX_CONNECTIONS} control connections; try again"),
    );
    let _ = proto::write_frame(&mut stream, &proto::encode_reply(&Err(e)));
}

/// Whether the peer of `stream` is root.
fn peer_is_root(stream: &UnixStream) -> bool {
    match nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials) {
        Ok(c) => c.uid() == 0,
        Err(e) => {
            tracing::warn!("control channel: SO_PEERCRED: {e}");
            false
        }
    }
}

/// Read what `c` sent and answer every whole frame; false when the connection is done (closed,
/// broken, or a frame too large).
fn service(c: &mut Conn, shared: &Shared) -> bool {
    let mut chunk = [0u8; 8192];
    loop {
        match c.stream.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => c.inbuf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    while let Some(n) = whole_frame(&c.inbuf) {
        let Some(n) = n else {
            tracing::debug!("control channel: frame too large; closing the connection");
            return false;
        };
        shared.requests.fetch_add(1, Ordering::Relaxed);
        // Started once the log has been read; a file system without one has no channel.
        let Some(log) = shared.fs.shared_log() else {
            return false;
        };
        let ctx = ops::Ctx {
            device: shared.fs.device_name_bytes(),
            mountpoint: shared.opts.mountpoint.as_deref(),
            log_control: shared.opts.log_control.as_deref(),
            requests: &shared.requests,
        };
        let reply = answer(log, &mut c.session, &ctx, &c.inbuf[4..4 + n]);
        c.inbuf.drain(..4 + n);
        let mut out = Vec::with_capacity(4 + reply.len());
        if proto::write_frame(&mut out, &reply).is_err() || !send_all(&c.stream, &out) {
            return false;
        }
    }
    true
}

/// The body length of the frame at the start of `buf`: `None` while incomplete, `Some(None)`
/// for a frame longer than [`proto::MAX_FRAME`].
fn whole_frame(buf: &[u8]) -> Option<Option<usize>> {
    let len = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    if len > proto::MAX_FRAME {
        return Some(None);
    }
    (buf.len() >= 4 + len).then_some(Some(len))
}

/// Write all of `bytes` to a non-blocking socket, waiting (up to 5 s at a time) for room.
fn send_all(mut stream: &UnixStream, mut bytes: &[u8]) -> bool {
    use nix::poll::{PollFd, PollFlags, poll};
    use std::os::fd::AsFd;
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLOUT)];
                if !matches!(poll(&mut fds, 5000u16), Ok(n) if n > 0) {
                    return false;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// The reply to one frame (never panics: a handler that does is answered as an internal
/// error).
pub(crate) fn answer<L: famfs_fsdev::Media>(
    log: &SharedLog<L>,
    session: &mut Session,
    ctx: &ops::Ctx<'_>,
    frame: &[u8],
) -> Vec<u8> {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let req = proto::parse_request(frame)?;
        tracing::debug!("control request: {req:?}");
        ops::handle(log, session, ctx, req)
    }));
    let r = r.unwrap_or_else(|_| {
        tracing::error!("control request handler panicked");
        Err(proto::WireError::new(
            proto::ErrorKind::Internal,
            libc::EIO,
            "internal error in the famfs daemon",
        ))
    });
    proto::encode_reply(&r)
}

#[cfg(test)]
mod tests;
