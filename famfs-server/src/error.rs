//! The daemon's error type.

use std::path::PathBuf;

/// Words every [`ServerError::FamfsKernelNeeded`] message contains: how a process that started
/// the daemon (the CLI's temporary mounts) tells that refusal from other failures.
pub const FAMFS_KERNEL_NEEDED_MARK: &str = "whose data only a famfs kernel can map";

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The device could not be opened or mapped.
    #[error(transparent)]
    Device(#[from] famfs_fsdev::FsdevError),
    /// The superblock or log is invalid.
    #[error("{device}: {source}")]
    Famfs {
        /// The device.
        device: PathBuf,
        /// What is wrong.
        #[source]
        source: famfs_log::LogError,
    },
    /// Mounting or unmounting failed.
    #[error("{what} {path}: {source}")]
    Mount {
        /// The operation.
        what: &'static str,
        /// The mount point or device.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing the FUSE channel failed.
    #[error("FUSE channel: {0}")]
    Channel(std::io::Error),
    /// The device is in famfs mode and the connection cannot take the famfs kernel path.
    #[error("{0}")]
    FamfsKernelNeeded(String),
    /// Reading the metadata through the daemon's own mount failed.
    #[error("reading the metadata through the mount: {0}")]
    Bootstrap(String),
    /// FUSE over io_uring was required (`--transport uring`) but cannot be used.
    #[error("FUSE over io_uring: {0}")]
    Uring(String),
}
