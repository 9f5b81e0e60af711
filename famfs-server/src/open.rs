//! Opening a device for serving: probe it, decide this host's role from the superblock, map it
//! (writable only on the master), and replay the log.

use std::os::unix::ffi::OsStringExt;
use std::sync::Arc;

use famfs_fsdev::{Access, DaxDevice, DaxMode, DeviceKind, Mapping};
use famfs_log::role::Role;
use famfs_log::{Famfs, OffsetMedia, OpenOptions, ReplayMode};
use uuid::Uuid;

use crate::{Config, ServerError};

/// The media the daemon reads the log from: its part of the device mapping.
pub(crate) type LogMedia = OffsetMedia<Arc<Mapping>>;

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

/// Refuse a dax device in famfs mode.
///
/// The kernel maps famfs files only onto a dax device bound to fsdev_dax (famfs mode), and a
/// device in that mode has no mmap: this daemon, which reads the log through a mapping, needs
/// devdax mode and then serves data itself. So no device it can open is one a famfs kernel can
/// map (see `DaxPolicy::Auto`).
fn refuse_famfs_mode(dev: &DaxDevice, cfg: &Config) -> Result<(), ServerError> {
    if let DeviceKind::DaxChar {
        mode: DaxMode::Famfs,
        ..
    } = dev.kind()
    {
        return Err(ServerError::Device(
            famfs_fsdev::FsdevError::WrongFileType {
                path: cfg.device.clone(),
                found: "dax device in famfs mode (fsdev_dax), which cannot be \
                        memory-mapped; switch it to devdax mode \
                        (daxctl-famfs reconfigure-device -m devdax)",
            },
        ));
    }
    Ok(())
}

/// The superblock, read through a small read-only mapping of the device.
fn probe_superblock(
    ro: &DaxDevice,
    famfs_err: impl Fn(famfs_log::LogError) -> ServerError,
) -> Result<famfs_log::superblock::Superblock, ServerError> {
    let probe = ro.map(0, ro.align().max(famfs_fsdev::ALLOC_UNIT))?;
    famfs_log::superblock::Superblock::read(&probe).map_err(famfs_err)
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
    refuse_famfs_mode(&ro, cfg)?;
    let parsed = probe_superblock(&ro, famfs_err)?;
    let role = Role::of(Some(&parsed), local);
    let dev = if role == Role::Master {
        DaxDevice::open(&cfg.device, Access::ReadWrite)?
    } else {
        ro
    };
    let map = Arc::new(dev.map_all()?);
    let log = Famfs::open_device(
        Arc::clone(&map),
        OpenOptions {
            system_uuid: local,
            device_size: Some(dev.size()),
            replay: ReplayMode::Strict,
            meta_files: true,
            root: None,
            skip_maps: false,
        },
    )
    .map_err(famfs_err)?;
    for p in log.state().problems() {
        tracing::warn!("{p}");
    }
    let device_name = std::fs::canonicalize(&cfg.device)
        .unwrap_or_else(|_| cfg.device.clone())
        .into_os_string()
        .into_vec();
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
