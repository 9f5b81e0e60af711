//! The mount table (`/proc/self/mounts`): which famfs file systems are mounted where, and from
//! which device. The one parser of it for every famfs crate.
//!
//! The table is bytes: the kernel escapes space, tab, newline and backslash in each field as
//! three octal digits (`\040`, `\011`, `\012`, `\134`) and writes every other byte as is, so a
//! path that is not UTF-8 is kept exactly.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The file-system type of a mount made by the famfs FUSE daemon.
pub const FUSE_FSTYPE: &str = "fuse.famfs";

/// File-system types that are famfs: the FUSE daemon's (`fuse.famfs`) and the legacy kernel
/// module's (`famfs`).
pub const FAMFS_FSTYPES: &[&str] = &[FUSE_FSTYPE, "famfs"];

/// The mount table of this process.
pub const PROC_MOUNTS: &str = "/proc/self/mounts";

/// One line of the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// The source (for famfs: the device path), unescaped.
    pub source: PathBuf,
    /// The mount point, unescaped.
    pub target: PathBuf,
    /// The file-system type.
    pub fstype: String,
    /// The mount options.
    pub options: String,
}

impl MountEntry {
    /// Whether this is a famfs mount.
    pub fn is_famfs(&self) -> bool {
        FAMFS_FSTYPES.contains(&self.fstype.as_str())
    }
}

/// Undo the kernel's octal escapes. A backslash not followed by three octal digits, or by
/// digits above `\377`, stays as it is.
pub fn unescape(field: &[u8]) -> Vec<u8> {
    // Most fields have no escapes: one copy, not a byte-by-byte rebuild.
    if !field.contains(&b'\\') {
        return field.to_vec();
    }
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\'
            && let Some(digits) = field.get(i + 1..i + 4)
            && digits.iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = digits
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

/// Escape a field as the kernel writes it into the table (the inverse of [`unescape`]).
pub fn escape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    for &b in field {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => out.extend_from_slice(format!("\\{b:03o}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

fn text(field: &[u8]) -> String {
    String::from_utf8(unescape(field))
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn path(field: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(unescape(field)))
}

/// Parse mount-table bytes; lines with fewer than three fields are skipped. Fields are
/// separated by spaces (a space inside a field is escaped; other bytes, `\r` included, are not).
pub fn parse_mounts(table: impl AsRef<[u8]>) -> Vec<MountEntry> {
    table
        .as_ref()
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let mut f = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
            Some(MountEntry {
                source: path(f.next()?),
                target: path(f.next()?),
                fstype: text(f.next()?),
                options: f.next().map(text).unwrap_or_default(),
            })
        })
        .collect()
}

/// The current mount table (empty, with a warning, if it cannot be read).
pub fn read_mounts() -> Vec<MountEntry> {
    read_mounts_from(Path::new(PROC_MOUNTS))
}

/// The mount table in `file` (a `mounts` file of a proc tree; empty, with a warning, if it
/// cannot be read).
pub fn read_mounts_from(file: &Path) -> Vec<MountEntry> {
    // A proc file has no size to size the buffer by: start at 16 KiB (one read for most
    // tables) instead of growing from a few bytes, one system call per doubling.
    let read = |f: &Path| -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        let mut t = Vec::with_capacity(16 << 10);
        std::fs::File::open(f)?.read_to_end(&mut t)?;
        Ok(t)
    };
    match read(file) {
        Ok(t) => parse_mounts(t),
        Err(e) => {
            tracing::warn!("cannot read {}: {e}", file.display());
            Vec::new()
        }
    }
}

/// Whether two paths name the same file (the same device number for device nodes, the same
/// device and inode otherwise), or are equal after canonicalization.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => {
            let node = |t: std::fs::FileType| t.is_char_device() || t.is_block_device();
            if node(x.file_type()) && node(y.file_type()) {
                return x.rdev() == y.rdev();
            }
            x.dev() == y.dev() && x.ino() == y.ino()
        }
        _ => match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => a == b,
        },
    }
}

/// The famfs mounts whose source is `device`.
pub fn mounts_of_device<'a>(mounts: &'a [MountEntry], device: &Path) -> Vec<&'a MountEntry> {
    mounts
        .iter()
        .filter(|m| m.is_famfs() && same_file(&m.source, device))
        .collect()
}

/// The mount at exactly `dir` (as given or canonicalized), if any: the last one, since mounts
/// stack and the last hides the others.
pub fn mount_at<'a>(mounts: &'a [MountEntry], dir: &Path) -> Option<&'a MountEntry> {
    let canon = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    mounts
        .iter()
        .rev()
        .find(|m| m.target == canon || m.target == dir)
}

/// The famfs mount at exactly `dir`, if the mount on top there is one.
pub fn famfs_mount_at<'a>(mounts: &'a [MountEntry], dir: &Path) -> Option<&'a MountEntry> {
    mount_at(mounts, dir).filter(|m| m.is_famfs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE: &str = "\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
/dev/vda / ext4 rw,relatime 0 0
/dev/dax0.0 /mnt/famfs fuse.famfs rw,nosuid,nodev,relatime,user_id=0,group_id=0,allow_other 0 0
/tmp/my\\040dev.img /tmp/mnt\\040point fuse.famfs rw 0 0
/dev/pmem0 /mnt/v1 famfs rw 0 0
broken-line
";

    fn un(s: &str) -> String {
        String::from_utf8(unescape(s.as_bytes())).unwrap()
    }

    #[test]
    fn parses_and_unescapes() {
        let m = parse_mounts(SAMPLE.as_bytes());
        assert_eq!(m.len(), 5);
        assert_eq!(m[2].source, Path::new("/dev/dax0.0"));
        assert_eq!(m[2].target, PathBuf::from("/mnt/famfs"));
        assert!(m[2].is_famfs() && m[4].is_famfs() && !m[1].is_famfs());
        assert_eq!(m[3].source, Path::new("/tmp/my dev.img"));
        assert_eq!(m[3].target, PathBuf::from("/tmp/mnt point"));
        assert_eq!(un("a\\134b\\011c\\012"), "a\\b\tc\n");
        assert_eq!(un("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(un("/x\\134y"), "/x\\y");
        assert_eq!(un("trailing\\04"), "trailing\\04");
        assert_eq!(un("plain\\04"), "plain\\04");
        assert_eq!(un("\\777x"), "\\777x", "out of byte range stays literal");
    }

    #[test]
    fn an_out_of_range_escape_in_a_table_neither_panics_nor_decodes() {
        // famfs-server's own parser overflowed a u8 here (`\777` is 511) and panicked.
        let m = parse_mounts(b"/dev/dax0.0 /mnt/\\777 fuse.famfs rw 0 0\n");
        assert_eq!(m[0].target, Path::new("/mnt/\\777"));
        assert_eq!(unescape(b"\\400\\377"), b"\\400\xff");
    }

    #[test]
    fn non_utf8_paths_are_kept_exactly() {
        let m = parse_mounts(b"/dev/dax0.0 /mnt/\xff\\040x fuse.famfs rw 0 0\n");
        assert_eq!(m[0].target.as_os_str().as_encoded_bytes(), b"/mnt/\xff x");
    }

    #[test]
    fn device_and_mount_point_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("dev.img");
        std::fs::write(&img, b"x").unwrap();
        let link = dir.path().join("link.img");
        std::os::unix::fs::symlink(&img, &link).unwrap();
        let mpt = dir.path().join("mnt");
        std::fs::create_dir(&mpt).unwrap();
        let table = format!(
            "{} {} fuse.famfs rw 0 0\n{} /elsewhere ext4 rw 0 0\n",
            link.display(),
            mpt.display(),
            img.display()
        );
        let m = parse_mounts(table.as_bytes());
        let hits = mounts_of_device(&m, &img);
        assert_eq!(
            hits.len(),
            1,
            "symlinked source is the same file; ext4 line ignored"
        );
        assert_eq!(hits[0].target, mpt);
        assert!(famfs_mount_at(&m, &mpt).is_some());
        assert!(famfs_mount_at(&m, dir.path()).is_none());
        assert!(mounts_of_device(&m, &dir.path().join("other")).is_empty());
        assert!(same_file(Path::new("/dev/null"), Path::new("/dev/null")));
        // Something stacked on top hides the famfs mount.
        let stacked = format!("{table}tmpfs {} tmpfs rw 0 0\n", mpt.display());
        let m = parse_mounts(stacked.as_bytes());
        assert_eq!(mount_at(&m, &mpt).unwrap().fstype, "tmpfs");
        assert!(famfs_mount_at(&m, &mpt).is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_tables_never_panic(table in proptest::collection::vec(any::<u8>(), 0..400)) {
            for m in parse_mounts(&table) {
                let _ = m.is_famfs();
            }
        }

        #[test]
        fn arbitrary_fields_never_panic(field in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = unescape(&field);
        }

        #[test]
        fn printable_tables_never_panic(text in "[ -~\\n\\t]{0,300}") {
            for m in parse_mounts(text.as_bytes()) {
                let _ = m.is_famfs();
            }
        }

        /// Any bytes, escaped as the kernel does, come back exactly.
        #[test]
        fn escapes_round_trip(field in proptest::collection::vec(any::<u8>(), 1..40)) {
            prop_assert_eq!(unescape(&escape(&field)), field);
        }

        /// A whole line of escaped fields parses back to the fields.
        #[test]
        fn escaped_lines_round_trip(
            src in proptest::collection::vec(any::<u8>(), 1..30),
            dst in proptest::collection::vec(any::<u8>(), 1..30),
        ) {
            let mut line = escape(&src);
            line.push(b' ');
            line.extend(escape(&dst));
            line.extend_from_slice(b" fuse.famfs rw 0 0\n");
            let m = parse_mounts(&line);
            prop_assert_eq!(m.len(), 1);
            prop_assert_eq!(m[0].source.as_os_str().as_encoded_bytes(), &src[..]);
            prop_assert_eq!(m[0].target.as_os_str().as_encoded_bytes(), &dst[..]);
        }

        #[test]
        fn escaped_text_round_trips(s in "[a-z /\\\\\t]{1,20}") {
            let esc: String = s.chars().map(|c| match c {
                ' ' => "\\040".to_string(),
                '\t' => "\\011".to_string(),
                '\\' => "\\134".to_string(),
                c => c.to_string(),
            }).collect();
            prop_assert_eq!(un(&esc), s);
        }
    }

    #[test]
    fn real_table_parses() {
        // Whatever this machine has mounted, the root is there and nothing panics.
        let m = read_mounts();
        assert!(m.iter().any(|e| e.target == Path::new("/")));
    }
}
