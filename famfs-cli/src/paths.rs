//! Paths: famfs paths given with `--device` (relative to the file system root), host paths inside
//! a mounted famfs, and finding the mount a host path belongs to.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::mounts::MountEntry;

/// Why a famfs path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// `..` climbs above the file system root.
    #[error("{0:?} leads outside the famfs file system")]
    Escapes(String),
}

/// Normalize a path inside a famfs as given with `--device`: a leading `/` (the famfs root) is
/// accepted and stripped, empty and `.` components are dropped, `..` is resolved lexically (there
/// are no symlinks in famfs). The empty result is the root.
pub fn famfs_relpath(s: impl AsRef<OsStr>) -> Result<PathBuf, PathError> {
    let s = s.as_ref();
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in s.as_bytes().split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if parts.pop().is_none() {
                    return Err(PathError::Escapes(s.to_string_lossy().into_owned()));
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.iter().map(|c| OsStr::from_bytes(c)).collect())
}

/// The famfs path as printed in messages and listings: `/` for the root, else `a/b/c`.
pub fn display_rel(rel: &Path) -> String {
    if rel.as_os_str().is_empty() {
        "/".to_string()
    } else {
        rel.display().to_string()
    }
}

/// Make a host path absolute and canonical: the longest existing prefix is canonicalized
/// (following symlinks), the rest (which does not exist yet) is normalized lexically.
pub fn resolve_host_path(p: &Path) -> io::Result<PathBuf> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    };
    let comps: Vec<Component<'_>> = abs.components().collect();
    // Longest existing prefix.
    let mut split = comps.len();
    let mut base = loop {
        let prefix: PathBuf = comps[..split].iter().collect();
        match std::fs::canonicalize(&prefix) {
            Ok(c) => break c,
            Err(e) if split > 1 && matches!(e.kind(), io::ErrorKind::NotFound) => split -= 1,
            Err(e) if split > 1 && e.raw_os_error() == Some(libc::ENOTDIR) => split -= 1,
            Err(e) => return Err(e),
        }
    };
    for c in &comps[split..] {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                base.pop();
            }
            Component::Normal(n) => base.push(n),
            Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Ok(base)
}

/// A host path located inside a mounted famfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InMount {
    /// The mount point (the famfs root).
    pub root: PathBuf,
    /// The path relative to it ("" for the root itself).
    pub rel: PathBuf,
}

/// Find the famfs mount `abs` (absolute, resolved) lies in: the deepest mount point that is an
/// ancestor of `abs` must be a famfs mount with `.meta/.log` present.
pub fn find_in_mounts(abs: &Path, mounts: &[MountEntry]) -> Option<InMount> {
    let deepest = mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| abs.starts_with(&m.target))
        // Deepest target; among equal targets the last mounted wins.
        .max_by_key(|(i, m)| (m.target.components().count(), *i))?
        .1;
    if !deepest.is_famfs() {
        return None;
    }
    if !deepest.target.join(".meta/.log").exists() {
        return None;
    }
    let rel = abs.strip_prefix(&deepest.target).ok()?.to_path_buf();
    Some(InMount {
        root: deepest.target.clone(),
        rel,
    })
}

/// The last component of a host path, for `cp` into a directory.
pub fn basename(p: &Path) -> Option<OsString> {
    let abs = resolve_host_path(p).ok()?;
    abs.file_name().map(|n| n.to_os_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mounts::parse_mounts;

    #[test]
    fn famfs_paths() {
        let ok = |s: &str, want: &str| assert_eq!(famfs_relpath(s).unwrap(), PathBuf::from(want));
        ok("a/b", "a/b");
        ok("/a/b", "a/b");
        ok("//a//b/", "a/b");
        ok("./a/./b", "a/b");
        ok("a/y/../b", "a/b");
        ok("/", "");
        ok("", "");
        ok("a/..", "");
        assert!(famfs_relpath("..").is_err());
        assert!(famfs_relpath("a/y/../../../..").is_err());
        assert!(famfs_relpath("/../etc").is_err());
        let raw = OsStr::from_bytes(b"/d\xff/x");
        assert_eq!(
            famfs_relpath(raw).unwrap().as_os_str().as_bytes(),
            b"d\xff/x",
            "non-UTF-8 names survive"
        );
        assert_eq!(display_rel(Path::new("")), "/");
        assert_eq!(display_rel(Path::new("a/b")), "a/b");
    }

    #[test]
    fn host_paths_resolve_existing_prefix_and_normalize_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(real.join("d")).unwrap();
        std::os::unix::fs::symlink(real.join("d"), real.join("link")).unwrap();
        assert_eq!(
            resolve_host_path(&real.join("link/new/./x/../y")).unwrap(),
            real.join("d/new/y")
        );
        assert_eq!(resolve_host_path(&real.join("d/..")).unwrap(), real);
        assert_eq!(
            resolve_host_path(&real.join("nope/../../z")).unwrap(),
            real.parent().unwrap().join("z")
        );
        std::fs::write(real.join("f"), b"").unwrap();
        assert_eq!(
            resolve_host_path(&real.join("f/sub")).unwrap(),
            real.join("f/sub"),
            "a file in the middle is left for the caller to reject"
        );
    }

    #[test]
    fn mount_discovery() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let mpt = base.join("mnt");
        std::fs::create_dir_all(mpt.join(".meta")).unwrap();
        std::fs::write(mpt.join(".meta/.log"), b"").unwrap();
        std::fs::create_dir_all(base.join("plain/.meta")).unwrap();
        std::fs::write(base.join("plain/.meta/.log"), b"").unwrap();
        let table = format!(
            "/dev/vda / ext4 rw 0 0\n/dev/dax0.0 {} fuse.famfs rw 0 0\n",
            mpt.display()
        );
        let m = parse_mounts(&table);
        let hit = find_in_mounts(&mpt.join("a/b"), &m).unwrap();
        assert_eq!(hit.root, mpt);
        assert_eq!(hit.rel, PathBuf::from("a/b"));
        let hit = find_in_mounts(&mpt, &m).unwrap();
        assert_eq!(hit.rel, PathBuf::new());
        assert!(
            find_in_mounts(&base.join("plain/x"), &m).is_none(),
            "meta files alone do not make a famfs: it must be a famfs mount"
        );
        assert!(
            find_in_mounts(&base.join("mntx"), &m).is_none(),
            "component-wise prefix"
        );
        // A famfs mount without meta files (daemon not ready) is not usable.
        std::fs::remove_file(mpt.join(".meta/.log")).unwrap();
        assert!(find_in_mounts(&mpt.join("a"), &m).is_none());
        std::fs::write(mpt.join(".meta/.log"), b"").unwrap();
        // Something else mounted over a famfs directory hides it.
        let table2 = format!("{table}tmpfs {} tmpfs rw 0 0\n", mpt.join("sub").display());
        let m2 = parse_mounts(&table2);
        assert!(find_in_mounts(&mpt.join("sub/x"), &m2).is_none());
        assert!(find_in_mounts(&mpt.join("subx"), &m2).is_some());
    }
}
