//! Request parser: never panics, and a parsed request re-encodes to a parseable request.
#![no_main]

use fuse_famfs_proto::{Operation, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Request::parse(data) {
        let bytes = r.to_bytes().expect("a parsed request re-encodes");
        let again = Request::parse(&bytes).expect("a re-encoded request parses");
        if !matches!(r.op, Operation::Init(_)) {
            assert_eq!(again.op, r.op);
        }
    }
});
