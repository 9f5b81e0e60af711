//! The server against an emulated famfs kernel ([`KernelEmu`]) over a socket pair: every GET_FMAP
//! reply passes the kernel's validation and resolving reads through it gives the same bytes as
//! the stock path (FUSE READ) and as what was written; the protocol rules a kernel relies on
//! (one reply per request, ENOSYS, EINVAL without losing the session, refused namespace changes
//! and writes, files never growing); the Dev ABI generation; and INIT without famfs.
//!
//! No mount is made, so these tests need no /dev/fuse; accepting famfs needs CAP_SYS_RAWIO
//! (root): without it those tests fail under `CI=true` and skip loudly otherwise.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use famfs_log::alloc::{AllocPolicy, InterleaveParams};
use famfs_log::layout::{DEFAULT_LOG_LEN, LOG_OFFSET};
use famfs_tests::kernel_emu::{EmuError, EmuOptions, KERNEL_OFFER, KernelEmu, OpenFile, ROOT};
use famfs_tests::prereq;
use famfs_tests::standin::{INTERLEAVE_3X2M, StandIn};
use fuse_famfs_proto::abi::{
    self, CreateIn, ForgetIn, ForgetOne, GetxattrIn, InitIn, InterruptIn, Opcode, OpenIn, ReadIn,
    SetattrIn, WriteIn,
};
use fuse_famfs_proto::fmap::{FileType, FmapKind, FmapMessage};
use fuse_famfs_proto::request::ForgetList;
use fuse_famfs_proto::{AbiGeneration, Errno, Operation};
use uuid::Uuid;
use zerocopy::IntoBytes;

const MIB: u64 = 1 << 20;

/// The shared read-only fixture: simple and interleaved files of awkward sizes.
struct Fx {
    dev: StandIn,
    paths: Vec<PathBuf>,
}

fn fixture() -> &'static Fx {
    static FX: OnceLock<Fx> = OnceLock::new();
    FX.get_or_init(|| {
        let mut dev = StandIn::create(8 << 30).expect("stand-in");
        for d in ["simple", "striped", "deep/a/b/c"] {
            dev.mkdir_p(d).expect("mkdir");
        }
        let four_by_4m = AllocPolicy::Interleaved(InterleaveParams {
            nbuckets: 4,
            nstrips: 4,
            chunk_size: 4 * MIB,
        });
        let files: [(&str, u64, AllocPolicy); 11] = [
            ("simple/one_byte", 1, AllocPolicy::Contiguous),
            ("simple/odd", 3 * MIB + 77, AllocPolicy::Contiguous),
            ("simple/exact_2m", 2 * MIB, AllocPolicy::Contiguous),
            ("simple/big", 37 * MIB + 4093, AllocPolicy::Contiguous),
            ("striped/odd", 20 * MIB + 5, INTERLEAVE_3X2M),
            ("striped/exact", 12 * MIB, INTERLEAVE_3X2M),
            ("striped/sub_chunk", MIB + 1, INTERLEAVE_3X2M),
            ("striped/one_stripe_plus", 6 * MIB + 4097, INTERLEAVE_3X2M),
            ("striped/4x4m_odd", 33 * MIB + 999, four_by_4m),
            ("deep/a/b/c/file", 5 * MIB - 3, AllocPolicy::Contiguous),
            ("top", 4096, AllocPolicy::Contiguous),
        ];
        let mut paths = Vec::new();
        for (p, size, policy) in files {
            dev.add_file(p, size, policy).expect("add file");
            paths.push(PathBuf::from(p));
        }
        Fx { dev, paths }
    })
}

fn emu(dev: &StandIn, uuid: Uuid, famfs: bool) -> KernelEmu {
    KernelEmu::start(dev.path(), uuid, famfs).expect("start emulator")
}

fn errno_of<T: std::fmt::Debug>(r: Result<T, EmuError>) -> Errno {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e
            .errno()
            .unwrap_or_else(|| panic!("error without errno: {e}")),
    }
}

// ------------------------------------------------------------------------------------------
// INIT

#[test]
fn famfs_is_accepted_when_offered_with_cap_sys_rawio() {
    if !prereq::cap_sys_rawio("famfs_is_accepted_when_offered_with_cap_sys_rawio") {
        return;
    }
    let fx = fixture();
    let k = emu(&fx.dev, fx.dev.master_uuid(), true);
    let out = k.init_reply();
    assert_eq!(out.major, 7);
    assert_ne!(u64::from(out.flags) & abi::FUSE_INIT_EXT, 0, "{out:?}");
    assert_eq!(out.flags2 & 0x800, 0x800, "flags2 bit 11: {out:?}");
    assert!(k.famfs_enabled());
    assert!(k.server().unwrap().famfs_enabled());
}

#[test]
fn without_the_offer_famfs_stays_off_and_read_works() {
    let fx = fixture();
    let mut k = emu(&fx.dev, fx.dev.master_uuid(), false);
    assert_eq!(k.init_reply().flags2 & 0x800, 0, "{:?}", k.init_reply());
    assert!(!k.famfs_enabled());
    assert!(!k.server().unwrap().famfs_enabled());
    for p in &fx.paths {
        let size = fx.dev.file(p).unwrap().size;
        let e = k.lookup_path(p).unwrap();
        let f = k.open(e.nodeid, libc::O_RDONLY).unwrap();
        assert_ne!(
            f.open_flags & abi::FOPEN_DIRECT_IO,
            0,
            "{p:?}: stock path is direct_io"
        );
        let got = k.read_file(&f, 0, size as usize + 10).unwrap();
        assert!(
            got == fx.dev.expected(p, 0, size),
            "{p:?}: READ bytes differ"
        );
        k.close(&f).unwrap();
    }
    assert_eq!(k.sent(Opcode::GET_FMAP), 0, "no GET_FMAP without famfs");
    // GET_FMAP sent anyway is still answered (the server does not depend on the INIT outcome).
    let e = k.lookup_path("simple/odd").unwrap();
    assert!(
        k.fetch_fmap(e.nodeid, AbiGeneration::V1, None).is_ok(),
        "GET_FMAP answered"
    );
}

/// A real famfs kernel can map files only onto a dax device in famfs mode: for a stand-in file
/// the default policy declines the offer and serves READ itself (otherwise every I/O on a real
/// famfs kernel would fail with EIO after GET_DAXDEV named a regular file).
#[test]
fn default_policy_declines_famfs_for_a_stand_in_file() {
    let fx = fixture();
    let mut opts = EmuOptions::new(fx.dev.path(), fx.dev.master_uuid(), true);
    opts.config.dax = famfs_server::DaxPolicy::Auto;
    let mut k = KernelEmu::start_with(opts).expect("start emulator");
    assert_eq!(k.init_reply().flags2 & 0x800, 0, "{:?}", k.init_reply());
    assert!(!k.famfs_enabled());
    let p = &fx.paths[0];
    let size = fx.dev.file(p).unwrap().size;
    let e = k.lookup_path(p).unwrap();
    let f = k.open(e.nodeid, libc::O_RDONLY).unwrap();
    assert!(k.read_file(&f, 0, size as usize).unwrap() == fx.dev.expected(p, 0, size));
    assert_eq!(k.sent(Opcode::GET_FMAP), 0);
}

/// Accepting famfs needs CAP_SYS_RAWIO: the test runs itself again under `setpriv` with the
/// capability dropped from the bounding set, and the child checks that famfs stays off although
/// the kernel offers it, and that READ still works.
#[test]
fn famfs_needs_cap_sys_rawio() {
    const CHILD: &str = "FAMFS_TESTS_NO_RAWIO_CHILD";
    if std::env::var_os(CHILD).is_some() {
        assert!(
            !prereq::has_cap_sys_rawio(),
            "child still has CAP_SYS_RAWIO"
        );
        let fx = fixture();
        let mut k = emu(&fx.dev, fx.dev.master_uuid(), true);
        assert_eq!(k.init_offer().flags2 & 0x800, 0x800, "offered");
        assert_eq!(
            k.init_reply().flags2 & 0x800,
            0,
            "accepted without CAP_SYS_RAWIO"
        );
        assert!(!k.famfs_enabled());
        let got = k.read_via_fuse("simple/odd", MIB, 4096).unwrap();
        assert_eq!(got, fx.dev.expected("simple/odd", MIB, 4096));
        return;
    }
    if !prereq::cap_sys_rawio("famfs_needs_cap_sys_rawio") {
        return;
    }
    if which("setpriv").is_none() {
        prereq::missing("famfs_needs_cap_sys_rawio", "setpriv (util-linux)");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--bounding-set", "-sys_rawio", "--"])
        .arg(exe)
        .args(["--exact", "famfs_needs_cap_sys_rawio", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "child ran no test:\n{text}");
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(cmd))
            .find(|c| c.is_file())
    })
}

// ------------------------------------------------------------------------------------------
// GET_FMAP, GET_DAXDEV and fault resolution

#[test]
fn every_fmap_passes_the_kernel_rules_and_resolves_to_the_written_bytes() {
    if !prereq::cap_sys_rawio("every_fmap_passes_the_kernel_rules...") {
        return;
    }
    let fx = fixture();
    let mut k = emu(&fx.dev, fx.dev.master_uuid(), true);
    let mut stock = emu(&fx.dev, fx.dev.master_uuid(), false);
    assert!(k.famfs_enabled());
    let interleaved = fx
        .dev
        .files()
        .filter(|f| matches!(f.fmap.kind, FmapKind::Interleaved(_)))
        .count();
    assert!(interleaved >= 4, "the fixture has interleaved files");
    for p in &fx.paths {
        let tf = fx.dev.file(p).unwrap();
        let e = k.lookup_path(p).unwrap();
        assert_eq!(e.attr.size, tf.size, "{p:?}");
        let f = k
            .open(e.nodeid, libc::O_RDONLY)
            .expect("open with GET_FMAP");
        let kf = k.cached_fmap(e.nodeid).expect("fmap cached by open");
        assert_eq!(kf.fmap.file_size, tf.size, "{p:?}");
        assert_eq!(kf.file_type, FileType::Regular, "{p:?}");
        kf.fmap
            .check_geometry()
            .unwrap_or_else(|g| panic!("{p:?}: {g}"));
        assert_eq!(kf.fmap, tf.fmap, "{p:?}: served map differs from the log");
        // A 2 MiB-aligned file offset resolves to a 2 MiB-aligned device offset (PMD faults).
        for off in (0..tf.size).step_by(2 << 20) {
            let r = k.resolve(e.nodeid, off).unwrap();
            assert_eq!(r.dev_offset.0 % (2 * MIB), 0, "{p:?} @ {off}");
            assert_eq!(r.dev_index, 0);
        }
        assert_eq!(k.daxdev_state(0), Some(Ok(())), "device 0 registered");
        let whole = k.read_fmap(&f, 0, tf.size as usize + 4096).unwrap();
        let want = fx.dev.expected(p, 0, tf.size);
        assert!(
            whole == want,
            "{p:?}: fault path bytes differ from what was written"
        );
        let via_read = stock.read_via_fuse(p, 0, tf.size as usize + 4096).unwrap();
        assert!(
            via_read == whole,
            "{p:?}: stock READ differs from the fault path"
        );
        // Past EOF: nothing (a fault there is SIGBUS).
        assert!(k.read_fmap(&f, tf.size, 10).unwrap().is_empty());
        assert!(matches!(
            k.resolve(e.nodeid, tf.size),
            Err(EmuError::Unresolved { .. })
        ));
        k.close(&f).unwrap();
    }
    assert_eq!(k.sent(Opcode::READ), 0, "a famfs kernel never sends READ");
    assert_eq!(k.sent(Opcode::GET_DAXDEV), 1, "device 0 asked for once");
    assert_eq!(k.sent(Opcode::GET_FMAP), fx.paths.len() as u64);
}

#[test]
fn meta_files_have_their_file_types_and_map_the_metadata() {
    if !prereq::cap_sys_rawio("meta_files_have_their_file_types...") {
        return;
    }
    let fx = fixture();
    for (uuid, role) in [(fx.dev.master_uuid(), "master"), (Uuid::new_v4(), "client")] {
        let mut k = emu(&fx.dev, uuid, true);
        let mut stock = emu(&fx.dev, uuid, false);
        for (path, ft, dev_off, len, mode) in [
            (".meta/.superblock", FileType::Superblock, 0, 2 * MIB, 0o444),
            (
                ".meta/.log",
                FileType::Log,
                LOG_OFFSET,
                DEFAULT_LOG_LEN,
                if role == "master" { 0o644 } else { 0o444 },
            ),
        ] {
            let e = k.lookup_path(path).unwrap();
            assert_eq!(e.attr.size, len, "{role} {path}");
            assert_eq!(e.attr.mode & 0o7777, mode, "{role} {path}");
            assert_eq!(e.attr.mode & libc::S_IFMT, libc::S_IFREG, "{role} {path}");
            let f = k.open(e.nodeid, libc::O_RDONLY).unwrap();
            let kf = k.cached_fmap(e.nodeid).unwrap();
            assert_eq!(kf.file_type, ft, "{role} {path}");
            match &kf.fmap.kind {
                FmapKind::Simple(x) => {
                    assert_eq!(x.len(), 1, "{role} {path}: {x:?}");
                    assert_eq!((x[0].offset, x[0].len), (dev_off, len), "{role} {path}");
                }
                other => panic!("{role} {path}: {other:?}"),
            }
            let via_map = k.read_fmap(&f, 0, len as usize).unwrap();
            let device = fx.dev.read_device(dev_off, len as usize).unwrap();
            assert!(
                via_map == device,
                "{role} {path}: fault path != device bytes"
            );
            let via_read = stock.read_via_fuse(path, 0, len as usize).unwrap();
            assert!(via_read == device, "{role} {path}: READ != device bytes");
            k.close(&f).unwrap();
        }
    }
}

#[test]
fn random_ranges_read_the_same_through_the_map_and_through_read() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    if !prereq::cap_sys_rawio("random_ranges_read_the_same...") {
        return;
    }
    let fx = fixture();
    let mut k = emu(&fx.dev, fx.dev.master_uuid(), true);
    let mut stock = emu(&fx.dev, fx.dev.master_uuid(), false);
    let mut open: Vec<(PathBuf, u64, OpenFile, OpenFile)> = Vec::new();
    for p in &fx.paths {
        let size = fx.dev.file(p).unwrap().size;
        let a = k.lookup_path(p).unwrap();
        let fa = k.open(a.nodeid, libc::O_RDONLY).unwrap();
        let b = stock.lookup_path(p).unwrap();
        let fb = stock.open(b.nodeid, libc::O_RDONLY).unwrap();
        open.push((p.clone(), size, fa, fb));
    }
    let n = open.len();
    let strategy = (0..n, any::<u64>(), 0usize..(3 << 20), any::<bool>());
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    let cells = std::cell::RefCell::new((&mut k, &mut stock));
    runner
        .run(&strategy, |(i, raw_off, len, near_end)| {
            let (path, size, fa, fb) = &open[i];
            // Half the cases near the end of the file, where clipping happens.
            let off = if near_end {
                size.saturating_sub(raw_off % (4 << 20))
            } else {
                raw_off % (size + (2 << 20))
            };
            let mut c = cells.borrow_mut();
            let (k, stock) = &mut *c;
            let want = fx.dev.expected(path, off, len as u64);
            let a = k
                .read_fmap(fa, off, len)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let b = stock
                .read_file(fb, off, len)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(a.len(), want.len(), "{:?} {}+{}", path, off, len);
            prop_assert!(
                a == want,
                "{:?} {}+{}: fault path bytes differ",
                path,
                off,
                len
            );
            prop_assert!(b == want, "{:?} {}+{}: READ bytes differ", path, off, len);
            Ok(())
        })
        .unwrap();
    let (k, _) = cells.into_inner();
    assert_eq!(k.sent(Opcode::READ), 0);
}

#[test]
fn get_daxdev_reply_is_280_bytes_naming_the_device() {
    let fx = fixture();
    let mut k = emu(&fx.dev, fx.dev.master_uuid(), true);
    let unique = k.send(0, Operation::GetDaxdev { index: 0 }).unwrap();
    let r = k.wait_reply(Opcode::GET_DAXDEV, unique).unwrap();
    assert_eq!(r.bytes().len(), 16 + 280, "exact fixed-size reply");
    let out = k.get_daxdev(0).unwrap();
    assert!(out.name_is_terminated());
    let name = Path::new(std::ffi::OsStr::from_bytes(out.name_bytes()));
    assert_eq!(name, std::fs::canonicalize(fx.dev.path()).unwrap());
    assert_eq!(
        (out.reserved, out.reserved2, out.reserved3, out.reserved4),
        (0, 0, 0, 0)
    );
    // Only device 0 exists.
    assert!(k.get_daxdev(1).unwrap_err().errno().is_some());
    assert!(k.get_daxdev(23).is_err());
}

#[test]
fn get_fmap_of_a_directory_or_unknown_node_is_an_error_and_fails_nothing_else() {
    let fx = fixture();
    let mut k = emu(&fx.dev, fx.dev.master_uuid(), true);
    let d = k.lookup_path("simple").unwrap();
    assert_eq!(
        errno_of(k.fetch_fmap(d.nodeid, AbiGeneration::V1, None)),
        Errno::ENOENT
    );
    assert!(k.fetch_fmap(987_654, AbiGeneration::V1, None).is_err());
    // Opening a directory never asks for a map.
    let before = k.sent(Opcode::GET_FMAP);
    assert!(
        k.open(d.nodeid, libc::O_RDONLY).is_err(),
        "OPEN of a directory"
    );
    assert_eq!(k.sent(Opcode::GET_FMAP), before);
    assert!(k.read_via_fuse("top", 0, 10).is_ok());
}

#[test]
fn a_forgotten_inode_loses_its_map_and_the_next_open_asks_again() {
    if !prereq::cap_sys_rawio("a_forgotten_inode_loses_its_map...") {
        return;
    }
    let fx = fixture();
    let mut k = emu(&fx.dev, fx.dev.master_uuid(), true);
    let e = k.lookup_path("striped/odd").unwrap();
    let f = k.open(e.nodeid, libc::O_RDONLY).unwrap();
    k.close(&f).unwrap();
    let f = k.open(e.nodeid, libc::O_RDONLY).unwrap();
    k.close(&f).unwrap();
    assert_eq!(k.sent(Opcode::GET_FMAP), 1, "cached while the inode lives");
    assert!(k.forget_all().unwrap() >= 2);
    assert!(k.cached_fmap(e.nodeid).is_none());
    let got = k.read_via_fmap("striped/odd", 5, 100).unwrap();
    assert_eq!(got, fx.dev.expected("striped/odd", 5, 100));
    assert_eq!(k.sent(Opcode::GET_FMAP), 2);
    assert_eq!(
        k.sent(Opcode::GET_DAXDEV),
        1,
        "the device table is per connection"
    );
}

// ------------------------------------------------------------------------------------------
// The Dev ABI generation

#[test]
fn dev_generation_gets_simple_extent_maps_that_resolve_to_the_same_bytes() {
    if !prereq::cap_sys_rawio("dev_generation_gets_simple_extent_maps...") {
        return;
    }
    let fx = fixture();
    let mut k = KernelEmu::start_with(EmuOptions {
        generation: AbiGeneration::Dev,
        ..EmuOptions::new(fx.dev.path(), fx.dev.master_uuid(), true)
    })
    .unwrap();
    assert!(k.famfs_enabled());
    let mut failures = Vec::new();
    for p in &fx.paths {
        let tf = fx.dev.file(p).unwrap();
        let e = k.lookup_path(p).unwrap();
        // The 8-byte size form, validated with the Dev rules (simple extents only).
        let msg = match k.fetch_fmap(e.nodeid, AbiGeneration::Dev, None) {
            Ok(m) => m,
            Err(err) => {
                failures.push(format!("{p:?}: {err}"));
                continue;
            }
        };
        let fmap = &msg.fmap;
        assert!(matches!(fmap.kind, FmapKind::Simple(_)), "{p:?}: {fmap:?}");
        assert_eq!(fmap.file_size, tf.size);
        // And through open + the resolver.
        let f = k.open(e.nodeid, libc::O_RDONLY).unwrap();
        let got = k.read_fmap(&f, 0, tf.size as usize).unwrap();
        assert!(
            got == fx.dev.expected(p, 0, tf.size),
            "{p:?}: Dev map bytes differ"
        );
        k.close(&f).unwrap();
        // A buffer too small for the map: the server answers with the header alone carrying
        // fmap_size, and the kernel retries once with that size.
        let before = k.sent(Opcode::GET_FMAP);
        let small = k
            .fetch_fmap(e.nodeid, AbiGeneration::Dev, Some(40))
            .unwrap();
        assert_eq!(small, msg, "{p:?}: retried map differs");
        assert_eq!(k.sent(Opcode::GET_FMAP), before + 2, "{p:?}: one retry");
    }
    assert!(
        failures.is_empty(),
        "Dev GET_FMAP refused:\n{}",
        failures.join("\n")
    );
}

// ------------------------------------------------------------------------------------------
// One reply per request, ENOSYS, EINVAL

fn raw(unique: u64, nodeid: u64, opcode: u32, payload: &[u8]) -> Vec<u8> {
    let mut h = abi::InHeader::new(unique, nodeid);
    h.opcode = opcode;
    h.len = (40 + payload.len()) as u32;
    let mut v = h.as_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

fn name_arg(prefix: &[u8], name: &str) -> Vec<u8> {
    let mut v = prefix.to_vec();
    v.extend_from_slice(name.as_bytes());
    v.push(0);
    v
}

#[test]
fn exactly_one_reply_per_request_and_none_for_forget_and_interrupt() {
    let fx = fixture();
    let mut k = emu(&fx.dev, fx.dev.master_uuid(), true);
    let file = k.lookup_path("simple/odd").unwrap().nodeid;
    let fh = k.open(file, libc::O_RDONLY).unwrap().fh;
    let dir = k.lookup_path("simple").unwrap().nodeid;
    let silence = Duration::from_millis(40);
    let read = ReadIn {
        fh,
        size: 4096,
        ..Default::default()
    };
    let mut cases: Vec<(&str, u64, Operation<'static>)> = vec![
        ("GETATTR", file, Operation::Getattr(Default::default())),
        ("LOOKUP", dir, Operation::Lookup { name: b"odd" }),
        ("LOOKUP missing", dir, Operation::Lookup { name: b"nope" }),
        ("OPEN", file, Operation::Open(OpenIn::default())),
        ("READ", file, Operation::Read(read)),
        ("READDIR", dir, Operation::Readdir(read)),
        ("READDIRPLUS", dir, Operation::Readdirplus(read)),
        ("STATFS", ROOT, Operation::Statfs),
        ("ACCESS", file, Operation::Access(Default::default())),
        ("FLUSH", file, Operation::Flush(Default::default())),
        ("FSYNC", file, Operation::Fsync(Default::default())),
        ("GET_FMAP", file, Operation::GetFmap { size: None }),
        (
            "GET_FMAP dev",
            file,
            Operation::GetFmap { size: Some(4096) },
        ),
        ("GET_FMAP dir", dir, Operation::GetFmap { size: None }),
        ("GET_DAXDEV", 0, Operation::GetDaxdev { index: 0 }),
        ("GET_DAXDEV 5", 0, Operation::GetDaxdev { index: 5 }),
        (
            "LISTXATTR",
            ROOT,
            Operation::Listxattr(GetxattrIn::default()),
        ),
        ("SETLK", file, Operation::Setlk(Default::default())),
        ("LSEEK", file, Operation::Lseek(Default::default())),
        ("RELEASE", file, Operation::Release(Default::default())),
    ];
    cases.push((
        "GETXATTR",
        ROOT,
        Operation::Getxattr {
            arg: GetxattrIn::default(),
            name: b"user.famfs.role",
        },
    ));
    for (what, nodeid, op) in cases {
        let opcode = op.opcode();
        let unique = k.send(nodeid, op).unwrap();
        k.wait_reply(opcode, unique)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        k.expect_silence(silence)
            .unwrap_or_else(|e| panic!("{what}: second reply: {e}"));
    }
    // No reply at all.
    let forget_list = [ForgetOne {
        nodeid: file,
        nlookup: 1,
    }];
    let none: Vec<(&str, u64, Operation<'_>)> = vec![
        ("FORGET", file, Operation::Forget(ForgetIn { nlookup: 1 })),
        (
            "BATCH_FORGET",
            0,
            Operation::BatchForget(ForgetList::from_bytes(forget_list.as_bytes()).unwrap()),
        ),
        (
            "INTERRUPT",
            0,
            Operation::Interrupt(InterruptIn { unique: 12_345_678 }),
        ),
    ];
    for (what, nodeid, op) in none {
        k.send(nodeid, op).unwrap();
        k.expect_silence(Duration::from_millis(200))
            .unwrap_or_else(|e| panic!("{what} was answered: {e}"));
    }
    // An INTERRUPT as the kernel sends it (unique | 1) for a request already answered.
    let u = k.send(ROOT, Operation::Statfs).unwrap();
    k.wait_reply(Opcode::STATFS, u).unwrap();
    k.interrupt(u).unwrap();
    k.expect_silence(Duration::from_millis(200))
        .expect("INTERRUPT was answered");
    // Malformed versions of them are not answered either.
    let u = k.next_unique();
    k.send_raw(&raw(u, file, 2, &[1, 2, 3])).unwrap();
    let u = k.next_unique();
    k.send_raw(&raw(u, 0, 42, &[5, 0, 0, 0, 0, 0, 0, 0]))
        .unwrap();
    let u = k.next_unique();
    k.send_raw(&raw(u, 0, 36, &[])).unwrap();
    k.expect_silence(Duration::from_millis(200))
        .expect("malformed FORGET/BATCH_FORGET/INTERRUPT answered");
    // The session is fine.
    k.getattr(file).unwrap();
}

#[test]
fn notify_reply_is_not_answered() {
    let fx = fixture();
    let mut k = emu(&fx.dev, fx.dev.master_uuid(), false);
    let u = k.next_unique();
    // FUSE_NOTIFY_REPLY (41): the kernel's answer to a retrieve; the server must not reply.
    k.send_raw(&raw(u, 1, 41, &[0u8; 48])).unwrap();
    k.expect_silence(Duration::from_millis(200))
        .expect("NOTIFY_REPLY was answered");
    k.getattr(ROOT).unwrap();
}

#[test]
fn unknown_opcodes_get_enosys() {
    let fx = fixture();
    let mut k = emu(&fx.dev, fx.dev.master_uuid(), true);
    for op in [7u32, 19, 53, 56, 99, 1000, 4095, 9999, u32::MAX] {
        let u = k.next_unique();
        let r = k.call_raw(&raw(u, ROOT, op, &[1, 2, 3, 4])).unwrap();
        assert_eq!(r.errno(), Some(Errno::ENOSYS), "opcode {op}");
        assert_eq!(r.bytes().len(), 16, "error replies carry no payload");
    }
    k.getattr(ROOT).unwrap();
}

#[test]
fn malformed_requests_get_einval_and_the_session_survives() {
    let fx = fixture();
    let mut k = emu(&fx.dev, fx.dev.master_uuid(), true);
    let file = k.lookup_path("top").unwrap().nodeid;
    let fh = k.open(file, libc::O_RDONLY).unwrap().fh;
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut u = 1_000_000u64;
    let mut next = || {
        u += 2;
        u
    };
    cases.push(("LOOKUP without NUL", raw(next(), ROOT, 1, b"top")));
    cases.push(("LOOKUP with two names", raw(next(), ROOT, 1, b"a\0b\0")));
    cases.push(("GETATTR short", raw(next(), file, 3, &[0; 8])));
    cases.push(("OPEN long", raw(next(), file, 14, &[0; 12])));
    cases.push(("READ short", raw(next(), file, 15, &[0; 24])));
    cases.push(("GET_FMAP 4-byte argument", raw(next(), file, 54, &[0; 4])));
    cases.push(("GET_FMAP 16-byte argument", raw(next(), file, 54, &[0; 16])));
    cases.push(("GET_DAXDEV with argument", raw(next(), 0, 55, &[0; 4])));
    cases.push(("STATFS with argument", raw(next(), ROOT, 17, &[0; 8])));
    cases.push(("INIT too short", raw(next(), 0, 26, &[7, 0, 0, 0])));
    let mut w = WriteIn {
        fh,
        size: 100,
        ..Default::default()
    }
    .as_bytes()
    .to_vec();
    w.extend_from_slice(&[0; 10]);
    cases.push(("WRITE size disagrees", raw(next(), file, 16, &w)));
    let mut lie = raw(next(), ROOT, 17, &[]);
    lie[0] = 100; // header says 100 bytes, 40 sent
    cases.push(("length mismatch", lie));
    let mut ext = raw(next(), ROOT, 3, &[0; 16]);
    ext[36] = 9; // 72 bytes of extensions in a 16-byte body
    cases.push(("extensions past the body", ext));
    let mut create = CreateIn::default().as_bytes().to_vec();
    create.extend_from_slice(b"noterm");
    cases.push(("CREATE name without NUL", raw(next(), ROOT, 35, &create)));
    for (what, bytes) in &cases {
        let r = k.call_raw(bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(r.errno(), Some(Errno::EINVAL), "{what}");
        k.expect_silence(Duration::from_millis(20))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        k.getattr(file)
            .unwrap_or_else(|e| panic!("session broken after {what}: {e}"));
    }
    // Shorter than a header: nothing to answer, but the session goes on.
    k.send_raw(&[1, 2, 3, 4, 5]).unwrap();
    k.expect_silence(Duration::from_millis(100)).unwrap();
    assert_eq!(
        k.read_via_fuse("top", 0, 4096).unwrap(),
        fx.dev.expected("top", 0, 4096)
    );
}

// ------------------------------------------------------------------------------------------
// Namespace changes and writes

fn namespace_requests(parent: u64, file: u64) -> Vec<(&'static str, u64, u32, Vec<u8>)> {
    let mode_umask = |mode: u32| {
        let mut v = mode.to_ne_bytes().to_vec();
        v.extend_from_slice(&0u32.to_ne_bytes());
        v
    };
    let mut mknod = libc::S_IFREG.to_ne_bytes().to_vec();
    mknod.extend_from_slice(&[0; 12]);
    let rename = {
        let mut v = parent.to_ne_bytes().to_vec();
        v.extend_from_slice(b"odd\0moved\0");
        v
    };
    let rename2 = {
        let mut v = parent.to_ne_bytes().to_vec();
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(b"odd\0moved\0");
        v
    };
    let link = {
        let mut v = file.to_ne_bytes().to_vec();
        v.extend_from_slice(b"hard\0");
        v
    };
    let setxattr = {
        let mut v = vec![0u8; 16];
        v[..4].copy_from_slice(&3u32.to_ne_bytes());
        v.extend_from_slice(b"user.x\0abc");
        v
    };
    let fallocate = {
        let mut v = vec![0u8; 32];
        v[16..24].copy_from_slice(&(1u64 << 30).to_ne_bytes());
        v
    };
    let mut create = CreateIn {
        flags: (libc::O_CREAT | libc::O_WRONLY) as u32,
        mode: libc::S_IFREG | 0o644,
        ..Default::default()
    }
    .as_bytes()
    .to_vec();
    create.extend_from_slice(b"newfile\0");
    vec![
        ("MKDIR", parent, 9, name_arg(&mode_umask(0o755), "newdir")),
        ("MKNOD", parent, 8, name_arg(&mknod, "node")),
        ("SYMLINK", parent, 6, b"link\0target\0".to_vec()),
        ("UNLINK", parent, 10, b"odd\0".to_vec()),
        ("RMDIR", ROOT, 11, b"simple\0".to_vec()),
        ("RENAME", parent, 12, rename),
        ("RENAME2", parent, 45, rename2),
        ("LINK", parent, 13, link),
        ("CREATE", parent, 35, create),
        ("SETXATTR", file, 21, setxattr),
        ("REMOVEXATTR", ROOT, 24, b"user.famfs.role\0".to_vec()),
        ("FALLOCATE", file, 43, fallocate),
    ]
}

#[test]
fn namespace_changes_are_refused_eperm_on_the_master_erofs_on_clients() {
    let fx = fixture();
    for (uuid, want) in [
        (fx.dev.master_uuid(), Errno::EPERM),
        (Uuid::new_v4(), Errno::EROFS),
    ] {
        let mut k = emu(&fx.dev, uuid, true);
        let parent = k.lookup_path("simple").unwrap().nodeid;
        let file = k.lookup_path("simple/odd").unwrap().nodeid;
        let before_root = k.readdir(ROOT).unwrap();
        let before = k.readdir(parent).unwrap();
        for (what, nodeid, opcode, payload) in namespace_requests(parent, file) {
            let u = k.next_unique();
            let r = k
                .call_raw(&raw(u, nodeid, opcode, &payload))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(r.errno(), Some(want), "{what} as {want:?}-host");
        }
        // Attribute changes that would need a log entry.
        for (what, valid, size, mode) in [
            ("chmod", abi::FATTR_MODE, 0, 0o600),
            ("chown", abi::FATTR_UID, 0, 0),
            ("truncate smaller", abi::FATTR_SIZE, MIB, 0),
            ("truncate larger", abi::FATTR_SIZE, 100 * MIB, 0),
        ] {
            let s = SetattrIn {
                valid,
                size,
                mode,
                ..Default::default()
            };
            assert_eq!(errno_of(k.setattr(file, s)), want, "{what}");
        }
        assert_eq!(k.readdir(ROOT).unwrap(), before_root, "root changed");
        assert_eq!(k.readdir(parent).unwrap(), before, "directory changed");
        assert_eq!(k.getattr(file).unwrap().size, 3 * MIB + 77);
    }
}

#[test]
fn client_writes_are_refused_erofs() {
    let fx = fixture();
    let mut k = emu(&fx.dev, Uuid::new_v4(), false);
    let file = k.lookup_path("simple/odd").unwrap().nodeid;
    for flags in [libc::O_WRONLY, libc::O_RDWR, libc::O_WRONLY | libc::O_TRUNC] {
        assert_eq!(
            errno_of(k.open(file, flags)),
            Errno::EROFS,
            "flags {flags:#o}"
        );
    }
    assert_eq!(errno_of(k.access(file, libc::W_OK)), Errno::EROFS);
    k.access(file, libc::R_OK).unwrap();
    let log = k.lookup_path(".meta/.log").unwrap().nodeid;
    assert_eq!(errno_of(k.open(log, libc::O_RDWR)), Errno::EROFS);
    // A WRITE on a read-only handle (a kernel would not send it; the server must still refuse).
    let f = k.open(file, libc::O_RDONLY).unwrap();
    assert_eq!(errno_of(k.write(&f, 0, b"overwrite")), Errno::EROFS);
    let lf = k.open(log, libc::O_RDONLY).unwrap();
    assert_eq!(errno_of(k.write(&lf, 0, &[0; 48])), Errno::EROFS);
    assert_eq!(
        k.read_file(&f, 0, 4096).unwrap(),
        fx.dev.expected("simple/odd", 0, 4096),
        "data unchanged"
    );
}

#[test]
fn master_writes_in_place_and_never_grows_a_file() {
    let mut dev = StandIn::create(8 << 30).unwrap();
    let size = 3 * MIB + 77;
    let tf = dev.add_file("w", size, AllocPolicy::Contiguous).unwrap();
    dev.add_file("ws", 7 * MIB + 3, INTERLEAVE_3X2M).unwrap();
    let famfs = prereq::has_cap_sys_rawio();
    let mut k = emu(&dev, dev.master_uuid(), famfs);
    let mut stock = emu(&dev, dev.master_uuid(), false);
    let e = k.lookup_path("w").unwrap();
    let f = stock.open_path("w", libc::O_RDWR).unwrap();
    // In place.
    assert_eq!(stock.write(&f, MIB + 1, b"HELLO").unwrap(), 5);
    let back = stock.read_file(&f, MIB, 16).unwrap();
    assert_eq!(&back[1..6], b"HELLO");
    if famfs {
        let kf = k.open(e.nodeid, libc::O_RDONLY).unwrap();
        assert_eq!(
            &k.read_fmap(&kf, MIB + 1, 5).unwrap(),
            b"HELLO",
            "fault path sees it"
        );
    }
    // The allocation is 4 MiB; the bytes after EOF inside it must stay untouched.
    let ext_off = match dev
        .with_writer(|w, _| {
            w.famfs()
                .state()
                .namespace()
                .get(tf.ino)
                .and_then(|n| n.as_file())
                .map(|f| f.fmap.ranges().next().copied())
        })
        .unwrap()
    {
        Some(Some(x)) => x.offset,
        other => panic!("no extent: {other:?}"),
    };
    let tail_before = dev.read_device(ext_off + size, 4096).unwrap();
    // At EOF and past it: EFBIG, nothing written.
    assert_eq!(errno_of(stock.write(&f, size, b"x")), Errno::EFBIG);
    assert_eq!(
        errno_of(stock.write(&f, size + 10 * MIB, b"x")),
        Errno::EFBIG
    );
    // Straddling EOF: only the bytes inside the file.
    assert_eq!(stock.write(&f, size - 3, b"ABCDEFG").unwrap(), 3);
    assert_eq!(stock.read_file(&f, size - 3, 100).unwrap(), b"ABC");
    assert_eq!(
        dev.read_device(ext_off + size, 4096).unwrap(),
        tail_before,
        "EOF tail written"
    );
    assert_eq!(stock.getattr(e.nodeid).unwrap().size, size);
    // An empty write at EOF is fine and changes nothing.
    assert_eq!(stock.write(&f, size, b"").unwrap(), 0);
    // Truncate to the same size is accepted; other sizes are not.
    let same = SetattrIn {
        valid: abi::FATTR_SIZE,
        size,
        ..Default::default()
    };
    assert_eq!(stock.setattr(e.nodeid, same).unwrap().size, size);
    // Striped file: a write over several chunks lands where the map says.
    let fs_ = stock.open_path("ws", libc::O_RDWR).unwrap();
    let data: Vec<u8> = (0..(5 * MIB) as usize).map(|i| (i % 253) as u8).collect();
    let mut off = MIB - 7;
    for chunk in data.chunks(stock.max_write()) {
        assert_eq!(stock.write(&fs_, off, chunk).unwrap() as usize, chunk.len());
        off += chunk.len() as u64;
    }
    let back = stock.read_file(&fs_, MIB - 7, data.len()).unwrap();
    assert!(back == data, "striped write/readback differs");
    if famfs {
        let kf = k.open_path("ws", libc::O_RDONLY).unwrap();
        assert!(
            k.read_fmap(&kf, MIB - 7, data.len()).unwrap() == data,
            "fault path differs"
        );
    }
    // The superblock is never writable, even on the master.
    let sb = stock.lookup_path(".meta/.superblock").unwrap().nodeid;
    assert_eq!(errno_of(stock.open(sb, libc::O_RDWR)), Errno::EPERM);
    let sbf = stock.open(sb, libc::O_RDONLY).unwrap();
    assert_eq!(errno_of(stock.write(&sbf, 0, b"x")), Errno::EPERM);
}

// ------------------------------------------------------------------------------------------
// Directories, xattrs, statfs, DESTROY

#[test]
fn readdir_and_readdirplus_list_the_tree() {
    let fx = fixture();
    let mut k = emu(&fx.dev, fx.dev.master_uuid(), true);
    let names = |v: &[famfs_tests::kernel_emu::DirEntry]| {
        let mut n: Vec<String> = v.iter().map(|e| e.name_lossy()).collect();
        n.sort();
        n
    };
    let root = k.readdir(ROOT).unwrap();
    assert_eq!(
        names(&root),
        [".", "..", ".meta", "deep", "simple", "striped", "top"]
    );
    let plus = k.readdirplus(ROOT).unwrap();
    assert_eq!(names(&plus), names(&root));
    for e in &plus {
        let entry = e.entry.expect("READDIRPLUS carries entries");
        if e.name != b"." && e.name != b".." {
            assert_eq!(entry.nodeid, e.ino, "{}", e.name_lossy());
            let st = k.getattr(e.ino).unwrap();
            assert_eq!(st, entry.attr, "{}", e.name_lossy());
        }
    }
    let striped = k.lookup_path("striped").unwrap().nodeid;
    let s = k.readdir(striped).unwrap();
    assert_eq!(
        names(&s),
        [
            ".",
            "..",
            "4x4m_odd",
            "exact",
            "odd",
            "one_stripe_plus",
            "sub_chunk"
        ]
    );
    for e in s.iter().filter(|e| e.name[0] != b'.') {
        assert_eq!(e.typ, abi::DT_REG);
    }
    let meta = k.lookup_path(".meta").unwrap().nodeid;
    assert_eq!(
        names(&k.readdir(meta).unwrap()),
        [".", "..", ".log", ".superblock"]
    );
    assert_eq!(errno_of(k.lookup_path("striped/missing")), Errno::ENOENT);
    assert_eq!(errno_of(k.lookup_path("top/below")), Errno::ENOTDIR);
}

#[test]
fn root_xattrs_and_statfs() {
    let fx = fixture();
    let mut k = emu(&fx.dev, fx.dev.master_uuid(), true);
    assert_eq!(k.getxattr(ROOT, "user.famfs.role").unwrap(), b"master");
    assert_eq!(
        k.getxattr(ROOT, "user.famfs.pid").unwrap(),
        std::process::id().to_string().as_bytes()
    );
    let dev = std::fs::canonicalize(fx.dev.path()).unwrap();
    assert_eq!(
        k.getxattr(ROOT, "user.famfs.device").unwrap(),
        dev.as_os_str().as_encoded_bytes()
    );
    assert_eq!(errno_of(k.getxattr(ROOT, "user.other")), Errno::ENODATA);
    let mut c = emu(&fx.dev, Uuid::new_v4(), true);
    assert_eq!(c.getxattr(ROOT, "user.famfs.role").unwrap(), b"client");
    let st = k.statfs().unwrap();
    assert_eq!(st.bsize, 2 << 20);
    assert_eq!(st.blocks, fx.dev.size() / (2 << 20));
    assert!(st.bfree < st.blocks);
}

#[test]
fn destroy_is_answered_and_ends_the_session() {
    let fx = fixture();
    let mut k = emu(&fx.dev, fx.dev.master_uuid(), true);
    k.getattr(ROOT).unwrap();
    assert!(k.session_alive());
    k.destroy().unwrap();
}

#[test]
fn init_with_a_wrong_major_is_refused_without_famfs() {
    let fx = fixture();
    let mut k = emu(&fx.dev, fx.dev.master_uuid(), false);
    let mut bad = InitIn::offer(45, 4096, abi::FUSE_DAX_FMAP);
    bad.major = 8;
    let r = k.call(0, Operation::Init(bad)).unwrap();
    assert_eq!(r.errno(), Some(Errno::EPROTO));
}

/// INIT is negotiated once, before the workers start: a later INIT (which a kernel never sends)
/// is refused and cannot turn the famfs path off under files the kernel already maps.
#[test]
fn a_second_init_is_refused_and_changes_nothing() {
    if !prereq::cap_sys_rawio("a_second_init_is_refused_and_changes_nothing") {
        return;
    }
    let fx = fixture();
    let mut k = emu(&fx.dev, fx.dev.master_uuid(), true);
    assert!(k.server().unwrap().famfs_enabled());
    let before = k.server().unwrap().connection().clone();
    // Offer no famfs this time.
    let stock = InitIn::offer(45, 128 * 1024, KERNEL_OFFER);
    let r = k.call(0, Operation::Init(stock)).unwrap();
    assert_eq!(r.errno(), Some(Errno::EIO));
    assert_eq!(r.bytes().len(), 16, "error replies carry no payload");
    assert_eq!(k.server().unwrap().connection(), &before);
    // Files still open for the famfs path (no direct_io) and resolve through their maps.
    let f = k.open_path("simple/odd", libc::O_RDONLY).unwrap();
    assert_eq!(f.open_flags & abi::FOPEN_DIRECT_IO, 0, "{f:?}");
    k.close(&f).unwrap();
    assert_eq!(
        k.read_via_fmap("simple/odd", MIB, 4096).unwrap(),
        fx.dev.expected("simple/odd", MIB, 4096)
    );
}

// ------------------------------------------------------------------------------------------
// Concurrency and new files

#[test]
fn pipelined_requests_each_get_their_own_reply() {
    let fx = fixture();
    let mut opts = EmuOptions::new(fx.dev.path(), fx.dev.master_uuid(), true);
    opts.config.threads = 4;
    let mut k = KernelEmu::start_with(opts).unwrap();
    let files: Vec<(u64, u64, u64)> = fx
        .paths
        .iter()
        .map(|p| {
            let e = k.lookup_path(p).unwrap();
            let fh = k.open(e.nodeid, libc::O_RDONLY).unwrap().fh;
            (e.nodeid, fh, e.attr.size)
        })
        .collect();
    // Up to 300 requests in flight at once, answered by 4 workers in any order.
    let mut pending = std::collections::HashMap::new();
    for i in 0..300usize {
        let (nodeid, fh, size) = files[i % files.len()];
        let off = (i as u64 * 7919 * 4096) % size.max(1);
        let (op, what) = match i % 4 {
            0 => (
                Operation::Read(ReadIn {
                    fh,
                    offset: off,
                    size: 64 << 10,
                    ..Default::default()
                }),
                "read",
            ),
            1 => (Operation::Getattr(Default::default()), "getattr"),
            2 => (Operation::GetFmap { size: None }, "fmap"),
            _ => (Operation::Statfs, "statfs"),
        };
        let unique = k.send(nodeid, op).unwrap();
        pending.insert(unique, (what, nodeid, off, size, i % files.len()));
    }
    while !pending.is_empty() {
        let bytes = k
            .recv_any(Duration::from_secs(10))
            .unwrap()
            .unwrap_or_else(|| panic!("{} replies missing", pending.len()));
        let r = fuse_famfs_proto::reply::ReplyRef::parse(&bytes).unwrap();
        let (what, nodeid, off, size, fi) = pending
            .remove(&r.header.unique)
            .unwrap_or_else(|| panic!("reply for unknown or answered unique {}", r.header.unique));
        match what {
            "read" => {
                let data = r.data(64 << 10).unwrap();
                let want = fx.dev.expected(&fx.paths[fi], off, 64 << 10);
                assert!(data == want.as_slice(), "READ {nodeid}@{off}: wrong bytes");
            }
            "getattr" => assert_eq!(r.attr().unwrap().attr.size, size),
            "fmap" => {
                let m = FmapMessage::parse(r.payload, AbiGeneration::V1).unwrap();
                assert_eq!(m.fmap.file_size, size);
            }
            _ => {
                r.statfs().unwrap();
            }
        }
    }
    k.expect_silence(Duration::from_millis(100)).unwrap();
}

#[test]
fn a_lookup_miss_rereads_the_log_so_new_files_appear_at_once() {
    let mut dev = StandIn::create(4 << 30).unwrap();
    let mut opts = EmuOptions::new(dev.path(), Uuid::new_v4(), false);
    opts.watch = false; // no watcher: only the lookup-miss refresh can find the file
    let mut k = KernelEmu::start_with(opts).unwrap();
    assert_eq!(errno_of(k.lookup_path("later")), Errno::ENOENT);
    let f = dev.add_file("later", MIB + 3, INTERLEAVE_3X2M).unwrap();
    let e = k.lookup_path("later").unwrap();
    assert_eq!(e.attr.size, f.size);
    assert_eq!(e.attr.mode & 0o777, 0o444, "client files are read-only");
    let got = k.read_via_fuse("later", 0, f.size as usize).unwrap();
    assert!(got == dev.expected("later", 0, f.size));
}
