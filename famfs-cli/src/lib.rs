//! The `famfs` and `mkfs.famfs` command-line tools.
//!
//! Every file command works in one of two forms:
//! * **mounted**: paths are host paths inside a mounted famfs; the command asks the daemon to
//!   allocate and log files through its control channel ([`control`]), or, when the daemon has
//!   none, appends to the mount's `.meta/.log` under its `flock` itself (the reference CLI's
//!   way; the daemon applies the entry when the append reaches it through `.meta/.log`); file
//!   data moves through the mount;
//! * **offline** (`--device DEV`): the command maps an unmounted dax device or a stand-in regular
//!   file itself, appends to the log under a `flock` on the device file, and moves file data
//!   through the mapping. Paths are famfs paths relative to the file system root.
//!
//! Modules: [`cli`] (clap definitions), [`cmd`] (one module per group of commands), [`open`]
//! (opening a famfs either way and reaching file bytes), [`writer`] (appending, in this process
//! or through the daemon), [`control`] (the daemon's channel), [`paths`] and [`mounts`] (finding the
//! famfs a host path is in), [`parse`] (sizes, modes, ids), [`pattern`] (the reference's
//! verifiable data pattern), [`xfer`] (bulk data movement), [`output`] (listing and map formats),
//! [`progress`], [`json`] (`--json` output), [`error`] (exit codes); [`main_famfs`] and
//! [`main_mkfs`] are the binaries.
//!
//! The command-line parts (everything that needs clap or anyhow) are behind the default `cli`
//! feature; without it the library is the parsing and formatting helpers only.

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "cli")]
pub mod cmd;
#[cfg(feature = "cli")]
pub mod control;
#[cfg(feature = "cli")]
pub mod dummy;
#[cfg(feature = "cli")]
mod entry;
#[cfg(feature = "cli")]
pub mod error;
#[cfg(feature = "cli")]
pub mod json;
#[cfg(feature = "cli")]
pub mod open;
#[cfg(feature = "cli")]
mod quickparse;
#[cfg(feature = "cli")]
pub mod writer;
#[cfg(feature = "cli")]
pub mod xattr;
#[cfg(feature = "cli")]
pub mod xfer;

/// The mount table (the one parser, in famfs-fsdev).
pub use famfs_fsdev::mounts;
pub mod output;
pub mod parse;
pub mod paths;
pub mod pattern;
pub mod progress;

#[cfg(feature = "cli")]
pub use entry::{
    EarlyExit, init_logging, invoked_as_mkfs, main_famfs, main_mkfs, main_multicall, parse_famfs,
    parse_mkfs, restore_sigpipe,
};
