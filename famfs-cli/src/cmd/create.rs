//! `famfs mkdir`, `famfs clone`.

use std::path::Path;

use anyhow::Result;
use famfs_log::entry::FileEntry;
use famfs_log::layout::FM_ALL_HOSTS_RW;
use famfs_log::namespace::Attr;

use crate::cli::{CloneArgs, MkdirArgs};
use crate::cmd::{check_creatable, effective_ids, resolve_target};
use crate::error::fail;
use crate::open::OpenHow;
use crate::paths::display_rel;
use crate::writer::{Found, WriteSession};

/// `famfs mkdir`.
pub fn mkdir(a: MkdirArgs, verbose: u8) -> Result<i32> {
    let t = resolve_target(&a.path, &a.dev)?;
    let mut session = WriteSession::open(
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
    let (mut w, _) = session.begin()?;
    if a.parents {
        // Nothing may be made under the root's reserved .meta (the first directory -p would
        // make there).
        if let Some(first) = t.rel.components().next() {
            check_creatable(&t, Path::new(first.as_os_str()))
                .map_err(|e| fail(1, format!("{}: {e:#}", t.shown)))?;
        }
        w.mkdir_p(&t.rel, attr, &mut |prefix| {
            if verbose > 0 {
                println!("famfs mkdir: created directory '{}'", t.show(prefix));
            }
        })
        .map_err(|e| fail(1, format!("{}: {:#}", t.shown, anyhow::Error::new(e))))?;
        return Ok(0);
    }
    if t.rel.as_os_str().is_empty() {
        return Err(fail(
            1,
            format!("{}: File exists (the famfs root)", t.shown),
        ));
    }
    match w.lookup(&t.rel)? {
        Some(_) => return Err(fail(1, format!("{}: File exists", t.shown))),
        None => {
            let parent = t.rel.parent().unwrap_or(Path::new(""));
            match w.lookup(parent)? {
                Some(n) if n.is_dir() => {}
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
    let mut session = WriteSession::open(
        &src.loc,
        OpenHow {
            write: true,
            set_daxmode: a.dev.set_daxmode,
            allow_mounted: false,
        },
    )?;
    let (mut w, _) = session.begin()?;
    let (attr, file) = match w.lookup(&src.rel)? {
        Some(Found::File(attr, f)) => (attr, f),
        Some(Found::Dir(_)) => {
            return Err(fail(
                1,
                format!("bad source path {}: not a file", src.shown),
            ));
        }
        None => {
            return Err(fail(
                1,
                format!("bad source path {}: no such file", src.shown),
            ));
        }
    };
    if w.lookup(&dst.rel)?.is_some() {
        return Err(fail(1, format!("{}: File exists", dst.shown)));
    }
    check_creatable(&dst, &dst.rel)?;
    let parent = dst.rel.parent().unwrap_or(Path::new(""));
    if !w.lookup(parent)?.is_some_and(|n| n.is_dir()) {
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
        uid: attr.uid,
        gid: attr.gid,
        mode: attr.mode,
        fmap: (*file.fmap).clone(),
    };
    let index = w
        .append_file(entry)
        .map_err(|e| fail(1, format!("{}: {e}", dst.shown)))?;
    println!(
        "famfs clone: logged {} (entry {index}) with the extents of {}; the file system is now \
         cross-linked and fsck will report collisions",
        display_rel(&dst.rel),
        display_rel(&src.rel)
    );
    Ok(0)
}
