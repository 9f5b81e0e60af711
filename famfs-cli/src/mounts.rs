//! The mount table (`/proc/self/mounts`): which famfs file systems are mounted where, and from
//! which device.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// File-system types that are famfs: the FUSE daemon's (`fuse.famfs`) and the legacy kernel
/// module's (`famfs`).
pub const FAMFS_FSTYPES: &[&str] = &["fuse.famfs", "famfs"];

/// One line of the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// The source (for famfs: the device path).
    pub source: String,
    /// The mount point.
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

/// Undo the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            if let Ok(c) = u8::try_from(v) {
                out.push(c);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse mount-table text; malformed lines are skipped.
pub fn parse_mounts(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_ascii_whitespace();
            let source = unescape(f.next()?);
            let target = PathBuf::from(unescape(f.next()?));
            let fstype = unescape(f.next()?);
            let options = f.next().map(unescape).unwrap_or_default();
            Some(MountEntry {
                source,
                target,
                fstype,
                options,
            })
        })
        .collect()
}

/// The current mount table (empty if it cannot be read).
pub fn read_mounts() -> Vec<MountEntry> {
    match std::fs::read_to_string("/proc/self/mounts") {
        Ok(t) => parse_mounts(&t),
        Err(e) => {
            tracing::warn!("cannot read /proc/self/mounts: {e}");
            Vec::new()
        }
    }
}

/// Whether two paths name the same file (same device and inode), or are equal after
/// canonicalization.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => {
            if x.file_type().is_char_device_like() && y.file_type().is_char_device_like() {
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

trait CharLike {
    fn is_char_device_like(&self) -> bool;
}

impl CharLike for std::fs::FileType {
    fn is_char_device_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_char_device() || self.is_block_device()
    }
}

/// The famfs mounts whose source is `device`.
pub fn mounts_of_device<'a>(mounts: &'a [MountEntry], device: &Path) -> Vec<&'a MountEntry> {
    mounts
        .iter()
        .filter(|m| m.is_famfs() && same_file(Path::new(&m.source), device))
        .collect()
}

/// The famfs mount at exactly `dir`, if any (the last one: mounts stack).
pub fn famfs_mount_at<'a>(mounts: &'a [MountEntry], dir: &Path) -> Option<&'a MountEntry> {
    let canon = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    mounts
        .iter()
        .rev()
        .find(|m| m.target == canon || m.target == dir)
        .filter(|m| m.is_famfs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
/dev/vda / ext4 rw,relatime 0 0
/dev/dax0.0 /mnt/famfs fuse.famfs rw,nosuid,nodev,relatime,user_id=0,group_id=0,allow_other 0 0
/tmp/my\\040dev.img /tmp/mnt\\040point fuse.famfs rw 0 0
/dev/pmem0 /mnt/v1 famfs rw 0 0
broken-line
";

    #[test]
    fn parses_and_unescapes() {
        let m = parse_mounts(SAMPLE);
        assert_eq!(m.len(), 5);
        assert_eq!(m[2].source, "/dev/dax0.0");
        assert_eq!(m[2].target, PathBuf::from("/mnt/famfs"));
        assert!(m[2].is_famfs() && m[4].is_famfs() && !m[1].is_famfs());
        assert_eq!(m[3].source, "/tmp/my dev.img");
        assert_eq!(m[3].target, PathBuf::from("/tmp/mnt point"));
        assert_eq!(unescape("a\\134b\\011c\\012"), "a\\b\tc\n");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
        assert_eq!(
            unescape("\\777x"),
            "\\777x",
            "out of byte range stays literal"
        );
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
        let m = parse_mounts(&table);
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
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_tables_never_panic(text in "[ -~\\n\\t]{0,300}") {
            for m in parse_mounts(&text) {
                let _ = m.is_famfs();
            }
        }

        #[test]
        fn escaped_fields_round_trip(s in "[a-z /\\\\\t]{1,20}") {
            let esc: String = s.chars().map(|c| match c {
                ' ' => "\\040".to_string(),
                '\t' => "\\011".to_string(),
                '\\' => "\\134".to_string(),
                c => c.to_string(),
            }).collect();
            proptest::prop_assert_eq!(unescape(&esc), s);
        }
    }

    #[test]
    fn real_table_parses() {
        // Whatever this machine has mounted, the root is there and nothing panics.
        let m = read_mounts();
        assert!(m.iter().any(|e| e.target == Path::new("/")));
    }
}
