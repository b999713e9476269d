//! The topic catalog and partition placement: which topics exist, and which shard owns a
//! partition.
//!
//! Owns: [`owner_of`] (a stable hash, so a partition's owner follows from its name and the shard
//! count, with no lookup), [`SharedCatalog`] (topic → partition count; written only by the
//! controller, read lock-free on the data path through a per-shard cached snapshot; it also
//! maps topic ids, Kafka's topic UUIDs, to names both ways), topic name
//! rules ([`valid_topic_name`]), and the durable records behind the catalog: topic manifests
//! ([`manifest`]) and the producer id counter ([`producer_ids`]).
//!
//! Must not know: shards' state, connections or any Kafka request. Whoever changes the catalog
//! (the controller) does so through [`SharedCatalog::publish`].

pub mod broker_configs;
pub mod manifest;
pub mod producer_ids;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::config::dynamic::DynamicBrokerConfigs;
use crate::config::topic::TopicSettings;
use crate::config::Config;
use crate::limits::TOPIC_NAME_BYTES_MAX;
use crate::published::Published;

/// The shard that owns `partition` of `topic`: FNV-1a of the topic name plus the partition
/// index, so the partitions of one topic are spread round-robin over the shards. Stable across
/// restarts for the same shard count (and a different count simply re-homes partitions: each
/// shard opens the directories it owns at start-up).
pub fn owner_of(topic: &str, partition: i32, shard_count: usize) -> usize {
    assert!(shard_count > 0, "at least one shard");
    let hash = fnv1a(topic.as_bytes());
    (hash.wrapping_add(u64::from(partition.unsigned_abs())) % shard_count as u64) as usize
}

/// FNV-1a, 64 bit: small, stable across versions and platforms (placement depends on it).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The metadata quorum's log directory is `<log.dirs>/__cluster_metadata-0`, as Kafka names it;
/// it is no topic's partition.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// The internal log of committed offsets, as Kafka names it.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The `__consumer_offsets` partition of a group (Kafka: hash of the group id mod the count).
pub fn offsets_partition(group: &str, partitions: i32) -> i32 {
    (fnv1a(group.as_bytes()) % partitions.max(1) as u64) as i32
}

/// The shard that coordinates `group`: the owner of its `__consumer_offsets` partition.
pub fn group_owner(group: &str, offsets_partitions: i32, shard_count: usize) -> usize {
    owner_of(OFFSETS_TOPIC, offsets_partition(group, offsets_partitions), shard_count)
}

/// Kafka's rules for a topic name: legal characters and length.
pub fn valid_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("topic name {name:?} is illegal"));
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(format!("topic name is longer than {TOPIC_NAME_BYTES_MAX} characters"));
    }
    if !name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'.' || byte == b'_' || byte == b'-') {
        return Err(format!(
            "topic name {name:?} contains characters other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// The committed topics of the data directory, after removing the partition directories no
/// committed topic claims and migrating a data directory from before topic manifests (see
/// `manifest.rs`). Refuses (with the directory and what to do) rather than skip a directory that
/// may hold acknowledged data.
pub fn discover_topics(
    data_dir: &std::path::Path,
    hosting: manifest::Hosting,
) -> Result<Catalog, manifest::ManifestError> {
    let mut catalog = Catalog::default();
    catalog.topics.extend(manifest::reconcile(data_dir, hosting)?);
    catalog.configs.extend(manifest::topic_configs(data_dir)?);
    let mut ids = manifest::topic_ids(data_dir)?;
    if hosting == manifest::Hosting::AllPartitions {
        give_ids(data_dir, &catalog, &mut ids)?;
    }
    for (topic, id) in ids {
        catalog.set_topic_id(&topic, id);
    }
    // One node's dynamic broker configs (a cluster's come with its metadata image).
    if hosting == manifest::Hosting::AllPartitions {
        catalog.broker_configs = broker_configs::load(data_dir).map_err(|source| manifest::ManifestError::Io {
            path: data_dir.join(broker_configs::BROKER_CONFIGS_FILE),
            source,
        })?;
    }
    Ok(catalog)
}

/// One node: gives each topic created before topics had ids on one node its id (random, written
/// into its manifest once, so it stays the topic's until the topic is deleted).
fn give_ids(
    data_dir: &std::path::Path,
    catalog: &Catalog,
    ids: &mut BTreeMap<String, manifest::TopicIdBytes>,
) -> Result<(), manifest::ManifestError> {
    let mut manifests = manifest::TopicManifests::new(data_dir);
    for (topic, partitions) in &catalog.topics {
        if ids.contains_key(topic) || topic == OFFSETS_TOPIC {
            continue;
        }
        let id =
            new_topic_id().map_err(|source| manifest::ManifestError::Io { path: data_dir.to_path_buf(), source })?;
        manifests.commit(topic, *partitions, Some(id), catalog.configs(topic))?;
        tracing::info!(%topic, "gave the topic an id");
        ids.insert(topic.clone(), id);
    }
    Ok(())
}

/// A new topic id: random, never Kafka's reserved zero or one ids (KIP-516).
pub fn new_topic_id() -> std::io::Result<manifest::TopicIdBytes> {
    let mut bytes = crate::quorum::random_bytes()?;
    bytes[15] |= 1;
    if bytes == [0; 16] || bytes[..15] == [0; 15] {
        bytes[0] = 1;
    }
    Ok(bytes)
}

/// Topic name → partition count: what Metadata answers and what routing needs; and each topic's
/// own configs (the overrides it set; a topic without any has no entry).
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub topics: BTreeMap<String, i32>,
    pub configs: BTreeMap<String, manifest::TopicConfigs>,
    /// The dynamic broker configs this broker runs with.
    pub broker_configs: DynamicBrokerConfigs,
    /// Each topic's id, by name and by id (set through [`Catalog::set_topic_id`]).
    ids: BTreeMap<String, manifest::TopicIdBytes>,
    names: HashMap<manifest::TopicIdBytes, String>,
}

/// The configs of a topic that set none.
static NO_CONFIGS: manifest::TopicConfigs = BTreeMap::new();

impl Catalog {
    pub fn partitions(&self, topic: &str) -> Option<i32> {
        self.topics.get(topic).copied()
    }

    /// What `topic`'s partitions run with on a broker of static configuration `config`: the
    /// dynamic broker configs applied, then the topic's own.
    pub fn settings(&self, config: &Config, topic: &str) -> TopicSettings {
        TopicSettings::of(&self.broker_configs.effective(config), self.configs(topic))
    }

    /// `topic`'s id (Kafka's topic UUID), if it has one.
    pub fn topic_id(&self, topic: &str) -> Option<manifest::TopicIdBytes> {
        self.ids.get(topic).copied()
    }

    /// The topic whose id is `id`.
    pub fn topic_named_by(&self, id: &manifest::TopicIdBytes) -> Option<&str> {
        self.names.get(id).map(String::as_str)
    }

    pub fn set_topic_id(&mut self, topic: &str, id: manifest::TopicIdBytes) {
        if let Some(old) = self.ids.insert(topic.to_string(), id) {
            self.names.remove(&old);
        }
        self.names.insert(id, topic.to_string());
    }

    /// Forgets a deleted topic: its partitions, configs and id.
    pub fn remove_topic(&mut self, topic: &str) {
        self.topics.remove(topic);
        self.configs.remove(topic);
        if let Some(id) = self.ids.remove(topic) {
            self.names.remove(&id);
        }
    }

    /// The configs `topic` set for itself (empty for one that set none, or an unknown one).
    pub fn configs(&self, topic: &str) -> &manifest::TopicConfigs {
        self.configs.get(topic).unwrap_or(&NO_CONFIGS)
    }
}

/// The catalog shared by all shards: written only by the controller, read through each shard's
/// [`crate::published::Cached`] copy.
pub type SharedCatalog = Published<Catalog>;

impl Published<Catalog> {
    /// Replaces the catalog with `change` applied to a copy of it.
    pub fn publish(&self, change: impl FnOnce(&mut Catalog)) {
        self.replace(|current| {
            let mut next = Catalog::clone(current);
            change(&mut next);
            Some(Arc::new(next))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_stable_and_spread() {
        assert_eq!(owner_of("orders", 3, 1), 0);
        // Golden values: changing the hash re-homes every partition of existing data dirs.
        assert_eq!((0..4).map(|partition| owner_of("orders", partition, 2)).collect::<Vec<_>>(), vec![0, 1, 0, 1]);
        let mut per_shard = [0usize; 4];
        for partition in 0..64 {
            per_shard[owner_of("events", partition, 4)] += 1;
        }
        assert_eq!(per_shard, [16, 16, 16, 16], "consecutive partitions go round-robin");
    }

    #[test]
    fn catalog_snapshots_follow_publishes() {
        let shared = SharedCatalog::new(Catalog::default());
        let (first, before) = (shared.generation(), shared.load());
        shared.publish(|catalog| {
            catalog.topics.insert("t".into(), 3);
        });
        let (second, after) = (shared.generation(), shared.load());
        assert!(second > first);
        assert_eq!(before.partitions("t"), None);
        assert_eq!(after.partitions("t"), Some(3));
    }

    /// One node: a topic from before one-node topics had ids gets one at start, written into its
    /// manifest, so it keeps it across restarts; ids resolve both ways and go with the topic.
    #[test]
    fn one_node_topics_get_ids_once_and_keep_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path();
        let mut manifests = manifest::TopicManifests::new(data);
        for partition in 0..2 {
            std::fs::create_dir_all(data.join(format!("old-{partition}"))).expect("partition dir");
        }
        std::fs::create_dir_all(data.join(manifest::MANIFEST_DIR_NAME)).expect("manifest dir");
        manifests.commit("old", 2, None, &manifest::TopicConfigs::new()).expect("version 1 manifest");
        assert_eq!(manifest::topic_ids(data).expect("ids"), BTreeMap::new(), "no id yet");

        let first = discover_topics(data, manifest::Hosting::AllPartitions).expect("discover");
        let id = first.topic_id("old").expect("an id given at start");
        assert_ne!(id, [0; 16]);
        assert_eq!(first.topic_named_by(&id), Some("old"));
        assert_eq!(manifest::topic_ids(data).expect("ids").get("old"), Some(&id), "written into the manifest");
        let again = discover_topics(data, manifest::Hosting::AllPartitions).expect("discover again");
        assert_eq!(again.topic_id("old"), Some(id), "the same id after a restart");

        let mut catalog = again;
        catalog.remove_topic("old");
        assert_eq!((catalog.topic_id("old"), catalog.topic_named_by(&id)), (None, None));
        catalog.set_topic_id("new", [7; 16]);
        catalog.set_topic_id("new", [8; 16]);
        assert_eq!((catalog.topic_named_by(&[7; 16]), catalog.topic_named_by(&[8; 16])), (None, Some("new")));
    }
}
