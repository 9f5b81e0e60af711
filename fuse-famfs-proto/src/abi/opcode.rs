//! The FUSE opcode newtype (`enum fuse_opcode` in the kernel header).

use core::fmt;

/// A FUSE request opcode (`fuse_in_header.opcode`).
///
/// This is a newtype over the raw `u32` rather than a Rust `enum`, so that an opcode this crate
/// does not know (a newer kernel, or an experimental extension) is still representable and can be
/// answered with `ENOSYS` instead of ending the session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Opcode(pub u32);

macro_rules! opcodes {
    ($($(#[$doc:meta])* $name:ident = $val:expr;)*) => {
        impl Opcode {
            $($(#[$doc])* pub const $name: Opcode = Opcode($val);)*

            /// Every opcode this crate names, with its kernel name (without the `FUSE_` prefix).
            pub const ALL: &'static [(Opcode, &'static str)] = &[$((Opcode($val), stringify!($name)),)*];
        }
    };
}

opcodes! {
    /// `FUSE_LOOKUP`: look up a name in a directory.
    LOOKUP = 1;
    /// `FUSE_FORGET`: drop lookup references (no reply).
    FORGET = 2;
    /// `FUSE_GETATTR`: get attributes.
    GETATTR = 3;
    /// `FUSE_SETATTR`: set attributes.
    SETATTR = 4;
    /// `FUSE_READLINK`.
    READLINK = 5;
    /// `FUSE_SYMLINK`.
    SYMLINK = 6;
    /// `FUSE_MKNOD`.
    MKNOD = 8;
    /// `FUSE_MKDIR`.
    MKDIR = 9;
    /// `FUSE_UNLINK`.
    UNLINK = 10;
    /// `FUSE_RMDIR`.
    RMDIR = 11;
    /// `FUSE_RENAME`.
    RENAME = 12;
    /// `FUSE_LINK`.
    LINK = 13;
    /// `FUSE_OPEN`: open a file.
    OPEN = 14;
    /// `FUSE_READ`: read file data.
    READ = 15;
    /// `FUSE_WRITE`: write file data.
    WRITE = 16;
    /// `FUSE_STATFS`: file-system statistics.
    STATFS = 17;
    /// `FUSE_RELEASE`: close a file handle.
    RELEASE = 18;
    /// `FUSE_FSYNC`.
    FSYNC = 20;
    /// `FUSE_SETXATTR`.
    SETXATTR = 21;
    /// `FUSE_GETXATTR`: read an extended attribute (size probe when `size` is 0).
    GETXATTR = 22;
    /// `FUSE_LISTXATTR`.
    LISTXATTR = 23;
    /// `FUSE_REMOVEXATTR`.
    REMOVEXATTR = 24;
    /// `FUSE_FLUSH`: called on every close(2) of a descriptor.
    FLUSH = 25;
    /// `FUSE_INIT`: session negotiation, always the first request.
    INIT = 26;
    /// `FUSE_OPENDIR`.
    OPENDIR = 27;
    /// `FUSE_READDIR`.
    READDIR = 28;
    /// `FUSE_RELEASEDIR`.
    RELEASEDIR = 29;
    /// `FUSE_FSYNCDIR`.
    FSYNCDIR = 30;
    /// `FUSE_GETLK`: test for a POSIX lock.
    GETLK = 31;
    /// `FUSE_SETLK`: acquire/release a POSIX lock or flock (non-blocking).
    SETLK = 32;
    /// `FUSE_SETLKW`: acquire a POSIX lock or flock (blocking).
    SETLKW = 33;
    /// `FUSE_ACCESS`.
    ACCESS = 34;
    /// `FUSE_CREATE`: atomic create + open.
    CREATE = 35;
    /// `FUSE_INTERRUPT`: interrupt a pending request (no reply).
    INTERRUPT = 36;
    /// `FUSE_BMAP`.
    BMAP = 37;
    /// `FUSE_DESTROY`: session teardown.
    DESTROY = 38;
    /// `FUSE_IOCTL`.
    IOCTL = 39;
    /// `FUSE_POLL`.
    POLL = 40;
    /// `FUSE_NOTIFY_REPLY`: answer to a retrieve notification (no reply).
    NOTIFY_REPLY = 41;
    /// `FUSE_BATCH_FORGET`: many forgets at once (no reply).
    BATCH_FORGET = 42;
    /// `FUSE_FALLOCATE`.
    FALLOCATE = 43;
    /// `FUSE_READDIRPLUS`: readdir returning an entry (lookup) per name.
    READDIRPLUS = 44;
    /// `FUSE_RENAME2`.
    RENAME2 = 45;
    /// `FUSE_LSEEK`: SEEK_DATA / SEEK_HOLE.
    LSEEK = 46;
    /// `FUSE_COPY_FILE_RANGE`.
    COPY_FILE_RANGE = 47;
    /// `FUSE_SETUPMAPPING` (virtio-fs DAX).
    SETUPMAPPING = 48;
    /// `FUSE_REMOVEMAPPING` (virtio-fs DAX).
    REMOVEMAPPING = 49;
    /// `FUSE_SYNCFS`.
    SYNCFS = 50;
    /// `FUSE_TMPFILE`.
    TMPFILE = 51;
    /// `FUSE_STATX`.
    STATX = 52;
    /// `FUSE_COPY_FILE_RANGE_64` (7.45).
    COPY_FILE_RANGE_64 = 53;
    /// `FUSE_GET_FMAP` (famfs, V3–V10 numbering): fetch a file's fmap after OPEN.
    GET_FMAP = 54;
    /// `FUSE_GET_DAXDEV` (famfs, V3–V10 numbering): fetch a dax device's path; index in `nodeid`.
    GET_DAXDEV = 55;
    /// `CUSE_INIT`.
    CUSE_INIT = 4096;
}

impl Opcode {
    /// The kernel name without the `FUSE_` prefix, or `None` for an opcode this crate does not name.
    pub fn name(self) -> Option<&'static str> {
        Opcode::ALL
            .iter()
            .find(|(op, _)| *op == self)
            .map(|(_, n)| *n)
    }

    /// Whether the kernel waits for a reply to this request.
    ///
    /// `FORGET`, `BATCH_FORGET`, `INTERRUPT` and `NOTIFY_REPLY` are never answered (answering an
    /// `INTERRUPT` is optional and only `EAGAIN` means something to the kernel).
    pub fn expects_reply(self) -> bool {
        !matches!(
            self,
            Opcode::FORGET | Opcode::BATCH_FORGET | Opcode::INTERRUPT | Opcode::NOTIFY_REPLY
        )
    }
}

impl fmt::Debug for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}({})", self.0),
            None => write!(f, "Opcode({})", self.0),
        }
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<u32> for Opcode {
    fn from(v: u32) -> Self {
        Opcode(v)
    }
}

impl From<Opcode> for u32 {
    fn from(v: Opcode) -> Self {
        v.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_reply_expectations() {
        assert_eq!(Opcode::GET_FMAP.name(), Some("GET_FMAP"));
        assert_eq!(Opcode(7).name(), None);
        assert_eq!(format!("{:?}", Opcode(54)), "GET_FMAP(54)");
        assert_eq!(format!("{:?}", Opcode(999)), "Opcode(999)");
        assert!(!Opcode::FORGET.expects_reply());
        assert!(!Opcode::BATCH_FORGET.expects_reply());
        assert!(Opcode::GET_DAXDEV.expects_reply());
        assert!(Opcode::DESTROY.expects_reply());
        // No two names share a value.
        for (i, (a, _)) in Opcode::ALL.iter().enumerate() {
            for (b, _) in &Opcode::ALL[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
