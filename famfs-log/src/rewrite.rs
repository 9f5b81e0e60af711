//! Noticing that the media no longer holds what was replayed from it, and replaying it again.
//!
//! The log is append-only, so what was replayed stays true — unless another host re-formats
//! the device (`mkfs.famfs -f`), or rewrites, zeroes or rewinds the log. A reader that went on
//! serving its old tree would then serve old names over new files' bytes. So every look at the
//! log ([`Famfs::has_new_entries`], [`Famfs::refresh`]) also checks that the header does not
//! count fewer entries than were replayed and that the last entry replayed is still in its slot
//! (its CRC, a cheap fingerprint of everything before it that a rewrite would change); the
//! superblock, which the log media may not reach, is checked by [`Famfs::check_superblock`].
//! On a mismatch, [`Famfs::reload`] replays the media as it is now into a fresh tree whose log
//! nodes get inode numbers the old tree never used.

use famfs_fsdev::Media;

use crate::entry::check_integrity;
use crate::fs::entry_crc;
use crate::header::LogHeader;
use crate::layout::{LOG_ENTRY_SIZE, entry_offset};
use crate::replay::LogState;
use crate::role::Role;
use crate::superblock::Superblock;
use crate::{Famfs, LogError, OpenOptions, RefreshReport, Rewritten};

impl<L: Media> Famfs<L> {
    /// An empty state for `sb` as `opts` asks (root, meta files), after checking that the
    /// superblock fits the device and that `log` reaches the whole log.
    pub(crate) fn fresh_state(
        sb: &Superblock,
        log: &L,
        opts: &OpenOptions,
    ) -> Result<LogState, LogError> {
        if let Some(real) = opts.device_size
            && sb.dev_size > real
        {
            return Err(LogError::Geometry(format!(
                "the superblock says the device has {} bytes but it has {real}",
                sb.dev_size
            )));
        }
        if log.size() < sb.log_len {
            return Err(LogError::Geometry(format!(
                "the log is {:#x} bytes but only {:#x} are accessible",
                sb.log_len,
                log.size()
            )));
        }
        let mut state = match opts.root {
            Some(root) => LogState::with_root(sb, root),
            None => LogState::new(sb),
        };
        if opts.skip_maps {
            state.skip_maps();
        }
        if opts.meta_files {
            let master = Role::of(Some(sb), opts.system_uuid) == Role::Master;
            state.add_meta_files(sb, if master { 0o644 } else { 0o444 });
        }
        Ok(state)
    }

    /// Check that the log still holds what was replayed, given its header `h`: no fewer
    /// entries, and the last entry replayed unchanged in its slot.
    pub(crate) fn check_replayed(&self, h: &LogHeader) -> Result<(), LogError> {
        let seen = self.state.applied();
        if h.next_index < seen {
            return Err(Rewritten::WentBackwards {
                now: h.next_index,
                seen,
            }
            .into());
        }
        let Some((index, crc)) = self.last else {
            return Ok(());
        };
        let mut slot = [0u8; LOG_ENTRY_SIZE];
        self.log
            .invalidate(entry_offset(index), LOG_ENTRY_SIZE as u64)?;
        self.log.read_at(entry_offset(index), &mut slot)?;
        if check_integrity(&slot, index).is_err() || entry_crc(&slot) != crc {
            return Err(Rewritten::EntryChanged { index }.into());
        }
        Ok(())
    }

    /// Compare `sb`, the superblock as the device holds it now, with the one replayed: another
    /// file-system UUID means the device was re-formatted.
    pub fn check_superblock(&self, sb: &Superblock) -> Result<(), Rewritten> {
        if sb.uuid != self.sb.uuid {
            return Err(Rewritten::Reformatted {
                was: self.sb.uuid,
                now: sb.uuid,
            });
        }
        if *sb != self.sb {
            return Err(Rewritten::SuperblockChanged(sb.uuid));
        }
        Ok(())
    }

    /// Replay the log from scratch under superblock `sb` (as the device holds it now), after
    /// the log was found rewritten. The new tree replaces the old one only if the replay
    /// succeeds (otherwise nothing changes and the error is returned). Its log nodes are
    /// numbered past every inode number of the old tree, so no old number names a new node;
    /// the root and the meta files keep theirs.
    pub fn reload(&mut self, sb: Superblock) -> Result<RefreshReport, LogError> {
        let mut state = Self::fresh_state(&sb, &self.log, &self.opts)?;
        state
            .namespace_mut()
            .number_from(self.state.namespace().next_ino());
        let header = LogHeader::empty(sb.log_len);
        let old_state = std::mem::replace(&mut self.state, state);
        let old_sb = std::mem::replace(&mut self.sb, sb);
        let old_header = std::mem::replace(&mut self.header, header);
        let old_last = self.last.take();
        match self.refresh() {
            Ok(report) => Ok(report),
            Err(e) => {
                self.state = old_state;
                self.sb = old_sb;
                self.header = old_header;
                self.last = old_last;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use famfs_fsdev::{Media, MemMedia};
    use uuid::Uuid;

    use crate::alloc::AllocPolicy;
    use crate::header::COUNTERS_OFFSET;
    use crate::layout::LOG_OFFSET;
    use crate::namespace::Attr;
    use crate::superblock::Superblock;
    use crate::{Famfs, LogError, MkfsOptions, OffsetMedia, OpenOptions, Rewritten, mkfs};

    const DEV: u64 = 64 << 20;
    const ATTR: Attr = Attr {
        mode: 0o644,
        uid: 0,
        gid: 0,
    };

    fn format(dev: &MemMedia, master: Uuid) {
        let mut o = MkfsOptions::new(master, "/dev/dax0.0");
        o.min_device_size = 0;
        o.force = true;
        mkfs(dev, DEV, &o).unwrap();
    }

    fn open(dev: &MemMedia, me: Option<Uuid>) -> Famfs<OffsetMedia<MemMedia>> {
        Famfs::open_device(
            dev.clone(),
            OpenOptions {
                system_uuid: me,
                meta_files: true,
                ..Default::default()
            },
        )
        .unwrap()
    }

    fn create(fs: &mut Famfs<OffsetMedia<MemMedia>>, names: &[&str]) {
        let mut w = fs.writer().unwrap();
        for n in names {
            w.create(n.as_ref(), 2 << 20, ATTR, &AllocPolicy::Contiguous)
                .unwrap();
        }
    }

    fn rewritten(r: Result<bool, LogError>) -> Rewritten {
        match r {
            Err(LogError::Rewritten(w)) => w,
            other => panic!("not found rewritten: {other:?}"),
        }
    }

    #[test]
    fn a_reformat_is_noticed_and_replayed_into_fresh_inode_numbers() {
        let dev = MemMedia::new(DEV as usize);
        let (m1, m2) = (Uuid::new_v4(), Uuid::new_v4());
        format(&dev, m1);
        create(&mut open(&dev, Some(m1)), &["a", "b"]);
        let mut client = open(&dev, None);
        let old_a = client.state().namespace().resolve(b"a").unwrap();
        assert!(!client.has_new_entries().unwrap());
        // Another host formats again and logs as many entries, differently.
        format(&dev, m2);
        create(&mut open(&dev, Some(m2)), &["x", "y"]);
        assert_eq!(
            rewritten(client.has_new_entries()),
            Rewritten::EntryChanged { index: 1 }
        );
        assert!(matches!(
            client.refresh(),
            Err(LogError::Rewritten(Rewritten::EntryChanged { index: 1 }))
        ));
        assert!(
            client.state().namespace().resolve(b"a").is_ok(),
            "untouched"
        );
        let sb = Superblock::read(&dev).unwrap();
        assert!(matches!(
            client.check_superblock(&sb),
            Err(Rewritten::Reformatted { now, .. }) if now == sb.uuid
        ));
        let before = client.state().namespace().next_ino();
        let report = client.reload(sb.clone()).unwrap();
        assert_eq!(report.files.len(), 2);
        let ns = client.state().namespace();
        assert!(ns.resolve(b"a").is_err() && ns.get(old_a).is_none());
        let x = ns.resolve(b"x").unwrap();
        assert!(x >= before, "new nodes numbered past the old tree");
        assert!(ns.resolve(b".meta/.log").unwrap() == crate::replay::META_LOG_INO);
        assert_eq!(client.superblock(), &sb);
        client.check_superblock(&sb).unwrap();
        assert!(!client.has_new_entries().unwrap());
    }

    /// A reloaded tree numbered past the old one stays whole however many nodes it gets (the
    /// duplicate check of each add once indexed past the end of the nodes).
    #[test]
    fn a_large_tree_replayed_past_the_old_numbers_loads() {
        let dev = MemMedia::new(DEV as usize);
        let (m1, m2) = (Uuid::new_v4(), Uuid::new_v4());
        let names: Vec<String> = (0..1500).map(|i| format!("d{i}")).collect();
        let mkdirs = |master| {
            format(&dev, master);
            let mut fs = open(&dev, Some(master));
            let mut w = fs.writer().unwrap();
            for n in &names {
                w.mkdir(n.as_ref(), ATTR).unwrap();
            }
        };
        mkdirs(m1);
        let mut client = open(&dev, None);
        mkdirs(m2);
        let sb = Superblock::read(&dev).unwrap();
        let report = client.reload(sb).unwrap();
        assert_eq!(report.dirs.len(), names.len());
        let ns = client.state().namespace();
        for (n, ino) in names.iter().zip(&report.dirs) {
            assert_eq!(ns.resolve(n.as_bytes()), Ok(*ino), "{n}");
        }
    }

    #[test]
    fn a_rewound_or_zeroed_log_is_noticed() {
        let dev = MemMedia::new(DEV as usize);
        let me = Uuid::new_v4();
        format(&dev, me);
        create(&mut open(&dev, Some(me)), &["one", "two", "three"]);
        let mut client = open(&dev, None);
        // The counters rewound to one entry.
        let mut counters = [0u8; 16];
        counters[..8].copy_from_slice(&1u64.to_le_bytes());
        counters[8..].copy_from_slice(&1u64.to_le_bytes());
        dev.write_at(LOG_OFFSET + COUNTERS_OFFSET, &counters)
            .unwrap();
        assert_eq!(
            rewritten(client.has_new_entries()),
            Rewritten::WentBackwards { now: 1, seen: 3 }
        );
        let sb = Superblock::read(&dev).unwrap();
        client.check_superblock(&sb).unwrap();
        client.reload(sb.clone()).unwrap();
        let ns = client.state().namespace();
        assert!(ns.resolve(b"one").is_ok() && ns.resolve(b"two").is_err());
        // A zeroed log: the header is gone, and a reload fails and changes nothing.
        dev.write_at(LOG_OFFSET, &vec![0u8; 8 << 20]).unwrap();
        assert!(matches!(
            client.has_new_entries(),
            Err(LogError::LogHeader(_))
        ));
        let inos = client.state().namespace().next_ino();
        assert!(client.reload(sb).is_err());
        assert_eq!(client.state().namespace().next_ino(), inos);
        assert!(client.state().namespace().resolve(b"one").is_ok());
    }

    #[test]
    fn appends_keep_the_fingerprint_current() {
        let dev = MemMedia::new(DEV as usize);
        let me = Uuid::new_v4();
        format(&dev, me);
        let mut master = open(&dev, Some(me));
        create(&mut master, &["a"]);
        assert_eq!(master.last.map(|l| l.0), Some(0));
        create(&mut master, &["b"]);
        assert_eq!(master.last.map(|l| l.0), Some(1));
        assert!(!master.has_new_entries().unwrap());
        let mut client = open(&dev, None);
        create(&mut master, &["c"]);
        assert!(client.has_new_entries().unwrap());
        assert_eq!(client.refresh().unwrap().files.len(), 1);
        assert_eq!(client.last.map(|l| l.0), Some(2));
    }
}
