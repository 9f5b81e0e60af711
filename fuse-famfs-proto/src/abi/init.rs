//! The INIT handshake's wire structs (Linux uapi `fuse.h`, protocol 7.45 layout) and their
//! 64-bit flag word, split over `flags` and `flags2` behind `FUSE_INIT_EXT`.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::consts::{FUSE_INIT_EXT, FUSE_KERNEL_VERSION};
use super::fuse::wire_struct;

wire_struct! {
    /// `struct fuse_init_in` (64 bytes, minor ≥ 36; older kernels send a 16-byte prefix).
    pub struct InitIn(64) {
        /// Kernel's major version (7).
        pub major: u32,
        /// Kernel's minor version.
        pub minor: u32,
        /// Kernel's maximum readahead.
        pub max_readahead: u32,
        /// Flag bits 0..31 offered by the kernel.
        pub flags: u32,
        /// Flag bits 32..63 (valid only with `FUSE_INIT_EXT`); famfs: bit 11 = FUSE_DAX_FMAP.
        pub flags2: u32,
        /// Zero.
        pub unused: [u32; 11],
    }
}

wire_struct! {
    /// `struct fuse_init_out` (64 bytes, 7.43+ layout).
    pub struct InitOut(64) {
        /// Server's major version.
        pub major: u32,
        /// Server's minor version.
        pub minor: u32,
        /// Maximum readahead accepted.
        pub max_readahead: u32,
        /// Flag bits 0..31 accepted (set `FUSE_INIT_EXT` to send `flags2`).
        pub flags: u32,
        /// Maximum number of pending background requests.
        pub max_background: u16,
        /// Background congestion threshold.
        pub congestion_threshold: u16,
        /// Maximum WRITE payload.
        pub max_write: u32,
        /// Timestamp granularity in ns.
        pub time_gran: u32,
        /// Maximum pages per request (with `FUSE_MAX_PAGES`).
        pub max_pages: u16,
        /// Mapping alignment (log2, with `FUSE_MAP_ALIGNMENT`).
        pub map_alignment: u16,
        /// Flag bits 32..63 accepted; famfs: set bit 11 to accept FUSE_DAX_FMAP.
        pub flags2: u32,
        /// Maximum stacking depth (passthrough).
        pub max_stack_depth: u32,
        /// Request timeout in seconds (with `FUSE_REQUEST_TIMEOUT`).
        pub request_timeout: u16,
        /// Zero.
        pub unused: [u16; 11],
    }
}

impl InitIn {
    /// The INIT argument a kernel of protocol 7.`minor` sends offering the 64-bit flag word
    /// `flags` (for harnesses playing the kernel). `FUSE_INIT_EXT` is added when any bit above
    /// 31 is offered, since the kernel sends `flags2` only with it.
    pub fn offer(minor: u32, max_readahead: u32, flags: u64) -> Self {
        let flags = if flags >> 32 != 0 {
            flags | FUSE_INIT_EXT
        } else {
            flags
        };
        InitIn {
            major: FUSE_KERNEL_VERSION,
            minor,
            max_readahead,
            flags: flags as u32,
            flags2: (flags >> 32) as u32,
            unused: [0; 11],
        }
    }

    /// The 64-bit flag word the kernel offers: `flags`, plus `flags2 << 32` when `FUSE_INIT_EXT`
    /// is set (the kernel ignores `flags2` otherwise).
    pub fn flags64(&self) -> u64 {
        combine_flags(self.flags, self.flags2)
    }
}

impl InitOut {
    /// The 64-bit flag word the server accepted (same rule as [`InitIn::flags64`]).
    pub fn flags64(&self) -> u64 {
        combine_flags(self.flags, self.flags2)
    }

    /// Stores a 64-bit flag word into `flags`/`flags2`. Sets `FUSE_INIT_EXT` when any bit above 31
    /// is set, since the kernel reads `flags2` only then.
    pub fn set_flags64(&mut self, flags: u64) {
        let flags = if flags >> 32 != 0 {
            flags | FUSE_INIT_EXT
        } else {
            flags
        };
        self.flags = flags as u32;
        self.flags2 = (flags >> 32) as u32;
    }
}

fn combine_flags(flags: u32, flags2: u32) -> u64 {
    let lo = u64::from(flags);
    if lo & FUSE_INIT_EXT != 0 {
        lo | (u64::from(flags2) << 32)
    } else {
        lo
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::consts::*;

    #[test]
    fn flags64_requires_init_ext() {
        let mut i = InitIn {
            flags: FUSE_ASYNC_READ as u32,
            flags2: 0x800,
            ..Default::default()
        };
        assert_eq!(i.flags64(), FUSE_ASYNC_READ);
        i.flags |= FUSE_INIT_EXT as u32;
        assert_eq!(i.flags64(), FUSE_ASYNC_READ | FUSE_INIT_EXT | FUSE_DAX_FMAP);
    }

    #[test]
    fn offer_adds_init_ext_for_high_bits() {
        let i = InitIn::offer(45, 4096, FUSE_DAX_FMAP | FUSE_ASYNC_READ);
        assert_eq!((i.major, i.minor, i.flags2), (7, 45, 0x800));
        assert_eq!(i.flags64(), FUSE_DAX_FMAP | FUSE_ASYNC_READ | FUSE_INIT_EXT);
        assert_eq!(
            InitIn::offer(45, 0, FUSE_ASYNC_READ).flags64(),
            FUSE_ASYNC_READ
        );
    }

    #[test]
    fn set_flags64_sets_init_ext() {
        let mut o = InitOut::default();
        o.set_flags64(FUSE_DAX_FMAP | FUSE_BIG_WRITES);
        assert_eq!(o.flags2, 0x800);
        assert_eq!(u64::from(o.flags), FUSE_BIG_WRITES | FUSE_INIT_EXT);
        o.set_flags64(FUSE_BIG_WRITES);
        assert_eq!(o.flags2, 0);
        assert_eq!(u64::from(o.flags), FUSE_BIG_WRITES);
    }
}
