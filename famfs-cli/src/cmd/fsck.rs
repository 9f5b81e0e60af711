//! `famfs fsck` and `famfs logplay`.

use anyhow::Result;
use famfs_fsdev::Media;
use famfs_log::role::Role;
use famfs_log::{Famfs, FsckReport};

use crate::cli::{FsckArgs, LogplayArgs};
use crate::cmd::classify_dev_or_path;
use crate::cmd::meta::{MetaAccess, open_for_check};
use crate::cmd::stale::{stale_message, stale_mount_of_device};
use crate::error::{count_exit, exit_code_of, fail};
use crate::json::{FsckJson, LocationJson, LogplayJson, ProblemJson, tree_json};
use crate::open::{Location, refuse_if_mounted};
use crate::output::{bucket_stats, tree_lines_with};

/// fsck's exit status for `n` allocation collisions (1..=[`FSCK_MAX_COLLISIONS`]).
pub const FSCK_MAX_COLLISIONS: u64 = 100;
/// No collisions, but entries were skipped.
pub const FSCK_SKIPPED: i32 = 101;
/// Usage error.
pub const FSCK_USAGE: i32 = 102;
/// DEV|PATH does not exist.
pub const FSCK_NOT_FOUND: i32 = 103;
/// DEV is mounted.
pub const FSCK_MOUNTED: i32 = 104;
/// No valid famfs on DEV|PATH.
pub const FSCK_NO_FAMFS: i32 = 105;
/// Cannot check for another reason.
pub const FSCK_CANNOT_CHECK: i32 = 106;

/// The exit status of a report: the collision count (1..=100), else 101 if entries were
/// skipped, else 0. See [`crate::cli::FSCK_EXIT_HELP`].
pub fn fsck_exit(r: &FsckReport) -> i32 {
    if r.collisions() > 0 {
        r.collisions().min(FSCK_MAX_COLLISIONS) as i32
    } else if r.skipped() > 0 {
        FSCK_SKIPPED
    } else {
        0
    }
}

/// fsck's exit status for an error that stopped it before a report (by the errno it carries).
fn fsck_error_code(e: &anyhow::Error) -> i32 {
    match exit_code_of(e) {
        libc::ENOENT => FSCK_NOT_FOUND,
        libc::EBUSY => FSCK_MOUNTED,
        libc::EUCLEAN => FSCK_NO_FAMFS,
        _ => FSCK_CANNOT_CHECK,
    }
}

/// Open the file system fsck checks; errors carry fsck's own exit codes.
fn open_checked(a: &FsckArgs) -> Result<(Location, Famfs<Box<dyn Media>>)> {
    let access = MetaAccess::from_flags(a.read, a.mmap, FSCK_USAGE)?;
    let opened = (|| {
        let loc = classify_dev_or_path(&a.path)?;
        if let Location::Device(dev) = &loc
            && let Some(mpt) = stale_mount_of_device(dev)
        {
            return Err(fail(libc::ENOTCONN, stale_message(&mpt)));
        }
        if let Location::Device(dev) = &loc
            && !a.force
        {
            refuse_if_mounted(dev, "fsck by device").map_err(|e| {
                fail(
                    libc::EBUSY,
                    format!("{e:#} (or use --force to check it anyway)"),
                )
            })?;
        }
        // A famfs-mode device is read through a temporary mount; the report names the device.
        let read = crate::dummy::read_location(&loc, a.set_daxmode)?;
        let fs = open_for_check(&read, a.set_daxmode, true, access)?;
        Ok((loc, fs))
    })();
    opened.map_err(|e: anyhow::Error| fail(fsck_error_code(&e), format!("{e:#}")))
}

/// `famfs fsck`: the reference's report; exit status per [`crate::cli::FSCK_EXIT_HELP`].
pub fn fsck(a: FsckArgs, verbose: u8) -> Result<i32> {
    let (loc, fs) = open_checked(&a)?;
    let report = FsckReport::of(&fs);
    let code = fsck_exit(&report);
    if a.json {
        crate::json::print(&FsckJson::of(&loc, &report, code))?;
        return Ok(code);
    }
    if let Location::Mount(root) = &loc {
        println!("famfs fsck:");
        println!("  mount point: {}", root.display());
        println!("  mount type:  FAMFS_FUSE");
    }
    print!("{}", report.render(a.human, verbose > 0));
    if let Some(n) = a.nbuckets {
        let sb = fs.superblock();
        print!("{}", bucket_stats(fs.state().bitmap(), sb.dev_size, n));
    }
    leave_for_exit(fs);
    Ok(code)
}

/// A file system the command is done with (it only read it): the process exits next, and the
/// kernel takes its memory back at once, where freeing a replayed tree node by node (tens of
/// thousands of names and maps) would cost a good part of what the replay did.
/// Read through a temporary mount, though, its meta files must be closed before the mount can
/// be unmounted: then it is dropped.
fn leave_for_exit(fs: Famfs<Box<dyn Media>>) {
    if crate::dummy::any_active() {
        drop(fs);
    } else {
        std::mem::forget(fs);
    }
}

/// logplay's exit status for an error before the replay: 2 if DEV|PATH does not exist, else 1
/// (so that no errno can be read as a count of skipped entries beyond those two).
fn logplay_error(e: anyhow::Error) -> anyhow::Error {
    let code = if exit_code_of(&e) == libc::ENOENT {
        libc::ENOENT
    } else {
        1
    };
    fail(code, format!("{e:#}"))
}

/// `famfs logplay`: exit = entries skipped (capped at 127).
pub fn logplay(a: LogplayArgs) -> Result<i32> {
    let access = MetaAccess::from_flags(a.read, a.mmap, 1)?;
    let loc = match (&a.device, &a.path) {
        (Some(d), _) => Location::Device(d.clone()),
        (None, Some(p)) => classify_dev_or_path(p).map_err(logplay_error)?,
        (None, None) => {
            return Err(fail(
                1,
                "Must specify a device, or a mount point (any path within a mounted famfs will do)",
            ));
        }
    };
    if a.dryrun && !a.json {
        println!("Logplay: dry_run selected");
    }
    let fs = crate::dummy::read_location(&loc, a.set_daxmode)
        .and_then(|read| open_for_check(&read, a.set_daxmode, true, access))
        .map_err(logplay_error)?;
    let client = a.client || fs.role() != Role::Master;
    let mode_of = |m: u32| if client { m & !0o222 } else { m };
    let st = fs.state();
    let stats = st.stats();
    let problems = stats.bad_entries + stats.skipped;
    let shown = st.problems().len() as u64;
    if a.json {
        crate::json::print(&LogplayJson {
            location: LocationJson::of(&loc),
            client,
            entries: stats.entries,
            files: stats.files,
            directories: stats.dirs,
            bad_entries: stats.bad_entries,
            skipped_entries: stats.skipped,
            problems: st.problems().iter().map(ProblemJson::of).collect(),
            problems_omitted: problems.saturating_sub(shown),
            tree: a.ls.then(|| tree_json(st.namespace(), mode_of)),
        })?;
        return Ok(count_exit(problems));
    }
    if a.ls {
        for line in tree_lines_with(st.namespace(), mode_of) {
            println!("{line}");
        }
    }
    let mode = match loc {
        Location::Device(_) => "device",
        Location::Mount(_) => "fuse",
    };
    println!(
        "famfs_logplay({mode}): {} log entries; {} new files; {} new directories",
        stats.entries, stats.files, stats.dirs
    );
    for p in st.problems() {
        println!("  skipped {p}");
    }
    if problems > shown {
        println!("  ... and {} more skipped entries", problems - shown);
    }
    if problems > 0 {
        println!(
            "famfs_logplay: {problems} errors ({} bad entries, {} skipped for their content)",
            stats.bad_entries, stats.skipped
        );
    }
    leave_for_exit(fs);
    Ok(count_exit(problems))
}
