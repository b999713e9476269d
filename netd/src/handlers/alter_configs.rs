//! AlterConfigs (key 33), versions 0–2: Kafka's older, non-incremental config change (kafka-python's
//! `alter_configs` and older admin clients send it). A topic resource's configs replace the
//! topic's own configs whole: each value checked as `config::topic` checks it (a null value is
//! refused as Kafka refuses it), the first refusal answers for the resource and changes nothing.
//! `validate_only` checks and changes nothing. Brokers (name "": the cluster-wide default, else
//! this broker's id): the dynamic broker configs are replaced the same way (`config::dynamic`).

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ApiKey};
use kafka_protocol::ResponseError;

use super::config_support::{self, Refusal};
use super::str_bytes;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::config::{dynamic, topic};
use crate::runtime::context::ShardContext;
use crate::runtime::controller;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

pub async fn handle(context: &ShardContext, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: AlterConfigsRequest = decode_body(frame)?;
    let mut response = AlterConfigsResponse::default();
    let repeated = config_support::repeated_resources(
        request.resources.iter().map(|resource| (resource.resource_type, resource.resource_name.as_str())),
    );
    for resource in &request.resources {
        let name = resource.resource_name.as_str();
        let configs = resource.configs.iter().map(|config| (config.name.as_str(), config.value.as_deref()));
        let outcome = if repeated.contains(&(resource.resource_type, name)) {
            Err(config_support::repeated_resource())
        } else {
            match resource.resource_type {
                RESOURCE_TOPIC => replace_topic_configs(context, name, configs, request.validate_only).await,
                RESOURCE_BROKER => replace_broker_configs(context, name, configs, request.validate_only).await,
                other => Err((ResponseError::InvalidRequest, Some(format!("Unknown resource type {other}")))),
            }
        };
        let mut answer = AlterConfigsResourceResponse::default();
        answer.resource_type = resource.resource_type;
        answer.resource_name = resource.resource_name.clone();
        answer.error_message = None;
        if let Err((error, message)) = outcome {
            answer.error_code = error.code();
            answer.error_message = message.as_deref().map(str_bytes);
        }
        response.responses.push(answer);
    }
    encode_response(ApiKey::AlterConfigs, frame.api_version, frame.correlation_id, &response)
}

/// Replaces the dynamic configs of broker `name` ("": the cluster-wide default) with `configs`,
/// checked (a bad value is INVALID_REQUEST for a broker, as in Kafka).
async fn replace_broker_configs<'a>(
    context: &ShardContext,
    name: &str,
    configs: impl Iterator<Item = (&'a str, Option<&'a str>)>,
    validate_only: bool,
) -> Result<(), Refusal> {
    let default = name.is_empty();
    if !default {
        config_support::check_node(context.config.node_id, name, "Unexpected broker id, expected")?;
    }
    let mut next = BTreeMap::new();
    for (key, value) in configs {
        let Some(value) = value else {
            return Err((ResponseError::InvalidRequest, Some(format!("Null value not supported for : {key}"))));
        };
        let checked = dynamic::check(key, value).map_err(config_support::broker_refusal)?;
        next.insert(key.to_string(), checked);
    }
    let catalog = context.catalog();
    let current = if default { &catalog.broker_configs.default } else { &catalog.broker_configs.own };
    if validate_only || next == *current {
        return Ok(());
    }
    controller::alter_broker_configs(context, default, next, false).await.map_err(config_support::controller_refusal)
}

/// Replaces the own configs of topic `name` with `configs`, checked.
async fn replace_topic_configs<'a>(
    context: &ShardContext,
    name: &str,
    configs: impl Iterator<Item = (&'a str, Option<&'a str>)>,
    validate_only: bool,
) -> Result<(), Refusal> {
    if context.catalog().partitions(name).is_none() {
        return Err(config_support::unknown_topic(name));
    }
    let mut next = BTreeMap::new();
    for (key, value) in configs {
        let Some(value) = value else {
            return Err((ResponseError::InvalidRequest, Some(format!("Null value not supported for : {key}"))));
        };
        let checked =
            topic::check(key, value).map_err(|error| (ResponseError::InvalidConfig, Some(error.to_string())))?;
        next.insert(key.to_string(), checked);
    }
    topic::check_together(&context.config, &context.catalog().broker_configs, &next)
        .map_err(|error| (ResponseError::InvalidConfig, Some(error.to_string())))?;
    if validate_only || next == *context.catalog().configs(name) {
        return Ok(());
    }
    controller::alter_topic_configs(context, name, next, false).await.map_err(config_support::controller_refusal)
}
