//! Builds a fake sysfs tree for manual runs and for comparing with the real daxctl
//! (`scripts/compare-with-daxctl.sh`).
//!
//! ```text
//! cargo run -p daxctl-famfs --features fake-sysfs --example make-fake-tree -- DIR
//! daxctl-famfs --sysfs-root DIR/sys --dev-root DIR/dev list -RDMi
//! daxctl-famfs --fake-sysfs --sysfs-root DIR/sys reconfigure-device ...  # built with fake-sysfs
//! ```
//!
//! Contents: an nvdimm region 0 (dax0.0, 15.6 GiB, devdax), an hmem region 1 of 4 GiB with
//! dax1.0 (2 GiB, system-ram, blocks online movable), dax1.1 (zero size) and dax1.2 (512 MiB,
//! unbound).

use daxctl_famfs::fake::{DeviceSpec, FakeSysfs, RegionSpec};

const GIB: u64 = 1 << 30;

fn main() -> std::io::Result<()> {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: make-fake-tree DIR   (DIR is replaced)");
        std::process::exit(2);
    };
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::create_dir_all(&dir)?;
    let fake = FakeSysfs::new(&dir)?;
    fake.set_auto_online("online_movable")?
        .add_region(&RegionSpec::nvdimm(0, 4 * GIB, 16 * GIB))?
        .add_device(&DeviceSpec::new("dax0.0", 15 * GIB + (630 << 20)).driver("device_dax"))?
        .add_region(&RegionSpec::hmem(1, 32 * GIB, 4 * GIB))?
        .add_device(
            &DeviceSpec::new("dax1.0", 2 * GIB)
                .target_node(Some(1))
                .driver("kmem"),
        )?
        .add_device(&DeviceSpec::new("dax1.1", 0).target_node(Some(1)))?
        .add_device(&DeviceSpec::new("dax1.2", 512 << 20).target_node(Some(1)))?
        .set_auto_online("offline")?;
    println!("{}", fake.sys_root().display());
    Ok(())
}
