//! Making a new file system.

use famfs_fsdev::Media;
use uuid::Uuid;

use crate::LogError;
use crate::header::LogHeader;
use crate::layout::{DEFAULT_LOG_LEN, LOG_OFFSET, MAX_DEVICE_SIZE, SUPER_MAGIC, SUPERBLOCK_SIZE};
use crate::superblock::{Superblock, SuperblockError};

/// The smallest device the reference's mkfs accepts (4 GiB).
pub const MIN_MKFS_DEVICE_SIZE: u64 = 4 << 30;

/// Options for [`mkfs`].
#[derive(Debug, Clone)]
pub struct MkfsOptions {
    /// Log length: a power of two, at least 8 MiB (default 8 MiB).
    pub log_len: u64,
    /// Overwrite an existing file system, even one owned by another host.
    pub force: bool,
    /// With `force`: only destroy the superblock (zero its magic), as `mkfs.famfs -f -k` does.
    pub kill: bool,
    /// The system UUID of this host, which becomes the master.
    pub system_uuid: Uuid,
    /// The device path to record in the superblock (informational).
    pub dev_name: Vec<u8>,
    /// File-system UUID (random when `None`).
    pub fs_uuid: Option<Uuid>,
    /// Device UUID (random when `None`).
    pub dev_uuid: Option<Uuid>,
    /// Smallest device accepted (default 4 GiB, as the reference).
    pub min_device_size: u64,
}

impl MkfsOptions {
    /// Defaults: 8 MiB log, no force, random UUIDs, 4 GiB minimum.
    pub fn new(system_uuid: Uuid, dev_name: impl Into<Vec<u8>>) -> Self {
        MkfsOptions {
            log_len: DEFAULT_LOG_LEN,
            force: false,
            kill: false,
            system_uuid,
            dev_name: dev_name.into(),
            fs_uuid: None,
            dev_uuid: None,
            min_device_size: MIN_MKFS_DEVICE_SIZE,
        }
    }
}

/// What [`mkfs`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MkfsOutcome {
    /// A new file system was written.
    Formatted(Superblock),
    /// The old superblock was destroyed (`-f -k`).
    Killed,
}

/// Check a requested log length for a device of `dev_size` bytes.
pub fn check_log_len(log_len: u64, dev_size: u64) -> Result<(), LogError> {
    if !log_len.is_power_of_two() || log_len < DEFAULT_LOG_LEN {
        return Err(LogError::Geometry(format!(
            "invalid log length {log_len}: it must be a power of two and at least 8 MiB"
        )));
    }
    if LOG_OFFSET.saturating_add(log_len) >= dev_size {
        return Err(LogError::Geometry(format!(
            "a {log_len}-byte log does not fit on a {dev_size}-byte device with room for data"
        )));
    }
    Ok(())
}

/// Format `dev` (a media with device offsets covering at least the superblock and the log) as
/// a famfs for a device of `dev_size` bytes.
///
/// Refuses, unless `force`: a device whose superblock belongs to another host, and a device
/// that already holds a famfs superblock (of any version). Nothing is written when a check
/// fails. The log is zeroed and its header written and flushed before the superblock, so an
/// interrupted mkfs never leaves a valid superblock over a stale log.
pub fn mkfs(dev: &dyn Media, dev_size: u64, opts: &MkfsOptions) -> Result<MkfsOutcome, LogError> {
    let name = String::from_utf8_lossy(&opts.dev_name).into_owned();
    if dev_size < opts.min_device_size {
        return Err(LogError::Geometry(format!(
            "{name}: unsupported memory device size {dev_size} (at least {} bytes needed)",
            opts.min_device_size
        )));
    }
    if dev_size > MAX_DEVICE_SIZE {
        return Err(LogError::Geometry(format!(
            "{name}: device size {dev_size} is larger than any dax device can be \
             ({MAX_DEVICE_SIZE} bytes)"
        )));
    }
    if !dev_size.is_multiple_of(crate::layout::ALLOC_UNIT) {
        return Err(LogError::Geometry(format!(
            "{name}: device size {dev_size} is not a multiple of 2 MiB"
        )));
    }
    if opts.kill && opts.force {
        dev.write_at(0, &[0u8; 8])?;
        dev.flush(0, 8)?;
        return Ok(MkfsOutcome::Killed);
    }
    check_log_len(opts.log_len, dev_size)?;
    if dev.size() < LOG_OFFSET + opts.log_len {
        return Err(LogError::Geometry(format!(
            "{name}: the media given to mkfs does not cover the log"
        )));
    }
    match Superblock::read(dev) {
        Err(e @ LogError::Media(_)) => return Err(e),
        Ok(sb) if !opts.force => {
            if sb.system_uuid != opts.system_uuid {
                return Err(LogError::OwnedByOtherHost {
                    dev: name,
                    owner: sb.system_uuid,
                });
            }
            return Err(LogError::AlreadyFormatted(name));
        }
        Err(LogError::Superblock(SuperblockError::WrongVersion(_))) if !opts.force => {
            return Err(LogError::AlreadyFormatted(name));
        }
        _ => {}
    }

    // The log: zero it, then the header.
    let zeros = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < opts.log_len {
        let n = (opts.log_len - off).min(zeros.len() as u64);
        dev.write_at(LOG_OFFSET + off, &zeros[..n as usize])?;
        off += n;
    }
    dev.write_at(LOG_OFFSET, &LogHeader::empty(opts.log_len).to_bytes())?;
    dev.flush(LOG_OFFSET, opts.log_len)?;

    let sb = Superblock::new(
        opts.log_len,
        dev_size,
        opts.system_uuid,
        opts.fs_uuid.unwrap_or_else(Uuid::new_v4),
        opts.dev_uuid.unwrap_or_else(Uuid::new_v4),
        &opts.dev_name,
    );
    dev.write_at(0, &sb.to_bytes())?;
    dev.flush(0, SUPERBLOCK_SIZE as u64)?;
    let mut magic = [0u8; 8];
    dev.invalidate(0, 8)?;
    dev.read_at(0, &mut magic)?;
    if u64::from_le_bytes(magic) != SUPER_MAGIC {
        return Err(LogError::NotWritable(name));
    }
    Ok(MkfsOutcome::Formatted(sb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use famfs_fsdev::MemMedia;

    /// mkfs never writes a superblock that [`Superblock::parse`] refuses.
    #[test]
    fn device_size_is_bounded_like_the_superblock_reader() {
        let dev = MemMedia::new((LOG_OFFSET + DEFAULT_LOG_LEN) as usize);
        let opts = MkfsOptions::new(Uuid::from_u128(1), "/dev/dax0.0");
        let too_big = MAX_DEVICE_SIZE + crate::layout::ALLOC_UNIT;
        assert!(matches!(
            mkfs(&dev, too_big, &opts),
            Err(LogError::Geometry(_))
        ));
        let Ok(MkfsOutcome::Formatted(sb)) = mkfs(&dev, MAX_DEVICE_SIZE, &opts) else {
            panic!("the largest device formats");
        };
        assert_eq!(Superblock::read(&dev).unwrap(), sb);
    }
}
