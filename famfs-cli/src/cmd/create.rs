//! `famfs mkdir`, `famfs clone`.

use std::path::Path;

use anyhow::Result;
use famfs_log::entry::{FileEntry, LogEntry};
use famfs_log::layout::FM_ALL_HOSTS_RW;
use famfs_log::namespace::Attr;

use crate::cli::{CloneArgs, MkdirArgs};
use crate::cmd::{check_creatable, effective_ids, open_writable, resolve_target};
use crate::error::fail;
use crate::open::{OpenHow, lookup};
use crate::paths::display_rel;

/// `famfs mkdir`.
pub fn mkdir(a: MkdirArgs, verbose: u8) -> Result<i32> {
    let t = resolve_target(&a.path, &a.dev)?;
    let mut open = open_writable(
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
    let mut open = open_writable(
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
