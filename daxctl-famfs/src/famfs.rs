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
