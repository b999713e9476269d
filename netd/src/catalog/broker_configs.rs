//! One node's dynamic broker configs on disk: `<data dir>/skua-broker-configs`, replaced whole and
//! atomically (the engine's `write_file_atomically`: temp file, `fdatasync`, rename, directory
//! fsync) before a change is answered. A cluster keeps them in its metadata log instead.
//!
//! Format (text, so an operator can read it):
//! ```text
//! SKUA-BROKER-CONFIGS 1
//! default.<key>=<value>     the cluster-wide default (`kafka-configs --entity-default`)
//! broker.<key>=<value>      this broker's own (`kafka-configs --entity-name <id>`)
//! ```
//! Values were checked when set (`config::dynamic::check`) and hold no control character.
//!
//! Must not know: what a key means, shards, requests.

use std::collections::BTreeMap;
use std::path::Path;

use engine::io::{read_small_file, write_file_atomically, FileSystem};

use crate::config::dynamic::DynamicBrokerConfigs;

pub const BROKER_CONFIGS_FILE: &str = "skua-broker-configs";
const MAGIC: &str = "SKUA-BROKER-CONFIGS 1";
/// A larger file is damaged (every dynamic key set twice is under 2 KiB).
pub const BROKER_CONFIGS_FILE_BYTES_MAX: u64 = 64 * 1024;

fn damaged(path: &Path, reason: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} is damaged: {reason}", path.display()))
}

/// The bytes of the file.
pub fn encode(configs: &DynamicBrokerConfigs) -> String {
    let mut text = format!("{MAGIC}\n");
    for (key, value) in &configs.default {
        text.push_str(&format!("default.{key}={value}\n"));
    }
    for (key, value) in &configs.own {
        text.push_str(&format!("broker.{key}={value}\n"));
    }
    text
}

/// The configs a file holds; `Err` says what is wrong.
pub fn decode(text: &str) -> Result<DynamicBrokerConfigs, String> {
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(format!("the first line is not {MAGIC:?}"));
    }
    let mut configs = DynamicBrokerConfigs::default();
    for line in lines {
        let (set, pair): (&mut BTreeMap<String, String>, &str) = if let Some(pair) = line.strip_prefix("default.") {
            (&mut configs.default, pair)
        } else if let Some(pair) = line.strip_prefix("broker.") {
            (&mut configs.own, pair)
        } else {
            return Err(format!("line {line:?} is neither default.<key>=<value> nor broker.<key>=<value>"));
        };
        let (key, value) = pair.split_once('=').ok_or(format!("line {line:?} has no '='"))?;
        if set.insert(key.to_string(), value.to_string()).is_some() {
            return Err(format!("{key} is set twice"));
        }
    }
    Ok(configs)
}

/// Reads the file of `data_dir` (none: no dynamic configs).
pub fn load(data_dir: &Path) -> std::io::Result<DynamicBrokerConfigs> {
    let mut fs = engine::io::os::SyscallFs::new();
    let path = data_dir.join(BROKER_CONFIGS_FILE);
    match read_small_file(&mut fs, &path, BROKER_CONFIGS_FILE_BYTES_MAX)? {
        None => Ok(DynamicBrokerConfigs::default()),
        Some(bytes) => {
            let text = String::from_utf8(bytes).map_err(|_| damaged(&path, "not UTF-8".to_string()))?;
            decode(&text).map_err(|reason| damaged(&path, reason))
        }
    }
}

/// Replaces the file of `data_dir`, durably.
pub fn store(fs: &mut dyn FileSystem, data_dir: &Path, configs: &DynamicBrokerConfigs) -> std::io::Result<()> {
    write_file_atomically(fs, data_dir, BROKER_CONFIGS_FILE, encode(configs).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_round_trips_and_damage_is_named() {
        let mut configs = DynamicBrokerConfigs::default();
        assert_eq!(decode(&encode(&configs)), Ok(configs.clone()));
        configs.default.insert("log.retention.ms".into(), "60000".into());
        configs.own.insert("log.segment.bytes".into(), "2097152".into());
        let text = encode(&configs);
        assert_eq!(
            text, "SKUA-BROKER-CONFIGS 1\ndefault.log.retention.ms=60000\nbroker.log.segment.bytes=2097152\n",
            "golden"
        );
        assert_eq!(decode(&text), Ok(configs));
        assert!(decode("SKUA-BROKER-CONFIGS 2\n").is_err());
        assert!(decode("SKUA-BROKER-CONFIGS 1\nlog.retention.ms=1\n").is_err());
        assert!(decode("SKUA-BROKER-CONFIGS 1\ndefault.a=1\ndefault.a=2\n").is_err());
    }

    #[test]
    fn store_then_load_gives_the_same_configs() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path()).expect("no file"), DynamicBrokerConfigs::default());
        let mut configs = DynamicBrokerConfigs::default();
        configs.default.insert("message.max.bytes".into(), "5000".into());
        let mut fs = engine::io::os::SyscallFs::new();
        store(&mut fs, dir.path(), &configs).expect("store");
        assert_eq!(load(dir.path()).expect("load"), configs);
    }
}
