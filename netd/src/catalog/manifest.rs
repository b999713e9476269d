//! Topic manifests: the one commit point of creating, growing and deleting a topic, and the
//! start-up check of the partition directories against them.
//!
//! Owns: the files `<data dir>/skua-topics/<topic>` (format and crash rules:
//! `docs/formats/topic-manifest.md`), written atomically through the engine's `FileSystem`
//! (temp file, `fdatasync`, rename, directory fsync: `engine::io::write_file_atomically`); the
//! migration of data directories from before manifests; the removal of partition directories no
//! committed topic claims.
//!
//! The rule: a topic exists exactly when its manifest does, with the partition count written in
//! it. Partition directories are made durable before the manifest is written, and the manifest
//! is removed before the directories are, so a crash anywhere leaves either the whole topic or
//! leftovers that no client was ever told about (or was told are deleted). Start-up never skips
//! a directory that may hold acknowledged data: it removes leftovers with a log line, or refuses
//! to start and says which directory and why.
//!
//! Must not know: shards, the catalog's publication, the wire protocol. Runs on the controller's
//! thread, and once in `main` before the shards start.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use engine::io::{read_small_file, write_file_atomically, FileSystem, OpenOptions};

use crate::catalog::valid_topic_name;
use crate::limits::PARTITIONS_PER_TOPIC_MAX;

/// Which partitions of a committed topic have a directory here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hosting {
    /// Every partition (one node): a missing directory is lost data, and start-up refuses.
    AllPartitions,
    /// The partitions whose replicas include this broker (a cluster): a missing directory is a
    /// replica the metadata image opens again (and, with replication, refills from the leader).
    ReplicasOnly,
}

/// The directory under the data dir that holds one manifest per topic.
pub const MANIFEST_DIR_NAME: &str = "skua-topics";
/// Where a migration builds the manifest directory before renaming it into place.
pub const MIGRATION_DIR_NAME: &str = "skua-topics.migrating";
/// Suffix of a file being replaced atomically (the engine's [`write_file_atomically`] writes
/// it); one left by a crash is removed at start. '~' is in no topic name, so a temp file never
/// looks like a manifest (named exactly as its topic), and the longest topic name (249 bytes)
/// plus this stays within a file name's 255 bytes.
pub const TEMP_SUFFIX: &str = engine::io::ATOMIC_TEMP_SUFFIX;
/// First line of every manifest: the magic word and the format version.
pub const MAGIC: &str = "SKUA-TOPIC-MANIFEST";
pub const VERSION: u32 = 1;
/// Version 2 adds a fourth line, the topic's id in the cluster (`id=`): written for a cluster's
/// topics, so a topic deleted and created again under its name is told from the old one.
pub const VERSION_WITH_ID: u32 = 2;
/// A manifest larger than this is damaged (a real one is under 300 bytes).
pub const MANIFEST_BYTES_MAX: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "topic manifest {path} is damaged ({reason}); Skua will not guess which partitions the topic has: \
         restore the file, or remove it to delete the topic"
    )]
    Damaged { path: PathBuf, reason: String },
    /// The partition directories do not match what was committed and cannot be repaired
    /// without risking acknowledged data. The message says what to do.
    #[error("{0}")]
    Inconsistent(String),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ManifestError + '_ {
    move |source| ManifestError::Io { path: path.to_path_buf(), source }
}

/// A topic's id in a cluster (16 bytes, Kafka's topic UUID).
pub type TopicIdBytes = [u8; 16];

/// Version 3 adds the topic's own configs, one `config.<key>=<value>` line each after the fixed
/// lines: written only for a topic that has some, so a topic without keeps a manifest older
/// versions of Skua read.
pub const VERSION_WITH_CONFIGS: u32 = 3;
/// Prefix of a version 3 config line.
const CONFIG_PREFIX: &str = "config.";

/// A topic's own configs (checked values; see `config::topic`).
pub type TopicConfigs = BTreeMap<String, String>;

/// What a manifest records of a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    pub partitions: i32,
    pub id: Option<TopicIdBytes>,
    pub configs: TopicConfigs,
}

/// The bytes of a manifest: version 1 without an id or configs, version 2 with an id, version 3
/// with configs (and an id or not).
pub fn encode(topic: &str, partitions: i32, id: Option<TopicIdBytes>, configs: &TopicConfigs) -> String {
    let version = match (id, configs.is_empty()) {
        (_, false) => VERSION_WITH_CONFIGS,
        (Some(_), true) => VERSION_WITH_ID,
        (None, true) => VERSION,
    };
    let mut text = format!("{MAGIC} {version}\nname={topic}\npartitions={partitions}\n");
    if let Some(id) = id {
        let hex: String = id.iter().map(|byte| format!("{byte:02x}")).collect();
        text.push_str(&format!("id={hex}\n"));
    }
    for (key, value) in configs {
        text.push_str(&format!("{CONFIG_PREFIX}{key}={value}\n"));
    }
    text
}

/// A manifest's topic name, partition count, id (version 2 and 3) and configs (version 3);
/// `Err` says what is wrong. Config values are checked where they are used, not here.
pub fn decode(text: &str) -> Result<Manifest, String> {
    let Some(body) = text.strip_suffix('\n') else { return Err("no final newline: cut short".to_string()) };
    let lines: Vec<&str> = body.split('\n').collect();
    let version = match lines.first().and_then(|magic| magic.strip_prefix(&format!("{MAGIC} "))) {
        Some(version) => version.parse::<u32>().map_err(|_| format!("first line {:?} has no version", lines[0]))?,
        None => return Err(format!("first line {:?} is not \"{MAGIC} <version>\"", lines.first().unwrap_or(&""))),
    };
    let (name, partitions, id, configs) = match (version, lines.as_slice()) {
        (VERSION, [_, name, partitions]) => (name, partitions, None, &[][..]),
        (VERSION_WITH_ID, [_, name, partitions, id]) => (name, partitions, Some(id), &[][..]),
        (VERSION_WITH_CONFIGS, [_, name, partitions, rest @ ..]) => match rest.first() {
            Some(line) if line.starts_with("id=") => (name, partitions, Some(line), &rest[1..]),
            _ => (name, partitions, None, rest),
        },
        (VERSION | VERSION_WITH_ID, _) => {
            return Err(format!("{} lines, expected 3 (version 1) or 4 (version 2)", lines.len()))
        }
        (VERSION_WITH_CONFIGS, _) => return Err(format!("{} lines, expected at least 3", lines.len())),
        (other, _) => return Err(format!("unknown manifest version {other}")),
    };
    let name = name.strip_prefix("name=").ok_or("second line is not name=...")?;
    valid_topic_name(name)?;
    let partitions = partitions
        .strip_prefix("partitions=")
        .and_then(|count| count.parse::<i32>().ok())
        .filter(|count| (1..=PARTITIONS_PER_TOPIC_MAX).contains(count))
        .ok_or(format!("third line is not partitions=<1..={PARTITIONS_PER_TOPIC_MAX}>"))?;
    let id = match id {
        None => None,
        Some(line) => Some(line.strip_prefix("id=").and_then(parse_id).ok_or("fourth line is not id=<32 hex digits>")?),
    };
    let mut parsed = TopicConfigs::new();
    for line in configs {
        let (key, value) = line
            .strip_prefix(CONFIG_PREFIX)
            .and_then(|pair| pair.split_once('='))
            .ok_or(format!("line {line:?} is not {CONFIG_PREFIX}<key>=<value>"))?;
        if parsed.insert(key.to_string(), value.to_string()).is_some() {
            return Err(format!("config {key} is named twice"));
        }
    }
    Ok(Manifest { name: name.to_string(), partitions, id, configs: parsed })
}

fn parse_id(hex: &str) -> Option<TopicIdBytes> {
    if hex.len() != 32 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    let mut id = [0u8; 16];
    for (index, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * index..2 * index + 2)?, 16).ok()?;
    }
    Some(id)
}

/// A manifest is named exactly as its topic.
fn manifest_file_name(topic: &str) -> String {
    topic.to_string()
}

/// The controller's handle on the manifests.
pub struct TopicManifests {
    fs: Box<dyn FileSystem>,
    data_dir: PathBuf,
    dir: PathBuf,
}

impl std::fmt::Debug for TopicManifests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicManifests").field("dir", &self.dir).finish()
    }
}

impl TopicManifests {
    /// Manifests under `data_dir` on real files (plain syscalls: a few small writes per topic
    /// change, off the data path).
    pub fn new(data_dir: &Path) -> TopicManifests {
        TopicManifests::with_file_system(Box::new(engine::io::os::SyscallFs::new()), data_dir)
    }

    pub fn with_file_system(fs: Box<dyn FileSystem>, data_dir: &Path) -> TopicManifests {
        TopicManifests { fs, data_dir: data_dir.to_path_buf(), dir: data_dir.join(MANIFEST_DIR_NAME) }
    }

    /// The commit point of creating `topic` or growing it to `partitions` (with its cluster id,
    /// if it has one): first makes the partition directories' entries durable, then writes the
    /// manifest atomically.
    pub fn commit(
        &mut self,
        topic: &str,
        partitions: i32,
        id: Option<TopicIdBytes>,
        configs: &TopicConfigs,
    ) -> Result<(), ManifestError> {
        self.fs.sync_dir(&self.data_dir).map_err(io_error(&self.data_dir))?;
        let name = manifest_file_name(topic);
        write_file_atomically(self.fs.as_mut(), &self.dir, &name, encode(topic, partitions, id, configs).as_bytes())
            .map_err(io_error(&self.dir.join(&name)))
    }

    /// The commit point of deleting `topic`: once this returns, a restart removes its partition
    /// directories whatever state the deletion left them in.
    pub fn remove(&mut self, topic: &str) -> Result<(), ManifestError> {
        let path = self.dir.join(manifest_file_name(topic));
        match self.fs.remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(ManifestError::Io { path, source: error }),
        }
        self.fs.sync_dir(&self.dir).map_err(io_error(&self.dir))
    }

    /// Removes every `<topic>-<n>` directory with `n >= from` (leftovers of a failed or
    /// interrupted create, grow or delete). Returns how many it removed.
    pub fn remove_partition_dirs(&mut self, topic: &str, from: i32) -> Result<usize, ManifestError> {
        let found = partition_dirs(&self.data_dir)?;
        let mut removed = 0;
        for partition in found.get(topic).into_iter().flatten().filter(|partition| **partition >= from) {
            remove_partition_dir(&self.data_dir, topic, *partition)?;
            removed += 1;
        }
        if removed > 0 {
            self.fs.sync_dir(&self.data_dir).map_err(io_error(&self.data_dir))?;
        }
        Ok(removed)
    }
}

fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

fn remove_partition_dir(data_dir: &Path, topic: &str, partition: i32) -> Result<(), ManifestError> {
    let dir = partition_dir(data_dir, topic, partition);
    std::fs::remove_dir_all(&dir).map_err(io_error(&dir))
}

/// Topic → partitions of the `<topic>-<partition>` directories under `data_dir` (not the
/// consumer offsets topic, which is not in the catalog).
pub fn partition_dirs(data_dir: &Path) -> Result<BTreeMap<String, BTreeSet<i32>>, ManifestError> {
    let mut found: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    for entry in std::fs::read_dir(data_dir).map_err(io_error(data_dir))? {
        let entry = entry.map_err(io_error(data_dir))?;
        if !entry.file_type().map_err(io_error(&entry.path()))?.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().to_string();
        let Some((topic, partition)) = name.rsplit_once('-') else { continue };
        // Kafka's names: digits only, no sign, no leading zeros ("t-01" is no partition of "t").
        let canonical = !partition.is_empty()
            && partition.bytes().all(|byte| byte.is_ascii_digit())
            && (partition == "0" || !partition.starts_with('0'));
        let Some(partition) = partition.parse::<i32>().ok().filter(|_| canonical) else { continue };
        if valid_topic_name(topic).is_ok() && topic != super::OFFSETS_TOPIC && topic != super::METADATA_TOPIC {
            found.entry(topic.to_string()).or_default().insert(partition);
        }
    }
    Ok(found)
}

/// True if a partition directory holds record bytes (a non-empty segment file). A directory a
/// failed create left behind holds none: nothing could be appended before the topic existed.
fn holds_records(fs: &mut dyn FileSystem, dir: &Path) -> Result<bool, ManifestError> {
    for name in fs.list_dir(dir).map_err(io_error(dir))? {
        if !name.ends_with(".log") {
            continue;
        }
        let path = dir.join(&name);
        let file = fs.open(&path, OpenOptions::EXISTING).map_err(io_error(&path))?;
        if file.len().map_err(io_error(&path))? > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

fn list(partitions: &BTreeSet<i32>) -> String {
    partitions.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
}

/// Brings the data directory in line with the committed topics and returns them (topic →
/// partition count). Runs once at start, before any partition is opened. Data directories from
/// before manifests are migrated first.
pub fn reconcile(data_dir: &Path, hosting: Hosting) -> Result<BTreeMap<String, i32>, ManifestError> {
    let mut fs = engine::io::os::SyscallFs::new();
    fs.create_dir_all(data_dir).map_err(io_error(data_dir))?;
    let found = partition_dirs(data_dir)?;
    let manifest_dir = data_dir.join(MANIFEST_DIR_NAME);
    if !manifest_dir.is_dir() {
        migrate(&mut fs, data_dir, &found)?;
        return reconcile_with_manifests(&mut fs, data_dir, &partition_dirs(data_dir)?, hosting);
    }
    reconcile_with_manifests(&mut fs, data_dir, &found, hosting)
}

/// The cluster id of each committed topic that has one (version 2 manifests). Read after
/// [`reconcile`] checked every manifest.
pub fn topic_ids(data_dir: &Path) -> Result<BTreeMap<String, TopicIdBytes>, ManifestError> {
    let mut fs = engine::io::os::SyscallFs::new();
    let manifests = read_manifests(&mut fs, &data_dir.join(MANIFEST_DIR_NAME))?;
    Ok(manifests.into_iter().filter_map(|(topic, manifest)| manifest.id.map(|id| (topic, id))).collect())
}

/// The configs of each committed topic that has some (version 3 manifests). Read after
/// [`reconcile`] checked every manifest.
pub fn topic_configs(data_dir: &Path) -> Result<BTreeMap<String, TopicConfigs>, ManifestError> {
    let mut fs = engine::io::os::SyscallFs::new();
    let manifests = read_manifests(&mut fs, &data_dir.join(MANIFEST_DIR_NAME))?;
    Ok(manifests
        .into_iter()
        .filter(|(_, manifest)| !manifest.configs.is_empty())
        .map(|(topic, manifest)| (topic, manifest.configs))
        .collect())
}

/// Reads every manifest (topic → partition count and id); removes the temp files of replacements
/// a crash interrupted.
fn read_manifests(fs: &mut dyn FileSystem, dir: &Path) -> Result<BTreeMap<String, Manifest>, ManifestError> {
    let mut topics = BTreeMap::new();
    for name in fs.list_dir(dir).map_err(io_error(dir))? {
        let path = dir.join(&name);
        if name.ends_with(TEMP_SUFFIX) {
            tracing::info!(path = %path.display(), "removing a manifest write a crash interrupted (the old manifest stands)");
            fs.remove_file(&path).map_err(io_error(&path))?;
            continue;
        }
        if valid_topic_name(&name).is_err() {
            tracing::warn!(path = %path.display(), "ignoring a file that is not a topic manifest");
            continue;
        }
        let topic = name.as_str();
        let bytes = read_small_file(fs, &path, MANIFEST_BYTES_MAX)
            .map_err(|error| ManifestError::Damaged { path: path.clone(), reason: error.to_string() })?
            .ok_or_else(|| ManifestError::Damaged { path: path.clone(), reason: "vanished while read".to_string() })?;
        let text = String::from_utf8(bytes)
            .map_err(|_| ManifestError::Damaged { path: path.clone(), reason: "not UTF-8".to_string() })?;
        let manifest = decode(&text).map_err(|reason| ManifestError::Damaged { path: path.clone(), reason })?;
        if manifest.name != topic {
            return Err(ManifestError::Damaged { path, reason: format!("it names topic {:?}", manifest.name) });
        }
        topics.insert(manifest.name.clone(), manifest);
    }
    Ok(topics)
}

fn reconcile_with_manifests(
    fs: &mut dyn FileSystem,
    data_dir: &Path,
    found: &BTreeMap<String, BTreeSet<i32>>,
    hosting: Hosting,
) -> Result<BTreeMap<String, i32>, ManifestError> {
    let manifest_dir = data_dir.join(MANIFEST_DIR_NAME);
    let topics: BTreeMap<String, i32> =
        read_manifests(fs, &manifest_dir)?.into_iter().map(|(topic, manifest)| (topic, manifest.partitions)).collect();
    // Check everything before removing anything, so a refusal leaves the directory as it was.
    let mut leftovers: Vec<(String, i32)> = Vec::new();
    for (topic, partitions) in found {
        let Some(&count) = topics.get(topic) else {
            leftovers.extend(partitions.iter().map(|partition| (topic.clone(), *partition)));
            continue;
        };
        for &partition in partitions.range(count..) {
            let dir = partition_dir(data_dir, topic, partition);
            if holds_records(fs, &dir)? {
                return Err(ManifestError::Inconsistent(format!(
                    "{} holds record batches but topic {topic:?} has {count} partitions (manifest {}); \
                     Skua will not drop it: move it out of {} and start again",
                    dir.display(),
                    manifest_dir.join(manifest_file_name(topic)).display(),
                    data_dir.display()
                )));
            }
            leftovers.push((topic.clone(), partition));
        }
    }
    for (topic, &count) in &topics {
        let present = found.get(topic);
        let missing: BTreeSet<i32> =
            (0..count).filter(|partition| !present.is_some_and(|present| present.contains(partition))).collect();
        if !missing.is_empty() && hosting == Hosting::AllPartitions {
            return Err(ManifestError::Inconsistent(format!(
                "topic {topic:?} has {count} partitions (manifest {}) but the directories of partitions {} are \
                 missing from {}; their data is lost or moved: restore them, or remove the manifest to delete \
                 the topic",
                manifest_dir.join(manifest_file_name(topic)).display(),
                list(&missing),
                data_dir.display()
            )));
        }
    }
    for (topic, partition) in &leftovers {
        tracing::warn!(
            dir = %partition_dir(data_dir, topic, *partition).display(),
            "removing a partition directory no committed topic claims (left by a create, grow or delete a failure or crash interrupted)"
        );
        remove_partition_dir(data_dir, topic, *partition)?;
    }
    if !leftovers.is_empty() {
        fs.sync_dir(data_dir).map_err(io_error(data_dir))?;
    }
    Ok(topics)
}

/// Writes a manifest for every topic of a data directory from before manifests, all at once: the
/// manifests are built in a staging directory renamed into place, so a crash leaves either no
/// manifest directory (the migration runs again) or a complete one. A topic's directories must
/// run 0..n; directories past a gap are removed only if they hold no records, otherwise the
/// broker refuses to start.
fn migrate(
    fs: &mut dyn FileSystem,
    data_dir: &Path,
    found: &BTreeMap<String, BTreeSet<i32>>,
) -> Result<(), ManifestError> {
    let mut counts: BTreeMap<&str, i32> = BTreeMap::new();
    let mut strays: Vec<(&str, i32)> = Vec::new();
    for (topic, partitions) in found {
        let count =
            partitions.iter().enumerate().take_while(|(index, partition)| *index as i32 == **partition).count() as i32;
        for &partition in partitions.range(count..) {
            let dir = partition_dir(data_dir, topic, partition);
            if holds_records(fs, &dir)? {
                return Err(ManifestError::Inconsistent(format!(
                    "the partition directories of topic {topic:?} are {} (not 0..n) and {} holds record batches; \
                     Skua cannot tell how many partitions the topic has: move the directories that do not belong \
                     to it out of {} (or restore the missing ones) and start again",
                    list(partitions),
                    dir.display(),
                    data_dir.display()
                )));
            }
            strays.push((topic, partition));
        }
        if count > 0 {
            counts.insert(topic, count.min(PARTITIONS_PER_TOPIC_MAX));
        }
    }
    for (topic, partition) in &strays {
        tracing::warn!(dir = %partition_dir(data_dir, topic, *partition).display(), "removing an empty partition directory past a gap (left by a failed create)");
        remove_partition_dir(data_dir, topic, *partition)?;
    }
    let staging = data_dir.join(MIGRATION_DIR_NAME);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io_error(&staging))?;
    }
    fs.create_dir_all(&staging).map_err(io_error(&staging))?;
    for (topic, count) in &counts {
        let name = manifest_file_name(topic);
        write_file_atomically(fs, &staging, &name, encode(topic, *count, None, &TopicConfigs::new()).as_bytes())
            .map_err(io_error(&staging.join(&name)))?;
    }
    fs.sync_dir(&staging).map_err(io_error(&staging))?;
    // The partition directories' own entries were made durable by the run that created them
    // (or are re-synced here), before the manifests that claim them appear.
    fs.sync_dir(data_dir).map_err(io_error(data_dir))?;
    let manifest_dir = data_dir.join(MANIFEST_DIR_NAME);
    fs.rename(&staging, &manifest_dir).map_err(io_error(&manifest_dir))?;
    fs.sync_dir(data_dir).map_err(io_error(data_dir))?;
    tracing::info!(topics = counts.len(), dir = %manifest_dir.display(), "wrote topic manifests for a data directory from before them");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_round_trip_and_damage_is_named() {
        let none = TopicConfigs::new();
        let manifest = |id, configs: &TopicConfigs| Manifest {
            name: "orders.v2".to_string(),
            partitions: 12,
            id,
            configs: configs.clone(),
        };
        let text = encode("orders.v2", 12, None, &none);
        assert_eq!(text, "SKUA-TOPIC-MANIFEST 1\nname=orders.v2\npartitions=12\n");
        assert_eq!(decode(&text), Ok(manifest(None, &none)));
        let id: TopicIdBytes = *b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\xfe\xff";
        let with_id = encode("orders.v2", 12, Some(id), &none);
        assert_eq!(
            with_id, "SKUA-TOPIC-MANIFEST 2\nname=orders.v2\npartitions=12\nid=000102030405060708090a0b0c0dfeff\n",
            "golden"
        );
        assert_eq!(decode(&with_id), Ok(manifest(Some(id), &none)));
        let configs = TopicConfigs::from([
            ("retention.ms".to_string(), "60000".to_string()),
            ("cleanup.policy".to_string(), "compact,delete".to_string()),
        ]);
        let with_configs = encode("orders.v2", 12, Some(id), &configs);
        assert_eq!(
            with_configs,
            "SKUA-TOPIC-MANIFEST 3\nname=orders.v2\npartitions=12\nid=000102030405060708090a0b0c0dfeff\n\
             config.cleanup.policy=compact,delete\nconfig.retention.ms=60000\n",
            "golden"
        );
        assert_eq!(decode(&with_configs), Ok(manifest(Some(id), &configs)));
        let without_id = encode("orders.v2", 12, None, &configs);
        assert_eq!(decode(&without_id), Ok(manifest(None, &configs)));
        assert!(decode("SKUA-TOPIC-MANIFEST 3\nname=t\npartitions=1\nretention.ms=5\n").is_err());
        assert!(decode("SKUA-TOPIC-MANIFEST 3\nname=t\npartitions=1\nconfig.a=1\nconfig.a=2\n").is_err());
        assert!(decode("SKUA-TOPIC-MANIFEST 4\nname=t\npartitions=1\n").is_err());
        assert!(decode("SKUA-TOPIC-MANIFEST 1\nname=t\npartitions=1\nid=000102030405060708090a0b0c0dfeff\n").is_err());
        assert!(decode("SKUA-TOPIC-MANIFEST 2\nname=t\npartitions=1\nid=0001\n").is_err());
        assert!(decode("SKUA-TOPIC-MANIFEST 2\nname=t\npartitions=1\nid=zz0102030405060708090a0b0c0dfeff\n").is_err());
        assert!(decode(&text[..text.len() - 1]).expect_err("cut").contains("cut short"));
        assert!(decode("SKUA-TOPIC-MANIFEST 2\nname=t\npartitions=1\n").is_err());
        assert!(decode("SKUA-TOPIC-MANIFEST 1\nname=t\npartitions=0\n").is_err());
        assert!(decode("SKUA-TOPIC-MANIFEST 1\nname=a/b\npartitions=1\n").is_err());
    }

    fn make_partition(data_dir: &Path, name: &str, record_bytes: usize) {
        let dir = data_dir.join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("00000000000000000000.log"), vec![1u8; record_bytes]).expect("segment");
    }

    #[test]
    fn migration_keeps_data_removes_empty_strays_and_refuses_to_guess() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path();
        make_partition(data, "kept-0", 100);
        make_partition(data, "kept-1", 0);
        make_partition(data, "kept-5", 0);
        make_partition(data, "stray-3", 0);
        make_partition(data, "__consumer_offsets-0", 10);
        let topics = reconcile(data, Hosting::AllPartitions).expect("reconcile");
        assert_eq!(topics, BTreeMap::from([("kept".to_string(), 2)]));
        assert!(data.join("kept-1").is_dir() && !data.join("kept-5").exists() && !data.join("stray-3").exists());
        assert!(data.join("__consumer_offsets-0").is_dir());
        assert_eq!(
            reconcile(data, Hosting::AllPartitions).expect("again"),
            topics,
            "a second start finds the same topics"
        );

        let other = tempfile::tempdir().expect("tempdir");
        make_partition(other.path(), "gap-0", 10);
        make_partition(other.path(), "gap-2", 10);
        let error = reconcile(other.path(), Hosting::AllPartitions).expect_err("data past a gap");
        assert!(error.to_string().contains("gap-2 holds record batches"), "{error}");
        assert!(other.path().join("gap-2").is_dir() && !other.path().join(MANIFEST_DIR_NAME).exists());
    }

    #[test]
    fn manifests_decide_what_a_restart_finds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path();
        reconcile(data, Hosting::AllPartitions).expect("empty data dir");
        let mut manifests = TopicManifests::new(data);
        make_partition(data, "t-0", 10);
        make_partition(data, "t-1", 0);
        manifests.commit("t", 2, None, &TopicConfigs::new()).expect("commit");
        make_partition(data, "t-2", 0); // an interrupted grow
        make_partition(data, "never-0", 0); // an interrupted create
        make_partition(data, "gone-0", 10); // a deletion past its commit point
        std::fs::write(data.join(MANIFEST_DIR_NAME).join("t~tmp"), b"half").expect("temp");
        assert_eq!(reconcile(data, Hosting::AllPartitions).expect("reconcile"), BTreeMap::from([("t".to_string(), 2)]));
        let mut left: Vec<String> = std::fs::read_dir(data)
            .expect("list")
            .map(|entry| entry.expect("entry").file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        assert_eq!(left, vec!["skua-topics", "t-0", "t-1"]);
        assert!(!data.join(MANIFEST_DIR_NAME).join("t~tmp").exists());
        assert_eq!(topic_ids(data).expect("ids"), BTreeMap::new(), "a version 1 manifest has no id");
        manifests.commit("t", 2, Some([9; 16]), &TopicConfigs::new()).expect("commit with an id");
        assert_eq!(reconcile(data, Hosting::AllPartitions).expect("reconcile"), BTreeMap::from([("t".to_string(), 2)]));
        assert_eq!(topic_ids(data).expect("ids"), BTreeMap::from([("t".to_string(), [9; 16])]));

        std::fs::remove_dir_all(data.join("t-1")).expect("lose a partition");
        let error = reconcile(data, Hosting::AllPartitions).expect_err("missing partition");
        assert!(error.to_string().contains("partitions 1 are missing"), "{error}");
        // In a cluster a broker holds only its replicas: the image opens the missing one again.
        assert_eq!(
            reconcile(data, Hosting::ReplicasOnly).expect("replicas only"),
            BTreeMap::from([("t".to_string(), 2)])
        );
        std::fs::write(data.join(MANIFEST_DIR_NAME).join("t"), b"SKUA-TOPIC-MANIFEST 1\nname=t\n").expect("damage");
        assert!(matches!(reconcile(data, Hosting::AllPartitions), Err(ManifestError::Damaged { .. })));
        manifests.remove("t").expect("remove");
        assert_eq!(reconcile(data, Hosting::AllPartitions).expect("reconcile"), BTreeMap::new());
        assert!(!data.join("t-0").exists(), "a topic whose manifest is gone is deleted");
    }
}
