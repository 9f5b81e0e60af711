//! Test prerequisites: a test that cannot run must FAIL under `CI=true` and may skip loudly
//! otherwise (project rule).

use std::io::Write as _;
use std::path::Path;

/// Whether `CI=true` is set.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Writes a line straight to stderr (libtest captures `eprintln!` of passing tests).
pub fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Reports a missing prerequisite: panics under `CI=true`, else prints a loud SKIPPED line.
/// Returns `false` so callers can `if !require(...) { return; }`.
pub fn missing(test: &str, what: &str) -> bool {
    assert!(!in_ci(), "CI=true: {test} needs {what}");
    say(&format!("SKIPPED {test}: needs {what}"));
    false
}

/// Root and `/dev/fuse` (real mounts).
pub fn root_and_fuse(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() && Path::new("/dev/fuse").exists() {
        true
    } else {
        missing(test, "root and /dev/fuse")
    }
}

/// Whether this process holds `CAP_SYS_RAWIO` (what the server checks before accepting famfs).
pub use famfs_server::has_cap_sys_rawio;

/// `CAP_SYS_RAWIO` (the famfs kernel path).
pub fn cap_sys_rawio(test: &str) -> bool {
    if has_cap_sys_rawio() {
        true
    } else {
        missing(test, "CAP_SYS_RAWIO (run as root)")
    }
}
