//! Parsing the per-file commands without building the whole command tree.
//!
//! `famfs creat FILE` is often one process per file (and `famfs fsck` a short one), and clap builds (then drops) the
//! definitions of every subcommand on every run, about a third of such a process's
//! instructions. For the commands scripts run per file, [`try_quick`] builds the top level with
//! only the subcommand named on the command line. It returns a value only for a command line
//! that parses; help, version, and every error are left to the full parse, so what the user sees
//! then is unchanged.

use std::ffi::OsString;

use clap::{ArgAction, Args, Command, CommandFactory, FromArgMatches, Parser};

use crate::cli::{
    CpArgs, CreatArgs, Famfs, FlushArgs, FsckArgs, GetmapArgs, LogplayArgs, MkdirArgs, VerifyArgs,
};

/// The global options of [`Famfs`], with the same ids and actions (the quick parse's matches
/// must read as the full parse's).
#[derive(Debug, Parser)]
#[command(name = "famfs", subcommand_required = true)]
struct Globals {
    /// As [`Famfs::verbose`].
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    /// As [`Famfs::help_q`].
    #[arg(short = '?', action = ArgAction::Help, global = true, hide = true)]
    help_q: Option<bool>,
}

/// The definition of subcommand `name`, for the commands parsed quickly.
fn subcommand(name: &str) -> Option<Command> {
    Some(match name {
        "creat" => CreatArgs::augment_args(Command::new("creat")),
        "mkdir" => MkdirArgs::augment_args(Command::new("mkdir")),
        "cp" => CpArgs::augment_args(Command::new("cp")),
        "verify" => VerifyArgs::augment_args(Command::new("verify")),
        "flush" => FlushArgs::augment_args(Command::new("flush")),
        "getmap" => GetmapArgs::augment_args(Command::new("getmap")),
        // As in `Cmd`: fsck's -h is --human.
        "fsck" => FsckArgs::augment_args(Command::new("fsck").disable_help_flag(true)),
        "logplay" => LogplayArgs::augment_args(Command::new("logplay")),
        _ => return None,
    })
}

/// Parse `args` with only the named subcommand defined; `None` when the command is not one of
/// those, or when the line does not parse (help, version, usage errors: the full parse then
/// says what it says).
pub fn try_quick(args: &[OsString]) -> Option<Famfs> {
    let name = args
        .iter()
        .skip(1)
        .find(|a| !a.to_string_lossy().starts_with('-'))?;
    let sub = subcommand(&name.to_string_lossy())?;
    let matches = Globals::command()
        .subcommand(sub)
        .try_get_matches_from(args)
        .ok()?;
    Famfs::from_arg_matches(&matches).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    /// Every quick parse gives what the full parse gives.
    #[test]
    fn quick_parse_equals_full_parse() {
        let lines: &[&[&str]] = &[
            &["famfs", "creat", "-s", "4k", "/mnt/famfs/a"],
            &[
                "famfs",
                "-vv",
                "creat",
                "-s",
                "4k",
                "-m",
                "0600",
                "/mnt/famfs/a",
            ],
            &[
                "famfs", "creat", "-v", "-r", "-S", "7", "-s", "1m", "-d", "/dev/x", "/a",
            ],
            &["famfs", "creat", "-M", "a,4k", "-M", "b,8k,3", "-t", "2"],
            &[
                "famfs", "creat", "-N", "2", "-B", "4", "-C", "2m", "-s", "64m", "f",
            ],
            &[
                "famfs",
                "mkdir",
                "-p",
                "-u",
                "0",
                "-g",
                "0",
                "/mnt/famfs/d/e",
            ],
            &["famfs", "cp", "-r", "/etc", "/mnt/famfs/etc"],
            &["famfs", "cp", "a", "b", "/mnt/famfs/dir"],
            &["famfs", "verify", "-S", "7", "-f", "/mnt/famfs/a"],
            &["famfs", "flush", "/mnt/famfs/a"],
            &["famfs", "getmap", "/mnt/famfs/a"],
            &["famfs", "fsck", "/dev/dax0.0"],
            &["famfs", "fsck", "-h", "-B", "4", "--json", "/mnt/famfs"],
            &["famfs", "-v", "fsck", "-r", "img"],
            &["famfs", "logplay", "--ls", "-n", "/mnt/famfs"],
            &["famfs", "logplay", "-d", "/dev/dax0.0", "-r"],
        ];
        for l in lines {
            let args = os(l);
            let full = crate::entry::parse_famfs_full(&args)
                .unwrap_or_else(|e| panic!("{l:?}: full parse failed: exit {}", e.code));
            let quick = try_quick(&args).unwrap_or_else(|| panic!("{l:?}: no quick parse"));
            assert_eq!(format!("{quick:?}"), format!("{full:?}"), "{l:?}");
        }
    }

    /// What the quick parse leaves to the full parse: other commands, help, version, errors.
    #[test]
    fn quick_parse_declines() {
        for l in [
            &["famfs", "status"][..],
            &["famfs", "fsck", "--help"],
            &["famfs", "fsck", "-?"],
            &["famfs", "creat", "-h"],
            &["famfs", "creat", "-?"],
            &["famfs", "creat", "--bogus", "a"],
            &["famfs", "creat", "-s", "nonsense", "a"],
            &["famfs", "--version"],
            &["famfs", "-h", "creat"],
            &["famfs", "mkdir"],
            &["famfs"],
        ] {
            assert!(try_quick(&os(l)).is_none(), "{l:?}");
        }
    }
}
