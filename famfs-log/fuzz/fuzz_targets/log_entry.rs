//! Log entry decoder: never panics; whatever decodes re-encodes and decodes to the same value,
//! with a clean relative path.
#![no_main]

use famfs_log::entry::LogEntry;
use famfs_log::layout::LOG_ENTRY_SIZE;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut slot = [0u8; LOG_ENTRY_SIZE];
    let n = data.len().min(LOG_ENTRY_SIZE);
    slot[..n].copy_from_slice(&data[..n]);
    let index = u64::from_le_bytes(slot[..8].try_into().unwrap());
    if let Ok(e) = LogEntry::decode(&slot, index) {
        if let Some(p) = e.path() {
            assert!(p.is_relative());
            assert!(p.components().all(|c| matches!(c, std::path::Component::Normal(_))));
        }
        let again = e.encode(index).expect("a decoded entry encodes");
        assert_eq!(LogEntry::decode(&again, index), Ok(e));
    }
});
