//! Loading a dax driver module with `modprobe` (daxctl uses libkmod; built-in drivers need
//! nothing). Only used on the real `/sys`.

use std::process::Command;

use crate::{Error, Result};

/// Runs `modprobe <driver>`. A missing `modprobe` binary is not an error (the driver may be
/// built in); the caller then checks for the driver directory.
pub fn load(driver: &str) -> Result<()> {
    match Command::new("modprobe").arg(driver).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(Error::ModuleLoad {
            driver: driver.to_string(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }),
        Err(e) => {
            tracing::debug!("modprobe {driver}: {e}");
            Ok(())
        }
    }
}
