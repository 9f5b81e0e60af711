//! Opening a famfs: offline on an unmounted device (or stand-in file), or through the meta files
//! of a mounted famfs; and reaching a file's bytes either way.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use daxctl_famfs::DaxMode;
use famfs_fsdev::{Access, DaxDevice, FileMedia, FileView, FsdevError, Mapping, Media};
use famfs_log::namespace::{FileNode, Ino, Node};
use famfs_log::superblock::Superblock;
use famfs_log::{Famfs, LogError, OpenOptions, ReplayMode};
use uuid::Uuid;

use crate::error::fail;
use crate::mounts;
use crate::paths::display_rel;

/// This host's system UUID for a command that writes (an error names the ways to set it).
pub fn system_uuid_for_writing() -> Result<Uuid> {
    famfs_log::role::system_uuid().context(
        "cannot determine this host's system UUID (set FAMFS_SYSTEM_UUID to a UUID, or \
         FAMFS_SYSTEM_UUID_FILE to a file holding one)",
    )
}

/// This host's system UUID for display and role checks; `None` (a client) if unknown.
pub fn system_uuid_for_reading() -> Option<Uuid> {
    match famfs_log::role::system_uuid() {
        Ok(u) => Some(u),
        Err(e) => {
            tracing::info!("no system UUID ({e}); acting as a client");
            None
        }
    }
}

/// Check (or with `set`, switch) the mode of a dax character device. Our tools map the raw
/// device, which only devdax mode allows. Regular files (stand-ins) need no mode.
pub fn check_daxmode(path: &Path, set: bool) -> Result<()> {
    check_daxmode_with(&daxctl_famfs::Sysfs::from_env(), path, set)
}

/// [`check_daxmode`] against a given sysfs view.
pub fn check_daxmode_with(sysfs: &daxctl_famfs::Sysfs, path: &Path, set: bool) -> Result<()> {
    match sysfs.check_or_set_mode(path, DaxMode::Devdax, set) {
        Ok(daxctl_famfs::ModeCheck::Switched { dev, from }) => {
            eprintln!("famfs: switched {} from {from} to devdax mode", dev.name);
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) => {
            let code = e.errno().unwrap_or(libc::EIO);
            Err(fail(
                if code == libc::EPERM { 1 } else { code },
                format!("{}: {e}", path.display()),
            ))
        }
    }
}

/// Make device-open errors readable: permission problems say what is needed.
fn device_error(path: &Path, e: FsdevError) -> anyhow::Error {
    match e.errno() {
        libc::EACCES | libc::EPERM => fail(
            libc::EACCES,
            format!(
                "{}: permission denied ({e}); a dax device needs root or membership in its group, \
                 a stand-in file needs read (and for writing, write) permission",
                path.display()
            ),
        ),
        libc::ENOENT => fail(
            libc::ENOENT,
            format!("{}: no such device or file", path.display()),
        ),
        code => fail(code, e.to_string()),
    }
}

/// Refuse an offline operation on a device that is mounted (EBUSY, exit 16).
pub fn refuse_if_mounted(device: &Path, what: &str) -> Result<()> {
    let table = mounts::read_mounts();
    if let Some(m) = mounts::mounts_of_device(&table, device).first() {
        return Err(fail(
            libc::EBUSY,
            format!(
                "cannot {what} {} while it is mounted on {}; use paths under the mount point, \
                 or unmount it first",
                device.display(),
                m.target.display()
            ),
        ));
    }
    Ok(())
}

/// Environment variable choosing how data of a stand-in file is moved: `mmap` forces the
/// device mapping (the path a dax device always takes; for tests), `file` (default) uses
/// pread/pwrite on the stand-in file.
pub const DATA_VIA_ENV: &str = "FAMFS_DATA_VIA";

fn force_mmap() -> bool {
    std::env::var(DATA_VIA_ENV).is_ok_and(|v| v == "mmap")
}

/// Where an open file system lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// Offline, on this device or stand-in file.
    Device(PathBuf),
    /// Mounted at this directory.
    Mount(PathBuf),
}

impl Location {
    /// For messages: `device X` or `mount X`.
    pub fn describe(&self) -> String {
        match self {
            Location::Device(p) => format!("device {}", p.display()),
            Location::Mount(p) => format!("mount {}", p.display()),
        }
    }
}

/// How file bytes are reached.
#[derive(Debug)]
pub enum Data {
    /// Through a shared mapping of the whole device.
    Device {
        /// The mapping (all of the device).
        map: Arc<Mapping>,
        /// Bulk data moves with pread/pwrite on the device file instead of through the mapping:
        /// set for stand-in regular files, whose bytes live in this host's page cache (coherent
        /// for every process and VM sharing the file; no page faults, no cache flushes needed).
        /// A dax device is always accessed through the mapping, and flushed.
        via_file: bool,
    },
    /// Through the files of the mount.
    Mount(PathBuf),
}

/// An open famfs.
pub struct OpenFs {
    /// The file system (log replayed).
    pub fs: Famfs<Box<dyn Media>>,
    /// Access to file bytes.
    pub data: Data,
    /// Where it is.
    pub location: Location,
}

/// How to open.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenHow {
    /// Open for appending to the log and writing file data.
    pub write: bool,
    /// Switch a dax device to devdax mode if needed (`--set-daxmode`).
    pub set_daxmode: bool,
    /// Allow opening a device that is mounted (read-only uses such as `fsck --force`).
    pub allow_mounted: bool,
}

fn open_options(write: bool, device_size: Option<u64>) -> Result<OpenOptions> {
    let system_uuid = if write {
        Some(system_uuid_for_writing()?)
    } else {
        system_uuid_for_reading()
    };
    Ok(OpenOptions {
        system_uuid,
        device_size,
        replay: ReplayMode::Lenient,
        ..Default::default()
    })
}

fn open_log_error(what: &str, e: LogError) -> anyhow::Error {
    let code = e.errno();
    let msg = match &e {
        LogError::Superblock(_) | LogError::LogHeader(_) => {
            format!("{what}: no valid famfs file system: {e}")
        }
        _ => format!("{what}: {e}"),
    };
    fail(code, msg)
}

impl OpenFs {
    /// Open the famfs on an unmounted device or stand-in file.
    pub fn device(path: &Path, how: OpenHow) -> Result<OpenFs> {
        if let Err(e) = std::fs::metadata(path) {
            return Err(fail(
                e.raw_os_error().unwrap_or(libc::ENOENT),
                format!("{}: {e}", path.display()),
            ));
        }
        check_daxmode(path, how.set_daxmode)?;
        if !how.allow_mounted {
            refuse_if_mounted(path, if how.write { "modify" } else { "read" })?;
        }
        let access = if how.write {
            Access::ReadWrite
        } else {
            Access::ReadOnly
        };
        let dev = DaxDevice::open(path, access).map_err(|e| device_error(path, e))?;
        let via_file = matches!(dev.kind(), famfs_fsdev::DeviceKind::File) && !force_mmap();
        let map = Arc::new(dev.map_all().map_err(|e| device_error(path, e))?);
        let opts = open_options(how.write, Some(dev.size()))?;
        let fs = Famfs::open_device(Arc::clone(&map), opts)
            .map_err(|e| open_log_error(&path.display().to_string(), e))?;
        Ok(OpenFs {
            fs: fs.into_dyn(),
            data: Data::Device { map, via_file },
            location: Location::Device(path.to_path_buf()),
        })
    }

    /// Open the famfs mounted at `root` through its meta files.
    pub fn mounted(root: &Path, how: OpenHow) -> Result<OpenFs> {
        let what = root.display().to_string();
        let sb_path = root.join(".meta/.superblock");
        let log_path = root.join(".meta/.log");
        let sb_io_error = |e: FsdevError| fail(e.errno(), format!("{}: {e}", sb_path.display()));
        let sbm = FileMedia::open(&sb_path, false).map_err(sb_io_error)?;
        // A superblock that cannot be read is reported now; one that does not check out, once
        // the log is open (as Famfs::open would).
        let sb = match Superblock::read(&sbm) {
            Err(LogError::Media(e)) => return Err(sb_io_error(e)),
            sb => sb.map_err(|e| open_log_error(&what, e)),
        };
        let log = match FileMedia::open(&log_path, how.write) {
            Ok(l) => l,
            Err(e)
                if how.write && matches!(e.errno(), libc::EACCES | libc::EPERM | libc::EROFS) =>
            {
                // Say "not the master" rather than "permission denied" when that is the cause.
                let sb = sb?;
                let me = system_uuid_for_writing()?;
                if sb.system_uuid != me {
                    return Err(LogError::NotMaster {
                        local: me.to_string(),
                        owner: sb.system_uuid,
                    }
                    .into());
                }
                return Err(fail(e.errno(), format!("{}: {e}", log_path.display())));
            }
            Err(e) => return Err(fail(e.errno(), format!("{}: {e}", log_path.display()))),
        };
        let opts = open_options(how.write, None)?;
        let fs = Famfs::open(sb?, Box::new(log) as Box<dyn Media>, opts)
            .map_err(|e| open_log_error(&what, e))?;
        Ok(OpenFs {
            fs,
            data: Data::Mount(root.to_path_buf()),
            location: Location::Mount(root.to_path_buf()),
        })
    }

    /// Open whatever `loc` names.
    pub fn open(loc: &Location, how: OpenHow) -> Result<OpenFs> {
        match loc {
            Location::Device(p) => Self::device(p, how),
            Location::Mount(p) => Self::mounted(p, how),
        }
    }
}

/// Look up `rel` in the tree: its inode and node, or `None` if it does not exist. A file in the
/// middle of the path is an error (ENOTDIR).
pub fn lookup<'a>(fs: &'a Famfs<Box<dyn Media>>, rel: &Path) -> Result<Option<(Ino, &'a Node)>> {
    use std::os::unix::ffi::OsStrExt;
    let ns = fs.state().namespace();
    match ns.resolve(rel.as_os_str().as_bytes()) {
        Ok(ino) => Ok(ns.get(ino).map(|n| (ino, n))),
        Err(famfs_log::namespace::NsError::Missing(_)) => Ok(None),
        Err(e) => Err(fail(libc::ENOTDIR, format!("{}: {e}", display_rel(rel)))),
    }
}

impl Data {
    /// The bytes of file `rel` (whose log node is `node`), for reading or also writing.
    pub fn file(&self, rel: &Path, node: &FileNode, write: bool) -> Result<FileData> {
        match self {
            Data::Device { map, via_file } => {
                let view = FileView::new(Arc::clone(map), &node.fmap)
                    .map_err(|e| fail(e.errno(), format!("{}: {e}", display_rel(rel))))?;
                Ok(FileData::View {
                    view,
                    via_file: *via_file,
                })
            }
            Data::Mount(root) => {
                let path = root.join(rel);
                let file = open_in_mount(&path, write)?;
                let size = file
                    .metadata()
                    .with_context(|| format!("stat {}", path.display()))?
                    .len();
                if size != node.size {
                    return Err(fail(
                        libc::EIO,
                        format!(
                            "{}: the mount shows {size} bytes but the log says {}",
                            path.display(),
                            node.size
                        ),
                    ));
                }
                Ok(FileData::Host { file, path, size })
            }
        }
    }
}

/// Open a file in a mount, allowing the daemon a moment to pick up an entry just appended.
fn open_in_mount(path: &Path, write: bool) -> Result<File> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .open(path)
        {
            Ok(f) => return Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(fail(
                    e.raw_os_error().unwrap_or(libc::EIO),
                    format!("open {}: {e}", path.display()),
                ));
            }
        }
    }
}

/// A famfs file's bytes.
#[derive(Debug)]
pub enum FileData {
    /// Through the device (offline): its file map on the device mapping.
    View {
        /// The file's bytes on the mapping.
        view: FileView,
        /// Move bulk data with pread/pwrite on the device file (see [`Data::Device`]).
        via_file: bool,
    },
    /// Through the mounted file.
    Host {
        /// The open file.
        file: File,
        /// Its path.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
}

/// Run `io(device file, device offset, buffer range)` for each device piece of file range
/// `[off, off + len)` (pread/pwrite on the stand-in instead of touching its mapping); returns the
/// bytes covered.
fn on_device_file(
    view: &FileView<Arc<Mapping>>,
    off: u64,
    len: usize,
    what: &str,
    mut io: impl FnMut(&File, u64, std::ops::Range<usize>) -> std::io::Result<()>,
) -> Result<usize> {
    let map = view.mapping();
    let mut done = 0usize;
    for seg in view.segments(off, len as u64) {
        let n = seg.len as usize;
        io(
            map.file(),
            map.device_offset() + seg.map_offset,
            done..done + n,
        )
        .with_context(|| format!("{what} {}", map.path().display()))?;
        done += n;
    }
    Ok(done)
}

impl FileData {
    /// File size.
    pub fn size(&self) -> u64 {
        match self {
            FileData::View { view, .. } => view.size(),
            FileData::Host { size, .. } => *size,
        }
    }

    /// Write all of `data` at `off` (which must stay inside the file).
    pub fn write_at(&self, off: u64, data: &[u8]) -> Result<()> {
        if off
            .checked_add(data.len() as u64)
            .is_none_or(|e| e > self.size())
        {
            anyhow::bail!(
                "write of {} bytes at {off} is past the end of the file",
                data.len()
            );
        }
        match self {
            FileData::View {
                view,
                via_file: false,
            } => {
                view.write_at(off, data)?;
            }
            FileData::View {
                view,
                via_file: true,
            } => {
                on_device_file(view, off, data.len(), "write", |f, at, r| {
                    f.write_all_at(&data[r], at)
                })?;
            }
            FileData::Host { file, path, .. } => file
                .write_all_at(data, off)
                .with_context(|| format!("write {}", path.display()))?,
        }
        Ok(())
    }

    /// Read up to `buf.len()` bytes at `off`; returns how many (short only at the end).
    pub fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        match self {
            FileData::View {
                view,
                via_file: false,
            } => Ok(view.read_at(off, buf)?),
            FileData::View {
                view,
                via_file: true,
            } => on_device_file(view, off, buf.len(), "read", |f, at, r| {
                f.read_exact_at(&mut buf[r], at)
            }),
            FileData::Host { file, path, size } => {
                let want = (*size).saturating_sub(off).min(buf.len() as u64) as usize;
                file.read_exact_at(&mut buf[..want], off)
                    .with_context(|| format!("read {}", path.display()))?;
                Ok(want)
            }
        }
    }

    /// Make written bytes visible to other hosts (cache write-back on the device; `fsync`-free
    /// for a mount, whose server owns the memory).
    pub fn flush(&self, off: u64, len: u64) -> Result<()> {
        if let FileData::View {
            view,
            via_file: false,
        } = self
        {
            view.flush(off, len)?;
        }
        Ok(())
    }

    /// Drop cached lines before reading what other hosts wrote.
    pub fn invalidate(&self, off: u64, len: u64) -> Result<()> {
        if let FileData::View {
            view,
            via_file: false,
        } = self
        {
            view.invalidate(off, len)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_in_files_need_no_daxmode_and_missing_devices_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("img");
        std::fs::write(&img, b"").unwrap();
        check_daxmode(&img, false).unwrap();
        let e = OpenFs::device(&dir.path().join("missing"), OpenHow::default())
            .err()
            .unwrap();
        assert_eq!(crate::error::exit_code_of(&e), libc::ENOENT);
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn dax_devices_must_be_in_devdax_mode() {
        use daxctl_famfs::fake::{DeviceSpec, FakeSysfs, RegionSpec};
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeSysfs::new(dir.path()).unwrap();
        fake.add_region(&RegionSpec::nvdimm(0, 0x1_0000_0000, 16 << 30))
            .unwrap()
            .add_device(&DeviceSpec::new("dax0.0", 4 << 30).driver("fsdev_dax"))
            .unwrap()
            .add_device(&DeviceSpec::new("dax0.1", 4 << 30).driver("kmem"))
            .unwrap()
            .add_device(&DeviceSpec::new("dax0.2", 4 << 30).driver("device_dax"))
            .unwrap();
        let s = fake.sysfs();
        // famfs mode: refused, naming the command that fixes it.
        let e = check_daxmode_with(&s, &fake.stand_in("dax0.0"), false).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("daxctl-famfs reconfigure-device -m devdax dax0.0"),
            "{msg}"
        );
        assert!(msg.contains("--set-daxmode"), "{msg}");
        assert_eq!(crate::error::exit_code_of(&e), 1, "EPERM, as the reference");
        // system-ram: the fix needs -f.
        let e = check_daxmode_with(&s, &fake.stand_in("dax0.1"), false).unwrap_err();
        assert!(format!("{e:#}").contains("-f -m devdax dax0.1"), "{e:#}");
        // devdax: fine; -M switches a famfs-mode device.
        check_daxmode_with(&s, &fake.stand_in("dax0.2"), false).unwrap();
        check_daxmode_with(&s, &fake.stand_in("dax0.0"), true).unwrap();
        assert_eq!(
            fake.driver_of("dax0.0").unwrap().as_deref(),
            Some("device_dax")
        );
        check_daxmode_with(&s, &fake.stand_in("dax0.0"), false).unwrap();
        // Regular files outside the tree need no mode.
        let f = dir.path().join("plain.img");
        std::fs::write(&f, b"").unwrap();
        check_daxmode_with(&s, &f, false).unwrap();
    }

    #[test]
    fn unformatted_device_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(4 << 30)
            .unwrap();
        let e = OpenFs::device(&img, OpenHow::default()).err().unwrap();
        let msg = format!("{e:#}");
        assert!(msg.contains("no valid famfs file system"), "{msg}");
    }
}
