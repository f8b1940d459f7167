//! Checks of the source tree itself: the modules use each other only as ARCHITECTURE.md's
//! "Layers" table says, so the map stays true by construction.
//!
//! An edge is any `crate::name` path in a file of module `a` (in `use` lines and in code, tests
//! included; comments do not count) where `name` is another top-level module `b`. The table
//! lists, for each top-level module, the modules it may use; the test fails on an edge the
//! table does not allow and on an allowance nothing uses any more (a stale row), and prints the
//! largest circle of files, which is how tangled the code is below the module level.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module -> the top-level modules its files name.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `src/`, relative to it.
fn source_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).expect("src/ is readable");
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path.strip_prefix(base).expect("under src/").to_path_buf());
            }
        }
    }
    let src = root().join("src");
    let mut files = Vec::new();
    walk(&src, &src, &mut files);
    files.sort();
    files
}

/// The top-level module a file belongs to: `chat/rooms.rs` -> `chat`, `cli.rs` -> `cli`.
fn top_module(file: &Path) -> String {
    let first = file
        .components()
        .next()
        .expect("a file has a name")
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// `text` without `//` comments (line, doc and inner doc comments). String literals that
/// contain `//` (URLs) lose their tail, which is harmless: no module is named in a URL.
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths after each `crate::` in `code`, with `crate::{a, b::{c, d}}` spread into
/// `a`, `b::c`, `b::d`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let preceded_by_ident = rest[..i]
            .chars()
            .next_back()
            .is_some_and(|c| is_ident_char(c) || c == ':');
        rest = &rest[i + "crate::".len()..];
        if preceded_by_ident {
            continue;
        }
        if rest.starts_with('{') {
            let group = braced(rest);
            for item in spread(&group[1..group.len() - 1]) {
                paths.push(item);
            }
            rest = &rest[group.len()..];
        } else {
            let end = rest
                .find(|c: char| !(is_ident_char(c) || c == ':'))
                .unwrap_or(rest.len());
            paths.push(rest[..end].trim_end_matches(':').to_owned());
            rest = &rest[end..];
        }
    }
    paths
}

/// The `{...}` group `text` starts with, braces included.
fn braced(text: &str) -> &str {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..=i];
                }
            }
            _ => {}
        }
    }
    text
}

/// `a, b::{c, d}, e as f` -> `a`, `b::c`, `b::d`, `e`.
fn spread(list: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&list[start..]);
    for part in parts {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        match part.find("::{") {
            Some(i) => {
                let prefix = &part[..i];
                let inner = braced(&part[i + 2..]);
                for item in spread(&inner[1..inner.len() - 1]) {
                    items.push(format!("{prefix}::{item}"));
                }
            }
            None => {
                let name = part.split_whitespace().next().unwrap_or(part);
                items.push(name.to_owned());
            }
        }
    }
    items
}

/// The top-level module graph of the crate, from the source.
fn module_graph(files: &[PathBuf]) -> (BTreeSet<String>, Graph) {
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| top_module(f))
        // The crate root, the binary and this test are not modules anything uses.
        .filter(|m| !["lib", "main", "tidy"].contains(&m.as_str()))
        .collect();
    let mut graph = Graph::new();
    for file in files {
        let from = top_module(file);
        let text = std::fs::read_to_string(root().join("src").join(file)).expect("readable");
        for path in crate_paths(&without_comments(&text)) {
            let to = path.split("::").next().unwrap_or_default();
            if to != from && modules.contains(to) {
                graph.entry(from.clone()).or_default().insert(to.to_owned());
            }
        }
    }
    (modules, graph)
}

/// ARCHITECTURE.md's "Layers" table: `| \`module\` | \`a\`, \`b\` |` rows, `—` for none.
fn layers_table() -> Graph {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let start = text
        .find("## Layers")
        .expect("ARCHITECTURE.md has a \"## Layers\" section");
    let section = &text[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    let mut table = Graph::new();
    for line in section[..end].lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        if cells.len() < 2 || !cells[0].trim().starts_with('`') {
            continue;
        }
        let module = cells[0].trim().trim_matches('`').to_owned();
        let allowed = cells[1]
            .split(',')
            .map(|m| m.trim().trim_matches('`').to_owned())
            .filter(|m| !m.is_empty() && m != "—")
            .collect();
        table.insert(module, allowed);
    }
    table
}

/// Strongly connected components (Tarjan), largest first.
fn circles<N: Ord + Clone>(graph: &BTreeMap<N, BTreeSet<N>>, nodes: &BTreeSet<N>) -> Vec<Vec<N>> {
    struct State<'g, N: Ord> {
        graph: &'g BTreeMap<N, BTreeSet<N>>,
        index: BTreeMap<N, usize>,
        low: BTreeMap<N, usize>,
        stack: Vec<N>,
        on_stack: BTreeSet<N>,
        found: Vec<Vec<N>>,
    }
    fn visit<N: Ord + Clone>(s: &mut State<'_, N>, v: &N) {
        let i = s.index.len();
        s.index.insert(v.clone(), i);
        s.low.insert(v.clone(), i);
        s.stack.push(v.clone());
        s.on_stack.insert(v.clone());
        let next: Vec<N> = s.graph.get(v).into_iter().flatten().cloned().collect();
        for w in &next {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v.clone(), low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v.clone(), low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut circle = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(&w);
                let done = &w == v;
                circle.push(w);
                if done {
                    break;
                }
            }
            circle.sort();
            s.found.push(circle);
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in nodes {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found.sort_by_key(|c| std::cmp::Reverse(c.len()));
    s.found
}

/// The module (file) a `crate::` path names: its longest prefix that is a file of the crate.
fn file_of(path: &str, files: &BTreeSet<PathBuf>) -> Option<PathBuf> {
    let segments: Vec<&str> = path.split("::").collect();
    (1..=segments.len()).rev().find_map(|n| {
        let base = segments[..n].join("/");
        [format!("{base}.rs"), format!("{base}/mod.rs")]
            .into_iter()
            .map(PathBuf::from)
            .find(|candidate| files.contains(candidate))
    })
}

/// The module path of a file: `chat/rooms.rs` -> `chat::rooms`, `chat/mod.rs` -> `chat`.
fn module_path(file: &Path) -> Vec<String> {
    let mut parts: Vec<String> = file
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The paths `code` names relative to its own module (`super::x`, `self::x`, and `child::x`
/// for a child module of it), as paths from the crate root.
fn relative_paths(file: &Path, code: &str, files: &BTreeSet<PathBuf>) -> Vec<String> {
    let here = module_path(file);
    let parent = here[..here.len().saturating_sub(1)].join("::");
    let this = here.join("::");
    let join = |base: &str, rest: &str| {
        if base.is_empty() {
            rest.to_owned()
        } else {
            format!("{base}::{rest}")
        }
    };
    let mut paths = Vec::new();
    let words = code.split(|c: char| !(is_ident_char(c) || c == ':'));
    for word in words {
        if let Some(rest) = word.strip_prefix("super::") {
            paths.push(join(&parent, rest));
        } else if let Some(rest) = word.strip_prefix("self::") {
            paths.push(join(&this, rest));
        } else if let Some((first, _)) = word.split_once("::") {
            let child = join(&this, first);
            let as_file = PathBuf::from(format!("{}.rs", child.replace("::", "/")));
            let as_dir = PathBuf::from(format!("{}/mod.rs", child.replace("::", "/")));
            if !this.is_empty() && (files.contains(&as_file) || files.contains(&as_dir)) {
                paths.push(join(&this, word));
            }
        }
    }
    paths
}

#[test]
fn modules_use_each_other_only_as_the_layers_table_says() {
    let files = source_files();
    let (modules, graph) = module_graph(&files);
    let table = layers_table();
    let mut problems = Vec::new();
    for module in &modules {
        let Some(allowed) = table.get(module) else {
            problems.push(format!(
                "`{module}` has no row in ARCHITECTURE.md's Layers table"
            ));
            continue;
        };
        let uses = graph.get(module).cloned().unwrap_or_default();
        for extra in uses.difference(allowed) {
            problems.push(format!(
                "`{module}` uses `{extra}`, which the Layers table does not allow \
                 (find it: grep -rn 'crate::{extra}' src/{module}*)"
            ));
        }
        for unused in allowed.difference(&uses) {
            problems.push(format!(
                "the Layers table lets `{module}` use `{unused}`, which it no longer does: \
                 take it out of the row"
            ));
        }
    }
    for module in table.keys() {
        if !modules.contains(module) {
            problems.push(format!(
                "the Layers table has a row for `{module}`, which is gone"
            ));
        }
    }
    let largest = circles(&graph, &modules)
        .into_iter()
        .next()
        .unwrap_or_default();
    println!(
        "largest circle of top-level modules: {} {largest:?}",
        largest.len()
    );
    if largest.len() > 2 {
        problems.push(format!("a circle of modules: {largest:?}"));
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// Not a rule (yet): how many files sit in one circle, counting `crate::`, `super::` and
/// `self::` paths and a parent's paths into its child modules, so a change that tangles files
/// shows in the test's output.
#[test]
fn the_largest_circle_of_files_is_printed() {
    let files = source_files();
    let known: BTreeSet<PathBuf> = files.iter().cloned().collect();
    let mut graph: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(root().join("src").join(file)).expect("readable");
        let code = without_comments(&text);
        let mut paths = crate_paths(&code);
        paths.extend(relative_paths(file, &code, &known));
        for path in paths {
            if let Some(to) = file_of(&path, &known) {
                if &to != file {
                    graph.entry(file.clone()).or_default().insert(to);
                }
            }
        }
    }
    let largest = circles(&graph, &known)
        .into_iter()
        .next()
        .unwrap_or_default();
    println!(
        "largest circle of files ({} of {}): {largest:?}",
        largest.len(),
        files.len()
    );
    assert!(!files.is_empty());
}

#[test]
fn crate_paths_are_read_from_use_groups_and_code() {
    let code = "use crate::{audit, auth::{self, Principal}, http::ApiError as E};\n\
                let x = crate::chat::commit(a); notcrate::x; y::crate::z";
    assert_eq!(
        crate_paths(code),
        [
            "audit",
            "auth::self",
            "auth::Principal",
            "http::ApiError",
            "chat::commit"
        ]
    );
}
