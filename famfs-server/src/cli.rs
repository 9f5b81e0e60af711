//! The command line of `famfs_fused` (clap; `cli` feature), in the library so that man pages and shell
//! completions can be generated from it.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// The famfs kernel path policy (`--dax`).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Dax {
    /// Use the famfs kernel path (GET_FMAP) when the kernel offers it and can map the device.
    Auto,
    /// Use it whenever the kernel offers it (testing with emulated kernels).
    Always,
    /// Always serve READ/WRITE from the device mapping.
    Off,
}

/// How requests reach the daemon (`--transport`).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TransportArg {
    /// FUSE over io_uring when the kernel offers it, else the /dev/fuse loop (says why at -v).
    Auto,
    /// FUSE over io_uring (Linux 6.14+ with the fuse module parameter enable_uring=Y), or fail.
    Uring,
    /// The /dev/fuse read/writev loop.
    Dev,
}

/// Serve a famfs device (a /dev/daxX.Y or a stand-in file) over FUSE at MPT.
///
/// The daemon replays the metadata log, mounts MPT (fstype fuse.famfs, as root), and serves
/// until unmounted. Files the master creates later appear by themselves (the log is watched).
/// Usually started by `famfs mount`, which also waits for the mount and reports failures.
#[derive(Debug, Parser)]
#[command(name = "famfs_fused", version)]
pub struct Args {
    /// The dax device or stand-in file.
    pub device: PathBuf,
    /// Where to mount it (an existing directory).
    pub mountpoint: PathBuf,
    /// This host's system UUID (default: $FAMFS_SYSTEM_UUID, else /opt/famfs/system_uuid).
    #[arg(long)]
    pub system_uuid: Option<uuid::Uuid>,
    /// Entry and attribute cache timeout, in seconds.
    #[arg(long, default_value_t = 1.0)]
    pub timeout: f64,
    /// Only root may use the mount (no allow_other).
    #[arg(long)]
    pub no_allow_other: bool,
    /// Do not let the kernel check permissions from the file modes.
    #[arg(long)]
    pub no_default_permissions: bool,
    /// famfs kernel path policy.
    #[arg(long, value_enum, default_value_t = Dax::Auto)]
    pub dax: Dax,
    /// How often to look for new log entries, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub poll_ms: u64,
    /// Request-handling threads of the /dev/fuse loop (io_uring uses one per CPU).
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// How requests reach the daemon: io_uring queues pinned one per CPU (each request is
    /// answered on the CPU that made it), or the /dev/fuse read/writev loop.
    #[arg(long, value_enum, default_value_t = TransportArg::Auto)]
    pub transport: TransportArg,
    /// More logging (-v info, -vv debug); RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Do not offer the control channel (the CLI then appends to the log itself, as with an
    /// older daemon).
    #[arg(long)]
    pub no_control: bool,
    /// Report readiness on this inherited descriptor (a pipe): one line, `ok` once mounted and
    /// serving, or the error that stopped the daemon; then it is closed (`famfs mount` uses it).
    #[arg(long, value_name = "FD")]
    pub ready_fd: Option<i32>,
    /// Tests only: read the metadata through the own mount, as for a famfs-mode device, on a
    /// device that is still mapped for READ/WRITE.
    #[arg(long, hide = true)]
    pub test_meta_through_mount: bool,
    /// Tests only: treat the device as one in famfs mode (never mapped: only the famfs kernel
    /// path reaches its data), whatever it is.
    #[arg(long, hide = true)]
    pub test_famfs_mode: bool,
    /// Formatting mode, for `mkfs.famfs` on a famfs-mode device: serve only
    /// `.meta/.superblock` and a `.meta/.log` of BYTES bytes, both writable, with no superblock
    /// check and no log replay; "ok" on the ready channel once mounted.
    #[arg(long, value_name = "BYTES", hide = true)]
    pub format_log_len: Option<u64>,
}
