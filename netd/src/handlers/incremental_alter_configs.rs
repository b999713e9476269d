//! IncrementalAlterConfigs (key 44), versions 0–1, as far as Skua goes today: it holds no
//! dynamic configs (changing a config at runtime is issue 16), so deleting a config that is not
//! set succeeds and changes nothing, as in Kafka, and every other change is refused per resource
//! with INVALID_CONFIG and a message that says so. That is what `kafka-reassign-partitions
//! --verify` needs: it clears the replication throttles (`*.replication.throttled.*`) of every
//! broker and moved topic once a reassignment completes, and Skua sets none.
//!
//! Before that refusal, the request is checked as Kafka 4.4 checks it, with Kafka's codes and
//! messages (observed against Kafka by `tests/admin_oracle.rs`): a resource named twice, a key
//! named twice in one resource, a broker or broker-logger resource naming another node or no
//! number, an unknown resource type (INVALID_REQUEST); an unknown topic
//! (UNKNOWN_TOPIC_OR_PARTITION); an operation Kafka does not know (UNKNOWN_SERVER_ERROR, no
//! message, as Kafka answers). Broker loggers: Skua has none of Kafka's log4j loggers but `root`
//! (its level is `RUST_LOG`'s, read at start), so other names are INVALID_CONFIG "does not
//! exist", as Kafka answers a logger it does not have. Groups and client-metrics resources are
//! known types whose configs Skua does not hold either.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::ResponseError;

use super::str_bytes;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_BROKER_LOGGER: i8 = 8;
const RESOURCE_CLIENT_METRICS: i8 = 16;
const RESOURCE_GROUP: i8 = 32;
/// Kafka's `AlterConfigOp.OpType`.
const OPERATION_SET: i8 = 0;
const OPERATION_DELETE: i8 = 1;
const OPERATION_APPEND: i8 = 2;
const OPERATION_SUBTRACT: i8 = 3;
/// The one logger Skua has (Kafka's name for the root logger).
const ROOT_LOGGER: &str = "root";

type Refusal = (ResponseError, Option<String>);

pub fn handle(context: &ShardContext, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: IncrementalAlterConfigsRequest = decode_body(frame)?;
    let mut response = IncrementalAlterConfigsResponse::default();
    let mut named: BTreeMap<(i8, &str), usize> = BTreeMap::new();
    for resource in &request.resources {
        *named.entry((resource.resource_type, resource.resource_name.as_str())).or_default() += 1;
    }
    for resource in &request.resources {
        let name = resource.resource_name.as_str();
        let outcome = if named.get(&(resource.resource_type, name)).is_some_and(|count| *count > 1) {
            Err((ResponseError::InvalidRequest, Some("Each resource must appear at most once.".to_string())))
        } else {
            check(context, resource.resource_type, name, &resource.configs)
        };
        let mut answer = AlterConfigsResourceResponse::default();
        answer.resource_type = resource.resource_type;
        answer.resource_name = resource.resource_name.clone();
        // Success has no message (null, as Kafka sends; the type's default is "").
        answer.error_message = None;
        if let Err((error, message)) = outcome {
            answer.error_code = error.code();
            answer.error_message = message.as_deref().map(str_bytes);
        }
        response.responses.push(answer);
    }
    encode_response(ApiKey::IncrementalAlterConfigs, frame.api_version, frame.correlation_id, &response)
}

fn invalid_request(message: String) -> Refusal {
    (ResponseError::InvalidRequest, Some(message))
}

fn runtime_refusal(key: &str) -> Refusal {
    (
        ResponseError::InvalidConfig,
        Some(format!("Skua does not change configs at runtime yet (cannot change {key}); set them at creation")),
    )
}

/// A broker or broker-logger resource's name must be this node's id (Kafka's
/// `ConfigAdminManager.preprocess`; clients send such resources to the node they name).
fn check_node(context: &ShardContext, name: &str, expected: &str) -> Result<(), Refusal> {
    let id: i32 =
        name.parse().map_err(|_| invalid_request(format!("Node id must be an integer, but it is: {name}")))?;
    let me = context.config.node_id;
    if id != me {
        return Err(invalid_request(format!("{expected} {me}, but received {id}")));
    }
    Ok(())
}

/// Nothing to change (Ok) or why the resource's changes are refused.
fn check(
    context: &ShardContext,
    resource_type: i8,
    name: &str,
    configs: &[kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
) -> Result<(), Refusal> {
    let keys: BTreeSet<&str> = configs.iter().map(|config| config.name.as_str()).collect();
    if keys.len() != configs.len() {
        return Err(invalid_request("Error due to duplicate config keys".to_string()));
    }
    // The configs this resource has set, which a DELETE would have to remove.
    let set: Vec<String> = match resource_type {
        RESOURCE_TOPIC => {
            if context.catalog().partitions(name).is_none() {
                return Err((
                    ResponseError::UnknownTopicOrPartition,
                    Some(format!("The topic '{name}' does not exist.")),
                ));
            }
            context
                .image()
                .and_then(|image| image.topic(name).map(|topic| topic.configs.keys().cloned().collect()))
                .unwrap_or_default()
        }
        RESOURCE_BROKER => {
            if !name.is_empty() {
                check_node(context, name, "Unexpected broker id, expected")?;
            }
            Vec::new()
        }
        RESOURCE_BROKER_LOGGER => {
            check_node(context, name, "Unexpected node id. Expected")?;
            return check_loggers(configs);
        }
        RESOURCE_GROUP | RESOURCE_CLIENT_METRICS => Vec::new(),
        other => return Err(invalid_request(format!("Unknown resource type {other}"))),
    };
    for config in configs {
        let key = config.name.as_str();
        match config.config_operation {
            OPERATION_DELETE if !set.iter().any(|name| name == key) => {}
            OPERATION_SET | OPERATION_DELETE | OPERATION_APPEND | OPERATION_SUBTRACT => {
                return Err(runtime_refusal(key));
            }
            // Kafka fails on an operation it does not know with no message.
            _ => return Err((ResponseError::UnknownServerError, None)),
        }
    }
    Ok(())
}

/// Kafka's checks of log-level changes (`ConfigAdminManager.validateLogLevelConfigs`), over the
/// one logger Skua has; a valid change is refused as every runtime change is.
fn check_loggers(
    configs: &[kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
) -> Result<(), Refusal> {
    // Every change of the one logger is refused, so the first change decides.
    if let Some(config) = configs.first() {
        let logger = config.name.as_str();
        if logger != ROOT_LOGGER {
            return Err((ResponseError::InvalidConfig, Some(format!("Logger {logger} does not exist!"))));
        }
        let operation = match config.config_operation {
            OPERATION_SET => return Err(runtime_refusal(logger)),
            OPERATION_DELETE => {
                return Err(invalid_request("Removing the log level of the root logger is not allowed".to_string()))
            }
            OPERATION_APPEND => "APPEND".to_string(),
            OPERATION_SUBTRACT => "SUBTRACT".to_string(),
            other => format!("Unknown operation type {other}"),
        };
        return Err(invalid_request(format!("{operation} operation is not allowed for the BROKER_LOGGER resource")));
    }
    Ok(())
}
