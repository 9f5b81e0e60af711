//! `famfs status [MPT]`: what each famfs mount's daemon reports about itself — device, dax mode
//! and role, the data path, the log, files and free space, request counters — read from the
//! mount root's `user.famfs.stats` attribute (any user may read it), with the daemon's pid from
//! `user.famfs.pid`; and `--log-level` to change the daemon's log filter through its control
//! channel (root only).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use famfs_server::control::proto::{Answer, Request};
use famfs_server::stats::{DataPath, STATS_XATTR, StatsV1};
use serde::Serialize;

use crate::cmd::stale::{is_disconnected, stale_message};
use crate::cmd::umount::{absolute_mpt, get_xattr};
use crate::error::{exit_code_of, fail};
use crate::mounts::{famfs_mount_at, read_mounts};

/// Exit codes and sources of `famfs status`.
pub const STATUS_HELP: &str = "\
Without MPT every famfs mount (fuse.famfs in /proc/mounts) is reported. The figures come from the \
mount root's extended attribute user.famfs.stats (JSON, readable by any user) and the daemon's \
pid from user.famfs.pid; `log filter` is shown only to root (from the daemon's control channel).

--log-level LEVEL changes the log filter of the daemon serving MPT while it runs (root only; \
through its control channel): error, warn, info, debug, trace, or a RUST_LOG filter such as \
famfs_server=debug,info. The daemon's log is /run/famfs/<hash>.log (see famfs mount --help).

Exit status: 0 reported; 1 MPT is not a famfs mount point, or its daemon does not publish \
user.famfs.stats (an older famfs_fused); 2 MPT does not exist, or an unknown option; 13 \
--log-level without root; 22 a log level the daemon refuses; 95 the daemon has no control \
channel (started with --no-control); 107 a stale mount (its daemon died). Without MPT: the code \
of the first mount that could not be reported (the others are still reported).";

/// `famfs status`.
#[derive(Debug, Args)]
#[command(after_help = STATUS_HELP)]
pub struct StatusArgs {
    /// Print a JSON array, one object per mount (schema: famfs-cli/README.md).
    #[arg(long = "json")]
    pub json: bool,
    /// First set the log filter of the daemon serving MPT (root only): error, warn, info,
    /// debug, trace, or a RUST_LOG filter.
    #[arg(long = "log-level", value_name = "LEVEL", requires = "mpt")]
    pub log_level: Option<String>,
    /// A famfs mount point (default: every famfs mount).
    #[arg(value_name = "MPT")]
    pub mpt: Option<PathBuf>,
}

/// One mount as `famfs status --json` prints it.
#[derive(Debug, Serialize)]
pub struct MountStatusJson {
    /// The mount point.
    pub mountpoint: String,
    /// The daemon's pid (`user.famfs.pid`), if it tells.
    pub pid: Option<u32>,
    /// The daemon's log filter, when known (root, through the control channel).
    pub log_filter: Option<String>,
    /// Why the mount could not be reported (the figures below are then absent).
    pub error: Option<String>,
    /// The daemon's figures (`user.famfs.stats`).
    #[serde(flatten)]
    pub stats: Option<StatsV1>,
}

/// What was found about one mount, and the exit code if it failed.
struct Report {
    json: MountStatusJson,
    code: i32,
}

/// The value of `name` on `path`, read into a buffer large enough for any attribute (so a
/// value that grows between a size query and the read does not matter).
fn read_xattr(path: &Path, name: &str) -> std::io::Result<Vec<u8>> {
    crate::xattr::read(path, name, 65536)
}

/// The daemon's figures for the mount at `mpt`.
fn stats_of(mpt: &Path) -> Result<StatsV1> {
    let raw = read_xattr(mpt, STATS_XATTR).map_err(|e| match e.raw_os_error() {
        // While the kernel tears down the connection of a daemon that just died, requests may
        // also fail with ECONNABORTED, or ECANCELED on a FUSE-over-io_uring ring.
        Some(libc::ENOTCONN | libc::ECONNABORTED | libc::ECANCELED) => {
            fail(libc::ENOTCONN, stale_message(mpt))
        }
        Some(libc::ENODATA | libc::ENOTSUP) => fail(
            1,
            format!(
                "the famfs_fused serving {} does not publish {STATS_XATTR} (an older daemon?)",
                mpt.display()
            ),
        ),
        Some(errno) => fail(errno, format!("{}: {STATS_XATTR}: {e}", mpt.display())),
        None => fail(libc::EIO, format!("{}: {STATS_XATTR}: {e}", mpt.display())),
    })?;
    serde_json::from_slice(&raw).map_err(|e| {
        fail(
            libc::EIO,
            format!(
                "{}: {STATS_XATTR} is not what this famfs expects: {e}",
                mpt.display()
            ),
        )
    })
}

/// The daemon's log filter through its control channel (root only; `None` otherwise).
fn log_filter_of(mpt: &Path) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let mut c = crate::control::connect_admin(mpt).ok()?;
    match c.call(&Request::Status) {
        Ok(Ok(Answer::Status(s))) => s.log_filter,
        _ => None,
    }
}

/// Set the log filter of the daemon serving `mpt`.
fn set_log_level(mpt: &Path, level: &str) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Err(fail(
            libc::EACCES,
            format!(
                "changing the log level of the famfs_fused serving {} needs root (its control \
                 channel is root only)",
                mpt.display()
            ),
        ));
    }
    let mut c = crate::control::connect_admin(mpt)?;
    let req = Request::SetLogLevel {
        filter: level.to_string(),
    };
    match c.call(&req)? {
        Ok(_) => Ok(()),
        Err(e) => Err(fail(
            e.errno,
            format!(
                "the daemon serving {} refused log level {level:?}: {e}",
                mpt.display()
            ),
        )),
    }
}

/// Everything about the famfs mounted at `mpt`.
fn report(mpt: &Path) -> Report {
    let mut json = MountStatusJson {
        mountpoint: mpt.display().to_string(),
        pid: None,
        log_filter: None,
        error: None,
        stats: None,
    };
    let got = if is_disconnected(mpt) {
        Err(fail(libc::ENOTCONN, stale_message(mpt)))
    } else {
        stats_of(mpt)
    };
    match got {
        Ok(s) => {
            json.stats = Some(s);
            json.pid = get_xattr(mpt, "user.famfs.pid")
                .and_then(|b| String::from_utf8_lossy(&b).trim().parse().ok());
            json.log_filter = log_filter_of(mpt);
            Report { json, code: 0 }
        }
        Err(e) => {
            json.error = Some(format!("{e:#}"));
            Report {
                json,
                code: exit_code_of(&e),
            }
        }
    }
}

/// The famfs mount at `p` (made absolute without touching a dead mount).
fn named_mount(p: &Path) -> Result<PathBuf> {
    let abs = absolute_mpt(p);
    let table = read_mounts();
    if let Some(m) = famfs_mount_at(&table, &abs) {
        return Ok(m.target.clone());
    }
    if !abs.exists() {
        return Err(fail(
            libc::ENOENT,
            format!("{}: no such file or directory", p.display()),
        ));
    }
    Err(fail(
        1,
        format!(
            "{} is not a famfs mount point (famfs status takes the directory a famfs is \
             mounted on; `famfs status` alone lists every famfs mount)",
            abs.display()
        ),
    ))
}

/// `famfs status [--json] [--log-level LEVEL] [MPT]`.
pub fn status(a: StatusArgs) -> Result<i32> {
    let mpts = match &a.mpt {
        Some(p) => {
            let m = named_mount(p)?;
            if a.log_level.is_some() && is_disconnected(&m) {
                return Err(fail(libc::ENOTCONN, stale_message(&m)));
            }
            if let Some(level) = &a.log_level {
                set_log_level(&m, level)?;
            }
            vec![m]
        }
        None => read_mounts()
            .into_iter()
            .filter(|m| m.is_famfs())
            .map(|m| m.target)
            .collect(),
    };
    let reports: Vec<Report> = mpts.iter().map(|m| report(m)).collect();
    if let (Some(_), Some(r)) = (&a.mpt, reports.first())
        && r.code != 0
    {
        // One mount named: its failure is the command's error, and nothing goes to stdout.
        return Err(fail(r.code, r.json.error.clone().unwrap_or_default()));
    }
    if a.json {
        let all: Vec<&MountStatusJson> = reports.iter().map(|r| &r.json).collect();
        crate::json::print(&all)?;
    } else if reports.is_empty() {
        eprintln!("famfs status: no famfs mounts");
    } else {
        let texts: Vec<String> = reports.iter().map(|r| text(&r.json)).collect();
        print!("{}", texts.join("\n"));
    }
    Ok(reports
        .iter()
        .map(|r| r.code)
        .find(|&c| c != 0)
        .unwrap_or(0))
}

/// `YYYY-MM-DD HH:MM:SS.mmm UTC` for `ms` since the Unix epoch (proleptic Gregorian calendar).
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86400) as i64;
    let tod = secs % 86400;
    // Days since 1970-01-01 to a civil date: count in 400-year eras starting on March 1st.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03} UTC",
        tod / 3600,
        tod / 60 % 60,
        tod % 60,
        ms % 1000
    )
}

/// How long ago `ms` (since the epoch) was, e.g. `1.5 s ago`.
fn ago(ms: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    format!("{:.1} s ago", now.saturating_sub(ms) as f64 / 1000.0)
}

/// The text report of one mount: aligned `key: value` lines, then the counters table.
pub fn text(j: &MountStatusJson) -> String {
    let mut lines: Vec<(&str, String)> = vec![("mountpoint", j.mountpoint.clone())];
    if let Some(e) = &j.error {
        lines.push(("error", e.clone()));
    }
    if let Some(p) = j.pid {
        lines.push(("pid", p.to_string()));
    }
    if let Some(s) = &j.stats {
        let data = match s.data_path {
            DataPath::FamfsKernel => "famfs-kernel (the kernel maps files onto the device)",
            DataPath::Daemon => "daemon (famfs_fused serves READ and WRITE)",
        };
        let pct = |n: u64| {
            if s.total_bytes == 0 {
                0.0
            } else {
                n as f64 * 100.0 / s.total_bytes as f64
            }
        };
        let refresh = match s.log.last_refresh_unix_ms {
            0 => "never".to_string(),
            ms => format!("{} ({})", utc(ms), ago(ms)),
        };
        lines.extend([
            ("device", s.device.clone()),
            ("dax mode", s.dax_mode.clone()),
            ("role", s.role.clone()),
            ("data path", data.to_string()),
            (
                "metadata source",
                serde_json::to_value(s.metadata_source)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            ),
            (
                "log entries",
                format!("{} of {}", s.log.entries_replayed, s.log.capacity),
            ),
            ("files", s.files.to_string()),
            ("directories", s.directories.to_string()),
            ("total bytes", s.total_bytes.to_string()),
            (
                "free bytes",
                format!("{} ({:.1}%)", s.free_bytes, pct(s.free_bytes)),
            ),
            ("last refresh", refresh),
        ]);
    }
    if let Some(f) = &j.log_filter {
        lines.push(("log filter", f.clone()));
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (k, v) in &lines {
        out.push_str(&format!("{:<width$} {v}\n", format!("{k}:")));
    }
    if let Some(s) = &j.stats {
        out.push_str(&counters_table(s));
    }
    out
}

/// The request counters: one row per opcode received, with its error replies; then the error
/// replies by errno.
fn counters_table(s: &StatsV1) -> String {
    let mut out = format!("{:<16} {:>12} {:>10}\n", "opcode", "requests", "errors");
    for (op, n) in &s.requests {
        let e = s.errors.get(op).copied().unwrap_or(0);
        out.push_str(&format!("{op:<16} {n:>12} {e:>10}\n"));
    }
    if !s.errnos.is_empty() {
        let by: Vec<String> = s.errnos.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!("errors by errno: {}\n", by.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00.000 UTC");
        assert_eq!(utc(1_764_892_799_999), "2025-12-04 23:59:59.999 UTC");
        assert_eq!(utc(4_102_444_800_123), "2100-01-01 00:00:00.123 UTC");
    }

    #[test]
    fn non_famfs_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = named_mount(dir.path()).unwrap_err();
        assert_eq!(exit_code_of(&e), 1);
        assert!(e.to_string().contains("is not a famfs mount point"), "{e}");
        let e = named_mount(&dir.path().join("missing")).unwrap_err();
        assert_eq!(exit_code_of(&e), 2);
    }
}
