//! The control channel's request handling on an in-memory file system: what each request does
//! to the log, the refusals, byte-identical logs against an in-process writer, hostile frames.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use famfs_fsdev::{Media, MemMedia};
use famfs_log::alloc::AllocPolicy;
use famfs_log::entry::{FileEntry, LogEntry};
use famfs_log::layout::{FM_ALL_HOSTS_RW, LOG_OFFSET};
use famfs_log::namespace::Attr;
use famfs_log::{Famfs, MkfsOptions, OffsetMedia, OpenOptions, mkfs};
use proptest::prelude::*;
use uuid::Uuid;

use super::ops::{Ctx, Session};
use super::proto::{
    Answer, ErrorKind, Request, WireAttr, WireError, WireFmap, WireNode, WirePath, WirePolicy,
    encode_request, parse_reply,
};
use super::{LogControl, answer};
use crate::refresh::SharedLog;

const LOG_LEN: u64 = 8 << 20;
const DEV_SIZE: u64 = 64 << 30;

fn master() -> Uuid {
    Uuid::from_u128(0x6a1c_4d2e_0000_4000_8000_0000_0000_be4c)
}

/// A formatted in-memory device (metadata only; the data area is never touched).
fn device() -> MemMedia {
    let dev = MemMedia::new((LOG_OFFSET + LOG_LEN) as usize);
    let mut o = MkfsOptions::new(master(), "/dev/dax0.0");
    o.min_device_size = 0;
    mkfs(&dev, DEV_SIZE, &o).unwrap();
    dev
}

fn open(dev: &MemMedia, meta_files: bool) -> Famfs<OffsetMedia<MemMedia>> {
    Famfs::open_device(
        dev.clone(),
        OpenOptions {
            system_uuid: Some(master()),
            meta_files,
            ..Default::default()
        },
    )
    .unwrap()
}

/// The daemon's view: the log shared as the model shares it (with the mount's meta files).
fn shared(dev: &MemMedia) -> SharedLog<OffsetMedia<MemMedia>> {
    SharedLog::new(open(dev, true), None, Duration::from_secs(1))
}

fn log_bytes(dev: &MemMedia) -> Vec<u8> {
    dev.snapshot()[LOG_OFFSET as usize..(LOG_OFFSET + LOG_LEN) as usize].to_vec()
}

struct Filter(std::sync::Mutex<String>);

impl LogControl for Filter {
    fn filter(&self) -> String {
        self.0.lock().unwrap().clone()
    }
    fn set_filter(&self, f: &str) -> Result<(), String> {
        if f.contains('!') {
            return Err("bad filter".into());
        }
        *self.0.lock().unwrap() = f.to_string();
        Ok(())
    }
}

/// One client of a shared log, speaking frames as a socket client would.
struct Client<'a, L: Media> {
    log: &'a SharedLog<L>,
    session: Session,
    requests: AtomicU64,
    filter: Option<&'a Filter>,
}

impl<'a, L: Media> Client<'a, L> {
    fn new(log: &'a SharedLog<L>, root: bool) -> Self {
        Client {
            log,
            session: Session::new(root),
            requests: AtomicU64::new(0),
            filter: None,
        }
    }

    fn call(&mut self, req: &Request) -> Result<Answer, WireError> {
        self.raw(&encode_request(req))
    }

    fn raw(&mut self, frame: &[u8]) -> Result<Answer, WireError> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ctx = Ctx {
            device: b"/dev/dax0.0",
            mountpoint: Some(Path::new("/mnt/famfs")),
            log_control: self.filter.map(|f| f as &dyn LogControl),
            requests: &self.requests,
        };
        parse_reply(&answer(self.log, &mut self.session, &ctx, frame)).unwrap()
    }

    fn hello(&mut self) {
        let a = self
            .call(&Request::Hello {
                host: Some(master().to_string()),
            })
            .unwrap();
        assert!(
            matches!(&a, Answer::Hello { role, dev_size, .. } if role == "master" && *dev_size == DEV_SIZE),
            "{a:?}"
        );
    }
}

fn p(s: &str) -> WirePath {
    WirePath::Text(s.into())
}

const FILE: WireAttr = WireAttr {
    mode: 0o644,
    uid: 0,
    gid: 0,
};
const DIR: WireAttr = WireAttr {
    mode: 0o755,
    uid: 0,
    gid: 0,
};

fn create(path: &str, size: u64) -> Request {
    Request::Create {
        path: p(path),
        size,
        attr: FILE,
        policy: WirePolicy::Contiguous,
        existing: false,
    }
}

fn mkdir(path: &str, parents: bool) -> Request {
    Request::Mkdir {
        path: p(path),
        attr: DIR,
        parents,
    }
}

fn err_kind(r: Result<Answer, WireError>) -> ErrorKind {
    match r {
        Err(e) => e.kind,
        Ok(a) => panic!("expected an error, got {a:?}"),
    }
}

#[test]
fn appends_need_root_and_a_hello_from_the_master() {
    let dev = device();
    let log = shared(&dev);
    let mut stranger = Client::new(&log, false);
    assert_eq!(
        err_kind(stranger.call(&Request::Status)),
        ErrorKind::Permission
    );
    let mut c = Client::new(&log, true);
    assert_eq!(err_kind(c.call(&create("a", 1))), ErrorKind::NoSession);
    let e = c
        .call(&Request::Hello {
            host: Some(Uuid::from_u128(7).to_string()),
        })
        .unwrap_err();
    assert_eq!((e.kind, e.errno), (ErrorKind::NotMaster, libc::EPERM));
    assert!(
        e.message().starts_with("not running on the master node"),
        "{e}"
    );
    assert_eq!(err_kind(c.call(&create("a", 1))), ErrorKind::NoSession);
    assert_eq!(
        err_kind(c.call(&Request::Hello {
            host: Some("not-a-uuid".into())
        })),
        ErrorKind::BadRequest
    );
    // A hello without a host reads, but cannot append.
    c.call(&Request::Hello { host: None }).unwrap();
    assert_eq!(err_kind(c.call(&create("a", 1))), ErrorKind::NoSession);
    c.hello();
    assert!(matches!(
        c.call(&create("a", 1)).unwrap(),
        Answer::Logged { index: 0, .. }
    ));
    assert_eq!(log.read().unwrap().header().next_index, 1);
}

#[test]
fn requests_do_what_the_writer_does() {
    let dev = device();
    let log = shared(&dev);
    let mut c = Client::new(&log, true);
    c.hello();
    let Answer::Dirs { created, error } = c.call(&mkdir("a/b/c", true)).unwrap() else {
        panic!()
    };
    assert_eq!(created, [p("a"), p("a/b"), p("a/b/c")]);
    assert!(error.is_none());
    let Answer::Logged { index, node } = c.call(&create("a/b/f", (2 << 20) + 1)).unwrap() else {
        panic!()
    };
    assert_eq!(index, 3);
    let file = node.unwrap().file.unwrap();
    assert_eq!(file.size, (2 << 20) + 1);
    assert_eq!(file.to_file_node().unwrap().fmap.allocated_bytes(), 4 << 20);
    // Lookups: files, directories, missing, through a file, and the root.
    let Answer::Node { node: Some(n) } = c.call(&Request::Lookup { path: p("a/b/f") }).unwrap()
    else {
        panic!()
    };
    assert_eq!(n.attr, FILE);
    let Answer::Node { node: Some(d) } = c.call(&Request::Lookup { path: p("a") }).unwrap() else {
        panic!()
    };
    assert!(d.file.is_none());
    assert_eq!(
        c.call(&Request::Lookup { path: p("nope/x") }).unwrap(),
        Answer::Node { node: None }
    );
    let e = c.call(&Request::Lookup { path: p("a/b/f/x") }).unwrap_err();
    assert_eq!((e.kind, e.errno), (ErrorKind::NotADirectory, libc::ENOTDIR));
    assert_eq!(e.message(), "a/b/f is not a directory");
    assert!(matches!(
        c.call(&Request::Lookup { path: p("") }).unwrap(),
        Answer::Node { node: Some(_) }
    ));
    // The mount's meta files are not the log's: invisible, and nothing may be made there.
    for m in [".meta", ".meta/.log"] {
        assert_eq!(
            c.call(&Request::Lookup { path: p(m) }).unwrap(),
            Answer::Node { node: None }
        );
    }
    assert_eq!(err_kind(c.call(&create(".meta/x", 1))), ErrorKind::Reserved);
    assert_eq!(
        err_kind(c.call(&mkdir(".meta/y", true))),
        ErrorKind::Reserved
    );
    // With `existing`, what is there is reported instead of refused (nothing logged); a path
    // through a file is refused as a lookup refuses it.
    let find = |path: &str| Request::Create {
        path: p(path),
        size: 1,
        attr: FILE,
        policy: WirePolicy::Contiguous,
        existing: true,
    };
    let before = log.read().unwrap().header().next_index;
    let Answer::Node { node: Some(n) } = c.call(&find("a/b/f")).unwrap() else {
        panic!()
    };
    assert_eq!(n.file.unwrap().size, (2 << 20) + 1);
    assert!(matches!(
        c.call(&find("a")).unwrap(),
        Answer::Node {
            node: Some(WireNode { file: None, .. })
        }
    ));
    let e = c.call(&find("a/b/f/x")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotADirectory);
    assert_eq!(e.message(), "a/b/f is not a directory");
    assert_eq!(
        log.read().unwrap().header().next_index,
        before,
        "nothing logged"
    );
    assert!(matches!(
        c.call(&find("a/new")).unwrap(),
        Answer::Logged { node: Some(_), .. }
    ));
    // Refusals carry the writer's errors.
    let e = c.call(&create("a/b/f", 1)).unwrap_err();
    assert_eq!((e.kind, e.errno), (ErrorKind::Exists, libc::EEXIST));
    assert_eq!(err_kind(c.call(&create("x/y", 1))), ErrorKind::Missing);
    assert_eq!(
        err_kind(c.call(&create("a/b/f/g", 1))),
        ErrorKind::NotADirectory
    );
    assert_eq!(err_kind(c.call(&create("a/../x", 1))), ErrorKind::Invalid);
    assert_eq!(
        err_kind(c.call(&create("big", DEV_SIZE))),
        ErrorKind::NoSpace
    );
    assert_eq!(err_kind(c.call(&mkdir("a", false))), ErrorKind::Exists);
    // mkdir -p of an existing directory is fine; through a file it is not.
    assert_eq!(
        c.call(&mkdir("a/b", true)).unwrap(),
        Answer::Dirs {
            created: vec![],
            error: None
        }
    );
    let Answer::Dirs { created, error } = c.call(&mkdir("a/b/f/z", true)).unwrap() else {
        panic!()
    };
    assert!(created.is_empty());
    assert_eq!(error.unwrap().kind, ErrorKind::NotADirectory);
    // Bad interleave parameters are refused, not handed to the allocator.
    let bad = Request::Create {
        path: p("s"),
        size: 1,
        attr: FILE,
        policy: WirePolicy::Interleaved {
            nbuckets: 0,
            nstrips: 99,
            chunk_size: 3,
        },
        existing: false,
    };
    assert_eq!(err_kind(c.call(&bad)), ErrorKind::Invalid);
    // A file entry with a given map (clone): logged even though it cross-links.
    let fmap = WireFmap::from(&*file.to_file_node().unwrap().fmap);
    let clone = Request::AppendFile {
        path: p("a/clone"),
        size: 1,
        flags: FM_ALL_HOSTS_RW,
        attr: FILE,
        fmap,
    };
    assert!(matches!(
        c.call(&clone).unwrap(),
        Answer::Logged { node: None, .. }
    ));
    assert_eq!(log.read().unwrap().state().stats().collisions, 2);
    let bad_map = Request::AppendFile {
        path: p("a/bad"),
        size: 1,
        flags: 0,
        attr: FILE,
        fmap: WireFmap::Simple(vec![[0, 1, 1]]),
    };
    assert_eq!(err_kind(c.call(&bad_map)), ErrorKind::Invalid);
}

#[test]
fn a_full_log_is_refused_with_enospc() {
    let dev = device();
    let slots = open(&dev, false).header().slots();
    {
        let mut fs = open(&dev, false);
        let mut w = fs.writer().unwrap();
        let a = Attr {
            mode: 0o755,
            uid: 0,
            gid: 0,
        };
        for i in 0..slots - 1 {
            w.mkdir(format!("d{i}").as_ref(), a).unwrap();
        }
    }
    let log = shared(&dev);
    let mut c = Client::new(&log, true);
    c.hello();
    // mkdir -p that fills the log: the directory it logged is reported with the error.
    let Answer::Dirs { created, error } = c.call(&mkdir("p/q/r", true)).unwrap() else {
        panic!()
    };
    assert_eq!(created, [p("p")]);
    let e = error.unwrap();
    assert_eq!((e.kind, e.errno), (ErrorKind::NoSpace, libc::ENOSPC));
    let e = c.call(&create("one-more", 1)).unwrap_err();
    assert_eq!((e.kind, e.errno), (ErrorKind::NoSpace, libc::ENOSPC));
    assert!(e.message().contains("the log is full"), "{e}");
}

#[test]
fn status_and_log_level() {
    let dev = device();
    let log = shared(&dev);
    let filter = Filter(std::sync::Mutex::new("warn".into()));
    let mut c = Client::new(&log, true);
    assert_eq!(
        err_kind(c.call(&Request::SetLogLevel {
            filter: "debug".into()
        })),
        ErrorKind::UnsupportedOp
    );
    c.filter = Some(&filter);
    c.hello();
    c.call(&create("f", 1)).unwrap();
    c.call(&Request::SetLogLevel {
        filter: "debug".into(),
    })
    .unwrap();
    assert_eq!(
        err_kind(c.call(&Request::SetLogLevel { filter: "!".into() })),
        ErrorKind::Invalid
    );
    let Answer::Status(s) = c.call(&Request::Status).unwrap() else {
        panic!()
    };
    assert_eq!((s.files, s.dirs, s.log_entries), (1, 0, 1));
    assert_eq!(s.role, "master");
    assert_eq!(s.requests, 6);
    assert_eq!(s.log_filter.as_deref(), Some("debug"));
    assert_eq!(s.mountpoint, Some(p("/mnt/famfs")));
    assert_eq!(s.free_bytes, DEV_SIZE - (10 << 20) - (2 << 20));
}

/// The same commands through the channel and through an in-process writer write the same log
/// bytes: one client session places files as one writer does (its next-fit cursor carried from
/// request to request, across a hole left below it), a new session as a new writer.
#[test]
fn the_channel_writes_the_bytes_an_in_process_writer_writes() {
    let (a, b) = (device(), device());
    let at = |mode| Attr {
        mode,
        uid: 1000,
        gid: 100,
    };
    // A file entry at 16 MiB, leaving a hole at 12-16 MiB below the cursor.
    let clone = FileEntry {
        path: "d/clone".into(),
        flags: FM_ALL_HOSTS_RW,
        uid: 1,
        gid: 2,
        mode: 0o444,
        fmap: famfs_fmap::Fmap::simple(1, vec![famfs_fmap::Extent::new(0, 16 << 20, 2 << 20)]),
    };

    let session1: [(&str, u64, u32); 3] = [
        ("d/a", 1, 0o600),
        ("d/big", 6 << 20, 0o640),
        ("d/e/small", 1, 0o644),
    ];
    {
        let mut fs = open(&a, false);
        {
            let mut w = fs.writer().unwrap();
            w.mkdir_p("d/e".as_ref(), at(0o750)).unwrap();
            for (i, (path, size, mode)) in session1.iter().enumerate() {
                w.create(path.as_ref(), *size, at(*mode), &AllocPolicy::Contiguous)
                    .unwrap();
                if i == 0 {
                    w.append(&LogEntry::File(clone.clone())).unwrap();
                }
            }
        }
        let mut w = fs.writer().unwrap();
        w.mkdir("x".as_ref(), at(0o700)).unwrap();
        w.create("x/y".as_ref(), 3 << 20, at(0o640), &AllocPolicy::Contiguous)
            .unwrap();
    }
    let log = shared(&b);
    let attr = |mode| WireAttr::from(at(mode));
    let mut c = Client::new(&log, true);
    c.hello();
    c.call(&Request::Mkdir {
        path: p("d/e"),
        attr: attr(0o750),
        parents: true,
    })
    .unwrap();
    for (i, (path, size, mode)) in session1.iter().enumerate() {
        c.call(&Request::Create {
            path: p(path),
            size: *size,
            attr: attr(*mode),
            policy: WirePolicy::Contiguous,
            existing: i == 2,
        })
        .unwrap();
        if i == 0 {
            c.call(&Request::AppendFile {
                path: p("d/clone"),
                size: 1,
                flags: FM_ALL_HOSTS_RW,
                attr: WireAttr {
                    mode: 0o444,
                    uid: 1,
                    gid: 2,
                },
                fmap: WireFmap::Simple(vec![[0, 16 << 20, 2 << 20]]),
            })
            .unwrap();
        }
    }
    let mut c = Client::new(&log, true);
    c.hello();
    c.call(&Request::Mkdir {
        path: p("x"),
        attr: attr(0o700),
        parents: false,
    })
    .unwrap();
    c.call(&Request::Create {
        path: p("x/y"),
        size: 3 << 20,
        attr: attr(0o640),
        policy: WirePolicy::Contiguous,
        existing: true,
    })
    .unwrap();
    assert_eq!(log.read().unwrap().header().next_index, 8);
    let fs = log.read().unwrap();
    let ns = fs.state().namespace();
    let start = |path: &str| {
        let n = ns.get(ns.resolve(path.as_bytes()).unwrap()).unwrap();
        n.as_file().unwrap().fmap.ranges().next().unwrap().offset >> 20
    };
    assert_eq!(
        [
            start("d/a"),
            start("d/big"),
            start("d/e/small"),
            start("x/y")
        ],
        [10, 18, 24, 12],
        "next fit within a session, from the start in a new one"
    );
    assert!(log_bytes(&a) == log_bytes(&b), "the logs differ");
}

/// Valid frames to mutate.
fn valid_frames() -> Vec<Vec<u8>> {
    [
        Request::Hello {
            host: Some(master().to_string()),
        },
        create("a/b", 4096),
        mkdir("a/b/c", true),
        Request::Lookup { path: p("a") },
        Request::Status,
        Request::AppendFile {
            path: WirePath::Bytes(vec![b'z', 0xff]),
            size: 1,
            flags: 2,
            attr: FILE,
            fmap: WireFmap::Simple(vec![[0, 4 << 20, 2 << 20]]),
        },
    ]
    .iter()
    .map(encode_request)
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever bytes arrive, the daemon answers with a reply frame and never panics; the log
    /// stays readable.
    #[test]
    fn hostile_frames_get_answers(
        picks in proptest::collection::vec((0usize..6, any::<usize>(), any::<u8>(), 0u8..3), 0..8),
        garbage in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let dev = device();
        let log = shared(&dev);
        let mut c = Client::new(&log, true);
        let frames = valid_frames();
        let _ = c.raw(&garbage);
        for (which, at, byte, how) in picks {
            let mut f = frames[which].clone();
            let at = at % f.len();
            match how {
                0 => f[at] = byte,
                1 => f.truncate(at),
                _ => f.insert(at, byte),
            }
            let _ = c.raw(&f);
            let _ = c.raw(&frames[which]);
        }
        let mut fs = log.write_log().unwrap();
        prop_assert!(fs.refresh().is_ok());
    }
}

#[test]
fn frames_are_cut_from_the_stream() {
    assert_eq!(super::whole_frame(b"\x02\x00\x00"), None);
    assert_eq!(super::whole_frame(b"\x02\x00\x00\x00{"), None);
    assert_eq!(super::whole_frame(b"\x02\x00\x00\x00{}x"), Some(Some(2)));
    assert_eq!(
        super::whole_frame(&(u32::MAX.to_le_bytes())),
        Some(None),
        "too large"
    );
}

/// The socket: root only (mode 0600, published in `user.famfs.control`), several clients
/// served in turn by one thread, frames that arrive in pieces, and a client that sends garbage
/// or hangs up does not stop the others; the socket goes when the server is dropped.
#[test]
fn the_socket_serves_clients_in_turn() {
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;

    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("dev.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    {
        let dev = famfs_fsdev::DaxDevice::open(&img, famfs_fsdev::Access::ReadWrite).unwrap();
        let mut o = MkfsOptions::new(master(), "/dev/dax0.0");
        o.min_device_size = 0;
        mkfs(&dev.map_all().unwrap(), 64 << 20, &o).unwrap();
    }
    let mut cfg = crate::Config::new(&img);
    cfg.system_uuid = Some(master());
    let fs = crate::FileSystem::open(cfg).unwrap();
    assert!(
        fs.getxattr(famfs_log::namespace::ROOT_INO, b"user.famfs.control")
            .is_err(),
        "not yet"
    );
    let socket = dir.path().join("ctl.sock");
    let server = super::start(
        std::sync::Arc::clone(&fs),
        super::ControlOptions {
            socket: socket.clone(),
            mountpoint: None,
            log_control: None,
        },
    )
    .unwrap();
    assert_eq!(
        fs.getxattr(famfs_log::namespace::ROOT_INO, b"user.famfs.control")
            .unwrap(),
        socket.as_os_str().as_encoded_bytes()
    );
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let call = |s: &mut UnixStream, req: &Request| -> Result<Answer, WireError> {
        super::proto::write_frame(s, &encode_request(req)).unwrap();
        let mut buf = Vec::new();
        assert!(super::proto::read_frame(s, &mut buf).unwrap());
        parse_reply(&buf).unwrap()
    };
    let hello = Request::Hello {
        host: Some(master().to_string()),
    };
    let mut a = UnixStream::connect(&socket).unwrap();
    let mut b = UnixStream::connect(&socket).unwrap();
    let mut junk = UnixStream::connect(&socket).unwrap();
    junk.write_all(b"\x05\x00\x00\x00notjs").unwrap();
    let mut buf = Vec::new();
    assert!(super::proto::read_frame(&mut junk, &mut buf).unwrap());
    assert_eq!(
        parse_reply(&buf).unwrap().unwrap_err().kind,
        ErrorKind::BadRequest
    );
    junk.write_all(&u32::MAX.to_le_bytes()).unwrap();
    let mut rest = Vec::new();
    junk.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "a too large frame closes the connection");
    if !nix::unistd::geteuid().is_root() {
        // Anyone else is refused, whatever they ask.
        let e = call(&mut a, &hello).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Permission);
        return;
    }
    call(&mut a, &hello).unwrap();
    call(&mut b, &hello).unwrap();
    // A frame in pieces, while another client is answered.
    let body = encode_request(&create("from-a", 1));
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&body);
    a.write_all(&frame[..7]).unwrap();
    call(&mut b, &create("from-b", 1)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    a.write_all(&frame[7..]).unwrap();
    buf.clear();
    assert!(super::proto::read_frame(&mut a, &mut buf).unwrap());
    assert!(matches!(
        parse_reply(&buf).unwrap().unwrap(),
        Answer::Logged { index: 1, .. }
    ));
    drop(b);
    let Answer::Status(st) = call(&mut a, &Request::Status).unwrap() else {
        panic!()
    };
    assert_eq!((st.files, st.requests), (2, 6));
    drop(server);
    assert!(!socket.exists(), "removed when the server is dropped");
}
