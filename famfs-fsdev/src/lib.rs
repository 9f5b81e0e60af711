//! famfs-fsdev (work in progress).
