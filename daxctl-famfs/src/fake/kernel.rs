//! The emulated kernel behind a fake sysfs tree: a [`SysfsBackend`] whose writes perform the
//! side effects of the dax bus, its drivers and memory hotplug (reference §6.3), and which logs
//! every write it is asked to make.

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use libc::{EACCES, EBUSY, EINVAL, EISDIR, ENODEV, ENOENT, ENXIO, EOPNOTSUPP};
use serde::{Deserialize, Serialize};

use super::state::{STATE_DIR, State};
use crate::backend::SysfsBackend;
use crate::driver::{DEVICE_DAX, FSDEV_DAX, KMEM};
use crate::parse::{parse_dax_name, parse_dec_u64, parse_hex_u64, parse_written_name};

const WRITE_LOG: &str = "writes.jsonl";

/// One write the library asked the (emulated) kernel to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedWrite {
    /// The path as addressed, relative to the sysfs root (e.g.
    /// `devices/platform/hmem.0/dax0.0/driver/unbind`).
    pub path: String,
    /// The attribute it reached after resolving links (e.g. `bus/dax/drivers/kmem/unbind`),
    /// or the addressed path when it does not resolve.
    pub target: String,
    /// The bytes written.
    pub data: Vec<u8>,
    /// The errno the write failed with, if it did.
    pub errno: Option<i32>,
}

impl RecordedWrite {
    /// The written text without libdaxctl's trailing NUL (or echo's newline).
    pub fn value(&self) -> String {
        parse_written_name(&self.data)
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&self.data).into_owned())
    }
}

/// The emulating backend of a fake tree.
#[derive(Debug, Clone)]
pub struct FakeBackend {
    sys_root: PathBuf,
    canon_root: PathBuf,
    dev_root: PathBuf,
}

impl FakeBackend {
    /// Opens the fake tree rooted at `sys_root` (made by `FakeSysfs::new`).
    pub fn open(sys_root: &Path) -> io::Result<Self> {
        let st = State::load(sys_root)?;
        Ok(FakeBackend {
            sys_root: sys_root.to_path_buf(),
            canon_root: fs::canonicalize(sys_root)?,
            dev_root: st.dev_root,
        })
    }

    /// The tree's device-node directory.
    pub fn dev_root(&self) -> &Path {
        &self.dev_root
    }

    fn rel(&self, path: &Path) -> Option<String> {
        path.strip_prefix(&self.canon_root)
            .or_else(|_| path.strip_prefix(&self.sys_root))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    }

    fn record(&self, w: &RecordedWrite) -> io::Result<()> {
        let line = serde_json::to_string(w).map_err(io::Error::other)?;
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.canon_root.join(STATE_DIR).join(WRITE_LOG))?;
        writeln!(f, "{line}")
    }
}

/// Reads the write log of the tree at `sys_root`.
pub(crate) fn read_log(sys_root: &Path) -> io::Result<Vec<RecordedWrite>> {
    let path = sys_root.join(STATE_DIR).join(WRITE_LOG);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    text.lines()
        .map(|l| serde_json::from_str(l).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)))
        .collect()
}

/// Truncates the write log.
pub(crate) fn clear_log(sys_root: &Path) -> io::Result<()> {
    match fs::remove_file(sys_root.join(STATE_DIR).join(WRITE_LOG)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

impl SysfsBackend for FakeBackend {
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let addressed = self
            .rel(path)
            .ok_or_else(|| io::Error::from_raw_os_error(ENOENT))?;
        let target = path
            .parent()
            .and_then(|p| fs::canonicalize(p).ok())
            .zip(path.file_name())
            .and_then(|(p, f)| self.rel(&p.join(f)));
        let mut k = Kernel::load(&self.canon_root)?;
        let result = match &target {
            Some(t) => k.write(t, data),
            None => Err(ENOENT),
        };
        k.save()?;
        self.record(&RecordedWrite {
            target: target.unwrap_or_else(|| addressed.clone()),
            path: addressed,
            data: data.to_vec(),
            errno: result.err(),
        })?;
        result.map_err(io::Error::from_raw_os_error)
    }

    fn is_emulated(&self) -> bool {
        true
    }
}

/// The emulated kernel state machine over one tree.
pub(crate) struct Kernel {
    pub root: PathBuf,
    pub st: State,
}

type KResult<T = ()> = Result<T, i32>;

fn io_errno(e: io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

impl Kernel {
    pub fn load(root: &Path) -> io::Result<Self> {
        Ok(Kernel {
            root: root.to_path_buf(),
            st: State::load(root)?,
        })
    }

    pub fn save(&self) -> io::Result<()> {
        self.st.save(&self.root)
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn read(&self, rel: &str) -> Option<String> {
        fs::read_to_string(self.p(rel))
            .ok()
            .map(|s| s.trim_end_matches('\n').to_string())
    }

    /// Sets a file's contents as the kernel would (ignoring its mode bits, which only
    /// restrict user-space writers).
    pub fn put(&self, rel: &str, contents: &str) -> io::Result<()> {
        let p = self.p(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)?;
        }
        match fs::write(&p, contents) {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                let mode = fs::metadata(&p)?.permissions().mode();
                fs::set_permissions(&p, fs::Permissions::from_mode(mode | 0o200))?;
                let r = fs::write(&p, contents);
                fs::set_permissions(&p, fs::Permissions::from_mode(mode))?;
                r
            }
            r => r,
        }
    }

    /// Creates `at` (relative) as a relative symlink to `to` (relative to the root).
    pub fn link(&self, at: &str, to: &str) -> io::Result<()> {
        let depth = Path::new(at).components().count().saturating_sub(1);
        let target = format!("{}{to}", "../".repeat(depth));
        let p = self.p(at);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)?;
        }
        let _ = fs::remove_file(&p);
        symlink(target, p)
    }

    fn dev_rel(&self, name: &str) -> Option<String> {
        self.st.devices.get(name).map(|d| d.rel.clone())
    }

    pub fn bound(&self, name: &str) -> Option<String> {
        let rel = self.dev_rel(name)?;
        let l = fs::read_link(self.p(&format!("{rel}/driver"))).ok()?;
        l.file_name().map(|n| n.to_string_lossy().into_owned())
    }

    fn is_kmem_region(&self, name: &str) -> bool {
        self.st
            .devices
            .get(name)
            .and_then(|d| self.st.regions.get(&d.region))
            .is_some_and(|r| r.kmem)
    }

    /// dax_bus_match: the new_id list, or the type rule.
    fn matches(&self, drv: &str, name: &str) -> bool {
        if self
            .st
            .ids
            .get(drv)
            .is_some_and(|l| l.iter().any(|n| n == name))
        {
            return true;
        }
        let kmem = self.is_kmem_region(name);
        match drv {
            DEVICE_DAX => !kmem,
            KMEM => kmem,
            FSDEV_DAX => self.st.fsdev_auto_match && !kmem,
            _ => false,
        }
    }

    pub fn write(&mut self, target: &str, data: &[u8]) -> KResult {
        match self.st.write_fail.get(target) {
            Some(0) => return Ok(()),
            Some(e) => return Err(*e),
            None => {}
        }
        let parts: Vec<&str> = target.split('/').collect();
        match parts.as_slice() {
            [
                "bus",
                "dax",
                "drivers",
                drv,
                op @ ("new_id" | "remove_id" | "bind" | "unbind"),
            ] => {
                if !self.p(&format!("bus/dax/drivers/{drv}")).is_dir() {
                    return Err(ENOENT);
                }
                let name = parse_written_name(data).ok_or(EINVAL)?.to_string();
                match *op {
                    "new_id" => self.new_id(drv, &name),
                    "remove_id" => self.remove_id(drv, &name),
                    "bind" => self.bind(drv, &name),
                    _ => self.unbind(drv, &name),
                }
            }
            [
                "devices",
                "system",
                "memory",
                blk,
                attr @ ("state" | "online"),
            ] => {
                let v = parse_written_name(data).ok_or(EINVAL)?;
                let v = match (*attr, v) {
                    ("online", "1") => "online",
                    ("online", "0") => "offline",
                    ("online", _) => return Err(EINVAL),
                    (_, v) => v,
                };
                self.block_state_write(blk, v)
            }
            _ => self.other_write(target, data),
        }
    }

    fn new_id(&mut self, drv: &str, name: &str) -> KResult {
        if parse_dax_name(name).is_none() {
            return Err(EINVAL);
        }
        let list = self.st.ids.entry(drv.to_string()).or_default();
        if !list.iter().any(|n| n == name) {
            list.push(name.to_string());
        }
        // driver_attach(): probe every unbound matching device; probe errors are not returned.
        let names: Vec<String> = self.st.devices.keys().cloned().collect();
        for n in names {
            if self.bound(&n).is_none()
                && self.matches(drv, &n)
                && let Err(e) = self.probe_and_bind(drv, &n)
            {
                tracing::debug!("fake: {drv} probe of {n} failed: errno {e}");
            }
        }
        Ok(())
    }

    fn remove_id(&mut self, drv: &str, name: &str) -> KResult {
        if parse_dax_name(name).is_none() {
            return Err(EINVAL);
        }
        if let Some(l) = self.st.ids.get_mut(drv) {
            l.retain(|n| n != name);
        }
        Ok(())
    }

    fn bind(&mut self, drv: &str, name: &str) -> KResult {
        if !self.st.devices.contains_key(name) || !self.matches(drv, name) {
            return Err(ENODEV);
        }
        if self.bound(name).is_some() {
            return Err(EBUSY);
        }
        self.probe_and_bind(drv, name)
    }

    fn unbind(&mut self, drv: &str, name: &str) -> KResult {
        if self.bound(name).as_deref() != Some(drv) {
            return Err(ENODEV);
        }
        if drv == KMEM {
            let blocks = self.dev_blocks(name);
            let any_online = blocks.iter().any(|b| {
                self.read(&format!("devices/system/memory/memory{b}/state"))
                    .as_deref()
                    == Some("online")
            });
            if any_online {
                // kmem's remove cannot veto: the range stays reserved until reboot.
                if let Some(d) = self.st.devices.get_mut(name) {
                    d.leaked = true;
                }
            } else {
                self.remove_blocks(name).map_err(io_errno)?;
            }
        }
        self.set_driver(name, None).map_err(io_errno)
    }

    pub fn probe_and_bind(&mut self, drv: &str, name: &str) -> KResult {
        let rel = self.dev_rel(name).ok_or(ENODEV)?;
        let size = self
            .read(&format!("{rel}/size"))
            .and_then(|s| parse_dec_u64(&s))
            .unwrap_or(0);
        if size == 0 {
            return Err(ENXIO);
        }
        if let Some(e) = self.st.probe_fail.get(&format!("{name}/{drv}")) {
            return Err(*e);
        }
        let leaked = self.st.devices.get(name).is_some_and(|d| d.leaked);
        match drv {
            KMEM => {
                if !self.p(&format!("{rel}/target_node")).exists() {
                    return Err(EINVAL);
                }
                if leaked {
                    return Err(EBUSY);
                }
                self.create_blocks(name).map_err(io_errno)?;
            }
            DEVICE_DAX | FSDEV_DAX if leaked => return Err(EBUSY),
            _ => {}
        }
        self.set_driver(name, Some(drv)).map_err(io_errno)
    }

    /// Creates or removes the `driver` link and the driver's device link; regenerates uevent.
    pub fn set_driver(&self, name: &str, drv: Option<&str>) -> io::Result<()> {
        let rel = self
            .dev_rel(name)
            .ok_or_else(|| io::Error::from_raw_os_error(ENODEV))?;
        if let Some(old) = self.bound(name) {
            let _ = fs::remove_file(self.p(&format!("bus/dax/drivers/{old}/{name}")));
            fs::remove_file(self.p(&format!("{rel}/driver")))?;
        }
        if let Some(d) = drv {
            self.link(&format!("{rel}/driver"), &format!("bus/dax/drivers/{d}"))?;
            self.link(&format!("bus/dax/drivers/{d}/{name}"), &rel)?;
        }
        self.write_uevent(name, drv)
    }

    pub fn write_uevent(&self, name: &str, drv: Option<&str>) -> io::Result<()> {
        let rel = self
            .dev_rel(name)
            .ok_or_else(|| io::Error::from_raw_os_error(ENODEV))?;
        let (maj, min) = self
            .read(&format!("{rel}/dev"))
            .and_then(|d| crate::parse::parse_devnum(&d))
            .unwrap_or((0, 0));
        let mut s = format!("MAJOR={maj}\nMINOR={min}\nDEVNAME={name}\n");
        if let Some(d) = drv {
            s.push_str(&format!("DRIVER={d}\n"));
        }
        s.push_str("MODALIAS=dax:t0\n");
        self.put(&format!("{rel}/uevent"), &s)
    }

    fn block_size(&self) -> u64 {
        self.read("devices/system/memory/block_size_bytes")
            .and_then(|s| parse_hex_u64(&s))
            .unwrap_or(0)
    }

    /// Indices of the memory blocks fully inside the device's range.
    pub fn dev_blocks(&self, name: &str) -> Vec<u64> {
        let Some(rel) = self.dev_rel(name) else {
            return Vec::new();
        };
        let bs = self.block_size();
        let res = self
            .read(&format!("{rel}/resource"))
            .and_then(|s| parse_hex_u64(&s));
        let size = self
            .read(&format!("{rel}/size"))
            .and_then(|s| parse_dec_u64(&s));
        match (res, size) {
            (Some(r), Some(s)) if bs > 0 => {
                let first = r.div_ceil(bs);
                let last = r.saturating_add(s) / bs;
                (first..last).collect()
            }
            _ => Vec::new(),
        }
    }

    fn node_of(&self, name: &str) -> Option<String> {
        let rel = self.dev_rel(name)?;
        self.read(&format!("{rel}/target_node"))
    }

    fn create_blocks(&self, name: &str) -> io::Result<()> {
        let node = self.node_of(name).unwrap_or_else(|| "0".into());
        let policy = self
            .read("devices/system/memory/auto_online_blocks")
            .unwrap_or_else(|| "offline".into());
        for b in self.dev_blocks(name) {
            let blk = format!("memory{b}");
            let dir = format!("devices/system/memory/{blk}");
            let zone = match policy.as_str() {
                "online_movable" => Some("Movable"),
                p if p.starts_with("online") => Some("Normal"),
                _ => None,
            };
            let zone = zone.map(|z| self.st.online_zone.get(&blk).map_or(z, String::as_str));
            self.put(&format!("{dir}/phys_index"), &format!("{b:08x}\n"))?;
            self.put(&format!("{dir}/removable"), "1\n")?;
            self.put(
                &format!("{dir}/uevent"),
                "DEVTYPE=memory_block\nDRIVER=memory\n",
            )?;
            self.set_block(&blk, zone)?;
            self.link(
                &format!("{dir}/node{node}"),
                &format!("devices/system/node/node{node}"),
            )?;
            self.link(
                &format!("devices/system/node/node{node}/{blk}"),
                &format!("devices/system/memory/{blk}"),
            )?;
        }
        Ok(())
    }

    fn remove_blocks(&self, name: &str) -> io::Result<()> {
        let node = self.node_of(name).unwrap_or_else(|| "0".into());
        for b in self.dev_blocks(name) {
            let _ = fs::remove_file(self.p(&format!("devices/system/node/node{node}/memory{b}")));
            let dir = self.p(&format!("devices/system/memory/memory{b}"));
            if dir.exists() {
                fs::remove_dir_all(dir)?;
            }
        }
        Ok(())
    }

    /// Sets a block online in `zone`, or offline (`None`).
    pub fn set_block(&self, blk: &str, zone: Option<&str>) -> io::Result<()> {
        let dir = format!("devices/system/memory/{blk}");
        match zone {
            Some(z) => {
                self.put(&format!("{dir}/state"), "online\n")?;
                self.put(&format!("{dir}/online"), "1\n")?;
                self.put(&format!("{dir}/valid_zones"), &format!("{z}\n"))
            }
            None => {
                self.put(&format!("{dir}/state"), "offline\n")?;
                self.put(&format!("{dir}/online"), "0\n")?;
                self.put(&format!("{dir}/valid_zones"), "Normal Movable\n")
            }
        }
    }

    fn block_state_write(&mut self, blk: &str, value: &str) -> KResult {
        let dir = format!("devices/system/memory/{blk}");
        let cur = self.read(&format!("{dir}/state")).ok_or(ENOENT)?;
        let zone = match value {
            "online_movable" => Some("Movable"),
            "online" | "online_kernel" => Some("Normal"),
            "offline" => None,
            _ => return Err(EINVAL),
        };
        match zone {
            Some(z) => {
                // device_online() on an online block returns 1, which state_store turns into EINVAL.
                if cur == "online" {
                    return Err(EINVAL);
                }
                let z = self.st.online_zone.get(blk).map_or(z, String::as_str);
                self.set_block(blk, Some(z)).map_err(io_errno)
            }
            None => {
                if cur != "online" {
                    return Err(EINVAL);
                }
                if let Some(e) = self.st.offline_fail.get(blk) {
                    return Err(*e);
                }
                self.set_block(blk, None).map_err(io_errno)
            }
        }
    }

    fn other_write(&mut self, target: &str, data: &[u8]) -> KResult {
        let path = self.p(target);
        let (dir, file) = match target.rsplit_once('/') {
            Some((d, f)) => (d, f),
            None => ("", target),
        };
        // Device attributes that cannot change while bound.
        if matches!(file, "size" | "align" | "mapping")
            && let Some((name, _)) = self.st.devices.iter().find(|(_, d)| d.rel == dir)
        {
            let name = name.clone();
            if self.bound(&name).is_some() {
                return Err(EBUSY);
            }
            let dynamic = self
                .st
                .devices
                .get(&name)
                .and_then(|d| self.st.regions.get(&d.region))
                .is_some_and(|r| r.dynamic);
            if !dynamic {
                return Err(if file == "mapping" { ENOENT } else { EACCES });
            }
            // Resizing is not emulated: say so rather than pretend.
            return Err(EOPNOTSUPP);
        }
        if dir.ends_with("/dax_region") && matches!(file, "create" | "delete") {
            return Err(EOPNOTSUPP);
        }
        let meta = fs::metadata(&path).map_err(io_errno)?;
        if meta.is_dir() {
            return Err(EISDIR);
        }
        if meta.permissions().mode() & 0o222 == 0 {
            // kernfs checks the mode bits, even for root.
            return Err(EACCES);
        }
        fs::write(&path, data).map_err(io_errno)
    }
}

#[cfg(test)]
#[path = "kernel_tests.rs"]
mod tests;
