//! famfs-server (work in progress).
