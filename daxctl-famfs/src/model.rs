//! The objects discovered under sysfs: regions, devices, mappings and modes.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Driver (module) names, as the directory names under `/sys/bus/dax/drivers`.
pub mod driver {
    /// devdax mode.
    pub const DEVICE_DAX: &str = "device_dax";
    /// system-ram mode.
    pub const KMEM: &str = "kmem";
    /// famfs mode.
    pub const FSDEV_DAX: &str = "fsdev_dax";
}

/// A dax device's mode, derived from the driver it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DaxMode {
    /// Bound to `device_dax`: a mappable character device.
    Devdax,
    /// Bound to `fsdev_dax`: reserved for the famfs file system (no mmap of the char device).
    Famfs,
    /// Bound to `kmem`: hot-plugged as system memory.
    SystemRam,
    /// Bound to no driver.
    Disabled,
    /// Bound to a driver this crate does not know (its name).
    Unknown(String),
}

impl DaxMode {
    /// Mode from a bound driver name (`None` = unbound).
    pub fn from_driver(driver: Option<&str>) -> Self {
        match driver {
            None => DaxMode::Disabled,
            Some(driver::DEVICE_DAX) => DaxMode::Devdax,
            Some(driver::FSDEV_DAX) => DaxMode::Famfs,
            Some(driver::KMEM) => DaxMode::SystemRam,
            Some(other) => DaxMode::Unknown(other.to_string()),
        }
    }

    /// The driver (module) that provides this mode, for the three switchable modes.
    pub fn driver(&self) -> Option<&'static str> {
        match self {
            DaxMode::Devdax => Some(driver::DEVICE_DAX),
            DaxMode::Famfs => Some(driver::FSDEV_DAX),
            DaxMode::SystemRam => Some(driver::KMEM),
            DaxMode::Disabled | DaxMode::Unknown(_) => None,
        }
    }

    /// The mode string `daxctl list` prints: unbound and unknown-driver devices show "devdax"
    /// (with `"state":"disabled"` for unbound ones).
    pub fn list_name(&self) -> &'static str {
        match self {
            DaxMode::SystemRam => "system-ram",
            DaxMode::Famfs => "famfs",
            _ => "devdax",
        }
    }
}

impl fmt::Display for DaxMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaxMode::Devdax => f.write_str("devdax"),
            DaxMode::Famfs => f.write_str("famfs"),
            DaxMode::SystemRam => f.write_str("system-ram"),
            DaxMode::Disabled => f.write_str("disabled"),
            DaxMode::Unknown(d) => write!(f, "unknown (driver {d})"),
        }
    }
}

/// Error parsing a mode name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode {0:?} (expected devdax, famfs or system-ram)")]
pub struct ParseModeError(pub String);

impl FromStr for DaxMode {
    type Err = ParseModeError;
    /// Parses a target mode as `reconfigure-device -m` takes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "devdax" => Ok(DaxMode::Devdax),
            "famfs" => Ok(DaxMode::Famfs),
            "system-ram" => Ok(DaxMode::SystemRam),
            _ => Err(ParseModeError(s.to_string())),
        }
    }
}

/// One physical range of a device (`mappingN/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// Offset of the range within the device, in pages (`page_offset`).
    pub page_offset: u64,
    /// First physical address (`start`).
    pub start: u64,
    /// Last physical address, inclusive (`end`).
    pub end: u64,
}

impl Mapping {
    /// Size in bytes (`end - start + 1`).
    pub fn size(&self) -> u64 {
        self.end.wrapping_sub(self.start).wrapping_add(1)
    }
}

/// A dax device instance `daxX.Y`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaxDev {
    /// `daxX.Y`.
    pub name: String,
    /// X.
    pub region_id: u32,
    /// Y.
    pub instance: u32,
    /// The device's sysfs directory (resolved).
    pub path: PathBuf,
    /// The character device node (`<dev root>/daxX.Y`).
    pub chardev: PathBuf,
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Size in bytes.
    pub size: u64,
    /// Alignment in bytes (0 when the kernel has no `align` attribute).
    pub align: u64,
    /// Target NUMA node of the memory (`None` when `target_node` is absent, i.e. -1).
    pub target_node: Option<u32>,
    /// Physical start address (0 when `resource` is unreadable, e.g. not root).
    pub resource: u64,
    /// The bound driver's name.
    pub driver: Option<String>,
    /// The device's physical ranges (root-only files; empty when unreadable).
    pub mappings: Vec<Mapping>,
}

impl DaxDev {
    /// The mode derived from the bound driver.
    pub fn mode(&self) -> DaxMode {
        DaxMode::from_driver(self.driver.as_deref())
    }

    /// Whether a driver is bound.
    pub fn is_enabled(&self) -> bool {
        self.driver.is_some()
    }

    /// `major:minor`.
    pub fn devnum(&self) -> String {
        format!("{}:{}", self.major, self.minor)
    }
}

/// A dax region: the parent of one or more devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Region id (X in `daxX.Y`).
    pub id: u32,
    /// The region's parent-device directory (resolved); holds `dax_region/`.
    pub path: PathBuf,
    /// `dax_region/size` (None if unreadable).
    pub size: Option<u64>,
    /// `dax_region/align` (None if unreadable; it is root-only).
    pub align: Option<u64>,
    /// `dax_region/available_size` (0 if absent: static regions).
    pub available_size: u64,
    /// The devices, ordered by instance.
    pub devices: Vec<DaxDev>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_from_drivers() {
        assert_eq!(DaxMode::from_driver(Some("device_dax")), DaxMode::Devdax);
        assert_eq!(DaxMode::from_driver(Some("fsdev_dax")), DaxMode::Famfs);
        assert_eq!(DaxMode::from_driver(Some("kmem")), DaxMode::SystemRam);
        assert_eq!(DaxMode::from_driver(None), DaxMode::Disabled);
        assert_eq!(
            DaxMode::from_driver(Some("x")),
            DaxMode::Unknown("x".into())
        );
        assert_eq!(DaxMode::Disabled.list_name(), "devdax");
        assert_eq!("famfs".parse::<DaxMode>(), Ok(DaxMode::Famfs));
        assert!("disabled".parse::<DaxMode>().is_err());
        assert_eq!(DaxMode::SystemRam.driver(), Some("kmem"));
    }
}
