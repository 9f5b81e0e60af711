//! Opening a device for serving: probe it, decide this host's role from the superblock, map it
//! (writable only on the master), and replay the log; or, for a device whose metadata is read
//! through the daemon's own mount ([`crate::MetaAccess`]), only probe it ([`open_unmounted`])
//! and replay once mounted ([`bootstrap`]).

use std::os::unix::ffi::OsStringExt;
use std::sync::Arc;

use famfs_fsdev::{Access, DaxDevice, Mapping, Media};
use famfs_log::OffsetMedia;
use famfs_log::role::Role;
use famfs_log::{Famfs, OpenOptions, ReplayMode};
use uuid::Uuid;

use crate::meta::{MetaFiles, MountedMeta};
use crate::{Config, MetaAccess, ServerError};

pub(crate) use crate::meta::LogMedia;

/// The log as the daemon reads it.
pub(crate) type Log = Famfs<LogMedia>;

/// A device opened for serving.
#[derive(Debug)]
pub(crate) struct Opened {
    /// The whole device, mapped (writable on the master).
    pub map: Arc<Mapping>,
    /// The replayed log.
    pub log: Log,
    /// This host's role.
    pub role: Role,
    /// The device path GET_DAXDEV and `user.famfs.device` report (canonical).
    pub device_name: Vec<u8>,
}

/// This host's system UUID: the configured one, else the usual lookup; `None` (a client) if
/// there is none.
fn local_uuid(cfg: &Config) -> Option<Uuid> {
    match cfg.system_uuid {
        Some(u) => Some(u),
        None => match famfs_log::role::system_uuid() {
            Ok(u) => Some(u),
            Err(e) => {
                tracing::warn!("{e}; running as a client");
                None
            }
        },
    }
}

/// Whether `cfg`'s device is read through the daemon's own mount, and whether it is mapped.
pub(crate) fn access_of(cfg: &Config) -> Result<(bool, bool), ServerError> {
    Ok(match cfg.meta {
        MetaAccess::Auto => {
            let famfs = DaxDevice::open(&cfg.device, Access::ReadOnly)?.is_famfs_mode();
            (famfs, !famfs)
        }
        MetaAccess::ThroughMount => (true, true),
        MetaAccess::FamfsMode => (true, false),
    })
}

/// The superblock, read through a small read-only mapping of the device.
fn probe_superblock(
    ro: &DaxDevice,
    famfs_err: impl Fn(famfs_log::LogError) -> ServerError,
) -> Result<famfs_log::superblock::Superblock, ServerError> {
    let probe = ro.map(0, ro.align().max(famfs_fsdev::ALLOC_UNIT))?;
    famfs_log::superblock::Superblock::read(&probe).map_err(famfs_err)
}

/// Replay the log for serving (strict, with the meta files); its problems are logged.
fn replay(
    cfg: &Config,
    sb: famfs_log::superblock::Superblock,
    media: LogMedia,
    local: Option<Uuid>,
    device_size: u64,
) -> Result<Log, ServerError> {
    let log = Famfs::open(
        sb,
        media,
        OpenOptions {
            system_uuid: local,
            device_size: Some(device_size),
            replay: ReplayMode::Strict,
            meta_files: true,
            root: None,
            skip_maps: false,
        },
    )
    .map_err(|source| ServerError::Famfs {
        device: cfg.device.clone(),
        source,
    })?;
    for p in log.state().problems() {
        tracing::warn!("{p}");
    }
    Ok(log)
}

/// Open the device, check its superblock and log, and replay the log.
pub(crate) fn open(cfg: &Config) -> Result<Opened, ServerError> {
    let famfs_err = |source| ServerError::Famfs {
        device: cfg.device.clone(),
        source,
    };
    let local = local_uuid(cfg);
    // Read the superblock through a read-only mapping first: only the master maps the device
    // writable.
    let ro = DaxDevice::open(&cfg.device, Access::ReadOnly)?;
    let parsed = probe_superblock(&ro, famfs_err)?;
    let role = Role::of(Some(&parsed), local);
    let dev = if role == Role::Master {
        DaxDevice::open(&cfg.device, Access::ReadWrite)?
    } else {
        ro
    };
    let map = Arc::new(dev.map_all()?);
    let sb = famfs_log::superblock::Superblock::read(&*map).map_err(famfs_err)?;
    let log_size = sb.log_len.min(map.size().saturating_sub(sb.log_offset));
    let window = OffsetMedia::new(Arc::clone(&map), sb.log_offset, log_size)
        .map_err(|e| famfs_err(e.into()))?;
    let log = replay(cfg, sb, LogMedia(Box::new(window)), local, dev.size())?;
    let device_name = device_name(cfg);
    tracing::info!(
        "{}: {} files, {} directories, role {:?}",
        cfg.device.display(),
        log.state().stats().files,
        log.state().stats().dirs,
        role
    );
    Ok(Opened {
        map,
        log,
        role,
        device_name,
    })
}

/// The device path GET_DAXDEV reports: canonical.
pub(crate) fn device_name(cfg: &Config) -> Vec<u8> {
    std::fs::canonicalize(&cfg.device)
        .unwrap_or_else(|_| cfg.device.clone())
        .into_os_string()
        .into_vec()
}

/// A device whose metadata is read through the own mount, before it is mounted: its size, and
/// its mapping if it may be mapped (for READ/WRITE on stock kernels; never a famfs-mode device).
pub(crate) fn open_unmounted(
    cfg: &Config,
    mapped: bool,
) -> Result<(u64, Option<Arc<Mapping>>), ServerError> {
    let ro = DaxDevice::open(&cfg.device, Access::ReadOnly)?;
    if !mapped {
        // Only the famfs kernel path reaches the data of a famfs-mode device: refuse before
        // mounting what can be known now (the kernel's offer is known only at INIT).
        let why = if cfg.dax == crate::DaxPolicy::Off {
            Some("--dax off was given")
        } else if !crate::has_cap_sys_rawio() {
            Some("the daemon lacks CAP_SYS_RAWIO")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(ServerError::FamfsKernelNeeded(
                crate::adapter::famfs_needed_message(cfg, why),
            ));
        }
        return Ok((ro.size(), None));
    }
    // The role is not known before the superblock is read through the mount: a master maps
    // the device writable (a client's daemon still refuses every write itself).
    let dev = DaxDevice::open(&cfg.device, Access::ReadWrite).unwrap_or(ro);
    Ok((dev.size(), Some(Arc::new(dev.map_all()?))))
}

/// What the bootstrap through the own mount found.
pub(crate) struct Bootstrapped {
    /// The replayed log (over the in-memory copy).
    pub log: Log,
    /// The metadata source the log was read from.
    pub meta: Arc<MountedMeta>,
    /// This host's role.
    pub role: Role,
}

/// Read the superblock through `files`, then the log it places, and replay it.
pub(crate) fn bootstrap(
    cfg: &Config,
    files: Arc<dyn MetaFiles>,
    device_size: u64,
    publish_log: impl FnOnce(&famfs_log::superblock::Superblock, Role),
) -> Result<Bootstrapped, ServerError> {
    let famfs_err = |source| ServerError::Famfs {
        device: cfg.device.clone(),
        source,
    };
    let local = local_uuid(cfg);
    let (snap, sb) = MountedMeta::read_superblock(files.as_ref()).map_err(famfs_err)?;
    // Untrusted: the log must lie inside the device before a copy of it is allocated.
    if sb.log_offset.saturating_add(sb.log_len) > device_size {
        return Err(famfs_err(famfs_log::LogError::Geometry(format!(
            "the log ({:#x} bytes at {:#x}) does not fit the device ({device_size} bytes)",
            sb.log_len, sb.log_offset
        ))));
    }
    let role = Role::of(Some(&sb), local);
    // The log is read through the mount too: show it first.
    publish_log(&sb, role);
    let meta = Arc::new(MountedMeta::new(files, snap, sb.log_len));
    meta.fetch(&meta.lock_io(), 0)
        .map_err(|e| famfs_err(e.into()))?;
    let log = replay(cfg, sb, meta.log_media(), local, device_size)?;
    tracing::info!(
        "{} (through the mount): {} files, {} directories, role {:?}",
        cfg.device.display(),
        log.state().stats().files,
        log.state().stats().dirs,
        role
    );
    Ok(Bootstrapped { log, meta, role })
}
