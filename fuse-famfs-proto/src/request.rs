//! Requests (kernel → server): parsing a /dev/fuse read buffer into a typed [`Request`], and the
//! reverse, [`Request::encode`], for test harnesses that play the kernel.
//!
//! Parsing borrows names and write data from the buffer and copies the small fixed structs out,
//! so the buffer needs no particular alignment. It never allocates. An opcode this crate does not
//! model becomes [`Operation::Other`]; a known opcode with a malformed body is a
//! [`RequestError`] that still carries the header, so the server can answer it with an errno
//! instead of ending the session.

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::abi::{
    AccessIn, BatchForgetIn, CreateIn, FlushIn, ForgetIn, ForgetOne, FsyncIn, GetattrIn,
    GetxattrIn, InHeader, InitIn, InterruptIn, LkIn, LseekIn, Opcode, OpenIn, ReadIn, ReleaseIn,
    SetattrIn, WriteIn,
};
use crate::errno::Errno;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The header (copied out). When encoding, `len` and `opcode` are recomputed from `op`.
    pub header: InHeader,
    /// The operation and its arguments.
    pub op: Operation<'a>,
    /// Request extensions after the arguments (`total_extlen` × 8 bytes), unparsed.
    pub extensions: &'a [u8],
}

/// A request's operation with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation<'a> {
    /// INIT.
    Init(InitIn),
    /// DESTROY.
    Destroy,
    /// LOOKUP of `name` (without its NUL) in directory `header.nodeid`.
    Lookup {
        /// The name.
        name: &'a [u8],
    },
    /// FORGET (no reply).
    Forget(ForgetIn),
    /// BATCH_FORGET (no reply).
    BatchForget(ForgetList<'a>),
    /// GETATTR.
    Getattr(GetattrIn),
    /// SETATTR.
    Setattr(SetattrIn),
    /// OPEN.
    Open(OpenIn),
    /// OPENDIR.
    Opendir(OpenIn),
    /// CREATE of `name` in directory `header.nodeid`.
    Create {
        /// The arguments.
        arg: CreateIn,
        /// The name.
        name: &'a [u8],
    },
    /// READ.
    Read(ReadIn),
    /// WRITE.
    Write {
        /// The arguments.
        arg: WriteIn,
        /// Exactly `arg.size` bytes.
        data: &'a [u8],
    },
    /// RELEASE.
    Release(ReleaseIn),
    /// RELEASEDIR.
    Releasedir(ReleaseIn),
    /// READDIR.
    Readdir(ReadIn),
    /// READDIRPLUS.
    Readdirplus(ReadIn),
    /// STATFS.
    Statfs,
    /// FLUSH.
    Flush(FlushIn),
    /// FSYNC.
    Fsync(FsyncIn),
    /// FSYNCDIR.
    Fsyncdir(FsyncIn),
    /// ACCESS.
    Access(AccessIn),
    /// GETXATTR of `name`; `arg.size` 0 asks for the size only.
    Getxattr {
        /// The arguments.
        arg: GetxattrIn,
        /// The attribute name.
        name: &'a [u8],
    },
    /// LISTXATTR; `size` 0 asks for the size only.
    Listxattr(GetxattrIn),
    /// INTERRUPT (no reply unless EAGAIN).
    Interrupt(InterruptIn),
    /// LSEEK.
    Lseek(LseekIn),
    /// GETLK.
    Getlk(LkIn),
    /// SETLK (with `FUSE_LK_FLOCK` in `lk_flags` for flock(2)).
    Setlk(LkIn),
    /// SETLKW (blocking SETLK).
    Setlkw(LkIn),
    /// famfs GET_FMAP for file `header.nodeid`.
    GetFmap {
        /// `None`: V3–V10 form (no argument, 40 bytes). `Some(size)`: dev form carrying the
        /// kernel's buffer size (48 bytes).
        size: Option<u32>,
    },
    /// famfs GET_DAXDEV. The index travels in `header.nodeid`.
    GetDaxdev {
        /// The daxdev index (equal to `header.nodeid`).
        index: u64,
    },
    /// Any other opcode, with its raw argument bytes. Answer with ENOSYS.
    Other {
        /// The opcode.
        opcode: Opcode,
        /// The argument bytes after the header.
        payload: &'a [u8],
    },
}

/// The entries of a BATCH_FORGET, read lazily from the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForgetList<'a> {
    bytes: &'a [u8],
}

impl<'a> ForgetList<'a> {
    /// Wraps `count` × 16-byte entries; `bytes.len()` must be a multiple of 16 (the parser
    /// guarantees it).
    fn new(bytes: &'a [u8]) -> Self {
        ForgetList { bytes }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.bytes.len() / ForgetOne::SIZE
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw entry bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Iterates over the entries.
    pub fn iter(&self) -> impl Iterator<Item = ForgetOne> + 'a {
        self.bytes
            .chunks_exact(ForgetOne::SIZE)
            .filter_map(|c| ForgetOne::read_from_bytes(c).ok())
    }
}

/// Why a request could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Fewer than 40 bytes: there is no header to answer. The session is probably broken.
    #[error("request of {len} bytes is shorter than the 40-byte header")]
    ShortHeader {
        /// Bytes available.
        len: usize,
    },
    /// `header.len` disagrees with the bytes read, or is below 40.
    #[error("request header says {} bytes, {got} bytes available", header.len)]
    LengthMismatch {
        /// The header.
        header: InHeader,
        /// Bytes available.
        got: usize,
    },
    /// `total_extlen` claims more bytes than the request has.
    #[error("request extensions of {ext} bytes exceed the {} argument bytes", header.len as usize - InHeader::SIZE)]
    BadExtensions {
        /// The header.
        header: InHeader,
        /// Claimed extension bytes.
        ext: usize,
    },
    /// A known opcode whose arguments are malformed.
    #[error("malformed {:?} request: {reason}", Opcode(header.opcode))]
    Malformed {
        /// The header.
        header: InHeader,
        /// What is wrong.
        reason: &'static str,
    },
}

impl RequestError {
    /// The header, when there is one to answer.
    pub fn header(&self) -> Option<&InHeader> {
        match self {
            RequestError::ShortHeader { .. } => None,
            RequestError::LengthMismatch { header, .. }
            | RequestError::BadExtensions { header, .. }
            | RequestError::Malformed { header, .. } => Some(header),
        }
    }

    /// The errno to answer the request with (EINVAL), if it expects an answer.
    pub fn reply_errno(&self) -> Option<(u64, Errno)> {
        let h = self.header()?;
        Opcode(h.opcode)
            .expects_reply()
            .then_some((h.unique, Errno::EINVAL))
    }
}

fn fixed<T: FromBytes>(
    header: &InHeader,
    body: &[u8],
    what: &'static str,
) -> Result<T, RequestError> {
    T::read_from_bytes(body).map_err(|_| RequestError::Malformed {
        header: *header,
        reason: what,
    })
}

fn fixed_prefix<'a, T: FromBytes>(
    header: &InHeader,
    body: &'a [u8],
    what: &'static str,
) -> Result<(T, &'a [u8]), RequestError> {
    T::read_from_prefix(body).map_err(|_| RequestError::Malformed {
        header: *header,
        reason: what,
    })
}

/// Requests that carry no arguments.
fn no_args(header: &InHeader, body: &[u8]) -> Result<(), RequestError> {
    if body.is_empty() {
        Ok(())
    } else {
        Err(RequestError::Malformed {
            header: *header,
            reason: "request takes no arguments",
        })
    }
}

/// A NUL-terminated name filling `body`; returns it without the NUL.
fn name<'a>(header: &InHeader, body: &'a [u8]) -> Result<&'a [u8], RequestError> {
    match body.iter().position(|&b| b == 0) {
        Some(n) if n + 1 == body.len() => Ok(&body[..n]),
        _ => Err(RequestError::Malformed {
            header: *header,
            reason: "name is not a single NUL-terminated string",
        }),
    }
}

impl<'a> Request<'a> {
    /// Parses one request. `buf` is what a read(2) of /dev/fuse returned (exactly `header.len`
    /// bytes; extra bytes after `header.len` are an error).
    pub fn parse(buf: &'a [u8]) -> Result<Request<'a>, RequestError> {
        let Ok((header, _)) = InHeader::read_from_prefix(buf) else {
            return Err(RequestError::ShortHeader { len: buf.len() });
        };
        if header.len as usize != buf.len() {
            return Err(RequestError::LengthMismatch {
                header,
                got: buf.len(),
            });
        }
        let args = &buf[InHeader::SIZE..];
        let ext = usize::from(header.total_extlen) * 8;
        if ext > args.len() {
            return Err(RequestError::BadExtensions { header, ext });
        }
        let (body, extensions) = args.split_at(args.len() - ext);
        let h = &header;
        let op = match Opcode(header.opcode) {
            Opcode::INIT => {
                // Kernels before 7.36 send only the first 16 bytes; zero-fill the rest.
                if body.len() < 16 || body.len() > InitIn::SIZE {
                    return Err(RequestError::Malformed {
                        header,
                        reason: "INIT argument must be 16..=64 bytes",
                    });
                }
                let mut init = InitIn::default();
                init.as_mut_bytes()[..body.len()].copy_from_slice(body);
                Operation::Init(init)
            }
            Opcode::DESTROY => {
                no_args(h, body)?;
                Operation::Destroy
            }
            Opcode::LOOKUP => Operation::Lookup {
                name: name(h, body)?,
            },
            Opcode::FORGET => Operation::Forget(fixed(h, body, "FORGET needs fuse_forget_in")?),
            Opcode::BATCH_FORGET => {
                let (arg, rest): (BatchForgetIn, _) =
                    fixed_prefix(h, body, "BATCH_FORGET needs fuse_batch_forget_in")?;
                let n = arg.count as usize;
                if !rest.len().is_multiple_of(ForgetOne::SIZE) || rest.len() / ForgetOne::SIZE != n
                {
                    return Err(RequestError::Malformed {
                        header,
                        reason: "BATCH_FORGET count disagrees with its length",
                    });
                }
                Operation::BatchForget(ForgetList::new(rest))
            }
            Opcode::GETATTR => Operation::Getattr(fixed(h, body, "GETATTR needs fuse_getattr_in")?),
            Opcode::SETATTR => Operation::Setattr(fixed(h, body, "SETATTR needs fuse_setattr_in")?),
            Opcode::OPEN => Operation::Open(fixed(h, body, "OPEN needs fuse_open_in")?),
            Opcode::OPENDIR => Operation::Opendir(fixed(h, body, "OPENDIR needs fuse_open_in")?),
            Opcode::CREATE => {
                let (arg, rest) = fixed_prefix(h, body, "CREATE needs fuse_create_in")?;
                Operation::Create {
                    arg,
                    name: name(h, rest)?,
                }
            }
            Opcode::READ => Operation::Read(fixed(h, body, "READ needs fuse_read_in")?),
            Opcode::WRITE => {
                let (arg, data): (WriteIn, _) = fixed_prefix(h, body, "WRITE needs fuse_write_in")?;
                if data.len() != arg.size as usize {
                    return Err(RequestError::Malformed {
                        header,
                        reason: "WRITE size disagrees with its data",
                    });
                }
                Operation::Write { arg, data }
            }
            Opcode::RELEASE => Operation::Release(fixed(h, body, "RELEASE needs fuse_release_in")?),
            Opcode::RELEASEDIR => {
                Operation::Releasedir(fixed(h, body, "RELEASEDIR needs fuse_release_in")?)
            }
            Opcode::READDIR => Operation::Readdir(fixed(h, body, "READDIR needs fuse_read_in")?),
            Opcode::READDIRPLUS => {
                Operation::Readdirplus(fixed(h, body, "READDIRPLUS needs fuse_read_in")?)
            }
            Opcode::STATFS => {
                no_args(h, body)?;
                Operation::Statfs
            }
            Opcode::FLUSH => Operation::Flush(fixed(h, body, "FLUSH needs fuse_flush_in")?),
            Opcode::FSYNC => Operation::Fsync(fixed(h, body, "FSYNC needs fuse_fsync_in")?),
            Opcode::FSYNCDIR => {
                Operation::Fsyncdir(fixed(h, body, "FSYNCDIR needs fuse_fsync_in")?)
            }
            Opcode::ACCESS => Operation::Access(fixed(h, body, "ACCESS needs fuse_access_in")?),
            Opcode::GETXATTR => {
                let (arg, rest) = fixed_prefix(h, body, "GETXATTR needs fuse_getxattr_in")?;
                Operation::Getxattr {
                    arg,
                    name: name(h, rest)?,
                }
            }
            Opcode::LISTXATTR => {
                Operation::Listxattr(fixed(h, body, "LISTXATTR needs fuse_getxattr_in")?)
            }
            Opcode::INTERRUPT => {
                Operation::Interrupt(fixed(h, body, "INTERRUPT needs fuse_interrupt_in")?)
            }
            Opcode::LSEEK => Operation::Lseek(fixed(h, body, "LSEEK needs fuse_lseek_in")?),
            Opcode::GETLK => Operation::Getlk(fixed(h, body, "GETLK needs fuse_lk_in")?),
            Opcode::SETLK => Operation::Setlk(fixed(h, body, "SETLK needs fuse_lk_in")?),
            Opcode::SETLKW => Operation::Setlkw(fixed(h, body, "SETLKW needs fuse_lk_in")?),
            Opcode::GET_FMAP => match body.len() {
                0 => Operation::GetFmap { size: None },
                GetxattrIn::SIZE => {
                    let arg: GetxattrIn = fixed(h, body, "GET_FMAP size argument")?;
                    Operation::GetFmap {
                        size: Some(arg.size),
                    }
                }
                _ => {
                    return Err(RequestError::Malformed {
                        header,
                        reason: "GET_FMAP must have no argument (V3-V10) or 8 bytes (dev)",
                    });
                }
            },
            Opcode::GET_DAXDEV => {
                // V3–V10 send no argument (the index is in nodeid); the uapi's 4-byte
                // fuse_get_daxdev_in is never sent, so anything else is refused.
                no_args(h, body)?;
                Operation::GetDaxdev {
                    index: header.nodeid,
                }
            }
            opcode => Operation::Other {
                opcode,
                payload: body,
            },
        };
        Ok(Request {
            header,
            op,
            extensions,
        })
    }

    /// A request with the given `unique` and `nodeid` (uid, gid, pid zero; set them on
    /// `header` if needed). For GET_DAXDEV, `nodeid` is replaced by the index when encoding.
    pub fn new(unique: u64, nodeid: u64, op: Operation<'a>) -> Self {
        Request {
            header: InHeader::new(unique, nodeid),
            op,
            extensions: &[],
        }
    }

    /// Bytes [`Request::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        InHeader::SIZE + self.op.args_len() + self.extensions.len()
    }

    /// Encodes the request as the kernel would send it (the reverse of [`Request::parse`]), into
    /// `out`, and returns the length. `header.len`, `header.opcode` and `header.total_extlen` are
    /// computed; for GET_DAXDEV `header.nodeid` is set to the index.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let len = self.encoded_len();
        if out.len() < len {
            return Err(EncodeError::BufferTooSmall {
                needed: len,
                available: out.len(),
            });
        }
        if !self.extensions.len().is_multiple_of(8)
            || self.extensions.len() / 8 > usize::from(u16::MAX)
        {
            return Err(EncodeError::BadExtensions);
        }
        let len32 = u32::try_from(len).map_err(|_| EncodeError::TooLong)?;
        let mut header = self.header;
        header.len = len32;
        header.opcode = self.op.opcode().0;
        header.total_extlen = (self.extensions.len() / 8) as u16;
        if let Operation::GetDaxdev { index } = self.op {
            header.nodeid = index;
        }
        let mut w = Cursor { out, pos: 0 };
        w.put(header.as_bytes());
        self.op.write_args(&mut w)?;
        w.put(self.extensions);
        debug_assert_eq!(w.pos, len);
        Ok(len)
    }

    /// [`Request::encode`] into a new `Vec`.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = vec![0u8; self.encoded_len()];
        let n = self.encode(&mut v)?;
        v.truncate(n);
        Ok(v)
    }
}

/// Failure to encode a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The caller's buffer is too small.
    #[error("request needs {needed} bytes, buffer has {available}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Buffer size.
        available: usize,
    },
    /// Longer than a u32 length.
    #[error("request longer than 4 GiB")]
    TooLong,
    /// Extensions not a multiple of 8 bytes, or too long.
    #[error("request extensions must be a multiple of 8 bytes and at most 512 KiB")]
    BadExtensions,
    /// A name contains a NUL byte.
    #[error("name contains a NUL byte")]
    NulInName,
    /// WRITE `arg.size` differs from the data length.
    #[error("WRITE size {size} differs from the {len} data bytes")]
    WriteSize {
        /// `arg.size`.
        size: u32,
        /// Data length.
        len: usize,
    },
    /// BATCH_FORGET entries not a multiple of 16 bytes.
    #[error("BATCH_FORGET entries must be a multiple of 16 bytes")]
    ForgetList,
}

struct Cursor<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn put(&mut self, b: &[u8]) {
        self.out[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }

    fn put_struct<T: IntoBytes + Immutable>(&mut self, t: &T) {
        self.put(t.as_bytes());
    }

    fn put_name(&mut self, name: &[u8]) -> Result<(), EncodeError> {
        if name.contains(&0) {
            return Err(EncodeError::NulInName);
        }
        self.put(name);
        self.put(&[0]);
        Ok(())
    }
}

impl Operation<'_> {
    /// The opcode.
    pub fn opcode(&self) -> Opcode {
        match self {
            Operation::Init(_) => Opcode::INIT,
            Operation::Destroy => Opcode::DESTROY,
            Operation::Lookup { .. } => Opcode::LOOKUP,
            Operation::Forget(_) => Opcode::FORGET,
            Operation::BatchForget(_) => Opcode::BATCH_FORGET,
            Operation::Getattr(_) => Opcode::GETATTR,
            Operation::Setattr(_) => Opcode::SETATTR,
            Operation::Open(_) => Opcode::OPEN,
            Operation::Opendir(_) => Opcode::OPENDIR,
            Operation::Create { .. } => Opcode::CREATE,
            Operation::Read(_) => Opcode::READ,
            Operation::Write { .. } => Opcode::WRITE,
            Operation::Release(_) => Opcode::RELEASE,
            Operation::Releasedir(_) => Opcode::RELEASEDIR,
            Operation::Readdir(_) => Opcode::READDIR,
            Operation::Readdirplus(_) => Opcode::READDIRPLUS,
            Operation::Statfs => Opcode::STATFS,
            Operation::Flush(_) => Opcode::FLUSH,
            Operation::Fsync(_) => Opcode::FSYNC,
            Operation::Fsyncdir(_) => Opcode::FSYNCDIR,
            Operation::Access(_) => Opcode::ACCESS,
            Operation::Getxattr { .. } => Opcode::GETXATTR,
            Operation::Listxattr(_) => Opcode::LISTXATTR,
            Operation::Interrupt(_) => Opcode::INTERRUPT,
            Operation::Lseek(_) => Opcode::LSEEK,
            Operation::Getlk(_) => Opcode::GETLK,
            Operation::Setlk(_) => Opcode::SETLK,
            Operation::Setlkw(_) => Opcode::SETLKW,
            Operation::GetFmap { .. } => Opcode::GET_FMAP,
            Operation::GetDaxdev { .. } => Opcode::GET_DAXDEV,
            Operation::Other { opcode, .. } => *opcode,
        }
    }

    /// Length of the argument bytes after the header.
    fn args_len(&self) -> usize {
        match self {
            Operation::Init(_) => InitIn::SIZE,
            Operation::Destroy | Operation::Statfs | Operation::GetDaxdev { .. } => 0,
            Operation::Lookup { name } => name.len() + 1,
            Operation::Forget(_) => ForgetIn::SIZE,
            Operation::BatchForget(l) => BatchForgetIn::SIZE + l.bytes.len(),
            Operation::Getattr(_) => GetattrIn::SIZE,
            Operation::Setattr(_) => SetattrIn::SIZE,
            Operation::Open(_) | Operation::Opendir(_) => OpenIn::SIZE,
            Operation::Create { name, .. } => CreateIn::SIZE + name.len() + 1,
            Operation::Read(_) | Operation::Readdir(_) | Operation::Readdirplus(_) => ReadIn::SIZE,
            Operation::Write { data, .. } => WriteIn::SIZE + data.len(),
            Operation::Release(_) | Operation::Releasedir(_) => ReleaseIn::SIZE,
            Operation::Flush(_) => FlushIn::SIZE,
            Operation::Fsync(_) | Operation::Fsyncdir(_) => FsyncIn::SIZE,
            Operation::Access(_) => AccessIn::SIZE,
            Operation::Getxattr { name, .. } => GetxattrIn::SIZE + name.len() + 1,
            Operation::Listxattr(_) => GetxattrIn::SIZE,
            Operation::Interrupt(_) => InterruptIn::SIZE,
            Operation::Lseek(_) => LseekIn::SIZE,
            Operation::Getlk(_) | Operation::Setlk(_) | Operation::Setlkw(_) => LkIn::SIZE,
            Operation::GetFmap { size } => {
                if size.is_some() {
                    GetxattrIn::SIZE
                } else {
                    0
                }
            }
            Operation::Other { payload, .. } => payload.len(),
        }
    }

    fn write_args(&self, w: &mut Cursor<'_>) -> Result<(), EncodeError> {
        match self {
            Operation::Init(a) => w.put_struct(a),
            Operation::Destroy | Operation::Statfs | Operation::GetDaxdev { .. } => {}
            Operation::Lookup { name } => w.put_name(name)?,
            Operation::Forget(a) => w.put_struct(a),
            Operation::BatchForget(l) => {
                if !l.bytes.len().is_multiple_of(ForgetOne::SIZE) {
                    return Err(EncodeError::ForgetList);
                }
                let count = u32::try_from(l.len()).map_err(|_| EncodeError::TooLong)?;
                w.put_struct(&BatchForgetIn { count, dummy: 0 });
                w.put(l.bytes);
            }
            Operation::Getattr(a) => w.put_struct(a),
            Operation::Setattr(a) => w.put_struct(a),
            Operation::Open(a) | Operation::Opendir(a) => w.put_struct(a),
            Operation::Create { arg, name } => {
                w.put_struct(arg);
                w.put_name(name)?;
            }
            Operation::Read(a) | Operation::Readdir(a) | Operation::Readdirplus(a) => {
                w.put_struct(a)
            }
            Operation::Write { arg, data } => {
                if arg.size as usize != data.len() {
                    return Err(EncodeError::WriteSize {
                        size: arg.size,
                        len: data.len(),
                    });
                }
                w.put_struct(arg);
                w.put(data);
            }
            Operation::Release(a) | Operation::Releasedir(a) => w.put_struct(a),
            Operation::Flush(a) => w.put_struct(a),
            Operation::Fsync(a) | Operation::Fsyncdir(a) => w.put_struct(a),
            Operation::Access(a) => w.put_struct(a),
            Operation::Getxattr { arg, name } => {
                w.put_struct(arg);
                w.put_name(name)?;
            }
            Operation::Listxattr(a) => w.put_struct(a),
            Operation::Interrupt(a) => w.put_struct(a),
            Operation::Lseek(a) => w.put_struct(a),
            Operation::Getlk(a) | Operation::Setlk(a) | Operation::Setlkw(a) => w.put_struct(a),
            Operation::GetFmap { size } => {
                if let Some(size) = size {
                    w.put_struct(&GetxattrIn {
                        size: *size,
                        padding: 0,
                    });
                }
            }
            Operation::Other { payload, .. } => w.put(payload),
        }
        Ok(())
    }
}

impl<'a> ForgetList<'a> {
    /// A list over raw 16-byte [`ForgetOne`] records (e.g. `entries.as_bytes()`), for encoding.
    pub fn from_bytes(bytes: &'a [u8]) -> Option<Self> {
        bytes
            .len()
            .is_multiple_of(ForgetOne::SIZE)
            .then_some(ForgetList { bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_fmap_forms() {
        let v1 = Request::new(2, 9, Operation::GetFmap { size: None })
            .to_bytes()
            .unwrap();
        assert_eq!(v1.len(), 40);
        let p = Request::parse(&v1).unwrap();
        assert_eq!(p.op, Operation::GetFmap { size: None });
        assert_eq!(p.header.nodeid, 9);
        let dev = Request::new(2, 9, Operation::GetFmap { size: Some(4096) })
            .to_bytes()
            .unwrap();
        assert_eq!(dev.len(), 48);
        assert_eq!(
            Request::parse(&dev).unwrap().op,
            Operation::GetFmap { size: Some(4096) }
        );
        // 44 bytes is neither form.
        let mut odd = v1.clone();
        odd.extend_from_slice(&[0; 4]);
        odd[0] = 44;
        let e = Request::parse(&odd).unwrap_err();
        assert_eq!(e.reply_errno(), Some((2, Errno::EINVAL)));
    }

    #[test]
    fn unknown_opcode_is_kept() {
        let r = Request::new(
            4,
            1,
            Operation::Other {
                opcode: Opcode(9999),
                payload: b"abc",
            },
        );
        let b = r.to_bytes().unwrap();
        let p = Request::parse(&b).unwrap();
        assert_eq!(p, r.clone().with_len(&b));
    }

    #[test]
    fn short_and_mismatched() {
        assert_eq!(
            Request::parse(&[0; 10]),
            Err(RequestError::ShortHeader { len: 10 })
        );
        let mut b = Request::new(2, 1, Operation::Statfs).to_bytes().unwrap();
        b.push(0);
        assert!(matches!(
            Request::parse(&b),
            Err(RequestError::LengthMismatch { got: 41, .. })
        ));
        let mut forget = Request::new(2, 1, Operation::Forget(ForgetIn { nlookup: 1 }))
            .to_bytes()
            .unwrap();
        forget.truncate(44);
        forget[0] = 44;
        let e = Request::parse(&forget).unwrap_err();
        assert!(e.header().is_some());
        // FORGET expects no answer, even when malformed.
        assert_eq!(e.reply_errno(), None);
    }

    #[test]
    fn short_init_is_zero_filled() {
        let mut b = Request::new(2, 0, Operation::Init(InitIn::default()))
            .to_bytes()
            .unwrap();
        b.truncate(56);
        b[0] = 56;
        b[40] = 7; // major
        b[44] = 22; // minor
        let p = Request::parse(&b).unwrap();
        let Operation::Init(i) = p.op else { panic!() };
        assert_eq!((i.major, i.minor, i.flags2), (7, 22, 0));
    }

    impl Request<'_> {
        fn with_len(mut self, b: &[u8]) -> Self {
            self.header.len = b.len() as u32;
            self.header.opcode = self.op.opcode().0;
            self
        }
    }
}
