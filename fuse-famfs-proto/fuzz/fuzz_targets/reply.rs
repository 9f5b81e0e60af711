//! Reply parser (`ReplyRef::parse`, the kernel's side of a server write) and its typed
//! accessors, including GET_FMAP for both ABI generations and directory listings. Input: one
//! reply as the server writes it.
//!
//! Invariants: never panics; an answer (unique ≠ 0) carries a valid errno and no payload with
//! it; directory records that parse, packed again by the reply builders, parse to the same
//! records (READDIRPLUS: with the dirent's inode number taken from the entry, as the builder
//! does).
#![no_main]

use fuse_famfs_proto::reply::{
    DirentIter, DirentPlusIter, ReaddirPlusWriter, ReaddirWriter, ReplyRef,
};
use fuse_famfs_proto::{AbiGeneration, Errno};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(r) = ReplyRef::parse(data) else {
        return;
    };
    assert_eq!(r.header.len as usize, data.len());
    if !r.is_notification() {
        assert!(r.header.error <= 0 && r.header.error >= -Errno::MAX);
        assert!(r.header.error == 0 || r.payload.is_empty());
    }
    let _ = (r.init(), r.entry(), r.attr(), r.open(), r.statfs(), r.write(), r.lseek());
    let _ = (r.lk(), r.xattr_size(), r.daxdev(), r.empty(), r.data(4096));
    for g in AbiGeneration::ALL {
        let _ = r.fmap(g, g.initial_fmap_buffer(), false);
    }
    let Ok(payload) = r.result() else {
        return;
    };

    let plain: Vec<_> = DirentIter::new(payload).map_while(Result::ok).collect();
    let mut buf = vec![0u8; 16 + payload.len() + 8 * plain.len() + 8];
    let mut w = ReaddirWriter::new(&mut buf, u32::MAX);
    for e in &plain {
        w.push(e.ino, e.off, e.typ, e.name).expect("a parsed record packs again");
    }
    let n = w.finish(1);
    let again: Vec<_> = DirentIter::new(&buf[16..n]).collect::<Result<_, _>>().unwrap();
    assert_eq!(again, plain);

    let plus: Vec<_> = DirentPlusIter::new(payload).map_while(Result::ok).collect();
    let mut buf = vec![0u8; 16 + payload.len() + 8 * plus.len() + 8];
    let mut w = ReaddirPlusWriter::new(&mut buf, u32::MAX);
    for e in &plus {
        let entry = e.entry.expect("READDIRPLUS records carry an entry");
        w.push(&entry, e.off, e.typ, e.name).expect("a parsed record packs again");
    }
    let n = w.finish(1);
    let again: Vec<_> = DirentPlusIter::new(&buf[16..n]).collect::<Result<_, _>>().unwrap();
    // The writer takes the dirent's inode number from the entry's attributes.
    let want: Vec<_> = plus
        .into_iter()
        .map(|mut e| {
            e.ino = e.entry.map_or(e.ino, |x| x.attr.ino);
            e
        })
        .collect();
    assert_eq!(again, want);
});
