//! `famfs_fused`: serve a famfs device over FUSE at a mount point.
//!
//! Normally started by `famfs mount DEV MPT`, which waits for the meta files to appear. Runs in
//! the foreground until the file system is unmounted (`famfs umount MPT`, `umount MPT`) or it
//! receives SIGINT/SIGTERM/SIGHUP, in which case it unmounts first.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use famfs_server::mount::{self, MountOptions};
use famfs_server::{Config, DaxPolicy, FileSystem, Transport, session, watch};
use nix::sys::signal::{SigSet, Signal};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Dax {
    /// Use the famfs kernel path (GET_FMAP) when the kernel offers it and can map the device.
    Auto,
    /// Use it whenever the kernel offers it (testing with emulated kernels).
    Always,
    /// Always serve READ/WRITE from the device mapping.
    Off,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TransportArg {
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
struct Args {
    /// The dax device or stand-in file.
    device: PathBuf,
    /// Where to mount it (an existing directory).
    mountpoint: PathBuf,
    /// This host's system UUID (default: $FAMFS_SYSTEM_UUID, else /opt/famfs/system_uuid).
    #[arg(long)]
    system_uuid: Option<uuid::Uuid>,
    /// Entry and attribute cache timeout, in seconds.
    #[arg(long, default_value_t = 1.0)]
    timeout: f64,
    /// Only root may use the mount (no allow_other).
    #[arg(long)]
    no_allow_other: bool,
    /// Do not let the kernel check permissions from the file modes.
    #[arg(long)]
    no_default_permissions: bool,
    /// famfs kernel path policy.
    #[arg(long, value_enum, default_value_t = Dax::Auto)]
    dax: Dax,
    /// How often to look for new log entries, in milliseconds.
    #[arg(long, default_value_t = 100)]
    poll_ms: u64,
    /// Request-handling threads of the /dev/fuse loop (io_uring uses one per CPU).
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// How requests reach the daemon: io_uring queues pinned one per CPU (each request is
    /// answered on the CPU that made it), or the /dev/fuse read/writev loop.
    #[arg(long, value_enum, default_value_t = TransportArg::Auto)]
    transport: TransportArg,
    /// More logging (-v info, -vv debug); RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn main() {
    let args = Args::parse();
    let level = match args.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(args) {
        eprintln!("famfs_fused: {}", error_chain(&e));
        std::process::exit(1);
    }
}

/// `e` and its causes joined with ": ", each said once: a cause whose text is already in the
/// message (an error that shows its source and also returns it from `source()`) is skipped.
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if out.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
    }
    out
}

fn run(args: Args) -> anyhow::Result<()> {
    if !(args.timeout.is_finite() && args.timeout >= 0.0) {
        bail!("--timeout must be a non-negative number of seconds");
    }
    let mpt = std::fs::canonicalize(&args.mountpoint)
        .with_context(|| format!("mount point {}", args.mountpoint.display()))?;
    if !mpt.is_dir() {
        bail!("mount point {} is not a directory", mpt.display());
    }
    let device = std::fs::canonicalize(&args.device)
        .with_context(|| format!("device {}", args.device.display()))?;
    if let Some(src) = mount::famfs_mount_source(&mpt) {
        bail!("{} is already a famfs mount (of {src})", mpt.display());
    }
    let mut cfg = Config::new(&device);
    cfg.system_uuid = args.system_uuid;
    cfg.timeout = Duration::from_secs_f64(args.timeout);
    cfg.dax = match args.dax {
        Dax::Auto => DaxPolicy::Auto,
        Dax::Always => DaxPolicy::Always,
        Dax::Off => DaxPolicy::Off,
    };
    cfg.poll = Duration::from_millis(args.poll_ms.max(1));
    cfg.threads = args.threads.clamp(1, 64);
    cfg.transport = match args.transport {
        TransportArg::Auto => Transport::Auto,
        TransportArg::Uring => Transport::Uring,
        TransportArg::Dev => Transport::Dev,
    };
    let fs = FileSystem::open(cfg).context("cannot serve this device")?;

    // Signals are handled by one thread; every other thread inherits the blocked mask.
    let mut sigs = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        sigs.add(s);
    }
    sigs.thread_block().context("blocking signals")?;

    let fuse = mount::open_dev_fuse()?;
    mount::mount(
        &fuse,
        &device,
        &mpt,
        MountOptions {
            allow_other: !args.no_allow_other,
            default_permissions: !args.no_default_permissions,
        },
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch::spawn(Arc::clone(&fs), Arc::clone(&stop))?;
    {
        let mpt = mpt.clone();
        std::thread::Builder::new()
            .name("famfs-signals".into())
            .spawn(move || {
                if let Ok(sig) = sigs.wait() {
                    tracing::info!("{sig}: unmounting {}", mpt.display());
                    if let Err(e) = mount::unmount(&mpt, true) {
                        eprintln!("famfs_fused: {e}");
                    }
                }
            })?;
    }
    eprintln!(
        "famfs_fused: serving {} at {} as {} ({} nodes)",
        device.display(),
        mpt.display(),
        match fs.role() {
            famfs_log::role::Role::Master => "master",
            _ => "client",
        },
        fs.node_count()
    );
    // INIT is answered on this descriptor; then the workers start on clones of it.
    let result = session::run(&fs, fuse, mount::clone_channel, |_| {});
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    // If the loop ended for any other reason than an unmount, do not leave a dead mount.
    if mount::famfs_mount_source(&mpt).is_some() {
        let _ = mount::unmount(&mpt, true);
    }
    result.context("FUSE session")
}
