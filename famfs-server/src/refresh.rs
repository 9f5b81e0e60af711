//! The replayed log the request handlers share, and keeping it true to the media:
//!
//! * New entries: a cheap look at the log (header, last entry replayed, superblock), a replay
//!   under the write lock only when it says there is something new, and the stall policy (an
//!   unreadable entry holds back the entries after it for at most `Config::stall_timeout`,
//!   then it is skipped with an error).
//! * A log rewritten under the mount (another host re-formatted the device, or rewrote, zeroed
//!   or rewound the log): the same look notices it ([`famfs_log::Rewritten`]), and the log is
//!   replayed from scratch into a new tree swapped in under the write lock. The new tree's log
//!   nodes have inode numbers the old tree never used, and an old number answers ESTALE, so
//!   the kernel looks its name up again and no old name is ever served with a new file's bytes.
//! * A media that holds no valid famfs any more (zeroed log, bad superblock, a device that
//!   shrank so the log cannot be read): every request gets EIO, with one error line saying why,
//!   until the media holds a valid famfs again.
//!
//! The log is reached only through [`Famfs`], whatever its media (the device mapping, or the
//! in-memory copy of `.meta/.log`), and the superblock through an optional second media (the
//! device, or the copy of `.meta/.superblock`), for the UUID check. When the metadata is read
//! through the daemon's own mount ([`MountedMeta`]), a refresh first fetches the new bytes into
//! the copies with no tree lock held (the reads are FUSE requests this daemon's workers answer),
//! then replays them from memory under the lock.

use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use famfs_fsdev::Media;
use famfs_log::namespace::{Ino, Node};
use famfs_log::role::Role;
use famfs_log::superblock::Superblock;
use famfs_log::{Famfs, LogError};
use fuse_famfs_proto::Errno;

use crate::meta::MountedMeta;

/// The tree being served, and whether it may be.
#[derive(Debug)]
struct Served<L: Media> {
    fs: Famfs<L>,
    /// Why nothing is served (the media holds no valid famfs), or `None`.
    stopped: Option<String>,
    /// Inode numbers below this that the tree lacks belonged to a tree it replaced.
    stale_below: Ino,
    /// Bumped each time the tree is replaced.
    generation: u64,
}

/// ESTALE: a file handle (here an inode number) of a tree that was replaced.
const ESTALE: Errno = Errno::new_clamped(libc::ESTALE);

/// A media holding the superblock at offset 0 (the device).
pub(crate) struct SuperblockMedia(pub(crate) Box<dyn Media>);

impl std::fmt::Debug for SuperblockMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SuperblockMedia")
            .field(&self.0.describe())
            .finish()
    }
}

/// The log, its lock, and the entry currently stalling replay.
#[derive(Debug)]
pub(crate) struct SharedLog<L: Media> {
    inner: RwLock<Served<L>>,
    /// Where the superblock is read again (the device), if there is such a media.
    superblock: Option<SuperblockMedia>,
    /// The role the file system was opened with (fixed for the daemon's life).
    role: Role,
    /// The entry index that did not validate, and since when.
    stall: Mutex<Option<(u64, Instant)>>,
    stall_timeout: Duration,
    /// Where the copies the log media holds are fetched from, if the metadata is read through
    /// the own mount.
    mounted: Option<Arc<MountedMeta>>,
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refreshed {
    /// Nothing changed.
    Nothing,
    /// Entries were added to the tree.
    Added,
    /// The tree was replaced (or serving stopped or resumed): caches by inode are stale.
    Replaced,
}

/// What a look at the media found.
enum Look {
    Current,
    New,
    Rewritten(String),
    Invalid(String),
}

/// The served tree, for reading; see [`SharedLog::read`].
pub(crate) struct LogGuard<'a, L: Media>(RwLockReadGuard<'a, Served<L>>);

impl<L: Media> Deref for LogGuard<'_, L> {
    type Target = Famfs<L>;
    fn deref(&self) -> &Famfs<L> {
        &self.0.fs
    }
}

impl<L: Media> LogGuard<'_, L> {
    /// Node `ino`: ENOENT if there is none, ESTALE if it belonged to a tree that was replaced
    /// (the kernel then looks its name up again).
    pub(crate) fn node(&self, ino: Ino) -> Result<&Node, Errno> {
        self.0.fs.state().namespace().get(ino).ok_or({
            if ino < self.0.stale_below {
                ESTALE
            } else {
                Errno::ENOENT
            }
        })
    }

    /// Which tree this is: bumped each time the tree is replaced.
    pub(crate) fn generation(&self) -> u64 {
        self.0.generation
    }
}

/// The served tree, for appending to it (the control channel); see [`SharedLog::write_log`].
pub(crate) struct LogWriteGuard<'a, L: Media>(RwLockWriteGuard<'a, Served<L>>);

impl<L: Media> Deref for LogWriteGuard<'_, L> {
    type Target = Famfs<L>;
    fn deref(&self) -> &Famfs<L> {
        &self.0.fs
    }
}

impl<L: Media> std::ops::DerefMut for LogWriteGuard<'_, L> {
    fn deref_mut(&mut self) -> &mut Famfs<L> {
        &mut self.0.fs
    }
}

impl<L: Media> SharedLog<L> {
    /// Shares `log`; `superblock` is where the superblock can be read again (the device), if
    /// anywhere; an unreadable entry is skipped after `stall_timeout`.
    pub(crate) fn new(
        log: Famfs<L>,
        superblock: Option<SuperblockMedia>,
        stall_timeout: Duration,
    ) -> Self {
        SharedLog {
            role: log.role(),
            inner: RwLock::new(Served {
                fs: log,
                stopped: None,
                stale_below: Ino::new(0),
                generation: 0,
            }),
            superblock,
            stall: Mutex::new(None),
            stall_timeout,
            mounted: None,
        }
    }

    /// The same, its media being copies fetched from `m` (the own mount).
    pub(crate) fn with_mounted(mut self, m: Arc<MountedMeta>) -> Self {
        self.mounted = Some(m);
        self
    }

    /// The metadata source, when it is the own mount.
    pub(crate) fn mounted(&self) -> Option<&Arc<MountedMeta>> {
        self.mounted.as_ref()
    }

    /// The first log entry a fetch must read again: the last one replayed (to notice a
    /// rewritten log), then the new ones.
    pub(crate) fn replayed_from(&self) -> u64 {
        let s = self.inner.read().unwrap_or_else(|p| p.into_inner());
        s.fs.state().applied().saturating_sub(1)
    }

    /// Fetch new bytes from the own mount into the copies (no tree lock held during the I/O);
    /// everything again if the copy shows a rewritten log. On failure serving stops, and
    /// `Err` is what the refresh did.
    fn prefetch(&self, m: &MountedMeta, io: &MutexGuard<'_, ()>) -> Result<(), Refreshed> {
        let failed = |e: famfs_fsdev::FsdevError| {
            if m.gone() {
                tracing::debug!("the mount is gone: {e}");
                return Refreshed::Nothing;
            }
            let mut s = self.write();
            let was = s.stopped.is_some();
            Self::stop(
                &mut s,
                format!("cannot read the metadata through the mount: {e}"),
            );
            if was {
                Refreshed::Nothing
            } else {
                Refreshed::Replaced
            }
        };
        m.fetch(io, self.replayed_from()).map_err(failed)?;
        let rewritten = {
            let s = self.inner.read().unwrap_or_else(|p| p.into_inner());
            matches!(self.look(&s.fs), Look::Rewritten(_))
        };
        if rewritten {
            m.fetch(io, 0).map_err(failed)?;
        }
        Ok(())
    }

    /// A refresh a FUSE request handler may do: none when the metadata is read through the
    /// own mount (the handler's worker may be the one that must answer that read; the watcher
    /// picks new entries up), else [`SharedLog::refresh`].
    pub(crate) fn refresh_from_handler(&self) -> Refreshed {
        if self.mounted.is_some() {
            return Refreshed::Nothing;
        }
        self.refresh()
    }

    /// The tree, for reading; EIO while the media holds no valid famfs. (A handler that
    /// panicked does not poison it: the tree is only changed by whole replays.)
    pub(crate) fn read(&self) -> Result<LogGuard<'_, L>, Errno> {
        let g = self.inner.read().unwrap_or_else(|p| p.into_inner());
        if g.stopped.is_some() {
            return Err(Errno::EIO);
        }
        Ok(LogGuard(g))
    }

    /// The tree, for appending to it; EIO while the media holds no valid famfs.
    pub(crate) fn write_log(&self) -> Result<LogWriteGuard<'_, L>, Errno> {
        let g = self.write();
        if g.stopped.is_some() {
            return Err(Errno::EIO);
        }
        Ok(LogWriteGuard(g))
    }

    fn write(&self) -> RwLockWriteGuard<'_, Served<L>> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Look at the media: superblock (if reachable), log header and last entry replayed.
    fn look(&self, fs: &Famfs<L>) -> Look {
        if let Some(m) = &self.superblock {
            match Superblock::read(m.0.as_ref()) {
                Ok(sb) => {
                    if let Err(r) = fs.check_superblock(&sb) {
                        return Look::Rewritten(r.to_string());
                    }
                }
                Err(e) => return Look::Invalid(format!("cannot read the superblock: {e}")),
            }
        }
        match fs.has_new_entries() {
            Ok(true) => Look::New,
            Ok(false) => Look::Current,
            Err(LogError::Rewritten(r)) => Look::Rewritten(r.to_string()),
            Err(e) => Look::Invalid(format!("cannot read the log: {e}")),
        }
    }

    /// Bring the tree up to date with the media: replay new entries, replay from scratch if
    /// the log was rewritten, stop serving (EIO) if the media holds no valid famfs, resume
    /// when it does again.
    pub(crate) fn refresh(&self) -> Refreshed {
        let _io = match &self.mounted {
            Some(m) => {
                let io = m.lock_io();
                if let Err(r) = self.prefetch(m, &io) {
                    return r;
                }
                Some(io)
            }
            None => None,
        };
        {
            let s = self.inner.read().unwrap_or_else(|p| p.into_inner());
            if s.stopped.is_none() && matches!(self.look(&s.fs), Look::Current) {
                return Refreshed::Nothing;
            }
        }
        let mut s = self.write();
        let look = self.look(&s.fs);
        let resumed = match (&look, s.stopped.take()) {
            (Look::Current | Look::New, Some(_)) => {
                tracing::warn!(
                    "{}: the log is readable again and unchanged; serving",
                    s.fs.log_media().describe()
                );
                true
            }
            (_, stopped) => {
                s.stopped = stopped;
                false
            }
        };
        let done = match look {
            Look::Current => Refreshed::Nothing,
            Look::New => self.replay_new(&mut s),
            Look::Rewritten(why) => self.replay_from_scratch(&mut s, &why),
            Look::Invalid(why) => {
                Self::stop(&mut s, why);
                Refreshed::Replaced
            }
        };
        if resumed { Refreshed::Replaced } else { done }
    }

    /// Stop serving because of `why` (said once, not on every poll).
    fn stop(s: &mut Served<L>, why: String) {
        if s.stopped.as_deref() != Some(why.as_str()) {
            tracing::error!(
                "{}: {why}; stopped serving: every request gets EIO until the device holds a \
                 valid famfs again",
                s.fs.log_media().describe()
            );
        }
        s.stopped = Some(why);
    }

    /// Replay the entries appended since the last replay.
    fn replay_new(&self, s: &mut Served<L>) -> Refreshed {
        let before = s.fs.state().namespace().len();
        match s.fs.refresh() {
            Ok(report) => {
                for p in &report.problems {
                    tracing::warn!("{p}");
                }
                self.stall_policy(&mut s.fs, report.stalled);
            }
            // Rewritten between the look and the replay: the next refresh replays it.
            Err(LogError::Rewritten(r)) => tracing::warn!("{r}"),
            Err(e) => Self::stop(s, format!("cannot read the log: {e}")),
        }
        if s.fs.state().namespace().len() > before {
            Refreshed::Added
        } else {
            Refreshed::Nothing
        }
    }

    /// The media no longer holds what was replayed (`why`): replay it from scratch into a new
    /// tree, or stop serving if it holds no valid famfs (or one this host cannot serve in its
    /// role).
    fn replay_from_scratch(&self, s: &mut Served<L>, why: &str) -> Refreshed {
        let dev = s.fs.log_media().describe();
        let sb = match &self.superblock {
            Some(m) => match Superblock::read(m.0.as_ref()) {
                Ok(sb) => sb,
                Err(e) => {
                    Self::stop(s, format!("{why}, and the superblock cannot be read: {e}"));
                    return Refreshed::Replaced;
                }
            },
            None => s.fs.superblock().clone(),
        };
        let first_new = s.fs.state().namespace().next_ino();
        *self.stall.lock().unwrap_or_else(|p| p.into_inner()) = None;
        match s.fs.reload(sb) {
            Ok(report) if s.fs.role() == self.role => {
                for p in &report.problems {
                    tracing::warn!("{p}");
                }
                s.stale_below = first_new;
                s.generation += 1;
                s.stopped = None;
                let st = s.fs.state().stats();
                tracing::warn!(
                    "{dev}: {why}; replayed from scratch: {} files, {} directories (the files \
                     served before are gone: their inode numbers answer ESTALE)",
                    st.files,
                    st.dirs
                );
                self.stall_policy(&mut s.fs, report.stalled);
            }
            Ok(_) => Self::stop(
                s,
                format!(
                    "{why}, and the new file system has another master, which this host \
                     ({:?}) cannot serve; mount it again",
                    self.role
                ),
            ),
            Err(e) => Self::stop(s, format!("{why}, and it cannot be replayed: {e}")),
        }
        Refreshed::Replaced
    }

    /// After a replay that stopped at entry `stalled` (or got through): start the clock on a
    /// newly stalled entry, or skip it once it has been unreadable for the stall timeout.
    fn stall_policy(
        &self,
        log: &mut Famfs<L>,
        stalled: Option<(u64, famfs_log::entry::EntryError)>,
    ) {
        let mut stall = self.stall.lock().unwrap_or_else(|p| p.into_inner());
        let Some((idx, err)) = stalled else {
            *stall = None;
            return;
        };
        match *stall {
            Some((i, since)) if i == idx && since.elapsed() >= self.stall_timeout => {
                tracing::error!(
                    "log entry {idx} is still unreadable after {:?} ({err}); skipping it",
                    self.stall_timeout
                );
                log.state_mut().skip_bad(idx, err);
                *stall = None;
                drop(stall);
                let _ = log.refresh();
            }
            Some((i, _)) if i == idx => {}
            _ => {
                tracing::warn!("log entry {idx} is not readable yet ({err}); retrying");
                *stall = Some((idx, Instant::now()));
            }
        }
    }
}
