//! A seeded, deterministic simulation of the metadata quorum: three or five controllers, a
//! network that drops, delays, duplicates and partitions messages, nodes that crash (losing
//! every write after their last sync) and restart, and simulated brokers that register,
//! heartbeat, create and delete topics, fetch producer-id blocks and ask for preferred leaders.
//!
//! Checked after every step:
//! - at most one active controller per Raft term;
//! - every node's image at the same metadata offset is the same image;
//! - a partition's leader epoch never goes back (per topic id, across each node's images);
//! - no producer id is handed out twice (blocks from acknowledged replies are disjoint).
//!
//! And at the end, with faults healed: every node converges to the same image and the cluster
//! made progress (topics were created, blocks handed out).
//!
//! `SKUA_SIM_SEEDS=<n>` runs n seeds (the long form); a failing seed is printed and
//! `SKUA_SIM_SEED=<seed>` replays it alone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cluster::controller::{ControllerConfig, Heartbeat, NewTopic, Registration};
use cluster::image::MetadataImage;
use cluster::quorum::{ControllerReply, ControllerRequest, DurableLog, Quorum, QuorumConfig, RequestError};
use cluster::records::Endpoint;
use cluster::{BrokerId, ClusterError, ClusterId, PartitionIndex, TopicId};
use raft::prelude::{ConfState, Entry, HardState, Message, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

mod store {
    use super::*;

    /// What survives a crash: the state as of the last sync.
    #[derive(Clone, Debug, Default)]
    pub struct Disk {
        pub snapshot: Snapshot,
        pub entries: Vec<Entry>,
        pub hard_state: HardState,
        pub conf_state: ConfState,
    }

    /// An in-memory durable log: writes go to `live`; `sync` copies `live` to `disk`.
    #[derive(Debug)]
    pub struct MemLog {
        pub live: Disk,
        pub disk: Disk,
    }

    impl MemLog {
        pub fn from_disk(disk: Disk) -> MemLog {
            MemLog { live: disk.clone(), disk }
        }
        fn snapshot_index(&self) -> u64 {
            self.live.snapshot.get_metadata().index
        }
    }

    fn unavailable() -> raft::Error {
        raft::Error::Store(StorageError::Unavailable)
    }

    impl Storage for MemLog {
        fn initial_state(&self) -> raft::Result<RaftState> {
            Ok(RaftState { hard_state: self.live.hard_state.clone(), conf_state: self.live.conf_state.clone() })
        }
        fn entries(
            &self,
            low: u64,
            high: u64,
            max_size: impl Into<Option<u64>>,
            _context: GetEntriesContext,
        ) -> raft::Result<Vec<Entry>> {
            if low <= self.snapshot_index() {
                return Err(raft::Error::Store(StorageError::Compacted));
            }
            let first = self.snapshot_index() + 1;
            let range = (low - first) as usize..(high - first) as usize;
            let mut entries = self.live.entries.get(range).ok_or_else(unavailable)?.to_vec();
            let max_size = max_size.into().unwrap_or(u64::MAX);
            let mut size = 0;
            let keep = entries
                .iter()
                .take_while(|entry| {
                    size += entry.data.len() as u64 + 16;
                    size <= max_size
                })
                .count()
                .max(1);
            entries.truncate(keep);
            Ok(entries)
        }
        fn term(&self, index: u64) -> raft::Result<u64> {
            let snapshot = self.live.snapshot.get_metadata();
            if index == snapshot.index {
                return Ok(snapshot.term);
            }
            if index < snapshot.index {
                return Err(raft::Error::Store(StorageError::Compacted));
            }
            let entry = self.live.entries.get((index - snapshot.index - 1) as usize).ok_or_else(unavailable)?;
            Ok(entry.term)
        }
        fn first_index(&self) -> raft::Result<u64> {
            Ok(self.snapshot_index() + 1)
        }
        fn last_index(&self) -> raft::Result<u64> {
            Ok(self.snapshot_index() + self.live.entries.len() as u64)
        }
        fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
            Ok(self.live.snapshot.clone())
        }
    }

    impl DurableLog for MemLog {
        fn append(&mut self, entries: &[Entry]) -> Result<(), ClusterError> {
            let Some(first) = entries.first() else { return Ok(()) };
            let keep = (first.index - self.snapshot_index() - 1) as usize;
            assert!(keep <= self.live.entries.len(), "raft appends without a gap");
            self.live.entries.truncate(keep);
            self.live.entries.extend_from_slice(entries);
            Ok(())
        }
        fn set_hard_state(&mut self, hard_state: &HardState) -> Result<(), ClusterError> {
            self.live.hard_state = hard_state.clone();
            Ok(())
        }
        fn set_commit(&mut self, commit: u64) -> Result<(), ClusterError> {
            self.live.hard_state.commit = commit;
            Ok(())
        }
        fn set_conf_state(&mut self, conf_state: &ConfState) -> Result<(), ClusterError> {
            self.live.conf_state = conf_state.clone();
            Ok(())
        }
        fn apply_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), ClusterError> {
            let metadata = snapshot.get_metadata();
            self.live.snapshot = snapshot.clone();
            self.live.entries.clear();
            self.live.conf_state = metadata.get_conf_state().clone();
            self.live.hard_state.term = self.live.hard_state.term.max(metadata.term);
            self.live.hard_state.commit = metadata.index;
            Ok(())
        }
        fn compact(&mut self, index: u64, data: Vec<u8>) -> Result<(), ClusterError> {
            let term = self.term(index).map_err(|error| ClusterError::Raft(error.to_string()))?;
            let drop = (index - self.snapshot_index()) as usize;
            let mut snapshot = Snapshot { data: data.into(), ..Default::default() };
            snapshot.mut_metadata().index = index;
            snapshot.mut_metadata().term = term;
            snapshot.mut_metadata().set_conf_state(self.live.conf_state.clone());
            self.live.entries.drain(..drop);
            self.live.snapshot = snapshot;
            Ok(())
        }
        fn sync(&mut self) -> Result<(), ClusterError> {
            self.disk = self.live.clone();
            Ok(())
        }
    }
}

use store::{Disk, MemLog};

/// A small seeded generator (xorshift64*), so runs replay exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(1000) < percent * 10
    }
}

const TICK_MS: u64 = 10;
const SESSION_TIMEOUT_MS: u64 = 600;

fn quorum_config(node: BrokerId, voters: &[BrokerId], seed: u64) -> QuorumConfig {
    QuorumConfig {
        node,
        voters: voters.to_vec(),
        election_tick: 10 + 3 * node.0 as usize,
        fixed_election_tick: true,
        heartbeat_tick: 2,
        snapshot_entries: 40,
        controller: ControllerConfig {
            session_timeout_ms: SESSION_TIMEOUT_MS,
            unclean_leader_election: seed % 2 == 0,
            default_replication_factor: 2,
        },
        new_cluster_id: ClusterId([node.0 as u8; 16]),
    }
}

fn discard() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

struct Node {
    quorum: Option<Quorum<MemLog>>,
    disk: Disk,
    /// The last image this node published, for the "epochs never go back" check.
    last_image: Arc<MetadataImage>,
}

/// A simulated broker: registers with whichever node answers, then heartbeats.
struct Broker {
    id: BrokerId,
    incarnation: u64,
    epoch: Option<u64>,
}

#[derive(Default)]
struct Checks {
    /// term -> the node that was active controller in it.
    active: BTreeMap<u64, BrokerId>,
    /// offset -> the image every node must have at it.
    images: BTreeMap<u64, Arc<MetadataImage>>,
    /// Producer ids handed out.
    producer_ids: Vec<std::ops::Range<u64>>,
    topics_created: u64,
    elections: u64,
    restarts: u64,
}

/// What a request was, to check its reply.
#[derive(Clone, Debug)]
enum Asked {
    Register(usize),
    Heartbeat(usize),
    ProducerIds,
    Other,
}

fn run(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let voter_count = if seed % 3 == 0 { 5 } else { 3 };
    let voters: Vec<BrokerId> = (1..=voter_count).map(BrokerId).collect();
    let mut nodes: Vec<Node> = voters
        .iter()
        .map(|voter| {
            let quorum =
                Quorum::open(MemLog::from_disk(Disk::default()), quorum_config(*voter, &voters, seed), &discard())
                    .expect("opens");
            Node { quorum: Some(quorum), disk: Disk::default(), last_image: Arc::new(MetadataImage::default()) }
        })
        .collect();
    let mut brokers: Vec<Broker> =
        (0..4).map(|index| Broker { id: BrokerId(100 + index), incarnation: 1, epoch: None }).collect();
    let mut network: Vec<(u64, Message)> = Vec::new();
    let mut cut: BTreeSet<u64> = BTreeSet::new(); // raft ids isolated from everyone
    let mut asked: BTreeMap<u64, Asked> = BTreeMap::new();
    let mut next_token = 0u64;
    let mut checks = Checks::default();
    let fault_steps = 3_000;
    let quiet_from = fault_steps + 1_000; // no requests after this: the nodes converge
    let total_steps = quiet_from + 500;
    for step in 0..total_steps {
        let now_ms = step * TICK_MS;
        let faults = step < fault_steps;
        // Faults: crash, restart, isolate, heal.
        if faults && rng.chance(1) {
            let victim = rng.below(voter_count as u64) as usize;
            if let Some(quorum) = nodes[victim].quorum.take() {
                nodes[victim].disk = quorum.store().disk.clone();
            }
        }
        for (index, node) in nodes.iter_mut().enumerate() {
            if node.quorum.is_none() && (!faults || rng.chance(2)) {
                let log = MemLog::from_disk(node.disk.clone());
                let quorum = Quorum::open(log, quorum_config(voters[index], &voters, seed), &discard())
                    .expect("a crashed node reopens");
                node.quorum = Some(quorum);
                checks.restarts += 1;
            }
        }
        if faults && rng.chance(1) {
            cut.insert(voters[rng.below(voter_count as u64) as usize].raft_id());
        }
        if !faults || rng.chance(1) {
            cut.clear();
        }
        // Ticks, with jitter so that timeouts do not line up.
        for node in &mut nodes {
            if let Some(quorum) = node.quorum.as_mut() {
                if !faults || !rng.chance(10) {
                    quorum.tick(now_ms);
                }
            }
        }
        // Deliver what is due; drop some, duplicate some.
        let (due, later): (Vec<_>, Vec<_>) = network.drain(..).partition(|(at, _)| *at <= step);
        network = later;
        for (_, message) in due {
            if cut.contains(&message.from) || cut.contains(&message.to) || (faults && rng.chance(3)) {
                continue;
            }
            let to = BrokerId::from_raft_id(message.to).expect("voter id");
            let index = voters.iter().position(|voter| *voter == to).expect("a voter");
            if faults && rng.chance(1) {
                network.push((step + 1 + rng.below(5), message.clone()));
            }
            if let Some(quorum) = nodes[index].quorum.as_mut() {
                quorum.step(message, now_ms);
            }
        }
        // The simulated brokers' requests, to a random live node.
        if step < quiet_from && rng.chance(30) {
            let target = rng.below(voter_count as u64) as usize;
            let (request, what) = broker_request(&mut rng, &mut brokers, step);
            if let Some(quorum) = nodes[target].quorum.as_mut() {
                next_token += 1;
                asked.insert(next_token, what);
                quorum.request(next_token, request, now_ms);
            }
        }
        for node in &mut nodes {
            if let Some(quorum) = node.quorum.as_mut() {
                if step % 10 == 0 {
                    quorum.expire_sessions(now_ms).expect("expiry");
                }
            }
        }
        // Advance every node: persist, send, apply; then check.
        for node in nodes.iter_mut() {
            let Some(quorum) = node.quorum.as_mut() else { continue };
            let output = quorum.advance(now_ms).expect("advance");
            for message in output.messages {
                network.push((step + 1 + rng.below(3), message));
            }
            for (token, reply) in output.replies {
                let what = asked.remove(&token).expect("a reply answers a request");
                record_reply(&mut checks, &mut brokers, what, reply);
            }
            if quorum.is_active() {
                let previous = checks.active.insert(quorum.term(), quorum.node());
                assert!(
                    previous.is_none_or(|other| other == quorum.node()),
                    "seed {seed}: two active controllers in term {}: {previous:?} and {}",
                    quorum.term(),
                    quorum.node()
                );
            }
            let image = Arc::clone(quorum.image());
            let agreed = checks.images.entry(image.offset).or_insert_with(|| Arc::clone(&image));
            assert_eq!(**agreed, *image, "seed {seed}: node {} disagrees at offset {}", quorum.node(), image.offset);
            check_epochs_grow(seed, &node.last_image, &image);
            node.last_image = image;
        }
    }
    // Healed and quiet: everyone converged on the same image, and work got done.
    let images: Vec<Arc<MetadataImage>> =
        nodes.iter().map(|node| Arc::clone(node.quorum.as_ref().expect("all restarted").image())).collect();
    for image in &images[1..] {
        assert_eq!(**image, *images[0], "seed {seed}: nodes did not converge");
    }
    assert!(images[0].cluster_id.is_some(), "seed {seed}: a cluster id was agreed");
    assert!(checks.topics_created >= 3, "seed {seed}: only {} topics created", checks.topics_created);
    assert!(checks.producer_ids.len() >= 3, "seed {seed}: only {} id blocks", checks.producer_ids.len());
    eprintln!(
        "seed {seed}: {voter_count} voters, offset {}, {} controller terms, {} restarts, {} topics created, {} id blocks, {} elections",
        images[0].offset,
        checks.active.len(),
        checks.restarts,
        checks.topics_created,
        checks.producer_ids.len(),
        checks.elections
    );
}

fn broker_request(rng: &mut Rng, brokers: &mut [Broker], step: u64) -> (ControllerRequest, Asked) {
    let index = rng.below(brokers.len() as u64) as usize;
    let broker = &mut brokers[index];
    let Some(epoch) = broker.epoch else {
        if rng.chance(20) {
            broker.incarnation += 1; // a restart of the broker process
        }
        let registration = Registration {
            broker: broker.id,
            incarnation: broker.incarnation,
            cluster_id: None,
            endpoints: vec![Endpoint { name: "PLAINTEXT".into(), host: "127.0.0.1".into(), port: 9092 }],
            rack: Some(format!("rack-{}", index % 2)),
        };
        return (ControllerRequest::Register(registration), Asked::Register(index));
    };
    let id = broker.id;
    match rng.below(10) {
        0 => {
            let mut topic_id = [0u8; 16];
            topic_id[..8].copy_from_slice(&rng.next().to_be_bytes());
            topic_id[8..].copy_from_slice(&step.to_be_bytes());
            let topic = NewTopic {
                name: format!("topic-{}", rng.below(6)),
                id: TopicId(topic_id),
                partitions: 1 + rng.below(4) as i32,
                replication_factor: 1 + rng.below(3) as i16,
                assignment: Vec::new(),
                configs: BTreeMap::new(),
            };
            (ControllerRequest::CreateTopic(topic), Asked::Other)
        }
        1 => (ControllerRequest::DeleteTopic(format!("topic-{}", rng.below(6))), Asked::Other),
        2 => (ControllerRequest::AllocateProducerIds { broker: id, epoch }, Asked::ProducerIds),
        3 => (ControllerRequest::ElectPreferred(None), Asked::Other),
        4 => {
            let name = format!("topic-{}", rng.below(6));
            (
                ControllerRequest::CreatePartitions { name, count: 2 + rng.below(5) as i32, assignment: Vec::new() },
                Asked::Other,
            )
        }
        _ => {
            let heartbeat = Heartbeat { broker: id, epoch, caught_up: true, want_shutdown: rng.chance(2) };
            (ControllerRequest::Heartbeat(heartbeat), Asked::Heartbeat(index))
        }
    }
}

fn record_reply(
    checks: &mut Checks,
    brokers: &mut [Broker],
    what: Asked,
    reply: Result<ControllerReply, RequestError>,
) {
    match (what, reply) {
        (Asked::Register(index), Ok(ControllerReply::Registered { epoch })) => brokers[index].epoch = Some(epoch),
        (Asked::Heartbeat(index), Err(RequestError::Refused(_))) => brokers[index].epoch = None,
        (Asked::Heartbeat(index), Ok(ControllerReply::Heartbeat(reply))) => {
            if reply.shutdown_ok {
                // The broker process exits; it comes back as a new incarnation.
                brokers[index].epoch = None;
                brokers[index].incarnation += 1;
            }
        }
        (Asked::ProducerIds, Ok(ControllerReply::ProducerIds(block))) => {
            for other in &checks.producer_ids {
                assert!(block.end <= other.start || other.end <= block.start, "{block:?} overlaps {other:?}");
            }
            checks.producer_ids.push(block);
        }
        (Asked::ProducerIds, Err(RequestError::Refused(_))) => {}
        (Asked::Other, Ok(ControllerReply::Done)) => checks.topics_created += 1,
        (Asked::Other, Ok(ControllerReply::Elections(_))) => checks.elections += 1,
        (_, Err(_)) => {}
        (what, reply) => panic!("{what:?} answered with {reply:?}"),
    }
}

/// Leader epochs never go back between two images of one node (same topic id, same partition).
fn check_epochs_grow(seed: u64, before: &MetadataImage, after: &MetadataImage) {
    if after.offset < before.offset {
        return; // a restarted node replays from its snapshot; the global per-offset check covers it
    }
    for (topic, partition) in after.partitions() {
        let Some(old_topic) = before.topic_by_id(topic.id) else { continue };
        let Some(old) = old_topic.partitions.get(partition.partition.0 as usize) else { continue };
        assert!(
            partition.leader_epoch >= old.leader_epoch && partition.partition_epoch >= old.partition_epoch,
            "seed {seed}: {}-{} epochs went back: {old:?} -> {partition:?}",
            topic.name,
            partition.partition.0
        );
    }
    let _ = PartitionIndex(0);
}

#[test]
fn the_quorum_keeps_its_invariants_under_loss_partitions_and_restarts() {
    if let Some(seed) = std::env::var("SKUA_SIM_SEED").ok().and_then(|text| text.parse().ok()) {
        run(seed);
        return;
    }
    let seeds: u64 = std::env::var("SKUA_SIM_SEEDS").ok().and_then(|text| text.parse().ok()).unwrap_or(12);
    for seed in 1..=seeds {
        run(seed);
    }
}
