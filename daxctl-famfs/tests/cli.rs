//! The `daxctl-famfs` binary against fake sysfs trees: daxctl's JSON, messages and exit codes.

use std::path::Path;
use std::process::{Command, Output};

use daxctl_famfs::fake::{FakeProc, FakeSysfs};

const BIN: &str = env!("CARGO_BIN_EXE_daxctl-famfs");
const GIB: u64 = 1 << 30;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(sys: &Path, args: &[&str]) -> Run {
    let out: Output = Command::new(BIN)
        .arg("--fake-sysfs")
        .arg("--sysfs-root")
        .arg(sys)
        .args(args)
        .env_remove("DAXCTL_FAMFS_SYSFS_ROOT")
        .env_remove("DAXCTL_FAMFS_DEV_ROOT")
        .env_remove("DAXCTL_FAMFS_PROC_ROOT")
        .env_remove("RUST_LOG")
        .output()
        .expect("run daxctl-famfs");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// nvdimm region 0: dax0.0 devdax; hmem region 1: dax1.0 system-ram, blocks online movable.
fn tree() -> (tempfile::TempDir, FakeSysfs) {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeSysfs::two_regions(dir.path(), GIB).unwrap();
    fake.set_auto_online("offline")
        .unwrap()
        .clear_writes()
        .unwrap();
    (dir, fake)
}

const DAX00_DEVDAX: &str = "[
  {
    \"chardev\":\"dax0.0\",
    \"size\":1073741824,
    \"target_node\":0,
    \"align\":2097152,
    \"mode\":\"devdax\"
  }
]
";

#[test]
fn list_prints_daxctl_json() {
    let (_d, fake) = tree();
    let r = run(fake.sys_root(), &["list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let dax00 = "  {
    \"chardev\":\"dax0.0\",
    \"size\":1073741824,
    \"target_node\":0,
    \"align\":2097152,
    \"mode\":\"devdax\"
  }";
    let dax10 = "  {
    \"chardev\":\"dax1.0\",
    \"size\":1073741824,
    \"target_node\":1,
    \"align\":2097152,
    \"mode\":\"system-ram\",
    \"online_memblocks\":8,
    \"total_memblocks\":8,
    \"movable\":true
  }";
    // daxctl's order: regions in reverse order of first appearance on the bus.
    let first: Vec<String> = std::fs::read_dir(fake.sys_root().join("bus/dax/devices"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let expect = if first[0] == "dax0.0" {
        format!("[\n{dax10},\n{dax00}\n]\n")
    } else {
        format!("[\n{dax00},\n{dax10}\n]\n")
    };
    assert_eq!(r.stdout, expect);
    let r = run(fake.sys_root(), &["list", "-d", "dax0.0"]);
    assert_eq!(r.stdout, DAX00_DEVDAX);
    let r = run(fake.sys_root(), &["list", "-u", "-d", "0.0"]);
    assert_eq!(
        r.stdout,
        "{
  \"chardev\":\"dax0.0\",
  \"size\":\"1024.00 MiB (1073.74 MB)\",
  \"target_node\":0,
  \"align\":2097152,
  \"mode\":\"devdax\"
}
"
    );
    let r = run(fake.sys_root(), &["list", "-R", "-r", "1"]);
    assert_eq!(
        r.stdout,
        "[
  {
    \"path\":\"\\/platform\\/hmem.1\",
    \"id\":1,
    \"size\":1073741824,
    \"align\":2097152
  }
]
"
    );
    // Nothing matches: nothing printed, success.
    let r = run(fake.sys_root(), &["list", "-d", "dax5.0"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
}

#[test]
fn env_var_selects_the_sysfs_root() {
    let (_d, fake) = tree();
    let out = Command::new(BIN)
        .args(["--fake-sysfs", "list", "-d", "dax0.0"])
        .env("DAXCTL_FAMFS_SYSFS_ROOT", fake.sys_root())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), DAX00_DEVDAX);
}

#[test]
fn reconfigure_devdax_to_famfs_and_back() {
    let (_d, fake) = tree();
    let r = run(
        fake.sys_root(),
        &["reconfigure-device", "-m", "famfs", "dax0.0"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, DAX00_DEVDAX.replace("devdax", "famfs"));
    assert!(
        r.stderr.ends_with("reconfigured 1 device\n"),
        "{}",
        r.stderr
    );
    let seq: Vec<_> = fake
        .writes()
        .unwrap()
        .iter()
        .map(|w| (w.target.clone(), w.value()))
        .collect();
    let nd = |t: &str| (t.to_string(), "dax0.0".to_string());
    assert_eq!(
        seq,
        [
            nd("bus/dax/drivers/device_dax/remove_id"),
            nd("bus/dax/drivers/device_dax/unbind"),
            nd("bus/dax/drivers/fsdev_dax/new_id"),
            nd("bus/dax/drivers/fsdev_dax/bind"),
        ]
    );
    let r = run(fake.sys_root(), &["list", "-d", "dax0.0"]);
    assert!(r.stdout.contains("\"mode\":\"famfs\""));
    // /dev/daxX.Y paths work, -u prints the bare object.
    let dev = fake.dev_root().join("dax0.0");
    let r = run(
        fake.sys_root(),
        &[
            "reconfigure-device",
            "-u",
            "--mode=devdax",
            dev.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with("{\n  \"chardev\":\"dax0.0\",\n  \"size\":\"1024.00 MiB")
    );
    assert!(r.stdout.contains("\"mode\":\"devdax\""));
}

#[test]
fn system_ram_to_famfs_exits_234() {
    let (_d, fake) = tree();
    let r = run(
        fake.sys_root(),
        &["reconfigure-device", "-m", "famfs", "dax1.0"],
    );
    assert_eq!(r.code, 234);
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr
            .contains("must be in devdax mode to convert to famfs"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("error reconfiguring devices: Invalid argument"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.ends_with("reconfigured 0 devices\n"),
        "{}",
        r.stderr
    );
    assert!(fake.writes().unwrap().is_empty());
}

#[test]
fn leaving_system_ram_needs_force() {
    let (_d, fake) = tree();
    let r = run(
        fake.sys_root(),
        &["reconfigure-device", "-m", "devdax", "dax1.0"],
    );
    assert_eq!(r.code, 240, "{}", r.stderr);
    assert!(r.stderr.contains("Device or resource busy"), "{}", r.stderr);
    assert!(fake.writes().unwrap().is_empty());
    let r = run(
        fake.sys_root(),
        &["reconfigure-device", "-f", "-m", "devdax", "dax1.0"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("\"mode\":\"devdax\""));
    assert!(!r.stdout.contains("memblocks"));
    // Back to system-ram: kmem binds, the blocks are onlined movable.
    let r = run(
        fake.sys_root(),
        &["reconfigure-device", "-m", "system-ram", "dax1.0"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("\"online_memblocks\":8,\n    \"total_memblocks\":8,\n    \"movable\":true"),
        "{}",
        r.stdout
    );
}

#[test]
fn auto_online_policy_exits_240_and_missing_driver_250() {
    let (_d, fake) = tree();
    fake.set_auto_online("online").unwrap();
    let r = run(
        fake.sys_root(),
        &["reconfigure-device", "-m", "system-ram", "dax0.0"],
    );
    assert_eq!(r.code, 240, "{}", r.stderr);
    assert!(r.stderr.contains("auto-online"), "{}", r.stderr);
    fake.remove_driver("fsdev_dax").unwrap();
    let r = run(
        fake.sys_root(),
        &["reconfigure-device", "-m", "famfs", "dax0.0"],
    );
    assert_eq!(r.code, 250, "{}", r.stderr);
    assert!(r.stderr.contains("fsdev_dax"), "{}", r.stderr);
}

#[test]
fn permission_errors_report_the_file_and_errno() {
    let (_d, fake) = tree();
    fake.fail_write("bus/dax/drivers/device_dax/remove_id", libc::EACCES)
        .unwrap();
    let r = run(
        fake.sys_root(),
        &["reconfigure-device", "-m", "famfs", "dax0.0"],
    );
    assert_eq!(r.code, 243, "{}", r.stderr);
    assert!(r.stderr.contains("driver/remove_id"), "{}", r.stderr);
    assert!(r.stderr.contains("Permission denied"), "{}", r.stderr);
}

#[test]
fn usage_errors_exit_129() {
    let (_d, fake) = tree();
    let sys = fake.sys_root();
    for (args, msg) in [
        (
            &["reconfigure-device", "-m", "famfs"][..],
            "specify a device",
        ),
        (
            &["reconfigure-device", "-m", "famfs", "dax0.0", "dax1.0"],
            "unknown extra parameter",
        ),
        (
            &["reconfigure-device", "dax0.0"],
            "'mode' option is required",
        ),
        (
            &["reconfigure-device", "-N", "-m", "devdax", "dax0.0"],
            "--no-online is incompatible with --mode=devdax",
        ),
        (
            &["reconfigure-device", "-N", "-m", "famfs", "dax0.0"],
            "--no-online is incompatible with --mode=famfs",
        ),
        (&["list", "--bogus"], "--bogus"),
        (&["frobnicate"], "frobnicate"),
    ] {
        let r = run(sys, args);
        assert_eq!(r.code, 129, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(msg), "{args:?}: {}", r.stderr);
    }
    assert!(fake.writes().unwrap().is_empty());
}

#[test]
fn unknown_mode_exits_234_and_unknown_device_exits_0() {
    let (_d, fake) = tree();
    let r = run(
        fake.sys_root(),
        &["reconfigure-device", "-m", "invalidmode", "dax0.0"],
    );
    assert_eq!(r.code, 234, "{}", r.stderr);
    assert!(r.stderr.contains("unknown mode requested"), "{}", r.stderr);
    // daxctl reports success when no device matches; we say so on stderr.
    let r = run(
        fake.sys_root(),
        &["reconfigure-device", "-m", "famfs", "dax7.0"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("no dax device matches"), "{}", r.stderr);
    assert!(
        r.stderr.ends_with("reconfigured 0 devices\n"),
        "{}",
        r.stderr
    );
    assert!(fake.writes().unwrap().is_empty());
}

#[test]
fn reconfigure_all_in_a_region() {
    let (_d, fake) = tree();
    let r = run(
        fake.sys_root(),
        &["reconfigure-device", "-r", "0", "-m", "famfs", "all"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.ends_with("reconfigured 1 device\n"));
    assert_eq!(
        fake.driver_of("dax0.0").unwrap().as_deref(),
        Some("fsdev_dax")
    );
    assert_eq!(fake.driver_of("dax1.0").unwrap().as_deref(), Some("kmem"));
}

#[test]
fn help_explains() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let h = String::from_utf8(out.stdout).unwrap();
    for w in [
        "devdax",
        "famfs",
        "system-ram",
        "reconfigure-device",
        "list",
        "Exit status",
    ] {
        assert!(h.contains(w), "{w}: {h}");
    }
    let out = Command::new(BIN)
        .args(["reconfigure-device", "--help"])
        .output()
        .unwrap();
    let h = String::from_utf8(out.stdout).unwrap();
    for w in [
        "--mode",
        "--force",
        "--no-online",
        "--no-movable",
        "--human",
        // Why a device in use is refused and why -f does not override it.
        "in use is refused with EBUSY (exit 240)",
        "SIGBUS",
        "no\noverride",
    ] {
        assert!(h.contains(w), "{w}: {h}");
    }
}

/// A switch refused because the device is in use: 240, the users named, nothing written.
fn assert_busy(fake: &FakeSysfs, r: &Run, needles: &[&str]) {
    assert_eq!(r.code, 240, "{}", r.stderr);
    for n in needles {
        assert!(r.stderr.contains(n), "{n}: {}", r.stderr);
    }
    assert!(
        r.stderr.ends_with(
            "error reconfiguring devices: Device or resource busy\nreconfigured 0 devices\n"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout, "", "nothing reconfigured, nothing listed");
    assert!(fake.writes().unwrap().is_empty());
    assert_eq!(
        fake.driver_of("dax0.0").unwrap().as_deref(),
        Some("device_dax")
    );
}

#[test]
fn a_device_in_use_is_refused_with_ebusy_240() {
    let (d, fake) = tree();
    let proc = FakeProc::new(d.path().join("proc")).unwrap();
    let node = fake.stand_in("dax0.0");
    let mpt = d.path().join("mnt");
    std::fs::create_dir(&mpt).unwrap();
    proc.mount(&node, &mpt, "fuse.famfs")
        .unwrap()
        .map(4242, "famfs_fused", 0x7f00_0000_0000, &node, "/dev/dax0.0")
        .unwrap();
    let proc_root = proc.root().to_str().unwrap();
    let args = [
        "--proc-root",
        proc_root,
        "reconfigure-device",
        "-m",
        "famfs",
        "dax0.0",
    ];
    let mounted = format!("mounted on {} (famfs)", mpt.display());
    let umount = format!("famfs umount {}", mpt.display());
    let needles = [
        "daxctl-famfs: dax0.0: refusing to change modes",
        mounted.as_str(),
        "famfs_fused (pid 4242: mapped)",
        umount.as_str(),
    ];
    assert_busy(&fake, &run(fake.sys_root(), &args), &needles);
    // -f is no override.
    let forced = [
        "--proc-root",
        proc_root,
        "reconfigure-device",
        "-f",
        "-m",
        "devdax",
        "dax0.0",
    ];
    assert_busy(&fake, &run(fake.sys_root(), &forced), &needles);
    // Unmounted and the daemon gone: the switch works.
    proc.clear_mounts().unwrap().exit(4242).unwrap();
    let r = run(fake.sys_root(), &args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        fake.driver_of("dax0.0").unwrap().as_deref(),
        Some("fsdev_dax")
    );
}

#[test]
fn a_device_this_test_holds_open_is_refused_naming_its_pid() {
    // The real /proc (the default): the binary finds the fd its parent holds.
    let (_d, fake) = tree();
    let f = std::fs::File::open(fake.stand_in("dax0.0")).unwrap();
    let r = run(
        fake.sys_root(),
        &["reconfigure-device", "-m", "famfs", "dax0.0"],
    );
    let pid = format!("(pid {}: fd ", std::process::id());
    assert_busy(
        &fake,
        &r,
        &["open or mapped by", &pid, "Stop those processes"],
    );
    drop(f);
    let r = run(
        fake.sys_root(),
        &["reconfigure-device", "-m", "famfs", "dax0.0"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn fake_sysfs_flag_needs_a_fake_tree() {
    let plain = tempfile::tempdir().unwrap();
    let r = run(plain.path(), &["list"]);
    assert_eq!(r.code, 129, "{}", r.stderr);
    assert!(
        r.stderr.contains("not an emulated sysfs tree"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout, "");
}
