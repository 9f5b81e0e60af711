//! `--json` output of `fsck`, `logplay` and `getmap`: one JSON document on stdout with stable
//! snake_case keys (the schema is documented in famfs-cli/README.md). Keys are only ever added,
//! never renamed or removed; sizes and offsets are numbers of bytes, modes are numbers (the
//! permission bits, e.g. 420 for 0644).

use std::path::Path;

use famfs_fmap::{Extent, Fmap, FmapKind};
use famfs_log::FsckReport;
use famfs_log::namespace::{Namespace, NodeKind};
use famfs_log::replay::{Problem, ProblemKind};
use serde::Serialize;

use crate::open::Location;

/// Where the checked file system is.
#[derive(Debug, Serialize)]
pub struct LocationJson {
    /// `device` (offline, a device or stand-in file) or `mount` (a mounted famfs).
    pub kind: &'static str,
    /// The device, or the mount point.
    pub path: String,
}

impl LocationJson {
    /// The JSON form of `loc`.
    pub fn of(loc: &Location) -> LocationJson {
        match loc {
            Location::Device(p) => LocationJson {
                kind: "device",
                path: p.display().to_string(),
            },
            Location::Mount(p) => LocationJson {
                kind: "mount",
                path: p.display().to_string(),
            },
        }
    }
}

/// A log entry that replay skipped.
#[derive(Debug, Serialize)]
pub struct ProblemJson {
    /// Log slot index.
    pub index: u64,
    /// The entry's path, when it could be decoded.
    pub path: Option<String>,
    /// `bad_entry` (CRC or seqnum: torn or corrupt), `invalid_entry` (bad path or map),
    /// `placement` (map outside the data area or too small), `overlap` (space already in use),
    /// `namespace` (cannot be put in the tree), `daxdev`, or `reserved` (`.meta`).
    pub kind: &'static str,
    /// Why, as the text output says it.
    pub reason: String,
}

impl ProblemJson {
    /// The JSON form of `p`.
    pub fn of(p: &Problem) -> ProblemJson {
        let kind = match &p.kind {
            ProblemKind::Entry(e) if e.is_integrity() => "bad_entry",
            ProblemKind::Entry(_) => "invalid_entry",
            ProblemKind::Placement(_) => "placement",
            ProblemKind::Overlap(_) => "overlap",
            ProblemKind::Namespace(_) => "namespace",
            ProblemKind::Daxdev(_) => "daxdev",
            ProblemKind::Reserved => "reserved",
        };
        let full = p.to_string();
        let reason = full
            .split_once(": ")
            .map_or_else(|| full.clone(), |(_, r)| r.to_string());
        ProblemJson {
            index: p.index,
            path: p.path.as_ref().map(|p| p.display().to_string()),
            kind,
            reason,
        }
    }
}

/// The superblock section of `fsck --json`.
#[derive(Debug, Serialize)]
pub struct SuperblockJson {
    /// File system UUID.
    pub filesystem_uuid: String,
    /// Device UUID.
    pub device_uuid: String,
    /// The master's system UUID.
    pub system_uuid: String,
    /// This host's role: `owner`, `client` or `invalid_superblock`.
    pub role: &'static str,
    /// Allocation unit in bytes.
    pub alloc_unit: u64,
    /// OMF major version.
    pub omf_major: u32,
    /// OMF minor version.
    pub omf_minor: u32,
    /// Log offset on the device.
    pub log_offset: u64,
    /// Log length in bytes.
    pub log_len: u64,
    /// The device name recorded by mkfs.
    pub device_name: String,
    /// Device size in bytes.
    pub device_size: u64,
}

/// The log section of `fsck --json`.
#[derive(Debug, Serialize)]
pub struct LogJson {
    /// Entries in use (the header's next index).
    pub entries_used: u64,
    /// Slots in the log.
    pub entries_total: u64,
    /// Bytes of the log in use (header plus entries).
    pub bytes_in_use: u64,
    /// Log size in bytes.
    pub bytes_total: u64,
    /// Entries failing their CRC or seqnum check.
    pub bad_entries: u64,
    /// Decodable entries skipped for their content.
    pub skipped_entries: u64,
    /// Files in the tree.
    pub files: u64,
    /// Directories in the tree (the root excluded).
    pub directories: u64,
}

/// The capacity section of `fsck --json` (bytes).
#[derive(Debug, Serialize)]
pub struct CapacityJson {
    /// Device size from the superblock.
    pub device_bytes: u64,
    /// Whole allocation units of the device.
    pub bitmap_bytes: u64,
    /// The superblock and log region.
    pub reserved_bytes: u64,
    /// Sum of file sizes.
    pub file_bytes: u64,
    /// Allocated, the reserved region included (the text's `Allocated bytes`).
    pub allocated_bytes: u64,
    /// Free.
    pub free_bytes: u64,
    /// Allocated bytes per byte of file data (0 when there is none).
    pub space_amplification: f64,
    /// Percent of the bitmap capacity allocated.
    pub percent_used: f64,
}

/// `famfs fsck --json`.
#[derive(Debug, Serialize)]
pub struct FsckJson {
    /// What was checked.
    pub location: LocationJson,
    /// The superblock.
    pub superblock: SuperblockJson,
    /// The log.
    pub log: LogJson,
    /// Allocation units claimed by more than one file (or by a file and the metadata).
    pub allocation_collisions: u64,
    /// Space figures (the text prints them only when there are no collisions).
    pub capacity: CapacityJson,
    /// Skipped entries (at most 1000; `problems_omitted` counts the rest).
    pub problems: Vec<ProblemJson>,
    /// Skipped entries not listed in `problems`.
    pub problems_omitted: u64,
    /// The exit status fsck returns for this report (see `famfs fsck --help`).
    pub exit_code: i32,
}

impl FsckJson {
    /// The JSON form of a report.
    pub fn of(loc: &Location, r: &FsckReport, exit_code: i32) -> FsckJson {
        let sb = &r.superblock;
        let h = &r.header;
        let c = &r.capacity;
        let role = match r.role {
            famfs_log::role::Role::Master => "owner",
            famfs_log::role::Role::Client => "client",
            famfs_log::role::Role::NoSuper => "invalid_superblock",
        };
        FsckJson {
            location: LocationJson::of(loc),
            superblock: SuperblockJson {
                filesystem_uuid: sb.uuid.to_string(),
                device_uuid: sb.dev_uuid.to_string(),
                system_uuid: sb.system_uuid.to_string(),
                role,
                alloc_unit: sb.alloc_unit,
                omf_major: sb.omf_version.0,
                omf_minor: sb.omf_version.1,
                log_offset: sb.log_offset,
                log_len: sb.log_len,
                device_name: sb.dev_name_lossy(),
                device_size: sb.dev_size,
            },
            log: LogJson {
                entries_used: h.next_index,
                entries_total: h.slots(),
                bytes_in_use: famfs_log::layout::LOG_HEADER_SIZE as u64
                    + famfs_log::layout::LOG_ENTRY_SIZE as u64 * h.next_index,
                bytes_total: h.len,
                bad_entries: r.stats.bad_entries,
                skipped_entries: r.stats.skipped,
                files: r.stats.files,
                directories: r.stats.dirs,
            },
            allocation_collisions: r.collisions(),
            capacity: CapacityJson {
                device_bytes: c.device,
                bitmap_bytes: c.bitmap,
                reserved_bytes: c.reserved,
                file_bytes: c.file_bytes,
                allocated_bytes: c.allocated,
                free_bytes: c.free,
                space_amplification: round2(r.amplification()),
                percent_used: round2(r.percent_used()),
            },
            problems: r.problems.iter().map(ProblemJson::of).collect(),
            problems_omitted: r.skipped().saturating_sub(r.problems.len() as u64),
            exit_code,
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// One node of `logplay --ls --json`.
#[derive(Debug, Serialize)]
pub struct NodeJson {
    /// `dir` or `file`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Path relative to the root (no trailing '/').
    pub path: String,
    /// Permission bits (as a client mount shows them with `--client` or on a client host).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes (0 for directories).
    pub size: u64,
}

/// The tree below the root, depth first, children in log order (the order of the text
/// listing); `mode_of` gives the mode to show for a logged mode.
pub fn tree_json(ns: &Namespace, mode_of: impl Fn(u32) -> u32) -> Vec<NodeJson> {
    let mut out = Vec::new();
    crate::output::walk_tree(ns, |path, node| {
        let (kind, size) = match &node.kind {
            NodeKind::Dir(_) => ("dir", 0),
            NodeKind::File(f) => ("file", f.size),
        };
        out.push(NodeJson {
            kind,
            path: path.display().to_string(),
            mode: mode_of(node.attr.mode) & 0o7777,
            uid: node.attr.uid,
            gid: node.attr.gid,
            size,
        });
    });
    out
}

/// `famfs logplay --json`.
#[derive(Debug, Serialize)]
pub struct LogplayJson {
    /// What was replayed.
    pub location: LocationJson,
    /// Played as a client (write bits removed from the modes shown).
    pub client: bool,
    /// Entries examined.
    pub entries: u64,
    /// Files in the tree.
    pub files: u64,
    /// Directories in the tree (the root excluded).
    pub directories: u64,
    /// Entries failing their CRC or seqnum check.
    pub bad_entries: u64,
    /// Decodable entries skipped for their content.
    pub skipped_entries: u64,
    /// Skipped entries (at most 1000; `problems_omitted` counts the rest).
    pub problems: Vec<ProblemJson>,
    /// Skipped entries not listed in `problems`.
    pub problems_omitted: u64,
    /// The tree (with `--ls` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<Vec<NodeJson>>,
}

/// A device range.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ExtentJson {
    /// Device offset in bytes.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
}

/// One interleaved extent: data goes round-robin over the strips in `chunk_size` pieces.
#[derive(Debug, Serialize)]
pub struct InterleaveJson {
    /// Chunk size in bytes.
    pub chunk_size: u64,
    /// The strips, in order.
    pub strips: Vec<ExtentJson>,
}

/// A file map.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MapJson {
    /// Extents in file order.
    Simple {
        /// The extents.
        extents: Vec<ExtentJson>,
    },
    /// Interleaved (striped) extents.
    Interleaved {
        /// The interleaved extents.
        extents: Vec<InterleaveJson>,
    },
}

impl MapJson {
    /// The JSON form of `fmap`.
    pub fn of(fmap: &Fmap) -> MapJson {
        let ext = |e: &Extent| ExtentJson {
            offset: e.offset,
            length: e.len,
        };
        match &fmap.kind {
            FmapKind::Simple(v) => MapJson::Simple {
                extents: v.iter().map(ext).collect(),
            },
            FmapKind::Interleaved(v) => MapJson::Interleaved {
                extents: v
                    .iter()
                    .map(|ie| InterleaveJson {
                        chunk_size: ie.chunk_size,
                        strips: ie.strips.iter().map(ext).collect(),
                    })
                    .collect(),
            },
        }
    }
}

/// A file `getmap --json` mapped.
#[derive(Debug, Serialize)]
pub struct MappedFileJson {
    /// The file as given.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Where its bytes are.
    pub map: MapJson,
}

impl MappedFileJson {
    /// The JSON form of a file's map.
    pub fn of(shown: &Path, size: u64, fmap: &Fmap) -> MappedFileJson {
        MappedFileJson {
            path: shown.display().to_string(),
            size,
            map: MapJson::of(fmap),
        }
    }
}

/// A file `getmap --json` could not map.
#[derive(Debug, Serialize)]
pub struct GetmapErrorJson {
    /// The file as given.
    pub path: String,
    /// The exit status this error gives (see `famfs getmap --help`).
    pub exit_code: i32,
    /// Why.
    pub message: String,
}

/// `famfs getmap --json`.
#[derive(Debug, Default, Serialize)]
pub struct GetmapJson {
    /// Files mapped, in argument order.
    pub files: Vec<MappedFileJson>,
    /// Files that failed (getmap stops at the first unless `-c`).
    pub errors: Vec<GetmapErrorJson>,
}

/// Print `v` as pretty JSON on stdout.
pub fn print<T: Serialize>(v: &T) -> anyhow::Result<()> {
    let s = serde_json::to_string_pretty(v)?;
    println!("{s}");
    Ok(())
}
