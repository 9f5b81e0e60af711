//! vendor-headers (work in progress).
