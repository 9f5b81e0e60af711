//! famfs-log (work in progress).
