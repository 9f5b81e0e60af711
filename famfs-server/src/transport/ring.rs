//! One FUSE-over-io_uring queue: its ring, its entries' buffers, and the commands that register
//! an entry and commit a reply (the ABI is described in `fuse_famfs_proto::abi`'s `uring`
//! module).
//!
//! Each entry owns one anonymous mapping: the entry's header buffer at offset 0, its two
//! `iovec`s at 512, and its payload buffer from [`PREFIX`] (page-aligned). When a request
//! arrives, its header and fixed argument are copied to just before the payload, so the whole
//! request lies contiguous in /dev/fuse form and the payload (names, WRITE data) is never
//! copied.

use std::os::fd::RawFd;
use std::ptr::NonNull;

use fuse_famfs_proto::abi::{
    FUSE_IO_URING_CMD_COMMIT_AND_FETCH, FUSE_IO_URING_CMD_REGISTER, FUSE_URING_IOV_SEGS, InHeader,
    RingEntryError, RingRequest, UringCmdReq, UringReqHeader,
};
use io_uring::{IoUring, cqueue, opcode, squeue, types};
use nix::sys::mman::{MapFlags, ProtFlags};
use zerocopy::{FromBytes, IntoBytes};

/// Offset of the payload buffer in an entry's mapping (room before it for the header buffer,
/// the iovecs, and the request header copied in front of the payload).
pub(crate) const PREFIX: usize = 4096;
const IOV_AT: usize = 512;

/// A ring queue's ring.
pub(crate) type Ring = IoUring<squeue::Entry128, cqueue::Entry>;

/// One entry's memory: header buffer, iovecs, payload buffer.
pub(crate) struct Entry {
    base: NonNull<u8>,
    len: usize,
    payload: usize,
}

impl Entry {
    /// Maps an entry with a payload buffer of `payload` bytes (pages are touched lazily).
    pub(crate) fn new(payload: usize) -> std::io::Result<Entry> {
        let len = (PREFIX + payload).next_multiple_of(4096);
        let nz = std::num::NonZeroUsize::new(len).ok_or(std::io::ErrorKind::InvalidInput)?;
        // SAFETY: a fresh private anonymous mapping at an address of the kernel's choice; it
        // aliases nothing and is unmapped only in `Drop`.
        let base = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                nz,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE,
            )
        }?
        .cast::<u8>();
        let e = Entry { base, len, payload };
        let iov = [
            libc::iovec {
                iov_base: e.base.as_ptr().cast(),
                iov_len: UringReqHeader::SIZE,
            },
            libc::iovec {
                // SAFETY: PREFIX < len: inside the mapping.
                iov_base: unsafe { e.base.as_ptr().add(PREFIX) }.cast(),
                iov_len: payload,
            },
        ];
        // SAFETY: IOV_AT + 32 <= PREFIX: inside the mapping, which nothing else uses yet.
        unsafe {
            e.base
                .as_ptr()
                .add(IOV_AT)
                .cast::<[libc::iovec; 2]>()
                .write_unaligned(iov)
        };
        Ok(e)
    }

    /// Size of the payload buffer.
    pub(crate) fn payload_capacity(&self) -> usize {
        self.payload
    }

    fn iov_addr(&self) -> u64 {
        self.base.as_ptr() as u64 + IOV_AT as u64
    }

    /// A copy of the header buffer (the caller owns the entry: the kernel completed it).
    pub(crate) fn header(&self) -> UringReqHeader {
        // SAFETY: the header buffer is the first 288 bytes of the mapping, initialised (zero
        // or written by the kernel); the kernel does not write it while we own the entry.
        unsafe { self.base.as_ptr().cast::<UringReqHeader>().read_unaligned() }
    }

    /// Stores `h` as the header buffer (before committing).
    pub(crate) fn set_header(&mut self, h: &UringReqHeader) {
        // SAFETY: as in `header`; `&mut self` means no other access through this entry.
        unsafe {
            self.base
                .as_ptr()
                .cast::<UringReqHeader>()
                .write_unaligned(*h)
        };
    }

    /// The request in this entry in /dev/fuse form: the header and fixed argument are copied
    /// in front of the payload, which stays where the kernel put it.
    pub(crate) fn request(&mut self, h: &UringReqHeader, r: &RingRequest) -> &[u8] {
        let head = InHeader::SIZE + r.op_len;
        let start = PREFIX - head;
        // SAFETY: `start..PREFIX + payload_len` lies inside the mapping (`op_len <= 128`,
        // `payload_len <= payload capacity`, both checked by `UringReqHeader::request`), and
        // the kernel does not touch the entry while we own it; `&mut self` keeps other
        // borrows away.
        let all = unsafe {
            std::slice::from_raw_parts_mut(self.base.as_ptr().add(start), head + r.payload_len)
        };
        all[..InHeader::SIZE].copy_from_slice(&h.in_out[..InHeader::SIZE]);
        all[InHeader::SIZE..head].copy_from_slice(&h.op_in[..r.op_len]);
        all
    }

    /// The payload buffer, to write a reply body into.
    pub(crate) fn payload_mut(&mut self) -> &mut [u8] {
        // SAFETY: `PREFIX..PREFIX + payload` is inside the mapping; owned as in `request`.
        unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr().add(PREFIX), self.payload) }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no slice into it outlives `self`.
        let _ = unsafe { nix::sys::mman::munmap(self.base.cast(), self.len) };
    }
}

// SAFETY: the mapping is plain memory owned by the entry; moving it to another thread moves
// the ownership with it.
unsafe impl Send for Entry {}

/// Checks a completed entry's header against its payload buffer.
pub(crate) fn parse(e: &Entry) -> (UringReqHeader, Result<RingRequest, RingEntryError>) {
    let h = e.header();
    let r = h.request(e.payload_capacity());
    (h, r)
}

/// An `IORING_OP_URING_CMD` SQE for /dev/fuse descriptor `fd`.
fn uring_cmd(
    fd: RawFd,
    op: u32,
    req: &UringCmdReq,
    iov: Option<u64>,
    tag: u64,
) -> squeue::Entry128 {
    let mut cmd = [0u8; 80];
    cmd[..UringCmdReq::SIZE].copy_from_slice(req.as_bytes());
    let mut b = opcode::UringCmd80::new(types::Fd(fd), op).cmd(cmd);
    if let Some(addr) = iov {
        b = b.addr(Some(addr));
    }
    let mut sqe = b.build().user_data(tag);
    if iov.is_some() {
        set_sqe_len(&mut sqe, FUSE_URING_IOV_SEGS);
    }
    sqe
}

/// Offset of `len` in `struct io_uring_sqe` (after opcode, flags, ioprio, fd, off and addr).
const SQE_LEN_OFFSET: usize = 24;

/// Sets `sqe.len`, which the io-uring crate's `UringCmd80` builder leaves 0 but FUSE's
/// REGISTER requires to be the iovec count.
fn set_sqe_len(sqe: &mut squeue::Entry128, len: u32) {
    const { assert!(std::mem::size_of::<squeue::Entry128>() == 128) };
    // SAFETY: `Entry128` is `#[repr(C)]`: the 64-byte `io_uring_sqe` followed by 64 command
    // bytes; `len` is the plain u32 at offset 24 of the SQE (checked by the unit test), so this
    // writes a valid value into an initialised integer field.
    unsafe {
        (sqe as *mut squeue::Entry128)
            .cast::<u8>()
            .add(SQE_LEN_OFFSET)
            .cast::<u32>()
            .write_unaligned(len);
    }
}

/// The REGISTER command for entry `e` (tagged `tag`) of queue `qid`.
pub(crate) fn register_sqe(fd: RawFd, qid: u16, e: &Entry, tag: u64) -> squeue::Entry128 {
    let req = UringCmdReq {
        qid,
        ..Default::default()
    };
    uring_cmd(
        fd,
        FUSE_IO_URING_CMD_REGISTER,
        &req,
        Some(e.iov_addr()),
        tag,
    )
}

/// The COMMIT_AND_FETCH command for the reply to `commit_id` in entry `tag` of queue `qid`.
pub(crate) fn commit_sqe(fd: RawFd, qid: u16, commit_id: u64, tag: u64) -> squeue::Entry128 {
    let req = UringCmdReq {
        commit_id,
        qid,
        ..Default::default()
    };
    uring_cmd(fd, FUSE_IO_URING_CMD_COMMIT_AND_FETCH, &req, None, tag)
}

/// A ring for `depth` entries: single issuer with deferred task work (completions run in the
/// queue's own thread when it waits), or a plain ring on kernels without those flags.
pub(crate) fn new_ring(depth: usize) -> std::io::Result<Ring> {
    let n = (depth.max(1) as u32).next_power_of_two();
    Ring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(n)
        .or_else(|_| Ring::builder().build(n))
}

/// Copies `out` (a reply in /dev/fuse form) into `e`: the body into the payload buffer, the
/// header into the header buffer. `false` if it does not fit or is malformed.
pub(crate) fn put_reply(e: &mut Entry, out: &[u8]) -> bool {
    let Ok((hdr, _)) = fuse_famfs_proto::abi::OutHeader::read_from_prefix(out) else {
        return false;
    };
    let body = (hdr.len as usize).saturating_sub(fuse_famfs_proto::abi::OutHeader::SIZE);
    let Some(src) = out.get(fuse_famfs_proto::abi::OutHeader::SIZE..hdr.len as usize) else {
        return false;
    };
    let Some(dst) = e.payload_mut().get_mut(..body) else {
        return false;
    };
    dst.copy_from_slice(src);
    let mut h = e.header();
    if h.set_reply(out).is_none() {
        return false;
    }
    e.set_header(&h);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use fuse_famfs_proto::abi::{OutHeader, UringEntInOut};

    fn sqe_bytes(sqe: &squeue::Entry128) -> [u8; 128] {
        // SAFETY: reads the 128 initialised bytes of a built SQE (no padding: the SQE is all
        // integer fields and the command area a byte array).
        unsafe { (sqe as *const squeue::Entry128).cast::<[u8; 128]>().read() }
    }

    #[test]
    fn register_sqe_carries_the_iovecs_their_count_and_the_queue() {
        let e = Entry::new(8192).unwrap();
        let s = sqe_bytes(&register_sqe(7, 3, &e, 5));
        assert_eq!(s[0], 46, "IORING_OP_URING_CMD");
        assert_eq!(i32::from_ne_bytes(s[4..8].try_into().unwrap()), 7, "fd");
        assert_eq!(
            u32::from_ne_bytes(s[8..12].try_into().unwrap()),
            FUSE_IO_URING_CMD_REGISTER,
            "cmd_op"
        );
        assert_eq!(
            u64::from_ne_bytes(s[16..24].try_into().unwrap()),
            e.iov_addr(),
            "addr"
        );
        assert_eq!(u32::from_ne_bytes(s[24..28].try_into().unwrap()), 2, "len");
        assert_eq!(
            u64::from_ne_bytes(s[32..40].try_into().unwrap()),
            5,
            "user_data"
        );
        let cmd = UringCmdReq::read_from_bytes(&s[48..72]).unwrap();
        assert_eq!((cmd.qid, cmd.commit_id), (3, 0));
        assert!(s[72..].iter().all(|&b| b == 0));
        let c = sqe_bytes(&commit_sqe(7, 1, 0xabcd, 2));
        assert_eq!(u32::from_ne_bytes(c[24..28].try_into().unwrap()), 0);
        let cmd = UringCmdReq::read_from_bytes(&c[48..72]).unwrap();
        assert_eq!((cmd.qid, cmd.commit_id), (1, 0xabcd));
    }

    #[test]
    fn an_entry_presents_its_request_contiguously_and_takes_a_reply() {
        let mut e = Entry::new(8192).unwrap();
        // What the kernel does for LOOKUP "ab": header in in_out, the name in the payload.
        let ih = InHeader {
            len: 40 + 3,
            opcode: 1,
            unique: 9,
            nodeid: 1,
            ..Default::default()
        };
        let mut h = UringReqHeader::default();
        h.in_out[..40].copy_from_slice(ih.as_bytes());
        h.ring_ent_in_out = UringEntInOut {
            commit_id: 9,
            payload_sz: 3,
            ..Default::default()
        };
        e.set_header(&h);
        e.payload_mut()[..3].copy_from_slice(b"ab\0");
        let (h, r) = parse(&e);
        let r = r.unwrap();
        let req = e.request(&h, &r).to_vec();
        assert_eq!(req.len(), 43);
        assert_eq!(&req[..40], ih.as_bytes());
        assert_eq!(&req[40..], b"ab\0");
        // A reply of 16 + 4 bytes.
        let mut out = OutHeader {
            len: 20,
            error: 0,
            unique: 9,
        }
        .as_bytes()
        .to_vec();
        out.extend_from_slice(b"WXYZ");
        assert!(put_reply(&mut e, &out));
        let h = e.header();
        assert_eq!(&h.in_out[..16], &out[..16]);
        assert_eq!(h.ring_ent_in_out.payload_sz, 4);
        assert_eq!(&e.payload_mut()[..4], b"WXYZ");
        // Bodies larger than the buffer, or a length beyond the bytes, are refused.
        let mut big = out.clone();
        big[..4].copy_from_slice(&(16u32 + 9000).to_ne_bytes());
        assert!(!put_reply(&mut e, &big));
        assert!(!put_reply(&mut e, &out[..8]));
    }
}
