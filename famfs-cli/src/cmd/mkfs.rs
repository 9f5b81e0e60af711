//! `mkfs.famfs`.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::Result;
use famfs_fsdev::{Access, DaxDevice, Media};
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
    // Temporary mounts of famfs-mode devices end with the command.
    let _cleanup = crate::dummy::Cleanup;
    let through_mount = crate::dummy::applies(&dev, a.set_daxmode);
    if !through_mount {
        check_daxmode(&dev, a.set_daxmode)?;
    }
    refuse_if_mounted(&dev, "mkfs")?;
    let access = if through_mount {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    let d =
        DaxDevice::open(&dev, access).map_err(|e| fail(2, format!("{}: {e}", dev.display())))?;
    let kill = a.kill && a.force;
    if !kill {
        check_log_len(log_len, d.size()).map_err(|e| fail(2, format!("Error: {e}")))?;
    }
    let mut opts = MkfsOptions::new(
        system_uuid_for_writing()?,
        dev.as_os_str().as_bytes().to_vec(),
    );
    opts.log_len = log_len;
    opts.force = a.force;
    opts.kill = kill;
    if through_mount {
        // Never map a famfs-mode device: write through the meta files of a temporary mount in
        // formatting mode (a killed superblock needs only the superblock file, any log does).
        let len = if kill {
            log_len.min(d.size().saturating_sub(LOG_OFFSET))
        } else {
            log_len
        };
        let mpt = crate::dummy::mount(&dev, crate::dummy::Purpose::Format(len))?;
        let media = crate::dummy::MetaMedia::open(&mpt, true)
            .map_err(|e| fail(2, format!("{}: {e}", mpt.display())))?;
        return format(&dev, &media, d.size(), &opts);
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
    format(&dev, &map, d.size(), &opts)
}

/// Write the new file system (or kill the superblock) on `media`, which holds the superblock
/// region and the log at their device offsets of a device of `dev_size` bytes; then read it
/// back and print it.
fn format(dev: &Path, media: &dyn Media, dev_size: u64, opts: &MkfsOptions) -> Result<i32> {
    match mkfs(media, dev_size, opts).map_err(|e| fail(2, e.to_string()))? {
        MkfsOutcome::Killed => {
            println!("Famfs superblock killed on {}", dev.display());
        }
        MkfsOutcome::Formatted(sb) => {
            println!("devsize: {}", sb.dev_size);
            let fs = Famfs::open_device(
                media,
                OpenOptions {
                    system_uuid: Some(opts.system_uuid),
                    device_size: Some(dev_size),
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
