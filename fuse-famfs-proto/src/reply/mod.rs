//! Replies (server → kernel): builders that write an out header plus payload into a caller
//! buffer and return the number of bytes to write(2), and ([`ReplyRef`]) the parsing side for
//! test harnesses that play the kernel.
//!
//! Builders never allocate. Each returns [`BuildError::BufferTooSmall`] rather than panicking when
//! `out` is too short; a 4096-byte buffer holds every fixed-size reply, and a READ or READDIR reply
//! needs 16 bytes plus the requested size.

mod dirent;
mod init;
mod parse;

pub use dirent::{
    DirentEntry, DirentError, DirentIter, DirentPlusIter, ReaddirPlusWriter, ReaddirWriter,
};
pub use init::{InitConfig, InitError, Negotiated, famfs_enabled, negotiate};
pub use parse::{ReplyError, ReplyRef};

use zerocopy::{Immutable, IntoBytes};

use crate::abi::{
    AttrOut, DaxdevOut, EntryOut, FUSE_NOTIFY_INVAL_ENTRY, FUSE_NOTIFY_INVAL_INODE, FileLock,
    GetxattrOut, Kstatfs, LkOut, LseekOut, NotifyInvalEntryOut, NotifyInvalInodeOut, OpenOut,
    OutHeader, StatfsOut, WriteOut,
};
use crate::errno::Errno;
use crate::fmap::{FileType, Fmap, FmapEncodeError, FmapWire};
use crate::generation::AbiGeneration;

/// Failure to build a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The caller's buffer is too small.
    #[error("reply needs {needed} bytes, buffer has {available}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Buffer size.
        available: usize,
    },
    /// The payload does not fit a u32 length.
    #[error("reply payload too large")]
    TooLarge,
    /// The fmap could not be encoded or would be rejected by the kernel.
    #[error(transparent)]
    Fmap(#[from] FmapEncodeError),
}

fn check_room(out: &[u8], needed: usize) -> Result<(), BuildError> {
    if out.len() < needed {
        Err(BuildError::BufferTooSmall {
            needed,
            available: out.len(),
        })
    } else {
        Ok(())
    }
}

/// The payload area of a reply buffer (everything after the 16-byte header). Fill it, then call
/// [`finish`] with the number of payload bytes written.
pub fn payload_mut(out: &mut [u8]) -> &mut [u8] {
    out.get_mut(OutHeader::SIZE..).unwrap_or_default()
}

/// Writes the header of a successful reply whose `payload_len` bytes are already in
/// `out[16..]`; returns the total length.
pub fn finish(out: &mut [u8], unique: u64, payload_len: usize) -> Result<usize, BuildError> {
    let total = OutHeader::SIZE + payload_len;
    check_room(out, total)?;
    if u32::try_from(total).is_err() {
        return Err(BuildError::TooLarge);
    }
    out[..OutHeader::SIZE].copy_from_slice(OutHeader::success(unique, payload_len).as_bytes());
    Ok(total)
}

/// An error reply (exactly 16 bytes, `error` = −errno).
pub fn error(out: &mut [u8], unique: u64, errno: Errno) -> Result<usize, BuildError> {
    check_room(out, OutHeader::SIZE)?;
    let h = OutHeader {
        len: OutHeader::SIZE as u32,
        error: errno.to_reply(),
        unique,
    };
    out[..OutHeader::SIZE].copy_from_slice(h.as_bytes());
    Ok(OutHeader::SIZE)
}

/// A successful reply without payload (RELEASE, FLUSH, FSYNC, ACCESS, SETLK, DESTROY, ...).
pub fn empty(out: &mut [u8], unique: u64) -> Result<usize, BuildError> {
    finish(out, unique, 0)
}

/// A successful reply carrying `data` (READ, READLINK, GETXATTR value, ...). To avoid the copy,
/// write the header from [`OutHeader::success`] and the data with writev(2), or fill
/// [`payload_mut`] and call [`finish`].
pub fn data(out: &mut [u8], unique: u64, data: &[u8]) -> Result<usize, BuildError> {
    check_room(out, OutHeader::SIZE + data.len())?;
    out[OutHeader::SIZE..OutHeader::SIZE + data.len()].copy_from_slice(data);
    finish(out, unique, data.len())
}

/// A successful reply carrying one fixed-size wire struct.
pub fn fixed<T: IntoBytes + Immutable>(
    out: &mut [u8],
    unique: u64,
    arg: &T,
) -> Result<usize, BuildError> {
    data(out, unique, arg.as_bytes())
}

/// LOOKUP (and CREATE's first half) reply.
pub fn entry(out: &mut [u8], unique: u64, entry: &EntryOut) -> Result<usize, BuildError> {
    fixed(out, unique, entry)
}

/// GETATTR / SETATTR reply.
pub fn attr(out: &mut [u8], unique: u64, attr: &AttrOut) -> Result<usize, BuildError> {
    fixed(out, unique, attr)
}

/// OPEN / OPENDIR reply with a file handle and `FOPEN_*` flags.
pub fn open(out: &mut [u8], unique: u64, fh: u64, open_flags: u32) -> Result<usize, BuildError> {
    fixed(
        out,
        unique,
        &OpenOut {
            fh,
            open_flags,
            backing_id: 0,
        },
    )
}

/// STATFS reply.
pub fn statfs(out: &mut [u8], unique: u64, st: &Kstatfs) -> Result<usize, BuildError> {
    fixed(out, unique, &StatfsOut { st: *st })
}

/// WRITE reply: `size` bytes written.
pub fn write(out: &mut [u8], unique: u64, size: u32) -> Result<usize, BuildError> {
    fixed(out, unique, &WriteOut { size, padding: 0 })
}

/// LSEEK reply.
pub fn lseek(out: &mut [u8], unique: u64, offset: u64) -> Result<usize, BuildError> {
    fixed(out, unique, &LseekOut { offset })
}

/// GETLK reply.
pub fn lk(out: &mut [u8], unique: u64, lock: &FileLock) -> Result<usize, BuildError> {
    fixed(out, unique, &LkOut { lk: *lock })
}

/// GETXATTR / LISTXATTR reply for a request whose buffer is `request_size` bytes: a size probe
/// (`request_size` 0) gets `fuse_getxattr_out` with the value's size; a buffer too small gets
/// ERANGE; otherwise the value itself.
pub fn xattr(
    out: &mut [u8],
    unique: u64,
    request_size: u32,
    value: &[u8],
) -> Result<usize, BuildError> {
    if request_size == 0 {
        let size = u32::try_from(value.len()).map_err(|_| BuildError::TooLarge)?;
        fixed(out, unique, &GetxattrOut { size, padding: 0 })
    } else if value.len() > request_size as usize {
        error(out, unique, Errno::ERANGE)
    } else {
        data(out, unique, value)
    }
}

/// GET_DAXDEV reply (exactly 280 bytes of payload).
pub fn daxdev(out: &mut [u8], unique: u64, dev: &DaxdevOut) -> Result<usize, BuildError> {
    fixed(out, unique, dev)
}

/// GET_FMAP reply for `fmap` with header file type `file_type`. Validates `fmap` with the kernel's
/// rules for `generation` first, so a server never sends what the kernel would refuse
/// ([`BuildError::Fmap`] carries the errno to answer with instead); a server whose maps hold
/// interleaved extents passes them through [`AbiGeneration::adapt_fmap`] first. `request_size` is the dev form's buffer size (`None` for the V3–V10 form, whose
/// buffer is 4096 bytes); a dev-generation fmap larger than it is answered with its header alone
/// carrying `fmap_size`, so the kernel retries with a larger buffer.
pub fn get_fmap(
    out: &mut [u8],
    unique: u64,
    fmap: &Fmap,
    file_type: FileType,
    generation: AbiGeneration,
    request_size: Option<u32>,
) -> Result<usize, BuildError> {
    let buffer = request_size.map_or(generation.initial_fmap_buffer(), |s| s as usize);
    let n = fmap.encode_reply(file_type, generation, buffer, payload_mut(out))?;
    finish(out, unique, n)
}

/// An unsolicited `FUSE_NOTIFY_INVAL_INODE`: drop cached data in `[off, off+len)` of `ino`
/// (`off` < 0: attributes only; `len` ≤ 0: to EOF).
pub fn notify_inval_inode(
    out: &mut [u8],
    ino: u64,
    off: i64,
    len: i64,
) -> Result<usize, BuildError> {
    let n = notify(
        out,
        FUSE_NOTIFY_INVAL_INODE,
        NotifyInvalInodeOut { ino, off, len }.as_bytes(),
        &[],
    )?;
    Ok(n)
}

/// An unsolicited `FUSE_NOTIFY_INVAL_ENTRY`: drop the cached name `name` in directory `parent`.
pub fn notify_inval_entry(
    out: &mut [u8],
    parent: u64,
    name: &[u8],
    flags: u32,
) -> Result<usize, BuildError> {
    let namelen = u32::try_from(name.len()).map_err(|_| BuildError::TooLarge)?;
    let arg = NotifyInvalEntryOut {
        parent,
        namelen,
        flags,
    };
    notify(out, FUSE_NOTIFY_INVAL_ENTRY, arg.as_bytes(), name)
}

fn notify(out: &mut [u8], code: i32, arg: &[u8], name: &[u8]) -> Result<usize, BuildError> {
    let name_part = if name.is_empty() { 0 } else { name.len() + 1 };
    let total = OutHeader::SIZE + arg.len() + name_part;
    check_room(out, total)?;
    let h = OutHeader {
        len: u32::try_from(total).map_err(|_| BuildError::TooLarge)?,
        error: code,
        unique: 0,
    };
    out[..16].copy_from_slice(h.as_bytes());
    out[16..16 + arg.len()].copy_from_slice(arg);
    if !name.is_empty() {
        let p = 16 + arg.len();
        out[p..p + name.len()].copy_from_slice(name);
        out[p + name.len()] = 0;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_small_buffers_are_errors() {
        let mut small = [0u8; 10];
        assert_eq!(
            error(&mut small, 1, Errno::EIO),
            Err(BuildError::BufferTooSmall {
                needed: 16,
                available: 10
            })
        );
        let mut b = [0u8; 100];
        assert!(entry(&mut b, 1, &EntryOut::default()).is_err());
        assert!(payload_mut(&mut small).is_empty());
    }

    #[test]
    fn xattr_forms() {
        let mut b = [0u8; 64];
        assert_eq!(xattr(&mut b, 2, 0, b"/tmp/shadow").unwrap(), 24);
        assert_eq!(&b[16..20], &11u32.to_ne_bytes());
        assert_eq!(xattr(&mut b, 2, 4, b"/tmp/shadow").unwrap(), 16);
        assert_eq!(i32::from_ne_bytes(b[4..8].try_into().unwrap()), -34);
        assert_eq!(xattr(&mut b, 2, 11, b"/tmp/shadow").unwrap(), 27);
        assert_eq!(&b[16..27], b"/tmp/shadow");
    }

    #[test]
    fn notify_inval_entry_layout() {
        let mut b = [0u8; 64];
        let n = notify_inval_entry(&mut b, 1, b"abc", 0).unwrap();
        assert_eq!(n, 16 + 16 + 4);
        assert_eq!(i32::from_ne_bytes(b[4..8].try_into().unwrap()), 3);
        assert_eq!(&b[8..16], &[0; 8]);
        assert_eq!(&b[32..36], b"abc\0");
    }
}
