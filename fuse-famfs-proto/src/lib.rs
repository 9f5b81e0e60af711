//! fuse-famfs-proto (work in progress).
