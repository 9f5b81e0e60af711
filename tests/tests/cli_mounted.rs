//! End-to-end tests of the mounted forms of the `famfs` CLI with the real daemon (`famfs_fused`):
//! `famfs mount` / `umount`, and creat, mkdir, cp, logplay, fsck, getmap, verify, flush, chkread
//! and clone on paths inside the mount: appending through the daemon's control channel, or
//! (without one) through `MPT/.meta/.log` under its lock.
//!
//! Needs root, `/dev/fuse` and the `famfs_fused` binary (built from the workspace). Without them
//! the tests skip loudly, or fail when `CI=true`.

mod cli_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cli_support::*;
use famfs_tests::fused::is_famfs_mounted as is_mounted;

/// The daemon serving `mpt` (a test failure if there is none).
fn daemon_pid(mpt: &Path) -> i32 {
    famfs_tests::fused::daemon_pid(mpt)
        .unwrap_or_else(|| panic!("no user.famfs.pid on {}", mpt.display()))
}

/// A formatted stand-in device and a mount point; unmounts on drop.
struct Fixture {
    dir: TempDir,
    img: PathBuf,
    mpt: PathBuf,
    r: Runner,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        let dir = TempDir::new(tag);
        let img = standin(dir.path(), "dev.img", 8 * GIB);
        let mpt = dir.path().join("mnt");
        std::fs::create_dir(&mpt).unwrap();
        let r = Runner::new(dir.path());
        r.mkfs(&[img.to_str().unwrap()]).ok("mkfs");
        Fixture { dir, img, mpt, r }
    }

    fn dev(&self) -> &str {
        self.img.to_str().unwrap()
    }

    fn m(&self, rel: &str) -> String {
        self.mpt.join(rel).to_str().unwrap().to_string()
    }

    fn mount(&self) {
        self.r
            .famfs(&[
                "mount",
                "--poll-ms",
                "20",
                self.dev(),
                self.mpt.to_str().unwrap(),
            ])
            .ok("mount");
        assert!(is_mounted(&self.mpt), "mounted");
        assert!(self.mpt.join(".meta/.log").exists());
    }

    fn umount(&self) {
        self.r
            .famfs(&["umount", self.mpt.to_str().unwrap()])
            .ok("umount");
        assert!(!is_mounted(&self.mpt), "unmounted");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if is_mounted(&self.mpt) {
            let _ = self.r.famfs(&["umount", "-l", self.mpt.to_str().unwrap()]);
        }
        let _ = self.dir.path();
    }
}

#[test]
fn mounted_round_trip_matches_the_offline_view() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new("mnt-rt");
    fx.mount();
    let r = &fx.r;
    let host = fx.dir.path().join("host.bin");
    let data = bytes(9, (6 << 20) + 3);
    std::fs::write(&host, &data).unwrap();
    let h = host.to_str().unwrap();

    r.famfs(&["mkdir", "-p", &fx.m("a/b/c")]).ok("mkdir -p");
    r.famfs(&["mkdir", "-m", "0700", &fx.m("a/private")])
        .ok("mkdir");
    r.famfs(&[
        "creat",
        "-s",
        "3m",
        "-r",
        "-S",
        "42",
        "-m",
        "0600",
        &fx.m("a/pat"),
    ])
    .ok("creat -r");
    r.famfs(&["cp", h, &fx.m("a/b/")]).ok("cp");
    r.famfs(&["cp", "-N", "4", "-B", "8", h, &fx.m("striped")])
        .ok("interleaved cp");
    // Relative paths inside the mount work too.
    let rr = Runner::new(&fx.mpt);
    rr.famfs(&["creat", "-s", "4k", "a/b/c/rel"])
        .ok("creat by relative path");

    // The data reads back through the mount, and verify passes.
    assert_eq!(std::fs::read(fx.m("a/b/host.bin")).unwrap(), data);
    assert_eq!(std::fs::read(fx.m("striped")).unwrap(), data);
    let out = r
        .famfs(&["verify", "-S", "42", "-f", &fx.m("a/pat")])
        .ok("verify");
    assert!(
        out.stdout.contains("Success: verified 3145728 bytes"),
        "{}",
        out.stdout
    );
    r.famfs(&["verify", "-S", "41", &fx.m("a/pat")])
        .expect(1, "verify wrong seed");
    let out = r.famfs(&["chkread", &fx.m("a/pat")]).ok("chkread");
    assert!(out.stdout.contains("Read and mmap match"), "{}", out.stdout);
    r.famfs(&["flush", &fx.m("a/pat"), &fx.m("striped")])
        .ok("flush");
    r.famfs(&["chkread", "-s", &fx.m(".meta/.superblock")])
        .ok("chkread superblock");

    // getmap and logplay through the mount equal the offline view of the same device.
    let mounted_ls = r
        .famfs(&["logplay", "--ls", &fx.m("")])
        .ok("logplay mounted");
    assert!(
        mounted_ls.stdout.contains("famfs_logplay(fuse)"),
        "{}",
        mounted_ls.stdout
    );
    let map_m = parse_getmap(
        &r.famfs(&["getmap", &fx.m("striped")])
            .ok("getmap mounted")
            .stdout,
    );
    assert_eq!(map_m.chunk, Some(2 << 20));
    assert_eq!(map_m.extents.len(), 4);
    let out = r.famfs(&["fsck", &fx.m("a")]).ok("fsck by path");
    assert!(
        out.stdout.contains("mount type:  FAMFS_FUSE"),
        "{}",
        out.stdout
    );
    // Stat through the mount agrees with the log.
    use std::os::unix::fs::PermissionsExt;
    let md = std::fs::metadata(fx.m("a/pat")).unwrap();
    assert_eq!(md.len(), 3 << 20);
    assert_eq!(md.permissions().mode() & 0o7777, 0o600);

    // The device is busy while mounted.
    let out = r
        .famfs(&["fsck", fx.dev()])
        .expect(104, "fsck DEV while mounted");
    assert!(out.stderr.contains("mounted on"), "{}", out.stderr);
    r.famfs(&["fsck", "--force", fx.dev()])
        .ok("fsck --force DEV while mounted");
    r.mkfs(&["-f", fx.dev()]).expect(2, "mkfs while mounted");
    r.famfs(&["creat", "-d", fx.dev(), "-s", "4k", "/x"])
        .expect(16, "offline write while mounted");
    let out = r
        .famfs(&["mount", fx.dev(), fx.mpt.to_str().unwrap()])
        .expect(1, "double mount");
    assert!(out.stderr.contains("mounted on"), "{}", out.stderr);

    fx.umount();
    let offline_ls = r
        .famfs(&["logplay", "--ls", fx.dev()])
        .ok("logplay offline");
    let tree = |s: &str| -> BTreeSet<String> {
        s.lines()
            .filter(|l| l.starts_with("d ") || l.starts_with("f "))
            .map(String::from)
            .collect()
    };
    assert_eq!(tree(&mounted_ls.stdout), tree(&offline_ls.stdout));
    let want: BTreeSet<&str> = [
        "a/",
        "a/b/",
        "a/b/c/",
        "a/private/",
        "a/pat",
        "a/b/host.bin",
        "striped",
        "a/b/c/rel",
    ]
    .into_iter()
    .collect();
    let got = parse_ls(&offline_ls.stdout);
    assert_eq!(
        got.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        want
    );
    assert_eq!(got["a/private/"].mode, 0o700);
    assert_eq!(got["a/pat"].mode, 0o600);
    let map_o = parse_getmap(
        &r.famfs(&["getmap", "-d", fx.dev(), "/striped"])
            .ok("getmap offline")
            .stdout,
    );
    assert_eq!(map_m, map_o);
    assert_eq!(map_o.read_from_image(&fx.img), data);
    r.famfs(&["fsck", fx.dev()]).ok("fsck after umount");
    r.famfs(&["verify", "-d", fx.dev(), "-S", "42", "/a/pat"])
        .ok("offline verify of mounted writes");

    // Remount: everything is still there.
    fx.mount();
    assert_eq!(std::fs::read(fx.m("a/b/host.bin")).unwrap(), data);
    fx.umount();
}

#[test]
fn mounted_errors_and_clone() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new("mnt-err");
    let r = &fx.r;
    let mpt = fx.mpt.to_str().unwrap();
    // Argument checks.
    r.famfs(&["mount"]).expect(1, "mount without args");
    r.famfs(&["mount", "a", "b", "c"])
        .expect(1, "mount with 3 args");
    r.famfs(&["mount", "/tmp/baddev-famfs", mpt])
        .expect(1, "bad device");
    r.famfs(&["mount", fx.dev(), "/tmp/badmpt-famfs"])
        .expect(1, "bad mount point");
    r.famfs(&["fsck", mpt])
        .expect(106, "fsck of an unmounted mount point (cannot check)");
    r.famfs(&["umount", mpt])
        .expect(1, "umount of something not mounted");

    fx.mount();
    r.famfs(&["creat", "-s", "4k", &fx.m("f")]).ok("creat");
    r.famfs(&["mkdir", &fx.m("d")]).ok("mkdir");
    r.famfs(&["creat", "-s", "4k", &fx.m(".meta")])
        .expect(1, "creat over .meta");
    r.famfs(&["mkdir", mpt])
        .expect(1, "mkdir of the mount point");
    r.famfs(&["mkdir", "-p", mpt])
        .ok("mkdir -p of the mount point");
    r.famfs(&["mkdir", "-p", &fx.m("a/y/../../../..")])
        .expect(1, "mkdir -p ascending out of famfs");
    r.famfs(&["getmap", &fx.m("nope")])
        .expect(9, "getmap missing");
    r.famfs(&["getmap", &fx.m("d")]).expect(21, "getmap dir");
    r.famfs(&["getmap", "/etc/passwd"])
        .expect(1, "getmap not famfs");
    let good = fx.m("good");
    r.famfs(&[
        "creat",
        "--multi",
        &format!("{good},4k"),
        "--multi",
        "/tmp/bad-famfs,4m",
    ])
    .expect(1, "multi with one path outside famfs");
    assert!(Path::new(&good).exists(), "the good file is created anyway");
    r.famfs(&["creat", "-s", "4k", "/tmp/notfamfs"])
        .expect(1, "creat outside famfs");
    let out = r
        .as_client()
        .famfs(&["creat", "-s", "4k", &fx.m("client")])
        .expect(1, "client creat");
    assert!(
        out.stderr.contains("not running on the master node"),
        "{}",
        out.stderr
    );
    // POSIX creation through the mount is refused; the CLI is the way.
    assert!(std::fs::write(fx.m("posix"), b"x").is_err());

    // clone cross-links: fsck then counts the collisions.
    r.famfs(&["clone", &fx.m("f"), &fx.m("fclone")]).ok("clone");
    let out = r
        .famfs(&["fsck", mpt])
        .expect(1, "fsck counts the collision");
    assert!(
        out.stdout.contains("ALLOCATION COLLISIONS"),
        "{}",
        out.stdout
    );
    r.famfs(&["clone", &fx.m("f"), "/tmp/elsewhere"])
        .expect(1, "clone across file systems");
    fx.umount();
    r.famfs(&["fsck", fx.dev()]).expect(1, "collision persists");

    // A superblock destroyed with mkfs -f -k cannot be mounted, and nothing stays mounted.
    r.mkfs(&["-f", "-k", fx.dev()]).ok("kill");
    let out = r
        .famfs(&["mount", fx.dev(), mpt])
        .expect(1, "mount of a killed fs");
    assert!(out.stderr.contains("no valid famfs"), "{}", out.stderr);
    assert!(!is_mounted(&fx.mpt));
}

#[test]
fn failed_daemon_leaves_nothing_mounted() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new("mnt-fail");
    let mpt = fx.mpt.to_str().unwrap();
    // A "daemon" that dies at once.
    let fake = fx.dir.path().join("fake_fused");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho fake daemon starting on \"$@\" >&2\nexit 3\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = fx.r.with_env("FAMFS_FUSED", fake.to_str().unwrap());
    let out = r.famfs(&["mount", fx.dev(), mpt]).expect(1, "daemon exits");
    assert!(
        out.stderr.contains("fake daemon starting"),
        "the log tail is shown: {}",
        out.stderr
    );
    assert!(!is_mounted(&fx.mpt));
    // A "daemon" that never mounts: the wait times out, the daemon is stopped.
    std::fs::write(&fake, "#!/bin/sh\nexec sleep 60\n").unwrap();
    let out = r
        .famfs(&["mount", "--wait", "0.5", fx.dev(), mpt])
        .expect(1, "timeout");
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
    assert!(!is_mounted(&fx.mpt));
    r.with_env("FAMFS_FUSED", "/nonexistent/famfs_fused")
        .famfs(&["mount", fx.dev(), mpt])
        .expect(1, "missing daemon");
}

/// Two writer processes at once through one mount: the `.meta/.log` flock serializes them.
#[test]
fn two_mounted_writers_lose_nothing() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new("mnt-writers");
    fx.mount();
    let workers: Vec<_> = (0..2u64)
        .map(|w| {
            let r = fx.r.clone();
            let base = fx.mpt.clone();
            std::thread::spawn(move || {
                for i in 0..10u64 {
                    let f = base.join(format!("w{w}-{i}"));
                    let seed = (100 * (w + 1) + i).to_string();
                    r.famfs(&["creat", "-s", "1m", "-r", "-S", &seed, f.to_str().unwrap()])
                        .ok("creat");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    for w in 0..2u64 {
        for i in 0..10u64 {
            let seed = (100 * (w + 1) + i).to_string();
            fx.r.famfs(&["verify", "-S", &seed, &fx.m(&format!("w{w}-{i}"))])
                .ok("verify");
        }
    }
    fx.r.famfs(&["fsck", &fx.m("")]).ok("fsck");
    fx.umount();
    let ls = parse_ls(&fx.r.famfs(&["logplay", "--ls", fx.dev()]).ok("ls").stdout);
    assert_eq!(ls.len(), 20);
}

/// The reasons of the skipped entries a fsck report (`problem: ...`) or a logplay
/// (`skipped ...`) lists, as `log entry N (PATH): REASON`.
fn skip_lines(stdout: &str, prefix: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix(prefix))
        .map(str::to_string)
        .collect()
}

/// Issue 9.4: log entries under `.meta` are not served by the mount, and every tool skips them
/// with the reason the daemon uses.
#[test]
fn meta_entries_are_reserved_in_the_mount_and_every_tool() {
    use famfs_log::entry::{DirEntry, FileEntry, LogEntry};
    use famfs_tests::standin::{FixtureError, StandIn};
    use fuse_famfs_proto::fmap::{Extent, Fmap};
    if !can_mount() {
        return;
    }
    let fx = Fixture::new("mnt-meta");
    let dev = StandIn::create_at(&fx.img, 8 * GIB, MASTER_UUID.parse().unwrap()).unwrap();
    let entry =
        |e: LogEntry| move |i: u64| e.encode(i).map_err(|e| FixtureError::Other(e.to_string()));
    let file = |path: &str, off: u64| {
        LogEntry::File(FileEntry {
            path: path.into(),
            flags: 2,
            uid: 0,
            gid: 0,
            mode: 0o666,
            fmap: Fmap::simple(4096, vec![Extent::new(0, off, AU)]),
        })
    };
    dev.append_raw(entry(file(".meta/evil", 1 << 30))).unwrap();
    dev.append_raw(entry(file(".meta", (1 << 30) + AU)))
        .unwrap();
    dev.append_raw(entry(LogEntry::Mkdir(DirEntry {
        path: ".meta".into(),
        uid: 0,
        gid: 0,
        mode: 0o777,
    })))
    .unwrap();
    dev.append_raw(entry(file("good", (1 << 30) + 2 * AU)))
        .unwrap();
    let r = &fx.r;
    // Offline: both tools skip the three entries, with the same reasons.
    let fsck_dev = r.famfs(&["fsck", fx.dev()]).expect(101, "fsck DEV");
    let lp_dev = r
        .famfs(&["logplay", "--ls", fx.dev()])
        .expect(3, "logplay DEV");
    let reasons = skip_lines(&fsck_dev.stdout, "problem: ");
    assert_eq!(reasons.len(), 3, "{}", fsck_dev.stdout);
    for (k, line) in reasons.iter().enumerate() {
        assert!(line.starts_with(&format!("log entry {k} (.meta")), "{line}");
        assert!(line.contains(".meta at the root is reserved"), "{line}");
    }
    assert_eq!(skip_lines(&lp_dev.stdout, "skipped "), reasons);
    assert!(
        !parse_ls(&lp_dev.stdout)
            .keys()
            .any(|k| k.starts_with(".meta")),
        "logplay lists no .meta: {}",
        lp_dev.stdout
    );
    // Mounted: the daemon does not serve them; fsck and logplay through the mount (read(2) and
    // mmap of the meta files) give the same reasons.
    fx.mount();
    let mut meta: Vec<String> = std::fs::read_dir(fx.mpt.join(".meta"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    meta.sort();
    assert_eq!(meta, [".log", ".superblock"]);
    let e = std::fs::metadata(fx.mpt.join(".meta/evil")).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
    assert!(fx.mpt.join(".meta").is_dir(), "the mount's own .meta");
    assert!(fx.mpt.join("good").is_file());
    let mpt = fx.mpt.to_str().unwrap();
    for opts in [&[][..], &["-r"][..], &["-m"][..]] {
        let out = r
            .famfs(&[&["fsck"][..], opts, &[mpt]].concat())
            .expect(101, "fsck MPT");
        assert_eq!(skip_lines(&out.stdout, "problem: "), reasons, "{opts:?}");
        let out = r
            .famfs(&[&["logplay"][..], opts, &[mpt]].concat())
            .expect(3, "logplay MPT");
        assert_eq!(skip_lines(&out.stdout, "skipped "), reasons, "{opts:?}");
    }
    r.famfs(&["fsck", "-r", "-m", mpt])
        .expect(102, "fsck -r -m");
    fx.umount();
}

/// Issue 9.9: after the daemon died, mount and fsck name the stale mount and the fix; the
/// daemon's log has no colour codes, is kept when the daemon died and removed by a clean umount.
#[test]
fn stale_mount_is_named_and_daemon_logs_are_clean() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new("mnt-stale");
    let r = &fx.r;
    let mpt = fx.mpt.to_str().unwrap();
    let out = r
        .famfs(&["mount", "-v", "--poll-ms", "20", fx.dev(), mpt])
        .ok("mount -v");
    let log = PathBuf::from(
        out.stdout
            .split("log ")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .unwrap_or_else(|| panic!("no log path in: {}", out.stdout)),
    );
    assert!(log.is_file(), "{}", log.display());
    r.famfs(&["creat", "-s", "4k", &fx.m("f")]).ok("creat");
    let pid = daemon_pid(&fx.mpt);
    // SAFETY: kill(2) of the daemon this test started (its pid from the mount it serves).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(std::time::Instant::now() < deadline, "daemon still alive");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let fix = format!("famfs umount {mpt}");
    for (args, code) in [
        (vec!["mount", fx.dev(), mpt], 1),
        (vec!["fsck", mpt], 106),
        (vec!["fsck", fx.dev()], 106),
        (vec!["logplay", mpt], 1),
        (vec!["creat", "-s", "4k", &fx.m("g")], libc::ENOTCONN),
    ] {
        let out = r.famfs(&args).expect(code, &args.join(" "));
        assert!(
            out.stderr.contains("stale famfs mount") && out.stderr.contains(&fix),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("not a directory"), "{}", out.stderr);
    }
    fx.umount();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in the daemon log:\n{text}"
    );
    assert!(text.contains("famfs_fused: serving"), "{text}");
    // A clean mount and umount leave no log behind.
    fx.mount();
    assert!(log.is_file());
    fx.umount();
    assert!(!log.exists(), "{} kept after a clean umount", log.display());
}

/// Issue 9.9: creating through a mount served as a client says "not the master", not EROFS.
#[test]
fn creat_through_a_client_mount_says_not_master() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new("mnt-client");
    let mpt = fx.mpt.to_str().unwrap();
    fx.r.as_client()
        .famfs(&["mount", fx.dev(), mpt])
        .ok("client mount");
    for args in [
        vec!["creat", "-s", "4k", &fx.m("x")],
        vec!["mkdir", &fx.m("d")],
    ] {
        let out = fx.r.famfs(&args).expect(1, &args.join(" "));
        assert!(
            out.stderr.contains("not running on the master node")
                && out.stderr.contains("mounted as a client"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("Read-only file system"),
            "{}",
            out.stderr
        );
    }
    fx.umount();
}

/// The daemon's state, asked through its control channel (the socket named by the mount
/// root's `user.famfs.control`).
fn control_status(mpt: &Path) -> Option<famfs_server::control::proto::Status> {
    use famfs_server::control::proto::{self, Answer, CONTROL_XATTR, Request};
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(mpt.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(CONTROL_XATTR).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: NUL-terminated names; the kernel writes at most buf.len() bytes into buf.
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return None;
    }
    buf.truncate(r as usize);
    let socket = PathBuf::from(std::ffi::OsStr::from_bytes(&buf));
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let md = std::fs::metadata(&socket).unwrap();
    assert_eq!(
        (md.permissions().mode() & 0o777, md.uid()),
        (0o600, 0),
        "root only"
    );
    let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    proto::write_frame(&mut s, &proto::encode_request(&Request::Status)).unwrap();
    let mut reply = Vec::new();
    assert!(proto::read_frame(&mut s, &mut reply).unwrap());
    match proto::parse_reply(&reply).unwrap() {
        Ok(Answer::Status(st)) => Some(*st),
        other => panic!("status: {other:?}"),
    }
}

/// The log region of a stand-in image (superblock excluded: its UUIDs differ per mkfs).
fn log_region(img: &Path) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(img).unwrap();
    let mut buf = vec![0u8; 8 << 20];
    f.read_exact_at(&mut buf, 2 << 20).unwrap();
    buf
}

/// The same commands — successes and refusals — through the daemon's control channel and
/// appending in the CLI process (`FAMFS_CONTROL=off`): the same output, exit codes, data, and
/// log bytes.
#[test]
fn the_daemon_appends_what_the_cli_would() {
    if !can_mount() {
        return;
    }
    let (a, b) = (Fixture::new("ctl-a"), Fixture::new("ctl-b"));
    a.mount();
    b.mount();
    let host = a.dir.path().join("host.bin");
    std::fs::write(&host, bytes(3, (5 << 20) + 7)).unwrap();
    let tree = a.dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("one"), bytes(4, 1000)).unwrap();
    std::fs::write(tree.join("sub/two"), bytes(5, 3 << 20)).unwrap();
    let (h, t) = (host.to_str().unwrap(), tree.to_str().unwrap());
    let steps: &[&[&str]] = &[
        &["mkdir", "-p", "a/b/c"],
        &["mkdir", "-m", "0700", "a/private"],
        &["creat", "-s", "3m", "-r", "-S", "42", "-m", "0600", "a/pat"],
        &["creat", "-M", "m1,4k", "-M", "m2,5m,7", "-M", "a/pat,0"],
        &["cp", h, "a/b/"],
        &["cp", "-r", t, "a/tree"],
        &["clone", "a/pat", "a/clone"],
        &["creat", "-s", "4k", "a"],
        &["creat", "-s", "8k", "a/pat"],
        &["creat", "-s", "4k", "a/pat/x"],
        &["creat", "-s", "4k", "nope/f"],
        &["creat", "-s", "4k", ".meta/x"],
        &["mkdir", "a"],
        &["mkdir", "x/y"],
        &["mkdir", "-p", "a/pat/x"],
        &["mkdir", "-p", ".meta/x"],
        &["cp", h, "a/pat"],
        &["clone", "a", "a/c2"],
        &["creat", "-s", "4k", "-r", "-S", "9", "a/b/c/last"],
    ];
    let ra = Runner::new(&a.mpt);
    let rb = Runner::new(&b.mpt).with_env("FAMFS_CONTROL", "off");
    let norm = |s: &str, fx: &Fixture| s.replace(fx.mpt.to_str().unwrap(), "MPT");
    for args in steps {
        let (oa, ob) = (ra.famfs(args), rb.famfs(args));
        assert_eq!(
            (oa.code, norm(&oa.stdout, &a), norm(&oa.stderr, &a)),
            (ob.code, norm(&ob.stdout, &b), norm(&ob.stderr, &b)),
            "{args:?}: through the daemon vs in process"
        );
    }
    for (r, fx) in [(&ra, &a), (&rb, &b)] {
        let out = r.as_client().famfs(&["creat", "-s", "4k", "c"]);
        assert_eq!(out.code, 1, "{out:?}");
        assert!(
            out.stderr.contains("not running on the master node"),
            "{out:?}"
        );
        r.famfs(&["verify", "-S", "42", "a/pat"]).ok("verify");
        r.famfs(&["verify", "-S", "7", "m2"]).ok("verify multi");
        assert_eq!(
            std::fs::read(fx.m("a/tree/sub/two")).unwrap(),
            bytes(5, 3 << 20)
        );
    }
    // The daemon of A did the appending; B's daemon was never asked.
    let (sa, sb) = (
        control_status(&a.mpt).unwrap(),
        control_status(&b.mpt).unwrap(),
    );
    assert!(sa.requests > 20, "{sa:?}");
    assert_eq!(sb.requests, 1, "only this status request: {sb:?}");
    assert_eq!((sa.files, sa.dirs), (sb.files, sb.dirs));
    a.umount();
    b.umount();
    assert!(log_region(&a.img) == log_region(&b.img), "the logs differ");
}

/// A daemon without the control channel (older, or `--no-control`): the CLI says so in a
/// debug line and appends in its own process, as before.
#[test]
fn without_the_channel_the_cli_appends_itself() {
    if !can_mount() {
        return;
    }
    let fx = Fixture::new("ctl-old");
    let wrapper = fx.dir.path().join("old_fused");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {} --no-control \"$@\"\n",
            bins().fused.as_ref().unwrap().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    fx.r.with_env("FAMFS_FUSED", wrapper.to_str().unwrap())
        .famfs(&["mount", fx.dev(), fx.mpt.to_str().unwrap()])
        .ok("mount");
    assert!(control_status(&fx.mpt).is_none(), "no channel offered");
    let out =
        fx.r.famfs(&["-vv", "creat", "-s", "4k", &fx.m("f")])
            .ok("creat");
    assert!(
        out.stderr.contains("no control channel")
            && out.stderr.contains("appending to the log in this process"),
        "{}",
        out.stderr
    );
    fx.r.famfs(&["mkdir", "-p", &fx.m("d/e")]).ok("mkdir -p");
    assert!(Path::new(&fx.m("d/e")).is_dir());
    assert!(Path::new(&fx.m("f")).is_file());
    fx.umount();
}
