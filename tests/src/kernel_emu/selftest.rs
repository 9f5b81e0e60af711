//! The emulator against a scripted fake server: every way a reply can break the kernel's rules
//! must give a typed error with the kernel's errno (never a panic), and a well-formed map must be
//! resolved against the device independently of famfs-server.

use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fuse_famfs_proto::abi::{
    self, Attr, AttrOut, DaxdevOut, EntryOut, FmapHeader, Opcode, OutHeader, SimpleExt,
};
use fuse_famfs_proto::fmap::{Extent, FileType, FmapWire};
use fuse_famfs_proto::reply::{self, InitConfig};
use fuse_famfs_proto::{AbiGeneration, Errno, Fmap, Operation, Request};
use zerocopy::IntoBytes;

use super::{EmuError, EmuOptions, KernelEmu};

const MIB: u64 = 1 << 20;
const FILE: u64 = 5;
const DEV_SIZE: u64 = 16 * MIB;

/// Replies to one request, given its unique.
type Replies = fn(u64) -> Vec<Vec<u8>>;

/// What the scripted server answers GET_FMAP / GET_DAXDEV with, and other quirks.
#[derive(Clone)]
struct Script {
    fmap: Vec<u8>,
    daxdev: Vec<u8>,
    file_size: u64,
    /// Override the whole reply to this opcode (raw bytes after the header is built by us).
    raw: Option<(Opcode, Replies)>,
    /// Accept every flag, offered or not.
    greedy_init: bool,
    /// Close the server's end when this request arrives.
    close_on: Option<Opcode>,
}

fn ok(unique: u64, payload: &[u8]) -> Vec<u8> {
    let mut v = OutHeader::success(unique, payload.len())
        .as_bytes()
        .to_vec();
    v.extend_from_slice(payload);
    v
}

fn attr(size: u64) -> Attr {
    Attr {
        ino: FILE,
        size,
        mode: libc::S_IFREG | 0o644,
        nlink: 1,
        ..Default::default()
    }
}

/// The fake server's state; its thread ends when the emulator closes the channel.
struct Fake {
    _dir: tempfile::TempDir,
    script: Arc<Mutex<Script>>,
}

fn simple_fmap(size: u64, exts: &[(u64, u64)]) -> Vec<u8> {
    Fmap::simple(
        size,
        exts.iter().map(|&(o, l)| Extent::new(0, o, l)).collect(),
    )
    .to_bytes(FileType::Regular, AbiGeneration::V1)
    .expect("encodes")
}

/// A fake server on a socket pair; `adjust` edits the default script (a good 4 MiB file at
/// device offset 4 MiB).
fn fake(adjust: impl FnOnce(&mut Script)) -> (Fake, KernelEmu) {
    let (f, k) = fake_try(adjust);
    (f, k.expect("connect"))
}

fn fake_try(adjust: impl FnOnce(&mut Script)) -> (Fake, Result<KernelEmu, EmuError>) {
    let dir = tempfile::tempdir().unwrap();
    let device = dir.path().join("dev.img");
    let f = std::fs::File::create(&device).unwrap();
    f.set_len(DEV_SIZE).unwrap();
    let pattern: Vec<u8> = (0..4 * MIB).map(|i| (i % 251) as u8).collect();
    f.write_all_at(&pattern, 4 * MIB).unwrap();
    drop(f);
    let daxdev = DaxdevOut::new(0, device.as_os_str().as_encoded_bytes())
        .unwrap()
        .as_bytes()
        .to_vec();
    let mut script = Script {
        fmap: simple_fmap(4 * MIB, &[(4 * MIB, 4 * MIB)]),
        daxdev,
        file_size: 4 * MIB,
        raw: None,
        greedy_init: false,
        close_on: None,
    };
    adjust(&mut script);
    let script = Arc::new(Mutex::new(script));
    let (kernel_end, server_end) = famfs_server::mount::socket_channel().unwrap();
    super::channel::raise_buffers(&server_end);
    let s = Arc::clone(&script);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 2 << 20];
        loop {
            let n = match nix::unistd::read(&server_end, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let Ok(req) = Request::parse(&buf[..n]) else {
                continue;
            };
            let sc = s.lock().unwrap().clone();
            let u = req.header.unique;
            if sc.close_on == Some(req.op.opcode()) {
                return;
            }
            let replies: Vec<Vec<u8>> = match (&req.op, sc.raw) {
                (op, Some((code, f))) if op.opcode() == code => f(u),
                (Operation::Init(i), _) => {
                    let mut cfg = InitConfig {
                        flags: abi::FUSE_DAX_FMAP | abi::FUSE_MAX_PAGES,
                        ..Default::default()
                    };
                    if sc.greedy_init {
                        cfg.flags = u64::MAX;
                    }
                    let mut neg = reply::negotiate(i, &cfg).unwrap();
                    if sc.greedy_init {
                        neg.reply.set_flags64(u64::MAX >> 1);
                    }
                    let mut out = vec![0u8; 128];
                    let n = neg.write_reply(&mut out, u).unwrap();
                    vec![out[..n].to_vec()]
                }
                (Operation::Lookup { .. }, _) => vec![ok(
                    u,
                    EntryOut::new(FILE, 1, attr(sc.file_size), Duration::from_secs(1)).as_bytes(),
                )],
                (Operation::Getattr(_), _) => vec![ok(
                    u,
                    AttrOut::new(attr(sc.file_size), Duration::from_secs(1)).as_bytes(),
                )],
                (Operation::Open(_), _) => {
                    vec![ok(u, abi::OpenOut::default().as_bytes())]
                }
                (Operation::Release(_) | Operation::Flush(_), _) => vec![ok(u, &[])],
                (Operation::GetFmap { .. }, _) => vec![ok(u, &sc.fmap)],
                (Operation::GetDaxdev { .. }, _) => vec![ok(u, &sc.daxdev)],
                (Operation::Statfs, _) => vec![],
                _ => {
                    let mut out = [0u8; 16];
                    reply::error(&mut out, u, Errno::ENOSYS).unwrap();
                    vec![out.to_vec()]
                }
            };
            for r in replies {
                let _ = nix::unistd::write(&server_end, &r);
            }
        }
    });
    let opts = EmuOptions {
        timeout: Duration::from_millis(500),
        ..EmuOptions::new(&device, uuid::Uuid::nil(), true)
    };
    let k = KernelEmu::connect(kernel_end, &device, &opts);
    (Fake { _dir: dir, script }, k)
}

fn open_err(k: &mut KernelEmu) -> EmuError {
    k.lookup(super::ROOT, b"f").unwrap();
    k.open(FILE, libc::O_RDONLY).unwrap_err()
}

#[test]
fn a_good_map_resolves_against_the_device() {
    let (fk, mut k) = fake(|_| {});
    assert!(k.famfs_enabled());
    k.lookup(super::ROOT, b"f").unwrap();
    let f = k.open(FILE, libc::O_RDONLY).unwrap();
    let got = k.read_fmap(&f, MIB - 3, 10).unwrap();
    let want: Vec<u8> = (MIB - 3..MIB + 7).map(|i| (i % 251) as u8).collect();
    assert_eq!(got, want);
    assert_eq!(
        k.read_fmap(&f, 4 * MIB - 2, 100).unwrap().len(),
        2,
        "clipped at EOF"
    );
    assert_eq!(k.sent(Opcode::READ), 0);
    drop(k);
    drop(fk);
}

#[test]
fn a_map_the_kernel_refuses_fails_the_open_after_a_release() {
    let bad: [(&str, Vec<u8>, Errno); 6] = [
        (
            "unaligned offset",
            simple_fmap(4 * MIB, &[(4 * MIB + 4096, 4 * MIB)]),
            Errno::EINVAL,
        ),
        (
            "short coverage",
            simple_fmap(4 * MIB, &[(4 * MIB, 2 * MIB)]),
            Errno::EINVAL,
        ),
        (
            "33 extents",
            simple_fmap(66 * MIB, &[(0, 2 * MIB); 33]),
            Errno::E2BIG,
        ),
        ("shorter than the header", vec![0u8; 31], Errno::EINVAL),
        ("no extents", simple_fmap(0, &[]), Errno::EINVAL),
        (
            "over 4096 bytes",
            {
                let mut v = FmapHeader::new(0, 0, 1, 2 * MIB).as_bytes().to_vec();
                v.extend_from_slice(
                    SimpleExt {
                        se_devindex: 0,
                        reserved: 0,
                        se_offset: 4 * MIB,
                        se_len: 2 * MIB,
                    }
                    .as_bytes(),
                );
                v.resize(4097, 0);
                v
            },
            Errno::EIO,
        ),
    ];
    for (what, bytes, errno) in bad {
        let (fk, mut k) = fake(|s| s.fmap = bytes.clone());
        let e = open_err(&mut k);
        assert!(
            matches!(e, EmuError::Fmap { .. } | EmuError::BadReply { .. }),
            "{what}: {e}"
        );
        assert_eq!(e.errno(), Some(errno), "{what}: {e}");
        assert_eq!(k.sent(Opcode::RELEASE), 1, "{what}: handle released");
        assert!(k.cached_fmap(FILE).is_none());
        drop(k);
        drop(fk);
    }
}

#[test]
fn a_bad_daxdev_reply_never_fails_the_open_but_io_gets_eio() {
    type Edit = fn(&mut Vec<u8>);
    let cases: [(&str, Edit); 5] = [
        ("279 bytes", |d| d.truncate(279)),
        ("281 bytes", |d| d.push(0)),
        ("name without NUL", |d| d[24..].fill(b'a')),
        ("relative name", |d| {
            d[24..].fill(0);
            d[24..31].copy_from_slice(b"dev.img");
        }),
        ("another file", |d| {
            d[24..].fill(0);
            d[24..33].copy_from_slice(b"/dev/null");
        }),
    ];
    for (what, edit) in cases {
        let (fk, mut k) = fake(|s| edit(&mut s.daxdev));
        k.lookup(super::ROOT, b"f").unwrap();
        let f = k
            .open(FILE, libc::O_RDONLY)
            .unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
        assert!(matches!(k.daxdev_state(0), Some(Err(_))), "{what}");
        let e = k.read_fmap(&f, 0, 10).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EIO), "{what}: {e}");
        drop(k);
        drop(fk);
    }
}

#[test]
fn header_rule_violations_are_typed_errors() {
    type Check = fn(&EmuError) -> bool;
    let cases: [(&str, Replies, Check); 6] = [
        (
            "wrong unique",
            |u| vec![ok(u + 100, &[0; 80])],
            |e| matches!(e, EmuError::UnexpectedReply { .. }),
        ),
        (
            "error with payload",
            |u| {
                let mut v = ok(u, &[0; 8]);
                v[4..8].copy_from_slice(&(-2i32).to_ne_bytes());
                vec![v]
            },
            |e| matches!(e, EmuError::BadReply { .. }),
        ),
        (
            "error out of range",
            |u| {
                let mut v = ok(u, &[]);
                v[4..8].copy_from_slice(&(-600i32).to_ne_bytes());
                vec![v]
            },
            |e| matches!(e, EmuError::BadReply { .. }),
        ),
        (
            "length lies",
            |u| {
                let mut v = ok(u, &[0; 80]);
                v[0] = 200;
                vec![v]
            },
            |e| matches!(e, EmuError::BadReply { .. }),
        ),
        (
            "fixed reply of the wrong size",
            |u| vec![ok(u, &[0; 72])],
            |e| matches!(e, EmuError::BadReply { .. }) && e.errno() == Some(Errno::EIO),
        ),
        (
            "no reply",
            |_| vec![],
            |e| matches!(e, EmuError::Timeout { .. }),
        ),
    ];
    for (what, replies, check) in cases {
        let (fk, mut k) = fake(|s| s.raw = Some((Opcode::STATFS, replies)));
        let e = k.statfs().unwrap_err();
        assert!(check(&e), "{what}: {e:?}");
        drop(k);
        drop(fk);
    }
    // A second reply to one request is caught.
    let (fk, mut k) =
        fake(|s| s.raw = Some((Opcode::STATFS, |u| vec![ok(u, &[0; 80]), ok(u, &[0; 80])])));
    k.statfs().unwrap();
    assert!(matches!(
        k.expect_silence(Duration::from_millis(200)),
        Err(EmuError::UnexpectedReply { .. })
    ));
    drop(k);
    drop(fk);
}

#[test]
fn a_size_change_after_open_gives_enxio() {
    let (fk, mut k) = fake(|_| {});
    k.lookup(super::ROOT, b"f").unwrap();
    let f = k.open(FILE, libc::O_RDONLY).unwrap();
    fk.script.lock().unwrap().file_size = 6 * MIB;
    assert_eq!(k.getattr(FILE).unwrap().size, 6 * MIB);
    let e = k.read_fmap(&f, 0, 10).unwrap_err();
    assert!(matches!(e, EmuError::SizeMismatch { .. }), "{e}");
    assert_eq!(e.errno(), Some(Errno::ENXIO));
    drop(k);
    drop(fk);
}

#[test]
fn init_accepting_flags_not_offered_is_refused() {
    let (_fk, k) = fake_try(|s| s.greedy_init = true);
    let e = k.expect_err("connect must fail on a greedy INIT reply");
    assert!(
        matches!(
            e,
            EmuError::Protocol {
                opcode: Opcode::INIT,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn a_session_the_server_closes_is_reported() {
    let (_fk, mut k) = fake(|s| s.close_on = Some(Opcode::STATFS));
    let e = k.statfs().unwrap_err();
    assert!(matches!(e, EmuError::Closed { .. }), "{e:?}");
    assert_eq!(e.errno(), Errno::new(libc::ENOTCONN));
}
