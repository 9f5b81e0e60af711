//! Seed corpus of the cargo-fuzz targets in `fuzz/` (superblock, log_header, log_entry,
//! log_replay, mounts, sysfs_values), made from the reference-written images in `tests/data`
//! and from a few structures built here. Nothing binary is committed: `scripts/fuzz.sh` runs
//! this test with `FAMFS_FUZZ_SEEDS=<dir>` to write `<dir>/<target>/seed-*` files.
//!
//! Without the variable the test still builds every seed and checks that each one is accepted
//! by the parser its target feeds (so the seeds start the fuzzer past the CRC checks, on the
//! deep paths). Seed formats are the natural on-media bytes, which the targets read with
//! every checksum fixed up:
//!
//! * superblock: the 200 superblock bytes; log_header: the 48 header bytes; log_entry: one
//!   544-byte slot (its seqnum is its index);
//! * log_replay: a compact metadata image — superblock, log header, then the used entries —
//!   i.e. device bytes `[0, 200)` followed by `[2 MiB, 2 MiB + 48 + 544·n)`;
//! * mounts: a mount table; sysfs_values: one attribute value or name.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use famfs_fmap::{Extent, Fmap, InterleavedExtent};
use famfs_fsdev::mounts::parse_mounts;
use famfs_fsdev::{Media, MemMedia};
use famfs_log::entry::{AddDaxdevEntry, DirEntry, FileEntry, LogEntry};
use famfs_log::header::LogHeader;
use famfs_log::layout::{
    LOG_ENTRY_SIZE, LOG_HEADER_SIZE, LOG_OFFSET, SUPERBLOCK_SIZE, entry_offset,
};
use famfs_log::superblock::Superblock;
use famfs_log::{Famfs, OpenOptions, ReplayMode};
use fuzz_corpus::Corpus;
use uuid::Uuid;

const MIB: u64 = 1 << 20;

fn reference_image(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(format!("{name}.head10m.gz"));
    let gz = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

/// The compact image of a device holding `n` used entries.
fn compact(dev: &[u8], n: u64) -> Vec<u8> {
    let log = LOG_OFFSET as usize;
    let end = log + entry_offset(n) as usize;
    [&dev[..SUPERBLOCK_SIZE], &dev[log..end]].concat()
}

/// A compact image of a fresh file system followed by `entries`.
fn image_of(sb: &Superblock, entries: &[LogEntry]) -> Vec<u8> {
    let mut h = LogHeader::empty(sb.log_len);
    h.next_index = entries.len() as u64;
    h.next_seqnum = h.next_index;
    let mut v = [&sb.to_bytes()[..], &h.to_bytes()[..]].concat();
    for (i, e) in entries.iter().enumerate() {
        v.extend_from_slice(&e.encode(i as u64).unwrap());
    }
    v
}

fn ext(offset: u64, len: u64) -> Extent {
    Extent::new(0, offset, len)
}

fn file(path: &str, fmap: Fmap) -> LogEntry {
    LogEntry::File(FileEntry {
        path: path.into(),
        flags: 2,
        uid: 1000,
        gid: 1000,
        mode: 0o640,
        fmap,
    })
}

fn dir(path: &str) -> LogEntry {
    LogEntry::Mkdir(DirEntry {
        path: path.into(),
        uid: 0,
        gid: 0,
        mode: 0o755,
    })
}

/// Entries the reference images lack: every other type and the largest maps.
fn synthetic_entries() -> Vec<(&'static str, LogEntry)> {
    let sixteen = (0..16).map(|i| ext((64 + 4 * i) * MIB, 2 * MIB)).collect();
    let strips = (0..16)
        .map(|i| ext((256 + 16 * i) * MIB, 16 * MIB))
        .collect();
    vec![
        (
            "simple16",
            file("many/extents", Fmap::simple(31 * MIB, sixteen)),
        ),
        (
            "striped16",
            file(
                "wide",
                Fmap::striped(200 * MIB, vec![InterleavedExtent::new(4 * MIB, strips)]),
            ),
        ),
        ("longest-path", dir(&"d".repeat(79))),
        (
            "add-daxdev",
            LogEntry::AddDaxdev(AddDaxdevEntry {
                size: 16 << 30,
                uuid: Uuid::from_u128(0x0d0d_0d0d_1111_4222_8333_4444_4444_4444),
                index: 1,
            }),
        ),
        ("delete", LogEntry::Delete),
        ("unknown-type", LogEntry::Unknown(9)),
    ]
}

/// A log whose replay takes every skip path: duplicates, overlaps, out-of-order devices, a file
/// under a file, a map outside the device, a path naming a meta file.
fn troubled_log() -> Vec<LogEntry> {
    let one = |off, len| Fmap::simple(len, vec![ext(off, len)]);
    vec![
        dir("a"),
        file("a/x", one(64 * MIB, 4 * MIB)),
        dir("a"),
        file("a/x", one(128 * MIB, 2 * MIB)),
        file("a/overlap", one(66 * MIB, 2 * MIB)),
        file("a/x/under-a-file", one(192 * MIB, 2 * MIB)),
        file("missing/parent", one(196 * MIB, 2 * MIB)),
        file("past-the-end", one(8 << 30, 2 * MIB)),
        file(".meta", one(200 * MIB, 2 * MIB)),
        LogEntry::AddDaxdev(AddDaxdevEntry {
            size: 8 << 30,
            uuid: Uuid::from_u128(7),
            index: 2,
        }),
        LogEntry::AddDaxdev(AddDaxdevEntry {
            size: 8 << 30,
            uuid: Uuid::from_u128(7),
            index: 1,
        }),
        LogEntry::AddDaxdev(AddDaxdevEntry {
            size: 8 << 30,
            uuid: Uuid::from_u128(7),
            index: 2,
        }),
        file("a/y", one(204 * MIB, 2 * MIB)),
    ]
}

fn log_seeds(c: &mut Corpus) {
    let mut entries = BTreeMap::new();
    for name in ["ref1", "ref2"] {
        let dev = reference_image(name);
        let sb = &dev[..SUPERBLOCK_SIZE];
        let hdr = &dev[LOG_OFFSET as usize..][..LOG_HEADER_SIZE];
        let n = LogHeader::parse(hdr).unwrap().next_index;
        c.entry("superblock")
            .or_default()
            .insert(name.into(), sb.to_vec());
        c.entry("log_header")
            .or_default()
            .insert(name.into(), hdr.to_vec());
        c.entry("log_replay")
            .or_default()
            .insert(name.into(), compact(&dev, n));
        for i in 0..n {
            let at = (LOG_OFFSET + entry_offset(i)) as usize;
            let slot = dev[at..at + LOG_ENTRY_SIZE].to_vec();
            // ref2 repeats ref1's entries: keep each slot once.
            entries
                .entry(slot)
                .or_insert_with(|| format!("{name}-{i:02}"));
        }
    }
    for (slot, name) in entries {
        c.entry("log_entry").or_default().insert(name, slot);
    }
    for (name, e) in synthetic_entries() {
        c.entry("log_entry")
            .or_default()
            .insert(name.into(), e.encode(0).unwrap().to_vec());
    }

    // A fresh file system with a 16 MiB log, a 4 KiB allocation unit (the reference accepts
    // it) and a 64-byte device name (no NUL): empty, then with the synthetic and troubled logs.
    let me = Uuid::from_u128(0xf00d);
    let mut sb = Superblock::new(
        16 * MIB,
        8 << 30,
        me,
        Uuid::from_u128(1),
        Uuid::from_u128(2),
        &[b'x'; 64],
    );
    sb.alloc_unit = 4096;
    c.entry("superblock")
        .or_default()
        .insert("fresh-16m-log".into(), sb.to_bytes().to_vec());
    let h = LogHeader::empty(sb.log_len).to_bytes().to_vec();
    c.entry("log_header")
        .or_default()
        .insert("empty-16m-log".into(), h);
    let replay = c.entry("log_replay").or_default();
    replay.insert("fresh".into(), image_of(&sb, &[]));
    let synthetic: Vec<_> = std::iter::once(dir("many"))
        .chain(synthetic_entries().into_iter().map(|(_, e)| e))
        .collect();
    replay.insert("synthetic".into(), image_of(&sb, &synthetic));
    replay.insert("troubled".into(), image_of(&sb, &troubled_log()));
}

fn host_seeds(c: &mut Corpus) {
    let mounts: &[(&str, &str)] = &[
        (
            "famfs",
            "/dev/dax0.0 /mnt/famfs fuse.famfs rw,nosuid,nodev,relatime,user_id=0,group_id=0 0 0\n\
             proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n\
             famfs /mnt/legacy famfs rw,relatime 0 0\n",
        ),
        (
            "escapes",
            "/dev/dax1.0 /mnt/with\\040space\\011tab\\012nl\\134bs fuse.famfs rw 0 0\n\
             /dev/dax2.0 /mnt/bad\\9escape\\400 fuse.famfs rw\r\n\
             short line\n",
        ),
    ];
    for (name, table) in mounts {
        assert!(!parse_mounts(table).is_empty(), "{name}");
        c.entry("mounts")
            .or_default()
            .insert((*name).into(), table.as_bytes().to_vec());
    }
    let values = [
        ("size", "8589934592\n"),
        ("resource", "0x100000000\n"),
        ("dev", "252:0\n"),
        ("target-node", "-1\n"),
        ("name", "dax0.0"),
        ("path", "/dev/dax12.3"),
        ("region", "region4"),
        ("all", "all"),
        ("mode", "system-ram"),
        ("written-name", "dax0.0\n\0"),
    ];
    for (name, v) in values {
        c.entry("sysfs_values")
            .or_default()
            .insert(name.into(), v.as_bytes().to_vec());
    }
}

fn corpus() -> Corpus {
    let mut c = Corpus::new();
    log_seeds(&mut c);
    host_seeds(&mut c);
    c
}

/// Replays a log_replay seed as its target does (with an 18 MiB device).
fn replay(seed: &[u8]) -> Famfs<famfs_log::OffsetMedia<MemMedia>> {
    let dev = MemMedia::new((LOG_OFFSET + 16 * MIB) as usize);
    dev.write_at(0, &seed[..SUPERBLOCK_SIZE]).unwrap();
    dev.write_at(LOG_OFFSET, &seed[SUPERBLOCK_SIZE..]).unwrap();
    let opts = OpenOptions {
        replay: ReplayMode::Strict,
        meta_files: true,
        ..Default::default()
    };
    Famfs::open_device(dev, opts).unwrap()
}

#[test]
fn every_seed_reaches_its_parser() {
    let c = corpus();
    for sb in c["superblock"].values() {
        Superblock::parse(sb).unwrap();
    }
    for h in c["log_header"].values() {
        LogHeader::parse(h)
            .unwrap()
            .check(LogHeader::parse(h).unwrap().len)
            .unwrap();
    }
    let entries = &c["log_entry"];
    assert!(entries.len() >= 20 + synthetic_entries().len());
    for (name, slot) in entries {
        let slot: &[u8; LOG_ENTRY_SIZE] = slot[..].try_into().unwrap();
        let index = u64::from_le_bytes(slot[..8].try_into().unwrap());
        LogEntry::decode(slot, index).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let seeds = &c["log_replay"];
    for name in ["ref1", "ref2", "synthetic"] {
        let fs = replay(&seeds[name]);
        assert!(
            fs.state().problems().is_empty(),
            "{name}: {:?}",
            fs.state().problems()
        );
    }
    assert_eq!(replay(&seeds["ref2"]).state().stats().files, 13);
    let troubled = replay(&seeds["troubled"]);
    let st = troubled.state();
    assert_eq!(st.stats().entries, troubled_log().len() as u64);
    assert_eq!(
        (st.stats().files, st.stats().dirs, st.stats().daxdevs),
        (2, 1, 1)
    );
    assert_eq!(st.problems().len(), 8, "{:?}", st.problems());
}

/// With `FAMFS_FUZZ_SEEDS=<dir>`, writes the corpus to `<dir>/<target>/seed-<name>`.
#[test]
fn write_seeds_when_asked() {
    fuzz_corpus::write_if_asked(corpus).unwrap();
}
