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
