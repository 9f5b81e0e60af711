//! The famfs kernel path as a real famfs kernel drives it, for a dax device in famfs mode
//! (emulated on a stand-in, [`DeviceMode::Famfs`]): the daemon never maps the device, reads its
//! superblock and log only through its own mount (the emulated kernel resolves those reads
//! through the meta files' maps, [`famfs_tests::kernel_emu::EmuMount`]), `--dax auto` accepts
//! the kernel's offer, every opened file costs exactly one GET_FMAP, GET_DAXDEV succeeds, faults
//! resolve to the bytes written, and no READ or WRITE is ever sent for file data; STATX may
//! arrive and is answered ENOSYS. A device in devdax mode is refused by the kernel at GET_DAXDEV
//! (EIO for the file's I/O, not asked again). A famfs-mode device on a kernel without famfs is
//! not served.
//!
//! Accepting famfs needs CAP_SYS_RAWIO (root): without it these tests fail under `CI=true` and
//! skip loudly otherwise.

use std::path::Path;
use std::time::{Duration, Instant};

use famfs_log::alloc::AllocPolicy;
use famfs_log::replay::{META_LOG_INO, META_SB_INO};
use famfs_server::control::proto::{self, Answer, Request, WireError, WirePath, WirePolicy};
use famfs_server::control::{self, ControlOptions};
use famfs_server::{DaxPolicy, ServerError};
use famfs_tests::kernel_emu::{DeviceMode, EmuError, EmuOptions, KernelEmu};
use famfs_tests::prereq;
use famfs_tests::standin::{INTERLEAVE_3X2M, StandIn};
use fuse_famfs_proto::Errno;
use fuse_famfs_proto::abi::Opcode;

const MIB: u64 = 1 << 20;

fn device() -> StandIn {
    let mut dev = StandIn::create(8 << 30).expect("stand-in");
    dev.mkdir_p("d/e").expect("mkdir");
    dev.add_file("d/e/simple", 3 * MIB + 77, AllocPolicy::Contiguous)
        .expect("file");
    dev.add_file("striped", 20 * MIB + 5, INTERLEAVE_3X2M)
        .expect("file");
    dev.add_file("one", 1, AllocPolicy::Contiguous)
        .expect("file");
    dev
}

fn options(dev: &StandIn, mode: DeviceMode) -> EmuOptions {
    let mut o = EmuOptions::new(dev.path(), dev.master_uuid(), true);
    // The daemon's default: the kernel path only for a device the kernel can map.
    o.config.dax = DaxPolicy::Auto;
    o.device_mode = Some(mode);
    o
}

/// One control-channel request (root only, as the CLI sends it).
fn call(s: &mut std::os::unix::net::UnixStream, req: &Request) -> Result<Answer, WireError> {
    proto::write_frame(s, &proto::encode_request(req)).unwrap();
    let mut buf = Vec::new();
    assert!(proto::read_frame(s, &mut buf).unwrap());
    proto::parse_reply(&buf).unwrap()
}

#[test]
fn famfs_mode_device_one_fmap_per_file_and_no_read_or_write() {
    if !prereq::cap_sys_rawio("famfs_mode_device_one_fmap_per_file_and_no_read_or_write") {
        return;
    }
    let mut dev = device();
    let mut k = KernelEmu::start_with(options(&dev, DeviceMode::Famfs)).expect("emulator");
    assert!(
        k.famfs_enabled(),
        "--dax auto accepts for a famfs-mode device"
    );
    let server = k.server().unwrap().clone();
    assert!(!server.fs().is_mapped(), "the device is never mapped");
    assert!(server.fs().meta_through_mount());
    let mount = k.own_mount().unwrap().clone();

    let paths = ["d/e/simple", "striped", "one"];
    for (round, p) in paths.iter().chain(paths.iter()).enumerate() {
        let e = k.lookup_path(p).unwrap();
        // stat(2): STATX first, ENOSYS, then GETATTR (STATX is not sent again).
        let a = k.stat_node(e.nodeid).unwrap();
        let size = dev.file(p).unwrap().size;
        assert_eq!(a.size, size);
        let f = k.open(e.nodeid, libc::O_RDONLY).unwrap();
        let got = k.read_fmap(&f, 0, size as usize + 10).unwrap();
        assert!(
            got == dev.expected(p, 0, size),
            "{p}: bytes differ (round {round})"
        );
        // A fault in the middle resolves where the pattern was written.
        let mid = size / 2;
        let r = k.resolve(e.nodeid, mid).unwrap();
        let mut b = [0u8; 1];
        dev.map().unwrap().read(r.dev_offset.0, &mut b).unwrap();
        assert_eq!(b.to_vec(), dev.expected(p, mid, 1), "{p}: fault at {mid}");
        k.close(&f).unwrap();
    }
    assert_eq!(k.sent(Opcode::GET_FMAP), 3, "one GET_FMAP per opened file");
    assert_eq!(k.sent(Opcode::GET_DAXDEV), 1);
    assert_eq!(k.daxdev_state(0), Some(Ok(())), "GET_DAXDEV accepted");
    assert_eq!(k.sent(Opcode::STATX), 1, "ENOSYS is remembered");
    assert_eq!(k.sent(Opcode::READ) + k.sent(Opcode::WRITE), 0);

    // Another host appends: the watcher reads it through the own mount.
    dev.add_file("later", 5 * MIB, AllocPolicy::Contiguous)
        .expect("append");
    let until = Instant::now() + Duration::from_secs(5);
    let e = loop {
        match k.lookup_path("later") {
            Ok(e) => break e,
            Err(_) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("the appended file never appeared: {e}"),
        }
    };
    let f = k.open(e.nodeid, libc::O_RDONLY).unwrap();
    let got = k.read_fmap(&f, 0, 5 * MIB as usize).unwrap();
    assert!(got == dev.expected("later", 0, 5 * MIB));
    k.close(&f).unwrap();

    // The master appends through the control channel: written through the own mount.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("ctl.sock");
    let _ctl = control::start(
        server.fs().clone(),
        ControlOptions {
            socket: socket.clone(),
            mountpoint: None,
            log_control: None,
        },
    )
    .unwrap();
    let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    let host = Some(dev.master_uuid().to_string());
    call(&mut s, &Request::Hello { host }).unwrap();
    let created = call(
        &mut s,
        &Request::Create {
            path: WirePath::Text("made-by-daemon".into()),
            size: 3 * MIB,
            attr: famfs_tests::standin::FILE_ATTR.into(),
            policy: WirePolicy::Contiguous,
            existing: false,
        },
    );
    assert!(matches!(created, Ok(Answer::Logged { .. })), "{created:?}");
    // The log on the device holds it: an offline replay sees it.
    let seen = dev
        .with_writer(|w, _| {
            w.famfs()
                .state()
                .namespace()
                .resolve(b"made-by-daemon")
                .is_ok()
        })
        .unwrap();
    assert!(seen, "the append reached the device");
    let e = k.lookup_path("made-by-daemon").unwrap();
    assert_eq!(e.attr.size, 3 * MIB);

    // The daemon's own reads: each meta file's map fetched once, no READ or WRITE at all.
    let per_node = mount.fmaps_per_node();
    assert_eq!(per_node.get(&META_SB_INO.get()), Some(&1), "{per_node:?}");
    assert_eq!(per_node.get(&META_LOG_INO.get()), Some(&1), "{per_node:?}");
    assert_eq!(mount.sent(Opcode::READ) + mount.sent(Opcode::WRITE), 0);
    assert!(mount.sent(Opcode::OPEN) > 2, "the watcher kept reading");
    // The daemon's own request counters (what `user.famfs.stats` and `famfs status` show) say
    // the same: every GET_FMAP the kernel and the own mount sent, and no READ or WRITE at all.
    let stats = server.fs().stats();
    assert_eq!(
        stats.requests(Opcode::GET_FMAP),
        k.sent(Opcode::GET_FMAP) + mount.sent(Opcode::GET_FMAP)
    );
    assert_eq!(stats.requests(Opcode::GET_DAXDEV), 1);
    assert_eq!(
        stats.requests(Opcode::READ) + stats.requests(Opcode::WRITE),
        0,
        "{}",
        stats.summary()
    );
    assert_eq!(
        stats.data_path(),
        famfs_server::stats::DataPath::FamfsKernel
    );
    assert_eq!(
        stats.metadata_source(),
        famfs_server::stats::MetadataSource::OwnMount
    );
    k.shutdown().unwrap();
}

#[test]
fn devdax_device_fails_io_with_eio_and_get_daxdev_is_not_retried() {
    if !prereq::cap_sys_rawio("devdax_device_fails_io_with_eio_and_get_daxdev_is_not_retried") {
        return;
    }
    let dev = device();
    let mut opts = options(&dev, DeviceMode::Devdax);
    // What `--dax always` does on a real famfs kernel with a devdax-mode device.
    opts.config.dax = DaxPolicy::Always;
    let mut k = KernelEmu::start_with(opts).expect("emulator");
    assert!(k.famfs_enabled());
    for p in ["d/e/simple", "striped"] {
        let f = k.open_path(p, libc::O_RDONLY).expect("OPEN succeeds");
        let e = k.read_fmap(&f, 0, 10).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EIO), "{p}: {e}");
        k.close(&f).unwrap();
    }
    assert!(matches!(k.daxdev_state(0), Some(Err(_))));
    assert_eq!(k.sent(Opcode::GET_DAXDEV), 1, "not asked again");
    assert_eq!(k.sent(Opcode::READ), 0);

    // `--dax auto` declines for a devdax device and serves READ itself.
    let mut k = KernelEmu::start_with(options(&dev, DeviceMode::Devdax)).expect("emulator");
    assert!(!k.famfs_enabled());
    let got = k.read_via_fuse("one", 0, 10).unwrap();
    assert_eq!(got, dev.expected("one", 0, 1));
}

#[test]
fn famfs_mode_device_without_a_famfs_kernel_is_not_served() {
    let dev = device();
    let mut opts = options(&dev, DeviceMode::Famfs);
    opts.offer_famfs = false;
    let r = KernelEmu::start_with(opts);
    let why = match r {
        Err(EmuError::Server(ServerError::FamfsKernelNeeded(why))) => why,
        Err(e) => {
            // The session ended before the emulator saw it: the reason is in the error chain.
            let s = e.to_string();
            assert!(s.contains("devdax"), "{s}");
            s
        }
        Ok(_) => panic!("a famfs-mode device was served without the famfs kernel path"),
    };
    assert!(
        why.contains("daxctl-famfs reconfigure-device -m devdax"),
        "{why}"
    );
    assert!(Path::new(dev.path()).exists());
}
