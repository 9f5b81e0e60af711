//! `Adapter::handle` on arbitrary and mutated request bytes: never panics, and every reply it
//! produces is well-formed (length field matches, error 0 or a valid negative errno, an error
//! reply is exactly 16 bytes, READ ranges inside the device mapping). The same for
//! `Adapter::init`, which answers a connection's requests until INIT.

use std::sync::{Arc, OnceLock};

use famfs_log::alloc::AllocPolicy;
use famfs_server::{Adapter, Config, FileSystem, Handshake, Reply};
use famfs_tests::standin::{INTERLEAVE_3X2M, StandIn};
use fuse_famfs_proto::abi::{GetattrIn, InitIn, OpenIn, ReadIn};
use fuse_famfs_proto::request::{Operation, Request};
use proptest::prelude::*;

fn server() -> &'static (Arc<Adapter>, StandIn) {
    static S: OnceLock<(Arc<Adapter>, StandIn)> = OnceLock::new();
    S.get_or_init(|| {
        let mut dev = StandIn::create(8 << 30).unwrap();
        dev.mkdir_p("d").unwrap();
        dev.add_file("d/f", 3 << 20, AllocPolicy::Contiguous)
            .unwrap();
        dev.add_file("s", 5 << 20, INTERLEAVE_3X2M).unwrap();
        let mut cfg = Config::new(dev.path());
        cfg.system_uuid = Some(dev.master_uuid());
        let fs = FileSystem::open(cfg).unwrap();
        let mut out = vec![0u8; fs.config().request_buffer_size()];
        let Handshake::Ready { adapter, reply } = Adapter::init(&fs, &init_request(), &mut out)
        else {
            panic!("INIT not accepted");
        };
        assert!(matches!(reply, Reply::Bytes(_)));
        (Arc::new(adapter), dev)
    })
}

fn init_request() -> Vec<u8> {
    Request::new(1, 0, Operation::Init(InitIn::offer(45, 1 << 20, u64::MAX)))
        .to_bytes()
        .unwrap()
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
        let mut out = vec![0u8; s.fs().config().request_buffer_size()];
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
        let mut out = vec![0u8; s.fs().config().request_buffer_size()];
        let r = s.handle(&req, &mut out);
        check_reply(&r, &out)?;
        if let Reply::Read { segments, .. } = &r {
            let total: u64 = segments.iter().map(|s| s.1).sum();
            prop_assert!(total <= u64::from(s.fs().config().max_io));
            for &(off, len) in segments {
                prop_assert!(off + len <= s.fs().mapping().len() as u64);
            }
        }
    }

    #[test]
    fn requests_before_init(which in 0usize..10, hits in proptest::collection::vec((0usize..128, any::<u8>()), 0..6)) {
        let (s, _) = server();
        let mut reqs = valid_requests();
        reqs.push(init_request());
        let mut req = reqs.swap_remove(which);
        for (pos, val) in hits {
            let n = req.len();
            req[pos % n] = val;
        }
        let mut out = vec![0u8; s.fs().config().request_buffer_size()];
        match Adapter::init(s.fs(), &req, &mut out) {
            Handshake::Ready { reply, .. } => {
                check_reply(&reply, &out)?;
                prop_assert!(matches!(reply, Reply::Bytes(n) if n > 16), "{:?}", reply);
                let parsed = Request::parse(&req);
                prop_assert!(
                    matches!(parsed, Ok(Request { op: Operation::Init(ref i), .. }) if i.major == 7),
                    "ready on {:?}",
                    parsed
                );
            }
            Handshake::Pending(reply) => {
                check_reply(&reply, &out)?;
                prop_assert!(!matches!(reply, Reply::Read { .. } | Reply::Last(_)), "{:?}", reply);
                if let Reply::Bytes(_) = reply {
                    let err = i32::from_ne_bytes(out[4..8].try_into().unwrap());
                    prop_assert!(err < 0, "a request before INIT was answered");
                }
            }
        }
    }
}
