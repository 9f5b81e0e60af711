//! `famfs creat`, `famfs mkdir`, `famfs clone`.

use std::path::Path;

use anyhow::Result;
use famfs_log::entry::{FileEntry, LogEntry};
use famfs_log::layout::FM_ALL_HOSTS_RW;
use famfs_log::namespace::{Attr, FileNode, NodeKind};

use crate::cli::{CloneArgs, CreatArgs, MkdirArgs};
use crate::cmd::{Target, check_creatable, effective_ids, resolve_target, thread_count, umask};
use crate::error::{count_exit, fail};
use crate::open::{OpenFs, OpenHow, lookup};
use crate::paths::display_rel;
use crate::progress::Progress;
use crate::xfer;

/// One file to create.
struct Job {
    target: Target,
    size: u64,
    seed: Option<u64>,
}

/// What happened to one file.
enum Made {
    Created(FileNode),
    Existed(FileNode),
}

/// Create one file (or accept an existing one of the right size).
fn creat_one(
    w: &mut famfs_log::Writer<'_, Box<dyn famfs_fsdev::Media>>,
    job: &Job,
    attr: Attr,
    policy: &famfs_log::alloc::AllocPolicy,
) -> Result<Made> {
    let shown = &job.target.shown;
    let rel = &job.target.rel;
    if rel.as_os_str().is_empty() {
        return Err(fail(
            1,
            format!("{shown}: exists and is not a regular file (the famfs root)"),
        ));
    }
    if let Some((_, node)) = lookup(w.famfs(), rel)? {
        return match &node.kind {
            NodeKind::Dir(_) => Err(fail(
                1,
                format!("{shown}: exists and is not a regular file"),
            )),
            NodeKind::File(f) if job.size != 0 && f.size != job.size => Err(fail(
                1,
                format!(
                    "{shown}: exists and is not the same size ({} bytes, {} requested)",
                    f.size, job.size
                ),
            )),
            NodeKind::File(f) => Ok(Made::Existed(f.clone())),
        };
    }
    if job.size == 0 {
        return Err(fail(
            1,
            format!("{shown}: new file size=zero (give -s SIZE)"),
        ));
    }
    check_creatable(&job.target, rel)?;
    let (ino, _) = w
        .create(rel, job.size, attr, policy)
        .map_err(|e| fail(1, format!("{shown}: {e}")))?;
    let ns = w.famfs().state().namespace();
    let node = ns
        .get(ino)
        .and_then(|n| n.as_file())
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("{shown}: created but not in the tree"))?;
    Ok(Made::Created(node))
}

/// `famfs creat`.
pub fn creat(a: CreatArgs, verbose: u8) -> Result<i32> {
    if a.seed.is_some() && !a.randomize {
        return Err(fail(1, "Error seed (-S) without randomize (-r) argument"));
    }
    if a.randomize && a.seed.is_none() && a.multi.is_empty() {
        return Err(fail(
            1,
            "-r needs a seed (-S SEED): the pattern is only verifiable with a known seed",
        ));
    }
    a.interleave.precheck()?;
    let threads = thread_count(a.threadct)?;
    let multi = !a.multi.is_empty();
    if multi && (a.seed.is_some() || a.file.is_some() || a.size.is_some()) {
        return Err(fail(1, "-S|-s|FILE and --multi are incompatible"));
    }
    // Jobs whose path cannot be resolved (multi mode) count as errors; the rest go ahead, as in
    // the reference (`--multi good,4k --multi /not/famfs,4k` creates `good` and exits 1).
    let mut jobs = Vec::new();
    let mut early_errs = 0usize;
    if multi {
        for m in &a.multi {
            match resolve_target(&m.file, &a.dev) {
                Ok(target) => jobs.push(Job {
                    target,
                    size: m.size,
                    seed: m.seed,
                }),
                Err(e) => {
                    eprintln!("famfs creat: {e:#}");
                    early_errs += 1;
                }
            }
        }
    } else {
        let Some(file) = &a.file else {
            return Err(fail(1, "Must specify filename"));
        };
        jobs.push(Job {
            target: resolve_target(file, &a.dev)?,
            size: a.size.unwrap_or(0),
            seed: a.seed,
        });
    }
    let Some(first) = jobs.first() else {
        println!(
            "Create complete for 0 of {} files with {early_errs} errs",
            a.multi.len()
        );
        return Ok(count_exit(early_errs as u64));
    };
    let loc = first.target.loc.clone();
    let first_shown = first.target.shown.clone();
    jobs.retain(|j| {
        let same = j.target.loc == loc;
        if !same {
            eprintln!(
                "famfs creat: {} is in another famfs than {first_shown}; create files of one famfs per command",
                j.target.shown
            );
            early_errs += 1;
        }
        same
    });
    let mut open = OpenFs::open(
        &loc,
        OpenHow {
            write: true,
            set_daxmode: a.dev.set_daxmode,
            allow_mounted: false,
        },
    )?;
    let (euid, egid) = effective_ids();
    let attr = Attr {
        mode: a.owner.mode.unwrap_or(0o644) & !umask() & 0o7777,
        uid: a.owner.uid.unwrap_or(euid),
        gid: a.owner.gid.unwrap_or(egid),
    };
    let policy = a.interleave.policy(open.fs.superblock().dev_size)?;
    let mut w = open.fs.writer()?;
    let mut results: Vec<Result<Made>> = Vec::new();
    for job in &jobs {
        let r = creat_one(&mut w, job, attr, &policy);
        match &r {
            Ok(Made::Created(f)) if verbose > 0 => {
                println!(
                    "famfs creat: created {} ({} bytes)",
                    job.target.shown, f.size
                )
            }
            Ok(Made::Existed(_)) if verbose > 0 => {
                println!(
                    "famfs creat: {} exists with that size: nothing to create",
                    job.target.shown
                )
            }
            Err(e) if multi => eprintln!("famfs creat: {e:#}"),
            _ => {}
        }
        results.push(r);
        if !multi && results[0].is_err() {
            break;
        }
    }
    let errs = results.iter().filter(|r| r.is_err()).count() + early_errs;
    if multi {
        let created = results
            .iter()
            .filter(|r| matches!(r, Ok(Made::Created(_))))
            .count();
        println!(
            "Create complete for {created} of {} files with {errs} errs",
            a.multi.len()
        );
    } else if let Some(Err(_)) = results.first() {
        return results.remove(0).map(|_| 1);
    }
    if errs > 0 {
        return Ok(count_exit(errs as u64));
    }
    // Fill the files that have a seed.
    let to_fill: Vec<(&Job, FileNode)> = jobs
        .iter()
        .zip(results)
        .filter_map(|(j, r)| match (j.seed, r) {
            (Some(_), Ok(Made::Created(f) | Made::Existed(f))) => Some((j, f)),
            _ => None,
        })
        .collect();
    if multi && !to_fill.is_empty() {
        println!(
            "randomize_multi: randomizing {} files via {threads} threads",
            to_fill.len()
        );
    }
    let mut rerrs = 0u64;
    for (job, node) in &to_fill {
        let r = (|| -> Result<()> {
            let data = open.data.file(&job.target.rel, node, true)?;
            let progress = Progress::new(node.size, &format!("famfs creat: {}", job.target.shown));
            xfer::fill_pattern(&data, job.seed.unwrap_or(0), threads, &progress)?;
            progress.finish();
            println!("randomized {} bytes: {}", node.size, job.target.shown);
            Ok(())
        })();
        if let Err(e) = r {
            if !multi {
                return Err(e);
            }
            eprintln!("famfs creat: {e:#}");
            rerrs += 1;
        }
    }
    drop(w);
    if multi && !to_fill.is_empty() {
        println!(
            "Randomize complete for {} of {} files with {rerrs} errs",
            to_fill.len(),
            a.multi.len()
        );
    }
    Ok(count_exit(rerrs))
}

/// `famfs mkdir`.
pub fn mkdir(a: MkdirArgs, verbose: u8) -> Result<i32> {
    let t = resolve_target(&a.path, &a.dev)?;
    let mut open = OpenFs::open(
        &t.loc,
        OpenHow {
            write: true,
            set_daxmode: a.dev.set_daxmode,
            allow_mounted: false,
        },
    )?;
    let (euid, egid) = effective_ids();
    // The mode is logged as given (the reference's mkdir(2) applied the umask locally only).
    let attr = Attr {
        mode: a.owner.mode.unwrap_or(0o755),
        uid: a.owner.uid.unwrap_or(euid),
        gid: a.owner.gid.unwrap_or(egid),
    };
    let mut w = open.fs.writer()?;
    if a.parents {
        w.mkdir_p_with(&t.rel, attr, |prefix| -> Result<()> {
            check_creatable(&t, prefix)?;
            if verbose > 0 {
                println!("famfs mkdir: created directory '{}'", t.show(prefix));
            }
            Ok(())
        })
        .map_err(|e| fail(1, format!("{}: {e:#}", t.shown)))?;
        return Ok(0);
    }
    if t.rel.as_os_str().is_empty() {
        return Err(fail(
            1,
            format!("{}: File exists (the famfs root)", t.shown),
        ));
    }
    match lookup(w.famfs(), &t.rel)? {
        Some(_) => return Err(fail(1, format!("{}: File exists", t.shown))),
        None => {
            let parent = t.rel.parent().unwrap_or(Path::new(""));
            match lookup(w.famfs(), parent)? {
                Some((_, n)) if n.is_dir() => {}
                Some(_) => {
                    return Err(fail(1, format!("{}: parent is not a directory", t.shown)));
                }
                None => {
                    return Err(fail(
                        1,
                        format!("{}: parent directory does not exist (use -p)", t.shown),
                    ));
                }
            }
        }
    }
    check_creatable(&t, &t.rel)?;
    w.mkdir(&t.rel, attr)
        .map_err(|e| fail(1, format!("{}: {e}", t.shown)))?;
    if verbose > 0 {
        println!("famfs mkdir: created directory '{}'", t.shown);
    }
    Ok(0)
}

/// `famfs clone` (testing only): log DST with SRC's extents, cross-linking the file system.
pub fn clone(a: CloneArgs) -> Result<i32> {
    let src = resolve_target(&a.src, &a.dev)?;
    let dst = resolve_target(&a.dst, &a.dev)?;
    if src.loc != dst.loc {
        return Err(fail(
            1,
            format!("{} and {} are not in the same famfs", src.shown, dst.shown),
        ));
    }
    let mut open = OpenFs::open(
        &src.loc,
        OpenHow {
            write: true,
            set_daxmode: a.dev.set_daxmode,
            allow_mounted: false,
        },
    )?;
    let mut w = open.fs.writer()?;
    let (node, file) = match lookup(w.famfs(), &src.rel)? {
        Some((_, n)) => match n.as_file() {
            Some(f) => (n.clone(), f.clone()),
            None => {
                return Err(fail(
                    1,
                    format!("bad source path {}: not a file", src.shown),
                ));
            }
        },
        None => {
            return Err(fail(
                1,
                format!("bad source path {}: no such file", src.shown),
            ));
        }
    };
    if lookup(w.famfs(), &dst.rel)?.is_some() {
        return Err(fail(1, format!("{}: File exists", dst.shown)));
    }
    check_creatable(&dst, &dst.rel)?;
    let parent = dst.rel.parent().unwrap_or(Path::new(""));
    if !lookup(w.famfs(), parent)?.is_some_and(|(_, n)| n.is_dir()) {
        return Err(fail(
            1,
            format!("{}: parent directory does not exist", dst.shown),
        ));
    }
    let entry = FileEntry {
        path: dst.rel.clone(),
        flags: if file.flags == 0 {
            FM_ALL_HOSTS_RW
        } else {
            file.flags
        },
        uid: node.attr.uid,
        gid: node.attr.gid,
        mode: node.attr.mode,
        fmap: (*file.fmap).clone(),
    };
    let (index, _) = w
        .append(&LogEntry::File(entry))
        .map_err(|e| fail(1, format!("{}: {e}", dst.shown)))?;
    println!(
        "famfs clone: logged {} (entry {index}) with the extents of {}; the file system is now \
         cross-linked and fsck will report collisions",
        display_rel(&dst.rel),
        display_rel(&src.rel)
    );
    Ok(0)
}
