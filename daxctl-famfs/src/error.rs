//! The crate's error type: every variant names the device or file involved and maps to the errno
//! daxctl would report, so callers (and the CLI's exit code) can act on it.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::DaxMode;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors from dax discovery and mode switching.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a sysfs attribute, link or directory failed.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file that failed.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Writing a sysfs attribute failed (the kernel refused the write).
    #[error("write of {value:?} to {} failed: {source}", path.display())]
    Write {
        /// The file that failed.
        path: PathBuf,
        /// What was written (without the trailing NUL).
        value: String,
        /// The OS error, carrying the kernel's errno.
        source: io::Error,
    },
    /// A sysfs attribute holds something that does not parse.
    #[error("{}: unexpected contents {value:?}: {what}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Its contents.
        value: String,
        /// What was expected.
        what: &'static str,
    },
    /// No dax device of that name exists under the sysfs root.
    #[error("dax device {name} not found in {}", sysfs.display())]
    DeviceNotFound {
        /// The requested name.
        name: String,
        /// The sysfs root searched.
        sysfs: PathBuf,
    },
    /// The device uses the legacy dax-class model; daxctl refuses to switch it.
    #[error(
        "{device}: device model is dax-class ({} does not lead to the dax bus); \
         see man daxctl-migrate-device-model",
        path.display()
    )]
    DaxClassModel {
        /// The device.
        device: String,
        /// The `/sys/dev/char/M:m/subsystem` link checked.
        path: PathBuf,
    },
    /// The driver stayed bound after `remove_id`/`unbind`.
    #[error("{device}: disable failed: still bound to {driver}{}", cause_suffix(.cause))]
    DisableFailed {
        /// The device.
        device: String,
        /// The driver still bound.
        driver: String,
        /// The sysfs write that failed, if one did (its errno is reported).
        cause: Option<Box<Error>>,
    },
    /// No driver got bound after `new_id`/`bind`.
    #[error("{device}: failed to enable in {mode} mode (driver {driver}){}", cause_suffix(.cause))]
    EnableFailed {
        /// The device.
        device: String,
        /// The requested mode.
        mode: DaxMode,
        /// The driver that was asked to bind.
        driver: String,
        /// The bind write's error, if it failed.
        cause: Option<Box<Error>>,
    },
    /// The driver for the requested mode is not registered (module missing or not loadable).
    #[error(
        "{device}: driver {driver} for {mode} mode is not available ({} missing; is the module built/loaded?)",
        path.display()
    )]
    DriverMissing {
        /// The device.
        device: String,
        /// The requested mode.
        mode: DaxMode,
        /// The driver (module) name.
        driver: String,
        /// The driver directory looked for.
        path: PathBuf,
    },
    /// After the enable writes the device ended up on an unexpected driver.
    #[error("{device}: bound to {actual} instead of {expected}")]
    WrongDriver {
        /// The device.
        device: String,
        /// The driver asked for.
        expected: String,
        /// The driver actually bound.
        actual: String,
    },
    /// The device is bound to a driver this crate does not know.
    #[error("{device}: unknown mode (bound to driver {driver})")]
    UnknownMode {
        /// The device.
        device: String,
        /// The unrecognised driver.
        driver: String,
    },
    /// system-ram → famfs is refused (daxctl v85): go through devdax.
    #[error(
        "{device} is in system-ram mode; must be in devdax mode to convert to famfs \
         (run `daxctl-famfs reconfigure-device -f -m devdax {device}` first)"
    )]
    SystemRamToFamfs {
        /// The device.
        device: String,
    },
    /// The kernel's auto-online policy would online the memory itself.
    #[error(
        "{device}: error: kernel policy will auto-online memory ({} = {policy:?}), aborting \
         (use -f to override)",
        path.display()
    )]
    AutoOnlinePolicy {
        /// The device.
        device: String,
        /// The `auto_online_blocks` file.
        path: PathBuf,
        /// Its value.
        policy: String,
    },
    /// Leaving system-ram with memory still online (without force).
    #[error(
        "{device}: found {online} memory sections online; refusing to change modes \
         (use -f to offline them first)"
    )]
    MemoryOnline {
        /// The device.
        device: String,
        /// Number of online memory blocks.
        online: usize,
    },
    /// A memory block cannot be offlined.
    #[error("{device}: {block} is unremovable ({} is 0)", path.display())]
    Unremovable {
        /// The device.
        device: String,
        /// The block (`memoryN`).
        block: String,
        /// The `removable` file.
        path: PathBuf,
    },
    /// Some memory blocks stayed offline / online after the operation.
    #[error("{device}: failed to {op} {count} memory sections")]
    MemoryOpIncomplete {
        /// The device.
        device: String,
        /// "online" or "offline".
        op: &'static str,
        /// How many blocks did not change.
        count: usize,
    },
    /// Onlined memory is not in the requested zone (something else onlined it first).
    #[error(
        "{device}: WARNING: detected a race while onlining memory: {block} is in zone {actual:?}, \
         expected {expected:?}. See 'man daxctl-reconfigure-device' for more details"
    )]
    ZoneRace {
        /// The device.
        device: String,
        /// The first block in the wrong zone.
        block: String,
        /// The zone asked for.
        expected: &'static str,
        /// The zone found.
        actual: String,
    },
    /// Memory operations need a target node.
    #[error("{device}: no target_node: cannot locate its memory blocks")]
    NoTargetNode {
        /// The device.
        device: String,
    },
    /// Memory operations need the device's physical address (`resource`, root-only).
    #[error("{device}: unable to determine resource (is {} readable? try as root)", path.display())]
    NoResource {
        /// The device.
        device: String,
        /// The `resource` file.
        path: PathBuf,
    },
    /// A memory operation was asked of a device not in system-ram mode.
    #[error("{device}: memory operations are not applicable in {mode} mode")]
    NotSystemRam {
        /// The device.
        device: String,
        /// Its mode.
        mode: DaxMode,
    },
    /// `block_size_bytes` is zero.
    #[error("{}: memory block size is 0", path.display())]
    ZeroBlockSize {
        /// The `block_size_bytes` file.
        path: PathBuf,
    },
    /// The device node did not appear in time after a bind.
    #[error("{} did not appear within {timeout:?}", path.display())]
    ChardevTimeout {
        /// The node waited for.
        path: PathBuf,
        /// How long we waited.
        timeout: Duration,
    },
    /// A famfs command needs another mode; the message tells how to fix it.
    #[error(
        "{device} is in {current} mode, but this command needs {wanted} mode.\n\
         Fix: run `{fix}`, or re-run this command with -M/--set-daxmode to switch it.\n\
         (The switch is not undone afterwards.)"
    )]
    WrongMode {
        /// The device.
        device: String,
        /// Its current mode.
        current: DaxMode,
        /// The mode needed.
        wanted: DaxMode,
        /// The command that fixes it.
        fix: String,
    },
    /// Loading a driver module failed.
    #[error("{driver}: insert failure: {detail}")]
    ModuleLoad {
        /// The module.
        driver: String,
        /// What modprobe said.
        detail: String,
    },
    /// An argument to a library call is invalid.
    #[error("{0}")]
    InvalidArgument(String),
}

fn cause_suffix(cause: &Option<Box<Error>>) -> String {
    match cause {
        Some(c) => format!(": {c}"),
        None => String::new(),
    }
}

impl Error {
    /// The errno this error corresponds to (positive), as daxctl would return it.
    ///
    /// For I/O failures it is the kernel's real errno; for policy refusals it is the errno
    /// daxctl v85 uses (EBUSY, EINVAL, ENXIO, EOPNOTSUPP, ...). Always `Some` for variants that
    /// correspond to an errno; `None` only if an I/O error carried no OS code.
    pub fn errno(&self) -> Option<i32> {
        use libc::*;
        Some(match self {
            Error::Read { source, .. } | Error::Write { source, .. } => {
                return source.raw_os_error();
            }
            Error::Parse { .. } => EINVAL,
            Error::DeviceNotFound { .. } => ENODEV,
            Error::DaxClassModel { .. } => EOPNOTSUPP,
            Error::DisableFailed { cause, .. } => {
                cause.as_ref().and_then(|c| c.errno()).unwrap_or(EBUSY)
            }
            Error::EnableFailed { cause, .. } => {
                cause.as_ref().and_then(|c| c.errno()).unwrap_or(ENXIO)
            }
            Error::DriverMissing { .. } => ENXIO,
            Error::WrongDriver { .. } => EBUSY,
            Error::UnknownMode { .. } => EINVAL,
            Error::SystemRamToFamfs { .. } => EINVAL,
            Error::AutoOnlinePolicy { .. } => EBUSY,
            Error::MemoryOnline { .. } => EBUSY,
            Error::Unremovable { .. } => EOPNOTSUPP,
            Error::MemoryOpIncomplete { .. } => ENXIO,
            Error::ZoneRace { .. } => EBUSY,
            Error::NoTargetNode { .. } => ENXIO,
            Error::NoResource { .. } => EACCES,
            Error::NotSystemRam { .. } => ENXIO,
            Error::ZeroBlockSize { .. } => ENXIO,
            Error::ChardevTimeout { .. } => ETIMEDOUT,
            Error::WrongMode { .. } => EPERM,
            Error::ModuleLoad { .. } => ENOENT,
            Error::InvalidArgument(_) => EINVAL,
        })
    }

    /// The process exit status daxctl would use for this error: `-errno` masked to 8 bits.
    pub fn exit_code(&self) -> u8 {
        exit_code_for_errno(self.errno().unwrap_or(libc::EIO))
    }

    pub(crate) fn read(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Read {
            path: path.into(),
            source,
        }
    }
}

/// daxctl's exit status for a command that failed with `errno`: `(-errno) & 0xff`.
pub fn exit_code_for_errno(errno: i32) -> u8 {
    (errno.wrapping_neg() & 0xff) as u8
}

/// The C library's text for an errno, without Rust's " (os error N)" suffix.
pub fn strerror(errno: i32) -> String {
    let s = io::Error::from_raw_os_error(errno).to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_match_daxctl_table() {
        // reference §3.4
        assert_eq!(exit_code_for_errno(libc::EBUSY), 240);
        assert_eq!(exit_code_for_errno(libc::ENXIO), 250);
        assert_eq!(exit_code_for_errno(libc::EINVAL), 234);
        assert_eq!(exit_code_for_errno(libc::EOPNOTSUPP), 161);
        assert_eq!(exit_code_for_errno(libc::ENOSPC), 228);
        assert_eq!(exit_code_for_errno(libc::ENODEV), 237);
        assert_eq!(exit_code_for_errno(libc::EACCES), 243);
        assert_eq!(exit_code_for_errno(libc::ENOMEM), 244);
    }

    #[test]
    fn strerror_has_no_rust_suffix() {
        assert_eq!(strerror(libc::EBUSY), "Device or resource busy");
        assert_eq!(strerror(libc::EINVAL), "Invalid argument");
    }

    #[test]
    fn disable_failure_reports_the_write_errno() {
        let inner = Error::Write {
            path: "/sys/x/unbind".into(),
            value: "dax0.0".into(),
            source: io::Error::from_raw_os_error(libc::EACCES),
        };
        let e = Error::DisableFailed {
            device: "dax0.0".into(),
            driver: "device_dax".into(),
            cause: Some(Box::new(inner)),
        };
        assert_eq!(e.errno(), Some(libc::EACCES));
        assert!(e.to_string().contains("/sys/x/unbind"), "{e}");
        let e = Error::DisableFailed {
            device: "dax0.0".into(),
            driver: "device_dax".into(),
            cause: None,
        };
        assert_eq!(e.errno(), Some(libc::EBUSY));
    }
}
