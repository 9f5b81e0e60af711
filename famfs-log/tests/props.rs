//! Property and robustness tests of the whole log: appends replay to the same state, creates
//! never overlap, and no corrupted or hostile log makes us panic or serve a bad file.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use famfs_fmap::{Extent, Fmap, FmapKind, InterleavedExtent};
use famfs_fsdev::{Media, MemMedia};
use famfs_log::alloc::{AllocPolicy, InterleaveParams};
use famfs_log::entry::{DirEntry, FileEntry, LogEntry};
use famfs_log::layout::{ALLOC_UNIT, LOG_OFFSET, entry_offset};
use famfs_log::namespace::{Attr, NodeKind};
use famfs_log::replay::ProblemKind;
use famfs_log::{Famfs, LogError, MkfsOptions, OffsetMedia, OpenOptions, ReplayMode, mkfs};
use proptest::prelude::*;
use uuid::Uuid;

const META: usize = 10 << 20;
const DEV: u64 = 64 << 30;

fn formatted(owner: Uuid) -> MemMedia {
    let dev = MemMedia::new(META);
    mkfs(&dev, DEV, &MkfsOptions::new(owner, "/dev/dax0.0")).unwrap();
    dev
}

fn open(
    dev: &MemMedia,
    who: Option<Uuid>,
    mode: ReplayMode,
) -> Result<Famfs<OffsetMedia<MemMedia>>, LogError> {
    Famfs::open_device(
        dev.clone(),
        OpenOptions {
            system_uuid: who,
            replay: mode,
            ..Default::default()
        },
    )
}

#[derive(Debug, Clone)]
enum Op {
    MkdirP(Vec<u8>, u32),
    Create(Vec<u8>, u64, u32, u32, Option<(u64, u64)>),
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"a".to_vec()),
        Just(b"b".to_vec()),
        Just(b"c".to_vec()),
        "[a-z]{1,6}".prop_map(String::into_bytes)
    ]
}

fn path() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(name(), 1..4).prop_map(|v| v.join(&b'/'))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (path(), 0o700u32..0o1000).prop_map(|(p, m)| Op::MkdirP(p, m)),
        (
            path(),
            1u64..(600 << 20),
            0o400u32..0o1000,
            0u32..3000,
            proptest::option::of((1u64..9, 1u64..3))
        )
            .prop_map(|(p, s, m, u, i)| Op::Create(p, s, m, u, i)),
    ]
}

fn check_no_overlap(fs: &Famfs<OffsetMedia<MemMedia>>) -> Result<(), TestCaseError> {
    let data_start = fs.superblock().data_start();
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for (_, n) in fs.state().namespace().iter() {
        if let NodeKind::File(f) = &n.kind {
            prop_assert!(f.fmap.capacity() >= f.size);
            prop_assert_eq!(f.fmap.file_size, f.size);
            for e in f.fmap.ranges() {
                prop_assert!(e.offset >= data_start && e.offset + e.len <= DEV);
                prop_assert_eq!(e.offset % ALLOC_UNIT, 0);
                ranges.push((e.offset, e.offset + e.len));
            }
        }
    }
    ranges.sort();
    for w in ranges.windows(2) {
        prop_assert!(w[0].1 <= w[1].0, "overlap {:x?} {:x?}", w[0], w[1]);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// replay(append(x)) == x: a fresh open of the log sees exactly the tree the writer built,
    /// each entry decodes to exactly what was appended, and no two files share space.
    #[test]
    fn replay_of_appends_is_identity(ops in proptest::collection::vec(op(), 1..40), seed: u64) {
        let me = Uuid::new_v4();
        let dev = formatted(me);
        let mut fs = open(&dev, Some(me), ReplayMode::Strict).unwrap();
        let mut appended: Vec<LogEntry> = Vec::new();
        {
            let mut w = fs.writer().unwrap();
            w.set_seed(seed);
            for op in ops {
                let before = w.famfs().header().next_index;
                let bitmap_before = w.famfs().state().bitmap().clone();
                let r = match &op {
                    Op::MkdirP(p, m) => w
                        .mkdir_p(std::ffi::OsStr::from_bytes(p).as_ref(), Attr { mode: *m, uid: 0, gid: 0 })
                        .map(|_| ()),
                    Op::Create(p, size, m, u, inter) => {
                        let policy = match inter {
                            None => AllocPolicy::Contiguous,
                            Some((nstrips, c)) => AllocPolicy::Interleaved(InterleaveParams {
                                nbuckets: 8, nstrips: *nstrips.min(&8), chunk_size: ALLOC_UNIT << (c - 1),
                            }),
                        };
                        w.create(std::ffi::OsStr::from_bytes(p).as_ref(), *size, Attr { mode: *m, uid: *u, gid: *u }, &policy)
                            .map(|(_, e)| appended.push(LogEntry::File(e)))
                    }
                };
                // A refused operation must not have written or claimed anything.
                if r.is_err() && matches!(op, Op::Create(..)) {
                    prop_assert_eq!(w.famfs().header().next_index, before);
                    prop_assert_eq!(w.famfs().state().bitmap(), &bitmap_before);
                }
                // The writer claims each new file's space once, as its replay does: never a
                // collision, never a skipped entry, in the writer's own state either.
                prop_assert_eq!(w.famfs().state().stats().collisions, 0);
                prop_assert!(w.famfs().state().problems().is_empty());
            }
        }
        let again = open(&dev, None, ReplayMode::Strict).unwrap();
        prop_assert_eq!(again.state().namespace(), fs.state().namespace());
        prop_assert_eq!(again.state().stats(), fs.state().stats());
        prop_assert_eq!(again.state().bitmap(), fs.state().bitmap());
        prop_assert!(again.state().problems().is_empty());
        prop_assert_eq!(again.state().stats().collisions, 0);
        // Every appended file entry is in the log as built.
        let log = OffsetMedia::new(dev.clone(), LOG_OFFSET, 8 << 20).unwrap();
        let mut found = 0;
        for i in 0..again.header().next_index {
            let mut slot = [0u8; 544];
            log.read_at(entry_offset(i), &mut slot).unwrap();
            let e = LogEntry::decode(&slot, i).unwrap();
            if matches!(e, LogEntry::File(_)) {
                prop_assert_eq!(&e, &appended[found]);
                found += 1;
            }
        }
        prop_assert_eq!(found, appended.len());
        check_no_overlap(&again)?;
    }

    /// Random corruption of the log (with or without a fixed-up CRC): opening never panics, and
    /// whatever the tree then serves is sound (clean paths, placed maps, no overlaps).
    #[test]
    fn corrupted_logs_never_panic_or_serve_bad_files(
        hits in proptest::collection::vec((0usize..(40 * 544 + 48), any::<u8>()), 1..20),
        fix_crc: bool,
        lenient: bool,
    ) {
        let me = Uuid::new_v4();
        let dev = formatted(me);
        {
            let mut fs = open(&dev, Some(me), ReplayMode::Strict).unwrap();
            let mut w = fs.writer().unwrap();
            w.set_seed(1);
            let a = Attr { mode: 0o755, uid: 0, gid: 0 };
            for i in 0..12u64 {
                w.mkdir_p(format!("d{}/e{}", i % 3, i % 2).as_ref(), a).unwrap();
                w.create(format!("d{}/e{}/f{i}", i % 3, i % 2).as_ref(), (i + 1) << 21, a, &AllocPolicy::Contiguous).unwrap();
                if i % 4 == 0 {
                    let p = InterleaveParams { nbuckets: 8, nstrips: 4, chunk_size: ALLOC_UNIT };
                    w.create(format!("d{}/s{i}", i % 3).as_ref(), 9 << 20, a, &AllocPolicy::Interleaved(p)).unwrap();
                }
            }
        }
        for (pos, val) in hits {
            dev.write_at(LOG_OFFSET + pos as u64, &[val]).unwrap();
            if fix_crc && pos >= 48 {
                let i = (pos as u64 - 48) / 544;
                let mut slot = [0u8; 544];
                dev.read_at(LOG_OFFSET + entry_offset(i), &mut slot).unwrap();
                let c = crc32fast::hash(&slot[..536]);
                dev.write_at(LOG_OFFSET + entry_offset(i) + 536, &u64::from(c).to_le_bytes()).unwrap();
            }
        }
        let mode = if lenient { ReplayMode::Lenient } else { ReplayMode::Strict };
        if let Ok(fs) = open(&dev, None, mode) {
            check_no_overlap(&fs)?;
            for (ino, n) in fs.state().namespace().iter() {
                let p = fs.state().namespace().path_of(ino);
                prop_assert!(p.is_relative());
                prop_assert!(p.components().all(|c| matches!(c, std::path::Component::Normal(_))));
                prop_assert!(n.attr.mode <= 0o7777);
            }
        }
    }
}

fn hostile_log(entries: &[LogEntry]) -> MemMedia {
    let me = Uuid::new_v4();
    let dev = formatted(me);
    let mut fs = open(&dev, Some(me), ReplayMode::Strict).unwrap();
    let mut w = fs.writer().unwrap();
    for e in entries {
        // Appending bypasses the writer's checks: this is what a hostile master could write.
        w.append(e).unwrap();
    }
    dev
}

/// One simple extent of `len` bytes at device offset `offset`.
fn simple(offset: u64, len: u64) -> FmapKind {
    FmapKind::Simple(vec![Extent::new(0, offset, len)])
}

fn file(path: &str, size: u64, kind: FmapKind) -> LogEntry {
    LogEntry::File(FileEntry {
        path: PathBuf::from(path),
        flags: 2,
        uid: 0,
        gid: 0,
        mode: 0o644,
        fmap: Fmap {
            file_size: size,
            kind,
        },
    })
}

#[test]
fn hostile_entries_are_skipped_with_a_reason() {
    let au = ALLOC_UNIT;
    let good = file("good", au, simple(100 * au, au));
    let dev = hostile_log(&[
        good.clone(),
        // Overlaps `good`.
        file("thief", au, simple(100 * au, au)),
        // Points at the superblock and the log.
        file("sb", au, simple(au, au)),
        // Past the end of the device.
        file("far", au, simple(DEV, au)),
        // Claims more bytes than it maps.
        file("short", 3 * au, simple(200 * au, au)),
        // Strips too short for the chunk arithmetic.
        file(
            "strip",
            8 * au,
            FmapKind::Interleaved(vec![InterleavedExtent::new(
                au,
                vec![Extent::new(0, 300 * au, au), Extent::new(0, 400 * au, au)],
            )]),
        ),
        // Parent missing, parent a file, duplicate.
        file("nodir/x", au, simple(500 * au, au)),
        file("good/x", au, simple(501 * au, au)),
        file("good", au, simple(502 * au, au)),
        LogEntry::Mkdir(DirEntry {
            path: "good".into(),
            uid: 0,
            gid: 0,
            mode: 0o755,
        }),
        LogEntry::Delete,
        LogEntry::Unknown(77),
        file("last", au, simple(600 * au, au)),
    ]);
    let fs = open(&dev, None, ReplayMode::Strict).unwrap();
    let ns = fs.state().namespace();
    let names: Vec<_> = ns.iter().skip(1).map(|(i, _)| ns.path_of(i)).collect();
    assert_eq!(names, vec![PathBuf::from("good"), PathBuf::from("last")]);
    let kinds: Vec<_> = fs
        .state()
        .problems()
        .iter()
        .map(|p| (p.index, &p.kind))
        .collect();
    let kind_of = |k: &ProblemKind| match k {
        ProblemKind::Overlap(n) => format!("overlap {n}"),
        ProblemKind::Placement(_) => "placement".into(),
        ProblemKind::Namespace(_) => "namespace".into(),
        other => format!("{other:?}"),
    };
    let got: Vec<_> = kinds
        .iter()
        .take(8)
        .map(|(i, k)| (*i, kind_of(k)))
        .collect();
    let want: Vec<(u64, String)> = [
        (1, "overlap 1"),
        (2, "placement"),
        (3, "placement"),
        (4, "placement"),
        (5, "placement"),
        (6, "namespace"),
        (7, "namespace"),
        (8, "namespace"),
    ]
    .into_iter()
    .map(|(i, k)| (i, k.to_string()))
    .collect();
    assert_eq!(got, want, "{kinds:?}");
    assert_eq!(kinds.len(), 9, "{kinds:?}");
    // Overlaps with a file and with the metadata region are allocation collisions for fsck.
    let report = famfs_log::FsckReport::of(&fs);
    assert!(report.collisions() >= 2);
    assert!(
        report
            .render(false, false)
            .contains("ALLOCATION COLLISIONS FOUND")
    );
    for p in fs.state().problems() {
        assert!(!p.to_string().is_empty());
    }
}

#[test]
fn dotdot_and_absolute_paths_never_enter_the_tree() {
    // Built by hand: our encoder refuses such paths, a hostile writer would not.
    let me = Uuid::new_v4();
    let dev = formatted(me);
    let log = OffsetMedia::new(dev.clone(), LOG_OFFSET, 8 << 20).unwrap();
    let bad_paths: [&[u8]; 5] = [b"../escape", b"/etc/passwd", b"a/../../b", b"a//b", b"."];
    for (i, p) in bad_paths.iter().enumerate() {
        let mut slot = LogEntry::Mkdir(DirEntry {
            path: "x".into(),
            uid: 0,
            gid: 0,
            mode: 0o755,
        })
        .encode(i as u64)
        .unwrap();
        slot[28..108].fill(0);
        slot[28..28 + p.len()].copy_from_slice(p);
        let c = crc32fast::hash(&slot[..536]);
        slot[536..].copy_from_slice(&u64::from(c).to_le_bytes());
        log.write_at(entry_offset(i as u64), &slot).unwrap();
    }
    let mut hdr = famfs_log::header::LogHeader::empty(8 << 20);
    hdr.next_index = bad_paths.len() as u64;
    hdr.next_seqnum = hdr.next_index;
    log.write_at(0, &hdr.to_bytes()).unwrap();
    let fs = open(&dev, None, ReplayMode::Strict).unwrap();
    assert_eq!(fs.state().namespace().len(), 1, "only the root");
    assert_eq!(fs.state().stats().skipped, bad_paths.len() as u64);
}

/// A formatted device whose log holds a mkdir of each of `dirs`, with entry `bad` corrupted.
fn dirs_with_a_corrupt_entry<S: AsRef<str>>(
    dirs: impl IntoIterator<Item = S>,
    bad: u64,
) -> MemMedia {
    let me = Uuid::new_v4();
    let dev = formatted(me);
    {
        let mut fs = open(&dev, Some(me), ReplayMode::Strict).unwrap();
        let mut w = fs.writer().unwrap();
        let a = Attr {
            mode: 0o755,
            uid: 0,
            gid: 0,
        };
        for d in dirs {
            w.mkdir(d.as_ref().as_ref(), a).unwrap();
        }
    }
    dev.write_at(LOG_OFFSET + entry_offset(bad) + 30, b"X")
        .unwrap();
    dev
}

#[test]
fn corrupt_entries_stall_strict_replay_and_are_counted_by_lenient() {
    let dev = dirs_with_a_corrupt_entry(["a", "b", "c"], 1);
    let strict = open(&dev, None, ReplayMode::Strict).unwrap();
    assert_eq!(strict.state().namespace().dir_count(), 1);
    let lenient = open(&dev, None, ReplayMode::Lenient).unwrap();
    assert_eq!(lenient.state().namespace().dir_count(), 2);
    assert_eq!(lenient.state().stats().bad_entries, 1);
    let mut strict = strict;
    // Repair (as if the entry had only been in flight): the next refresh picks it up.
    let good = LogEntry::Mkdir(DirEntry {
        path: "b".into(),
        uid: 0,
        gid: 0,
        mode: 0o755,
    })
    .encode(1)
    .unwrap();
    dev.write_at(LOG_OFFSET + entry_offset(1), &good).unwrap();
    let r = strict.refresh().unwrap();
    assert_eq!((r.dirs.len(), r.stalled), (2, None));
}

/// The same on a log long enough to be read ahead on a second thread: strict replay stops at
/// the corrupt entry deep in it, lenient replay counts it and applies everything after it, and
/// the two agree with a replay of the entries before it.
#[test]
fn a_corrupt_entry_deep_in_a_long_log_stalls_strict_and_is_counted_by_lenient() {
    let (n, bad) = (5000u64, 3777u64);
    let dev = dirs_with_a_corrupt_entry((0..n).map(|i| format!("d{i}")), bad);
    let strict = open(&dev, None, ReplayMode::Strict).unwrap();
    assert_eq!(
        strict.state().applied(),
        bad,
        "stopped before the bad entry"
    );
    assert_eq!(strict.state().namespace().dir_count(), bad);
    let lenient = open(&dev, None, ReplayMode::Lenient).unwrap();
    assert_eq!(lenient.state().applied(), n);
    assert_eq!(lenient.state().stats().bad_entries, 1);
    assert_eq!(lenient.state().namespace().dir_count(), n - 1);
    assert_eq!(lenient.state().problems()[0].index, bad);
    let ns = lenient.state().namespace();
    assert!(ns.resolve(format!("d{bad}").as_bytes()).is_err());
    assert!(ns.resolve(format!("d{}", n - 1).as_bytes()).is_ok());
}

#[test]
fn bad_headers_and_superblocks_are_typed_errors() {
    let me = Uuid::new_v4();
    let dev = formatted(me);
    let mut b = [0u8; 1];
    dev.read_at(0, &mut b).unwrap();
    // next_index beyond the log (not CRC-protected).
    dev.write_at(LOG_OFFSET + 40, &u64::MAX.to_le_bytes())
        .unwrap();
    let e = open(&dev, None, ReplayMode::Strict).unwrap_err();
    assert!(matches!(e, LogError::LogHeader(_)), "{e}");
    assert!(e.to_string().contains("past the end"), "{e}");
    dev.write_at(LOG_OFFSET + 40, &0u64.to_le_bytes()).unwrap();
    dev.write_at(LOG_OFFSET, b"\0").unwrap();
    assert!(matches!(
        open(&dev, None, ReplayMode::Strict),
        Err(LogError::LogHeader(_))
    ));
    dev.write_at(0, b"\0").unwrap();
    let e = open(&dev, None, ReplayMode::Strict).unwrap_err();
    assert!(e.to_string().contains("no famfs superblock"), "{e}");
}

#[test]
fn writer_refusals() {
    let me = Uuid::new_v4();
    let dev = formatted(me);
    let mut client = open(&dev, Some(Uuid::new_v4()), ReplayMode::Strict).unwrap();
    assert!(matches!(
        client.writer().unwrap_err(),
        LogError::NotMaster { .. }
    ));
    let mut fs = open(&dev, Some(me), ReplayMode::Strict).unwrap();
    let mut w = fs.writer().unwrap();
    let a = Attr {
        mode: 0o644,
        uid: 0,
        gid: 0,
    };
    let c = &AllocPolicy::Contiguous;
    assert!(matches!(
        w.create("x/y".as_ref(), 1, a, c),
        Err(LogError::Namespace(_))
    ));
    assert!(matches!(
        w.create("../y".as_ref(), 1, a, c),
        Err(LogError::Path { .. })
    ));
    assert!(matches!(
        w.create("y".as_ref(), 0, a, c),
        Err(LogError::Alloc(_))
    ));
    assert!(matches!(
        w.create("y".as_ref(), DEV, a, c),
        Err(LogError::Alloc(_))
    ));
    w.create("y".as_ref(), 1, a, c).unwrap();
    assert_eq!(
        w.create("y".as_ref(), 1, a, c).unwrap_err().errno(),
        libc::EEXIST
    );
    assert!(w.mkdir("y".as_ref(), a).is_err());
    assert!(w.mkdir_p("y/z".as_ref(), a).is_err());
    assert_eq!(
        w.famfs().header().next_index,
        1,
        "nothing logged by refused calls"
    );
}

#[test]
fn log_full_is_reported_and_nothing_is_lost() {
    let me = Uuid::new_v4();
    let dev = formatted(me);
    let mut fs = open(&dev, Some(me), ReplayMode::Strict).unwrap();
    let mut w = fs.writer().unwrap();
    let a = Attr {
        mode: 0o755,
        uid: 0,
        gid: 0,
    };
    for i in 0..15420 {
        w.mkdir(format!("d{i}").as_ref(), a).unwrap();
    }
    let e = w.mkdir("one-too-many".as_ref(), a).unwrap_err();
    assert!(matches!(e, LogError::LogFull { slots: 15420 }), "{e}");
    assert!(matches!(
        w.create("f".as_ref(), 1, a, &AllocPolicy::Contiguous),
        Err(LogError::LogFull { .. })
    ));
    drop(w);
    let again = open(&dev, None, ReplayMode::Strict).unwrap();
    assert_eq!(again.state().namespace().dir_count(), 15420);
}

#[test]
fn meta_files_have_fixed_inodes_and_cannot_be_shadowed() {
    use famfs_log::replay::{META_DIR_INO, META_LOG_INO, META_SB_INO};
    let au = ALLOC_UNIT;
    let dev = hostile_log(&[
        file(".meta/.log", au, simple(100 * au, au)),
        file(".meta/.alloc.cfg", au, simple(101 * au, au)),
    ]);
    for (who, mode) in [(None, 0o444), (Some(Uuid::new_v4()), 0o444)] {
        let fs = Famfs::open_device(
            dev.clone(),
            OpenOptions {
                system_uuid: who,
                meta_files: true,
                ..Default::default()
            },
        )
        .unwrap();
        let ns = fs.state().namespace();
        assert_eq!(ns.resolve(b".meta").unwrap(), META_DIR_INO);
        assert_eq!(ns.resolve(b".meta/.superblock").unwrap(), META_SB_INO);
        assert_eq!(ns.resolve(b".meta/.log").unwrap(), META_LOG_INO);
        let log = ns.get(META_LOG_INO).unwrap();
        assert_eq!(log.attr.mode, mode);
        assert_eq!(log.as_file().unwrap().size, 8 << 20);
        assert_eq!(
            *log.as_file().unwrap().fmap,
            Fmap::simple(8 << 20, vec![Extent::new(0, LOG_OFFSET, 8 << 20)])
        );
        // `.meta` is reserved: no log entry adds anything under it (issue 9.4), the reserved
        // name is the reason for both, and their space is still claimed.
        assert!(ns.resolve(b".meta/.alloc.cfg").is_err());
        assert_eq!(fs.state().problems().len(), 2);
        for p in fs.state().problems() {
            assert_eq!(p.kind, ProblemKind::Reserved);
        }
        assert!(fs.state().bitmap().is_set(100) && fs.state().bitmap().is_set(101));
    }
}

#[test]
fn has_new_entries_sees_what_another_host_appended() {
    let me = Uuid::new_v4();
    let dev = formatted(me);
    let mut master = open(&dev, Some(me), ReplayMode::Strict).unwrap();
    let mut client = open(&dev, None, ReplayMode::Strict).unwrap();
    assert!(!client.has_new_entries().unwrap());
    master
        .writer()
        .unwrap()
        .mkdir(
            "d".as_ref(),
            Attr {
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
        )
        .unwrap();
    assert!(
        !master.has_new_entries().unwrap(),
        "the writer applied its own entry"
    );
    assert!(client.has_new_entries().unwrap());
    client.refresh().unwrap();
    assert!(!client.has_new_entries().unwrap());
    // A header that no longer validates is an error, not "nothing new".
    dev.write_at(LOG_OFFSET, b"\0").unwrap();
    assert!(matches!(
        client.has_new_entries(),
        Err(LogError::LogHeader(_))
    ));
}

#[test]
fn superblock_read_checks_and_reports_short_media() {
    use famfs_log::layout::SUPERBLOCK_SIZE;
    use famfs_log::superblock::Superblock;
    let me = Uuid::new_v4();
    let dev = formatted(me);
    let sb = Superblock::read(&dev).unwrap();
    assert_eq!(sb.system_uuid, me);
    assert_eq!(sb.dev_size, DEV);
    // The same bytes as a file of their own (a mounted .meta/.superblock).
    let mut bytes = vec![0u8; SUPERBLOCK_SIZE];
    dev.read_at(0, &mut bytes).unwrap();
    let alone = MemMedia::new(SUPERBLOCK_SIZE);
    alone.write_at(0, &bytes).unwrap();
    assert_eq!(Superblock::read(&alone).unwrap(), sb);
    let short = MemMedia::new(SUPERBLOCK_SIZE - 1);
    assert!(matches!(Superblock::read(&short), Err(LogError::Media(_))));
    dev.write_at(0, b"\0").unwrap();
    assert!(matches!(
        Superblock::read(&dev),
        Err(LogError::Superblock(_))
    ));
}
