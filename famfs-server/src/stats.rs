//! Request counters and the daemon's self-description (`user.famfs.stats`).
//!
//! Every reply the [`Adapter`](crate::Adapter) produces is counted here, by opcode, whichever
//! transport carried it (/dev/fuse or io_uring): one relaxed atomic add per request, plus two
//! more for an error reply (by opcode and by errno); no lock on the request path. The counters
//! are shown live as the JSON value of the root's extended attribute `user.famfs.stats`
//! ([`STATS_XATTR`], schema [`StatsV1`]) and logged once when the daemon stops
//! ([`Stats::log_summary`]).
//!
//! Replies are counted as the adapter builds them: a READ whose bytes the transport then cannot
//! send (a device that shrank under the mount; the transport answers EIO and logs it) counts as
//! a request, not as an error.
//!
//! The value changes all the time, so it is produced anew for every GETXATTR. A size query
//! (the usual first half of a read) is answered with the size of the value produced for it plus
//! [`SLACK`] bytes of trailing white space, and a read is answered with the value produced for
//! it, padded with white space to at most the caller's buffer size: the counters may grow between
//! the two calls without the read failing with ERANGE.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use fuse_famfs_proto::Errno;
use fuse_famfs_proto::abi::Opcode;
use serde::{Deserialize, Serialize};

use crate::{FileSystem, Reply};

/// The name of the extended attribute of the mount root that holds the statistics.
pub const STATS_XATTR: &str = "user.famfs.stats";

/// The schema version of [`StatsV1`].
pub const STATS_VERSION: u32 = 1;

/// Bytes of white space added after the JSON for a size query, so that a read following it
/// still fits when counters have grown meanwhile.
pub const SLACK: usize = 256;

/// Opcodes counted one by one (0..64: every FUSE opcode and the famfs ones); any other
/// (`CUSE_INIT`, unknown ones) is counted under `OTHER`.
const OPCODES: usize = 64;
/// Errno values counted one by one (the kernel accepts 1..=511).
const ERRNOS: usize = 512;

/// Where file data is served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataPath {
    /// The famfs kernel maps files onto the device (`FUSE_DAX_FMAP` negotiated: GET_FMAP).
    FamfsKernel,
    /// The daemon serves READ and WRITE from its mapping of the device.
    Daemon,
}

/// Where the daemon reads the metadata (superblock and log) from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetadataSource {
    /// Through its own mapping of the device.
    DeviceMapping,
    /// Through the meta files of its own mount.
    OwnMount,
}

/// The log part of [`StatsV1`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogStatsV1 {
    /// Log entries replayed (examined) into the tree being served.
    pub entries_replayed: u64,
    /// Entries the log can hold.
    pub capacity: u64,
    /// When the daemon last looked at the log and found its tree up to date (milliseconds since
    /// the Unix epoch; the watcher looks every poll interval). 0: not since it started.
    pub last_refresh_unix_ms: u64,
}

/// The value of `user.famfs.stats`, version 1: keys are stable (new ones may be added, none
/// renamed or removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsV1 {
    /// [`STATS_VERSION`].
    pub version: u32,
    /// The device served (canonical path).
    pub device: String,
    /// `devdax`, `famfs`, `system-ram`, ... for a dax device, `file` for a stand-in file,
    /// `unknown` when it cannot be told.
    pub dax_mode: String,
    /// `master` or `client`.
    pub role: String,
    /// Where file data is served from.
    pub data_path: DataPath,
    /// Where the metadata is read from.
    pub metadata_source: MetadataSource,
    /// The log.
    pub log: LogStatsV1,
    /// Files in the tree (the meta files excluded).
    pub files: u64,
    /// Directories in the tree (the root excluded).
    pub directories: u64,
    /// Capacity for files in bytes (what `df` shows as the size).
    pub total_bytes: u64,
    /// Free bytes.
    pub free_bytes: u64,
    /// Requests answered, by opcode name (`LOOKUP`, `READ`, `GET_FMAP`, ...; opcodes never
    /// received are absent).
    pub requests: BTreeMap<String, u64>,
    /// Error replies, by opcode name.
    pub errors: BTreeMap<String, u64>,
    /// Error replies, by errno name (`ENOENT`, ...; a number when it has no name here).
    pub errnos: BTreeMap<String, u64>,
}

/// The daemon's counters and the facts about it that are only known after it started.
#[derive(Debug)]
pub struct Stats {
    requests: [AtomicU64; OPCODES + 1],
    errors: [AtomicU64; OPCODES + 1],
    errnos: [AtomicU64; ERRNOS],
    famfs_kernel: AtomicBool,
    metadata_source: AtomicU8,
    last_refresh_ms: AtomicU64,
    /// The device's dax mode, once told (it cannot change while the daemon maps the device).
    dax_mode: OnceLock<String>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
            errnos: std::array::from_fn(|_| AtomicU64::new(0)),
            famfs_kernel: AtomicBool::new(false),
            metadata_source: AtomicU8::new(0),
            last_refresh_ms: AtomicU64::new(0),
            dax_mode: OnceLock::new(),
        }
    }
}

fn slot(opcode: u32) -> usize {
    (opcode as usize).min(OPCODES)
}

fn opcode_name(slot: usize) -> String {
    if slot == OPCODES {
        return "OTHER".to_string();
    }
    Opcode(slot as u32)
        .name()
        .map_or_else(|| format!("OPCODE_{slot}"), str::to_string)
}

fn errno_name(e: usize) -> String {
    i32::try_from(e)
        .ok()
        .and_then(Errno::new)
        .and_then(Errno::name)
        .map_or_else(|| e.to_string(), str::to_string)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The non-zero counters of `c`, named by `name`.
fn nonzero(c: &[AtomicU64], name: impl Fn(usize) -> String) -> BTreeMap<String, u64> {
    c.iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let n = n.load(Ordering::Relaxed);
            (n > 0).then(|| (name(i), n))
        })
        .collect()
}

impl Stats {
    /// Count one request (`req`: its bytes) and the reply produced for it (`out` holds the
    /// bytes of a [`Reply::Bytes`] or [`Reply::Last`]): by opcode, and, for an error reply, by
    /// opcode and errno. A request too short to have an opcode is not counted.
    pub fn record(&self, req: &[u8], out: &[u8], reply: &Reply) {
        let Some(op) = req.get(4..8) else { return };
        let op = slot(u32::from_le_bytes([op[0], op[1], op[2], op[3]]));
        self.requests[op].fetch_add(1, Ordering::Relaxed);
        let n = match reply {
            Reply::Bytes(n) | Reply::Last(n) => *n,
            Reply::None | Reply::Read { .. } => return,
        };
        let Some(e) = out.get(4..8).filter(|_| n >= 16) else {
            return;
        };
        let errno = i32::from_le_bytes([e[0], e[1], e[2], e[3]]);
        if errno < 0 {
            self.errors[op].fetch_add(1, Ordering::Relaxed);
            let i = (errno.unsigned_abs() as usize).min(ERRNOS - 1);
            self.errnos[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests counted for `opcode` so far.
    pub fn requests(&self, opcode: Opcode) -> u64 {
        self.requests[slot(opcode.0)].load(Ordering::Relaxed)
    }

    /// Error replies counted for `opcode` so far.
    pub fn errors(&self, opcode: Opcode) -> u64 {
        self.errors[slot(opcode.0)].load(Ordering::Relaxed)
    }

    /// Record what INIT settled: whether the famfs kernel path (`FUSE_DAX_FMAP`) is in use.
    pub fn set_data_path(&self, famfs_kernel: bool) {
        self.famfs_kernel.store(famfs_kernel, Ordering::Relaxed);
    }

    /// Where file data is served from (the daemon until INIT says otherwise).
    pub fn data_path(&self) -> DataPath {
        if self.famfs_kernel.load(Ordering::Relaxed) {
            DataPath::FamfsKernel
        } else {
            DataPath::Daemon
        }
    }

    /// Record where the metadata is read from (the device mapping unless set).
    pub fn set_metadata_source(&self, source: MetadataSource) {
        let v = match source {
            MetadataSource::DeviceMapping => 0,
            MetadataSource::OwnMount => 1,
        };
        self.metadata_source.store(v, Ordering::Relaxed);
    }

    /// Where the metadata is read from.
    pub fn metadata_source(&self) -> MetadataSource {
        match self.metadata_source.load(Ordering::Relaxed) {
            1 => MetadataSource::OwnMount,
            _ => MetadataSource::DeviceMapping,
        }
    }

    /// Note that the tree was found up to date with the log just now.
    pub fn refreshed(&self) {
        self.last_refresh_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// When the tree was last found up to date (ms since the epoch; 0: never).
    pub fn last_refresh_unix_ms(&self) -> u64 {
        self.last_refresh_ms.load(Ordering::Relaxed)
    }

    /// The non-zero request counters by opcode name.
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        nonzero(&self.requests, opcode_name)
    }

    /// The non-zero error counters by opcode name.
    pub fn error_counts(&self) -> BTreeMap<String, u64> {
        nonzero(&self.errors, opcode_name)
    }

    /// The non-zero error counters by errno name.
    pub fn errno_counts(&self) -> BTreeMap<String, u64> {
        nonzero(&self.errnos, errno_name)
    }

    /// One line with every non-zero counter, e.g. `requests: LOOKUP=3 READ=10; errors:
    /// LOOKUP=1 (ENOENT=1)`.
    pub fn summary(&self) -> String {
        let join = |m: BTreeMap<String, u64>| {
            if m.is_empty() {
                return "none".to_string();
            }
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        format!(
            "requests: {}; errors: {} ({})",
            join(self.request_counts()),
            join(self.error_counts()),
            join(self.errno_counts())
        )
    }

    /// Log [`Stats::summary`] at info level (when the daemon stops).
    pub fn log_summary(&self) {
        tracing::info!("request counters at exit: {}", self.summary());
    }
}

/// The dax mode of the device at `path`, as `user.famfs.stats` names it; `None` if it cannot
/// be told now.
fn dax_mode(path: &std::path::Path) -> Option<String> {
    use famfs_fsdev::{Access, DaxDevice, DeviceKind};
    match DaxDevice::open(path, Access::ReadOnly).ok()?.kind() {
        DeviceKind::DaxChar { mode, .. } => match mode {
            famfs_fsdev::DaxMode::Unknown(_) => None,
            m => Some(m.to_string()),
        },
        DeviceKind::File => Some("file".to_string()),
        DeviceKind::Memfd => Some("memfd".to_string()),
    }
}

impl Stats {
    /// The dax mode of the device at `path`, looked up once.
    fn dax_mode_of(&self, path: &std::path::Path) -> String {
        if let Some(m) = self.dax_mode.get() {
            return m.clone();
        }
        match dax_mode(path) {
            Some(m) => self.dax_mode.get_or_init(|| m).clone(),
            None => "unknown".to_string(),
        }
    }
}

/// The statistics of `fs` now; EAGAIN before the log has been read (bootstrap through the own
/// mount), EIO while it serves nothing (the device holds no valid famfs).
pub fn snapshot(fs: &FileSystem) -> Result<StatsV1, Errno> {
    let st = fs.stats();
    let (log, files, directories, total_bytes, free_bytes) = {
        let log = fs
            .shared_log()
            .ok_or(Errno::new_clamped(libc::EAGAIN))?
            .read()?;
        let state = log.state();
        let bm = state.bitmap();
        let s = state.stats();
        let unit = famfs_fsdev::ALLOC_UNIT;
        (
            LogStatsV1 {
                entries_replayed: s.entries,
                capacity: log.header().slots(),
                last_refresh_unix_ms: st.last_refresh_unix_ms(),
            },
            s.files,
            s.dirs,
            bm.nbits() * unit,
            (bm.nbits() - bm.count_set()) * unit,
        )
    };
    let device = fs.device_name();
    Ok(StatsV1 {
        version: STATS_VERSION,
        dax_mode: st.dax_mode_of(&device),
        device: device.display().to_string(),
        role: match fs.role() {
            famfs_log::role::Role::Master => "master",
            _ => "client",
        }
        .to_string(),
        data_path: st.data_path(),
        metadata_source: st.metadata_source(),
        log,
        files,
        directories,
        total_bytes,
        free_bytes,
        requests: st.request_counts(),
        errors: st.error_counts(),
        errnos: st.errno_counts(),
    })
}

/// The JSON value of `user.famfs.stats` for `fs` now.
pub(crate) fn xattr_value(fs: &FileSystem) -> Result<Vec<u8>, Errno> {
    serde_json::to_vec(&snapshot(fs)?).map_err(|_| Errno::EIO)
}

/// Pad the value `v` for a GETXATTR with buffer `size` (see the module docs): a size query
/// (0) gets [`SLACK`] bytes of white space; a read whose buffer holds the value gets white space
/// up to that size, at most [`SLACK`] bytes; a value larger than the buffer is left as is (the
/// reply is ERANGE).
pub(crate) fn pad(v: &mut Vec<u8>, size: u32) {
    let want = if size == 0 {
        v.len() + SLACK
    } else {
        (size as usize).min(v.len() + SLACK)
    };
    if want > v.len() {
        v.resize(want, b' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fuse_famfs_proto::abi::InHeader;
    use zerocopy::IntoBytes;

    fn req(op: Opcode) -> Vec<u8> {
        let h = InHeader {
            len: 40,
            opcode: op.0,
            unique: 7,
            ..Default::default()
        };
        h.as_bytes().to_vec()
    }

    fn reply(errno: Option<Errno>) -> (Vec<u8>, Reply) {
        let mut out = vec![0u8; 64];
        let n = match errno {
            Some(e) => fuse_famfs_proto::reply::error(&mut out, 7, e).unwrap(),
            None => fuse_famfs_proto::reply::empty(&mut out, 7).unwrap(),
        };
        (out, Reply::Bytes(n))
    }

    #[test]
    fn counts_requests_and_errors_by_opcode_and_errno() {
        let s = Stats::default();
        let (ok, r_ok) = reply(None);
        let (enoent, r_enoent) = reply(Some(Errno::ENOENT));
        for _ in 0..3 {
            s.record(&req(Opcode::LOOKUP), &ok, &r_ok);
        }
        s.record(&req(Opcode::LOOKUP), &enoent, &r_enoent);
        s.record(&req(Opcode::GET_FMAP), &ok, &r_ok);
        let read = Reply::Read {
            unique: 7,
            segments: vec![(0, 10)],
        };
        // A READ reply's bytes are sent from the mapping: `out` is not looked at.
        s.record(&req(Opcode::READ), &enoent, &read);
        s.record(&req(Opcode::FORGET), &enoent, &Reply::None);
        s.record(&req(Opcode::CUSE_INIT), &ok, &r_ok);
        s.record(&req(Opcode(7)), &enoent, &r_enoent);
        // Too short to have an opcode: not counted.
        s.record(&[1, 2, 3], &ok, &r_ok);
        assert_eq!(s.requests(Opcode::LOOKUP), 4);
        assert_eq!(s.errors(Opcode::LOOKUP), 1);
        assert_eq!(s.requests(Opcode::READ), 1);
        assert_eq!(s.errors(Opcode::READ), 0);
        let want: BTreeMap<String, u64> = [
            ("FORGET", 1),
            ("GET_FMAP", 1),
            ("LOOKUP", 4),
            ("OPCODE_7", 1),
            ("OTHER", 1),
            ("READ", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(s.request_counts(), want);
        assert_eq!(s.errno_counts().get("ENOENT"), Some(&2));
        assert_eq!(s.error_counts().len(), 2);
        assert_eq!(
            s.summary(),
            "requests: FORGET=1 GET_FMAP=1 LOOKUP=4 OPCODE_7=1 OTHER=1 READ=1; \
             errors: LOOKUP=1 OPCODE_7=1 (ENOENT=2)"
        );
        assert_eq!(
            Stats::default().summary(),
            "requests: none; errors: none (none)"
        );
    }

    #[test]
    fn errnos_without_a_name_are_numbers() {
        assert_eq!(errno_name(2), "ENOENT");
        assert_eq!(errno_name(500), "500");
    }

    #[test]
    fn data_path_and_metadata_source_are_settable() {
        let s = Stats::default();
        assert_eq!(s.data_path(), DataPath::Daemon);
        s.set_data_path(true);
        assert_eq!(s.data_path(), DataPath::FamfsKernel);
        assert_eq!(s.metadata_source(), MetadataSource::DeviceMapping);
        s.set_metadata_source(MetadataSource::OwnMount);
        assert_eq!(s.metadata_source(), MetadataSource::OwnMount);
        assert_eq!(
            serde_json::to_string(&(DataPath::FamfsKernel, MetadataSource::DeviceMapping)).unwrap(),
            r#"["famfs-kernel","device-mapping"]"#
        );
        assert_eq!(s.last_refresh_unix_ms(), 0);
        s.refreshed();
        assert!(s.last_refresh_unix_ms() > 1_700_000_000_000);
    }

    #[test]
    fn padding_leaves_room_to_grow() {
        let json = br#"{"a":1}"#.to_vec();
        let mut probe = json.clone();
        pad(&mut probe, 0);
        assert_eq!(probe.len(), json.len() + SLACK);
        // The value grew by 10 bytes since the size query: it still fits.
        let mut grown = br#"{"a":12345678901}"#.to_vec();
        pad(&mut grown, probe.len() as u32);
        assert_eq!(grown.len(), probe.len());
        assert!(grown.starts_with(br#"{"a":12345678901}"#));
        let v: serde_json::Value = serde_json::from_slice(&grown).unwrap();
        assert_eq!(v["a"], 12345678901u64);
        // A large buffer gets at most SLACK bytes of padding.
        let mut big = json.clone();
        pad(&mut big, 65536);
        assert_eq!(big.len(), json.len() + SLACK);
        // Too small: unchanged (the reply is ERANGE).
        let mut small = json.clone();
        pad(&mut small, 3);
        assert_eq!(small, json);
    }
}
