//! The newcomer's path (issue 9.9): `scripts/install.sh PREFIX` installs the four programs with
//! man pages and completions, and then the README's "Using it" block, taken verbatim from
//! README.md between its markers, runs with only PREFIX/bin (and the system's directories) on
//! PATH. The test breaks when the README drifts from what works.
//!
//! The block mounts, so this needs root and /dev/fuse: without them it skips loudly, or fails
//! when `CI=true`.

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cli_support::*;

const BEGIN: &str = "<!-- using-it:begin -->";
const END: &str = "<!-- using-it:end -->";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository holds tests/")
        .to_path_buf()
}

/// The shell commands of the README's "Using it" block (the fenced block between the markers).
fn using_it_block() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme
        .find(BEGIN)
        .expect("README.md has the using-it:begin marker");
    let end = readme
        .find(END)
        .expect("README.md has the using-it:end marker");
    let inner = &readme[start + BEGIN.len()..end];
    let body = inner
        .trim()
        .strip_prefix("```sh")
        .and_then(|b| b.strip_suffix("```"))
        .expect("a ```sh fenced block between the markers");
    body.trim().to_string()
}

/// `(CARGO_TARGET_DIR, install profile)` of this test build, so the install reuses its build.
fn build_of_this_test() -> (PathBuf, &'static str) {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(Path::parent).unwrap();
    let target = profile.parent().unwrap().to_path_buf();
    let name = if profile.file_name().is_some_and(|n| n == "release") {
        "release"
    } else {
        "dev"
    };
    (target, name)
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// Famfs mounts under `dir` (left behind by a failed run).
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && f[2] == "fuse.famfs").then(|| PathBuf::from(f[1]))
        })
        .filter(|m| m.starts_with(dir))
        .collect()
}

#[test]
fn readme_block_is_extracted_from_its_markers() {
    let block = using_it_block();
    assert!(block.contains("mkfs.famfs"), "{block}");
    assert!(block.contains("famfs mount"), "{block}");
    assert!(!block.contains("```"), "{block}");
}

#[test]
fn install_then_the_readme_using_it_block_works_verbatim() {
    if !is_root() || !Path::new("/dev/fuse").exists() {
        skip_or_fail("the README block mounts: it needs root and /dev/fuse");
        return;
    }
    let dir = TempDir::new("newcomer");
    let base = std::fs::canonicalize(dir.path()).unwrap();
    let prefix = base.join("prefix");
    let (target, profile) = build_of_this_test();
    let out = Command::new(repo().join("scripts/install.sh"))
        .arg(&prefix)
        .env("CARGO_TARGET_DIR", &target)
        .env("FAMFS_INSTALL_PROFILE", profile)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "install.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "bin/famfs",
        "bin/mkfs.famfs",
        "bin/famfs_fused",
        "bin/daxctl-famfs",
        "sbin/mount.fuse.famfs",
        "lib/systemd/system/famfs@.service",
        "share/man/man1/famfs.1",
        "share/man/man1/famfs-mount.1",
        "share/man/man1/mkfs.famfs.1",
        "share/man/man1/famfs_fused.1",
        "share/man/man1/daxctl-famfs.1",
        "share/bash-completion/completions/famfs",
        "share/zsh/site-functions/_famfs",
        "share/fish/vendor_completions.d/famfs.fish",
    ] {
        assert!(prefix.join(f).exists(), "{f} not installed");
    }
    let page = std::fs::read_to_string(prefix.join("share/man/man1/famfs.1")).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH"),
        "a man page:\n{page}"
    );
    // The bash completion loads and completes famfs.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; complete -p famfs",
            prefix
                .join("share/bash-completion/completions/famfs")
                .display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The README block, verbatim, with only the installed programs and the system's on PATH. The
    // system UUID is set so that the test leaves /opt/famfs alone; mktemp works in the test's
    // directory.
    let scratch = base.join("tmp");
    std::fs::create_dir_all(&scratch).unwrap();
    let block = using_it_block();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail -x\n{block}"))
        .current_dir(&base)
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:/usr/sbin:/usr/bin:/sbin:/bin",
                prefix.join("bin").display()
            ),
        )
        .env("HOME", &base)
        .env("TMPDIR", &scratch)
        .env("FAMFS_SYSTEM_UUID", MASTER_UUID)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let left = mounts_under(&base);
    for m in &left {
        let _ = Command::new(prefix.join("bin/famfs"))
            .args(["umount", "-l"])
            .arg(m)
            .status();
    }
    assert!(
        out.status.success(),
        "the README's Using it block failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(left.is_empty(), "the block left mounts behind: {left:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("models/weights.bin"), "{stdout}");
    assert!(stdout.contains("No allocation errors found"), "{stdout}");
    assert!(stdout.contains("Success: verified"), "{stdout}");
}
