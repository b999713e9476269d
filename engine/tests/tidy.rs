//! Tidy checks over the whole workspace, run with the tests so they cannot rot:
//! every Rust file opens with a `//!` header, the engine depends on no workspace crate and never
//! names a Kafka API key, request, response or error code.

use std::fs;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("engine lives in the workspace").to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_module_header() {
    let mut files = Vec::new();
    for crate_dir in ["engine", "replica", "netd", "loadgen", "bench", "fuzz"] {
        rust_files(&workspace_root().join(crate_dir), &mut files);
    }
    assert!(files.len() > 10, "found the sources");
    let missing: Vec<String> = files
        .iter()
        .filter(|path| !fs::read_to_string(path).expect("readable").trim_start().starts_with("//!"))
        .map(|path| path.display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a //! header: {missing:#?}");
}

#[test]
fn engine_knows_no_kafka_protocol_and_no_workspace_crate() {
    let root = workspace_root();
    let manifest = fs::read_to_string(root.join("engine/Cargo.toml")).expect("manifest");
    for sibling in ["skua-netd", "skua-loadgen", "skua-bench", "path ="] {
        assert!(!manifest.contains(sibling), "engine/Cargo.toml must not depend on {sibling}");
    }
    let mut files = Vec::new();
    rust_files(&root.join("engine/src"), &mut files);
    let forbidden =
        ["kafka_protocol", "ApiKey", "api_key", "ProduceRequest", "FetchRequest", "error_code", "ErrorCode"];
    for path in files {
        let text = fs::read_to_string(&path).expect("readable");
        for word in forbidden {
            assert!(
                !text.contains(word),
                "{} mentions {word}: the engine must not know the Kafka protocol",
                path.display()
            );
        }
    }
}
