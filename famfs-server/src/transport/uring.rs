//! The FUSE-over-io_uring transport: one queue per CPU, each served by a thread pinned to that
//! CPU, so a request is answered on the CPU that issued it (no cross-CPU wake-up).
//!
//! Set-up comes in two steps around INIT, because a kernel that accepted
//! `FUSE_OVER_IO_URING` holds every request until each queue has an entry:
//!
//! 1. [`prepare`], before INIT is answered: the queue threads start, pin themselves, and build
//!    their rings and entry buffers. Only if that worked does INIT accept the ring.
//! 2. [`Prepared::start`], after INIT: each thread registers its entries. A refused
//!    registration turns the ring off for the connection (the kernel then sends everything
//!    over /dev/fuse), and the caller falls back to the /dev/fuse loop.
//!
//! FORGET and INTERRUPT still come over /dev/fuse, so one /dev/fuse worker runs alongside.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use fuse_famfs_proto::Errno;
use fuse_famfs_proto::abi::OutHeader;
use zerocopy::IntoBytes;

use super::ring::{self, Entry, Ring};
use crate::adapter::error_reply;
use crate::{Adapter, Reply, ServerError};

/// The module parameter that lets connections use io_uring.
pub const ENABLE_URING: &str = "/sys/module/fuse/parameters/enable_uring";

/// Why the kernel did not offer `FUSE_OVER_IO_URING` in INIT, for messages.
pub fn not_offered_reason() -> String {
    match std::fs::read_to_string(ENABLE_URING) {
        Ok(v) if v.trim() == "Y" => "the kernel did not offer it in INIT".into(),
        Ok(_) => format!("the fuse module parameter enable_uring is off ({ENABLE_URING})"),
        Err(_) => format!(
            "this kernel has no FUSE over io_uring (no {ENABLE_URING}; needs Linux 6.14+ \
             with CONFIG_FUSE_IO_URING)"
        ),
    }
}

/// Whether the module parameter says io_uring is off (then INIT will not offer it, and the
/// rings need not be built). A missing parameter (another kernel, or no /sys/module in a
/// container) leaves the decision to INIT.
pub fn switched_off() -> bool {
    std::fs::read_to_string(ENABLE_URING).is_ok_and(|v| v.trim() == "N")
}

/// How many queues the kernel makes: one per possible CPU.
pub fn possible_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| count_cpu_list(s.trim()))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Number of CPUs in a kernel CPU list such as `0-3,8,10-11`.
fn count_cpu_list(s: &str) -> Option<usize> {
    let mut n = 0usize;
    for part in s.split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                b.checked_sub(a)? + 1
            }
            None => part.parse::<usize>().map(|_| 1).ok()?,
        };
    }
    (n > 0).then_some(n)
}

/// Queue threads whose rings and buffers are built, waiting for [`Prepared::start`].
pub(crate) struct Prepared {
    queues: Vec<Queue>,
}

struct Queue {
    start: mpsc::Sender<Arc<Adapter>>,
    registered: mpsc::Receiver<Result<(), String>>,
    thread: JoinHandle<()>,
}

/// The queue threads serving the connection.
pub(crate) struct Running {
    threads: Vec<JoinHandle<()>>,
}

impl Running {
    /// Waits for every queue thread (they end when the file system is unmounted).
    pub(crate) fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Starts one thread per possible CPU that pins itself and builds its ring with `depth`
/// entries of `payload` bytes each, on /dev/fuse descriptor `fuse`.
pub(crate) fn prepare(
    fuse: &Arc<OwnedFd>,
    depth: usize,
    payload: usize,
    stop: &Arc<AtomicBool>,
) -> Result<Prepared, ServerError> {
    let n = possible_cpus();
    let mut queues = Vec::with_capacity(n);
    let mut built = Vec::with_capacity(n);
    for qid in 0..n {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (start_tx, start_rx) = mpsc::channel::<Arc<Adapter>>();
        let (reg_tx, reg_rx) = mpsc::channel();
        let (fuse, stop) = (Arc::clone(fuse), Arc::clone(stop));
        let thread = std::thread::Builder::new()
            .name(format!("famfs-uring-{qid}"))
            .spawn(move || {
                pin_to(qid);
                let mut q = match QueueState::new(qid as u16, &fuse, depth, payload) {
                    Ok(q) => q,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let Ok(adapter) = start_rx.recv() else {
                    return;
                };
                let r = q.register();
                let ok = r.is_ok();
                let _ = reg_tx.send(r);
                if ok {
                    q.serve(&adapter, &stop);
                }
            })
            .map_err(ServerError::Channel)?;
        built.push(ready_rx);
        queues.push(Queue {
            start: start_tx,
            registered: reg_rx,
            thread,
        });
    }
    let prepared = Prepared { queues };
    for rx in built {
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(ServerError::Uring(e)),
            Err(_) => return Err(ServerError::Uring("a queue thread died".into())),
        }
    }
    Ok(prepared)
}

impl Prepared {
    /// Number of queues.
    pub(crate) fn len(&self) -> usize {
        self.queues.len()
    }

    /// Registers every queue's entries and serves them with `adapter`. If any registration is
    /// refused, the error says why; the kernel has then turned the ring off for the
    /// connection (queues that did register idle until the unmount).
    pub(crate) fn start(self, adapter: &Arc<Adapter>) -> (Running, Result<(), String>) {
        let mut result = Ok(());
        for q in &self.queues {
            let _ = q.start.send(Arc::clone(adapter));
        }
        let mut threads = Vec::with_capacity(self.queues.len());
        for q in self.queues {
            match q.registered.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err("a queue thread died".into()),
            }
            threads.push(q.thread);
        }
        (Running { threads }, result)
    }
}

fn pin_to(cpu: usize) {
    let mut set = nix::sched::CpuSet::new();
    let pinned = set.set(cpu).is_ok()
        && nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).is_ok();
    if !pinned {
        // An offline CPU: its queue only gets requests once the CPU comes online.
        tracing::debug!("FUSE over io_uring: cannot pin queue {cpu} to its CPU");
    }
}

/// A queue thread's state: its ring and entries.
struct QueueState {
    qid: u16,
    fd: i32,
    _fuse: Arc<OwnedFd>,
    ring: Ring,
    entries: Vec<Entry>,
    /// Completions seen while registering (requests that arrived at once).
    early: Vec<(u64, i32)>,
    /// How often each entry was registered again after an error.
    rearms: Vec<u32>,
}

/// How often an entry is registered again after errors before the queue gives it up.
const MAX_REARMS: u32 = 3;

/// How often a registration answered EAGAIN (INIT not processed yet) is retried.
const REGISTER_RETRIES: u32 = 200;

impl QueueState {
    fn new(qid: u16, fuse: &Arc<OwnedFd>, depth: usize, payload: usize) -> Result<Self, String> {
        let ring = ring::new_ring(depth).map_err(|e| format!("io_uring_setup: {e}"))?;
        let entries = (0..depth.max(1))
            .map(|_| Entry::new(payload))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("ring buffers: {e}"))?;
        Ok(QueueState {
            qid,
            fd: fuse.as_raw_fd(),
            _fuse: Arc::clone(fuse),
            ring,
            entries,
            early: Vec::new(),
            rearms: vec![0; depth.max(1)],
        })
    }

    fn push(&mut self, sqe: &io_uring::squeue::Entry128) {
        // SAFETY: every buffer an SQE points to (the entry's iovecs and, through them, its
        // header and payload buffers) lives in `self.entries`, which outlives the ring's use
        // of it: entries are dropped only after the thread stops submitting.
        while unsafe { self.ring.submission().push(sqe) }.is_err() {
            let _ = self.ring.submit();
        }
    }

    /// Registers every entry; an entry that completes at once with a request is kept for
    /// `serve`.
    fn register(&mut self) -> Result<(), String> {
        for i in 0..self.entries.len() {
            let mut tries = 0;
            loop {
                let sqe = ring::register_sqe(self.fd, self.qid, &self.entries[i], i as u64);
                self.push(&sqe);
                self.ring
                    .submit()
                    .map_err(|e| format!("io_uring_enter: {e}"))?;
                // A refused registration completes at once; an accepted one only when a
                // request arrives (kept for `serve`).
                let mut failed = None;
                for c in self.ring.completion() {
                    if c.user_data() == i as u64 && c.result() < 0 {
                        failed = Some(c.result());
                    } else {
                        self.early.push((c.user_data(), c.result()));
                    }
                }
                match failed {
                    None => break,
                    Some(e) if e == -libc::EAGAIN && tries < REGISTER_RETRIES => {
                        tries += 1;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Some(e) => {
                        return Err(format!(
                            "queue {} registration refused: {}",
                            self.qid,
                            std::io::Error::from_raw_os_error(-e)
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Answers requests until the connection ends (every entry completed with an error).
    fn serve(&mut self, adapter: &Adapter, stop: &AtomicBool) {
        let size = adapter.fs().config().request_buffer_size();
        let mut out = vec![0u8; size];
        let mut live = self.entries.len();
        let mut done = std::mem::take(&mut self.early);
        while live > 0 {
            if done.is_empty() {
                // Submits the commits of the last round and waits for the next request.
                match self.ring.submit_and_wait(1) {
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                    Err(e) => {
                        tracing::error!("FUSE over io_uring queue {}: {e}", self.qid);
                        return;
                    }
                }
                done.extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
            }
            for &(tag, res) in &done {
                let i = tag as usize;
                if i >= self.entries.len() {
                    continue;
                }
                if res < 0 {
                    if !self.rearm(i, res) {
                        live -= 1;
                    }
                    continue;
                }
                let commit = self.answer(i, adapter, &mut out, stop);
                let sqe = ring::commit_sqe(self.fd, self.qid, commit, tag);
                self.push(&sqe);
            }
            done.clear();
        }
    }

    /// Entry `i` completed with error `res`: at the end of the connection (ENOTCONN,
    /// ECANCELED) it is gone; otherwise (a commit the kernel refused) it is registered again,
    /// a few times at most, so the queue keeps its entries. Returns whether it was.
    fn rearm(&mut self, i: usize, res: i32) -> bool {
        if res == -libc::ENOTCONN || res == -libc::ECANCELED {
            return false;
        }
        let err = std::io::Error::from_raw_os_error(-res);
        self.rearms[i] += 1;
        if self.rearms[i] > MAX_REARMS {
            tracing::warn!(
                "FUSE over io_uring queue {}: entry {i} ended: {err}",
                self.qid
            );
            return false;
        }
        tracing::warn!(
            "FUSE over io_uring queue {}: entry {i}: {err}; registering it again",
            self.qid
        );
        let sqe = ring::register_sqe(self.fd, self.qid, &self.entries[i], i as u64);
        self.push(&sqe);
        true
    }

    /// Answers the request in entry `i`; returns the commit id.
    fn answer(&mut self, i: usize, adapter: &Adapter, out: &mut [u8], stop: &AtomicBool) -> u64 {
        let map = adapter.fs().mapping();
        let e = &mut self.entries[i];
        let (h, parsed) = ring::parse(e);
        let r = match parsed {
            Ok(r) => r,
            Err(err) => {
                tracing::warn!("FUSE over io_uring: bad ring entry: {err}");
                let commit = h.ring_ent_in_out.commit_id;
                fail(e, out, commit, Errno::EIO);
                return commit;
            }
        };
        let reply = adapter.handle(e.request(&h, &r), out);
        let unique = r.header.unique;
        let ok = match &reply {
            Reply::Bytes(n) => ring::put_reply(e, &out[..*n]),
            Reply::Last(n) => {
                stop.store(true, Ordering::Relaxed);
                ring::put_reply(e, &out[..*n])
            }
            Reply::Read { segments, .. } => read_reply(e, map, unique, segments),
            // Requests without a reply (FORGET, INTERRUPT) come over /dev/fuse; anything
            // else still needs its entry back.
            Reply::None => false,
        };
        if !ok {
            fail(e, out, r.commit_id, Errno::EIO);
        }
        r.commit_id
    }
}

/// Puts an error reply for `unique` into `e`.
fn fail(e: &mut Entry, out: &mut [u8], unique: u64, errno: Errno) {
    if let Reply::Bytes(n) = error_reply(out, unique, errno) {
        ring::put_reply(e, &out[..n]);
    }
}

/// Copies the READ segments from the device mapping into the payload buffer and sets the
/// header; false if they do not fit or lie outside the mapping.
fn read_reply(
    e: &mut Entry,
    map: &famfs_fsdev::Mapping,
    unique: u64,
    segments: &[(u64, u64)],
) -> bool {
    let mut pos = 0usize;
    let payload = e.payload_mut();
    for &(off, len) in segments {
        let Some(dst) = payload.get_mut(pos..pos + len as usize) else {
            return false;
        };
        if let Err(err) = map.read(off, dst) {
            tracing::error!("READ reply range: {err}");
            return false;
        }
        pos += len as usize;
    }
    let hdr = OutHeader {
        len: (OutHeader::SIZE + pos) as u32,
        error: 0,
        unique,
    };
    let mut h = e.header();
    if h.set_reply(hdr.as_bytes()).is_none() {
        return false;
    }
    e.set_header(&h);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count_like_the_kernel() {
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-1"), Some(2));
        assert_eq!(count_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(count_cpu_list(""), None);
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("x"), None);
        assert!(possible_cpus() >= 1);
    }
}
