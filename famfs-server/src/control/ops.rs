//! Answering control requests from the shared, replayed log: the only way the channel reaches
//! the log is through that [`Famfs`](famfs_log::Famfs) (whatever its media), under its lock.
//! Appends go through [`famfs_log::Writer`], one per request (which takes the log's media lock),
//! so they write exactly the bytes an in-process writer would.

use fuse_famfs_proto::Errno;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use famfs_fsdev::Media;
use famfs_log::entry::{FileEntry, LogEntry};
use famfs_log::namespace::{Ino, NsError, ROOT_INO};
use famfs_log::role::Role;
use famfs_log::{Famfs, LogError, Writer};
use uuid::Uuid;

use super::LogControl;
use super::proto::{
    Answer, ErrorKind, PROTOCOL_VERSION, Request, Status, WireAttr, WireError, WireFmap, WireNode,
    WirePath, WirePolicy,
};
use crate::refresh::SharedLog;

/// The longest path a request may name (longer ones cannot be in the log anyway).
const MAX_PATH: usize = 4096;

/// The name at the root under which a mount shows its meta files.
const META_DIR: &[u8] = b".meta";

/// One client connection's state.
#[derive(Debug)]
pub(crate) struct Session {
    /// The client's system UUID, once a `hello` with it was accepted: appends are allowed.
    host: Option<Uuid>,
    /// Where the next contiguous allocation looks first, carried between this session's
    /// creates (as one in-process writer carries it).
    cursor: u64,
    /// Whether the peer is root (everything else is refused).
    root: bool,
}

impl Session {
    /// A session for a peer (`root`: whether its uid is 0).
    pub(crate) fn new(root: bool) -> Session {
        Session {
            host: None,
            cursor: 0,
            root,
        }
    }
}

/// What the handlers need besides the log.
pub(crate) struct Ctx<'a> {
    /// The device served (for `hello` and `status`).
    pub device: &'a [u8],
    /// Where it is mounted.
    pub mountpoint: Option<&'a Path>,
    /// The daemon's log filter, when it can be changed.
    pub log_control: Option<&'a dyn LogControl>,
    /// Requests answered so far (this one included).
    pub requests: &'a AtomicU64,
}

fn role_name(r: Role) -> String {
    match r {
        Role::Master => "master",
        _ => "client",
    }
    .to_string()
}

fn log_err(e: LogError) -> WireError {
    WireError::of_log(&e)
}

/// The daemon stopped serving (the device holds no valid famfs now).
fn stopped(e: Errno) -> WireError {
    WireError::new(
        ErrorKind::Io,
        e.get(),
        "the daemon has stopped serving: the device holds no valid famfs (see its log)",
    )
}

fn bad(msg: String) -> WireError {
    WireError::new(ErrorKind::BadRequest, libc::EINVAL, msg)
}

/// The path of a request, bounded.
fn path_of(p: &WirePath) -> Result<PathBuf, WireError> {
    if p.as_bytes().len() > MAX_PATH {
        return Err(bad(format!("path of {} bytes", p.as_bytes().len())));
    }
    Ok(p.to_path())
}

/// Whether `path` is under the root's `.meta`, which a mount shows but the log never holds.
fn is_meta(path: &[u8]) -> bool {
    path.split(|&b| b == b'/').next() == Some(META_DIR)
}

fn reserved(path: &Path) -> WireError {
    WireError::new(
        ErrorKind::Reserved,
        libc::EPERM,
        format!(
            "{}: .meta at the root is reserved for the meta files of a mounted famfs",
            path.display()
        ),
    )
}

/// Answer one request.
pub(crate) fn handle<L: Media>(
    log: &SharedLog<L>,
    s: &mut Session,
    ctx: &Ctx<'_>,
    req: Request,
) -> Result<Answer, WireError> {
    if !s.root {
        return Err(WireError::new(
            ErrorKind::Permission,
            libc::EACCES,
            "permission denied: the famfs control channel is for root only",
        ));
    }
    match req {
        Request::Hello { host } => hello(log, s, ctx, host),
        Request::Lookup { path } => lookup(log, &path_of(&path)?),
        Request::Create {
            path,
            size,
            attr,
            policy,
            existing,
        } => {
            let spec = NewFile {
                size,
                attr,
                policy,
                existing,
            };
            create(log, s, &path_of(&path)?, spec)
        }
        Request::Mkdir {
            path,
            attr,
            parents,
        } => mkdir(log, s, &path_of(&path)?, attr, parents),
        Request::AppendFile {
            path,
            size,
            flags,
            attr,
            fmap,
        } => append_file(log, s, &path_of(&path)?, size, flags, attr, &fmap),
        Request::Status => Ok(Answer::Status(Box::new(status(log, ctx)?))),
        Request::SetLogLevel { filter } => match ctx.log_control {
            Some(c) => c
                .set_filter(&filter)
                .map(|()| Answer::Done)
                .map_err(|e| WireError::new(ErrorKind::Invalid, libc::EINVAL, e)),
            None => Err(WireError::new(
                ErrorKind::UnsupportedOp,
                libc::EOPNOTSUPP,
                "this daemon cannot change its log level",
            )),
        },
    }
}

fn hello<L: Media>(
    log: &SharedLog<L>,
    s: &mut Session,
    ctx: &Ctx<'_>,
    host: Option<String>,
) -> Result<Answer, WireError> {
    let fs = log.read().map_err(stopped)?;
    let sb = fs.superblock();
    if let Some(h) = host {
        let u = Uuid::parse_str(&h).map_err(|e| bad(format!("host {h:?}: {e}")))?;
        if u != sb.system_uuid {
            return Err(log_err(LogError::NotMaster {
                local: u.to_string(),
                owner: sb.system_uuid,
            }));
        }
        if fs.role() != Role::Master {
            // EROFS, as writing the mount's .meta/.log would fail: this daemon is a client.
            return Err(WireError::new(
                ErrorKind::NotMaster,
                libc::EROFS,
                format!(
                    "not running on the master node: the famfs_fused serving this mount is a \
                     client (the file system belongs to {})",
                    sb.system_uuid
                ),
            ));
        }
        s.host = Some(u);
    }
    Ok(Answer::Hello {
        proto: PROTOCOL_VERSION,
        pid: std::process::id(),
        role: role_name(fs.role()),
        dev_size: sb.dev_size,
        device: WirePath::of(Path::new(OsStr::from_bytes(ctx.device))),
    })
}

fn lookup<L: Media>(log: &SharedLog<L>, path: &Path) -> Result<Answer, WireError> {
    Ok(Answer::Node {
        node: node_at(&*log.read().map_err(stopped)?, path)?,
    })
}

/// The node at `path` as a reader of the log sees it (the mount's meta files are the mount's,
/// not the log's: an in-process reader of the log does not see them either).
fn node_at<L: Media>(fs: &Famfs<L>, path: &Path) -> Result<Option<WireNode>, WireError> {
    let ns = fs.state().namespace();
    let p = path.as_os_str().as_bytes();
    let meta_is_local = ns
        .lookup(ROOT_INO, OsStr::new(".meta"))
        .and_then(|i| ns.get(i))
        .is_some_and(|n| n.log_index.is_none());
    if is_meta(p) && meta_is_local {
        return Ok(None);
    }
    match ns.resolve(p) {
        Ok(ino) => Ok(ns.get(ino).map(WireNode::from)),
        Err(NsError::Missing(_)) => Ok(None),
        Err(e) => Err(WireError::new(
            ErrorKind::NotADirectory,
            libc::ENOTDIR,
            e.to_string(),
        )),
    }
}

/// Run `op` with a writer for this session: the host said hello, the path is not reserved;
/// the log's write lock and media lock are held for the call, and the session's allocation
/// cursor carried in and out. When the log is read through the daemon's own mount, the log's
/// flock is taken and new entries fetched before the tree lock, and what `op` appended is
/// written through the mount after it is released (those writes are requests this daemon's
/// workers answer).
fn with_writer<L: Media, T>(
    log: &SharedLog<L>,
    s: &mut Session,
    path: &Path,
    op: impl FnOnce(&mut Writer<'_, L>) -> Result<T, WireError>,
) -> Result<T, WireError> {
    if s.host.is_none() {
        return Err(WireError::new(
            ErrorKind::NoSession,
            libc::EPERM,
            "say hello with this host's system UUID before appending",
        ));
    }
    if is_meta(path.as_os_str().as_bytes()) {
        return Err(reserved(path));
    }
    let media_err = |e: famfs_fsdev::FsdevError| log_err(LogError::Media(e));
    let append = match log.mounted() {
        Some(m) => Some(m.begin_append(log.replayed_from()).map_err(media_err)?),
        None => None,
    };
    let r = {
        let mut fs = log.write_log().map_err(stopped)?;
        let mut w = fs.writer().map_err(log_err)?;
        w.set_cursor(s.cursor);
        let r = op(&mut w);
        s.cursor = w.cursor();
        r
    };
    if let Some(a) = append {
        // On failure the tree holds entries the log does not: the next refresh finds the log
        // behind what was replayed and replays it from scratch.
        a.push().map_err(media_err)?;
    }
    r
}

fn node_of<L: Media>(fs: &Famfs<L>, ino: Ino) -> Option<WireNode> {
    fs.state().namespace().get(ino).map(WireNode::from)
}

/// What a `create` request asks for.
struct NewFile {
    size: u64,
    attr: WireAttr,
    policy: WirePolicy,
    /// Report what is at the path instead of refusing.
    existing: bool,
}

fn create<L: Media>(
    log: &SharedLog<L>,
    s: &mut Session,
    path: &Path,
    spec: NewFile,
) -> Result<Answer, WireError> {
    with_writer(log, s, path, |w| {
        if spec.existing
            && let Some(node) = node_at(w.famfs(), path)?
        {
            return Ok(Answer::Node { node: Some(node) });
        }
        let policy = spec.policy.into();
        if let famfs_log::alloc::AllocPolicy::Interleaved(p) = &policy {
            p.validate(w.famfs().superblock().dev_size)
                .map_err(|e| log_err(e.into()))?;
        }
        let (ino, _) = w
            .create(path, spec.size, spec.attr.into(), &policy)
            .map_err(log_err)?;
        let node = node_of(w.famfs(), ino);
        let index = w.famfs().header().next_index - 1;
        Ok(Answer::Logged { index, node })
    })
}

fn mkdir<L: Media>(
    log: &SharedLog<L>,
    s: &mut Session,
    path: &Path,
    attr: WireAttr,
    parents: bool,
) -> Result<Answer, WireError> {
    with_writer(log, s, path, |w| {
        if !parents {
            w.mkdir(path, attr.into()).map_err(log_err)?;
            return Ok(Answer::Dirs {
                created: vec![WirePath::of(path)],
                error: None,
            });
        }
        let mut tried: Vec<PathBuf> = Vec::new();
        let r = w.mkdir_p_with(path, attr.into(), |prefix| {
            tried.push(prefix.to_path_buf());
            Ok::<(), LogError>(())
        });
        // The last prefix tried was not logged if its own mkdir failed.
        if r.is_err()
            && let Some(last) = tried.last()
        {
            let ns = w.famfs().state().namespace();
            if ns.resolve(last.as_os_str().as_bytes()).is_err() {
                tried.pop();
            }
        }
        Ok(Answer::Dirs {
            created: tried.iter().map(|p| WirePath::of(p)).collect(),
            error: r.err().map(log_err),
        })
    })
}

fn append_file<L: Media>(
    log: &SharedLog<L>,
    s: &mut Session,
    path: &Path,
    size: u64,
    flags: u32,
    attr: WireAttr,
    fmap: &WireFmap,
) -> Result<Answer, WireError> {
    let fmap = fmap.to_fmap(size).map_err(|e| {
        WireError::new(
            ErrorKind::Invalid,
            libc::EINVAL,
            format!("bad file map: {e}"),
        )
    })?;
    with_writer(log, s, path, |w| {
        let entry = FileEntry {
            path: path.to_path_buf(),
            flags,
            uid: attr.uid,
            gid: attr.gid,
            mode: attr.mode,
            fmap,
        };
        let (index, _) = w.append(&LogEntry::File(entry)).map_err(log_err)?;
        Ok(Answer::Logged { index, node: None })
    })
}

fn status<L: Media>(log: &SharedLog<L>, ctx: &Ctx<'_>) -> Result<Status, WireError> {
    let fs = log.read().map_err(stopped)?;
    let st = fs.state();
    let bm = st.bitmap();
    let stats = st.stats();
    let h = fs.header();
    Ok(Status {
        proto: PROTOCOL_VERSION,
        pid: std::process::id(),
        device: WirePath::of(Path::new(OsStr::from_bytes(ctx.device))),
        mountpoint: ctx.mountpoint.map(WirePath::of),
        role: role_name(fs.role()),
        log_entries: h.next_index,
        log_slots: h.slots(),
        files: stats.files,
        dirs: stats.dirs,
        free_bytes: (bm.nbits() - bm.count_set()) * famfs_fsdev::ALLOC_UNIT,
        skipped_entries: stats.bad_entries + stats.skipped,
        requests: ctx.requests.load(Ordering::Relaxed),
        log_filter: ctx.log_control.map(|c| c.filter()),
    })
}
