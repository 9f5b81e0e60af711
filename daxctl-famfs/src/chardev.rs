//! Character devices: what sysfs says about the one behind a device number, and waiting for
//! `/dev/daxX.Y` after a bind.
//!
//! The node is created by devtmpfs when the device is registered and normally already exists;
//! udev may re-create it or adjust it after a bind. Without the `udev` feature (or with no udevd
//! running) the node is polled for until the timeout.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::parse::parse_u64;
use crate::{DaxDev, DaxMode, Error, Result, Sysfs};

const POLL: Duration = Duration::from_millis(10);

/// The dax device behind a character device number, as opening it needs to know: no bus or
/// region walk, just the attributes under `<sysfs>/dev/char/M:m/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharDevInfo {
    /// `<sysfs>/dev/char/M:m` (a link into the device's directory).
    pub sysfs_dir: PathBuf,
    /// `size` in bytes.
    pub size: u64,
    /// `align` in bytes; `None` before Linux 5.10, which has no such attribute.
    pub align: Option<u64>,
    /// The mode, from the bound driver.
    pub mode: DaxMode,
}

impl Sysfs {
    /// The sysfs directory of character device `major:minor` (`<sysfs>/dev/char/M:m`).
    pub fn chardev_dir(&self, major: u32, minor: u32) -> PathBuf {
        self.sys(&format!("dev/char/{major}:{minor}"))
    }

    /// Size, alignment and mode of the dax device with character device number
    /// `major:minor`; `Ok(None)` when that device is not a dax device (it has no `size`
    /// attribute). Unreadable or malformed attributes are errors naming the file.
    pub fn chardev_info(&self, major: u32, minor: u32) -> Result<Option<CharDevInfo>> {
        let dir = self.chardev_dir(major, minor);
        let size_file = dir.join("size");
        if !self.backend.exists(&size_file) {
            return Ok(None);
        }
        let size = self.parse_attr(&size_file, parse_u64, "a size in bytes")?;
        let align_file = dir.join("align");
        let align = if self.backend.exists(&align_file) {
            Some(self.parse_attr(&align_file, parse_u64, "an alignment in bytes")?)
        } else {
            None
        };
        let mode = DaxMode::from_driver(self.bound_driver(&dir).as_deref());
        Ok(Some(CharDevInfo {
            sysfs_dir: dir,
            size,
            align,
            mode,
        }))
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{DeviceSpec, FAKE_MAJOR, FakeSysfs, RegionSpec};

    #[test]
    fn chardev_info_reads_size_align_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeSysfs::new(dir.path()).unwrap();
        fake.add_region(&RegionSpec::nvdimm(0, 4 << 30, 2 << 30))
            .unwrap()
            .add_device(&DeviceSpec::new("dax0.0", 1 << 30).driver("fsdev_dax"))
            .unwrap()
            .add_device(&DeviceSpec::new("dax0.1", 1 << 30).align(None))
            .unwrap();
        let s = fake.sysfs();
        let info = s.chardev_info(FAKE_MAJOR, 0).unwrap().unwrap();
        assert_eq!(info.size, 1 << 30);
        assert_eq!(info.align, Some(2 << 20));
        assert_eq!(info.mode, DaxMode::Famfs);
        assert_eq!(info.sysfs_dir, s.chardev_dir(FAKE_MAJOR, 0));
        let info = s.chardev_info(FAKE_MAJOR, 1).unwrap().unwrap();
        assert_eq!((info.align, info.mode), (None, DaxMode::Disabled));
        // Not a dax device: no such directory.
        assert_eq!(s.chardev_info(1, 3).unwrap(), None);
    }

    #[test]
    fn chardev_info_accepts_hex_and_refuses_garbage() {
        let root = tempfile::tempdir().unwrap();
        let d = root.path().join("dev/char/7:9");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("size"), "0x200000000\n").unwrap();
        let s = Sysfs::new(root.path());
        let info = s.chardev_info(7, 9).unwrap().unwrap();
        assert_eq!((info.size, info.align), (8 << 30, None));
        std::fs::write(d.join("align"), "huge\n").unwrap();
        let e = s.chardev_info(7, 9).unwrap_err();
        assert!(e.to_string().contains("align"), "{e}");
        assert_eq!(e.errno(), Some(libc::EINVAL));
    }
}
