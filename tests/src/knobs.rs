//! Kernel settings the transport tests and benchmarks change (as root) and put back: the `fuse`
//! module parameter `enable_uring` (FUSE over io_uring) and the sysctl
//! `fs.fuse.max_pages_limit` (largest request). The daemon never changes them itself.
//!
//! A [`Knob`] holds a setting for as long as it lives; holders of the same setting in one
//! process share it (the first sets it, the last restores the value found), so tests running
//! in parallel threads do not undo each other.
//!
//! The transport the mount tests use comes from `$FAMFS_TEST_TRANSPORT` (`uring`, `dev` or
//! `auto`; unset means the daemon's default, `auto`): `scripts/test-all.sh` runs the mount
//! tests once more with `uring`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, MutexGuard};

use famfs_server::Transport;

/// The `fuse` module parameter that lets connections use io_uring.
pub const ENABLE_URING: &str = "/sys/module/fuse/parameters/enable_uring";
/// The sysctl bounding a request's pages.
pub const MAX_PAGES_LIMIT: &str = "/proc/sys/fs/fuse/max_pages_limit";

/// The value found before the first holder set it, and how many hold it.
struct Held {
    old: String,
    value: String,
    holders: usize,
}

fn table() -> MutexGuard<'static, HashMap<PathBuf, Held>> {
    static T: LazyLock<Mutex<HashMap<PathBuf, Held>>> = LazyLock::new(Default::default);
    T.lock().unwrap_or_else(|e| e.into_inner())
}

/// A kernel setting held at a value; restored when the last holder drops.
#[derive(Debug)]
pub struct Knob {
    path: PathBuf,
}

impl Knob {
    /// Sets `path` to `value` (or joins the holders if this process already holds it at that
    /// value). Fails if it cannot be written, or is held at another value.
    pub fn set(path: &Path, value: &str) -> Result<Knob, String> {
        let mut t = table();
        if let Some(h) = t.get_mut(path) {
            if h.value != value {
                return Err(format!(
                    "{} is held at {} by another test",
                    path.display(),
                    h.value
                ));
            }
            h.holders += 1;
            return Ok(Knob {
                path: path.to_path_buf(),
            });
        }
        let old = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .trim()
            .to_string();
        std::fs::write(path, value).map_err(|e| format!("writing {}: {e}", path.display()))?;
        let now = std::fs::read_to_string(path).unwrap_or_default();
        if now.trim() != value {
            let _ = std::fs::write(path, &old);
            return Err(format!("{} did not take {value}", path.display()));
        }
        t.insert(
            path.to_path_buf(),
            Held {
                old,
                value: value.to_string(),
                holders: 1,
            },
        );
        Ok(Knob {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Knob {
    fn drop(&mut self) {
        let mut t = table();
        if let Some(h) = t.get_mut(&self.path) {
            h.holders -= 1;
            if h.holders == 0 {
                let _ = std::fs::write(&self.path, &h.old);
                t.remove(&self.path);
            }
        }
    }
}

/// `enable_uring` on for the guard's life; `None` (after failing under `CI=true`, or saying
/// SKIPPED) if this kernel has no FUSE over io_uring or the parameter cannot be set.
pub fn uring_on(test: &str) -> Option<Knob> {
    match Knob::set(Path::new(ENABLE_URING), "Y") {
        Ok(k) => Some(k),
        Err(e) => {
            crate::prereq::missing(test, &format!("FUSE over io_uring (Linux 6.14+): {e}"));
            None
        }
    }
}

/// `enable_uring` off for the guard's life (`None` if it cannot be set: no such parameter).
pub fn uring_off() -> Option<Knob> {
    Knob::set(Path::new(ENABLE_URING), "N").ok()
}

/// `fs.fuse.max_pages_limit` raised to `pages` for the guard's life, if it is lower (`None`
/// if it is already that high, or cannot be set: older kernels have a fixed 256).
pub fn max_pages_at_least(pages: u32) -> Option<Knob> {
    let now: u32 = std::fs::read_to_string(MAX_PAGES_LIMIT)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if now >= pages {
        return None;
    }
    Knob::set(Path::new(MAX_PAGES_LIMIT), &pages.to_string()).ok()
}

/// The transport `$FAMFS_TEST_TRANSPORT` asks for (`None` if unset or empty).
pub fn transport_from_env() -> Option<Transport> {
    match std::env::var("FAMFS_TEST_TRANSPORT").ok()?.as_str() {
        "" => None,
        "uring" => Some(Transport::Uring),
        "dev" => Some(Transport::Dev),
        "auto" => Some(Transport::Auto),
        other => panic!("FAMFS_TEST_TRANSPORT={other}: expected uring, dev or auto"),
    }
}

/// The `--transport` value for `t`.
pub fn transport_arg(t: Transport) -> &'static str {
    match t {
        Transport::Uring => "uring",
        Transport::Dev => "dev",
        Transport::Auto => "auto",
    }
}

/// For a mount about to start with transport `t`: holds `enable_uring` on when `t` is
/// `Uring` (panics if it cannot be, naming `test`: the test asked for io_uring).
pub fn for_transport(t: Option<Transport>, test: &str) -> Option<Knob> {
    if t != Some(Transport::Uring) {
        return None;
    }
    match Knob::set(Path::new(ENABLE_URING), "Y") {
        Ok(k) => Some(k),
        Err(e) => panic!("{test}: FAMFS_TEST_TRANSPORT=uring but {e}"),
    }
}
