//! Seed corpora of the cargo-fuzz targets, written where `scripts/fuzz.sh` asks.
//!
//! `famfs-log` and `fuse-famfs-proto` each build, in their `tests/fuzz_seeds.rs`, a [`Corpus`]:
//! named seeds per fuzz target. Nothing binary is committed; `scripts/fuzz.sh` runs those tests
//! with [`SEEDS_VAR`]`=<dir>` and [`write_if_asked`] writes `<dir>/<target>/seed-<name>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Seeds by fuzz target, then by name.
pub type Corpus = BTreeMap<&'static str, BTreeMap<String, Vec<u8>>>;

/// The environment variable naming the directory to write the corpus into.
pub const SEEDS_VAR: &str = "FAMFS_FUZZ_SEEDS";

/// Write `corpus` as `<dir>/<target>/seed-<name>` files; returns how many were written.
pub fn write(corpus: &Corpus, dir: &Path) -> std::io::Result<usize> {
    let mut written = 0;
    for (target, seeds) in corpus {
        let d = dir.join(target);
        std::fs::create_dir_all(&d)?;
        for (name, bytes) in seeds {
            std::fs::write(d.join(format!("seed-{name}")), bytes)?;
            written += 1;
        }
    }
    Ok(written)
}

/// When [`SEEDS_VAR`] is set, build the corpus and [`write()`] it there; returns the directory
/// written, or `None` when nobody asked.
pub fn write_if_asked(corpus: impl FnOnce() -> Corpus) -> std::io::Result<Option<PathBuf>> {
    let Some(dir) = std::env::var_os(SEEDS_VAR) else {
        return Ok(None);
    };
    let dir = PathBuf::from(dir);
    write(&corpus(), &dir)?;
    Ok(Some(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_land_in_one_directory_per_target() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Corpus::new();
        c.entry("request")
            .or_default()
            .insert("init".into(), vec![1, 2]);
        c.entry("request")
            .or_default()
            .insert("empty".into(), vec![]);
        c.entry("fmap").or_default().insert("v1".into(), vec![3]);
        assert_eq!(write(&c, dir.path()).unwrap(), 3);
        let read = |p: &str| std::fs::read(dir.path().join(p)).unwrap();
        assert_eq!(read("request/seed-init"), [1, 2]);
        assert_eq!(read("request/seed-empty"), [0u8; 0]);
        assert_eq!(read("fmap/seed-v1"), [3]);
    }
}
