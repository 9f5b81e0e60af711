//! Seed corpus of the cargo-fuzz targets in `fuzz/` (request, fmap, reply). Nothing binary is
//! committed: `scripts/fuzz.sh` runs this test with `FAMFS_FUZZ_SEEDS=<dir>` to write
//! `<dir>/<target>/seed-*` files.
//!
//! The seeds are the messages of `tests/golden.rs` (whose bytes that file checks field by field
//! against the protocol tables) built through the public encoders, plus one request of every
//! opcode the parser knows and replies of every kind. Without the variable the test still
//! builds them all and checks that each one is accepted by the parser its target feeds.

use fuse_famfs_proto::abi::{
    self, AttrOut, CreateIn, DaxdevOut, EntryOut, FileLock, ForgetIn, ForgetOne, GetxattrIn,
    InitIn, Kstatfs, LkIn, Opcode, ReadIn, WriteIn,
};
use fuse_famfs_proto::fmap::{Extent, FileType, InterleavedExtent};
use fuse_famfs_proto::reply::{self, InitConfig, ReaddirPlusWriter, ReaddirWriter, ReplyRef};
use fuse_famfs_proto::request::ForgetList;
use fuse_famfs_proto::{AbiGeneration, Errno, Fmap, FmapMessage, FmapWire, Operation, Request};
use fuzz_corpus::Corpus;
use zerocopy::IntoBytes;

mod common;

const MIB: u64 = 1 << 20;

/// The kernel's INIT offer with famfs (as in golden.rs: INIT_EXT, FLOCK_LOCKS, ASYNC_READ and
/// FUSE_DAX_FMAP in flags2).
fn init_offer() -> InitIn {
    InitIn {
        major: 7,
        minor: 45,
        max_readahead: 128 * 1024,
        flags: (1 << 30) | (1 << 10) | 1,
        flags2: 0x800,
        ..Default::default()
    }
}

fn requests() -> Vec<(String, Vec<u8>)> {
    let forgets = [
        ForgetOne {
            nodeid: 5,
            nlookup: 1,
        },
        ForgetOne {
            nodeid: 6,
            nlookup: 3,
        },
    ];
    let forgets = forgets.as_bytes();
    let ops: Vec<Operation<'_>> = vec![
        Operation::Init(init_offer()),
        Operation::Destroy,
        Operation::Lookup { name: b"file0" },
        Operation::Forget(ForgetIn { nlookup: 2 }),
        Operation::BatchForget(ForgetList::from_bytes(forgets).unwrap()),
        Operation::Getattr(Default::default()),
        Operation::Setattr(Default::default()),
        Operation::Open(Default::default()),
        Operation::Opendir(Default::default()),
        Operation::Create {
            arg: CreateIn {
                flags: 0o100,
                mode: 0o100644,
                ..Default::default()
            },
            name: b"new",
        },
        Operation::Read(ReadIn {
            size: 4096,
            ..Default::default()
        }),
        Operation::Write {
            arg: WriteIn {
                size: 5,
                ..Default::default()
            },
            data: b"hello",
        },
        Operation::Release(Default::default()),
        Operation::Releasedir(Default::default()),
        Operation::Readdir(ReadIn {
            size: 4096,
            ..Default::default()
        }),
        Operation::Readdirplus(ReadIn {
            size: 4096,
            ..Default::default()
        }),
        Operation::Statfs,
        Operation::Flush(Default::default()),
        Operation::Fsync(Default::default()),
        Operation::Fsyncdir(Default::default()),
        Operation::Access(Default::default()),
        Operation::Getxattr {
            arg: GetxattrIn {
                size: 256,
                padding: 0,
            },
            name: b"user.famfs.shadow",
        },
        Operation::Listxattr(Default::default()),
        Operation::Interrupt(Default::default()),
        Operation::Lseek(Default::default()),
        Operation::Getlk(LkIn::default()),
        Operation::Setlk(LkIn::default()),
        Operation::Setlkw(LkIn::default()),
        Operation::GetFmap { size: None },
        Operation::GetFmap { size: Some(4096) },
        Operation::GetDaxdev { index: 0 },
        Operation::Other {
            opcode: Opcode(9999),
            payload: b"xyz",
        },
    ];
    let mut out: Vec<(String, Vec<u8>)> = ops
        .into_iter()
        .enumerate()
        .map(|(i, op)| {
            let name = format!("{i:02}-{:?}", op.opcode()).to_lowercase();
            let mut r = Request::new(0x1000 + i as u64, 2, op);
            (r.header.uid, r.header.gid, r.header.pid) = (1000, 1001, 4242);
            (name, r.to_bytes().unwrap())
        })
        .collect();
    // A pre-7.36 INIT (16 argument bytes) and a request with one extension block.
    let mut short = out[0].1[..56].to_vec();
    short[0] = 56;
    out.push(("init-short".into(), short));
    let mut ext = Request::new(7, 1, Operation::Lookup { name: b"x" });
    ext.extensions = &[1, 0, 0, 0, 8, 0, 0, 0];
    out.push(("lookup-extension".into(), ext.to_bytes().unwrap()));
    out
}

/// The fmaps of golden.rs and the largest ones each generation takes.
fn fmaps() -> Vec<(&'static str, FmapMessage, AbiGeneration)> {
    let simple = Fmap::simple(
        5 * MIB,
        vec![
            Extent::new(0, 2 * MIB, 4 * MIB),
            Extent::new(0, 64 * MIB, 2 * MIB),
        ],
    );
    let two_iext = common::two_interleaved_extents();
    let strips = (0..32)
        .map(|i| Extent::new(0, (256 + 8 * i) * MIB, 8 * MIB))
        .collect();
    let wide = Fmap::striped(250 * MIB, vec![InterleavedExtent::new(2 * MIB, strips)]);
    let many = Fmap::simple(
        64 * MIB,
        (0..32)
            .map(|i| Extent::new(0, (4 * i + 8) * MIB, 2 * MIB))
            .collect(),
    );
    let msg = |file_type, fmap: &Fmap| FmapMessage {
        file_type,
        fmap: fmap.clone(),
    };
    vec![
        ("simple-v1", msg(FileType::Log, &simple), AbiGeneration::V1),
        (
            "simple-dev",
            msg(FileType::Log, &simple),
            AbiGeneration::Dev,
        ),
        (
            "interleaved-v1",
            msg(FileType::Regular, &two_iext),
            AbiGeneration::V1,
        ),
        ("wide-v1", msg(FileType::Regular, &wide), AbiGeneration::V1),
        (
            "wide-unrolled-dev",
            msg(FileType::Regular, &AbiGeneration::Dev.adapt_fmap(&wide)),
            AbiGeneration::Dev,
        ),
        (
            "32-extents-v1",
            msg(FileType::Superblock, &many),
            AbiGeneration::V1,
        ),
    ]
}

fn replies() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut add = |name: &str, f: &dyn Fn(&mut [u8]) -> usize| {
        let mut buf = vec![0u8; 1 << 16];
        let n = f(&mut buf);
        buf.truncate(n);
        out.push((name.to_string(), buf));
    };
    for (name, m, g) in fmaps() {
        add(&format!("get-fmap-{name}"), &|b| {
            reply::get_fmap(
                b,
                42,
                &m.fmap,
                m.file_type,
                g,
                g.get_fmap_has_size_input().then_some(4096),
            )
            .unwrap()
        });
    }
    let (_, m, _) = &fmaps()[0];
    add("get-fmap-dev-retry", &|b| {
        reply::get_fmap(b, 9, &m.fmap, m.file_type, AbiGeneration::Dev, Some(64)).unwrap()
    });
    add("daxdev", &|b| {
        reply::daxdev(b, 77, &DaxdevOut::new(0, b"/dev/dax0.0").unwrap()).unwrap()
    });
    add("init", &|b| {
        let cfg = InitConfig {
            flags: abi::FUSE_ASYNC_READ | abi::FUSE_FLOCK_LOCKS | abi::FUSE_DAX_FMAP,
            max_write: 1 << 20,
            ..Default::default()
        };
        reply::negotiate(&init_offer(), &cfg)
            .unwrap()
            .write_reply(b, 2)
            .unwrap()
    });
    add("error", &|b| reply::error(b, 5, Errno::ENOENT).unwrap());
    add("open", &|b| {
        reply::open(b, 5, 3, abi::FOPEN_KEEP_CACHE).unwrap()
    });
    add("lseek", &|b| reply::lseek(b, 5, 4096).unwrap());
    add("entry", &|b| {
        reply::entry(b, 5, &EntryOut::default()).unwrap()
    });
    add("attr", &|b| reply::attr(b, 5, &AttrOut::default()).unwrap());
    add("statfs", &|b| {
        reply::statfs(b, 5, &Kstatfs::default()).unwrap()
    });
    add("lk", &|b| reply::lk(b, 5, &FileLock::default()).unwrap());
    add("xattr", &|b| {
        reply::xattr(b, 5, 256, b"/tmp/famfs_shadow").unwrap()
    });
    add("notify-inval-entry", &|b| {
        reply::notify_inval_entry(b, 1, b"file0", 0).unwrap()
    });
    add("readdir", &|b| {
        let mut w = ReaddirWriter::new(b, 4096);
        for (i, name) in [&b"."[..], b"..", b"dir1", b"a-longer-file-name"]
            .iter()
            .enumerate()
        {
            w.push(i as u64 + 1, i as u64 + 1, abi::DT_DIR, name)
                .unwrap();
        }
        w.finish(6)
    });
    add("readdirplus", &|b| {
        let mut w = ReaddirPlusWriter::new(b, 4096);
        w.push(&EntryOut::default(), 1, abi::DT_DIR, b".").unwrap();
        w.push(&EntryOut::default(), 2, abi::DT_REG, b"file0")
            .unwrap();
        w.finish(6)
    });
    out
}

fn corpus() -> Corpus {
    let mut c = Corpus::new();
    c.entry("request").or_default().extend(requests());
    for (name, m, g) in fmaps() {
        let bytes = m.fmap.to_bytes(m.file_type, g).unwrap();
        c.entry("fmap").or_default().insert(name.into(), bytes);
    }
    c.entry("reply").or_default().extend(replies());
    c
}

#[test]
fn every_seed_reaches_its_parser() {
    let c = corpus();
    for (name, r) in &c["request"] {
        Request::parse(r).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert_eq!(c["request"].len(), 34);
    for (name, m, g) in fmaps() {
        assert_eq!(FmapMessage::parse(&c["fmap"][name], g), Ok(m), "{name}");
    }
    for (name, r) in &c["reply"] {
        let r = ReplyRef::parse(r).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.is_notification(), name.starts_with("notify"), "{name}");
        assert!(
            name == "error" || r.is_notification() || r.result().is_ok(),
            "{name}"
        );
    }
    assert!(c["reply"]["readdir"].len() > 16 + 4 * 24);
}

/// With `FAMFS_FUZZ_SEEDS=<dir>`, writes the corpus to `<dir>/<target>/seed-<name>`.
#[test]
fn write_seeds_when_asked() {
    fuzz_corpus::write_if_asked(corpus).unwrap();
}
