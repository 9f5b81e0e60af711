//! `famfs creat`, one process per file, through a real mount — how users' scripts and the
//! reference's tests create files — at an empty log and at a 15,000-entry log, in one run:
//!
//! * through the daemon's control channel (the default): the cost must not grow with the log
//!   (target: the 15,000-entry figure ≤ 1.2× the empty-log one) and stay ≤ 1.5 ms per file,
//!   process start included;
//! * appending in the CLI process (`FAMFS_CONTROL=off`, what every command did before the
//!   channel: a whole-log replay per process), for comparison;
//! * `famfs --version`, the process-start floor.
//!
//! The configurations take turns in rounds, so load from other work on the machine hits them
//! alike; figures are medians over the rounds, with the range. Per file: wall time, CPU of the
//! `famfs` process, and CPU the daemon spent for it.
//!
//! `cargo bench -p famfs-tests --bench creat` (root and /dev/fuse). The benchmark builds
//! release `famfs` and `famfs_fused` into `<target>/famfs-bench-bin` unless `$FAMFS_CLI` and
//! `$FAMFS_FUSED` name them. `FAMFS_BENCH_ROUNDS` (default 7) × `FAMFS_BENCH_BATCH` (default 20)
//! files per configuration.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use famfs_tests::fused::release_bins;

/// An extended attribute of `path`, as text (panics without one).
fn xattr(path: &Path, name: &str) -> String {
    let v = famfs_tests::fused::xattr(path, name).unwrap_or_else(|| panic!("no {name}"));
    String::from_utf8(v).unwrap()
}

use famfs_tests::prereq;
use famfs_tests::standin::StandIn;

const GIB: u64 = 1 << 30;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A mounted stand-in with `entries` log entries used.
struct Mounted {
    dev: StandIn,
    mpt: PathBuf,
    famfs: PathBuf,
    daemon: u32,
}

impl Mounted {
    fn new(entries: u64, famfs: &Path, fused: &Path) -> Mounted {
        let mut dev = StandIn::create_in(Path::new("/dev/shm"), 64 * GIB).expect("stand-in");
        let mut used = 0;
        let mut d = 0;
        while used < entries {
            let dir = format!("pre{d:03}");
            dev.mkdir_p(&dir).unwrap();
            let n = (entries - used - 1).min(999);
            dev.add_files_unwritten((0..n).map(|i| format!("{dir}/f{i:04}")), 4096)
                .unwrap();
            used += n + 1;
            d += 1;
        }
        let mpt = dev.dir().join("mnt");
        std::fs::create_dir(&mpt).unwrap();
        let mut m = Mounted {
            mpt,
            famfs: famfs.to_path_buf(),
            daemon: 0,
            dev,
        };
        let out = m
            .cmd()
            .env("FAMFS_FUSED", fused)
            .args(["mount", "--poll-ms", "1000"])
            .arg(m.dev.path())
            .arg(&m.mpt)
            .output()
            .unwrap();
        assert!(out.status.success(), "mount: {out:?}");
        m.daemon = xattr(&m.mpt, "user.famfs.pid")
            .parse()
            .expect("the daemon's pid");
        m.cmd()
            .args(["mkdir"])
            .arg(m.mpt.join("bench"))
            .output()
            .unwrap();
        m
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.famfs);
        c.env("FAMFS_SYSTEM_UUID", self.dev.master_uuid().to_string())
            .env("FAMFS_PROGRESS", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        c
    }

    /// CPU time of all the daemon's threads so far.
    fn daemon_cpu(&self) -> Duration {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.daemon)).unwrap();
        Duration::from_nanos(
            tasks
                .filter_map(|t| {
                    let s = std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok()?;
                    s.split_whitespace().next()?.parse::<u64>().ok()
                })
                .sum(),
        )
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = self.cmd().arg("umount").arg(&self.mpt).output();
    }
}

/// CPU time (user + system) of this process's waited-for children.
fn children_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let ru = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_micros(t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64)
    };
    tv(ru.user_time()) + tv(ru.system_time())
}

/// Per-file figures of one batch.
#[derive(Clone, Copy, Default)]
struct PerFile {
    wall: f64,
    cpu: f64,
    daemon: f64,
}

#[derive(Default)]
struct Series(Vec<PerFile>);

impl Series {
    fn stat(&self, f: impl Fn(&PerFile) -> f64) -> (f64, f64, f64) {
        let mut v: Vec<f64> = self.0.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0], v[v.len() - 1])
    }
    fn wall(&self) -> f64 {
        self.stat(|p| p.wall).0
    }
}

fn batch(n: u64, mount: Option<&Mounted>, mut cmd: impl FnMut(u64) -> Command) -> PerFile {
    let (t, c) = (Instant::now(), children_cpu());
    let d = mount.map(Mounted::daemon_cpu);
    for i in 0..n {
        let st = cmd(i).status().expect("spawn famfs");
        assert!(st.success(), "famfs failed: {st}");
    }
    let per = |d: Duration| d.as_secs_f64() * 1e3 / n as f64;
    PerFile {
        wall: per(t.elapsed()),
        cpu: per(children_cpu().saturating_sub(c)),
        daemon: match (mount, d) {
            (Some(m), Some(d)) => per(m.daemon_cpu().saturating_sub(d)),
            _ => 0.0,
        },
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: compile check only.
    if !std::env::args().any(|a| a == "--bench") {
        println!("creat bench: quick check only (run with `cargo bench` for figures)");
        return;
    }
    if !prereq::root_and_fuse("creat bench") {
        return;
    }
    let (famfs, fused) = release_bins();
    let rounds = env_u64("FAMFS_BENCH_ROUNDS", 7);
    let n = env_u64("FAMFS_BENCH_BATCH", 20);
    // Both configurations append to both mounts: stay inside the 15,420 slots of 8 MiB.
    assert!(
        2 * rounds * n <= 400,
        "FAMFS_BENCH_ROUNDS x FAMFS_BENCH_BATCH too large"
    );
    let t = Instant::now();
    let empty = Mounted::new(0, &famfs, &fused);
    let full = Mounted::new(15_000, &famfs, &fused);
    println!(
        "== famfs creat -s 4k, one process per file ({rounds} rounds x {n} files; setup {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    let names = [
        "famfs --version (process start)",
        "channel, empty log",
        "channel, 15,000-entry log",
        "in process, empty log",
        "in process, 15,000-entry log",
    ];
    let mut series: Vec<Series> = names.iter().map(|_| Series::default()).collect();
    let mut k = 0u64;
    for _ in 0..rounds {
        series[0].0.push(batch(n, None, |_| {
            let mut c = empty.cmd();
            c.arg("--version");
            c
        }));
        for (s, m, off) in [
            (1, &empty, false),
            (2, &full, false),
            (3, &empty, true),
            (4, &full, true),
        ] {
            series[s].0.push(batch(n, Some(m), |_| {
                k += 1;
                let mut c = m.cmd();
                if off {
                    c.env("FAMFS_CONTROL", "off");
                }
                c.args(["creat", "-s", "4k"])
                    .arg(m.mpt.join(format!("bench/f{k}")));
                c
            }));
        }
    }
    println!(
        "  {:<34} {:>22} {:>10} {:>10}",
        "per file (ms)", "wall: median [range]", "famfs CPU", "daemon CPU"
    );
    for (name, s) in names.iter().zip(&series) {
        let (w, lo, hi) = s.stat(|p| p.wall);
        println!(
            "  {name:<34} {w:7.3} [{lo:6.3}, {hi:6.3}] {:10.3} {:10.3}",
            s.stat(|p| p.cpu).0,
            s.stat(|p| p.daemon).0
        );
    }
    // Ratios per round (the configurations of one round ran back to back), then the median.
    let ratio = |a: usize, b: usize| {
        let mut r: Vec<f64> = series[a]
            .0
            .iter()
            .zip(&series[b].0)
            .map(|(x, y)| x.wall / y.wall)
            .collect();
        r.sort_by(f64::total_cmp);
        (r[r.len() / 2], r[0], r[r.len() - 1])
    };
    let (r, lo, hi) = ratio(2, 1);
    println!(
        "  channel, 15,000-entry / empty log:   {r:.2}x [{lo:.2}, {hi:.2}]  target <= 1.2x: {}",
        if r <= 1.2 { "met" } else { "NOT MET" }
    );
    let w = series[2].wall();
    println!(
        "  channel, 15,000-entry log per file:  {w:.3} ms  target <= 1.5 ms: {}",
        if w <= 1.5 { "met" } else { "NOT MET" }
    );
    let (r, lo, hi) = ratio(4, 2);
    println!("  in process / channel at 15,000:      {r:.2}x [{lo:.2}, {hi:.2}]");
    let (r, lo, hi) = ratio(2, 0);
    println!("  channel at 15,000 / process start:   {r:.2}x [{lo:.2}, {hi:.2}]");
}
