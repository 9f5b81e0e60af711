//! `--json` output of `fsck`, `logplay` and `getmap`, checked against the text output of the same
//! command on the same device at every step of a life that gets worse: clean, then hostile and
//! torn log entries, then a cross-linked file. Also fsck's exit codes for each state (issue 9.5)
//! and logplay's `-r`, `-m` and `-c` (issue 9.8).

mod cli_support;

use std::collections::BTreeMap;
use std::path::Path;

use cli_support::*;
use famfs_log::entry::{DirEntry, LogEntry};
use famfs_log::layout::{LOG_OFFSET, entry_offset};
use famfs_tests::standin::{StandIn, raw_file_entry};
use serde_json::Value;

const MIB: u64 = 1 << 20;

fn json(out: &Out) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", out.stdout))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// A JSON problem as the text output says it: `log entry N (PATH): REASON`.
fn problem_text(p: &Value) -> String {
    let path = p["path"]
        .as_str()
        .map_or_else(String::new, |s| format!(" ({s})"));
    format!(
        "log entry {}{path}: {}",
        u(&p["index"]),
        p["reason"].as_str().unwrap()
    )
}

/// `fsck` and `fsck --json` agree, and both exit `code`.
fn check_fsck(r: &Runner, dev: &str, code: i32) -> Value {
    let text = r.famfs(&["fsck", "-v", dev]).expect(code, "fsck");
    let j = json(
        &r.famfs(&["fsck", "--json", dev])
            .expect(code, "fsck --json"),
    );
    let t = &text.stdout;
    assert_eq!(j["exit_code"], code);
    assert_eq!(j["location"]["kind"], "device");
    assert_eq!(j["location"]["path"], dev);
    let sb = &j["superblock"];
    for (label, key) in [
        ("Filesystem UUID:", "filesystem_uuid"),
        ("Device UUID:", "device_uuid"),
        ("System UUID:", "system_uuid"),
    ] {
        let line = t
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap();
        assert!(line.ends_with(sb[key].as_str().unwrap()), "{key}: {line}");
    }
    assert_eq!(sb["role"], "owner");
    assert!(t.contains("role of this node: Owner"));
    assert_eq!(fsck_field(t, "OMF major version:"), u(&sb["omf_major"]));
    assert_eq!(fsck_field(t, "OMF minor version:"), u(&sb["omf_minor"]));
    assert_eq!(fsck_field(t, "log size (bytes):"), u(&sb["log_len"]));
    assert_eq!(fsck_field(t, "log_len:"), u(&sb["log_len"]));
    assert_eq!(fsck_field(t, "log_offset:"), u(&sb["log_offset"]));
    assert!(t.contains(&format!("alloc_unit:        {:#x}", u(&sb["alloc_unit"]))));
    let log = &j["log"];
    assert_eq!(
        fsck_field(t, "Log size (total bytes):"),
        u(&log["bytes_total"])
    );
    assert_eq!(fsck_field(t, "Log size in use:"), u(&log["bytes_in_use"]));
    assert!(t.contains(&format!(
        "{} of {} entries used",
        u(&log["entries_used"]),
        u(&log["entries_total"])
    )));
    for (what, key) in [
        ("bad log entries detected", "bad_entries"),
        ("entries skipped", "skipped_entries"),
        ("files", "files"),
        ("directories", "directories"),
    ] {
        assert!(
            t.lines()
                .any(|l| l.trim() == format!("{} {what}", u(&log[key]))
                    || l.trim().starts_with(&format!("{} {what} ", u(&log[key])))),
            "{key}={}:\n{t}",
            log[key]
        );
    }
    let collisions = u(&j["allocation_collisions"]);
    let cap = &j["capacity"];
    if collisions == 0 {
        assert!(t.contains("No allocation errors found"));
        for (label, key) in [
            ("Device capacity:", "device_bytes"),
            ("Bitmap capacity:", "bitmap_bytes"),
            ("Sum of file sizes:", "file_bytes"),
            ("Allocated bytes:", "allocated_bytes"),
            ("Free space:", "free_bytes"),
        ] {
            assert_eq!(fsck_field(t, label), u(&cap[key]), "{key}");
        }
        let amp: f64 = t
            .lines()
            .find_map(|l| l.trim().strip_prefix("Space amplification:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!((amp - cap["space_amplification"].as_f64().unwrap()).abs() < 0.006);
    } else {
        assert!(t.contains(&format!("ERROR: {collisions} ALLOCATION COLLISIONS FOUND")));
    }
    // Metadata is allocated (as the reference counts it): free = capacity - allocated.
    assert_eq!(
        u(&cap["free_bytes"]),
        u(&cap["bitmap_bytes"]) - u(&cap["allocated_bytes"])
    );
    assert!(u(&cap["allocated_bytes"]) >= u(&cap["reserved_bytes"]));
    assert_eq!(u(&cap["reserved_bytes"]), DATA_START);
    // Every problem in the JSON is a `problem:` line of the text, and there are as many.
    let problems = j["problems"].as_array().unwrap();
    assert_eq!(
        problems.len(),
        t.lines()
            .filter(|l| l.trim().starts_with("problem: "))
            .count()
    );
    for p in problems {
        let line = format!("problem: {}", problem_text(p));
        assert!(t.contains(&line), "{line}:\n{t}");
    }
    j
}

/// `logplay --ls` and `logplay --ls --json` agree (with `extra` options); returns the JSON.
fn check_logplay(r: &Runner, dev: &str, extra: &[&str], code: i32) -> Value {
    let mut args = vec!["logplay", "--ls"];
    args.extend_from_slice(extra);
    args.push(dev);
    let text = r.famfs(&args).expect(code, "logplay --ls");
    args.insert(1, "--json");
    let j = json(&r.famfs(&args).expect(code, "logplay --ls --json"));
    let ls = parse_ls(&text.stdout);
    let tree = j["tree"].as_array().unwrap();
    assert_eq!(ls.len(), tree.len());
    for n in tree {
        let dir = n["type"] == "dir";
        assert!(dir || n["type"] == "file");
        let key = format!(
            "{}{}",
            n["path"].as_str().unwrap(),
            if dir { "/" } else { "" }
        );
        let l = &ls[&key];
        assert_eq!(l.kind, if dir { 'd' } else { 'f' }, "{key}");
        assert_eq!(u64::from(l.mode), u(&n["mode"]), "{key}");
        assert_eq!(u64::from(l.uid), u(&n["uid"]), "{key}");
        assert_eq!(u64::from(l.gid), u(&n["gid"]), "{key}");
        assert_eq!(l.size, u(&n["size"]), "{key}");
    }
    let summary = format!(
        "{} log entries; {} new files; {} new directories",
        u(&j["entries"]),
        u(&j["files"]),
        u(&j["directories"])
    );
    assert!(
        text.stdout.contains(&summary),
        "{summary}:\n{}",
        text.stdout
    );
    let problems = j["problems"].as_array().unwrap();
    assert_eq!(
        problems.len() as u64,
        u(&j["bad_entries"]) + u(&j["skipped_entries"])
    );
    for p in problems {
        let line = format!("skipped {}", problem_text(p));
        assert!(text.stdout.contains(&line), "{line}:\n{}", text.stdout);
    }
    j
}

/// `getmap` and `getmap --json` agree for every file of the tree.
fn check_getmap(r: &Runner, dev: &str, files: &[String]) {
    let mut args = vec!["getmap", "-d", dev];
    args.extend(files.iter().map(String::as_str));
    let j = json(
        &r.famfs(&[&["getmap", "--json"][..], &args[1..]].concat())
            .ok("getmap --json"),
    );
    assert_eq!(j["errors"].as_array().unwrap().len(), 0);
    let mapped = j["files"].as_array().unwrap();
    assert_eq!(mapped.len(), files.len());
    for (f, m) in files.iter().zip(mapped) {
        let text = parse_getmap(&r.famfs(&["getmap", "-d", dev, f]).ok("getmap").stdout);
        assert_eq!(m["path"], f.as_str());
        assert_eq!(u(&m["size"]), text.size, "{f}");
        let map = &m["map"];
        let exts: Vec<(u64, u64)> = match map["type"].as_str().unwrap() {
            "simple" => {
                assert_eq!(text.chunk, None, "{f}");
                map["extents"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| (u(&e["offset"]), u(&e["length"])))
                    .collect()
            }
            "interleaved" => {
                let ie = &map["extents"][0];
                assert_eq!(Some(u(&ie["chunk_size"])), text.chunk, "{f}");
                ie["strips"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| (u(&e["offset"]), u(&e["length"])))
                    .collect()
            }
            other => panic!("{f}: map type {other}"),
        };
        assert_eq!(exts, text.extents, "{f}");
    }
    // A missing file: the error is in the JSON with getmap's exit status.
    let out = r
        .famfs(&["getmap", "--json", "-d", dev, "/nope"])
        .expect(9, "getmap of a missing file");
    let j = json(&out);
    assert_eq!(j["errors"][0]["path"], "/nope");
    assert_eq!(j["errors"][0]["exit_code"], 9);
}

fn files_of(ls: &BTreeMap<String, Listed>) -> Vec<String> {
    ls.iter()
        .filter(|(_, l)| l.kind == 'f')
        .map(|(p, _)| format!("/{p}"))
        .collect()
}

#[test]
fn json_matches_text_and_fsck_exit_codes_tell_problems_apart() {
    let dir = TempDir::new("json");
    let img = dir.path().join("dev.img");
    let sdev = StandIn::create_at(&img, 8 * GIB, MASTER_UUID.parse().unwrap()).unwrap();
    let dev = img.to_str().unwrap();
    let r = Runner::new(dir.path());
    r.famfs(&["mkdir", "-d", dev, "-p", "/a/b"]).ok("mkdir");
    r.famfs(&["creat", "-d", dev, "-s", "3m", "/a/f1"])
        .ok("creat");
    r.famfs(&[
        "creat",
        "-d",
        dev,
        "-s",
        "9m",
        "-N",
        "2",
        "-B",
        "4",
        "/a/b/striped",
    ])
    .ok("creat striped");
    r.famfs(&["creat", "-d", dev, "-s", "4k", "-m", "0640", "/top"])
        .ok("creat top");

    // Clean.
    let j = check_fsck(&r, dev, 0);
    assert_eq!(u(&j["log"]["files"]), 3);
    let lp = check_logplay(&r, dev, &[], 0);
    assert_eq!(lp["client"], false);
    let ls = parse_ls(&r.famfs(&["logplay", "--ls", dev]).ok("ls").stdout);
    assert_eq!(ls["a/f1"].mode, 0o644);
    check_getmap(&r, dev, &files_of(&ls));

    // logplay -r, -m and the default read the same log; -r with -m is refused (exit 1).
    for opt in ["-r", "-m"] {
        let other = check_logplay(&r, dev, &[opt], 0);
        assert_eq!(other["tree"], lp["tree"], "{opt}");
    }
    r.famfs(&["logplay", "-r", "-m", dev])
        .expect(1, "logplay -r -m");
    // -c plays as a client: modes without write bits, as a client mount shows them.
    let c = check_logplay(&r, dev, &["-c"], 0);
    assert_eq!(c["client"], true);
    let cls = parse_ls(&r.famfs(&["logplay", "--ls", "-c", dev]).ok("ls -c").stdout);
    assert_eq!(cls["a/f1"].mode, 0o444);
    assert_eq!(cls["top"].mode, 0o440);
    assert_eq!(cls["a/"].mode, 0o555);
    // Another host's logplay shows what its (client) mount shows.
    let other = parse_ls(
        &r.as_client()
            .famfs(&["logplay", "--ls", dev])
            .ok("client")
            .stdout,
    );
    assert_eq!(other, cls);

    // A hostile entry (a path climbing out of the file system): skipped; fsck says so with
    // its own exit status (101), not 0 and not a collision count.
    sdev.append_raw(|i| raw_file_entry(i, b"../escape", MIB, &[(2 << 30, 2 * MIB)]))
        .unwrap();
    let j = check_fsck(&r, dev, 101);
    assert_eq!(j["problems"][0]["kind"], "invalid_entry");
    check_logplay(&r, dev, &[], 1);
    // An out-of-sequence entry (seqnum of another slot) and a torn one (CRC): bad entries.
    sdev.append_raw(|i| raw_file_entry(i + 7, b"oos", MIB, &[(3 << 30, 2 * MIB)]))
        .unwrap();
    let torn = sdev
        .append_raw(|i| raw_file_entry(i, b"torn", MIB, &[(4 << 30, 2 * MIB)]))
        .unwrap();
    sdev.corrupt(LOG_OFFSET + entry_offset(torn) + 200, 0x5a)
        .unwrap();
    let j = check_fsck(&r, dev, 101);
    assert_eq!(u(&j["log"]["bad_entries"]), 2);
    let kinds: Vec<&str> = j["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["invalid_entry", "bad_entry", "bad_entry"]);
    check_logplay(&r, dev, &[], 3);
    // A reserved path: skipped with the reason every reader gives.
    sdev.append_raw(|i| {
        LogEntry::Mkdir(DirEntry {
            path: ".meta".into(),
            uid: 0,
            gid: 0,
            mode: 0o777,
        })
        .encode(i)
        .map_err(|e| famfs_tests::standin::FixtureError::Other(e.to_string()))
    })
    .unwrap();
    let j = check_fsck(&r, dev, 101);
    assert_eq!(j["problems"][3]["kind"], "reserved");
    check_logplay(&r, dev, &[], 4);

    // A cross-linked file: the collision count is the exit status, as in the reference.
    r.famfs(&["clone", "-d", dev, "/a/f1", "/a/f1clone"])
        .ok("clone");
    let j = check_fsck(&r, dev, 2);
    assert_eq!(u(&j["allocation_collisions"]), 2);
    // And the JSON of an unreadable device is not printed at all: stderr and the exit status.
    let out = r.famfs(&["fsck", "--json", "/no/such/device"]);
    assert_eq!(out.code, 103);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(Path::new(dev).exists());
}
