//! Waiting for `/dev/daxX.Y` after a bind.
//!
//! The node is created by devtmpfs when the device is registered and normally already exists;
//! udev may re-create it or adjust it after a bind. Without the `udev` feature (or with no udevd
//! running) the node is polled for until the timeout.

use std::time::{Duration, Instant};

use crate::{DaxDev, Error, Result, Sysfs};

const POLL: Duration = Duration::from_millis(10);

impl Sysfs {
    /// Waits until the device's node exists under the device-node root, up to the configured
    /// timeout (ETIMEDOUT otherwise).
    pub fn wait_for_chardev(&self, dev: &DaxDev) -> Result<()> {
        let path = self.dev_root.join(&dev.name);
        let start = Instant::now();
        if std::fs::symlink_metadata(&path).is_ok() {
            return Ok(());
        }
        #[cfg(feature = "udev")]
        let monitor = udev_wait::Monitor::new();
        loop {
            if std::fs::symlink_metadata(&path).is_ok() {
                return Ok(());
            }
            let elapsed = start.elapsed();
            if elapsed >= self.chardev_timeout {
                return Err(Error::ChardevTimeout {
                    path,
                    timeout: self.chardev_timeout,
                });
            }
            let slice = POLL.min(self.chardev_timeout - elapsed);
            #[cfg(feature = "udev")]
            if let Some(m) = &monitor {
                m.wait(
                    slice
                        .max(Duration::from_millis(50))
                        .min(self.chardev_timeout - elapsed),
                );
                continue;
            }
            std::thread::sleep(slice);
        }
    }
}

#[cfg(feature = "udev")]
mod udev_wait {
    //! A udev monitor on the dax subsystem: wakes the waiter on add/bind events instead of
    //! sleeping blindly. Falls back to polling when no monitor can be opened.

    use std::os::fd::AsRawFd;
    use std::time::Duration;

    pub(super) struct Monitor(udev::MonitorSocket);

    impl Monitor {
        pub(super) fn new() -> Option<Self> {
            let sock = udev::MonitorBuilder::new()
                .and_then(|b| b.match_subsystem("dax"))
                .and_then(|b| b.listen());
            match sock {
                Ok(s) => Some(Monitor(s)),
                Err(e) => {
                    tracing::debug!("udev monitor unavailable, polling: {e}");
                    None
                }
            }
        }

        /// Blocks until an event arrives or `timeout` passes, then drains pending events.
        pub(super) fn wait(&self, timeout: Duration) {
            let mut pfd = libc::pollfd {
                fd: self.0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
            // SAFETY: `pfd` is a valid, initialised pollfd that lives across the call, and we
            // pass a count of exactly one element.
            let _ = unsafe { libc::poll(&mut pfd, 1, ms) };
            for event in self.0.iter() {
                tracing::debug!(
                    "udev: {:?} {}",
                    event.event_type(),
                    event.sysname().to_string_lossy()
                );
            }
        }
    }
}
