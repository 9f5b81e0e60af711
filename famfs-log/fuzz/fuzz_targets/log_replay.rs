//! Whole-log replay: a valid superblock and log header followed by arbitrary entry bytes (and
//! arbitrary header counters). Opening never panics, in either replay mode, and whatever the
//! tree serves is sound: clean paths, maps inside the data area, no two files sharing space.
#![no_main]

use famfs_fsdev::{Media, MemMedia};
use famfs_log::layout::LOG_OFFSET;
use famfs_log::namespace::NodeKind;
use famfs_log::{Famfs, MkfsOptions, OpenOptions, ReplayMode, mkfs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dev = MemMedia::new(10 << 20);
    let me = uuid::Uuid::from_u128(1);
    mkfs(&dev, 64 << 30, &MkfsOptions::new(me, "fuzz")).unwrap();
    if data.len() >= 16 {
        // The first 16 bytes are the (unprotected) header counters; the rest are entries.
        dev.write_at(LOG_OFFSET + 32, &data[..16]).unwrap();
        let rest = &data[16..];
        let n = rest.len().min(8 << 20);
        dev.write_at(LOG_OFFSET + 48, &rest[..n]).unwrap();
    }
    for mode in [ReplayMode::Strict, ReplayMode::Lenient] {
        let Ok(fs) = Famfs::open_device(dev.clone(), OpenOptions { replay: mode, ..Default::default() }) else {
            continue;
        };
        let ns = fs.state().namespace();
        let mut ranges = Vec::new();
        for (ino, n) in ns.iter() {
            assert!(ns.path_of(ino).components().all(|c| matches!(c, std::path::Component::Normal(_))));
            if let NodeKind::File(f) = &n.kind {
                assert!(f.fmap.capacity() >= f.size);
                for e in f.fmap.ranges() {
                    assert!(e.offset >= fs.superblock().data_start() && e.end() <= 64 << 30);
                    ranges.push((e.offset, e.end()));
                }
            }
        }
        ranges.sort();
        assert!(ranges.windows(2).all(|w| w[0].1 <= w[1].0));
    }
});
