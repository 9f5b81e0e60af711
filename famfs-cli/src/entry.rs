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
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Subcommands whose missing-argument exit status differs from 1 (the reference's values).
fn missing_arg_code(sub: Option<&str>) -> i32 {
    match sub {
        Some("getmap") => libc::EINVAL,
        _ => 1,
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

/// Entry point of `famfs`; returns the exit status.
pub fn main_famfs(args: Vec<OsString>) -> i32 {
    let args = rewrite_help(args);
    let parsed = match cli::Famfs::try_parse_from(&args) {
        Ok(p) => p,
        Err(e) => {
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    0
                }
                ErrorKind::MissingSubcommand
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    eprintln!("famfs: missing command");
                    let _ = cli_help();
                    1
                }
                ErrorKind::InvalidSubcommand => {
                    let _ = e.print();
                    3
                }
                ErrorKind::MissingRequiredArgument => {
                    let _ = e.print();
                    missing_arg_code(subcommand_of(&args).as_deref())
                }
                _ => {
                    let _ = e.print();
                    2
                }
            };
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

/// Entry point of both binaries: `mkfs.famfs` when invoked under a name starting with `mkfs`
/// (or when `mkfs` is true and the name says nothing else), else `famfs`.
pub fn main_multicall(args: Vec<OsString>, mkfs: bool) -> i32 {
    let name = args.first().cloned().unwrap_or_default();
    let is_famfs = std::path::Path::new(&name)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("famfs"));
    if invoked_as_mkfs(&name) || (mkfs && !is_famfs) {
        main_mkfs(args)
    } else {
        main_famfs(args)
    }
}

/// Entry point of `mkfs.famfs`; returns the exit status (1 usage, 2 failure).
pub fn main_mkfs(args: Vec<OsString>) -> i32 {
    let parsed = match cli::Mkfs::try_parse_from(&args) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => 1,
            };
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
        assert_eq!(missing_arg_code(Some("getmap")), 22);
        assert_eq!(missing_arg_code(Some("creat")), 1);
    }

    #[test]
    fn driver_exit_codes() {
        assert_eq!(main_famfs(os(&["famfs"])), 1, "missing command");
        assert_eq!(main_famfs(os(&["famfs", "--"])), 1, "missing command");
        assert_eq!(main_famfs(os(&["famfs", "badarg"])), 3, "unknown command");
        assert_eq!(main_famfs(os(&["famfs", "-h"])), 0);
        assert_eq!(main_famfs(os(&["famfs", "-h", "creat"])), 0);
        assert_eq!(main_famfs(os(&["famfs", "getmap"])), 22);
        assert_eq!(main_famfs(os(&["famfs", "fsck"])), 1);
        assert_eq!(
            main_famfs(os(&["famfs", "creat", "--bogus"])),
            2,
            "unknown option"
        );
        assert_eq!(main_mkfs(os(&["mkfs.famfs", "--bogus"])), 1);
        assert_eq!(main_mkfs(os(&["mkfs.famfs", "-h"])), 0);
        assert!(invoked_as_mkfs("/usr/sbin/mkfs.famfs".as_ref()));
        assert!(!invoked_as_mkfs("famfs".as_ref()));
        assert_eq!(
            main_multicall(os(&["/x/mkfs.famfs"]), false),
            1,
            "mkfs usage"
        );
        assert_eq!(
            main_multicall(os(&["/x/famfs"]), false),
            1,
            "famfs missing command"
        );
    }
}
