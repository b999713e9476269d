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
//! Failures are [`TopicError`]s and [`ProducerIdError`]s; which Kafka code a client sees for
//! one is decided in `codec/errors.rs`, not here.
//!
//! Not on the data path: produce and fetch never wait for the controller, except produce and
//! metadata when they auto-create a topic.

use std::rc::Rc;

use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;

use crate::catalog::manifest::{ManifestError, TopicManifests};
use crate::catalog::producer_ids::ProducerIds;
use crate::catalog::valid_topic_name;
use crate::codec::errors::{ProducerIdError, TopicError};
use crate::limits::PARTITIONS_PER_TOPIC_MAX;
use crate::runtime::context::{Pending, ShardContext};

/// The shard that runs the controller (topic catalog changes, producer id allocation).
pub const CONTROLLER_SHARD: usize = 0;

#[derive(Debug)]
pub enum ControlCommand {
    CreateTopic { name: String, partitions: i32, validate_only: bool, reply: oneshot::Sender<Result<(), TopicError>> },
    AddPartitions { name: String, count: i32, validate_only: bool, reply: oneshot::Sender<Result<(), TopicError>> },
    DeleteTopic { name: String, reply: oneshot::Sender<Result<(), TopicError>> },
    AllocateProducerId { reply: oneshot::Sender<std::io::Result<i64>> },
}

async fn ask<T>(
    context: &ShardContext,
    make: impl FnOnce(oneshot::Sender<Result<T, TopicError>>) -> ControlCommand,
) -> Result<T, TopicError> {
    let (reply, result) = oneshot::channel();
    context.send_control(make(reply)).await.map_err(|_| TopicError::Stopped)?;
    result.await.unwrap_or(Err(TopicError::Stopped))
}

pub async fn create_topic(
    context: &ShardContext,
    name: &str,
    partitions: i32,
    validate_only: bool,
) -> Result<(), TopicError> {
    ask(context, |reply| ControlCommand::CreateTopic { name: name.to_string(), partitions, validate_only, reply }).await
}

/// Creates `name` with `num.partitions` unless it exists (a concurrent creation is fine). The
/// caller answers a failure as an auto-creation (`errors::auto_create_error_code`).
pub async fn auto_create_topic(context: &ShardContext, name: &str) -> Result<(), TopicError> {
    match create_topic(context, name, context.config.num_partitions, false).await {
        Err(TopicError::AlreadyExists { .. }) => Ok(()),
        other => other,
    }
}

pub async fn add_partitions(
    context: &ShardContext,
    name: &str,
    count: i32,
    validate_only: bool,
) -> Result<(), TopicError> {
    ask(context, |reply| ControlCommand::AddPartitions { name: name.to_string(), count, validate_only, reply }).await
}

pub async fn delete_topic(context: &ShardContext, name: &str) -> Result<(), TopicError> {
    ask(context, |reply| ControlCommand::DeleteTopic { name: name.to_string(), reply }).await
}

pub async fn allocate_producer_id(context: &ShardContext) -> Result<i64, ProducerIdError> {
    let (reply, result) = oneshot::channel();
    context.send_control(ControlCommand::AllocateProducerId { reply }).await.map_err(|_| ProducerIdError::Stopped)?;
    match result.await {
        Ok(allocated) => Ok(allocated?),
        Err(_) => Err(ProducerIdError::Stopped),
    }
}

/// The controller task. Runs until every sender is gone.
pub async fn run(context: Rc<ShardContext>, mut commands: mpsc::Receiver<ControlCommand>, mut ids: ProducerIds) {
    let mut manifests = TopicManifests::new(&context.config.data_dir);
    while let Some(command) = commands.next().await {
        match command {
            ControlCommand::CreateTopic { name, partitions, validate_only, reply } => {
                let _ = reply.send(create(&context, &mut manifests, &name, partitions, validate_only).await);
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
) -> Result<(), TopicError> {
    let mut per_shard: Vec<Vec<i32>> = vec![Vec::new(); context.count];
    for partition in partitions {
        per_shard[context.owner_of(topic, partition)].push(partition);
    }
    let mut pending: Vec<Pending<Result<(), TopicError>>> = Vec::new();
    for (shard, list) in per_shard.into_iter().enumerate().filter(|(_, list)| !list.is_empty()) {
        let topic = topic.to_string();
        let submitted = context
            .submit(shard, move |shard_context| {
                let result =
                    shard_context.state.borrow_mut().open_partitions(&topic, &list).map_err(TopicError::Partition);
                Box::pin(std::future::ready(result))
            })
            .await
            .map_err(TopicError::Shard)?;
        pending.push(submitted);
    }
    let mut outcome = Ok(());
    for result in pending {
        match result.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => outcome = Err(error),
            Err(error) => outcome = Err(TopicError::Shard(error)),
        }
    }
    outcome
}

fn storage_error(error: ManifestError) -> TopicError {
    tracing::error!(%error, "topic manifest");
    TopicError::Storage(Box::new(error))
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
) -> Result<(), TopicError> {
    valid_topic_name(name).map_err(TopicError::InvalidName)?;
    if name == crate::coordinators::groups::OFFSETS_TOPIC {
        return Err(TopicError::Internal { name: name.to_string() });
    }
    let catalog = context.catalog();
    if catalog.partitions(name).is_some() {
        return Err(TopicError::AlreadyExists { name: name.to_string() });
    }
    let offsets_topic = crate::coordinators::groups::OFFSETS_TOPIC.to_string();
    if let Some(existing) = colliding_topic(catalog.topics.keys().chain([&offsets_topic]), name) {
        return Err(TopicError::Collision { name: name.to_string(), existing: existing.clone() });
    }
    if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&partitions) {
        return Err(TopicError::PartitionCountOutOfRange { count: partitions });
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
        Err(error) => return Err(storage_error(error)),
    }
    let opened = open_everywhere(context, name, 0..partitions).await;
    // The commit point: until the manifest is written, a crash leaves only leftovers.
    let committed = opened.and_then(|()| manifests.commit(name, partitions).map_err(storage_error));
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
) -> Result<(), TopicError> {
    let Some(existing) = context.catalog().partitions(name) else {
        return Err(TopicError::UnknownTopic { name: name.to_string() });
    };
    if count <= existing || count > PARTITIONS_PER_TOPIC_MAX {
        return Err(TopicError::PartitionCountNotLarger { name: name.to_string(), existing, count });
    }
    if validate_only {
        return Ok(());
    }
    let opened = open_everywhere(context, name, existing..count).await;
    let committed = opened.and_then(|()| manifests.commit(name, count).map_err(storage_error));
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

async fn delete(context: &Rc<ShardContext>, manifests: &mut TopicManifests, name: &str) -> Result<(), TopicError> {
    if context.catalog().partitions(name).is_none() {
        return Err(TopicError::UnknownTopic { name: name.to_string() });
    }
    // The commit point: once the manifest is gone, a restart removes whatever directories are left.
    manifests.remove(name).map_err(storage_error)?;
    // Unpublish next so no new request is routed to the partitions being deleted.
    context.shared_catalog().publish(|catalog| {
        catalog.topics.remove(name);
    });
    delete_everywhere(context, name, 0).await.map_err(TopicError::Shard)?;
    if let Err(error) = manifests.remove_partition_dirs(name, 0) {
        tracing::error!(topic = %name, %error, "could not remove every partition directory of a deleted topic; the next start removes them");
    }
    tracing::info!(topic = %name, "deleted topic");
    Ok(())
}
