//! `famfs mount` over a mount's whole life, with the real CLI and daemon: a plain `umount MPT`
//! followed at once by a new `famfs mount` at the same place (the old daemon must leave the new
//! mount alone).
//!
//! Needs root and /dev/fuse: under `CI=true` a missing prerequisite fails, otherwise the tests
//! skip loudly. The binaries are `$FAMFS_CLI` / `$FAMFS_FUSED` or built on first use (see
//! `famfs_tests::fused`).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use famfs_log::alloc::AllocPolicy;
use famfs_tests::fused::{daemon_pid, famfs_cli, famfs_fused, is_famfs_mounted, is_mounted};
use famfs_tests::prereq;
use famfs_tests::standin::StandIn;

const MIB: u64 = 1 << 20;

/// `famfs ARGS` as the master of `dev` (its system UUID in the environment, which the daemon
/// inherits), with the workspace's daemon.
fn famfs(dev: &StandIn, args: &[&str]) -> Output {
    Command::new(famfs_cli())
        .args(args)
        .env("FAMFS_SYSTEM_UUID", dev.master_uuid().to_string())
        .env("FAMFS_FUSED", famfs_fused())
        .stdin(Stdio::null())
        .output()
        .expect("running famfs")
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Whether process `pid` still runs (a zombie has exited: its parent, the `famfs mount` that
/// started it, is gone, and whoever inherited it may reap it late).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().to_string())
        })
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}

/// Unmounts (lazily) whatever famfs is left at the mount point when a test ends.
struct Cleanup<'a>(&'a Path);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for _ in 0..3 {
            if !is_mounted(self.0) {
                break;
            }
            let pid = daemon_pid(self.0);
            let _ = nix::mount::umount2(self.0, nix::mount::MntFlags::MNT_DETACH);
            if let Some(p) = pid {
                let deadline = Instant::now() + Duration::from_secs(5);
                while alive(p) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Plain umount, then mount again at once

#[test]
fn plain_umount_then_an_immediate_mount_keeps_the_new_mount() {
    if !prereq::root_and_fuse("plain_umount_then_an_immediate_mount...") {
        return;
    }
    let mut dev = StandIn::create(4 << 30).unwrap();
    let f = dev
        .add_file("f", 3 * MIB + 5, AllocPolicy::Contiguous)
        .unwrap();
    let want = dev.expected("f", 0, f.size);
    let mpt = dev.mountpoint("mnt");
    let _cleanup = Cleanup(&mpt);
    let (devs, mpts) = (dev.path().to_str().unwrap(), mpt.to_str().unwrap());
    let o = famfs(&dev, &["mount", devs, mpts]);
    assert!(o.status.success(), "first mount: {}", text(&o));

    const CYCLES: usize = 50;
    let (mut failed, mut torn_down) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for cycle in 0..CYCLES {
        // Recover from a previous cycle's loss (counted there).
        for attempt in 0..5 {
            if is_famfs_mounted(&mpt) {
                break;
            }
            let o = famfs(&dev, &["mount", devs, mpts]);
            assert!(
                o.status.success() || attempt < 4,
                "cycle {cycle}: cannot mount again ({} failed, torn down {torn_down:?} so far): {}",
                failed.len(),
                text(&o)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let old = daemon_pid(&mpt).expect("the mount names its daemon");
        let st = Command::new("umount").arg(&mpt).status().unwrap();
        assert!(st.success(), "cycle {cycle}: umount {}", mpt.display());
        // The old daemon is still on its way out: mount again at once.
        let o = famfs(&dev, &["mount", devs, mpts]);
        if !o.status.success() {
            failed.push(format!("cycle {cycle}: {}", text(&o)));
            continue;
        }
        // Whatever the old daemon does on exit, it has done it once it is gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(old) {
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: old daemon {old} still running 5 s after umount"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let serving = is_famfs_mounted(&mpt)
            && std::fs::metadata(mpt.join("f")).is_ok_and(|m| m.len() == f.size)
            && std::fs::read(mpt.join("f")).is_ok_and(|b| b == want);
        if !serving {
            torn_down.push(cycle);
        }
    }
    prereq::say(&format!(
        "{CYCLES} umount + famfs mount cycles in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    assert!(
        failed.is_empty() && torn_down.is_empty(),
        "of {CYCLES} cycles, {} mounts failed and {} new mounts were gone (or not serving) \
         once the old daemon exited (cycles {torn_down:?}):\n{}",
        failed.len(),
        torn_down.len(),
        failed.join("\n")
    );
    let o = famfs(&dev, &["umount", mpts]);
    assert!(o.status.success(), "famfs umount: {}", text(&o));
    assert!(!is_mounted(&mpt));
}

// ------------------------------------------------------------------------------------------
// One replay per mount: the daemon validates, the CLI does not read the log

#[test]
fn a_corrupt_log_fails_famfs_mount_with_the_daemons_message_and_nothing_mounted() {
    if !prereq::root_and_fuse("a_corrupt_log_fails_famfs_mount...") {
        return;
    }
    let mut dev = StandIn::create(4 << 30).unwrap();
    dev.add_file("f", MIB, AllocPolicy::Contiguous).unwrap();
    let mpt = dev.mountpoint("mnt");
    let _cleanup = Cleanup(&mpt);
    let (devs, mpts) = (dev.path().to_str().unwrap(), mpt.to_str().unwrap());
    let name = dev
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    for (what, off, mask) in [
        ("log magic", famfs_log::layout::LOG_OFFSET, 0x01u8),
        ("log header crc", famfs_log::layout::LOG_OFFSET + 9, 0x40),
    ] {
        dev.corrupt(off, mask).unwrap();
        let o = famfs(&dev, &["mount", devs, mpts]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{what}: {}", text(&o));
        // The daemon's own line (`famfs_fused: ...`, naming the device and the log), passed on
        // through the ready pipe.
        let line = err
            .lines()
            .find(|l| l.contains("famfs_fused: "))
            .unwrap_or_else(|| panic!("{what}: not the daemon's message:\n{err}"));
        assert!(
            line.contains(&name) && line.to_lowercase().contains("log"),
            "{what}: {line}"
        );
        assert!(line.contains("nothing is mounted"), "{what}: {line}");
        assert!(!is_mounted(&mpt), "{what}: something is mounted");
        assert!(
            std::fs::read_dir(&mpt).unwrap().next().is_none(),
            "{what}: mount point not empty"
        );
        dev.corrupt(off, mask).unwrap();
    }
    // Repaired, it mounts.
    let o = famfs(&dev, &["mount", devs, mpts]);
    assert!(o.status.success(), "repaired: {}", text(&o));
    let o = famfs(&dev, &["umount", mpts]);
    assert!(o.status.success(), "{}", text(&o));
}

/// Bytes read with read(2)-like calls by `famfs ARGS` (`rchar` of a shell that ran and reaped
/// it: a reaped child's I/O counts to its parent), and its exit status.
fn famfs_rchar(dev: &StandIn, args: &[&str]) -> (u64, i32) {
    let script = r#"cli="$1"; shift; "$cli" "$@" >/dev/null 2>&1; st=$?
        while read -r k v; do [ "$k" = rchar: ] && echo "$v $st"; done < /proc/$$/io"#;
    let o = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(famfs_cli())
        .args(args)
        .env("FAMFS_SYSTEM_UUID", dev.master_uuid().to_string())
        .env("FAMFS_FUSED", famfs_fused())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let mut it = out.split_whitespace().map(|w| w.parse::<u64>().unwrap());
    let (rchar, st) = (it.next().unwrap(), it.next().unwrap());
    (rchar, st as i32)
}

#[test]
fn famfs_mount_leaves_the_log_to_the_daemon() {
    if !prereq::root_and_fuse("famfs_mount_leaves_the_log_to_the_daemon") {
        return;
    }
    let dev = StandIn::create(4 << 30).unwrap();
    // 8,000 directories: 4.4 MB of log entries that a replay reads.
    const DIRS: usize = 8000;
    dev.with_writer(|w, _| {
        for i in 0..DIRS {
            w.mkdir_p(
                Path::new(&format!("d{}/e{i}", i % 50)),
                famfs_tests::standin::DIR_ATTR,
            )
            .unwrap();
        }
    })
    .unwrap();
    let log_bytes = (DIRS as u64 + 50) * famfs_log::layout::LOG_ENTRY_SIZE as u64;
    let mpt = dev.mountpoint("mnt");
    let _cleanup = Cleanup(&mpt);
    let (devs, mpts) = (dev.path().to_str().unwrap(), mpt.to_str().unwrap());
    // What a replay reads, measured the same way: an offline listing of the tree.
    let (replay, st) = famfs_rchar(&dev, &["logplay", "--ls", devs]);
    assert_eq!(st, 0, "logplay");
    let (mount, st) = famfs_rchar(&dev, &["mount", devs, mpts]);
    assert_eq!(st, 0, "mount");
    prereq::say(&format!(
        "log of {log_bytes} bytes: `famfs logplay` read {replay} bytes, `famfs mount` {mount}"
    ));
    assert!(replay >= log_bytes, "the measure sees a replay: {replay}");
    assert!(
        mount < log_bytes / 8,
        "famfs mount read {mount} bytes: it replayed the {log_bytes}-byte log itself"
    );
    // The daemon did replay it.
    assert_eq!(famfs_tests::fused::names(&mpt.join("d7")).len(), DIRS / 50);
    let o = famfs(&dev, &["umount", mpts]);
    assert!(o.status.success(), "{}", text(&o));
}

// ------------------------------------------------------------------------------------------
// mount(8), fstab and supervisors

/// Where mount(8) (util-linux) looks for the helper of type `fuse.famfs`.
const HELPER: &str = "/sbin/mount.fuse.famfs";

/// `/sbin/mount.fuse.famfs` linked to the built `famfs` for the test's duration (removed after;
/// a helper that is already there and is not that link makes the test fail, untouched).
struct HelperLink {
    made: bool,
}

impl HelperLink {
    fn install() -> HelperLink {
        let link = Path::new(HELPER);
        if std::fs::read_link(link).is_ok_and(|t| t == famfs_cli()) {
            return HelperLink { made: false };
        }
        assert!(
            link.symlink_metadata().is_err(),
            "{HELPER} exists (an installed famfs?); remove it to run this test with the \
             workspace's build"
        );
        std::os::unix::fs::symlink(famfs_cli(), link)
            .unwrap_or_else(|e| panic!("symlink {HELPER}: {e}"));
        HelperLink { made: true }
    }
}

impl Drop for HelperLink {
    fn drop(&mut self) {
        if self.made {
            let _ = std::fs::remove_file(HELPER);
        }
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .expect("running a command")
}

fn wait_unmounted(mpt: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_mounted(mpt) {
        assert!(Instant::now() < deadline, "{what}: still mounted");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn mount_t_fuse_famfs_and_fstab_work_through_the_helper() {
    if !prereq::root_and_fuse("mount_t_fuse_famfs_and_fstab...") {
        return;
    }
    let mut dev = StandIn::create(4 << 30).unwrap();
    let f = dev
        .add_file("f", 2 * MIB + 3, AllocPolicy::Contiguous)
        .unwrap();
    let want = dev.expected("f", 0, f.size);
    let mpt = dev.mountpoint("mnt");
    let _cleanup = Cleanup(&mpt);
    let _helper = HelperLink::install();
    let uuid = dev.master_uuid().to_string();
    // mount -t: our option (system_uuid, as the master) and ones mount(8) owns.
    let o = run(Command::new("mount")
        .args(["-t", "fuse.famfs", "-o"])
        .arg(format!(
            "nofail,_netdev,x-systemd.device-timeout=5,system_uuid={uuid},poll_ms=50"
        ))
        .arg(dev.path())
        .arg(&mpt)
        .env("FAMFS_FUSED", famfs_fused()));
    assert!(o.status.success(), "mount -t fuse.famfs: {}", text(&o));
    assert!(is_famfs_mounted(&mpt));
    let source = famfs_server::mount::famfs_mount_source(&mpt).unwrap();
    assert_eq!(Path::new(&source), dev.path().canonicalize().unwrap());
    assert!(std::fs::read(mpt.join("f")).unwrap() == want);
    // The master: the meta log is writable.
    assert!(
        std::fs::OpenOptions::new()
            .write(true)
            .open(mpt.join(".meta/.log"))
            .is_ok(),
        "system_uuid= reached the daemon"
    );
    let o = run(Command::new("umount").arg(&mpt));
    assert!(o.status.success(), "umount: {}", text(&o));
    wait_unmounted(&mpt, "umount");

    // An fstab line (mount -T reads it instead of /etc/fstab).
    let fstab = dev.dir().join("fstab");
    std::fs::write(
        &fstab,
        format!(
            "# famfs\n{} {} fuse.famfs defaults,noauto,nofail,x-systemd.requires=famfs.service,system_uuid={uuid},dax=off,transport=dev 0 0\n",
            dev.path().display(),
            mpt.display()
        ),
    )
    .unwrap();
    let o = run(Command::new("mount")
        .arg("-T")
        .arg(&fstab)
        .arg(&mpt)
        .env("FAMFS_FUSED", famfs_fused()));
    assert!(o.status.success(), "mount -T fstab MPT: {}", text(&o));
    assert!(std::fs::read(mpt.join("f")).unwrap() == want);
    let o = run(Command::new("umount").arg(&mpt));
    assert!(o.status.success(), "umount: {}", text(&o));
    wait_unmounted(&mpt, "umount after the fstab mount");

    // A bad option: mount(8) reports the helper's failure, nothing is mounted.
    let o = run(Command::new("mount")
        .args(["-t", "fuse.famfs", "-o", "frobnicate"])
        .arg(dev.path())
        .arg(&mpt));
    assert!(!o.status.success(), "unknown option accepted: {}", text(&o));
    assert!(text(&o).contains("frobnicate"), "{}", text(&o));
    assert!(!is_mounted(&mpt));
}

#[test]
fn famfs_mount_foreground_supervises_until_unmounted() {
    if !prereq::root_and_fuse("famfs_mount_foreground_supervises...") {
        return;
    }
    let mut dev = StandIn::create(4 << 30).unwrap();
    let f = dev.add_file("f", MIB + 1, AllocPolicy::Contiguous).unwrap();
    let want = dev.expected("f", 0, f.size);
    let mpt = dev.mountpoint("mnt");
    let _cleanup = Cleanup(&mpt);
    let (devs, mpts) = (dev.path().to_str().unwrap(), mpt.to_str().unwrap());
    for stop in ["umount", "SIGTERM", "SIGINT"] {
        let log = dev.dir().join(format!("fg-{stop}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(famfs_cli())
            .args(["mount", "--foreground", devs, mpts])
            .env("FAMFS_SYSTEM_UUID", dev.master_uuid().to_string())
            .env("FAMFS_FUSED", famfs_fused())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let output = || std::fs::read_to_string(&log).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !(is_famfs_mounted(&mpt) && mpt.join(".meta/.log").exists()) {
            assert!(
                child.try_wait().unwrap().is_none(),
                "{stop}: famfs mount --foreground exited:\n{}",
                output()
            );
            assert!(Instant::now() < deadline, "{stop}: not mounted");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(std::fs::read(mpt.join("f")).unwrap() == want);
        // Still there, supervising.
        std::thread::sleep(Duration::from_millis(200));
        assert!(child.try_wait().unwrap().is_none(), "{stop}: left early");
        match stop {
            "umount" => {
                let o = run(Command::new("umount").arg(&mpt));
                assert!(o.status.success(), "umount: {}", text(&o));
            }
            sig => {
                let s = if sig == "SIGTERM" {
                    nix::sys::signal::Signal::SIGTERM
                } else {
                    nix::sys::signal::Signal::SIGINT
                };
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), s).unwrap();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let st = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "{stop}: famfs mount --foreground still running:\n{}",
                    output()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(st.code(), Some(0), "{stop}: {st}:\n{}", output());
        assert!(!is_mounted(&mpt), "{stop}: still mounted");
        // The daemon's output reached the supervisor's.
        assert!(output().contains("famfs_fused: serving"), "{}", output());
    }
}
