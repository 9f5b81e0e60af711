//! End-to-end tests of the real `famfs` and `mkfs.famfs` binaries working offline (`--device`) on
//! sparse stand-in device files: the round trip of issue #2 (mkfs → mkdir -p → creat/cp, simple
//! and interleaved → the replayed tree, maps, data and free space are exactly what was asked),
//! the reference's error cases and exit codes, and two writer processes at once.

mod cli_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cli_support::*;

/// The first 16 bytes of the reference pattern for seed 42 (xoroshiro128+ 2016 seeded by
/// splitmix64; evaluated independently of the implementation).
const SEED42_HEAD: [u8; 16] = [
    0x98, 0x5f, 0x52, 0xe2, 0x7a, 0xfb, 0x0c, 0x3d, 0xf8, 0x8c, 0x82, 0x2b, 0x40, 0x22, 0x49, 0xe5,
];

fn listed(kind: char, mode: u32, uid: u32, gid: u32, size: u64) -> Listed {
    Listed {
        kind,
        mode,
        uid,
        gid,
        size,
    }
}

/// Check that maps are well-formed and disjoint; return total allocated bytes.
fn check_maps(maps: &BTreeMap<String, Map>, dev_size: u64) -> u64 {
    let mut all: Vec<(u64, u64, &str)> = Vec::new();
    for (name, m) in maps {
        assert!(!m.extents.is_empty(), "{name}: no extents");
        for &(o, l) in &m.extents {
            assert_eq!(o % AU, 0, "{name}: offset {o:#x} not 2 MiB aligned");
            assert_eq!(l % AU, 0, "{name}: length {l} not 2 MiB aligned");
            assert!(
                o >= DATA_START && o + l <= dev_size,
                "{name}: {o:#x}+{l} outside the data area"
            );
            all.push((o, l, name));
        }
        assert!(
            m.allocated() >= m.size,
            "{name}: {} allocated < size {}",
            m.allocated(),
            m.size
        );
    }
    all.sort();
    for w in all.windows(2) {
        assert!(
            w[0].0 + w[0].1 <= w[1].0,
            "{} and {} overlap",
            w[0].2,
            w[1].2
        );
    }
    all.iter().map(|e| e.1).sum()
}

fn round_trip(data_via: &str) {
    let dir = TempDir::new(&format!("roundtrip-{data_via}"));
    let d = dir.path();
    let img = standin(d, "dev.img", 8 * GIB);
    let r = Runner::new(d).with_env("FAMFS_DATA_VIA", data_via);
    let dev = img.to_str().unwrap();

    r.mkfs(&[dev]).ok("mkfs");
    r.famfs(&[
        "mkdir",
        "-d",
        dev,
        "-p",
        "-m",
        "0750",
        "-u",
        "1234",
        "-g",
        "5678",
        "/data/set1",
    ])
    .ok("mkdir -p");
    r.famfs(&["mkdir", "-d", dev, "data/set2"]).ok("mkdir");
    r.famfs(&[
        "creat",
        "-d",
        dev,
        "-s",
        "3m",
        "-r",
        "-S",
        "42",
        "-m",
        "0640",
        "-u",
        "1000",
        "-g",
        "1001",
        "/data/set1/pattern",
    ])
    .ok("creat -r");
    r.famfs(&["creat", "-d", dev, "-s", "0x800001", "/data/plain"])
        .ok("creat plain");

    // Host files.
    let src = d.join("src");
    std::fs::create_dir_all(src.join("tree/sub")).unwrap();
    let small = bytes(1, 5_000_000);
    let big = bytes(2, 20 << 20);
    std::fs::write(src.join("small.bin"), &small).unwrap();
    std::fs::write(src.join("big.bin"), &big).unwrap();
    std::fs::write(src.join("tree/a.txt"), bytes(3, 4097)).unwrap();
    std::fs::write(src.join("tree/sub/b.bin"), bytes(4, (2 << 20) + 1)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        src.join("small.bin"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::set_permissions(src.join("tree/sub"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let s = |n: &str| src.join(n).to_str().unwrap().to_string();

    r.famfs(&["cp", "-d", dev, &s("small.bin"), "/data/set2"])
        .ok("cp to dir");
    let out = r
        .famfs(&[
            "cp",
            "-d",
            dev,
            "-N",
            "4",
            "-B",
            "8",
            &s("big.bin"),
            "/data/striped",
        ])
        .ok("interleaved cp");
    assert!(
        out.stdout.contains("famfs cp: 100%: /data/striped"),
        "{}",
        out.stdout
    );
    r.famfs(&[
        "cp",
        "-d",
        dev,
        "-r",
        "-u",
        "77",
        "-g",
        "88",
        &s("tree"),
        "/tree",
    ])
    .ok("cp -r");
    let out = r
        .famfs(&["creat", "-d", dev, "-M", "/multi1,1m,7", "-M", "/multi2,5m"])
        .ok("creat --multi");
    assert!(
        out.stdout
            .contains("Create complete for 2 of 2 files with 0 errs"),
        "{}",
        out.stdout
    );

    // The replayed tree is exactly what was asked for.
    let ls = r.famfs(&["logplay", "--ls", dev]).ok("logplay --ls");
    let got = parse_ls(&ls.stdout);
    let (uid, gid) = (nix_ids().0, nix_ids().1);
    let want: BTreeMap<String, Listed> = [
        ("data/", listed('d', 0o750, 1234, 5678, 0)),
        ("data/set1/", listed('d', 0o750, 1234, 5678, 0)),
        ("data/set2/", listed('d', 0o755, uid, gid, 0)),
        ("data/set1/pattern", listed('f', 0o640, 1000, 1001, 3 << 20)),
        ("data/plain", listed('f', 0o644, uid, gid, 0x80_0001)),
        (
            "data/set2/small.bin",
            listed('f', 0o600, uid, gid, 5_000_000),
        ),
        ("data/striped", listed('f', 0o644, uid, gid, 20 << 20)),
        ("tree/", listed('d', 0o755, 77, 88, 0)),
        ("tree/a.txt", listed('f', 0o644, 77, 88, 4097)),
        ("tree/sub/", listed('d', 0o700, 77, 88, 0)),
        ("tree/sub/b.bin", listed('f', 0o644, 77, 88, (2 << 20) + 1)),
        ("multi1", listed('f', 0o644, uid, gid, 1 << 20)),
        ("multi2", listed('f', 0o644, uid, gid, 5 << 20)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(got, want, "logplay --ls:\n{}", ls.stdout);
    assert!(
        ls.stdout
            .contains("famfs_logplay(device): 13 log entries; 8 new files; 5 new directories"),
        "{}",
        ls.stdout
    );

    // Maps: well-formed, disjoint; the striped file has 4 strips of 2 MiB chunks; the data is
    // where the maps say (read straight from the image).
    let mut maps = BTreeMap::new();
    for (path, l) in &want {
        if l.kind == 'f' {
            let out = r
                .famfs(&["getmap", "-d", dev, &format!("/{path}")])
                .ok("getmap");
            assert!(
                out.stdout
                    .contains(&format!("famfs_getmap: good file /{path}"))
            );
            let m = parse_getmap(&out.stdout);
            assert_eq!(m.size, l.size, "{path}");
            maps.insert(path.clone(), m);
        }
    }
    let allocated = check_maps(&maps, 8 * GIB);
    let striped = &maps["data/striped"];
    assert_eq!(striped.chunk, Some(2 << 20));
    assert_eq!(striped.extents.len(), 4);
    // 20 MiB over 4 strips of 2 MiB chunks: stripes of 8 MiB, 3 stripes, strips of 6 MiB.
    assert!(
        striped.extents.iter().all(|e| e.1 == 6 << 20),
        "{striped:?}"
    );
    let buckets: BTreeSet<u64> = striped.extents.iter().map(|e| e.0 / GIB).collect();
    assert_eq!(buckets.len(), 4, "one strip per bucket: {striped:?}");
    for (name, m) in &maps {
        if m.chunk.is_none() {
            assert_eq!(
                m.extents.len(),
                1,
                "{name}: contiguous allocation is one extent"
            );
            assert_eq!(m.allocated(), m.size.div_ceil(AU) * AU, "{name}");
        }
    }
    assert_eq!(maps["data/striped"].read_from_image(&img), big);
    assert_eq!(maps["data/set2/small.bin"].read_from_image(&img), small);
    assert_eq!(
        maps["tree/sub/b.bin"].read_from_image(&img),
        bytes(4, (2 << 20) + 1)
    );
    let pat = maps["data/set1/pattern"].read_from_image(&img);
    assert_eq!(pat[..16], SEED42_HEAD, "the pattern is the reference's");

    // verify passes with the right seed and fails with another.
    let out = r
        .famfs(&["verify", "-d", dev, "-S", "42", "-f", "/data/set1/pattern"])
        .ok("verify");
    assert!(
        out.stdout
            .contains("Success: verified 3145728 bytes in file /data/set1/pattern")
    );
    let out = r
        .famfs(&["verify", "-d", dev, "-S", "43", "/data/set1/pattern"])
        .expect(1, "verify wrong seed");
    assert!(
        out.stderr
            .contains("Verify fail: /data/set1/pattern at offset 0 of 3145728 bytes"),
        "{}",
        out.stderr
    );
    r.famfs(&[
        "verify",
        "-d",
        dev,
        "-m",
        "/multi1,7",
        "-m",
        "/data/set1/pattern,42",
    ])
    .ok("verify --multi");
    // Re-randomizing an existing file of the right size works (and is then verifiable).
    r.famfs(&["creat", "-d", dev, "-r", "-S", "9", "/data/set1/pattern"])
        .ok("re-randomize");
    r.famfs(&["verify", "-d", dev, "-S", "9", "/data/set1/pattern"])
        .ok("verify re-randomized");
    // cp -c compares.
    r.famfs(&["cp", "-c", "-d", dev, &s("big.bin"), "/data/striped"])
        .ok("cp -c");

    // fsck: no collisions; free space = capacity - metadata - allocations.
    let out = r.famfs(&["fsck", dev]).ok("fsck");
    assert!(
        out.stdout.contains("No allocation errors found"),
        "{}",
        out.stdout
    );
    assert_eq!(fsck_field(&out.stdout, "Device capacity:"), 8 * GIB);
    assert_eq!(
        fsck_field(&out.stdout, "Free space:"),
        8 * GIB - DATA_START - allocated
    );
    let sum: u64 = want.values().map(|l| l.size).sum();
    assert_eq!(fsck_field(&out.stdout, "Sum of file sizes:"), sum);
    let out = r.famfs(&["fsck", "-v", dev]).ok("fsck -v");
    assert_eq!(fsck_field(&out.stdout, "log_len:"), 8 << 20);
    let out = r.famfs(&["fsck", "-h", "-B", "8", dev]).ok("fsck -h -B 8");
    assert!(out.stdout.contains("Stripe bucket info:"), "{}", out.stdout);
    assert!(out.stdout.contains("Bitmap range 7"), "{}", out.stdout);
    assert!(
        out.stdout.contains("Free space:             7.9"),
        "{}",
        out.stdout
    );
}

/// The ids a child process of this test runs with (the defaults of creat, mkdir and cp).
fn nix_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = std::process::Command::new("id").arg(flag).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

#[test]
fn round_trip_offline_through_the_device_file() {
    round_trip("file");
}

#[test]
fn round_trip_offline_through_the_mapping() {
    round_trip("mmap");
}

#[test]
fn driver_and_mkfs_exit_codes() {
    let dir = TempDir::new("mkfs");
    let d = dir.path();
    let r = Runner::new(d);
    let img = standin(d, "dev.img", 4 * GIB + (64 << 20));
    let dev = img.to_str().unwrap();

    let out = r.famfs(&[]).expect(1, "missing command");
    assert!(out.stderr.contains("missing command"), "{}", out.stderr);
    r.famfs(&["--"]).expect(1, "famfs --");
    let out = r.famfs(&["badarg"]).expect(3, "unknown command");
    assert!(out.stderr.contains("badarg"), "{}", out.stderr);
    let out = r.famfs(&["-h", "creat"]).ok("famfs -h creat");
    assert!(out.stdout.contains("--size"), "{}", out.stdout);
    let out = r.famfs(&["--help"]).ok("famfs --help");
    assert!(
        out.stdout.contains("--device"),
        "the two forms are explained: {}",
        out.stdout
    );
    r.famfs(&["creat", "--no-such-option"])
        .expect(2, "unknown option");

    let out = r.mkfs(&[]).expect(1, "mkfs without device");
    assert!(
        out.stderr.contains("must specify memory device"),
        "{}",
        out.stderr
    );
    r.mkfs(&["/tmp/nonexistent-famfs-dev"])
        .expect(2, "mkfs missing device");
    let small = standin(d, "small.img", GIB);
    let out = r.mkfs(&[small.to_str().unwrap()]).expect(2, "mkfs < 4 GiB");
    assert!(out.stderr.contains("size"), "{}", out.stderr);
    r.mkfs(&[dev]).ok("mkfs");
    let out = r.mkfs(&[dev]).expect(2, "mkfs over an existing fs");
    assert!(
        out.stderr.contains("already has a famfs superblock"),
        "{}",
        out.stderr
    );
    r.mkfs(&["-k", dev])
        .expect(2, "-k without -f does not kill");
    r.famfs(&["mkdir", "-d", dev, "/keep"]).ok("mkdir");
    for bad in ["1", "11m", "1m", "12m"] {
        let out = r
            .mkfs(&["-f", "--loglen", bad, dev])
            .expect(2, "bad loglen");
        assert!(
            out.stderr.contains("invalid log length"),
            "{bad}: {}",
            out.stderr
        );
    }
    let out = r.famfs(&["fsck", "-v", dev]).ok("fsck after refused mkfs");
    assert_eq!(fsck_field(&out.stdout, "log_len:"), 8 << 20, "untouched");
    assert!(parse_ls(&r.famfs(&["logplay", "--ls", dev]).ok("ls").stdout).contains_key("keep/"));
    // Another host's file system needs -f.
    let out = r
        .as_client()
        .mkfs(&[dev])
        .expect(2, "mkfs over another host's fs");
    assert!(
        out.stderr.contains("owned by another host"),
        "{}",
        out.stderr
    );
    r.mkfs(&["-f", "-l", "16m", dev]).ok("mkfs -f -l 16m");
    let out = r.famfs(&["fsck", "-v", dev]).ok("fsck");
    assert_eq!(fsck_field(&out.stdout, "log_len:"), 16 << 20);
    assert!(
        parse_ls(&r.famfs(&["logplay", "--ls", dev]).ok("ls").stdout).is_empty(),
        "fresh fs"
    );
    let out = r.mkfs(&["-f", "-k", dev]).ok("mkfs -f -k");
    assert!(out.stdout.contains("killed"), "{}", out.stdout);
    let out = r.famfs(&["fsck", dev]);
    assert_ne!(out.code, 0, "fsck of a killed superblock fails");
    assert_eq!(
        out.code, 105,
        "no famfs: its own code, not a collision count"
    );
    assert!(out.stderr.contains("no valid famfs"), "{}", out.stderr);
    r.mkfs(&[dev])
        .ok("mkfs after kill (no superblock: no -f needed)");
}

/// What a row of the error table checks besides the exit status.
#[derive(Debug, Clone, Copy)]
enum Check {
    /// Standard error contains this.
    Stderr(&'static str),
    /// Standard output contains this.
    Stdout(&'static str),
    /// Standard output is exactly this.
    StdoutIs(&'static str),
    /// After the command, `logplay --ls` lists all these paths.
    Listed(&'static [&'static str]),
    /// After the command, `logplay --ls` lists this path with this mode.
    ListedMode(&'static str, u32),
    /// After the command, `logplay --ls` lists this path with this size.
    ListedSize(&'static str, u64),
}

impl Check {
    fn needs_listing(&self) -> bool {
        matches!(
            self,
            Check::Listed(_) | Check::ListedMode(..) | Check::ListedSize(..)
        )
    }
}

/// One row of the error table: `famfs ARGS` (run as another host if `client`) exits with `code`,
/// then every check holds. In the arguments `{dev}` is the device image, `{tmp}` the test's
/// directory, `{src}` the directory of host source files, `{sb}` a copy of the superblock, and
/// `{long}` a path too long for a log entry.
#[derive(Debug, Clone, Copy)]
struct Row {
    args: &'static [&'static str],
    code: i32,
    what: &'static str,
    client: bool,
    checks: &'static [Check],
}

/// A row without checks beyond the exit status.
const fn row(args: &'static [&'static str], code: i32, what: &'static str) -> Row {
    Row {
        args,
        code,
        what,
        client: false,
        checks: &[],
    }
}

impl Row {
    /// The same row with these checks.
    const fn with(self, checks: &'static [Check]) -> Row {
        Row { checks, ..self }
    }

    /// The same row run as another host (a client of the file system).
    const fn as_client(self) -> Row {
        Row {
            client: true,
            ..self
        }
    }
}

/// The reference's error cases and exit codes, in order: each row runs on the state the rows
/// before it left.
const ERROR_TABLE: &[Row] = &[
    // fsck / logplay
    // fsck's codes above 100 cannot be read as collision counts (issue 9.5).
    row(&["fsck"], 102, "fsck without a path"),
    row(&["fsck", "-r", "-m", "{dev}"], 102, "fsck -r with -m"),
    row(&["fsck", "/boguspath"], 103, "fsck missing path"),
    row(&["fsck", "{tmp}"], 106, "fsck of a directory outside famfs"),
    row(
        &["fsck", "/dev/null"],
        106,
        "fsck of a char device that is not dax",
    )
    .with(&[Check::Stderr("not a dax device")]),
    row(&["logplay"], 1, "logplay without a path"),
    // creat
    row(&["creat", "-d", "{dev}"], 1, "creat without a file"),
    row(
        &["creat", "-d", "{dev}", "-r", "-S", "1", "/f"],
        1,
        "creat: new file without a size",
    ),
    row(
        &["creat", "-d", "{dev}", "-r", "-s", "0", "-S", "1", "/f"],
        1,
        "creat -s 0",
    ),
    row(
        &["creat", "-d", "{dev}", "-s", "4k", "-S", "1", "/f"],
        1,
        "-S without -r",
    )
    .with(&[Check::Stderr("seed (-S) without randomize (-r)")]),
    row(
        &["creat", "-d", "{dev}", "-s", "4k", "-r", "/f"],
        1,
        "-r without a seed",
    ),
    row(
        &["creat", "-d", "{dev}", "-S", "-s", "10", "/f"],
        2,
        "-S swallowing -s",
    ),
    row(
        &["creat", "-d", "{dev}", "-s", "10MB", "/f"],
        2,
        "bad size suffix",
    ),
    row(
        &["creat", "-d", "{dev}", "-s", "4k", "-m", "0999", "/f"],
        2,
        "bad mode",
    ),
    row(
        &["creat", "-d", "{dev}", "-s", "4k", "-N", "17", "/f"],
        1,
        "nstrips > 16",
    ),
    row(
        &[
            "creat", "-d", "{dev}", "-s", "64m", "-N", "3", "-B", "4", "-C", "2000000", "/f",
        ],
        22,
        "chunk not a power of two",
    ),
    row(
        &[
            "creat", "-d", "{dev}", "-s", "64m", "-N", "3", "-B", "100", "/f",
        ],
        22,
        "too many buckets",
    ),
    row(&["creat", "-d", "{dev}", "-s", "4k", "/f"], 0, "creat 4k"),
    row(
        &["creat", "-d", "{dev}", "-s", "4k", "/f"],
        0,
        "re-creat same size is a no-op",
    ),
    row(
        &["creat", "-d", "{dev}", "/f"],
        0,
        "re-creat without size is a no-op",
    ),
    row(
        &["creat", "-d", "{dev}", "-s", "8k", "/f"],
        1,
        "re-creat other size",
    )
    .with(&[Check::Stderr("not the same size")]),
    row(&["mkdir", "-d", "{dev}", "/dir"], 0, "mkdir"),
    row(
        &["creat", "-d", "{dev}", "-s", "4k", "/dir"],
        1,
        "creat over a directory",
    ),
    row(
        &["creat", "-d", "{dev}", "-s", "4k", "/"],
        1,
        "creat the root",
    ),
    row(
        &["creat", "-d", "{dev}", "-s", "4k", "/.meta"],
        1,
        "creat of the reserved .meta",
    ),
    row(
        &["mkdir", "-d", "{dev}", "-p", "/.meta/x"],
        1,
        "mkdir in the reserved .meta",
    ),
    row(
        &["creat", "-d", "{dev}", "-s", "4k", "/nodir/f"],
        1,
        "creat without parent",
    ),
    row(
        &["creat", "-d", "{dev}", "-s", "4k", "/f/g"],
        20,
        "creat under a file (ENOTDIR)",
    ),
    row(
        &["creat", "-d", "{dev}", "-s", "4k", "{long}"],
        1,
        "path too long for the log",
    ),
    row(
        &["creat", "-d", "{dev}", "-s", "9g", "/huge"],
        1,
        "out of space",
    ),
    row(
        &["creat", "-d", "{dev}", "-M", "/ok1,4k", "-M", "/dir,4k"],
        1,
        "multi with one bad",
    )
    .with(&[Check::Stdout(
        "Create complete for 1 of 2 files with 1 errs",
    )]),
    row(
        &["creat", "-d", "{dev}", "-S", "1", "-r", "-M", "/x,4k"],
        1,
        "-S and --multi",
    ),
    row(
        &["creat", "-d", "{dev}", "-M", "/good,4k", "-M", "../bad,4k"],
        1,
        "multi with an unresolvable path",
    )
    .with(&[Check::Stdout(
        "Create complete for 1 of 2 files with 1 errs",
    )]),
    row(
        &["creat", "-s", "4k", "/tmp/not-in-famfs"],
        1,
        "host path outside famfs",
    ),
    // verify
    row(&["verify"], 1, "verify without args"),
    row(
        &["verify", "-f", "/f", "-d", "{dev}"],
        1,
        "verify without seed",
    ),
    row(
        &["verify", "-S", "1", "-f", "/missing", "-d", "{dev}"],
        1,
        "verify missing file",
    ),
    row(
        &["verify", "-S", "1", "-f", "/tmp/surely-missing-famfs-file"],
        1,
        "verify missing host file",
    ),
    row(&["verify", "-m", "a,1", "-S", "1"], 1, "--multi and -S"),
    row(&["verify", "-m", "a"], 2, "bad multi arg"),
    row(&["verify", "-t", "257", "-m", "a,1"], 1, "bad thread count"),
    // mkdir
    row(&["mkdir"], 1, "mkdir without args"),
    row(&["mkdir", "-d", "{dev}", "/dir"], 1, "existing dir"),
    row(&["mkdir", "-d", "{dev}", "/f"], 1, "existing file"),
    row(
        &["mkdir", "-d", "{dev}", "/./dir//"],
        1,
        "existing dir via ./ and //",
    ),
    row(&["mkdir", "-d", "{dev}", "/"], 1, "the root"),
    row(
        &["mkdir", "-d", "{dev}", "-p", "/"],
        0,
        "mkdir -p of the root",
    ),
    row(
        &["mkdir", "-d", "{dev}", "-p", "/dir"],
        0,
        "mkdir -p existing",
    ),
    row(
        &["mkdir", "-d", "{dev}", "-p", "/f/foo/bar"],
        1,
        "mkdir -p through a file",
    ),
    row(
        &["mkdir", "-d", "{dev}", "-p", "/a/y/../../../.."],
        1,
        "mkdir -p ascending out of famfs",
    ),
    row(&["mkdir", "-d", "{dev}", "/x/y"], 1, "mkdir without parent"),
    row(
        &["mkdir", "-v", "-d", "{dev}", "-p", "/p/q"],
        0,
        "mkdir -pv",
    )
    .with(&[
        Check::Stdout("created directory '/p'"),
        Check::Stdout("'/p/q'"),
    ]),
    // cp
    row(&["cp"], 1, "cp without args"),
    row(&["cp", "--gid=-1"], 2, "negative gid"),
    row(&["cp", "--uid=-1"], 2, "negative uid"),
    row(&["cp", "-d", "{dev}", "{src}/one"], 1, "cp one arg"),
    row(
        &["cp", "-d", "{dev}", "/tmp/nonexistent_file", "/"],
        1,
        "cp nonexistent",
    ),
    row(
        &["cp", "-d", "{dev}", "/dev/zero", "/"],
        22,
        "cp a char device",
    ),
    row(
        &["cp", "-d", "{dev}", "{src}/empty", "/emptyfile2"],
        1,
        "cp an empty file",
    ),
    row(
        &[
            "cp",
            "-d",
            "{dev}",
            "{src}/subdir",
            "{src}/one",
            "{src}/two",
            "/dir",
        ],
        1,
        "cp dir without -r",
    )
    .with(&[
        Check::Stderr("omitting directory"),
        // The other files were copied.
        Check::Listed(&["dir/one", "dir/two"]),
    ]),
    row(
        &["cp", "-d", "{dev}", "{src}/one", "/dir/one"],
        0,
        "restartable copy onto a same-size file",
    ),
    row(
        &["cp", "-d", "{dev}", "{src}/two", "/dir/one"],
        1,
        "copy onto a file of another size",
    ),
    row(
        &["cp", "-d", "{dev}", "-r", "{src}/subdir", "/f"],
        1,
        "cp -r onto a file",
    ),
    row(
        &["cp", "-d", "{dev}", "{src}/one", "{src}/two", "/f"],
        1,
        "several files onto a file",
    ),
    row(
        &["cp", "-d", "{dev}", "{src}/one", "{src}/two", "/newdir"],
        1,
        "several files to a missing dir without -r",
    ),
    row(
        &["cp", "-d", "{dev}", "-r", "{src}/subdir", "/bar/foo"],
        1,
        "cp -r with a missing parent",
    ),
    row(
        &[
            "cp",
            "-d",
            "{dev}",
            "-r",
            "{src}/one",
            "{src}/two",
            "/newdir",
        ],
        0,
        "cp -r creates the destination directory",
    )
    .with(&[
        // A new destination directory is searchable.
        Check::ListedMode("newdir/", 0o755),
        Check::ListedSize("newdir/one", 3000),
    ]),
    row(
        &["cp", "-c", "-d", "{dev}", "{src}/two", "/newdir/one"],
        1,
        "compare with a different file",
    )
    .with(&[Check::Stderr("exists with")]),
    // getmap
    row(&["getmap"], 22, "getmap without args"),
    row(&["getmap", "-d", "{dev}", "/missing"], 9, "getmap missing"),
    row(
        &["getmap", "-d", "{dev}", "/dir"],
        21,
        "getmap of a directory",
    ),
    row(
        &["getmap", "/etc/passwd"],
        1,
        "getmap of a file outside famfs",
    ),
    row(
        &["getmap", "/tmp/surely-missing-famfs-file"],
        9,
        "getmap missing host file",
    ),
    row(
        &["getmap", "-d", "{dev}", "/missing", "/f"],
        9,
        "getmap stops at the first error",
    ),
    row(
        &["getmap", "-c", "-d", "{dev}", "/missing", "/f"],
        9,
        "getmap -c continues",
    )
    .with(&[Check::Stdout("good file /f")]),
    row(&["getmap", "-q", "-d", "{dev}", "/f"], 0, "getmap -q")
        .with(&[Check::StdoutIs("famfs_getmap: good file /f\n")]),
    // flush, chkread, clone
    row(&["flush"], 1, "flush without files"),
    row(&["flush", "-d", "{dev}", "/f", "/dir/one"], 0, "flush"),
    row(
        &["flush", "-d", "{dev}", "/f", "/missing", "/dir"],
        2,
        "flush: exit = errors",
    ),
    row(
        &["flush", "/tmp/surely-missing-famfs-file"],
        1,
        "flush missing host file",
    ),
    row(&["chkread"], 1, "chkread without args"),
    row(
        &["chkread", "/tmp/surely-missing-famfs-file"],
        1,
        "chkread missing",
    ),
    row(
        &["chkread", "-s", "{sb}"],
        0,
        "chkread of a superblock copy",
    )
    .with(&[
        Check::Stdout("Read and mmap match"),
        // The superblock is decoded.
        Check::Stdout(MASTER_UUID),
    ]),
    row(&["chkread", "{src}/one"], 0, "chkread of a host file"),
    row(&["clone"], 1, "clone without args"),
    row(
        &["clone", "-d", "{dev}", "/missing", "/c"],
        1,
        "clone of a missing file",
    ),
    row(
        &["clone", "-d", "{dev}", "/dir", "/c"],
        1,
        "clone of a directory",
    ),
    row(&["fsck", "{dev}"], 0, "fsck before clone")
        .with(&[Check::Stdout("No allocation errors found")]),
    row(&["clone", "-d", "{dev}", "/f", "/fclone"], 0, "clone"),
    row(
        &["fsck", "{dev}"],
        1,
        "fsck counts the collision (f is 1 AU)",
    )
    .with(&[Check::Stdout("ERROR: 1 ALLOCATION COLLISIONS FOUND")]),
    row(&["logplay", "{dev}"], 1, "logplay counts the skipped entry")
        .with(&[Check::Stdout("fclone")]),
    row(
        &["clone", "-d", "{dev}", "/dir/one", "/dir/oneclone"],
        0,
        "second clone",
    ),
    row(&["fsck", "{dev}"], 2, "two collisions"),
    // Only the master writes.
    row(
        &["creat", "-d", "{dev}", "-s", "4k", "/client"],
        1,
        "client creat",
    )
    .as_client()
    .with(&[Check::Stderr("not running on the master node")]),
    row(&["mkdir", "-d", "{dev}", "/clientdir"], 1, "client mkdir").as_client(),
    row(&["cp", "-d", "{dev}", "{src}/one", "/c1"], 1, "client cp").as_client(),
    row(&["fsck", "{dev}"], 2, "a client can fsck")
        .as_client()
        .with(&[Check::Stdout("role of this node: Client")]),
    row(
        &["verify", "-d", "{dev}", "-S", "1", "/missing"],
        1,
        "client verify of a missing file",
    )
    .as_client(),
];

/// Run one row of [`ERROR_TABLE`] with the placeholders of its arguments replaced.
fn run_row(r: &Runner, vars: &[(&str, String)], row: &Row) {
    let args: Vec<String> = row
        .args
        .iter()
        .map(|a| {
            vars.iter()
                .fold((*a).to_string(), |a, (k, v)| a.replace(k, v))
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let runner = if row.client { r.as_client() } else { r.clone() };
    let out = runner.famfs(&args).expect(row.code, row.what);
    let ls = row.checks.iter().any(Check::needs_listing).then(|| {
        let dev = &vars.iter().find(|(k, _)| *k == "{dev}").unwrap().1;
        parse_ls(&r.famfs(&["logplay", "--ls", dev]).ok("ls").stdout)
    });
    for check in row.checks {
        let what = row.what;
        match *check {
            Check::Stderr(s) => assert!(out.stderr.contains(s), "{what}: {}", out.stderr),
            Check::Stdout(s) => assert!(out.stdout.contains(s), "{what}: {}", out.stdout),
            Check::StdoutIs(s) => assert_eq!(out.stdout, s, "{what}"),
            Check::Listed(paths) => {
                let ls = ls.as_ref().unwrap();
                assert!(paths.iter().all(|p| ls.contains_key(*p)), "{what}: {ls:?}");
            }
            Check::ListedMode(p, mode) => {
                assert_eq!(ls.as_ref().unwrap()[p].mode, mode, "{what}: {p}")
            }
            Check::ListedSize(p, size) => {
                assert_eq!(ls.as_ref().unwrap()[p].size, size, "{what}: {p}")
            }
        }
    }
}

#[test]
fn command_errors_and_exit_codes() {
    let dir = TempDir::new("errors");
    let d = dir.path();
    let r = Runner::new(d);
    let img = standin(d, "dev.img", 8 * GIB);
    let dev = img.to_str().unwrap();
    r.mkfs(&[dev]).ok("mkfs");
    // Host sources for cp and chkread.
    let src = d.join("src");
    std::fs::create_dir_all(src.join("subdir")).unwrap();
    std::fs::write(src.join("one"), bytes(5, 3000)).unwrap();
    std::fs::write(src.join("two"), bytes(6, 3001)).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    // A copy of the superblock (mkfs wrote it; nothing after rewrites it).
    let sb = d.join("sb.bin");
    let mut head = vec![0u8; 2 << 20];
    std::os::unix::fs::FileExt::read_exact_at(&std::fs::File::open(&img).unwrap(), &mut head, 0)
        .unwrap();
    std::fs::write(&sb, &head).unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let vars = [
        ("{dev}", dev.to_string()),
        ("{tmp}", path(d)),
        ("{src}", path(&src)),
        ("{sb}", path(&sb)),
        ("{long}", format!("/{}", "x".repeat(80))),
    ];
    for row in ERROR_TABLE {
        run_row(&r, &vars, row);
    }
}

/// Two processes writing the same device at once (offline): both succeed, nothing is lost,
/// nothing overlaps, every file holds its own data.
#[test]
fn two_writers_lose_nothing() {
    let dir = TempDir::new("writers");
    let d = dir.path();
    let img = standin(d, "dev.img", 8 * GIB);
    let r = Runner::new(d);
    let dev = img.to_str().unwrap().to_string();
    r.mkfs(&[&dev]).ok("mkfs");
    for w in 0..2 {
        std::fs::write(
            d.join(format!("host{w}.bin")),
            bytes(100 + w, (3 << 20) + 17),
        )
        .unwrap();
    }
    const N: u64 = 12;
    let workers: Vec<_> = (0..2u64)
        .map(|w| {
            let r = r.clone();
            let dev = dev.clone();
            let host = d.join(format!("host{w}.bin"));
            std::thread::spawn(move || {
                for i in 0..N {
                    let seed = (1000 * (w + 1) + i).to_string();
                    let name = format!("/shared/w{w}-{i}");
                    // Both writers race to create the shared directory: exactly-once semantics of
                    // mkdir -p under the lock.
                    r.famfs(&["mkdir", "-p", "-d", &dev, "/shared"])
                        .ok("mkdir -p shared");
                    let size = format!("{}", (1 + i % 3) * (1 << 20) + w * 4096 + i);
                    r.famfs(&["creat", "-d", &dev, "-s", &size, "-r", "-S", &seed, &name])
                        .ok("creat");
                    if i % 3 == 0 {
                        let cp_name = format!("/shared/cp{w}-{i}");
                        let mut args = vec!["cp", "-d", &dev];
                        if i % 2 == 0 {
                            args.extend(["-N", "2", "-B", "4"]);
                        }
                        let hs = host.to_str().unwrap().to_string();
                        args.push(&hs);
                        args.push(&cp_name);
                        r.famfs(&args).ok("cp");
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("writer thread");
    }
    let ls = parse_ls(&r.famfs(&["logplay", "--ls", &dev]).ok("logplay").stdout);
    let mut want = BTreeSet::new();
    want.insert("shared/".to_string());
    for w in 0..2u64 {
        for i in 0..N {
            want.insert(format!("shared/w{w}-{i}"));
            if i % 3 == 0 {
                want.insert(format!("shared/cp{w}-{i}"));
            }
        }
    }
    let got: BTreeSet<String> = ls.keys().cloned().collect();
    assert_eq!(got, want, "every file of both writers is in the log, once");
    let out = r.famfs(&["fsck", &dev]).ok("fsck");
    assert!(
        out.stdout.contains("No allocation errors found"),
        "{}",
        out.stdout
    );
    let mut maps = BTreeMap::new();
    for name in &want {
        if !name.ends_with('/') {
            let m = parse_getmap(
                &r.famfs(&["getmap", "-d", &dev, &format!("/{name}")])
                    .ok("getmap")
                    .stdout,
            );
            maps.insert(name.clone(), m);
        }
    }
    let allocated = check_maps(&maps, 8 * GIB);
    assert_eq!(
        fsck_field(&out.stdout, "Free space:"),
        8 * GIB - DATA_START - allocated
    );
    // Every file holds its own data.
    for w in 0..2u64 {
        for i in 0..N {
            let seed = (1000 * (w + 1) + i).to_string();
            r.famfs(&[
                "verify",
                "-d",
                &dev,
                "-S",
                &seed,
                &format!("/shared/w{w}-{i}"),
            ])
            .ok("verify");
            if i % 3 == 0 {
                let m = &maps[&format!("shared/cp{w}-{i}")];
                assert_eq!(m.read_from_image(&img), bytes(100 + w, (3 << 20) + 17));
            }
        }
    }
}

/// A device file that the offline tools cannot open says why.
#[test]
fn unreadable_or_odd_devices() {
    let dir = TempDir::new("odd");
    let d = dir.path();
    let r = Runner::new(d);
    let odd = standin(d, "odd.img", 4 * GIB + 4096);
    let out = r
        .mkfs(&[odd.to_str().unwrap()])
        .expect(2, "size not a multiple of 2 MiB");
    assert!(out.stderr.contains("multiple of"), "{}", out.stderr);
    let blank = standin(d, "blank.img", 4 * GIB);
    let out = r.famfs(&["logplay", "--ls", blank.to_str().unwrap()]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("no valid famfs file system"),
        "{}",
        out.stderr
    );
    let _ = Path::new("");
}
