//! `famfs fsck` and `famfs logplay`.

use anyhow::Result;
use famfs_log::FsckReport;

use crate::cli::{FsckArgs, LogplayArgs};
use crate::cmd::classify_dev_or_path;
use crate::error::{count_exit, fail};
use crate::open::{Location, OpenFs, OpenHow, refuse_if_mounted};
use crate::output::{bucket_stats, tree_lines};

/// A read-only open file system the command is done with: the process exits next, and the
/// kernel takes its memory back at once, where freeing a replayed tree node by node (tens of
/// thousands of names and maps) would cost about as much as a tenth of the replay.
fn leave_for_exit(open: OpenFs) {
    std::mem::forget(open);
}

/// `famfs fsck`: exit = allocation collisions (capped at 127).
pub fn fsck(a: FsckArgs, verbose: u8) -> Result<i32> {
    let loc = classify_dev_or_path(&a.path)?;
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
    let open = OpenFs::open(
        &loc,
        OpenHow {
            write: false,
            set_daxmode: a.set_daxmode,
            allow_mounted: true,
        },
    )?;
    if let Location::Mount(root) = &loc {
        println!("famfs fsck:");
        println!("  mount point: {}", root.display());
        println!("  mount type:  FAMFS_FUSE");
    }
    let report = FsckReport::of(&open.fs);
    print!("{}", report.render(a.human, verbose > 0));
    if let Some(n) = a.nbuckets {
        let sb = open.fs.superblock();
        print!("{}", bucket_stats(open.fs.state().bitmap(), sb.dev_size, n));
    }
    leave_for_exit(open);
    Ok(count_exit(report.collisions()))
}

/// `famfs logplay`: exit = entries skipped (capped at 127).
pub fn logplay(a: LogplayArgs) -> Result<i32> {
    let loc = match (&a.device, &a.path) {
        (Some(d), _) => Location::Device(d.clone()),
        (None, Some(p)) => classify_dev_or_path(p)?,
        (None, None) => {
            return Err(fail(
                1,
                "Must specify a device, or a mount point (any path within a mounted famfs will do)",
            ));
        }
    };
    if a.dryrun {
        println!("Logplay: dry_run selected");
    }
    let open = OpenFs::open(
        &loc,
        OpenHow {
            write: false,
            set_daxmode: a.set_daxmode,
            allow_mounted: true,
        },
    )?;
    let st = open.fs.state();
    if a.ls {
        for line in tree_lines(st.namespace()) {
            println!("{line}");
        }
    }
    let stats = st.stats();
    let mode = match loc {
        Location::Device(_) => "device",
        Location::Mount(_) => "fuse",
    };
    println!(
        "famfs_logplay({mode}): {} log entries; {} new files; {} new directories",
        stats.entries, stats.files, stats.dirs
    );
    let problems = stats.bad_entries + stats.skipped;
    for p in st.problems() {
        println!("  skipped {p}");
    }
    let shown = st.problems().len() as u64;
    if problems > shown {
        println!("  ... and {} more skipped entries", problems - shown);
    }
    if problems > 0 {
        println!(
            "famfs_logplay: {problems} errors ({} bad entries, {} skipped for their content)",
            stats.bad_entries, stats.skipped
        );
    }
    leave_for_exit(open);
    Ok(count_exit(problems))
}
