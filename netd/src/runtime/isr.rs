//! A shard's ISR checks (Kafka's `isr-expiration` task and its expansion on fetch): every half
//! `replica.lag.time.max.ms` (at most [`ISR_CHECK_INTERVAL_MS_MAX`], so that a caught-up follower
//! rejoins soon, as Kafka's rejoins on its fetch), for each partition this shard leads, the
//! followers that have not caught up for that long leave the ISR and those outside it that caught
//! up join it, through the active controller (AlterPartition, `Controller::alter_partition`),
//! naming the leader epoch and the partition epoch this broker read: a leader that was replaced,
//! or one reading a stale state, is refused and changes nothing. The change reaches this broker's
//! replicas with the next metadata image, like any other (`ShardState::assign`).
//!
//! A replica asked to join counts for the high watermark from the moment it is asked for until
//! the controller refuses it or the image lists it (Kafka's "maximal ISR", KIP-497): the
//! controller may add it, and elect it, before this broker's image says so, so no write may be
//! acknowledged without it meanwhile.
//!
//! Must not know: how the high watermark follows the ISR (the replica crate's `leader.rs`).

use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use cluster::controller::{IsrChange, IsrChangeOutcome};
use cluster::quorum::{ControllerReply, ControllerRequest};
use cluster::rpc::{RpcRequest, RpcResponse};
use cluster::{BrokerId, PartitionIndex};
use replica::{ReplicaId, Role};

use crate::clock::now_ms;
use crate::runtime::context::ShardContext;
use crate::runtime::state::replication_gauges;

/// The longest wait between two checks.
pub const ISR_CHECK_INTERVAL_MS_MAX: i64 = 500;

/// Checks this shard's led partitions every half `replica.lag.time.max.ms` (or
/// [`ISR_CHECK_INTERVAL_MS_MAX`]), forever.
pub async fn run(context: Rc<ShardContext>) {
    let Some(link) = context.quorum.clone() else { return };
    let interval_ms = (context.config.replica_lag_time_max_ms / 2).clamp(1, ISR_CHECK_INTERVAL_MS_MAX);
    let interval = Duration::from_millis(interval_ms as u64);
    let mut last_status = std::time::Instant::now();
    loop {
        compio::time::sleep(interval).await;
        if last_status.elapsed() >= Duration::from_millis(REPLICATION_STATUS_INTERVAL_MS) {
            last_status = std::time::Instant::now();
            log_status(&context);
        }
        let changes = wanted_changes(&context);
        if changes.is_empty() {
            continue;
        }
        let Some(epoch) = link.broker_epoch() else { continue };
        for change in &changes {
            tracing::info!(topic = %change.topic, partition = change.partition.0, isr = ?change.isr, "asking the controller to change the ISR");
        }
        // Joining replicas count for the high watermark before the controller may add them.
        let joins: Vec<Vec<ReplicaId>> = changes.iter().map(|change| propose_joins(&context, change)).collect();
        let request = ControllerRequest::AlterPartition { broker: link.node(), epoch, changes: changes.clone() };
        match link.ask(RpcRequest::Controller(request)).await {
            Ok(RpcResponse::Controller(Ok(ControllerReply::IsrChanges(outcomes)))) => {
                for ((change, outcome), joining) in changes.iter().zip(outcomes).zip(&joins) {
                    if !matches!(outcome, IsrChangeOutcome::Changed(_)) {
                        tracing::info!(topic = %change.topic, partition = change.partition.0, ?outcome, "the controller refused an ISR change");
                        drop_joins(&context, change, joining);
                        continue;
                    }
                    count_change(&context, change);
                }
            }
            other => tracing::debug!(?other, "no answer to an ISR change; the next check asks again"),
        }
    }
}

/// How often a shard that leads partitions logs its replication gauges and counters.
pub const REPLICATION_STATUS_INTERVAL_MS: u64 = 60_000;

/// The replicas `change` adds to the ISR the image has, now counted for the high watermark.
fn propose_joins(context: &ShardContext, change: &IsrChange) -> Vec<ReplicaId> {
    let mut state = context.state.borrow_mut();
    let key = (change.topic.clone(), change.partition.0);
    let Some(assignment) = state.assignments.get(&key) else { return Vec::new() };
    let joining: Vec<ReplicaId> = change
        .isr
        .iter()
        .filter(|broker| !assignment.isr.contains(&broker.0))
        .map(|broker| ReplicaId(broker.0))
        .collect();
    if joining.is_empty() {
        return joining;
    }
    let proposed = state
        .replica_log(&change.topic, change.partition.0)
        .and_then(|id| state.partitions.propose_isr_joins(id, &joining));
    if let Err(error) = proposed {
        tracing::debug!(topic = %change.topic, partition = change.partition.0, %error, "ISR joins not counted");
    }
    joining
}

/// The controller refused `change`: its joining replicas no longer hold the high watermark back.
fn drop_joins(context: &ShardContext, change: &IsrChange, joining: &[ReplicaId]) {
    if joining.is_empty() {
        return;
    }
    let mut state = context.state.borrow_mut();
    if let Ok(id) = state.replica_log(&change.topic, change.partition.0) {
        let _ = state.partitions.drop_isr_joins(id, joining);
    }
}

/// Counts an accepted change as a shrink and/or an expansion of the ISR it replaced.
fn count_change(context: &ShardContext, change: &IsrChange) {
    let mut state = context.state.borrow_mut();
    let Some(before) = state.assignments.get(&(change.topic.clone(), change.partition.0)) else { return };
    let after: BTreeSet<i32> = change.isr.iter().map(|broker| broker.0).collect();
    let before: BTreeSet<i32> = before.isr.iter().copied().collect();
    let counters = &mut state.replication_counters;
    if before.difference(&after).next().is_some() {
        counters.isr_shrinks += 1;
    }
    if after.difference(&before).next().is_some() {
        counters.isr_expands += 1;
    }
}

/// One log line with the shard's replication gauges and counters, when it holds replicas.
fn log_status(context: &ShardContext) {
    let state = context.state.borrow();
    if state.assignments.is_empty() {
        return;
    }
    let gauges = replication_gauges(state.assignments.values(), context.config.min_insync_replicas);
    let counters = state.replication_counters;
    tracing::info!(
        shard = context.index,
        led = gauges.led,
        under_replicated = gauges.under_replicated,
        under_min_isr = gauges.under_min_isr,
        offline = gauges.offline,
        isr_shrinks = counters.isr_shrinks,
        isr_expands = counters.isr_expands,
        truncations = counters.truncations,
        "replication status"
    );
}

/// The ISR changes this shard's leaders want now (none for a partition whose ISR would stay).
fn wanted_changes(context: &ShardContext) -> Vec<IsrChange> {
    let state = context.state.borrow();
    let now = now_ms();
    let lag_time_max_ms = context.config.replica_lag_time_max_ms;
    // KIP-841, as Kafka's leaders: a replica the image shows fenced or shutting down is not
    // proposed for the ISR (the controller would refuse it as ineligible, every round).
    let image = context.image();
    let eligible = |replica: i32| image.as_ref().is_none_or(|image| image.is_active(BrokerId(replica)));
    let mut changes = Vec::new();
    for ((topic, partition), assignment) in &state.assignments {
        let Role::Leader { epoch } = assignment.role else { continue };
        let Ok(id) = state.replica_log(topic, *partition) else { continue };
        let Ok(candidates) = state.partitions.isr_candidates(id, lag_time_max_ms, now) else { continue };
        if candidates.shrink.is_empty() && candidates.expand.is_empty() {
            continue;
        }
        let leaving: BTreeSet<i32> = candidates.shrink.iter().map(|ReplicaId(id)| *id).collect();
        let joining: BTreeSet<i32> =
            candidates.expand.iter().map(|ReplicaId(id)| *id).filter(|replica| eligible(*replica)).collect();
        if leaving.is_empty() && joining.is_empty() {
            continue;
        }
        // In the replicas' order, as Kafka lists an ISR.
        let isr: Vec<BrokerId> = assignment
            .replicas
            .iter()
            .filter(|replica| {
                (assignment.isr.contains(replica) && !leaving.contains(replica)) || joining.contains(replica)
            })
            .map(|replica| BrokerId(*replica))
            .collect();
        changes.push(IsrChange {
            topic: topic.clone(),
            partition: PartitionIndex(*partition),
            leader_epoch: epoch.0,
            partition_epoch: assignment.partition_epoch,
            isr,
        });
    }
    changes
}
