//! Dax device discovery and mode switching for famfs, compatible with ndctl's `daxctl` (v85).
//!
//! A [`Sysfs`] is a view of the dax bus under a sysfs root (`/sys`, or any directory in tests).
//! It enumerates [`Region`]s and [`DaxDev`]ices (size, align, target node, resource, mappings,
//! character device, bound driver and the [`DaxMode`] derived from it), and switches devices
//! between devdax (`device_dax`), famfs (`fsdev_dax`) and system-ram (`kmem`) with the same
//! ordered sysfs writes daxctl makes ([`Sysfs::reconfigure`]), onlining or offlining memory
//! blocks for system-ram. Failures carry the failing file and the kernel's errno
//! ([`Error::errno`]).
//!
//! Writes go through a [`SysfsBackend`]; with the `fake-sysfs` feature, `fake::FakeSysfs` builds
//! a directory tree whose backend emulates the kernel's side effects, so every transition can be
//! tested without hardware. The `daxctl-famfs` binary offers daxctl's `list` and
//! `reconfigure-device`.

mod backend;
mod chardev;
#[cfg(feature = "cli")]
pub mod cli;
mod error;
mod famfs;
pub mod json;
mod memory;
mod model;
mod module;
pub mod parse;
mod reconfig;
mod sysfs;

#[cfg(feature = "fake-sysfs")]
pub mod fake;

pub use backend::{RealBackend, SysfsBackend, daxctl_encoding};
pub use chardev::CharDevInfo;
pub use error::{Error, Result, exit_code_for_errno, strerror};
pub use famfs::{ModeCheck, TOOL, check_or_set_famfs_mode, fix_command};
pub use memory::{MemBlock, MemoryOpOutcome, MemoryStatus, ZONE_MOVABLE, ZONE_NORMAL};
pub use model::{DaxDev, DaxMode, Mapping, ParseModeError, Region, driver};
pub use reconfig::ReconfigureOptions;
pub use sysfs::{DEFAULT_CHARDEV_TIMEOUT, ENV_DEV_ROOT, ENV_SYSFS_ROOT, Sysfs};
