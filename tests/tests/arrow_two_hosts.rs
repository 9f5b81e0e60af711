//! The workload famfs is for, end to end: a master host puts an Arrow IPC file (3 million rows,
//! ten columns: integers, floats, strings with nulls, timestamps, booleans, a dictionary and a
//! list column) and a `.npy` array into famfs with `famfs cp`; a client host — another system
//! UUID, its own mount of the same device — memory-maps them with `pyarrow.memory_map` +
//! `pyarrow.ipc.open_file` and `numpy.load(mmap_mode="r")`, reads them in place (no copy into
//! Arrow's memory pool) and checks every value against the data set recomputed from its seed.
//! Then the master adds another pair, which the client's daemon finds in the log by itself (no
//! command on the client), and the client checks that one too.
//!
//! The Python side is `tests/python/arrow_workload.py`, run by the virtualenv that
//! `tests/python/setup.sh` makes (`scripts/test-all.sh` runs it), or by `$FAMFS_TEST_PYTHON`.
//! Needs root and `/dev/fuse` for the mounts. Under `CI=true` a missing prerequisite fails;
//! otherwise the test skips with a message.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use famfs_tests::fused::{
    FusedMount, any_mount_under, famfs_cli, famfs_fused, is_famfs_mounted, repo_dir,
};
use famfs_tests::prereq;

/// The master's system UUID (written into the superblock by mkfs).
const MASTER_UUID: &str = "a770a770-0000-4000-8000-00000000f00d";
/// The client's: another host.
const CLIENT_UUID: &str = "a770a770-0000-4000-8000-0000000c11e7";
/// Rows of the first data set ("a few million"); the second has an odd count.
const ROWS: u64 = 3_000_000;
const LATER_ROWS: u64 = 1_500_001;
/// At most this many bytes may be allocated by Arrow while reading a file from its mapping.
const MAX_COPY: u64 = 1 << 20;
/// How long the client may take to see a new file (its daemon polls the log every 100 ms).
const VISIBLE_WITHIN: Duration = Duration::from_secs(10);

/// The interpreter with pyarrow and numpy, or `None` after reporting it missing.
fn python(test: &str) -> Option<PathBuf> {
    let py = std::env::var_os("FAMFS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_dir().join("tests/python/cache/venv/bin/python"));
    let how = "Python with pyarrow and numpy (run tests/python/setup.sh, or set FAMFS_TEST_PYTHON)";
    if !py.is_file() {
        prereq::missing(test, &format!("{how}; {} does not exist", py.display()));
        return None;
    }
    let ok = Command::new(&py)
        .args(["-c", "import pyarrow, numpy"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        prereq::missing(test, &format!("{how}; {} cannot import them", py.display()));
        return None;
    }
    Some(py)
}

fn workload_script() -> PathBuf {
    repo_dir().join("tests/python/arrow_workload.py")
}

/// What a command did.
#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    #[track_caller]
    fn ok(self, what: &str) -> Out {
        assert_eq!(
            self.code,
            Some(0),
            "{what} failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The JSON summary the workload script prints last.
    fn summary(&self) -> serde_json::Value {
        let line = self.stdout.lines().last().unwrap_or_default();
        serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("no JSON summary ({e}) in:\n{}", self.stdout))
    }
}

/// Runs `cmd` to completion, killing it after `timeout` (a hung mapping must not hang the test).
fn run(mut cmd: Command, timeout: Duration) -> Out {
    let mut out = tempfile::tempfile().unwrap();
    let mut err = tempfile::tempfile().unwrap();
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {shown}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{shown} still running after {timeout:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |f: &mut File| {
        use std::io::Seek as _;
        let mut s = String::new();
        f.rewind().unwrap();
        f.read_to_string(&mut s).unwrap();
        s
    };
    Out {
        code: status.code(),
        stdout: read(&mut out),
        stderr: read(&mut err),
    }
}

/// `famfs`/`mkfs.famfs` (`prog`) as the host with system UUID `uuid`.
fn famfs_cmd(prog: &Path, uuid: &str, args: &[&str]) -> Command {
    let mut c = Command::new(prog);
    c.args(args)
        .env("FAMFS_SYSTEM_UUID", uuid)
        .env_remove("FAMFS_SYSTEM_UUID_FILE")
        .env("FAMFS_PROGRESS", "0")
        .env("FAMFS_FUSED", famfs_fused());
    c
}

fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

fn dataset<'a>(seed: u64, rows: u64, arrow: &'a Path, npy: &'a Path) -> Dataset<'a> {
    Dataset {
        seed,
        rows,
        arrow,
        npy,
    }
}

/// A data set as the workload script names it: seed, rows, and where its two files are.
#[derive(Clone, Copy)]
struct Dataset<'a> {
    seed: u64,
    rows: u64,
    arrow: &'a Path,
    npy: &'a Path,
}

impl Dataset<'_> {
    /// `arrow_workload.py CMD --seed --rows --arrow --npy EXTRA...` with interpreter `py`.
    fn workload(&self, py: &Path, cmd: &str, extra: &[&str]) -> Out {
        let mut c = Command::new(py);
        c.arg(workload_script())
            .arg(cmd)
            .args(["--seed", &self.seed.to_string()])
            .args(["--rows", &self.rows.to_string()])
            .args(["--arrow", s(self.arrow), "--npy", s(self.npy)])
            .args(extra);
        run(c, Duration::from_secs(300))
    }
}

/// Writes the data set on the host.
fn write_dataset(py: &Path, ds: Dataset<'_>) {
    let out = ds.workload(py, "write", &[]).ok("writing the data set");
    prereq::say(&format!("arrow_two_hosts: host wrote {}", out.summary()));
}

/// Checks every value of the data set, read through the client's mappings of its files.
fn verify_dataset(py: &Path, ds: Dataset<'_>) {
    let (arrow, npy, rows) = (ds.arrow, ds.npy, ds.rows);
    let out = ds
        .workload(py, "verify", &["--max-copy", &MAX_COPY.to_string()])
        .ok(&format!(
            "verifying {} and {}",
            arrow.display(),
            npy.display()
        ));
    let sum = out.summary();
    assert_eq!(sum["verified"], true, "{sum}");
    assert_eq!(sum["rows"], rows, "{sum}");
    assert_eq!(sum["columns"], 10, "{sum}");
    assert!(
        sum["arrow_bytes_copied"].as_u64().unwrap() <= MAX_COPY,
        "{sum}"
    );
    prereq::say(&format!("arrow_two_hosts: client verified {sum}"));
}

/// Compares two files' bytes in full; panics at the first differing offset.
fn assert_same_bytes(a: &Path, b: &Path) {
    let (mut fa, mut fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    assert_eq!(
        fa.metadata().unwrap().len(),
        fb.metadata().unwrap().len(),
        "sizes of {} and {}",
        a.display(),
        b.display()
    );
    let (mut ba, mut bb) = (vec![0u8; 8 << 20], vec![0u8; 8 << 20]);
    let mut off = 0usize;
    loop {
        let n = fa.read(&mut ba).unwrap();
        fb.read_exact(&mut bb[..n]).unwrap();
        if let Some(i) = ba[..n].iter().zip(&bb[..n]).position(|(x, y)| x != y) {
            panic!(
                "{} and {} differ at byte {}",
                a.display(),
                b.display(),
                off + i
            );
        }
        if n == 0 {
            return;
        }
        off += n;
    }
}

/// File names in `dir` (READDIR only: no LOOKUP that could make the daemon look at the log).
fn listed(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("readdir {}: {e}", dir.display()),
    }
}

/// A temporary directory that is kept (not removed) if anything is still mounted under it.
struct Work(Option<tempfile::TempDir>);

impl Work {
    fn path(&self) -> &Path {
        self.0.as_ref().unwrap().path()
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        if let Some(d) = self.0.take()
            && any_mount_under(d.path())
        {
            prereq::say(&format!(
                "arrow_two_hosts: kept {} (mounted)",
                d.keep().display()
            ));
        }
    }
}

/// The master's `famfs mount`; unmounted (lazily) on drop if still mounted.
struct MasterMount(PathBuf);

impl Drop for MasterMount {
    fn drop(&mut self) {
        if is_famfs_mounted(&self.0) {
            let c = famfs_cmd(famfs_cli(), MASTER_UUID, &["umount", "-l", s(&self.0)]);
            let _ = run(c, Duration::from_secs(30));
        }
    }
}

#[test]
fn arrow_and_npy_from_the_master_are_read_in_place_on_a_client() {
    let test = "arrow_and_npy_from_the_master_are_read_in_place_on_a_client";
    if !prereq::root_and_fuse(test) {
        return;
    }
    let Some(py) = python(test) else { return };
    let famfs = famfs_cli();
    let t = Duration::from_secs(120);
    let work = Work(Some(
        tempfile::Builder::new()
            .prefix("famfs-arrow-")
            .tempdir()
            .unwrap(),
    ));
    let w = work.path();
    let (dev, host) = (w.join("dev.img"), w.join("host"));
    let (mm, cm) = (w.join("master"), w.join("client"));
    for d in [&host, &mm, &cm] {
        std::fs::create_dir(d).unwrap();
    }

    // The master formats a sparse 8 GiB stand-in device and mounts it.
    File::create(&dev).unwrap().set_len(8 << 30).unwrap();
    let mkfs = w.join("mkfs.famfs");
    std::os::unix::fs::symlink(famfs, &mkfs).unwrap();
    run(famfs_cmd(&mkfs, MASTER_UUID, &[s(&dev)]), t).ok("mkfs.famfs");
    let master = MasterMount(mm.clone());
    run(
        famfs_cmd(famfs, MASTER_UUID, &["mount", s(&dev), s(&mm)]),
        t,
    )
    .ok("famfs mount");
    assert!(is_famfs_mounted(&mm));

    // An Arrow file and an array, made on the master host, copied into famfs.
    let (arrow, npy) = (host.join("table.arrow"), host.join("matrix.npy"));
    write_dataset(&py, dataset(1, ROWS, &arrow, &npy));
    let ds = mm.join("datasets");
    run(famfs_cmd(famfs, MASTER_UUID, &["mkdir", s(&ds)]), t).ok("famfs mkdir");
    let cp = famfs_cmd(famfs, MASTER_UUID, &["cp", s(&arrow), s(&npy), s(&ds)]);
    run(cp, t).ok("famfs cp");

    // The client host mounts the same device with its own system UUID. (On a real second host
    // this is `famfs mount`, which starts this daemon; on one machine `famfs mount` refuses a
    // device that is already mounted, so the client's daemon is started directly.)
    let client = FusedMount::start(&dev, &cm, &["--system-uuid", CLIENT_UUID])
        .unwrap_or_else(|e| panic!("client mount: {e}"));
    let cds = cm.join("datasets");
    let (carrow, cnpy) = (cds.join("table.arrow"), cds.join("matrix.npy"));
    verify_dataset(&py, dataset(1, ROWS, &carrow, &cnpy));
    assert_same_bytes(&arrow, &cds.join("table.arrow"));
    assert_same_bytes(&npy, &cds.join("matrix.npy"));
    let e = std::fs::OpenOptions::new()
        .write(true)
        .open(cds.join("table.arrow"))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS), "client write: {e}");

    // The master adds another pair later; the client's daemon finds it in the log by itself.
    let (arrow2, npy2) = (host.join("later.arrow"), host.join("later.npy"));
    write_dataset(&py, dataset(2, LATER_ROWS, &arrow2, &npy2));
    let before = listed(&cds);
    assert!(!before.contains(&"later.arrow".to_string()), "{before:?}");
    let cp = famfs_cmd(famfs, MASTER_UUID, &["cp", s(&arrow2), s(&npy2), s(&ds)]);
    run(cp, t).ok("famfs cp of the later pair");
    let copied = Instant::now();
    loop {
        let names = listed(&cds);
        if names.iter().any(|n| n == "later.arrow") && names.iter().any(|n| n == "later.npy") {
            break;
        }
        assert!(
            copied.elapsed() < VISIBLE_WITHIN,
            "the later files are not on the client after {:?}: {names:?}\n{}",
            copied.elapsed(),
            client.output()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    prereq::say(&format!(
        "arrow_two_hosts: client listed the later pair {:?} after the master's cp returned",
        copied.elapsed()
    ));
    let (carrow2, cnpy2) = (cds.join("later.arrow"), cds.join("later.npy"));
    verify_dataset(&py, dataset(2, LATER_ROWS, &carrow2, &cnpy2));
    assert_same_bytes(&arrow2, &cds.join("later.arrow"));
    // The first pair still reads the same.
    assert_same_bytes(&arrow, &cds.join("table.arrow"));

    drop(client);
    run(famfs_cmd(famfs, MASTER_UUID, &["umount", s(&mm)]), t).ok("famfs umount");
    assert!(!is_famfs_mounted(&mm));
    drop(master);
    run(famfs_cmd(famfs, MASTER_UUID, &["fsck", s(&dev)]), t).ok("fsck after the run");
}

/// The checker the test above relies on fails on one changed value in any column type, on a
/// changed array element, and on the wrong seed (no mount needed: files on the host).
#[test]
fn the_workload_checker_finds_one_changed_value() {
    let test = "the_workload_checker_finds_one_changed_value";
    let Some(py) = python(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (arrow, npy) = (dir.path().join("t.arrow"), dir.path().join("m.npy"));
    let rows: u64 = 200_003;
    let ds = dataset(7, rows, &arrow, &npy);
    let write = |extra: &[&str]| ds.workload(&py, "write", extra).ok("write");
    let verify = |seed: u64| {
        let ds = Dataset { seed, ..ds };
        ds.workload(&py, "verify", &[])
    };
    write(&[]);
    let sum = verify(7).ok("verify of an intact data set").summary();
    assert_eq!(sum["verified"], true);
    assert_eq!(sum["rows"], rows);
    assert_eq!(sum["npy_shape"], serde_json::json!([rows / 4, 16]));

    // One changed value per column type (row 0 of `tags` holds a non-empty list for seed 7;
    // the script refuses to change an empty one), and one changed array element.
    let cases: [(&[&str], &str); 11] = [
        (
            &["--tamper", "id:0"],
            "column id: first difference at row 0",
        ),
        (
            &["--tamper", "qty:200002"],
            "column qty: first difference at row 200002",
        ),
        (
            &["--tamper", "price:131072"],
            "column price: first difference at row 131072",
        ),
        (
            &["--tamper", "score:5"],
            "column score: first difference at row 5",
        ),
        (
            &["--tamper", "name:99999"],
            "column name: first difference at row 99999",
        ),
        (
            &["--tamper", "ts:1"],
            "column ts: first difference at row 1",
        ),
        (
            &["--tamper", "flag:77"],
            "column flag: first difference at row 77",
        ),
        (
            &["--tamper", "city:3"],
            "column city: first difference at row 3",
        ),
        (
            &["--tamper", "tags:0"],
            "column tags: first difference at row 0",
        ),
        (
            &["--tamper", "maybe:12345"],
            "column maybe: first difference at row 12345",
        ),
        (
            &["--tamper-npy", "1000"],
            "m.npy: first difference at flat index 1000",
        ),
    ];
    for (args, want) in cases {
        write(args);
        let out = verify(7);
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
        assert_eq!(out.summary()["verified"], false);
        assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
        assert_eq!(
            out.stderr.lines().count(),
            1,
            "only {args:?}: {}",
            out.stderr
        );
    }

    write(&[]);
    let out = verify(8);
    assert_eq!(out.code, Some(1), "the wrong seed must fail");
    assert!(out.stderr.contains("metadata"), "{}", out.stderr);
    assert!(out.stderr.contains("column price"), "{}", out.stderr);
}
