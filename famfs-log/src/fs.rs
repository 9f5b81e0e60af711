//! [`Famfs`]: an open file system — superblock, log, and the state replayed from it — and
//! [`Writer`], the master's locked session for appending. Noticing that the log was rewritten
//! under an open file system, and replaying it again, is in `rewrite`.

use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use famfs_fsdev::{Media, MediaLock};
use uuid::Uuid;

use crate::alloc::{AllocPolicy, Allocator, BucketRng};
use crate::entry::{DirEntry, EntryError, FileEntry, LogEntry, check_integrity};
use crate::header::{COUNTERS_OFFSET, LogHeader};
use crate::layout::{FM_ALL_HOSTS_RW, LOG_ENTRY_SIZE, LOG_HEADER_SIZE, entry_offset};
use crate::namespace::{Attr, Ino};
use crate::path::{check_not_reserved, check_relpath};
use crate::prefetch;
use crate::replay::{Applied, LogState, Problem};
use crate::role::Role;
use crate::superblock::Superblock;
use crate::{LogError, OffsetMedia};

/// How replay treats an entry that fails its CRC or seqnum check (after one re-read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplayMode {
    /// Stop before it and try again on the next [`Famfs::refresh`]: the entry may still be in
    /// flight from the master (on non-coherent memory the header can become visible first).
    /// This is what the reference's logplay does.
    #[default]
    Strict,
    /// Count it as bad and go on, as the reference's fsck and allocator do.
    Lenient,
}

/// Options for [`Famfs::open`].
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// This host's system UUID (decides master or client). `None` means client.
    pub system_uuid: Option<Uuid>,
    /// The real device size, when known: a superblock claiming more is refused.
    pub device_size: Option<u64>,
    /// Treatment of unreadable entries.
    pub replay: ReplayMode,
    /// Owner and mode of the root directory (default root:root 0755).
    pub root: Option<Attr>,
    /// Add `.meta/.superblock` and `.meta/.log` (inodes 2–4) before replaying, as a mounted
    /// file system shows them; `.log` is 0644 for the master and 0444 for clients.
    pub meta_files: bool,
    /// Keep no file maps: every file node gets one shared empty map. For reports that need the
    /// tree, the counts and the allocation bitmap but not where each file's bytes are (fsck,
    /// logplay): replay then allocates two blocks fewer per file. Placement and overlaps are
    /// checked as always.
    pub skip_maps: bool,
}

/// What a [`Famfs::refresh`] picked up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshReport {
    /// Entries examined.
    pub entries: u64,
    /// Files added to the tree.
    pub files: Vec<Ino>,
    /// Directories added to the tree.
    pub dirs: Vec<Ino>,
    /// Entries skipped.
    pub problems: Vec<Problem>,
    /// In strict mode: the slot replay stopped at, and why.
    pub stalled: Option<(u64, EntryError)>,
}

/// Entries read per bulk read during replay (just under 128 KiB: the buffer stays in the L2
/// cache and in the heap, instead of a fresh 1 MiB mapping that costs 256 page faults).
const REPLAY_BATCH: u64 = 240;

/// An open famfs: checked superblock and log header, and the state replayed from the log.
#[derive(Debug)]
pub struct Famfs<L: Media> {
    pub(crate) log: L,
    pub(crate) sb: Superblock,
    pub(crate) header: LogHeader,
    pub(crate) state: LogState,
    /// How it was opened (this host, root, meta files, device size): to replay it again.
    pub(crate) opts: OpenOptions,
    pub(crate) mode: ReplayMode,
    /// Index and stored CRC of the last entry replayed that passed its integrity check: if the
    /// log no longer holds it, the log was rewritten under us.
    pub(crate) last: Option<(u64, u64)>,
}

impl<L: Media> Famfs<L> {
    /// Open a file system from its superblock (see [`Superblock::read`]) and its log (a media
    /// whose offset 0 is the log start, e.g. a mounted `.meta/.log`), then replay the log.
    /// A device or mapping holding both goes through [`Famfs::open_device`] instead.
    pub fn open(sb: Superblock, log: L, opts: OpenOptions) -> Result<Self, LogError> {
        let state = Self::fresh_state(&sb, &log, &opts)?;
        let mut fs = Famfs {
            log,
            header: LogHeader::empty(sb.log_len),
            sb,
            state,
            mode: opts.replay,
            opts,
            last: None,
        };
        fs.refresh()?;
        Ok(fs)
    }

    /// Open from a media holding the whole metadata region with device offsets (superblock at
    /// 0, log at 2 MiB), e.g. a [`famfs_fsdev::Mapping`] of the device.
    pub fn open_device(dev: L, opts: OpenOptions) -> Result<Famfs<OffsetMedia<L>>, LogError> {
        let sb = Superblock::read(&dev)?;
        let log_size = sb.log_len.min(dev.size().saturating_sub(sb.log_offset));
        let log = OffsetMedia::new(dev, sb.log_offset, log_size)?;
        Famfs::open(sb, log, opts)
    }

    /// The superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// The log header as last read.
    pub fn header(&self) -> &LogHeader {
        &self.header
    }

    /// The replayed state (tree, bitmap, counters, problems).
    pub fn state(&self) -> &LogState {
        &self.state
    }

    /// The replayed state, mutable (to add nodes that are not in the log).
    pub fn state_mut(&mut self) -> &mut LogState {
        &mut self.state
    }

    /// This host's role.
    pub fn role(&self) -> Role {
        Role::of(Some(&self.sb), self.opts.system_uuid)
    }

    /// The log media.
    pub fn log_media(&self) -> &L {
        &self.log
    }

    /// The same file system over a boxed log media, so that file systems opened from different
    /// media (a device mapping, a mounted `.meta/.log`) have one type.
    pub fn into_dyn(self) -> Famfs<Box<dyn Media>>
    where
        L: 'static,
    {
        Famfs {
            log: Box::new(self.log),
            sb: self.sb,
            header: self.header,
            state: self.state,
            opts: self.opts,
            mode: self.mode,
            last: self.last,
        }
    }

    pub(crate) fn read_header(&self) -> Result<LogHeader, LogError> {
        let mut b = [0u8; LOG_HEADER_SIZE];
        self.log.invalidate(0, LOG_HEADER_SIZE as u64)?;
        self.log.read_at(0, &mut b)?;
        let h = LogHeader::parse(&b)?;
        h.check(self.sb.log_len)?;
        Ok(h)
    }

    /// Whether the log holds entries not replayed yet: a read of the log header and of the
    /// last entry replayed (two cache lines and a slot), much cheaper than
    /// [`Famfs::refresh`]. An unreadable header is an error, and so is a log that no longer
    /// holds what was replayed ([`LogError::Rewritten`]: see [`Famfs::reload`]).
    pub fn has_new_entries(&self) -> Result<bool, LogError> {
        let h = self.read_header()?;
        self.check_replayed(&h)?;
        Ok(h.next_index > self.state.applied())
    }

    /// Pick up entries appended since the last replay (by this process or any other host).
    /// A log that no longer holds what was replayed (re-formatted, rewritten, its counters
    /// gone backwards) is [`LogError::Rewritten`], and nothing is applied.
    pub fn refresh(&mut self) -> Result<RefreshReport, LogError> {
        let h = self.read_header()?;
        self.check_replayed(&h)?;
        let start = self.state.applied();
        self.header = h;
        // Size the tree for what the header announces before replaying it.
        self.state.reserve(h.next_index - start);
        // The node table `reserve` made room for is faulted in by the reader thread.
        let nodes = self.state.namespace().reserved_node_memory();
        let prefault = move || famfs_fsdev::prefault_for_writing(nodes);
        let mut r = Replayer {
            log: &self.log,
            state: &mut self.state,
            last: &mut self.last,
            mode: self.mode,
            report: RefreshReport::default(),
        };
        prefetch::for_each_batch(r.log, (start, h.next_index), REPLAY_BATCH, prefault, |b| {
            for ((idx, slot), &ok) in b.slots().zip(&b.ok) {
                if r.slot(idx, slot, ok)?.is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
            Ok::<_, LogError>(ControlFlow::Continue(()))
        })?;
        Ok(r.report)
    }

    /// Start a writing session: requires the master role, takes the exclusive log lock (held
    /// until the [`Writer`] drops), and catches up with the log first. Unreadable entries are
    /// skipped here whatever the replay mode, since the writer appends after them anyway.
    pub fn writer(&mut self) -> Result<Writer<'_, L>, LogError> {
        if self.role() != Role::Master {
            return Err(LogError::NotMaster {
                local: self
                    .opts
                    .system_uuid
                    .map_or_else(|| "unknown".to_string(), |u| u.to_string()),
                owner: self.sb.system_uuid,
            });
        }
        let lock = self.log.lock_exclusive()?;
        let mode = std::mem::replace(&mut self.mode, ReplayMode::Lenient);
        let r = self.refresh();
        self.mode = mode;
        r?;
        Ok(Writer {
            fs: self,
            _lock: lock,
            cursor: 0,
            rng: BucketRng::from_entropy(),
        })
    }
}

/// One replay pass: applies slots to the state in log order and reports what it did.
struct Replayer<'a, L: Media> {
    log: &'a L,
    state: &'a mut LogState,
    last: &'a mut Option<(u64, u64)>,
    mode: ReplayMode,
    report: RefreshReport,
}

impl<L: Media> Replayer<'_, L> {
    /// Apply slot `idx` (bytes `slot`, integrity `ok` as read). A slot that failed its check
    /// is read once more (a stale cache line or an entry still in flight); if it fails again,
    /// strict replay stops before it and lenient replay counts it as bad.
    fn slot(
        &mut self,
        idx: u64,
        slot: &[u8; LOG_ENTRY_SIZE],
        ok: bool,
    ) -> Result<ControlFlow<()>, LogError> {
        let mut again = [0u8; LOG_ENTRY_SIZE];
        let slot = if ok {
            slot
        } else {
            self.log
                .invalidate(entry_offset(idx), LOG_ENTRY_SIZE as u64)?;
            self.log.read_at(entry_offset(idx), &mut again)?;
            if let Err(e) = check_integrity(&again, idx) {
                if self.mode == ReplayMode::Strict {
                    self.report.stalled = Some((idx, e));
                    return Ok(ControlFlow::Break(()));
                }
                self.report.entries += 1;
                if let Applied::Skipped(p) = self.state.skip_bad(idx, e) {
                    self.report.problems.push(p);
                }
                return Ok(ControlFlow::Continue(()));
            }
            &again
        };
        self.report.entries += 1;
        *self.last = Some((idx, entry_crc(slot)));
        match self.state.apply_checked(idx, slot) {
            Applied::File(ino) => self.report.files.push(ino),
            Applied::Dir(ino) => self.report.dirs.push(ino),
            Applied::Skipped(p) => self.report.problems.push(p),
            Applied::DirExisted(_) | Applied::Ignored => {}
        }
        Ok(ControlFlow::Continue(()))
    }
}

/// The CRC an entry stores (its last 8 bytes), which identifies it.
pub(crate) fn entry_crc(slot: &[u8; LOG_ENTRY_SIZE]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&slot[crate::layout::LOG_ENTRY_CRC_LEN..]);
    u64::from_le_bytes(b)
}

/// The master's locked session: every create and mkdir is appended to the log and applied to
/// the in-memory state. The lock is released when the writer drops.
#[derive(Debug)]
pub struct Writer<'a, L: Media> {
    fs: &'a mut Famfs<L>,
    _lock: MediaLock,
    cursor: u64,
    rng: BucketRng,
}

fn rel(path: &Path) -> Result<&[u8], LogError> {
    let b = path.as_os_str().as_bytes();
    check_relpath(b)
        .and_then(|()| check_not_reserved(b))
        .map_err(|problem| LogError::Path {
            path: path.to_path_buf(),
            problem,
        })?;
    Ok(b)
}

impl<L: Media> Writer<'_, L> {
    /// The file system being written.
    pub fn famfs(&self) -> &Famfs<L> {
        self.fs
    }

    /// Where the next contiguous allocation starts looking (next fit). A session that spans
    /// several writers (a daemon serving one client's requests, each under its own lock) carries
    /// it from one to the next with [`Writer::set_cursor`], so it places files exactly as one
    /// writer would.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Set where the next contiguous allocation starts looking (see [`Writer::cursor`]).
    pub fn set_cursor(&mut self, cursor: u64) {
        self.cursor = cursor;
    }

    /// Seed the bucket order of interleaved allocation (for reproducible tests).
    pub fn set_seed(&mut self, seed: u64) {
        self.rng = BucketRng::new(seed);
    }

    /// Append `entry` in the next slot: write the entry, flush it, then advance and flush the
    /// header counters — so another host never sees the index cover an entry that is not in
    /// memory yet. The entry is then applied to the in-memory state like any replayed entry.
    pub fn append(&mut self, entry: &LogEntry) -> Result<(u64, Applied), LogError> {
        let h = self.fs.header;
        let index = h.next_index;
        if index >= h.slots() {
            return Err(LogError::LogFull { slots: h.slots() });
        }
        let bytes = entry.encode(index)?;
        let log = &self.fs.log;
        log.write_at(entry_offset(index), &bytes)?;
        log.flush(entry_offset(index), LOG_ENTRY_SIZE as u64)?;
        let next = LogHeader {
            next_seqnum: index + 1,
            next_index: index + 1,
            ..h
        };
        log.write_at(COUNTERS_OFFSET, &next.counter_bytes())?;
        log.flush(0, LOG_HEADER_SIZE as u64)?;
        self.fs.header = next;
        self.fs.last = Some((index, entry_crc(&bytes)));
        let applied = self.fs.state.apply(index, &bytes);
        Ok((index, applied))
    }

    /// Create directory `path` (relative); its parent must exist.
    pub fn mkdir(&mut self, path: &Path, attr: Attr) -> Result<Ino, LogError> {
        let p = rel(path)?;
        let (parent, name) = self.fs.state.namespace().parent_of(p)?;
        if self.fs.state.namespace().lookup(parent, name).is_some() {
            return Err(crate::namespace::NsError::Exists(path.to_path_buf()).into());
        }
        let entry = LogEntry::Mkdir(DirEntry {
            path: path.to_path_buf(),
            uid: attr.uid,
            gid: attr.gid,
            mode: attr.mode,
        });
        match self.append(&entry)? {
            (_, Applied::Dir(ino)) => Ok(ino),
            (index, other) => Err(LogError::Internal {
                index,
                why: format!("{other:?}"),
            }),
        }
    }

    /// Create directory `path` and any missing parents (all with `attr`); an existing
    /// directory is fine (the root, "", included), an existing file on the way is an error.
    pub fn mkdir_p(&mut self, path: &Path, attr: Attr) -> Result<Ino, LogError> {
        self.mkdir_p_with(path, attr, |_| Ok(()))
    }

    /// As [`Writer::mkdir_p`], calling `before_create(prefix)` before logging each missing
    /// directory (to veto it, or to report it); its error stops the walk.
    pub fn mkdir_p_with<E: From<LogError>>(
        &mut self,
        path: &Path,
        attr: Attr,
        mut before_create: impl FnMut(&Path) -> Result<(), E>,
    ) -> Result<Ino, E> {
        if path.as_os_str().is_empty() {
            return Ok(crate::namespace::ROOT_INO);
        }
        let p = rel(path)?;
        let mut prefix = std::path::PathBuf::new();
        let mut ino = crate::namespace::ROOT_INO;
        for comp in crate::path::components(p) {
            prefix.push(comp);
            let ns = self.fs.state.namespace();
            ino = match ns.lookup(ino, comp) {
                Some(child) if ns.get(child).is_some_and(|n| n.is_dir()) => child,
                Some(_) => {
                    return Err(
                        LogError::from(crate::namespace::NsError::NotADirectory(prefix)).into(),
                    );
                }
                None => {
                    before_create(&prefix)?;
                    self.mkdir(&prefix, attr)?
                }
            };
        }
        Ok(ino)
    }

    /// Allocate and log a new file of `size` bytes at `path` (relative; parent must exist).
    /// Returns its inode and the logged entry (with its extents). The data area is not touched:
    /// the caller writes the contents through the device mapping.
    pub fn create(
        &mut self,
        path: &Path,
        size: u64,
        attr: Attr,
        policy: &AllocPolicy,
    ) -> Result<(Ino, FileEntry), LogError> {
        let p = rel(path)?;
        let (parent, name) = self.fs.state.namespace().parent_of(p)?;
        if self.fs.state.namespace().lookup(parent, name).is_some() {
            return Err(crate::namespace::NsError::Exists(path.to_path_buf()).into());
        }
        let h = self.fs.header;
        if h.next_index >= h.slots() {
            return Err(LogError::LogFull { slots: h.slots() });
        }
        // The allocator only plans: the bits are claimed once, when the appended entry is
        // applied, exactly as every reader's replay claims them.
        let (bitmap, dev_size) = self.fs.state.alloc_parts();
        let alloc = Allocator::new(bitmap, dev_size);
        let mut cursor = self.cursor;
        let fmap = match policy {
            AllocPolicy::Contiguous => alloc.contiguous(size, &mut cursor)?,
            AllocPolicy::Interleaved(p) => alloc.interleaved(size, p, &mut self.rng)?,
        };
        let entry = FileEntry {
            path: path.to_path_buf(),
            flags: FM_ALL_HOSTS_RW,
            uid: attr.uid,
            gid: attr.gid,
            mode: attr.mode,
            fmap,
        };
        let appended = self.append(&LogEntry::File(entry.clone()))?;
        self.cursor = cursor;
        match appended {
            (_, Applied::File(ino)) => Ok((ino, entry)),
            (index, other) => Err(LogError::Internal {
                index,
                why: format!("{other:?}"),
            }),
        }
    }
}
