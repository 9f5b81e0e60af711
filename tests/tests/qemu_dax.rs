//! Real-kernel tier: Debian's 7.3 cloud kernel (trixie-backports) in qemu (TCG) with an emulated NVDIMM
//! gives a real `/dev/dax0.0`, the real `device_dax`, `fsdev_dax` (famfs mode) and `kmem` drivers, and the
//! real `daxctl` 85 (the first that knows famfs mode); two VMs on one `share=on` backing file are two
//! hosts sharing memory. The kernel has the dax half of famfs but not the fuse half (no GET_FMAP).
//!
//! The shell harness lives in `tests/qemu/` (see its README.md): `setup.sh` prepares the kernel and the
//! base initramfs from Debian packages, `vm.sh` boots one VM per scenario, `build-guest-bins.sh` and
//! `pack-bins.sh` ship our binaries as an appended cpio. Guest scenario scripts report on a second serial
//! port (`@@RESULT ...@@` lines and payload blocks, see `tests/qemu/guest/lib.sh`); this file parses those
//! reports and asserts on them.
//!
//! Scenarios:
//! * `modeswitch` (one VM): devdax namespace; the real daxctl's devdax → system-ram → devdax and
//!   devdax → famfs → devdax with its refusals; then our `daxctl-famfs` makes devdax → famfs → devdax →
//!   system-ram → devdax, listed by both tools after each step, its refusals' exit codes next to the real
//!   ones. In famfs mode the device cannot be mmapped (ENODEV): our `mkfs.famfs`, `famfs fsck`/`logplay`,
//!   `famfs mount` and `famfs_fused` must refuse it cleanly, naming devdax mode and the daxctl-famfs
//!   command, and leave nothing mounted and no daemon running.
//! * `share-writer` + `share-reader` (two VMs at once, one backing file): data written by one is read by the
//!   other, and the host checks the bytes in the backing file.
//! * `famfs-master` + `famfs-client` (two VMs at once): our mkfs.famfs, famfs and famfs_fused on the real
//!   device in devdax mode (the stock-kernel path: the daemon serves READ/WRITE).
//!
//! When qemu or the prepared kernel is missing the tests skip loudly, except with `CI=true`, where they fail.
//! With `CI=true` they run `tests/qemu/setup.sh` themselves (idempotent; it is fast once cached).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// 2 MiB: devdax alignment, and where dax offset 0 sits in the backing file (`-M mem`).
const MIB2: u64 = 2 << 20;
/// Backing file of the sharing scenario: small, so struct pages are few.
const SMALL_IMG: u64 = 1 << 30;
/// Backing file of the mode and famfs scenarios: the reference mkfs refuses devices under 4 GiB; the
/// namespace loses 2 MiB to its info block and is aligned to the region's 16 MiB.
const FAMFS_IMG: u64 = (4 << 30) + (16 << 20);
/// qemu timeout per VM, seconds (vm.sh wraps qemu in `timeout`).
const VM_TIMEOUT_S: u32 = 150;

/// Our binaries the guest can use: (package, binary).
const GUEST_BINS: &[(&str, &str)] = &[
    ("daxctl-famfs", "daxctl-famfs"),
    // Also mkfs.famfs: cargo cannot name a binary `mkfs.famfs`, and `famfs` invoked under that name is
    // mkfs.famfs; the guest links it (lib.sh). One binary instead of two keeps the build and the
    // initramfs smaller.
    ("famfs-cli", "famfs"),
    ("famfs-server", "famfs_fused"),
];

// ---------------------------------------------------------------------------------------------------
// Reporting that is visible even when libtest captures output.

/// Write a line straight to the process's stderr: libtest captures `println!`/`eprintln!` of passing
/// tests, but not direct writes, and CI logs must show which kernel ran and how long each scenario took.
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "qemu-dax: {msg}");
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn qemu_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("qemu")
}

fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn cache_dir() -> PathBuf {
    std::env::var_os("FAMFS_QEMU_CACHE").map_or_else(|| qemu_dir().join("cache"), PathBuf::from)
}

/// Where a test keeps its VM outputs (kept after the run for inspection).
fn work_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("qemu-dax")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create work dir");
    dir
}

/// A new sparse NVDIMM backing file of `size` bytes in `dir`.
fn backing_file(dir: &Path, name: &str, size: u64) -> PathBuf {
    let img = dir.join(name);
    File::create(&img)
        .and_then(|f| f.set_len(size))
        .expect("create backing file");
    img
}

fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}{:09}", std::process::id(), nanos)
}

// ---------------------------------------------------------------------------------------------------
// Harness preparation (once per test process).

/// Facts `setup.sh` recorded in `cache/env.sh`.
#[derive(Debug)]
struct Harness {
    kver: String,
    kernel_pkg: String,
    kernel_pkg_version: String,
    daxctl_version: String,
    qemu_version: String,
}

fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_string(),
                v.trim().trim_matches('\'').to_string(),
            )
        })
        .collect()
}

fn prepare() -> Result<Harness, String> {
    if std::env::var("FAMFS_QEMU_TESTS").is_ok_and(|v| v == "0") {
        return Err("FAMFS_QEMU_TESTS=0".into());
    }
    let env_file = cache_dir().join("env.sh");
    if !ci() && !env_file.exists() {
        return Err(format!(
            "{} missing: run tests/qemu/setup.sh once (as root: it apt-installs qemu and downloads the kernel)",
            env_file.display()
        ));
    }
    // setup.sh is idempotent and takes about a second once everything is cached; running it keeps the
    // base initramfs in step with the scripts.
    let started = Instant::now();
    let status = Command::new(qemu_dir().join("setup.sh"))
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("cannot run tests/qemu/setup.sh: {e}"))?;
    if !status.success() {
        return Err(format!("tests/qemu/setup.sh failed ({status})"));
    }
    say(&format!(
        "setup.sh took {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    let vars = parse_env_file(
        &std::fs::read_to_string(&env_file).map_err(|e| format!("{}: {e}", env_file.display()))?,
    );
    let get = |k: &str| {
        vars.get(k)
            .cloned()
            .ok_or_else(|| format!("{} lacks {k}", env_file.display()))
    };
    let kernel = PathBuf::from(get("KERNEL")?);
    if !kernel.is_file() {
        return Err(format!("kernel {} missing", kernel.display()));
    }
    let qemu_ok = Command::new("qemu-system-x86_64")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !qemu_ok {
        return Err("qemu-system-x86_64 does not run".into());
    }
    let h = Harness {
        kver: get("KVER")?,
        kernel_pkg: get("KERNEL_PKG")?,
        kernel_pkg_version: get("KERNEL_PKG_VERSION")?,
        daxctl_version: get("DAXCTL_VERSION")?,
        qemu_version: get("QEMU_VERSION")?,
    };
    say(&format!(
        "guest kernel {} (Debian package {} {}), daxctl {}, {}",
        h.kver, h.kernel_pkg, h.kernel_pkg_version, h.daxctl_version, h.qemu_version
    ));
    Ok(h)
}

/// The prepared harness, or `None` after a loud skip message (outside CI). Panics in CI.
fn harness() -> Option<&'static Harness> {
    static H: OnceLock<Result<Harness, String>> = OnceLock::new();
    match H.get_or_init(prepare) {
        Ok(h) => Some(h),
        Err(why) if ci() => panic!("qemu real-kernel tier cannot run with CI=true: {why}"),
        Err(why) => {
            say(&format!("SKIPPED: qemu real-kernel tier not run: {why}"));
            None
        }
    }
}

/// VMs run one scenario at a time: the machine has 2 cores and a scenario may use both.
fn vm_lock() -> MutexGuard<'static, ()> {
    static L: Mutex<()> = Mutex::new(());
    L.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------------
// Our binaries for the guest.

/// Static builds of the `GUEST_BINS` the workspace declares, packed into one cpio for `vm.sh -x`.
#[derive(Debug)]
struct GuestBins {
    present: Vec<&'static str>,
    missing: Vec<&'static str>,
    cpio: Option<PathBuf>,
}

impl GuestBins {
    fn has(&self, bin: &str) -> bool {
        self.present.contains(&bin)
    }
}

/// Which of `GUEST_BINS` the workspace declares as bin targets (`cargo metadata`).
fn declared_bins() -> Result<Vec<&'static str>, String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(repo_dir().join("Cargo.toml"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed ({})", out.status));
    }
    let meta: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata JSON: {e}"))?;
    let mut found = Vec::new();
    for &(pkg, bin) in GUEST_BINS {
        let declared = meta["packages"].as_array().into_iter().flatten().any(|p| {
            p["name"] == pkg
                && p["targets"].as_array().into_iter().flatten().any(|t| {
                    t["name"] == bin
                        && t["kind"]
                            .as_array()
                            .is_some_and(|k| k.iter().any(|k| k == "bin"))
                })
        });
        if declared {
            found.push(bin);
        }
    }
    Ok(found)
}

fn build_guest_bins() -> Result<GuestBins, String> {
    let present = declared_bins()?;
    let missing: Vec<_> = GUEST_BINS
        .iter()
        .map(|&(_, b)| b)
        .filter(|b| !present.contains(b))
        .collect();
    if present.is_empty() {
        return Ok(GuestBins {
            present,
            missing,
            cpio: None,
        });
    }
    let started = Instant::now();
    let specs: Vec<String> = GUEST_BINS
        .iter()
        .filter(|(_, b)| present.contains(b))
        .map(|(p, b)| format!("{p}:{b}"))
        .collect();
    let out = Command::new(qemu_dir().join("build-guest-bins.sh"))
        .args(&specs)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("build-guest-bins.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "build-guest-bins.sh {} failed ({})",
            specs.join(" "),
            out.status
        ));
    }
    let paths: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let cpio = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("qemu-dax")
        .join("guest-bins.cpio.gz");
    std::fs::create_dir_all(cpio.parent().expect("has parent")).map_err(|e| e.to_string())?;
    let status = Command::new(qemu_dir().join("pack-bins.sh"))
        .arg(&cpio)
        .args(&paths)
        .status()
        .map_err(|e| format!("pack-bins.sh: {e}"))?;
    if !status.success() {
        return Err(format!("pack-bins.sh failed ({status})"));
    }
    say(&format!(
        "built static guest binaries {} in {:.1} s",
        present.join(", "),
        started.elapsed().as_secs_f64()
    ));
    Ok(GuestBins {
        present,
        missing,
        cpio: Some(cpio),
    })
}

fn guest_bins() -> &'static GuestBins {
    static B: OnceLock<Result<GuestBins, String>> = OnceLock::new();
    match B.get_or_init(build_guest_bins) {
        Ok(b) => b,
        Err(e) => panic!("cannot build our binaries for the guest: {e}"),
    }
}

// ---------------------------------------------------------------------------------------------------
// Running VMs and parsing their reports.

/// One VM to boot with `vm.sh`.
struct Vm {
    scenario: &'static str,
    img: PathBuf,
    out: PathBuf,
    env: Vec<String>,
    extras: Vec<PathBuf>,
}

impl Vm {
    fn new(scenario: &'static str, img: &Path, out: PathBuf) -> Self {
        Vm {
            scenario,
            img: img.to_path_buf(),
            out,
            env: Vec::new(),
            extras: Vec::new(),
        }
    }

    fn env(mut self, var: &str, value: &str) -> Self {
        self.env.push(format!("{var}={value}"));
        self
    }

    fn with_bins(mut self, bins: &GuestBins) -> Self {
        self.extras.extend(bins.cpio.clone());
        self
    }

    fn spawn(&self) -> (Child, Instant) {
        std::fs::create_dir_all(&self.out).expect("create VM output dir");
        let console = File::create(self.out.join("console.log")).expect("create console.log");
        let mut cmd = Command::new(qemu_dir().join("vm.sh"));
        cmd.arg("-i")
            .arg(&self.img)
            .arg("-o")
            .arg(&self.out)
            .arg("-t")
            .arg(VM_TIMEOUT_S.to_string());
        for e in &self.env {
            cmd.arg("-e").arg(e);
        }
        for x in &self.extras {
            cmd.arg("-x").arg(x);
        }
        cmd.arg(self.scenario)
            .stdin(Stdio::null())
            .stdout(console.try_clone().expect("dup console fd"))
            .stderr(console);
        (cmd.spawn().expect("spawn tests/qemu/vm.sh"), Instant::now())
    }

    fn finish(&self, mut child: Child, started: Instant) -> GuestRun {
        let status = child.wait().expect("wait for vm.sh");
        let wall = started.elapsed();
        let text = std::fs::read_to_string(self.out.join("results.txt")).unwrap_or_default();
        let mut run = GuestRun::parse(&text);
        run.scenario = self.scenario.to_string();
        run.out = self.out.clone();
        run.exit = status.code();
        run.wall = wall;
        say(&format!(
            "scenario {}: {:.1} s wall (guest uptime {} s at power-off), vm.sh exit {:?}",
            self.scenario,
            wall.as_secs_f64(),
            run.kv.get("uptime_at_end").map_or("?", String::as_str),
            run.exit
        ));
        run
    }

    fn run(&self) -> GuestRun {
        let (child, started) = self.spawn();
        self.finish(child, started)
    }
}

/// Boot several VMs at the same time and wait for all of them.
fn run_together(vms: &[Vm]) -> Vec<GuestRun> {
    let started = Instant::now();
    let children: Vec<_> = vms.iter().map(Vm::spawn).collect();
    let runs: Vec<_> = vms
        .iter()
        .zip(children)
        .map(|(vm, (child, t))| vm.finish(child, t))
        .collect();
    let names: Vec<_> = vms.iter().map(|v| v.scenario).collect();
    say(&format!(
        "{} together: {:.1} s wall",
        names.join(" + "),
        started.elapsed().as_secs_f64()
    ));
    runs
}

/// What one VM reported (see `tests/qemu/guest/lib.sh` for the line protocol).
#[derive(Debug, Default)]
struct GuestRun {
    scenario: String,
    out: PathBuf,
    kv: BTreeMap<String, String>,
    results: BTreeMap<String, i32>,
    payloads: BTreeMap<String, String>,
    done: Option<i32>,
    exit: Option<i32>,
    wall: Duration,
}

/// Split `"NAME rc=RC@@"` into its parts.
fn name_rc(rest: &str) -> Option<(String, i32)> {
    let (name, rc) = rest.strip_suffix("@@")?.rsplit_once(" rc=")?;
    Some((name.to_string(), rc.parse().ok()?))
}

impl GuestRun {
    fn parse(text: &str) -> Self {
        let mut run = GuestRun::default();
        let mut open: Option<(String, String)> = None;
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if let Some((name, buf)) = open.as_mut() {
                if let Some((end, rc)) = line.strip_prefix("@@END name=").and_then(name_rc)
                    && end == *name
                {
                    run.payloads.insert(end.clone(), std::mem::take(buf));
                    run.results.insert(end, rc);
                    open = None;
                    continue;
                }
                buf.push_str(line);
                buf.push('\n');
            } else if let Some(rest) = line.strip_prefix("@@BEGIN name=") {
                open = Some((rest.trim_end_matches("@@").to_string(), String::new()));
            } else if let Some((name, rc)) = line.strip_prefix("@@RESULT name=").and_then(name_rc) {
                run.results.insert(name, rc);
            } else if let Some(kv) = line
                .strip_prefix("@@KV ")
                .and_then(|r| r.strip_suffix("@@"))
            {
                if let Some((k, v)) = kv.split_once('=') {
                    run.kv.insert(k.to_string(), v.to_string());
                }
            } else if let Some((_, rc)) = line.strip_prefix("@@DONE scenario=").and_then(name_rc) {
                run.done = Some(rc);
            }
        }
        run
    }

    /// Context for a failed assertion: where the logs are and the end of the console.
    fn context(&self) -> String {
        let console = std::fs::read_to_string(self.out.join("console.log")).unwrap_or_default();
        let lines: Vec<_> = console.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "scenario {} (outputs in {}; vm.sh exit {:?}; steps {:?})\n--- console tail ---\n{tail}",
            self.scenario,
            self.out.display(),
            self.exit,
            self.results
        )
    }

    /// The VM ran its scenario to the end and powered off.
    fn assert_completed(&self) {
        assert_eq!(
            self.exit,
            Some(0),
            "vm.sh failed or timed out\n{}",
            self.context()
        );
        assert!(
            self.done.is_some(),
            "guest never reported @@DONE (died early?)\n{}",
            self.context()
        );
    }

    fn rc(&self, step: &str) -> Option<i32> {
        self.results.get(step).copied()
    }

    fn expect_rc(&self, step: &str, want: i32) {
        assert_eq!(
            self.rc(step),
            Some(want),
            "step {step}: want exit {want}; output:\n{}\n{}",
            self.payload_or_none(step),
            self.context()
        );
    }

    fn expect_ok(&self, step: &str) {
        self.expect_rc(step, 0);
    }

    fn expect_failed(&self, step: &str) {
        let rc = self.rc(step);
        assert!(
            rc.is_some_and(|rc| rc != 0),
            "step {step} should have failed, got {rc:?}; output:\n{}\n{}",
            self.payload_or_none(step),
            self.context()
        );
    }

    /// The step's output contains `needle`.
    fn expect_output(&self, step: &str, needle: &str) {
        let out = self.payload(step);
        assert!(
            out.contains(needle),
            "step {step}: output lacks {needle:?}:\n{out}\n{}",
            self.context()
        );
    }

    fn payload_or_none(&self, step: &str) -> &str {
        self.payloads
            .get(step)
            .map_or("(no output captured)", String::as_str)
    }

    fn payload(&self, step: &str) -> &str {
        match self.payloads.get(step) {
            Some(p) => p,
            None => panic!("no payload {step}\n{}", self.context()),
        }
    }

    /// A step's output parsed as JSON (daxctl writes progress lines like "reconfigured 1 device" on
    /// stderr, which the capture merges, before or after the JSON: the first JSON value counts).
    fn json(&self, step: &str) -> Value {
        let text = self.payload(step);
        let start = text.find(['[', '{']).unwrap_or(0);
        let first = serde_json::Deserializer::from_str(&text[start..])
            .into_iter::<Value>()
            .next()
            .unwrap_or_else(|| serde_json::from_str::<Value>(""));
        first.unwrap_or_else(|e| {
            panic!(
                "step {step}: output is not JSON ({e}):\n{text}\n{}",
                self.context()
            )
        })
    }

    fn kv_u64(&self, key: &str) -> u64 {
        self.kv
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no numeric fact {key}\n{}", self.context()))
    }

    /// `name=value` lines of a payload.
    fn attrs(&self, step: &str) -> BTreeMap<String, String> {
        self.payload(step)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------------
// daxctl list JSON.

/// The device keys compared between the real daxctl and ours (daxctl's `list` device object).
const DEVICE_KEYS: &[&str] = &[
    "chardev",
    "size",
    "target_node",
    "align",
    "mode",
    "online_memblocks",
    "total_memblocks",
    "movable",
    "state",
];

/// The object for `chardev` in `daxctl list` output: an array, or a bare object (`-u` with one device).
fn device<'a>(list: &'a Value, chardev: &str) -> Option<&'a Value> {
    match list {
        Value::Array(items) => items.iter().find(|d| d["chardev"] == chardev),
        Value::Object(_) if list["chardev"] == chardev => Some(list),
        _ => None,
    }
}

/// The compared keys of a device object (absent keys stay absent).
fn device_view(dev: &Value) -> BTreeMap<&'static str, Value> {
    DEVICE_KEYS
        .iter()
        .filter_map(|&k| dev.get(k).map(|v| (k, v.clone())))
        .collect()
}

fn real_device(run: &GuestRun, step: &str) -> Value {
    let list = run.json(step);
    device(&list, "dax0.0")
        .cloned()
        .unwrap_or_else(|| panic!("{step}: no dax0.0 in {list}\n{}", run.context()))
}

/// Our `daxctl-famfs list` output (step `ours`) shows dax0.0 exactly as the real `daxctl list` (step `real`).
fn assert_same_listing(run: &GuestRun, ours: &str, real: &str) {
    run.expect_ok(ours);
    let want = device_view(&real_device(run, real));
    let got = device_view(&real_device(run, ours));
    assert_eq!(
        got,
        want,
        "daxctl-famfs list ({ours}) differs from daxctl list ({real})\n{}",
        run.context()
    );
}

/// Memory blocks that lie wholly inside the dax device's range: what kmem can online.
fn expected_memblocks(run: &GuestRun) -> u64 {
    let sysfs = run.attrs("sysfs-dax0.0");
    let hex = |s: &str| u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).expect("hex");
    let start = hex(&sysfs["resource"]);
    let size: u64 = sysfs["size"].parse().expect("size");
    let block = hex(run.payload("sysfs-memory-block-size"));
    let first = start.div_ceil(block);
    let end = (start + size) / block;
    end.saturating_sub(first)
}

fn assert_system_ram(run: &GuestRun, step: &str, blocks: u64) {
    let dev = real_device(run, step);
    assert_eq!(
        dev["mode"],
        "system-ram",
        "{step}: {dev}\n{}",
        run.context()
    );
    assert_eq!(
        dev["online_memblocks"],
        blocks,
        "{step}: {dev}\n{}",
        run.context()
    );
    assert_eq!(
        dev["total_memblocks"],
        blocks,
        "{step}: {dev}\n{}",
        run.context()
    );
    assert_eq!(dev["movable"], true, "{step}: {dev}\n{}", run.context());
}

fn assert_devdax(run: &GuestRun, step: &str, size: u64) {
    let dev = real_device(run, step);
    assert_eq!(dev["mode"], "devdax", "{step}: {dev}\n{}", run.context());
    assert_eq!(dev["size"], size, "{step}: {dev}\n{}", run.context());
    assert_eq!(dev["align"], MIB2, "{step}: {dev}\n{}", run.context());
    assert_eq!(dev["target_node"], 0, "{step}: {dev}\n{}", run.context());
    assert!(
        dev.get("online_memblocks").is_none(),
        "{step}: memory keys on a devdax device: {dev}"
    );
}

/// MemTotal grew by (nearly) the onlined blocks: the kernel really took the memory.
fn assert_memtotal_grew(run: &GuestRun, before: &str, after: &str, blocks: u64) {
    let block_kib = {
        let b = run.payload("sysfs-memory-block-size").trim().to_string();
        u64::from_str_radix(&b, 16).expect("block size") / 1024
    };
    let (b, a) = (run.kv_u64(before), run.kv_u64(after));
    let grown = a.saturating_sub(b);
    assert!(
        grown * 10 >= blocks * block_kib * 9 && grown <= blocks * block_kib,
        "MemTotal {before}={b} kB -> {after}={a} kB; want about {} kB more\n{}",
        blocks * block_kib,
        run.context()
    );
}

// ---------------------------------------------------------------------------------------------------
// Scenario A: the three dax modes against the real drivers.

fn assert_famfs_mode(run: &GuestRun, step: &str, size: u64) {
    let dev = real_device(run, step);
    assert_eq!(dev["mode"], "famfs", "{step}: {dev}\n{}", run.context());
    assert_eq!(dev["size"], size, "{step}: {dev}\n{}", run.context());
    assert_eq!(dev["align"], MIB2, "{step}: {dev}\n{}", run.context());
    assert!(
        dev.get("online_memblocks").is_none(),
        "{step}: memory keys on a famfs-mode device: {dev}"
    );
}

/// The driver a `dump_sysfs_dax` payload shows the device bound to.
fn sysfs_driver(run: &GuestRun, step: &str) -> String {
    run.attrs(step).remove("driver").unwrap_or_default()
}

/// A step ended with a clean error exit: non-zero, not a Rust panic (101), not killed by a signal
/// or by `timeout` (124), and no panic message in its output.
fn assert_clean_failure(run: &GuestRun, step: &str) {
    let rc = run.rc(step);
    let out = run.payload_or_none(step);
    assert!(
        rc.is_some_and(|rc| rc != 0 && rc != 101 && rc != 124 && rc < 128),
        "step {step} should fail cleanly, got exit {rc:?}; output:\n{out}\n{}",
        run.context()
    );
    assert!(!out.contains("panicked"), "step {step} panicked:\n{out}");
}

/// A famfs tool refused a famfs-mode device cleanly and told how to get back to devdax mode.
fn assert_refuses_famfs_mode(run: &GuestRun, step: &str) {
    assert_clean_failure(run, step);
    let out = run.payload(step);
    assert!(
        out.contains("devdax") && out.contains("daxctl-famfs reconfigure-device"),
        "step {step}: the message must name devdax mode and the daxctl-famfs command:\n{out}"
    );
}

/// Nothing is mounted at the famfs mount point and no famfs_fused process is left.
fn assert_nothing_mounted(run: &GuestRun, mounts: &str, daemons: &str) {
    let leftover: Vec<_> = run
        .payload(mounts)
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("/mnt/famfs") || l.contains("fuse"))
        .collect();
    assert!(leftover.is_empty(), "{mounts}: still mounted: {leftover:?}");
    assert_eq!(
        (run.rc(daemons), run.payload(daemons).trim()),
        (Some(1), ""),
        "{daemons}: a famfs_fused process is left\n{}",
        run.context()
    );
}

/// Devdax namespace, the real daxctl's listings and the sysfs attributes; returns the device size.
fn check_namespace(run: &GuestRun, img: u64) -> u64 {
    run.expect_ok("create-namespace");
    let ns = run.json("create-namespace");
    // devdax, struct pages in RAM, 2 MiB aligned, 2 MiB lost to the info block.
    assert_eq!(
        (&ns["mode"], &ns["map"], &ns["align"]),
        (&"devdax".into(), &"mem".into(), &MIB2.into()),
        "{ns}"
    );
    let size = img - MIB2;
    run.expect_ok("daxctl-list-devdax");
    assert_devdax(run, "daxctl-list-devdax", size);
    assert_eq!(
        real_device(run, "daxctl-list-devdax-human")["size"],
        "4.01 GiB (4.31 GB)"
    );
    let sysfs = run.attrs("sysfs-dax0.0");
    assert_eq!(
        sysfs.get("driver").map(String::as_str),
        Some("device_dax"),
        "{sysfs:?}"
    );
    assert_eq!(sysfs.get("size"), Some(&size.to_string()), "{sysfs:?}");
    run.expect_ok("marker-write");
    size
}

/// The real daxctl: devdax -> system-ram -> devdax (with its refusals), devdax -> famfs -> devdax.
fn check_real_round_trips(run: &GuestRun, size: u64, blocks: u64, marker: &str) {
    run.expect_ok("real-reconf-system-ram");
    assert_system_ram(run, "real-reconf-system-ram", blocks);
    assert_system_ram(run, "daxctl-list-system-ram", blocks);
    assert_memtotal_grew(run, "memtotal_kb_devdax", "memtotal_kb_system_ram", blocks);
    // Online memory: leaving system-ram without -f is refused with EBUSY (exit 240).
    run.expect_rc("real-reconf-devdax-noforce", 240);
    run.expect_output("real-reconf-devdax-noforce", "Device or resource busy");
    // famfs only from devdax: EINVAL (exit 234).
    run.expect_rc("real-reconf-famfs-from-ram", 234);
    run.expect_output(
        "real-reconf-famfs-from-ram",
        "must be in devdax mode to convert to famfs",
    );
    run.expect_ok("real-reconf-devdax-force");
    assert_devdax(run, "daxctl-list-devdax-after", size);
    assert_eq!(
        run.kv_u64("memtotal_kb_devdax_after"),
        run.kv_u64("memtotal_kb_devdax"),
        "memory not returned"
    );
    assert_eq!(
        run.payload("marker-read").trim(),
        marker,
        "data lost across the round trip\n{}",
        run.context()
    );
    run.expect_ok("real-reconf-famfs");
    assert_famfs_mode(run, "real-reconf-famfs", size);
    assert_famfs_mode(run, "real-list-famfs", size);
    assert_eq!(sysfs_driver(run, "real-sysfs-famfs"), "fsdev_dax");
    run.expect_ok("real-reconf-famfs-again");
    run.expect_rc("real-reconf-famfs-no-online", 129);
    run.expect_ok("real-reconf-devdax-from-famfs");
    assert_devdax(run, "real-list-devdax-from-famfs", size);
}

/// Our `list` in devdax mode, next to the real one.
fn check_ours_devdax_listing(run: &GuestRun) {
    assert_same_listing(run, "ours-list-devdax", "real-list-devdax-from-famfs");
    assert_same_listing(run, "ours-list-devdax-dev", "real-list-devdax-from-famfs");
    assert_same_listing(run, "ours-list-devdax-human", "daxctl-list-devdax-human");
    // A device that matches nothing: both exit 0 and print nothing on stdout.
    run.expect_ok("real-list-nomatch");
    run.expect_ok("ours-list-nomatch");
    assert_eq!(
        run.payload("ours-list-nomatch").trim(),
        run.payload("real-list-nomatch").trim(),
        "a list that matches nothing prints nothing"
    );
    run.expect_rc(
        "ours-reconf-nomatch",
        run.rc("real-reconf-nomatch").expect("real reconfigure ran"),
    );
}

/// Ours: devdax -> famfs, the famfs-mode refusals of our famfs tools, famfs -> devdax.
fn check_ours_famfs_mode(run: &GuestRun, size: u64, marker: &str, famfs_tools: bool) {
    if famfs_tools {
        run.expect_ok("ours-mkfs-devdax");
    }
    run.expect_ok("ours-reconf-famfs");
    assert_famfs_mode(run, "ours-reconf-famfs", size);
    assert_famfs_mode(run, "real-list-after-ours-famfs", size);
    assert_same_listing(run, "ours-list-famfs", "real-list-after-ours-famfs");
    assert_same_listing(run, "ours-list-famfs-human", "real-list-famfs-human");
    assert_eq!(sysfs_driver(run, "ours-sysfs-famfs"), "fsdev_dax");
    // Switching to the mode the device is in succeeds, as daxctl's does; -N is a usage error.
    run.expect_ok("ours-reconf-famfs-again");
    run.expect_rc("ours-reconf-famfs-no-online", 129);

    // fsdev_dax keeps the character device but refuses mmap with ENODEV.
    run.expect_ok("famfs-mode-chardev-present");
    run.expect_rc("famfs-mode-mmap", 2);
    run.expect_output("famfs-mode-mmap", "(os error 19)"); // ENODEV
    if famfs_tools {
        assert_eq!(
            run.kv.get("ours_famfs").map(String::as_str),
            Some("present")
        );
        for step in [
            "famfs-mode-mkfs",
            "famfs-mode-mkfs-force",
            "famfs-mode-fsck",
            "famfs-mode-logplay",
            "famfs-mode-mount",
            "famfs-mode-daemon",
        ] {
            assert_refuses_famfs_mode(run, step);
        }
        assert_nothing_mounted(
            run,
            "famfs-mode-mounts-after-mount",
            "famfs-mode-daemons-after-mount",
        );
        assert_nothing_mounted(
            run,
            "famfs-mode-mounts-after-daemon",
            "famfs-mode-daemons-after-daemon",
        );
    }

    run.expect_ok("ours-reconf-devdax-from-famfs");
    assert_devdax(run, "ours-reconf-devdax-from-famfs", size);
    assert_devdax(run, "real-list-after-ours-devdax-from-famfs", size);
    assert_eq!(
        run.payload("ours-marker-read-after-famfs").trim(),
        marker,
        "data lost across famfs mode"
    );
    if famfs_tools {
        // The file system made before the switch is intact (and nothing wrote to it in famfs mode).
        run.expect_ok("ours-fsck-after-famfs");
    }
}

/// Ours: devdax -> system-ram -> devdax, with the real daxctl's refusals in the same state.
fn check_ours_system_ram(run: &GuestRun, size: u64, blocks: u64, marker: &str) {
    run.expect_ok("ours-reconf-system-ram");
    assert_system_ram(run, "ours-reconf-system-ram", blocks);
    assert_system_ram(run, "real-list-after-ours-system-ram", blocks);
    assert_same_listing(
        run,
        "ours-list-system-ram",
        "real-list-after-ours-system-ram",
    );
    assert_memtotal_grew(
        run,
        "memtotal_kb_devdax_after",
        "memtotal_kb_ours_system_ram",
        blocks,
    );
    // Refusals keep the device as it was, with the real daxctl's exit codes: EBUSY without -f,
    // EINVAL for famfs from system-ram.
    run.expect_rc("ours-reconf-devdax-noforce", 240);
    run.expect_rc("ours-reconf-famfs-from-ram", 234);
    run.expect_output("ours-reconf-famfs-from-ram", "must be in devdax mode");
    assert_system_ram(run, "real-list-after-ours-refusals", blocks);
    run.expect_ok("ours-reconf-devdax-force");
    assert_devdax(run, "real-list-after-ours-devdax", size);
    assert_same_listing(run, "ours-list-devdax-after", "real-list-after-ours-devdax");
    assert_eq!(
        run.kv_u64("memtotal_kb_ours_devdax"),
        run.kv_u64("memtotal_kb_devdax"),
        "memory not returned by our round trip"
    );
    assert_eq!(
        run.payload("ours-marker-read").trim(),
        marker,
        "data lost across our round trip"
    );
}

/// The kernel logged no warning or BUG (they come with a call trace).
fn assert_no_kernel_warnings(run: &GuestRun) {
    let dmesg = run.payload("dmesg");
    let bad: Vec<_> = dmesg
        .lines()
        .filter(|l| {
            ["Call Trace", "refcount_t", "BUG:", "WARNING:"]
                .iter()
                .any(|w| l.contains(w))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "kernel warnings:\n{}\n--- dmesg ---\n{dmesg}",
        bad.join("\n")
    );
}

#[test]
fn real_kernel_dax_modes() {
    let Some(h) = harness() else { return };
    let bins = guest_bins();
    let _vm = vm_lock();
    let dir = work_dir("modeswitch");
    // Large enough for mkfs.famfs (4 GiB minimum), so famfs-mode refusals concern the mode alone.
    let img = backing_file(&dir, "pmem.img", FAMFS_IMG);
    let id = run_id();
    let marker = format!("famfs-qemu-marker-{id}");
    let run = Vm::new("modeswitch", &img, dir.join("vm"))
        .env("RUNID", &id)
        .with_bins(bins)
        .run();
    run.assert_completed();
    assert_eq!(
        run.kv.get("kernel"),
        Some(&h.kver),
        "guest ran another kernel\n{}",
        run.context()
    );
    for bin in &bins.present {
        run.expect_ok(&format!("help-{bin}"));
    }
    if bins.has("famfs") {
        // `famfs` invoked as mkfs.famfs (the guest's symlink) is mkfs.famfs.
        run.expect_ok("help-mkfs.famfs");
        run.expect_output("help-mkfs.famfs", "mkfs.famfs");
    }
    run.expect_ok("fuse-available");
    assert_eq!(run.payload("daxctl-version").trim(), h.daxctl_version);
    let drivers: Vec<_> = run.payload("dax-drivers").split_whitespace().collect();
    for drv in ["device_dax", "fsdev_dax", "kmem"] {
        assert!(drivers.contains(&drv), "no {drv} driver: {drivers:?}");
    }

    let size = check_namespace(&run, FAMFS_IMG);
    let blocks = expected_memblocks(&run);
    assert!(
        blocks > 0,
        "no whole memory block in the device\n{}",
        run.context()
    );
    check_real_round_trips(&run, size, blocks, &marker);
    // Covers everything the VM did (the dmesg is taken last).
    assert_no_kernel_warnings(&run);

    if !bins.has("daxctl-famfs") {
        assert_eq!(
            run.kv.get("ours_daxctl").map(String::as_str),
            Some("absent")
        );
        say("PENDING: daxctl-famfs binary not declared in the workspace; real daxctl checks only");
        return;
    }
    assert_eq!(
        run.kv.get("ours_daxctl").map(String::as_str),
        Some("present"),
        "{}",
        run.context()
    );
    let famfs_tools = ["famfs", "famfs_fused"].iter().all(|b| bins.has(b));
    check_ours_devdax_listing(&run);
    check_ours_famfs_mode(&run, size, &marker, famfs_tools);
    check_ours_system_ram(&run, size, blocks, &marker);
}

// ---------------------------------------------------------------------------------------------------
// Scenario B: two VMs, one backing file.

/// The `daxmm` test pattern (tests/qemu/tools/daxmm.rs): xorshift64*, little-endian words.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Bytes at dax offset `off` of a `-M mem` namespace, read from the host side of the backing file.
fn read_dax(img: &Path, off: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    File::open(img)
        .and_then(|f| f.read_exact_at(&mut buf, MIB2 + off))
        .expect("read backing file");
    buf
}

fn namespace_uuid(run: &GuestRun) -> String {
    let ns = run.json("namespace");
    ns[0]["uuid"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no uuid in {ns}\n{}", run.context()))
}

#[test]
fn two_vms_share_one_backing_file() {
    if harness().is_none() {
        return;
    }
    let _vm = vm_lock();
    let dir = work_dir("share");
    let img = backing_file(&dir, "shared.img", SMALL_IMG);
    let id = run_id();
    let seed = 0x5eed_u64 + u64::from(std::process::id());
    let vms = [
        Vm::new("share-writer", &img, dir.join("writer"))
            .env("RUNID", &id)
            .env("SEED", &seed.to_string()),
        Vm::new("share-reader", &img, dir.join("reader"))
            .env("RUNID", &id)
            .env("SEED", &seed.to_string()),
    ];
    let [writer, reader]: [GuestRun; 2] = run_together(&vms).try_into().expect("two runs");
    writer.assert_completed();
    reader.assert_completed();

    writer.expect_ok("create-namespace");
    for step in ["dax-dev-appears", "pattern-fill", "ready-write", "ack-seen"] {
        writer.expect_ok(step);
    }
    // The reader either booted after the writer's namespace creation landed, or (usually) before, and
    // then found it by re-probing.
    let found = reader.kv.get("dax_found").map(String::as_str);
    assert!(
        matches!(found, Some("at-boot" | "reprobe")),
        "{found:?}\n{}",
        reader.context()
    );
    say(&format!(
        "share-reader found the namespace {}",
        found.unwrap_or("?")
    ));
    for step in [
        "dax-dev-appears",
        "ready-seen",
        "pattern-check",
        "ack-write",
    ] {
        reader.expect_ok(step);
    }
    assert_eq!(
        namespace_uuid(&writer),
        namespace_uuid(&reader),
        "the two VMs see different namespaces"
    );
    assert_devdax(&reader, "daxctl-list", SMALL_IMG - MIB2);

    // The host sees the same bytes in the backing file: dax offset X is file offset 2 MiB + X.
    let info = {
        let mut b = vec![0; 16];
        File::open(&img)
            .and_then(|f| f.read_exact_at(&mut b, 4096))
            .expect("read info block");
        b
    };
    assert!(
        info.starts_with(b"NVDIMM_DAX_INFO"),
        "no devdax info block at 4 KiB: {info:?}"
    );
    let ready = format!("READY {id}\0");
    assert_eq!(
        read_dax(&img, 0, ready.len()),
        ready.as_bytes(),
        "writer's token not in the backing file"
    );
    let ack = format!("ACK {id}\0");
    assert_eq!(
        read_dax(&img, 1 << 20, ack.len()),
        ack.as_bytes(),
        "reader's token not in the backing file"
    );
    assert!(
        read_dax(&img, 4 << 20, 8 << 20) == pattern(seed, 8 << 20),
        "pattern differs in the backing file"
    );
}

// ---------------------------------------------------------------------------------------------------
// Phase 2: famfs on the real device, two hosts.

#[test]
fn famfs_two_hosts_on_real_dax() {
    let Some(_) = harness() else { return };
    let bins = guest_bins();
    let needed = ["famfs", "famfs_fused"];
    let absent: Vec<_> = needed.iter().filter(|b| !bins.has(b)).collect();
    assert!(
        absent.is_empty(),
        "the famfs two-host scenario needs the binaries {absent:?}, which the workspace does not \
         declare (missing overall: {:?})",
        bins.missing
    );
    let _vm = vm_lock();
    let dir = work_dir("famfs");
    let img = backing_file(&dir, "shared.img", FAMFS_IMG);
    let id = run_id();
    let vms = [
        Vm::new("famfs-master", &img, dir.join("master"))
            .env("RUNID", &id)
            .env("FAMFS_SYSTEM_UUID", "6a2f5c1e-0b7d-4e8a-9c3f-a1b2c3d4e5f6")
            .with_bins(bins),
        Vm::new("famfs-client", &img, dir.join("client"))
            .env("RUNID", &id)
            .env("FAMFS_SYSTEM_UUID", "f0e1d2c3-b4a5-4968-8776-655443322110")
            .with_bins(bins),
    ];
    let [master, client]: [GuestRun; 2] = run_together(&vms).try_into().expect("two runs");
    master.assert_completed();
    client.assert_completed();
    assert_ne!(master.payload("system-uuid"), client.payload("system-uuid"));

    let files = ["f1", "f2", "sub/f3", "sub/deeper/f4"];
    master.expect_ok("create-namespace");
    master.expect_ok("mkfs");
    master.expect_failed("mkfs-again-refused");
    for step in [
        "fsck-offline",
        "logplay-ls-empty",
        "mount",
        "mkdir-sub",
        "creat-random",
        "verify-random",
    ] {
        master.expect_ok(step);
    }
    for f in files {
        master.expect_ok(&format!("cp-{f}"));
        master.expect_ok(&format!("cmp-{f}"));
    }
    for step in [
        "master-sums",
        "fsck-mounted",
        "logplay-ls",
        "ready-write",
        "ack-seen",
        "umount",
        "fsck-after",
    ] {
        master.expect_ok(step);
    }
    for step in [
        "dax-dev-appears",
        "ready-seen",
        "fsck-offline-client",
        "mount",
        "client-sums",
        "umount",
        "ack-write",
    ] {
        client.expect_ok(step);
    }
    for f in files {
        client.expect_ok(&format!("cmp-{f}"));
    }
    client.expect_failed("client-creat-refused");
    let sums = master.payload("master-sums");
    assert_eq!(
        sums.lines().count(),
        files.len() + 1,
        "master-sums:\n{sums}"
    );
    assert_eq!(
        client.payload("client-sums"),
        sums,
        "the client reads other bytes than the master wrote"
    );

    // On media, seen from the host: superblock magic at dax offset 0, log magic at 2 MiB.
    assert_eq!(
        read_dax(&img, 0, 8),
        0x87b2_82ff_u64.to_le_bytes(),
        "no famfs superblock magic"
    );
    assert_eq!(
        read_dax(&img, MIB2, 8),
        0x0bad_cafe_f00d_u64.to_le_bytes(),
        "no famfs log magic"
    );
}

// ---------------------------------------------------------------------------------------------------
// The report parser itself (no VM needed).

#[test]
fn report_parser_reads_the_guest_protocol() {
    let text = "@@KV kernel=6.1.0-48-cloud-amd64@@\r\n\
                @@BEGIN name=list@@\n[\n  {\"chardev\":\"dax0.0\"}\n]\n@@END name=list rc=0@@\n\
                noise from somewhere\n\
                @@RESULT name=sub/f3 rc=240@@\n\
                @@BEGIN name=empty@@\n@@END name=empty rc=3@@\n\
                @@BEGIN name=nested@@\n@@END name=other rc=1@@\n@@END name=nested rc=0@@\n\
                @@DONE scenario=modeswitch rc=0@@\n";
    let run = GuestRun::parse(text);
    assert_eq!(run.kv["kernel"], "6.1.0-48-cloud-amd64");
    assert_eq!(run.rc("list"), Some(0));
    assert_eq!(run.payloads["list"], "[\n  {\"chardev\":\"dax0.0\"}\n]\n");
    assert_eq!(run.rc("sub/f3"), Some(240));
    assert_eq!(
        (run.rc("empty"), run.payloads["empty"].as_str()),
        (Some(3), "")
    );
    assert_eq!(run.payloads["nested"], "@@END name=other rc=1@@\n");
    assert_eq!(run.done, Some(0));
    assert_eq!(GuestRun::parse("@@BEGIN name=cut@@\npartial\n").done, None);
    // daxctl's stderr lines, merged into the capture before or after the JSON.
    let merged = GuestRun::parse(
        "@@BEGIN name=after@@\n[{\"mode\":\"famfs\"}]\nreconfigured 1 device\n@@END name=after rc=0@@\n\
         @@BEGIN name=before@@\nreconfigured 1 device\n{\"mode\":\"devdax\"}\n@@END name=before rc=0@@\n",
    );
    assert_eq!(merged.json("after")[0]["mode"], "famfs");
    assert_eq!(merged.json("before")["mode"], "devdax");

    let list: Value =
        serde_json::from_str(r#"{"chardev":"dax0.0","size":"1 GiB","mode":"devdax"}"#).unwrap();
    assert_eq!(
        device(&list, "dax0.0").map(device_view).map(|v| v.len()),
        Some(3)
    );
    assert!(device(&list, "dax1.0").is_none());

    let env = parse_env_file("KVER='6.1.0-48-cloud-amd64'\nKERNEL='/x/vmlinuz'\n");
    assert_eq!(env["KVER"], "6.1.0-48-cloud-amd64");
    // Same bytes as `daxmm gen 16 7` in the guest.
    assert_eq!(pattern(7, 6), [0xb4, 0x02, 0xfb, 0xa2, 0xed, 0xa8]);
}
