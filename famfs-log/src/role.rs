//! Host identity: the system UUID and the master/client role it gives.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::LogError;
use crate::superblock::Superblock;

/// Where the reference keeps the system UUID.
pub const SYSTEM_UUID_PATH: &str = "/opt/famfs/system_uuid";
/// Environment variable holding a system UUID that overrides the file (tests, containers).
pub const SYSTEM_UUID_ENV: &str = "FAMFS_SYSTEM_UUID";
/// Environment variable naming another system UUID file.
pub const SYSTEM_UUID_FILE_ENV: &str = "FAMFS_SYSTEM_UUID_FILE";

/// A host's role for one file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The superblock's owner: the only host that may append to the log.
    Master,
    /// Any other host: reads the log, never writes.
    Client,
    /// No valid superblock.
    NoSuper,
}

impl Role {
    /// The role of a host with system UUID `local` for a file system with superblock `sb`.
    pub fn of(sb: Option<&Superblock>, local: Option<Uuid>) -> Role {
        match (sb, local) {
            (None, _) => Role::NoSuper,
            (Some(sb), Some(u)) if sb.system_uuid == u => Role::Master,
            (Some(_), _) => Role::Client,
        }
    }

    /// The reference's name for the role in fsck output.
    pub fn describe(self) -> &'static str {
        match self {
            Role::Master => "Owner",
            Role::Client => "Client",
            Role::NoSuper => "Invalid superblock",
        }
    }
}

/// This host's system UUID: `$FAMFS_SYSTEM_UUID` if set, else the file named by
/// `$FAMFS_SYSTEM_UUID_FILE` or [`SYSTEM_UUID_PATH`], created on first use as the reference does.
pub fn system_uuid() -> Result<Uuid, LogError> {
    if let Some(v) = std::env::var_os(SYSTEM_UUID_ENV) {
        let s = v.to_string_lossy();
        return Uuid::parse_str(s.trim()).map_err(|e| LogError::SystemUuid {
            path: PathBuf::from(format!("${SYSTEM_UUID_ENV}")),
            detail: format!("{s:?} is not a UUID: {e}"),
        });
    }
    let path = std::env::var_os(SYSTEM_UUID_FILE_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SYSTEM_UUID_PATH));
    load_or_create_system_uuid(&path)
}

/// Read the system UUID from `path` (36 characters, optionally followed by NUL or newline),
/// creating the file with a fresh UUID — directory 0755, file 0444, 37 bytes (text + NUL), as
/// the reference does — when it does not exist.
pub fn load_or_create_system_uuid(path: &Path) -> Result<Uuid, LogError> {
    let err = |detail: String| LogError::SystemUuid {
        path: path.to_path_buf(),
        detail,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            let text: Vec<u8> = bytes.iter().copied().take_while(|&b| b != 0).collect();
            let text = String::from_utf8_lossy(&text);
            Uuid::parse_str(text.trim()).map_err(|e| err(format!("not a UUID ({e}): {text:?}")))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(dir)
                    .map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
            }
            let u = Uuid::new_v4();
            let mut text = u.hyphenated().to_string().into_bytes();
            text.push(0);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o444)
                .open(path);
            if let Err(e) = &f
                && e.kind() == std::io::ErrorKind::AlreadyExists
            {
                // Another process created it first: use theirs.
                return load_or_create_system_uuid(path);
            }
            f.as_mut()
                .map_err(|e| err(format!("cannot create: {e}")))?
                .write_all(&text)
                .map_err(|e| err(format!("cannot write: {e}")))?;
            Ok(u)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_on_first_use_then_stable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("opt/famfs/system_uuid");
        let u = load_or_create_system_uuid(&p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.len(), 37);
        assert_eq!(*bytes.last().unwrap(), 0);
        assert_eq!(&bytes[..36], u.hyphenated().to_string().as_bytes());
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o444
        );
        assert_eq!(load_or_create_system_uuid(&p).unwrap(), u);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&p, "6a1c4d2e-0000-4000-8000-00000000f00d\n").unwrap();
        assert_eq!(
            load_or_create_system_uuid(&p).unwrap().to_string(),
            "6a1c4d2e-0000-4000-8000-00000000f00d"
        );
        std::fs::write(&p, "garbage").unwrap();
        assert!(load_or_create_system_uuid(&p).is_err());
    }

    #[test]
    fn roles() {
        let u = Uuid::new_v4();
        let sb = Superblock::new(8 << 20, 8 << 30, u, Uuid::new_v4(), Uuid::new_v4(), b"d");
        assert_eq!(Role::of(Some(&sb), Some(u)), Role::Master);
        assert_eq!(Role::of(Some(&sb), Some(Uuid::new_v4())), Role::Client);
        assert_eq!(Role::of(Some(&sb), None), Role::Client);
        assert_eq!(Role::of(None, Some(u)), Role::NoSuper);
    }
}
