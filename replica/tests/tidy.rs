//! The partition layer knows no Kafka API key, request, response or error code, and depends on
//! no broker crate: checked here so the boundary cannot rot (as the engine's own tidy test does).

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn replica_knows_no_kafka_protocol_and_no_broker_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = fs::read_to_string(root.join("Cargo.toml")).expect("manifest");
    for forbidden in ["kafka-protocol", "skua-netd", "skua-loadgen", "skua-bench", "compio"] {
        assert!(!manifest.contains(forbidden), "replica/Cargo.toml must not depend on {forbidden}");
    }
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() >= 5, "found the sources");
    let forbidden = [
        "kafka_protocol",
        "ApiKey",
        "api_key",
        "ProduceRequest",
        "FetchRequest",
        "ResponseError",
        "error_code",
        "ErrorCode",
    ];
    for path in files {
        let text = fs::read_to_string(&path).expect("readable");
        for word in forbidden {
            assert!(
                !text.contains(word),
                "{} mentions {word}: the partition layer must not know the Kafka protocol (errors are typed: ReplicaError)",
                path.display()
            );
        }
    }
}
