//! The readiness channel (`famfs_fused --ready-fd N`): the process that started the daemon
//! (`famfs mount`) passes the write end of a pipe as descriptor N, and the daemon writes exactly
//! one line to it, then closes it:
//!
//! * `ok` once the file system is mounted and serving, or
//! * the error that stopped it (one line, without the `famfs_fused: ` prefix of its stderr).
//!
//! A daemon that dies without writing closes the pipe by exiting: the reader sees end of file.

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};

use crate::ServerError;

/// What a ready line says for success.
pub const READY_OK: &str = "ok";

/// The daemon's end of the readiness channel; reporting consumes it (later reports do nothing).
#[derive(Debug, Default)]
pub struct ReadyFd(Option<File>);

impl ReadyFd {
    /// No channel: reports go nowhere.
    pub fn none() -> ReadyFd {
        ReadyFd(None)
    }

    /// Take over descriptor `fd`, inherited from the parent (made close-on-exec here).
    pub fn from_raw(fd: RawFd) -> Result<ReadyFd, ServerError> {
        let bad = |e: nix::errno::Errno| {
            ServerError::Channel(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("--ready-fd {fd}: {e}"),
            ))
        };
        if fd <= 2 {
            return Err(bad(nix::errno::Errno::EBADF));
        }
        // SAFETY: F_GETFD only reads the descriptor's flags; it fails with EBADF if `fd` is not
        // open, in which case nothing is taken over.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 {
            return Err(bad(nix::errno::Errno::last()));
        }
        // SAFETY: as above; setting FD_CLOEXEC changes only this descriptor's flags.
        unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
        // SAFETY: `fd` is open (checked above) and was handed to this process for this purpose
        // on its command line: nothing else in the process owns or closes it.
        Ok(ReadyFd(Some(unsafe { File::from_raw_fd(fd) })))
    }

    /// Say "mounted and serving" (once).
    pub fn ok(&mut self) {
        self.send(READY_OK);
    }

    /// Say why the daemon failed (once; line breaks become "; ").
    pub fn fail(&mut self, message: &str) {
        let one_line = message.trim().replace('\n', "; ");
        let line = if one_line == READY_OK {
            format!("error: {one_line}")
        } else {
            one_line
        };
        self.send(&line);
    }

    fn send(&mut self, line: &str) {
        if let Some(mut f) = self.0.take() {
            // The reader may be gone (it gave up waiting): nothing to do about it.
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::IntoRawFd;

    fn pipe() -> (File, RawFd) {
        let (r, w) = nix::unistd::pipe().unwrap();
        (File::from(r), w.into_raw_fd())
    }

    #[test]
    fn one_line_then_closed() {
        let (mut r, w) = pipe();
        let mut ready = ReadyFd::from_raw(w).unwrap();
        ready.ok();
        ready.fail("too late");
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "ok\n", "one line, then end of file");

        let (mut r, w) = pipe();
        let mut ready = ReadyFd::from_raw(w).unwrap();
        ready.fail("dev.img: bad log\nheader\n");
        ready.ok();
        drop(ready);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "dev.img: bad log; header\n");
    }

    #[test]
    fn bad_descriptors_are_refused() {
        assert!(ReadyFd::from_raw(1).is_err(), "stdout is not a ready fd");
        assert!(ReadyFd::from_raw(987_654).is_err(), "not open");
        ReadyFd::none().ok();
    }
}
