//! How `fsck` and `logplay` read the superblock and the log: the reference's `-r` (read(2)) and
//! `-m` (mmap) options, for a device or stand-in file and for the meta files of a mount.

use std::path::Path;

use anyhow::Result;
use famfs_fsdev::{FileMedia, Mapping, Media};
use famfs_log::superblock::Superblock;
use famfs_log::{Famfs, OffsetMedia, OpenOptions, ReplayMode};

use crate::error::fail;
use crate::open::{
    Location, OpenFs, OpenHow, check_daxmode, refuse_if_mounted, system_uuid_for_reading,
};

/// How the metadata is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaAccess {
    /// The default: a device is mapped, a mount's meta files are read with read(2) (coherent
    /// with what other hosts append; a mapping through FUSE could serve stale pages).
    Default,
    /// `-r`: read(2) (pread) of the device file or the meta files.
    Read,
    /// `-m`: mmap of the device or the meta files.
    Mmap,
}

impl MetaAccess {
    /// From the `-r` and `-m` flags; both at once is a usage error (`usage_code`), as in the
    /// reference.
    pub fn from_flags(read: bool, mmap: bool, usage_code: i32) -> Result<MetaAccess> {
        match (read, mmap) {
            (true, true) => Err(fail(
                usage_code,
                "-r (read) and -m (mmap) are mutually exclusive",
            )),
            (true, false) => Ok(MetaAccess::Read),
            (false, true) => Ok(MetaAccess::Mmap),
            (false, false) => Ok(MetaAccess::Default),
        }
    }
}

/// A whole file mapped read-only (the `-m` path for a mount's meta files).
fn mapped_file(path: &Path) -> Result<Mapping> {
    let file = std::fs::File::open(path).map_err(|e| {
        fail(
            e.raw_os_error().unwrap_or(libc::EIO),
            format!("{}: {e}", path.display()),
        )
    })?;
    Mapping::of_file(&file, path).map_err(|e| fail(e.errno(), format!("{}: {e}", path.display())))
}

fn no_famfs(what: &str, e: famfs_log::LogError) -> anyhow::Error {
    fail(
        e.errno(),
        format!("{what}: no valid famfs file system: {e}"),
    )
}

/// The superblock at the start of `media`.
fn read_superblock(what: &str, media: &dyn Media) -> Result<Superblock> {
    Superblock::read(media).map_err(|e| match e {
        famfs_log::LogError::Superblock(_) => no_famfs(what, e),
        e => fail(e.errno(), format!("{what}: {e}")),
    })
}

/// Replay the log (leniently, as fsck does) from a superblock and a log media.
fn replay(
    what: &str,
    sb: Superblock,
    log: Box<dyn Media>,
    device_size: Option<u64>,
) -> Result<Famfs<Box<dyn Media>>> {
    let opts = OpenOptions {
        system_uuid: system_uuid_for_reading(),
        device_size,
        replay: ReplayMode::Lenient,
        ..Default::default()
    };
    Famfs::open(sb, log, opts).map_err(|e| match e {
        famfs_log::LogError::Superblock(_) | famfs_log::LogError::LogHeader(_) => no_famfs(what, e),
        e => fail(e.errno(), format!("{what}: {e}")),
    })
}

/// Read a device or stand-in file with pread (`-r`): a dax character device cannot be read(2).
fn device_by_read(dev: &Path, set_daxmode: bool) -> Result<Famfs<Box<dyn Media>>> {
    use std::os::unix::fs::FileTypeExt;
    let what = dev.display().to_string();
    let meta = std::fs::metadata(dev).map_err(|e| {
        fail(
            e.raw_os_error().unwrap_or(libc::ENOENT),
            format!("{what}: {e}"),
        )
    })?;
    if meta.file_type().is_char_device() {
        check_daxmode(dev, set_daxmode)?;
        return Err(fail(
            libc::EINVAL,
            format!(
                "{what}: a dax device cannot be read with read(2); leave out -r (it is mapped)"
            ),
        ));
    }
    let file = FileMedia::open(dev, false).map_err(|e| fail(e.errno(), format!("{what}: {e}")))?;
    let size = file.size();
    let sb = read_superblock(&what, &file)?;
    let log_len = sb.log_len.min(size.saturating_sub(sb.log_offset));
    let file: Box<dyn Media> = Box::new(file);
    let log =
        OffsetMedia::new(file, sb.log_offset, log_len).map_err(|e| no_famfs(&what, e.into()))?;
    replay(&what, sb, Box::new(log), Some(size))
}

/// Open the file system at `loc` for checking (read only; bad entries are counted and skipped).
/// A device must not be mounted unless `allow_mounted`.
pub fn open_for_check(
    loc: &Location,
    set_daxmode: bool,
    allow_mounted: bool,
    access: MetaAccess,
) -> Result<Famfs<Box<dyn Media>>> {
    let how = OpenHow {
        write: false,
        set_daxmode,
        allow_mounted,
    };
    match (loc, access) {
        (Location::Device(dev), MetaAccess::Read) => {
            if !allow_mounted {
                refuse_if_mounted(dev, "read")?;
            }
            device_by_read(dev, set_daxmode)
        }
        (Location::Mount(root), MetaAccess::Mmap) => {
            let what = root.display().to_string();
            let sb = read_superblock(&what, &mapped_file(&root.join(".meta/.superblock"))?)?;
            let log = mapped_file(&root.join(".meta/.log"))?;
            replay(&what, sb, Box::new(log), None)
        }
        _ => Ok(OpenFs::open(loc, how)?.fs),
    }
}
