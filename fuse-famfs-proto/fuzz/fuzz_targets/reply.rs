//! Reply parser and its typed accessors: never panic.
#![no_main]

use fuse_famfs_proto::AbiGeneration;
use fuse_famfs_proto::reply::ReplyRef;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = ReplyRef::parse(data) {
        let _ = r.init();
        let _ = r.entry();
        let _ = r.attr();
        let _ = r.open();
        let _ = r.daxdev();
        for abi_gen in AbiGeneration::ALL {
            let _ = r.fmap(abi_gen, 4096, false);
        }
        if let Ok(it) = r.readdir(usize::MAX) {
            it.for_each(drop);
        }
        if let Ok(it) = r.readdirplus(usize::MAX) {
            it.for_each(drop);
        }
    }
});
