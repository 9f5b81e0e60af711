//! `famfs cp`: copy host files and directories into famfs.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Result;
use famfs_fsdev::Media;
use famfs_log::Writer;
use famfs_log::alloc::AllocPolicy;
use famfs_log::namespace::{Attr, FileNode};

use crate::cli::CpArgs;
use crate::cmd::{
    Target, check_creatable, created_file, open_writable, real_ids, resolve_target, umask,
};
use crate::error::{exit_code_of, fail};
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
        if meta.len() == 0 {
            self.warn(format!(
                "skipping empty file {} (famfs files cannot be empty)",
                src.display()
            ));
            return Ok(());
        }
        match self.dest_file(src, meta, rel)? {
            Some(node) => self.transfer(src, rel, &node),
            None => Ok(()),
        }
    }

    /// The famfs file `src` goes to: an existing one of the same size, or a new one. `None`
    /// (after a warning) when it cannot be had.
    fn dest_file(
        &mut self,
        src: &Path,
        meta: &std::fs::Metadata,
        rel: &Path,
    ) -> Result<Option<FileNode>, Abort> {
        let shown = self.dest.show(rel);
        let size = meta.len();
        // Some(None): a directory is there.
        let existing = match lookup(self.w.famfs(), rel) {
            Ok(x) => x.map(|(_, n)| n.as_file().cloned()),
            Err(e) => {
                self.warn(format!("{e:#}"));
                return Ok(None);
            }
        };
        match existing {
            Some(None) => {
                self.warn(format!(
                    "{shown} is a directory; cannot copy {} over it",
                    src.display()
                ));
                Ok(None)
            }
            Some(Some(f)) if f.size != size => Err(Abort(fail(
                1,
                format!(
                    "{shown}: file exists with {} bytes; {} has {size} (only a same-size file is \
                     overwritten)",
                    f.size,
                    src.display()
                ),
            ))),
            Some(Some(f)) => Ok(Some(f)),
            None if self.compare => {
                self.warn(format!("compare: {shown} does not exist"));
                Ok(None)
            }
            None => self.create_file(rel, self.file_mode(meta), size),
        }
    }

    /// Log a new file of `size` bytes at `rel`. `None` (after a warning) when it cannot be.
    fn create_file(&mut self, rel: &Path, mode: u32, size: u64) -> Result<Option<FileNode>, Abort> {
        let shown = self.dest.show(rel);
        if let Err(e) = check_creatable(self.dest, rel) {
            self.warn(format!("{e:#}"));
            return Ok(None);
        }
        let attr = Attr {
            mode,
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
                return Ok(None);
            }
        };
        created_file(self.w.famfs(), ino, &shown)
            .map(Some)
            .map_err(Abort)
    }

    /// Move (or with `-c` compare) the bytes of `src` into famfs file `rel`.
    fn transfer(&mut self, src: &Path, rel: &Path, node: &FileNode) -> Result<(), Abort> {
        let shown = self.dest.show(rel);
        let r = (|| -> Result<Option<u64>> {
            let f = File::open(src).map_err(|e| fail(1, format!("open {}: {e}", src.display())))?;
            let dst = self.data.file(rel, node, !self.compare)?;
            let progress = Progress::new(node.size, &format!("famfs cp: {shown}"));
            let src_name = src.display().to_string();
            let out = if self.compare {
                xfer::compare(&f, &src_name, &dst, &progress)?
            } else {
                xfer::copy_in(&f, &src_name, &dst, node.size, &progress)?;
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

/// What `famfs cp` will do, from the arguments alone (nothing opened yet).
struct CpPlan<'a> {
    sources: &'a [PathBuf],
    dest: Target,
    recursive: bool,
    how: OpenHow,
}

/// Where the sources go, decided from the log state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dest {
    /// An existing directory: each source keeps its name in it.
    Dir,
    /// A directory to make first (several sources with `-r`); then as [`Dest::Dir`].
    NewDir,
    /// The destination path itself (one source).
    Path,
}

/// How a copy ended.
enum CpOutcome {
    /// Every source was handled; this many were skipped or failed (each already reported).
    Done { errors: u64 },
    /// The destination directory could not be made (already reported).
    NoDestDir,
    /// This source could not be stat-ed: it and the sources after it were abandoned, as in the
    /// reference.
    Unstatable(PathBuf, std::io::Error),
    /// A failure stopped the copy.
    Aborted(anyhow::Error),
}

impl<'a> CpPlan<'a> {
    /// Check the arguments and resolve the destination.
    fn new(a: &'a CpArgs) -> Result<CpPlan<'a>> {
        if a.paths.len() < 2 {
            return Err(fail(1, "famfs cp error: source and dest args required"));
        }
        a.interleave.precheck()?;
        let (sources, dest) = a.paths.split_at(a.paths.len() - 1);
        Ok(CpPlan {
            sources,
            dest: resolve_target(&dest[0], &a.dev)?,
            recursive: a.recursive,
            how: OpenHow {
                write: true,
                set_daxmode: a.dev.set_daxmode,
                allow_mounted: false,
            },
        })
    }

    /// Decide from the log state what the destination is (or refuse it).
    fn destination(&self, fs: &famfs_log::Famfs<Box<dyn Media>>) -> Result<Dest> {
        let shown = &self.dest.shown;
        let multi = self.sources.len() > 1;
        match lookup(fs, &self.dest.rel)?.map(|(_, n)| n.is_dir()) {
            Some(true) => Ok(Dest::Dir),
            Some(false) if self.recursive || multi => Err(fail(
                1,
                format!("destination ({shown}) exists and is not a directory"),
            )),
            Some(false) => Ok(Dest::Path),
            None => {
                let parent = self.dest.rel.parent().unwrap_or(Path::new(""));
                if !lookup(fs, parent)?.is_some_and(|(_, n)| n.is_dir()) {
                    return Err(fail(1, format!("{shown}: parent directory does not exist")));
                }
                match (multi, self.recursive) {
                    (true, true) => Ok(Dest::NewDir),
                    (true, false) => Err(fail(
                        1,
                        format!(
                            "destination ({shown}) must be an existing directory when copying \
                             several sources (or use -r to create it)"
                        ),
                    )),
                    (false, _) => Ok(Dest::Path),
                }
            }
        }
    }

    /// Copy every source in order. Non-fatal problems are reported as they happen and counted.
    fn execute(&self, c: &mut Copier<'_, '_>, dest: Dest) -> Result<CpOutcome> {
        if dest == Dest::NewDir {
            let mode = c.dir_mode(None);
            match c.ensure_dir(&self.dest.rel, mode) {
                Ok(true) => {}
                Ok(false) => return Ok(CpOutcome::NoDestDir),
                Err(Abort(e)) => return Err(e),
            }
        }
        let into_dir = dest != Dest::Path;
        for src in self.sources {
            let meta = match std::fs::metadata(src) {
                Ok(m) => m,
                Err(e) => return Ok(CpOutcome::Unstatable(src.clone(), e)),
            };
            let r = if meta.is_file() {
                c.copy_file(src, &meta, &self.target_of(src, into_dir)?)
            } else if meta.is_dir() && !self.recursive {
                c.warn(format!(
                    "-r not specified; omitting directory '{}'",
                    src.display()
                ));
                continue;
            } else if meta.is_dir() {
                c.copy_dir(src, &meta, &self.target_of(src, into_dir)?)
            } else {
                return Err(fail(
                    libc::EINVAL,
                    format!("skipping non-file or directory {}", src.display()),
                ));
            };
            if let Err(Abort(e)) = r {
                return Ok(CpOutcome::Aborted(e));
            }
        }
        Ok(CpOutcome::Done { errors: c.errors })
    }

    /// The famfs path source `src` is copied to.
    fn target_of(&self, src: &Path, into_dir: bool) -> Result<PathBuf> {
        if !into_dir {
            return Ok(self.dest.rel.clone());
        }
        let name = crate::paths::basename(src)
            .ok_or_else(|| fail(1, format!("{}: has no file name", src.display())))?;
        Ok(self.dest.rel.join(name))
    }
}

/// What the user sees at the end, and the exit status: 0, 1 if anything was skipped or failed,
/// or the status of an abort.
fn report(outcome: CpOutcome) -> i32 {
    match outcome {
        CpOutcome::Done { errors } => i32::from(errors > 0),
        CpOutcome::NoDestDir => 1,
        CpOutcome::Unstatable(src, e) => {
            eprintln!("famfs cp: cannot stat '{}': {e}", src.display());
            1
        }
        CpOutcome::Aborted(e) => {
            eprintln!("famfs cp: {e:#}");
            eprintln!("famfs cp: aborting copy due to error");
            exit_code_of(&e)
        }
    }
}

/// `famfs cp`: plan, open and lock, decide the destination, copy, report.
pub fn cp(a: CpArgs, verbose: u8) -> Result<i32> {
    let plan = CpPlan::new(&a)?;
    let mut open = open_writable(&plan.dest.loc, plan.how)?;
    let policy = a.interleave.policy(open.fs.superblock().dev_size)?;
    let (ruid, rgid) = real_ids();
    let OpenFs { fs, data, .. } = &mut open;
    let mut w = fs.writer()?;
    let dest = plan.destination(w.famfs())?;
    let mut c = Copier {
        w: &mut w,
        data,
        dest: &plan.dest,
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
    let outcome = plan.execute(&mut c, dest)?;
    Ok(report(outcome))
}
