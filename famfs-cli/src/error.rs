//! Exit codes: an error carrying the status the reference uses for it.

/// An error that ends the command with a specific exit status.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct Failure {
    /// Process exit status (1..=127).
    pub code: i32,
    /// What went wrong (names the path and the reason).
    pub msg: String,
}

/// An error with exit status `code`.
pub fn fail(code: i32, msg: impl Into<String>) -> anyhow::Error {
    Failure {
        code: exit_val(code),
        msg: msg.into(),
    }
    .into()
}

/// The reference's `exit_val`: the absolute value, capped at 127 (so nothing looks like a
/// death by signal).
pub fn exit_val(rc: i32) -> i32 {
    rc.unsigned_abs().min(127) as i32
}

/// A count (errors, collisions) as an exit status, capped at 127.
pub fn count_exit(n: u64) -> i32 {
    n.min(127) as i32
}

/// The exit status for an error: the [`Failure`] code if one is in the chain, else 1.
pub fn exit_code_of(e: &anyhow::Error) -> i32 {
    e.chain()
        .find_map(|c| c.downcast_ref::<Failure>().map(|f| f.code))
        .unwrap_or(1)
}

/// The errno behind an error, if any layer knows one.
pub fn errno_of(e: &anyhow::Error) -> Option<i32> {
    e.chain().find_map(|c| {
        if let Some(x) = c.downcast_ref::<famfs_log::LogError>() {
            return Some(x.errno());
        }
        if let Some(x) = c.downcast_ref::<famfs_fsdev::FsdevError>() {
            return Some(x.errno());
        }
        if let Some(x) = c.downcast_ref::<std::io::Error>() {
            return x.raw_os_error();
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(exit_val(-22), 22);
        assert_eq!(exit_val(-1000), 127);
        assert_eq!(count_exit(3), 3);
        assert_eq!(count_exit(500), 127);
        let e = fail(-16, "busy").context("fsck /dev/dax0.0");
        assert_eq!(exit_code_of(&e), 16);
        assert_eq!(format!("{e:#}"), "fsck /dev/dax0.0: busy");
        let e = anyhow::anyhow!("plain");
        assert_eq!(exit_code_of(&e), 1);
        let e: anyhow::Error = std::io::Error::from_raw_os_error(libc::EACCES).into();
        assert_eq!(errno_of(&e), Some(libc::EACCES));
    }
}
