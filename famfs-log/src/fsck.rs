//! Checking a file system and reporting on it, in the reference's report format.

use std::fmt::Write;

use famfs_fsdev::Media;

use crate::fs::Famfs;
use crate::header::LogHeader;
use crate::layout::{ALLOC_UNIT, LOG_ENTRY_SIZE, LOG_HEADER_SIZE};
use crate::replay::{Problem, Stats};
use crate::role::Role;
use crate::superblock::Superblock;

/// Space figures, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// The superblock's device size.
    pub device: u64,
    /// Bitmap capacity: whole allocation units of the device.
    pub bitmap: u64,
    /// The superblock and log region (whole allocation units).
    pub reserved: u64,
    /// Sum of file sizes.
    pub file_bytes: u64,
    /// Allocated: the reserved superblock and log region plus the space of files, as the
    /// reference counts it (its bitmap marks both).
    pub allocated: u64,
    /// Free.
    pub free: u64,
}

/// Everything fsck found.
#[derive(Debug, Clone)]
pub struct FsckReport {
    /// The superblock.
    pub superblock: Superblock,
    /// This host's role.
    pub role: Role,
    /// The log header.
    pub header: LogHeader,
    /// Counters from the replay.
    pub stats: Stats,
    /// Skipped entries.
    pub problems: Vec<Problem>,
    /// Space figures.
    pub capacity: Capacity,
}

impl FsckReport {
    /// Build the report of an open file system. For the reference's semantics (skip bad
    /// entries and count them) the file system should be opened in lenient replay mode.
    pub fn of<L: Media>(fs: &Famfs<L>) -> FsckReport {
        let sb = fs.superblock().clone();
        let st = fs.state();
        let bm = st.bitmap();
        let reserved_units = sb.data_start().div_ceil(ALLOC_UNIT).min(bm.nbits());
        let capacity = Capacity {
            device: sb.dev_size,
            bitmap: bm.nbits() * ALLOC_UNIT,
            reserved: reserved_units * ALLOC_UNIT,
            file_bytes: st.stats().file_bytes,
            allocated: bm.count_set() * ALLOC_UNIT,
            free: (bm.nbits() - bm.count_set()) * ALLOC_UNIT,
        };
        FsckReport {
            role: fs.role(),
            header: *fs.header(),
            stats: *st.stats(),
            problems: st.problems().to_vec(),
            capacity,
            superblock: sb,
        }
    }

    /// Allocation collisions (the reference's fsck exit code).
    pub fn collisions(&self) -> u64 {
        self.stats.collisions
    }

    /// Entries fsck had to skip: bad (CRC or seqnum) plus invalid or conflicting content.
    pub fn skipped(&self) -> u64 {
        self.stats.bad_entries + self.stats.skipped
    }

    /// Whether fsck found nothing wrong: no collisions and no skipped entries.
    pub fn is_clean(&self) -> bool {
        self.collisions() == 0 && self.skipped() == 0
    }

    /// Space amplification: allocated bytes (metadata included) per byte of file data; 0 for
    /// an empty file system.
    pub fn amplification(&self) -> f64 {
        let c = &self.capacity;
        if c.file_bytes > 0 {
            c.allocated as f64 / c.file_bytes as f64
        } else {
            0.0
        }
    }

    /// Percent of the bitmap capacity allocated (metadata included).
    pub fn percent_used(&self) -> f64 {
        let c = &self.capacity;
        if c.bitmap > 0 {
            100.0 * c.allocated as f64 / c.bitmap as f64
        } else {
            0.0
        }
    }

    /// The report as text: the reference's sections and labels, so scripts that read
    /// `Device capacity:` or `Free space:` (number in the third field) keep working.
    pub fn render(&self, human: bool, verbose: bool) -> String {
        let sb = &self.superblock;
        let h = &self.header;
        let c = &self.capacity;
        let mut o = String::new();
        let size = |b: u64| -> String {
            if human {
                format!("{:.2}G", b as f64 / (1u64 << 30) as f64)
            } else {
                b.to_string()
            }
        };
        let _ = writeln!(o, "Famfs Superblock:");
        let _ = writeln!(o, "  Filesystem UUID:   {}", sb.uuid);
        let _ = writeln!(o, "  Device UUID:       {}", sb.dev_uuid);
        let _ = writeln!(o, "  System UUID:       {}", sb.system_uuid);
        let _ = writeln!(o, "  role of this node: {}", self.role.describe());
        let _ = writeln!(o, "  alloc_unit:        {:#x}", sb.alloc_unit);
        let _ = writeln!(o, "  OMF major version: {}", sb.omf_version.0);
        let _ = writeln!(o, "  OMF minor version: {}", sb.omf_version.1);
        let _ = writeln!(o, "  sizeof superblock: 200");
        let _ = writeln!(o, "  log size (bytes):  {}", sb.log_len);
        let _ = writeln!(o, "  primary: {}   {}", sb.dev_name_lossy(), sb.dev_size);
        let _ = writeln!(o, "Log stats:");
        let _ = writeln!(
            o,
            "  # of log entries in use: {} of {}",
            h.next_index,
            h.slots()
        );
        let _ = writeln!(
            o,
            "  Log size in use:          {}",
            LOG_HEADER_SIZE as u64 + LOG_ENTRY_SIZE as u64 * h.next_index
        );
        let _ = writeln!(o, "  Log size (total bytes):   {}", h.len);
        if self.stats.collisions > 0 {
            let _ = writeln!(
                o,
                "  ERROR: {} ALLOCATION COLLISIONS FOUND",
                self.stats.collisions
            );
        } else {
            let _ = writeln!(o, "  No allocation errors found");
            let _ = writeln!(o);
            let _ = writeln!(o, "Capacity:");
            let _ = writeln!(o, "  Device capacity:        {}", size(c.device));
            let _ = writeln!(o, "  Bitmap capacity:        {}", size(c.bitmap));
            let _ = writeln!(o, "  Sum of file sizes:      {}", size(c.file_bytes));
            let label = if human {
                "Allocated space:"
            } else {
                "Allocated bytes:"
            };
            let _ = writeln!(o, "  {label:<23} {}", size(c.allocated));
            let _ = writeln!(o, "  Free space:             {}", size(c.free));
            let amp = self.amplification();
            let _ = writeln!(o, "  Space amplification:    {amp:.2}");
            let pct = self.percent_used();
            let _ = writeln!(o, "  Percent used:           {pct:.1}%");
        }
        let _ = writeln!(o);
        let _ = writeln!(o, "Famfs log:");
        let _ = writeln!(o, "  {} of {} entries used", h.next_index, h.slots());
        let _ = writeln!(o, "  {} bad log entries detected", self.stats.bad_entries);
        let _ = writeln!(
            o,
            "  {} entries skipped (invalid or conflicting)",
            self.stats.skipped
        );
        let _ = writeln!(o, "  {} files", self.stats.files);
        let _ = writeln!(o, "  {} directories", self.stats.dirs);
        for p in &self.problems {
            let _ = writeln!(o, "  problem: {p}");
        }
        let hidden = (self.stats.bad_entries + self.stats.skipped)
            .saturating_sub(self.problems.len() as u64);
        if hidden > 0 {
            let _ = writeln!(o, "  ... and {hidden} more problems");
        }
        if verbose {
            let _ = writeln!(o);
            let _ = writeln!(o, "Verbose:");
            let _ = writeln!(o, "  log_offset:        {}", sb.log_offset);
            let _ = writeln!(o, "  log_len:           {}", sb.log_len);
            let _ = writeln!(o, "  sizeof(log header) {LOG_HEADER_SIZE}");
            let _ = writeln!(o, "  sizeof(log_entry)  {LOG_ENTRY_SIZE}");
            let _ = writeln!(o, "  last_log_index:    {}", h.last_index);
            let _ = writeln!(o, "  next_seqnum:       {}", h.next_seqnum);
            let _ = writeln!(o, "  next_index:        {}", h.next_index);
            let _ = writeln!(o, "  daxdevs added:     {}", self.stats.daxdevs);
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::AllocPolicy;
    use crate::namespace::Attr;
    use crate::{MkfsOptions, OpenOptions, mkfs};
    use famfs_fsdev::MemMedia;

    #[test]
    fn report_counts_metadata_as_allocated_and_uses_the_reference_labels() {
        let dev = MemMedia::new(16 << 20);
        let me = uuid::Uuid::new_v4();
        let mut opts = MkfsOptions::new(me, "/dev/dax0.0");
        opts.min_device_size = 0;
        mkfs(&dev, 1 << 30, &opts).unwrap();
        let mut fs = Famfs::open_device(
            dev,
            OpenOptions {
                system_uuid: Some(me),
                ..Default::default()
            },
        )
        .unwrap();
        let attr = Attr {
            mode: 0o644,
            uid: 0,
            gid: 0,
        };
        let mut w = fs.writer().unwrap();
        w.create("f".as_ref(), 3 << 20, attr, &AllocPolicy::Contiguous)
            .unwrap();
        drop(w);
        let r = FsckReport::of(&fs);
        let meta = ALLOC_UNIT + (8 << 20);
        assert_eq!(r.capacity.reserved, meta);
        assert_eq!(
            r.capacity.allocated,
            meta + 2 * ALLOC_UNIT,
            "metadata counts"
        );
        assert_eq!(r.capacity.free, (1 << 30) - meta - 2 * ALLOC_UNIT);
        assert!(r.is_clean());
        let text = r.render(false, true);
        for label in [
            "Filesystem UUID:",
            "role of this node: Owner",
            "alloc_unit:        0x200000",
            "OMF major version: 2",
            "OMF minor version: 2",
            "log size (bytes):  8388608",
            "Log size (total bytes)",
            "# of log entries in use: 1 of",
            "Allocated bytes:        14680064",
            "Space amplification:    4.67",
            "Percent used:           1.4%",
            "1 files",
            "log_len:",
        ] {
            assert!(text.contains(label), "{label}:\n{text}");
        }
        assert!(r.render(true, false).contains("Allocated space:"));
    }
}
