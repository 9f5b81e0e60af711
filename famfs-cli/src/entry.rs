//! The entry points of the `famfs` and `mkfs.famfs` binaries: argument parsing, logging,
//! dispatch, exit codes.

use std::ffi::OsString;

use clap::Parser;
use clap::error::ErrorKind;

use crate::{cli, cmd, error};

/// Set up logging: `-v` → info, `-vv` → debug, `-vvv` → trace; `RUST_LOG` overrides. Logs go to
/// stderr.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "error",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// The exit status of a usage error of subcommand `sub`: a missing argument is 1 (getmap 22, as
/// the reference); other usage errors (unknown option, bad value) are 2; fsck's usage errors are
/// all [`cmd::fsck::FSCK_USAGE`] and mount's all 1 (the reference's).
fn usage_code(sub: Option<&str>, missing: bool) -> i32 {
    match (sub, missing) {
        (Some("fsck"), _) => cmd::fsck::FSCK_USAGE,
        (Some("mount"), _) => 1,
        (Some("getmap"), true) => libc::EINVAL,
        (_, true) => 1,
        (_, false) => 2,
    }
}

/// The first non-option argument after the program name: the subcommand name, if any.
fn subcommand_of(args: &[OsString]) -> Option<String> {
    args.iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .find(|a| !a.starts_with('-'))
}

/// `famfs -h CMD` prints that command's help, as the reference does.
fn rewrite_help(mut args: Vec<OsString>) -> Vec<OsString> {
    if args.len() >= 3 && (args[1] == "-h" || args[1] == "--help") {
        let cmd = args[2].to_string_lossy();
        if !cmd.starts_with('-') {
            args[1] = OsString::from("help");
        }
    }
    args
}

/// A command line that ends before anything runs (help, version, usage error), with its exit
/// status; [`EarlyExit::print`] shows what it says.
#[derive(Debug)]
pub struct EarlyExit {
    /// The exit status.
    pub code: i32,
    error: clap::Error,
    missing_command: bool,
}

impl EarlyExit {
    /// Print the help, version or usage error (help and version on stdout, errors on stderr).
    pub fn print(&self) {
        if self.missing_command {
            eprintln!("famfs: missing command");
            let _ = cli_help();
        } else {
            let _ = self.error.print();
        }
    }
}

/// Parse `famfs` arguments: the command to run, or how to exit.
pub fn parse_famfs(args: &[OsString]) -> Result<cli::Famfs, EarlyExit> {
    match crate::quickparse::try_quick(args) {
        Some(parsed) => Ok(parsed),
        None => parse_famfs_full(args),
    }
}

/// [`parse_famfs`] with every subcommand defined (help, errors, the other commands).
pub(crate) fn parse_famfs_full(args: &[OsString]) -> Result<cli::Famfs, EarlyExit> {
    let args = rewrite_help(args.to_vec());
    cli::Famfs::try_parse_from(&args).map_err(|error| {
        let kind = error.kind();
        let missing_command = matches!(
            kind,
            ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
        let code = match kind {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
            _ if missing_command => 1,
            ErrorKind::InvalidSubcommand => 3,
            kind => usage_code(
                subcommand_of(&args).as_deref(),
                kind == ErrorKind::MissingRequiredArgument,
            ),
        };
        EarlyExit {
            code,
            error,
            missing_command,
        }
    })
}

/// Entry point of `famfs`; returns the exit status.
pub fn main_famfs(args: Vec<OsString>) -> i32 {
    let parsed = match parse_famfs(&args) {
        Ok(p) => p,
        Err(early) => {
            early.print();
            return early.code;
        }
    };
    init_logging(parsed.verbose);
    let name = cmd::name_of(&parsed.cmd);
    match cmd::run(parsed) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("famfs {name}: {e:#}");
            error::exit_code_of(&e)
        }
    }
}

fn cli_help() -> std::io::Result<()> {
    use clap::CommandFactory;
    cli::Famfs::command().write_help(&mut std::io::stderr())
}

/// Whether a program invoked as `argv0` is `mkfs.famfs` (any name starting with `mkfs`).
pub fn invoked_as_mkfs(argv0: &std::ffi::OsStr) -> bool {
    std::path::Path::new(argv0)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("mkfs"))
}

/// Die quietly of SIGPIPE when stdout is closed (`famfs logplay --ls | head`), as C tools do,
/// instead of failing a print.
pub fn restore_sigpipe() {
    // SAFETY: setting a signal's disposition to the default is async-signal-safe and done before
    // any other thread exists; no handler code is involved.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Entry point of both binaries: `mount.fuse.famfs` (the mount(8) helper) under that name,
/// `mkfs.famfs` when invoked under a name starting with `mkfs` (or when `mkfs` is true and the
/// name says nothing else), else `famfs`.
pub fn main_multicall(args: Vec<OsString>, mkfs: bool) -> i32 {
    if args
        .first()
        .is_some_and(|a| cmd::mount::helper::invoked_as_helper(a))
    {
        return cmd::mount::helper::main(args);
    }
    if runs_as_mkfs(&args, mkfs) {
        main_mkfs(args)
    } else {
        main_famfs(args)
    }
}

/// Whether [`main_multicall`] runs `mkfs.famfs` for these arguments.
fn runs_as_mkfs(args: &[OsString], mkfs: bool) -> bool {
    let name = args.first().cloned().unwrap_or_default();
    let is_famfs = std::path::Path::new(&name)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("famfs"));
    invoked_as_mkfs(&name) || (mkfs && !is_famfs)
}

/// Parse `mkfs.famfs` arguments: what to do, or how to exit (0 help/version, 1 usage).
pub fn parse_mkfs(args: &[OsString]) -> Result<cli::Mkfs, EarlyExit> {
    cli::Mkfs::try_parse_from(args).map_err(|error| EarlyExit {
        code: match error.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
            _ => 1,
        },
        error,
        missing_command: false,
    })
}

/// Entry point of `mkfs.famfs`; returns the exit status (1 usage, 2 failure).
pub fn main_mkfs(args: Vec<OsString>) -> i32 {
    let parsed = match parse_mkfs(&args) {
        Ok(p) => p,
        Err(early) => {
            early.print();
            return early.code;
        }
    };
    init_logging(parsed.verbose);
    match cmd::mkfs::run(parsed) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mkfs.famfs: {e:#}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn help_rewrite_and_subcommand_detection() {
        assert_eq!(
            rewrite_help(os(&["famfs", "-h", "creat"])),
            os(&["famfs", "help", "creat"])
        );
        assert_eq!(rewrite_help(os(&["famfs", "-h"])), os(&["famfs", "-h"]));
        assert_eq!(
            subcommand_of(&os(&["famfs", "-v", "getmap"])).as_deref(),
            Some("getmap")
        );
        assert_eq!(usage_code(Some("getmap"), true), 22);
        assert_eq!(usage_code(Some("creat"), true), 1);
        assert_eq!(usage_code(Some("creat"), false), 2);
        assert_eq!(usage_code(Some("fsck"), true), 102);
        assert_eq!(usage_code(Some("fsck"), false), 102);
        assert_eq!(usage_code(Some("mount"), false), 1);
    }

    /// The exit status of parsing `args`, printing nothing (0 when there is a command to run).
    fn parse_code(args: &[&str]) -> i32 {
        parse_famfs(&os(args)).map_or_else(|e| e.code, |_| 0)
    }

    #[test]
    fn driver_exit_codes() {
        assert_eq!(parse_code(&["famfs"]), 1, "missing command");
        assert_eq!(parse_code(&["famfs", "--"]), 1, "missing command");
        assert_eq!(parse_code(&["famfs", "badarg"]), 3, "unknown command");
        assert_eq!(parse_code(&["famfs", "-h"]), 0);
        assert_eq!(parse_code(&["famfs", "-h", "creat"]), 0);
        assert!(
            parse_famfs(&os(&["famfs", "-h", "creat"])).is_err(),
            "help, not a run"
        );
        assert_eq!(parse_code(&["famfs", "getmap"]), 22);
        assert_eq!(parse_code(&["famfs", "fsck"]), 102, "fsck usage");
        assert_eq!(parse_code(&["famfs", "fsck", "--bogus", "x"]), 102);
        assert_eq!(main_famfs(os(&["famfs", "fsck", "-r", "-m", "x"])), 102);
        assert_eq!(main_famfs(os(&["famfs", "fsck", "/no/such/dev"])), 103);
        assert_eq!(main_famfs(os(&["famfs", "logplay", "-r", "-m", "x"])), 1);
        assert_eq!(parse_code(&["famfs", "mount", "a", "b", "c"]), 1);
        assert_eq!(parse_code(&["famfs", "mount", "a"]), 1);
        assert_eq!(
            parse_code(&["famfs", "creat", "--bogus"]),
            2,
            "unknown option"
        );
        for c in [
            "mount", "umount", "fsck", "mkdir", "cp", "creat", "verify", "flush", "logplay",
            "getmap", "clone", "chkread", "daxmode", "status",
        ] {
            let e = parse_famfs(&os(&["famfs", c, "-?"])).unwrap_err();
            assert_eq!(
                (e.code, e.error.kind()),
                (0, ErrorKind::DisplayHelp),
                "{c} -?"
            );
            assert!(
                e.error.to_string().contains(&format!("famfs {c}")),
                "{c}: its own help"
            );
        }
        assert_eq!(parse_code(&["famfs", "-?"]), 0);
        let mkfs = |a: &[&str]| parse_mkfs(&os(a)).map_or_else(|e| e.code, |_| 0);
        assert_eq!(mkfs(&["mkfs.famfs", "--bogus"]), 1);
        assert_eq!(mkfs(&["mkfs.famfs", "-h"]), 0);
        assert_eq!(mkfs(&["mkfs.famfs", "-?"]), 0);
        assert!(invoked_as_mkfs("/usr/sbin/mkfs.famfs".as_ref()));
        assert!(!invoked_as_mkfs("famfs".as_ref()));
        assert_eq!(
            main_multicall(os(&["/x/mkfs.famfs"]), false),
            1,
            "mkfs usage"
        );
        assert!(!runs_as_mkfs(&os(&["/x/famfs"]), true), "famfs by its name");
        assert!(runs_as_mkfs(&os(&["/x/mkfs-famfs"]), true));
        assert!(!runs_as_mkfs(&os(&["/x/famfs"]), false));
        assert_eq!(parse_code(&["/x/famfs"]), 1, "famfs missing command");
    }
}
