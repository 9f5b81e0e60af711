//! Encoding: a [`Request`] back into the bytes the kernel would send, for test harnesses that
//! play the kernel.

use zerocopy::{Immutable, IntoBytes};

use super::{ForgetList, Operation, Request};
use crate::abi::{
    AccessIn, BatchForgetIn, CreateIn, FlushIn, ForgetIn, ForgetOne, FsyncIn, GetattrIn,
    GetxattrIn, InHeader, InitIn, InterruptIn, LkIn, LseekIn, Opcode, OpenIn, ReadIn, ReleaseIn,
    SetattrIn, WriteIn,
};

impl<'a> Request<'a> {
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
