//! The protocol adapter: from request bytes to reply bytes.
//!
//! It owns everything FUSE about a request — its `unique`, the output buffer, the reply layout
//! (built with `fuse_famfs_proto::reply`) — and asks the [`FileSystem`] typed questions. Every
//! request of a connection passes through one function, [`respond`], which parses it, answers
//! malformed ones, turns an errno into an error reply, and answers EIO if a handler panics.
//! A transport (the /dev/fuse loop in [`session`](crate::session)) hands it a request slice and
//! sends the [`Reply`] it describes.

mod fmap;
mod init;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use famfs_log::namespace::Ino;
use fuse_famfs_proto::abi::{DaxdevOut, Opcode, ReadIn};
use fuse_famfs_proto::reply::{self, ReaddirPlusWriter, ReaddirWriter};
use fuse_famfs_proto::{Errno, Operation, Request};

use crate::FileSystem;

pub use init::{Connection, Handshake, has_cap_sys_rawio};
pub(crate) use init::{famfs_needed, famfs_needed_message, max_pages_limit, request_size};

/// What to send back for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Nothing (FORGET, BATCH_FORGET, INTERRUPT).
    None,
    /// `out[..n]` is the whole reply.
    Bytes(usize),
    /// A READ reply: a 16-byte header followed by these ranges of the device mapping, sent
    /// without copying them into a buffer first.
    Read {
        /// The request's unique id.
        unique: u64,
        /// `(mapping offset, length)` pieces, in file order.
        segments: Vec<(u64, u64)>,
    },
    /// `out[..n]` is the reply, after which the session ends (DESTROY).
    Last(usize),
}

/// Answers the requests of one initialised connection: the file system and what INIT settled
/// (fixed for the connection's life).
#[derive(Debug)]
pub struct Adapter {
    fs: Arc<FileSystem>,
    conn: Connection,
}

/// The error reply for `unique` (nothing if even that cannot be built).
pub(crate) fn error_reply(out: &mut [u8], unique: u64, errno: Errno) -> Reply {
    reply::error(out, unique, errno).map_or(Reply::None, Reply::Bytes)
}

/// A built reply of `n` bytes, or EIO if it could not be built.
fn bytes(n: Result<usize, reply::BuildError>) -> Result<Reply, Errno> {
    n.map(Reply::Bytes).map_err(|e| {
        tracing::error!("cannot build reply: {e}");
        Errno::EIO
    })
}

/// The one place every request passes: parse `req`, let `answer` build the reply into `out`,
/// and answer an errno (or a malformed request, or a panic) with an error reply.
pub(crate) fn respond(
    req: &[u8],
    out: &mut [u8],
    answer: impl FnOnce(&Request<'_>, &mut [u8]) -> Result<Reply, Errno>,
) -> Reply {
    let r = match Request::parse(req) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("malformed request: {e}");
            return match e.reply_errno() {
                Some((unique, errno)) => error_reply(out, unique, errno),
                None => Reply::None,
            };
        }
    };
    let unique = r.header.unique;
    match std::panic::catch_unwind(AssertUnwindSafe(|| answer(&r, &mut *out))) {
        Ok(Ok(rep)) => rep,
        Ok(Err(errno)) => error_reply(out, unique, errno),
        Err(_) => {
            tracing::error!("request handler panicked; answering EIO");
            if r.op.opcode().expects_reply() {
                error_reply(out, unique, Errno::EIO)
            } else {
                Reply::None
            }
        }
    }
}

/// Namespace changes: files and directories are created with the famfs CLI, which logs them;
/// FALLOCATE cannot grow a famfs file either.
const NAMESPACE_CHANGES: [Opcode; 11] = [
    Opcode::SYMLINK,
    Opcode::MKNOD,
    Opcode::MKDIR,
    Opcode::UNLINK,
    Opcode::RMDIR,
    Opcode::RENAME,
    Opcode::LINK,
    Opcode::SETXATTR,
    Opcode::REMOVEXATTR,
    Opcode::RENAME2,
    Opcode::FALLOCATE,
];

impl Adapter {
    /// The file system served.
    pub fn fs(&self) -> &Arc<FileSystem> {
        &self.fs
    }

    /// What INIT settled.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Whether the kernel took the famfs path (GET_FMAP) in INIT.
    pub fn famfs_enabled(&self) -> bool {
        self.conn.famfs()
    }

    /// Answer one request (`req`: exactly the bytes read from the channel) into `out`, which
    /// must hold at least [`Config::request_buffer_size`](crate::Config::request_buffer_size)
    /// bytes.
    pub fn handle(&self, req: &[u8], out: &mut [u8]) -> Reply {
        let reply = respond(req, out, |r, out| self.dispatch(r, out));
        self.fs.stats().record(req, out, &reply);
        reply
    }

    fn dispatch(&self, r: &Request<'_>, out: &mut [u8]) -> Result<Reply, Errno> {
        let fs = &*self.fs;
        let unique = r.header.unique;
        // The wire's nodeid becomes a typed inode number here, and only here.
        let ino = Ino::new(r.header.nodeid);
        match &r.op {
            Operation::Init(init) => Err(init::again(init)),
            Operation::Destroy => Ok(Reply::Last(
                reply::empty(out, unique).map_err(|_| Errno::EIO)?,
            )),
            Operation::Forget(_) | Operation::BatchForget(_) | Operation::Interrupt(_) => {
                Ok(Reply::None)
            }
            Operation::Lookup { name } => bytes(reply::entry(out, unique, &fs.lookup(ino, name)?)),
            Operation::Getattr(_) => bytes(reply::attr(out, unique, &fs.getattr(ino)?)),
            Operation::Setattr(s) => bytes(reply::attr(out, unique, &fs.setattr(ino, s)?)),
            Operation::Open(o) => {
                fs.open_file(ino, o.flags)?;
                // The file handle is the inode number: nothing is kept per open.
                bytes(reply::open(out, unique, ino.get(), self.conn.open_flags))
            }
            Operation::Opendir(_) => {
                fs.opendir(ino)?;
                bytes(reply::open(out, unique, ino.get(), 0))
            }
            Operation::Read(rd) => Ok(Reply::Read {
                unique,
                segments: fs.read(ino, rd.offset, rd.size)?,
            }),
            Operation::Write { arg, data } => {
                bytes(reply::write(out, unique, fs.write(ino, arg.offset, data)?))
            }
            Operation::Release(_)
            | Operation::Releasedir(_)
            | Operation::Flush(_)
            | Operation::Fsync(_)
            | Operation::Fsyncdir(_) => bytes(reply::empty(out, unique)),
            Operation::Readdir(rd) => self.readdir(ino, rd, false, unique, out),
            Operation::Readdirplus(rd) => self.readdir(ino, rd, true, unique, out),
            Operation::Statfs => bytes(reply::statfs(out, unique, &fs.statfs()?)),
            Operation::Access(a) => {
                fs.access(ino, a.mask)?;
                bytes(reply::empty(out, unique))
            }
            Operation::Getxattr { arg, name } => {
                let mut v = fs.getxattr(ino, name)?;
                if *name == crate::stats::STATS_XATTR.as_bytes() {
                    // Produced anew for every request: room for the counters to grow between a
                    // size query and the read.
                    crate::stats::pad(&mut v, arg.size);
                }
                bytes(reply::xattr(out, unique, arg.size, &v))
            }
            Operation::Listxattr(arg) => {
                bytes(reply::xattr(out, unique, arg.size, fs.listxattr(ino)))
            }
            Operation::Lseek(l) => bytes(reply::lseek(
                out,
                unique,
                fs.lseek(ino, l.offset, l.whence)?,
            )),
            Operation::GetFmap { size } => fmap::get_fmap(fs, ino, *size, unique, out),
            Operation::GetDaxdev { index } => {
                let dev = DaxdevOut::new(0, fs.daxdev(*index)?).map_err(|_| Errno::ENAMETOOLONG)?;
                bytes(reply::daxdev(out, unique, &dev))
            }
            Operation::Create { .. } => Err(fs.refuse_change()),
            Operation::Getlk(_) | Operation::Setlk(_) | Operation::Setlkw(_) => Err(Errno::ENOSYS),
            // NOTIFY_REPLY (the kernel's answer to a retrieve) is never answered.
            Operation::Other { opcode, .. } if !opcode.expects_reply() => Ok(Reply::None),
            Operation::Other { opcode, .. } if NAMESPACE_CHANGES.contains(opcode) => {
                Err(fs.refuse_change())
            }
            Operation::Other { .. } => Err(Errno::ENOSYS),
        }
    }

    fn readdir(
        &self,
        ino: Ino,
        rd: &ReadIn,
        plus: bool,
        unique: u64,
        out: &mut [u8],
    ) -> Result<Reply, Errno> {
        let size = rd.size.min(self.fs.config().max_io);
        if plus {
            let mut w = ReaddirPlusWriter::new(out, size);
            self.fs.readdir(ino, rd.offset, |d| {
                let mut e = d.entry();
                if d.is_dot() {
                    // "." and ".." carry no lookup (nodeid 0), as the kernel expects.
                    e.nodeid = 0;
                }
                w.push(&e, d.cookie(), d.typ(), d.name()).is_ok()
            })?;
            Ok(Reply::Bytes(w.finish(unique)))
        } else {
            let mut w = ReaddirWriter::new(out, size);
            self.fs.readdir(ino, rd.offset, |d| {
                w.push(d.ino().get(), d.cookie(), d.typ(), d.name()).is_ok()
            })?;
            Ok(Reply::Bytes(w.finish(unique)))
        }
    }
}
