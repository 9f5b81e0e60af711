//! The command line of the `daxctl-famfs` binary (clap; `cli` feature), in the library so that
//! man pages and shell completions can be generated from it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// daxctl's status for usage errors.
pub const USAGE_EXIT: u8 = 129;

/// The long description (`daxctl-famfs --help`).
pub const LONG_ABOUT: &str = "\
List dax devices and switch them between modes, like ndctl's daxctl (v85):

  devdax      bound to device_dax: /dev/daxX.Y can be mmapped (famfs mkfs/fsck and the
              user-space FUSE data path need this)
  famfs       bound to fsdev_dax: the device is reserved for the famfs kernel file system
              (its character device cannot be mmapped)
  system-ram  bound to kmem: the memory is hot-plugged as system RAM (memory blocks onlined,
              into ZONE_MOVABLE by default)

The sysfs writes are the ones daxctl makes, in the same order. Output is daxctl's JSON.
Exit status: 0 on success, 129 for usage errors, otherwise 256 - errno (e.g. 240 EBUSY,
234 EINVAL, 250 ENXIO, 161 EOPNOTSUPP), as daxctl.";

/// `daxctl-famfs`: list dax devices and switch their modes.
#[derive(Debug, Parser)]
#[command(name = "daxctl-famfs", version, about = "List and reconfigure dax devices (devdax, famfs, system-ram)", long_about = LONG_ABOUT)]
pub struct Cli {
    /// sysfs root to work on (a fake tree in tests).
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "DAXCTL_FAMFS_SYSFS_ROOT",
        default_value = "/sys"
    )]
    pub sysfs_root: PathBuf,
    /// Directory holding the daxX.Y device nodes (default /dev, or the fake tree's own).
    #[arg(long, global = true, value_name = "DIR", env = "DAXCTL_FAMFS_DEV_ROOT")]
    pub dev_root: Option<PathBuf>,
    /// The sysfs root is an emulated tree made by daxctl_famfs::fake (tests; needs a build
    /// with the `fake-sysfs` feature).
    #[arg(long, global = true, hide = true)]
    pub fake_sysfs: bool,
    /// More messages on stderr (-v info, -vv debug: every sysfs write).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// List dax regions and devices as JSON (like `daxctl list`).
    ///
    /// Without -D/-R: -r alone lists regions, -d alone lists devices, neither lists devices.
    /// Zero-size devices are listed only with -i. Nothing is printed when nothing matches.
    List(ListArgs),
    /// Switch a device's mode (like `daxctl reconfigure-device`).
    ///
    /// system-ram → famfs is refused (go through devdax). Leaving system-ram with memory online
    /// fails with EBUSY unless -f offlines it first. The reconfigured device is printed as JSON
    /// on stdout; "reconfigured N device(s)" goes to stderr.
    #[command(name = "reconfigure-device")]
    Reconfigure(ReconfigArgs),
}

/// `daxctl-famfs list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Filter by region: all, N or regionN.
    #[arg(short = 'r', long = "region", value_name = "REGION-ID")]
    pub region: Option<String>,
    /// Filter by device: all, daxX.Y or X.Y.
    #[arg(short = 'd', long = "dev", value_name = "DEV-ID")]
    pub dev: Option<String>,
    /// Include device info.
    #[arg(short = 'D', long)]
    pub devices: bool,
    /// Include region info.
    #[arg(short = 'R', long)]
    pub regions: bool,
    /// Include each device's physical mappings.
    #[arg(short = 'M', long)]
    pub mappings: bool,
    /// Include idle (zero-size) devices.
    #[arg(short = 'i', long)]
    pub idle: bool,
    /// Human-friendly sizes and hex addresses.
    #[arg(short = 'u', long)]
    pub human: bool,
}

/// `daxctl-famfs reconfigure-device`.
#[derive(Debug, Args)]
pub struct ReconfigArgs {
    /// The device (daxX.Y, X.Y, /dev/daxX.Y) or "all".
    #[arg(value_name = "DEVICE")]
    pub devices: Vec<String>,
    /// Target mode: devdax, famfs or system-ram.
    #[arg(short = 'm', long, value_name = "MODE")]
    pub mode: Option<String>,
    /// Offline memory before leaving system-ram; ignore the kernel's auto-online policy.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// system-ram only: do not online the memory blocks.
    #[arg(short = 'N', long)]
    pub no_online: bool,
    /// Online memory into ZONE_NORMAL instead of ZONE_MOVABLE (may prevent later removal).
    #[arg(long)]
    pub no_movable: bool,
    /// Only consider devices of this region (all, N or regionN).
    #[arg(short = 'r', long = "region", value_name = "REGION-ID")]
    pub region: Option<String>,
    /// Human-friendly numbers in the JSON output.
    #[arg(short = 'u', long)]
    pub human: bool,
    /// Seconds to wait for /dev/daxX.Y after binding.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub chardev_timeout: f64,
}
