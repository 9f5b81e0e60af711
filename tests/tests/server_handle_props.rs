//! `Server::handle` on arbitrary and mutated request bytes: never panics, and every reply it
//! produces is well-formed (length field matches, error 0 or a valid negative errno, an error
//! reply is exactly 16 bytes, READ ranges inside the device mapping).

use std::sync::{Arc, OnceLock};

use famfs_log::alloc::AllocPolicy;
use famfs_server::{Config, Reply, Server};
use famfs_tests::standin::{INTERLEAVE_3X2M, StandIn};
use fuse_famfs_proto::abi::{GetattrIn, InitIn, OpenIn, ReadIn};
use fuse_famfs_proto::request::{Operation, Request};
use proptest::prelude::*;

fn server() -> &'static (Arc<Server>, StandIn) {
    static S: OnceLock<(Arc<Server>, StandIn)> = OnceLock::new();
    S.get_or_init(|| {
        let mut dev = StandIn::create(8 << 30).unwrap();
        dev.mkdir_p("d").unwrap();
        dev.add_file("d/f", 3 << 20, AllocPolicy::Contiguous)
            .unwrap();
        dev.add_file("s", 5 << 20, INTERLEAVE_3X2M).unwrap();
        let mut cfg = Config::new(dev.path());
        cfg.system_uuid = Some(dev.master_uuid());
        let s = Server::open(cfg).unwrap();
        let mut out = vec![0u8; s.request_buffer_size()];
        let init = Request::new(1, 0, Operation::Init(InitIn::offer(45, 1 << 20, u64::MAX)))
            .to_bytes()
            .unwrap();
        assert!(matches!(s.handle(&init, &mut out), Reply::Bytes(_)));
        (s, dev)
    })
}

fn check_reply(r: &Reply, out: &[u8]) -> Result<(), TestCaseError> {
    if let Reply::Bytes(n) | Reply::Last(n) = *r {
        prop_assert!(n >= 16);
        let len = u32::from_ne_bytes(out[..4].try_into().unwrap()) as usize;
        let err = i32::from_ne_bytes(out[4..8].try_into().unwrap());
        prop_assert_eq!(len, n);
        prop_assert!(err == 0 || (-511..0).contains(&err), "bad errno {}", err);
        if err != 0 {
            prop_assert_eq!(n, 16);
        }
    }
    Ok(())
}

fn valid_requests() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut add = |nodeid, op| v.push(Request::new(7, nodeid, op).to_bytes().unwrap());
    add(1, Operation::Lookup { name: b"d" });
    add(2, Operation::Getattr(GetattrIn::default()));
    add(6, Operation::Open(OpenIn::default()));
    add(
        6,
        Operation::Read(ReadIn {
            size: 4096,
            ..Default::default()
        }),
    );
    add(
        1,
        Operation::Readdirplus(ReadIn {
            size: 4096,
            ..Default::default()
        }),
    );
    add(6, Operation::GetFmap { size: None });
    add(7, Operation::GetFmap { size: Some(4096) });
    add(0, Operation::GetDaxdev { index: 0 });
    add(1, Operation::Statfs);
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let (s, _) = server();
        let mut out = vec![0u8; s.request_buffer_size()];
        let r = s.handle(&bytes, &mut out);
        check_reply(&r, &out)?;
    }

    #[test]
    fn mutated_valid_requests(which in 0usize..9, hits in proptest::collection::vec((0usize..128, any::<u8>()), 1..6)) {
        let (s, _) = server();
        let mut req = valid_requests().swap_remove(which);
        for (pos, val) in hits {
            let n = req.len();
            req[pos % n] = val;
        }
        let mut out = vec![0u8; s.request_buffer_size()];
        let r = s.handle(&req, &mut out);
        check_reply(&r, &out)?;
        if let Reply::Read { segments, .. } = &r {
            let total: u64 = segments.iter().map(|s| s.1).sum();
            prop_assert!(total <= u64::from(s.config().max_io));
            for &(off, len) in segments {
                prop_assert!(off + len <= s.mapping().len() as u64);
            }
        }
    }
}
