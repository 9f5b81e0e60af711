//! Text formats: the tree listing of `logplay --ls`, the map of `getmap`, bucket statistics.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use famfs_fmap::{Fmap, FmapKind};
use famfs_log::alloc::Bitmap;
use famfs_log::layout::ALLOC_UNIT;
use famfs_log::namespace::{Namespace, Node, NodeKind, ROOT_INO};

/// One line per node below the root, depth first, children in log order:
/// `TYPE MODE UID GID SIZE PATH` with `d`/`f` types and a trailing `/` on directories.
pub fn tree_lines(ns: &Namespace) -> Vec<String> {
    tree_lines_with(ns, |m| m)
}

/// Visit every node below the root with its path, depth first, children in log order (the order
/// of the listing, in text and in JSON).
pub fn walk_tree(ns: &Namespace, mut visit: impl FnMut(PathBuf, &Node)) {
    let mut stack = vec![ROOT_INO];
    while let Some(ino) = stack.pop() {
        let Some(node) = ns.get(ino) else { continue };
        if ino != ROOT_INO {
            visit(ns.path_of(ino), node);
        }
        if let NodeKind::Dir(d) = &node.kind {
            stack.extend(d.children().iter().rev());
        }
    }
}

/// As [`tree_lines`], showing `mode_of(mode)` for each logged mode (a client shows modes
/// without write bits).
pub fn tree_lines_with(ns: &Namespace, mode_of: impl Fn(u32) -> u32) -> Vec<String> {
    let mut out = Vec::new();
    walk_tree(ns, |path, node| {
        let a = node.attr;
        let mode = mode_of(a.mode) & 0o7777;
        let (kind, size, slash) = match &node.kind {
            NodeKind::Dir(_) => ('d', 0, "/"),
            NodeKind::File(f) => ('f', f.size, ""),
        };
        out.push(format!(
            "{kind} {mode:04o} {:>6} {:>6} {size:>14} {}{slash}",
            a.uid,
            a.gid,
            path.display()
        ));
    });
    out
}

/// The reference's `getmap` block for one file (without the final `good file` line).
pub fn getmap_text(shown: &Path, size: u64, fmap: &Fmap) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "File:     {}", shown.display());
    let _ = writeln!(o, "\tsize:    {size}");
    match &fmap.kind {
        FmapKind::Simple(exts) => {
            let _ = writeln!(o, "\textents: {}", exts.len());
            for e in exts {
                let _ = writeln!(o, "\t\t{:x}\t{}", e.offset, e.len);
            }
        }
        FmapKind::Interleaved(ies) => {
            let _ = writeln!(o, "\textents: {}", ies.len());
            for ie in ies {
                let _ = writeln!(o, "Interleave_Param chunk_size: {}", ie.chunk_size);
                let _ = writeln!(o, "Interleaved extent has {} strips:", ie.strips.len());
                for s in &ie.strips {
                    let _ = writeln!(o, "\t\t{:x}\t{}", s.offset, s.len);
                }
            }
        }
    }
    o
}

/// Free-space statistics of `nbuckets` equal buckets of the bitmap (fsck `-B`), in the
/// reference's labels.
pub fn bucket_stats(bm: &Bitmap, dev_size: u64, nbuckets: u64) -> String {
    let mut o = String::new();
    let dev_units = dev_size / ALLOC_UNIT;
    let n = nbuckets.clamp(1, dev_units.max(1));
    let per = dev_units / n;
    let _ = writeln!(o, "Stripe bucket info:");
    for b in 0..n {
        let lo = b * per;
        let hi = if b + 1 == n { dev_units } else { lo + per };
        let (mut used, mut frags, mut largest, mut smallest, mut run) =
            (0u64, 0u64, 0u64, u64::MAX, 0u64);
        for k in lo..=hi {
            let free = k < hi && !bm.is_set(k);
            if k < hi && !free {
                used += 1;
            }
            if free {
                run += 1;
            } else if run > 0 {
                frags += 1;
                largest = largest.max(run);
                smallest = smallest.min(run);
                run = 0;
            }
        }
        let size = (hi - lo) * ALLOC_UNIT;
        let _ = writeln!(
            o,
            "  Bitmap range {b}: [{:#x}, {:#x})",
            lo * ALLOC_UNIT,
            hi * ALLOC_UNIT
        );
        let _ = writeln!(o, "    Size:             {size}");
        let _ = writeln!(o, "    In use:           {}", used * ALLOC_UNIT);
        let _ = writeln!(o, "    Free:             {}", size - used * ALLOC_UNIT);
        let _ = writeln!(o, "    Free fragments:   {frags}");
        let _ = writeln!(o, "    Largest frag:     {}", largest * ALLOC_UNIT);
        let _ = writeln!(
            o,
            "    Smallest frag:    {}",
            if frags == 0 { 0 } else { smallest * ALLOC_UNIT }
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use famfs_fmap::{Extent, InterleavedExtent};
    use famfs_log::namespace::{Attr, DirNode, FileNode};
    use std::ffi::OsStr;
    use std::sync::Arc;

    fn attr(mode: u32, uid: u32) -> Attr {
        Attr {
            mode,
            uid,
            gid: uid + 1,
        }
    }

    #[test]
    fn tree_is_depth_first_in_log_order() {
        let mut ns = Namespace::new(attr(0o755, 0));
        let dir = |ns: &mut Namespace, p, n: &str| {
            ns.add(
                p,
                OsStr::new(n),
                attr(0o750, 3),
                NodeKind::Dir(DirNode::default()),
                None,
            )
            .unwrap()
        };
        let file = |ns: &mut Namespace, p, n: &str, size| {
            ns.add(
                p,
                OsStr::new(n),
                attr(0o640, 1000),
                NodeKind::File(FileNode {
                    size,
                    flags: 2,
                    fmap: Arc::new(Fmap::simple(
                        size,
                        vec![Extent::new(0, ALLOC_UNIT * 10, ALLOC_UNIT)],
                    )),
                }),
                None,
            )
            .unwrap()
        };
        let a = dir(&mut ns, ROOT_INO, "a");
        file(&mut ns, ROOT_INO, "top", 5);
        let b = dir(&mut ns, a, "b");
        file(&mut ns, b, "deep", 123456789);
        file(&mut ns, a, "x", 1);
        assert_eq!(
            tree_lines(&ns),
            vec![
                "d 0750      3      4              0 a/",
                "d 0750      3      4              0 a/b/",
                "f 0640   1000   1001      123456789 a/b/deep",
                "f 0640   1000   1001              1 a/x",
                "f 0640   1000   1001              5 top",
            ]
        );
    }

    #[test]
    fn getmap_matches_the_reference_layout() {
        let f = Fmap::simple(
            5 << 20,
            vec![
                Extent::new(0, 0x4000_0000, 4 << 20),
                Extent::new(0, 0x8020_0000, 2 << 20),
            ],
        );
        assert_eq!(
            getmap_text(Path::new("/mnt/famfs/f"), 5 << 20, &f),
            "File:     /mnt/famfs/f\n\tsize:    5242880\n\textents: 2\n\t\t40000000\t4194304\n\t\t80200000\t2097152\n"
        );
        let f = Fmap::striped(
            7 << 20,
            vec![InterleavedExtent::new(
                2 << 20,
                vec![
                    Extent::new(0, 0x200_0000, 4 << 20),
                    Extent::new(0, 0x4000_0000, 4 << 20),
                ],
            )],
        );
        assert_eq!(
            getmap_text(Path::new("s"), 7 << 20, &f),
            "File:     s\n\tsize:    7340032\n\textents: 1\nInterleave_Param chunk_size: 2097152\n\
             Interleaved extent has 2 strips:\n\t\t2000000\t4194304\n\t\t40000000\t4194304\n"
        );
    }

    #[test]
    fn buckets() {
        let mut bm = Bitmap::new(8);
        bm.mark(0, 2);
        bm.mark(5, 1);
        let s = bucket_stats(&bm, 8 * ALLOC_UNIT, 2);
        assert!(s.contains("Bitmap range 0"), "{s}");
        // Bucket 0: units 0..4, 2 used, one free run of 2.
        assert!(
            s.contains(&format!("In use:           {}", 2 * ALLOC_UNIT)),
            "{s}"
        );
        assert!(
            s.contains(&format!("Largest frag:     {}", 2 * ALLOC_UNIT)),
            "{s}"
        );
        // Bucket 1: units 4..8, unit 5 used: runs of 1 and 2.
        assert!(
            s.contains(&format!("Smallest frag:    {}", ALLOC_UNIT)),
            "{s}"
        );
    }
}
