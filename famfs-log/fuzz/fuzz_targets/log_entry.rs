//! Log entry decoder. Input: the 544 slot bytes, an optional mode byte, then an optional u64
//! slot index (default: the slot's own seqnum). Mode absent or even: seqnum set to the index and
//! the CRC fixed up, so the content decoders (paths, file maps, every entry type) are reached;
//! odd: the stored seqnum and CRC are kept (the integrity-rejection paths).
//!
//! Invariants: never panics; a decoded entry has a clean relative path, re-encodes and decodes
//! to the same value, and the borrowing decoder agrees; the same bytes in another slot, or with
//! any one covered byte changed, fail the integrity check; a file map whose placement checks
//! pass resolves every file offset inside its own extents.
#![no_main]

use famfs_fmap::FileOffset;
use famfs_log::entry::{EntryRef, LogEntry, check_integrity};
use famfs_log::layout::{LOG_ENTRY_CRC_LEN, LOG_ENTRY_SIZE};
use famfs_log_fuzz::{fix_entry, record};
use libfuzzer_sys::fuzz_target;

/// Placement bounds of an 8 GiB device with an 8 MiB log.
const DATA_START: u64 = 10 << 20;
const DEV_END: u64 = 8 << 30;

fuzz_target!(|data: &[u8]| {
    let (mut slot, mode, rest) = record::<LOG_ENTRY_SIZE>(data);
    let index = match rest.get(..8) {
        Some(b) => u64::from_le_bytes(b.try_into().unwrap()),
        None => u64::from_le_bytes(slot[..8].try_into().unwrap()),
    };
    if mode.unwrap_or(0) & 1 == 0 {
        fix_entry(&mut slot, Some(index));
    }
    let Ok(e) = LogEntry::decode(&slot, index) else {
        return;
    };
    assert_eq!(check_integrity(&slot, index), Ok(()));
    assert_eq!(
        EntryRef::decode_content(&slot).map(|r| r.to_owned()),
        Ok(e.clone())
    );
    if let Some(p) = e.path() {
        assert!(p.is_relative());
        assert!(p.components().all(|c| matches!(c, std::path::Component::Normal(_))));
    }
    let again = e.encode(index).expect("a decoded entry encodes");
    assert_eq!(LogEntry::decode(&again, index), Ok(e.clone()));
    assert_eq!(e.encode(index).as_ref(), Ok(&again));

    // Integrity: another slot, or one flipped covered byte, is refused.
    let other = index.wrapping_add(1);
    assert!(LogEntry::decode(&slot, other).is_err_and(|err| err.is_integrity()));
    let at = (index % LOG_ENTRY_CRC_LEN as u64) as usize;
    let mut flipped = slot;
    flipped[at] ^= 0x40;
    assert!(LogEntry::decode(&flipped, index).is_err_and(|err| err.is_integrity()));

    if let LogEntry::File(f) = &e {
        let fmap = &f.fmap;
        let _ = (fmap.allocated_bytes(), fmap.capacity(), fmap.check_geometry());
        let _ = famfs_log::fmap::check_placement(fmap, 0, u64::MAX);
        if famfs_log::fmap::check_placement(fmap, DATA_START, DEV_END).is_ok() {
            let r = fmap.resolver();
            let size = fmap.file_size;
            let probes = [0, size / 3, size / 2, size.saturating_sub(1), index % size.max(1)];
            for off in probes.into_iter().filter(|&o| o < size) {
                let got = fmap.resolve(FileOffset(off)).expect("placed maps hold the file");
                assert_eq!(r.resolve(FileOffset(off)), Some(got));
                let d = got.dev_offset.0;
                assert!(fmap.ranges().any(|x| x.offset <= d && d < x.end()));
                assert!((DATA_START..DEV_END).contains(&d));
            }
        }
    }
});
