//! Offsets in a file and on a device: two `u64`s that must never be mixed up.

use core::fmt;

/// A byte offset in a file (what a read, write or fault asks for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FileOffset(pub u64);

/// A byte offset on a dax device (where the bytes are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DevOffset(pub u64);

impl fmt::Display for FileOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "file offset {:#x}", self.0)
    }
}

impl fmt::Display for DevOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device offset {:#x}", self.0)
    }
}
