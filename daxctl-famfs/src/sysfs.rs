//! Enumeration of dax regions and devices under a sysfs root, the way libdaxctl does it.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{RealBackend, SysfsBackend, daxctl_encoding};
use crate::parse::{
    parse_dax_name, parse_dec_i64, parse_dec_u64, parse_devnum, parse_hex_u64, split_dev_t,
};
use crate::{DaxDev, Error, Mapping, Region, Result};

/// Environment variable overriding the sysfs root (default `/sys`) for every famfs tool and
/// library that reads sysfs: this crate, famfs-fsdev's device open, the famfs CLI and daemon.
pub const ENV_SYSFS_ROOT: &str = "DAXCTL_FAMFS_SYSFS_ROOT";
/// Environment variable overriding the device-node root (default `/dev`).
pub const ENV_DEV_ROOT: &str = "DAXCTL_FAMFS_DEV_ROOT";
/// Default time to wait for `/dev/daxX.Y` after a bind.
pub const DEFAULT_CHARDEV_TIMEOUT: Duration = Duration::from_secs(10);

/// A view of the dax bus under one sysfs root, with a device-node root for `/dev/daxX.Y`.
///
/// All state is read from sysfs on every call; nothing is cached, so values are always current.
#[derive(Debug, Clone)]
pub struct Sysfs {
    pub(crate) sys_root: PathBuf,
    pub(crate) dev_root: PathBuf,
    pub(crate) backend: Arc<dyn SysfsBackend>,
    pub(crate) chardev_timeout: Duration,
    pub(crate) load_modules: bool,
}

impl Sysfs {
    /// A view of `sys_root` (e.g. `/sys`) through the real backend (plain file I/O), device
    /// nodes under `/dev`. Driver modules are loaded with `modprobe` only when `sys_root` is the
    /// real `/sys`. An emulated tree has its own constructor, `Sysfs::emulated` (feature
    /// `fake-sysfs`).
    pub fn new(sys_root: impl Into<PathBuf>) -> Self {
        let sys_root = sys_root.into();
        let load_modules = sys_root == Path::new("/sys");
        let mut s = Self::with_backend(sys_root, "/dev", Arc::new(RealBackend));
        s.load_modules = load_modules;
        s
    }

    /// The live system: `/sys` and `/dev`.
    pub fn system() -> Self {
        Self::new("/sys")
    }

    /// Roots from the environment: [`ENV_SYSFS_ROOT`] (default `/sys`) and [`ENV_DEV_ROOT`]
    /// (default `/dev`).
    pub fn from_env() -> Self {
        let root = std::env::var_os(ENV_SYSFS_ROOT)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/sys"));
        let s = Self::new(root);
        match std::env::var_os(ENV_DEV_ROOT).filter(|v| !v.is_empty()) {
            Some(d) => s.with_dev_root(d),
            None => s,
        }
    }

    /// A view with an explicit backend (no module loading).
    pub fn with_backend(
        sys_root: impl Into<PathBuf>,
        dev_root: impl Into<PathBuf>,
        backend: Arc<dyn SysfsBackend>,
    ) -> Self {
        Sysfs {
            sys_root: sys_root.into(),
            dev_root: dev_root.into(),
            backend,
            chardev_timeout: DEFAULT_CHARDEV_TIMEOUT,
            load_modules: false,
        }
    }

    /// Overrides the device-node root.
    pub fn with_dev_root(mut self, dev_root: impl Into<PathBuf>) -> Self {
        self.dev_root = dev_root.into();
        self
    }

    /// Sets how long to wait for `/dev/daxX.Y` after a bind.
    pub fn with_chardev_timeout(mut self, timeout: Duration) -> Self {
        self.chardev_timeout = timeout;
        self
    }

    /// Enables or disables `modprobe` of a missing driver before binding.
    pub fn with_module_loading(mut self, load: bool) -> Self {
        self.load_modules = load;
        self
    }

    /// The sysfs root.
    pub fn sys_root(&self) -> &Path {
        &self.sys_root
    }

    /// The device-node root.
    pub fn dev_root(&self) -> &Path {
        &self.dev_root
    }

    /// Whether the backend emulates the kernel (a fake tree).
    pub fn is_emulated(&self) -> bool {
        self.backend.is_emulated()
    }

    pub(crate) fn sys(&self, rel: &str) -> PathBuf {
        self.sys_root.join(rel)
    }

    pub(crate) fn read_attr(&self, path: &Path) -> Result<String> {
        self.backend
            .read(path)
            .map(|s| crate::parse::attr_text(&s).to_string())
            .map_err(|e| Error::read(path, e))
    }

    pub(crate) fn read_opt(&self, path: &Path) -> Option<String> {
        self.backend
            .read(path)
            .ok()
            .map(|s| crate::parse::attr_text(&s).to_string())
    }

    pub(crate) fn parse_attr<T>(
        &self,
        path: &Path,
        parse: fn(&str) -> Option<T>,
        what: &'static str,
    ) -> Result<T> {
        let v = self.read_attr(path)?;
        parse(&v).ok_or_else(|| Error::Parse {
            path: path.to_path_buf(),
            value: v,
            what,
        })
    }

    /// Writes `value` the way libdaxctl does (string plus NUL) and names the file on failure.
    pub(crate) fn write_attr(&self, path: &Path, value: &str) -> Result<()> {
        tracing::debug!(path = %path.display(), value, "sysfs write");
        self.backend
            .write(path, &daxctl_encoding(value))
            .map_err(|source| Error::Write {
                path: path.to_path_buf(),
                value: value.to_string(),
                source,
            })
    }

    /// The driver bound to the device at `dev_path` (basename of its `driver` link).
    pub(crate) fn bound_driver(&self, dev_path: &Path) -> Option<String> {
        let link = self.backend.read_link(&dev_path.join("driver")).ok()?;
        link.file_name().map(|n| n.to_string_lossy().into_owned())
    }

    /// All regions with their devices, in the order daxctl lists them.
    ///
    /// Follows libdaxctl: regions come from the `/sys/bus/dax/devices` links (the region is the
    /// parent directory of each link's target), devices from `dax<region>.<n>` entries in the
    /// region directory. A device whose `/dev` node is missing or whose `size` is unreadable is
    /// skipped (with a warning), as daxctl does. A missing dax bus gives an empty list.
    ///
    /// Order: libdaxctl inserts each new region and device at the head of its list, so it lists
    /// them in *reverse directory order* (regions by first appearance in `/sys/bus/dax/devices`,
    /// devices in their region directory). This is reproduced so that `list` output matches
    /// daxctl byte for byte; use [`Sysfs::list_sorted`] for a stable numeric order.
    pub fn list(&self) -> Result<Vec<Region>> {
        let bus = self.sys("bus/dax/devices");
        let names = match self.backend.read_dir(&bus) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::read(bus, e)),
        };
        let mut region_paths: Vec<(u32, PathBuf)> = Vec::new();
        for name in names {
            let Some((region_id, _)) = parse_dax_name(&name) else {
                continue;
            };
            if region_paths.iter().any(|(id, _)| *id == region_id) {
                continue;
            }
            let link = bus.join(&name);
            let target = match self.backend.canonicalize(&link) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!("{}: cannot resolve: {e}", link.display());
                    continue;
                }
            };
            if let Some(parent) = target.parent() {
                region_paths.push((region_id, parent.to_path_buf()));
            }
        }
        let mut regions = Vec::with_capacity(region_paths.len());
        for (id, path) in region_paths.into_iter().rev() {
            regions.push(self.read_region(id, path)?);
        }
        Ok(regions)
    }

    /// [`Sysfs::list`] ordered by region id, devices by instance id.
    pub fn list_sorted(&self) -> Result<Vec<Region>> {
        let mut regions = self.list()?;
        regions.sort_by_key(|r| r.id);
        for r in &mut regions {
            r.devices.sort_by_key(|d| d.instance);
        }
        Ok(regions)
    }

    fn read_region(&self, id: u32, path: PathBuf) -> Result<Region> {
        let dr = path.join("dax_region");
        let size = self
            .read_opt(&dr.join("size"))
            .and_then(|v| parse_dec_u64(&v));
        let align = self
            .read_opt(&dr.join("align"))
            .and_then(|v| parse_dec_u64(&v));
        let available_size = self
            .read_opt(&dr.join("available_size"))
            .and_then(|v| parse_dec_u64(&v))
            .unwrap_or(0);
        let entries = self
            .backend
            .read_dir(&path)
            .map_err(|e| Error::read(&path, e))?;
        // Reverse directory order, as libdaxctl's head insertion yields.
        let devs: Vec<(u32, String)> = entries
            .into_iter()
            .rev()
            .filter_map(|n| match parse_dax_name(&n) {
                Some((r, i)) if r == id => Some((i, n)),
                _ => None,
            })
            .collect();
        let mut devices = Vec::with_capacity(devs.len());
        for (instance, name) in devs {
            if let Some(d) = self.read_device(id, instance, &name, &path.join(&name)) {
                devices.push(d);
            }
        }
        Ok(Region {
            id,
            path,
            size,
            align,
            available_size,
            devices,
        })
    }

    fn read_device(
        &self,
        region_id: u32,
        instance: u32,
        name: &str,
        path: &Path,
    ) -> Option<DaxDev> {
        let chardev = self.dev_root.join(name);
        let node = match std::fs::metadata(&chardev) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("{name}: skipped: {}: {e}", chardev.display());
                return None;
            }
        };
        let (major, minor) = match self
            .read_opt(&path.join("dev"))
            .and_then(|v| parse_devnum(&v))
        {
            Some(mm) => mm,
            None if node.file_type().is_char_device() => split_dev_t(node.rdev()),
            None => {
                tracing::warn!("{name}: skipped: no device number");
                return None;
            }
        };
        let size = match self.parse_attr(&path.join("size"), parse_dec_u64, "a decimal size") {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("{name}: skipped: {e}");
                return None;
            }
        };
        let align = self
            .read_opt(&path.join("align"))
            .and_then(|v| parse_dec_u64(&v))
            .unwrap_or(0);
        let target_node = self
            .read_opt(&path.join("target_node"))
            .and_then(|v| parse_dec_i64(&v))
            .and_then(|n| u32::try_from(n).ok());
        let resource = self
            .read_opt(&path.join("resource"))
            .and_then(|v| parse_hex_u64(&v))
            .unwrap_or(0);
        Some(DaxDev {
            name: name.to_string(),
            region_id,
            instance,
            path: path.to_path_buf(),
            chardev,
            major,
            minor,
            size,
            align,
            target_node,
            resource,
            driver: self.bound_driver(path),
            mappings: self.read_mappings(path),
        })
    }

    fn read_mappings(&self, path: &Path) -> Vec<Mapping> {
        let mut out = Vec::new();
        for i in 0.. {
            let dir = path.join(format!("mapping{i}"));
            if !self.backend.exists(&dir) {
                break;
            }
            let get = |f: &str| self.read_opt(&dir.join(f)).and_then(|v| parse_hex_u64(&v));
            match (get("page_offset"), get("start"), get("end")) {
                (Some(page_offset), Some(start), Some(end)) => out.push(Mapping {
                    page_offset,
                    start,
                    end,
                }),
                _ => break,
            }
        }
        out
    }

    /// All devices of all regions, in daxctl's order (see [`Sysfs::list`]).
    pub fn devices(&self) -> Result<Vec<DaxDev>> {
        Ok(self.list()?.into_iter().flat_map(|r| r.devices).collect())
    }

    /// The device named `name` (`daxX.Y`, `X.Y` or a path ending in it), if present.
    pub fn find_device(&self, name: &str) -> Result<Option<DaxDev>> {
        let filter = crate::parse::DeviceFilter::parse(name);
        if !matches!(filter, crate::parse::DeviceFilter::Id { .. }) {
            return Ok(None);
        }
        Ok(self
            .devices()?
            .into_iter()
            .find(|d| filter.matches(d.region_id, d.instance)))
    }

    /// The device named `name`; [`Error::DeviceNotFound`] (ENODEV) if absent.
    pub fn device_by_name(&self, name: &str) -> Result<DaxDev> {
        self.find_device(name)?
            .ok_or_else(|| Error::DeviceNotFound {
                name: name.to_string(),
                sysfs: self.sys_root.clone(),
            })
    }

    /// Re-reads a device's current state.
    pub fn refresh(&self, dev: &DaxDev) -> Result<DaxDev> {
        self.device_by_name(&dev.name)
    }

    /// Maps a path given to a famfs command to its dax device.
    ///
    /// * A character device: its `st_rdev` is looked up in `/sys/dev/char/M:m`; a character
    ///   device that is not a dax device is an error (EINVAL).
    /// * A regular file (a stand-in device file), block device or directory: `Ok(None)`.
    ///   Exception: on an emulated tree, a regular file `<dev root>/daxX.Y` is the fake's
    ///   stand-in node and maps to that device by name.
    /// * A path that does not exist: an error naming it (ENOENT).
    pub fn device_for_chardev(&self, path: &Path) -> Result<Option<DaxDev>> {
        let meta = std::fs::metadata(path).map_err(|e| Error::read(path, e))?;
        let ft = meta.file_type();
        if ft.is_char_device() {
            let (major, minor) = split_dev_t(meta.rdev());
            let link = self.sys(&format!("dev/char/{major}:{minor}"));
            let name = match self.backend.canonicalize(&link) {
                Ok(target) => target.file_name().map(|n| n.to_string_lossy().into_owned()),
                // No /sys/dev/char (unusual): fall back to the node's own name.
                Err(_) => path.file_name().map(|n| n.to_string_lossy().into_owned()),
            };
            let found = match name.as_deref().and_then(|n| parse_dax_name(n).map(|_| n)) {
                Some(n) => self.find_device(n)?,
                None => None,
            };
            return match found {
                Some(d) if d.major == major && d.minor == minor => Ok(Some(d)),
                _ => Err(Error::InvalidArgument(format!(
                    "{}: character device {major}:{minor} is not a dax device",
                    path.display()
                ))),
            };
        }
        if ft.is_file() && self.is_emulated() {
            let parent = path.parent().and_then(|p| std::fs::canonicalize(p).ok());
            let dev_root = std::fs::canonicalize(&self.dev_root).ok();
            if parent.is_some()
                && parent == dev_root
                && let Some(name) = path.file_name().and_then(|n| n.to_str())
                && parse_dax_name(name).is_some()
            {
                return self.find_device(name);
            }
        }
        Ok(None)
    }

    /// Whether the device is on the dax bus (not the legacy dax-class model): its
    /// `/sys/dev/char/M:m/subsystem` must resolve to `<root>/bus/dax`.
    pub(crate) fn check_dax_bus(&self, dev: &DaxDev) -> Result<()> {
        let link = self.sys(&format!("dev/char/{}/subsystem", dev.devnum()));
        let resolved = self.backend.canonicalize(&link).ok();
        let bus = self.backend.canonicalize(&self.sys("bus/dax")).ok();
        if resolved.is_some() && resolved == bus {
            Ok(())
        } else {
            Err(Error::DaxClassModel {
                device: dev.name.clone(),
                path: link,
            })
        }
    }
}

#[cfg(test)]
#[path = "sysfs_tests.rs"]
mod tests;
