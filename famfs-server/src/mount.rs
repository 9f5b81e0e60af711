//! Mounting and unmounting a FUSE file system with mount(2), without fusermount.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};

use crate::ServerError;

/// The file-system type famfs mounts show in /proc/mounts.
pub const FSTYPE: &str = "fuse.famfs";

mod ioctl {
    nix::ioctl_read!(fuse_dev_ioc_clone, 229, 0, u32);
}
use ioctl::fuse_dev_ioc_clone;

/// Mount options.
#[derive(Debug, Clone, Copy)]
pub struct MountOptions {
    /// Let users other than root access the file system.
    pub allow_other: bool,
    /// Let the kernel check permissions from the modes (recommended).
    pub default_permissions: bool,
}

/// Open `/dev/fuse`.
pub fn open_dev_fuse() -> Result<OwnedFd, ServerError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map_err(|e| ServerError::Mount {
            what: "open",
            path: "/dev/fuse".into(),
            source: e,
        })?;
    Ok(OwnedFd::from(f))
}

/// A second descriptor on the same FUSE connection (`FUSE_DEV_IOC_CLONE`): requests read
/// from it are answered on it, so each worker thread gets its own queue.
pub fn clone_channel(fd: &OwnedFd) -> Result<OwnedFd, ServerError> {
    let new = open_dev_fuse()?;
    let mut master = fd.as_raw_fd() as u32;
    // SAFETY: FUSE_DEV_IOC_CLONE reads one u32 (the descriptor to clone) from the pointer,
    // which points to a live local; `new` is an open /dev/fuse descriptor.
    unsafe { fuse_dev_ioc_clone(new.as_raw_fd(), &mut master) }.map_err(|e| {
        ServerError::Mount {
            what: "FUSE_DEV_IOC_CLONE",
            path: "/dev/fuse".into(),
            source: e.into(),
        }
    })?;
    Ok(new)
}

/// Mount the FUSE connection `fd` at `mountpoint`, showing `source` as the device.
pub fn mount(
    fd: &OwnedFd,
    source: &Path,
    mountpoint: &Path,
    opts: MountOptions,
) -> Result<(), ServerError> {
    let mut data = format!(
        "fd={},rootmode=40000,user_id={},group_id={}",
        fd.as_raw_fd(),
        nix::unistd::getuid(),
        nix::unistd::getgid()
    );
    if opts.allow_other {
        data.push_str(",allow_other");
    }
    if opts.default_permissions {
        data.push_str(",default_permissions");
    }
    nix::mount::mount(
        Some(source),
        mountpoint,
        Some(FSTYPE),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(data.as_str()),
    )
    .map_err(|e| ServerError::Mount {
        what: "mount",
        path: mountpoint.to_path_buf(),
        source: e.into(),
    })
}

/// Unmount `mountpoint`; with `lazy`, detach it even if busy.
pub fn unmount(mountpoint: &Path, lazy: bool) -> Result<(), ServerError> {
    let flags = if lazy {
        MntFlags::MNT_DETACH
    } else {
        MntFlags::empty()
    };
    nix::mount::umount2(mountpoint, flags).map_err(|e| ServerError::Mount {
        what: "umount",
        path: mountpoint.to_path_buf(),
        source: e.into(),
    })
}

/// The source (device) of the famfs mount at `mountpoint`, from /proc/self/mounts.
pub fn famfs_mount_source(mountpoint: &Path) -> Option<String> {
    let want = std::fs::canonicalize(mountpoint).ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().rev().find_map(|l| {
        let mut f = l.split_whitespace();
        let (src, mpt, typ) = (f.next()?, f.next()?, f.next()?);
        (typ == FSTYPE && Path::new(&unescape(mpt)) == want).then(|| unescape(src))
    })
}

/// Undo /proc/mounts octal escapes (`\040` for a space, ...).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A socket pair standing in for /dev/fuse in tests: requests written to one end are read by
/// the server from the other, one message per request.
pub fn socket_channel() -> Result<(OwnedFd, OwnedFd), ServerError> {
    let mut fds = [0i32; 2];
    // SAFETY: socketpair writes two descriptors into the array, which we then own.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(ServerError::Channel(std::io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just created by socketpair and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_escapes() {
        assert_eq!(unescape("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape("/x\\134y"), "/x\\y");
        assert_eq!(unescape("plain\\04"), "plain\\04");
    }

    #[test]
    fn out_of_range_octal_escapes_stay_literal() {
        assert_eq!(unescape("/mnt/\\777x"), "/mnt/\\777x");
    }
}
