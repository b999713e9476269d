//! DescribeConfigs (key 32), versions 1–4: a topic's effective configuration and the broker's.
//!
//! A topic's keys are `config::topic`'s: its own overrides as DYNAMIC_TOPIC_CONFIG, the others as
//! the broker's (STATIC_BROKER_CONFIG when its configuration file sets the synonym,
//! DEFAULT_CONFIG otherwise), with synonyms (v1+) and documentation (v3+) when asked.
//! `__consumer_offsets` (never in the catalog) answers with its own settings (compacted, its
//! segment size, kept forever), as Kafka's does: `kafka-topics --describe` asks for every topic's.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::ResponseError;

use super::str_bytes;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::config::dynamic::{DynamicBrokerConfigs, SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG};
use crate::config::topic::{self, source, ConfigType};
use crate::config::Config;
use crate::runtime::context::ShardContext;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// One config as DescribeConfigs reports it.
struct Entry {
    name: String,
    value: String,
    source: i8,
    kind: ConfigType,
    read_only: bool,
    doc: Option<&'static str>,
    synonyms: Vec<(String, String, i8)>,
}

/// A topic's configs: [`topic::describe`] of its own overrides.
fn topic_entries(config: &Config, dynamic: &DynamicBrokerConfigs, overrides: &BTreeMap<String, String>) -> Vec<Entry> {
    topic::describe(config, dynamic, overrides)
        .into_iter()
        .map(|described| Entry {
            name: described.name.to_string(),
            value: described.value,
            source: described.source,
            kind: described.kind,
            read_only: false,
            doc: Some(described.doc),
            synonyms: described.synonyms,
        })
        .collect()
}

/// `__consumer_offsets`'s own settings (Kafka sets them when it creates the topic, so they are
/// topic configs: `kafka-topics --describe` shows them).
fn offsets_topic_overrides(config: &Config) -> BTreeMap<String, String> {
    BTreeMap::from([
        (topic::CLEANUP_POLICY.to_string(), "compact".to_string()),
        // Whatever the broker's codec: the offsets logs keep the coordinator's batches as written.
        (topic::COMPRESSION_TYPE.to_string(), "producer".to_string()),
        (topic::SEGMENT_BYTES.to_string(), config.offsets_segment_bytes.to_string()),
        (topic::RETENTION_MS.to_string(), "-1".to_string()),
        (topic::RETENTION_BYTES.to_string(), "-1".to_string()),
    ])
}

/// The broker's configs: the static ones (read-only), then every dynamic key with its effective
/// value, source and synonyms (this broker's dynamic value, the cluster default, the static one).
fn broker_entries(config: &Config, dynamic: &DynamicBrokerConfigs) -> Vec<Entry> {
    let static_source =
        |name: &str| if config.set_keys.contains(name) { source::STATIC_BROKER_CONFIG } else { source::DEFAULT_CONFIG };
    let fixed = [
        ("node.id", config.node_id.to_string(), ConfigType::Int),
        ("listeners", format!("PLAINTEXT://{}", config.listen_address), ConfigType::String),
        (
            "advertised.listeners",
            format!("PLAINTEXT://{}:{}", config.advertised_host, config.advertised_port),
            ConfigType::String,
        ),
        ("log.dirs", config.data_dir.display().to_string(), ConfigType::String),
        ("num.partitions", config.num_partitions.to_string(), ConfigType::Int),
        ("auto.create.topics.enable", config.auto_create_topics.to_string(), ConfigType::Boolean),
        ("socket.request.max.bytes", config.socket_request_max_bytes.to_string(), ConfigType::Int),
        (
            "socket.send.buffer.bytes",
            config.socket_send_buffer_bytes.map_or("-1".to_string(), |bytes| bytes.to_string()),
            ConfigType::Int,
        ),
        (
            "socket.receive.buffer.bytes",
            config.socket_receive_buffer_bytes.map_or("-1".to_string(), |bytes| bytes.to_string()),
            ConfigType::Int,
        ),
    ];
    let mut entries: Vec<Entry> = fixed
        .into_iter()
        .map(|(name, value, kind)| {
            let source = static_source(name);
            Entry {
                name: name.to_string(),
                synonyms: vec![(name.to_string(), value.clone(), source)],
                value,
                source,
                kind,
                read_only: true,
                doc: None,
            }
        })
        .collect();
    // The replication rates, as Kafka lists them: only when set, with their dynamic synonyms.
    for name in crate::config::dynamic::BROKER_ONLY_KEYS {
        let synonyms = dynamic.synonyms(name);
        if let Some((_, value, source)) = synonyms.first().cloned() {
            let kind = ConfigType::Long;
            entries.push(Entry { name: name.to_string(), value, source, kind, read_only: false, doc: None, synonyms });
        }
    }
    // The connection limits, always listed (as Kafka does), with their dynamic synonyms.
    let overrides_text = crate::config::connection_overrides_text(&config.connections_per_ip_overrides);
    for (name, static_value, kind) in [
        (crate::config::dynamic::MAX_CONNECTIONS, config.connections_max.to_string(), ConfigType::Int),
        (crate::config::dynamic::MAX_CONNECTIONS_PER_IP, config.connections_per_ip_max.to_string(), ConfigType::Int),
        (crate::config::dynamic::MAX_CONNECTIONS_PER_IP_OVERRIDES, overrides_text, ConfigType::String),
        (
            crate::config::dynamic::MAX_CONNECTION_CREATION_RATE,
            config.connection_creation_rate_max.to_string(),
            ConfigType::Int,
        ),
        (
            crate::config::dynamic::PRODUCER_ID_EXPIRATION_MS,
            config.producer_id_expiration_ms.to_string(),
            ConfigType::Int,
        ),
    ] {
        let mut synonyms = dynamic.synonyms(name);
        synonyms.push((name.to_string(), static_value, static_source(name)));
        let (_, value, source) = synonyms[0].clone();
        entries.push(Entry { name: name.to_string(), value, source, kind, read_only: false, doc: None, synonyms });
    }
    for key in topic::TOPIC_KEYS.iter().filter(|key| key.broker_synonym != topic::NO_BROKER_SYNONYM) {
        let name = key.broker_synonym;
        let dynamic_key = crate::config::dynamic::is_dynamic(name);
        let mut synonyms = if dynamic_key { dynamic.synonyms(name) } else { Vec::new() };
        synonyms.push((name.to_string(), topic::broker_value(config, key.name), static_source(name)));
        let (_, value, source) = synonyms[0].clone();
        entries.push(Entry {
            name: name.to_string(),
            value,
            source,
            kind: key.kind,
            read_only: !dynamic_key,
            doc: None,
            synonyms,
        });
    }
    entries.sort_by(|one, other| one.name.cmp(&other.name));
    entries
}

/// The cluster-wide dynamic defaults (a broker resource named ""), as Kafka lists them: only the
/// keys the default set has.
fn default_broker_entries(dynamic: &DynamicBrokerConfigs) -> Vec<Entry> {
    dynamic
        .default
        .iter()
        .map(|(name, value)| Entry {
            name: name.clone(),
            value: value.clone(),
            source: SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG,
            kind: topic::TOPIC_KEYS.iter().find(|key| key.broker_synonym == name).map_or(
                if crate::config::dynamic::BROKER_ONLY_KEYS.contains(&name.as_str()) {
                    ConfigType::Long
                } else if (crate::config::dynamic::CONNECTION_KEYS.contains(&name.as_str())
                    && name != crate::config::dynamic::MAX_CONNECTIONS_PER_IP_OVERRIDES)
                    || name == crate::config::dynamic::PRODUCER_ID_EXPIRATION_MS
                {
                    ConfigType::Int
                } else {
                    ConfigType::String
                },
                |key| key.kind,
            ),
            read_only: false,
            doc: None,
            synonyms: vec![(name.clone(), value.clone(), SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG)],
        })
        .collect()
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
                Ok(topic_entries(config, &catalog.broker_configs, catalog.configs(name)))
            }
            RESOURCE_TOPIC if name == crate::coordinators::groups::OFFSETS_TOPIC => {
                Ok(topic_entries(config, &DynamicBrokerConfigs::default(), &offsets_topic_overrides(config)))
            }
            RESOURCE_TOPIC => Err((ResponseError::UnknownTopicOrPartition.code(), format!("unknown topic {name:?}"))),
            RESOURCE_BROKER if name.is_empty() => Ok(default_broker_entries(&catalog.broker_configs)),
            RESOURCE_BROKER if name == config.node_id.to_string() => {
                Ok(broker_entries(config, &catalog.broker_configs))
            }
            RESOURCE_BROKER => {
                Err((ResponseError::InvalidRequest.code(), format!("this is broker {}, not {name:?}", config.node_id)))
            }
            other => Err((ResponseError::InvalidRequest.code(), format!("resource type {other} is not supported"))),
        };
        match entries {
            Ok(entries) => {
                // Null or empty both mean "all keys", as Kafka reads it (kafka-python sends []).
                let wanted = resource.configuration_keys.as_ref().filter(|keys| !keys.is_empty());
                result.configs = entries
                    .into_iter()
                    .filter(|entry| wanted.is_none_or(|keys| keys.iter().any(|wanted| wanted.as_str() == entry.name)))
                    .map(|entry| {
                        let mut described = DescribeConfigsResourceResult::default();
                        described.name = str_bytes(&entry.name);
                        described.value = Some(str_bytes(&entry.value));
                        described.read_only = entry.read_only;
                        described.config_source = entry.source;
                        described.config_type = entry.kind as i8;
                        if request.include_documentation {
                            described.documentation = entry.doc.map(str_bytes);
                        }
                        if request.include_synonyms {
                            described.synonyms = entry
                                .synonyms
                                .iter()
                                .map(|(name, value, source)| {
                                    let mut synonym = DescribeConfigsSynonym::default();
                                    synonym.name = str_bytes(name);
                                    synonym.value = Some(str_bytes(value));
                                    synonym.source = *source;
                                    synonym
                                })
                                .collect();
                        }
                        described
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
