//! Compatibility with images written by the reference C tools (tests/data/ref*.head10m.gz).
//!
//! Read side: every superblock field, log-header field and log entry listed in the reference's
//! own description (`ref*.txt`) is what we decode. Write side: replaying the reference's
//! commands through our writer (same UUIDs, same system UUID) yields byte-identical superblock
//! and log regions.

use std::io::Read;
use std::path::{Path, PathBuf};

use famfs_fmap::{Extent, Fmap, FmapKind, InterleavedExtent};
use famfs_fsdev::{Media, MemMedia};
use famfs_log::alloc::AllocPolicy;
use famfs_log::entry::{AddDaxdevEntry, FileEntry, LogEntry};
use famfs_log::layout::{LOG_ENTRY_SIZE, entry_offset};
use famfs_log::namespace::{Attr, NodeKind};
use famfs_log::{Famfs, MkfsOptions, OpenOptions, ReplayMode, mkfs};
use uuid::Uuid;

const IMG_LEN: usize = 10 << 20;
const DEV_SIZE: u64 = 8 << 30;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn image(name: &str) -> MemMedia {
    let gz = std::fs::read(data(&format!("{name}.head10m.gz"))).unwrap();
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut bytes)
        .unwrap();
    assert_eq!(bytes.len(), IMG_LEN);
    let m = MemMedia::new(IMG_LEN);
    m.write_at(0, &bytes).unwrap();
    m
}

fn field<'a>(txt: &'a str, key: &str) -> &'a str {
    txt.lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim())
        })
        .unwrap_or_else(|| panic!("{key} not in description"))
}

fn num(s: &str) -> u64 {
    let s = s.split_whitespace().next().unwrap();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).unwrap(),
        None => s.parse().unwrap(),
    }
}

fn ext(s: &str) -> Extent {
    let (o, l) = s.split_once('+').unwrap();
    Extent::new(0, num(o), num(l))
}

/// One line of the description's `[summary]` section, as an expected entry.
#[derive(Debug)]
enum Expect {
    Dir {
        path: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    File(FileEntry),
    Daxdev {
        index: u32,
        size: u64,
    },
}

fn summary(txt: &str) -> Vec<Expect> {
    let mut out = Vec::new();
    let start = txt.find("[summary]").unwrap();
    for line in txt[start..].lines().skip(1) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('[') {
            break;
        }
        let (left, right) = line.split_once(" | ").unwrap_or((line, ""));
        let w: Vec<&str> = left.split_whitespace().collect();
        match w[1] {
            "DIR" => out.push(Expect::Dir {
                path: w[6].trim_end_matches('/').to_string(),
                mode: u32::from_str_radix(w[2], 8).unwrap(),
                uid: w[3].parse().unwrap(),
                gid: w[4].parse().unwrap(),
            }),
            "FILE" => {
                let size = w[5].parse().unwrap();
                let fmap = if let Some(r) = right.strip_prefix("simple ") {
                    Fmap::simple(size, r.split_whitespace().map(ext).collect())
                } else {
                    let r = right.strip_prefix("interleave ").unwrap();
                    let chunk = num(r.split("chunk=").nth(1).unwrap());
                    let strips = r.split("strips: ").nth(1).unwrap();
                    Fmap::striped(
                        size,
                        vec![InterleavedExtent::new(
                            chunk,
                            strips.split_whitespace().map(ext).collect(),
                        )],
                    )
                };
                out.push(Expect::File(FileEntry {
                    path: PathBuf::from(w[6]),
                    flags: 2,
                    uid: w[3].parse().unwrap(),
                    gid: w[4].parse().unwrap(),
                    mode: u32::from_str_radix(w[2], 8).unwrap(),
                    fmap,
                }));
            }
            "ADD_DAXDEV" => out.push(Expect::Daxdev {
                index: w[2].trim_start_matches("index=").parse().unwrap(),
                size: w[3].trim_start_matches("size=").parse().unwrap(),
            }),
            other => panic!("unknown summary type {other}"),
        }
    }
    out
}

fn read_side(name: &str) {
    let txt = std::fs::read_to_string(data(&format!("{name}.txt"))).unwrap();
    let dev = image(name);
    let owner = Uuid::parse_str(field(&txt, "ts_system_uuid")).unwrap();
    let fs = Famfs::open_device(
        dev.clone(),
        OpenOptions {
            system_uuid: Some(owner),
            replay: ReplayMode::Strict,
            ..Default::default()
        },
    )
    .unwrap();
    let sb = fs.superblock();
    assert_eq!(sb.uuid.to_string(), field(&txt, "ts_uuid"));
    assert_eq!(sb.dev_uuid.to_string(), field(&txt, "ts_dev_uuid"));
    assert_eq!(sb.system_uuid, owner);
    assert_eq!(sb.log_offset, num(field(&txt, "ts_log_offset")));
    assert_eq!(sb.log_len, num(field(&txt, "ts_log_len")));
    assert_eq!(sb.alloc_unit, num(field(&txt, "ts_alloc_unit")));
    assert_eq!(
        format!("{}.{}", sb.omf_version.0, sb.omf_version.1),
        field(&txt, "ts_omf_ver")
    );
    assert_eq!(sb.dev_size, num(field(&txt, "ts_daxdev.dd_size")));
    assert_eq!(
        format!("{:?}", sb.dev_name_lossy()),
        field(&txt, "ts_daxdev.dd_daxdev")
    );
    assert_eq!(sb.flags as u64, num(field(&txt, "ts_sb_flags")));
    let mut crc = [0u8; 8];
    dev.read_at(96, &mut crc).unwrap();
    assert_eq!(u64::from_le_bytes(crc), num(field(&txt, "ts_crc")));
    let h = fs.header();
    assert_eq!(h.len, num(field(&txt, "famfs_log_len")));
    assert_eq!(h.last_index, num(field(&txt, "famfs_log_last_index")));
    assert_eq!(h.next_seqnum, num(field(&txt, "famfs_log_next_seqnum")));
    assert_eq!(h.next_index, num(field(&txt, "famfs_log_next_index")));
    assert_eq!(fs.role(), famfs_log::role::Role::Master);

    let expect = summary(&txt);
    assert_eq!(expect.len() as u64, h.next_index);
    let st = fs.state();
    assert!(st.problems().is_empty(), "{:?}", st.problems());
    assert_eq!(st.stats().collisions, 0);
    let ns = st.namespace();
    let (mut files, mut dirs) = (0, 0);
    for (i, e) in expect.iter().enumerate() {
        // The decoded entry itself...
        let mut slot = [0u8; LOG_ENTRY_SIZE];
        dev.read_at(0x20_0000 + entry_offset(i as u64), &mut slot)
            .unwrap();
        let decoded = LogEntry::decode(&slot, i as u64).unwrap();
        match (e, &decoded) {
            (Expect::File(f), LogEntry::File(d)) => assert_eq!(d, f, "entry {i}"),
            (
                Expect::Dir {
                    path,
                    mode,
                    uid,
                    gid,
                },
                LogEntry::Mkdir(d),
            ) => {
                assert_eq!(
                    (d.path.to_str().unwrap(), d.mode, d.uid, d.gid),
                    (path.as_str(), *mode, *uid, *gid)
                );
            }
            (Expect::Daxdev { index, size }, LogEntry::AddDaxdev(a)) => {
                assert_eq!((a.index, a.size), (*index, *size));
                assert_eq!(a.uuid.to_string(), "0d0d0d0d-1111-4222-8333-444444444444");
            }
            other => panic!("entry {i}: {other:?}"),
        }
        // ...and what the tree holds for it.
        match e {
            Expect::File(f) => {
                files += 1;
                let ino = ns.resolve(f.path.to_str().unwrap().as_bytes()).unwrap();
                let n = ns.get(ino).unwrap();
                assert_eq!(
                    (n.attr.mode, n.attr.uid, n.attr.gid),
                    (f.mode, f.uid, f.gid)
                );
                let NodeKind::File(fnode) = &n.kind else {
                    panic!("{i} not a file")
                };
                assert_eq!(fnode.size, f.size());
                assert_eq!(*fnode.fmap, f.fmap);
                assert_eq!(n.log_index, Some(i as u64));
            }
            Expect::Dir { path, mode, .. } => {
                dirs += 1;
                let n = ns.get(ns.resolve(path.as_bytes()).unwrap()).unwrap();
                assert!(n.is_dir());
                assert_eq!(n.attr.mode, *mode);
            }
            Expect::Daxdev { .. } => {}
        }
    }
    assert_eq!((ns.file_count(), ns.dir_count()), (files, dirs));
    // The 79-byte name survives intact.
    assert!(
        ns.resolve(b"a/b/c/this_is_a_long_file_name_that_exercises_the_80_byte_relpath_field_0123")
            .is_ok()
    );
}

#[test]
fn reads_reference_image_1() {
    read_side("ref1");
}

#[test]
fn reads_reference_image_2_with_add_daxdev() {
    read_side("ref2");
    let fs = Famfs::open_device(image("ref2"), OpenOptions::default()).unwrap();
    assert_eq!(fs.state().daxdevs().len(), 1);
    assert_eq!(fs.role(), famfs_log::role::Role::Client);
}

/// Re-run the reference's commands (each as its own writer session, as each CLI call is its
/// own process) and compare the metadata bytes with the reference image. Striped files use the
/// reference's random bucket order, so they are appended as logged.
fn write_side(name: &str) {
    let txt = std::fs::read_to_string(data(&format!("{name}.txt"))).unwrap();
    let reference = image(name);
    let owner = Uuid::parse_str(field(&txt, "ts_system_uuid")).unwrap();
    let dev = MemMedia::new(IMG_LEN);
    let mut opts = MkfsOptions::new(owner, "/dev/dax0.0");
    opts.fs_uuid = Some(Uuid::parse_str(field(&txt, "ts_uuid")).unwrap());
    opts.dev_uuid = Some(Uuid::parse_str(field(&txt, "ts_dev_uuid")).unwrap());
    mkfs(&dev, DEV_SIZE, &opts).unwrap();
    let mut fs = Famfs::open_device(
        dev.clone(),
        OpenOptions {
            system_uuid: Some(owner),
            ..Default::default()
        },
    )
    .unwrap();
    for e in summary(&txt) {
        let mut w = fs.writer().unwrap();
        match e {
            Expect::Dir {
                path,
                mode,
                uid,
                gid,
            } => {
                w.mkdir(path.as_ref(), Attr { mode, uid, gid }).unwrap();
            }
            Expect::File(f) if matches!(f.fmap.kind, FmapKind::Simple(_)) => {
                let attr = Attr {
                    mode: f.mode,
                    uid: f.uid,
                    gid: f.gid,
                };
                let (_, got) = w
                    .create(&f.path, f.size(), attr, &AllocPolicy::Contiguous)
                    .unwrap();
                assert_eq!(
                    got.fmap,
                    f.fmap,
                    "{}: our allocator chose differently",
                    f.path.display()
                );
            }
            Expect::File(f) => {
                w.append(&LogEntry::File(f)).unwrap();
            }
            Expect::Daxdev { index, size } => {
                w.append(&LogEntry::AddDaxdev(AddDaxdevEntry {
                    size,
                    uuid: Uuid::parse_str("0d0d0d0d-1111-4222-8333-444444444444").unwrap(),
                    index,
                }))
                .unwrap();
            }
        }
    }
    let (ours, theirs) = (dev.snapshot(), reference.snapshot());
    assert!(
        ours[..0x20_0000] == theirs[..0x20_0000],
        "superblock region differs"
    );
    for i in 0..(IMG_LEN - 0x20_0000) / 4096 {
        let r = 0x20_0000 + i * 4096..0x20_0000 + (i + 1) * 4096;
        assert!(
            ours[r.clone()] == theirs[r.clone()],
            "log differs in bytes {r:?}"
        );
    }
}

#[test]
fn writes_reference_image_1_byte_for_byte() {
    write_side("ref1");
}

#[test]
fn writes_reference_image_2_byte_for_byte() {
    write_side("ref2");
}
