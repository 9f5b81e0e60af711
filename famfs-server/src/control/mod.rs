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
//! answered by [`ops`] from the model's shared [`Famfs`](famfs_log::Famfs), one request at a
//! time per connection; appends are serialized by the log's lock (one writer per request, which
//! also takes the media lock), so concurrent clients interleave whole entries.
//!
//! Started from `famfs_fused` with [`start`]; the [`ControlServer`] it returns removes the
//! socket when dropped.

pub mod proto;

mod ops;

use std::io::{BufReader, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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
    let shared = Arc::new(Shared {
        fs: Arc::clone(&fs),
        opts,
        requests: AtomicU64::new(0),
        active: AtomicUsize::new(0),
    });
    std::thread::Builder::new()
        .name("famfs-control".into())
        .spawn(move || accept_loop(&listener, &shared))?;
    fs.publish_control(&path);
    tracing::info!("control channel at {}", path.display());
    Ok(server)
}

/// What every connection shares.
struct Shared {
    fs: Arc<FileSystem>,
    opts: ControlOptions,
    requests: AtomicU64,
    active: AtomicUsize,
}

fn accept_loop(listener: &UnixListener, shared: &Arc<Shared>) {
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("control channel: accept: {e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
        };
        if shared.active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            shared.active.fetch_sub(1, Ordering::AcqRel);
            refuse_busy(stream);
            continue;
        }
        let sh = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("famfs-control-conn".into())
            .spawn(move || {
                serve_connection(stream, &sh);
                sh.active.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            shared.active.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!("control channel: cannot start a connection thread: {e}");
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

fn serve_connection(stream: UnixStream, shared: &Shared) {
    let mut session = Session::new(peer_is_root(&stream));
    let Ok(w) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    let mut writer = BufWriter::new(w);
    let mut buf = Vec::new();
    let ctx_device = shared.fs.device_name_bytes();
    loop {
        match proto::read_frame(&mut reader, &mut buf) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::debug!("control channel: {e}; closing the connection");
                return;
            }
        }
        shared.requests.fetch_add(1, Ordering::Relaxed);
        let ctx = ops::Ctx {
            device: ctx_device,
            mountpoint: shared.opts.mountpoint.as_deref(),
            log_control: shared.opts.log_control.as_deref(),
            requests: &shared.requests,
        };
        let reply = answer(shared.fs.shared_log(), &mut session, &ctx, &buf);
        if proto::write_frame(&mut writer, &reply)
            .and_then(|()| writer.flush())
            .is_err()
        {
            return;
        }
    }
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
