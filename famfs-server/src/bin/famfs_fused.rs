//! `famfs_fused`: serve a famfs device over FUSE at a mount point.
//!
//! Normally started by `famfs mount DEV MPT`, which waits for the daemon's "ok" on the readiness
//! channel (`--ready-fd`) or prints the error the daemon reports there. Runs in
//! the foreground until the file system is unmounted (`famfs umount MPT`, `umount MPT`) or it
//! receives SIGINT/SIGTERM/SIGHUP, in which case it unmounts first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use famfs_server::cli::{Args, Dax, TransportArg};
use famfs_server::control::{self, ControlOptions, LogControl};
use famfs_server::mount::{self, MountOptions};
use famfs_server::ready::ReadyFd;
use famfs_server::{Config, DaxPolicy, FileSystem, MetaAccess, Transport, session, watch};
use nix::sys::signal::{SigSet, Signal};
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, reload, util::SubscriberInitExt};

/// The log filter, changeable through the control channel (`set-log-level`).
struct Filter(reload::Handle<EnvFilter, tracing_subscriber::Registry>);

impl LogControl for Filter {
    fn filter(&self) -> String {
        self.0.with_current(|f| f.to_string()).unwrap_or_default()
    }
    fn set_filter(&self, filter: &str) -> Result<(), String> {
        let f = EnvFilter::try_new(filter).map_err(|e| format!("{filter:?}: {e}"))?;
        self.0.reload(f).map_err(|e| e.to_string())
    }
}

fn main() {
    let args = Args::parse();
    let level = match args.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let (filter, handle) = reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    // The readiness channel gets one line: "ok" once serving, else the error (see `ready`).
    let mut ready = match args.ready_fd.map(ReadyFd::from_raw).transpose() {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => {
            eprintln!("famfs_fused: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = run(args, Arc::new(Filter(handle)), &mut ready) {
        let msg = error_chain(&e);
        eprintln!("famfs_fused: {msg}");
        ready.fail(&msg);
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

fn run(args: Args, log_control: Arc<dyn LogControl>, ready: &mut ReadyFd) -> anyhow::Result<()> {
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
    let fs = FileSystem::open(config(&args, &device)).context("cannot serve this device")?;

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
    // Which mount is ours: only that one is ever unmounted (a plain `umount MPT` followed by a
    // new mount at MPT must not have the new one torn down by this daemon on its way out).
    let own = match mount::MountId::of(&mpt) {
        Ok(id) => id,
        Err(e) => {
            let _ = mount::unmount(&mpt, true);
            return Err(e).context("identifying the new mount");
        }
    };
    // The CLI's request channel (removed when `control` drops, after the session); started once
    // the log has been read (at once, or after the bootstrap through the mount).
    let control_opts = (!args.no_control).then(|| ControlOptions {
        socket: control::default_socket_path(),
        mountpoint: Some(mpt.clone()),
        log_control: Some(log_control),
    });
    let control = Arc::new(Mutex::new(None));
    let boot_failed = Arc::new(Mutex::new(None));
    // The log was read before mounting (or there is none to read: formatting mode); else it is
    // read through the mount once the workers serve it.
    let served_at_init = fs.is_ready() || fs.is_formatting();
    if served_at_init {
        ready_to_serve(&fs, control_opts.clone(), &control, &device, &mpt);
    }
    // `famfs mount` hears "ok" once the tree is served: at INIT when the log was read before
    // mounting, else when the bootstrap through the mount has read it.
    let shared_ready = Arc::new(Mutex::new(std::mem::take(ready)));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch::spawn(Arc::clone(&fs), Arc::clone(&stop))?;
    spawn_signal_thread(sigs, mpt.clone(), own)?;
    // INIT is answered on this descriptor; then the workers start on clones of it.
    let result = session::run(&fs, fuse, mount::clone_channel, |_| {
        if served_at_init {
            lock(&shared_ready).ok();
            return;
        }
        // The workers start after this returns; the bootstrap reads through them.
        let boot = Bootstrap {
            fs: Arc::clone(&fs),
            control: Arc::clone(&control),
            failed: Arc::clone(&boot_failed),
            ready: Arc::clone(&shared_ready),
            device: device.clone(),
            mpt: mpt.clone(),
            own,
        };
        let spawned = std::thread::Builder::new()
            .name("famfs-bootstrap".into())
            .spawn(move || boot.run(control_opts));
        if let Err(e) = spawned {
            tracing::error!("cannot start the bootstrap thread: {e}");
            let _ = mount::unmount_own(&mpt, &own);
        }
    });
    fs.stats().log_summary();
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    // If the loop ended for any other reason than an unmount, do not leave a dead mount; but
    // leave alone a mount made at MPT since ours went away.
    let _ = mount::unmount_own(&mpt, &own);
    drop(control);
    *ready = std::mem::take(&mut *lock(&shared_ready));
    if let Some(e) = lock(&boot_failed).take() {
        return Err(anyhow::Error::new(e).context(format!("cannot serve {}", device.display())));
    }
    result.context("FUSE session")
}

/// A mutex's guard, also after a panic elsewhere.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reading the log through the own mount once it serves, then serving the tree.
struct Bootstrap {
    fs: Arc<FileSystem>,
    control: Arc<Mutex<Option<control::ControlServer>>>,
    failed: Arc<Mutex<Option<famfs_server::ServerError>>>,
    ready: Arc<Mutex<ReadyFd>>,
    device: std::path::PathBuf,
    mpt: std::path::PathBuf,
    own: mount::MountId,
}

impl Bootstrap {
    fn run(self, control_opts: Option<ControlOptions>) {
        match self.fs.bootstrap_through_mount(&self.mpt) {
            Ok(()) => {
                ready_to_serve(
                    &self.fs,
                    control_opts,
                    &self.control,
                    &self.device,
                    &self.mpt,
                );
                lock(&self.ready).ok();
            }
            Err(e) => {
                // The error goes to `famfs mount` when the session has ended (see `run`).
                *lock(&self.failed) = Some(e);
                let _ = mount::unmount_own(&self.mpt, &self.own);
            }
        }
    }
}

/// The thread that waits for SIGINT/SIGTERM/SIGHUP (blocked in every other thread) and then
/// unmounts this daemon's own mount, which ends the session.
fn spawn_signal_thread(
    sigs: SigSet,
    mpt: std::path::PathBuf,
    own: mount::MountId,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("famfs-signals".into())
        .spawn(move || {
            if let Ok(sig) = sigs.wait() {
                tracing::info!("{sig}: unmounting {}", mpt.display());
                if let Err(e) = mount::unmount_own(&mpt, &own) {
                    eprintln!("famfs_fused: {e}");
                }
            }
        })?;
    Ok(())
}

/// The daemon's configuration from its command line.
fn config(args: &Args, device: &std::path::Path) -> Config {
    let mut cfg = Config::new(device);
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
    if args.test_meta_through_mount {
        cfg.meta = MetaAccess::ThroughMount;
    }
    if args.test_famfs_mode {
        cfg.meta = MetaAccess::FamfsMode;
    }
    cfg.format_log_len = args.format_log_len;
    cfg
}

/// The log has been read: start the control channel and say what is served. In formatting
/// mode there is no log: only say so.
fn ready_to_serve(
    fs: &Arc<FileSystem>,
    opts: Option<ControlOptions>,
    control: &Mutex<Option<control::ControlServer>>,
    device: &std::path::Path,
    mpt: &std::path::Path,
) {
    if fs.is_formatting() {
        eprintln!(
            "famfs_fused: formatting {} at {} (meta files only)",
            device.display(),
            mpt.display()
        );
        return;
    }
    let started = opts.and_then(|opts| {
        control::start(Arc::clone(fs), opts)
            .map_err(|e| tracing::warn!("no control channel (the CLI appends itself): {e}"))
            .ok()
    });
    *control.lock().unwrap_or_else(|p| p.into_inner()) = started;
    eprintln!(
        "famfs_fused: serving {} at {} as {} ({} nodes{})",
        device.display(),
        mpt.display(),
        match fs.role() {
            famfs_log::role::Role::Master => "master",
            _ => "client",
        },
        fs.node_count(),
        if fs.meta_through_mount() {
            ", metadata read through the mount"
        } else {
            ""
        }
    );
}
