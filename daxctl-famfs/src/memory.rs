//! Memory-block onlining and offlining for system-ram mode, as libdaxctl does it: the device's
//! blocks are the `memoryN` entries of its target node whose physical start lies inside the
//! device's range; their `state` files are written through the node's links.

use std::path::PathBuf;

use crate::parse::parse_hex_u64;
use crate::{DaxDev, DaxMode, Error, Result, Sysfs};

/// Zone name a movable online must produce.
pub const ZONE_MOVABLE: &str = "Movable";
/// Zone name a plain (`--no-movable`) online must produce.
pub const ZONE_NORMAL: &str = "Normal";

/// One memory block of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemBlock {
    /// `memoryN`.
    pub name: String,
    /// N (the `phys_index`).
    pub index: u64,
    /// The block directory as daxctl addresses it: `<node path>/memoryN`.
    pub dir: PathBuf,
}

/// Online state of a system-ram device's memory, as `daxctl list` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStatus {
    /// Blocks online (`online_memblocks`).
    pub online: usize,
    /// Blocks of the device (`total_memblocks`).
    pub total: usize,
    /// Whether every block is online in ZONE_MOVABLE; `None` when undeterminable (a block is
    /// offline), as daxctl omits the key then.
    pub movable: Option<bool>,
}

/// Outcome of an online/offline operation that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryOpOutcome {
    /// Every block was already in the requested state (daxctl prints "all memory sections (N)
    /// already online/offline").
    AlreadyDone {
        /// Number of blocks.
        total: usize,
    },
    /// Blocks were changed.
    Changed {
        /// How many blocks were switched.
        changed: usize,
        /// Number of blocks.
        total: usize,
    },
}

impl Sysfs {
    /// The memory blocks belonging to a device (sorted by index).
    ///
    /// Needs a target node (ENXIO otherwise), a non-zero `block_size_bytes` and a readable
    /// `resource` (EACCES otherwise, as for non-root users).
    pub fn memory_blocks(&self, dev: &DaxDev) -> Result<Vec<MemBlock>> {
        let node = dev.target_node.ok_or_else(|| Error::NoTargetNode {
            device: dev.name.clone(),
        })?;
        let bs_path = self.sys("devices/system/memory/block_size_bytes");
        let block_size = self.parse_attr(&bs_path, parse_hex_u64, "a hex block size")?;
        if block_size == 0 {
            return Err(Error::ZeroBlockSize { path: bs_path });
        }
        let node_path = self.sys(&format!("devices/system/node/node{node}"));
        let entries = self
            .backend
            .read_dir(&node_path)
            .map_err(|e| Error::read(&node_path, e))?;
        let dev_end = dev.resource.saturating_add(dev.size.saturating_sub(1));
        let mut blocks = Vec::new();
        for entry in entries {
            if !entry.starts_with("memory") || entry.starts_with("memory_") {
                continue;
            }
            let pi = self.sys(&format!("devices/system/memory/{entry}/phys_index"));
            let index = self.parse_attr(&pi, parse_hex_u64, "a hex phys_index")?;
            if dev.resource == 0 {
                return Err(Error::NoResource {
                    device: dev.name.clone(),
                    path: dev.path.join("resource"),
                });
            }
            let Some(start) = index.checked_mul(block_size) else {
                continue;
            };
            if start >= dev.resource && start <= dev_end && dev.size > 0 {
                blocks.push(MemBlock {
                    dir: node_path.join(&entry),
                    name: entry,
                    index,
                });
            }
        }
        blocks.sort_by_key(|b| b.index);
        Ok(blocks)
    }

    fn block_state(&self, b: &MemBlock) -> Result<String> {
        self.read_attr(&b.dir.join("state"))
    }

    fn block_online(&self, b: &MemBlock) -> Result<bool> {
        Ok(self.block_state(b)? == "online")
    }

    fn require_system_ram(&self, dev: &DaxDev) -> Result<()> {
        match dev.mode() {
            DaxMode::SystemRam => Ok(()),
            mode => Err(Error::NotSystemRam {
                device: dev.name.clone(),
                mode,
            }),
        }
    }

    /// Counts a system-ram device's online blocks and checks their zone.
    pub fn memory_status(&self, dev: &DaxDev) -> Result<MemoryStatus> {
        self.require_system_ram(dev)?;
        let blocks = self.memory_blocks(dev)?;
        let mut online = 0;
        let mut zone: Option<Option<String>> = Some(None);
        for b in &blocks {
            if self.block_online(b)? {
                online += 1;
                if let Some(z) = zone.as_mut() {
                    let vz = self.read_attr(&b.dir.join("valid_zones"))?;
                    match z {
                        None => *z = Some(vz),
                        Some(prev) if *prev != vz => *z = Some(String::new()),
                        Some(_) => {}
                    }
                }
            } else {
                zone = None;
            }
        }
        Ok(MemoryStatus {
            online,
            total: blocks.len(),
            movable: zone.map(|z| z.as_deref() == Some(ZONE_MOVABLE)),
        })
    }

    /// Onlines a system-ram device's offline blocks: writes `online_movable` (or `online` when
    /// `movable` is false) to each block's `state`, then verifies every block landed in the
    /// expected zone (EBUSY otherwise: something else onlined it first) and that none stayed
    /// offline (ENXIO).
    pub fn online_memory(&self, dev: &DaxDev, movable: bool) -> Result<MemoryOpOutcome> {
        self.require_system_ram(dev)?;
        let blocks = self.memory_blocks(dev)?;
        let mut offline = Vec::new();
        for b in &blocks {
            if !self.block_online(b)? {
                offline.push(b);
            }
        }
        if offline.is_empty() {
            tracing::info!(
                "{}: all memory sections ({}) already online",
                dev.name,
                blocks.len()
            );
            return Ok(MemoryOpOutcome::AlreadyDone {
                total: blocks.len(),
            });
        }
        if offline.len() != blocks.len() {
            tracing::warn!(
                "{}: WARNING: detected a race while onlining memory: {} of {} blocks were \
                 already online and may not be in the expected zone",
                dev.name,
                blocks.len() - offline.len(),
                blocks.len()
            );
        }
        let (value, zone) = if movable {
            ("online_movable", ZONE_MOVABLE)
        } else {
            ("online", ZONE_NORMAL)
        };
        for b in &offline {
            if let Err(e) = self.write_attr(&b.dir.join("state"), value)
                && !self.block_online(b)?
            {
                return Err(e);
            }
        }
        for b in &blocks {
            if !self.block_online(b)? {
                continue;
            }
            let vz = self.read_attr(&b.dir.join("valid_zones"))?;
            if vz != zone {
                return Err(Error::ZoneRace {
                    device: dev.name.clone(),
                    block: b.name.clone(),
                    expected: zone,
                    actual: vz,
                });
            }
        }
        let mut still = 0;
        for b in &blocks {
            if !self.block_online(b)? {
                still += 1;
            }
        }
        if still > 0 {
            return Err(Error::MemoryOpIncomplete {
                device: dev.name.clone(),
                op: "online",
                count: still,
            });
        }
        Ok(MemoryOpOutcome::Changed {
            changed: offline.len(),
            total: blocks.len(),
        })
    }

    /// Offlines a system-ram device's online blocks: refuses (EOPNOTSUPP) at the first block
    /// whose `removable` is 0, otherwise writes `offline` to each online block's `state`; the
    /// kernel's errno is returned if it refuses, ENXIO if blocks stay online.
    pub fn offline_memory(&self, dev: &DaxDev) -> Result<MemoryOpOutcome> {
        self.require_system_ram(dev)?;
        let blocks = self.memory_blocks(dev)?;
        let mut online = Vec::new();
        for b in &blocks {
            if self.block_online(b)? {
                online.push(b);
            }
        }
        if online.is_empty() {
            tracing::info!(
                "{}: all memory sections ({}) already offline",
                dev.name,
                blocks.len()
            );
            return Ok(MemoryOpOutcome::AlreadyDone {
                total: blocks.len(),
            });
        }
        for b in &online {
            let rp = b.dir.join("removable");
            if self.read_attr(&rp)? == "0" {
                return Err(Error::Unremovable {
                    device: dev.name.clone(),
                    block: b.name.clone(),
                    path: rp,
                });
            }
            if let Err(e) = self.write_attr(&b.dir.join("state"), "offline")
                && self.block_online(b)?
            {
                return Err(e);
            }
        }
        let mut still = 0;
        for b in &blocks {
            if self.block_online(b)? {
                still += 1;
            }
        }
        if still > 0 {
            return Err(Error::MemoryOpIncomplete {
                device: dev.name.clone(),
                op: "offline",
                count: still,
            });
        }
        Ok(MemoryOpOutcome::Changed {
            changed: online.len(),
            total: blocks.len(),
        })
    }
}
