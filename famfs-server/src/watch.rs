//! The log watcher: picks up entries the master appends (from this host or another) so new
//! files appear without any command on this host. A file created by the master becomes visible
//! here within one poll interval (default 100 ms), plus the kernel's entry timeout for a name
//! that was looked up and found missing just before (negative lookups are not cached).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crate::FileSystem;

/// Start the watcher thread; it stops when `stop` is set.
pub fn spawn(fs: Arc<FileSystem>, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("famfs-log-watch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(fs.poll_interval());
                if fs.refresh() {
                    tracing::debug!("log watcher: new entries");
                }
            }
        })
}
