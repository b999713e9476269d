//! The broker daemon's layers (`netd/src/lib.rs`): every file of `netd/src` names, through
//! `crate::` paths, only modules of its own layer or of a layer below. Checked here so the
//! layering cannot rot one convenient import at a time.
//!
//! The check is textual: every `crate::<module>` (also inside `crate::{...}` groups, and in doc
//! links, which rustdoc resolves as paths) and every `super::` chain that climbs to the crate
//! root. `main.rs` is the binary: it names the library as `skua_netd::` and may use every layer.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, bottom up: a module may name the modules of its own layer and of those before it.
const LAYERS: &[&[&str]] = &[
    // Constants, time, the one-writer value shards read, and the shards' metrics: they name no
    // other module.
    &["limits", "clock", "published", "metrics"],
    // Kafka bytes and rules, pure (the one map of typed errors to Kafka codes).
    &["codec"],
    &["config"],
    // Consumer groups; topics, placement, manifests, producer ids.
    // The cluster: the controller role and the broker's link to the quorum.
    &["coordinators", "catalog", "quorum"],
    // Shard threads and state, connections, committer, ticker, controller, offsets, budgets.
    &["runtime"],
    // One file per API.
    &["handlers"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            out.push(path);
        }
    }
}

fn is_identifier_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// The identifier at the start of `text`, if any.
fn identifier(text: &str) -> Option<&str> {
    let end = text.bytes().position(|byte| !is_identifier_byte(byte)).unwrap_or(text.len());
    (end > 0).then(|| &text[..end])
}

/// The first segment of every item of the `{...}` group `text` starts with.
fn group_heads(text: &str) -> Vec<&str> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut item_start = true;
    for (index, byte) in text.bytes().enumerate() {
        match byte {
            b'{' => {
                depth += 1;
                item_start = depth == 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            b',' if depth == 1 => item_start = true,
            byte if byte.is_ascii_whitespace() => {}
            _ if item_start => {
                heads.extend(identifier(&text[index..]));
                item_start = false;
            }
            _ => {}
        }
    }
    heads
}

/// The names a path continues with after `rest`'s start: one identifier, or the heads of a
/// `{...}` group.
fn heads(rest: &str) -> Vec<&str> {
    if rest.starts_with('{') {
        group_heads(rest)
    } else {
        identifier(rest).into_iter().collect()
    }
}

/// Where `segment` starts a path in `text` (not as the tail of a longer name or path), with what
/// follows it.
fn path_starts<'a>(text: &'a str, segment: &str) -> Vec<(usize, &'a str)> {
    text.match_indices(segment)
        .filter(|&(at, _)| at == 0 || !(is_identifier_byte(text.as_bytes()[at - 1]) || text.as_bytes()[at - 1] == b':'))
        .map(|(at, _)| (at, &text[at + segment.len()..]))
        .collect()
}

/// Modules of the crate that `text`, the file at `depth` modules below the crate root, names.
fn referenced_modules(text: &str, depth: usize) -> Vec<(usize, &str)> {
    let mut names = Vec::new();
    for (at, rest) in path_starts(text, "crate::") {
        names.extend(heads(rest).into_iter().map(|name| (at, name)));
    }
    // `super::` climbs one module per segment: a chain at least as long as the file's depth
    // reaches the crate root from the file (or, longer, from an inline module such as `tests`),
    // and a top-level module named after it is a reference as `crate::` is.
    for (at, rest) in path_starts(text, "super::") {
        let after = rest.trim_start_matches("super::");
        let chain = 1 + (rest.len() - after.len()) / "super::".len();
        if chain >= depth {
            names.extend(heads(after).into_iter().filter(|name| layer_of(name).is_some()).map(|name| (at, name)));
        }
    }
    names
}

/// The layers' violations in the files under `source`: `file: names crate::module` lines.
fn violations(source: &Path) -> (Vec<String>, usize) {
    let mut files = Vec::new();
    rust_files(source, &mut files);
    assert!(files.len() >= 40, "found the sources ({} files)", files.len());
    let mut found = Vec::new();
    let mut references = 0;
    for path in files {
        let relative = path.strip_prefix(source).expect("under src");
        let components: Vec<&str> =
            relative.iter().map(|component| component.to_str().expect("UTF-8 file name")).collect();
        if components == ["main.rs"] || components == ["lib.rs"] {
            continue;
        }
        let module = components[0].trim_end_matches(".rs");
        let Some(own_layer) = layer_of(module) else {
            found.push(format!("{}: module {module} has no layer: add it to LAYERS", relative.display()));
            continue;
        };
        // `codec/errors.rs` is two modules below the root, `codec/mod.rs` and `config.rs` one.
        let depth = components.len() - usize::from(components.last() == Some(&"mod.rs"));
        let text = fs::read_to_string(&path).expect("readable");
        for (at, name) in referenced_modules(&text, depth) {
            references += 1;
            match layer_of(name) {
                Some(layer) if layer <= own_layer => {}
                Some(_) => {
                    let line = text[..at].matches('\n').count() + 1;
                    found.push(format!(
                        "{}:{line}: {module} names crate::{name}, a layer above it (see netd/src/lib.rs)",
                        relative.display()
                    ));
                }
                None => {
                    let line = text[..at].matches('\n').count() + 1;
                    found.push(format!("{}:{line}: names crate::{name}, which has no layer", relative.display()));
                }
            }
        }
    }
    (found, references)
}

#[test]
fn every_module_names_only_its_layer_and_below() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (found, references) = violations(&source);
    assert!(references >= 100, "found the crate:: paths ({references})");
    assert!(found.is_empty(), "layering violations:\n{}", found.join("\n"));
}

#[test]
fn the_table_has_every_module_of_lib_rs() {
    let lib = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).expect("lib.rs");
    let declared: BTreeSet<&str> =
        path_starts(&lib, "pub mod ").into_iter().filter_map(|(_, rest)| identifier(rest)).collect();
    let layered: BTreeSet<&str> = LAYERS.iter().flat_map(|layer| layer.iter().copied()).collect();
    assert_eq!(declared, layered, "netd/src/lib.rs's modules and this test's LAYERS");
}

#[test]
fn paths_are_read_as_written() {
    fn names(text: &str, depth: usize) -> Vec<&str> {
        referenced_modules(text, depth).into_iter().map(|(_, name)| name).collect()
    }
    assert_eq!(names("use crate::runtime::context::ShardContext;", 2), ["runtime"]);
    assert_eq!(names("use crate::{codec::{frame, errors::X}, limits};", 2), ["codec", "limits"]);
    assert_eq!(names("x: crate::handlers::Reply, y: skua_crate::runtime", 2), ["handlers"]);
    assert_eq!(names("use super::runtime; use super::*;", 1), ["runtime"]);
    assert_eq!(names("use super::state; use super::super::handlers;", 2), ["handlers"]);
    assert_eq!(names("mod tests { use super::super::super::{runtime, x}; }", 2), ["runtime"]);
    assert!(names("use super::handlers;", 2).is_empty(), "a sibling inside the same module");
}
