//! Mounting and unmounting a FUSE file system with mount(2), without fusermount.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use famfs_fsdev::mounts::{self, MountEntry};
use nix::mount::{MntFlags, MsFlags};

use crate::ServerError;

mod own;
pub use own::{MountId, unmount_own};

/// The file-system type famfs mounts show in /proc/mounts.
pub const FSTYPE: &str = mounts::FUSE_FSTYPE;

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
    fused_mount_at(&mounts::read_mounts(), &want).map(|m| m.source.to_string_lossy().into_owned())
}

/// The last `fuse.famfs` mount at `mountpoint` (canonical) in `table`, even under another
/// mount stacked on it.
fn fused_mount_at<'a>(table: &'a [MountEntry], mountpoint: &Path) -> Option<&'a MountEntry> {
    table
        .iter()
        .rev()
        .find(|m| m.fstype == FSTYPE && m.target == mountpoint)
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
        let table = mounts::parse_mounts(
            b"/dev/dax0.0 /mnt/a\\040b fuse.famfs rw 0 0\n\
              /x\\134y /mnt/plain\\04 fuse.famfs rw 0 0\n\
              tmpfs /mnt/plain\\04 tmpfs rw 0 0\n",
        );
        let m = fused_mount_at(&table, Path::new("/mnt/a b")).unwrap();
        assert_eq!(m.source, Path::new("/dev/dax0.0"));
        let m = fused_mount_at(&table, Path::new("/mnt/plain\\04")).unwrap();
        assert_eq!(m.source, Path::new("/x\\y"), "found under the tmpfs on top");
        assert!(fused_mount_at(&table, Path::new("/mnt")).is_none());
    }

    #[test]
    fn out_of_range_octal_escapes_stay_literal() {
        let table = mounts::parse_mounts(b"/dev/dax0.0 /mnt/\\777x fuse.famfs rw 0 0\n");
        let m = fused_mount_at(&table, Path::new("/mnt/\\777x")).unwrap();
        assert_eq!(m.source, Path::new("/dev/dax0.0"));
    }
}
