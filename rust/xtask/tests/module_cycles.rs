//! No source file of ThreadKit's crates depends on one that depends back on it: each file's
//! `crate::`/`super::`/`self::` paths (in `use` trees and in code) are edges to the module files
//! they name, and any cycle among those files fails the test, naming the files.
//!
//! Paths through a `use` (a re-export, or a parent's import its submodule names with `super::`)
//! are followed to the file that defines the item. A file's
//! paths to its own ancestors (a submodule's `super::`) are not edges: a submodule is a part of
//! its parent split out for size, and the parent declares it. A plain text scan, not a parser:
//! it relies on rustfmt's layout (a `mod name {` block closes with `}` at its own indentation).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates checked (the library code), relative to the workspace root.
const CRATES: &[&str] = &["rust/core/src", "rust/extension/src", "rust/xtask/src"];

/// A module path from the crate root: `[]` is the root, `["task_handle", "owner"]` a submodule.
type Module = Vec<String>;

struct File {
    path: PathBuf,
    /// Each path this file names, made absolute (from the crate root).
    paths: Vec<Module>,
    /// Names this file's `use` statements bring in, to the absolute path they stand for.
    reexports: BTreeMap<String, Module>,
}

fn module_of(src: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut module: Module = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if matches!(
        module.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        module.pop();
    }
    module
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e` (whitespace already removed).
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let Some(open) = tree.find('{') else {
        out.push(format!("{prefix}{tree}"));
        return;
    };
    let (head, body) = (&tree[..open], &tree[open + 1..tree.len() - 1]);
    let (mut depth, mut start) = (0, 0);
    for (i, c) in body.char_indices().chain([(body.len(), ',')]) {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                let item = &body[start..i];
                if !item.is_empty() {
                    expand(item, &format!("{prefix}{head}"), out);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
}

/// Makes `path` (words split on `::`) absolute, seen from inline module `here`. A path that
/// starts with a name is taken as relative to `here` (a child module's, or `lib.rs`'s `pub use
/// task::...`); one into another crate then resolves to `here` itself, which is no edge.
fn absolute(path: &[&str], here: &Module) -> Option<Module> {
    let mut module = match path.first()? {
        &"crate" => Module::new(),
        &"self" | &"super" => here.clone(),
        _ => {
            let mut module = here.clone();
            module.extend(path.iter().map(|word| word.to_string()));
            return Some(module);
        }
    };
    let mut words = path.iter().skip(1).peekable();
    if path[0] == "super" {
        module.pop()?;
    }
    while words.peek() == Some(&&"super") {
        words.next();
        module.pop()?;
    }
    module.extend(words.map(|word| word.to_string()));
    Some(module)
}

fn parse(src: &Path, path: PathBuf) -> File {
    let text = std::fs::read_to_string(&path).unwrap();
    let file_module = module_of(src, &path);
    // Inline `mod name {` blocks open at this point: (their indentation, their name).
    let mut inline: Vec<(usize, String)> = Vec::new();
    let mut statement = String::new();
    let mut file = File {
        path,
        paths: Vec::new(),
        reexports: BTreeMap::new(),
    };
    for line in text.lines() {
        let code = line.split("//").next().unwrap();
        let trimmed = code.trim();
        let indent = code.len() - code.trim_start().len();
        if inline
            .last()
            .is_some_and(|(at, _)| *at == indent && trimmed == "}")
        {
            inline.pop();
        }
        let mut here = file_module.clone();
        here.extend(inline.iter().map(|(_, name)| name.clone()));
        let declaration = trimmed
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub ");
        if let Some(name) = declaration
            .strip_prefix("mod ")
            .and_then(|d| d.strip_suffix(" {"))
        {
            inline.push((indent, name.to_string()));
            continue;
        }
        if statement.is_empty() && !declaration.starts_with("use ") {
            for word in code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
                let words: Vec<&str> = word.split("::").collect();
                if words.len() > 1
                    && let Some(target) = absolute(&words, &here)
                {
                    file.paths.push(target);
                }
            }
            continue;
        }
        statement.push_str(trimmed);
        if !trimmed.ends_with(';') {
            continue;
        }
        let tree: String = statement
            .replace(" as ", "@")
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub ")
            .trim_start_matches("use ")
            .trim_end_matches(';')
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        statement.clear();
        let mut used = Vec::new();
        expand(&tree, "", &mut used);
        for use_path in used {
            let (use_path, alias) = use_path.split_once('@').unwrap_or((&use_path, ""));
            let words: Vec<&str> = use_path.split("::").collect();
            let words = match words.split_last() {
                Some((&"self", parent)) => parent,
                _ => &words[..],
            };
            if let Some(target) = absolute(words, &here) {
                let name = if alias.is_empty() {
                    words[words.len() - 1]
                } else {
                    alias
                };
                if name != "*" && here == file_module {
                    file.reexports.insert(name.to_string(), target.clone());
                }
                file.paths.push(target);
            }
        }
    }
    file
}

/// The file that defines the item at `path`: the longest module prefix with a file, followed
/// through that file's re-exports.
fn resolve(path: &Module, files: &BTreeMap<Module, File>) -> Option<Module> {
    let mut path = path.clone();
    for _ in 0..8 {
        let cut = (0..=path.len())
            .rev()
            .find(|&len| files.contains_key(&path[..len]))?;
        let module = path[..cut].to_vec();
        match path
            .get(cut)
            .and_then(|name| files[&module].reexports.get(name))
        {
            Some(target) if *target != path => path = target.clone(),
            _ => return Some(module),
        }
    }
    None
}

/// Every cycle's files, found by a depth-first search that reports each back edge's loop.
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    fn visit(
        node: &Module,
        edges: &BTreeMap<Module, BTreeSet<Module>>,
        stack: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
        found: &mut Vec<Vec<Module>>,
    ) {
        if let Some(at) = stack.iter().position(|on| on == node) {
            found.push(stack[at..].to_vec());
            return;
        }
        if !done.insert(node.clone()) {
            return;
        }
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, stack, done, found);
        }
        stack.pop();
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        visit(node, edges, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

#[test]
fn no_file_depends_on_a_file_that_depends_on_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut problems = Vec::new();
    for krate in CRATES {
        let src = root.join(krate);
        let mut paths = Vec::new();
        rust_files(&src, &mut paths);
        let files: BTreeMap<Module, File> = paths
            .into_iter()
            .map(|path| (module_of(&src, &path), parse(&src, path)))
            .collect();
        let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
        for (module, file) in &files {
            for path in &file.paths {
                match resolve(path, &files) {
                    Some(target) if !module.starts_with(&target) => {
                        edges.entry(module.clone()).or_default().insert(target);
                    }
                    _ => {}
                }
            }
        }
        for cycle in cycles(&edges) {
            let names: Vec<String> = cycle
                .iter()
                .chain(cycle.first())
                .map(|module| {
                    let path = &files[module].path;
                    path.strip_prefix(&root)
                        .unwrap_or(path)
                        .display()
                        .to_string()
                })
                .collect();
            problems.push(names.join(" -> "));
        }
    }
    assert!(
        problems.is_empty(),
        "files that depend on each other (move the shared part into a file both use):\n{}",
        problems.join("\n")
    );
}
