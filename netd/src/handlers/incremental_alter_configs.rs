//! IncrementalAlterConfigs (key 44), versions 0–1.
//!
//! Topics: SET, DELETE, APPEND and SUBTRACT (the last two on list keys: `cleanup.policy`) change
//! the topic's own configs, each value checked as `config::topic` checks it; the new set replaces
//! the old one durably and applies to the topic's partitions (the controller's business).
//! `validate_only` checks and changes nothing. Deleting a key that is not set (or that Kafka does
//! not know) succeeds and changes nothing, as in Kafka (`kafka-reassign-partitions --verify`
//! deletes `replica.alter.log.dirs.io.max.bytes.per.second`, which Skua does not hold, beside the
//! replication throttles).
//!
//! Brokers (name "": the cluster-wide default, else this broker's id): the dynamic broker configs
//! of `config::dynamic` (the log defaults topics inherit), checked as Kafka checks them (a bad
//! value INVALID_REQUEST, as Kafka answers for a broker); a key Skua does not change at runtime is
//! refused with INVALID_CONFIG and a message that says so. Groups and client-metrics resources:
//! Skua holds no configs of them, so a DELETE succeeds and changes nothing and every other change
//! is refused the same way.
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

use std::collections::BTreeSet;

use bytes::Bytes;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::ResponseError;

use super::config_support::{self, Refusal};
use super::str_bytes;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::config::{dynamic, topic};
use crate::runtime::context::ShardContext;
use crate::runtime::controller;

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

pub async fn handle(context: &ShardContext, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: IncrementalAlterConfigsRequest = decode_body(frame)?;
    let mut response = IncrementalAlterConfigsResponse::default();
    let repeated = config_support::repeated_resources(
        request.resources.iter().map(|resource| (resource.resource_type, resource.resource_name.as_str())),
    );
    for resource in &request.resources {
        let name = resource.resource_name.as_str();
        let outcome = if repeated.contains(&(resource.resource_type, name)) {
            Err(config_support::repeated_resource())
        } else if resource.resource_type == RESOURCE_TOPIC {
            alter_topic(context, name, &resource.configs, request.validate_only).await
        } else if resource.resource_type == RESOURCE_BROKER {
            alter_broker(context, name, &resource.configs, request.validate_only).await
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

/// Applies a topic resource's operations to its own configs, then (unless `validate_only`) has
/// the controller store and apply the result.
async fn alter_topic(
    context: &ShardContext,
    name: &str,
    configs: &[kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
    validate_only: bool,
) -> Result<(), Refusal> {
    let keys: BTreeSet<&str> = configs.iter().map(|config| config.name.as_str()).collect();
    if keys.len() != configs.len() {
        return Err(invalid_request("Error due to duplicate config keys".to_string()));
    }
    let catalog = context.catalog();
    if catalog.partitions(name).is_none() {
        return Err(config_support::unknown_topic(name));
    }
    let mut next = catalog.configs(name).clone();
    for config in configs {
        let key = config.name.as_str();
        let value = config.value.as_ref().map_or("", |value| value.as_str());
        let refused = |error: topic::TopicConfigError| (ResponseError::InvalidConfig, Some(error.to_string()));
        match config.config_operation {
            OPERATION_SET => {
                next.insert(key.to_string(), topic::check(key, value).map_err(refused)?);
            }
            OPERATION_DELETE => {
                next.remove(key);
            }
            OPERATION_APPEND | OPERATION_SUBTRACT => {
                let Some(known) = topic::topic_key(key) else {
                    // Unknown or not honoured: the same refusal a SET gets.
                    return Err(refused(topic::check(key, value).expect_err("not a key Skua takes")));
                };
                let append = config.config_operation == OPERATION_APPEND;
                if known.kind != topic::ConfigType::List {
                    return Err(config_support::not_a_list(key, append));
                }
                let current = match next.get(key) {
                    Some(value) => value.clone(),
                    None => topic::describe(&context.config, &catalog.broker_configs, &next)
                        .into_iter()
                        .find(|described| described.name == key)
                        .map(|described| described.value)
                        .unwrap_or_default(),
                };
                let items = config_support::list_operation(&current, value, append);
                next.insert(key.to_string(), topic::check(key, &items).map_err(refused)?);
            }
            // Kafka fails on an operation it does not know with no message.
            _ => return Err((ResponseError::UnknownServerError, None)),
        }
    }
    topic::check_together(&context.config, &catalog.broker_configs, &next)
        .map_err(|error| (ResponseError::InvalidConfig, Some(error.to_string())))?;
    if validate_only || next == *catalog.configs(name) {
        return Ok(());
    }
    controller::alter_topic_configs(context, name, next, false).await.map_err(config_support::controller_refusal)
}

/// A broker resource's operations on its dynamic configs (name "": the cluster-wide default, else
/// this broker's own), then (unless `validate_only`) stored and applied through the controller.
/// Kafka answers a bad value INVALID_REQUEST for a broker (INVALID_CONFIG for a topic).
async fn alter_broker(
    context: &ShardContext,
    name: &str,
    configs: &[kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
    validate_only: bool,
) -> Result<(), Refusal> {
    let keys: BTreeSet<&str> = configs.iter().map(|config| config.name.as_str()).collect();
    if keys.len() != configs.len() {
        return Err(invalid_request("Error due to duplicate config keys".to_string()));
    }
    let default = name.is_empty();
    if !default {
        config_support::check_node(context.config.node_id, name, "Unexpected broker id, expected")?;
    }
    let catalog = context.catalog();
    let current = if default { &catalog.broker_configs.default } else { &catalog.broker_configs.own };
    let mut next = current.clone();
    let checked = |key: &str, value: &str| dynamic::check(key, value).map_err(config_support::broker_refusal);
    for config in configs {
        let key = config.name.as_str();
        let value = config.value.as_ref().map_or("", |value| value.as_str());
        match config.config_operation {
            OPERATION_SET => {
                next.insert(key.to_string(), checked(key, value)?);
            }
            OPERATION_DELETE => {
                next.remove(key);
            }
            OPERATION_APPEND | OPERATION_SUBTRACT => {
                if !dynamic::is_dynamic(key) {
                    return Err(config_support::not_dynamic(key));
                }
                let append = config.config_operation == OPERATION_APPEND;
                if key != "log.cleanup.policy" {
                    return Err(config_support::not_a_list(key, append));
                }
                let current = next.get(key).map_or("delete", String::as_str);
                let items = config_support::list_operation(current, value, append);
                next.insert(key.to_string(), checked(key, &items)?);
            }
            _ => return Err((ResponseError::UnknownServerError, None)),
        }
    }
    if validate_only || next == *current {
        return Ok(());
    }
    controller::alter_broker_configs(context, default, next, false).await.map_err(config_support::controller_refusal)
}

/// A resource other than a topic: nothing to change (Ok) or why its changes are refused.
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
        RESOURCE_BROKER_LOGGER => {
            config_support::check_node(context.config.node_id, name, "Unexpected node id. Expected")?;
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
