//! INIT negotiation: from the kernel's offer and the server's wishes to the reply.

use zerocopy::IntoBytes;

use super::{BuildError, check_room, finish, payload_mut};
use crate::abi::{
    FUSE_COMPAT_22_INIT_OUT_SIZE, FUSE_COMPAT_INIT_OUT_SIZE, FUSE_DAX_FMAP, FUSE_INIT_EXT,
    FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, FUSE_MAP_ALIGNMENT, FUSE_MAX_PAGES,
    FUSE_REQUEST_TIMEOUT, InitIn, InitOut, OutHeader,
};

/// What the server wants from the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitConfig {
    /// Flags wanted (64-bit word, e.g. `FUSE_ASYNC_READ | FUSE_DAX_FMAP`). Only those the kernel
    /// offers are accepted; `FUSE_INIT_EXT` is added whenever the kernel offered it.
    pub flags: u64,
    /// Readahead limit (the kernel's offer caps it).
    pub max_readahead: u32,
    /// Pending background request limit (0: kernel default).
    pub max_background: u16,
    /// Congestion threshold (0: kernel default).
    pub congestion_threshold: u16,
    /// Largest WRITE payload accepted (the kernel uses at least 4096).
    pub max_write: u32,
    /// Timestamp granularity in nanoseconds.
    pub time_gran: u32,
    /// Pages per request (sent only with `FUSE_MAX_PAGES`).
    pub max_pages: u16,
    /// log2 mapping alignment (sent only with `FUSE_MAP_ALIGNMENT`).
    pub map_alignment: u16,
    /// Passthrough stacking depth.
    pub max_stack_depth: u32,
    /// Request timeout in seconds (sent only with `FUSE_REQUEST_TIMEOUT`).
    pub request_timeout: u16,
}

impl Default for InitConfig {
    fn default() -> Self {
        InitConfig {
            flags: 0,
            max_readahead: u32::MAX,
            max_background: 0,
            congestion_threshold: 0,
            max_write: 1 << 20,
            time_gran: 1,
            max_pages: 256,
            map_alignment: 0,
            max_stack_depth: 0,
            request_timeout: 0,
        }
    }
}

/// The kernel offered an INIT this crate cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitError {
    /// Major version other than 7. Answer with EPROTO.
    #[error("unsupported FUSE major version {0}")]
    UnsupportedMajor(u32),
}

/// The outcome of [`negotiate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The reply struct.
    pub reply: InitOut,
    /// How many bytes of it to send (shorter for kernels with minor < 23).
    pub reply_len: usize,
    /// The negotiated minor version.
    pub minor: u32,
    /// Flags in force for the session (64-bit word).
    pub flags: u64,
}

impl Negotiated {
    /// Whether famfs is on: the kernel offered `FUSE_DAX_FMAP` (with `FUSE_INIT_EXT`) and the
    /// server accepted it. The kernel then sends GET_FMAP after each OPEN of a regular file and
    /// never sends READ or WRITE for those files.
    pub fn famfs(&self) -> bool {
        self.flags & FUSE_DAX_FMAP != 0
    }

    /// Writes the INIT reply into `out`; returns the total length.
    pub fn write_reply(&self, out: &mut [u8], unique: u64) -> Result<usize, BuildError> {
        check_room(out, OutHeader::SIZE + self.reply_len)?;
        payload_mut(out)[..self.reply_len]
            .copy_from_slice(&self.reply.as_bytes()[..self.reply_len]);
        finish(out, unique, self.reply_len)
    }
}

/// Computes the INIT reply: minor = min(kernel, 45), flags = wanted ∩ offered (so
/// `FUSE_DAX_FMAP`, flags2 bit 11, is set only when the kernel offered it with `FUSE_INIT_EXT`),
/// `FUSE_INIT_EXT` echoed when offered, size-dependent fields sent only with their flag, and the
/// reply truncated to the size an old kernel expects.
pub fn negotiate(kernel: &InitIn, cfg: &InitConfig) -> Result<Negotiated, InitError> {
    if kernel.major != FUSE_KERNEL_VERSION {
        return Err(InitError::UnsupportedMajor(kernel.major));
    }
    let offered = kernel.flags64();
    let mut flags = cfg.flags & offered;
    if offered & FUSE_INIT_EXT != 0 {
        flags |= FUSE_INIT_EXT;
    }
    let minor = kernel.minor.min(FUSE_KERNEL_MINOR_VERSION);
    let mut reply = InitOut {
        major: FUSE_KERNEL_VERSION,
        minor,
        max_readahead: cfg.max_readahead.min(kernel.max_readahead),
        max_background: cfg.max_background,
        congestion_threshold: cfg.congestion_threshold,
        max_write: cfg.max_write,
        time_gran: cfg.time_gran,
        max_stack_depth: cfg.max_stack_depth,
        ..Default::default()
    };
    reply.flags = flags as u32;
    reply.flags2 = (flags >> 32) as u32;
    if flags & FUSE_MAX_PAGES != 0 {
        reply.max_pages = cfg.max_pages;
    }
    if flags & FUSE_MAP_ALIGNMENT != 0 {
        reply.map_alignment = cfg.map_alignment;
    }
    if flags & FUSE_REQUEST_TIMEOUT != 0 {
        reply.request_timeout = cfg.request_timeout;
    }
    let reply_len = if minor < 5 {
        FUSE_COMPAT_INIT_OUT_SIZE
    } else if minor < 23 {
        FUSE_COMPAT_22_INIT_OUT_SIZE
    } else {
        InitOut::SIZE
    };
    Ok(Negotiated {
        reply,
        reply_len,
        minor,
        flags,
    })
}

/// The kernel side of the famfs decision: famfs is enabled only if `FUSE_DAX_FMAP` is both in the
/// kernel's own INIT request and in the server's reply (each with `FUSE_INIT_EXT`).
pub fn famfs_enabled(offered: &InitIn, reply: &InitOut) -> bool {
    offered.flags64() & reply.flags64() & FUSE_DAX_FMAP != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::*;

    fn kernel(flags: u64, minor: u32) -> InitIn {
        InitIn {
            major: 7,
            minor,
            max_readahead: 128 * 1024,
            flags: flags as u32,
            flags2: (flags >> 32) as u32,
            ..Default::default()
        }
    }

    #[test]
    fn famfs_only_when_offered() {
        let cfg = InitConfig {
            flags: FUSE_ASYNC_READ | FUSE_DAX_FMAP | FUSE_MAX_PAGES,
            ..Default::default()
        };
        let off = kernel(
            FUSE_ASYNC_READ | FUSE_INIT_EXT | FUSE_DAX_FMAP | FUSE_MAX_PAGES,
            45,
        );
        let n = negotiate(&off, &cfg).unwrap();
        assert!(n.famfs());
        assert_eq!(n.reply.flags2, 0x800);
        assert_ne!(u64::from(n.reply.flags) & FUSE_INIT_EXT, 0);
        assert_eq!(n.reply.max_pages, 256);
        assert_eq!(n.reply.max_readahead, 128 * 1024);
        assert_eq!(n.reply_len, 64);
        assert!(famfs_enabled(&off, &n.reply));

        // Bit 11 in flags2 but no FUSE_INIT_EXT: not offered.
        let no_ext = kernel(FUSE_ASYNC_READ | FUSE_DAX_FMAP, 45);
        let n = negotiate(&no_ext, &cfg).unwrap();
        assert!(!n.famfs());
        assert_eq!(n.reply.flags2, 0);
        assert_eq!(u64::from(n.reply.flags) & FUSE_INIT_EXT, 0);

        // Offered but not wanted.
        let n = negotiate(&off, &InitConfig::default()).unwrap();
        assert!(!n.famfs());
        assert!(!famfs_enabled(&off, &n.reply));
        assert_eq!(n.reply.max_pages, 0);
    }

    #[test]
    fn old_minor_truncates_and_bad_major_fails() {
        let n = negotiate(&kernel(0, 22), &InitConfig::default()).unwrap();
        assert_eq!((n.minor, n.reply_len), (22, 24));
        let mut buf = [0u8; 128];
        assert_eq!(n.write_reply(&mut buf, 2).unwrap(), 40);
        let n = negotiate(&kernel(0, 99), &InitConfig::default()).unwrap();
        assert_eq!(n.minor, FUSE_KERNEL_MINOR_VERSION);
        let mut bad = kernel(0, 45);
        bad.major = 8;
        assert_eq!(
            negotiate(&bad, &InitConfig::default()),
            Err(InitError::UnsupportedMajor(8))
        );
    }
}
