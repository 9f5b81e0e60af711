//! Fuzz-style property tests (what CI runs; `fuzz/` holds the cargo-fuzz targets): every parser
//! of untrusted bytes is fed arbitrary and near-valid input and must not panic. Parsing a request
//! must also be lossless: re-encoding what was parsed gives back the same bytes.

use fuse_famfs_proto::abi::{ForgetOne, Opcode, ReadIn, WriteIn};
use fuse_famfs_proto::fmap::{FileOffset, parse_reply};
use fuse_famfs_proto::reply::{DirentIter, DirentPlusIter, ReplyRef};
use fuse_famfs_proto::request::ForgetList;
use fuse_famfs_proto::{AbiGeneration, FmapMessage, FmapWire, Operation, Request};
use proptest::prelude::*;
use zerocopy::IntoBytes;

/// Opcodes worth hitting: every one the parser knows, plus a few it does not.
fn opcode() -> impl Strategy<Value = u32> {
    let known: Vec<u32> = Opcode::ALL.iter().map(|(o, _)| o.0).collect();
    prop_oneof![4 => proptest::sample::select(known), 1 => any::<u32>()]
}

/// A request with a consistent header around arbitrary arguments.
fn near_valid_request() -> impl Strategy<Value = Vec<u8>> {
    (
        opcode(),
        any::<u64>(),
        any::<u64>(),
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..160),
            // NUL-terminated names, with or without trailing junk.
            (
                proptest::collection::vec(1u8..=255, 0..20),
                proptest::collection::vec(any::<u8>(), 0..3)
            )
                .prop_map(|(mut n, junk)| {
                    n.push(0);
                    n.extend(junk);
                    n
                }),
        ],
        0u16..3,
    )
        .prop_map(|(op, unique, nodeid, body, extlen)| {
            let len = 40 + body.len();
            let mut b = Vec::with_capacity(len);
            b.extend_from_slice(&(len as u32).to_le_bytes());
            b.extend_from_slice(&op.to_le_bytes());
            b.extend_from_slice(&unique.to_le_bytes());
            b.extend_from_slice(&nodeid.to_le_bytes());
            b.extend_from_slice(&[0; 12]);
            b.extend_from_slice(&extlen.to_le_bytes());
            b.extend_from_slice(&[0; 2]);
            b.extend_from_slice(&body);
            b
        })
}

fn exercise_request(bytes: &[u8]) {
    match Request::parse(bytes) {
        Ok(r) => {
            assert_eq!(r.header.len as usize, bytes.len());
            let _ = format!("{r:?}");
            if let Operation::BatchForget(l) = &r.op {
                assert_eq!(l.iter().count(), l.len());
            }
            // A pre-7.36 INIT (shorter than 64 bytes) is zero-filled, so it re-encodes longer.
            let short_init =
                matches!(r.op, Operation::Init(_)) && bytes.len() - 40 - r.extensions.len() < 64;
            // Padding words the parser ignores (and the kernel zeroes) come back as zero.
            let mut expected = bytes.to_vec();
            if matches!(
                r.op,
                Operation::GetFmap { size: Some(_) } | Operation::BatchForget(_)
            ) {
                expected[44..48].fill(0);
            }
            if !short_init {
                assert_eq!(
                    r.to_bytes().expect("re-encode"),
                    expected,
                    "parse is lossless"
                );
            }
        }
        Err(e) => {
            let _ = e.to_string();
            let _ = e.reply_errno();
        }
    }
}

fn exercise_fmap(bytes: &[u8]) {
    for abi_gen in AbiGeneration::ALL {
        if let Ok(m) = FmapMessage::parse(bytes, abi_gen) {
            // Whatever parses must validate, re-encode to a parseable form and resolve safely.
            let f = &m.fmap;
            assert_eq!(f.validate(abi_gen), Ok(()));
            let again = f.to_bytes(m.file_type, abi_gen).expect("re-encode");
            assert_eq!(FmapMessage::parse(&again, abi_gen), Ok(m.clone()));
            let r = f.resolver();
            for off in [0, 1, f.file_size / 2, f.file_size.wrapping_sub(1), u64::MAX] {
                assert_eq!(r.resolve(FileOffset(off)), f.resolve(FileOffset(off)));
            }
            let _ = f.check_geometry();
        }
        for retried in [false, true] {
            let _ = parse_reply(bytes, abi_gen, 4096, retried);
        }
    }
}

fn exercise_reply(bytes: &[u8]) {
    if let Ok(r) = ReplyRef::parse(bytes) {
        let _ = r.init();
        let _ = r.entry();
        let _ = r.attr();
        let _ = r.open();
        let _ = r.statfs();
        let _ = r.daxdev().map(|d| d.name_bytes().len());
        let _ = r.data(4096);
        for abi_gen in AbiGeneration::ALL {
            let _ = r.fmap(abi_gen, 4096, false);
        }
        if let Ok(it) = r.readdir(usize::MAX) {
            assert!(it.count() <= bytes.len());
        }
        if let Ok(it) = r.readdirplus(usize::MAX) {
            assert!(it.count() <= bytes.len());
        }
    }
    assert!(DirentIter::new(bytes).count() <= bytes.len() / 24 + 1);
    assert!(DirentPlusIter::new(bytes).count() <= bytes.len() / 152 + 1);
}

/// fmap-shaped bytes: a plausible header followed by random extents.
fn near_valid_fmap() -> impl Strategy<Value = Vec<u8>> {
    (
        0u32..3,
        prop_oneof![0u32..40, any::<u32>()],
        any::<u64>(),
        proptest::collection::vec(
            (
                prop_oneof![Just(0u32), 0u32..40, any::<u32>()],
                prop_oneof![(0u64..8).prop_map(|u| u << 21), any::<u64>()],
                prop_oneof![(0u64..8).prop_map(|u| u << 21), any::<u64>()],
            ),
            0..60,
        ),
    )
        .prop_map(|(ext_type, n, size, exts)| {
            let mut b = vec![0u8, 0, 1, 0];
            b.extend_from_slice(&ext_type.to_le_bytes());
            b.extend_from_slice(&n.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
            b.extend_from_slice(&(size % (1 << 30)).to_le_bytes());
            b.extend_from_slice(&0u64.to_le_bytes());
            for (a, o, l) in exts {
                b.extend_from_slice(&a.to_le_bytes());
                b.extend_from_slice(&0u32.to_le_bytes());
                b.extend_from_slice(&o.to_le_bytes());
                b.extend_from_slice(&l.to_le_bytes());
            }
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn request_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        exercise_request(&bytes);
    }

    #[test]
    fn near_valid_requests_parse_losslessly(bytes in near_valid_request()) {
        exercise_request(&bytes);
    }

    #[test]
    fn fmap_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise_fmap(&bytes);
    }

    #[test]
    fn near_valid_fmaps_never_panic(bytes in near_valid_fmap()) {
        exercise_fmap(&bytes);
    }

    #[test]
    fn reply_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        exercise_reply(&bytes);
    }

    /// Replies with a consistent length and extreme error/unique values (a notification with
    /// error = i32::MIN once overflowed a negation; found by cargo fuzz).
    #[test]
    fn near_valid_replies_never_panic(
        error in prop_oneof![Just(i32::MIN), Just(i32::MAX), Just(0), -600i32..600],
        unique in prop_oneof![Just(0u64), any::<u64>()],
        payload in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut b = Vec::with_capacity(16 + payload.len());
        b.extend_from_slice(&(16 + payload.len() as u32).to_le_bytes());
        b.extend_from_slice(&error.to_le_bytes());
        b.extend_from_slice(&unique.to_le_bytes());
        b.extend_from_slice(&payload);
        exercise_reply(&b);
        if let Ok(r) = ReplyRef::parse(&b) {
            let _ = r.result();
            let _ = r.empty();
        }
    }

    #[test]
    fn structured_requests_round_trip(
        unique in any::<u64>(),
        nodeid in any::<u64>(),
        name in proptest::collection::vec(1u8..=255, 0..40),
        data in proptest::collection::vec(any::<u8>(), 0..64),
        forgets in proptest::collection::vec((any::<u64>(), any::<u64>()), 0..8),
        read in any::<[u64; 3]>(),
    ) {
        let forgets: Vec<ForgetOne> = forgets.into_iter().map(|(nodeid, nlookup)| ForgetOne { nodeid, nlookup }).collect();
        let forget_bytes = forgets.as_bytes();
        let read_in = ReadIn { fh: read[0], offset: read[1], size: read[2] as u32, ..Default::default() };
        let write_in = WriteIn { fh: read[0], offset: read[1], size: data.len() as u32, ..Default::default() };
        let ops = [
            Operation::Lookup { name: &name },
            Operation::BatchForget(ForgetList::from_bytes(forget_bytes).unwrap()),
            Operation::Read(read_in),
            Operation::Readdirplus(read_in),
            Operation::Write { arg: write_in, data: &data },
            Operation::GetFmap { size: None },
            Operation::GetFmap { size: Some(read[2] as u32) },
            Operation::GetDaxdev { index: read[0] % 24 },
            Operation::Other { opcode: Opcode(5000), payload: &data },
        ];
        for op in ops {
            let req = Request::new(unique, nodeid, op.clone());
            let bytes = req.to_bytes().unwrap();
            let back = Request::parse(&bytes).unwrap();
            prop_assert_eq!(&back.op, &op);
            prop_assert_eq!(back.header.unique, unique);
            if let Operation::BatchForget(l) = back.op {
                prop_assert_eq!(l.iter().collect::<Vec<_>>(), forgets.clone());
            }
        }
    }
}
