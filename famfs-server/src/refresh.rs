//! The replayed log the request handlers share, and picking up new entries: a cheap look at the
//! log header, a replay under the write lock only when it says there is something new, and the
//! stall policy (an unreadable entry holds back the entries after it for at most
//! `Config::stall_timeout`, then it is skipped with an error).
//!
//! The log is reached only through [`Famfs`], whatever its media (the device mapping today).

use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use famfs_fsdev::Media;
use famfs_log::Famfs;

/// The log, its lock, and the entry currently stalling replay.
#[derive(Debug)]
pub(crate) struct SharedLog<L: Media> {
    log: RwLock<Famfs<L>>,
    /// The entry index that did not validate, and since when.
    stall: Mutex<Option<(u64, Instant)>>,
    stall_timeout: Duration,
}

impl<L: Media> SharedLog<L> {
    /// Shares `log`; an unreadable entry is skipped after `stall_timeout`.
    pub(crate) fn new(log: Famfs<L>, stall_timeout: Duration) -> Self {
        SharedLog {
            log: RwLock::new(log),
            stall: Mutex::new(None),
            stall_timeout,
        }
    }

    /// The log, for reading (a handler that panicked does not poison it: the log is only
    /// changed by whole replays).
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Famfs<L>> {
        self.log.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The log, for changing it (replays, and the control channel's appends).
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Famfs<L>> {
        self.log.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Replay new log entries if the log header says there are any. Returns whether anything
    /// was added. An entry that stays unreadable for longer than the stall timeout is skipped
    /// with an error, so one corrupt entry cannot hide the rest of the log forever.
    pub(crate) fn refresh(&self) -> bool {
        // A header that does not validate counts as nothing new (the cheap check stays quiet;
        // a full replay would report it on every poll).
        if !matches!(self.read().has_new_entries(), Ok(true)) {
            return false;
        }
        let mut log = self.write();
        let before = log.state().namespace().len();
        match log.refresh() {
            Ok(report) => {
                for p in &report.problems {
                    tracing::warn!("{p}");
                }
                self.stall_policy(&mut log, report.stalled);
            }
            Err(e) => tracing::error!("cannot read the log: {e}; serving what was read before"),
        }
        log.state().namespace().len() > before
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
