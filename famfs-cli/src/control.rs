//! The client of the daemon's control channel (`famfs_server::control`): how a command on a
//! mounted famfs asks `famfs_fused` to allocate and log files, instead of replaying the whole
//! log in this process.
//!
//! The daemon publishes its socket in the extended attribute `user.famfs.control` of the
//! mount's root. No attribute (an older daemon, or one started with `--no-control`), a socket
//! that does not answer, or `FAMFS_CONTROL=off` in the environment: [`connect`] says why the
//! channel is unavailable and the caller appends in its own process, as before.

use std::io::{BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::Result;
use famfs_server::control::proto::{self, Answer, CONTROL_XATTR, ErrorKind, Request, WireError};
use uuid::Uuid;

use crate::error::fail;

/// Environment variable: `off` makes mounted commands append in their own process even when
/// the daemon offers the control channel (for comparisons and debugging).
pub const CONTROL_ENV: &str = "FAMFS_CONTROL";

/// A session with the daemon, after an accepted `hello`.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    socket: PathBuf,
    buf: Vec<u8>,
    /// The device size from the superblock (interleave defaults need it).
    pub dev_size: u64,
}

/// The outcome of [`connect`].
#[derive(Debug)]
pub enum Connect {
    /// The daemon accepted this host as the master's writer.
    Ready(Client),
    /// No channel; the reason, for a debug line.
    Unavailable(String),
}

/// The value of extended attribute `name` of `path`; `None` when it has none (or the file
/// system has no extended attributes).
fn get_xattr(path: &Path, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    match crate::xattr::read(path, name, 4096) {
        Ok(v) => Ok(Some(v)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENODATA | libc::ENOTSUP)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Find the control channel of the famfs mounted at `root` and start a writing session as
/// `host` (this host's system UUID). An error is a refusal the user must see (e.g. not the
/// master); an unavailable channel is not an error.
pub fn connect(root: &Path, host: Uuid) -> Result<Connect> {
    if std::env::var(CONTROL_ENV).is_ok_and(|v| v == "off") {
        return Ok(Connect::Unavailable(format!("{CONTROL_ENV}=off")));
    }
    let socket = match get_xattr(root, CONTROL_XATTR) {
        Ok(Some(s)) => PathBuf::from(std::ffi::OsStr::from_bytes(&s)),
        Ok(None) => {
            return Ok(Connect::Unavailable(
                "the daemon offers no control channel (an older famfs_fused?)".into(),
            ));
        }
        Err(e) => {
            return Ok(Connect::Unavailable(format!(
                "cannot read {CONTROL_XATTR}: {e}"
            )));
        }
    };
    connect_socket(&socket, host)
}

/// [`connect`] to a known socket.
pub fn connect_socket(socket: &Path, host: Uuid) -> Result<Connect> {
    let stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => {
            return Ok(Connect::Unavailable(format!(
                "cannot connect to {}: {e}",
                socket.display()
            )));
        }
    };
    let writer = stream.try_clone()?;
    let mut c = Client {
        reader: BufReader::new(stream),
        writer,
        socket: socket.to_path_buf(),
        buf: Vec::new(),
        dev_size: 0,
    };
    let hello = Request::Hello {
        host: Some(host.to_string()),
    };
    match c.call(&hello) {
        Ok(Ok(Answer::Hello { dev_size, .. })) => {
            c.dev_size = dev_size;
            Ok(Connect::Ready(c))
        }
        Ok(Ok(other)) => Ok(Connect::Unavailable(format!(
            "unexpected answer to hello: {other:?}"
        ))),
        Ok(Err(e))
            if matches!(
                e.kind,
                ErrorKind::UnsupportedVersion
                    | ErrorKind::UnsupportedOp
                    | ErrorKind::Permission
                    | ErrorKind::BadRequest
            ) =>
        {
            Ok(Connect::Unavailable(e.to_string()))
        }
        Ok(Err(e)) => Err(anyhow::Error::new(crate::writer::OpError::from(e))),
        Err(e) => Ok(Connect::Unavailable(format!("{e:#}"))),
    }
}

/// Open the control channel of the famfs mounted at `root` without starting a writing session
/// (no `hello`): for the requests any root client may make (`status`, `set-log-level`). The
/// channel is root only; `Err` says why it cannot be used, with the errno as exit status.
pub fn connect_admin(root: &Path) -> Result<Client> {
    let socket = match get_xattr(root, CONTROL_XATTR) {
        Ok(Some(s)) => PathBuf::from(std::ffi::OsStr::from_bytes(&s)),
        Ok(None) => {
            return Err(fail(
                libc::EOPNOTSUPP,
                format!(
                    "the famfs_fused serving {} has no control channel (started with \
                     --no-control, or an older daemon)",
                    root.display()
                ),
            ));
        }
        Err(e) => {
            return Err(fail(
                e.raw_os_error().unwrap_or(libc::EIO),
                format!("{}: cannot read {CONTROL_XATTR}: {e}", root.display()),
            ));
        }
    };
    let stream = UnixStream::connect(&socket).map_err(|e| {
        let errno = e.raw_os_error().unwrap_or(libc::EIO);
        let why = if errno == libc::EACCES {
            " (the control channel is for root only)".to_string()
        } else {
            String::new()
        };
        fail(
            errno,
            format!(
                "cannot connect to the control channel {} of {}: {e}{why}",
                socket.display(),
                root.display()
            ),
        )
    })?;
    let writer = stream.try_clone()?;
    Ok(Client {
        reader: BufReader::new(stream),
        writer,
        socket,
        buf: Vec::new(),
        dev_size: 0,
    })
}

impl Client {
    /// Send `req` and read the daemon's answer. The outer error is a broken channel: the
    /// request may or may not have been carried out.
    pub fn call(&mut self, req: &Request) -> Result<Result<Answer, WireError>> {
        let lost = |e: &dyn std::fmt::Display| {
            fail(
                libc::EIO,
                format!(
                    "lost the famfs daemon's control channel {} ({e}); the last request may \
                     or may not have been carried out",
                    self.socket.display()
                ),
            )
        };
        proto::write_frame(&mut self.writer, &proto::encode_request(req))
            .and_then(|()| self.writer.flush())
            .map_err(|e| lost(&e))?;
        match proto::read_frame(&mut self.reader, &mut self.buf) {
            Ok(true) => {}
            Ok(false) => return Err(lost(&"the daemon closed it")),
            Err(e) => return Err(lost(&e)),
        }
        proto::parse_reply(&self.buf).map_err(|e| lost(&e))
    }
}
