//! End-to-end test helpers for famfs.
