//! Request parser (`Request::parse`, what the daemon reads from /dev/fuse) and, for INIT, the
//! negotiation that decides whether famfs is on. Input: one request as read(2) returns it.
//!
//! Invariants: never panics; an error names the header whenever there is one; a parsed request
//! re-encodes to bytes that parse to the same request (an INIT shorter than 64 bytes re-encodes
//! zero-filled, so only its length differs); INIT negotiation accepts no flag the kernel did not
//! offer, never a newer minor, and its reply is read back by the kernel side as sent, with famfs
//! on exactly when both sides have `FUSE_DAX_FMAP`.
#![no_main]

use fuse_famfs_proto::abi::{
    FUSE_DAX_FMAP, FUSE_INIT_EXT, FUSE_KERNEL_MINOR_VERSION, InHeader, InitIn,
};
use fuse_famfs_proto::reply::{InitConfig, ReplyRef, famfs_enabled, negotiate};
use fuse_famfs_proto::{AbiGeneration, Operation, Request};
use libfuzzer_sys::fuzz_target;

fn check_init(init: &InitIn, unique: u64) {
    let cfg = InitConfig {
        flags: u64::MAX,
        max_pages: 256,
        ..Default::default()
    };
    let Ok(n) = negotiate(init, &cfg) else {
        return;
    };
    let offered = init.flags64();
    assert_eq!(n.flags & !offered & !FUSE_INIT_EXT, 0, "accepted a flag not offered");
    assert!(n.minor <= FUSE_KERNEL_MINOR_VERSION && n.minor <= init.minor);
    assert_eq!(n.famfs(), famfs_enabled(init, &n.reply));
    assert_eq!(n.famfs(), offered & FUSE_DAX_FMAP != 0);
    let mut out = [0u8; 128];
    let len = n.write_reply(&mut out, unique).expect("128 bytes hold any INIT reply");
    if unique != 0 {
        let r = ReplyRef::parse(&out[..len]).expect("our INIT reply parses");
        let got = r.init().expect("INIT payload");
        assert_eq!(got.flags64() & FUSE_DAX_FMAP, n.flags & FUSE_DAX_FMAP);
        assert_eq!((got.major, got.minor), (n.reply.major, n.reply.minor));
    }
}

fuzz_target!(|data: &[u8]| {
    let r = match Request::parse(data) {
        Ok(r) => r,
        Err(e) => {
            let _ = (e.to_string(), e.reply_errno());
            assert_eq!(e.header().is_some(), data.len() >= InHeader::SIZE);
            return;
        }
    };
    assert_eq!(r.header.len as usize, data.len());
    let bytes = r.to_bytes().expect("a parsed request re-encodes");
    assert_eq!(bytes.len(), r.encoded_len());
    let again = Request::parse(&bytes).expect("a re-encoded request parses");
    let mut want = r.clone();
    want.header.len = bytes.len() as u32;
    assert_eq!(again, want);
    if !matches!(r.op, Operation::Init(_)) {
        assert_eq!(bytes.len(), data.len());
    }
    match r.op {
        Operation::Init(init) => check_init(&init, r.header.unique),
        Operation::GetFmap { size } => {
            let g = AbiGeneration::of_get_fmap(size);
            assert_eq!(g.get_fmap_has_size_input(), size.is_some());
        }
        Operation::BatchForget(l) => assert_eq!(l.iter().count(), l.len()),
        _ => {}
    }
});
