//! Reply parsing for the kernel's side (test harnesses, kernel emulators), with the FUSE core's
//! size rules: an error reply is exactly 16 bytes with −511 ≤ error < 0; a fixed-size reply must
//! be exactly its size; a variable one (INIT, READ, GET_FMAP, ...) at most the buffer offered.

use zerocopy::{FromBytes, IntoBytes};

use super::dirent::{DirentIter, DirentPlusIter};
use crate::abi::{
    AttrOut, DaxdevOut, EntryOut, GetxattrOut, InitOut, LkOut, LseekOut, OpenOut, OutHeader,
    StatfsOut, WriteOut,
};
use crate::errno::Errno;
use crate::fmap::{FmapError, FmapReply, parse_reply};
use crate::generation::AbiGeneration;

/// Why a reply is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// Fewer than 16 bytes.
    #[error("reply of {0} bytes is shorter than the 16-byte header")]
    Short(usize),
    /// `len` disagrees with the bytes written (the kernel fails the write with EINVAL).
    #[error("reply header says {header_len} bytes, {got} written")]
    LengthMismatch {
        /// `OutHeader::len`.
        header_len: u32,
        /// Bytes written.
        got: usize,
    },
    /// `error` outside −511..=0 (the kernel fails the write with EINVAL).
    #[error("reply error value {0} is out of range")]
    BadErrorValue(i32),
    /// An error reply carries a payload (the kernel fails the write with EINVAL).
    #[error("error reply carries {0} payload bytes")]
    ErrorWithPayload(usize),
    /// The server answered with an error.
    #[error("server replied {0}")]
    Errno(Errno),
    /// The payload has the wrong size for the request (the kernel fails the write with EINVAL
    /// and the request with EIO).
    #[error("reply payload of {got} bytes, expected {expected}")]
    PayloadSize {
        /// Bytes expected (exact, or the maximum for variable replies).
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// GET_FMAP reply rejected by the famfs validation.
    #[error(transparent)]
    Fmap(#[from] FmapError),
}

impl ReplyError {
    /// The errno the kernel would complete the request with.
    pub fn errno(&self) -> Errno {
        match self {
            ReplyError::Errno(e) => *e,
            ReplyError::Fmap(f) => f.errno(),
            _ => Errno::EIO,
        }
    }
}

/// A reply read from the server, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyRef<'a> {
    /// The header.
    pub header: OutHeader,
    /// The bytes after the header.
    pub payload: &'a [u8],
}

impl<'a> ReplyRef<'a> {
    /// Parses one write(2) from the server, checking the header as the kernel does. Notifications
    /// (`unique` 0) are returned as they are; their `error` is the notify code.
    pub fn parse(buf: &'a [u8]) -> Result<Self, ReplyError> {
        let Ok((header, payload)) = OutHeader::read_from_prefix(buf) else {
            return Err(ReplyError::Short(buf.len()));
        };
        if header.len as usize != buf.len() {
            return Err(ReplyError::LengthMismatch {
                header_len: header.len,
                got: buf.len(),
            });
        }
        if header.unique != 0 {
            if header.error > 0 || header.error < -Errno::MAX {
                return Err(ReplyError::BadErrorValue(header.error));
            }
            if header.error != 0 && !payload.is_empty() {
                return Err(ReplyError::ErrorWithPayload(payload.len()));
            }
        }
        Ok(ReplyRef { header, payload })
    }

    /// Whether this is an unsolicited notification.
    pub fn is_notification(&self) -> bool {
        self.header.unique == 0
    }

    /// The payload, or the server's errno.
    pub fn result(&self) -> Result<&'a [u8], ReplyError> {
        match self.header.error {
            0 => Ok(self.payload),
            // Notifications may carry any value here; never negate i32::MIN.
            e => Err(ReplyError::Errno(Errno::new_clamped(e.saturating_neg()))),
        }
    }

    /// A fixed-size payload of type `T`, which must be exactly `size_of::<T>()` bytes.
    pub fn fixed<T: FromBytes>(&self) -> Result<T, ReplyError> {
        let p = self.result()?;
        T::read_from_bytes(p).map_err(|_| ReplyError::PayloadSize {
            expected: core::mem::size_of::<T>(),
            got: p.len(),
        })
    }

    /// A variable payload of at most `max` bytes (READ data, GETXATTR value, READDIR).
    pub fn data(&self, max: usize) -> Result<&'a [u8], ReplyError> {
        let p = self.result()?;
        if p.len() > max {
            return Err(ReplyError::PayloadSize {
                expected: max,
                got: p.len(),
            });
        }
        Ok(p)
    }

    /// An empty success (RELEASE, FLUSH, ...).
    pub fn empty(&self) -> Result<(), ReplyError> {
        self.data(0).map(|_| ())
    }

    /// INIT reply: up to 64 bytes; shorter replies are zero-filled like the kernel does.
    pub fn init(&self) -> Result<InitOut, ReplyError> {
        let p = self.data(InitOut::SIZE)?;
        let mut out = InitOut::default();
        out.as_mut_bytes()[..p.len()].copy_from_slice(p);
        Ok(out)
    }

    /// LOOKUP reply.
    pub fn entry(&self) -> Result<EntryOut, ReplyError> {
        self.fixed()
    }

    /// GETATTR / SETATTR reply.
    pub fn attr(&self) -> Result<AttrOut, ReplyError> {
        self.fixed()
    }

    /// OPEN / OPENDIR reply.
    pub fn open(&self) -> Result<OpenOut, ReplyError> {
        self.fixed()
    }

    /// STATFS reply.
    pub fn statfs(&self) -> Result<StatfsOut, ReplyError> {
        self.fixed()
    }

    /// WRITE reply.
    pub fn write(&self) -> Result<WriteOut, ReplyError> {
        self.fixed()
    }

    /// LSEEK reply.
    pub fn lseek(&self) -> Result<LseekOut, ReplyError> {
        self.fixed()
    }

    /// GETLK reply.
    pub fn lk(&self) -> Result<LkOut, ReplyError> {
        self.fixed()
    }

    /// GETXATTR size-probe reply.
    pub fn xattr_size(&self) -> Result<GetxattrOut, ReplyError> {
        self.fixed()
    }

    /// GET_DAXDEV reply: exactly 280 bytes.
    pub fn daxdev(&self) -> Result<DaxdevOut, ReplyError> {
        self.fixed()
    }

    /// GET_FMAP reply received into a `buffer_len`-byte buffer, validated as the kernel of
    /// `generation` would ([`parse_reply`]); `retried` marks the answer to a dev-variant retry.
    pub fn fmap(
        &self,
        generation: AbiGeneration,
        buffer_len: usize,
        retried: bool,
    ) -> Result<FmapReply, ReplyError> {
        let p = self.result()?;
        Ok(parse_reply(p, generation, buffer_len, retried)?)
    }

    /// READDIR entries (payload at most `max` bytes).
    pub fn readdir(&self, max: usize) -> Result<DirentIter<'a>, ReplyError> {
        Ok(DirentIter::new(self.data(max)?))
    }

    /// READDIRPLUS entries (payload at most `max` bytes).
    pub fn readdirplus(&self, max: usize) -> Result<DirentPlusIter<'a>, ReplyError> {
        Ok(DirentPlusIter::new(self.data(max)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(len: u32, error: i32, unique: u64) -> Vec<u8> {
        OutHeader { len, error, unique }.as_bytes().to_vec()
    }

    #[test]
    fn header_rules() {
        assert_eq!(ReplyRef::parse(&[0; 3]), Err(ReplyError::Short(3)));
        assert!(matches!(
            ReplyRef::parse(&hdr(20, 0, 2)),
            Err(ReplyError::LengthMismatch { .. })
        ));
        assert_eq!(
            ReplyRef::parse(&hdr(16, -512, 2)),
            Err(ReplyError::BadErrorValue(-512))
        );
        assert_eq!(
            ReplyRef::parse(&hdr(16, 1, 2)),
            Err(ReplyError::BadErrorValue(1))
        );
        let mut b = hdr(20, -2, 2);
        b.extend_from_slice(&[0; 4]);
        assert_eq!(ReplyRef::parse(&b), Err(ReplyError::ErrorWithPayload(4)));
        let enoent = hdr(16, -2, 2);
        let r = ReplyRef::parse(&enoent).unwrap();
        assert_eq!(r.entry(), Err(ReplyError::Errno(Errno::ENOENT)));
        assert_eq!(r.entry().unwrap_err().errno(), Errno::ENOENT);
        // Notification: positive code allowed.
        assert!(ReplyRef::parse(&hdr(16, 3, 0)).unwrap().is_notification());
        // Found by cargo fuzz: a notification with error i32::MIN must not overflow.
        let min = hdr(16, i32::MIN, 0);
        let r = ReplyRef::parse(&min).unwrap();
        assert_eq!(r.result(), Err(ReplyError::Errno(Errno::ERANGE)));
    }

    #[test]
    fn daxdev_must_be_exact() {
        let mut b = hdr(16 + 279, 0, 2);
        b.extend_from_slice(&[0; 279]);
        let r = ReplyRef::parse(&b).unwrap();
        assert_eq!(
            r.daxdev(),
            Err(ReplyError::PayloadSize {
                expected: 280,
                got: 279
            })
        );
        assert_eq!(r.daxdev().unwrap_err().errno(), Errno::EIO);
    }
}
