//! A connection's start over the transport (`session::run` on a socket pair standing in for
//! /dev/fuse): requests before INIT are answered EIO (FORGET not at all), a malformed INIT
//! EINVAL and an INIT that cannot be accepted EPROTO, and the connection keeps waiting; only a
//! good INIT starts the workers, which then answer everything. Closing the channel before INIT
//! ends the session cleanly.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::Duration;

use famfs_log::alloc::AllocPolicy;
use famfs_server::{Adapter, Config, FileSystem, ServerError};
use famfs_tests::standin::StandIn;
use fuse_famfs_proto::abi::{self, ForgetIn, GetattrIn, InitIn};
use fuse_famfs_proto::reply::ReplyRef;
use fuse_famfs_proto::{Errno, Operation, Request};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv, send};

struct Conn {
    kernel: OwnedFd,
    session: JoinHandle<Result<(), ServerError>>,
    ready: Receiver<Arc<Adapter>>,
    _dev: StandIn,
}

fn start() -> Conn {
    let mut dev = StandIn::create(4 << 30).unwrap();
    dev.add_file("f", 3 << 20, AllocPolicy::Contiguous).unwrap();
    let mut cfg = Config::new(dev.path());
    cfg.system_uuid = Some(dev.master_uuid());
    cfg.threads = 2;
    let fs = FileSystem::open(cfg).unwrap();
    let (kernel, server) = famfs_server::mount::socket_channel().unwrap();
    let (tx, ready) = mpsc::channel();
    let session = std::thread::spawn(move || {
        let clone = |fd: &OwnedFd| fd.try_clone().map_err(ServerError::Channel);
        famfs_server::session::run(&fs, server, clone, |a| tx.send(Arc::clone(a)).unwrap())
    });
    Conn {
        kernel,
        session,
        ready,
        _dev: dev,
    }
}

impl Conn {
    fn send(&self, unique: u64, nodeid: u64, op: Operation<'_>) {
        self.send_raw(&Request::new(unique, nodeid, op).to_bytes().unwrap());
    }

    fn send_raw(&self, bytes: &[u8]) {
        let n = send(self.kernel.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL).unwrap();
        assert_eq!(n, bytes.len());
    }

    /// The next reply, or `None` if nothing comes within `wait`.
    fn recv(&self, wait: Duration) -> Option<Vec<u8>> {
        let mut fds = [PollFd::new(self.kernel.as_fd(), PollFlags::POLLIN)];
        let ms = PollTimeout::try_from(wait.as_millis() as u32).unwrap();
        if poll(&mut fds, ms).unwrap() == 0 {
            return None;
        }
        let mut buf = vec![0u8; 1 << 16];
        let n = recv(self.kernel.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap();
        buf.truncate(n);
        Some(buf)
    }

    /// Sends a request and returns its reply, checking the header's length and unique.
    fn call(&self, unique: u64, nodeid: u64, op: Operation<'_>) -> Vec<u8> {
        self.send(unique, nodeid, op);
        self.reply_to(unique)
    }

    fn reply_to(&self, unique: u64) -> Vec<u8> {
        let r = self
            .recv(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no reply to {unique}"));
        let parsed = ReplyRef::parse(&r).unwrap();
        assert_eq!(parsed.header.unique, unique);
        assert_eq!(parsed.header.len as usize, r.len());
        r
    }
}

fn errno(reply: &[u8]) -> Option<Errno> {
    let e = ReplyRef::parse(reply).unwrap().header.error;
    (e != 0).then(|| Errno::new_clamped(-e))
}

#[test]
fn requests_before_init_are_refused_until_an_init_is_accepted() {
    let c = start();
    let quiet = Duration::from_millis(150);
    let r = c.call(
        2,
        abi::FUSE_ROOT_ID,
        Operation::Getattr(GetattrIn::default()),
    );
    assert_eq!((errno(&r), r.len()), (Some(Errno::EIO), 16), "GETATTR");
    c.send(4, 2, Operation::Forget(ForgetIn { nlookup: 1 }));
    assert_eq!(c.recv(quiet), None, "FORGET was answered");
    // INIT too short.
    let mut short = Request::new(6, 0, Operation::Init(InitIn::offer(45, 4096, 0)))
        .to_bytes()
        .unwrap();
    short.truncate(44);
    short[..4].copy_from_slice(&44u32.to_ne_bytes());
    c.send_raw(&short);
    assert_eq!(errno(&c.reply_to(6)), Some(Errno::EINVAL), "short INIT");
    let mut bad = InitIn::offer(45, 4096, abi::FUSE_MAX_PAGES);
    bad.major = 8;
    assert_eq!(
        errno(&c.call(8, 0, Operation::Init(bad))),
        Some(Errno::EPROTO)
    );
    assert!(c.ready.try_recv().is_err(), "serving before INIT");
    // A good INIT now.
    let offer = InitIn::offer(45, 128 * 1024, abi::FUSE_ASYNC_READ | abi::FUSE_MAX_PAGES);
    let r = c.call(10, 0, Operation::Init(offer));
    let out = ReplyRef::parse(&r).unwrap().init().unwrap();
    assert_eq!((out.major, out.minor), (7, 45));
    let adapter = c.ready.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(!adapter.famfs_enabled());
    assert_eq!(adapter.connection().minor, 45);
    // The workers answer now, pipelined.
    for u in (12..40).step_by(2) {
        c.send(
            u,
            abi::FUSE_ROOT_ID,
            Operation::Getattr(GetattrIn::default()),
        );
    }
    let mut seen = Vec::new();
    for _ in (12..40).step_by(2) {
        let r = c.recv(Duration::from_secs(10)).expect("a reply");
        let p = ReplyRef::parse(&r).unwrap();
        assert_eq!(p.attr().unwrap().attr.ino, abi::FUSE_ROOT_ID);
        seen.push(p.header.unique);
    }
    seen.sort();
    assert_eq!(seen, (12..40).step_by(2).collect::<Vec<u64>>());
    nix::sys::socket::shutdown(c.kernel.as_raw_fd(), nix::sys::socket::Shutdown::Both).unwrap();
    c.session.join().unwrap().unwrap();
}

#[test]
fn closing_the_channel_before_init_ends_the_session_cleanly() {
    let c = start();
    let r = c.call(2, abi::FUSE_ROOT_ID, Operation::Statfs);
    assert_eq!(errno(&r), Some(Errno::EIO));
    drop(c.kernel);
    c.session.join().unwrap().unwrap();
    assert!(c.ready.try_recv().is_err(), "ready without INIT");
}
