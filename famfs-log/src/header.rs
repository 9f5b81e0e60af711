//! The log header at the start of the log.

use zerocopy::{FromBytes, IntoBytes};

use crate::layout::{LOG_HEADER_SIZE, LOG_MAGIC, RawLogHeader, crc32, log_slots};

/// Why a log header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogHeaderError {
    /// Fewer than 48 bytes.
    #[error("log header truncated: {0} bytes")]
    Truncated(usize),
    /// Wrong magic.
    #[error("no famfs log (magic {0:#x}, expected {LOG_MAGIC:#x})")]
    BadMagic(u64),
    /// CRC over bytes 0..24 does not match.
    #[error("log header CRC mismatch: stored {stored:#x}, computed {computed:#x}")]
    BadCrc {
        /// Stored CRC.
        stored: u64,
        /// Computed CRC.
        computed: u32,
    },
    /// The header's length differs from the superblock's.
    #[error("log header says the log is {header:#x} bytes, the superblock says {superblock:#x}")]
    LenMismatch {
        /// `famfs_log_len`.
        header: u64,
        /// `ts_log_len`.
        superblock: u64,
    },
    /// `last_index` does not match the log length.
    #[error(
        "log header last_index {found} does not match a {len:#x}-byte log (expected {expected})"
    )]
    BadLastIndex {
        /// As stored.
        found: u64,
        /// slots − 1.
        expected: u64,
        /// Log length.
        len: u64,
    },
    /// `next_index` points past the last slot (the counters are not CRC-protected).
    #[error("log header next_index {next_index} is past the end of the log ({slots} slots)")]
    NextIndexPastEnd {
        /// As stored.
        next_index: u64,
        /// Number of slots.
        slots: u64,
    },
}

/// A parsed log header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHeader {
    /// Total log bytes (`famfs_log_len`).
    pub len: u64,
    /// Last usable slot (`famfs_log_last_index`).
    pub last_index: u64,
    /// Seqnum for the next append (not CRC-protected).
    pub next_seqnum: u64,
    /// Entries in use / next free slot (not CRC-protected).
    pub next_index: u64,
}

/// Byte offset of the `next_seqnum`/`next_index` counters inside the header.
pub const COUNTERS_OFFSET: u64 = 32;

impl LogHeader {
    /// The header of an empty log of `len` bytes.
    pub fn empty(len: u64) -> LogHeader {
        LogHeader {
            len,
            last_index: log_slots(len).saturating_sub(1),
            next_seqnum: 0,
            next_index: 0,
        }
    }

    /// Parse the first 48 bytes of the log, checking the magic and the CRC.
    pub fn parse(bytes: &[u8]) -> Result<LogHeader, LogHeaderError> {
        let (raw, _) = RawLogHeader::read_from_prefix(bytes)
            .map_err(|_| LogHeaderError::Truncated(bytes.len()))?;
        if raw.magic.get() != LOG_MAGIC {
            return Err(LogHeaderError::BadMagic(raw.magic.get()));
        }
        let computed = crc32(&raw.as_bytes()[..24]);
        if raw.crc.get() != u64::from(computed) {
            return Err(LogHeaderError::BadCrc {
                stored: raw.crc.get(),
                computed,
            });
        }
        Ok(LogHeader {
            len: raw.len.get(),
            last_index: raw.last_index.get(),
            next_seqnum: raw.next_seqnum.get(),
            next_index: raw.next_index.get(),
        })
    }

    /// Check the header against the superblock's log length, including the counters that
    /// the CRC does not cover.
    pub fn check(&self, sb_log_len: u64) -> Result<(), LogHeaderError> {
        if self.len != sb_log_len {
            return Err(LogHeaderError::LenMismatch {
                header: self.len,
                superblock: sb_log_len,
            });
        }
        let slots = log_slots(self.len);
        if slots == 0 || self.last_index != slots - 1 {
            return Err(LogHeaderError::BadLastIndex {
                found: self.last_index,
                expected: slots.saturating_sub(1),
                len: self.len,
            });
        }
        if self.next_index > slots {
            return Err(LogHeaderError::NextIndexPastEnd {
                next_index: self.next_index,
                slots,
            });
        }
        Ok(())
    }

    /// Number of slots (`last_index` + 1, saturating: an unchecked header may hold any value).
    pub fn slots(&self) -> u64 {
        self.last_index.saturating_add(1)
    }

    /// The 48 on-media bytes.
    pub fn to_bytes(&self) -> [u8; LOG_HEADER_SIZE] {
        let mut raw = RawLogHeader {
            magic: LOG_MAGIC.into(),
            len: self.len.into(),
            last_index: self.last_index.into(),
            crc: 0.into(),
            next_seqnum: self.next_seqnum.into(),
            next_index: self.next_index.into(),
        };
        raw.crc = u64::from(crc32(&raw.as_bytes()[..24])).into();
        let mut out = [0u8; LOG_HEADER_SIZE];
        out.copy_from_slice(raw.as_bytes());
        out
    }

    /// The 16 counter bytes (`next_seqnum`, `next_index`) at [`COUNTERS_OFFSET`].
    pub fn counter_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.next_seqnum.to_le_bytes());
        out[8..].copy_from_slice(&self.next_index.to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// famfs-format.md §3.1: the empty 8 MiB log header test vector.
    #[test]
    fn empty_8m_header_vector() {
        let mut expected = vec![0x0d, 0xf0, 0xfe, 0xca, 0xad, 0x0b, 0x00, 0x00];
        expected.extend([0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00]);
        expected.extend([0x3b, 0x3c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
        expected.extend([0x78, 0x50, 0x87, 0xa5, 0x00, 0x00, 0x00, 0x00]);
        expected.extend([0u8; 16]);
        let h = LogHeader::empty(0x80_0000);
        assert_eq!(h.last_index, 15419);
        assert_eq!(h.to_bytes().as_slice(), expected.as_slice());
        assert_eq!(LogHeader::parse(&expected).unwrap(), h);
        h.check(0x80_0000).unwrap();
    }

    #[test]
    fn refusals() {
        let good = LogHeader::empty(0x80_0000).to_bytes();
        let mut b = good;
        b[0] = 1;
        assert!(matches!(
            LogHeader::parse(&b),
            Err(LogHeaderError::BadMagic(_))
        ));
        let mut b = good;
        b[9] = 1;
        assert!(matches!(
            LogHeader::parse(&b),
            Err(LogHeaderError::BadCrc { .. })
        ));
        // Counters are outside the CRC: the parse accepts them, the check bounds them.
        let mut h = LogHeader::parse(&good).unwrap();
        h.next_index = 15421;
        assert!(matches!(
            h.check(0x80_0000),
            Err(LogHeaderError::NextIndexPastEnd { .. })
        ));
        assert!(matches!(
            LogHeader::empty(0x80_0000).check(0x100_0000),
            Err(LogHeaderError::LenMismatch { .. })
        ));
        let mut h = LogHeader::empty(0x80_0000);
        h.last_index = 99;
        assert!(matches!(
            h.check(0x80_0000),
            Err(LogHeaderError::BadLastIndex { .. })
        ));
        assert!(matches!(
            LogHeader::parse(&good[..47]),
            Err(LogHeaderError::Truncated(47))
        ));
    }

    /// Found by the log_header fuzz target: a parsed (valid CRC, not yet checked) header with
    /// `last_index` = 2^64 − 1 made [`LogHeader::slots`] overflow.
    #[test]
    fn slots_of_an_unchecked_header_do_not_overflow() {
        let bytes = [
            0x0d, 0xf0, 0xfe, 0xca, 0xad, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x78, 0x00, 0x00,
            0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x57, 0xf0, 0x3e, 0x76,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x78, 0x00, 0x00, 0xff,
            0x00, 0x80, 0x00, 0x00, 0x00, 0xfe,
        ];
        let h = LogHeader::parse(&bytes).unwrap();
        assert_eq!(h.last_index, u64::MAX);
        assert_eq!(h.slots(), u64::MAX);
        assert!(h.check(h.len).is_err());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), len: u64) {
            if let Ok(h) = LogHeader::parse(&bytes) {
                let _ = h.check(len);
            }
        }
    }
}
