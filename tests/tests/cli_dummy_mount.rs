//! The "dummy mount" on a stock kernel: `mkfs.famfs`, `famfs fsck`, `famfs logplay` and the
//! offline `-d DEV` commands reach a dax device in famfs mode (which cannot be mapped) through a
//! private temporary mount of `famfs_fused`. No famfs-mode device exists here, so the test-only
//! `FAMFS_TEST_DUMMY_MOUNT` makes the CLI take that path with a stand-in file: `1` has the
//! daemon read the metadata through its mount on a mapped stand-in (its READ/WRITE path), and
//! `famfs-mode` has it treat the stand-in as unmappable, which this kernel (no FUSE_DAX_FMAP)
//! refuses.
//!
//! What must hold: mkfs through the temporary mount writes the same superblock and log as mkfs
//! on the device (the random UUIDs aside) and keeps `-f`'s refusal; fsck and logplay print what
//! they print on the device directly; the refusal names the fix and `-M`; and after every
//! command, also a failed or interrupted one, nothing is mounted and no temporary directory is
//! left.
//!
//! Needs root, `/dev/fuse` and the binaries; skips loudly without them (fails with `CI=true`).

mod cli_support;

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cli_support::*;
use famfs_fsdev::mounts;
use famfs_log::layout::{LOG_OFFSET, SUPERBLOCK_SIZE};
use famfs_log::superblock::Superblock;

const ENV: &str = "FAMFS_TEST_DUMMY_MOUNT";

/// A test's directory: the stand-in lives in it, and `tmp/` is the commands' `$TMPDIR`, where
/// the temporary mount points are made.
struct Setup {
    dir: TempDir,
    img: PathBuf,
    tmp: PathBuf,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        let dir = TempDir::new(tag);
        let img = standin(dir.path(), "dev.img", 4 * GIB);
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        Setup { dir, img, tmp }
    }

    fn dev(&self) -> &str {
        self.img.to_str().unwrap()
    }

    /// Commands on the device directly.
    fn direct(&self) -> Runner {
        Runner::new(self.dir.path()).with_env("TMPDIR", self.tmp.to_str().unwrap())
    }

    /// Commands through the temporary mount (`mode`: the value of [`ENV`]).
    /// The CLI logs (at info, on stderr) where it made each temporary mount.
    fn dummy(&self, mode: &str) -> Runner {
        self.direct()
            .with_env(ENV, mode)
            .with_env("RUST_LOG", "info")
    }

    /// Nothing of a temporary mount is left: no mount of the stand-in, nothing under `$TMPDIR`.
    #[track_caller]
    fn assert_clean(&self, what: &str) {
        let table = mounts::parse_mounts(std::fs::read(mounts::PROC_MOUNTS).unwrap());
        let canon = std::fs::canonicalize(&self.img).unwrap();
        let left: Vec<_> = table
            .iter()
            .filter(|m| m.source == canon || m.target.starts_with(&self.tmp))
            .collect();
        assert!(left.is_empty(), "{what}: still mounted: {left:?}");
        let entries: Vec<_> = std::fs::read_dir(&self.tmp)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(entries.is_empty(), "{what}: left in $TMPDIR: {entries:?}");
    }

    /// The superblock region and the log of the stand-in.
    fn meta_region(&self, log_len: u64) -> Vec<u8> {
        let mut buf = vec![0u8; (LOG_OFFSET + log_len) as usize];
        std::fs::File::open(&self.img)
            .unwrap()
            .read_exact_at(&mut buf, 0)
            .unwrap();
        buf
    }

    /// Zero the superblock region and the log.
    fn wipe(&self, log_len: u64) {
        let zeros = vec![0u8; (LOG_OFFSET + log_len) as usize];
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.img)
            .unwrap();
        f.write_all_at(&zeros, 0).unwrap();
        f.sync_all().unwrap();
    }
}

/// Panics unless the command went through a temporary mount.
#[track_caller]
fn through_mount(out: Out) -> Out {
    assert!(
        out.stderr.contains("temporary mount at"),
        "no temporary mount:\n{}",
        out.stderr
    );
    out
}

/// mkfs output without the lines naming the random UUIDs.
fn without_random_uuids(out: &str) -> String {
    out.lines()
        .filter(|l| !l.contains("Filesystem UUID") && !l.contains("Device UUID"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn mkfs_through_the_dummy_mount_writes_what_mkfs_writes() {
    if !can_mount() {
        return;
    }
    let s = Setup::new("dummy-mkfs");
    let log_len: u64 = 16 << 20;
    let len_arg = log_len.to_string();
    let direct = s
        .direct()
        .mkfs(&["-l", &len_arg, s.dev()])
        .ok("mkfs on the device");
    let want = s.meta_region(log_len);
    s.wipe(log_len);
    let dummy = through_mount(
        s.dummy("1")
            .mkfs(&["-l", &len_arg, s.dev()])
            .ok("mkfs through the dummy mount"),
    );
    s.assert_clean("mkfs");
    let got = s.meta_region(log_len);
    assert_eq!(
        without_random_uuids(&dummy.stdout),
        without_random_uuids(&direct.stdout)
    );

    // The superblocks differ only in the two random UUIDs (and so the CRC).
    let sb_want = Superblock::parse(&want[..SUPERBLOCK_SIZE]).unwrap();
    let mut sb_got = Superblock::parse(&got[..SUPERBLOCK_SIZE]).expect("a superblock");
    assert_ne!(sb_got.uuid, sb_want.uuid, "a fresh file-system UUID");
    sb_got.uuid = sb_want.uuid;
    sb_got.dev_uuid = sb_want.dev_uuid;
    assert_eq!(sb_got.to_bytes()[..], want[..SUPERBLOCK_SIZE]);
    assert_eq!(sb_got.log_len, log_len);
    // Everything else, the rest of the superblock region and the whole log, byte for byte.
    assert!(
        got[SUPERBLOCK_SIZE..] == want[SUPERBLOCK_SIZE..],
        "the superblock region or the log differs"
    );

    // An existing famfs is refused without -f (read through .meta/.superblock), and kept.
    let again = through_mount(
        s.dummy("1")
            .mkfs(&["-l", &len_arg, s.dev()])
            .expect(2, "mkfs over a famfs without -f"),
    );
    assert!(again.stderr.contains("use -f"), "{}", again.stderr);
    s.assert_clean("refused mkfs");
    assert!(s.meta_region(log_len) == got, "a refused mkfs wrote");
    // With -f it is replaced (a new UUID), and -f -k kills the superblock.
    s.dummy("1")
        .mkfs(&["-f", "-l", &len_arg, s.dev()])
        .ok("mkfs -f through the dummy mount");
    s.assert_clean("mkfs -f");
    let sb_new = Superblock::parse(&s.meta_region(log_len)[..SUPERBLOCK_SIZE]).unwrap();
    assert_ne!(sb_new.uuid, sb_got.uuid);
    let killed = s
        .dummy("1")
        .mkfs(&["-f", "-k", s.dev()])
        .ok("mkfs -f -k through the dummy mount");
    assert!(killed.stdout.contains("killed"), "{}", killed.stdout);
    s.assert_clean("mkfs -f -k");
    assert!(Superblock::parse(&s.meta_region(0)[..SUPERBLOCK_SIZE]).is_err());
}

#[test]
fn fsck_logplay_and_offline_commands_through_the_dummy_mount_match_the_device() {
    if !can_mount() {
        return;
    }
    let s = Setup::new("dummy-fsck");
    let dev = s.dev();
    let direct = s.direct();
    direct.mkfs(&[dev]).ok("mkfs");
    direct
        .famfs(&["mkdir", "-d", dev, "-p", "/a/b"])
        .ok("mkdir");
    direct
        .famfs(&["creat", "-d", dev, "-s", "3M", "-r", "-S", "7", "/a/f1"])
        .ok("creat");
    // Offline commands through the temporary mount: they append to the same log.
    let dummy = s.dummy("1");
    through_mount(
        dummy
            .famfs(&["creat", "-d", dev, "-s", "5M", "-r", "-S", "9", "/a/b/f2"])
            .ok("creat -d through the dummy mount"),
    );
    s.assert_clean("creat");
    dummy
        .famfs(&["mkdir", "-d", dev, "/c"])
        .ok("mkdir -d through the dummy mount");
    s.assert_clean("mkdir");
    // The data written through the mount is what verify finds on the device itself.
    direct
        .famfs(&["verify", "-d", dev, "-S", "9", "-f", "/a/b/f2"])
        .ok("verify on the device");
    dummy
        .famfs(&["verify", "-d", dev, "-S", "7", "-f", "/a/f1"])
        .ok("verify through the dummy mount");
    s.assert_clean("verify");

    for args in [
        vec!["fsck", dev],
        vec!["fsck", "-h", "-v", dev],
        vec!["fsck", "--json", dev],
        vec!["fsck", "-m", dev],
        vec!["logplay", "--ls", dev],
        vec!["logplay", "--json", "--ls", dev],
        vec!["logplay", "-d", dev, "-n"],
    ] {
        let want = direct.famfs(&args);
        let got = through_mount(dummy.famfs(&args));
        s.assert_clean(&args.join(" "));
        assert_eq!(want.code, 0, "{args:?} on the device: {}", want.stderr);
        assert_eq!(got.code, want.code, "{args:?}: {}", got.stderr);
        assert_eq!(got.stdout, want.stdout, "{args:?}");
    }
    let ls = direct.famfs(&["logplay", "--ls", dev]).stdout;
    for name in ["a/b/f2", "a/f1", "c/"] {
        assert!(ls.contains(name), "{name} missing:\n{ls}");
    }
}

#[test]
fn failures_and_refusals_leave_nothing_behind() {
    if !can_mount() {
        return;
    }
    let s = Setup::new("dummy-fail");
    let dev = s.dev();
    // No famfs on the device: the daemon fails; the command says so with its usual status.
    let direct = s.direct().famfs(&["fsck", dev]);
    let dummy = s.dummy("1").famfs(&["fsck", dev]);
    s.assert_clean("fsck of an empty device");
    assert_eq!(direct.code, 105);
    assert_eq!(dummy.code, 105, "{}", dummy.stderr);
    assert!(dummy.stderr.contains("no valid famfs"), "{}", dummy.stderr);
    let out = s.dummy("1").famfs(&["logplay", dev]);
    s.assert_clean("logplay of an empty device");
    assert_ne!(out.code, 0);
    let out = s.dummy("1").famfs(&["creat", "-d", dev, "-s", "1M", "/x"]);
    s.assert_clean("creat on an empty device");
    assert_ne!(out.code, 0);

    // Without famfs support in the kernel: refused, naming the fix and -M, with the status of
    // the refusal of a famfs-mode device without the dummy mount (fsck 106, mkfs 2).
    s.direct().mkfs(&[dev]).ok("mkfs");
    for (args, code) in [
        (vec!["fsck", dev], 106),
        (vec!["logplay", dev], 1),
        (vec!["creat", "-d", dev, "-s", "1M", "/x"], 1),
    ] {
        let out = s.dummy("famfs-mode").famfs(&args);
        s.assert_clean(&args.join(" "));
        assert_eq!(out.code, code, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr
                .contains("daxctl-famfs reconfigure-device -m devdax dev.img")
                && out.stderr.contains("-M/--set-daxmode"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let out = s.dummy("famfs-mode").mkfs(&["-f", dev]);
    s.assert_clean("mkfs -f refused");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("reconfigure-device"), "{}", out.stderr);
    s.direct().famfs(&["fsck", dev]).ok("the famfs is intact");
}

#[test]
fn an_interrupted_command_leaves_nothing_behind() {
    if !can_mount() {
        return;
    }
    let s = Setup::new("dummy-int");
    s.direct().mkfs(&[s.dev()]).ok("mkfs");
    // A daemon that never gets ready keeps the command waiting with its temporary directory
    // made; SIGINT must remove it (and the command exits as SIGINT would have it: 130).
    let fake = s.dir.path().join("fake_fused");
    let pidfile = s.dir.path().join("fake.pid");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho $$ > {}\nexec sleep 60\n",
            pidfile.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut child = std::process::Command::new(&bins().famfs)
        .args(["fsck", s.dev()])
        .env(ENV, "1")
        .env("FAMFS_FUSED", &fake)
        .env("TMPDIR", &s.tmp)
        .env("FAMFS_SYSTEM_UUID", MASTER_UUID)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir(&s.tmp).unwrap().next().is_none() || !pidfile.exists() {
        assert!(Instant::now() < until, "no temporary mount point was made");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    if let Ok(p) = std::fs::read_to_string(&pidfile)
        && let Ok(p) = p.trim().parse::<i32>()
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert_eq!(status.code(), Some(130), "{status}");
    s.assert_clean("interrupted fsck");
}

#[test]
fn a_mounted_famfs_mode_device_is_used_through_its_mount() {
    if !can_mount() {
        return;
    }
    let s = Setup::new("dummy-mounted");
    let dev = s.dev();
    let direct = s.direct();
    direct.mkfs(&[dev]).ok("mkfs");
    direct.famfs(&["mkdir", "-d", dev, "/a"]).ok("mkdir");
    let want = direct.famfs(&["logplay", "--ls", dev]).ok("logplay");
    let mpt = s.dir.path().join("mnt");
    std::fs::create_dir(&mpt).unwrap();
    let mut daemon = std::process::Command::new(bins().fused.as_ref().unwrap())
        .args(["--test-meta-through-mount", "--system-uuid", MASTER_UUID])
        .arg(&s.img)
        .arg(&mpt)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    while !mpt.join("a").is_dir() {
        assert!(daemon.try_wait().unwrap().is_none(), "famfs_fused exited");
        assert!(Instant::now() < until, "the mount did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let got = s.dummy("1").famfs(&["logplay", "--ls", dev]);
    let made = s
        .dummy("1")
        .famfs(&["creat", "-d", dev, "-s", "1M", "/a/new"]);
    let seen = mpt.join("a/new").is_file();
    let _ = nix::mount::umount2(&mpt, nix::mount::MntFlags::MNT_DETACH);
    let _ = daemon.wait();
    assert_eq!(got.code, 0, "{}", got.stderr);
    assert_eq!(got.stdout, want.stdout);
    assert!(
        !got.stderr.contains("temporary mount at"),
        "a second mount of a mounted device:\n{}",
        got.stderr
    );
    assert_eq!(made.code, 0, "{}", made.stderr);
    assert!(seen, "the file created through the mount is not in it");
    s.assert_clean("through the existing mount");
}
