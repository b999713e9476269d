//! The controller: the one place that changes the topic catalog and hands out producer ids.
//!
//! Owns: creating, growing and deleting topics across shards, all or nothing across a crash:
//! each shard opens the partitions it owns, then the topic's manifest is written (the commit
//! point, `manifest.rs`), then the catalog is published; a deletion removes the manifest first.
//! A failure before the commit point removes every partition directory the operation made. Also
//! the durable producer id counter, and Kafka's name-collision rule ('.' and '_'). It
//! runs as one task on [`CONTROLLER_SHARD`], taking commands one at a time, so two creations of
//! one topic can never interleave. Any shard reaches it through a bounded queue.
//!
//! Not on the data path: produce and fetch never wait for the controller, except produce and
//! metadata when they auto-create a topic.

use std::rc::Rc;

use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;
use kafka_protocol::ResponseError;

use crate::catalog::manifest::{ManifestError, TopicManifests};
use crate::catalog::producer_ids::ProducerIds;
use crate::catalog::valid_topic_name;
use crate::codec::errors;
use crate::limits::PARTITIONS_PER_TOPIC_MAX;
use crate::runtime::context::{Pending, ShardContext};

/// The shard that runs the controller (topic catalog changes, producer id allocation).
pub const CONTROLLER_SHARD: usize = 0;

/// A Kafka error code and message for the client.
pub type ControlError = (i16, String);

#[derive(Debug)]
pub enum ControlCommand {
    /// `auto`: an auto-creation (Metadata or Produce naming an unknown topic), which answers a
    /// name collision as Kafka's Metadata does (UNKNOWN_TOPIC_OR_PARTITION).
    CreateTopic {
        name: String,
        partitions: i32,
        validate_only: bool,
        auto: bool,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    AddPartitions {
        name: String,
        count: i32,
        validate_only: bool,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    DeleteTopic {
        name: String,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    AllocateProducerId {
        reply: oneshot::Sender<std::io::Result<i64>>,
    },
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
    ask(context, |reply| ControlCommand::CreateTopic {
        name: name.to_string(),
        partitions,
        validate_only,
        auto: false,
        reply,
    })
    .await
}

/// Creates `name` with `num.partitions` unless it exists (a concurrent creation is fine).
pub async fn auto_create_topic(context: &ShardContext, name: &str) -> Result<(), ControlError> {
    let partitions = context.config.num_partitions;
    let created = ask(context, |reply| ControlCommand::CreateTopic {
        name: name.to_string(),
        partitions,
        validate_only: false,
        auto: true,
        reply,
    })
    .await;
    match created {
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
    let mut manifests = TopicManifests::new(&context.config.data_dir);
    while let Some(command) = commands.next().await {
        match command {
            ControlCommand::CreateTopic { name, partitions, validate_only, auto, reply } => {
                let _ = reply.send(create(&context, &mut manifests, &name, partitions, validate_only, auto).await);
            }
            ControlCommand::AddPartitions { name, count, validate_only, reply } => {
                let _ = reply.send(grow(&context, &mut manifests, &name, count, validate_only).await);
            }
            ControlCommand::DeleteTopic { name, reply } => {
                let _ = reply.send(delete(&context, &mut manifests, &name).await);
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
                    .state
                    .borrow_mut()
                    .open_partitions(&topic, &list)
                    .map_err(|error| (errors::replica_error_code(&error), error.to_string()));
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

fn storage_error(error: &ManifestError) -> ControlError {
    tracing::error!(%error, "topic manifest");
    (errors::code(ResponseError::KafkaStorageError), error.to_string())
}

/// Kafka's metric names turn '.' into '_', so two topics that differ only there collide: the
/// existing topic `name` would collide with, if any.
pub fn colliding_topic<'a>(existing: impl IntoIterator<Item = &'a String>, name: &str) -> Option<&'a String> {
    if !name.contains(['.', '_']) {
        return None;
    }
    let unified = name.replace('.', "_");
    existing.into_iter().find(|topic| topic.as_str() != name && topic.replace('.', "_") == unified)
}

/// Undoes what a failed create or grow made: this operation's partitions on every shard, then any
/// directory of them a shard could not open (and so does not know about).
async fn undo_partitions(context: &Rc<ShardContext>, manifests: &mut TopicManifests, name: &str, from: i32) {
    if let Err(error) = delete_everywhere(context, name, from).await {
        tracing::error!(topic = %name, %error, "could not undo a failed topic change on every shard");
    }
    if let Err(error) = manifests.remove_partition_dirs(name, from) {
        tracing::error!(topic = %name, %error, "could not remove the partition directories of a failed topic change; the next start removes them");
    }
}

async fn create(
    context: &Rc<ShardContext>,
    manifests: &mut TopicManifests,
    name: &str,
    partitions: i32,
    validate_only: bool,
    auto: bool,
) -> Result<(), ControlError> {
    valid_topic_name(name).map_err(|message| (errors::code(ResponseError::InvalidTopicException), message))?;
    if name == crate::coordinators::groups::OFFSETS_TOPIC {
        return Err((errors::code(ResponseError::InvalidTopicException), format!("{name} is internal")));
    }
    let catalog = context.catalog();
    if catalog.partitions(name).is_some() {
        return Err((errors::code(ResponseError::TopicAlreadyExists), format!("Topic '{name}' already exists.")));
    }
    let offsets_topic = crate::coordinators::groups::OFFSETS_TOPIC.to_string();
    if let Some(existing) = colliding_topic(catalog.topics.keys().chain([&offsets_topic]), name) {
        let code = if auto { ResponseError::UnknownTopicOrPartition } else { ResponseError::InvalidTopicException };
        return Err((errors::code(code), format!("Topic '{name}' collides with existing topic: {existing}")));
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
    // Directories of this name without a committed topic are leftovers of an earlier failure (a
    // deletion that could not remove them): a new topic starts empty.
    match manifests.remove_partition_dirs(name, 0) {
        Ok(0) => {}
        Ok(removed) => {
            tracing::warn!(topic = %name, removed, "removed leftover partition directories before creating the topic")
        }
        Err(error) => return Err(storage_error(&error)),
    }
    let opened = open_everywhere(context, name, 0..partitions).await;
    // The commit point: until the manifest is written, a crash leaves only leftovers.
    let committed = opened.and_then(|()| manifests.commit(name, partitions).map_err(|error| storage_error(&error)));
    if let Err(error) = committed {
        // A manifest write can fail after its rename (the directory fsync): take it back too, or
        // the next start would find a topic without directories and refuse to start.
        if let Err(error) = manifests.remove(name) {
            tracing::error!(topic = %name, %error, "could not take back the manifest of a failed create");
        }
        undo_partitions(context, manifests, name, 0).await;
        return Err(error);
    }
    context.shared_catalog().publish(|catalog| {
        catalog.topics.insert(name.to_string(), partitions);
    });
    tracing::info!(topic = %name, partitions, "created topic");
    Ok(())
}

async fn grow(
    context: &Rc<ShardContext>,
    manifests: &mut TopicManifests,
    name: &str,
    count: i32,
    validate_only: bool,
) -> Result<(), ControlError> {
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
    let opened = open_everywhere(context, name, existing..count).await;
    let committed = opened.and_then(|()| manifests.commit(name, count).map_err(|error| storage_error(&error)));
    if let Err(error) = committed {
        if let Err(error) = manifests.commit(name, existing) {
            tracing::error!(topic = %name, %error, "could not restore the manifest of a failed grow");
        }
        undo_partitions(context, manifests, name, existing).await;
        return Err(error);
    }
    context.shared_catalog().publish(|catalog| {
        catalog.topics.insert(name.to_string(), count);
    });
    tracing::info!(topic = %name, from = existing, to = count, "added partitions");
    Ok(())
}

/// Deletes the partitions of `name` numbered `from` and up on every shard.
async fn delete_everywhere(context: &Rc<ShardContext>, name: &str, from: i32) -> anyhow::Result<()> {
    let mut pending: Vec<Pending<()>> = Vec::new();
    for shard in 0..context.count {
        let topic = name.to_string();
        pending.push(
            context
                .submit(shard, move |shard_context| {
                    shard_context.state.borrow_mut().delete_partitions(&topic, from);
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

async fn delete(context: &Rc<ShardContext>, manifests: &mut TopicManifests, name: &str) -> Result<(), ControlError> {
    if context.catalog().partitions(name).is_none() {
        return Err((errors::code(ResponseError::UnknownTopicOrPartition), format!("unknown topic {name:?}")));
    }
    // The commit point: once the manifest is gone, a restart removes whatever directories are left.
    manifests.remove(name).map_err(|error| storage_error(&error))?;
    // Unpublish next so no new request is routed to the partitions being deleted.
    context.shared_catalog().publish(|catalog| {
        catalog.topics.remove(name);
    });
    delete_everywhere(context, name, 0)
        .await
        .map_err(|error| (errors::code(ResponseError::UnknownServerError), error.to_string()))?;
    if let Err(error) = manifests.remove_partition_dirs(name, 0) {
        tracing::error!(topic = %name, %error, "could not remove every partition directory of a deleted topic; the next start removes them");
    }
    tracing::info!(topic = %name, "deleted topic");
    Ok(())
}
