//! Log header parser and its check against the superblock. Input: the 48 header bytes, an
//! optional mode byte (odd: keep the stored CRC; absent or even: fix it up), then an optional
//! u64 log length to check against (default: the header's own).
//!
//! Invariants: never panics; all 48 bytes are fields, so a parsed header re-encodes to exactly
//! the input; a header that passes the check has the slot count of its length and a
//! `next_index` within it.
#![no_main]

use famfs_log::header::LogHeader;
use famfs_log::layout::{LOG_HEADER_SIZE, log_slots};
use famfs_log_fuzz::{fix_header, record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (mut h_bytes, mode, rest) = record::<LOG_HEADER_SIZE>(data);
    if mode.unwrap_or(0) & 1 == 0 {
        fix_header(&mut h_bytes);
    }
    let Ok(h) = LogHeader::parse(&h_bytes) else {
        return;
    };
    assert_eq!(h.to_bytes(), h_bytes);
    assert_eq!(LogHeader::parse(&h.to_bytes()), Ok(h));
    let _ = h.slots();
    let sb_log_len = match rest.get(..8) {
        Some(b) => u64::from_le_bytes(b.try_into().unwrap()),
        None => h.len,
    };
    if h.check(sb_log_len).is_ok() {
        assert_eq!(h.len, sb_log_len);
        assert_eq!(h.slots(), log_slots(h.len));
        assert!(h.next_index <= h.slots());
        let empty = LogHeader::empty(h.len);
        assert_eq!((empty.len, empty.last_index), (h.len, h.last_index));
    }
});
