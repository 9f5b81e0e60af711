//! A fake sysfs for tests (feature `fake-sysfs`): a directory tree with the files and symlinks
//! of a real dax bus (reference §6.2) plus an emulated kernel ([`FakeBackend`]) that performs
//! the side effects of writes (reference §6.3): `new_id` binds and creates the `driver` link,
//! kmem probes create memory blocks, block `state` writes online/offline them, and so on, with
//! error injection for every failure path.
//!
//! The tree lives on disk, state included, so a test and a `daxctl-famfs --fake-sysfs
//! --sysfs-root` process it runs share one emulated machine ([`Sysfs::emulated`] opens it). Layout under the directory given to [`FakeSysfs::new`]:
//! `sys/` (the sysfs root) and `dev/` (stand-in device nodes: regular files). [`FakeProc`] is
//! the matching fake `/proc`, for the check that nothing uses a device before a switch.
//!
//! ```
//! # fn main() -> std::io::Result<()> {
//! use daxctl_famfs::fake::{DeviceSpec, FakeSysfs, RegionSpec};
//! use daxctl_famfs::{DaxMode, ReconfigureOptions};
//! let dir = tempfile::tempdir()?;
//! let fake = FakeSysfs::new(dir.path())?;
//! fake.add_region(&RegionSpec::nvdimm(0, 0x1_0000_0000, 4 << 30))?
//!     .add_device(&DeviceSpec::new("dax0.0", 4 << 30).driver("device_dax"))?;
//! let sysfs = fake.sysfs();
//! let dev = sysfs.device_by_name("dax0.0").unwrap();
//! let dev = sysfs.reconfigure(&dev, DaxMode::Famfs, &ReconfigureOptions::default()).unwrap();
//! assert_eq!(dev.mode(), DaxMode::Famfs);
//! # Ok(()) }
//! ```

mod kernel;
mod proc;
mod state;

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kernel::Kernel;
pub use kernel::{FakeBackend, RecordedWrite};
pub use proc::FakeProc;
use state::{DevState, RegionState, STATE_DIR, State};

use crate::Sysfs;
use crate::driver::{DEVICE_DAX, FSDEV_DAX, KMEM};
use crate::parse::parse_dax_name;

/// The default memory block size of the fake (128 MiB, as on x86-64).
pub const DEFAULT_BLOCK_SIZE: u64 = 128 << 20;
/// The major number the fake gives dax devices.
pub const FAKE_MAJOR: u32 = 252;

/// A dax region to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionSpec {
    /// Region id.
    pub id: u32,
    /// Parent device path relative to `/sys/devices` (holds `dax_region/` and the devices).
    pub parent: String,
    /// Physical start.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// Region alignment.
    pub align: u64,
    /// IORESOURCE_DAX_KMEM: devices match kmem by type (hmem, CXL).
    pub kmem: bool,
    /// Dynamic region (`available_size`, `create`, `seed`, `delete`; writable size/align).
    pub dynamic: bool,
}

impl RegionSpec {
    /// An nvdimm-style static region (as qemu's emulated NVDIMM gives), default driver
    /// device_dax.
    pub fn nvdimm(id: u32, start: u64, size: u64) -> Self {
        RegionSpec {
            id,
            parent: format!("LNXSYSTM:00/LNXSYBUS:00/ACPI0012:00/ndbus0/region{id}/dax{id}.0"),
            start,
            size,
            align: 2 << 20,
            kmem: false,
            dynamic: false,
        }
    }

    /// An hmem-style dynamic region flagged for kmem (EFI soft-reserved memory).
    pub fn hmem(id: u32, start: u64, size: u64) -> Self {
        RegionSpec {
            id,
            parent: format!("platform/hmem.{id}"),
            start,
            size,
            align: 2 << 20,
            kmem: true,
            dynamic: true,
        }
    }
}

/// A dax device to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    /// `daxX.Y` (X must be an existing region).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Alignment (`None`: no `align` attribute, as before Linux 5.10).
    pub align: Option<u64>,
    /// Target node (`None`: no `target_node` file, i.e. -1).
    pub target_node: Option<u32>,
    /// Physical start (`None`: next free address of the region).
    pub resource: Option<u64>,
    /// Driver bound at creation (kmem creates memory blocks per `auto_online_blocks`).
    pub driver: Option<String>,
}

impl DeviceSpec {
    /// A device with 2 MiB alignment on node 0, unbound.
    pub fn new(name: &str, size: u64) -> Self {
        DeviceSpec {
            name: name.to_string(),
            size,
            align: Some(2 << 20),
            target_node: Some(0),
            resource: None,
            driver: None,
        }
    }

    /// Sets the bound driver.
    pub fn driver(mut self, driver: &str) -> Self {
        self.driver = Some(driver.to_string());
        self
    }

    /// Sets the alignment (`None` omits the attribute).
    pub fn align(mut self, align: Option<u64>) -> Self {
        self.align = align;
        self
    }

    /// Sets the target node (`None` omits the attribute).
    pub fn target_node(mut self, node: Option<u32>) -> Self {
        self.target_node = node;
        self
    }

    /// Sets the physical start.
    pub fn resource(mut self, start: u64) -> Self {
        self.resource = Some(start);
        self
    }
}

impl Sysfs {
    /// A view of the fake tree at `sys_root` (made by [`FakeSysfs::new`], perhaps in another
    /// process) through its emulating backend, with the tree's own device-node directory.
    /// Fails if `sys_root` holds no fake tree.
    pub fn emulated(sys_root: impl Into<PathBuf>) -> io::Result<Sysfs> {
        let sys_root = sys_root.into();
        let backend = FakeBackend::open(&sys_root)?;
        let dev_root = backend.dev_root().to_path_buf();
        Ok(Sysfs::with_backend(sys_root, dev_root, Arc::new(backend)))
    }
}

/// A fake sysfs tree and its emulated kernel.
#[derive(Debug, Clone)]
pub struct FakeSysfs {
    root: PathBuf,
    sys: PathBuf,
    dev: PathBuf,
}

fn inval(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl FakeSysfs {
    /// Creates an empty dax bus with the three drivers (device_dax, kmem, fsdev_dax), memory
    /// hotplug files (128 MiB blocks, `auto_online_blocks` = offline) under `dir/sys`, and an
    /// empty `dir/dev`.
    pub fn new(dir: impl AsRef<Path>) -> io::Result<Self> {
        let root = dir.as_ref().to_path_buf();
        let sys = root.join("sys");
        let dev = root.join("dev");
        fs::create_dir_all(sys.join(STATE_DIR))?;
        fs::create_dir_all(&dev)?;
        let st = State {
            dev_root: fs::canonicalize(&dev)?,
            major: FAKE_MAJOR,
            ..State::default()
        };
        st.save(&sys)?;
        let fake = FakeSysfs { root, sys, dev };
        let k = fake.kernel()?;
        fs::create_dir_all(k.p("bus/dax/devices"))?;
        for f in ["drivers_probe", "drivers_autoprobe", "uevent"] {
            k.put(&format!("bus/dax/{f}"), "")?;
        }
        for d in [DEVICE_DAX, KMEM, FSDEV_DAX] {
            for f in ["bind", "unbind", "new_id", "remove_id", "uevent"] {
                k.put(&format!("bus/dax/drivers/{d}/{f}"), "")?;
            }
        }
        fs::create_dir_all(k.p("dev/char"))?;
        k.put(
            "devices/system/memory/block_size_bytes",
            &format!("{DEFAULT_BLOCK_SIZE:x}\n"),
        )?;
        k.put("devices/system/memory/auto_online_blocks", "offline\n")?;
        fs::create_dir_all(k.p("devices/system/node"))?;
        Ok(fake)
    }

    fn kernel(&self) -> io::Result<Kernel> {
        Kernel::load(&fs::canonicalize(&self.sys)?)
    }

    fn update(&self, f: impl FnOnce(&mut State)) -> io::Result<&Self> {
        let mut k = self.kernel()?;
        f(&mut k.st);
        k.save()?;
        Ok(self)
    }

    /// The sysfs root (`<dir>/sys`).
    pub fn sys_root(&self) -> &Path {
        &self.sys
    }

    /// The device-node root (`<dir>/dev`).
    pub fn dev_root(&self) -> &Path {
        &self.dev
    }

    /// The directory given to [`FakeSysfs::new`].
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A [`Sysfs`] over this tree (emulating backend, `<dir>/dev` nodes, short chardev wait).
    pub fn sysfs(&self) -> Sysfs {
        Sysfs::emulated(&self.sys)
            .expect("the tree was made by FakeSysfs::new")
            .with_chardev_timeout(std::time::Duration::from_secs(2))
    }

    /// Removes a driver, as if its module were not available.
    pub fn remove_driver(&self, driver: &str) -> io::Result<&Self> {
        fs::remove_dir_all(self.sys.join("bus/dax/drivers").join(driver))?;
        Ok(self)
    }

    /// Adds a region (its `dax_region/` attributes under `/sys/devices/<parent>`).
    pub fn add_region(&self, spec: &RegionSpec) -> io::Result<&Self> {
        let k = self.kernel()?;
        if k.st.regions.contains_key(&spec.id) {
            return Err(inval(format!("region {} exists", spec.id)));
        }
        let rel = format!("devices/{}", spec.parent.trim_matches('/'));
        let dr = format!("{rel}/dax_region");
        k.put(&format!("{dr}/id"), &format!("{}\n", spec.id))?;
        k.put(&format!("{dr}/size"), &format!("{}\n", spec.size))?;
        k.put(&format!("{dr}/align"), &format!("{}\n", spec.align))?;
        set_mode(&k.p(&format!("{dr}/id")), 0o444)?;
        set_mode(&k.p(&format!("{dr}/size")), 0o444)?;
        set_mode(&k.p(&format!("{dr}/align")), 0o400)?;
        if spec.dynamic {
            k.put(&format!("{dr}/available_size"), "0\n")?;
            k.put(&format!("{dr}/seed"), "\n")?;
            k.put(&format!("{dr}/create"), "\n")?;
            k.put(&format!("{dr}/delete"), "")?;
            set_mode(&k.p(&format!("{dr}/available_size")), 0o444)?;
        }
        let (id, spec) = (spec.id, spec.clone());
        self.update(move |st| {
            st.regions.insert(
                id,
                RegionState {
                    rel,
                    kmem: spec.kmem,
                    dynamic: spec.dynamic,
                    start: spec.start,
                    size: spec.size,
                    next_free: spec.start,
                },
            );
        })
    }

    /// The two-region machine most tests start from, under `dir`: nvdimm region 0 (1 GiB at
    /// 4 GiB) with dax0.0 in devdax mode, and hmem region 1 (`hmem_size` bytes at 8 GiB) with
    /// dax1.0 (1 GiB, node 1) in system-ram mode, its blocks online movable.
    pub fn two_regions(dir: impl AsRef<Path>, hmem_size: u64) -> io::Result<Self> {
        const GIB: u64 = 1 << 30;
        let fake = FakeSysfs::new(dir)?;
        fake.set_auto_online("online_movable")?
            .add_devdax_region(0, 4 * GIB, GIB)?
            .add_kmem_region(1, 8 * GIB, hmem_size, GIB)?;
        Ok(fake)
    }

    /// Adds nvdimm region `id` (`size` bytes at `start`) filled by one device, `dax<id>.0`, in
    /// devdax mode: what qemu's emulated NVDIMM gives.
    pub fn add_devdax_region(&self, id: u32, start: u64, size: u64) -> io::Result<&Self> {
        self.add_region(&RegionSpec::nvdimm(id, start, size))?
            .add_device(&DeviceSpec::new(&format!("dax{id}.0"), size).driver("device_dax"))
    }

    /// Adds hmem region `id` (`size` bytes at `start`) with one device, `dax<id>.0` of
    /// `dev_size` bytes on node `id`, bound to kmem: system-ram mode, its memory blocks in the
    /// state `auto_online_blocks` gives them.
    pub fn add_kmem_region(
        &self,
        id: u32,
        start: u64,
        size: u64,
        dev_size: u64,
    ) -> io::Result<&Self> {
        self.add_region(&RegionSpec::hmem(id, start, size))?
            .add_device(
                &DeviceSpec::new(&format!("dax{id}.0"), dev_size)
                    .target_node(Some(id))
                    .driver("kmem"),
            )
    }

    /// Adds a device with all its attributes, links and a stand-in `/dev` node, bound to
    /// `spec.driver` if given (through the emulated probe: kmem creates memory blocks).
    pub fn add_device(&self, spec: &DeviceSpec) -> io::Result<&Self> {
        let (rid, _) = parse_dax_name(&spec.name)
            .ok_or_else(|| inval(format!("bad device name {:?}", spec.name)))?;
        let mut k = self.kernel()?;
        if k.st.devices.contains_key(&spec.name) {
            return Err(inval(format!("{} exists", spec.name)));
        }
        let region =
            k.st.regions
                .get(&rid)
                .cloned()
                .ok_or_else(|| inval(format!("no region {rid}")))?;
        let start = spec.resource.unwrap_or(region.next_free);
        let rel = format!("{}/{}", region.rel, spec.name);
        let minor = k.st.next_minor;
        let devnum = format!("{}:{minor}", k.st.major);
        k.st.next_minor += 1;
        let mut avail_update = None;
        if let Some(r) = k.st.regions.get_mut(&rid) {
            r.next_free = r.next_free.max(start.saturating_add(spec.size));
            if r.dynamic {
                let avail = r.start.saturating_add(r.size).saturating_sub(r.next_free);
                avail_update = Some((format!("{}/dax_region/available_size", r.rel), avail));
            }
        }
        if let Some((path, avail)) = avail_update {
            k.put(&path, &format!("{avail}\n"))?;
        }
        k.st.devices.insert(
            spec.name.clone(),
            DevState {
                region: rid,
                rel: rel.clone(),
                leaked: false,
            },
        );
        let ro = if region.dynamic { 0o644 } else { 0o444 };
        k.put(&format!("{rel}/size"), &format!("{}\n", spec.size))?;
        set_mode(&k.p(&format!("{rel}/size")), ro)?;
        if let Some(a) = spec.align {
            k.put(&format!("{rel}/align"), &format!("{a}\n"))?;
            set_mode(&k.p(&format!("{rel}/align")), ro)?;
        }
        k.put(&format!("{rel}/resource"), &format!("{start:#x}\n"))?;
        set_mode(&k.p(&format!("{rel}/resource")), 0o400)?;
        match spec.target_node {
            Some(n) => {
                k.put(&format!("{rel}/target_node"), &format!("{n}\n"))?;
                k.put(&format!("{rel}/numa_node"), &format!("{n}\n"))?;
                fs::create_dir_all(k.p(&format!("devices/system/node/node{n}")))?;
            }
            None => k.put(&format!("{rel}/numa_node"), "-1\n")?,
        }
        k.put(&format!("{rel}/modalias"), "dax:t0\n")?;
        k.put(&format!("{rel}/memmap_on_memory"), "0\n")?;
        k.put(&format!("{rel}/dev"), &format!("{devnum}\n"))?;
        if region.dynamic {
            k.put(&format!("{rel}/mapping"), "")?;
            set_mode(&k.p(&format!("{rel}/mapping")), 0o200)?;
        }
        if spec.size > 0 {
            let m = format!("{rel}/mapping0");
            k.put(&format!("{m}/start"), &format!("{start:#x}\n"))?;
            k.put(
                &format!("{m}/end"),
                &format!("{:#x}\n", start.saturating_add(spec.size) - 1),
            )?;
            k.put(&format!("{m}/page_offset"), "0x0\n")?;
        }
        k.link(&format!("{rel}/subsystem"), "bus/dax")?;
        k.link(&format!("bus/dax/devices/{}", spec.name), &rel)?;
        k.link(&format!("dev/char/{devnum}"), &rel)?;
        // A sparse regular file of the device's size stands in for the node, so tools can
        // map it like the device.
        fs::File::create(self.dev.join(&spec.name))?.set_len(spec.size)?;
        k.write_uevent(&spec.name, None)?;
        k.save()?;
        if let Some(d) = &spec.driver {
            let mut k = self.kernel()?;
            k.probe_and_bind(d, &spec.name).map_err(|e| {
                io::Error::new(
                    io::Error::from_raw_os_error(e).kind(),
                    format!(
                        "binding {} to {d}: {}",
                        spec.name,
                        io::Error::from_raw_os_error(e)
                    ),
                )
            })?;
            k.save()?;
        }
        Ok(self)
    }

    /// The stand-in node of a device (`<dir>/dev/daxX.Y`, a sparse file of the device's size).
    pub fn stand_in(&self, device: &str) -> PathBuf {
        self.dev.join(device)
    }

    /// Every write made so far, in order.
    pub fn writes(&self) -> io::Result<Vec<RecordedWrite>> {
        kernel::read_log(&self.sys)
    }

    /// Forgets the writes made so far.
    pub fn clear_writes(&self) -> io::Result<&Self> {
        kernel::clear_log(&self.sys)?;
        Ok(self)
    }

    /// Sets `auto_online_blocks` (offline, online, online_kernel, online_movable).
    pub fn set_auto_online(&self, policy: &str) -> io::Result<&Self> {
        self.kernel()?.put(
            "devices/system/memory/auto_online_blocks",
            &format!("{policy}\n"),
        )?;
        Ok(self)
    }

    /// Sets `block_size_bytes`.
    pub fn set_block_size(&self, size: u64) -> io::Result<&Self> {
        self.kernel()?.put(
            "devices/system/memory/block_size_bytes",
            &format!("{size:x}\n"),
        )?;
        Ok(self)
    }

    /// Makes every write to `target` (sysfs-relative, after link resolution, e.g.
    /// `bus/dax/drivers/device_dax/unbind`) fail with `errno` (0: see [`Self::ignore_write`]).
    pub fn fail_write(&self, target: &str, errno: i32) -> io::Result<&Self> {
        let t = target.to_string();
        self.update(move |st| {
            st.write_fail.insert(t, errno);
        })
    }

    /// Makes every write to `target` "succeed" without any effect (e.g. an unbind that does
    /// not take).
    pub fn ignore_write(&self, target: &str) -> io::Result<&Self> {
        self.fail_write(target, 0)
    }

    /// Makes `driver`'s probe of `device` fail with `errno`.
    pub fn fail_probe(&self, device: &str, driver: &str, errno: i32) -> io::Result<&Self> {
        let key = format!("{device}/{driver}");
        self.update(move |st| {
            st.probe_fail.insert(key, errno);
        })
    }

    /// Makes offlining memory block `block` (`memoryN`) fail with `errno`.
    pub fn fail_offline(&self, block: &str, errno: i32) -> io::Result<&Self> {
        let b = block.to_string();
        self.update(move |st| {
            st.offline_fail.insert(b, errno);
        })
    }

    /// Makes `block` land in `zone` whenever it is onlined (simulates a racing onliner).
    pub fn force_online_zone(&self, block: &str, zone: &str) -> io::Result<&Self> {
        let (b, z) = (block.to_string(), zone.to_string());
        self.update(move |st| {
            st.online_zone.insert(b, z);
        })
    }

    /// Sets a block's legacy `removable` flag.
    pub fn set_removable(&self, block: &str, removable: bool) -> io::Result<&Self> {
        self.kernel()?.put(
            &format!("devices/system/memory/{block}/removable"),
            if removable { "1\n" } else { "0\n" },
        )?;
        Ok(self)
    }

    /// Emulates the V9 kernels where fsdev_dax auto-matches non-kmem devices (reference Q1).
    pub fn set_fsdev_auto_match(&self, on: bool) -> io::Result<&Self> {
        self.update(move |st| st.fsdev_auto_match = on)
    }

    /// Onlines a device's blocks behind the library's back (like udev rules or the kernel
    /// policy would), in `zone`.
    pub fn online_blocks(&self, device: &str, zone: &str) -> io::Result<&Self> {
        let k = self.kernel()?;
        for b in k.dev_blocks(device) {
            let blk = format!("memory{b}");
            if k.p(&format!("devices/system/memory/{blk}")).exists() {
                k.set_block(&blk, Some(zone))?;
            }
        }
        Ok(self)
    }

    /// The memory blocks (`memoryN`) that currently exist for a device.
    pub fn blocks_of(&self, device: &str) -> io::Result<Vec<String>> {
        let k = self.kernel()?;
        Ok(k.dev_blocks(device)
            .into_iter()
            .map(|b| format!("memory{b}"))
            .filter(|b| k.p(&format!("devices/system/memory/{b}")).exists())
            .collect())
    }

    /// A block's `state` ("online"/"offline"), if it exists.
    pub fn block_state(&self, block: &str) -> Option<String> {
        fs::read_to_string(
            self.sys
                .join(format!("devices/system/memory/{block}/state")),
        )
        .ok()
        .map(|s| s.trim_end().to_string())
    }

    /// The driver a device is bound to.
    pub fn driver_of(&self, device: &str) -> io::Result<Option<String>> {
        Ok(self.kernel()?.bound(device))
    }

    /// A driver's `new_id` list.
    pub fn ids_of(&self, driver: &str) -> io::Result<Vec<String>> {
        Ok(self
            .kernel()?
            .st
            .ids
            .get(driver)
            .cloned()
            .unwrap_or_default())
    }

    /// Whether a kmem unbind left the device's range reserved.
    pub fn is_leaked(&self, device: &str) -> io::Result<bool> {
        Ok(self
            .kernel()?
            .st
            .devices
            .get(device)
            .is_some_and(|d| d.leaked))
    }
}

fn set_mode(p: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
}
