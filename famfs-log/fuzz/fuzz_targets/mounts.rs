//! Mount-table parser (`/proc/self/mounts`, famfs-fsdev's `mounts` module). The table is
//! kernel-written, but its source and target fields are names any user can choose (a FUSE
//! mount at a path with spaces, escapes or invalid UTF-8). Input: the table bytes.
//!
//! Invariants: never panics; escaping is undone exactly by unescaping, for any bytes; every
//! parsed entry has non-empty fields and, written back as the kernel would write it, parses to
//! the same entry.
#![no_main]

use std::os::unix::ffi::OsStrExt;

use famfs_fsdev::mounts::{MountEntry, escape, parse_mounts, unescape};
use libfuzzer_sys::fuzz_target;

/// One table line as the kernel writes it for `m`.
fn line(m: &MountEntry) -> Vec<u8> {
    let mut l = escape(m.source.as_os_str().as_bytes());
    for f in [m.target.as_os_str().as_bytes(), m.fstype.as_bytes()] {
        l.push(b' ');
        l.extend(escape(f));
    }
    if !m.options.is_empty() {
        l.push(b' ');
        l.extend(escape(m.options.as_bytes()));
    }
    l
}

fuzz_target!(|data: &[u8]| {
    assert_eq!(unescape(&escape(data)), data);
    let entries = parse_mounts(data);
    assert!(entries.len() <= data.split(|&b| b == b'\n').count());
    for m in &entries {
        assert!(!m.source.as_os_str().is_empty() && !m.target.as_os_str().is_empty());
        assert!(!m.fstype.is_empty());
        let _ = m.is_famfs();
        assert_eq!(parse_mounts(line(m)), vec![m.clone()]);
    }
});
