//! IncrementalAlterConfigs (key 44), versions 0–1, as far as Skua goes today: it holds no
//! dynamic configs (changing a config at runtime is issue 16), so deleting a config that is not
//! set succeeds and changes nothing, as in Kafka, and every other change is refused per resource
//! with INVALID_CONFIG and a message that says so. That is what `kafka-reassign-partitions
//! --verify` needs: it clears the replication throttles (`*.replication.throttled.*`) of every
//! broker and moved topic once a reassignment completes, and Skua sets none.
//!
//! Resources: a topic (UNKNOWN_TOPIC_OR_PARTITION if it does not exist; a config it was created
//! with cannot be deleted yet) or a broker (the cluster default `""` or a broker id); broker
//! loggers and other types are INVALID_REQUEST, as Kafka answers an unexpected type.

use bytes::Bytes;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::ResponseError;

use super::str_bytes;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Kafka's `AlterConfigOp.OpType.DELETE`.
const OPERATION_DELETE: i8 = 1;

pub fn handle(context: &ShardContext, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: IncrementalAlterConfigsRequest = decode_body(frame)?;
    let mut response = IncrementalAlterConfigsResponse::default();
    for resource in &request.resources {
        let name = resource.resource_name.as_str();
        let outcome = check(context, resource.resource_type, name, &resource.configs);
        let mut answer = AlterConfigsResourceResponse::default();
        answer.resource_type = resource.resource_type;
        answer.resource_name = resource.resource_name.clone();
        if let Err((error, message)) = outcome {
            answer.error_code = error.code();
            answer.error_message = Some(str_bytes(&message));
        }
        response.responses.push(answer);
    }
    encode_response(ApiKey::IncrementalAlterConfigs, frame.api_version, frame.correlation_id, &response)
}

/// Nothing to change (Ok) or why the resource's changes are refused.
fn check(
    context: &ShardContext,
    resource_type: i8,
    name: &str,
    configs: &[kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
) -> Result<(), (ResponseError, String)> {
    // The configs this resource has set, which a DELETE would have to remove.
    let set: Vec<String> = match resource_type {
        RESOURCE_TOPIC => {
            if context.catalog().partitions(name).is_none() {
                return Err((ResponseError::UnknownTopicOrPartition, format!("The topic '{name}' does not exist.")));
            }
            context
                .image()
                .and_then(|image| image.topic(name).map(|topic| topic.configs.keys().cloned().collect()))
                .unwrap_or_default()
        }
        RESOURCE_BROKER => {
            if !name.is_empty() && name.parse::<i32>().is_err() {
                return Err((ResponseError::InvalidRequest, format!("Invalid broker id {name:?}")));
            }
            Vec::new()
        }
        other => return Err((ResponseError::InvalidRequest, format!("Unexpected resource type {other}"))),
    };
    for config in configs {
        let key = config.name.as_str();
        if config.config_operation != OPERATION_DELETE || set.iter().any(|name| name == key) {
            return Err((
                ResponseError::InvalidConfig,
                format!("Skua does not change configs at runtime yet (cannot change {key}); set them at creation"),
            ));
        }
    }
    Ok(())
}
