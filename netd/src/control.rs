//! The controller: the one place that changes the topic catalog and hands out producer ids.
//!
//! Owns: creating, growing and deleting topics across shards (each shard opens or deletes the
//! partitions it owns, then the catalog is published), and the durable producer id counter. It
//! runs as one task on [`CONTROLLER_SHARD`], taking commands one at a time, so two creations of
//! one topic can never interleave. Any shard reaches it through a bounded queue.
//!
//! Not on the data path: produce and fetch never wait for the controller, except produce and
//! metadata when they auto-create a topic.

use std::rc::Rc;

use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;
use kafka_protocol::ResponseError;

use crate::broker::{valid_topic_name, PARTITIONS_PER_TOPIC_MAX};
use crate::errors;
use crate::producers::ProducerIds;
use crate::shards::{Pending, ShardContext};

/// A Kafka error code and message for the client.
pub type ControlError = (i16, String);

#[derive(Debug)]
pub enum ControlCommand {
    CreateTopic { name: String, partitions: i32, validate_only: bool, reply: oneshot::Sender<Result<(), ControlError>> },
    AddPartitions { name: String, count: i32, validate_only: bool, reply: oneshot::Sender<Result<(), ControlError>> },
    DeleteTopic { name: String, reply: oneshot::Sender<Result<(), ControlError>> },
    AllocateProducerId { reply: oneshot::Sender<std::io::Result<i64>> },
}

fn stopped() -> ControlError {
    (errors::code(ResponseError::UnknownServerError), "the controller has stopped".to_string())
}

async fn ask<T>(
    context: &ShardContext,
    make: impl FnOnce(oneshot::Sender<Result<T, ControlError>>) -> ControlCommand,
) -> Result<T, ControlError> {
    let (reply, result) = oneshot::channel();
    context.send_control(make(reply)).await.map_err(|_| stopped())?;
    result.await.unwrap_or_else(|_| Err(stopped()))
}

pub async fn create_topic(
    context: &ShardContext,
    name: &str,
    partitions: i32,
    validate_only: bool,
) -> Result<(), ControlError> {
    ask(context, |reply| ControlCommand::CreateTopic { name: name.to_string(), partitions, validate_only, reply }).await
}

/// Creates `name` with `num.partitions` unless it exists (a concurrent creation is fine).
pub async fn auto_create_topic(context: &ShardContext, name: &str) -> Result<(), ControlError> {
    match create_topic(context, name, context.config.num_partitions, false).await {
        Err((code, _)) if code == errors::code(ResponseError::TopicAlreadyExists) => Ok(()),
        other => other,
    }
}

pub async fn add_partitions(
    context: &ShardContext,
    name: &str,
    count: i32,
    validate_only: bool,
) -> Result<(), ControlError> {
    ask(context, |reply| ControlCommand::AddPartitions { name: name.to_string(), count, validate_only, reply }).await
}

pub async fn delete_topic(context: &ShardContext, name: &str) -> Result<(), ControlError> {
    ask(context, |reply| ControlCommand::DeleteTopic { name: name.to_string(), reply }).await
}

pub async fn allocate_producer_id(context: &ShardContext) -> std::io::Result<i64> {
    let (reply, result) = oneshot::channel();
    context
        .send_control(ControlCommand::AllocateProducerId { reply })
        .await
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    result.await.unwrap_or_else(|_| Err(std::io::Error::other("the controller has stopped")))
}

/// The controller task. Runs until every sender is gone.
pub async fn run(context: Rc<ShardContext>, mut commands: mpsc::Receiver<ControlCommand>, mut ids: ProducerIds) {
    while let Some(command) = commands.next().await {
        match command {
            ControlCommand::CreateTopic { name, partitions, validate_only, reply } => {
                let _ = reply.send(create(&context, &name, partitions, validate_only).await);
            }
            ControlCommand::AddPartitions { name, count, validate_only, reply } => {
                let _ = reply.send(grow(&context, &name, count, validate_only).await);
            }
            ControlCommand::DeleteTopic { name, reply } => {
                let _ = reply.send(delete(&context, &name).await);
            }
            ControlCommand::AllocateProducerId { reply } => {
                let _ = reply.send(ids.allocate());
            }
        }
    }
}

/// Opens `partitions` of `topic` on the shards that own them, all shards in parallel.
async fn open_everywhere(
    context: &Rc<ShardContext>,
    topic: &str,
    partitions: std::ops::Range<i32>,
) -> Result<(), ControlError> {
    let mut per_shard: Vec<Vec<i32>> = vec![Vec::new(); context.count];
    for partition in partitions {
        per_shard[context.owner_of(topic, partition)].push(partition);
    }
    let mut pending: Vec<Pending<Result<(), ControlError>>> = Vec::new();
    for (shard, list) in per_shard.into_iter().enumerate().filter(|(_, list)| !list.is_empty()) {
        let topic = topic.to_string();
        let submitted = context
            .submit(shard, move |shard_context| {
                let result = shard_context
                    .broker
                    .borrow_mut()
                    .open_partitions(&topic, &list)
                    .map_err(|error| (errors::engine_error_code(&error), error.to_string()));
                Box::pin(std::future::ready(result))
            })
            .await
            .map_err(|error| (errors::code(ResponseError::UnknownServerError), error.to_string()))?;
        pending.push(submitted);
    }
    let mut outcome = Ok(());
    for result in pending {
        match result.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => outcome = Err(error),
            Err(error) => outcome = Err((errors::code(ResponseError::UnknownServerError), error.to_string())),
        }
    }
    outcome
}

async fn create(
    context: &Rc<ShardContext>,
    name: &str,
    partitions: i32,
    validate_only: bool,
) -> Result<(), ControlError> {
    valid_topic_name(name).map_err(|message| (errors::code(ResponseError::InvalidTopicException), message))?;
    if name == crate::groups::OFFSETS_TOPIC {
        return Err((errors::code(ResponseError::InvalidTopicException), format!("{name} is internal")));
    }
    if context.catalog().partitions(name).is_some() {
        return Err((errors::code(ResponseError::TopicAlreadyExists), format!("topic {name:?} already exists")));
    }
    if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&partitions) {
        return Err((
            errors::code(ResponseError::InvalidPartitions),
            format!("partition count must be in 1..={PARTITIONS_PER_TOPIC_MAX}"),
        ));
    }
    if validate_only {
        return Ok(());
    }
    if let Err(error) = open_everywhere(context, name, 0..partitions).await {
        // Do not leave half a topic behind: remove what was opened.
        let _ = delete_everywhere(context, name).await;
        return Err(error);
    }
    context.shared_catalog().publish(|catalog| {
        catalog.topics.insert(name.to_string(), partitions);
    });
    tracing::info!(topic = %name, partitions, "created topic");
    Ok(())
}

async fn grow(context: &Rc<ShardContext>, name: &str, count: i32, validate_only: bool) -> Result<(), ControlError> {
    let Some(existing) = context.catalog().partitions(name) else {
        return Err((errors::code(ResponseError::UnknownTopicOrPartition), format!("unknown topic {name:?}")));
    };
    if count <= existing || count > PARTITIONS_PER_TOPIC_MAX {
        return Err((
            errors::code(ResponseError::InvalidPartitions),
            format!("topic {name:?} has {existing} partitions; the new count must be larger and at most {PARTITIONS_PER_TOPIC_MAX}"),
        ));
    }
    if validate_only {
        return Ok(());
    }
    open_everywhere(context, name, existing..count).await?;
    context.shared_catalog().publish(|catalog| {
        catalog.topics.insert(name.to_string(), count);
    });
    tracing::info!(topic = %name, from = existing, to = count, "added partitions");
    Ok(())
}

async fn delete_everywhere(context: &Rc<ShardContext>, name: &str) -> anyhow::Result<()> {
    let mut pending: Vec<Pending<()>> = Vec::new();
    for shard in 0..context.count {
        let topic = name.to_string();
        pending.push(
            context
                .submit(shard, move |shard_context| {
                    shard_context.broker.borrow_mut().delete_partitions(&topic);
                    Box::pin(std::future::ready(()))
                })
                .await?,
        );
    }
    for result in pending {
        result.await?;
    }
    Ok(())
}

async fn delete(context: &Rc<ShardContext>, name: &str) -> Result<(), ControlError> {
    if context.catalog().partitions(name).is_none() {
        return Err((errors::code(ResponseError::UnknownTopicOrPartition), format!("unknown topic {name:?}")));
    }
    // Unpublish first so no new request is routed to the partitions being deleted.
    context.shared_catalog().publish(|catalog| {
        catalog.topics.remove(name);
    });
    delete_everywhere(context, name)
        .await
        .map_err(|error| (errors::code(ResponseError::UnknownServerError), error.to_string()))?;
    tracing::info!(topic = %name, "deleted topic");
    Ok(())
}
