//! `famfs creat` in three steps:
//! * [`CreatPlan::new`]: check the arguments and resolve the paths, touching nothing;
//! * [`CreatPlan::execute`]: create the files under the master's log lock, **release the lock**,
//!   then fill the randomized files (possibly gigabytes) while other writers can append;
//! * [`Console`]: what the user sees of it, and the exit status.
//!
//! `execute` tells what happens as it happens through [`CreatEvent`]s, so the report step prints
//! progressively and tests can observe (or act at) each point.

use anyhow::Result;
use famfs_fsdev::Media;
use famfs_log::alloc::AllocPolicy;
use famfs_log::namespace::{Attr, FileNode, NodeKind};
use famfs_log::{Famfs, Writer};

use crate::cli::{CreatArgs, InterleaveOpts};
use crate::cmd::{
    Target, check_creatable, created_file, effective_ids, open_writable, resolve_target,
    thread_count, umask,
};
use crate::error::{count_exit, fail};
use crate::open::{Data, Location, OpenHow, lookup};
use crate::progress::Progress;
use crate::xfer;

/// One file to create.
#[derive(Debug)]
struct Job {
    target: Target,
    /// Bytes (0: accept an existing file of any size).
    size: u64,
    /// Fill the file with the pattern of this seed.
    seed: Option<u64>,
}

/// What `famfs creat` will do, decided from the arguments alone (nothing opened yet).
#[derive(Debug)]
pub struct CreatPlan {
    /// The file system every job is in (`None`: no job survived planning).
    loc: Option<Location>,
    how: OpenHow,
    jobs: Vec<Job>,
    /// `--multi` arguments that cannot be created (another famfs, a bad path). They are reported
    /// and counted as errors, and the other files go ahead, as in the reference.
    rejected: Vec<anyhow::Error>,
    /// The number of `--multi` arguments, or `None` in single-file mode.
    multi: Option<usize>,
    attr: Attr,
    interleave: InterleaveOpts,
    threads: usize,
}

/// Something [`CreatPlan::execute`] did, in order.
#[derive(Debug)]
pub enum CreatEvent<'a> {
    /// A `--multi` argument that was rejected while planning.
    Rejected(&'a anyhow::Error),
    /// A new file was logged.
    Created(&'a Target, &'a FileNode),
    /// The file exists with the requested size; nothing was logged.
    Existed(&'a Target),
    /// A file could not be created (multi mode; single mode fails instead).
    Failed(&'a Target, &'a anyhow::Error),
    /// Every file is created and the log lock is released.
    CreationDone {
        /// Files newly logged.
        created: usize,
        /// Files that could not be created, rejected arguments included.
        errors: usize,
    },
    /// Filling starts: `files` files over `threads` threads.
    Filling {
        /// Files to fill.
        files: usize,
        /// Worker threads per file.
        threads: usize,
    },
    /// One file's fill starts (the log lock is not held).
    FillStart(&'a Target, u64),
    /// One file is filled.
    Filled(&'a Target, u64),
    /// One file could not be filled (multi mode; single mode fails instead).
    FillFailed(&'a Target, &'a anyhow::Error),
}

/// What [`CreatPlan::execute`] achieved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CreatOutcome {
    /// Files newly logged.
    pub created: usize,
    /// Files that could not be created (rejected arguments included); nothing was filled then.
    pub create_errors: usize,
    /// Files to fill.
    pub to_fill: usize,
    /// Files that could not be filled.
    pub fill_errors: usize,
}

/// What one job found or did.
enum Made {
    Created(FileNode),
    Existed(FileNode),
}

impl Made {
    fn node(&self) -> &FileNode {
        match self {
            Made::Created(n) | Made::Existed(n) => n,
        }
    }
}

impl CreatPlan {
    /// Check the arguments and resolve the files' paths.
    pub fn new(a: &CreatArgs) -> Result<CreatPlan> {
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
        let multi = (!a.multi.is_empty()).then_some(a.multi.len());
        if multi.is_some() && (a.seed.is_some() || a.file.is_some() || a.size.is_some()) {
            return Err(fail(1, "-S|-s|FILE and --multi are incompatible"));
        }
        let (jobs, rejected) = if multi.is_some() {
            multi_jobs(a)
        } else {
            let Some(file) = &a.file else {
                return Err(fail(1, "Must specify filename"));
            };
            let job = Job {
                target: resolve_target(file, &a.dev)?,
                size: a.size.unwrap_or(0),
                seed: a.seed,
            };
            (vec![job], Vec::new())
        };
        let (euid, egid) = effective_ids();
        Ok(CreatPlan {
            loc: jobs.first().map(|j| j.target.loc.clone()),
            how: OpenHow {
                write: true,
                set_daxmode: a.dev.set_daxmode,
                allow_mounted: false,
            },
            jobs,
            rejected,
            multi,
            attr: Attr {
                mode: a.owner.mode.unwrap_or(0o644) & !umask() & 0o7777,
                uid: a.owner.uid.unwrap_or(euid),
                gid: a.owner.gid.unwrap_or(egid),
            },
            interleave: a.interleave.clone(),
            threads,
        })
    }

    /// The number of `--multi` arguments, or `None` in single-file mode.
    pub fn multi(&self) -> Option<usize> {
        self.multi
    }

    /// Create the files under the log lock, release it, then fill the ones with a seed. Single
    /// mode fails on the first error; multi mode reports and counts errors, and fills nothing if
    /// any file could not be created.
    pub fn execute(&self, events: &mut dyn FnMut(CreatEvent<'_>)) -> Result<CreatOutcome> {
        for e in &self.rejected {
            events(CreatEvent::Rejected(e));
        }
        let mut outcome = CreatOutcome {
            create_errors: self.rejected.len(),
            ..CreatOutcome::default()
        };
        let Some(loc) = &self.loc else {
            events(CreatEvent::CreationDone {
                created: 0,
                errors: outcome.create_errors,
            });
            return Ok(outcome);
        };
        let mut open = open_writable(loc, self.how)?;
        let policy = self.interleave.policy(open.fs.superblock().dev_size)?;
        // The writer (and with it the log lock) lives only inside create_all.
        let made = self.create_all(&mut open.fs, &policy, events)?;
        outcome.created = made
            .iter()
            .filter(|m| matches!(m, Some(Made::Created(_))))
            .count();
        outcome.create_errors += made.iter().filter(|m| m.is_none()).count();
        events(CreatEvent::CreationDone {
            created: outcome.created,
            errors: outcome.create_errors,
        });
        if outcome.create_errors > 0 {
            return Ok(outcome);
        }
        let to_fill: Vec<(&Job, &FileNode)> = self
            .jobs
            .iter()
            .zip(&made)
            .filter(|(j, _)| j.seed.is_some())
            .filter_map(|(j, m)| m.as_ref().map(|m| (j, m.node())))
            .collect();
        outcome.to_fill = to_fill.len();
        if !to_fill.is_empty() {
            events(CreatEvent::Filling {
                files: to_fill.len(),
                threads: self.threads,
            });
        }
        for (job, node) in to_fill {
            if let Err(e) = self.fill(&open.data, job, node, events) {
                if self.multi.is_none() {
                    return Err(e);
                }
                events(CreatEvent::FillFailed(&job.target, &e));
                outcome.fill_errors += 1;
            }
        }
        Ok(outcome)
    }

    /// Create every job's file under one log lock, released when this returns. `None` for a job
    /// that failed (multi mode).
    fn create_all(
        &self,
        fs: &mut Famfs<Box<dyn Media>>,
        policy: &AllocPolicy,
        events: &mut dyn FnMut(CreatEvent<'_>),
    ) -> Result<Vec<Option<Made>>> {
        let mut w = fs.writer()?;
        let mut made = Vec::with_capacity(self.jobs.len());
        for job in &self.jobs {
            match create_one(&mut w, job, self.attr, policy) {
                Ok(m) => {
                    match &m {
                        Made::Created(node) => events(CreatEvent::Created(&job.target, node)),
                        Made::Existed(_) => events(CreatEvent::Existed(&job.target)),
                    }
                    made.push(Some(m));
                }
                Err(e) if self.multi.is_some() => {
                    events(CreatEvent::Failed(&job.target, &e));
                    made.push(None);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(made)
    }

    /// Fill one file with its pattern (no log lock is held).
    fn fill(
        &self,
        data: &Data,
        job: &Job,
        node: &FileNode,
        events: &mut dyn FnMut(CreatEvent<'_>),
    ) -> Result<()> {
        let file = data.file(&job.target.rel, node, true)?;
        events(CreatEvent::FillStart(&job.target, node.size));
        let progress = Progress::new(node.size, &format!("famfs creat: {}", job.target.shown));
        xfer::fill_pattern(&file, job.seed.unwrap_or(0), self.threads, &progress)?;
        progress.finish();
        events(CreatEvent::Filled(&job.target, node.size));
        Ok(())
    }
}

/// The jobs of `--multi` arguments, and the arguments rejected: paths that do not resolve, and
/// files in another famfs than the first one's (one famfs per command).
fn multi_jobs(a: &CreatArgs) -> (Vec<Job>, Vec<anyhow::Error>) {
    let mut jobs: Vec<Job> = Vec::new();
    let mut rejected = Vec::new();
    for m in &a.multi {
        match resolve_target(&m.file, &a.dev) {
            Ok(target) => jobs.push(Job {
                target,
                size: m.size,
                seed: m.seed,
            }),
            Err(e) => rejected.push(e),
        }
    }
    let Some(first) = jobs.first() else {
        return (jobs, rejected);
    };
    let (loc, first_shown) = (first.target.loc.clone(), first.target.shown.clone());
    jobs.retain(|j| {
        let same = j.target.loc == loc;
        if !same {
            rejected.push(anyhow::anyhow!(
                "{} is in another famfs than {first_shown}; create files of one famfs per command",
                j.target.shown
            ));
        }
        same
    });
    (jobs, rejected)
}

/// What to do for one job, decided from the log state: accept an existing file, or create one.
fn decide(fs: &Famfs<Box<dyn Media>>, job: &Job) -> Result<Option<FileNode>> {
    let shown = &job.target.shown;
    let rel = &job.target.rel;
    if rel.as_os_str().is_empty() {
        return Err(fail(
            1,
            format!("{shown}: exists and is not a regular file (the famfs root)"),
        ));
    }
    if let Some((_, node)) = lookup(fs, rel)? {
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
            NodeKind::File(f) => Ok(Some(f.clone())),
        };
    }
    if job.size == 0 {
        return Err(fail(
            1,
            format!("{shown}: new file size=zero (give -s SIZE)"),
        ));
    }
    check_creatable(&job.target, rel)?;
    Ok(None)
}

/// Create one file (or accept an existing one of the right size).
fn create_one(
    w: &mut Writer<'_, Box<dyn Media>>,
    job: &Job,
    attr: Attr,
    policy: &AllocPolicy,
) -> Result<Made> {
    if let Some(existing) = decide(w.famfs(), job)? {
        return Ok(Made::Existed(existing));
    }
    let shown = &job.target.shown;
    let (ino, _) = w
        .create(&job.target.rel, job.size, attr, policy)
        .map_err(|e| fail(1, format!("{shown}: {e}")))?;
    Ok(Made::Created(created_file(w.famfs(), ino, shown)?))
}

/// The report step: prints each event as the reference does, and gives the exit status.
#[derive(Debug, Clone, Copy)]
pub struct Console {
    verbose: u8,
    multi: Option<usize>,
}

impl Console {
    /// A report of `plan` at verbosity `verbose`.
    pub fn new(plan: &CreatPlan, verbose: u8) -> Console {
        Console {
            verbose,
            multi: plan.multi(),
        }
    }

    /// Print one event.
    pub fn event(&self, ev: CreatEvent<'_>) {
        let verbose = self.verbose > 0;
        match (ev, self.multi) {
            (CreatEvent::Rejected(e), _) => eprintln!("famfs creat: {e:#}"),
            (CreatEvent::Created(t, f), _) if verbose => {
                println!("famfs creat: created {} ({} bytes)", t.shown, f.size)
            }
            (CreatEvent::Existed(t), _) if verbose => println!(
                "famfs creat: {} exists with that size: nothing to create",
                t.shown
            ),
            (CreatEvent::Failed(_, e) | CreatEvent::FillFailed(_, e), _) => {
                eprintln!("famfs creat: {e:#}")
            }
            (CreatEvent::CreationDone { created, errors }, Some(asked)) => {
                println!("Create complete for {created} of {asked} files with {errors} errs")
            }
            (CreatEvent::Filling { files, threads }, Some(_)) => {
                println!("randomize_multi: randomizing {files} files via {threads} threads")
            }
            (CreatEvent::Filled(t, size), _) => println!("randomized {size} bytes: {}", t.shown),
            _ => {}
        }
    }

    /// The closing lines and the exit status: the number of errors (capped at 127).
    pub fn finish(&self, o: &CreatOutcome) -> i32 {
        if o.create_errors > 0 {
            return count_exit(o.create_errors as u64);
        }
        if let Some(asked) = self.multi
            && o.to_fill > 0
        {
            println!(
                "Randomize complete for {} of {asked} files with {} errs",
                o.to_fill, o.fill_errors
            );
        }
        count_exit(o.fill_errors as u64)
    }
}

/// `famfs creat`.
pub fn creat(a: CreatArgs, verbose: u8) -> Result<i32> {
    let plan = CreatPlan::new(&a)?;
    let console = Console::new(&plan, verbose);
    let outcome = plan.execute(&mut |ev| console.event(ev))?;
    Ok(console.finish(&outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cmd, Famfs};
    use crate::error::exit_code_of;
    use clap::Parser;
    use std::path::Path;

    fn args(v: &[&str]) -> CreatArgs {
        let argv = ["famfs", "creat"].iter().chain(v);
        match Famfs::try_parse_from(argv).unwrap().cmd {
            Cmd::Creat(a) => a,
            _ => unreachable!("a creat command line"),
        }
    }

    fn refused(v: &[&str], msg: &str) {
        let e = CreatPlan::new(&args(v)).unwrap_err();
        assert!(format!("{e:#}").contains(msg), "{v:?}: {e:#}");
        assert_eq!(exit_code_of(&e), 1, "{v:?}");
    }

    #[test]
    fn planning_checks_the_arguments_and_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("absent.img");
        let dev = dev.to_str().unwrap();
        let p = CreatPlan::new(&args(&["-d", dev, "-s", "4k", "-r", "-S", "3", "/a//b"])).unwrap();
        assert_eq!(p.multi(), None);
        assert_eq!(p.jobs.len(), 1);
        let j = &p.jobs[0];
        assert_eq!(
            (j.target.rel.to_str(), j.size, j.seed),
            (Some("a/b"), 4096, Some(3))
        );
        assert_eq!(p.loc, Some(Location::Device(dev.into())));
        assert!(p.rejected.is_empty());

        // Multi mode: an unresolvable path is rejected, the other files are planned.
        let p = CreatPlan::new(&args(&[
            "-d",
            dev,
            "-M",
            "/x,4k,5",
            "-M",
            "../bad,4k",
            "-M",
            "/y,8k",
        ]))
        .unwrap();
        assert_eq!(p.multi(), Some(3));
        let planned: Vec<_> = p.jobs.iter().map(|j| (j.size, j.seed)).collect();
        assert_eq!(planned, [(4096, Some(5)), (8192, None)]);
        assert_eq!(p.rejected.len(), 1);
        assert!(!Path::new(dev).exists(), "planning opened nothing");

        refused(
            &["-d", dev, "-s", "4k", "-S", "1", "/f"],
            "seed (-S) without randomize (-r)",
        );
        refused(&["-d", dev, "-s", "4k", "-r", "/f"], "-r needs a seed");
        refused(
            &["-d", dev, "-s", "4k", "-M", "/x,4k"],
            "--multi are incompatible",
        );
        refused(&["-d", dev, "-s", "4k"], "Must specify filename");
        refused(&["-d", dev, "-t", "300", "/f"], "bad threadct");
    }

    #[test]
    fn nothing_left_to_create_opens_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("absent.img");
        let plan =
            CreatPlan::new(&args(&["-d", dev.to_str().unwrap(), "-M", "../bad,4k"])).unwrap();
        let mut seen = Vec::new();
        let outcome = plan
            .execute(&mut |ev| seen.push(format!("{ev:?}")))
            .unwrap();
        assert_eq!(
            outcome,
            CreatOutcome {
                create_errors: 1,
                ..CreatOutcome::default()
            }
        );
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen[0].starts_with("Rejected"), "{seen:?}");
        assert_eq!(seen[1], "CreationDone { created: 0, errors: 1 }");
        assert_eq!(Console::new(&plan, 0).finish(&outcome), 1);
        assert!(!dev.exists());
    }
}
