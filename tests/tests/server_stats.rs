//! The daemon's request counters and `user.famfs.stats` (issue 8.3), against the emulated
//! kernel: every request the kernel sends is counted under its opcode (the counts equal what the
//! emulator sent), error replies by opcode and errno, the data path follows INIT, and the
//! attribute reads as a size query followed by the value although the value grows in between.

use std::time::Duration;

use famfs_log::alloc::AllocPolicy;
use famfs_server::stats::{DataPath, MetadataSource, STATS_XATTR, StatsV1};
use famfs_tests::kernel_emu::{KernelEmu, ROOT};
use famfs_tests::prereq;
use famfs_tests::standin::StandIn;
use fuse_famfs_proto::Operation;
use fuse_famfs_proto::abi::{GetxattrIn, Opcode};

const MIB: u64 = 1 << 20;

fn device() -> StandIn {
    let mut dev = StandIn::create(8 << 30).expect("stand-in");
    dev.mkdir_p("d").expect("mkdir");
    for (p, size) in [("d/a", 3 * MIB + 5), ("d/b", MIB), ("top", 4096)] {
        dev.add_file(p, size, AllocPolicy::Contiguous)
            .expect("add file");
    }
    dev
}

fn stats(k: &mut KernelEmu) -> StatsV1 {
    let raw = k.getxattr(ROOT, STATS_XATTR).expect("getxattr stats");
    serde_json::from_slice(&raw)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&raw)))
}

fn count(m: &std::collections::BTreeMap<String, u64>, k: &str) -> u64 {
    m.get(k).copied().unwrap_or(0)
}

/// The server's counters equal the requests the emulated kernel sent, opcode by opcode.
fn assert_counts_match(k: &KernelEmu, ops: &[Opcode]) {
    let s = k.server().expect("server").fs().stats();
    for &op in ops {
        assert_eq!(s.requests(op), k.sent(op), "{op:?}");
    }
}

#[test]
fn stock_path_counts_reads_and_errors() {
    let dev = device();
    let mut k = KernelEmu::start(dev.path(), dev.master_uuid(), false).expect("emulator");
    let before = stats(&mut k);
    assert_eq!(before.version, 1);
    assert_eq!(before.data_path, DataPath::Daemon);
    assert_eq!(before.metadata_source, MetadataSource::DeviceMapping);
    assert_eq!(before.role, "master");
    assert_eq!(before.dax_mode, "file");
    assert_eq!(before.device, dev.path().display().to_string());
    assert_eq!((before.files, before.directories), (3, 1));
    assert_eq!(before.log.entries_replayed, 4);
    assert!(before.log.capacity > 1000);
    assert!(before.log.last_refresh_unix_ms > 0);
    assert!(before.free_bytes < before.total_bytes);
    assert_eq!(count(&before.requests, "INIT"), 1);
    assert_eq!(count(&before.requests, "READ"), 0);

    for p in ["d/a", "d/b", "top"] {
        let e = k.lookup_path(p).unwrap();
        let f = k.open(e.nodeid, libc::O_RDONLY).unwrap();
        let size = dev.file(p).unwrap().size as usize;
        assert_eq!(k.read_file(&f, 0, size).unwrap().len(), size);
        k.close(&f).unwrap();
    }
    let missing = k.lookup(ROOT, b"no-such-file");
    assert!(missing.is_err());
    let after = stats(&mut k);
    let reads = count(&after.requests, "READ");
    assert!(reads >= 3, "{:?}", after.requests);
    assert_eq!(reads, k.sent(Opcode::READ));
    assert_eq!(count(&after.requests, "OPEN"), 3);
    assert_eq!(count(&after.errors, "LOOKUP"), 1, "{:?}", after.errors);
    assert_eq!(count(&after.errnos, "ENOENT"), 1, "{:?}", after.errnos);
    assert_eq!(count(&after.errors, "READ"), 0);
    assert_counts_match(
        &k,
        &[
            Opcode::LOOKUP,
            Opcode::OPEN,
            Opcode::READ,
            Opcode::FLUSH,
            Opcode::RELEASE,
            Opcode::GETXATTR,
        ],
    );
}

#[test]
fn famfs_path_counts_get_fmap() {
    if !prereq::cap_sys_rawio("famfs_path_counts_get_fmap") {
        return;
    }
    let dev = device();
    let mut k = KernelEmu::start(dev.path(), dev.master_uuid(), true).expect("emulator");
    assert!(k.famfs_enabled());
    let before = stats(&mut k);
    assert_eq!(before.data_path, DataPath::FamfsKernel);
    let fmaps = count(&before.requests, "GET_FMAP");
    for p in ["d/a", "d/b", "top"] {
        let size = dev.file(p).unwrap().size as usize;
        assert_eq!(k.read_via_fmap(p, 0, size).unwrap().len(), size);
    }
    let after = stats(&mut k);
    assert_eq!(count(&after.requests, "GET_FMAP"), fmaps + 3);
    assert_eq!(
        count(&after.requests, "READ"),
        0,
        "the kernel maps the files"
    );
    assert_eq!(count(&after.requests, "GET_FMAP"), k.sent(Opcode::GET_FMAP));
    assert_counts_match(&k, &[Opcode::GET_FMAP, Opcode::GET_DAXDEV, Opcode::OPEN]);
}

/// A size query, then a read with exactly that size, works although counters grew in between;
/// a buffer smaller than the value is ERANGE and counted as an error; LISTXATTR lists it.
#[test]
fn size_query_then_value_and_listxattr() {
    let dev = device();
    let mut k = KernelEmu::start(dev.path(), dev.master_uuid(), false).expect("emulator");
    let name = STATS_XATTR.as_bytes();
    let get = |k: &mut KernelEmu, size: u32| {
        k.call(
            ROOT,
            Operation::Getxattr {
                arg: GetxattrIn { size, padding: 0 },
                name,
            },
        )
        .expect("getxattr")
    };
    let probe = get(&mut k, 0).get(|r| r.xattr_size()).unwrap().size;
    // Many requests between the query and the read: the value grows by some digits.
    for _ in 0..200 {
        k.lookup(ROOT, b"d").unwrap();
    }
    let r = get(&mut k, probe);
    let v = r
        .get(|r| r.data(probe as usize))
        .expect("value fits")
        .to_vec();
    let s: StatsV1 = serde_json::from_slice(&v).unwrap();
    assert!(count(&s.requests, "LOOKUP") >= 200);
    // Too small a buffer: ERANGE, counted.
    let small = get(&mut k, 10);
    assert_eq!(small.errno(), Some(fuse_famfs_proto::Errno::ERANGE));
    let s = stats(&mut k);
    assert_eq!(count(&s.errnos, "ERANGE"), 1, "{:?}", s.errnos);
    assert_eq!(count(&s.errors, "GETXATTR"), 1);
    let list = k
        .call(
            ROOT,
            Operation::Listxattr(GetxattrIn {
                size: 4096,
                padding: 0,
            }),
        )
        .unwrap();
    let names = list.get(|r| r.data(4096)).unwrap().to_vec();
    let names: Vec<&[u8]> = names.split(|&b| b == 0).filter(|n| !n.is_empty()).collect();
    assert!(names.contains(&name), "{names:?}");
    // Only the root has it.
    let e = k.lookup(ROOT, b"top").unwrap();
    assert!(k.getxattr(e.nodeid, STATS_XATTR).is_err());
    // The watcher keeps the refresh time current.
    let t0 = stats(&mut k).log.last_refresh_unix_ms;
    std::thread::sleep(Duration::from_millis(300));
    assert!(stats(&mut k).log.last_refresh_unix_ms > t0);
}
