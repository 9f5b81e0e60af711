//! `mount.fuse.famfs`: the mount helper mount(8) runs for file-system type `fuse.famfs`, so
//! that `mount -t fuse.famfs DEV MPT` and `/etc/fstab` lines work. It is this program installed
//! (or linked) under that name, in a directory mount(8) searches (`/sbin`, `/sbin/fs.d`,
//! `/sbin/fs`).
//!
//! mount(8) runs `mount.fuse.famfs DEV MPT [-sfnv] [-o OPTIONS] [-t fuse.famfs]`. The helper
//! mounts as `famfs mount` does. Options mount(8) handles itself or that do not apply (`rw`, `ro`,
//! `defaults`, `noauto`, `nofail`, `_netdev`, `x-*`, ...) are ignored; ours map to `famfs mount`
//! options: `system_uuid=UUID`, `dax=auto|off`, `transport=auto|uring|dev`, `timeout=SECS`,
//! `poll_ms=MS`, `threads=N`, `wait=SECS`, `nouseraccess`, `nodefaultperm`, `set_daxmode`,
//! `debug`. An unknown option is an error (a warning with `-s`). Exit status as mount(8): 0
//! mounted, 1 bad usage, 32 the mount failed.

use std::ffi::OsString;
use std::path::Path;

use crate::cli::{Cmd, Famfs};

/// mount(8)'s exit status for bad usage.
const EX_USAGE: i32 = 1;
/// mount(8)'s exit status for a failed mount.
const EX_FAIL: i32 = 32;

/// Options mount(8) or the kernel's generic mount flags own, or that mean nothing to famfs.
const IGNORED: &[&str] = &[
    "rw",
    "ro",
    "defaults",
    "auto",
    "noauto",
    "nofail",
    "_netdev",
    "user",
    "nouser",
    "users",
    "owner",
    "group",
    "dev",
    "nodev",
    "suid",
    "nosuid",
    "exec",
    "noexec",
    "async",
    "sync",
    "atime",
    "noatime",
    "relatime",
    "norelatime",
    "strictatime",
    "nodiratime",
    "diratime",
    "lazytime",
    "nolazytime",
    "silent",
    "loud",
    "allow_other",
    "default_permissions",
];

/// Prefixes of ignored `name=value` options (`x-systemd.requires=`, `comment=`, ...).
const IGNORED_PREFIXES: &[&str] = &["x-", "comment=", "fsname=", "subtype="];

/// Whether a program invoked as `argv0` is the mount helper (`mount.fuse.famfs`,
/// `mount.famfs`).
pub fn invoked_as_helper(argv0: &std::ffi::OsStr) -> bool {
    Path::new(argv0)
        .file_name()
        .is_some_and(|n| n == "mount.fuse.famfs" || n == "mount.famfs")
}

/// A helper command line, parsed.
#[derive(Debug, PartialEq)]
struct HelperArgs {
    dev: OsString,
    mpt: OsString,
    options: Vec<String>,
    /// `-s`: unknown options are warnings.
    sloppy: bool,
    /// `-f`: check everything, mount nothing.
    fake: bool,
    /// `-v`.
    verbose: bool,
}

fn parse_argv(args: &[OsString]) -> Result<HelperArgs, String> {
    let mut pos = Vec::new();
    let (mut options, mut sloppy, mut fake, mut verbose) = (Vec::new(), false, false, false);
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        match s.as_ref() {
            "-o" => {
                let v = it.next().ok_or("-o needs a value")?;
                options.extend(split_options(&v.to_string_lossy()));
            }
            "-t" => {
                let t = it.next().ok_or("-t needs a value")?.to_string_lossy();
                if t != "fuse.famfs" && t != "famfs" {
                    return Err(format!("type {t}: this helper mounts fuse.famfs"));
                }
            }
            "-n" => {}
            "-s" => sloppy = true,
            "-f" => fake = true,
            "-v" => verbose = true,
            o if o.starts_with("-o") => options.extend(split_options(&o[2..])),
            o if o.starts_with('-') && o.len() > 1 => return Err(format!("unknown option {o}")),
            _ => pos.push(a.clone()),
        }
    }
    let [dev, mpt]: [OsString; 2] = pos
        .try_into()
        .map_err(|_| "usage: mount.fuse.famfs DEV MPT [-sfnv] [-o OPTIONS]".to_string())?;
    Ok(HelperArgs {
        dev,
        mpt,
        options,
        sloppy,
        fake,
        verbose,
    })
}

fn split_options(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(',').filter(|o| !o.is_empty()).map(str::to_string)
}

/// The `famfs mount` flag for a mount option: `Ok(None)` when ignored.
fn flag_for(opt: &str) -> Result<Option<Vec<String>>, String> {
    if IGNORED.contains(&opt) || IGNORED_PREFIXES.iter().any(|p| opt.starts_with(p)) {
        return Ok(None);
    }
    let (name, value) = match opt.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (opt, None),
    };
    let flag = match (name, value) {
        ("system_uuid", Some(_)) => "--system-uuid",
        ("dax", Some(_)) => "--dax",
        ("transport", Some(_)) => "--transport",
        ("timeout", Some(_)) => "--timeout",
        ("poll_ms", Some(_)) => "--poll-ms",
        ("threads", Some(_)) => "--threads",
        ("wait", Some(_)) => "--wait",
        ("nouseraccess", None) => "--nouseraccess",
        ("nodefaultperm", None) => "--nodefaultperm",
        ("set_daxmode", None) => "--set-daxmode",
        ("debug", None) => "--debug",
        _ => return Err(format!("unknown mount option {opt:?}")),
    };
    let mut v = vec![flag.to_string()];
    v.extend(value.map(str::to_string));
    Ok(Some(v))
}

/// The `famfs mount` command line for a helper command line.
fn famfs_argv(h: &HelperArgs) -> Result<Vec<OsString>, String> {
    let mut v: Vec<OsString> = vec!["famfs".into()];
    if h.verbose {
        v.push("-v".into());
    }
    v.push("mount".into());
    for o in &h.options {
        match flag_for(o) {
            Ok(Some(flags)) => v.extend(flags.into_iter().map(OsString::from)),
            Ok(None) => {}
            Err(e) if h.sloppy => eprintln!("mount.fuse.famfs: {e} ignored"),
            Err(e) => return Err(e),
        }
    }
    v.push(h.dev.clone());
    v.push(h.mpt.clone());
    Ok(v)
}

/// Entry point of `mount.fuse.famfs`; returns the exit status.
pub fn main(args: Vec<OsString>) -> i32 {
    let parsed = parse_argv(&args).and_then(|h| {
        let argv = famfs_argv(&h)?;
        let cli = crate::entry::parse_famfs(&argv).map_err(|e| {
            e.print();
            "bad options".to_string()
        })?;
        Ok((h, cli))
    });
    let (h, cli) = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mount.fuse.famfs: {e}");
            return EX_USAGE;
        }
    };
    if h.fake {
        return 0;
    }
    crate::entry::init_logging(cli.verbose);
    let Famfs {
        cmd: Cmd::Mount(a),
        verbose,
        ..
    } = cli
    else {
        return EX_USAGE;
    };
    match super::mount(a, verbose) {
        Ok(0) => 0,
        Ok(_) => EX_FAIL,
        Err(e) => {
            eprintln!("mount.fuse.famfs: {e:#}");
            EX_FAIL
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
    fn names_it_answers_to() {
        assert!(invoked_as_helper("/sbin/mount.fuse.famfs".as_ref()));
        assert!(invoked_as_helper("mount.famfs".as_ref()));
        assert!(!invoked_as_helper("/usr/bin/famfs".as_ref()));
        assert!(!invoked_as_helper("mount.fuse".as_ref()));
    }

    #[test]
    fn fstab_options_map_to_famfs_mount() {
        let h = parse_argv(&os(&[
            "/sbin/mount.fuse.famfs",
            "/dev/dax0.0",
            "/mnt/famfs",
            "-n",
            "-o",
            "rw,noauto,nofail,_netdev,x-systemd.requires=dax.service,system_uuid=0b5e1f2c-33c4-4c1e-9f0e-6f2d3c4b5a69,dax=off",
            "-otransport=dev,nouseraccess",
            "-t",
            "fuse.famfs",
        ]))
        .unwrap();
        assert!(!h.sloppy && !h.fake && !h.verbose);
        let argv: Vec<String> = famfs_argv(&h)
            .unwrap()
            .into_iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            argv,
            [
                "famfs",
                "mount",
                "--system-uuid",
                "0b5e1f2c-33c4-4c1e-9f0e-6f2d3c4b5a69",
                "--dax",
                "off",
                "--transport",
                "dev",
                "--nouseraccess",
                "/dev/dax0.0",
                "/mnt/famfs"
            ]
        );
        let cli = crate::entry::parse_famfs(&famfs_argv(&h).unwrap()).unwrap();
        let Cmd::Mount(a) = cli.cmd else { panic!() };
        assert_eq!(a.transport.as_deref(), Some("dev"));
        assert!(a.system_uuid.is_some() && a.nouseraccess && !a.foreground);
    }

    #[test]
    fn unknown_options_and_bad_usage() {
        let h = parse_argv(&os(&["m", "d", "p", "-o", "bogus=1"])).unwrap();
        assert!(famfs_argv(&h).unwrap_err().contains("bogus"));
        let h = parse_argv(&os(&["m", "-s", "d", "p", "-o", "bogus=1"])).unwrap();
        assert_eq!(famfs_argv(&h).unwrap().len(), 4, "sloppy: ignored");
        assert!(parse_argv(&os(&["m", "d"])).is_err());
        assert!(parse_argv(&os(&["m", "d", "p", "-t", "ext4"])).is_err());
        assert!(parse_argv(&os(&["m", "d", "p", "-x"])).is_err());
        assert_eq!(main(os(&["m", "-f", "d", "p", "-o", "dax=off"])), 0, "fake");
        assert_eq!(main(os(&["m", "d", "p", "-o", "dax=sometimes"])), EX_USAGE);
    }
}
