//! DescribeConfigs (key 32), versions 1–4: a topic's effective configuration and the broker's.
//!
//! Every topic uses the broker's log settings today (per-topic overrides are not stored yet), so
//! topic values are reported with source DEFAULT_CONFIG / STATIC_BROKER_CONFIG as appropriate.
//! `__consumer_offsets` (never in the catalog) answers with its own settings (compacted, its
//! segment size, kept forever), as Kafka's does: `kafka-topics --describe` asks for every topic's.

use bytes::Bytes;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::ResponseError;

use super::str_bytes;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::config::Config;
use crate::runtime::context::ShardContext;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
/// Kafka's ConfigSource values.
const SOURCE_DYNAMIC_TOPIC_CONFIG: i8 = 1;
const SOURCE_STATIC_BROKER_CONFIG: i8 = 4;
const SOURCE_DEFAULT_CONFIG: i8 = 5;
/// Kafka's ConfigType values (DescribeConfigs v3+).
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;

fn topic_configs(config: &Config) -> Vec<(&'static str, String, i8)> {
    let (flush_messages, flush_ms) = match config.log.flush_policy {
        engine::FlushPolicy::FsyncBeforeAck => (1, 0),
        engine::FlushPolicy::Interval { flush_messages, flush_ms } => {
            (flush_messages.min(i64::MAX as u64) as i64, flush_ms)
        }
    };
    vec![
        ("cleanup.policy", "delete".into(), TYPE_STRING),
        ("compression.type", "producer".into(), TYPE_STRING),
        ("retention.ms", config.log.retention_ms.to_string(), TYPE_LONG),
        ("retention.bytes", config.log.retention_bytes.to_string(), TYPE_LONG),
        ("segment.bytes", config.log.segment_bytes.to_string(), TYPE_INT),
        ("segment.ms", config.log.segment_ms.to_string(), TYPE_LONG),
        ("index.interval.bytes", config.log.index_interval_bytes.to_string(), TYPE_INT),
        ("max.message.bytes", config.message_max_bytes.to_string(), TYPE_INT),
        ("min.insync.replicas", config.min_insync_replicas.to_string(), TYPE_INT),
        ("message.timestamp.type", "CreateTime".into(), TYPE_STRING),
        ("flush.messages", flush_messages.to_string(), TYPE_LONG),
        ("flush.ms", flush_ms.to_string(), TYPE_LONG),
    ]
}

/// The keys `__consumer_offsets` sets for itself (Kafka sets them when it creates the topic, so
/// they are topic configs: `kafka-topics --describe` shows them).
const OFFSETS_TOPIC_KEYS: &[&str] = &["cleanup.policy", "segment.bytes", "retention.ms", "retention.bytes"];

/// `__consumer_offsets`: the topic defaults with the offsets topic's own settings.
fn offsets_topic_configs(config: &Config) -> Vec<(&'static str, String, i8)> {
    let mut configs = topic_configs(config);
    for (key, value, _) in &mut configs {
        match *key {
            "cleanup.policy" => *value = "compact".into(),
            "segment.bytes" => *value = config.offsets_segment_bytes.to_string(),
            "retention.ms" | "retention.bytes" => *value = "-1".into(),
            _ => {}
        }
    }
    configs
}

fn broker_configs(config: &Config) -> Vec<(&'static str, String, i8)> {
    vec![
        ("node.id", config.node_id.to_string(), TYPE_INT),
        ("listeners", format!("PLAINTEXT://{}", config.listen_address), TYPE_STRING),
        (
            "advertised.listeners",
            format!("PLAINTEXT://{}:{}", config.advertised_host, config.advertised_port),
            TYPE_STRING,
        ),
        ("log.dirs", config.data_dir.display().to_string(), TYPE_STRING),
        ("num.partitions", config.num_partitions.to_string(), TYPE_INT),
        ("auto.create.topics.enable", config.auto_create_topics.to_string(), TYPE_BOOLEAN),
        ("log.segment.bytes", config.log.segment_bytes.to_string(), TYPE_INT),
        ("log.roll.ms", config.log.segment_ms.to_string(), TYPE_LONG),
        ("log.retention.ms", config.log.retention_ms.to_string(), TYPE_LONG),
        ("log.retention.bytes", config.log.retention_bytes.to_string(), TYPE_LONG),
        ("message.max.bytes", config.message_max_bytes.to_string(), TYPE_INT),
        ("socket.request.max.bytes", config.socket_request_max_bytes.to_string(), TYPE_INT),
    ]
}

pub fn handle(context: &ShardContext, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: DescribeConfigsRequest = decode_body(frame)?;
    let mut response = DescribeConfigsResponse::default();
    let catalog = context.catalog();
    let config = &context.config;
    for resource in &request.resources {
        let mut result = DescribeConfigsResult::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        let name = resource.resource_name.as_str();
        let entries = match resource.resource_type {
            RESOURCE_TOPIC if catalog.partitions(name).is_some() => {
                // In a cluster, what the topic set for itself at creation (its metadata record).
                let mut configs = topic_configs(config);
                let mut own: Vec<&'static str> = Vec::new();
                if let Some(topic) = context.image().and_then(|image| image.topic(name).cloned()) {
                    for (key, value, _) in &mut configs {
                        if let Some(set) = topic.configs.get(*key) {
                            value.clone_from(set);
                            own.push(key);
                        }
                    }
                }
                Ok((configs, SOURCE_DEFAULT_CONFIG, own))
            }
            RESOURCE_TOPIC if name == crate::coordinators::groups::OFFSETS_TOPIC => {
                Ok((offsets_topic_configs(config), SOURCE_DEFAULT_CONFIG, OFFSETS_TOPIC_KEYS.to_vec()))
            }
            RESOURCE_TOPIC => Err((ResponseError::UnknownTopicOrPartition.code(), format!("unknown topic {name:?}"))),
            RESOURCE_BROKER if name.is_empty() || name == config.node_id.to_string() => {
                Ok((broker_configs(config), SOURCE_STATIC_BROKER_CONFIG, Vec::new()))
            }
            RESOURCE_BROKER => {
                Err((ResponseError::InvalidRequest.code(), format!("this is broker {}, not {name:?}", config.node_id)))
            }
            other => Err((ResponseError::InvalidRequest.code(), format!("resource type {other} is not supported"))),
        };
        match entries {
            Ok((entries, source, topic_level)) => {
                // Null or empty both mean "all keys", as Kafka reads it (kafka-python sends []).
                let wanted = resource.configuration_keys.as_ref().filter(|keys| !keys.is_empty());
                result.configs = entries
                    .into_iter()
                    .filter(|(key, _, _)| wanted.is_none_or(|keys| keys.iter().any(|wanted| wanted.as_str() == *key)))
                    .map(|(key, value, config_type)| {
                        let mut entry = DescribeConfigsResourceResult::default();
                        entry.name = str_bytes(key);
                        entry.value = Some(str_bytes(&value));
                        entry.read_only = resource.resource_type == RESOURCE_BROKER;
                        entry.config_source =
                            if topic_level.contains(&key) { SOURCE_DYNAMIC_TOPIC_CONFIG } else { source };
                        entry.config_type = config_type;
                        entry
                    })
                    .collect();
            }
            Err((code, message)) => {
                result.error_code = code;
                result.error_message = Some(str_bytes(&message));
            }
        }
        response.results.push(result);
    }
    encode_response(ApiKey::DescribeConfigs, frame.api_version, frame.correlation_id, &response)
}
