//! Every transition and refusal of `reconfigure`, on the fake tree, with the exact write
//! sequence and errno.

use libc::{EACCES, EBUSY, EINVAL, ENODEV, ENXIO, EOPNOTSUPP, ETIMEDOUT};

use crate::fake::{DeviceSpec, FakeSysfs, RecordedWrite, RegionSpec};
use crate::{DaxMode, Error, MemoryOpOutcome, ReconfigureOptions, Sysfs};

const GIB: u64 = 1 << 30;
const NV_PARENT: &str = "devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0012:00/ndbus0/region0/dax0.0";
const HMEM_PARENT: &str = "devices/platform/hmem.1";

struct T {
    _dir: tempfile::TempDir,
    fake: FakeSysfs,
    sysfs: Sysfs,
}

/// nvdimm region 0 with dax0.0 (1 GiB at 4 GiB, node 0) bound to `driver`.
fn nvdimm(driver: Option<&str>) -> T {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeSysfs::new(dir.path()).unwrap();
    let mut spec = DeviceSpec::new("dax0.0", GIB);
    spec.driver = driver.map(str::to_string);
    fake.add_region(&RegionSpec::nvdimm(0, 4 * GIB, GIB))
        .unwrap()
        .add_device(&spec)
        .unwrap();
    let sysfs = fake.sysfs();
    T {
        _dir: dir,
        fake,
        sysfs,
    }
}

/// hmem (kmem-flagged) region 1 with dax1.0 (1 GiB at 8 GiB, node 1) bound to kmem, its 8
/// blocks (64..72) in the state `auto_online_blocks` gives them.
fn hmem_kmem(policy: &str) -> T {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeSysfs::new(dir.path()).unwrap();
    fake.set_auto_online(policy)
        .unwrap()
        .add_kmem_region(1, 8 * GIB, GIB, GIB)
        .unwrap();
    fake.clear_writes().unwrap();
    let sysfs = fake.sysfs();
    T {
        _dir: dir,
        fake,
        sysfs,
    }
}

impl T {
    fn dev(&self, name: &str) -> crate::DaxDev {
        self.sysfs.device_by_name(name).unwrap()
    }
    fn reconf(
        &self,
        name: &str,
        mode: DaxMode,
        opts: &ReconfigureOptions,
    ) -> crate::Result<crate::DaxDev> {
        self.sysfs.reconfigure(&self.dev(name), mode, opts)
    }
    fn writes(&self) -> Vec<(String, String)> {
        self.fake
            .writes()
            .unwrap()
            .into_iter()
            .map(|w| (w.path.clone(), w.value()))
            .collect()
    }
    fn raw_writes(&self) -> Vec<RecordedWrite> {
        self.fake.writes().unwrap()
    }
}

fn w(path: &str, value: &str) -> (String, String) {
    (path.to_string(), value.to_string())
}

fn def() -> ReconfigureOptions {
    ReconfigureOptions::default()
}

fn force() -> ReconfigureOptions {
    ReconfigureOptions {
        force: true,
        ..def()
    }
}

/// disable then enable, through the driver link then the driver directory (reference §2.2).
fn switch_seq(parent: &str, dev: &str, to: &str) -> Vec<(String, String)> {
    vec![
        w(&format!("{parent}/{dev}/driver/remove_id"), dev),
        w(&format!("{parent}/{dev}/driver/unbind"), dev),
        w(&format!("bus/dax/drivers/{to}/new_id"), dev),
        w(&format!("bus/dax/drivers/{to}/bind"), dev),
    ]
}

#[test]
fn devdax_to_famfs_makes_daxctls_writes_in_order() {
    let t = nvdimm(Some("device_dax"));
    let d = t.reconf("dax0.0", DaxMode::Famfs, &def()).unwrap();
    assert_eq!(d.mode(), DaxMode::Famfs);
    assert_eq!(t.writes(), switch_seq(NV_PARENT, "dax0.0", "fsdev_dax"));
    let raw = t.raw_writes();
    // Through the driver link the writes reach the current driver.
    assert_eq!(raw[0].target, "bus/dax/drivers/device_dax/remove_id");
    assert_eq!(raw[1].target, "bus/dax/drivers/device_dax/unbind");
    // libdaxctl writes the string plus its NUL.
    assert!(raw.iter().all(|w| w.data == b"dax0.0\0"));
    // new_id already bound the device, so the bind write fails with EBUSY (ignored, as daxctl).
    assert_eq!(raw[2].errno, None);
    assert_eq!(raw[3].errno, Some(EBUSY));
    assert_eq!(t.fake.ids_of("fsdev_dax").unwrap(), vec!["dax0.0"]);
    assert!(t.fake.ids_of("device_dax").unwrap().is_empty());
}

#[test]
fn famfs_to_devdax() {
    let t = nvdimm(Some("device_dax"));
    t.reconf("dax0.0", DaxMode::Famfs, &def()).unwrap();
    t.fake.clear_writes().unwrap();
    let d = t.reconf("dax0.0", DaxMode::Devdax, &def()).unwrap();
    assert_eq!(d.mode(), DaxMode::Devdax);
    assert_eq!(t.writes(), switch_seq(NV_PARENT, "dax0.0", "device_dax"));
    assert_eq!(
        t.raw_writes()[0].target,
        "bus/dax/drivers/fsdev_dax/remove_id"
    );
    // remove_id took the name off fsdev_dax's list: it will not grab the device again.
    assert!(t.fake.ids_of("fsdev_dax").unwrap().is_empty());
}

#[test]
fn same_mode_rebinds_like_v85() {
    let t = nvdimm(Some("device_dax"));
    let d = t.reconf("dax0.0", DaxMode::Devdax, &def()).unwrap();
    assert_eq!(d.mode(), DaxMode::Devdax);
    assert_eq!(t.writes(), switch_seq(NV_PARENT, "dax0.0", "device_dax"));
    t.reconf("dax0.0", DaxMode::Famfs, &def()).unwrap();
    t.fake.clear_writes().unwrap();
    let d = t.reconf("dax0.0", DaxMode::Famfs, &def()).unwrap();
    assert_eq!(d.mode(), DaxMode::Famfs);
    assert_eq!(t.writes(), switch_seq(NV_PARENT, "dax0.0", "fsdev_dax"));
}

#[test]
fn unbound_device_is_enabled_directly() {
    let t = nvdimm(None);
    assert_eq!(t.dev("dax0.0").mode(), DaxMode::Disabled);
    let d = t.reconf("dax0.0", DaxMode::Famfs, &def()).unwrap();
    assert_eq!(d.mode(), DaxMode::Famfs);
    assert_eq!(
        t.writes(),
        vec![
            w("bus/dax/drivers/fsdev_dax/new_id", "dax0.0"),
            w("bus/dax/drivers/fsdev_dax/bind", "dax0.0"),
        ]
    );
}

#[test]
fn system_ram_to_famfs_is_refused_without_writes() {
    let t = hmem_kmem("online_movable");
    let e = t.reconf("dax1.0", DaxMode::Famfs, &force()).unwrap_err();
    assert!(matches!(e, Error::SystemRamToFamfs { .. }), "{e}");
    assert_eq!(e.errno(), Some(EINVAL));
    assert_eq!(e.exit_code(), 234);
    assert!(e.to_string().contains("must be in devdax mode"), "{e}");
    assert!(t.writes().is_empty());
    assert_eq!(t.dev("dax1.0").mode(), DaxMode::SystemRam);
}

#[test]
fn system_ram_to_devdax_with_memory_online_is_ebusy_without_writes() {
    let t = hmem_kmem("online_movable");
    let e = t.reconf("dax1.0", DaxMode::Devdax, &def()).unwrap_err();
    assert!(matches!(e, Error::MemoryOnline { online: 8, .. }), "{e}");
    assert_eq!(e.errno(), Some(EBUSY));
    assert_eq!(e.exit_code(), 240);
    assert!(t.writes().is_empty());
    assert_eq!(t.dev("dax1.0").mode(), DaxMode::SystemRam);
}

#[test]
fn system_ram_to_devdax_forced_offlines_then_switches() {
    let t = hmem_kmem("online_movable");
    assert_eq!(t.fake.blocks_of("dax1.0").unwrap().len(), 8);
    let d = t.reconf("dax1.0", DaxMode::Devdax, &force()).unwrap();
    assert_eq!(d.mode(), DaxMode::Devdax);
    let mut expect: Vec<_> = (64..72)
        .map(|b| {
            w(
                &format!("devices/system/node/node1/memory{b}/state"),
                "offline",
            )
        })
        .collect();
    expect.extend(switch_seq(HMEM_PARENT, "dax1.0", "device_dax"));
    assert_eq!(t.writes(), expect);
    assert_eq!(
        t.raw_writes()[0].target,
        "devices/system/memory/memory64/state"
    );
    // All offline at unbind: kmem hot-removed the blocks, nothing leaked.
    assert!(t.fake.blocks_of("dax1.0").unwrap().is_empty());
    assert!(!t.fake.is_leaked("dax1.0").unwrap());
}

#[test]
fn system_ram_with_offline_memory_leaves_without_force() {
    let t = hmem_kmem("offline");
    let d = t.reconf("dax1.0", DaxMode::Devdax, &def()).unwrap();
    assert_eq!(d.mode(), DaxMode::Devdax);
    assert_eq!(t.writes(), switch_seq(HMEM_PARENT, "dax1.0", "device_dax"));
}

#[test]
fn forced_offline_of_unremovable_block_is_eopnotsupp() {
    let t = hmem_kmem("online_movable");
    t.fake.set_removable("memory66", false).unwrap();
    let e = t.reconf("dax1.0", DaxMode::Devdax, &force()).unwrap_err();
    assert!(
        matches!(&e, Error::Unremovable { block, .. } if block == "memory66"),
        "{e}"
    );
    assert_eq!(e.errno(), Some(EOPNOTSUPP));
    assert_eq!(e.exit_code(), 161);
    // memory64 and 65 were offlined before the unremovable one was found; nothing was unbound.
    let ws = t.writes();
    assert_eq!(ws.len(), 2);
    assert!(ws.iter().all(|(_, v)| v == "offline"));
    assert_eq!(t.dev("dax1.0").mode(), DaxMode::SystemRam);
}

#[test]
fn kernel_refusing_offline_returns_its_errno_and_names_the_file() {
    let t = hmem_kmem("online_movable");
    t.fake.fail_offline("memory65", EBUSY).unwrap();
    let e = t.reconf("dax1.0", DaxMode::Devdax, &force()).unwrap_err();
    assert_eq!(e.errno(), Some(EBUSY));
    assert!(
        e.to_string().contains("node1/memory65/state"),
        "message names the file: {e}"
    );
    assert_eq!(t.dev("dax1.0").mode(), DaxMode::SystemRam);
    assert_eq!(t.fake.block_state("memory65").as_deref(), Some("online"));
}

#[test]
fn devdax_to_system_ram_onlines_movable() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeSysfs::new(dir.path()).unwrap();
    fake.add_devdax_region(0, 4 * GIB, GIB).unwrap();
    let sysfs = fake.sysfs();
    let dev = sysfs.device_by_name("dax0.0").unwrap();
    let d = sysfs.reconfigure(&dev, DaxMode::SystemRam, &def()).unwrap();
    assert_eq!(d.mode(), DaxMode::SystemRam);
    let ws: Vec<_> = fake
        .writes()
        .unwrap()
        .into_iter()
        .map(|w| (w.path.clone(), w.value()))
        .collect();
    let mut expect = switch_seq(NV_PARENT, "dax0.0", "kmem");
    expect.extend((32..40).map(|b| {
        w(
            &format!("devices/system/node/node0/memory{b}/state"),
            "online_movable",
        )
    }));
    assert_eq!(ws, expect);
    let st = sysfs.memory_status(&d).unwrap();
    assert_eq!((st.online, st.total, st.movable), (8, 8, Some(true)));
}

#[test]
fn system_ram_no_movable_onlines_normal() {
    let t = nvdimm(Some("device_dax"));
    let opts = ReconfigureOptions {
        movable: false,
        ..def()
    };
    let d = t.reconf("dax0.0", DaxMode::SystemRam, &opts).unwrap();
    let st = t.sysfs.memory_status(&d).unwrap();
    assert_eq!((st.online, st.total, st.movable), (8, 8, Some(false)));
    assert!(t.writes().iter().skip(4).all(|(_, v)| v == "online"));
}

#[test]
fn system_ram_no_online_leaves_blocks_offline() {
    let t = nvdimm(Some("device_dax"));
    let opts = ReconfigureOptions {
        no_online: true,
        ..def()
    };
    let d = t.reconf("dax0.0", DaxMode::SystemRam, &opts).unwrap();
    assert_eq!(d.mode(), DaxMode::SystemRam);
    assert_eq!(t.writes(), switch_seq(NV_PARENT, "dax0.0", "kmem"));
    let st = t.sysfs.memory_status(&d).unwrap();
    assert_eq!((st.online, st.total, st.movable), (0, 8, None));
}

#[test]
fn auto_online_policy_refuses_system_ram_unless_forced() {
    let t = nvdimm(Some("device_dax"));
    t.fake.set_auto_online("online").unwrap();
    let e = t.reconf("dax0.0", DaxMode::SystemRam, &def()).unwrap_err();
    assert!(matches!(e, Error::AutoOnlinePolicy { .. }), "{e}");
    assert_eq!(e.errno(), Some(EBUSY));
    assert!(e.to_string().contains("auto_online_blocks"), "{e}");
    assert!(t.writes().is_empty());
    // -N is checked too.
    let no_online = ReconfigureOptions {
        no_online: true,
        ..def()
    };
    let e = t
        .reconf("dax0.0", DaxMode::SystemRam, &no_online)
        .unwrap_err();
    assert_eq!(e.errno(), Some(EBUSY));
    // --no-movable without -N skips the check (daxctl); the kernel onlines the blocks itself
    // (Normal zone), so there is nothing left to online.
    let normal = ReconfigureOptions {
        movable: false,
        ..def()
    };
    let d = t.reconf("dax0.0", DaxMode::SystemRam, &normal).unwrap();
    let st = t.sysfs.memory_status(&d).unwrap();
    assert_eq!((st.online, st.total), (8, 8));
}

#[test]
fn auto_online_policy_is_overridden_by_force() {
    let t = nvdimm(Some("device_dax"));
    t.fake.set_auto_online("online").unwrap();
    // The kernel onlines the blocks (zone Normal) as kmem binds; nothing is left to online, so
    // daxctl's "all memory sections already online" is not an error. list shows movable:false.
    let d = t.reconf("dax0.0", DaxMode::SystemRam, &force()).unwrap();
    assert_eq!(d.mode(), DaxMode::SystemRam);
    assert_eq!(t.writes(), switch_seq(NV_PARENT, "dax0.0", "kmem"));
    let st = t.sysfs.memory_status(&d).unwrap();
    assert_eq!((st.online, st.total, st.movable), (8, 8, Some(false)));
}

#[test]
fn zone_race_while_onlining_is_ebusy() {
    let t = nvdimm(Some("device_dax"));
    t.fake.force_online_zone("memory35", "Normal").unwrap();
    let e = t.reconf("dax0.0", DaxMode::SystemRam, &def()).unwrap_err();
    assert!(
        matches!(&e, Error::ZoneRace { block, .. } if block == "memory35"),
        "{e}"
    );
    assert_eq!(e.errno(), Some(EBUSY));
    assert!(e.to_string().contains("race"), "{e}");
}

#[test]
fn system_ram_to_system_ram_only_onlines_what_is_offline() {
    let t = hmem_kmem("online_movable");
    // The policy check comes first, whatever the current mode (daxctl).
    let e = t.reconf("dax1.0", DaxMode::SystemRam, &def()).unwrap_err();
    assert_eq!(e.errno(), Some(EBUSY));
    let d = t.reconf("dax1.0", DaxMode::SystemRam, &force()).unwrap();
    assert_eq!(d.mode(), DaxMode::SystemRam);
    assert!(t.writes().is_empty(), "all online: nothing to write");
    let t = hmem_kmem("offline");
    t.reconf("dax1.0", DaxMode::SystemRam, &def()).unwrap();
    let ws = t.writes();
    assert_eq!(ws.len(), 8);
    assert!(
        ws.iter().all(
            |(p, v)| p.starts_with("devices/system/node/node1/memory") && v == "online_movable"
        )
    );
}

#[test]
fn kmem_probe_without_target_node_fails_with_einval() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeSysfs::new(dir.path()).unwrap();
    fake.add_region(&RegionSpec::nvdimm(0, 4 * GIB, GIB))
        .unwrap()
        .add_device(
            &DeviceSpec::new("dax0.0", GIB)
                .target_node(None)
                .driver("device_dax"),
        )
        .unwrap();
    let sysfs = fake.sysfs();
    let dev = sysfs.device_by_name("dax0.0").unwrap();
    assert_eq!(dev.target_node, None);
    let e = sysfs
        .reconfigure(&dev, DaxMode::SystemRam, &def())
        .unwrap_err();
    assert!(matches!(e, Error::EnableFailed { .. }), "{e}");
    assert_eq!(e.errno(), Some(EINVAL));
    assert!(e.to_string().contains("bus/dax/drivers/kmem/bind"), "{e}");
}

#[test]
fn leaked_kmem_range_makes_later_binds_fail_with_ebusy() {
    let t = hmem_kmem("online_movable");
    // Something unbinds kmem while memory is online (daxctl would have refused).
    let dev = t.dev("dax1.0");
    t.sysfs
        .write_attr(&dev.path.join("driver/unbind"), "dax1.0")
        .unwrap();
    assert!(t.fake.is_leaked("dax1.0").unwrap());
    assert_eq!(t.fake.blocks_of("dax1.0").unwrap().len(), 8, "blocks stay");
    assert_eq!(t.dev("dax1.0").mode(), DaxMode::Disabled);
    let e = t.reconf("dax1.0", DaxMode::Devdax, &def()).unwrap_err();
    assert!(matches!(e, Error::EnableFailed { .. }), "{e}");
    assert_eq!(e.errno(), Some(EBUSY));
    let e = t.reconf("dax1.0", DaxMode::Famfs, &def()).unwrap_err();
    assert_eq!(e.errno(), Some(EBUSY));
}

#[test]
fn non_root_unbind_surfaces_eacces_with_the_file() {
    let t = nvdimm(Some("device_dax"));
    t.fake
        .fail_write("bus/dax/drivers/device_dax/remove_id", EACCES)
        .unwrap();
    let e = t.reconf("dax0.0", DaxMode::Famfs, &def()).unwrap_err();
    assert!(matches!(e, Error::DisableFailed { .. }), "{e}");
    assert_eq!(e.errno(), Some(EACCES));
    assert!(e.to_string().contains("driver/remove_id"), "{e}");
    // remove_id failed, so unbind was not attempted (daxctl).
    assert_eq!(t.writes().len(), 1);
    assert_eq!(t.dev("dax0.0").mode(), DaxMode::Devdax);
}

#[test]
fn unbind_that_does_not_take_is_ebusy() {
    let t = nvdimm(Some("device_dax"));
    // The unbind write "succeeds" but the device stays bound: daxctl's EBUSY.
    t.fake
        .ignore_write("bus/dax/drivers/device_dax/unbind")
        .unwrap();
    let e = t.reconf("dax0.0", DaxMode::Famfs, &def()).unwrap_err();
    assert!(matches!(e, Error::DisableFailed { cause: None, .. }), "{e}");
    assert_eq!(e.errno(), Some(EBUSY));
    assert_eq!(t.dev("dax0.0").mode(), DaxMode::Devdax);
}

#[test]
fn missing_driver_is_enxio_and_leaves_the_device_alone() {
    let t = nvdimm(Some("device_dax"));
    t.fake.remove_driver("fsdev_dax").unwrap();
    let e = t.reconf("dax0.0", DaxMode::Famfs, &def()).unwrap_err();
    assert!(matches!(e, Error::DriverMissing { .. }), "{e}");
    assert_eq!(e.errno(), Some(ENXIO));
    assert_eq!(e.exit_code(), 250);
    assert!(t.writes().is_empty());
    assert_eq!(t.dev("dax0.0").mode(), DaxMode::Devdax);
}

#[test]
fn enable_primitive_without_driver_is_enxio() {
    let t = nvdimm(None);
    t.fake.remove_driver("fsdev_dax").unwrap();
    let e = t
        .sysfs
        .enable(&t.dev("dax0.0"), DaxMode::Famfs)
        .unwrap_err();
    assert_eq!(e.errno(), Some(ENXIO));
}

#[test]
fn probe_failure_is_returned_through_bind() {
    let t = nvdimm(Some("device_dax"));
    t.fake.fail_probe("dax0.0", "fsdev_dax", EBUSY).unwrap();
    let e = t.reconf("dax0.0", DaxMode::Famfs, &def()).unwrap_err();
    assert!(matches!(e, Error::EnableFailed { .. }), "{e}");
    assert_eq!(e.errno(), Some(EBUSY));
    // new_id's attach swallowed the probe error; the bind write returned it.
    let raw = t.raw_writes();
    assert_eq!(raw[2].errno, None);
    assert_eq!(raw[3].errno, Some(EBUSY));
    assert_eq!(t.dev("dax0.0").mode(), DaxMode::Disabled);
}

#[test]
fn unknown_driver_is_einval() {
    let t = nvdimm(None);
    for f in ["bind", "unbind", "new_id", "remove_id"] {
        std::fs::create_dir_all(t.fake.sys_root().join("bus/dax/drivers/foo")).unwrap();
        std::fs::write(t.fake.sys_root().join("bus/dax/drivers/foo").join(f), "").unwrap();
    }
    std::os::unix::fs::symlink(
        t.fake.sys_root().join("bus/dax/drivers/foo"),
        t.dev("dax0.0").path.join("driver"),
    )
    .unwrap();
    assert_eq!(t.dev("dax0.0").mode(), DaxMode::Unknown("foo".into()));
    for m in [DaxMode::Devdax, DaxMode::Famfs, DaxMode::SystemRam] {
        let e = t.reconf("dax0.0", m, &def()).unwrap_err();
        assert!(matches!(e, Error::UnknownMode { .. }), "{e}");
        assert_eq!(e.errno(), Some(EINVAL));
    }
    assert!(t.writes().is_empty());
}

#[test]
fn dax_class_model_is_eopnotsupp() {
    let t = nvdimm(Some("device_dax"));
    let d = t.dev("dax0.0");
    std::fs::remove_file(t.fake.sys_root().join(format!("dev/char/{}", d.devnum()))).unwrap();
    let e = t.reconf("dax0.0", DaxMode::Famfs, &def()).unwrap_err();
    assert!(matches!(e, Error::DaxClassModel { .. }), "{e}");
    assert_eq!(e.errno(), Some(EOPNOTSUPP));
    assert!(t.writes().is_empty());
}

#[test]
fn unknown_device_is_enodev() {
    let t = nvdimm(Some("device_dax"));
    let e = t.sysfs.device_by_name("dax3.0").unwrap_err();
    assert_eq!(e.errno(), Some(ENODEV));
    assert_eq!(e.exit_code(), 237);
}

#[test]
fn requesting_disabled_mode_is_einval() {
    let t = nvdimm(Some("device_dax"));
    let e = t.reconf("dax0.0", DaxMode::Disabled, &def()).unwrap_err();
    assert_eq!(e.errno(), Some(EINVAL));
}

#[test]
fn memory_ops_need_system_ram_and_a_node() {
    let t = nvdimm(Some("device_dax"));
    let e = t.sysfs.online_memory(&t.dev("dax0.0"), true).unwrap_err();
    assert!(matches!(e, Error::NotSystemRam { .. }), "{e}");
    assert_eq!(e.errno(), Some(ENXIO));
    let t = hmem_kmem("offline");
    let mut d = t.dev("dax1.0");
    d.target_node = None;
    assert_eq!(t.sysfs.memory_blocks(&d).unwrap_err().errno(), Some(ENXIO));
    let mut d = t.dev("dax1.0");
    d.resource = 0;
    assert_eq!(t.sysfs.memory_blocks(&d).unwrap_err().errno(), Some(EACCES));
    let d = t.dev("dax1.0");
    assert_eq!(
        t.sysfs.offline_memory(&d).unwrap(),
        MemoryOpOutcome::AlreadyDone { total: 8 }
    );
    assert_eq!(
        t.sysfs.online_memory(&d, false).unwrap(),
        MemoryOpOutcome::Changed {
            changed: 8,
            total: 8
        }
    );
    t.fake.set_block_size(0).unwrap();
    assert_eq!(t.sysfs.memory_blocks(&d).unwrap_err().errno(), Some(ENXIO));
}

#[test]
fn partially_online_memory_is_completed_with_a_warning() {
    let t = hmem_kmem("offline");
    // Someone onlined two blocks already.
    for b in ["memory64", "memory65"] {
        t.sysfs
            .write_attr(
                &t.fake
                    .sys_root()
                    .join(format!("devices/system/memory/{b}/state")),
                "online_movable",
            )
            .unwrap();
    }
    t.fake.clear_writes().unwrap();
    let out = t.sysfs.online_memory(&t.dev("dax1.0"), true).unwrap();
    assert_eq!(
        out,
        MemoryOpOutcome::Changed {
            changed: 6,
            total: 8
        }
    );
    assert_eq!(t.writes().len(), 6);
}

#[test]
fn chardev_wait_times_out_with_etimedout() {
    let t = nvdimm(Some("device_dax"));
    let d = t.dev("dax0.0");
    std::fs::remove_file(&d.chardev).unwrap();
    let s = t
        .sysfs
        .clone()
        .with_chardev_timeout(std::time::Duration::from_millis(50));
    let e = s.wait_for_chardev(&d).unwrap_err();
    assert_eq!(e.errno(), Some(ETIMEDOUT));
    assert!(e.to_string().contains("dax0.0"), "{e}");
}

#[test]
fn famfs_to_system_ram_is_allowed_directly() {
    let t = nvdimm(Some("device_dax"));
    t.reconf("dax0.0", DaxMode::Famfs, &def()).unwrap();
    t.fake.clear_writes().unwrap();
    let d = t.reconf("dax0.0", DaxMode::SystemRam, &def()).unwrap();
    assert_eq!(d.mode(), DaxMode::SystemRam);
    let ws = t.writes();
    assert_eq!(ws[..4], switch_seq(NV_PARENT, "dax0.0", "kmem")[..]);
    assert_eq!(
        t.raw_writes()[0].target,
        "bus/dax/drivers/fsdev_dax/remove_id"
    );
    assert_eq!(ws.len(), 4 + 8);
}

#[test]
fn unbound_device_to_system_ram_and_devdax() {
    let t = nvdimm(None);
    let d = t.reconf("dax0.0", DaxMode::SystemRam, &def()).unwrap();
    assert_eq!(d.mode(), DaxMode::SystemRam);
    assert_eq!(
        t.writes()[..2],
        [
            w("bus/dax/drivers/kmem/new_id", "dax0.0"),
            w("bus/dax/drivers/kmem/bind", "dax0.0"),
        ]
    );
    let t = nvdimm(None);
    let d = t.reconf("dax0.0", DaxMode::Devdax, &def()).unwrap();
    assert_eq!(d.mode(), DaxMode::Devdax);
    assert_eq!(
        t.writes(),
        [
            w("bus/dax/drivers/device_dax/new_id", "dax0.0"),
            w("bus/dax/drivers/device_dax/bind", "dax0.0"),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// A device in use (mounted, open, mapped) is never switched.

/// dax0.0 bound to `driver`, seen through a fake /proc (returned with the tree).
fn nvdimm_with_proc(driver: &str) -> (T, crate::fake::FakeProc) {
    let mut t = nvdimm(Some(driver));
    let proc = crate::fake::FakeProc::new(t._dir.path().join("proc")).unwrap();
    t.sysfs = t.sysfs.clone().with_procfs(proc.procfs());
    t.fake.clear_writes().unwrap();
    (t, proc)
}

fn expect_busy(t: &T, mode: DaxMode, opts: &ReconfigureOptions, driver: &str) -> String {
    let e = t.reconf("dax0.0", mode, opts).unwrap_err();
    assert!(matches!(e, Error::DeviceBusy { .. }), "{e:?}");
    assert_eq!((e.errno(), e.exit_code()), (Some(EBUSY), 240));
    assert!(
        t.writes().is_empty(),
        "refused before any write: {:?}",
        t.writes()
    );
    assert_eq!(t.fake.driver_of("dax0.0").unwrap().as_deref(), Some(driver));
    e.to_string()
}

#[test]
fn a_device_open_by_a_process_is_not_switched() {
    let (t, proc) = nvdimm_with_proc("device_dax");
    let node = t.fake.stand_in("dax0.0");
    proc.open_fd(4242, "famfs_fused", 9, &node).unwrap();
    let msg = expect_busy(&t, DaxMode::Famfs, &def(), "device_dax");
    assert!(msg.contains("famfs_fused (pid 4242: fd 9)"), "{msg}");
    assert!(msg.contains(&node.display().to_string()), "{msg}");
    // -f is no override; nor is a re-bind in the same mode, or going to system-ram.
    expect_busy(&t, DaxMode::Famfs, &force(), "device_dax");
    expect_busy(&t, DaxMode::Devdax, &force(), "device_dax");
    expect_busy(&t, DaxMode::SystemRam, &force(), "device_dax");
    // Nor is the `disable` primitive.
    assert_eq!(
        t.sysfs.disable(&t.dev("dax0.0")).unwrap_err().errno(),
        Some(EBUSY)
    );
    // Once the process is gone, the switch works.
    proc.exit(4242).unwrap();
    let d = t.reconf("dax0.0", DaxMode::Famfs, &def()).unwrap();
    assert_eq!(d.mode(), DaxMode::Famfs);
    assert_eq!(t.writes(), switch_seq(NV_PARENT, "dax0.0", "fsdev_dax"));
}

#[test]
fn a_mapped_device_is_not_switched_from_famfs_mode_either() {
    let (t, proc) = nvdimm_with_proc("fsdev_dax");
    let node = t.fake.stand_in("dax0.0");
    proc.map(77, "daxmm", 0x7f00_0000_0000, &node, "/dev/dax0.0")
        .unwrap();
    let msg = expect_busy(&t, DaxMode::Devdax, &def(), "fsdev_dax");
    assert!(msg.contains("daxmm (pid 77: mapped)"), "{msg}");
    assert!(msg.contains("Stop those processes"), "{msg}");
}

#[test]
fn a_mounted_device_is_not_switched_and_the_mount_point_is_named() {
    let (t, proc) = nvdimm_with_proc("device_dax");
    let node = t.fake.stand_in("dax0.0");
    let mpt = t._dir.path().join("mnt");
    std::fs::create_dir(&mpt).unwrap();
    proc.mount(&node, &mpt, "fuse.famfs").unwrap();
    proc.map(500, "famfs_fused", 0x7f00_0000_0000, &node, "/dev/dax0.0")
        .unwrap();
    let msg = expect_busy(&t, DaxMode::Famfs, &def(), "device_dax");
    assert!(
        msg.contains(&format!("mounted on {} (famfs)", mpt.display())),
        "{msg}"
    );
    assert!(msg.contains("famfs_fused (pid 500: mapped)"), "{msg}");
    assert!(
        msg.contains(&format!("famfs umount {}", mpt.display())),
        "{msg}"
    );
    // A mount whose daemon is gone still counts: unmount it first.
    proc.exit(500).unwrap();
    expect_busy(&t, DaxMode::Famfs, &def(), "device_dax");
    proc.clear_mounts().unwrap();
    t.reconf("dax0.0", DaxMode::Famfs, &def()).unwrap();
}

#[test]
fn users_do_not_matter_without_a_char_device() {
    // Unbound or system-ram: no /dev/daxX.Y of a dax driver to pull away from anyone.
    let (t, proc) = nvdimm_with_proc("device_dax");
    t.sysfs.disable(&t.dev("dax0.0")).unwrap();
    proc.open_fd(1, "stale", 3, &t.fake.stand_in("dax0.0"))
        .unwrap();
    assert_eq!(
        t.reconf("dax0.0", DaxMode::Devdax, &def()).unwrap().mode(),
        DaxMode::Devdax
    );
}

#[test]
fn this_process_holding_the_device_is_refused_with_its_own_pid() {
    // The real /proc (the default): what catches one of our own tools leaving the device open
    // or mapped before a switch.
    let t = nvdimm(Some("device_dax"));
    t.fake.clear_writes().unwrap();
    let f = std::fs::File::open(t.fake.stand_in("dax0.0")).unwrap();
    let msg = expect_busy(&t, DaxMode::Famfs, &def(), "device_dax");
    assert!(
        msg.contains(&format!("(pid {}: fd ", std::process::id())),
        "{msg}"
    );
    drop(f);
    assert_eq!(
        t.reconf("dax0.0", DaxMode::Famfs, &def()).unwrap().mode(),
        DaxMode::Famfs
    );
}
