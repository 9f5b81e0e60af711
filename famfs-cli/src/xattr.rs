//! Reading extended attributes: the daemon publishes its facts (`user.famfs.pid`, `.role`,
//! `.control`, `.stats`, ...) on the mount root.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The value of extended attribute `name` of `path`, read into a buffer of `max` bytes (a
/// larger value fails with ERANGE).
pub fn read(path: &Path, name: &str, max: usize) -> std::io::Result<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes())?;
    let n = CString::new(name)?;
    let mut buf = vec![0u8; max];
    // SAFETY: both strings are NUL-terminated and live across the call; the buffer is valid for
    // `buf.len()` bytes and the kernel writes at most that many.
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(r as usize);
    Ok(buf)
}
