//! Compiles a C program against `include/famfs_fuse_abi.h` with `cc` and compares, for every
//! struct and constant the header defines, `sizeof`, `_Alignof`, each field's `offsetof` and
//! `sizeof`, and each constant's value with the Rust definitions in `fuse-famfs-proto`.
//!
//! The header is also read as text, so a struct, field or constant added on one side only fails
//! the test. Without a C compiler the test fails when `CI=true` and is skipped loudly otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use fuse_famfs_proto::abi::{self, *};
use vendor_headers::{FAMFS_FUSE_ABI_H, FAMFS_FUSE_ABI_H_NAME, include_dir};

struct StructInfo {
    c: &'static str,
    size: usize,
    align: usize,
    fields: Vec<FieldInfo>,
}

struct FieldInfo {
    c: &'static str,
    offset: usize,
    size: usize,
}

/// `layout!("c_name", RustType { "c_field" => rust_field, ... })`
macro_rules! layout {
    ($c:literal, $t:ty { $($cf:literal => $rf:ident),* $(,)? }) => {
        StructInfo {
            c: $c,
            size: core::mem::size_of::<$t>(),
            align: core::mem::align_of::<$t>(),
            fields: vec![$(FieldInfo {
                c: $cf,
                offset: core::mem::offset_of!($t, $rf),
                size: {
                    let v = <$t as zerocopy::FromZeros>::new_zeroed();
                    core::mem::size_of_val(&v.$rf)
                },
            }),*],
        }
    };
}

fn rust_structs() -> Vec<StructInfo> {
    vec![
        layout!("fuse_in_header", InHeader {
            "len" => len, "opcode" => opcode, "unique" => unique, "nodeid" => nodeid,
            "uid" => uid, "gid" => gid, "pid" => pid, "total_extlen" => total_extlen,
            "padding" => padding,
        }),
        layout!("fuse_out_header", OutHeader { "len" => len, "error" => error, "unique" => unique }),
        layout!("fuse_attr", Attr {
            "ino" => ino, "size" => size, "blocks" => blocks, "atime" => atime, "mtime" => mtime,
            "ctime" => ctime, "atimensec" => atimensec, "mtimensec" => mtimensec,
            "ctimensec" => ctimensec, "mode" => mode, "nlink" => nlink, "uid" => uid, "gid" => gid,
            "rdev" => rdev, "blksize" => blksize, "flags" => flags,
        }),
        layout!("fuse_kstatfs", Kstatfs {
            "blocks" => blocks, "bfree" => bfree, "bavail" => bavail, "files" => files,
            "ffree" => ffree, "bsize" => bsize, "namelen" => namelen, "frsize" => frsize,
            "padding" => padding, "spare" => spare,
        }),
        layout!("fuse_file_lock", FileLock { "start" => start, "end" => end, "type" => typ, "pid" => pid }),
        layout!("fuse_entry_out", EntryOut {
            "nodeid" => nodeid, "generation" => generation, "entry_valid" => entry_valid,
            "attr_valid" => attr_valid, "entry_valid_nsec" => entry_valid_nsec,
            "attr_valid_nsec" => attr_valid_nsec, "attr" => attr,
        }),
        layout!("fuse_attr_out", AttrOut {
            "attr_valid" => attr_valid, "attr_valid_nsec" => attr_valid_nsec, "dummy" => dummy,
            "attr" => attr,
        }),
        layout!("fuse_forget_in", ForgetIn { "nlookup" => nlookup }),
        layout!("fuse_forget_one", ForgetOne { "nodeid" => nodeid, "nlookup" => nlookup }),
        layout!("fuse_batch_forget_in", BatchForgetIn { "count" => count, "dummy" => dummy }),
        layout!("fuse_getattr_in", GetattrIn { "getattr_flags" => getattr_flags, "dummy" => dummy, "fh" => fh }),
        layout!("fuse_setattr_in", SetattrIn {
            "valid" => valid, "padding" => padding, "fh" => fh, "size" => size,
            "lock_owner" => lock_owner, "atime" => atime, "mtime" => mtime, "ctime" => ctime,
            "atimensec" => atimensec, "mtimensec" => mtimensec, "ctimensec" => ctimensec,
            "mode" => mode, "unused4" => unused4, "uid" => uid, "gid" => gid, "unused5" => unused5,
        }),
        layout!("fuse_open_in", OpenIn { "flags" => flags, "open_flags" => open_flags }),
        layout!("fuse_create_in", CreateIn {
            "flags" => flags, "mode" => mode, "umask" => umask, "open_flags" => open_flags,
        }),
        layout!("fuse_open_out", OpenOut { "fh" => fh, "open_flags" => open_flags, "backing_id" => backing_id }),
        layout!("fuse_release_in", ReleaseIn {
            "fh" => fh, "flags" => flags, "release_flags" => release_flags, "lock_owner" => lock_owner,
        }),
        layout!("fuse_flush_in", FlushIn {
            "fh" => fh, "unused" => unused, "padding" => padding, "lock_owner" => lock_owner,
        }),
        layout!("fuse_read_in", ReadIn {
            "fh" => fh, "offset" => offset, "size" => size, "read_flags" => read_flags,
            "lock_owner" => lock_owner, "flags" => flags, "padding" => padding,
        }),
        layout!("fuse_write_in", WriteIn {
            "fh" => fh, "offset" => offset, "size" => size, "write_flags" => write_flags,
            "lock_owner" => lock_owner, "flags" => flags, "padding" => padding,
        }),
        layout!("fuse_write_out", WriteOut { "size" => size, "padding" => padding }),
        layout!("fuse_statfs_out", StatfsOut { "st" => st }),
        layout!("fuse_fsync_in", FsyncIn { "fh" => fh, "fsync_flags" => fsync_flags, "padding" => padding }),
        layout!("fuse_getxattr_in", GetxattrIn { "size" => size, "padding" => padding }),
        layout!("fuse_getxattr_out", GetxattrOut { "size" => size, "padding" => padding }),
        layout!("fuse_lk_in", LkIn {
            "fh" => fh, "owner" => owner, "lk" => lk, "lk_flags" => lk_flags, "padding" => padding,
        }),
        layout!("fuse_lk_out", LkOut { "lk" => lk }),
        layout!("fuse_access_in", AccessIn { "mask" => mask, "padding" => padding }),
        layout!("fuse_init_in", InitIn {
            "major" => major, "minor" => minor, "max_readahead" => max_readahead,
            "flags" => flags, "flags2" => flags2, "unused" => unused,
        }),
        layout!("fuse_init_out", InitOut {
            "major" => major, "minor" => minor, "max_readahead" => max_readahead,
            "flags" => flags, "max_background" => max_background,
            "congestion_threshold" => congestion_threshold, "max_write" => max_write,
            "time_gran" => time_gran, "max_pages" => max_pages, "map_alignment" => map_alignment,
            "flags2" => flags2, "max_stack_depth" => max_stack_depth,
            "request_timeout" => request_timeout, "unused" => unused,
        }),
        layout!("fuse_interrupt_in", InterruptIn { "unique" => unique }),
        layout!("fuse_lseek_in", LseekIn { "fh" => fh, "offset" => offset, "whence" => whence, "padding" => padding }),
        layout!("fuse_lseek_out", LseekOut { "offset" => offset }),
        layout!("fuse_dirent", Dirent { "ino" => ino, "off" => off, "namelen" => namelen, "type" => typ }),
        layout!("fuse_direntplus", DirentPlus { "entry_out" => entry_out, "dirent" => dirent }),
        layout!("fuse_notify_inval_inode_out", NotifyInvalInodeOut { "ino" => ino, "off" => off, "len" => len }),
        layout!("fuse_notify_inval_entry_out", NotifyInvalEntryOut {
            "parent" => parent, "namelen" => namelen, "flags" => flags,
        }),
        layout!("fuse_famfs_fmap_header", FmapHeader {
            "file_type" => file_type, "reserved" => reserved, "fmap_version" => fmap_version,
            "ext_type" => ext_type, "nextents" => nextents, "fmap_size" => fmap_size,
            "file_size" => file_size, "reserved1" => reserved1,
        }),
        layout!("fuse_famfs_simple_ext", SimpleExt {
            "se_devindex" => se_devindex, "reserved" => reserved, "se_offset" => se_offset,
            "se_len" => se_len,
        }),
        layout!("fuse_famfs_iext", Iext {
            "ie_nstrips" => ie_nstrips, "ie_chunk_size" => ie_chunk_size,
            "ie_nbytes" => ie_nbytes, "reserved" => reserved,
        }),
        layout!("fuse_get_daxdev_in", GetDaxdevIn { "daxdev_num" => daxdev_num }),
        layout!("fuse_daxdev_out", DaxdevOut {
            "index" => index, "reserved" => reserved, "reserved2" => reserved2,
            "reserved3" => reserved3, "reserved4" => reserved4, "name" => name,
        }),
        layout!("fuse_backing_map", BackingMap { "fd" => fd, "flags" => flags, "daxdev_index" => daxdev_index }),
        layout!("fuse_uring_ent_in_out", UringEntInOut {
            "flags" => flags, "commit_id" => commit_id, "payload_sz" => payload_sz,
            "padding" => padding, "reserved" => reserved,
        }),
        layout!("fuse_uring_req_header", UringReqHeader {
            "in_out" => in_out, "op_in" => op_in, "ring_ent_in_out" => ring_ent_in_out,
        }),
        layout!("fuse_uring_cmd_req", UringCmdReq {
            "flags" => flags, "commit_id" => commit_id, "qid" => qid, "padding" => padding,
        }),
    ]
}

/// Every object-like constant of the header, with its Rust value.
fn rust_constants() -> Vec<(&'static str, i128)> {
    macro_rules! consts {
        ($($name:ident),* $(,)?) => { vec![$((stringify!($name), abi::$name as i128)),*] };
    }
    let mut v = consts![
        FUSE_KERNEL_VERSION,
        FUSE_KERNEL_MINOR_VERSION,
        FUSE_ROOT_ID,
        FUSE_MIN_READ_BUFFER,
        FUSE_INT_REQ_BIT,
        FUSE_DEV_IOC_MAGIC,
        FUSE_COMPAT_INIT_OUT_SIZE,
        FUSE_COMPAT_22_INIT_OUT_SIZE,
        FUSE_COMPAT_ENTRY_OUT_SIZE,
        FUSE_COMPAT_ATTR_OUT_SIZE,
        FUSE_COMPAT_STATFS_SIZE,
        FUSE_COMPAT_WRITE_IN_SIZE,
        FUSE_NOTIFY_POLL,
        FUSE_NOTIFY_INVAL_INODE,
        FUSE_NOTIFY_INVAL_ENTRY,
        FUSE_NOTIFY_STORE,
        FUSE_NOTIFY_RETRIEVE,
        FUSE_NOTIFY_DELETE,
        FUSE_EXPIRE_ONLY,
        FUSE_ASYNC_READ,
        FUSE_POSIX_LOCKS,
        FUSE_FILE_OPS,
        FUSE_ATOMIC_O_TRUNC,
        FUSE_EXPORT_SUPPORT,
        FUSE_BIG_WRITES,
        FUSE_DONT_MASK,
        FUSE_SPLICE_WRITE,
        FUSE_SPLICE_MOVE,
        FUSE_SPLICE_READ,
        FUSE_FLOCK_LOCKS,
        FUSE_HAS_IOCTL_DIR,
        FUSE_AUTO_INVAL_DATA,
        FUSE_DO_READDIRPLUS,
        FUSE_READDIRPLUS_AUTO,
        FUSE_ASYNC_DIO,
        FUSE_WRITEBACK_CACHE,
        FUSE_NO_OPEN_SUPPORT,
        FUSE_PARALLEL_DIROPS,
        FUSE_HANDLE_KILLPRIV,
        FUSE_POSIX_ACL,
        FUSE_ABORT_ERROR,
        FUSE_MAX_PAGES,
        FUSE_CACHE_SYMLINKS,
        FUSE_NO_OPENDIR_SUPPORT,
        FUSE_EXPLICIT_INVAL_DATA,
        FUSE_MAP_ALIGNMENT,
        FUSE_SUBMOUNTS,
        FUSE_HANDLE_KILLPRIV_V2,
        FUSE_SETXATTR_EXT,
        FUSE_INIT_EXT,
        FUSE_INIT_RESERVED,
        FUSE_SECURITY_CTX,
        FUSE_HAS_INODE_DAX,
        FUSE_CREATE_SUPP_GROUP,
        FUSE_HAS_EXPIRE_ONLY,
        FUSE_DIRECT_IO_ALLOW_MMAP,
        FUSE_PASSTHROUGH,
        FUSE_NO_EXPORT_SUPPORT,
        FUSE_HAS_RESEND,
        FUSE_ALLOW_IDMAP,
        FUSE_OVER_IO_URING,
        FUSE_REQUEST_TIMEOUT,
        FUSE_DAX_FMAP,
        FOPEN_DIRECT_IO,
        FOPEN_KEEP_CACHE,
        FOPEN_NONSEEKABLE,
        FOPEN_CACHE_DIR,
        FOPEN_STREAM,
        FOPEN_NOFLUSH,
        FOPEN_PARALLEL_DIRECT_WRITES,
        FOPEN_PASSTHROUGH,
        FUSE_OPEN_KILL_SUIDGID,
        FUSE_GETATTR_FH,
        FATTR_MODE,
        FATTR_UID,
        FATTR_GID,
        FATTR_SIZE,
        FATTR_ATIME,
        FATTR_MTIME,
        FATTR_FH,
        FATTR_ATIME_NOW,
        FATTR_MTIME_NOW,
        FATTR_LOCKOWNER,
        FATTR_CTIME,
        FATTR_KILL_SUIDGID,
        FUSE_RELEASE_FLUSH,
        FUSE_RELEASE_FLOCK_UNLOCK,
        FUSE_LK_FLOCK,
        FUSE_READ_LOCKOWNER,
        FUSE_WRITE_CACHE,
        FUSE_WRITE_LOCKOWNER,
        FUSE_WRITE_KILL_SUIDGID,
        FUSE_FSYNC_FDATASYNC,
        FUSE_NAME_OFFSET,
        FUSE_NAME_OFFSET_DIRENTPLUS,
        FUSE_NAME_MAX,
        FAMFS_FMAP_VERSION,
        FUSE_FAMFS_MAX_EXTENTS,
        FUSE_FAMFS_MAX_STRIPS,
        FAMFS_FMAP_MAX,
        FAMFS_EXTENT_ALIGN,
        DAXDEV_NAME_MAX,
        FAMFS_MAX_DAXDEVS,
        FUSE_FAMFS_FILE_REG,
        FUSE_FAMFS_FILE_SUPERBLOCK,
        FUSE_FAMFS_FILE_LOG,
        FUSE_FAMFS_EXT_SIMPLE,
        FUSE_FAMFS_EXT_INTERLEAVE,
        FUSE_URING_IN_OUT_HEADER_SZ,
        FUSE_URING_OP_IN_OUT_SZ,
        FUSE_URING_IOV_SEGS,
        FUSE_IO_URING_CMD_INVALID,
        FUSE_IO_URING_CMD_REGISTER,
        FUSE_IO_URING_CMD_COMMIT_AND_FETCH,
    ];
    // Opcodes: FUSE_<name> in C, Opcode::<name> in Rust (CUSE_INIT keeps its own prefix).
    for (op, name) in Opcode::ALL {
        let c: &'static str = if name.starts_with("CUSE") {
            name
        } else {
            Box::leak(format!("FUSE_{name}").into_boxed_str())
        };
        v.push((c, i128::from(op.0)));
    }
    v
}

/// Constants the Rust crate takes from libc headers rather than from ours.
fn rust_system_constants() -> Vec<(&'static str, &'static str, i128)> {
    macro_rules! sys {
        ($hdr:literal: $($name:ident),*) => { vec![$(($hdr, stringify!($name), abi::$name as i128)),*] };
    }
    let mut v = sys!("fcntl.h": F_RDLCK, F_WRLCK, F_UNLCK);
    v.extend(
        sys!("dirent.h": DT_UNKNOWN, DT_FIFO, DT_CHR, DT_DIR, DT_BLK, DT_REG, DT_LNK, DT_SOCK),
    );
    v
}

// ---------------------------------------------------------------- reading the header as text

struct Header {
    structs: Vec<(String, Vec<String>)>,
    constants: BTreeSet<String>,
    function_macros: BTreeSet<String>,
}

fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i + 2..].find("*/") else {
            panic!("unterminated comment in header")
        };
        rest = &rest[i + 2 + j + 2..];
    }
    out.push_str(rest);
    out
}

fn read_header(text: &str) -> Header {
    let text = strip_comments(text);
    let mut constants = BTreeSet::new();
    let mut function_macros = BTreeSet::new();
    for line in text.lines() {
        let Some(def) = line.trim().strip_prefix("#define") else {
            continue;
        };
        let def = def.trim_start();
        let name: String = def
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let after = &def[name.len()..];
        if after.starts_with('(') {
            function_macros.insert(name);
        } else if !after.trim().is_empty() {
            constants.insert(name);
        } else {
            assert_eq!(
                name, "FAMFS_FUSE_ABI_H",
                "valueless macro other than the include guard"
            );
        }
    }
    let mut structs = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("struct ") {
        let after = &rest[i + 7..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let tail = after[name.len()..].trim_start();
        if let Some(body) = tail.strip_prefix('{') {
            let end = body.find("};").expect("struct body ends with };");
            let fields = body[..end]
                .split(';')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(|f| {
                    let decl = f.split('[').next().unwrap_or(f).trim();
                    decl.rsplit(|c: char| c.is_whitespace())
                        .next()
                        .unwrap_or(decl)
                        .to_string()
                })
                .collect();
            structs.push((name, fields));
            rest = &body[end + 2..];
        } else {
            rest = after;
        }
    }
    Header {
        structs,
        constants,
        function_macros,
    }
}

// ---------------------------------------------------------------- the C side

const ALIGN_PROBES: [u64; 6] = [0, 1, 7, 8, 25, 1049];

fn c_program(
    structs: &[StructInfo],
    consts: &[(&str, i128)],
    sys: &[(&str, &str, i128)],
) -> String {
    let mut p = String::new();
    // DT_* are BSD/XSI names, hidden by -std=c11 unless asked for.
    p.push_str("#define _DEFAULT_SOURCE\n#include <stddef.h>\n#include <stdio.h>\n");
    for h in sys.iter().map(|s| s.0).collect::<BTreeSet<_>>() {
        p.push_str(&format!("#include <{h}>\n"));
    }
    p.push_str(&format!(
        "#include \"{FAMFS_FUSE_ABI_H_NAME}\"\n\nint main(void)\n{{\n"
    ));
    for s in structs {
        p.push_str(&format!(
            "\tprintf(\"S {0} %zu %zu\\n\", sizeof(struct {0}), (size_t)_Alignof(struct {0}));\n",
            s.c
        ));
        for f in &s.fields {
            p.push_str(&format!(
                "\tprintf(\"F {0}.{1} %zu %zu\\n\", offsetof(struct {0}, {1}), sizeof(((struct {0} *)0)->{1}));\n",
                s.c, f.c
            ));
        }
    }
    for (name, _) in consts {
        p.push_str(&format!(
            "\tprintf(\"C {name} %lld\\n\", (long long)({name}));\n"
        ));
    }
    for (_, name, _) in sys {
        p.push_str(&format!(
            "\tprintf(\"C {name} %lld\\n\", (long long)({name}));\n"
        ));
    }
    for x in ALIGN_PROBES {
        p.push_str(&format!(
            "\tprintf(\"C FUSE_DIRENT_ALIGN({x}) %lld\\n\", (long long)FUSE_DIRENT_ALIGN({x}));\n"
        ));
    }
    p.push_str("\treturn 0;\n}\n");
    p
}

fn have_cc() -> bool {
    Command::new("cc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run_c(program: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vendor-headers-abi");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("abi_layout.c");
    let exe = dir.join("abi_layout");
    std::fs::write(&src, program).unwrap();
    let out = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I"])
        .arg(include_dir())
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "cc failed on {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe)
        .output()
        .expect("run the compiled program");
    assert!(run.status.success());
    String::from_utf8(run.stdout).unwrap()
}

// ---------------------------------------------------------------- the test

#[test]
fn header_matches_rust_definitions() {
    if !have_cc() {
        let msg =
            "no C compiler `cc` on PATH: famfs_fuse_abi.h was NOT checked against the Rust structs";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg} (CI=true, so this is a failure)");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    }

    let structs = rust_structs();
    let consts = rust_constants();
    let sys = rust_system_constants();

    // Both sides list the same structs, fields (in order) and constants.
    let header = read_header(FAMFS_FUSE_ABI_H);
    let h_structs: BTreeMap<_, _> = header.structs.iter().cloned().collect();
    let r_structs: BTreeMap<String, Vec<String>> = structs
        .iter()
        .map(|s| {
            (
                s.c.to_string(),
                s.fields.iter().map(|f| f.c.to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(
        h_structs.len(),
        header.structs.len(),
        "a struct is defined twice"
    );
    assert_eq!(
        h_structs.keys().collect::<Vec<_>>(),
        r_structs.keys().collect::<Vec<_>>(),
        "structs in the header vs in the Rust table"
    );
    for (name, fields) in &h_structs {
        assert_eq!(fields, &r_structs[name], "fields of struct {name}");
    }
    let r_consts: BTreeSet<String> = consts.iter().map(|c| c.0.to_string()).collect();
    assert_eq!(r_consts.len(), consts.len(), "a constant is listed twice");
    assert_eq!(
        header.constants, r_consts,
        "constants in the header vs in the Rust table"
    );
    assert_eq!(
        header.function_macros,
        BTreeSet::from(["FUSE_DIRENT_ALIGN".to_string()])
    );

    // Compile, run, compare.
    let output = run_c(&c_program(&structs, &consts, &sys));
    let mut c_struct = BTreeMap::new();
    let mut c_field = BTreeMap::new();
    let mut c_const = BTreeMap::new();
    for line in output.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts[..] {
            ["S", name, size, align] => {
                c_struct.insert(
                    name.to_string(),
                    (
                        size.parse::<usize>().unwrap(),
                        align.parse::<usize>().unwrap(),
                    ),
                );
            }
            ["F", name, off, size] => {
                c_field.insert(
                    name.to_string(),
                    (
                        off.parse::<usize>().unwrap(),
                        size.parse::<usize>().unwrap(),
                    ),
                );
            }
            ["C", name, value] => {
                c_const.insert(name.to_string(), value.parse::<i128>().unwrap());
            }
            _ => panic!("unexpected line from the C program: {line}"),
        }
    }
    let mut checked = 0;
    for s in &structs {
        assert_eq!(
            c_struct[s.c],
            (s.size, s.align),
            "sizeof/_Alignof struct {}",
            s.c
        );
        for f in &s.fields {
            let key = format!("{}.{}", s.c, f.c);
            assert_eq!(c_field[&key], (f.offset, f.size), "offsetof/sizeof {key}");
            checked += 1;
        }
    }
    for (name, value) in consts
        .iter()
        .map(|c| (c.0, c.1))
        .chain(sys.iter().map(|s| (s.1, s.2)))
    {
        assert_eq!(c_const[name], value, "value of {name}");
        checked += 1;
    }
    for x in ALIGN_PROBES {
        assert_eq!(
            c_const[&format!("FUSE_DIRENT_ALIGN({x})")],
            abi::fuse_dirent_align(x as usize) as i128,
            "FUSE_DIRENT_ALIGN({x})"
        );
    }
    eprintln!(
        "famfs_fuse_abi.h: {} structs, {checked} fields and constants match fuse-famfs-proto",
        structs.len()
    );
}

#[test]
fn header_reader_sees_everything() {
    // The text reader must not silently miss a struct or constant (it drives the completeness
    // check above).
    let h = read_header(
        "/* c */\n#define A 1\n#define F(x) (x)\nstruct s {\n\tuint32_t a; /* n */\n\tstruct t b;\n\tchar c[4];\n};\n",
    );
    assert_eq!(h.constants, BTreeSet::from(["A".to_string()]));
    assert_eq!(h.function_macros, BTreeSet::from(["F".to_string()]));
    assert_eq!(
        h.structs,
        vec![("s".to_string(), vec!["a".into(), "b".into(), "c".into()])]
    );
}
