//! Stale mounts: a famfs mount whose daemon died (killed, crashed) stays in the mount table,
//! and every access to it fails with ENOTCONN. Commands name the mount and the fix instead of
//! reporting the bare errno.

use std::path::{Path, PathBuf};

use crate::mounts::{MountEntry, read_mounts};

/// Whether `dir` is a mount whose FUSE daemon is gone. `stat` may still answer from the
/// kernel's attribute cache; `statfs` always asks the daemon, and fails with ENOTCONN.
pub fn is_disconnected(dir: &Path) -> bool {
    matches!(
        nix::sys::statvfs::statvfs(dir),
        Err(nix::errno::Errno::ENOTCONN)
    )
}

/// The deepest famfs mount at or above `p` (made absolute without touching it) whose daemon is
/// gone.
pub fn stale_mount_containing(p: &Path) -> Option<PathBuf> {
    stale_mount_containing_in(p, &read_mounts())
}

/// [`stale_mount_containing`] in a mount table already read.
pub fn stale_mount_containing_in(p: &Path, table: &[MountEntry]) -> Option<PathBuf> {
    let abs = std::path::absolute(p).ok()?;
    table
        .iter()
        .filter(|m| m.is_famfs() && abs.starts_with(&m.target))
        .map(|m| &m.target)
        .filter(|t| is_disconnected(t))
        .max_by_key(|t| t.components().count())
        .cloned()
}

/// A stale famfs mount of device `dev`, if there is one.
pub fn stale_mount_of_device(dev: &Path) -> Option<PathBuf> {
    let table = read_mounts();
    crate::mounts::mounts_of_device(&table, dev)
        .into_iter()
        .map(|m| m.target.clone())
        .find(|t| is_disconnected(t))
}

/// Fail (ENOTCONN) with [`stale_message`] when `p` is in a stale famfs mount.
pub fn check_not_stale(p: &Path) -> anyhow::Result<()> {
    check_not_stale_in(p, &read_mounts())
}

/// [`check_not_stale`] in a mount table already read.
pub fn check_not_stale_in(p: &Path, table: &[MountEntry]) -> anyhow::Result<()> {
    match stale_mount_containing_in(p, table) {
        Some(mpt) => Err(crate::error::fail(libc::ENOTCONN, stale_message(&mpt))),
        None => Ok(()),
    }
}

/// What to tell the user about a stale mount at `mpt`.
pub fn stale_message(mpt: &Path) -> String {
    format!(
        "{0} is a stale famfs mount: its daemon (famfs_fused) is gone, so nothing under it can \
         be read; unmount it with `famfs umount {0}` (then mount it again)",
        mpt.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_paths_are_not_stale() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_disconnected(dir.path()));
        assert_eq!(stale_mount_containing(dir.path()), None);
        let m = stale_message(Path::new("/mnt/famfs"));
        assert!(m.contains("famfs umount /mnt/famfs"), "{m}");
    }
}
