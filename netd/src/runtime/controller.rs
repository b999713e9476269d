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

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;

use cluster::controller::NewTopic;
use cluster::image::MetadataImage;
use cluster::quorum::{ControllerReply, ControllerRequest, RequestError};
use cluster::rpc::{RpcRequest, RpcResponse};
use cluster::{BrokerId, TopicId};
use engine::LeaderEpoch;
use replica::Role;

use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;

use crate::catalog::manifest::{ManifestError, TopicConfigs, TopicManifests};
use crate::catalog::producer_ids::ProducerIds;
use crate::catalog::valid_topic_name;
use crate::catalog::Catalog;
use crate::codec::errors::{ProducerIdError, TopicError};
use crate::config::dynamic::DynamicBrokerConfigs;
use crate::config::topic::TopicSettings;
use crate::limits::PARTITIONS_PER_TOPIC_MAX;
use crate::quorum::link::LinkError;
use crate::runtime::context::{Pending, ShardContext};
use crate::runtime::state::Assignment;

/// The shard that runs the controller (topic catalog changes, producer id allocation).
pub const CONTROLLER_SHARD: usize = 0;

#[derive(Debug)]
pub enum ControlCommand {
    CreateTopic {
        name: String,
        partitions: i32,
        /// The topic's own configs, checked (`config::topic::check_all`).
        configs: TopicConfigs,
        validate_only: bool,
        reply: oneshot::Sender<Result<(), TopicError>>,
    },
    /// One node: replace the dynamic broker configs (checked), durably, and apply them.
    AlterBrokerConfigs {
        configs: DynamicBrokerConfigs,
        reply: oneshot::Sender<Result<(), TopicError>>,
    },
    /// One node: replace a topic's own configs (checked) and apply them to its partitions.
    AlterTopicConfigs {
        name: String,
        configs: TopicConfigs,
        reply: oneshot::Sender<Result<(), TopicError>>,
    },
    AddPartitions {
        name: String,
        count: i32,
        validate_only: bool,
        reply: oneshot::Sender<Result<(), TopicError>>,
    },
    DeleteTopic {
        name: String,
        reply: oneshot::Sender<Result<(), TopicError>>,
    },
    AllocateProducerId {
        reply: oneshot::Sender<std::io::Result<i64>>,
    },
    /// In a cluster: make the local topics and partition roles match a new metadata image.
    ApplyImage(Arc<MetadataImage>),
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
    configs: TopicConfigs,
    validate_only: bool,
) -> Result<(), TopicError> {
    if context.quorum.is_some() {
        return cluster_create_topic(context, name, partitions, -1, Vec::new(), configs, validate_only).await;
    }
    ask(context, |reply| ControlCommand::CreateTopic {
        name: name.to_string(),
        partitions,
        configs,
        validate_only,
        reply,
    })
    .await
}

/// Replaces the dynamic broker configs of this broker (`default`: the cluster-wide default set,
/// else this broker's own) with `configs` (checked), durably, and applies them to every topic: on
/// one node through the controller task; in a cluster through the active controller's metadata
/// log, waiting (bounded) until this broker applied it.
pub async fn alter_broker_configs(
    context: &ShardContext,
    default: bool,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), TopicError> {
    if validate_only {
        return Ok(());
    }
    if context.quorum.is_some() {
        let broker = if default { None } else { Some(BrokerId(context.config.node_id)) };
        forward(context, ControllerRequest::AlterBrokerConfigs { broker, configs: configs.clone() }).await?;
        until_applied(context, |catalog| {
            let applied = if default { &catalog.broker_configs.default } else { &catalog.broker_configs.own };
            *applied == configs
        })
        .await;
        return Ok(());
    }
    let mut next = context.catalog().broker_configs.clone();
    if default {
        next.default = configs;
    } else {
        next.own = configs;
    }
    ask(context, |reply| ControlCommand::AlterBrokerConfigs { configs: next, reply }).await
}

/// Replaces the own configs of topic `name` with `configs` (checked), durably, and applies them
/// to its partitions: on one node through the controller task; in a cluster through the active
/// controller's metadata log, waiting (bounded) until this broker applied it. `validate_only`:
/// only checks that the topic exists.
pub async fn alter_topic_configs(
    context: &ShardContext,
    name: &str,
    configs: TopicConfigs,
    validate_only: bool,
) -> Result<(), TopicError> {
    if context.catalog().partitions(name).is_none() {
        return Err(TopicError::UnknownTopic { name: name.to_string() });
    }
    if validate_only {
        return Ok(());
    }
    if context.quorum.is_some() {
        // The active controller records them in the metadata log; every broker applies them.
        let request = ControllerRequest::AlterTopicConfigs { name: name.to_string(), configs: configs.clone() };
        forward(context, request).await?;
        until_applied(context, |catalog| *catalog.configs(name) == configs).await;
        return Ok(());
    }
    ask(context, |reply| ControlCommand::AlterTopicConfigs { name: name.to_string(), configs, reply }).await
}

/// In a cluster: asks the active controller to create a topic (replication factor -1: the
/// default; an explicit assignment takes neither a count nor a factor), then waits, bounded,
/// until this broker has applied it, so that the client's next request here finds it.
pub async fn cluster_create_topic(
    context: &ShardContext,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    assignment: Vec<Vec<BrokerId>>,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), TopicError> {
    check_new_name(name)?;
    check_no_collision(&context.catalog(), name)?;
    let topic = NewTopic {
        name: name.to_string(),
        id: TopicId(random_id()?),
        partitions: if assignment.is_empty() { partitions } else { -1 },
        replication_factor: if assignment.is_empty() { replication_factor } else { -1 },
        assignment,
        configs,
    };
    if validate_only {
        // The controller runs every check of the creation and commits nothing.
        return forward(context, ControllerRequest::ValidateTopic(topic)).await.map(|_| ());
    }
    forward(context, ControllerRequest::CreateTopic(topic)).await?;
    until_applied(context, |catalog| catalog.partitions(name).is_some()).await;
    Ok(())
}

/// In a cluster: the broker that coordinates `group` (Kafka's rule: the leader of the group's
/// `__consumer_offsets` partition), creating `__consumer_offsets` through the controller the
/// first time (`offsets.topic.num.partitions`, `offsets.topic.replication.factor`: with fewer
/// live brokers than that factor the creation fails, as in Kafka). None: no leader now.
pub async fn group_coordinator(context: &ShardContext, group: &str) -> Result<Option<BrokerId>, TopicError> {
    let link = context.quorum.as_ref().ok_or(TopicError::Stopped)?;
    let offsets = crate::coordinators::groups::OFFSETS_TOPIC;
    if link.image().topic(offsets).is_none() {
        let topic = NewTopic {
            name: offsets.to_string(),
            id: TopicId(random_id()?),
            partitions: context.config.offsets_partitions,
            replication_factor: context.config.offsets_replication_factor,
            assignment: Vec::new(),
            configs: BTreeMap::new(),
        };
        match forward(context, ControllerRequest::CreateTopic(topic)).await {
            Ok(_) | Err(TopicError::Controller(cluster::controller::ControllerError::TopicExists(_))) => {}
            Err(error) => return Err(error),
        }
        until_metadata_shows(|| link.image().topic(offsets).is_some()).await;
    }
    let image = link.image();
    let Some(topic) = image.topic(offsets) else { return Ok(None) };
    let partition = crate::catalog::offsets_partition(group, topic.partitions.len() as i32);
    Ok(topic.partitions.get(partition as usize).and_then(|state| state.leader))
}

/// In a cluster: the next producer id of this broker's block, fetching a new block from the active
/// controller when it runs out (a block is never handed out twice, across controller failover
/// too; ids of a block left unused when the broker restarts are skipped, as in Kafka).
async fn next_cluster_producer_id(context: &ShardContext, block: &mut std::ops::Range<u64>) -> std::io::Result<i64> {
    if block.is_empty() {
        let link = context.quorum.as_ref().ok_or_else(|| std::io::Error::other("no quorum link"))?;
        let epoch =
            link.broker_epoch().ok_or_else(|| std::io::Error::other("not registered with the controller yet"))?;
        let request = ControllerRequest::AllocateProducerIds { broker: link.node(), epoch };
        match forward(context, request).await {
            Ok(ControllerReply::ProducerIds(new)) => *block = new,
            Ok(other) => return Err(std::io::Error::other(format!("the controller answered {other:?}"))),
            Err(error) => return Err(std::io::Error::other(error.to_string())),
        }
    }
    let id = block.next().ok_or_else(|| std::io::Error::other("an empty producer id block"))?;
    i64::try_from(id).map_err(|_| std::io::Error::other("producer ids ran out"))
}

/// In a cluster: asks the active controller, mapping its refusals to [`TopicError`]s.
async fn forward(context: &ShardContext, request: ControllerRequest) -> Result<ControllerReply, TopicError> {
    let link = context.quorum.as_ref().ok_or(TopicError::Stopped)?;
    match link.ask(RpcRequest::Controller(request)).await {
        Ok(RpcResponse::Controller(Ok(reply))) => Ok(reply),
        Ok(RpcResponse::Controller(Err(RequestError::Refused(error)))) => Err(TopicError::Controller(error)),
        Ok(RpcResponse::Controller(Err(RequestError::NotController { .. })))
        | Err(LinkError::Unavailable | LinkError::Busy) => Err(TopicError::NoController),
        Err(LinkError::Stopped) => Err(TopicError::Stopped),
        Ok(other) => Err(TopicError::Shard(anyhow::anyhow!("the controller answered {other:?}"))),
    }
}

/// Waits until this broker's catalog satisfies `done` (the applier caught up with the change the
/// controller committed), at most [`crate::limits::METADATA_APPLY_WAIT_MS`].
async fn until_applied(context: &ShardContext, done: impl Fn(&Catalog) -> bool) {
    until_metadata_shows(|| done(&context.catalog())).await;
}

/// Polls `shown` until it holds, at most [`crate::limits::METADATA_APPLY_WAIT_MS`] (the client
/// retries metadata either way).
async fn until_metadata_shows(shown: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(crate::limits::METADATA_APPLY_WAIT_MS);
    while !shown() && std::time::Instant::now() < deadline {
        compio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A name a client may create a topic under: Kafka's rules, and not the internal offsets topic.
fn check_new_name(name: &str) -> Result<(), TopicError> {
    valid_topic_name(name).map_err(TopicError::InvalidName)?;
    if name == crate::coordinators::groups::OFFSETS_TOPIC {
        return Err(TopicError::Internal { name: name.to_string() });
    }
    Ok(())
}

/// Kafka's '.'/'_' collision rule against the catalog's topics and the offsets topic.
fn check_no_collision(catalog: &Catalog, name: &str) -> Result<(), TopicError> {
    let offsets_topic = crate::coordinators::groups::OFFSETS_TOPIC.to_string();
    match colliding_topic(catalog.topics.keys().chain([&offsets_topic]), name) {
        Some(existing) => Err(TopicError::Collision { name: name.to_string(), existing: existing.clone() }),
        None => Ok(()),
    }
}

/// 16 random bytes, never all zero (topic ids).
fn random_id() -> Result<[u8; 16], TopicError> {
    let mut bytes = crate::quorum::random_bytes().map_err(|error| TopicError::Storage(Box::new(error)))?;
    bytes[15] |= 1;
    Ok(bytes)
}

/// Creates `name` with `num.partitions` unless it exists (a concurrent creation is fine). The
/// caller answers a failure as an auto-creation (`errors::auto_create_error_code`).
pub async fn auto_create_topic(context: &ShardContext, name: &str) -> Result<(), TopicError> {
    match create_topic(context, name, context.config.num_partitions, TopicConfigs::new(), false).await {
        Err(TopicError::AlreadyExists { .. })
        | Err(TopicError::Controller(cluster::controller::ControllerError::TopicExists(_))) => {
            // Created meanwhile by another request; in a cluster, wait until it is applied here.
            until_applied(context, |catalog| catalog.partitions(name).is_some()).await;
            Ok(())
        }
        other => other,
    }
}

pub async fn add_partitions(
    context: &ShardContext,
    name: &str,
    count: i32,
    validate_only: bool,
) -> Result<(), TopicError> {
    if context.quorum.is_some() {
        if validate_only {
            return Ok(());
        }
        let request = ControllerRequest::CreatePartitions { name: name.to_string(), count, assignment: Vec::new() };
        forward(context, request).await?;
        until_applied(context, |catalog| catalog.partitions(name).is_some_and(|now| now >= count)).await;
        return Ok(());
    }
    ask(context, |reply| ControlCommand::AddPartitions { name: name.to_string(), count, validate_only, reply }).await
}

pub async fn delete_topic(context: &ShardContext, name: &str) -> Result<(), TopicError> {
    if context.quorum.is_some() {
        forward(context, ControllerRequest::DeleteTopic(name.to_string())).await?;
        until_applied(context, |catalog| catalog.partitions(name).is_none()).await;
        return Ok(());
    }
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
    let mut applied = Applied::default();
    // The ids the manifests recorded: a topic re-created while this broker was down has another.
    match crate::catalog::manifest::topic_ids(&context.config.data_dir) {
        Ok(ids) => applied.topic_ids = ids.into_iter().map(|(topic, id)| (topic, TopicId(id))).collect(),
        Err(error) => tracing::error!(%error, "could not read the topic ids of the manifests"),
    }
    // The replicas this broker held when it stopped: the shards opened their directories.
    match crate::catalog::manifest::partition_dirs(&context.config.data_dir) {
        Ok(dirs) => applied.hosted = dirs,
        Err(error) => tracing::error!(%error, "could not list the partition directories"),
    }
    let mut block: std::ops::Range<u64> = 0..0;
    while let Some(command) = commands.next().await {
        match command {
            ControlCommand::AllocateProducerId { reply } if context.quorum.is_some() => {
                let _ = reply.send(next_cluster_producer_id(&context, &mut block).await);
            }
            ControlCommand::ApplyImage(image) => {
                apply_image(&context, &mut manifests, &mut applied, &image).await;
                if let Some(link) = &context.quorum {
                    link.set_applied_offset(image.offset);
                }
            }
            ControlCommand::CreateTopic { name, partitions, configs, validate_only, reply } => {
                let created = create(&context, &mut manifests, &name, partitions, None, &configs, validate_only, None);
                let _ = reply.send(created.await);
            }
            ControlCommand::AlterBrokerConfigs { configs, reply } => {
                let _ = reply.send(alter_broker_configs_here(&context, configs, true).await);
            }
            ControlCommand::AlterTopicConfigs { name, configs, reply } => {
                let _ = reply.send(alter_configs(&context, &mut manifests, &name, None, configs).await);
            }
            ControlCommand::AddPartitions { name, count, validate_only, reply } => {
                let _ = reply.send(grow(&context, &mut manifests, &name, count, None, validate_only, None).await);
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

/// In a cluster: hands every new metadata image of the quorum link to the controller task, which
/// applies it. Polls the link's generation every tick (the link's threads cannot wake a shard's
/// runtime); only the newest image matters, so none queue up.
pub async fn watch_images(context: Rc<ShardContext>) {
    let Some(link) = context.quorum.clone() else { return };
    let mut seen = 0;
    loop {
        let generation = link.image_generation();
        if generation != seen {
            seen = generation;
            if context.send_control(ControlCommand::ApplyImage(link.image())).await.is_err() {
                return;
            }
        }
        compio::time::sleep(std::time::Duration::from_millis(crate::limits::TICK_MS)).await;
    }
}

/// What the last applied image made of the local topics.
#[derive(Debug, Default)]
struct Applied {
    /// The id of each local topic as the image had it (a topic deleted and created again between
    /// two images, or while this broker was down, comes back with another id: its data goes).
    /// Seeded at start from the ids the topic manifests recorded.
    topic_ids: BTreeMap<String, TopicId>,
    /// Each local replica's assignment (role, leader, replicas, ISR) as last set.
    roles: BTreeMap<(String, i32), Assignment>,
    /// The partitions of each topic this broker holds a replica of (a log on the owning shard).
    /// Seeded at start from the partition directories.
    hosted: BTreeMap<String, BTreeSet<i32>>,
}

/// Makes the local topics match `image` (create, grow, delete; a log only for the partitions whose
/// replicas include this broker: opened when it becomes one, deleted when it stops being one) and
/// sets each replica's role: leader in its leader epoch where the image names this broker,
/// follower elsewhere.
async fn apply_image(
    context: &Rc<ShardContext>,
    manifests: &mut TopicManifests,
    applied: &mut Applied,
    image: &MetadataImage,
) {
    let me = BrokerId(context.config.node_id);
    let catalog = context.catalog();
    let dynamic = DynamicBrokerConfigs {
        default: image.broker_configs.get(&None).cloned().unwrap_or_default(),
        own: image.broker_configs.get(&Some(me)).cloned().unwrap_or_default(),
    };
    if dynamic != catalog.broker_configs {
        if let Err(error) = alter_broker_configs_here(context, dynamic, false).await {
            tracing::error!(%error, "could not apply the dynamic broker configs of the metadata");
        }
    }
    // The broker's min.insync.replicas for topics that set none: a dynamic value over the static
    // one (a change re-assigns every partition below: its assignment differs).
    let broker_min_insync = context.catalog().broker_configs.effective(&context.config).min_insync_replicas;
    for name in catalog.topics.keys() {
        let same = image.topic(name).is_some_and(|topic| applied.topic_ids.get(name).is_none_or(|id| *id == topic.id));
        if !same {
            if let Err(error) = delete(context, manifests, name).await {
                tracing::error!(topic = %name, %error, "could not delete a topic the metadata removed");
            }
            applied.topic_ids.remove(name);
            applied.roles.retain(|(topic, _), _| topic != name);
            applied.hosted.remove(name);
        }
    }
    for topic in image.topics.values() {
        if topic.name == crate::coordinators::groups::OFFSETS_TOPIC {
            // Its partitions are opened apart, on every broker (the group coordinators' logs);
            // those this broker is a replica of are replicated like any other, and which it leads
            // says which groups it coordinates (loaded from the log when it starts leading).
            let replicas = replicas_here(topic, me);
            assign_roles(context, applied, topic, &replicas, me, broker_min_insync).await;
            set_coordinated(context, topic, me).await;
            continue;
        }
        let wanted = topic.partitions.len() as i32;
        let replicas = replicas_here(topic, me);
        // Creating or growing opens this broker's replicas among the new partitions.
        let outcome = match context.catalog().partitions(&topic.name) {
            None => {
                create(context, manifests, &topic.name, wanted, Some(topic.id), &topic.configs, false, Some(&replicas))
                    .await
                    .map(|()| {
                        applied.hosted.insert(topic.name.clone(), replicas.clone());
                    })
            }
            Some(existing) if existing < wanted => {
                grow(context, manifests, &topic.name, wanted, Some(topic.id), false, Some(&replicas))
                    .await
                    .map(|()| applied.hosted.entry(topic.name.clone()).or_default().extend(replicas.range(existing..)))
            }
            Some(_) if *context.catalog().configs(&topic.name) != topic.configs => {
                alter_configs(context, manifests, &topic.name, Some(topic.id), topic.configs.clone()).await
            }
            Some(_) => Ok(()),
        };
        if let Err(error) = outcome {
            tracing::error!(topic = %topic.name, %error, "could not apply a topic of the metadata");
            continue;
        }
        applied.topic_ids.insert(topic.name.clone(), topic.id);
        if context.catalog().topic_id(&topic.name) != Some(topic.id.0) {
            // A topic whose manifest predates ids: clients name it by the image's id.
            context.shared_catalog().publish(|catalog| catalog.set_topic_id(&topic.name, topic.id.0));
        }
        change_replicas(context, applied, &topic.name, &replicas).await;
        assign_roles(context, applied, topic, &replicas, me, broker_min_insync).await;
    }
}

/// Sets the role (and, with follower fetching, the replicas, ISR and leader to copy from) of
/// each of `topic`'s partitions in `replicas` (those this broker holds) where the image changed
/// it, on their owning shards.
async fn assign_roles(
    context: &Rc<ShardContext>,
    applied: &mut Applied,
    topic: &cluster::image::TopicImage,
    replicas: &BTreeSet<i32>,
    me: BrokerId,
    broker_min_insync: i32,
) {
    for partition in topic.partitions.iter().filter(|partition| replicas.contains(&partition.partition.0)) {
        let epoch = LeaderEpoch(partition.leader_epoch);
        let role = match partition.leader {
            Some(leader) if leader == me => Role::Leader { epoch },
            _ => Role::Follower { epoch },
        };
        let ids = |list: &[BrokerId]| list.iter().map(|id| id.0).collect::<Vec<i32>>();
        let assignment = Assignment {
            role,
            leader: partition.leader.map(|leader| leader.0),
            replicas: ids(&partition.replicas),
            isr: ids(&partition.isr),
            partition_epoch: partition.partition_epoch,
            min_insync: Some(min_insync_of(topic).unwrap_or(broker_min_insync)),
        };
        let key = (topic.name.clone(), partition.partition.0);
        if applied.roles.get(&key) == Some(&assignment) {
            continue;
        }
        let (name, index) = key.clone();
        let shard = context.owner_of(&name, index);
        let sent = assignment.clone();
        let submitted = context
            .submit(shard, move |shard_context| {
                let result = shard_context.state.borrow_mut().assign(&name, index, &sent);
                Box::pin(std::future::ready(result))
            })
            .await;
        match submitted {
            Ok(pending) => match pending.await {
                Ok(Ok(())) => {
                    applied.roles.insert(key, assignment);
                }
                Ok(Err(error)) => {
                    tracing::error!(topic = %topic.name, partition = index, %error, "could not change a partition's role")
                }
                Err(error) => tracing::error!(%error, "a shard did not answer a role change"),
            },
            Err(error) => tracing::error!(%error, "a shard did not take a role change"),
        }
    }
}

/// Opens the replicas of `topic` the image newly names this broker among and deletes those it no
/// longer does (a reassignment moved them), on their owning shards.
async fn change_replicas(context: &Rc<ShardContext>, applied: &mut Applied, topic: &str, replicas: &BTreeSet<i32>) {
    let held = applied.hosted.entry(topic.to_string()).or_default();
    let joined: Vec<i32> = replicas.difference(held).copied().collect();
    let left: Vec<i32> = held.difference(replicas).copied().collect();
    if !joined.is_empty() {
        let settings = context.catalog().settings(&context.config, topic);
        match open_everywhere(context, topic, joined.iter().copied(), settings.log).await {
            Ok(()) => {
                tracing::info!(%topic, partitions = ?joined, "opened new replicas");
                held.extend(&joined);
            }
            Err(error) => tracing::error!(%topic, partitions = ?joined, %error, "could not open new replicas"),
        }
    }
    if left.is_empty() {
        return;
    }
    let mut per_shard: Vec<Vec<i32>> = vec![Vec::new(); context.count];
    for &partition in &left {
        per_shard[context.owner_of(topic, partition)].push(partition);
    }
    for (shard, list) in per_shard.into_iter().enumerate().filter(|(_, list)| !list.is_empty()) {
        let name = topic.to_string();
        let submitted = context
            .submit(shard, move |shard_context| {
                shard_context.state.borrow_mut().delete_partition_list(&name, &list);
                Box::pin(std::future::ready(()))
            })
            .await;
        match submitted {
            Ok(pending) => {
                if let Err(error) = pending.await {
                    tracing::error!(%topic, %error, "a shard did not answer a replica removal");
                }
            }
            Err(error) => tracing::error!(%topic, %error, "a shard did not take a replica removal"),
        }
    }
    tracing::info!(%topic, partitions = ?left, "deleted replicas this broker no longer holds");
    for partition in &left {
        held.remove(partition);
        applied.roles.remove(&(topic.to_string(), *partition));
    }
}

/// Tells every shard's group coordinator which `__consumer_offsets` partitions this broker leads.
async fn set_coordinated(context: &Rc<ShardContext>, offsets: &cluster::image::TopicImage, me: BrokerId) {
    let led: std::collections::BTreeSet<i32> = offsets
        .partitions
        .iter()
        .filter(|partition| partition.leader == Some(me))
        .map(|partition| partition.partition.0)
        .collect();
    let count = offsets.partitions.len() as i32;
    for shard in 0..context.count {
        let led = led.clone();
        let submitted = context
            .submit(shard, move |shard_context| {
                shard_context.state.borrow_mut().coordinate(count, led);
                Box::pin(std::future::ready(()))
            })
            .await;
        if let Err(error) = submitted {
            tracing::error!(%error, "a shard did not take the coordinated groups");
        }
    }
}

/// Opens `partitions` of `topic` on the shards that own them, all shards in parallel.
async fn open_everywhere(
    context: &Rc<ShardContext>,
    topic: &str,
    partitions: impl IntoIterator<Item = i32>,
    log: engine::LogConfig,
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
                    shard_context.state.borrow_mut().open_partitions(&topic, &list, log).map_err(TopicError::Partition);
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

/// Creates `name` locally (`id`: its cluster id, recorded in the manifest), with a log for each
/// partition in `replicas` (`None`: every partition, as on one node), with its own `configs`.
#[allow(clippy::too_many_arguments)] // one call per caller, each naming every argument
async fn create(
    context: &Rc<ShardContext>,
    manifests: &mut TopicManifests,
    name: &str,
    partitions: i32,
    id: Option<TopicId>,
    configs: &TopicConfigs,
    validate_only: bool,
    replicas: Option<&BTreeSet<i32>>,
) -> Result<(), TopicError> {
    check_new_name(name)?;
    let catalog = context.catalog();
    if catalog.partitions(name).is_some() {
        return Err(TopicError::AlreadyExists { name: name.to_string() });
    }
    check_no_collision(&catalog, name)?;
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
    // One node gives its topics their ids (a cluster's come from its controller).
    let id = match id {
        Some(id) => id,
        None => TopicId(crate::catalog::new_topic_id().map_err(|error| TopicError::Storage(Box::new(error)))?),
    };
    let local = (0..partitions).filter(|partition| replicas.is_none_or(|replicas| replicas.contains(partition)));
    let settings = TopicSettings::of(&context.catalog().broker_configs.effective(&context.config), configs);
    let opened = open_everywhere(context, name, local, settings.log).await;
    // The commit point: until the manifest is written, a crash leaves only leftovers.
    let committed =
        opened.and_then(|()| manifests.commit(name, partitions, Some(id.0), configs).map_err(storage_error));
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
        catalog.set_topic_id(name, id.0);
        if !configs.is_empty() {
            catalog.configs.insert(name.to_string(), configs.clone());
        }
    });
    tracing::info!(topic = %name, partitions, ?configs, "created topic");
    Ok(())
}

/// Grows `name` to `count` partitions locally, with a log for each new partition in `replicas`
/// (`None`: every one).
async fn grow(
    context: &Rc<ShardContext>,
    manifests: &mut TopicManifests,
    name: &str,
    count: i32,
    id: Option<TopicId>,
    validate_only: bool,
    replicas: Option<&BTreeSet<i32>>,
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
    let local = (existing..count).filter(|partition| replicas.is_none_or(|replicas| replicas.contains(partition)));
    let configs = context.catalog().configs(name).clone();
    let settings = context.catalog().settings(&context.config, name);
    let opened = open_everywhere(context, name, local, settings.log).await;
    let id = id.map(|id| id.0).or_else(|| context.catalog().topic_id(name));
    let committed = opened.and_then(|()| manifests.commit(name, count, id, &configs).map_err(storage_error));
    if let Err(error) = committed {
        if let Err(error) = manifests.commit(name, existing, id, &configs) {
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

/// Replaces the own configs of `name` (`id`: its cluster id, kept in the manifest): the manifest
/// first (the commit point: a restart opens the partitions with these configs), then the
/// catalog, then each shard's open partitions of the topic.
async fn alter_configs(
    context: &Rc<ShardContext>,
    manifests: &mut TopicManifests,
    name: &str,
    id: Option<TopicId>,
    configs: TopicConfigs,
) -> Result<(), TopicError> {
    let Some(partitions) = context.catalog().partitions(name) else {
        return Err(TopicError::UnknownTopic { name: name.to_string() });
    };
    let id = id.map(|id| id.0).or_else(|| context.catalog().topic_id(name));
    manifests.commit(name, partitions, id, &configs).map_err(storage_error)?;
    context.shared_catalog().publish(|catalog| {
        if configs.is_empty() {
            catalog.configs.remove(name);
        } else {
            catalog.configs.insert(name.to_string(), configs.clone());
        }
    });
    let outcome = apply_settings_everywhere(context, name).await;
    tracing::info!(topic = %name, ?configs, "changed topic configs");
    outcome
}

/// Replaces this broker's dynamic broker configs: on one node the file first (the commit point),
/// then the catalog; then every topic's partitions take their new settings.
async fn alter_broker_configs_here(
    context: &Rc<ShardContext>,
    configs: DynamicBrokerConfigs,
    store: bool,
) -> Result<(), TopicError> {
    if store {
        let mut fs = engine::io::os::SyscallFs::new();
        crate::catalog::broker_configs::store(&mut fs, &context.config.data_dir, &configs).map_err(|error| {
            storage_error(ManifestError::Io { path: context.config.data_dir.clone(), source: error })
        })?;
    }
    context.shared_catalog().publish(|catalog| catalog.broker_configs = configs.clone());
    let effective = configs.effective(&context.config);
    context.budgets.connections.set_limits(effective.connections_max, effective.connections_per_ip_max);
    context.budgets.connections.set_overrides(effective.connections_per_ip_overrides.clone());
    context.budgets.connections.set_creation_rate(effective.connection_creation_rate_max);
    let mut outcome = Ok(());
    let topics: Vec<String> = context.catalog().topics.keys().cloned().collect();
    for topic in topics {
        if let Err(error) = apply_settings_everywhere(context, &topic).await {
            tracing::error!(%topic, %error, "a topic did not take the new broker configs");
            outcome = Err(error);
        }
    }
    tracing::info!(default = ?configs.default, own = ?configs.own, "changed dynamic broker configs");
    outcome
}

/// Applies `topic`'s settings as the catalog has them now (its own configs over the effective
/// broker configs) to its open partitions on every shard.
async fn apply_settings_everywhere(context: &Rc<ShardContext>, name: &str) -> Result<(), TopicError> {
    let settings = context.catalog().settings(&context.config, name);
    let mut outcome = Ok(());
    for shard in 0..context.count {
        let topic = name.to_string();
        let submitted = context
            .submit(shard, move |shard_context| {
                let result = shard_context.state.borrow_mut().apply_topic_settings(&topic, &settings);
                Box::pin(std::future::ready(result))
            })
            .await;
        match submitted {
            Ok(pending) => match pending.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => outcome = Err(TopicError::Partition(error)),
                Err(error) => outcome = Err(TopicError::Shard(error)),
            },
            Err(error) => outcome = Err(TopicError::Shard(error)),
        }
    }
    outcome
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
        catalog.remove_topic(name);
    });
    delete_everywhere(context, name, 0).await.map_err(TopicError::Shard)?;
    if let Err(error) = manifests.remove_partition_dirs(name, 0) {
        tracing::error!(topic = %name, %error, "could not remove every partition directory of a deleted topic; the next start removes them");
    }
    tracing::info!(topic = %name, "deleted topic");
    Ok(())
}

/// The partitions of `topic` whose replicas include `me`.
fn replicas_here(topic: &cluster::image::TopicImage, me: BrokerId) -> BTreeSet<i32> {
    topic
        .partitions
        .iter()
        .filter(|partition| partition.replicas.contains(&me))
        .map(|partition| partition.partition.0)
        .collect()
}

/// A topic's own `min.insync.replicas` (checked when it was created), if it has one.
fn min_insync_of(topic: &cluster::image::TopicImage) -> Option<i32> {
    topic.configs.get(crate::config::MIN_INSYNC_REPLICAS_KEY).and_then(|value| value.parse().ok())
}
