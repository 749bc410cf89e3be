//! The crate's layering, checked on its own source: every `crate::…` (or `super::…`
//! that climbs out of a layer) path in code must point at the same layer or a lower
//! one, and the modules inside one layer must not import each other in a circle.
//! Doc comments are not imports and are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first; modules in one entry share a layer.
const LAYERS: &[&[&str]] = &[
    &["error", "rng", "digest"],
    &["data"],
    &["stats"],
    &["model"],
    &["estimate"],
    &["results"],
    &["io"],
    &["report"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// A source file: its module path below the crate root and its text.
struct Source {
    file: String,
    /// `["io", "recording", "csv"]` for `io/recording/csv.rs`; `mod.rs` names its folder.
    module: Vec<String>,
    text: String,
}

/// Module paths referred to by a line of code (`crate::a::b` or `super::…`),
/// resolved from the crate root.
fn references(module: &[String], line: &str) -> Vec<Vec<String>> {
    let code = line.split("//").next().unwrap_or("");
    let is_path_char = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let starts = rest.starts_with("crate::") || rest.starts_with("super::");
        if !starts || code[..i].chars().last().is_some_and(is_path_char) {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        }
        let path: String = rest.chars().take_while(|&c| is_path_char(c)).collect();
        i += path.len();
        let mut segs = path.split("::").filter(|s| !s.is_empty()).peekable();
        let mut resolved: Vec<String> = Vec::new();
        if segs.peek() == Some(&"crate") {
            segs.next();
        } else {
            resolved = module.to_vec();
            while segs.peek() == Some(&"super") {
                segs.next();
                resolved.pop();
            }
        }
        resolved.extend(segs.map(String::from));
        if !resolved.is_empty() {
            out.push(resolved);
        }
    }
    out
}

/// Every violation of the layering in `sources`.
fn violations(sources: &[Source]) -> Vec<String> {
    let mut bad = Vec::new();
    // Edges between the modules of one layer, for the cycle check.
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in sources {
        let Some(own) = s.module.first() else {
            continue;
        };
        let Some(own_layer) = layer_of(own) else {
            bad.push(format!("{}: module `{own}` is in no layer", s.file));
            continue;
        };
        let mut in_doc = false;
        for (n, line) in s.text.lines().enumerate() {
            let t = line.trim_start();
            if t.starts_with("//") {
                continue;
            }
            // Skip the body of a `/* … */` block comment.
            if t.starts_with("/*") {
                in_doc = true;
            }
            if in_doc {
                in_doc = !t.contains("*/");
                continue;
            }
            for target in references(&s.module, line) {
                let top = &target[0];
                let Some(layer) = layer_of(top) else {
                    continue; // `crate::Result` and other root re-exports
                };
                if layer > own_layer {
                    bad.push(format!(
                        "{}:{}: `{}` refers to `{}` of a higher layer",
                        s.file,
                        n + 1,
                        own,
                        target.join("::")
                    ));
                }
                if layer == own_layer && top == own && s.module.len() > 1 && target.len() > 1 {
                    let (from, to) = (&s.module[1], &target[1]);
                    if from != to {
                        edges
                            .entry(format!("{own}::{from}"))
                            .or_default()
                            .insert(format!("{own}::{to}"));
                    }
                }
            }
        }
    }
    bad.extend(cycles(&edges));
    bad
}

/// A message for every module that reaches itself along `edges`.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for start in edges.keys() {
        let mut stack: Vec<&String> = edges[start].iter().collect();
        let mut seen: BTreeSet<&String> = BTreeSet::new();
        while let Some(m) = stack.pop() {
            if m == start {
                out.push(format!(
                    "`{start}` imports itself through other modules of its layer"
                ));
                break;
            }
            if seen.insert(m) {
                stack.extend(edges.get(m).into_iter().flatten());
            }
        }
    }
    out
}

fn read_sources(root: &Path) -> Vec<Source> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("source folder") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(root).ok()?;
            let mut module: Vec<String> = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            // The crate root, and this check (its test strings are not imports).
            if module == ["lib"] || module == ["layering"] {
                return None;
            }
            Some(Source {
                file: rel.display().to_string(),
                text: std::fs::read_to_string(&p).ok()?,
                module,
            })
        })
        .collect()
}

#[test]
fn lower_layers_never_import_higher_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let sources = read_sources(&root);
    assert!(sources.len() > 40, "found {} source files", sources.len());
    let bad = violations(&sources);
    assert!(bad.is_empty(), "layering violations:\n{}", bad.join("\n"));
}

#[test]
fn the_check_finds_upward_imports_and_cycles() {
    let src = |file: &str, module: &[&str], text: &str| Source {
        file: file.into(),
        module: module.iter().map(|s| s.to_string()).collect(),
        text: text.into(),
    };
    let sources = [
        src("data/panel.rs", &["data", "panel"], "use crate::io::recording;\n"),
        src(
            "data/window.rs",
            &["data", "window"],
            "/// [`crate::report`] in a doc comment is fine\nuse super::super::results::EdgeTable;\n",
        ),
        src("report/plot.rs", &["report", "plot"], "use crate::report::compare::X;\n"),
        src("report/compare.rs", &["report", "compare"], "use super::plot::Y;\n"),
        src("stats/hac.rs", &["stats", "hac"], "use crate::data::Panel; use crate::Result;\n"),
    ];
    let bad = violations(&sources);
    assert_eq!(bad.len(), 4, "{bad:#?}");
    assert!(bad[0].contains("data/panel.rs:1") && bad[0].contains("io::recording"));
    assert!(bad[1].contains("data/window.rs:2") && bad[1].contains("results::EdgeTable"));
    assert!(bad[2..].iter().all(|b| b.contains("imports itself")));
}
