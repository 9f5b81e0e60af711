//! `famfs cp`: copy host files and directories into famfs.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Result;
use famfs_fsdev::Media;
use famfs_log::Writer;
use famfs_log::alloc::AllocPolicy;
use famfs_log::namespace::{Attr, FileNode, NodeKind};

use crate::cli::CpArgs;
use crate::cmd::{Target, check_creatable, real_ids, resolve_target, umask};
use crate::error::{Failure, fail};
use crate::open::{Data, OpenFs, OpenHow, lookup};
use crate::progress::Progress;
use crate::xfer;

/// A failure that stops the whole copy (out of space, log full, miscompare, a bad source type).
struct Abort(anyhow::Error);

/// Everything one copy needs.
struct Copier<'w, 'a> {
    w: &'w mut Writer<'a, Box<dyn Media>>,
    data: &'w Data,
    dest: &'w Target,
    policy: AllocPolicy,
    mode: Option<u32>,
    uid: u32,
    gid: u32,
    umask: u32,
    compare: bool,
    verbose: u8,
    /// Non-fatal errors so far.
    errors: u64,
    /// Source directories entered (loop protection for symlinked trees).
    seen: HashSet<(u64, u64)>,
}

impl Copier<'_, '_> {
    fn warn(&mut self, msg: String) {
        eprintln!("famfs cp: {msg}");
        self.errors += 1;
    }

    fn file_mode(&self, src: &std::fs::Metadata) -> u32 {
        self.mode.unwrap_or(src.permissions().mode() & 0o777) & !self.umask & 0o7777
    }

    fn dir_mode(&self, src: Option<&std::fs::Metadata>) -> u32 {
        match (self.mode, src) {
            // A file mode given with -m, plus search permission wherever it grants read.
            (Some(m), _) => (m | ((m & 0o444) >> 2)) & 0o7777,
            (None, Some(src)) => src.permissions().mode() & 0o777 & !self.umask,
            // A directory made to hold several sources: as mkdir(1) would.
            (None, None) => 0o777 & !self.umask,
        }
    }

    /// Copy regular file `src` to famfs path `rel`.
    fn copy_file(&mut self, src: &Path, meta: &std::fs::Metadata, rel: &Path) -> Result<(), Abort> {
        let shown = self.dest.show(rel);
        let size = meta.len();
        if size == 0 {
            self.warn(format!(
                "skipping empty file {} (famfs files cannot be empty)",
                src.display()
            ));
            return Ok(());
        }
        let existing = match lookup(self.w.famfs(), rel) {
            Ok(x) => x.map(|(_, n)| n.clone()),
            Err(e) => {
                self.warn(format!("{e:#}"));
                return Ok(());
            }
        };
        let node: FileNode = match existing.as_ref().map(|n| &n.kind) {
            Some(NodeKind::Dir(_)) => {
                self.warn(format!(
                    "{shown} is a directory; cannot copy {} over it",
                    src.display()
                ));
                return Ok(());
            }
            Some(NodeKind::File(f)) if f.size != size => {
                return Err(Abort(fail(
                    1,
                    format!(
                        "{shown}: file exists with {} bytes; {} has {size} (only a same-size file is \
                         overwritten)",
                        f.size,
                        src.display()
                    ),
                )));
            }
            Some(NodeKind::File(f)) => f.clone(),
            None if self.compare => {
                self.warn(format!("compare: {shown} does not exist"));
                return Ok(());
            }
            None => {
                if let Err(e) = check_creatable(self.dest, rel) {
                    self.warn(format!("{e:#}"));
                    return Ok(());
                }
                let attr = Attr {
                    mode: self.file_mode(meta),
                    uid: self.uid,
                    gid: self.gid,
                };
                let ino = match self.w.create(rel, size, attr, &self.policy) {
                    Ok((ino, _)) => ino,
                    Err(e) if e.errno() == libc::ENOSPC => {
                        return Err(Abort(fail(1, format!("{shown}: {e}"))));
                    }
                    Err(e) => {
                        self.warn(format!("{shown}: {e}"));
                        return Ok(());
                    }
                };
                self.w
                    .famfs()
                    .state()
                    .namespace()
                    .get(ino)
                    .and_then(|n| n.as_file())
                    .cloned()
                    .ok_or_else(|| Abort(anyhow::anyhow!("{shown}: created but not in the tree")))?
            }
        };
        let r = (|| -> Result<Option<u64>> {
            let f = File::open(src).map_err(|e| fail(1, format!("open {}: {e}", src.display())))?;
            let dst = self.data.file(rel, &node, !self.compare)?;
            let label = format!("famfs cp: {shown}");
            let progress = Progress::new(size, &label);
            let src_name = src.display().to_string();
            let out = if self.compare {
                xfer::compare(&f, &src_name, &dst, &progress)?
            } else {
                xfer::copy_in(&f, &src_name, &dst, size, &progress)?;
                None
            };
            progress.finish();
            Ok(out)
        })();
        match r {
            Ok(None) if self.compare => println!("famfs compare: 100%: {shown}"),
            Ok(None) => println!("famfs cp: 100%: {shown}"),
            Ok(Some(off)) => {
                println!("famfs compare: error: {shown}");
                return Err(Abort(fail(
                    1,
                    format!("{shown} differs from {} at offset {off}", src.display()),
                )));
            }
            Err(e) => self.warn(format!("{e:#}")),
        }
        Ok(())
    }

    /// Make sure famfs directory `rel` exists (creating it with `mode`).
    fn ensure_dir(&mut self, rel: &Path, mode: u32) -> Result<bool, Abort> {
        let shown = self.dest.show(rel);
        match lookup(self.w.famfs(), rel) {
            Ok(Some((_, n))) if n.is_dir() => Ok(true),
            Ok(Some(_)) => {
                self.warn(format!("{shown} exists and is not a directory"));
                Ok(false)
            }
            Ok(None) if self.compare => {
                self.warn(format!("compare: {shown} does not exist"));
                Ok(false)
            }
            Ok(None) => {
                if let Err(e) = check_creatable(self.dest, rel) {
                    self.warn(format!("{e:#}"));
                    return Ok(false);
                }
                let attr = Attr {
                    mode,
                    uid: self.uid,
                    gid: self.gid,
                };
                self.w
                    .mkdir(rel, attr)
                    .map_err(|e| Abort(fail(1, format!("{shown}: {e}"))))?;
                if self.verbose > 0 {
                    println!("famfs cp: created directory '{shown}'");
                }
                Ok(true)
            }
            Err(e) => {
                self.warn(format!("{e:#}"));
                Ok(false)
            }
        }
    }

    /// Copy host directory `src` (recursively) to famfs directory `rel`.
    fn copy_dir(&mut self, src: &Path, meta: &std::fs::Metadata, rel: &Path) -> Result<(), Abort> {
        if !self.seen.insert((meta.dev(), meta.ino())) {
            self.warn(format!("{}: directory loop, skipped", src.display()));
            return Ok(());
        }
        let mode = self.dir_mode(Some(meta));
        if !self.ensure_dir(rel, mode)? {
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(src) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                self.warn(format!("cannot read directory {}: {e}", src.display()));
                return Ok(());
            }
        };
        entries.sort();
        for p in entries {
            let Some(name) = p.file_name() else { continue };
            let child = rel.join(name);
            let m = match std::fs::metadata(&p) {
                Ok(m) => m,
                Err(e) => {
                    self.warn(format!("cannot stat '{}': {e}", p.display()));
                    continue;
                }
            };
            if self.verbose > 0 {
                println!("famfs cp:  {}", self.dest.show(&child));
            }
            if m.is_file() {
                self.copy_file(&p, &m, &child)?;
            } else if m.is_dir() {
                self.copy_dir(&p, &m, &child)?;
            } else {
                self.warn(format!("skipping non-file or directory {}", p.display()));
            }
        }
        Ok(())
    }
}

/// `famfs cp`: exit 0, 1 if anything was skipped or failed, or the status of an abort.
pub fn cp(a: CpArgs, verbose: u8) -> Result<i32> {
    if a.paths.len() < 2 {
        return Err(fail(1, "famfs cp error: source and dest args required"));
    }
    a.interleave.precheck()?;
    let (sources, dest_arg) = a.paths.split_at(a.paths.len() - 1);
    let dest = resolve_target(&dest_arg[0], &a.dev)?;
    let mut open = OpenFs::open(
        &dest.loc,
        OpenHow {
            write: true,
            set_daxmode: a.dev.set_daxmode,
            allow_mounted: false,
        },
    )?;
    let policy = a.interleave.policy(open.fs.superblock().dev_size)?;
    let (ruid, rgid) = real_ids();
    let OpenFs { fs, data, .. } = &mut open;
    let mut w = fs.writer()?;

    // What the destination is.
    let dest_node = lookup(w.famfs(), &dest.rel)?.map(|(_, n)| n.is_dir());
    let multi = sources.len() > 1;
    let dest_is_dir = match dest_node {
        Some(true) => true,
        Some(false) if a.recursive || multi => {
            return Err(fail(
                1,
                format!("destination ({}) exists and is not a directory", dest.shown),
            ));
        }
        Some(false) => false,
        None => {
            let parent = dest.rel.parent().unwrap_or(Path::new(""));
            match lookup(w.famfs(), parent)? {
                Some((_, n)) if n.is_dir() => {}
                _ => {
                    return Err(fail(
                        1,
                        format!("{}: parent directory does not exist", dest.shown),
                    ));
                }
            }
            if multi && !a.recursive {
                return Err(fail(
                    1,
                    format!(
                        "destination ({}) must be an existing directory when copying several \
                         sources (or use -r to create it)",
                        dest.shown
                    ),
                ));
            }
            false
        }
    };

    let mut c = Copier {
        w: &mut w,
        data,
        dest: &dest,
        policy,
        mode: a.owner.mode,
        uid: a.owner.uid.unwrap_or(ruid),
        gid: a.owner.gid.unwrap_or(rgid),
        umask: umask(),
        compare: a.compare,
        verbose,
        errors: 0,
        seen: HashSet::new(),
    };
    // With several sources and -r, a missing destination becomes a directory first.
    let mut dest_is_dir = dest_is_dir;
    if !dest_is_dir && multi && a.recursive {
        let mode = c.dir_mode(None);
        match c.ensure_dir(&dest.rel, mode) {
            Ok(true) => dest_is_dir = true,
            Ok(false) => return Ok(1),
            Err(Abort(e)) => return Err(e),
        }
    }
    for src in sources {
        let meta = match std::fs::metadata(src) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("famfs cp: cannot stat '{}': {e}", src.display());
                return Ok(1);
            }
        };
        let base = || -> Result<PathBuf> {
            let name = crate::paths::basename(src)
                .ok_or_else(|| fail(1, format!("{}: has no file name", src.display())))?;
            Ok(dest.rel.join(name))
        };
        let r = if meta.is_file() {
            let rel = if dest_is_dir {
                base()?
            } else {
                dest.rel.clone()
            };
            c.copy_file(src, &meta, &rel)
        } else if meta.is_dir() {
            if !a.recursive {
                c.warn(format!(
                    "-r not specified; omitting directory '{}'",
                    src.display()
                ));
                continue;
            }
            let rel = if dest_is_dir {
                base()?
            } else {
                dest.rel.clone()
            };
            c.copy_dir(src, &meta, &rel)
        } else {
            return Err(fail(
                libc::EINVAL,
                format!("skipping non-file or directory {}", src.display()),
            ));
        };
        if let Err(Abort(e)) = r {
            eprintln!("famfs cp: {e:#}");
            eprintln!("famfs cp: aborting copy due to error");
            let code = e
                .chain()
                .find_map(|x| x.downcast_ref::<Failure>().map(|f| f.code))
                .unwrap_or(1);
            return Ok(code);
        }
    }
    Ok(if c.errors > 0 { 1 } else { 0 })
}
