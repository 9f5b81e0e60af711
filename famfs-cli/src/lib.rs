//! famfs-cli (work in progress).
