//! `famfs creat` fills a file's data without holding the master's log lock: another writer (a
//! `famfs mkdir` process) appends to the log while the fill is under way.
//!
//! The creat runs in this process, so the test can act at the moment its fill starts (through
//! the plan's event callback) instead of racing a timer: there it runs the other writer and
//! waits for it. Holding the lock across the fill makes that writer block, which the test sees
//! as a timeout.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use famfs_cli::cli::{Cmd, Famfs};
use famfs_cli::cmd::creat::{CreatEvent, CreatOutcome, CreatPlan};

/// The master's system UUID in this test (never the machine's own).
const UUID: &str = "6a1c4d2e-0000-4000-8000-00000000c0de";
/// This test's name, to run it again in a child process.
const TEST: &str = "another_writer_appends_while_creat_fills";
/// How long the other writer may take; it needs milliseconds unless the lock is held.
const WRITER_TIMEOUT: Duration = Duration::from_secs(30);

fn famfs(bin: &str, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.args(args)
        .env("FAMFS_SYSTEM_UUID", UUID)
        .env_remove("FAMFS_SYSTEM_UUID_FILE")
        .env("FAMFS_PROGRESS", "0")
        .stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    famfs(env!("CARGO_BIN_EXE_famfs"), args).output().unwrap()
}

/// Run `famfs args...`; `None` if it has not finished within [`WRITER_TIMEOUT`] (then killed).
fn run_with_timeout(args: &[&str]) -> Option<Output> {
    let mut child = famfs(env!("CARGO_BIN_EXE_famfs"), args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WRITER_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Some(child.wait_with_output().unwrap())
}

fn event_name(ev: &CreatEvent<'_>) -> &'static str {
    match ev {
        CreatEvent::Rejected(_) => "rejected",
        CreatEvent::Created(..) => "created",
        CreatEvent::Existed(_) => "existed",
        CreatEvent::Failed(..) => "failed",
        CreatEvent::CreationDone { .. } => "creation done",
        CreatEvent::Filling { .. } => "filling",
        CreatEvent::FillStart(..) => "fill start",
        CreatEvent::Filled(..) => "filled",
        CreatEvent::FillFailed(..) => "fill failed",
    }
}

#[test]
fn another_writer_appends_while_creat_fills() {
    // The in-process creat reads this host's system UUID from the environment. Setting it here
    // would race other threads, so the test runs again in a child process that has it.
    if std::env::var("FAMFS_SYSTEM_UUID").ok().as_deref() != Some(UUID) {
        let out = famfs(
            std::env::current_exe().unwrap().to_str().unwrap(),
            &[TEST, "--exact", "--nocapture", "--test-threads=1"],
        )
        .output()
        .unwrap();
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "the test failed:\n{o}\n{e}");
        assert!(o.contains("1 passed"), "the test did not run:\n{o}\n{e}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("dev.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    let dev = img.to_str().unwrap();
    let out = famfs(env!("CARGO_BIN_EXE_mkfs-famfs"), &[dev])
        .output()
        .unwrap();
    assert!(out.status.success(), "mkfs: {out:?}");

    let cli = Famfs::try_parse_from([
        "famfs", "creat", "-d", dev, "-s", "64m", "-r", "-S", "7", "-t", "2", "/big",
    ])
    .unwrap();
    let Cmd::Creat(args) = cli.cmd else {
        panic!("not a creat command line")
    };
    let plan = CreatPlan::new(&args).unwrap();
    let mut seen = Vec::new();
    let mut writer: Option<Option<Output>> = None;
    let outcome = plan
        .execute(&mut |ev| {
            seen.push(event_name(&ev));
            if let CreatEvent::FillStart(t, size) = ev {
                assert_eq!((t.shown.as_str(), size), ("/big", 64 << 20));
                // The fill of /big waits for this: another writer appends now.
                writer = Some(run_with_timeout(&["mkdir", "-d", dev, "/during"]));
            }
        })
        .unwrap();
    let writer = writer.expect("the fill started");
    let writer = writer.unwrap_or_else(|| {
        panic!("famfs mkdir was still blocked after {WRITER_TIMEOUT:?}: creat holds the log lock while filling")
    });
    assert!(writer.status.success(), "mkdir during the fill: {writer:?}");
    assert_eq!(
        seen,
        [
            "created",
            "creation done",
            "filling",
            "fill start",
            "filled"
        ],
        "the fill ended after the other writer's append"
    );
    assert_eq!(
        outcome,
        CreatOutcome {
            created: 1,
            create_errors: 0,
            to_fill: 1,
            fill_errors: 0
        }
    );

    // Both entries are in the log, in that order, and the filled data is intact.
    let ls = run(&["logplay", "--ls", dev]);
    assert!(ls.status.success(), "{ls:?}");
    let ls = String::from_utf8_lossy(&ls.stdout);
    let names: Vec<&str> = ls
        .lines()
        .filter(|l| l.starts_with("f ") || l.starts_with("d "))
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(names, ["big", "during/"], "{ls}");
    let verify = run(&["verify", "-d", dev, "-S", "7", "/big"]);
    assert!(verify.status.success(), "{verify:?}");
}
