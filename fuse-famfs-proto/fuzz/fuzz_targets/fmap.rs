//! fmap parser, validator and resolvers: never panic; whatever parses validates, round-trips
//! and resolves the same way through both resolvers.
#![no_main]

use fuse_famfs_proto::fmap::parse_reply;
use fuse_famfs_proto::{AbiGeneration, Fmap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for abi_gen in AbiGeneration::ALL {
        let _ = parse_reply(data, abi_gen, 4096, false);
        if let Ok(f) = Fmap::parse(data, abi_gen) {
            assert_eq!(f.validate(abi_gen), Ok(()));
            let bytes = f.to_bytes(abi_gen).expect("re-encode");
            assert_eq!(Fmap::parse(&bytes, abi_gen).as_ref(), Ok(&f));
            let r = f.resolver();
            let size = f.file_size.max(1);
            for chunk in data.chunks_exact(8).take(64) {
                let off = u64::from_le_bytes(chunk.try_into().unwrap()) % size;
                assert_eq!(r.resolve(off), f.resolve(off));
            }
            let _ = f.check_geometry();
        }
    }
});
