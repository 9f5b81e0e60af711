//! The emulator's error type: every way a server can misbehave, typed, with the errno the
//! corresponding system call would return on a real famfs kernel.

use std::path::PathBuf;
use std::time::Duration;

use fuse_famfs_proto::abi::Opcode;
use fuse_famfs_proto::reply::ReplyError;
use fuse_famfs_proto::request::EncodeError;
use fuse_famfs_proto::{Errno, FmapError};

/// What went wrong in an emulated operation.
#[derive(Debug, thiserror::Error)]
pub enum EmuError {
    /// Reading or writing the channel failed.
    #[error("FUSE channel: {0}")]
    Channel(#[from] std::io::Error),
    /// The server could not start.
    #[error("server: {0}")]
    Server(#[from] famfs_server::ServerError),
    /// The server end of the channel was closed (the session ended).
    #[error("the server closed the session while {opcode:?} (unique {unique}) was pending")]
    Closed {
        /// The request waiting for an answer.
        opcode: Opcode,
        /// Its unique id.
        unique: u64,
    },
    /// A request could not be encoded (a test bug).
    #[error("encoding {opcode:?}: {source}")]
    Encode {
        /// The opcode.
        opcode: Opcode,
        /// Why.
        #[source]
        source: EncodeError,
    },
    /// No reply arrived in time.
    #[error("no reply to {opcode:?} (unique {unique}) within {timeout:?}")]
    Timeout {
        /// The opcode.
        opcode: Opcode,
        /// Its unique id.
        unique: u64,
        /// How long the emulator waited.
        timeout: Duration,
    },
    /// A reply for another request (or a second reply) arrived.
    #[error("reply with unique {got} while waiting for {opcode:?} unique {expected}")]
    UnexpectedReply {
        /// The opcode waited for.
        opcode: Opcode,
        /// Its unique id.
        expected: u64,
        /// The unique id of the reply that came.
        got: u64,
    },
    /// A reply larger than the emulator's buffer (the kernel would refuse the write).
    #[error("reply of {len} bytes exceeds the {max}-byte buffer")]
    Oversized {
        /// Bytes the server sent.
        len: usize,
        /// Buffer size.
        max: usize,
    },
    /// The server answered with an error.
    #[error("{opcode:?}: server replied {errno}")]
    Errno {
        /// The opcode.
        opcode: Opcode,
        /// The error.
        errno: Errno,
    },
    /// The reply breaks the FUSE core's rules (header, size): the kernel would fail the
    /// server's write with EINVAL and the request with EIO.
    #[error("{opcode:?}: reply breaks the kernel's rules: {source}")]
    BadReply {
        /// The opcode.
        opcode: Opcode,
        /// Why.
        #[source]
        source: ReplyError,
    },
    /// A GET_FMAP reply the famfs kernel refuses; open(2) fails with [`FmapError::errno`].
    #[error("GET_FMAP for node {nodeid}: {source}")]
    Fmap {
        /// The file.
        nodeid: u64,
        /// Why.
        #[source]
        source: FmapError,
    },
    /// A GET_DAXDEV reply that names no usable device (the kernel marks the slot bad; I/O on
    /// files using it then fails with EIO).
    #[error("dax device {index}: {why}")]
    Daxdev {
        /// The daxdev index.
        index: u32,
        /// Why it is unusable.
        why: String,
    },
    /// A path component was not found (or another lookup error).
    #[error("lookup of {path}: {errno}")]
    Lookup {
        /// The path looked up.
        path: PathBuf,
        /// The error.
        errno: Errno,
    },
    /// famfs I/O on a node that is not an open famfs regular file.
    #[error("node {nodeid}: {why}")]
    NotFamfsFile {
        /// The node.
        nodeid: u64,
        /// Why.
        why: &'static str,
    },
    /// i_size (from the latest attributes) differs from the fmap's `file_size`: the kernel
    /// fails all I/O with ENXIO and marks the file bad.
    #[error("node {nodeid}: i_size {i_size} differs from the fmap file size {fmap_size}")]
    SizeMismatch {
        /// The node.
        nodeid: u64,
        /// The size from the attributes.
        i_size: u64,
        /// The size from the fmap.
        fmap_size: u64,
    },
    /// A file offset below EOF that the fmap does not resolve (the kernel's EIO / SIGBUS).
    #[error("node {nodeid}: offset {offset} resolves to no device range")]
    Unresolved {
        /// The node.
        nodeid: u64,
        /// The file offset.
        offset: u64,
    },
    /// A resolved device range outside the device (the kernel's iomap would fail: EIO).
    #[error(
        "node {nodeid}: offset {offset} resolves to device {dev_offset:#x}+{len:#x}, outside the device"
    )]
    OutsideDevice {
        /// The node.
        nodeid: u64,
        /// The file offset.
        offset: u64,
        /// The device offset.
        dev_offset: u64,
        /// The length.
        len: u64,
    },
    /// A reply that parses but says something impossible.
    #[error("{opcode:?}: {why}")]
    Protocol {
        /// The opcode.
        opcode: Opcode,
        /// What is wrong.
        why: String,
    },
}

impl EmuError {
    /// The errno a process would see on a real kernel, where there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            EmuError::Errno { errno, .. } | EmuError::Lookup { errno, .. } => Some(*errno),
            EmuError::Fmap { source, .. } => Some(source.errno()),
            EmuError::BadReply { source, .. } => Some(source.errno()),
            EmuError::SizeMismatch { .. } => Some(Errno::ENXIO),
            EmuError::Daxdev { .. }
            | EmuError::Unresolved { .. }
            | EmuError::OutsideDevice { .. }
            | EmuError::Oversized { .. }
            | EmuError::Protocol { .. } => Some(Errno::EIO),
            EmuError::Closed { .. } => Errno::new(libc::ENOTCONN),
            EmuError::NotFamfsFile { .. } => Some(Errno::EBADF),
            _ => None,
        }
    }
}
