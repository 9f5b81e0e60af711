//! Requests (kernel → server): parsing a /dev/fuse read buffer into a typed [`Request`], and the
//! reverse, [`Request::encode`], for test harnesses that play the kernel.
//!
//! Parsing borrows names and write data from the buffer and copies the small fixed structs out,
//! so the buffer needs no particular alignment. It never allocates. An opcode this crate does not
//! model becomes [`Operation::Other`]; a known opcode with a malformed body is a
//! [`RequestError`] that still carries the header, so the server can answer it with an errno
//! instead of ending the session.

use zerocopy::FromBytes;

use crate::abi::{
    AccessIn, CreateIn, FlushIn, ForgetIn, ForgetOne, FsyncIn, GetattrIn, GetxattrIn, InHeader,
    InitIn, InterruptIn, LkIn, LseekIn, Opcode, OpenIn, ReadIn, ReleaseIn, SetattrIn, WriteIn,
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

mod encode;
mod parse;

pub use encode::EncodeError;

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
