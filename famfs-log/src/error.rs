//! The crate's error type.

use std::path::PathBuf;

use famfs_fsdev::FsdevError;

use crate::alloc::AllocError;
use crate::entry::EntryError;
use crate::header::LogHeaderError;
use crate::namespace::NsError;
use crate::path::PathProblem;
use crate::superblock::SuperblockError;

/// How the media no longer holds the file system that was replayed from it: another host
/// re-formatted the device, or rewrote or rewound the log. What was replayed must not be served
/// any more; [`Famfs::reload`](crate::Famfs::reload) replays the media as it is now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rewritten {
    /// The superblock names another file system.
    #[error("the device was re-formatted: file-system UUID {was} is now {now}")]
    Reformatted {
        /// The UUID replayed.
        was: uuid::Uuid,
        /// The UUID on the media now.
        now: uuid::Uuid,
    },
    /// The same file system UUID with a different superblock (log length, device size, master).
    #[error("the superblock of file system {0} changed")]
    SuperblockChanged(uuid::Uuid),
    /// The header counts fewer entries than were replayed.
    #[error("the log went backwards: it holds {now} entries, {seen} were replayed")]
    WentBackwards {
        /// Entries now.
        now: u64,
        /// Entries replayed.
        seen: u64,
    },
    /// A replayed entry is not in its slot any more.
    #[error("log entry {index} is no longer the one replayed: the log was rewritten")]
    EntryChanged {
        /// The slot.
        index: u64,
    },
}

/// Errors from reading, checking and writing a famfs.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Device or media access failed.
    #[error(transparent)]
    Media(#[from] FsdevError),
    /// The superblock is missing or invalid.
    #[error("{0}")]
    Superblock(#[from] SuperblockError),
    /// The log header is invalid.
    #[error("{0}")]
    LogHeader(#[from] LogHeaderError),
    /// The media no longer holds what was replayed.
    #[error("{0}")]
    Rewritten(#[from] Rewritten),
    /// This host is not the master.
    #[error(
        "not running on the master node: this host's system UUID is {local}, the file system belongs to {owner}"
    )]
    NotMaster {
        /// This host's system UUID.
        local: String,
        /// The superblock's system UUID.
        owner: uuid::Uuid,
    },
    /// Every log slot is used.
    #[error("the log is full ({slots} entries); no more files or directories can be created")]
    LogFull {
        /// Number of slots.
        slots: u64,
    },
    /// Allocation failed.
    #[error("{0}")]
    Alloc(#[from] AllocError),
    /// A bad path was given.
    #[error("invalid path {path:?}: {problem}")]
    Path {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        problem: PathProblem,
    },
    /// Path lookup or creation failed.
    #[error("{0}")]
    Namespace(#[from] NsError),
    /// An entry this writer built was refused (a bug, reported rather than hidden).
    #[error("internal error: appended entry {index} was not applied: {why}")]
    Internal {
        /// Log index.
        index: u64,
        /// Why.
        why: String,
    },
    /// An entry could not be encoded.
    #[error("{0}")]
    Entry(#[from] EntryError),
    /// mkfs refused: a file system is already there.
    #[error("{0} already has a famfs superblock; use -f to overwrite it")]
    AlreadyFormatted(String),
    /// mkfs refused: the file system belongs to another host.
    #[error("{dev} has a superblock owned by another host ({owner}); use -f to overwrite it")]
    OwnedByOtherHost {
        /// Device.
        dev: String,
        /// Owner system UUID.
        owner: uuid::Uuid,
    },
    /// mkfs refused: bad geometry.
    #[error("{0}")]
    Geometry(String),
    /// The data written could not be read back.
    #[error("{0} is not writable (the superblock did not read back)")]
    NotWritable(String),
    /// The system UUID file could not be read or created.
    #[error("system UUID {path}: {detail}")]
    SystemUuid {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

impl LogError {
    /// The errno that best describes the error (exit codes, FUSE replies).
    pub fn errno(&self) -> i32 {
        use libc::*;
        match self {
            LogError::Media(e) => e.errno(),
            LogError::Superblock(_) | LogError::LogHeader(_) | LogError::Rewritten(_) => EUCLEAN,
            LogError::NotMaster { .. } => EPERM,
            LogError::LogFull { .. } => ENOSPC,
            LogError::Alloc(AllocError::BadInterleave(_)) => EINVAL,
            LogError::Alloc(AllocError::Empty) => EINVAL,
            LogError::Alloc(_) => ENOSPC,
            LogError::Path { .. } => EINVAL,
            LogError::Namespace(NsError::Exists(_)) => EEXIST,
            LogError::Namespace(NsError::Missing(_)) => ENOENT,
            LogError::Namespace(NsError::NotADirectory(_)) => ENOTDIR,
            LogError::Internal { .. } | LogError::Entry(_) => EIO,
            LogError::AlreadyFormatted(_) | LogError::OwnedByOtherHost { .. } => EEXIST,
            LogError::Geometry(_) => EINVAL,
            LogError::NotWritable(_) => EROFS,
            LogError::SystemUuid { .. } => EIO,
        }
    }
}
