//! The emulated kernel follows reference §6.3.

use std::fs;

use libc::{EACCES, EBUSY, EINVAL, ENODEV, ENOENT, ENXIO};

use super::FakeBackend;
use crate::SysfsBackend;
use crate::fake::{DeviceSpec, FakeSysfs, RegionSpec};

const GIB: u64 = 1 << 30;

struct K {
    _dir: tempfile::TempDir,
    fake: FakeSysfs,
    be: FakeBackend,
}

impl K {
    fn w(&self, rel: &str, data: &[u8]) -> Result<(), i32> {
        self.be
            .write(&self.fake.sys_root().join(rel), data)
            .map_err(|e| e.raw_os_error().unwrap_or(-1))
    }
    fn drv(&self, dev: &str) -> Option<String> {
        self.fake.driver_of(dev).unwrap()
    }
    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.fake.sys_root().join(rel)).unwrap()
    }
}

/// nvdimm region 0: dax0.0 (unbound) and dax0.1 (zero size); hmem region 1: dax1.0, dax1.1
/// (unbound, kmem-flagged, node 1).
fn setup() -> K {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeSysfs::new(dir.path()).unwrap();
    fake.add_region(&RegionSpec::nvdimm(0, 4 * GIB, GIB))
        .unwrap()
        .add_device(&DeviceSpec::new("dax0.0", GIB))
        .unwrap()
        .add_device(&DeviceSpec::new("dax0.1", 0))
        .unwrap()
        .add_region(&RegionSpec::hmem(1, 8 * GIB, 2 * GIB))
        .unwrap()
        .add_device(&DeviceSpec::new("dax1.0", GIB).target_node(Some(1)))
        .unwrap()
        .add_device(&DeviceSpec::new("dax1.1", GIB).target_node(Some(1)))
        .unwrap();
    let be = FakeBackend::open(fake.sys_root()).unwrap();
    K {
        _dir: dir,
        fake,
        be,
    }
}

#[test]
fn skeleton_has_the_reference_files() {
    let k = setup();
    let sys = k.fake.sys_root();
    for f in [
        "bus/dax/drivers_probe",
        "bus/dax/drivers_autoprobe",
        "bus/dax/uevent",
        "bus/dax/drivers/device_dax/new_id",
        "bus/dax/drivers/kmem/remove_id",
        "bus/dax/drivers/fsdev_dax/bind",
        "bus/dax/drivers/fsdev_dax/unbind",
        "devices/system/memory/block_size_bytes",
        "devices/system/memory/auto_online_blocks",
        "devices/platform/hmem.1/dax_region/available_size",
        "devices/platform/hmem.1/dax_region/seed",
        "devices/platform/hmem.1/dax1.0/mapping",
        "devices/platform/hmem.1/dax1.0/modalias",
        "devices/platform/hmem.1/dax1.0/mapping0/page_offset",
    ] {
        assert!(sys.join(f).exists(), "{f}");
    }
    assert!(!sys.join("class/dax").exists());
    assert_eq!(
        k.read("devices/system/memory/block_size_bytes"),
        "8000000\n"
    );
    let dev = fs::canonicalize(sys.join("bus/dax/devices/dax1.0")).unwrap();
    assert_eq!(
        dev,
        fs::canonicalize(sys.join("devices/platform/hmem.1/dax1.0")).unwrap()
    );
    assert_eq!(
        fs::canonicalize(dev.join("subsystem")).unwrap(),
        fs::canonicalize(sys.join("bus/dax")).unwrap()
    );
    assert_eq!(fs::canonicalize(sys.join("dev/char/252:2")).unwrap(), dev);
    assert_eq!(
        k.read("devices/platform/hmem.1/dax1.0/resource"),
        "0x200000000\n"
    );
    let node = k.fake.stand_in("dax1.0");
    assert!(node.is_file());
    assert_eq!(fs::metadata(node).unwrap().len(), GIB);
    // Static region: no mapping attribute, read-only size.
    assert!(
        !sys.join(
            "devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0012:00/ndbus0/region0/dax0.0/dax0.0/mapping"
        )
        .exists()
    );
}

#[test]
fn new_id_binds_immediately_and_creates_links() {
    let k = setup();
    assert_eq!(k.w("bus/dax/drivers/fsdev_dax/new_id", b"dax0.0\n"), Ok(()));
    assert_eq!(k.drv("dax0.0").as_deref(), Some("fsdev_dax"));
    let sys = k.fake.sys_root();
    assert!(fs::symlink_metadata(sys.join("bus/dax/drivers/fsdev_dax/dax0.0")).is_ok());
    let ue =
        k.read("devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0012:00/ndbus0/region0/dax0.0/dax0.0/uevent");
    assert_eq!(
        ue,
        "MAJOR=252\nMINOR=0\nDEVNAME=dax0.0\nDRIVER=fsdev_dax\nMODALIAS=dax:t0\n"
    );
    // The bind write that follows finds it bound.
    assert_eq!(
        k.w("bus/dax/drivers/fsdev_dax/bind", b"dax0.0\0"),
        Err(EBUSY)
    );
}

#[test]
fn new_id_rejects_non_canonical_names() {
    let k = setup();
    for bad in [&b"dax00.0"[..], b"foo", b"dax0.0 ", b"", b"dax0.0\n\n"] {
        assert_eq!(
            k.w("bus/dax/drivers/fsdev_dax/new_id", bad),
            Err(EINVAL),
            "{bad:?}"
        );
        assert_eq!(
            k.w("bus/dax/drivers/fsdev_dax/remove_id", bad),
            Err(EINVAL),
            "{bad:?}"
        );
    }
    assert_eq!(k.drv("dax0.0"), None);
    // remove_id of an absent name succeeds.
    assert_eq!(
        k.w("bus/dax/drivers/fsdev_dax/remove_id", b"dax0.0\0"),
        Ok(())
    );
    // The write log keeps every attempt with its errno.
    let log = k.fake.writes().unwrap();
    assert_eq!(log.len(), 11);
    assert_eq!(log[0].errno, Some(EINVAL));
    assert_eq!(log[10].errno, None);
}

#[test]
fn bind_matching_rules() {
    let k = setup();
    // fsdev_dax matches only through new_id (V10 semantics): ENODEV.
    assert_eq!(
        k.w("bus/dax/drivers/fsdev_dax/bind", b"dax0.0\0"),
        Err(ENODEV)
    );
    // kmem does not match a non-kmem region by type.
    assert_eq!(k.w("bus/dax/drivers/kmem/bind", b"dax0.0\0"), Err(ENODEV));
    // device_dax matches non-kmem devices by type.
    assert_eq!(k.w("bus/dax/drivers/device_dax/bind", b"dax0.0\0"), Ok(()));
    assert_eq!(k.drv("dax0.0").as_deref(), Some("device_dax"));
    // Already bound: EBUSY, whichever driver.
    assert_eq!(
        k.w("bus/dax/drivers/device_dax/bind", b"dax0.0\0"),
        Err(EBUSY)
    );
    // No such device: ENODEV.
    assert_eq!(
        k.w("bus/dax/drivers/device_dax/bind", b"dax7.0\0"),
        Err(ENODEV)
    );
    // Zero-size devices are refused by the bus probe: ENXIO.
    assert_eq!(
        k.w("bus/dax/drivers/device_dax/bind", b"dax0.1\0"),
        Err(ENXIO)
    );
    // kmem matches kmem-flagged regions by type; device_dax does not.
    assert_eq!(
        k.w("bus/dax/drivers/device_dax/bind", b"dax1.0\0"),
        Err(ENODEV)
    );
    assert_eq!(k.w("bus/dax/drivers/kmem/bind", b"dax1.0\0"), Ok(()));
    // A missing driver directory: ENOENT.
    k.fake.remove_driver("fsdev_dax").unwrap();
    assert_eq!(
        k.w("bus/dax/drivers/fsdev_dax/new_id", b"dax0.0\0"),
        Err(ENOENT)
    );
}

#[test]
fn fsdev_auto_match_variant() {
    let k = setup();
    k.fake.set_fsdev_auto_match(true).unwrap();
    assert_eq!(k.w("bus/dax/drivers/fsdev_dax/bind", b"dax0.0\0"), Ok(()));
    assert_eq!(k.drv("dax0.0").as_deref(), Some("fsdev_dax"));
}

#[test]
fn new_id_attaches_every_unbound_matching_device() {
    let k = setup();
    // kmem matches both hmem devices by type: new_id for one attaches both (driver_attach).
    assert_eq!(k.w("bus/dax/drivers/kmem/new_id", b"dax1.0\0"), Ok(()));
    assert_eq!(k.drv("dax1.0").as_deref(), Some("kmem"));
    assert_eq!(k.drv("dax1.1").as_deref(), Some("kmem"));
    assert_eq!(k.drv("dax0.0"), None);
}

#[test]
fn unbind_rules_and_kmem_blocks() {
    let k = setup();
    assert_eq!(k.w("bus/dax/drivers/kmem/unbind", b"dax1.0\0"), Err(ENODEV));
    assert_eq!(k.w("bus/dax/drivers/kmem/bind", b"dax1.0\0"), Ok(()));
    assert_eq!(
        k.w("bus/dax/drivers/device_dax/unbind", b"dax1.0\0"),
        Err(ENODEV)
    );
    // auto_online_blocks=offline: 8 offline blocks, 64..71, linked from node1.
    let blocks = k.fake.blocks_of("dax1.0").unwrap();
    assert_eq!(blocks.len(), 8);
    assert_eq!(blocks[0], "memory64");
    assert_eq!(
        k.read("devices/system/memory/memory64/phys_index"),
        "00000040\n"
    );
    assert_eq!(
        k.read("devices/system/node/node1/memory64/state"),
        "offline\n"
    );
    assert!(
        fs::canonicalize(
            k.fake
                .sys_root()
                .join("devices/system/memory/memory64/node1")
        )
        .is_ok()
    );
    // All offline: unbind hot-removes them.
    assert_eq!(k.w("bus/dax/drivers/kmem/unbind", b"dax1.0\0"), Ok(()));
    assert!(k.fake.blocks_of("dax1.0").unwrap().is_empty());
    assert!(
        !k.fake
            .sys_root()
            .join("devices/system/node/node1/memory64")
            .exists()
    );
    assert_eq!(k.drv("dax1.0"), None);
    assert!(!k.fake.is_leaked("dax1.0").unwrap());
}

#[test]
fn kmem_probe_follows_auto_online_policy_and_alignment() {
    let k = setup();
    k.fake.set_auto_online("online_movable").unwrap();
    assert_eq!(k.w("bus/dax/drivers/kmem/bind", b"dax1.0\0"), Ok(()));
    assert_eq!(k.fake.block_state("memory64").as_deref(), Some("online"));
    assert_eq!(
        k.read("devices/system/memory/memory64/valid_zones"),
        "Movable\n"
    );
    assert_eq!(k.read("devices/system/memory/memory64/online"), "1\n");
    k.fake.set_auto_online("online").unwrap();
    assert_eq!(k.w("bus/dax/drivers/kmem/bind", b"dax1.1\0"), Ok(()));
    assert_eq!(
        k.read("devices/system/memory/memory72/valid_zones"),
        "Normal\n"
    );
}

#[test]
fn unaligned_ranges_use_whole_blocks_only() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeSysfs::new(dir.path()).unwrap();
    fake.add_region(&RegionSpec::hmem(0, 4 * GIB, GIB))
        .unwrap()
        .add_device(
            &DeviceSpec::new("dax0.0", 512 << 20)
                .resource(4 * GIB + (64 << 20))
                .driver("kmem"),
        )
        .unwrap();
    // [4G+64M, 4G+576M): blocks starting at 4G+128M .. 4G+384M, i.e. 33, 34, 35.
    assert_eq!(
        fake.blocks_of("dax0.0").unwrap(),
        ["memory33", "memory34", "memory35"]
    );
}

#[test]
fn memory_block_state_machine() {
    let k = setup();
    assert_eq!(k.w("bus/dax/drivers/kmem/bind", b"dax1.0\0"), Ok(()));
    let st = "devices/system/memory/memory64/state";
    assert_eq!(k.w(st, b"bogus\0"), Err(EINVAL));
    assert_eq!(k.w(st, b"offline\0"), Err(EINVAL), "already offline");
    assert_eq!(k.w(st, b"online_kernel\0"), Ok(()));
    assert_eq!(
        k.read("devices/system/memory/memory64/valid_zones"),
        "Normal\n"
    );
    assert_eq!(k.w(st, b"online_movable\0"), Err(EINVAL), "already online");
    assert_eq!(k.w(st, b"offline\n"), Ok(()));
    assert_eq!(k.read("devices/system/memory/memory64/online"), "0\n");
    assert_eq!(k.w("devices/system/memory/memory64/online", b"1\n"), Ok(()));
    assert_eq!(k.fake.block_state("memory64").as_deref(), Some("online"));
    k.fake.fail_offline("memory64", EBUSY).unwrap();
    assert_eq!(k.w(st, b"offline\0"), Err(EBUSY));
    assert_eq!(k.fake.block_state("memory64").as_deref(), Some("online"));
    // A block that does not exist.
    assert_eq!(
        k.w("devices/system/memory/memory9999/state", b"online\0"),
        Err(ENOENT)
    );
}

#[test]
fn kmem_unbind_with_online_memory_leaks_the_range() {
    let k = setup();
    k.fake.set_auto_online("online_movable").unwrap();
    assert_eq!(k.w("bus/dax/drivers/kmem/bind", b"dax1.0\0"), Ok(()));
    assert_eq!(
        k.w("bus/dax/drivers/kmem/unbind", b"dax1.0\0"),
        Ok(()),
        "cannot veto"
    );
    assert_eq!(k.drv("dax1.0"), None);
    assert!(k.fake.is_leaked("dax1.0").unwrap());
    assert_eq!(k.fake.blocks_of("dax1.0").unwrap().len(), 8);
    assert_eq!(
        k.w("bus/dax/drivers/device_dax/new_id", b"dax1.0\0"),
        Ok(())
    );
    assert_eq!(k.drv("dax1.0"), None, "probe failed inside new_id");
    assert_eq!(
        k.w("bus/dax/drivers/device_dax/bind", b"dax1.0\0"),
        Err(EBUSY)
    );
    assert_eq!(k.w("bus/dax/drivers/kmem/bind", b"dax1.0\0"), Err(EBUSY));
}

#[test]
fn attribute_writes_and_permissions() {
    let k = setup();
    let nv = "devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0012:00/ndbus0/region0/dax0.0/dax0.0";
    // Static region: size/align read-only even for root.
    assert_eq!(k.w(&format!("{nv}/size"), b"0x40000000\0"), Err(EACCES));
    assert_eq!(k.w(&format!("{nv}/align"), b"0x200000\0"), Err(EACCES));
    assert_eq!(k.w(&format!("{nv}/mapping"), b"0x1-0x2\0"), Err(ENOENT));
    // Bound device: EBUSY.
    assert_eq!(k.w("bus/dax/drivers/kmem/bind", b"dax1.0\0"), Ok(()));
    assert_eq!(
        k.w("devices/platform/hmem.1/dax1.0/size", b"0\0"),
        Err(EBUSY)
    );
    // Read-only attribute: EACCES; missing: ENOENT; plain writable file: written.
    assert_eq!(k.w(&format!("{nv}/resource"), b"0\0"), Err(EACCES));
    assert_eq!(k.w("devices/system/memory/nope", b"0\0"), Err(ENOENT));
    assert_eq!(
        k.w("devices/system/memory/auto_online_blocks", b"online\n"),
        Ok(())
    );
    assert_eq!(
        k.read("devices/system/memory/auto_online_blocks"),
        "online\n"
    );
    // Injected failure on any path (e.g. non-root).
    k.fake
        .fail_write("bus/dax/drivers/kmem/unbind", libc::EPERM)
        .unwrap();
    assert_eq!(
        k.w("bus/dax/drivers/kmem/unbind", b"dax1.0\0"),
        Err(libc::EPERM)
    );
    assert_eq!(k.drv("dax1.0").as_deref(), Some("kmem"));
}

#[test]
fn state_is_shared_through_the_tree() {
    let k = setup();
    assert_eq!(k.w("bus/dax/drivers/fsdev_dax/new_id", b"dax0.0\0"), Ok(()));
    // A second view (another process would do the same) sees the same machine.
    let s = crate::Sysfs::emulated(k.fake.sys_root()).unwrap();
    assert!(s.is_emulated());
    assert_eq!(
        s.device_by_name("dax0.0").unwrap().mode(),
        crate::DaxMode::Famfs
    );
    assert_eq!(k.fake.ids_of("fsdev_dax").unwrap(), ["dax0.0"]);
}

#[test]
fn only_the_emulated_constructor_emulates() {
    let k = setup();
    // The plain constructor is the real backend, whatever the tree holds.
    assert!(!crate::Sysfs::new(k.fake.sys_root()).is_emulated());
    assert!(
        crate::Sysfs::emulated(k.fake.sys_root())
            .unwrap()
            .is_emulated()
    );
    // A directory that holds no fake tree cannot be emulated.
    let plain = tempfile::tempdir().unwrap();
    assert!(crate::Sysfs::emulated(plain.path()).is_err());
}
