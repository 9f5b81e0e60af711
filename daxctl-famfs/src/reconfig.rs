//! Mode switching with daxctl's exact sysfs write sequence (reference §2):
//!
//! * **disable**: `<dev>/driver/remove_id` ← name, then `<dev>/driver/unbind` ← name (both
//!   through the `driver` link, i.e. to the current driver); success iff the link is gone.
//! * **enable**: `/sys/bus/dax/drivers/<module>/new_id` ← name, then `.../bind` ← name; success
//!   iff the `driver` link now exists (new_id usually binds already, so bind's EBUSY is moot).
//!
//! Every value is written as daxctl writes it: the string plus a terminating NUL.

use std::path::PathBuf;

use crate::memory::MemoryOpOutcome;
use crate::{DaxDev, DaxMode, Error, Result, Sysfs};

/// Options of a mode switch (`reconfigure-device`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconfigureOptions {
    /// `-f`: offline memory before leaving system-ram; override the auto-online policy check.
    pub force: bool,
    /// `-N`: for system-ram, leave the blocks as the kernel policy left them.
    pub no_online: bool,
    /// Online into ZONE_MOVABLE (default) rather than ZONE_NORMAL (`--no-movable`).
    pub movable: bool,
    /// Wait for `/dev/daxX.Y` after binding (default true).
    pub wait_chardev: bool,
}

impl Default for ReconfigureOptions {
    fn default() -> Self {
        ReconfigureOptions {
            force: false,
            no_online: false,
            movable: true,
            wait_chardev: true,
        }
    }
}

impl Sysfs {
    /// Unbinds the device from its driver (no-op if unbound), as `daxctl_dev_disable`.
    ///
    /// Unlike daxctl, which always reports EBUSY when the driver stays bound, the error carries
    /// the failing write and its errno (e.g. EACCES for non-root) when a write failed.
    pub fn disable(&self, dev: &DaxDev) -> Result<()> {
        self.check_dax_bus(dev)?;
        let Some(driver) = self.bound_driver(&dev.path) else {
            return Ok(());
        };
        let link = dev.path.join("driver");
        let mut cause = self.write_attr(&link.join("remove_id"), &dev.name).err();
        if cause.is_none() {
            cause = self.write_attr(&link.join("unbind"), &dev.name).err();
        }
        match self.bound_driver(&dev.path) {
            None => Ok(()),
            Some(still) => {
                tracing::error!("{}: failed to disable", dev.name);
                Err(Error::DisableFailed {
                    device: dev.name.clone(),
                    driver: if still == driver { driver } else { still },
                    cause: cause.map(Box::new),
                })
            }
        }
    }

    /// Binds an unbound device to the driver of `mode`, as `daxctl_dev_enable`: a device that is
    /// already bound (to any driver) is left alone.
    pub fn enable(&self, dev: &DaxDev, mode: DaxMode) -> Result<()> {
        self.check_dax_bus(dev)?;
        if self.bound_driver(&dev.path).is_some() {
            return Ok(());
        }
        let (driver, drv_dir) = self.ensure_driver(dev, &mode)?;
        if let Err(e) = self.write_attr(&drv_dir.join("new_id"), &dev.name) {
            tracing::debug!("{}: {e}", dev.name);
        }
        let bind = self.write_attr(&drv_dir.join("bind"), &dev.name).err();
        match self.bound_driver(&dev.path) {
            Some(actual) if actual == driver => Ok(()),
            Some(actual) => Err(Error::WrongDriver {
                device: dev.name.clone(),
                expected: driver.to_string(),
                actual,
            }),
            None => {
                tracing::error!("{}: failed to enable", dev.name);
                Err(Error::EnableFailed {
                    device: dev.name.clone(),
                    mode,
                    driver: driver.to_string(),
                    cause: bind.map(Box::new),
                })
            }
        }
    }

    /// Loads (if needed and allowed) and locates the driver of `mode`: ENXIO if it is absent.
    fn ensure_driver(&self, dev: &DaxDev, mode: &DaxMode) -> Result<(&'static str, PathBuf)> {
        let driver = mode
            .driver()
            .ok_or_else(|| Error::InvalidArgument(format!("Invalid mode {mode}")))?;
        let drv_dir = self.sys(&format!("bus/dax/drivers/{driver}"));
        if !self.backend.exists(&drv_dir) && self.load_modules {
            crate::module::load(driver)?;
        }
        if !self.backend.exists(&drv_dir) {
            return Err(Error::DriverMissing {
                device: dev.name.clone(),
                mode: mode.clone(),
                driver: driver.to_string(),
                path: drv_dir,
            });
        }
        Ok((driver, drv_dir))
    }

    /// Switches a device to `mode` with daxctl v85's rules, returning its new state.
    ///
    /// * → devdax: from system-ram, `-f` offlines the memory first; any block still online is
    ///   refused with EBUSY before anything is written. Then disable, enable `device_dax`.
    /// * → famfs: from system-ram refused with EINVAL before any write (go through devdax).
    ///   Otherwise disable, enable `fsdev_dax`.
    /// * → system-ram: unless `force`, refused with EBUSY when `auto_online_blocks` starts with
    ///   "online" (checked when `no_online` or `movable`). Disable devdax/famfs, enable `kmem`,
    ///   then online the blocks (movable by default) unless `no_online`.
    /// * Same mode: devdax and famfs are unbound and re-bound (v85); system-ram only re-runs
    ///   onlining.
    /// * A device bound to an unknown driver: EINVAL. An unbound device is enabled directly.
    /// * Unlike daxctl, a missing target driver (ENXIO) is detected before anything is
    ///   unbound, so the device is not left disabled.
    pub fn reconfigure(
        &self,
        dev: &DaxDev,
        mode: DaxMode,
        opts: &ReconfigureOptions,
    ) -> Result<DaxDev> {
        let dev = self.refresh(dev)?;
        let current = dev.mode();
        let unknown = |driver: &str| Error::UnknownMode {
            device: dev.name.clone(),
            driver: driver.to_string(),
        };
        match &mode {
            DaxMode::SystemRam => {
                if (opts.no_online || opts.movable) && !opts.force {
                    self.check_auto_online(&dev)?;
                }
                if let DaxMode::Unknown(d) = &current {
                    return Err(unknown(d));
                }
                if current != DaxMode::SystemRam {
                    // Unlike daxctl, make sure the target driver exists before unbinding
                    // anything, so a missing module does not leave the device disabled.
                    self.ensure_driver(&dev, &mode)?;
                }
                match &current {
                    DaxMode::SystemRam | DaxMode::Disabled => {}
                    DaxMode::Devdax | DaxMode::Famfs => self.disable(&dev)?,
                    DaxMode::Unknown(d) => return Err(unknown(d)),
                }
                if current != DaxMode::SystemRam {
                    self.enable(&dev, DaxMode::SystemRam)?;
                }
                if !opts.no_online {
                    let dev = self.refresh(&dev)?;
                    if let MemoryOpOutcome::AlreadyDone { total } =
                        self.online_memory(&dev, opts.movable)?
                    {
                        tracing::info!(
                            "{}: all memory sections ({total}) already online",
                            dev.name
                        );
                    }
                }
            }
            DaxMode::Devdax => {
                if let DaxMode::Unknown(d) = &current {
                    return Err(unknown(d));
                }
                self.ensure_driver(&dev, &mode)?;
                match &current {
                    DaxMode::SystemRam => self.leave_system_ram(&dev, opts.force)?,
                    DaxMode::Devdax | DaxMode::Famfs => self.disable(&dev)?,
                    DaxMode::Disabled => {}
                    DaxMode::Unknown(d) => return Err(unknown(d)),
                }
                self.enable(&dev, DaxMode::Devdax)?;
            }
            DaxMode::Famfs => {
                match &current {
                    DaxMode::SystemRam => {
                        return Err(Error::SystemRamToFamfs {
                            device: dev.name.clone(),
                        });
                    }
                    DaxMode::Unknown(d) => return Err(unknown(d)),
                    _ => {}
                }
                self.ensure_driver(&dev, &mode)?;
                if matches!(current, DaxMode::Devdax | DaxMode::Famfs) {
                    self.disable(&dev)?;
                }
                self.enable(&dev, DaxMode::Famfs)?;
            }
            DaxMode::Disabled | DaxMode::Unknown(_) => {
                return Err(Error::InvalidArgument(format!(
                    "{}: unknown mode requested: {mode}",
                    dev.name
                )));
            }
        }
        if opts.wait_chardev {
            self.wait_for_chardev(&dev)?;
        }
        self.refresh(&dev)
    }

    /// system-ram → anything: offline with `force`, refuse while blocks are online, disable.
    fn leave_system_ram(&self, dev: &DaxDev, force: bool) -> Result<()> {
        if force {
            self.offline_memory(dev)?;
        }
        let status = self.memory_status(dev)?;
        if status.online > 0 {
            return Err(Error::MemoryOnline {
                device: dev.name.clone(),
                online: status.online,
            });
        }
        self.disable(dev)
    }

    /// EBUSY when the kernel's auto-online policy would online hot-added memory by itself.
    fn check_auto_online(&self, dev: &DaxDev) -> Result<()> {
        let path = self.sys("devices/system/memory/auto_online_blocks");
        // daxctl: an unreadable policy file means "will not auto-online".
        if let Some(policy) = self.read_opt(&path)
            && policy.starts_with("online")
        {
            return Err(Error::AutoOnlinePolicy {
                device: dev.name.clone(),
                path,
                policy,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "reconfig_tests.rs"]
mod tests;
