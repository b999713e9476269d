//! One handler per Kafka API, each declaring the versions it serves. ApiVersions is generated
//! from [`REGISTRY`], so the broker never advertises an API it does not implement.
//!
//! Owns: the registry and the dispatch from a decoded frame to its handler. A handler returns a
//! [`Reply`]: the response bytes now, later (after a group commit or a fetch wait), or none
//! (produce with acks=0). The group coordinator APIs share a few helpers in [`group_support`], the
//! config-changing ones in [`config_support`], Fetch and Produce the KIP-951 leader hints in
//! [`leader_hints`]; those three serve no API.

pub mod acls;
pub mod alter_configs;
pub mod api_versions;
pub mod config_support;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod elect_leaders;
pub mod fetch;
pub mod find_coordinator;
pub mod group_support;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leader_hints;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod reassignments;
pub mod sasl_handshake;
pub mod sync_group;
pub mod update_features;

use std::rc::Rc;

use futures_util::future::LocalBoxFuture;
use kafka_protocol::messages::ApiKey;

use crate::codec::frame::Frame;
pub use crate::runtime::connection::{BoxedReply, Reply, Segments};
use crate::runtime::context::ShardContext;

/// An API this broker serves and its version range.
#[derive(Clone, Copy, Debug)]
pub struct Handler {
    pub api_key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
}

/// Every API the broker implements. Produce advertises 0–2 although it rejects them, as Kafka 4
/// does for librdkafka's sake (KAFKA-18659).
pub const REGISTRY: &[Handler] = &[
    Handler { api_key: ApiKey::Produce, min_version: 0, max_version: 13 },
    Handler { api_key: ApiKey::Fetch, min_version: 4, max_version: crate::codec::fetch_encode::FETCH_VERSION_MAX },
    Handler { api_key: ApiKey::ListOffsets, min_version: 1, max_version: 10 },
    Handler { api_key: ApiKey::Metadata, min_version: 0, max_version: 13 },
    Handler { api_key: ApiKey::ApiVersions, min_version: 0, max_version: 4 },
    Handler { api_key: ApiKey::CreateTopics, min_version: 2, max_version: 7 },
    Handler { api_key: ApiKey::DeleteTopics, min_version: 1, max_version: 5 },
    Handler { api_key: ApiKey::InitProducerId, min_version: 0, max_version: 5 },
    Handler { api_key: ApiKey::OffsetForLeaderEpoch, min_version: 2, max_version: 4 },
    Handler { api_key: ApiKey::DescribeConfigs, min_version: 1, max_version: 4 },
    Handler { api_key: ApiKey::CreatePartitions, min_version: 0, max_version: 3 },
    Handler { api_key: ApiKey::DescribeCluster, min_version: 0, max_version: 1 },
    Handler { api_key: ApiKey::DescribeLogDirs, min_version: 1, max_version: 4 },
    Handler { api_key: ApiKey::IncrementalAlterConfigs, min_version: 0, max_version: 1 },
    Handler { api_key: ApiKey::AlterConfigs, min_version: 0, max_version: 2 },
    Handler { api_key: ApiKey::DescribeQuorum, min_version: 0, max_version: 2 },
    Handler { api_key: ApiKey::ElectLeaders, min_version: 0, max_version: 2 },
    Handler { api_key: ApiKey::AlterPartitionReassignments, min_version: 0, max_version: 1 },
    Handler { api_key: ApiKey::ListPartitionReassignments, min_version: 0, max_version: 0 },
    Handler { api_key: ApiKey::FindCoordinator, min_version: 0, max_version: 6 },
    Handler { api_key: ApiKey::JoinGroup, min_version: 0, max_version: 9 },
    Handler { api_key: ApiKey::SyncGroup, min_version: 0, max_version: 5 },
    Handler { api_key: ApiKey::Heartbeat, min_version: 0, max_version: 4 },
    Handler { api_key: ApiKey::LeaveGroup, min_version: 0, max_version: 5 },
    Handler { api_key: ApiKey::OffsetCommit, min_version: 2, max_version: 10 },
    Handler { api_key: ApiKey::OffsetFetch, min_version: 1, max_version: 10 },
    Handler { api_key: ApiKey::ListGroups, min_version: 0, max_version: 5 },
    Handler { api_key: ApiKey::DescribeGroups, min_version: 0, max_version: 5 },
    Handler { api_key: ApiKey::DeleteGroups, min_version: 0, max_version: 2 },
    Handler { api_key: ApiKey::OffsetDelete, min_version: 0, max_version: 0 },
    Handler { api_key: ApiKey::SaslHandshake, min_version: 0, max_version: 1 },
    Handler { api_key: ApiKey::SaslAuthenticate, min_version: 0, max_version: 2 },
    Handler { api_key: ApiKey::DescribeAcls, min_version: 1, max_version: 3 },
    Handler { api_key: ApiKey::CreateAcls, min_version: 1, max_version: 3 },
    Handler { api_key: ApiKey::DeleteAcls, min_version: 1, max_version: 3 },
    Handler { api_key: ApiKey::ListTransactions, min_version: 0, max_version: 2 },
    Handler { api_key: ApiKey::DeleteRecords, min_version: 0, max_version: 2 },
    Handler { api_key: ApiKey::DescribeProducers, min_version: 0, max_version: 0 },
    Handler { api_key: ApiKey::UpdateFeatures, min_version: 0, max_version: 2 },
];

pub fn find(api_key: ApiKey) -> Option<&'static Handler> {
    REGISTRY.iter().find(|handler| handler.api_key == api_key)
}

/// Dispatches a frame whose API and version the registry accepted. Work that must happen in
/// request order (appends, and queueing work on other shards) is done before this returns;
/// waiting for commits or fetch data happens in the returned future. Admin and metadata
/// requests complete here, as Kafka handles one request of a connection at a time for them.
pub fn dispatch(context: &Rc<ShardContext>, frame: Frame) -> LocalBoxFuture<'_, anyhow::Result<Reply>> {
    Box::pin(handle(context, frame))
}

async fn handle(context: &Rc<ShardContext>, frame: Frame) -> anyhow::Result<Reply> {
    let served = find(frame.api_key)
        .is_some_and(|handler| (handler.min_version..=handler.max_version).contains(&frame.api_version));
    // ApiVersions answers any version (with UNSUPPORTED_VERSION and its own range, as Kafka does).
    if !served && frame.api_key != ApiKey::ApiVersions {
        anyhow::bail!("unsupported API {:?} version {}", frame.api_key, frame.api_version);
    }
    match frame.api_key {
        ApiKey::ApiVersions => api_versions::handle(&frame).map(Reply::Now),
        ApiKey::Metadata => metadata::handle(context, &frame).await.map(Reply::Now),
        ApiKey::Produce => produce::handle(context, &frame).await,
        ApiKey::Fetch => Ok(Reply::Later(Box::pin(fetch::handle(context.clone(), frame)))),
        ApiKey::ListOffsets => list_offsets::handle(context, &frame).await.map(Reply::Now),
        ApiKey::CreateTopics => create_topics::handle(context, &frame).await.map(Reply::Now),
        ApiKey::DeleteTopics => delete_topics::handle(context, &frame).await.map(Reply::Now),
        ApiKey::InitProducerId => init_producer_id::handle(context, &frame).await.map(Reply::Now),
        ApiKey::OffsetForLeaderEpoch => offset_for_leader_epoch::handle(context, &frame).await.map(Reply::Now),
        ApiKey::DescribeConfigs => describe_configs::handle(context, &frame).map(Reply::Now),
        ApiKey::CreatePartitions => create_partitions::handle(context, &frame).await.map(Reply::Now),
        ApiKey::DescribeCluster => describe_cluster::handle(context, &frame).map(Reply::Now),
        ApiKey::DescribeLogDirs => describe_log_dirs::handle(context, &frame).await.map(Reply::Now),
        ApiKey::IncrementalAlterConfigs => incremental_alter_configs::handle(context, &frame).await.map(Reply::Now),
        ApiKey::AlterConfigs => alter_configs::handle(context, &frame).await.map(Reply::Now),
        ApiKey::DescribeQuorum => describe_quorum::handle(context, &frame).await.map(Reply::Now),
        ApiKey::ElectLeaders => elect_leaders::handle(context, &frame).await.map(Reply::Now),
        ApiKey::AlterPartitionReassignments => reassignments::alter(context, &frame).await.map(Reply::Now),
        ApiKey::ListPartitionReassignments => reassignments::list(context, &frame).map(Reply::Now),
        ApiKey::FindCoordinator => find_coordinator::handle(context, &frame).await,
        ApiKey::JoinGroup => join_group::handle(context, &frame).await,
        ApiKey::SyncGroup => sync_group::handle(context, &frame).await,
        ApiKey::Heartbeat => heartbeat::handle(context, &frame).await,
        ApiKey::LeaveGroup => leave_group::handle(context, &frame).await,
        ApiKey::OffsetCommit => offset_commit::handle(context, &frame).await,
        ApiKey::OffsetFetch => offset_fetch::handle(context, &frame).await,
        ApiKey::ListGroups => list_groups::handle(context, &frame).await,
        ApiKey::DescribeGroups => describe_groups::handle(context, &frame).await,
        ApiKey::DeleteGroups => delete_groups::handle(context, &frame).await,
        ApiKey::OffsetDelete => offset_delete::handle(context, &frame).await,
        ApiKey::SaslHandshake => sasl_handshake::handshake(&frame).map(Reply::Now),
        ApiKey::SaslAuthenticate => sasl_handshake::authenticate(&frame).map(Reply::Now),
        ApiKey::DescribeAcls => acls::describe(&frame).map(Reply::Now),
        ApiKey::CreateAcls => acls::create(&frame).map(Reply::Now),
        ApiKey::DeleteAcls => acls::delete(&frame).map(Reply::Now),
        ApiKey::ListTransactions => list_transactions::handle(&frame).map(Reply::Now),
        ApiKey::DeleteRecords => delete_records::handle(context, &frame).await.map(Reply::Now),
        ApiKey::DescribeProducers => describe_producers::handle(context, &frame).await.map(Reply::Now),
        ApiKey::UpdateFeatures => update_features::handle(context.config.node_id, &frame).map(Reply::Now),
        other => anyhow::bail!("no handler for {other:?} although the registry accepted it"),
    }
}

/// Runs `work` on every shard that owns one of `items` (each item tagged with its owner), with
/// that shard's items in their original order, and gathers all results. For work that answers
/// at once (no waiting on the owning shard).
pub async fn fan_out<I, O, W>(context: &Rc<ShardContext>, items: Vec<(usize, I)>, work: W) -> anyhow::Result<Vec<O>>
where
    I: Send + 'static,
    O: Send + 'static,
    W: Fn(&Rc<ShardContext>, Vec<I>) -> Vec<O> + Send + Clone + 'static,
{
    let mut per_shard: Vec<Vec<I>> = (0..context.count).map(|_| Vec::new()).collect();
    for (owner, item) in items {
        per_shard[owner].push(item);
    }
    let mut pending = Vec::new();
    for (shard, items) in per_shard.into_iter().enumerate().filter(|(_, items)| !items.is_empty()) {
        let work = work.clone();
        pending.push(
            context
                .submit(shard, move |shard_context| {
                    let results = work(shard_context, items);
                    Box::pin(std::future::ready(results))
                })
                .await?,
        );
    }
    let mut results = Vec::new();
    for outcome in pending {
        results.extend(outcome.await?);
    }
    Ok(results)
}

/// Shorthand for `StrBytes` from a `&str`.
pub fn str_bytes(text: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(text.to_string())
}
