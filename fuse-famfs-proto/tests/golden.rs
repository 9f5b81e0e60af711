//! Golden-byte tests for every famfs message. The expected bytes are written out field by field
//! from the protocol's message layouts (the famfs FUSE extension's GET_FMAP/GET_DAXDEV messages and
//! the base FUSE messages they ride on), never with the code under test.

use fuse_famfs_proto::abi::{self, DaxdevOut, InitIn, Opcode};
use fuse_famfs_proto::fmap::{Extent, FileType, FmapKind, FmapMessage, FmapWire};
use fuse_famfs_proto::reply::{self, InitConfig, ReplyRef};
use fuse_famfs_proto::{AbiGeneration, Fmap, Operation, Request};

mod common;

const MIB: u64 = 1 << 20;

/// Little-endian byte builder: one call per table row.
#[derive(Default)]
struct B(Vec<u8>);

impl B {
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }
    fn zeros(mut self, n: usize) -> Self {
        self.0.resize(self.0.len() + n, 0);
        self
    }
}

/// fuse_in_header, §8: len, opcode, unique, nodeid, uid, gid, pid, total_extlen, padding.
fn in_header(len: u32, opcode: u32, unique: u64, nodeid: u64) -> B {
    B::default()
        .u32(len)
        .u32(opcode)
        .u64(unique)
        .u64(nodeid)
        .u32(1000)
        .u32(1001)
        .u32(4242)
        .u16(0)
        .u16(0)
}

/// fuse_out_header, §8: len, error, unique.
fn out_header(len: u32, error: i32, unique: u64) -> B {
    B::default().u32(len).i32(error).u64(unique)
}

fn with_creds(mut r: Request<'_>) -> Request<'_> {
    r.header.uid = 1000;
    r.header.gid = 1001;
    r.header.pid = 4242;
    r
}

#[test]
fn get_fmap_request_v1_is_a_bare_header() {
    // §3.1: opcode 54, nodeid = the file, no in-args, len = 40.
    let want = in_header(40, 54, 0x1234, 0x77).0;
    assert_eq!(want.len(), 40);
    let got = with_creds(Request::new(
        0x1234,
        0x77,
        Operation::GetFmap { size: None },
    ))
    .to_bytes()
    .unwrap();
    assert_eq!(got, want);
    let p = Request::parse(&want).unwrap();
    assert_eq!(p.op, Operation::GetFmap { size: None });
    assert_eq!(p.header.nodeid, 0x77);
    assert_eq!(p.header.uid, 1000);
}

#[test]
fn get_fmap_request_dev_carries_buffer_size() {
    // §3.1 dev variant: fuse_getxattr_in { u32 size, u32 padding } after the header, len = 48.
    let want = in_header(48, 54, 6, 0x77).u32(4096).u32(0).0;
    let got = with_creds(Request::new(
        6,
        0x77,
        Operation::GetFmap { size: Some(4096) },
    ))
    .to_bytes()
    .unwrap();
    assert_eq!(got, want);
    assert_eq!(
        Request::parse(&want).unwrap().op,
        Operation::GetFmap { size: Some(4096) }
    );
}

#[test]
fn get_daxdev_request_has_index_in_nodeid() {
    // §4.1: opcode 55, nodeid = daxdev index, no in-args.
    let want = in_header(40, 55, 8, 3).0;
    let got = with_creds(Request::new(8, 999, Operation::GetDaxdev { index: 3 }))
        .to_bytes()
        .unwrap();
    assert_eq!(got, want);
    assert_eq!(
        Request::parse(&want).unwrap().op,
        Operation::GetDaxdev { index: 3 }
    );
}

/// fuse_famfs_fmap_header, §3.2.
#[allow(clippy::too_many_arguments)]
fn fmap_header(file_type: u8, ext_type: u32, nextents: u32, word12: u32, file_size: u64) -> B {
    B::default()
        .u8(file_type) // 0 file_type
        .u8(0) // 1 reserved
        .u16(1) // 2 fmap_version = 1
        .u32(ext_type) // 4 ext_type
        .u32(nextents) // 8 nextents
        .u32(word12) // 12 reserved0 / fmap_size
        .u64(file_size) // 16 file_size
        .u64(0) // 24 reserved1
}

/// fuse_famfs_simple_ext, §3.2.
fn simple_ext(b: B, dev: u32, off: u64, len: u64) -> B {
    b.u32(dev).u32(0).u64(off).u64(len)
}

/// fuse_famfs_iext, §3.2.
fn iext(b: B, nstrips: u32, chunk: u32, nbytes: u64) -> B {
    b.u32(nstrips).u32(chunk).u64(nbytes).u64(0)
}

fn simple_fmap() -> FmapMessage {
    FmapMessage {
        file_type: FileType::Log,
        fmap: Fmap {
            file_size: 5 * MIB,
            kind: FmapKind::Simple(vec![
                Extent::new(0, 2 * MIB, 4 * MIB),
                Extent::new(0, 64 * MIB, 2 * MIB),
            ]),
        },
    }
}

#[test]
fn get_fmap_reply_simple_v1() {
    let payload = {
        let b = fmap_header(2, 0, 2, 0, 5 * MIB);
        let b = simple_ext(b, 0, 2 * MIB, 4 * MIB);
        simple_ext(b, 0, 64 * MIB, 2 * MIB).0
    };
    assert_eq!(payload.len(), 32 + 2 * 24);
    let want = out_header(16 + 80, 0, 42).bytes(&payload).0;

    let mut out = vec![0u8; 8192];
    let m = simple_fmap();
    let n = reply::get_fmap(&mut out, 42, &m.fmap, m.file_type, AbiGeneration::V1, None).unwrap();
    assert_eq!(&out[..n], &want[..]);
    assert_eq!(
        FmapMessage::parse(&payload, AbiGeneration::V1).unwrap(),
        simple_fmap()
    );
}

#[test]
fn get_fmap_reply_simple_dev_sets_fmap_size() {
    let payload = {
        let b = fmap_header(2, 0, 2, 80, 5 * MIB);
        let b = simple_ext(b, 0, 2 * MIB, 4 * MIB);
        simple_ext(b, 0, 64 * MIB, 2 * MIB).0
    };
    let m = simple_fmap();
    let got = m.fmap.to_bytes(m.file_type, AbiGeneration::Dev).unwrap();
    assert_eq!(got, payload);
    // Too large for the kernel's offered buffer: the header alone, fmap_size = 80.
    let mut out = vec![0u8; 4096];
    let n = reply::get_fmap(
        &mut out,
        9,
        &m.fmap,
        m.file_type,
        AbiGeneration::Dev,
        Some(64),
    )
    .unwrap();
    let want = out_header(48, 0, 9)
        .bytes(&fmap_header(2, 0, 2, 80, 5 * MIB).0)
        .0;
    assert_eq!(&out[..n], &want[..]);
}

#[test]
fn get_fmap_reply_interleaved_v1() {
    let fmap = common::two_interleaved_extents();
    let b = fmap_header(0, 1, 2, 0, 12 * MIB);
    let b = iext(b, 2, 2 * 1024 * 1024, 8 * MIB);
    let b = simple_ext(b, 0, 0, 4 * MIB);
    let b = simple_ext(b, 0, 32 * MIB, 4 * MIB);
    let b = iext(b, 1, 4 * 1024 * 1024, 4 * MIB);
    let payload = simple_ext(b, 0, 96 * MIB, 4 * MIB).0;
    assert_eq!(payload.len(), 32 + 24 * 5);
    assert_eq!(
        fmap.to_bytes(FileType::Regular, AbiGeneration::V1).unwrap(),
        payload
    );
    let got = FmapMessage::parse(&payload, AbiGeneration::V1).unwrap();
    assert_eq!((got.file_type, got.fmap), (FileType::Regular, fmap));
}

#[test]
fn get_daxdev_reply_is_280_bytes() {
    // §4.2: index u16, reserved u16, reserved2 u32, reserved3 u64, reserved4 u64, name[256].
    let name = b"/dev/dax0.0";
    let payload = B::default()
        .u16(0)
        .u16(0)
        .u32(0)
        .u64(0)
        .u64(0)
        .bytes(name)
        .zeros(256 - name.len())
        .0;
    assert_eq!(payload.len(), 280);
    let want = out_header(296, 0, 77).bytes(&payload).0;
    let mut out = [0u8; 512];
    let dev = DaxdevOut::new(0, name).unwrap();
    let n = reply::daxdev(&mut out, 77, &dev).unwrap();
    assert_eq!(&out[..n], &want[..]);
    let r = ReplyRef::parse(&want).unwrap();
    assert_eq!(r.daxdev().unwrap().name_bytes(), name);
}

#[test]
fn init_with_dax_fmap() {
    // §8 fuse_init_in: kernel offers FUSE_INIT_EXT (bit 30) in flags and bit 11 in flags2.
    let flags: u32 = (1 << 30) | (1 << 10) | 1; // INIT_EXT | FLOCK_LOCKS | ASYNC_READ
    let req = in_header(104, 26, 2, 0)
        .u32(7)
        .u32(45)
        .u32(128 * 1024)
        .u32(flags)
        .u32(0x800)
        .zeros(44)
        .0;
    let p = Request::parse(&req).unwrap();
    let Operation::Init(init) = p.op else {
        panic!("not INIT: {:?}", p.op)
    };
    assert_eq!(init.flags64() & abi::FUSE_DAX_FMAP, abi::FUSE_DAX_FMAP);
    let again = with_creds(Request::new(2, 0, Operation::Init(init)))
        .to_bytes()
        .unwrap();
    assert_eq!(again, req);

    let cfg = InitConfig {
        flags: abi::FUSE_ASYNC_READ | abi::FUSE_FLOCK_LOCKS | abi::FUSE_DAX_FMAP,
        max_write: 1 << 20,
        max_pages: 256,
        time_gran: 1,
        ..Default::default()
    };
    let neg = reply::negotiate(&init, &cfg).unwrap();
    assert!(neg.famfs());
    let mut out = [0u8; 128];
    let n = neg.write_reply(&mut out, 2).unwrap();
    // §8 fuse_init_out (64 bytes).
    let want = out_header(80, 0, 2)
        .u32(7) // major
        .u32(45) // minor
        .u32(128 * 1024) // max_readahead
        .u32(flags) // flags: INIT_EXT | FLOCK_LOCKS | ASYNC_READ
        .u16(0) // max_background
        .u16(0) // congestion_threshold
        .u32(1 << 20) // max_write
        .u32(1) // time_gran
        .u16(0) // max_pages (FUSE_MAX_PAGES not negotiated)
        .u16(0) // map_alignment
        .u32(0x800) // flags2: FUSE_DAX_FMAP
        .u32(0) // max_stack_depth
        .u16(0) // request_timeout
        .zeros(22) // unused[11]
        .0;
    assert_eq!(&out[..n], &want[..]);
    let r = ReplyRef::parse(&want).unwrap();
    assert!(reply::famfs_enabled(&init, &r.init().unwrap()));
}

#[test]
fn opcode_and_flag_values() {
    assert_eq!(Opcode::GET_FMAP.0, 54);
    assert_eq!(Opcode::GET_DAXDEV.0, 55);
    assert_eq!(abi::FUSE_DAX_FMAP, 1 << 43);
    assert_eq!(abi::FUSE_DAX_FMAP >> 32, 0x800);
    assert_eq!(abi::FUSE_INIT_EXT, 1 << 30);
    // A short (pre-7.36) INIT is zero-filled, so flags2 reads as 0.
    let short = in_header(56, 26, 2, 0).u32(7).u32(31).u32(0).u32(0).0;
    let Operation::Init(i) = Request::parse(&short).unwrap().op else {
        panic!()
    };
    assert_eq!(
        i,
        InitIn {
            major: 7,
            minor: 31,
            ..Default::default()
        }
    );
}

#[test]
fn base_replies() {
    let mut out = [0u8; 256];
    // Error reply: exactly 16 bytes, error = -errno.
    let n = reply::error(&mut out, 5, fuse_famfs_proto::Errno::ENOENT).unwrap();
    assert_eq!(&out[..n], &out_header(16, -2, 5).0[..]);
    // OPEN: fuse_open_out { u64 fh, u32 open_flags, i32 backing_id }.
    let n = reply::open(
        &mut out,
        5,
        u64::MAX,
        abi::FOPEN_DIRECT_IO | abi::FOPEN_KEEP_CACHE,
    )
    .unwrap();
    assert_eq!(
        &out[..n],
        &out_header(32, 0, 5).u64(u64::MAX).u32(3).i32(0).0[..]
    );
    // LSEEK.
    let n = reply::lseek(&mut out, 5, 4096).unwrap();
    assert_eq!(&out[..n], &out_header(24, 0, 5).u64(4096).0[..]);
}
