//! A daemon's own mount: which mount at a mount point is the one this process made.
//!
//! A daemon whose mount is unmounted with a plain `umount MPT` sees its session end a moment
//! later. By then `famfs mount` may already have mounted the same device at MPT again; a daemon
//! that detached "whatever famfs mount is at MPT" on exit would tear down that new mount. So a
//! daemon records its mount's identity right after mount(2) ([`MountId::of`]) and only ever
//! unmounts MPT while the mount there is still that one ([`unmount_own`]).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::ServerError;

/// The identity of the mount at a path: the kernel's 64-bit mount id, which is never reused
/// (`STATX_MNT_ID_UNIQUE`, Linux 6.8+), or on older kernels the (reusable) mount id together
/// with the device number of the mount's root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountId {
    /// The mount id.
    id: u64,
    /// Whether `id` is the unique (never reused) mount id.
    unique: bool,
    /// `st_dev` of the mount's root (for FUSE, the connection's anonymous device).
    dev: (u32, u32),
}

impl MountId {
    /// The identity of the mount `path` is on (for a mount point, the mount on top).
    ///
    /// Sends no request to a FUSE server (`AT_STATX_DONT_SYNC`: the attributes come from the
    /// kernel's cache), so a daemon can call it on its own mount before it serves INIT, and on
    /// a mount whose server is gone.
    pub fn of(path: &Path) -> Result<MountId, ServerError> {
        let err = |source| ServerError::Mount {
            what: "statx",
            path: path.to_path_buf(),
            source,
        };
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        // SAFETY: an all-zero `statx` is a valid value of this plain C struct.
        let mut stx: libc::statx = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is NUL-terminated and outlives the call; `stx` is a valid, writable
        // `statx` the kernel fills in.
        let r = unsafe {
            libc::statx(
                libc::AT_FDCWD,
                c.as_ptr(),
                libc::AT_STATX_DONT_SYNC | libc::AT_NO_AUTOMOUNT,
                libc::STATX_MNT_ID | libc::STATX_MNT_ID_UNIQUE,
                &mut stx,
            )
        };
        if r != 0 {
            return Err(err(std::io::Error::last_os_error()));
        }
        let unique = stx.stx_mask & libc::STATX_MNT_ID_UNIQUE != 0;
        if !unique && stx.stx_mask & libc::STATX_MNT_ID == 0 {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "the kernel reports no mount id (statx STATX_MNT_ID, Linux 5.8+)",
            )));
        }
        Ok(MountId {
            id: stx.stx_mnt_id,
            unique,
            dev: (stx.stx_dev_major, stx.stx_dev_minor),
        })
    }
}

/// Detach (`MNT_DETACH`) the mount at `mountpoint` if it is still `own`; `Ok(false)` when
/// another mount (or none) is there now, which is left alone.
pub fn unmount_own(mountpoint: &Path, own: &MountId) -> Result<bool, ServerError> {
    match MountId::of(mountpoint) {
        Ok(now) if now == *own => {}
        Ok(now) => {
            tracing::debug!(
                "{}: not our mount any more ({now:?}, ours {own:?}); left alone",
                mountpoint.display()
            );
            return Ok(false);
        }
        Err(e) => {
            tracing::debug!("{e}; nothing unmounted");
            return Ok(false);
        }
    }
    super::unmount(mountpoint, true)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_of_a_path_is_its_mount() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let a = MountId::of(dir.path()).unwrap();
        assert_eq!(a, MountId::of(&sub).unwrap(), "same mount");
        assert_eq!(a, MountId::of(dir.path()).unwrap(), "stable");
        assert_ne!(a, MountId::of(Path::new("/proc")).unwrap());
        assert!(MountId::of(&dir.path().join("none")).is_err());
        // Not our mount: nothing is unmounted (the temporary directory is no mount point).
        let other = MountId::of(Path::new("/proc")).unwrap();
        assert!(!unmount_own(&sub, &other).unwrap());
        assert!(sub.is_dir());
    }
}
