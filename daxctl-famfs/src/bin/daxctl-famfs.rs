//! `daxctl-famfs`: daxctl's `list` and `reconfigure-device` for dax devices, including famfs
//! mode, over any sysfs root.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use daxctl_famfs::cli::{Cli, Cmd, ListArgs, ReconfigArgs, USAGE_EXIT};
use daxctl_famfs::json::{self, ListOptions};
use daxctl_famfs::parse::{DeviceFilter, RegionFilter};
use daxctl_famfs::{DaxMode, ReconfigureOptions, Sysfs, exit_code_for_errno, strerror};

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
