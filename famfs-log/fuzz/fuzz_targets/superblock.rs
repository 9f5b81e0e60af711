//! Superblock parser: never panics; whatever parses re-encodes to a superblock that parses the
//! same.
#![no_main]

use famfs_log::superblock::Superblock;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sb) = Superblock::parse(data) {
        assert!(sb.log_len.is_power_of_two() && sb.dev_size > sb.data_start());
        assert_eq!(Superblock::parse(&sb.to_bytes()), Ok(sb));
    }
});
