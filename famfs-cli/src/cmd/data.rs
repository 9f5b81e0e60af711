//! Commands about file data and maps: `verify`, `flush`, `chkread`, `getmap`.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use famfs_fmap::Fmap;
use famfs_fsdev::Mapping;
use famfs_log::header::LogHeader;
use famfs_log::namespace::NodeKind;
use famfs_log::superblock::Superblock;

use crate::cli::{ChkreadArgs, DeviceOpt, FlushArgs, GetmapArgs, VerifyArgs};
use crate::cmd::{resolve_host_target, resolve_target, thread_count};
use crate::error::{count_exit, fail};
use crate::json::{GetmapErrorJson, GetmapJson, MappedFileJson};
use crate::open::{FileData, Location, OpenFs, OpenHow, lookup};
use crate::output::getmap_text;
use crate::progress::Progress;
use crate::xfer;

fn read_open(dev: &DeviceOpt) -> OpenHow {
    OpenHow {
        write: false,
        set_daxmode: dev.set_daxmode,
        allow_mounted: true,
    }
}

/// Open a host file for reading, requiring a regular file.
fn host_file(p: &Path) -> Result<(File, u64)> {
    let f = File::open(p).map_err(|e| fail(1, format!("open {}: {e}", p.display())))?;
    let m = f
        .metadata()
        .with_context(|| format!("stat {}", p.display()))?;
    if !m.is_file() {
        return Err(fail(1, format!("{}: not a regular file", p.display())));
    }
    Ok((f, m.len()))
}

/// Verify one file; Ok(false) after printing a mismatch.
fn verify_one(file: &str, seed: u64, dev: &DeviceOpt, threads: usize, quiet: bool) -> Result<bool> {
    let check = |data: &FileData| -> Result<bool> {
        let size = data.size();
        let progress = Progress::new(size, &format!("famfs verify: {file}"));
        let r = xfer::verify_pattern(data, seed, threads, &progress)?;
        progress.finish();
        match r {
            None => {
                if !quiet {
                    println!("Success: verified {size} bytes in file {file}");
                }
                Ok(true)
            }
            Some(off) => {
                eprintln!("Verify fail: {file} at offset {off} of {size} bytes");
                Ok(false)
            }
        }
    };
    if dev.device.is_some() {
        let t = resolve_target(file, dev)?;
        let open = OpenFs::open(&t.loc, read_open(dev))?;
        let node = match lookup(&open.fs, &t.rel)? {
            Some((_, n)) => match &n.kind {
                NodeKind::File(f) => f.clone(),
                NodeKind::Dir(_) => return Err(fail(1, format!("{file}: is a directory"))),
            },
            None => {
                return Err(fail(
                    1,
                    format!("{file}: no such file in {}", t.loc.describe()),
                ));
            }
        };
        let data = open.data.file(&t.rel, &node, false)?;
        return check(&data);
    }
    let (f, size) = host_file(Path::new(file))?;
    check(&FileData::Host {
        file: f,
        path: PathBuf::from(file),
        size,
    })
}

/// `famfs verify`.
pub fn verify(a: VerifyArgs) -> Result<i32> {
    let threads = thread_count(a.threadct)?;
    let multi = !a.multi.is_empty();
    if multi && (a.seed.is_some() || a.filename.is_some() || a.file.is_some()) {
        return Err(fail(1, "-S|-f and -m incompatible"));
    }
    if multi {
        if !a.quiet {
            println!("verify_multi: threads={threads} nfiles={}", a.multi.len());
        }
        let mut errs = 0u64;
        for m in &a.multi {
            match verify_one(&m.file, m.seed, &a.dev, threads, a.quiet) {
                Ok(true) => {}
                Ok(false) => errs += 1,
                Err(e) => {
                    eprintln!("famfs verify: {e:#}");
                    errs += 1;
                }
            }
        }
        println!(
            "Verify complete for {} files with {errs} errs",
            a.multi.len()
        );
        return Ok(count_exit(errs));
    }
    let file = match (&a.filename, &a.file) {
        (Some(_), Some(_)) => return Err(fail(1, "give the file once: -f FILE or FILE")),
        (Some(f), None) | (None, Some(f)) => f,
        (None, None) => return Err(fail(1, "Must supply filename")),
    };
    let Some(seed) = a.seed else {
        return Err(fail(1, "Must specify random seed to verify file data"));
    };
    Ok(if verify_one(file, seed, &a.dev, threads, a.quiet)? {
        0
    } else {
        1
    })
}

/// `famfs flush`: exit = number of files that could not be flushed.
pub fn flush(a: FlushArgs, verbose: u8) -> Result<i32> {
    let mut errs = 0u64;
    let open = match a.dev.device {
        Some(_) => {
            let first = resolve_target(&a.files[0], &a.dev)?;
            Some(OpenFs::open(&first.loc, read_open(&a.dev))?)
        }
        None => None,
    };
    for f in &a.files {
        let r = match &open {
            Some(open) => flush_famfs_file(open, f, &a.dev),
            None => flush_host_file(Path::new(f)),
        };
        match r {
            Ok(n) if verbose > 0 => println!("famfs flush: flushed {n} bytes of {f}"),
            Ok(_) => {}
            Err(e) => {
                eprintln!("famfs flush: {e:#}");
                errs += 1;
            }
        }
    }
    if errs > 0 {
        println!("famfs flush: {errs} errors were detected");
    }
    Ok(count_exit(errs))
}

/// Flush famfs file `f` of the file system opened offline from its device; its size.
fn flush_famfs_file(open: &OpenFs, f: &str, dev: &DeviceOpt) -> Result<u64> {
    let t = resolve_target(f, dev)?;
    let node = match lookup(&open.fs, &t.rel)? {
        Some((_, n)) => n
            .as_file()
            .cloned()
            .ok_or_else(|| fail(2, format!("{f}: not a regular file")))?,
        None => return Err(fail(3, format!("{f}: no such file"))),
    };
    let data = open.data.file(&t.rel, &node, false)?;
    data.invalidate(0, node.size)?;
    Ok(node.size)
}

/// Flush the mapping of host file `p` (a file in a mounted famfs); its size.
fn flush_host_file(p: &Path) -> Result<u64> {
    let (file, size) = host_file(p)?;
    if size > 0 {
        let m = Mapping::of_file(&file, p)?;
        m.invalidate(0, m.len())?;
    }
    Ok(size)
}

/// `famfs chkread`: read(2) and mmap(2) must see the same bytes.
pub fn chkread(a: ChkreadArgs) -> Result<i32> {
    let p = &a.file;
    std::fs::metadata(p)
        .map_err(|e| fail(1, format!("could not stat file {}: {e}", p.display())))?;
    let (f, size) = host_file(p)?;
    if size == 0 {
        println!("{}: empty file, nothing to compare", p.display());
        return Ok(0);
    }
    let map = Mapping::of_file(&f, p)?;
    map.invalidate(0, map.len())?;
    const STEP: usize = 8 << 20;
    let mut a_buf = vec![0u8; STEP.min(size as usize)];
    let mut b_buf = vec![0u8; a_buf.len()];
    let mut off = 0usize;
    let mut got_total = 0u64;
    let mut head = Vec::new();
    let mut bad = None;
    while (off as u64) < size {
        let n = (size as usize - off).min(STEP);
        let got = f
            .read_at(&mut a_buf[..n], off as u64)
            .with_context(|| format!("read {}", p.display()))?;
        got_total += got as u64;
        map.read(off as u64, &mut b_buf[..n])?;
        if head.len() < 544 {
            head.extend_from_slice(&b_buf[..n.min(544 - head.len())]);
        }
        if a_buf[..got] != b_buf[..got] || got < n {
            let i = a_buf[..got]
                .iter()
                .zip(&b_buf[..got])
                .position(|(x, y)| x != y)
                .unwrap_or(got);
            bad = Some(off + i);
            break;
        }
        off += n;
    }
    println!("read tried={size} got={got_total}");
    if a.superblock {
        match Superblock::parse(&head) {
            Ok(sb) => {
                println!(
                    "superblock: fs uuid {} system uuid {} log {:#x}+{:#x} device {} ({} bytes)",
                    sb.uuid,
                    sb.system_uuid,
                    sb.log_offset,
                    sb.log_len,
                    sb.dev_name_lossy(),
                    sb.dev_size
                );
            }
            Err(e) => println!("superblock: invalid: {e}"),
        }
    }
    if a.log {
        match LogHeader::parse(&head) {
            Ok(h) => println!(
                "log: len {:#x}, next_index {}, next_seqnum {}, last_index {}",
                h.len, h.next_index, h.next_seqnum, h.last_index
            ),
            Err(e) => println!("log: invalid header: {e}"),
        }
    }
    match bad {
        None => {
            println!("Read and mmap match");
            Ok(0)
        }
        Some(o) => {
            println!("Read and mmap miscompare at offset {o}");
            Ok(1)
        }
    }
}

/// Look up one file's map; `Err((code, message))` when it has none.
fn getmap_one(
    f: &str,
    a: &GetmapArgs,
    cache: &mut HashMap<Location, OpenFs>,
) -> Result<(u64, Arc<Fmap>), (i32, String)> {
    let (loc, rel) = if a.dev.device.is_some() {
        let t = resolve_target(f, &a.dev).map_err(|e| (libc::EINVAL, format!("{e:#}")))?;
        (t.loc, t.rel)
    } else {
        let m = std::fs::metadata(f).map_err(|_| (libc::EBADF, format!("file not found ({f})")))?;
        if !m.is_file() {
            return Err((libc::EISDIR, format!("not a regular file ({f})")));
        }
        let t = resolve_host_target(Path::new(f))
            .map_err(|_| (1, format!("file ({f}) not in famfs")))?;
        (t.loc, t.rel)
    };
    if !cache.contains_key(&loc) {
        let open = OpenFs::open(&loc, read_open(&a.dev))
            .map_err(|e| (crate::error::exit_code_of(&e), format!("{e:#}")))?;
        cache.insert(loc.clone(), open);
    }
    let open = &cache[&loc];
    let node = match lookup(&open.fs, &rel) {
        Ok(Some((_, n))) => n,
        Ok(None) if a.dev.device.is_some() => {
            return Err((libc::EBADF, format!("file not found ({f})")));
        }
        Ok(None) => return Err((2, format!("file ({f}) is famfs, but has no map"))),
        Err(e) => return Err((libc::EBADF, format!("{e:#}"))),
    };
    let Some(file) = node.as_file() else {
        return Err((libc::EISDIR, format!("not a regular file ({f})")));
    };
    Ok((file.size, Arc::clone(&file.fmap)))
}

/// `famfs getmap`: 0 mapped; 1 not famfs; 2 no map; 9 not found; 21 not a file; 22 no file.
pub fn getmap(a: GetmapArgs) -> Result<i32> {
    let mut cache = HashMap::new();
    let mut rc = 0;
    let mut json = GetmapJson::default();
    for f in &a.files {
        match getmap_one(f, &a, &mut cache) {
            Ok((size, fmap)) if a.json => {
                json.files
                    .push(MappedFileJson::of(Path::new(f), size, &fmap));
            }
            Ok((size, fmap)) => {
                if !a.quiet {
                    print!("{}", getmap_text(Path::new(f), size, &fmap));
                }
                println!("famfs_getmap: good file {f}");
            }
            Err((code, message)) => {
                if !a.quiet {
                    eprintln!("famfs_getmap: {message}");
                }
                if a.json {
                    json.errors.push(GetmapErrorJson {
                        path: f.clone(),
                        exit_code: code,
                        message,
                    });
                }
                rc = code;
                if !a.cont {
                    break;
                }
            }
        }
    }
    if a.json {
        crate::json::print(&json)?;
    }
    Ok(rc)
}
