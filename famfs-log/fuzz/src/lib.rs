//! Helpers shared by the famfs-log fuzz targets.
//!
//! Random bytes almost never carry a valid CRC32, so a target that only feeds raw bytes stops at
//! the CRC check and never reaches the decoders behind it. The targets therefore *fix up* the
//! checksums (and the entries' seqnums, and the log header's counters) of the bytes they are
//! given before parsing — unless a mode byte at the end of the input asks for the raw bytes, so
//! that the rejection paths stay covered too. Seeds (see `tests/fuzz_seeds.rs` in famfs-log) are
//! the natural on-media structures without a mode byte: they take the fixed-up path.
//!
//! [`SparseMedia`] is a device that holds only the bytes given to it (zeros elsewhere), so a
//! whole-log replay of an 18 MiB device costs no 18 MiB memset per run.

use std::sync::Mutex;

use famfs_fsdev::{FsdevError, Media, MediaLock, MemMedia};
use famfs_log::layout::{
    LOG_ENTRY_CRC_LEN, LOG_ENTRY_SIZE, LOG_HEADER_SIZE, LOG_OFFSET, SUPERBLOCK_CRC_LEN,
    SUPERBLOCK_SIZE, crc32,
};

/// Offset of `ts_crc` in the superblock.
const SB_CRC_AT: usize = SUPERBLOCK_CRC_LEN;
/// Bytes of the log header the CRC covers; the CRC is stored right after them.
const HEADER_CRC_LEN: usize = 24;
/// Offset of `next_seqnum` (then `next_index`) in the log header.
const COUNTERS_AT: usize = 32;

/// Stores the CRC of a superblock's bytes `[0, 96)` at 96, as a u64 (upper half zero). No-op if
/// `sb` is too short to hold the CRC field.
pub fn fix_superblock(sb: &mut [u8]) {
    if sb.len() >= SB_CRC_AT + 8 {
        let crc = u64::from(crc32(&sb[..SB_CRC_AT]));
        sb[SB_CRC_AT..SB_CRC_AT + 8].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Stores the CRC of a log header's bytes `[0, 24)` at 24. No-op if `h` is too short.
pub fn fix_header(h: &mut [u8]) {
    if h.len() >= HEADER_CRC_LEN + 8 {
        let crc = u64::from(crc32(&h[..HEADER_CRC_LEN]));
        h[HEADER_CRC_LEN..HEADER_CRC_LEN + 8].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Sets a log header's `next_seqnum` and `next_index` (not CRC-covered) to `n`.
pub fn set_counters(h: &mut [u8], n: u64) {
    if h.len() >= COUNTERS_AT + 16 {
        h[COUNTERS_AT..COUNTERS_AT + 8].copy_from_slice(&n.to_le_bytes());
        h[COUNTERS_AT + 8..COUNTERS_AT + 16].copy_from_slice(&n.to_le_bytes());
    }
}

/// Makes a 544-byte slot pass the integrity check for `index`: seqnum = `index` (when given),
/// then the CRC over bytes `[0, 536)` at 536.
pub fn fix_entry(slot: &mut [u8; LOG_ENTRY_SIZE], index: Option<u64>) {
    if let Some(i) = index {
        slot[..8].copy_from_slice(&i.to_le_bytes());
    }
    let crc = u64::from(crc32(&slot[..LOG_ENTRY_CRC_LEN]));
    slot[LOG_ENTRY_CRC_LEN..].copy_from_slice(&crc.to_le_bytes());
}

/// Splits `data` into a fixed-size record (zero-padded when short) and the optional mode byte
/// right after it. Bytes after the mode byte are returned too.
pub fn record<const N: usize>(data: &[u8]) -> ([u8; N], Option<u8>, &[u8]) {
    let mut r = [0u8; N];
    let n = data.len().min(N);
    r[..n].copy_from_slice(&data[..n]);
    let mode = data.get(N).copied();
    let rest = data.get(N + 1..).unwrap_or_default();
    (r, mode, rest)
}

/// Mode bits of a [`Image`] input (the byte after the last whole entry; absent = 0).
pub mod image_mode {
    /// Keep the superblock's stored CRC.
    pub const RAW_SUPERBLOCK: u8 = 1;
    /// Keep the log header's stored CRC.
    pub const RAW_HEADER: u8 = 2;
    /// Keep the entries' stored seqnums and CRCs.
    pub const RAW_ENTRIES: u8 = 4;
    /// Keep the header's stored counters (else both are set to the number of entries given).
    pub const RAW_COUNTERS: u8 = 8;
}

/// A compact famfs metadata image: what a fuzz input for a whole-log target means.
///
/// Layout of the input: the 200-byte superblock, the 48-byte log header, then whole 544-byte
/// entries; if bytes are left over, the first of them is the mode byte ([`image_mode`]). A
/// short input is zero-padded. By default every checksum is fixed up, every seqnum set to its
/// slot, and the header counters set to the number of entries.
#[derive(Debug, Clone)]
pub struct Image {
    /// Superblock bytes (device offset 0).
    pub superblock: [u8; SUPERBLOCK_SIZE],
    /// Log header bytes (device offset 2 MiB).
    pub header: [u8; LOG_HEADER_SIZE],
    /// Entry slots 0.., in order.
    pub entries: Vec<[u8; LOG_ENTRY_SIZE]>,
    /// The mode byte (0 when absent).
    pub mode: u8,
}

impl Image {
    /// Decodes a fuzz input and applies the fix-ups its mode byte asks for.
    pub fn from_input(data: &[u8]) -> Image {
        let (superblock, _, _) = record::<SUPERBLOCK_SIZE>(data);
        let (header, _, _) = record::<LOG_HEADER_SIZE>(data.get(SUPERBLOCK_SIZE..).unwrap_or_default());
        let body = data.get(SUPERBLOCK_SIZE + LOG_HEADER_SIZE..).unwrap_or_default();
        let chunks = body.chunks_exact(LOG_ENTRY_SIZE);
        let mode = chunks.remainder().first().copied().unwrap_or(0);
        let entries = chunks
            .map(|c| c.try_into().expect("chunks_exact gives whole entries"))
            .collect();
        let mut img = Image {
            superblock,
            header,
            entries,
            mode,
        };
        img.fix_up();
        img
    }

    fn fix_up(&mut self) {
        use image_mode::*;
        if self.mode & RAW_SUPERBLOCK == 0 {
            fix_superblock(&mut self.superblock);
        }
        if self.mode & RAW_HEADER == 0 {
            fix_header(&mut self.header);
        }
        if self.mode & RAW_COUNTERS == 0 {
            set_counters(&mut self.header, self.entries.len() as u64);
        }
        if self.mode & RAW_ENTRIES == 0 {
            for (i, e) in self.entries.iter_mut().enumerate() {
                fix_entry(e, Some(i as u64));
            }
        }
    }

    /// The input bytes that decode to this image unchanged (mode byte included when non-zero).
    pub fn to_input(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(
            SUPERBLOCK_SIZE + LOG_HEADER_SIZE + self.entries.len() * LOG_ENTRY_SIZE + 1,
        );
        v.extend_from_slice(&self.superblock);
        v.extend_from_slice(&self.header);
        for e in &self.entries {
            v.extend_from_slice(e);
        }
        if self.mode != 0 {
            v.push(self.mode);
        }
        v
    }

    /// A device of `size` bytes holding the image (superblock at 0, log at 2 MiB).
    pub fn media(&self, size: u64) -> SparseMedia {
        let m = SparseMedia::new(size);
        let mut log = Vec::with_capacity(LOG_HEADER_SIZE + self.entries.len() * LOG_ENTRY_SIZE);
        log.extend_from_slice(&self.header);
        for e in &self.entries {
            log.extend_from_slice(e);
        }
        m.put(0, &self.superblock);
        m.put(LOG_OFFSET, &log);
        m
    }
}

/// A device of a given size whose bytes are zero except for the segments written to it.
#[derive(Debug)]
pub struct SparseMedia {
    size: u64,
    segments: Mutex<Vec<(u64, Vec<u8>)>>,
    lock: MemMedia,
}

impl SparseMedia {
    /// An all-zero device of `size` bytes.
    pub fn new(size: u64) -> SparseMedia {
        SparseMedia {
            size,
            segments: Mutex::new(Vec::new()),
            lock: MemMedia::new(0),
        }
    }

    /// Stores `data` at `off` (clipped to the device); later segments win where they overlap.
    pub fn put(&self, off: u64, data: &[u8]) {
        let room = self.size.saturating_sub(off).min(data.len() as u64) as usize;
        if room > 0 {
            self.segments
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((off, data[..room].to_vec()));
        }
    }

    fn check(&self, off: u64, len: usize) -> Result<(), FsdevError> {
        FsdevError::check_range(off, len as u64, self.size, "outside the sparse device")
    }
}

impl Media for SparseMedia {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), FsdevError> {
        self.check(off, buf.len())?;
        buf.fill(0);
        let end = off + buf.len() as u64;
        for (s, bytes) in self.segments.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let s_end = s + bytes.len() as u64;
            let (lo, hi) = (off.max(*s), end.min(s_end));
            if lo < hi {
                buf[(lo - off) as usize..(hi - off) as usize]
                    .copy_from_slice(&bytes[(lo - s) as usize..(hi - s) as usize]);
            }
        }
        Ok(())
    }
    fn write_at(&self, off: u64, data: &[u8]) -> Result<(), FsdevError> {
        self.check(off, data.len())?;
        self.put(off, data);
        Ok(())
    }
    fn flush(&self, off: u64, len: u64) -> Result<(), FsdevError> {
        self.check(off, usize::try_from(len).unwrap_or(usize::MAX))
    }
    fn invalidate(&self, off: u64, len: u64) -> Result<(), FsdevError> {
        self.check(off, usize::try_from(len).unwrap_or(usize::MAX))
    }
    fn lock_exclusive(&self) -> Result<MediaLock, FsdevError> {
        self.lock.lock_exclusive()
    }
    fn describe(&self) -> String {
        "sparse fuzz device".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_reads_back_segments_and_zeros() {
        let m = SparseMedia::new(100);
        m.put(10, b"abc");
        m.write_at(11, b"X").unwrap();
        let mut b = [9u8; 6];
        m.read_at(8, &mut b).unwrap();
        assert_eq!(&b, b"\0\0aXc\0");
        assert!(m.read_at(98, &mut b).is_err());
    }

    #[test]
    fn image_round_trips_its_input() {
        let mut data = vec![7u8; SUPERBLOCK_SIZE + LOG_HEADER_SIZE + 2 * LOG_ENTRY_SIZE];
        data.push(image_mode::RAW_COUNTERS);
        let img = Image::from_input(&data);
        assert_eq!(img.entries.len(), 2);
        assert_eq!(Image::from_input(&img.to_input()).to_input(), img.to_input());
        assert_eq!(famfs_log::entry::check_integrity(&img.entries[1], 1), Ok(()));
    }
}
