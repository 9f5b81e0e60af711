//! `Server::handle` on arbitrary and mutated request bytes: never panics, and every reply it
//! produces is well-formed (length field matches, error 0 or a valid negative errno, an error
//! reply is exactly 16 bytes).

use std::sync::{Arc, OnceLock};

use famfs_fsdev::{Access, DaxDevice, FileView};
use famfs_log::alloc::{AllocPolicy, InterleaveParams};
use famfs_log::namespace::Attr;
use famfs_log::{Famfs, MkfsOptions, OpenOptions, mkfs};
use famfs_server::{Config, Reply, Server};
use fuse_famfs_proto::abi::InitIn;
use fuse_famfs_proto::request::{Operation, Request};
use proptest::prelude::*;
use uuid::Uuid;

fn server() -> &'static (Arc<Server>, tempfile::TempDir) {
    static S: OnceLock<(Arc<Server>, tempfile::TempDir)> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("dev.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(8 << 30)
            .unwrap();
        let me = Uuid::new_v4();
        let dev = DaxDevice::open(&img, Access::ReadWrite).unwrap();
        let map = dev.map_all().unwrap();
        mkfs(&map, dev.size(), &MkfsOptions::new(me, "x")).unwrap();
        let mut fs = Famfs::open_device(
            &map,
            OpenOptions {
                system_uuid: Some(me),
                ..Default::default()
            },
        )
        .unwrap();
        let mut w = fs.writer().unwrap();
        let a = Attr {
            mode: 0o644,
            uid: 0,
            gid: 0,
        };
        w.mkdir("d".as_ref(), Attr { mode: 0o755, ..a }).unwrap();
        let (_, e) = w
            .create("d/f".as_ref(), 3 << 20, a, &AllocPolicy::Contiguous)
            .unwrap();
        FileView::new(&map, &e.fmap.to_wire(e.size).unwrap())
            .unwrap()
            .write_at(0, b"hello")
            .unwrap();
        let p = InterleaveParams {
            nbuckets: 4,
            nstrips: 2,
            chunk_size: 2 << 20,
        };
        w.create("s".as_ref(), 5 << 20, a, &AllocPolicy::Interleaved(p))
            .unwrap();
        drop(w);
        let mut cfg = Config::new(&img);
        cfg.system_uuid = Some(me);
        let s = Server::open(cfg).unwrap();
        let mut out = vec![0u8; s.request_buffer_size()];
        let init = Request::new(1, 0, Operation::Init(InitIn::offer(45, 1 << 20, u64::MAX)))
            .to_bytes()
            .unwrap();
        assert!(matches!(s.handle(&init, &mut out), Reply::Bytes(_)));
        (s, dir)
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
    use fuse_famfs_proto::abi::{GetattrIn, OpenIn, ReadIn};
    let mut v = Vec::new();
    let mut add = |nodeid, op| v.push(Request::new(7, nodeid, op).to_bytes().unwrap());
    add(1, Operation::Lookup { name: b"d" });
    add(2, Operation::Getattr(GetattrIn::default()));
    add(5, Operation::Open(OpenIn::default()));
    add(
        5,
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
    add(5, Operation::GetFmap { size: None });
    add(6, Operation::GetFmap { size: Some(4096) });
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
