//! daxctl-famfs (work in progress).
