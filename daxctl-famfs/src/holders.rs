//! Who uses a dax device: processes that have it open or mapped, and famfs mounts of it.
//!
//! A mode switch unbinds the device's driver under whatever uses it, and the kernel does not
//! fence that off: a process that keeps a `device_dax` mapping across a switch to `fsdev_dax`
//! gets SIGBUS on its next access, and an fd held across the switch made the kernel's devres
//! cleanup underflow a reference count (use-after-free). So a switch is refused while anything
//! uses the device ([`crate::Error::DeviceBusy`], EBUSY).
//!
//! The scan reads a proc tree ([`Procfs`], `/proc` or a directory laid out like it in tests):
//! every `<pid>/fd/N` link (a link to the device path, or to a node with the device's
//! identity), every `<pid>/maps` line (a mapping of the device's inode or path), and
//! `self/mounts` for the famfs mounts whose source is the device (through [`crate::mounts`]).
//! Like `fuser`, it stats an fd's file only when its path could be the device (same file name,
//! or a node under `/dev` for a character device), so a hung FUSE or network mount elsewhere
//! cannot hang the scan.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::mounts;
use crate::parse::split_dev_t;

/// A proc tree to scan for users of a device: the live `/proc`, or a fake one in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Procfs {
    root: PathBuf,
}

impl Default for Procfs {
    fn default() -> Self {
        Self::system()
    }
}

/// How a process holds the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hold {
    /// An open file descriptor (its number).
    Fd(u32),
    /// A mapping of the device (its virtual address range).
    Mapping {
        /// First address.
        start: u64,
        /// One past the last address.
        end: u64,
    },
}

/// A process that has the device open or mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its pid.
    pub pid: u32,
    /// Its command name (`comm`), `?` if unreadable.
    pub comm: String,
    /// Its fds and mappings of the device.
    pub holds: Vec<Hold>,
}

/// Everything that uses one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceUsage {
    /// The device path scanned for.
    pub device: PathBuf,
    /// The mount points of famfs file systems on the device.
    pub mounts: Vec<PathBuf>,
    /// The processes holding it, by pid.
    pub holders: Vec<Holder>,
    /// Processes whose fds or mappings could not be read (not root?); they may hold it too.
    pub uninspected: usize,
}

impl DeviceUsage {
    /// Whether anything uses the device (a mount or a holder).
    pub fn is_busy(&self) -> bool {
        !self.mounts.is_empty() || !self.holders.is_empty()
    }
}

/// How many holders a message lists before "and N more".
const LISTED: usize = 8;

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fds: Vec<String> = self
            .holds
            .iter()
            .filter_map(|h| match h {
                Hold::Fd(n) => Some(format!("fd {n}")),
                Hold::Mapping { .. } => None,
            })
            .collect();
        let maps = self
            .holds
            .iter()
            .filter(|h| matches!(h, Hold::Mapping { .. }))
            .count();
        let mut what = fds;
        match maps {
            0 => {}
            1 => what.push("mapped".into()),
            n => what.push(format!("{n} mappings")),
        }
        write!(f, "{} (pid {}: {})", self.comm, self.pid, what.join(", "))
    }
}

impl fmt::Display for DeviceUsage {
    /// "mounted on M (famfs); open or mapped by famfs_fused (pid 42: mapped)", or "not in use".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.mounts.is_empty() {
            let m: Vec<String> = self
                .mounts
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            parts.push(format!("mounted on {} (famfs)", m.join(", ")));
        }
        if !self.holders.is_empty() {
            let mut h: Vec<String> = self
                .holders
                .iter()
                .take(LISTED)
                .map(|h| h.to_string())
                .collect();
            if self.holders.len() > LISTED {
                h.push(format!("and {} more", self.holders.len() - LISTED));
            }
            parts.push(format!("open or mapped by {}", h.join(", ")));
        }
        if parts.is_empty() {
            parts.push("not in use".into());
        }
        f.write_str(&parts.join("; "))
    }
}

/// What identifies the device: its paths, its node's inode, and its device number.
#[derive(Debug)]
struct Target {
    /// The path as given and canonical.
    paths: Vec<PathBuf>,
    /// The file name (the only names worth a stat of an fd's file).
    file_name: Option<Vec<u8>>,
    /// `(st_dev major, minor, st_ino)` of the node, as `maps` shows mappings of it.
    inode: Option<(u32, u32, u64)>,
    /// `st_rdev` of a character or block device.
    rdev: Option<u64>,
}

impl Target {
    fn new(device: &Path) -> Target {
        let mut paths = vec![device.to_path_buf()];
        if let Ok(c) = std::fs::canonicalize(device)
            && c != device
        {
            paths.push(c);
        }
        let meta = std::fs::metadata(device).ok();
        let rdev = meta
            .as_ref()
            .filter(|m| m.file_type().is_char_device() || m.file_type().is_block_device())
            .map(|m| m.rdev());
        let inode = meta.as_ref().map(|m| {
            let (major, minor) = split_dev_t(m.dev());
            (major, minor, m.ino())
        });
        let file_name = paths
            .last()
            .and_then(|p| p.file_name())
            .map(|n| n.as_bytes().to_vec());
        Target {
            paths,
            file_name,
            inode,
            rdev,
        }
    }

    fn is_path(&self, p: &[u8]) -> bool {
        let p = p.strip_suffix(b" (deleted)").unwrap_or(p);
        self.paths.iter().any(|q| q.as_os_str().as_bytes() == p)
    }

    /// Whether the file an fd link points to is the device. `link` is the fd's entry in the
    /// proc tree, `target` what it reads as.
    fn is_fd(&self, link: &Path, target: &[u8]) -> bool {
        if self.is_path(target) {
            return true;
        }
        let name = Path::new(OsStr::from_bytes(target)).file_name();
        let worth_a_stat = target.starts_with(b"/")
            && (name.map(|n| n.as_bytes()) == self.file_name.as_deref()
                || (self.rdev.is_some() && target.starts_with(b"/dev/")));
        if !worth_a_stat {
            return false;
        }
        let Ok(m) = std::fs::metadata(link) else {
            return false;
        };
        let is_node = m.file_type().is_char_device() || m.file_type().is_block_device();
        match self.rdev {
            Some(rdev) => is_node && m.rdev() == rdev,
            None => {
                let (major, minor) = split_dev_t(m.dev());
                !is_node && self.inode == Some((major, minor, m.ino()))
            }
        }
    }

    fn is_mapping(&self, m: &MapsLine<'_>) -> bool {
        self.inode == Some((m.major, m.minor, m.inode))
            || (!m.path.is_empty() && self.is_path(m.path))
    }
}

/// One line of `/proc/<pid>/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapsLine<'a> {
    pub start: u64,
    pub end: u64,
    pub major: u32,
    pub minor: u32,
    pub inode: u64,
    /// The path (may contain spaces; empty for anonymous mappings).
    pub path: &'a [u8],
}

/// Parses `start-end perms offset major:minor inode [path]` (hex, except the inode); `None`
/// for anything else.
pub(crate) fn parse_maps_line(line: &[u8]) -> Option<MapsLine<'_>> {
    let mut rest = line;
    let mut field = || {
        let s = rest.iter().position(|b| !b.is_ascii_whitespace())?;
        let len = rest[s..]
            .iter()
            .position(u8::is_ascii_whitespace)
            .unwrap_or(rest.len() - s);
        let f = &rest[s..s + len];
        rest = &rest[s + len..];
        std::str::from_utf8(f).ok()
    };
    let (start, end) = field()?.split_once('-')?;
    let _perms = field()?;
    let _offset = field()?;
    let (major, minor) = field()?.split_once(':')?;
    let inode = field()?.parse().ok()?;
    let hex64 = |s: &str| u64::from_str_radix(s, 16).ok();
    let hex32 = |s: &str| u32::from_str_radix(s, 16).ok();
    let path_start = rest
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    Some(MapsLine {
        start: hex64(start)?,
        end: hex64(end)?,
        major: hex32(major)?,
        minor: hex32(minor)?,
        inode,
        path: &rest[path_start..],
    })
}

/// Whether an error reading a process's entries means it went away (not a permission problem).
fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

impl Procfs {
    /// A proc tree rooted at `root` (a directory with `<pid>/fd/`, `<pid>/maps`, `<pid>/comm`
    /// and `self/mounts`, as `/proc` has).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Procfs { root: root.into() }
    }

    /// The live `/proc`.
    pub fn system() -> Self {
        Self::new("/proc")
    }

    /// The root of the tree.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Everything that uses `device` (a device node, or a stand-in file): famfs mounts of it,
    /// and every process (this one included) with it open or mapped.
    pub fn usage(&self, device: &Path) -> DeviceUsage {
        let target = Target::new(device);
        let mut usage = DeviceUsage {
            device: device.to_path_buf(),
            ..DeviceUsage::default()
        };
        let table = self.root.join("self/mounts");
        if table.exists() {
            let m = mounts::read_mounts_from(&table);
            usage.mounts = mounts::mounts_of_device(&m, device)
                .into_iter()
                .map(|e| e.target.clone())
                .collect();
        }
        let mut pids: Vec<u32> = match std::fs::read_dir(&self.root) {
            Ok(d) => d
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect(),
            Err(e) => {
                tracing::warn!("cannot list {}: {e}", self.root.display());
                usage.uninspected += 1;
                Vec::new()
            }
        };
        pids.sort_unstable();
        for pid in pids {
            match self.holds_of(pid, &target) {
                Ok(holds) if holds.is_empty() => {}
                Ok(holds) => usage.holders.push(Holder {
                    pid,
                    comm: self.comm(pid),
                    holds,
                }),
                Err(e) if gone(&e) => {}
                Err(e) => {
                    tracing::debug!("pid {pid}: cannot inspect: {e}");
                    usage.uninspected += 1;
                }
            }
        }
        if usage.uninspected > 0 {
            tracing::warn!(
                "{}: could not inspect {} processes (not root?); they may use it too",
                device.display(),
                usage.uninspected
            );
        }
        usage
    }

    fn comm(&self, pid: u32) -> String {
        std::fs::read_to_string(self.root.join(format!("{pid}/comm")))
            .map(|c| c.trim_end().to_string())
            .unwrap_or_else(|_| "?".into())
    }

    /// The fds and mappings of the device that process `pid` has.
    fn holds_of(&self, pid: u32, target: &Target) -> io::Result<Vec<Hold>> {
        let dir = self.root.join(pid.to_string());
        let mut holds = Vec::new();
        let fd_dir = dir.join("fd");
        for entry in std::fs::read_dir(&fd_dir)? {
            let Ok(entry) = entry else { continue };
            let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let link = entry.path();
            // An fd closed since the listing is no longer a hold.
            let Ok(t) = std::fs::read_link(&link) else {
                continue;
            };
            if target.is_fd(&link, t.as_os_str().as_bytes()) {
                holds.push(Hold::Fd(fd));
            }
        }
        let maps = match std::fs::read(dir.join("maps")) {
            Ok(m) => m,
            Err(e) if gone(&e) && !holds.is_empty() => Vec::new(),
            Err(e) => return Err(e),
        };
        for line in maps.split(|&b| b == b'\n') {
            if let Some(m) = parse_maps_line(line)
                && target.is_mapping(&m)
            {
                holds.push(Hold::Mapping {
                    start: m.start,
                    end: m.end,
                });
            }
        }
        holds.sort_unstable();
        Ok(holds)
    }
}

#[cfg(test)]
#[path = "holders_tests.rs"]
mod tests;
