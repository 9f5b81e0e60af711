//! Project tasks run by the scripts.
//!
//! `xtask docs PREFIX` writes, from the clap definitions of `famfs`, `mkfs.famfs`, `famfs_fused`
//! and `daxctl-famfs`:
//! * man pages in `PREFIX/share/man/man1` (one per program and one per subcommand, e.g.
//!   `famfs-mount.1`);
//! * shell completions in `PREFIX/share/bash-completion/completions/NAME`,
//!   `PREFIX/share/zsh/site-functions/_NAME` and `PREFIX/share/fish/vendor_completions.d/NAME.fish`.
//!
//! `scripts/install.sh` runs it after installing the binaries.
//!
//! `xtask size-check` prints every production file over 600 lines and every production function
//! over 100 lines (see [`size_check`]) and fails when there is one; `scripts/test-all.sh` runs it
//! with the lints.

mod size_check;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Command, CommandFactory};
use clap_complete::Shell;

/// The installed programs and their command lines.
fn programs() -> Vec<Command> {
    vec![
        famfs_cli::cli::Famfs::command(),
        famfs_cli::cli::Mkfs::command(),
        famfs_server::cli::Args::command(),
        daxctl_famfs::cli::Cli::command(),
    ]
}

fn create(path: &Path) -> std::io::Result<BufWriter<File>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    Ok(BufWriter::new(File::create(path)?))
}

/// Render one man page to `dir/NAME.1`.
fn man_page(cmd: Command, dir: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let path = dir.join(format!("{}.1", cmd.get_name()));
    let mut out = create(&path)?;
    clap_mangen::Man::new(cmd).render(&mut out)?;
    out.flush()?;
    written.push(path);
    Ok(())
}

/// Man pages of `cmd` and of each of its subcommands (`NAME-SUB.1`).
fn man_pages(cmd: &Command, dir: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut cmd = cmd.clone();
    cmd.build();
    let name = cmd.get_name().to_string();
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        // A short-lived tool: leaking the few names gives the `&'static str` clap wants.
        let full: &'static str = Box::leak(format!("{name}-{}", sub.get_name()).into_boxed_str());
        man_page(sub.clone().name(full).bin_name(full), dir, written)?;
    }
    man_page(cmd, dir, written)
}

/// Completion scripts of `cmd` for bash, zsh and fish, where those shells look for them.
fn completions(cmd: &Command, share: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let name = cmd.get_name().to_string();
    for (shell, path) in [
        (
            Shell::Bash,
            share.join("bash-completion/completions").join(&name),
        ),
        (
            Shell::Zsh,
            share.join("zsh/site-functions").join(format!("_{name}")),
        ),
        (
            Shell::Fish,
            share
                .join("fish/vendor_completions.d")
                .join(format!("{name}.fish")),
        ),
    ] {
        let mut out = create(&path)?;
        clap_complete::generate(shell, &mut cmd.clone(), &name, &mut out);
        out.flush()?;
        written.push(path);
    }
    Ok(())
}

/// Write every man page and completion script under `prefix`; returns the files written.
fn docs(prefix: &Path) -> std::io::Result<Vec<PathBuf>> {
    let share = prefix.join("share");
    let man1 = share.join("man/man1");
    let mut written = Vec::new();
    for cmd in programs() {
        man_pages(&cmd, &man1, &mut written)?;
        completions(&cmd, &share, &mut written)?;
    }
    Ok(written)
}

/// `xtask size-check`: check the workspace this xtask belongs to.
fn size_check_main() -> ExitCode {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    match size_check::check(workspace) {
        Ok(offences) if offences.is_empty() => {
            println!(
                "size-check: no production file over {} lines, no production function over {} lines",
                size_check::MAX_FILE_LINES,
                size_check::MAX_FN_LINES
            );
            ExitCode::SUCCESS
        }
        Ok(offences) => {
            for o in &offences {
                println!("{o}");
            }
            eprintln!("size-check: {} over the limits", offences.len());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("size-check: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [task, prefix] if task == "docs" => match docs(Path::new(prefix)) {
            Ok(files) => {
                println!(
                    "xtask: wrote {} man pages and completion scripts under {prefix}/share",
                    files.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xtask docs {prefix}: {e}");
                ExitCode::FAILURE
            }
        },
        [task] if task == "size-check" => size_check_main(),
        _ => {
            eprintln!(
                "usage: xtask docs PREFIX\n  write man pages (PREFIX/share/man/man1) and bash, \
                 zsh and fish completions (PREFIX/share/...) for famfs, mkfs.famfs, famfs_fused \
                 and daxctl-famfs\n\
                 usage: xtask size-check\n  list production files over {} lines and production \
                 functions over {} lines; fail if there is any",
                size_check::MAX_FILE_LINES,
                size_check::MAX_FN_LINES
            );
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_gets_pages_and_completions() {
        let dir = std::env::temp_dir().join(format!("xtask-docs-{}", std::process::id()));
        let files = docs(&dir).unwrap();
        let has = |rel: &str| files.contains(&dir.join(rel));
        for page in [
            "share/man/man1/famfs.1",
            "share/man/man1/famfs-mount.1",
            "share/man/man1/famfs-fsck.1",
            "share/man/man1/mkfs.famfs.1",
            "share/man/man1/famfs_fused.1",
            "share/man/man1/daxctl-famfs.1",
            "share/man/man1/daxctl-famfs-reconfigure-device.1",
            "share/bash-completion/completions/famfs",
            "share/zsh/site-functions/_mkfs.famfs",
            "share/fish/vendor_completions.d/famfs_fused.fish",
            "share/bash-completion/completions/daxctl-famfs",
        ] {
            assert!(has(page), "{page} not written: {files:?}");
        }
        let mount = std::fs::read_to_string(dir.join("share/man/man1/famfs-mount.1")).unwrap();
        assert!(mount.contains("famfs\\-mount"), "{mount}");
        assert!(
            mount.contains("famfs_fused"),
            "the mount page explains the daemon"
        );
        let fsck = std::fs::read_to_string(dir.join("share/man/man1/famfs-fsck.1")).unwrap();
        assert!(fsck.contains("101"), "fsck's exit codes are in its page");
        let bash =
            std::fs::read_to_string(dir.join("share/bash-completion/completions/famfs")).unwrap();
        assert!(
            bash.contains("logplay") && bash.contains("--json"),
            "{bash}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
