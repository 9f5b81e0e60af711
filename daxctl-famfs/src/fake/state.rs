//! The emulated kernel's bookkeeping that sysfs does not show, persisted next to the tree
//! (`<sys>/.fake-sysfs/state.json`) so that several processes (a test and the binary it runs)
//! share one emulated machine. What sysfs does show (bound driver links, memory block states)
//! lives only in the tree itself.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Directory (under the sysfs root) holding the state, the write log and nothing else.
pub(crate) const STATE_DIR: &str = ".fake-sysfs";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct RegionState {
    /// Parent device directory, relative to the sysfs root (`devices/...`).
    pub rel: String,
    /// IORESOURCE_DAX_KMEM: the region's devices match `kmem` by type.
    pub kmem: bool,
    /// Dynamic (hmem/CXL) rather than static (nvdimm).
    pub dynamic: bool,
    /// Physical start of the region.
    pub start: u64,
    /// Region size.
    pub size: u64,
    /// Next unallocated address.
    pub next_free: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct DevState {
    pub region: u32,
    /// Device directory relative to the sysfs root.
    pub rel: String,
    /// A kmem unbind left online memory behind: the range is reserved until "reboot".
    pub leaked: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct State {
    pub dev_root: PathBuf,
    pub major: u32,
    pub next_minor: u32,
    pub regions: BTreeMap<u32, RegionState>,
    pub devices: BTreeMap<String, DevState>,
    /// Per-driver `new_id` lists.
    pub ids: BTreeMap<String, Vec<String>>,
    /// "daxX.Y/driver" → errno returned by that driver's probe.
    pub probe_fail: BTreeMap<String, i32>,
    /// Resolved sysfs-relative path → errno returned by every write to it.
    pub write_fail: BTreeMap<String, i32>,
    /// memoryN → errno returned when offlining it.
    pub offline_fail: BTreeMap<String, i32>,
    /// memoryN → zone it lands in when onlined, whatever was asked (simulates a race).
    pub online_zone: BTreeMap<String, String>,
    /// The V9 clause: fsdev_dax auto-matches non-kmem devices (reference Q1).
    pub fsdev_auto_match: bool,
}

impl State {
    pub fn path(sys_root: &Path) -> PathBuf {
        sys_root.join(STATE_DIR).join("state.json")
    }

    pub fn load(sys_root: &Path) -> io::Result<State> {
        let text = fs::read_to_string(Self::path(sys_root))?;
        serde_json::from_str(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    pub fn save(&self, sys_root: &Path) -> io::Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let path = Self::path(sys_root);
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, text)?;
        fs::rename(tmp, path)
    }
}
