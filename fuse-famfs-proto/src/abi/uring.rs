//! FUSE over io_uring (protocol 7.42, Linux 6.14+): the per-entry buffers a server registers
//! and the command block of its `IORING_OP_URING_CMD` submissions on /dev/fuse.
//!
//! How the transport works (kernel `fs/fuse/dev_uring.c`, described here, not copied):
//!
//! * INIT still travels over /dev/fuse. The kernel offers [`FUSE_OVER_IO_URING`] only when the
//!   `fuse` module parameter `enable_uring` is on; a server accepting it makes the kernel hold
//!   every new request until each queue has an entry registered (or a registration fails,
//!   which turns the ring off for the connection and releases the held requests to /dev/fuse).
//! * There is one queue per *possible* CPU (`qid` = CPU number); a request is queued on the
//!   queue of the CPU its caller runs on.
//! * An entry is two user buffers, given as a two-element `iovec` array in `sqe.addr` with
//!   `sqe.len` = 2: a [`UringReqHeader`] and a payload buffer of at least
//!   `max(FUSE_MIN_READ_BUFFER, max_write, max_pages * PAGE_SIZE)` bytes. It is registered
//!   with [`FUSE_IO_URING_CMD_REGISTER`] (SQE128 ring; [`UringCmdReq`] in the 80-byte command
//!   area) and completes (CQE result 0) when the kernel has put a request into it.
//! * Request layout: `in_out` holds the `fuse_in_header`, `op_in` the opcode's fixed argument
//!   struct (its length is `in_header.len - 40 - payload_sz`), the payload buffer the remaining
//!   arguments (names, WRITE data), `ring_ent_in_out.payload_sz` their length and `commit_id`
//!   the id to answer with.
//! * Reply layout: `in_out` holds the `fuse_out_header`, the payload buffer the reply body,
//!   `ring_ent_in_out.payload_sz` its length. [`FUSE_IO_URING_CMD_COMMIT_AND_FETCH`] (with
//!   `commit_id` and `qid`) hands the reply to the kernel and re-arms the entry.
//! * FORGET, BATCH_FORGET, INTERRUPT and notifications still use /dev/fuse.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::fuse::wire_struct;

/// Size of the `in_out` area of [`UringReqHeader`] (`FUSE_URING_IN_OUT_HEADER_SZ`).
pub const FUSE_URING_IN_OUT_HEADER_SZ: usize = 128;
/// Size of the `op_in` area of [`UringReqHeader`] (`FUSE_URING_OP_IN_OUT_SZ`).
pub const FUSE_URING_OP_IN_OUT_SZ: usize = 128;
/// Number of `iovec`s a REGISTER command carries: header buffer, payload buffer.
pub const FUSE_URING_IOV_SEGS: u32 = 2;

/// `enum fuse_uring_cmd`: no command.
pub const FUSE_IO_URING_CMD_INVALID: u32 = 0;
/// `enum fuse_uring_cmd`: register an entry's buffers and wait for a request in it.
pub const FUSE_IO_URING_CMD_REGISTER: u32 = 1;
/// `enum fuse_uring_cmd`: commit the reply in an entry and wait for the next request in it.
pub const FUSE_IO_URING_CMD_COMMIT_AND_FETCH: u32 = 2;

wire_struct! {
    /// `struct fuse_uring_ent_in_out` (32 bytes): the trailer of an entry's header buffer,
    /// written by the kernel with a request and by the server with its reply.
    pub struct UringEntInOut(32) {
        /// Zero.
        pub flags: u64,
        /// With a request: the id to commit the reply with (the request's `unique`).
        pub commit_id: u64,
        /// Bytes used in the payload buffer, in either direction.
        pub payload_sz: u32,
        /// Zero.
        pub padding: u32,
        /// Zero.
        pub reserved: u64,
    }
}

/// `struct fuse_uring_req_header` (288 bytes): an entry's header buffer (`iov[0]` of a
/// REGISTER).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct UringReqHeader {
    /// `fuse_in_header` with a request, `fuse_out_header` with a reply.
    pub in_out: [u8; FUSE_URING_IN_OUT_HEADER_SZ],
    /// The opcode's fixed argument struct (the request's first argument); unused in replies.
    pub op_in: [u8; FUSE_URING_OP_IN_OUT_SZ],
    /// Payload size and commit id.
    pub ring_ent_in_out: UringEntInOut,
}

const _: () = assert!(core::mem::size_of::<UringReqHeader>() == UringReqHeader::SIZE);

impl Default for UringReqHeader {
    fn default() -> Self {
        zerocopy::FromZeros::new_zeroed()
    }
}

impl UringReqHeader {
    /// Size of this struct on the wire, in bytes.
    pub const SIZE: usize = 288;
}

wire_struct! {
    /// `struct fuse_uring_cmd_req` (24 bytes): the start of the 80-byte command area of an
    /// SQE128 `IORING_OP_URING_CMD` on /dev/fuse (the rest is zero).
    pub struct UringCmdReq(24) {
        /// Zero.
        pub flags: u64,
        /// COMMIT_AND_FETCH: the `commit_id` the kernel gave with the request.
        pub commit_id: u64,
        /// The queue (CPU number) the entry belongs to.
        pub qid: u16,
        /// Zero.
        pub padding: [u8; 6],
    }
}

/// A completed ring entry's request, checked against the entry's buffers
/// ([`UringReqHeader::request`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingRequest {
    /// The request header (`in_out`).
    pub header: super::InHeader,
    /// Length of the fixed argument struct at the start of `op_in`.
    pub op_len: usize,
    /// Length of the rest of the arguments, at the start of the payload buffer.
    pub payload_len: usize,
    /// The id to commit the reply with.
    pub commit_id: u64,
}

impl RingRequest {
    /// Length of the request in /dev/fuse form: header, fixed argument, payload.
    pub fn len(&self) -> usize {
        super::InHeader::SIZE + self.op_len + self.payload_len
    }

    /// Never true: a request has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A ring entry whose header does not describe a request that fits its buffers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingEntryError {
    /// `payload_sz` is larger than the payload buffer.
    #[error("payload of {payload} bytes in a buffer of {capacity}")]
    PayloadTooLarge {
        /// `ring_ent_in_out.payload_sz`.
        payload: u32,
        /// The payload buffer's size.
        capacity: usize,
    },
    /// `in_header.len` is not header + fixed argument (at most 128 bytes) + payload.
    #[error(
        "request length {len} does not fit a 40-byte header, a fixed argument of at most 128 bytes and a payload of {payload}"
    )]
    BadLength {
        /// `in_header.len`.
        len: u32,
        /// `ring_ent_in_out.payload_sz`.
        payload: u32,
    },
}

impl UringReqHeader {
    /// The request the kernel put into this entry; `payload_capacity` is the size of the
    /// entry's payload buffer. Never panics, whatever the bytes.
    pub fn request(&self, payload_capacity: usize) -> Result<RingRequest, RingEntryError> {
        let (header, _) = super::InHeader::read_from_prefix(&self.in_out)
            .unwrap_or_else(|_| unreachable!("in_out holds more than a header"));
        let e = &self.ring_ent_in_out;
        let payload_len = e.payload_sz as usize;
        if payload_len > payload_capacity {
            return Err(RingEntryError::PayloadTooLarge {
                payload: e.payload_sz,
                capacity: payload_capacity,
            });
        }
        let op_len = (header.len as usize)
            .checked_sub(super::InHeader::SIZE + payload_len)
            .filter(|&n| n <= FUSE_URING_OP_IN_OUT_SZ)
            .ok_or(RingEntryError::BadLength {
                len: header.len,
                payload: e.payload_sz,
            })?;
        Ok(RingRequest {
            header,
            op_len,
            payload_len,
            commit_id: e.commit_id,
        })
    }

    /// Writes a reply into this entry: `out` is the reply in /dev/fuse form (a
    /// `fuse_out_header` of `out.len()` bytes and the body), of which the caller has already
    /// put the body (`out.len() - 16` bytes) at the start of the payload buffer. Returns the
    /// body length, or `None` if `out` is shorter than a header.
    pub fn set_reply(&mut self, out_header: &[u8]) -> Option<u32> {
        let (h, _) = super::OutHeader::read_from_prefix(out_header).ok()?;
        let body = (h.len as usize).checked_sub(super::OutHeader::SIZE)?;
        self.in_out[..super::OutHeader::SIZE].copy_from_slice(h.as_bytes());
        self.ring_ent_in_out = UringEntInOut {
            payload_sz: u32::try_from(body).ok()?,
            ..Default::default()
        };
        Some(body as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{InHeader, OutHeader};

    fn entry(len: u32, payload: u32, commit: u64) -> UringReqHeader {
        let mut h = UringReqHeader::default();
        let ih = InHeader {
            len,
            opcode: 1,
            unique: commit,
            nodeid: 1,
            ..Default::default()
        };
        h.in_out[..40].copy_from_slice(ih.as_bytes());
        h.ring_ent_in_out.payload_sz = payload;
        h.ring_ent_in_out.commit_id = commit;
        h
    }

    #[test]
    fn layout_matches_the_kernel() {
        assert_eq!(core::mem::size_of::<UringEntInOut>(), 32);
        assert_eq!(core::mem::size_of::<UringReqHeader>(), 288);
        assert_eq!(core::mem::offset_of!(UringReqHeader, op_in), 128);
        assert_eq!(core::mem::offset_of!(UringReqHeader, ring_ent_in_out), 256);
        assert_eq!(core::mem::offset_of!(UringEntInOut, payload_sz), 16);
        assert_eq!(core::mem::size_of::<UringCmdReq>(), 24);
        assert_eq!(core::mem::offset_of!(UringCmdReq, qid), 16);
        // It goes into the 80-byte command area of an SQE128.
        const { assert!(UringCmdReq::SIZE <= 80) };
    }

    #[test]
    fn a_lookup_splits_into_header_empty_op_and_name() {
        // LOOKUP "abc": no fixed argument, the name (with its NUL) in the payload.
        let h = entry(40 + 4, 4, 42);
        let r = h.request(8192).unwrap();
        assert_eq!((r.op_len, r.payload_len, r.commit_id), (0, 4, 42));
        assert_eq!(r.len(), 44);
        assert_eq!(r.header.unique, 42);
    }

    #[test]
    fn a_read_has_its_fixed_argument_in_op_in() {
        let h = entry(40 + 40, 0, 8);
        let r = h.request(8192).unwrap();
        assert_eq!((r.op_len, r.payload_len), (40, 0));
    }

    #[test]
    fn inconsistent_lengths_are_errors_not_panics() {
        // Payload larger than the buffer.
        assert_eq!(
            entry(40 + 9000, 9000, 2).request(8192),
            Err(RingEntryError::PayloadTooLarge {
                payload: 9000,
                capacity: 8192
            })
        );
        // Length shorter than header + payload.
        assert!(matches!(
            entry(40, 4, 2).request(8192),
            Err(RingEntryError::BadLength { .. })
        ));
        // Fixed argument longer than op_in.
        assert!(matches!(
            entry(40 + 129, 0, 2).request(8192),
            Err(RingEntryError::BadLength { .. })
        ));
        // Every u32 combination near the edges.
        for len in [0, 1, 39, 40, 168, 169, u32::MAX] {
            for p in [0, 1, u32::MAX] {
                let _ = entry(len, p, 0).request(usize::MAX);
            }
        }
    }

    #[test]
    fn a_reply_goes_to_in_out_and_its_body_length_to_payload_sz() {
        let mut h = entry(44, 4, 42);
        let out = OutHeader {
            len: 16 + 128,
            error: 0,
            unique: 42,
        };
        assert_eq!(h.set_reply(out.as_bytes()), Some(128));
        assert_eq!(&h.in_out[..16], out.as_bytes());
        assert_eq!(h.ring_ent_in_out.payload_sz, 128);
        assert_eq!(h.ring_ent_in_out.commit_id, 0);
        // An error reply has no body.
        let err = OutHeader {
            len: 16,
            error: -2,
            unique: 42,
        };
        assert_eq!(h.set_reply(err.as_bytes()), Some(0));
        // Too short to be a reply, or a length below the header's.
        assert_eq!(h.set_reply(&[0u8; 8]), None);
        let bad = OutHeader { len: 3, ..err };
        assert_eq!(h.set_reply(bad.as_bytes()), None);
    }
}
