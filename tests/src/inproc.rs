//! A real FUSE mount served by a [`famfs_server::FileSystem`] inside the calling process (what
//! `famfs_fused` does, without a separate process): for benchmarks and profiling, where the
//! server should be built with the same profile as the measuring code.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use famfs_server::mount::{self, MountOptions};
use famfs_server::{Config, FileSystem, ServerError};

/// A mounted file system served by worker threads of this process; unmounted on drop.
pub struct InProcessMount {
    mpt: PathBuf,
    fs: Arc<FileSystem>,
    session: Option<JoinHandle<Result<(), ServerError>>>,
    watcher: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    _knob: Option<crate::knobs::Knob>,
}

impl std::fmt::Debug for InProcessMount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessMount")
            .field("mpt", &self.mpt)
            .finish_non_exhaustive()
    }
}

impl InProcessMount {
    /// Opens the file system with `cfg`, mounts `/dev/fuse` at `mpt` (as `famfs_fused` does:
    /// fstype `fuse.famfs`, `allow_other,default_permissions`), and serves it as the daemon
    /// does: INIT on the first descriptor, then `cfg.threads` workers, each on its own cloned
    /// channel, plus the log watcher. `$FAMFS_TEST_TRANSPORT`, when set, replaces
    /// `cfg.transport`; for `Uring`, `enable_uring` is held on while mounted.
    pub fn start(mut cfg: Config, mpt: &Path) -> Result<InProcessMount, ServerError> {
        if let Some(t) = crate::knobs::transport_from_env() {
            cfg.transport = t;
        }
        let knob = crate::knobs::for_transport(Some(cfg.transport), "InProcessMount");
        let device = cfg.device.clone();
        let fs = FileSystem::open(cfg)?;
        let fuse = mount::open_dev_fuse()?;
        mount::mount(
            &fuse,
            &device,
            mpt,
            MountOptions {
                allow_other: true,
                default_permissions: true,
            },
        )?;
        let f = Arc::clone(&fs);
        let session = std::thread::Builder::new()
            .name("inproc-fuse".into())
            .spawn(move || famfs_server::session::run(&f, fuse, mount::clone_channel, |_| {}))
            .map_err(ServerError::Channel)?;
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = famfs_server::watch::spawn(Arc::clone(&fs), Arc::clone(&stop))
            .map_err(ServerError::Channel)?;
        Ok(InProcessMount {
            mpt: mpt.to_path_buf(),
            fs,
            session: Some(session),
            watcher: Some((stop, watcher)),
            _knob: knob,
        })
    }

    /// The file system served.
    pub fn fs(&self) -> &Arc<FileSystem> {
        &self.fs
    }

    /// The mount point.
    pub fn mountpoint(&self) -> &Path {
        &self.mpt
    }

    /// Unmounts and waits for the workers to stop.
    pub fn stop(mut self) -> Result<(), ServerError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), ServerError> {
        let mut result = Ok(());
        if self.session.is_some() {
            result = mount::unmount(&self.mpt, true);
        }
        if let Some((stop, h)) = self.watcher.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = h.join();
        }
        if let Some(h) = self.session.take() {
            match h.join() {
                Ok(r) => result = result.and(r),
                Err(_) => {
                    result = Err(ServerError::Channel(std::io::Error::other(
                        "session thread panicked",
                    )))
                }
            }
        }
        result
    }
}

impl Drop for InProcessMount {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
