//! `daxctl-famfs`: daxctl's `list` and `reconfigure-device` for dax devices, including famfs
//! mode, over any sysfs root.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use daxctl_famfs::json::{self, ListOptions};
use daxctl_famfs::parse::{DeviceFilter, RegionFilter};
use daxctl_famfs::{DaxMode, Procfs, ReconfigureOptions, Sysfs, exit_code_for_errno, strerror};

/// daxctl's status for usage errors.
const USAGE_EXIT: u8 = 129;

const LONG_ABOUT: &str = "\
List dax devices and switch them between modes, like ndctl's daxctl (v85):

  devdax      bound to device_dax: /dev/daxX.Y can be mmapped (famfs mkfs/fsck and the
              user-space FUSE data path need this)
  famfs       bound to fsdev_dax: the device is reserved for the famfs kernel file system
              (its character device cannot be mmapped)
  system-ram  bound to kmem: the memory is hot-plugged as system RAM (memory blocks onlined,
              into ZONE_MOVABLE by default)

The sysfs writes are the ones daxctl makes, in the same order. Output is daxctl's JSON.
Unlike daxctl, a device that is mounted, open or mapped is never switched (EBUSY).
Exit status: 0 on success, 129 for usage errors, otherwise 256 - errno (e.g. 240 EBUSY,
234 EINVAL, 250 ENXIO, 161 EOPNOTSUPP), as daxctl.";

const RECONFIG_LONG_ABOUT: &str = "Switch a device's mode (like `daxctl reconfigure-device`).

system-ram -> famfs is refused (go through devdax). Leaving system-ram with memory online fails
with EBUSY unless -f offlines it first. The reconfigured device is printed as JSON on stdout;
\"reconfigured N device(s)\" goes to stderr.

A device in devdax or famfs mode that is in use is refused with EBUSY (exit 240) before
anything is written: a famfs mount of it (the message names the mount point; `famfs umount` it
first), or any process with /dev/daxX.Y open or mapped (found in /proc/*/fd and /proc/*/maps;
the message names each pid). daxctl itself does not check this, and the kernel does not
protect the users: a process that keeps a devdax mapping across a switch gets SIGBUS on its
next access (a famfs daemon dies, and its mount with it), and an fd held across a switch has
made the kernel corrupt the device's reference count (use-after-free). There is therefore no
override: -f does not apply to it. Stop the users first.";

#[derive(Debug, Parser)]
#[command(name = "daxctl-famfs", version, about = "List and reconfigure dax devices (devdax, famfs, system-ram)", long_about = LONG_ABOUT)]
struct Cli {
    /// sysfs root to work on (a fake tree in tests).
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "DAXCTL_FAMFS_SYSFS_ROOT",
        default_value = "/sys"
    )]
    sysfs_root: PathBuf,
    /// Directory holding the daxX.Y device nodes (default /dev, or the fake tree's own).
    #[arg(long, global = true, value_name = "DIR", env = "DAXCTL_FAMFS_DEV_ROOT")]
    dev_root: Option<PathBuf>,
    /// proc root scanned for processes and mounts using a device before a switch (a fake
    /// tree in tests).
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "DAXCTL_FAMFS_PROC_ROOT",
        default_value = "/proc"
    )]
    proc_root: PathBuf,
    /// The sysfs root is an emulated tree made by daxctl_famfs::fake (tests; needs a build
    /// with the `fake-sysfs` feature).
    #[arg(long, global = true, hide = true)]
    fake_sysfs: bool,
    /// More messages on stderr (-v info, -vv debug: every sysfs write).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// List dax regions and devices as JSON (like `daxctl list`).
    ///
    /// Without -D/-R: -r alone lists regions, -d alone lists devices, neither lists devices.
    /// Zero-size devices are listed only with -i. Nothing is printed when nothing matches.
    List(ListArgs),
    /// Switch a device's mode (like `daxctl reconfigure-device`); refused while it is in use.
    #[command(name = "reconfigure-device", long_about = RECONFIG_LONG_ABOUT)]
    Reconfigure(ReconfigArgs),
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Filter by region: all, N or regionN.
    #[arg(short = 'r', long = "region", value_name = "REGION-ID")]
    region: Option<String>,
    /// Filter by device: all, daxX.Y or X.Y.
    #[arg(short = 'd', long = "dev", value_name = "DEV-ID")]
    dev: Option<String>,
    /// Include device info.
    #[arg(short = 'D', long)]
    devices: bool,
    /// Include region info.
    #[arg(short = 'R', long)]
    regions: bool,
    /// Include each device's physical mappings.
    #[arg(short = 'M', long)]
    mappings: bool,
    /// Include idle (zero-size) devices.
    #[arg(short = 'i', long)]
    idle: bool,
    /// Human-friendly sizes and hex addresses.
    #[arg(short = 'u', long)]
    human: bool,
}

#[derive(Debug, Args)]
struct ReconfigArgs {
    /// The device (daxX.Y, X.Y, /dev/daxX.Y) or "all".
    #[arg(value_name = "DEVICE")]
    devices: Vec<String>,
    /// Target mode: devdax, famfs or system-ram.
    #[arg(short = 'm', long, value_name = "MODE")]
    mode: Option<String>,
    /// Offline memory before leaving system-ram; ignore the kernel's auto-online policy.
    /// (Not an override for a device in use: there is none, see above.)
    #[arg(short = 'f', long)]
    force: bool,
    /// system-ram only: do not online the memory blocks.
    #[arg(short = 'N', long)]
    no_online: bool,
    /// Online memory into ZONE_NORMAL instead of ZONE_MOVABLE (may prevent later removal).
    #[arg(long)]
    no_movable: bool,
    /// Only consider devices of this region (all, N or regionN).
    #[arg(short = 'r', long = "region", value_name = "REGION-ID")]
    region: Option<String>,
    /// Human-friendly numbers in the JSON output.
    #[arg(short = 'u', long)]
    human: bool,
    /// Seconds to wait for /dev/daxX.Y after binding.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    chardev_timeout: f64,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(USAGE_EXIT),
            };
        }
    };
    init_logging(cli.verbose);
    let mut sysfs = match open_sysfs(&cli) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("daxctl-famfs: {msg}");
            return ExitCode::from(USAGE_EXIT);
        }
    };
    if let Some(d) = &cli.dev_root {
        sysfs = sysfs.with_dev_root(d);
    }
    let sysfs = sysfs.with_procfs(Procfs::new(&cli.proc_root));
    let code = match &cli.cmd {
        Cmd::List(a) => list(&sysfs, a),
        Cmd::Reconfigure(a) => reconfigure(sysfs, a),
    };
    ExitCode::from(code)
}

/// The sysfs view `--sysfs-root` (and `--fake-sysfs`) ask for.
fn open_sysfs(cli: &Cli) -> Result<Sysfs, String> {
    if !cli.fake_sysfs {
        return Ok(Sysfs::new(&cli.sysfs_root));
    }
    #[cfg(feature = "fake-sysfs")]
    return Sysfs::emulated(&cli.sysfs_root).map_err(|e| {
        format!(
            "{}: not an emulated sysfs tree: {e}",
            cli.sysfs_root.display()
        )
    });
    #[cfg(not(feature = "fake-sysfs"))]
    Err("--fake-sysfs needs a build with the `fake-sysfs` feature".to_string())
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .try_init();
}

fn list(sysfs: &Sysfs, a: &ListArgs) -> u8 {
    let opts = ListOptions {
        region: a.region.clone(),
        dev: a.dev.clone(),
        devices: a.devices,
        regions: a.regions,
        mappings: a.mappings,
        idle: a.idle,
        human: a.human,
        sorted: false,
    };
    match json::list(sysfs, &opts) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(out.text.as_bytes());
            let _ = stdout.flush();
            for d in &out.dropped {
                eprintln!(
                    "daxctl-famfs: region {d} is not under {}/devices; not listed",
                    sysfs.sys_root().display()
                );
            }
            if out.dropped.is_empty() {
                0
            } else {
                exit_code_for_errno(libc::ENOMEM)
            }
        }
        Err(e) => {
            eprintln!("daxctl-famfs: list failed: {e}");
            e.exit_code()
        }
    }
}

fn usage_error(msg: &str) -> u8 {
    eprintln!(
        "error: {msg}\n\nusage: daxctl-famfs reconfigure-device <device> [<options>]\n(see daxctl-famfs reconfigure-device --help)"
    );
    USAGE_EXIT
}

fn reconfigure(sysfs: Sysfs, a: &ReconfigArgs) -> u8 {
    let dev_arg = match a.devices.as_slice() {
        [] => return usage_error("specify a device to reconfigure, or \"all\""),
        [d] => d.clone(),
        [_, extra, ..] => return usage_error(&format!("unknown extra parameter \"{extra}\"")),
    };
    let Some(mode_str) = a.mode.as_deref() else {
        return usage_error("a 'mode' option is required");
    };
    if a.no_online && (mode_str == "devdax" || mode_str == "famfs") {
        return usage_error(&format!(
            "--no-online is incompatible with --mode={mode_str}"
        ));
    }
    if !a.chardev_timeout.is_finite() || a.chardev_timeout < 0.0 {
        return usage_error("--chardev-timeout must be a non-negative number of seconds");
    }
    let sysfs = sysfs.with_chardev_timeout(Duration::from_secs_f64(a.chardev_timeout.min(86400.0)));
    let mode: Option<DaxMode> = mode_str.parse().ok();
    let opts = ReconfigureOptions {
        force: a.force,
        no_online: a.no_online,
        movable: !a.no_movable,
        wait_chardev: true,
    };
    let dfilter = DeviceFilter::parse(&dev_arg);
    let rfilter = a
        .region
        .as_deref()
        .map(RegionFilter::parse)
        .unwrap_or(RegionFilter::All);
    let devices = match sysfs.devices() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("daxctl-famfs: {e}");
            eprintln!(
                "error reconfiguring devices: {}",
                strerror(e.errno().unwrap_or(libc::EIO))
            );
            return e.exit_code();
        }
    };
    let mut errno = 0;
    let mut done = Vec::new();
    let mut matched = 0;
    for dev in devices
        .iter()
        .filter(|d| rfilter.matches(d.region_id) && dfilter.matches(d.region_id, d.instance))
    {
        matched += 1;
        let Some(mode) = mode.clone() else {
            eprintln!(
                "{}: unknown mode requested: {mode_str:?} (expected devdax, famfs or system-ram)",
                dev.name
            );
            errno = libc::EINVAL;
            continue;
        };
        match sysfs.reconfigure(dev, mode, &opts) {
            Ok(d) => done.push(json::device_json(&sysfs, &d, false)),
            Err(e) => {
                eprintln!("daxctl-famfs: {e}");
                errno = e.errno().unwrap_or(libc::EIO);
            }
        }
    }
    let n = done.len();
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(json::display_array(done, a.human).as_bytes());
    let _ = stdout.flush();
    if matched == 0 {
        // daxctl reports success when nothing matches; say why nothing happened.
        eprintln!("daxctl-famfs: no dax device matches \"{dev_arg}\"");
    }
    if errno != 0 {
        eprintln!("error reconfiguring devices: {}", strerror(errno));
    }
    eprintln!("reconfigured {n} device{}", if n == 1 { "" } else { "s" });
    if errno != 0 {
        exit_code_for_errno(errno)
    } else {
        0
    }
}
