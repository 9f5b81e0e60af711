//! GET_FMAP reply payloads as the kernel parses them, for both ABI generations (V3–V10 and the
//! development variant), through `FmapMessage::parse` and `parse_reply` (buffer limits and the
//! dev variant's grow-and-retry). Input: the payload.
//!
//! Invariants: never panics; what parses passes the generation's validation, re-encodes to a
//! payload that parses to the same message, and is re-sent by the server path
//! (`encode_reply`) as a reply the kernel accepts (or, dev, asks to retry with exactly the
//! encoded length); both resolvers agree on every offset; a map the geometry check accepts
//! resolves every probed offset inside its extents; unrolling an interleaved map for the
//! generation without interleave keeps every offset where it was.
#![no_main]

use fuse_famfs_proto::fmap::{FileOffset, FmapReply, parse_reply};
use fuse_famfs_proto::generation::unroll;
use fuse_famfs_proto::{AbiGeneration, Fmap, FmapMessage, FmapWire};
use libfuzzer_sys::fuzz_target;

/// Offsets to probe: a few landmarks and some taken from the input.
fn probes(f: &Fmap, data: &[u8]) -> Vec<u64> {
    let size = f.file_size.max(1);
    let mut v = vec![0, size / 2, size - 1];
    v.extend(
        data.chunks_exact(8)
            .take(32)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()) % size),
    );
    v
}

fn check_message(m: &FmapMessage, g: AbiGeneration, data: &[u8]) {
    let f = &m.fmap;
    assert_eq!(f.validate(g), Ok(()));
    let bytes = f.to_bytes(m.file_type, g).expect("re-encode");
    assert_eq!(FmapMessage::parse(&bytes, g).as_ref(), Ok(m));

    let mut out = vec![0u8; g.rules().max_reply.min(1 << 20)];
    if let Ok(n) = f.encode_reply(m.file_type, g, g.initial_fmap_buffer(), &mut out) {
        match parse_reply(&out[..n], g, g.initial_fmap_buffer(), false) {
            Ok(FmapReply::Fmap(again)) => assert_eq!(&again, m),
            Ok(FmapReply::Retry { buffer }) => assert_eq!(buffer, bytes.len()),
            Err(e) => panic!("the kernel refuses what the server sends: {e:?}"),
        }
    }

    let r = f.resolver();
    let geometry_ok = f.check_geometry().is_ok();
    for off in probes(f, data) {
        let got = f.resolve(FileOffset(off));
        assert_eq!(r.resolve(FileOffset(off)), got);
        if geometry_ok && off < f.file_size {
            let d = got.expect("a sound map resolves every file offset").dev_offset.0;
            assert!(f.ranges().any(|e| e.offset <= d && d < e.end()));
        }
    }
    // Unrolling walks the file chunk by chunk: only for maps of a bounded chunk count.
    let chunks: u64 = match &f.kind {
        fuse_famfs_proto::fmap::FmapKind::Interleaved(ies) => ies
            .iter()
            .map(|i| i.nbytes.min(f.file_size) / i.chunk_size.max(1))
            .sum(),
        fuse_famfs_proto::fmap::FmapKind::Simple(_) => 0,
    };
    if geometry_ok && chunks <= 4096 {
        let u = unroll(f);
        for off in probes(f, data) {
            let (a, b) = (f.resolve(FileOffset(off)), u.resolve(FileOffset(off)));
            assert_eq!(a.map(|x| (x.dev_index, x.dev_offset)), b.map(|x| (x.dev_index, x.dev_offset)));
        }
        assert_eq!(*AbiGeneration::Dev.adapt_fmap(f), u);
    }
}

fuzz_target!(|data: &[u8]| {
    for g in AbiGeneration::ALL {
        for (buffer, retried) in [(g.initial_fmap_buffer(), false), (data.len(), true)] {
            if let Ok(FmapReply::Retry { buffer: b }) = parse_reply(data, g, buffer, retried) {
                assert!(g.retries_with_fmap_size() && !retried && b > buffer);
            }
        }
        if let Ok(m) = FmapMessage::parse(data, g) {
            check_message(&m, g, data);
        }
    }
});
