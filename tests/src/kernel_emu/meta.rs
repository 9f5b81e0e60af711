//! The daemon's own mount, as the famfs kernel serves it: when the daemon reads or appends its
//! meta files (`.meta/.superblock`, `.meta/.log`) through its mount, the kernel looks them up,
//! opens them, asks GET_FMAP once per inode, and then reaches their bytes on the device
//! through the map, with no READ or WRITE. [`EmuMount`] plays that part for a server driven by
//! the emulator: it is the server's [`MetaFiles`], sends each request through the server's
//! [`Adapter`] (the code its workers run), validates the map as the kernel does, and resolves
//! the accesses on the stand-in.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use famfs_fsdev::{FsdevError, Mapping, Media, MediaLock, MemMedia};
use famfs_server::Adapter;
use famfs_server::meta::{MetaFile, MetaFiles};
use fuse_famfs_proto::abi::{Opcode, OpenIn, ReleaseIn};
use fuse_famfs_proto::fmap::{FileOffset, FmapReply, Resolver};
use fuse_famfs_proto::reply::ReplyRef;
use fuse_famfs_proto::{AbiGeneration, Operation, Request};

/// The kernel's side of the daemon's own mount (see the module docs).
pub struct EmuMount {
    adapter: Arc<Adapter>,
    /// The device as the kernel's DAX reaches it.
    dax: Arc<Mapping>,
    state: Mutex<State>,
    lock: MemMedia,
}

#[derive(Default)]
struct State {
    unique: u64,
    /// Node ids of the looked-up meta files.
    nodes: HashMap<&'static str, u64>,
    /// Maps fetched (GET_FMAP), per node id: the kernel caches one per inode.
    maps: HashMap<u64, (Resolver, u64)>,
    /// Requests sent, per opcode.
    sent: BTreeMap<u32, u64>,
    /// GET_FMAP requests, per node id.
    fmaps: BTreeMap<u64, u64>,
}

impl std::fmt::Debug for EmuMount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmuMount").finish_non_exhaustive()
    }
}

fn fail(why: String) -> FsdevError {
    FsdevError::Io {
        what: "emulated mount",
        path: "/emulated-mount".into(),
        source: std::io::Error::other(why),
    }
}

fn errno(e: fuse_famfs_proto::Errno) -> FsdevError {
    FsdevError::Io {
        what: "emulated mount",
        path: "/emulated-mount".into(),
        source: std::io::Error::from_raw_os_error(e.get()),
    }
}

impl EmuMount {
    /// The mount of the server behind `adapter`, whose device the kernel reaches as `dax`.
    pub fn new(adapter: Arc<Adapter>, dax: Arc<Mapping>) -> EmuMount {
        EmuMount {
            adapter,
            dax,
            state: Mutex::new(State::default()),
            lock: MemMedia::new(1),
        }
    }

    /// How many requests of `opcode` the daemon's own accesses caused.
    pub fn sent(&self, opcode: Opcode) -> u64 {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.sent.get(&opcode.0).copied().unwrap_or(0)
    }

    /// GET_FMAP requests per node id.
    pub fn fmaps_per_node(&self) -> BTreeMap<u64, u64> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.fmaps.clone()
    }

    /// Send `op` for `nodeid` to the server and return the reply bytes.
    fn call(&self, s: &mut State, nodeid: u64, op: Operation<'_>) -> Result<Vec<u8>, FsdevError> {
        s.unique += 2;
        let opcode = op.opcode();
        *s.sent.entry(opcode.0).or_default() += 1;
        // Odd-looking but valid: the kernel's own uniques are even; these stay apart from the
        // emulator's by starting high.
        let req = Request::new((1 << 48) + s.unique, nodeid, op);
        let bytes = req
            .to_bytes()
            .map_err(|e| fail(format!("{opcode:?}: {e}")))?;
        let mut out = vec![0u8; self.adapter.fs().config().request_buffer_size()];
        match self.adapter.handle(&bytes, &mut out) {
            famfs_server::Reply::Bytes(n) | famfs_server::Reply::Last(n) => {
                out.truncate(n);
                Ok(out)
            }
            other => Err(fail(format!("{opcode:?}: unexpected reply {other:?}"))),
        }
    }

    /// The node id of `file`, looked up once (the kernel's dentry cache).
    fn node(&self, s: &mut State, file: MetaFile) -> Result<u64, FsdevError> {
        if let Some(&n) = s.nodes.get(file.path()) {
            return Ok(n);
        }
        let mut parent = fuse_famfs_proto::abi::FUSE_ROOT_ID;
        for name in file.path().split('/') {
            let r = self.call(
                s,
                parent,
                Operation::Lookup {
                    name: name.as_bytes(),
                },
            )?;
            let e = ReplyRef::parse(&r)
                .and_then(|r| r.entry())
                .map_err(|e| fail(format!("LOOKUP {name}: {e}")))?;
            parent = e.nodeid;
        }
        s.nodes.insert(file.path(), parent);
        Ok(parent)
    }
}

impl MetaFiles for EmuMount {
    fn open(&self, file: MetaFile, write: bool) -> Result<Box<dyn Media>, FsdevError> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let nodeid = self.node(&mut s, file)?;
        let flags = if write { libc::O_RDWR } else { libc::O_RDONLY } as u32;
        let r = self.call(
            &mut s,
            nodeid,
            Operation::Open(OpenIn {
                flags,
                open_flags: 0,
            }),
        )?;
        let o = ReplyRef::parse(&r)
            .and_then(|r| r.open())
            .map_err(|e| match e {
                fuse_famfs_proto::reply::ReplyError::Errno(e) => errno(e),
                e => fail(format!("OPEN: {e}")),
            })?;
        if !s.maps.contains_key(&nodeid) {
            *s.fmaps.entry(nodeid).or_default() += 1;
            let r = self.call(&mut s, nodeid, Operation::GetFmap { size: None })?;
            let msg = match ReplyRef::parse(&r).and_then(|r| r.fmap(AbiGeneration::V1, 4096, false))
            {
                Ok(FmapReply::Fmap(m)) => m,
                Ok(FmapReply::Retry { buffer }) => {
                    return Err(fail(format!("GET_FMAP asks for {buffer} bytes")));
                }
                Err(e) => return Err(fail(format!("GET_FMAP: {e}"))),
            };
            s.maps
                .insert(nodeid, (msg.fmap.resolver(), msg.fmap.file_size));
        }
        // The access itself needs no request; close(2) sends FLUSH and RELEASE.
        let release = ReleaseIn {
            fh: o.fh,
            flags,
            ..Default::default()
        };
        self.call(&mut s, nodeid, Operation::Release(release))?;
        let (resolver, size) = s.maps[&nodeid].clone();
        Ok(Box::new(DaxFile {
            resolver,
            size,
            dax: Arc::clone(&self.dax),
            write,
            lock: self.lock.clone(),
        }))
    }

    fn describe(&self) -> String {
        "emulated famfs mount".into()
    }
}

/// A meta file's bytes as the kernel reaches them: through its map, on the device.
struct DaxFile {
    resolver: Resolver,
    size: u64,
    dax: Arc<Mapping>,
    write: bool,
    lock: MemMedia,
}

impl DaxFile {
    /// Call `f(mapping offset, range of the buffer)` for each contiguous piece of
    /// `[off, off + len)`.
    fn pieces(
        &self,
        off: u64,
        len: usize,
        mut f: impl FnMut(u64, std::ops::Range<usize>) -> Result<(), FsdevError>,
    ) -> Result<(), FsdevError> {
        let end = off
            .checked_add(len as u64)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| fail(format!("access [{off}, +{len}) past {}", self.size)))?;
        let mut pos = off;
        while pos < end {
            let r = self
                .resolver
                .resolve(FileOffset(pos))
                .ok_or_else(|| fail(format!("offset {pos} does not resolve")))?;
            let n = r.contiguous_len.min(end - pos);
            let local = r
                .dev_offset
                .0
                .checked_sub(self.dax.device_offset())
                .ok_or_else(|| fail("outside the device".into()))?;
            let at = (pos - off) as usize;
            f(local, at..at + n as usize)?;
            pos += n;
        }
        Ok(())
    }
}

impl Media for DaxFile {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), FsdevError> {
        self.pieces(off, buf.len(), |local, r| self.dax.read(local, &mut buf[r]))
    }
    fn write_at(&self, off: u64, data: &[u8]) -> Result<(), FsdevError> {
        if !self.write {
            return Err(FsdevError::ReadOnly("emulated mount".into()));
        }
        self.pieces(off, data.len(), |local, r| self.dax.write(local, &data[r]))
    }
    fn flush(&self, off: u64, len: u64) -> Result<(), FsdevError> {
        self.pieces(off, len as usize, |local, r| {
            Mapping::flush(&self.dax, local, r.len())
        })
    }
    fn invalidate(&self, _off: u64, _len: u64) -> Result<(), FsdevError> {
        Ok(())
    }
    fn lock_exclusive(&self) -> Result<MediaLock, FsdevError> {
        self.lock.lock_exclusive()
    }
    fn describe(&self) -> String {
        "emulated famfs mount".into()
    }
}
