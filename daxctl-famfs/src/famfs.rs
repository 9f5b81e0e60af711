//! The mode check famfs commands make before touching a device (`-M/--set-daxmode`).
//!
//! Which mode a command needs is the caller's policy: on a famfs-enabled kernel the file system
//! needs the device in famfs mode (`fsdev_dax`), while tools that mmap the raw character device
//! (mkfs, fsck, logplay, the user-space FUSE data path) need devdax mode, because the
//! `fsdev_dax` character device has no mmap.

use std::path::Path;

use crate::{DaxDev, DaxMode, Error, ReconfigureOptions, Result, Sysfs};

/// Name of the binary printed in fix-it hints.
pub const TOOL: &str = "daxctl-famfs";

/// Outcome of [`Sysfs::check_or_set_mode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeCheck {
    /// The path is not a dax device (a stand-in regular file, a block device...): no mode applies.
    NotDax,
    /// The device already is in the wanted mode.
    AlreadyInMode(DaxDev),
    /// The device was switched (the switch is left in place).
    Switched {
        /// The device, in its new mode.
        dev: DaxDev,
        /// The mode it had before.
        from: DaxMode,
    },
}

/// The command line that moves `device` from `current` to `wanted` mode.
pub fn fix_command(device: &str, current: &DaxMode, wanted: &DaxMode) -> String {
    match (current, wanted) {
        (DaxMode::SystemRam, DaxMode::Famfs) => format!(
            "{TOOL} reconfigure-device -f -m devdax {device} && \
             {TOOL} reconfigure-device -m famfs {device}"
        ),
        (DaxMode::SystemRam, _) => {
            format!("{TOOL} reconfigure-device -f -m {wanted} {device}")
        }
        _ => format!("{TOOL} reconfigure-device -m {wanted} {device}"),
    }
}

impl Sysfs {
    /// Checks that the dax device at `dev_path` is in `wanted` mode; with `set`, switches it
    /// there (with default options: no force, so a system-ram device with online memory is
    /// refused). Without `set`, a device in another mode gives [`Error::WrongMode`] (EPERM),
    /// whose message names the exact command that fixes it.
    pub fn check_or_set_mode(
        &self,
        dev_path: &Path,
        wanted: DaxMode,
        set: bool,
    ) -> Result<ModeCheck> {
        if wanted.driver().is_none() {
            return Err(Error::InvalidArgument(format!(
                "cannot require mode {wanted}: expected devdax, famfs or system-ram"
            )));
        }
        let Some(dev) = self.device_for_chardev(dev_path)? else {
            return Ok(ModeCheck::NotDax);
        };
        let current = dev.mode();
        if current == wanted {
            return Ok(ModeCheck::AlreadyInMode(dev));
        }
        if !set {
            return Err(Error::WrongMode {
                fix: fix_command(&dev.name, &current, &wanted),
                device: dev.name,
                current,
                wanted,
            });
        }
        tracing::info!("{}: switching from {current} to {wanted} mode", dev.name);
        let dev = self.reconfigure(&dev, wanted, &ReconfigureOptions::default())?;
        Ok(ModeCheck::Switched { dev, from: current })
    }
}

/// [`Sysfs::check_or_set_mode`] on the system's sysfs (or the one named by the
/// `DAXCTL_FAMFS_SYSFS_ROOT` / `DAXCTL_FAMFS_DEV_ROOT` environment variables).
pub fn check_or_set_famfs_mode(dev_path: &Path, wanted: DaxMode, set: bool) -> Result<ModeCheck> {
    Sysfs::from_env().check_or_set_mode(dev_path, wanted, set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{DeviceSpec, FakeSysfs, RegionSpec};

    fn setup(driver: &str) -> (tempfile::TempDir, FakeSysfs, Sysfs) {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeSysfs::new(dir.path()).unwrap();
        fake.add_region(&RegionSpec::nvdimm(0, 4 << 30, 1 << 30))
            .unwrap()
            .add_device(&DeviceSpec::new("dax0.0", 1 << 30).driver(driver))
            .unwrap();
        let s = fake.sysfs();
        (dir, fake, s)
    }

    #[test]
    fn wrong_mode_names_the_fix() {
        let (_d, fake, s) = setup("device_dax");
        let node = fake.dev_root().join("dax0.0");
        let e = s
            .check_or_set_mode(&node, DaxMode::Famfs, false)
            .unwrap_err();
        assert_eq!(e.errno(), Some(libc::EPERM));
        let msg = e.to_string();
        assert!(
            msg.contains("run `daxctl-famfs reconfigure-device -m famfs dax0.0`"),
            "{msg}"
        );
        assert!(msg.contains("--set-daxmode"), "{msg}");
        assert!(fake.writes().unwrap().is_empty());
    }

    #[test]
    fn set_switches_and_reports_the_old_mode() {
        let (_d, fake, s) = setup("device_dax");
        let node = fake.dev_root().join("dax0.0");
        match s.check_or_set_mode(&node, DaxMode::Famfs, true).unwrap() {
            ModeCheck::Switched { dev, from } => {
                assert_eq!(from, DaxMode::Devdax);
                assert_eq!(dev.mode(), DaxMode::Famfs);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.check_or_set_mode(&node, DaxMode::Famfs, false).unwrap(),
            ModeCheck::AlreadyInMode(_)
        ));
        // And back to devdax for tools that mmap the raw device.
        let e = s
            .check_or_set_mode(&node, DaxMode::Devdax, false)
            .unwrap_err();
        assert!(e.to_string().contains("-m devdax dax0.0"), "{e}");
    }

    #[test]
    fn system_ram_fix_goes_through_devdax() {
        let (_d, fake, s) = setup("kmem");
        let node = fake.dev_root().join("dax0.0");
        let e = s
            .check_or_set_mode(&node, DaxMode::Famfs, false)
            .unwrap_err();
        assert!(
            e.to_string().contains(
                "daxctl-famfs reconfigure-device -f -m devdax dax0.0 && \
                 daxctl-famfs reconfigure-device -m famfs dax0.0"
            ),
            "{e}"
        );
        let e = s
            .check_or_set_mode(&node, DaxMode::Famfs, true)
            .unwrap_err();
        assert_eq!(e.errno(), Some(libc::EINVAL));
        assert!(e.to_string().contains("-f -m devdax dax0.0"), "{e}");
    }

    #[test]
    fn stand_in_files_need_no_mode() {
        let (_d, fake, s) = setup("device_dax");
        let f = fake.root().join("standin.img");
        std::fs::write(&f, vec![0u8; 4096]).unwrap();
        assert_eq!(
            s.check_or_set_mode(&f, DaxMode::Famfs, false).unwrap(),
            ModeCheck::NotDax
        );
        assert!(
            s.check_or_set_mode(&f, DaxMode::Disabled, false)
                .unwrap_err()
                .errno()
                == Some(libc::EINVAL)
        );
    }
}
