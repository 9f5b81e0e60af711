//! Real-kernel tier (issue #5 part 4): Debian's cloud kernel in qemu (TCG) with an emulated NVDIMM gives a
//! real `/dev/dax0.0`, the real `device_dax`/`kmem` drivers and the real `daxctl`; two VMs on one
//! `share=on` backing file are two hosts sharing memory.
//!
//! The shell harness lives in `tests/qemu/` (see its README.md): `setup.sh` prepares the kernel and the
//! base initramfs from Debian packages, `vm.sh` boots one VM per scenario, `build-guest-bins.sh` and
//! `pack-bins.sh` ship our binaries as an appended cpio. Guest scenario scripts report on a second serial
//! port (`@@RESULT ...@@` lines and payload blocks, see `tests/qemu/guest/lib.sh`); this file parses those
//! reports and asserts on them.
//!
//! Scenarios:
//! * `modeswitch` (one VM): devdax namespace, real `daxctl list`, real devdax → system-ram → devdax. When the
//!   workspace has the `daxctl-famfs` binary, our `list` is compared with the real one and our
//!   `reconfigure-device` makes the same round trip, checked by the real `daxctl list` after each step.
//! * `share-writer` + `share-reader` (two VMs at once, one backing file): data written by one is read by the
//!   other, and the host checks the bytes in the backing file.
//! * `famfs-master` + `famfs-client` (two VMs at once): our mkfs.famfs, famfs and famfs_fused on the real
//!   device; runs when the workspace declares those binaries.
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
/// Backing file of the one-VM and the sharing scenarios: small, so struct pages and memory blocks are few.
const SMALL_IMG: u64 = 1 << 30;
/// Backing file of the famfs scenario: the reference mkfs refuses devices under 4 GiB; the namespace loses
/// 2 MiB to its info block and is aligned to the region's 16 MiB.
const FAMFS_IMG: u64 = (4 << 30) + (16 << 20);
/// qemu timeout per VM, seconds (vm.sh wraps qemu in `timeout`).
const VM_TIMEOUT_S: u32 = 150;

/// Our binaries the guest can use: (package, binary).
const GUEST_BINS: &[(&str, &str)] = &[
    ("daxctl-famfs", "daxctl-famfs"),
    // cargo cannot name a binary `mkfs.famfs`; the guest links `mkfs.famfs` to it (lib.sh).
    ("famfs-cli", "mkfs-famfs"),
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
        qemu_version: get("QEMU_VERSION")?,
    };
    say(&format!(
        "guest kernel {} (Debian package {} {}), {}",
        h.kver, h.kernel_pkg, h.kernel_pkg_version, h.qemu_version
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
    /// stderr, which the capture merges: parsing starts at the first `[` or `{`).
    fn json(&self, step: &str) -> Value {
        let text = self.payload(step);
        let start = text.find(['[', '{']).unwrap_or(0);
        serde_json::from_str(&text[start..]).unwrap_or_else(|e| {
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
// Scenario A: mode switching against the real drivers.

#[test]
fn real_kernel_devdax_system_ram_round_trip() {
    let Some(h) = harness() else { return };
    let bins = guest_bins();
    let _vm = vm_lock();
    let dir = work_dir("modeswitch");
    let img = dir.join("pmem.img");
    File::create(&img)
        .and_then(|f| f.set_len(SMALL_IMG))
        .expect("create backing file");
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

    run.expect_ok("fuse-available");

    // The namespace: devdax, struct pages in RAM, 2 MiB aligned, 2 MiB lost to the info block.
    run.expect_ok("create-namespace");
    let ns = run.json("create-namespace");
    assert_eq!(
        (&ns["mode"], &ns["map"], &ns["align"]),
        (&"devdax".into(), &"mem".into(), &MIB2.into()),
        "{ns}"
    );
    let size = SMALL_IMG - MIB2;
    run.expect_ok("daxctl-list-devdax");
    assert_devdax(&run, "daxctl-list-devdax", size);
    assert_eq!(
        real_device(&run, "daxctl-list-devdax-human")["size"],
        "1022.00 MiB (1071.64 MB)"
    );
    let sysfs = run.attrs("sysfs-dax0.0");
    assert_eq!(
        sysfs.get("driver").map(String::as_str),
        Some("device_dax"),
        "{sysfs:?}"
    );
    assert_eq!(sysfs.get("size"), Some(&size.to_string()), "{sysfs:?}");
    run.expect_ok("marker-write");

    // devdax -> system-ram -> devdax with the real daxctl.
    let blocks = expected_memblocks(&run);
    assert!(
        blocks > 0,
        "no whole memory block in the device\n{}",
        run.context()
    );
    run.expect_ok("real-reconf-system-ram");
    assert_system_ram(&run, "real-reconf-system-ram", blocks);
    assert_system_ram(&run, "daxctl-list-system-ram", blocks);
    assert_memtotal_grew(&run, "memtotal_kb_devdax", "memtotal_kb_system_ram", blocks);
    // Online memory: leaving system-ram without -f is refused with EBUSY (exit 240).
    run.expect_rc("real-reconf-devdax-noforce", 240);
    assert!(
        run.payload("real-reconf-devdax-noforce")
            .contains("Device or resource busy")
    );
    run.expect_ok("real-reconf-devdax-force");
    assert_devdax(&run, "daxctl-list-devdax-after", size);
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

    // Phase 2: our daxctl-famfs against the same kernel.
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
    assert_same_listing(&run, "ours-list-devdax", "daxctl-list-devdax-after");
    assert_same_listing(&run, "ours-list-devdax-dev", "daxctl-list-devdax-after");
    assert_same_listing(&run, "ours-list-devdax-human", "daxctl-list-devdax-human");
    run.expect_rc(
        "ours-list-nomatch",
        run.rc("real-list-nomatch").expect("real list ran"),
    );
    // Not asserted: for a device that matches nothing, daxctl 76 (Debian) exits 250 (ENXIO) while the
    // v81+ sources our reference describes exit 0; shown so a change on either side is noticed.
    if run.rc("ours-reconf-nomatch") != run.rc("real-reconf-nomatch") {
        say(&format!(
            "NOTE: reconfigure-device of a missing device: ours exit {:?}, Debian's daxctl {:?}",
            run.rc("ours-reconf-nomatch"),
            run.rc("real-reconf-nomatch")
        ));
    }
    assert_eq!(run.rc("real-list-nomatch"), Some(0));
    assert_eq!(
        run.payload("ours-list-nomatch").trim(),
        run.payload("real-list-nomatch").trim(),
        "a list that matches nothing prints nothing"
    );
    run.expect_ok("ours-reconf-system-ram");
    assert_system_ram(&run, "real-list-after-ours-system-ram", blocks);
    assert_same_listing(
        &run,
        "ours-list-system-ram",
        "real-list-after-ours-system-ram",
    );
    assert_memtotal_grew(
        &run,
        "memtotal_kb_devdax_after",
        "memtotal_kb_ours_system_ram",
        blocks,
    );
    // Refusals keep the device as it was, with the real daxctl's exit codes.
    run.expect_rc(
        "ours-reconf-devdax-noforce",
        run.rc("real-reconf-devdax-noforce")
            .expect("real refusal ran"),
    );
    run.expect_rc("ours-reconf-famfs-from-ram", 234);
    assert_system_ram(&run, "real-list-after-ours-refusals", blocks);
    run.expect_ok("ours-reconf-devdax-force");
    assert_devdax(&run, "real-list-after-ours-devdax", size);
    assert_same_listing(
        &run,
        "ours-list-devdax-after",
        "real-list-after-ours-devdax",
    );
    assert_eq!(
        run.payload("ours-marker-read").trim(),
        marker,
        "data lost across our round trip"
    );
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
    let img = dir.join("shared.img");
    File::create(&img)
        .and_then(|f| f.set_len(SMALL_IMG))
        .expect("create backing file");
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
    let needed = ["mkfs-famfs", "famfs", "famfs_fused"];
    let absent: Vec<_> = needed.iter().filter(|b| !bins.has(b)).collect();
    assert!(
        absent.is_empty(),
        "the famfs two-host scenario needs the binaries {absent:?}, which the workspace does not \
         declare (missing overall: {:?})",
        bins.missing
    );
    let _vm = vm_lock();
    let dir = work_dir("famfs");
    let img = dir.join("shared.img");
    File::create(&img)
        .and_then(|f| f.set_len(FAMFS_IMG))
        .expect("create backing file");
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
