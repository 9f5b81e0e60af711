//! `mkfs.famfs`.

use std::os::unix::ffi::OsStrExt;

use anyhow::Result;
use famfs_fsdev::{Access, DaxDevice};
use famfs_log::layout::{DEFAULT_LOG_LEN, LOG_OFFSET};
use famfs_log::{
    Famfs, FsckReport, MkfsOptions, MkfsOutcome, OpenOptions, ReplayMode, check_log_len, mkfs,
};

use crate::cli::Mkfs;
use crate::error::fail;
use crate::open::{check_daxmode, refuse_if_mounted, system_uuid_for_writing};

/// Run `mkfs.famfs`; exit 0 success, 1 usage, 2 failure.
pub fn run(a: Mkfs) -> Result<i32> {
    let Some(dev) = a.dev else {
        eprintln!("mkfs.famfs: must specify memory device");
        eprintln!(
            "usage: mkfs.famfs [-f] [-k] [-l LOGLEN] [-M] DEV   (mkfs.famfs --help for more)"
        );
        return Ok(1);
    };
    if std::fs::metadata(&dev).is_err() {
        return Err(fail(
            2,
            format!("{}: no such device or file", dev.display()),
        ));
    }
    if a.kill && !a.force {
        eprintln!("mkfs.famfs: -k has no effect without -f; making a file system");
    }
    let log_len = a.loglen.unwrap_or(DEFAULT_LOG_LEN);
    if let Some(l) = a.loglen {
        println!("loglen: {l}");
    }
    check_daxmode(&dev, a.set_daxmode)?;
    refuse_if_mounted(&dev, "mkfs")?;
    let d = DaxDevice::open(&dev, Access::ReadWrite)
        .map_err(|e| fail(2, format!("{}: {e}", dev.display())))?;
    let kill = a.kill && a.force;
    if !kill {
        check_log_len(log_len, d.size()).map_err(|e| fail(2, format!("Error: {e}")))?;
    }
    let span = if kill {
        LOG_OFFSET
    } else {
        LOG_OFFSET + log_len
    };
    let span = span.div_ceil(d.align()) * d.align();
    let map = d
        .map(0, span.min(d.size()))
        .map_err(|e| fail(2, format!("{}: {e}", dev.display())))?;
    let me = system_uuid_for_writing()?;
    let mut opts = MkfsOptions::new(me, dev.as_os_str().as_bytes().to_vec());
    opts.log_len = log_len;
    opts.force = a.force;
    opts.kill = kill;
    match mkfs(&map, d.size(), &opts).map_err(|e| fail(2, e.to_string()))? {
        MkfsOutcome::Killed => {
            println!("Famfs superblock killed on {}", dev.display());
        }
        MkfsOutcome::Formatted(sb) => {
            println!("devsize: {}", sb.dev_size);
            let fs = Famfs::open_device(
                &map,
                OpenOptions {
                    system_uuid: Some(me),
                    device_size: Some(d.size()),
                    replay: ReplayMode::Lenient,
                    ..Default::default()
                },
            )
            .map_err(|e| {
                fail(
                    2,
                    format!(
                        "{}: the new file system does not read back: {e}",
                        dev.display()
                    ),
                )
            })?;
            print!("{}", FsckReport::of(&fs).render(true, false));
        }
    }
    Ok(0)
}
