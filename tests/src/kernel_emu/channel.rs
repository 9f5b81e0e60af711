//! The kernel's end of the `SOCK_SEQPACKET` pair standing in for `/dev/fuse`: one message per
//! request or reply, like reads and writes of the FUSE device.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv, send, setsockopt, sockopt};

/// Socket buffer the emulator asks for on both ends: a message may not exceed the sender's
/// send buffer, and READ/WRITE carry up to 1 MiB (the kernel doubles the value).
const WANTED_SNDBUF: usize = 4 << 20;

/// Largest message either side can send (below the send buffer, with room for the kernel's
/// per-message overhead).
pub(crate) fn raise_buffers(fd: &OwnedFd) -> usize {
    // SO_SNDBUFFORCE passes wmem_max for privileged callers; fall back to SO_SNDBUF.
    if setsockopt(fd, sockopt::SndBufForce, &WANTED_SNDBUF).is_err() {
        let _ = setsockopt(fd, sockopt::SndBuf, &WANTED_SNDBUF);
    }
    let _ = setsockopt(fd, sockopt::RcvBufForce, &WANTED_SNDBUF)
        .or_else(|_| setsockopt(fd, sockopt::RcvBuf, &WANTED_SNDBUF));
    let got = nix::sys::socket::getsockopt(fd, sockopt::SndBuf).unwrap_or(212_992);
    got.saturating_sub(4096)
}

/// The kernel end of the channel.
#[derive(Debug)]
pub(crate) struct Channel {
    fd: OwnedFd,
    buf: Vec<u8>,
}

/// What a receive produced.
#[derive(Debug)]
pub(crate) enum Received {
    /// A message of this many bytes is in the buffer.
    Message(usize),
    /// A message longer than the buffer (its full length).
    Truncated(usize),
    /// The server closed its end.
    Closed,
    /// Nothing within the timeout.
    Nothing,
}

impl Channel {
    /// Wraps the kernel end; `max_message` sizes the receive buffer.
    pub(crate) fn new(fd: OwnedFd, max_message: usize) -> Channel {
        Channel {
            fd,
            buf: vec![0u8; max_message],
        }
    }

    /// The last message received.
    pub(crate) fn message(&self, len: usize) -> &[u8] {
        &self.buf[..len]
    }

    /// The receive buffer size.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Sends one message.
    pub(crate) fn send(&self, msg: &[u8]) -> std::io::Result<()> {
        loop {
            match send(self.fd.as_raw_fd(), msg, MsgFlags::MSG_NOSIGNAL) {
                Ok(n) if n == msg.len() => return Ok(()),
                Ok(n) => {
                    return Err(std::io::Error::other(format!(
                        "short send: {n} of {} bytes",
                        msg.len()
                    )));
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Receives one message, waiting up to `timeout`.
    pub(crate) fn recv(&mut self, timeout: Duration) -> std::io::Result<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = u16::try_from(left.as_millis().min(u128::from(u16::MAX))).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) if left.is_zero() => return Ok(Received::Nothing),
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let revents = fds[0].revents().unwrap_or(PollFlags::empty());
            if !revents.contains(PollFlags::POLLIN) && revents.contains(PollFlags::POLLHUP) {
                return Ok(Received::Closed);
            }
            match recv(
                self.fd.as_raw_fd(),
                &mut self.buf,
                MsgFlags::MSG_TRUNC | MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(0) => return Ok(Received::Closed),
                Ok(n) if n > self.buf.len() => return Ok(Received::Truncated(n)),
                Ok(n) => return Ok(Received::Message(n)),
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Closes the sending direction: the server's reads then return end of file and its
    /// workers stop.
    pub(crate) fn shutdown(&self) {
        let _ = nix::sys::socket::shutdown(self.fd.as_raw_fd(), nix::sys::socket::Shutdown::Both);
    }
}
