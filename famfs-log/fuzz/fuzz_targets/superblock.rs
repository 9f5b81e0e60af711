//! Superblock parser. Input: the 200 superblock bytes, then an optional mode byte. Without one
//! (or with an even one) the CRC is fixed up first, so the checks behind it are reached; an odd
//! mode byte keeps the stored CRC (the rejection path).
//!
//! Invariants: never panics; what parses is a usable layout (log at 2 MiB, power-of-two log of
//! at least 8 MiB, data area inside the device); re-encoding reproduces every CRC-covered byte
//! and the CRC, and parses to the same value.
#![no_main]

use famfs_log::layout::{
    ALLOC_UNIT, DEFAULT_LOG_LEN, LOG_OFFSET, SUPERBLOCK_CRC_LEN, SUPERBLOCK_SIZE,
};
use famfs_log::role::Role;
use famfs_log::superblock::Superblock;
use famfs_log_fuzz::{fix_superblock, record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (mut sb_bytes, mode, _) = record::<SUPERBLOCK_SIZE>(data);
    // A truncated superblock is refused whatever it holds.
    if data.len() < SUPERBLOCK_SIZE {
        assert!(Superblock::parse(data).is_err());
    }
    if mode.unwrap_or(0) & 1 == 0 {
        fix_superblock(&mut sb_bytes);
    }
    let Ok(sb) = Superblock::parse(&sb_bytes) else {
        return;
    };
    assert_eq!(sb.log_offset, LOG_OFFSET);
    assert!(sb.log_len.is_power_of_two() && sb.log_len >= DEFAULT_LOG_LEN);
    assert!(sb.alloc_unit == ALLOC_UNIT || sb.alloc_unit == 4096);
    assert!(sb.dev_size > sb.data_start());
    let again = sb.to_bytes();
    assert_eq!(again[..SUPERBLOCK_CRC_LEN + 8], sb_bytes[..SUPERBLOCK_CRC_LEN + 8]);
    assert_eq!(Superblock::parse(&again), Ok(sb.clone()));
    let _ = sb.dev_name_lossy();
    assert_eq!(Role::of(Some(&sb), Some(sb.system_uuid)), Role::Master);
});
