//! The master's writing session, whoever does the appending: this process (offline on a
//! device, or through a mount whose daemon has no control channel) or the daemon serving the
//! mount (through its control channel, [`crate::control`]). Commands that log files and
//! directories (`creat`, `mkdir`, `cp`, `clone`) are written once against [`LogOps`], so both
//! ways give the same messages, exit codes and log bytes.

use std::path::Path;

use anyhow::Result;
use famfs_fsdev::Media;
use famfs_log::alloc::AllocPolicy;
use famfs_log::entry::{FileEntry, LogEntry};
use famfs_log::namespace::{Attr, FileNode, NodeKind};
use famfs_log::{Famfs, LogError, Writer};
use famfs_server::control::proto::{
    Answer, ErrorKind, Request, WireAttr, WireError, WireFmap, WireNode, WirePath,
};

use crate::control::{Client, Connect};
use crate::error::fail;
use crate::open::{Data, Location, OpenHow, lookup, system_uuid_for_writing};
use crate::paths::display_rel;

/// What a lookup found.
#[derive(Debug, Clone)]
pub enum Found {
    /// A directory.
    Dir(Attr),
    /// A regular file.
    File(Attr, FileNode),
}

impl Found {
    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self, Found::Dir(_))
    }

    /// The file, if it is one.
    pub fn as_file(&self) -> Option<&FileNode> {
        match self {
            Found::File(_, f) => Some(f),
            Found::Dir(_) => None,
        }
    }

    /// Owner and mode.
    pub fn attr(&self) -> Attr {
        match self {
            Found::Dir(a) | Found::File(a, _) => *a,
        }
    }
}

/// What [`LogOps::find_or_create`] did.
#[derive(Debug)]
pub enum Placed {
    /// Logged a new file.
    Created(FileNode),
    /// Something is at the path already (nothing was logged).
    Existing(Found),
}

/// A failed log operation: its errno, its message, and its cause (printed by `{:#}` as the
/// in-process error would print).
#[derive(Debug)]
pub struct OpError {
    errno: i32,
    msg: String,
    source: Option<Box<OpError>>,
}

impl OpError {
    /// The errno.
    pub fn errno(&self) -> i32 {
        self.errno
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for OpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

impl From<WireError> for OpError {
    fn from(e: WireError) -> Self {
        let mut source = None;
        for msg in e.chain.iter().skip(1).rev() {
            source = Some(Box::new(OpError {
                errno: e.errno,
                msg: msg.clone(),
                source,
            }));
        }
        OpError {
            errno: e.errno,
            msg: e.message().to_string(),
            source,
        }
    }
}

impl From<LogError> for OpError {
    fn from(e: LogError) -> Self {
        WireError::of_log(&e).into()
    }
}

/// What the commands do to the log.
pub trait LogOps {
    /// The node at `rel`, or `None`; a file in the middle of the path is an error (ENOTDIR).
    fn lookup(&mut self, rel: &Path) -> Result<Option<Found>>;
    /// Allocate and log a new file (the parent must exist).
    fn create(
        &mut self,
        rel: &Path,
        size: u64,
        attr: Attr,
        policy: &AllocPolicy,
    ) -> Result<FileNode, OpError>;
    /// What is at `rel`, or else a new file logged there, in one step (one request through the
    /// daemon). The outer error is the lookup's (as [`LogOps::lookup`] gives it), the inner one
    /// the create's.
    fn find_or_create(
        &mut self,
        rel: &Path,
        size: u64,
        attr: Attr,
        policy: &AllocPolicy,
    ) -> Result<Result<Placed, OpError>> {
        Ok(match self.lookup(rel)? {
            Some(found) => Ok(Placed::Existing(found)),
            None => self.create(rel, size, attr, policy).map(Placed::Created),
        })
    }
    /// Log a directory (the parent must exist).
    fn mkdir(&mut self, rel: &Path, attr: Attr) -> Result<(), OpError>;
    /// Log a directory and its missing parents, telling `created` about each.
    fn mkdir_p(
        &mut self,
        rel: &Path,
        attr: Attr,
        created: &mut dyn FnMut(&Path),
    ) -> Result<(), OpError>;
    /// Log a file entry as given (map included); returns its log index.
    fn append_file(&mut self, entry: FileEntry) -> Result<u64, OpError>;
}

/// The log opened in this process.
enum Meta {
    Local(Box<Famfs<Box<dyn Media>>>),
    Remote(Client),
}

/// An open file system to write to.
pub struct WriteSession {
    meta: Meta,
    data: Data,
    dev_size: u64,
}

impl WriteSession {
    /// Open `loc` for writing: through the daemon's control channel for a mount that offers
    /// one, else in this process.
    pub fn open(loc: &Location, how: OpenHow) -> Result<WriteSession> {
        if let Location::Mount(root) = loc {
            let connected = crate::control::connect(root, system_uuid_for_writing()?);
            match connected.map_err(|e| client_mount(root, e))? {
                Connect::Ready(c) => {
                    return Ok(WriteSession {
                        dev_size: c.dev_size,
                        meta: Meta::Remote(c),
                        data: Data::Mount(root.clone()),
                    });
                }
                Connect::Unavailable(why) => tracing::debug!(
                    "{}: no control channel ({why}); appending to the log in this process",
                    root.display()
                ),
            }
        }
        let open = crate::cmd::open_writable(loc, how)?;
        Ok(WriteSession {
            dev_size: open.fs.superblock().dev_size,
            meta: Meta::Local(Box::new(open.fs)),
            data: open.data,
        })
    }

    /// The device size from the superblock.
    pub fn dev_size(&self) -> u64 {
        self.dev_size
    }

    /// Whether the daemon appends for this session.
    pub fn through_daemon(&self) -> bool {
        matches!(self.meta, Meta::Remote(_))
    }

    /// Access to file bytes.
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// Start appending: in this process, take the log lock (held until the returned value
    /// drops); through the daemon, nothing is held between requests.
    pub fn begin(&mut self) -> Result<(Box<dyn LogOps + '_>, &Data)> {
        let ops: Box<dyn LogOps + '_> = match &mut self.meta {
            Meta::Local(fs) => Box::new(LocalOps(fs.writer()?)),
            Meta::Remote(c) => Box::new(RemoteOps(c)),
        };
        Ok((ops, &self.data))
    }
}

/// A daemon that serves the mount as a client refuses appends with EROFS: say so as an
/// in-process writer does.
fn client_mount(root: &Path, e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<OpError>() {
        Some(op) if op.errno() == libc::EROFS => crate::cmd::client_mount_error(root).unwrap_or(e),
        _ => e,
    }
}

/// Appending in this process.
struct LocalOps<'a>(Writer<'a, Box<dyn Media>>);

impl LogOps for LocalOps<'_> {
    fn lookup(&mut self, rel: &Path) -> Result<Option<Found>> {
        Ok(lookup(self.0.famfs(), rel)?.map(|(_, n)| match &n.kind {
            NodeKind::Dir(_) => Found::Dir(n.attr),
            NodeKind::File(f) => Found::File(n.attr, f.clone()),
        }))
    }

    fn create(
        &mut self,
        rel: &Path,
        size: u64,
        attr: Attr,
        policy: &AllocPolicy,
    ) -> Result<FileNode, OpError> {
        let (ino, _) = self.0.create(rel, size, attr, policy)?;
        let ns = self.0.famfs().state().namespace();
        ns.get(ino)
            .and_then(|n| n.as_file())
            .cloned()
            .ok_or_else(|| internal(format!("{}: created but not in the tree", rel.display())))
    }

    fn mkdir(&mut self, rel: &Path, attr: Attr) -> Result<(), OpError> {
        self.0.mkdir(rel, attr)?;
        Ok(())
    }

    fn mkdir_p(
        &mut self,
        rel: &Path,
        attr: Attr,
        created: &mut dyn FnMut(&Path),
    ) -> Result<(), OpError> {
        self.0.mkdir_p_with(rel, attr, |p| {
            created(p);
            Ok::<(), LogError>(())
        })?;
        Ok(())
    }

    fn append_file(&mut self, entry: FileEntry) -> Result<u64, OpError> {
        Ok(self.0.append(&LogEntry::File(entry))?.0)
    }
}

fn internal(msg: String) -> OpError {
    OpError {
        errno: libc::EIO,
        msg,
        source: None,
    }
}

/// Appending through the daemon.
struct RemoteOps<'a>(&'a mut Client);

impl RemoteOps<'_> {
    /// Send `req`; a broken channel becomes an EIO error.
    fn call(&mut self, req: &Request) -> Result<Answer, OpError> {
        match self.0.call(req) {
            Ok(r) => r.map_err(OpError::from),
            Err(e) => Err(internal(format!("{e:#}"))),
        }
    }
}

fn unexpected(a: &Answer) -> OpError {
    internal(format!("unexpected answer from the famfs daemon: {a:?}"))
}

/// A lookup's error, as [`LocalOps`] gives it (`rel: message`, the errno as exit status).
fn lookup_error(rel: &Path, e: &WireError) -> anyhow::Error {
    fail(e.errno, format!("{}: {}", display_rel(rel), e.message()))
}

/// A node the daemon reported.
fn found_of(rel: &Path, n: WireNode) -> Result<Found, OpError> {
    Ok(match n.file {
        None => Found::Dir(n.attr.into()),
        Some(f) => Found::File(
            n.attr.into(),
            f.to_file_node()
                .map_err(|e| internal(format!("{}: {e}", display_rel(rel))))?,
        ),
    })
}

/// The file the daemon logged.
fn logged_file(rel: &Path, a: Answer) -> Result<FileNode, OpError> {
    match a {
        Answer::Logged {
            node: Some(n @ WireNode { file: Some(_), .. }),
            ..
        } => match found_of(rel, n)? {
            Found::File(_, f) => Ok(f),
            Found::Dir(_) => Err(internal(format!(
                "{}: logged as a directory",
                rel.display()
            ))),
        },
        other => Err(unexpected(&other)),
    }
}

impl RemoteOps<'_> {
    fn create_req(
        &self,
        rel: &Path,
        size: u64,
        attr: Attr,
        policy: &AllocPolicy,
        existing: bool,
    ) -> Request {
        Request::Create {
            path: WirePath::of(rel),
            size,
            attr: attr.into(),
            policy: policy.into(),
            existing,
        }
    }
}

impl LogOps for RemoteOps<'_> {
    fn lookup(&mut self, rel: &Path) -> Result<Option<Found>> {
        let req = Request::Lookup {
            path: WirePath::of(rel),
        };
        match self.0.call(&req)? {
            Ok(Answer::Node { node: None }) => Ok(None),
            Ok(Answer::Node { node: Some(n) }) => Ok(Some(found_of(rel, n)?)),
            Ok(other) => Err(unexpected(&other).into()),
            Err(e) => Err(lookup_error(rel, &e)),
        }
    }

    fn create(
        &mut self,
        rel: &Path,
        size: u64,
        attr: Attr,
        policy: &AllocPolicy,
    ) -> Result<FileNode, OpError> {
        let req = self.create_req(rel, size, attr, policy, false);
        logged_file(rel, self.call(&req)?)
    }

    fn find_or_create(
        &mut self,
        rel: &Path,
        size: u64,
        attr: Attr,
        policy: &AllocPolicy,
    ) -> Result<Result<Placed, OpError>> {
        let req = self.create_req(rel, size, attr, policy, true);
        Ok(match self.0.call(&req)? {
            Ok(Answer::Node { node: Some(n) }) => found_of(rel, n).map(Placed::Existing),
            Ok(a) => logged_file(rel, a).map(Placed::Created),
            // With `existing`, a path through a file is refused by the lookup (see the protocol).
            Err(e) if e.kind == ErrorKind::NotADirectory => return Err(lookup_error(rel, &e)),
            Err(e) => Err(e.into()),
        })
    }

    fn mkdir(&mut self, rel: &Path, attr: Attr) -> Result<(), OpError> {
        self.mkdir_req(rel, attr, false, &mut |_| {})
    }

    fn mkdir_p(
        &mut self,
        rel: &Path,
        attr: Attr,
        created: &mut dyn FnMut(&Path),
    ) -> Result<(), OpError> {
        self.mkdir_req(rel, attr, true, created)
    }

    fn append_file(&mut self, entry: FileEntry) -> Result<u64, OpError> {
        let req = Request::AppendFile {
            path: WirePath::of(&entry.path),
            size: entry.size(),
            flags: entry.flags,
            attr: WireAttr {
                mode: entry.mode,
                uid: entry.uid,
                gid: entry.gid,
            },
            fmap: WireFmap::from(&entry.fmap),
        };
        match self.call(&req)? {
            Answer::Logged { index, .. } => Ok(index),
            other => Err(unexpected(&other)),
        }
    }
}

impl RemoteOps<'_> {
    fn mkdir_req(
        &mut self,
        rel: &Path,
        attr: Attr,
        parents: bool,
        created: &mut dyn FnMut(&Path),
    ) -> Result<(), OpError> {
        let req = Request::Mkdir {
            path: WirePath::of(rel),
            attr: attr.into(),
            parents,
        };
        match self.call(&req)? {
            Answer::Dirs {
                created: made,
                error,
            } => {
                for p in &made {
                    created(&p.to_path());
                }
                error.map_or(Ok(()), |e| Err(e.into()))
            }
            other => Err(unexpected(&other)),
        }
    }
}
