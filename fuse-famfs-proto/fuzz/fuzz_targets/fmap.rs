//! fmap parser, validator and resolvers: never panic; whatever parses validates, round-trips
//! and resolves the same way through both resolvers.
#![no_main]

use fuse_famfs_proto::fmap::{FileOffset, parse_reply};
use fuse_famfs_proto::{AbiGeneration, FmapMessage, FmapWire};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for abi_gen in AbiGeneration::ALL {
        let _ = parse_reply(data, abi_gen, 4096, false);
        if let Ok(m) = FmapMessage::parse(data, abi_gen) {
            let f = &m.fmap;
            assert_eq!(f.validate(abi_gen), Ok(()));
            let bytes = f.to_bytes(m.file_type, abi_gen).expect("re-encode");
            assert_eq!(FmapMessage::parse(&bytes, abi_gen).as_ref(), Ok(&m));
            let r = f.resolver();
            let size = f.file_size.max(1);
            for chunk in data.chunks_exact(8).take(64) {
                let off = u64::from_le_bytes(chunk.try_into().unwrap()) % size;
                assert_eq!(r.resolve(FileOffset(off)), f.resolve(FileOffset(off)));
            }
            let _ = f.check_geometry();
        }
    }
});
