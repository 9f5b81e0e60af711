//! Finding the users of a device in a fake proc tree, and in this process's real one.

use std::os::fd::AsRawFd;
use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::fake::FakeProc;

struct T {
    dir: tempfile::TempDir,
    proc: FakeProc,
    /// The "device": a stand-in file.
    dev: PathBuf,
}

fn setup() -> T {
    let dir = tempfile::tempdir().unwrap();
    let proc = FakeProc::new(dir.path().join("proc")).unwrap();
    std::fs::create_dir(dir.path().join("dev")).unwrap();
    let dev = dir.path().join("dev/dax0.0");
    std::fs::write(&dev, b"").unwrap();
    let other = dir.path().join("other.img");
    std::fs::write(&other, b"").unwrap();
    // Noise every test has: a process using other files, sockets and anonymous memory.
    proc.open_fd(1, "init", 0, Path::new("/dev/null"))
        .unwrap()
        .open_fd(1, "init", 3, Path::new("socket:[1234]"))
        .unwrap()
        .open_fd(1, "init", 4, &other)
        .unwrap()
        .map(
            1,
            "init",
            0x7f00_0000_0000,
            &other,
            &other.display().to_string(),
        )
        .unwrap();
    let maps = proc.root().join("1/maps");
    let mut text = std::fs::read_to_string(&maps).unwrap();
    text.push_str("7ffd0000-7ffd2000 rw-p 00000000 00:00 0                          [stack]\n");
    std::fs::write(&maps, text).unwrap();
    T { dir, proc, dev }
}

#[test]
fn nothing_uses_an_idle_device() {
    let t = setup();
    let u = t.proc.procfs().usage(&t.dev);
    assert!(!u.is_busy(), "{u:?}");
    assert_eq!((u.holders.len(), u.mounts.len(), u.uninspected), (0, 0, 0));
    assert_eq!(u.to_string(), "not in use");
}

#[test]
fn a_holder_is_found_by_its_fd() {
    let t = setup();
    t.proc.open_fd(412, "famfs_fused", 7, &t.dev).unwrap();
    let u = t.proc.procfs().usage(&t.dev);
    assert!(u.is_busy());
    assert_eq!(
        u.holders,
        vec![Holder {
            pid: 412,
            comm: "famfs_fused".into(),
            holds: vec![Hold::Fd(7)],
        }]
    );
    assert_eq!(
        u.to_string(),
        "open or mapped by famfs_fused (pid 412: fd 7)"
    );
    // The link may name the device through a symlink's target or a deleted node.
    t.proc.exit(412).unwrap();
    let deleted = format!("{} (deleted)", t.dev.display());
    t.proc.open_fd(9, "cat", 3, Path::new(&deleted)).unwrap();
    assert_eq!(
        t.proc.procfs().usage(&t.dev).holders[0].holds,
        vec![Hold::Fd(3)]
    );
}

#[test]
fn a_holder_is_found_by_its_mapping() {
    let t = setup();
    t.proc
        .map(
            77,
            "python3",
            0x7f12_0000_0000,
            &t.dev,
            &t.dev.display().to_string(),
        )
        .unwrap();
    let u = t.proc.procfs().usage(&t.dev);
    assert_eq!(u.holders.len(), 1, "{u:?}");
    assert_eq!(u.holders[0].pid, 77);
    assert_eq!(
        u.holders[0].holds,
        vec![Hold::Mapping {
            start: 0x7f12_0000_0000,
            end: 0x7f12_0020_0000
        }]
    );
    assert_eq!(u.to_string(), "open or mapped by python3 (pid 77: mapped)");
}

#[test]
fn a_mapping_is_the_device_by_inode_whatever_path_it_shows() {
    // Another name of the same file (a container's /dev, a hard link): same device and inode.
    let t = setup();
    t.proc
        .map(5, "daxmm", 0x1000_0000, &t.dev, "/somewhere/else")
        .unwrap()
        .map(5, "daxmm", 0x2000_0000, &t.dev, "/somewhere/else")
        .unwrap();
    let u = t.proc.procfs().usage(&t.dev);
    assert_eq!(u.holders[0].holds.len(), 2, "{u:?}");
    assert_eq!(u.holders[0].to_string(), "daxmm (pid 5: 2 mappings)");
}

#[test]
fn an_fd_is_the_device_by_identity_when_its_name_matches() {
    // A hard link of the stand-in in another directory, same file name: stat shows the inode.
    let t = setup();
    std::fs::create_dir(t.dir.path().join("elsewhere")).unwrap();
    let alias = t.dir.path().join("elsewhere/dax0.0");
    std::fs::hard_link(&t.dev, &alias).unwrap();
    t.proc.open_fd(8, "sh", 5, &alias).unwrap();
    // A different file of the same name is not the device.
    let other = t.dir.path().join("elsewhere2/dax0.0");
    std::fs::create_dir(other.parent().unwrap()).unwrap();
    std::fs::write(&other, b"").unwrap();
    t.proc.open_fd(9, "sh", 5, &other).unwrap();
    let u = t.proc.procfs().usage(&t.dev);
    assert_eq!(u.holders.len(), 1, "{u:?}");
    assert_eq!(
        (u.holders[0].pid, &u.holders[0].holds),
        (8, &vec![Hold::Fd(5)])
    );
}

#[test]
fn famfs_mounts_of_the_device_are_named() {
    let t = setup();
    let mpt = t.dir.path().join("mnt point");
    std::fs::create_dir(&mpt).unwrap();
    t.proc
        .mount(Path::new("/dev/vda"), Path::new("/"), "ext4")
        .unwrap()
        .mount(&t.dev, &t.dir.path().join("not-famfs"), "tmpfs")
        .unwrap()
        .mount(&t.dev, &mpt, "fuse.famfs")
        .unwrap();
    let u = t.proc.procfs().usage(&t.dev);
    assert_eq!(u.mounts, vec![mpt.clone()]);
    assert!(u.is_busy());
    assert_eq!(
        u.to_string(),
        format!("mounted on {} (famfs)", mpt.display())
    );
    t.proc.open_fd(412, "famfs_fused", 6, &t.dev).unwrap();
    assert_eq!(
        t.proc.procfs().usage(&t.dev).to_string(),
        format!(
            "mounted on {} (famfs); open or mapped by famfs_fused (pid 412: fd 6)",
            mpt.display()
        )
    );
}

#[test]
fn unreadable_processes_are_counted_and_vanished_ones_ignored() {
    let t = setup();
    // A process whose fd entry cannot be listed (here: not a directory).
    std::fs::create_dir(t.proc.root().join("300")).unwrap();
    std::fs::write(t.proc.root().join("300/fd"), b"").unwrap();
    // A process that exited between the listing and the read: no fd directory any more.
    std::fs::create_dir(t.proc.root().join("301")).unwrap();
    let u = t.proc.procfs().usage(&t.dev);
    assert_eq!((u.uninspected, u.is_busy()), (1, false), "{u:?}");
}

#[test]
fn many_holders_are_summarised() {
    let t = setup();
    for pid in 100..112 {
        t.proc.open_fd(pid, "worker", 3, &t.dev).unwrap();
    }
    let s = t.proc.procfs().usage(&t.dev).to_string();
    assert!(s.contains("worker (pid 107: fd 3)"), "{s}");
    assert!(!s.contains("pid 108"), "{s}");
    assert!(s.ends_with("and 4 more"), "{s}");
}

#[test]
fn this_process_is_found_in_the_real_proc() {
    // What keeps our own tools honest: a device they left open or mapped is found, so the
    // switch that would follow is refused.
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dax9.9");
    std::fs::File::create(&dev)
        .unwrap()
        .set_len(2 << 20)
        .unwrap();
    let me = std::process::id();
    let mine = |u: &DeviceUsage| u.holders.iter().find(|h| h.pid == me).cloned();
    let procfs = Procfs::system();
    assert!(mine(&procfs.usage(&dev)).is_none());

    let f = std::fs::File::open(&dev).unwrap();
    let fd = u32::try_from(f.as_raw_fd()).unwrap();
    let h = mine(&procfs.usage(&dev)).expect("open fd found");
    assert_eq!(h.holds, vec![Hold::Fd(fd)]);
    assert!(!h.comm.is_empty() && h.comm != "?", "{h:?}");

    // SAFETY: a fresh shared read-only mapping of 2 MiB of a file that is that long; nothing
    // dereferences it, and it is unmapped below before `f` is dropped.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 << 20,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    drop(f);
    let h = mine(&procfs.usage(&dev)).expect("mapping found");
    assert!(
        matches!(h.holds.as_slice(), [Hold::Mapping { start, end }] if *start == p as u64 && end - start == 2 << 20),
        "{h:?}"
    );
    // SAFETY: `p` is the 2 MiB mapping made above, unmapped once.
    assert_eq!(unsafe { libc::munmap(p, 2 << 20) }, 0);
    assert!(mine(&procfs.usage(&dev)).is_none());
}

#[test]
fn maps_lines_parse() {
    let l = parse_maps_line(
        b"7f5e2c000000-7f5e2c200000 rw-s 00000000 00:05 517                        /dev/dax0.0",
    )
    .unwrap();
    assert_eq!(
        (l.start, l.end, l.major, l.minor, l.inode, l.path),
        (
            0x7f5e_2c00_0000,
            0x7f5e_2c20_0000,
            0,
            5,
            517,
            &b"/dev/dax0.0"[..]
        )
    );
    let l =
        parse_maps_line(b"00400000-00401000 r-xp 00000000 fd:01 1234 /opt/my dir/a b (deleted)")
            .unwrap();
    assert_eq!((l.major, l.minor), (0xfd, 1));
    assert_eq!(l.path, b"/opt/my dir/a b (deleted)");
    let l = parse_maps_line(b"7ffd0000-7ffd2000 rw-p 00000000 00:00 0").unwrap();
    assert_eq!((l.inode, l.path), (0, &b""[..]));
    for bad in [
        &b""[..],
        b"garbage",
        b"1-2 rw-p 0 00:00",
        b"x-2 rw-p 0 00:00 0",
        b"1-2 rw-p 0 0000 0",
        b"1-2 rw-p 0 00:00 -1",
    ] {
        assert!(parse_maps_line(bad).is_none(), "{bad:?}");
    }
}

#[test]
fn a_busy_refusal_names_everything_and_gives_no_override() {
    let usage = DeviceUsage {
        device: "/dev/dax0.0".into(),
        mounts: vec!["/mnt/famfs".into()],
        holders: vec![Holder {
            pid: 412,
            comm: "famfs_fused".into(),
            holds: vec![Hold::Fd(5), Hold::Mapping { start: 0, end: 1 }],
        }],
        uninspected: 0,
    };
    let e = crate::Error::DeviceBusy {
        device: "dax0.0".into(),
        usage: Box::new(usage.clone()),
    };
    assert_eq!(e.errno(), Some(libc::EBUSY));
    assert_eq!(e.exit_code(), 240);
    let msg = e.to_string();
    assert!(
        msg.starts_with(
            "dax0.0: refusing to change modes: /dev/dax0.0 is in use: mounted on /mnt/famfs \
             (famfs); open or mapped by famfs_fused (pid 412: fd 5, mapped). Unmount it first \
             (famfs umount /mnt/famfs). Switching"
        ),
        "{msg}"
    );
    assert!(msg.contains("SIGBUS"), "{msg}");
    // A holder that is not the mount's daemon must be stopped by hand.
    let mut other = usage;
    other.holders[0].comm = "python3".into();
    let e = crate::Error::DeviceBusy {
        device: "dax0.0".into(),
        usage: Box::new(other),
    };
    assert!(e.to_string().contains("Stop those processes"), "{e}");
}

proptest! {
    #[test]
    fn arbitrary_maps_lines_never_panic(line in proptest::collection::vec(any::<u8>(), 0..120)) {
        let _ = parse_maps_line(&line);
    }

    #[test]
    fn printable_maps_lines_never_panic(line in "[0-9a-f: x/()-]{0,100}") {
        let _ = parse_maps_line(line.as_bytes());
    }
}
