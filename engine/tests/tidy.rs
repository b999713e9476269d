//! Tidy checks over the whole workspace, run with the tests so they cannot rot:
//! every Rust file opens with a `//!` header; the engine depends on no workspace crate, and the
//! partition layer (`replica`) on none but the engine; neither names a Kafka API key, request,
//! response or error code.

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

/// Words that name the Kafka protocol: a crate below the broker must contain none of them.
const KAFKA_WORDS: &[&str] = &[
    "kafka_protocol",
    "ApiKey",
    "api_key",
    "ProduceRequest",
    "FetchRequest",
    "ResponseError",
    "error_code",
    "ErrorCode",
];

/// Asserts that `crate_dir`'s manifest names none of `forbidden_dependencies` and its sources none
/// of [`KAFKA_WORDS`].
fn assert_knows_no_kafka(crate_dir: &str, forbidden_dependencies: &[&str]) {
    let root = workspace_root();
    let manifest = fs::read_to_string(root.join(crate_dir).join("Cargo.toml")).expect("manifest");
    for dependency in forbidden_dependencies {
        assert!(!manifest.contains(dependency), "{crate_dir}/Cargo.toml must not depend on {dependency}");
    }
    let mut files = Vec::new();
    rust_files(&root.join(crate_dir).join("src"), &mut files);
    assert!(files.len() >= 5, "found the sources of {crate_dir}");
    for path in files {
        let text = fs::read_to_string(&path).expect("readable");
        for word in KAFKA_WORDS {
            assert!(
                !text.contains(word),
                "{} mentions {word}: {crate_dir} must not know the Kafka protocol",
                path.display()
            );
        }
    }
}

#[test]
fn engine_knows_no_kafka_protocol_and_no_workspace_crate() {
    assert_knows_no_kafka(
        "engine",
        &["skua-netd", "skua-replica", "skua-loadgen", "skua-bench", "path =", "kafka-protocol"],
    );
}

/// The partition layer's errors are typed (`ReplicaError`); netd maps them to Kafka codes.
#[test]
fn replica_knows_no_kafka_protocol_and_no_crate_but_the_engine() {
    assert_knows_no_kafka("replica", &["skua-netd", "skua-loadgen", "skua-bench", "kafka-protocol", "compio"]);
}

/// The cluster metadata layer knows no Kafka request; netd maps its errors to Kafka codes.
#[test]
fn cluster_knows_no_kafka_protocol_and_no_broker_crate() {
    assert_knows_no_kafka(
        "cluster",
        &["skua-netd", "skua-replica", "skua-loadgen", "skua-bench", "kafka-protocol", "compio"],
    );
}
