//! Enumeration and `list` JSON on the fake tree.

use crate::fake::{DeviceSpec, FakeSysfs, RegionSpec};
use crate::json::{ListOptions, list};
use crate::{DaxMode, Mapping, Sysfs};

const GIB: u64 = 1 << 30;

/// nvdimm region 0 (dax0.0, devdax) and hmem region 1 (2 GiB: dax1.0 system-ram with online
/// movable blocks, dax1.1 zero-size unbound).
fn two_regions() -> (tempfile::TempDir, FakeSysfs, Sysfs) {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeSysfs::two_regions(dir.path(), 2 * GIB).unwrap();
    fake.add_device(&DeviceSpec::new("dax1.1", 0).target_node(Some(1)))
        .unwrap();
    let s = fake.sysfs();
    (dir, fake, s)
}

fn opts() -> ListOptions {
    ListOptions {
        sorted: true,
        ..ListOptions::default()
    }
}

#[test]
fn enumerates_regions_and_devices() {
    let (_d, fake, s) = two_regions();
    let regions = s.list_sorted().unwrap();
    assert_eq!(regions.len(), 2);
    let r0 = &regions[0];
    assert_eq!(r0.id, 0);
    assert_eq!(
        (r0.size, r0.align, r0.available_size),
        (Some(GIB), Some(2 << 20), 0)
    );
    assert_eq!(r0.devices.len(), 1);
    let d = &r0.devices[0];
    assert_eq!(d.name, "dax0.0");
    assert_eq!((d.region_id, d.instance), (0, 0));
    assert_eq!((d.size, d.align, d.target_node), (GIB, 2 << 20, Some(0)));
    assert_eq!(d.resource, 4 * GIB);
    assert_eq!((d.major, d.minor), (252, 0));
    assert_eq!(
        d.chardev,
        fake.dev_root().canonicalize().unwrap().join("dax0.0")
    );
    assert_eq!(d.driver.as_deref(), Some("device_dax"));
    assert_eq!(d.mode(), DaxMode::Devdax);
    assert_eq!(
        d.mappings,
        vec![Mapping {
            page_offset: 0,
            start: 4 * GIB,
            end: 5 * GIB - 1
        }]
    );
    assert_eq!(d.mappings[0].size(), GIB);
    let r1 = &regions[1];
    assert_eq!(r1.available_size, GIB);
    let names: Vec<_> = r1.devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["dax1.0", "dax1.1"]);
    assert_eq!(r1.devices[0].mode(), DaxMode::SystemRam);
    assert_eq!(r1.devices[1].mode(), DaxMode::Disabled);
    assert!(r1.devices[1].mappings.is_empty());
    assert_eq!(s.devices().unwrap().len(), 3);
    assert_eq!(s.device_by_name("1.0").unwrap().name, "dax1.0");
    assert_eq!(s.device_by_name("/dev/dax1.1").unwrap().name, "dax1.1");
    assert!(s.find_device("dax9.9").unwrap().is_none());
    assert!(s.find_device("all").unwrap().is_none());
}

#[test]
fn list_follows_daxctls_reverse_directory_order() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeSysfs::new(dir.path()).unwrap();
    fake.add_region(&RegionSpec::hmem(3, 4 * GIB, 8 * GIB))
        .unwrap();
    for i in 0..6 {
        fake.add_device(&DeviceSpec::new(&format!("dax3.{i}"), GIB))
            .unwrap();
    }
    fake.add_region(&RegionSpec::nvdimm(0, 64 * GIB, GIB))
        .unwrap()
        .add_device(&DeviceSpec::new("dax0.0", GIB))
        .unwrap()
        .add_region(&RegionSpec::hmem(7, 80 * GIB, GIB))
        .unwrap()
        .add_device(&DeviceSpec::new("dax7.0", GIB))
        .unwrap();
    let s = fake.sysfs();
    let readdir = |p: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    // Regions: reverse order of first appearance on the bus.
    let mut first_seen: Vec<u32> = Vec::new();
    for n in readdir(&fake.sys_root().join("bus/dax/devices")) {
        let (r, _) = crate::parse::parse_dax_name(&n).unwrap();
        if !first_seen.contains(&r) {
            first_seen.push(r);
        }
    }
    first_seen.reverse();
    let regions = s.list().unwrap();
    assert_eq!(regions.iter().map(|r| r.id).collect::<Vec<_>>(), first_seen);
    // Devices: reverse order of the region directory.
    let r3 = regions.iter().find(|r| r.id == 3).unwrap();
    let mut expect: Vec<String> = readdir(&r3.path)
        .into_iter()
        .filter(|n| n.starts_with("dax3."))
        .collect();
    expect.reverse();
    let got: Vec<String> = r3.devices.iter().map(|d| d.name.clone()).collect();
    assert_eq!(got, expect);
    let sorted = s.list_sorted().unwrap();
    assert_eq!(sorted.iter().map(|r| r.id).collect::<Vec<_>>(), [0, 3, 7]);
    let names: Vec<_> = sorted[1].devices.iter().map(|d| d.instance).collect();
    assert_eq!(names, [0, 1, 2, 3, 4, 5]);
}

#[test]
fn missing_optional_attributes_and_missing_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeSysfs::new(dir.path()).unwrap();
    fake.add_region(&RegionSpec::nvdimm(0, 4 * GIB, 2 * GIB))
        .unwrap()
        .add_device(
            &DeviceSpec::new("dax0.0", GIB)
                .align(None)
                .target_node(None)
                .driver("device_dax"),
        )
        .unwrap()
        .add_device(&DeviceSpec::new("dax0.1", GIB).driver("device_dax"))
        .unwrap();
    // daxctl skips a device whose /dev node is missing.
    std::fs::remove_file(fake.dev_root().join("dax0.1")).unwrap();
    let s = fake.sysfs();
    let devs = s.devices().unwrap();
    assert_eq!(devs.len(), 1);
    assert_eq!((devs[0].align, devs[0].target_node), (0, None));
    let out = list(&s, &opts()).unwrap();
    assert_eq!(
        out.text,
        "[\n  {\n    \"chardev\":\"dax0.0\",\n    \"size\":1073741824,\n    \"mode\":\"devdax\"\n  }\n]\n"
    );
}

#[test]
fn no_dax_bus_lists_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Sysfs::new(dir.path());
    assert!(s.list().unwrap().is_empty());
    assert_eq!(list(&s, &opts()).unwrap().text, "");
}

#[test]
fn list_default_is_devices_without_idle() {
    let (_d, _f, s) = two_regions();
    let out = list(&s, &opts()).unwrap();
    let expect = r#"[
  {
    "chardev":"dax0.0",
    "size":1073741824,
    "target_node":0,
    "align":2097152,
    "mode":"devdax"
  },
  {
    "chardev":"dax1.0",
    "size":1073741824,
    "target_node":1,
    "align":2097152,
    "mode":"system-ram",
    "online_memblocks":8,
    "total_memblocks":8,
    "movable":true
  }
]
"#;
    assert_eq!(out.text, expect);
    assert!(out.dropped.is_empty());
}

#[test]
fn list_idle_shows_disabled_zero_size_device() {
    let (_d, _f, s) = two_regions();
    let o = ListOptions {
        dev: Some("dax1.1".into()),
        idle: true,
        ..opts()
    };
    let expect = r#"[
  {
    "chardev":"dax1.1",
    "size":0,
    "target_node":1,
    "align":2097152,
    "mode":"devdax",
    "state":"disabled"
  }
]
"#;
    assert_eq!(list(&s, &o).unwrap().text, expect);
    let o = ListOptions {
        dev: Some("dax1.1".into()),
        ..opts()
    };
    assert_eq!(list(&s, &o).unwrap().text, "", "zero-size needs -i");
}

#[test]
fn list_human_single_device_is_a_bare_object() {
    let (_d, _f, s) = two_regions();
    let o = ListOptions {
        dev: Some("0.0".into()),
        human: true,
        ..opts()
    };
    let expect = r#"{
  "chardev":"dax0.0",
  "size":"1024.00 MiB (1073.74 MB)",
  "target_node":0,
  "align":2097152,
  "mode":"devdax"
}
"#;
    assert_eq!(list(&s, &o).unwrap().text, expect);
}

#[test]
fn list_regions_with_devices_and_mappings() {
    let (_d, _f, s) = two_regions();
    let o = ListOptions {
        region: Some("0".into()),
        regions: true,
        devices: true,
        mappings: true,
        ..opts()
    };
    let expect = r#"[
  {
    "path":"\/LNXSYSTM:00\/LNXSYBUS:00\/ACPI0012:00\/ndbus0\/region0\/dax0.0",
    "id":0,
    "size":1073741824,
    "align":2097152,
    "devices":[
      {
        "chardev":"dax0.0",
        "size":1073741824,
        "target_node":0,
        "align":2097152,
        "mode":"devdax",
        "mappings":[
          {
            "page_offset":0,
            "start":4294967296,
            "end":5368709119,
            "size":1073741824
          }
        ]
      }
    ]
  }
]
"#;
    assert_eq!(list(&s, &o).unwrap().text, expect);
}

#[test]
fn list_region_filter_alone_lists_regions_only() {
    let (_d, _f, s) = two_regions();
    let o = ListOptions {
        region: Some("region1".into()),
        human: true,
        ..opts()
    };
    let expect = r#"{
  "path":"\/platform\/hmem.1",
  "id":1,
  "size":"2.00 GiB (2.15 GB)",
  "available_size":"1024.00 MiB (1073.74 MB)",
  "align":2097152
}
"#;
    assert_eq!(list(&s, &o).unwrap().text, expect);
}

#[test]
fn list_human_mappings_are_hex_strings() {
    let (_d, _f, s) = two_regions();
    let o = ListOptions {
        dev: Some("dax1.0".into()),
        mappings: true,
        human: true,
        ..opts()
    };
    let text = list(&s, &o).unwrap().text;
    assert!(text.contains("\"page_offset\":\"0\""), "{text}");
    assert!(text.contains("\"start\":\"0x200000000\""), "{text}");
    assert!(text.contains("\"end\":\"0x23fffffff\""), "{text}");
}

#[test]
fn list_famfs_and_partially_online_system_ram() {
    let (_d, fake, s) = two_regions();
    let d = s.device_by_name("dax0.0").unwrap();
    s.reconfigure(&d, DaxMode::Famfs, &Default::default())
        .unwrap();
    // Offline one block behind daxctl's back: movable becomes undeterminable and is omitted.
    s.write_attr(
        &fake
            .sys_root()
            .join("devices/system/node/node1/memory64/state"),
        "offline",
    )
    .unwrap();
    let text = list(&s, &opts()).unwrap().text;
    assert!(text.contains("\"mode\":\"famfs\""), "{text}");
    assert!(
        text.contains("\"online_memblocks\":7,\n    \"total_memblocks\":8\n"),
        "{text}"
    );
    assert!(!text.contains("movable"), "{text}");
}

#[test]
fn region_outside_sys_devices_is_dropped() {
    let (_d, fake, s) = two_regions();
    // Move region 0's device link target outside /sys/devices.
    let sys = fake.sys_root();
    let src = sys.join("devices/LNXSYSTM:00");
    let dst = sys.join("elsewhere");
    std::fs::rename(&src, &dst).unwrap();
    let link = sys.join("bus/dax/devices/dax0.0");
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(
        dst.join("LNXSYBUS:00/ACPI0012:00/ndbus0/region0/dax0.0/dax0.0"),
        &link,
    )
    .unwrap();
    let o = ListOptions {
        regions: true,
        ..opts()
    };
    let out = list(&s, &o).unwrap();
    assert_eq!(out.dropped.len(), 1);
    assert!(out.text.contains("hmem.1"));
}

#[test]
fn device_for_chardev_maps_stand_ins_and_rejects_others() {
    let (_d, fake, s) = two_regions();
    // The fake's stand-in node maps to its device.
    let d = s
        .device_for_chardev(&fake.dev_root().join("dax0.0"))
        .unwrap()
        .unwrap();
    assert_eq!(d.name, "dax0.0");
    // A plain file elsewhere is no dax device.
    let f = fake.root().join("image");
    std::fs::write(&f, b"x").unwrap();
    assert!(s.device_for_chardev(&f).unwrap().is_none());
    // On a real (non-emulated) view a regular file is never a dax device.
    let real = Sysfs::with_backend(
        fake.sys_root(),
        fake.dev_root(),
        std::sync::Arc::new(crate::RealBackend),
    );
    assert!(
        real.device_for_chardev(&fake.dev_root().join("dax0.0"))
            .unwrap()
            .is_none()
    );
    // A character device that is not dax is an error, and so is a missing path.
    let e = s
        .device_for_chardev(std::path::Path::new("/dev/null"))
        .unwrap_err();
    assert_eq!(e.errno(), Some(libc::EINVAL));
    let e = s.device_for_chardev(&fake.root().join("nope")).unwrap_err();
    assert_eq!(e.errno(), Some(libc::ENOENT));
    assert!(e.to_string().contains("nope"));
}

mod garbage {
    //! Arbitrary attribute contents never make enumeration, list or mode checks panic.
    use super::*;
    use proptest::prelude::*;

    const FILES: &[&str] = &[
        "size",
        "align",
        "target_node",
        "resource",
        "dev",
        "mapping0/start",
        "mapping0/end",
        "mapping0/page_offset",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn garbage_attributes_do_not_panic(
            values in proptest::collection::vec(
                prop_oneof![".{0,24}", "[0-9a-fx:-]{0,20}", Just("18446744073709551615".to_string())],
                FILES.len() + 3,
            )
        ) {
            let (_d, fake, s) = two_regions();
            let sys = fake.sys_root();
            let dev = std::fs::canonicalize(sys.join("bus/dax/devices/dax1.0")).unwrap();
            for (f, v) in FILES.iter().zip(&values) {
                let p = dev.join(f);
                let _ = std::fs::remove_file(&p);
                std::fs::write(&p, v).unwrap();
            }
            let mem = sys.join("devices/system/memory");
            std::fs::write(mem.join("block_size_bytes"), &values[FILES.len()]).unwrap();
            std::fs::write(mem.join("memory64/phys_index"), &values[FILES.len() + 1]).unwrap();
            std::fs::write(mem.join("memory65/state"), &values[FILES.len() + 2]).unwrap();
            let _ = s.list();
            for o in [opts(), ListOptions { regions: true, devices: true, mappings: true, human: true, ..opts() }] {
                let _ = list(&s, &o);
            }
            if let Ok(Some(d)) = s.find_device("dax1.0") {
                let _ = s.memory_status(&d);
            }
            let _ = s.check_or_set_mode(&fake.dev_root().join("dax1.0"), DaxMode::Famfs, false);
        }
    }
}
