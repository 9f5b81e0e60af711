//! `xtask size-check`: the project's size limits on production code.
//!
//! No production file over [`MAX_FILE_LINES`] lines and no production function over
//! [`MAX_FN_LINES`] lines. Production code is what a crate builds without `cfg(test)`: the module
//! tree reached from `src/lib.rs`, `src/main.rs`, `src/bin/*.rs` and `build.rs` of every crate,
//! leaving out modules and items marked `#[cfg(test)]` and functions marked `#[test]`. The `tests`
//! crate, integration tests (`tests/`), benchmarks (`benches/`), examples and the cargo-fuzz crates
//! (`fuzz/`) are test code and exempt.
//!
//! A file's size is its line count less the lines of its `#[cfg(test)]` items; a function's size
//! runs from the line of its `fn` keyword to its closing brace (doc comments and attributes do not
//! count).

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::visit::Visit;

/// The most lines a production file may have.
pub const MAX_FILE_LINES: usize = 600;
/// The most lines a production function may have.
pub const MAX_FN_LINES: usize = 100;

/// Directories of the workspace that hold no production code (nor do hidden ones).
const EXEMPT_DIRS: &[&str] = &["tests", "target", "fuzz", "benches", "examples"];

/// One breach of a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offence {
    /// A file with more production lines than [`MAX_FILE_LINES`].
    File {
        /// The file, relative to the workspace root.
        path: PathBuf,
        /// Its production lines.
        lines: usize,
    },
    /// A function longer than [`MAX_FN_LINES`].
    Function {
        /// The file, relative to the workspace root.
        path: PathBuf,
        /// The line of its `fn` keyword.
        line: usize,
        /// Its name.
        name: String,
        /// Its length in lines.
        lines: usize,
    },
}

impl fmt::Display for Offence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Offence::File { path, lines } => write!(
                f,
                "{}: {lines} production lines (limit {MAX_FILE_LINES})",
                path.display()
            ),
            Offence::Function {
                path,
                line,
                name,
                lines,
            } => write!(
                f,
                "{}:{line}: fn {name} has {lines} lines (limit {MAX_FN_LINES})",
                path.display()
            ),
        }
    }
}

/// Errors of the check itself (not breaches of the limits).
#[derive(Debug)]
pub enum CheckError {
    /// A file could not be read.
    Read(PathBuf, std::io::Error),
    /// A file is not valid Rust.
    Parse(PathBuf, syn::Error),
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Read(p, e) => write!(f, "{}: {e}", p.display()),
            CheckError::Parse(p, e) => write!(f, "{}:{}: {e}", p.display(), e.span().start().line),
        }
    }
}

/// Whether `attrs` mark an item compiled for tests only: `#[test]`, `#[cfg(test)]` or
/// `#[cfg(all(test, ...))]`.
fn test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        if a.path().is_ident("test") {
            return true;
        }
        if !a.path().is_ident("cfg") {
            return false;
        }
        let Ok(list) = a.meta.require_list() else {
            return false;
        };
        let cond: String = list
            .tokens
            .to_string()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        cond == "test"
            || cond
                .strip_prefix("all(")
                .and_then(|rest| rest.strip_suffix(')'))
                .is_some_and(|inner| inner.split(',').any(|part| part == "test"))
    })
}

/// The `#[path = "..."]` of a module declaration, if any.
fn path_attr(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|a| {
        let nv = a.meta.require_name_value().ok()?;
        if !nv.path.is_ident("path") {
            return None;
        }
        match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        }
    })
}

/// Lines from the start of `first` to the end of `last`, both included.
fn lines_between(first: Span, last: Span) -> usize {
    last.end().line.saturating_sub(first.start().line) + 1
}

/// What one file holds: its test-only lines, its long functions and its out-of-line modules.
#[derive(Default)]
struct FileScan {
    /// Line ranges (inclusive) of `#[cfg(test)]` items.
    test_ranges: Vec<(usize, usize)>,
    /// `(line, name, lines)` of every production function over the limit.
    long_fns: Vec<(usize, String, usize)>,
    /// Out-of-line production modules: `(directory of the inline modules around it, name, path
    /// attribute)`.
    modules: Vec<(Vec<String>, String, Option<String>)>,
    /// Names of the inline modules around the item being visited.
    inline: Vec<String>,
}

impl FileScan {
    fn function(&mut self, name: String, fn_token: Span, block: &syn::Block) {
        let lines = lines_between(fn_token, block.brace_token.span.close());
        if lines > MAX_FN_LINES {
            self.long_fns.push((fn_token.start().line, name, lines));
        }
    }

    /// Record a test-only item; `true` when `attrs` make it one.
    fn skip_test(&mut self, attrs: &[syn::Attribute], span: Span) -> bool {
        if !test_only(attrs) {
            return false;
        }
        let start = attrs
            .first()
            .map_or(span.start().line, |a| a.span().start().line);
        self.test_ranges.push((start, span.end().line));
        true
    }
}

impl<'ast> Visit<'ast> for FileScan {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs: &[syn::Attribute] = match item {
            syn::Item::Const(i) => &i.attrs,
            syn::Item::Enum(i) => &i.attrs,
            syn::Item::Fn(i) => &i.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Macro(i) => &i.attrs,
            syn::Item::Mod(i) => &i.attrs,
            syn::Item::Static(i) => &i.attrs,
            syn::Item::Struct(i) => &i.attrs,
            syn::Item::Trait(i) => &i.attrs,
            syn::Item::Type(i) => &i.attrs,
            syn::Item::Use(i) => &i.attrs,
            _ => &[],
        };
        if self.skip_test(attrs, item.span()) {
            return;
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        match &m.content {
            None => self.modules.push((
                self.inline.clone(),
                m.ident.to_string(),
                path_attr(&m.attrs),
            )),
            Some(_) => {
                self.inline.push(m.ident.to_string());
                syn::visit::visit_item_mod(self, m);
                self.inline.pop();
            }
        }
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.function(f.sig.ident.to_string(), f.sig.fn_token.span, &f.block);
        syn::visit::visit_item_fn(self, f);
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        if let syn::ImplItem::Fn(f) = item
            && self.skip_test(&f.attrs, f.span())
        {
            return;
        }
        syn::visit::visit_impl_item(self, item);
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        self.function(f.sig.ident.to_string(), f.sig.fn_token.span, &f.block);
        syn::visit::visit_impl_item_fn(self, f);
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if let Some(block) = &f.default {
            self.function(f.sig.ident.to_string(), f.sig.fn_token.span, block);
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
}

/// Scan the source text of one file.
fn scan_source(source: &str) -> syn::Result<(usize, FileScan)> {
    let file = syn::parse_file(source)?;
    let mut scan = FileScan::default();
    scan.visit_file(&file);
    let mut test_lines = BTreeSet::new();
    for &(a, b) in &scan.test_ranges {
        test_lines.extend(a..=b);
    }
    let production = source.lines().count().saturating_sub(test_lines.len());
    Ok((production, scan))
}

/// The directory that holds the out-of-line child modules of `file`.
fn child_dir(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new(""));
    match file.file_name().and_then(|n| n.to_str()) {
        Some("lib.rs" | "main.rs" | "mod.rs") => dir.to_path_buf(),
        _ if file.parent().and_then(Path::file_name) == Some("bin".as_ref()) => dir.to_path_buf(),
        _ => dir.join(file.file_stem().unwrap_or_default()),
    }
}

/// Check the module tree rooted at `root` (relative paths are reported against `workspace`).
fn check_tree(
    workspace: &Path,
    root: &Path,
    offences: &mut Vec<Offence>,
    seen: &mut BTreeSet<PathBuf>,
) -> Result<(), CheckError> {
    let mut todo = vec![root.to_path_buf()];
    while let Some(file) = todo.pop() {
        if !seen.insert(file.clone()) {
            continue;
        }
        let source =
            std::fs::read_to_string(&file).map_err(|e| CheckError::Read(file.clone(), e))?;
        let (lines, scan) = scan_source(&source).map_err(|e| CheckError::Parse(file.clone(), e))?;
        let rel = file.strip_prefix(workspace).unwrap_or(&file).to_path_buf();
        if lines > MAX_FILE_LINES {
            offences.push(Offence::File {
                path: rel.clone(),
                lines,
            });
        }
        for (line, name, lines) in scan.long_fns {
            offences.push(Offence::Function {
                path: rel.clone(),
                line,
                name,
                lines,
            });
        }
        let base = child_dir(&file);
        for (inline, name, path) in scan.modules {
            let dir = inline.iter().fold(base.clone(), |d, m| d.join(m));
            let child = match path {
                Some(p) if inline.is_empty() => file.parent().unwrap_or(Path::new("")).join(p),
                Some(p) => dir.join(p),
                None if dir.join(format!("{name}.rs")).is_file() => dir.join(format!("{name}.rs")),
                None => dir.join(&name).join("mod.rs"),
            };
            todo.push(child);
        }
    }
    Ok(())
}

/// The crate directories below `workspace`: every directory with a `Cargo.toml`, outside the
/// exempt ones.
fn crate_dirs(workspace: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut todo = vec![workspace.to_path_buf()];
    while let Some(dir) = todo.pop() {
        if dir.join("Cargo.toml").is_file() && dir.join("src").is_dir() {
            found.push(dir.clone());
        }
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let exempt = EXEMPT_DIRS.contains(&name.as_ref()) || name.starts_with('.');
            if entry.file_type()?.is_dir() && !exempt {
                todo.push(entry.path());
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The crate roots of the crate in `dir`: library, main binary, `src/bin` binaries, build script.
fn crate_roots(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut roots: Vec<PathBuf> = ["src/lib.rs", "src/main.rs", "build.rs"]
        .iter()
        .map(|r| dir.join(r))
        .filter(|p| p.is_file())
        .collect();
    let bin = dir.join("src/bin");
    if bin.is_dir() {
        for entry in std::fs::read_dir(&bin)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "rs") {
                roots.push(path);
            } else if path.join("main.rs").is_file() {
                roots.push(path.join("main.rs"));
            }
        }
    }
    roots.sort();
    Ok(roots)
}

/// Check every production file of the workspace at `workspace`; returns the breaches.
pub fn check(workspace: &Path) -> Result<Vec<Offence>, CheckError> {
    let mut offences = Vec::new();
    let mut seen = BTreeSet::new();
    let crates = crate_dirs(workspace).map_err(|e| CheckError::Read(workspace.into(), e))?;
    for dir in crates {
        for root in crate_roots(&dir).map_err(|e| CheckError::Read(dir.clone(), e))? {
            check_tree(workspace, &root, &mut offences, &mut seen)?;
        }
    }
    Ok(offences)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long_fn(name: &str, body_lines: usize) -> String {
        let body = "    let _ = 1;\n".repeat(body_lines);
        format!("fn {name}() {{\n{body}}}\n")
    }

    #[test]
    fn function_length_counts_from_fn_to_closing_brace() {
        let src = format!("/// doc\n#[inline]\n{}", long_fn("exactly", 98));
        let (_, scan) = scan_source(&src).unwrap();
        assert!(scan.long_fns.is_empty(), "100 lines are allowed");
        let src = format!("/// doc\n{}", long_fn("over", 99));
        let (_, scan) = scan_source(&src).unwrap();
        assert_eq!(scan.long_fns, vec![(2, "over".to_string(), 101)]);
    }

    #[test]
    fn methods_and_nested_functions_count() {
        let src = format!(
            "struct S;\nimpl S {{\n{}}}\nfn outer() {{\n{}}}\n",
            long_fn("method", 120),
            long_fn("inner", 120)
        );
        let (_, scan) = scan_source(&src).unwrap();
        let names: Vec<_> = scan.long_fns.iter().map(|f| f.1.as_str()).collect();
        assert_eq!(names, ["method", "outer", "inner"]);
    }

    #[test]
    fn test_only_code_is_exempt() {
        let src = format!(
            "fn a() {{}}\n#[cfg(test)]\nmod tests {{\n{}}}\n#[test]\n{}\n\
             #[cfg(all(test, feature = \"x\"))]\n{}#[cfg(not(test))]\n{}",
            long_fn("in_tests", 200),
            long_fn("marked_test", 200),
            long_fn("all_test", 200),
            long_fn("not_test", 200)
        );
        let (lines, scan) = scan_source(&src).unwrap();
        let names: Vec<_> = scan.long_fns.iter().map(|f| f.1.as_str()).collect();
        assert_eq!(names, ["not_test"], "cfg(not(test)) is production code");
        // `fn a` (1 line), the blank line after `marked_test`, and `not_test` with its cfg (203).
        assert_eq!(lines, 1 + 1 + 203);
    }

    #[test]
    fn modules_are_followed_but_test_modules_are_not() {
        let src = "mod a;\n#[path = \"x.rs\"]\nmod b;\n#[cfg(test)]\nmod tests;\nmod inline {\n    mod c;\n}\n";
        let (_, scan) = scan_source(src).unwrap();
        assert_eq!(
            scan.modules,
            vec![
                (vec![], "a".to_string(), None),
                (vec![], "b".to_string(), Some("x.rs".to_string())),
                (vec!["inline".to_string()], "c".to_string(), None),
            ]
        );
    }

    #[test]
    fn a_tree_with_a_long_file_and_function_is_reported() {
        let dir = std::env::temp_dir().join(format!("xtask-size-{}", std::process::id()));
        let src = dir.join("k/src");
        std::fs::create_dir_all(src.join("big")).unwrap();
        std::fs::create_dir_all(dir.join("k/tests")).unwrap();
        std::fs::write(dir.join("k/Cargo.toml"), "").unwrap();
        std::fs::write(src.join("lib.rs"), "mod big;\n#[cfg(test)]\nmod t;\n").unwrap();
        std::fs::write(
            src.join("big.rs"),
            "mod deep;\n".to_string() + &"// c\n".repeat(600),
        )
        .unwrap();
        std::fs::write(src.join("big/deep.rs"), long_fn("deep_fn", 150)).unwrap();
        std::fs::write(src.join("t.rs"), long_fn("test_helper", 900)).unwrap();
        std::fs::write(dir.join("k/tests/it.rs"), long_fn("integration", 900)).unwrap();
        let found = check(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            found,
            vec![
                Offence::File {
                    path: "k/src/big.rs".into(),
                    lines: 601
                },
                Offence::Function {
                    path: "k/src/big/deep.rs".into(),
                    line: 1,
                    name: "deep_fn".into(),
                    lines: 152
                },
            ]
        );
    }
}
