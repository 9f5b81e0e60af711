//! `famfs mount` over a mount's whole life, with the real CLI and daemon: a plain `umount MPT`
//! followed at once by a new `famfs mount` at the same place (the old daemon must leave the new
//! mount alone).
//!
//! Needs root and /dev/fuse: under `CI=true` a missing prerequisite fails, otherwise the tests
//! skip loudly. The binaries are `$FAMFS_CLI` / `$FAMFS_FUSED` or built on first use (see
//! `famfs_tests::fused`).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use famfs_log::alloc::AllocPolicy;
use famfs_tests::fused::{famfs_cli, famfs_fused, is_famfs_mounted, is_mounted};
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

/// The daemon pid the mount at `mpt` publishes (`user.famfs.pid`).
fn daemon_pid(mpt: &Path) -> Option<i32> {
    let p = CString::new(mpt.as_os_str().as_bytes()).ok()?;
    let mut buf = [0u8; 32];
    // SAFETY: both strings are NUL-terminated and live across the call; the buffer is valid for
    // its length and the kernel writes at most that many bytes.
    let n = unsafe {
        libc::getxattr(
            p.as_ptr(),
            c"user.famfs.pid".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).ok()?;
    String::from_utf8_lossy(&buf[..n])
        .trim_end_matches('\0')
        .trim()
        .parse()
        .ok()
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
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
        if !is_famfs_mounted(&mpt) {
            // Recover from a previous cycle's loss (counted there).
            let o = famfs(&dev, &["mount", devs, mpts]);
            assert!(o.status.success(), "cycle {cycle}: remount: {}", text(&o));
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
