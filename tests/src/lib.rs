//! End-to-end test support for famfs: everything the tests in `tests/tests/` and the benchmarks
//! in `tests/benches/` share.
//!
//! | module | what |
//! |---|---|
//! | [`kernel_emu`] | [`KernelEmu`](kernel_emu::KernelEmu): a famfs kernel in user space driving a server over a socket pair (INIT, LOOKUP, OPEN + GET_FMAP + GET_DAXDEV with the kernel's validation, reads resolved through the map, READ for the stock path) |
//! | [`standin`] | [`StandIn`](standin::StandIn): a formatted stand-in device with pattern-filled files, corruption and hostile log entries |
//! | [`pattern`] | deterministic file contents checkable at any offset |
//! | [`fused`] | the `famfs_fused` binary: found or built, spawned on a mount point, killed, cleaned up |
//! | [`inproc`] | [`InProcessMount`](inproc::InProcessMount): a real mount served by threads of this process (benchmarks) |
//! | [`knobs`] | kernel settings held for a test and restored (`enable_uring`, `max_pages_limit`); the transport asked for by `$FAMFS_TEST_TRANSPORT` |
//! | [`prereq`] | root, `/dev/fuse`, `CAP_SYS_RAWIO`: fail under `CI=true`, skip loudly otherwise |
//!
//! Tests: `cargo test -p famfs-tests` (the mount tests need root and `/dev/fuse`).
//! Benchmarks: `cargo bench -p famfs-tests` (needs root and `/dev/fuse`; prints figures and
//! ratios against baselines measured in the same run).

pub mod fused;
pub mod inproc;
pub mod kernel_emu;
pub mod knobs;
pub mod pattern;
pub mod prereq;
pub mod standin;
