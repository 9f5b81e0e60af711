//! The commands, and what they share: resolving path arguments to a famfs location and relative
//! path, owner defaults, the umask, interleave parameters.

// The project's limit of 100 lines per function (clippy counts code lines), kept by
// `cargo clippy -- -D warnings` for every command.
#![warn(clippy::too_many_lines)]

pub mod cp;
pub mod creat;
pub mod create;
pub mod data;
pub mod daxmode;
pub mod fsck;
pub mod meta;
pub mod mkfs;
pub mod mount;
pub mod stale;
pub mod status;
pub mod umount;

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use famfs_log::alloc::{AllocPolicy, InterleaveParams};
use famfs_log::layout::MAX_STRIPS;

use crate::cli::{Cmd, DeviceOpt, Famfs, InterleaveOpts};
use crate::error::fail;
use crate::mounts;
use crate::open::Location;
use crate::paths::{display_rel, famfs_relpath, find_in_mounts, resolve_host_path};

/// The subcommand's name, for messages.
pub fn name_of(cmd: &Cmd) -> &'static str {
    match cmd {
        Cmd::Mount(_) => "mount",
        Cmd::Umount(_) => "umount",
        Cmd::Fsck(_) => "fsck",
        Cmd::Mkdir(_) => "mkdir",
        Cmd::Cp(_) => "cp",
        Cmd::Creat(_) => "creat",
        Cmd::Verify(_) => "verify",
        Cmd::Flush(_) => "flush",
        Cmd::Logplay(_) => "logplay",
        Cmd::Getmap(_) => "getmap",
        Cmd::Clone(_) => "clone",
        Cmd::Chkread(_) => "chkread",
        Cmd::Daxmode(_) => "daxmode",
        Cmd::Status(_) => "status",
    }
}

/// Run a parsed command line; returns the exit status.
pub fn run(cli: Famfs) -> Result<i32> {
    let verbose = cli.verbose;
    // Temporary mounts of famfs-mode devices end with the command.
    let _cleanup = crate::dummy::Cleanup;
    match cli.cmd {
        Cmd::Mount(a) => mount::mount(a, verbose),
        Cmd::Umount(a) => umount::umount(a),
        Cmd::Fsck(a) => fsck::fsck(a, verbose),
        Cmd::Mkdir(a) => create::mkdir(a, verbose),
        Cmd::Cp(a) => cp::cp(a, verbose),
        Cmd::Creat(a) => creat::creat(a, verbose),
        Cmd::Verify(a) => data::verify(a),
        Cmd::Flush(a) => data::flush(a, verbose),
        Cmd::Logplay(a) => fsck::logplay(a),
        Cmd::Getmap(a) => data::getmap(a),
        Cmd::Clone(a) => create::clone(a),
        Cmd::Chkread(a) => data::chkread(a),
        Cmd::Daxmode(a) => daxmode::daxmode(a),
        Cmd::Status(a) => status::status(a),
    }
}

/// A path argument resolved to the famfs it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The file system.
    pub loc: Location,
    /// The path relative to its root ("" = the root).
    pub rel: PathBuf,
    /// The path as the user should see it in messages.
    pub shown: String,
}

impl Target {
    /// The user-visible path of `rel` in the same file system.
    pub fn show(&self, rel: &Path) -> String {
        match &self.loc {
            Location::Device(_) => format!("/{}", display_rel(rel).trim_start_matches('/')),
            Location::Mount(root) => root.join(rel).display().to_string(),
        }
    }
}

/// The name a mounted famfs shows its meta files under; nothing may be created there.
pub use famfs_log::path::META_DIR;

/// Refuse to create `rel` when it is (or is inside) the root's reserved `.meta` directory (the
/// rule replay applies: such an entry would be skipped by every reader).
pub fn check_creatable(t: &Target, rel: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    if let Err(p) = famfs_log::path::check_not_reserved(rel.as_os_str().as_bytes()) {
        return Err(fail(1, format!("{}: {p}", t.show(rel))));
    }
    Ok(())
}

/// Open `loc` for writing. Through a mount whose daemon serves this file system as a client, the
/// error says that (not running on the master) instead of the mount's EROFS on `.meta/.log`.
pub fn open_writable(loc: &Location, how: crate::open::OpenHow) -> Result<crate::open::OpenFs> {
    crate::open::OpenFs::open(loc, how).map_err(|e| match loc {
        Location::Mount(root)
            if crate::error::exit_code_of(&e) == libc::EROFS
                || crate::error::errno_of(&e) == Some(libc::EROFS) =>
        {
            client_mount_error(root).unwrap_or(e)
        }
        _ => e,
    })
}

/// The error for writing through `root` when its daemon serves it as a client, if it does.
pub(crate) fn client_mount_error(root: &Path) -> Option<anyhow::Error> {
    let role = crate::cmd::umount::get_xattr(root, "user.famfs.role")?;
    if role != b"client" {
        return None;
    }
    let mut sb = [0u8; 200];
    let owner = std::fs::File::open(root.join(".meta/.superblock"))
        .and_then(|f| std::os::unix::fs::FileExt::read_exact_at(&f, &mut sb, 0))
        .ok()
        .and_then(|()| famfs_log::superblock::Superblock::parse(&sb).ok())
        .map_or_else(|| "the master".to_string(), |s| s.system_uuid.to_string());
    Some(fail(
        1,
        format!(
            "not running on the master node: {} is mounted as a client (its famfs_fused does not \
             have the master's system UUID, {owner}), so nothing can be created through it; \
             create files on the master, or mount with the master's identity \
             ($FAMFS_SYSTEM_UUID or /opt/famfs/system_uuid)",
            root.display()
        ),
    ))
}

/// Resolve a file argument: a famfs path with `--device`, else a host path inside a mounted famfs.
pub fn resolve_target(arg: impl AsRef<std::ffi::OsStr>, dev: &DeviceOpt) -> Result<Target> {
    let arg = arg.as_ref();
    if let Some(device) = &dev.device {
        let rel = famfs_relpath(arg).map_err(|e| fail(1, e.to_string()))?;
        // A famfs-mode device is reached through a temporary mount (unless -M switches it).
        let loc = crate::dummy::read_location(&Location::Device(device.clone()), dev.set_daxmode)?;
        return Ok(Target {
            loc,
            rel,
            shown: arg.to_string_lossy().into_owned(),
        });
    }
    resolve_host_target(Path::new(arg))
}

/// Resolve a host path inside a mounted famfs.
pub fn resolve_host_target(p: &Path) -> Result<Target> {
    // One read of the mount table serves both the stale check and the lookup.
    let table = mounts::read_mounts();
    stale::check_not_stale_in(p, &table)?;
    let abs = resolve_host_path(p).map_err(|e| path_error(p, &e))?;
    match find_in_mounts(&abs, &table) {
        Some(m) => Ok(Target {
            loc: Location::Mount(m.root),
            rel: m.rel,
            shown: p.display().to_string(),
        }),
        None => Err(fail(
            1,
            format!(
                "{}: not in a famfs file system (no famfs mount contains it); to work on an \
                 unmounted device, use --device DEV with a path relative to the famfs root",
                p.display()
            ),
        )),
    }
}

/// The error for a host path that cannot be reached: a stale famfs mount is named, with the fix.
fn path_error(p: &Path, e: &std::io::Error) -> anyhow::Error {
    let code = e.raw_os_error().unwrap_or(libc::ENOENT);
    if code == libc::ENOTCONN
        && let Some(mpt) = stale::stale_mount_containing(p)
    {
        return fail(code, stale::stale_message(&mpt));
    }
    fail(code, format!("{}: {e}", p.display()))
}

/// What a positional `DEV|PATH` argument of fsck/logplay names.
pub fn classify_dev_or_path(p: &Path) -> Result<Location> {
    let table = mounts::read_mounts();
    stale::check_not_stale_in(p, &table)?;
    let meta = std::fs::metadata(p).map_err(|e| path_error(p, &e))?;
    let ft = meta.file_type();
    if ft.is_char_device() {
        return Ok(Location::Device(p.to_path_buf()));
    }
    if ft.is_file() || ft.is_dir() {
        // In a famfs mount? (As resolve_host_target, without building the error a stand-in
        // outside any mount would make.)
        if let Some(m) = resolve_host_path(p)
            .ok()
            .and_then(|abs| find_in_mounts(&abs, &table))
        {
            return Ok(Location::Mount(m.root));
        }
        if ft.is_file() {
            return Ok(Location::Device(p.to_path_buf()));
        }
        return Err(fail(
            1,
            format!(
                "{}: a directory that is not in a mounted famfs",
                p.display()
            ),
        ));
    }
    Err(fail(
        libc::EINVAL,
        format!(
            "{}: neither a dax device, a stand-in file, nor a path in a mounted famfs",
            p.display()
        ),
    ))
}

/// The process umask (read from /proc without changing it).
pub fn umask() -> u32 {
    if let Ok(s) = std::fs::read_to_string("/proc/self/status")
        && let Some(v) = s
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
    {
        return v;
    }
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    nix::sys::stat::umask(old);
    old.bits()
}

/// Effective user and group ids.
pub fn effective_ids() -> (u32, u32) {
    (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    )
}

/// Real user and group ids.
pub fn real_ids() -> (u32, u32) {
    (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    )
}

/// Default chunk size of interleaved allocation (the reference's code default).
pub const DEFAULT_CHUNK: u64 = 2 << 20;

impl InterleaveOpts {
    /// Whether any interleave option was given.
    pub fn any(&self) -> bool {
        self.nstrips.is_some() || self.nbuckets.is_some() || self.chunksize.is_some()
    }

    /// Check what can be checked before opening the device (the reference's early refusal).
    pub fn precheck(&self) -> Result<()> {
        if let Some(n) = self.nstrips
            && n > MAX_STRIPS as u64
        {
            return Err(fail(1, format!("nstrips({n}) > {MAX_STRIPS}")));
        }
        Ok(())
    }

    /// The allocation policy for a device of `dev_size` bytes. Missing values get defaults:
    /// nbuckets = device size / 1 GiB (at most 64, at least nstrips), nstrips = min(nbuckets,
    /// 16), chunk 2 MiB. The reference has no defaults for these (giving only -N fails there).
    pub fn policy(&self, dev_size: u64) -> Result<AllocPolicy> {
        if !self.any() {
            return Ok(AllocPolicy::Contiguous);
        }
        self.precheck()?;
        let by_size = (dev_size >> 30).clamp(1, famfs_log::layout::MAX_NBUCKETS);
        let nbuckets = self
            .nbuckets
            .unwrap_or_else(|| by_size.max(self.nstrips.unwrap_or(1)));
        let nstrips = self
            .nstrips
            .unwrap_or_else(|| nbuckets.min(MAX_STRIPS as u64));
        let p = InterleaveParams {
            nbuckets,
            nstrips,
            chunk_size: self.chunksize.unwrap_or(DEFAULT_CHUNK),
        };
        p.validate(dev_size).map_err(|e| {
            fail(
                libc::EINVAL,
                format!(
                    "{e} (nbuckets {nbuckets}, nstrips {nstrips}, chunk {})",
                    p.chunk_size
                ),
            )
        })?;
        Ok(AllocPolicy::Interleaved(p))
    }
}

/// Parse a thread-count option: 1..=256, 0 meaning 1 (serial); default: the CPUs available.
pub fn thread_count(opt: Option<i64>) -> Result<usize> {
    match opt {
        None => Ok(crate::xfer::default_threads().min(256)),
        Some(n) if (0..=256).contains(&n) => Ok((n as usize).max(1)),
        Some(n) => Err(fail(1, format!("bad threadct: {n} (0..=256)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_defaults() {
        const G: u64 = 1 << 30;
        let none = InterleaveOpts::default();
        assert_eq!(none.policy(8 * G).unwrap(), AllocPolicy::Contiguous);
        let only_n = InterleaveOpts {
            nstrips: Some(4),
            ..Default::default()
        };
        assert_eq!(
            only_n.policy(8 * G).unwrap(),
            AllocPolicy::Interleaved(InterleaveParams {
                nbuckets: 8,
                nstrips: 4,
                chunk_size: 2 << 20
            })
        );
        let only_b = InterleaveOpts {
            nbuckets: Some(8),
            ..Default::default()
        };
        assert_eq!(
            only_b.policy(8 * G).unwrap(),
            AllocPolicy::Interleaved(InterleaveParams {
                nbuckets: 8,
                nstrips: 8,
                chunk_size: 2 << 20
            })
        );
        let only_c = InterleaveOpts {
            chunksize: Some(4 << 20),
            ..Default::default()
        };
        assert_eq!(
            only_c.policy(128 * G).unwrap(),
            AllocPolicy::Interleaved(InterleaveParams {
                nbuckets: 64,
                nstrips: 16,
                chunk_size: 4 << 20
            })
        );
        let too_many = InterleaveOpts {
            nstrips: Some(17),
            ..Default::default()
        };
        assert!(
            too_many
                .policy(64 * G)
                .unwrap_err()
                .to_string()
                .contains("nstrips(17) > 16")
        );
        let bad_chunk = InterleaveOpts {
            chunksize: Some(2_000_000),
            nstrips: Some(3),
            nbuckets: Some(4),
        };
        assert_eq!(
            crate::error::exit_code_of(&bad_chunk.policy(8 * G).unwrap_err()),
            22
        );
        let small = InterleaveOpts {
            nstrips: Some(8),
            ..Default::default()
        };
        assert!(
            small.policy(4 * G).is_err(),
            "8 buckets of 512 MiB are too small"
        );
    }

    #[test]
    fn threads_and_umask() {
        assert_eq!(thread_count(Some(0)).unwrap(), 1);
        assert_eq!(thread_count(Some(3)).unwrap(), 3);
        assert!(thread_count(Some(-1)).is_err());
        assert!(thread_count(Some(257)).is_err());
        assert!(thread_count(None).unwrap() >= 1);
        let before = umask();
        assert_eq!(umask(), before, "reading the umask does not change it");
    }

    #[test]
    fn device_targets() {
        let dev = DeviceOpt {
            device: Some(PathBuf::from("/tmp/img")),
            set_daxmode: false,
        };
        let t = resolve_target("/a//b/./c", &dev).unwrap();
        assert_eq!(t.rel, PathBuf::from("a/b/c"));
        assert_eq!(t.loc, Location::Device(PathBuf::from("/tmp/img")));
        assert_eq!(t.show(&t.rel), "/a/b/c");
        assert!(resolve_target("../x", &dev).is_err());
        let none = DeviceOpt {
            device: None,
            set_daxmode: false,
        };
        let e = resolve_target("/tmp/surely-not-famfs", &none).unwrap_err();
        assert!(e.to_string().contains("not in a famfs"), "{e}");
        assert_eq!(crate::error::exit_code_of(&e), 1);
    }
}
