//! Whole-log replay, as a client or server opens a device. Input: a compact metadata image —
//! superblock, log header, whole log entries, then an optional mode byte — see
//! [`famfs_log_fuzz::Image`]. By default every CRC and seqnum is fixed up and the header
//! counters cover the entries given, so replay applies real entries; mode bits keep any of
//! them raw. The device is 18 MiB (logs up to 16 MiB fit) and sparse.
//!
//! Invariants, in both replay modes: opening never panics; the tree holds only clean relative
//! paths, each resolving to its own inode; every logged file's map lies in the data area, holds
//! the file, is marked in the bitmap, and shares no byte with another file; the counters match
//! the tree. Strict replay yields a prefix of lenient replay, and catching up with `refresh`
//! after a partial replay yields exactly the one-shot result.
#![no_main]

use std::path::{Component, PathBuf};
use std::sync::Arc;

use famfs_fsdev::Media;
use famfs_log::header::COUNTERS_OFFSET;
use famfs_log::layout::{ALLOC_UNIT, LOG_OFFSET};
use famfs_log::namespace::{Attr, FileNode, Ino, NodeKind};
use famfs_log::{Famfs, FsckReport, OffsetMedia, OpenOptions, ReplayMode};
use famfs_log_fuzz::{Image, SparseMedia, image_mode, set_counters};
use libfuzzer_sys::fuzz_target;

const DEV_SIZE: u64 = LOG_OFFSET + (16 << 20);

type Fs = Famfs<OffsetMedia<Arc<SparseMedia>>>;

/// What replay made of one node, for comparing two replays.
type Summary = (Ino, PathBuf, Attr, Option<u64>, Option<FileNode>);

fn open(dev: &Arc<SparseMedia>, replay: ReplayMode) -> Option<Fs> {
    let opts = OpenOptions {
        replay,
        meta_files: true,
        ..Default::default()
    };
    Famfs::open_device(Arc::clone(dev), opts).ok()
}

fn summary(fs: &Fs) -> Vec<Summary> {
    let ns = fs.state().namespace();
    ns.iter()
        .map(|(ino, n)| {
            let file = n.as_file().cloned();
            (ino, ns.path_of(ino), n.attr, n.log_index, file)
        })
        .collect()
}

/// Checks everything a replayed tree promises.
fn check_sound(fs: &Fs) {
    let st = fs.state();
    let ns = st.namespace();
    let sb = fs.superblock();
    let (mut files, mut dirs, mut ranges) = (0u64, 0u64, Vec::new());
    for (ino, n) in ns.iter() {
        let path = ns.path_of(ino);
        assert!(path.components().all(|c| matches!(c, Component::Normal(_))));
        if ino != st.root() {
            use std::os::unix::ffi::OsStrExt;
            assert_eq!(ns.resolve(path.as_os_str().as_bytes()), Ok(ino));
        }
        if n.log_index.is_none() {
            continue; // root and the .meta files
        }
        match &n.kind {
            NodeKind::Dir(_) => dirs += 1,
            NodeKind::File(f) => {
                files += 1;
                assert_eq!(f.size, f.fmap.file_size);
                assert!(f.fmap.capacity() >= f.size);
                for e in f.fmap.ranges() {
                    assert!(e.offset >= sb.data_start() && e.end() <= sb.dev_size);
                    let (first, n) = (e.offset / ALLOC_UNIT, e.len.div_ceil(ALLOC_UNIT));
                    assert!((first..first + n).all(|k| st.bitmap().is_set(k)));
                    ranges.push((e.offset, e.end()));
                }
            }
        }
    }
    ranges.sort_unstable();
    assert!(ranges.windows(2).all(|w| w[0].1 <= w[1].0), "files overlap");
    assert_eq!((st.stats().files, st.stats().dirs), (files, dirs));
    assert!(st.applied() <= fs.header().next_index);
    let report = FsckReport::of(fs);
    let _ = (report.render(true, true), report.render(false, false));
}

fuzz_target!(|data: &[u8]| {
    let img = Image::from_input(data);
    let dev = Arc::new(img.media(DEV_SIZE));
    let strict = open(&dev, ReplayMode::Strict);
    let lenient = open(&dev, ReplayMode::Lenient);
    if let Some(fs) = &strict {
        check_sound(fs);
    }
    let Some(lenient) = lenient else {
        assert!(strict.is_none(), "strict replay opened what lenient replay refused");
        return;
    };
    check_sound(&lenient);
    let all = summary(&lenient);
    if let Some(strict) = &strict {
        let s = summary(strict);
        assert_eq!(s[..], all[..s.len()], "strict replay is not a prefix of lenient");
    }

    // Catch up incrementally: replay the first `split` entries, then the rest with refresh.
    if img.mode & (image_mode::RAW_COUNTERS | image_mode::RAW_HEADER) != 0 {
        return;
    }
    let n = img.entries.len() as u64;
    let split = match u64::from(img.mode >> 4) {
        0 => n / 2,
        s => s % (n + 1),
    };
    let mut partial = img.clone();
    set_counters(&mut partial.header, split);
    let pdev = Arc::new(partial.media(DEV_SIZE));
    let mut fs = open(&pdev, ReplayMode::Lenient).expect("the same image with fewer entries opens");
    let mut counters = [0u8; 16];
    counters[..8].copy_from_slice(&n.to_le_bytes());
    counters[8..].copy_from_slice(&n.to_le_bytes());
    pdev.write_at(LOG_OFFSET + COUNTERS_OFFSET, &counters).unwrap();
    assert!(fs.has_new_entries().unwrap() == (split < n));
    fs.refresh().expect("refresh after a successful open");
    assert_eq!(summary(&fs), all, "incremental replay differs from one-shot replay");
    assert_eq!(fs.state().stats(), lenient.state().stats());
    assert_eq!(fs.state().problems(), lenient.state().problems());
});
