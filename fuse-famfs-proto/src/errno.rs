//! Linux errno values as a validated newtype, for error replies and validation results.

use core::fmt;

/// A positive Linux errno that the kernel accepts in a reply (1..=511).
///
/// Replies carry `-errno` in [`OutHeader::error`](crate::abi::OutHeader::error); the kernel
/// rejects values outside −511..=−1 with EINVAL on the write and leaves the request pending, so
/// this type cannot hold them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(u16);

macro_rules! errnos {
    ($($(#[$doc:meta])* $name:ident = $v:expr;)*) => {
        impl Errno {
            $($(#[$doc])* pub const $name: Errno = Errno($v);)*

            /// The symbolic name, if this crate names the value.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($v => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

errnos! {
    /// Operation not permitted.
    EPERM = 1;
    /// No such file or directory.
    ENOENT = 2;
    /// Interrupted system call.
    EINTR = 4;
    /// I/O error.
    EIO = 5;
    /// No such device or address.
    ENXIO = 6;
    /// Argument list too long (famfs: more than 32 extents).
    E2BIG = 7;
    /// Bad file descriptor.
    EBADF = 9;
    /// Try again.
    EAGAIN = 11;
    /// Out of memory.
    ENOMEM = 12;
    /// Permission denied.
    EACCES = 13;
    /// Device or resource busy.
    EBUSY = 16;
    /// File exists.
    EEXIST = 17;
    /// Cross-device link.
    EXDEV = 18;
    /// No such device.
    ENODEV = 19;
    /// Not a directory.
    ENOTDIR = 20;
    /// Is a directory.
    EISDIR = 21;
    /// Invalid argument.
    EINVAL = 22;
    /// File too large.
    EFBIG = 27;
    /// No space left on device.
    ENOSPC = 28;
    /// Read-only file system.
    EROFS = 30;
    /// Result out of range (also: xattr buffer too small).
    ERANGE = 34;
    /// File name too long.
    ENAMETOOLONG = 36;
    /// Function not implemented.
    ENOSYS = 38;
    /// Directory not empty.
    ENOTEMPTY = 39;
    /// No data available (xattr not found).
    ENODATA = 61;
    /// Protocol error.
    EPROTO = 71;
    /// Value too large for data type.
    EOVERFLOW = 75;
    /// Operation not supported (same value as ENOTSUP).
    EOPNOTSUPP = 95;
    /// Connection timed out.
    ETIMEDOUT = 110;
    /// Memory page has hardware error.
    EHWPOISON = 133;
}

impl Errno {
    /// The largest errno the kernel accepts in a reply.
    pub const MAX: i32 = 511;

    /// `Some` if `raw` is a positive errno the kernel accepts (1..=511).
    pub const fn new(raw: i32) -> Option<Errno> {
        if raw >= 1 && raw <= Self::MAX {
            Some(Errno(raw as u16))
        } else {
            None
        }
    }

    /// Like [`Errno::new`], but maps an unusable value to `ERANGE`, as libfuse does before sending.
    pub const fn new_clamped(raw: i32) -> Errno {
        match Self::new(raw) {
            Some(e) => e,
            None => Errno::ERANGE,
        }
    }

    /// From an `std::io::Error`: its raw OS error if it has a usable one, else `EIO`.
    pub fn from_io(err: &std::io::Error) -> Errno {
        err.raw_os_error()
            .and_then(Errno::new)
            .unwrap_or(Errno::EIO)
    }

    /// The positive value.
    pub const fn get(self) -> i32 {
        self.0 as i32
    }

    /// The value for [`OutHeader::error`](crate::abi::OutHeader::error) (`-errno`).
    pub const fn to_reply(self) -> i32 {
        -(self.0 as i32)
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} ({})", self.0),
            None => write!(f, "errno {}", self.0),
        }
    }
}

impl From<Errno> for std::io::Error {
    fn from(e: Errno) -> Self {
        std::io::Error::from_raw_os_error(e.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_and_clamp() {
        assert_eq!(Errno::new(0), None);
        assert_eq!(Errno::new(-5), None);
        assert_eq!(Errno::new(512), None);
        assert_eq!(Errno::new(511).map(Errno::get), Some(511));
        assert_eq!(Errno::new_clamped(1000), Errno::ERANGE);
        assert_eq!(Errno::EINVAL.to_reply(), -22);
        assert_eq!(format!("{}", Errno::E2BIG), "E2BIG (7)");
        let io = std::io::Error::from_raw_os_error(2);
        assert_eq!(Errno::from_io(&io), Errno::ENOENT);
        assert_eq!(Errno::from_io(&std::io::Error::other("x")), Errno::EIO);
    }

    #[test]
    fn values_match_libc() {
        let pairs = [
            (Errno::EPERM, libc::EPERM),
            (Errno::ENOENT, libc::ENOENT),
            (Errno::EINTR, libc::EINTR),
            (Errno::EIO, libc::EIO),
            (Errno::ENXIO, libc::ENXIO),
            (Errno::E2BIG, libc::E2BIG),
            (Errno::EBADF, libc::EBADF),
            (Errno::EAGAIN, libc::EAGAIN),
            (Errno::ENOMEM, libc::ENOMEM),
            (Errno::EACCES, libc::EACCES),
            (Errno::EBUSY, libc::EBUSY),
            (Errno::EEXIST, libc::EEXIST),
            (Errno::EXDEV, libc::EXDEV),
            (Errno::ENODEV, libc::ENODEV),
            (Errno::ENOTDIR, libc::ENOTDIR),
            (Errno::EISDIR, libc::EISDIR),
            (Errno::EINVAL, libc::EINVAL),
            (Errno::EFBIG, libc::EFBIG),
            (Errno::ENOSPC, libc::ENOSPC),
            (Errno::EROFS, libc::EROFS),
            (Errno::ERANGE, libc::ERANGE),
            (Errno::ENAMETOOLONG, libc::ENAMETOOLONG),
            (Errno::ENOSYS, libc::ENOSYS),
            (Errno::ENOTEMPTY, libc::ENOTEMPTY),
            (Errno::ENODATA, libc::ENODATA),
            (Errno::EPROTO, libc::EPROTO),
            (Errno::EOVERFLOW, libc::EOVERFLOW),
            (Errno::EOPNOTSUPP, libc::EOPNOTSUPP),
            (Errno::ETIMEDOUT, libc::ETIMEDOUT),
            (Errno::EHWPOISON, libc::EHWPOISON),
        ];
        for (ours, theirs) in pairs {
            assert_eq!(ours.get(), theirs, "{ours:?}");
        }
    }
}
