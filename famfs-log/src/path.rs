//! Relative paths as the log stores them.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::layout::{RELPATH_FIELD, RELPATH_MAX};

/// Why a stored or requested path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathProblem {
    /// Empty path.
    #[error("empty path")]
    Empty,
    /// Starts with '/'.
    #[error("absolute path")]
    Absolute,
    /// The 80-byte field has no terminating NUL.
    #[error("path field is not NUL-terminated")]
    NotTerminated,
    /// Longer than 79 bytes.
    #[error("path is {0} bytes; at most {RELPATH_MAX} fit in the log")]
    TooLong(usize),
    /// A `.` or `..` component.
    #[error("path has a '.' or '..' component")]
    DotComponent,
    /// An empty component (`a//b`, trailing '/').
    #[error("path has an empty component")]
    EmptyComponent,
    /// Bytes after the terminating NUL are not zero (the reference always zero-pads).
    #[error("path field has bytes after its NUL")]
    TrailingBytes,
    /// `.meta` or a path under it: reserved for the meta files a mounted famfs shows.
    #[error("{META_DIR} at the root is reserved for the meta files of a mounted famfs")]
    Reserved,
}

/// The root directory a mounted famfs shows its meta files in (`.meta/.superblock`,
/// `.meta/.log`). Nothing in the log may name it or anything under it: replay skips such entries
/// (in the daemon and in every tool alike) and writers refuse to log them.
pub const META_DIR: &str = ".meta";

/// Whether a relative path is [`META_DIR`] or lies under it (first component `.meta`).
pub fn is_reserved(path: &[u8]) -> bool {
    path.split(|&b| b == b'/').next() == Some(META_DIR.as_bytes())
}

/// [`is_reserved`] as a check.
pub fn check_not_reserved(path: &[u8]) -> Result<(), PathProblem> {
    if is_reserved(path) {
        return Err(PathProblem::Reserved);
    }
    Ok(())
}

/// Check a relative path: non-empty, not absolute, at most 79 bytes, no NUL, and made only of
/// normal components (no `.`, `..` or empty components). This is stricter than the reference,
/// which accepts `..`; such an entry could name a file outside the file system.
pub fn check_relpath(path: &[u8]) -> Result<(), PathProblem> {
    check_path(path, true)
}

/// [`check_relpath`], with the scan for NUL bytes only if `scan_nul`.
fn check_path(path: &[u8], scan_nul: bool) -> Result<(), PathProblem> {
    if path.is_empty() {
        return Err(PathProblem::Empty);
    }
    if path[0] == b'/' {
        return Err(PathProblem::Absolute);
    }
    if path.len() > RELPATH_MAX {
        return Err(PathProblem::TooLong(path.len()));
    }
    if scan_nul && path.contains(&0) {
        return Err(PathProblem::NotTerminated);
    }
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" => return Err(PathProblem::EmptyComponent),
            b"." | b".." => return Err(PathProblem::DotComponent),
            _ => {}
        }
    }
    Ok(())
}

/// Decode an 80-byte path field: the bytes up to the NUL, which must then be checked.
pub fn decode_relpath(field: &[u8; RELPATH_FIELD]) -> Result<&[u8], PathProblem> {
    let nul = field
        .iter()
        .position(|&b| b == 0)
        .ok_or(PathProblem::NotTerminated)?;
    // OR-ing every byte (no early exit) lets the compiler check the padding a vector at a time:
    // replay decodes a path per entry.
    if field[nul..].iter().fold(0u8, |acc, &b| acc | b) != 0 {
        return Err(PathProblem::TrailingBytes);
    }
    let p = &field[..nul];
    // No NUL scan: the field was cut at the first NUL.
    check_path(p, false)?;
    Ok(p)
}

/// Encode a path into an 80-byte zero-padded field.
pub fn encode_relpath(path: &[u8]) -> Result<[u8; RELPATH_FIELD], PathProblem> {
    check_relpath(path)?;
    let mut f = [0u8; RELPATH_FIELD];
    f[..path.len()].copy_from_slice(path);
    Ok(f)
}

/// Split a checked path into its components.
pub fn components(path: &[u8]) -> impl Iterator<Item = &OsStr> {
    path.split(|&b| b == b'/').map(OsStr::from_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rules() {
        assert!(check_relpath(b"a/b/c").is_ok());
        assert!(check_relpath(b".hidden/..x").is_ok());
        assert_eq!(check_relpath(b""), Err(PathProblem::Empty));
        assert_eq!(check_relpath(b"/etc/passwd"), Err(PathProblem::Absolute));
        assert_eq!(check_relpath(b"../x"), Err(PathProblem::DotComponent));
        assert_eq!(check_relpath(b"a/../../x"), Err(PathProblem::DotComponent));
        assert_eq!(check_relpath(b"a/./x"), Err(PathProblem::DotComponent));
        assert_eq!(check_relpath(b"a//x"), Err(PathProblem::EmptyComponent));
        assert_eq!(check_relpath(b"a/"), Err(PathProblem::EmptyComponent));
        assert!(check_relpath(&[b'x'; 79]).is_ok());
        assert_eq!(check_relpath(&[b'x'; 80]), Err(PathProblem::TooLong(80)));
    }

    #[test]
    fn meta_is_reserved() {
        for p in [&b".meta"[..], b".meta/evil", b".meta/.log", b".meta/a/b"] {
            assert!(is_reserved(p), "{}", String::from_utf8_lossy(p));
            assert_eq!(check_not_reserved(p), Err(PathProblem::Reserved));
        }
        for p in [
            &b".metadata"[..],
            b"a/.meta",
            b"x/.meta/y",
            b".met",
            b"meta",
        ] {
            assert!(!is_reserved(p), "{}", String::from_utf8_lossy(p));
            assert_eq!(check_not_reserved(p), Ok(()));
        }
    }

    #[test]
    fn fields() {
        let f = encode_relpath(b"dir1/file0").unwrap();
        assert_eq!(&f[..11], b"dir1/file0\0");
        assert_eq!(decode_relpath(&f).unwrap(), b"dir1/file0");
        let full = [b'y'; RELPATH_FIELD];
        assert_eq!(decode_relpath(&full), Err(PathProblem::NotTerminated));
        let mut junk = f;
        junk[70] = b'z';
        assert_eq!(decode_relpath(&junk), Err(PathProblem::TrailingBytes));
    }

    proptest! {
        #[test]
        fn decode_never_panics_and_never_escapes(bytes in proptest::collection::vec(any::<u8>(), RELPATH_FIELD)) {
            let field: [u8; RELPATH_FIELD] = bytes.try_into().unwrap();
            if let Ok(p) = decode_relpath(&field) {
                prop_assert!(p[0] != b'/');
                prop_assert!(components(p).all(|c| c != ".." && c != "." && !c.is_empty()));
            }
        }

        #[test]
        fn good_paths_round_trip(comps in proptest::collection::vec("[a-zA-Z0-9_.-]{1,8}", 1..6)) {
            let p = comps.join("/");
            prop_assume!(comps.iter().all(|c| c != "." && c != ".."));
            let f = encode_relpath(p.as_bytes()).unwrap();
            prop_assert_eq!(decode_relpath(&f).unwrap(), p.as_bytes());
        }
    }
}
