//! The superblock: parse and check what is on the device, build a new one for mkfs.

use famfs_fsdev::Media;
use uuid::Uuid;
use zerocopy::{FromBytes, IntoBytes};

use crate::LogError;
use crate::layout::{
    ALLOC_UNIT, CURRENT_VERSION, DEFAULT_LOG_LEN, DEVNAME_LEN, LOG_OFFSET, MAX_DEVICE_SIZE,
    OMF_VERSION, RawDaxdev, RawSuperblock, SUPER_MAGIC, SUPERBLOCK_CRC_LEN, SUPERBLOCK_SIZE, crc32,
};

/// Why a superblock was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuperblockError {
    /// Fewer than [`SUPERBLOCK_SIZE`] bytes were given.
    #[error("superblock truncated: {0} bytes")]
    Truncated(usize),
    /// The magic number is not famfs'.
    #[error("no famfs superblock (magic {0:#x}, expected {SUPER_MAGIC:#x})")]
    BadMagic(u64),
    /// A famfs superblock of another format version.
    #[error("famfs superblock has version {0}; this tool reads version {CURRENT_VERSION} only")]
    WrongVersion(u64),
    /// The CRC over bytes 0..96 does not match.
    #[error("superblock CRC mismatch: stored {stored:#x}, computed {computed:#x}")]
    BadCrc {
        /// `ts_crc` as stored (64 bits; the upper half must be zero).
        stored: u64,
        /// CRC32 of bytes 0..96.
        computed: u32,
    },
    /// An allocation unit other than 4 KiB or 2 MiB.
    #[error("invalid allocation unit {0:#x} (expected 0x200000)")]
    BadAllocUnit(u64),
    /// The log is not at 2 MiB.
    #[error("invalid log offset {0:#x} (expected 0x200000)")]
    BadLogOffset(u64),
    /// The log length is not a power of two of at least 8 MiB.
    #[error("invalid log length {0:#x} (must be a power of two, at least 8 MiB)")]
    BadLogLen(u64),
    /// The superblock's device size is not usable.
    #[error("invalid device size {size:#x} in superblock: {why}")]
    BadDeviceSize {
        /// `ts_daxdev.dd_size`.
        size: u64,
        /// What is wrong with it.
        why: String,
    },
}

/// A parsed superblock (version 48).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// `ts_log_offset` (always 2 MiB once checked).
    pub log_offset: u64,
    /// `ts_log_len`.
    pub log_len: u64,
    /// `ts_alloc_unit`.
    pub alloc_unit: u64,
    /// `ts_omf_ver_major`, `ts_omf_ver_minor` (informational).
    pub omf_version: (u32, u32),
    /// File-system UUID.
    pub uuid: Uuid,
    /// UUID of this device.
    pub dev_uuid: Uuid,
    /// System UUID of the master host.
    pub system_uuid: Uuid,
    /// `ts_sb_flags` (unused by the reference).
    pub flags: u32,
    /// `ts_daxdev.dd_size`: the capacity the allocator and fsck use.
    pub dev_size: u64,
    /// `ts_daxdev.dd_uuid` (unused by the reference).
    pub daxdev_uuid: Uuid,
    /// `ts_daxdev.dd_daxdev`: the device path given to mkfs (informational).
    pub dev_name: Vec<u8>,
}

impl Superblock {
    /// Read and check the superblock at offset 0 of `media` (a device, or a mounted
    /// `.meta/.superblock`): cached lines are dropped first, so what another host wrote is seen.
    pub fn read<M: Media + ?Sized>(media: &M) -> Result<Superblock, LogError> {
        let mut bytes = [0u8; SUPERBLOCK_SIZE];
        media.invalidate(0, SUPERBLOCK_SIZE as u64)?;
        media.read_at(0, &mut bytes)?;
        Ok(Superblock::parse(&bytes)?)
    }

    /// Parse and check the first [`SUPERBLOCK_SIZE`] bytes of a device, in the reference's order: magic,
    /// version, CRC, allocation unit. Layout rules the reference leaves to its callers (log at
    /// 2 MiB, log length a power of two ≥ 8 MiB, log inside the device) are checked too, so a
    /// value returned here is safe to use.
    pub fn parse(bytes: &[u8]) -> Result<Superblock, SuperblockError> {
        let (raw, _) = RawSuperblock::read_from_prefix(bytes)
            .map_err(|_| SuperblockError::Truncated(bytes.len()))?;
        if raw.magic.get() != SUPER_MAGIC {
            return Err(SuperblockError::BadMagic(raw.magic.get()));
        }
        if raw.version.get() != CURRENT_VERSION {
            return Err(SuperblockError::WrongVersion(raw.version.get()));
        }
        let computed = crc32(&raw.as_bytes()[..SUPERBLOCK_CRC_LEN]);
        if raw.crc.get() != u64::from(computed) {
            return Err(SuperblockError::BadCrc {
                stored: raw.crc.get(),
                computed,
            });
        }
        let alloc_unit = raw.alloc_unit.get();
        if alloc_unit != ALLOC_UNIT && alloc_unit != 4096 {
            return Err(SuperblockError::BadAllocUnit(alloc_unit));
        }
        let log_offset = raw.log_offset.get();
        if log_offset != LOG_OFFSET {
            return Err(SuperblockError::BadLogOffset(log_offset));
        }
        let log_len = raw.log_len.get();
        if !log_len.is_power_of_two() || log_len < DEFAULT_LOG_LEN {
            return Err(SuperblockError::BadLogLen(log_len));
        }
        let dev_size = raw.daxdev.size.get();
        let data_start = log_offset + log_len;
        if dev_size <= data_start {
            return Err(SuperblockError::BadDeviceSize {
                size: dev_size,
                why: format!("not larger than the metadata region ({data_start:#x} bytes)"),
            });
        }
        if dev_size > MAX_DEVICE_SIZE {
            return Err(SuperblockError::BadDeviceSize {
                size: dev_size,
                why: format!("larger than any dax device can be ({MAX_DEVICE_SIZE:#x} bytes)"),
            });
        }
        let name_len = raw
            .daxdev
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(DEVNAME_LEN);
        Ok(Superblock {
            log_offset,
            log_len,
            alloc_unit,
            omf_version: (raw.omf_major.get(), raw.omf_minor.get()),
            uuid: Uuid::from_bytes(raw.uuid),
            dev_uuid: Uuid::from_bytes(raw.dev_uuid),
            system_uuid: Uuid::from_bytes(raw.system_uuid),
            flags: raw.sb_flags.get(),
            dev_size,
            daxdev_uuid: Uuid::from_bytes(raw.daxdev.uuid),
            dev_name: raw.daxdev.name[..name_len].to_vec(),
        })
    }

    /// A fresh superblock as mkfs writes it.
    pub fn new(
        log_len: u64,
        dev_size: u64,
        system_uuid: Uuid,
        uuid: Uuid,
        dev_uuid: Uuid,
        dev_name: &[u8],
    ) -> Superblock {
        Superblock {
            log_offset: LOG_OFFSET,
            log_len,
            alloc_unit: ALLOC_UNIT,
            omf_version: OMF_VERSION,
            uuid,
            dev_uuid,
            system_uuid,
            flags: 0,
            dev_size,
            daxdev_uuid: Uuid::nil(),
            dev_name: dev_name[..dev_name.len().min(DEVNAME_LEN)].to_vec(),
        }
    }

    /// The on-media bytes, CRC included; padding and unused fields are zero.
    pub fn to_bytes(&self) -> [u8; SUPERBLOCK_SIZE] {
        let mut name = [0u8; DEVNAME_LEN];
        let n = self.dev_name.len().min(DEVNAME_LEN);
        name[..n].copy_from_slice(&self.dev_name[..n]);
        let mut raw = RawSuperblock {
            magic: SUPER_MAGIC.into(),
            version: CURRENT_VERSION.into(),
            log_offset: self.log_offset.into(),
            log_len: self.log_len.into(),
            alloc_unit: self.alloc_unit.into(),
            omf_major: self.omf_version.0.into(),
            omf_minor: self.omf_version.1.into(),
            uuid: self.uuid.into_bytes(),
            dev_uuid: self.dev_uuid.into_bytes(),
            system_uuid: self.system_uuid.into_bytes(),
            crc: 0.into(),
            sb_flags: self.flags.into(),
            _pad: [0; 4],
            daxdev: RawDaxdev {
                size: self.dev_size.into(),
                uuid: self.daxdev_uuid.into_bytes(),
                name,
            },
        };
        raw.crc = u64::from(crc32(&raw.as_bytes()[..SUPERBLOCK_CRC_LEN])).into();
        let mut out = [0u8; SUPERBLOCK_SIZE];
        out.copy_from_slice(raw.as_bytes());
        out
    }

    /// Device offset where file data starts (end of the log).
    pub fn data_start(&self) -> u64 {
        self.log_offset + self.log_len
    }

    /// The device name as text (lossy).
    pub fn dev_name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.dev_name).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vector_sb() -> Superblock {
        let u = |start: u8| Uuid::from_bytes(core::array::from_fn(|i| start + i as u8));
        let mut sb = Superblock::new(
            0x80_0000,
            0x1_0000_0000,
            u(0x20),
            Uuid::from_bytes([
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff,
            ]),
            u(0x10),
            b"/dev/dax0.0",
        );
        sb.flags = 0;
        sb
    }

    /// famfs-format.md §2.7: the superblock test vector, bytes written out from the table.
    #[test]
    fn reference_test_vector() {
        let expected: [u8; 112] = [
            0xff, 0x82, 0xb2, 0x87, 0x00, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00,
            0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
            0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
            0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23,
            0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x20, 0x24,
            0x76, 0x61, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        let bytes = vector_sb().to_bytes();
        assert_eq!(&bytes[..112], &expected[..]);
        assert_eq!(&bytes[112..120], &[0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&bytes[136..147], b"/dev/dax0.0");
        assert!(bytes[147..].iter().all(|&b| b == 0));
        // ts_crc = 0x61762420
        assert_eq!(
            u32::from_le_bytes(bytes[96..100].try_into().unwrap()),
            0x6176_2420
        );
        assert_eq!(Superblock::parse(&bytes).unwrap(), vector_sb());
    }

    #[test]
    fn checks_in_reference_order() {
        let good = vector_sb().to_bytes();
        assert_eq!(
            Superblock::parse(&good[..199]),
            Err(SuperblockError::Truncated(199))
        );
        let mut b = good;
        b[0] = 0;
        assert!(matches!(
            Superblock::parse(&b),
            Err(SuperblockError::BadMagic(_))
        ));
        let mut b = good;
        b[8] = 47;
        assert_eq!(
            Superblock::parse(&b),
            Err(SuperblockError::WrongVersion(47))
        );
        let mut b = good;
        b[50] ^= 1;
        assert!(matches!(
            Superblock::parse(&b),
            Err(SuperblockError::BadCrc { .. })
        ));
        // The CRC is compared as 64 bits: junk in the upper half is a mismatch.
        let mut b = good;
        b[100] = 1;
        assert!(matches!(
            Superblock::parse(&b),
            Err(SuperblockError::BadCrc { .. })
        ));
        // Bytes outside the CRC are not validated.
        let mut b = good;
        b[108] = 0xee;
        b[125] = 0x42;
        assert!(Superblock::parse(&b).is_ok());
    }

    fn with(f: impl FnOnce(&mut Superblock)) -> Result<Superblock, SuperblockError> {
        let mut sb = vector_sb();
        f(&mut sb);
        Superblock::parse(&sb.to_bytes())
    }

    #[test]
    fn layout_rules() {
        assert_eq!(
            with(|s| s.alloc_unit = 8192),
            Err(SuperblockError::BadAllocUnit(8192))
        );
        assert!(with(|s| s.alloc_unit = 4096).is_ok());
        assert_eq!(
            with(|s| s.log_offset = 0),
            Err(SuperblockError::BadLogOffset(0))
        );
        assert_eq!(
            with(|s| s.log_len = 0x90_0000),
            Err(SuperblockError::BadLogLen(0x90_0000))
        );
        assert_eq!(
            with(|s| s.log_len = 1 << 22),
            Err(SuperblockError::BadLogLen(1 << 22))
        );
        assert!(matches!(
            with(|s| s.dev_size = 0xa0_0000),
            Err(SuperblockError::BadDeviceSize { .. })
        ));
        assert!(with(|s| s.log_len = 1 << 30).is_ok());
    }

    /// Found by the log_replay fuzz target: a superblock claiming a 8.7 EB device (with a valid
    /// CRC) made replay allocate a 517 GB free-space bitmap and abort. Its 200 bytes, CRC
    /// fixed up, as the target replayed them.
    #[test]
    fn device_larger_than_an_address_space_is_refused() {
        let mut b = [0x78u8; SUPERBLOCK_SIZE];
        b[..104].copy_from_slice(&[
            0xff, 0x82, 0xb2, 0x87, 0, 0, 0, 0, 0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0,
            0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0x02, 0, 0, 0,
            0, 0, 0, 0, 0, 0xf0, 0x0d, 0x70, 0xb2, 0xc1, 0x3a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0x02, 0, 0, 0, 0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x78,
            0x92, 0xfe, 0x86, 0x53, 0, 0, 0, 0,
        ]);
        assert!(matches!(
            Superblock::parse(&b),
            Err(SuperblockError::BadDeviceSize {
                size: 0x7878_7878_7878_7878,
                ..
            })
        ));
        assert!(matches!(
            with(|s| s.dev_size = MAX_DEVICE_SIZE + ALLOC_UNIT),
            Err(SuperblockError::BadDeviceSize { .. })
        ));
        assert!(with(|s| s.dev_size = MAX_DEVICE_SIZE).is_ok());
    }

    #[test]
    fn long_device_names_are_cut_at_64() {
        let mut sb = vector_sb();
        sb.dev_name = vec![b'x'; 100];
        let bytes = sb.to_bytes();
        assert_eq!(Superblock::parse(&bytes).unwrap().dev_name.len(), 64);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Superblock::parse(&bytes);
        }

        #[test]
        fn mutated_superblocks_never_panic(pos in 0usize..SUPERBLOCK_SIZE, val: u8, fix_crc: bool) {
            let mut b = vector_sb().to_bytes();
            b[pos] = val;
            if fix_crc {
                let c = crc32(&b[..96]);
                b[96..104].copy_from_slice(&u64::from(c).to_le_bytes());
            }
            if let Ok(sb) = Superblock::parse(&b) {
                prop_assert!(sb.log_len.is_power_of_two());
                prop_assert!(sb.dev_size > sb.data_start());
            }
        }
    }
}
