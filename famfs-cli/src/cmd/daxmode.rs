//! `famfs daxmode DEV [-m MODE]`: show or switch the mode of a dax device.

use anyhow::Result;
use daxctl_famfs::DaxMode;

use crate::cli::DaxmodeArgs;
use crate::error::fail;

/// `famfs daxmode DEV [-m MODE]`.
pub fn daxmode(a: DaxmodeArgs) -> Result<i32> {
    match &a.mode {
        None => {
            let sysfs = daxctl_famfs::Sysfs::from_env();
            match sysfs.device_for_chardev(&a.dev) {
                Ok(Some(d)) => println!(
                    "{}: {} mode (driver {})",
                    d.name,
                    d.mode(),
                    d.driver.as_deref().unwrap_or("none")
                ),
                Ok(None) => println!(
                    "{}: not a dax device (a stand-in file needs no mode)",
                    a.dev.display()
                ),
                Err(e) => {
                    return Err(fail(
                        e.errno().unwrap_or(1),
                        format!("{}: {e}", a.dev.display()),
                    ));
                }
            }
            Ok(0)
        }
        Some(m) => {
            let mode: DaxMode = m.parse().map_err(|e| fail(libc::EINVAL, format!("{e}")))?;
            match daxctl_famfs::check_or_set_famfs_mode(&a.dev, mode.clone(), true) {
                Ok(daxctl_famfs::ModeCheck::NotDax) => println!(
                    "{}: not a dax device (a stand-in file needs no mode)",
                    a.dev.display()
                ),
                Ok(daxctl_famfs::ModeCheck::AlreadyInMode(d)) => {
                    println!("{}: already in {mode} mode", d.name)
                }
                Ok(daxctl_famfs::ModeCheck::Switched { dev, from }) => {
                    println!("{}: switched from {from} to {mode} mode", dev.name)
                }
                Err(e) => {
                    return Err(fail(
                        e.errno().unwrap_or(1),
                        format!("{}: {e}", a.dev.display()),
                    ));
                }
            }
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    //! The -M/--set-daxmode switch (`check_daxmode_with`) refuses a device in use, and our own
    //! ways of opening a device leave nothing behind that would make it refuse.

    use std::path::Path;

    use daxctl_famfs::Sysfs;
    use daxctl_famfs::fake::{DeviceSpec, FakeProc, FakeSysfs, RegionSpec};
    use famfs_fsdev::{Access, DaxDevice};

    use crate::error::exit_code_of;
    use crate::open::{OpenFs, OpenHow, check_daxmode_with};

    /// dax0.0 (4 GiB, enough for mkfs) in famfs mode, so -M has to switch it.
    fn famfs_mode_device() -> (tempfile::TempDir, FakeSysfs, Sysfs) {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeSysfs::new(dir.path()).unwrap();
        fake.add_region(&RegionSpec::nvdimm(0, 0x1_0000_0000, 8 << 30))
            .unwrap()
            .add_device(&DeviceSpec::new("dax0.0", 4 << 30).driver("fsdev_dax"))
            .unwrap()
            .clear_writes()
            .unwrap();
        let s = fake.sysfs();
        (dir, fake, s)
    }

    /// -M refused with EBUSY (exit 16), every needle in the message, the device untouched.
    fn assert_refused(s: &Sysfs, fake: &FakeSysfs, needles: &[&str]) {
        let e = check_daxmode_with(s, &fake.stand_in("dax0.0"), true).unwrap_err();
        let msg = format!("{e:#}");
        assert_eq!(exit_code_of(&e), libc::EBUSY, "{msg}");
        for n in needles {
            assert!(msg.contains(n), "{n}: {msg}");
        }
        assert!(fake.writes().unwrap().is_empty(), "{msg}");
        assert_eq!(
            fake.driver_of("dax0.0").unwrap().as_deref(),
            Some("fsdev_dax")
        );
    }

    fn assert_switched(s: &Sysfs, fake: &FakeSysfs) {
        check_daxmode_with(s, &fake.stand_in("dax0.0"), true).unwrap();
        assert_eq!(
            fake.driver_of("dax0.0").unwrap().as_deref(),
            Some("device_dax")
        );
    }

    #[test]
    fn set_daxmode_refuses_a_mounted_device_naming_the_mount_and_daemon() {
        let (dir, fake, s) = famfs_mode_device();
        let proc = FakeProc::new(dir.path().join("proc")).unwrap();
        let node = fake.stand_in("dax0.0");
        let mpt = dir.path().join("mnt");
        std::fs::create_dir(&mpt).unwrap();
        proc.mount(&node, &mpt, "fuse.famfs")
            .unwrap()
            .open_fd(321, "famfs_fused", 5, &node)
            .unwrap();
        let s = s.with_procfs(proc.procfs());
        let mounted = format!("mounted on {}", mpt.display());
        assert_refused(
            &s,
            &fake,
            &[
                "refusing to change modes",
                &mounted,
                "famfs_fused (pid 321: fd 5)",
            ],
        );
        proc.clear_mounts().unwrap().exit(321).unwrap();
        assert_switched(&s, &fake);
    }

    #[test]
    fn set_daxmode_refuses_while_this_process_holds_the_device() {
        // The real /proc: a command that opened or mapped the device (to read its size or
        // superblock) and kept it would be refused here, naming itself.
        let (_dir, fake, s) = famfs_mode_device();
        let node = fake.stand_in("dax0.0");
        let me = format!("(pid {}: ", std::process::id());
        let dev = DaxDevice::open(&node, Access::ReadOnly).unwrap();
        assert_refused(&s, &fake, &[&me, "fd "]);
        let map = dev.map(0, 2 << 20).unwrap();
        drop(dev);
        assert_refused(&s, &fake, &[&me, "mapped"]);
        drop(map);
        assert_switched(&s, &fake);
    }

    #[test]
    fn an_opened_file_system_leaves_nothing_open_once_dropped() {
        // OpenFs::device is how fsck, logplay, mount and the offline commands read a device:
        // dropping it must close the device and unmap it, or a later switch is refused.
        let (_dir, fake, s) = famfs_mode_device();
        let node = fake.stand_in("dax0.0");
        make_famfs(&node);
        let open = OpenFs::device(&node, OpenHow::default()).unwrap();
        assert_eq!(open.fs.state().stats().entries, 0);
        assert_refused(&s, &fake, &["mapped"]);
        drop(open);
        assert_switched(&s, &fake);
    }

    fn make_famfs(node: &Path) {
        let dev = DaxDevice::open(node, Access::ReadWrite).unwrap();
        let map = dev.map(0, 16 << 20).unwrap();
        let opts = famfs_log::MkfsOptions::new(uuid::Uuid::from_u128(7), b"dax0.0".to_vec());
        famfs_log::mkfs(&map, dev.size(), &opts).unwrap();
    }
}
