//! Seeded simulation of one partition replicated on three brokers, through the partition layer's
//! public API only (no broker, no wire protocol): what Kafka's replication promises, checked
//! against leader changes, crashes and divergent tails.
//!
//! Each seed drives three replicas, each with its own simulated disk (`SimFs`, whose crash keeps a
//! random prefix of the unsynced writes) and its own `Partitions`, and a tiny controller in the
//! test (leader epoch, leader, ISR) that follows Kafka's rules: a leader is elected only from the
//! ISR (no unclean election); a replica that crashes leaves the ISR, unless it is its last member
//! (Kafka keeps that one: the partition waits for it and elects it again); a follower rejoins
//! once the leader recorded a fetch of it from the leader's end; members that lag leave
//! (`isr_candidates` with a lag time). Each step, chosen by the seed:
//! - the leader appends a batch with acks=all (unique payload), sometimes committing it at once;
//! - a follower fetches once, as the broker's fetcher and Fetch handler do: it commits, names its
//!   end and the epoch its log ends in; the leader records that (`follower_fetched`, which moves
//!   the high watermark) and answers with the diverging epoch (the follower truncates,
//!   `truncate_to_divergence`) or with its batches from there and its high watermark (the
//!   follower appends them, `append_replicated`, and takes the high watermark);
//! - the leader or a follower commits (and sometimes checkpoints its high watermark, which a
//!   restart starts from); the ISR drops members that lag;
//! - a replica crashes and restarts as a follower (a crashed leader is replaced);
//! - the leader changes to another ISR member in the next epoch; the deposed leader sometimes goes
//!   on acting as leader for a while (a zombie: its writes reach nobody) until it is told.
//!
//! Checked after every step:
//! - (3) a leader's high watermark never moves back within its epoch;
//! - (1) what a consumer may read on a leader (below its high watermark: committed) extends what
//!   any leader ever let consumers read, never replaces it; an acks=all write acknowledged is
//!   committed, at the offsets its append got, with its payload;
//! - (4) no replica ever holds two different batches at the same offset in the same leader epoch;
//! - (5) every replica's offsets are contiguous, its batches' epochs never decrease, and its
//!   leader-epoch history puts each batch in the epoch the batch was written in.
//!
//! At the end (the zombie is told, every replica catches up and rejoins the ISR; then all crash,
//! restart and catch up again): (1) every acknowledged write and every committed batch is at its
//! offset on every replica with the same bytes; (2) the replicas are byte-identical up to the
//! final high watermark.
//!
//! `SKUA_SIM_SEEDS=N` runs seeds 0..N (default 40), `SKUA_SIM_STEPS=n` steps per seed (default
//! 200); `SKUA_SIM_SEED=s` replays one seed, `SKUA_SIM_TRACE=1` prints every step:
//! `SKUA_SIM_SEED=7 SKUA_SIM_TRACE=1 cargo test -p skua-replica --test replication_sim replicas_keep -- --nocapture`.
//!
//! The scripted scenarios at the end are the shortest paths to four defects the seeds found
//! (fixed): a follower that led an epoch without writing never caught up; a restarted follower's
//! high watermark was its log end, so elected it showed consumers records later lost; the
//! leader-epoch history trimmed at open was not written back; and an in-sync follower answered
//! out of range cut back to the leader's high watermark, below acknowledged writes.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use engine::batch::{validate_all, ValidatedBatches};
use engine::io::sim::{SimFaults, SimFs, SimRng};
use engine::limits::BATCH_HEADER_BYTES;
use engine::testkit::make_batch;
use engine::{LeaderEpoch, LogConfig, LogId, Offset, Shard, ShardConfig, WriteMode};
use replica::{Ack, Acks, EpochStart, Partition, Partitions, ReadBound, ReplicaError, ReplicaId, Role};

const SEEDS_DEFAULT: u64 = 40;
const STEPS_DEFAULT: usize = 200;
const REPLICA_COUNT: usize = 3;
const START_MS: i64 = 1_700_000_000_000;
/// Simulated time between two steps, at most.
const STEP_MS_MAX: u64 = 400;
/// `replica.lag.time.max.ms`: an ISR member that has not caught up for longer leaves.
const LAG_TIME_MAX_MS: i64 = 2_000;
/// A follower fetch's `max_bytes`, at most (small: followers often copy in several rounds).
const FETCH_BYTES_MAX: u64 = 1_500;
/// A follower fetch's `max_bytes` when catching up at the end.
const CATCH_UP_FETCH_BYTES: u64 = 1 << 20;
/// Records per appended batch, at most.
const RECORDS_PER_BATCH_MAX: u64 = 3;
/// Padding in a record's value, at most (varies batch sizes across segment rolls).
const PADDING_BYTES_MAX: u64 = 200;
/// One read of a whole log for the checks (the logs here stay far smaller).
const SCAN_BYTES_MAX: u64 = 1 << 20;
/// Reads of one log per scan, at most (each returns at least one batch).
const SCAN_READS_MAX: usize = 100_000;
/// Fetch rounds for every replica to catch up at the end, at most, besides one per offset the
/// leader holds (a fetch reads at most one segment).
const CATCH_UP_ROUNDS_MIN: u64 = 100;

/// One batch as a replica stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stored {
    base: u64,
    last: u64,
    epoch: i32,
    bytes: Bytes,
}

impl Stored {
    /// The records, which no offset or leader epoch assignment touches.
    fn records(&self) -> &[u8] {
        &self.bytes[BATCH_HEADER_BYTES..]
    }
}

/// An acks=all write: what its append got, and its acknowledgement to come.
#[derive(Debug)]
struct Write {
    number: u64,
    writer: usize,
    epoch: i32,
    base: u64,
    last: u64,
    records: Bytes,
    ack: Ack,
}

/// A write whose acknowledgement came (Ok).
#[derive(Clone, Debug)]
struct Acknowledged {
    number: u64,
    base: u64,
    last: u64,
    records: Bytes,
}

/// What a seed exercised.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    appends: u64,
    refused: u64,
    acknowledged: u64,
    ack_failures: u64,
    fetches: u64,
    truncations: u64,
    out_of_range: u64,
    crashes: u64,
    elections: u64,
    zombies: u64,
    shrinks: u64,
    rejoins: u64,
    committed_offsets: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.appends += other.appends;
        self.refused += other.refused;
        self.acknowledged += other.acknowledged;
        self.ack_failures += other.ack_failures;
        self.fetches += other.fetches;
        self.truncations += other.truncations;
        self.out_of_range += other.out_of_range;
        self.crashes += other.crashes;
        self.elections += other.elections;
        self.zombies += other.zombies;
        self.shrinks += other.shrinks;
        self.rejoins += other.rejoins;
        self.committed_offsets += other.committed_offsets;
    }
}

/// One broker's replica of the partition.
struct Replica {
    sim: SimFs,
    dir: PathBuf,
    /// `None` only while it crashes.
    partitions: Option<Partitions>,
    id: LogId,
}

impl Replica {
    fn partitions(&self) -> &Partitions {
        self.partitions.as_ref().expect("open")
    }

    fn partitions_mut(&mut self) -> &mut Partitions {
        self.partitions.as_mut().expect("open")
    }

    fn partition(&self) -> &Partition {
        self.partitions().get(self.id).expect("partition")
    }

    /// Every batch of the log from its start up to `bound`.
    fn stored(&self, bound: ReadBound) -> Vec<Stored> {
        let partitions = self.partitions();
        let mut stored = Vec::new();
        let mut at = partitions.log_start_offset(self.id).expect("log start");
        for _ in 0..SCAN_READS_MAX {
            let Some(plan) = partitions.read(self.id, at, SCAN_BYTES_MAX, bound).expect("read") else {
                return stored;
            };
            let bytes = plan.into_bytes().expect("bytes");
            let mut position = 0;
            for header in validate_all(&bytes).expect("stored batches are valid") {
                stored.push(Stored {
                    base: header.base_offset,
                    last: header.last_offset(),
                    epoch: header.partition_leader_epoch,
                    bytes: bytes.slice(position..position + header.size_bytes),
                });
                position += header.size_bytes;
                at = Offset(header.last_offset() + 1);
            }
        }
        panic!("a log of more than {SCAN_READS_MAX} reads");
    }
}

fn replica_id(index: usize) -> ReplicaId {
    ReplicaId(index as i32)
}

/// Two replicas at once (`a` != `b`).
fn pair(replicas: &mut [Replica], a: usize, b: usize) -> (&mut Replica, &mut Replica) {
    assert_ne!(a, b);
    if a < b {
        let (low, high) = replicas.split_at_mut(b);
        (&mut low[a], &mut high[0])
    } else {
        let (low, high) = replicas.split_at_mut(a);
        (&mut high[0], &mut low[b])
    }
}

/// Polls a future once: `Some` if it is ready.
fn poll_once<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
    match Pin::new(future).poll(&mut Context::from_waker(std::task::Waker::noop())) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// What the leader answers a follower's fetch.
enum Answer {
    Diverging(EpochStart),
    /// The follower asked past the leader's committed end (a new leader's epoch may begin past
    /// it while its last batches copied as a follower are not committed yet).
    OutOfRange {
        leader_end: Offset,
        high_watermark: Offset,
    },
    Records {
        batches: Option<ValidatedBatches>,
        high_watermark: Offset,
    },
}

struct World {
    seed: u64,
    /// Steps chosen by a test, not by the seed.
    scripted: bool,
    rng: SimRng,
    step: usize,
    now_ms: i64,
    trace: bool,
    log_config: LogConfig,
    shard_config: ShardConfig,
    replicas: Vec<Replica>,
    // The controller.
    epoch: i32,
    leader: usize,
    isr: BTreeSet<usize>,
    min_insync: usize,
    /// A deposed leader not told yet: still acts as leader in its old epoch.
    zombie: Option<usize>,
    // The model.
    next_write: u64,
    waiting: Vec<Write>,
    acknowledged: Vec<Acknowledged>,
    /// Every batch any leader ever let consumers read (below its high watermark), from offset 0.
    committed: Vec<Stored>,
    /// Every batch any replica ever held, by (base offset, leader epoch).
    by_offset_and_epoch: BTreeMap<(u64, i32), Bytes>,
    /// The highest high watermark seen on the leader of each epoch.
    high_watermarks: BTreeMap<i32, u64>,
    counts: Counts,
}

impl World {
    /// A seed's world: its disks' write mode, segment size and `min.insync.replicas` drawn
    /// from the seed too.
    fn new(seed: u64) -> World {
        let mut rng = SimRng::new(seed);
        let write_mode = if rng.chance(1, 2) { WriteMode::Direct } else { WriteMode::Buffered };
        let segment_bytes = 400 + rng.below(3_000);
        let min_insync = 1 + rng.below(2) as usize;
        World::build(seed, false, rng, write_mode, segment_bytes, min_insync)
    }

    /// A world for a scripted scenario (its steps chosen by the test, not by a seed).
    fn scripted(min_insync: usize) -> World {
        World::build(0, true, SimRng::new(0), WriteMode::Buffered, 1_000, min_insync)
    }

    fn build(
        seed: u64,
        scripted: bool,
        rng: SimRng,
        write_mode: WriteMode,
        segment_bytes: u64,
        min_insync: usize,
    ) -> World {
        let shard_config = ShardConfig { write_mode, cache_bytes: 2 * 1024, ..ShardConfig::default() };
        let log_config = LogConfig { segment_bytes, ..LogConfig::default() };
        let mut world = World {
            seed,
            scripted,
            rng,
            step: 0,
            now_ms: START_MS,
            trace: std::env::var("SKUA_SIM_TRACE").is_ok_and(|value| value != "0"),
            log_config,
            shard_config,
            replicas: Vec::with_capacity(REPLICA_COUNT),
            epoch: 1,
            leader: 0,
            isr: (0..REPLICA_COUNT).collect(),
            min_insync,
            zombie: None,
            next_write: 0,
            waiting: Vec::new(),
            acknowledged: Vec::new(),
            committed: Vec::new(),
            by_offset_and_epoch: BTreeMap::new(),
            high_watermarks: BTreeMap::new(),
            counts: Counts::default(),
        };
        for index in 0..REPLICA_COUNT {
            let sim = SimFs::new(seed.wrapping_mul(0x9E37_79B9).wrapping_add(index as u64 + 1), SimFaults::default());
            let dir = PathBuf::from(format!("/broker-{index}/t-0"));
            let role = if index == 0 {
                Role::Leader { epoch: LeaderEpoch(1) }
            } else {
                Role::Follower { epoch: LeaderEpoch(1) }
            };
            let (partitions, id) = world.open(&sim, &dir, role);
            world.replicas.push(Replica { sim, dir, partitions: Some(partitions), id });
        }
        world.note(format!(
            "{write_mode:?}, segment.bytes {}, min.insync.replicas {min_insync}",
            log_config.segment_bytes
        ));
        world.apply_replication();
        world
    }

    fn context(&self) -> String {
        if self.scripted {
            return format!("scripted scenario, step {}", self.step);
        }
        format!(
            "seed {} step {}; replay: SKUA_SIM_SEED={} SKUA_SIM_TRACE=1 cargo test -p skua-replica --test replication_sim replicas_keep -- --ignored --nocapture",
            self.seed, self.step, self.seed
        )
    }

    fn note(&self, text: String) {
        if self.trace {
            let roles: Vec<String> = self
                .replicas
                .iter()
                .map(|replica| {
                    let partition = replica.partition();
                    let role = match partition.role() {
                        Role::Leader { epoch } => format!("L{}", epoch.0),
                        Role::Follower { epoch } => format!("F{}", epoch.0),
                    };
                    format!("{role} end {} hw {}", partition.log_end_offset(), partition.high_watermark())
                })
                .collect();
            eprintln!("[seed {} step {}] {text} | isr {:?} | {}", self.seed, self.step, self.isr, roles.join("; "));
        }
    }

    fn open(&self, sim: &SimFs, dir: &Path, role: Role) -> (Partitions, LogId) {
        let engine = Shard::new(Box::new(sim.clone()), self.shard_config).expect("shard");
        let (trigger, _) = futures_channel::mpsc::unbounded();
        let mut partitions = Partitions::new(engine, trigger);
        let (id, _) = partitions
            .open(dir, self.log_config, role, self.now_ms)
            .unwrap_or_else(|error| panic!("{} opens: {error}; {}", dir.display(), self.context()));
        (partitions, id)
    }

    fn pick(&mut self, from: &[usize]) -> usize {
        from[self.rng.below(from.len() as u64) as usize]
    }

    /// The replicas that copy the leader: neither the leader nor a zombie.
    fn followers(&self) -> Vec<usize> {
        (0..REPLICA_COUNT).filter(|index| *index != self.leader && Some(*index) != self.zombie).collect()
    }

    // The controller.

    /// Every replica but a zombie takes the role the controller gives it in its epoch, then the
    /// replicas and ISR (as the broker applies a metadata image: role first).
    fn apply_roles(&mut self) {
        if self.zombie == Some(self.leader) {
            self.zombie = None;
        }
        let epoch = LeaderEpoch(self.epoch);
        for index in 0..REPLICA_COUNT {
            if Some(index) == self.zombie {
                continue;
            }
            let wanted = if index == self.leader { Role::Leader { epoch } } else { Role::Follower { epoch } };
            let replica = &mut self.replicas[index];
            if replica.partition().role() == wanted {
                continue;
            }
            let id = replica.id;
            let changed = match wanted {
                Role::Leader { epoch } => replica.partitions_mut().become_leader(id, epoch),
                Role::Follower { epoch } => replica.partitions_mut().become_follower(id, epoch),
            };
            if let Err(error) = changed {
                panic!("replica {index} takes {wanted:?}: {error}; {}", self.context());
            }
        }
        self.apply_replication();
    }

    fn apply_replication(&mut self) {
        let replicas: Vec<ReplicaId> = (0..REPLICA_COUNT).map(replica_id).collect();
        let isr: Vec<ReplicaId> = self.isr.iter().copied().map(replica_id).collect();
        let (min_insync, now_ms) = (self.min_insync, self.now_ms);
        for index in 0..REPLICA_COUNT {
            if Some(index) == self.zombie {
                continue;
            }
            let replica = &mut self.replicas[index];
            let id = replica.id;
            replica
                .partitions_mut()
                .set_replication(id, replica_id(index), &replicas, &isr, min_insync, now_ms)
                .expect("set_replication");
        }
    }

    // The steps.

    fn step(&mut self) {
        self.step += 1;
        self.now_ms += self.rng.below(STEP_MS_MAX) as i64;
        match self.rng.below(100) {
            0..=27 => {
                let writer = self.pick_writer();
                let commit = self.rng.chance(1, 2);
                self.append(writer, commit);
            }
            28..=35 => {
                let writer = self.pick_writer();
                self.commit(writer);
            }
            36..=65 => {
                let followers = self.followers();
                if !followers.is_empty() {
                    let follower = self.pick(&followers);
                    let max_bytes = 1 + self.rng.below(FETCH_BYTES_MAX);
                    let commit_at_once = self.rng.chance(1, 2);
                    self.fetch_round(follower, max_bytes, commit_at_once);
                }
            }
            66..=71 => {
                let followers = self.followers();
                if !followers.is_empty() {
                    let follower = self.pick(&followers);
                    self.commit(follower);
                }
            }
            72..=76 => self.shrink_isr(),
            77..=82 => {
                let index = self.rng.below(REPLICA_COUNT as u64) as usize;
                self.crash(index, None);
            }
            83..=89 => {
                let candidates: Vec<usize> =
                    self.isr.iter().copied().filter(|candidate| *candidate != self.leader).collect();
                if !candidates.is_empty() {
                    let to = self.pick(&candidates);
                    let zombie = self.zombie.is_none() && self.rng.chance(1, 3);
                    self.change_leader(to, zombie);
                }
            }
            90..=93 => self.tell_zombie(),
            _ => {} // Time passes.
        }
        self.observe();
    }

    fn commit(&mut self, index: usize) {
        let now_ms = self.now_ms;
        self.replicas[index].partitions_mut().commit(now_ms);
        self.note(format!("replica {index} commits"));
        // Now and then the broker's timer checkpoints the high watermarks (unsynced: a crash may
        // keep or lose it); a restarted replica starts from it.
        if self.rng.chance(1, 3) {
            let written = self.replicas[index].partitions_mut().checkpoint_high_watermarks();
            self.note(format!("replica {index} checkpoints {written} high watermark(s)"));
        }
    }

    /// The leader takes most writes; a zombie (deposed, not told yet) some.
    fn pick_writer(&mut self) -> usize {
        match self.zombie {
            Some(zombie) if self.rng.chance(1, 3) => zombie,
            _ => self.leader,
        }
    }

    /// `writer` (the leader, or a zombie) appends one batch with acks=all, and commits it if
    /// `commit`.
    fn append(&mut self, writer: usize, commit: bool) {
        let number = self.next_write;
        self.next_write += 1;
        let values: Vec<Vec<u8>> = (0..1 + self.rng.below(RECORDS_PER_BATCH_MAX))
            .map(|record| {
                let padding = "x".repeat(self.rng.below(PADDING_BYTES_MAX) as usize);
                format!("seed {} write {number} record {record} {padding}", self.seed).into_bytes()
            })
            .collect();
        let records: Vec<(&[u8], &[u8])> = values.iter().map(|value| (&b"key"[..], value.as_slice())).collect();
        let batch = ValidatedBatches::validate(Bytes::from(make_batch(&records, self.now_ms))).expect("valid batch");
        let now_ms = self.now_ms;
        let replica = &mut self.replicas[writer];
        let id = replica.id;
        let epoch = replica.partition().leader_epoch().0;
        match replica.partitions_mut().append(id, &batch, Acks::All, now_ms) {
            Ok(appended) => {
                self.counts.appends += 1;
                let Some(ack) = appended.ack else { panic!("acks=all without an ack; {}", self.context()) };
                self.note(format!(
                    "replica {writer} (epoch {epoch}) appends write {number} at {}..={}",
                    appended.base_offset, appended.last_offset
                ));
                self.waiting.push(Write {
                    number,
                    writer,
                    epoch,
                    base: appended.base_offset.0,
                    last: appended.last_offset.0,
                    records: batch.bytes().slice(BATCH_HEADER_BYTES..),
                    ack,
                });
                if commit {
                    self.commit(writer);
                }
            }
            Err(ReplicaError::NotEnoughReplicas { .. }) => {
                self.counts.refused += 1;
                self.note(format!("replica {writer} refuses write {number}: not enough replicas"));
            }
            Err(error) => panic!("replica {writer} append: {error}; {}", self.context()),
        }
    }

    /// One fetch of `follower` from the leader, in the order the broker runs it: the follower
    /// fetches only what it has committed; the leader records the fetch, then answers.
    fn fetch_round(&mut self, follower: usize, max_bytes: u64, commit_at_once: bool) {
        self.counts.fetches += 1;
        let (leader, now_ms, context) = (self.leader, self.now_ms, self.context());
        let (to, from) = pair(&mut self.replicas, follower, leader);
        let (to_id, from_id) = (to.id, from.id);
        to.partitions_mut().commit(now_ms);
        let (fetch_offset, last_fetched_epoch) = (to.partition().log_end_offset(), to.partition().last_epoch());

        from.partitions_mut()
            .follower_fetched(from_id, replica_id(follower), fetch_offset, last_fetched_epoch, now_ms)
            .unwrap_or_else(|error| panic!("follower_fetched: {error}; {context}"));
        let partition = from.partition();
        let (leader_end, high_watermark) = (partition.log_end_offset(), partition.high_watermark());
        let diverging = last_fetched_epoch.and_then(|epoch| {
            partition.diverging_epoch(fetch_offset, epoch).unwrap_or_else(|error| {
                panic!("the leader cannot place the follower's epoch {epoch:?} at {fetch_offset}: {error}; {context}")
            })
        });
        let recorded = partition
            .replication()
            .and_then(|replication| replication.followers.get(&replica_id(follower)))
            .and_then(|state| state.log_end);
        let answer = match diverging {
            Some(diverging) => Answer::Diverging(diverging),
            None if fetch_offset > leader_end => Answer::OutOfRange { leader_end, high_watermark },
            None => {
                let plan = from.partitions().read(from_id, fetch_offset, max_bytes, ReadBound::LogEnd).expect("read");
                let batches = plan.map(|plan| {
                    ValidatedBatches::validate(plan.into_bytes().expect("bytes"))
                        .expect("the leader's batches are valid")
                });
                Answer::Records { batches, high_watermark }
            }
        };

        let text = match answer {
            Answer::Diverging(diverging) => {
                let end = to
                    .partitions_mut()
                    .truncate_to_divergence(to_id, diverging.epoch, diverging.start_offset, now_ms)
                    .unwrap_or_else(|error| panic!("truncate_to_divergence: {error}; {context}"));
                if end < fetch_offset {
                    self.counts.truncations += 1;
                }
                format!(
                    "replica {follower} fetches at {fetch_offset} (last epoch {last_fetched_epoch:?}): diverging {}@{}, truncated to {end}",
                    diverging.epoch.0, diverging.start_offset
                )
            }
            Answer::OutOfRange { leader_end, high_watermark } => {
                // The broker's fetcher (netd `start_over`): within the leader's log nothing is
                // cut (a divergent tail is found through the diverging epoch; a new leader's end
                // may trail for a moment), it asks again. Kafka's follower cuts back to the
                // leader's end (`handleOutOfRangeError`), whose end counts what it appended.
                self.counts.out_of_range += 1;
                format!(
                    "replica {follower} fetches at {fetch_offset}: out of range (leader end {leader_end}, hw {high_watermark}), asks again"
                )
            }
            Answer::Records { batches, high_watermark } => {
                let copied = match &batches {
                    Some(batches) => {
                        let info = to
                            .partitions_mut()
                            .append_replicated(to_id, batches, now_ms)
                            .unwrap_or_else(|error| panic!("append_replicated: {error}; {context}"));
                        if commit_at_once {
                            to.partitions_mut().commit(now_ms);
                        }
                        format!("{}..={}", info.base_offset, info.last_offset)
                    }
                    None => "nothing".to_string(),
                };
                to.partitions_mut()
                    .set_follower_high_watermark(to_id, high_watermark)
                    .expect("follower high watermark");
                format!(
                    "replica {follower} fetches at {fetch_offset} (last epoch {:?}): copies {copied}, leader hw {high_watermark}",
                    last_fetched_epoch.map(|epoch| epoch.0)
                )
            }
        };
        self.note(text);
        // Kafka's rule for joining, kept simple: this fetch, from the leader's end, was recorded
        // (a diverging one is not, and what the leader recorded before may be stale).
        let caught_up = diverging.is_none() && fetch_offset == leader_end && recorded == Some(fetch_offset);
        if !self.isr.contains(&follower) && caught_up {
            self.isr.insert(follower);
            self.counts.rejoins += 1;
            self.apply_replication();
            self.note(format!("replica {follower} rejoins the ISR"));
        }
    }

    /// The leader drops the ISR members that have not caught up for the lag time.
    fn shrink_isr(&mut self) {
        let replica = &self.replicas[self.leader];
        let candidates =
            replica.partitions().isr_candidates(replica.id, LAG_TIME_MAX_MS, self.now_ms).expect("isr_candidates");
        let mut changed = false;
        for lagging in candidates.shrink {
            let index = lagging.0 as usize;
            if self.isr.len() > 1 && index != self.leader {
                changed |= self.isr.remove(&index);
            }
        }
        if changed {
            self.counts.shrinks += 1;
            self.apply_replication();
            self.note("the ISR drops lagging members".to_string());
        }
    }

    /// Power loss on one broker: it restarts with what its disk kept, as a follower. It leaves the
    /// ISR (unless it is the last member); a leader that crashed is replaced by an ISR member
    /// (`successor`, or one the seed picks), or elected again when it was the last one.
    fn crash(&mut self, index: usize, successor: Option<usize>) {
        self.counts.crashes += 1;
        drop(self.replicas[index].partitions.take());
        self.replicas[index].sim.crash();
        let (sim, dir) = (self.replicas[index].sim.clone(), self.replicas[index].dir.clone());
        let (partitions, id) = self.open(&sim, &dir, Role::Follower { epoch: LeaderEpoch(self.epoch) });
        self.replicas[index].partitions = Some(partitions);
        self.replicas[index].id = id;
        if self.zombie == Some(index) {
            self.zombie = None;
        }
        if self.isr.len() > 1 {
            self.isr.remove(&index);
        }
        if index == self.leader {
            let candidates: Vec<usize> = self.isr.iter().copied().filter(|candidate| *candidate != index).collect();
            self.leader = match successor {
                _ if candidates.is_empty() => index,
                Some(successor) => {
                    assert!(candidates.contains(&successor), "replica {successor} is not in the ISR {:?}", self.isr);
                    successor
                }
                None => self.pick(&candidates),
            };
            self.epoch += 1;
            self.counts.elections += 1;
        }
        self.apply_roles();
        self.note(format!("replica {index} crashes and restarts; leader {} in epoch {}", self.leader, self.epoch));
    }

    /// The controller moves leadership to `to`, another ISR member, in the next epoch. The
    /// deposed leader is told at once, or (a zombie) later.
    fn change_leader(&mut self, to: usize, zombie: bool) {
        assert!(to != self.leader && self.isr.contains(&to), "replica {to} is another ISR member");
        let deposed = self.leader;
        self.leader = to;
        self.epoch += 1;
        self.counts.elections += 1;
        if zombie {
            assert!(self.zombie.is_none(), "one zombie at a time");
            self.zombie = Some(deposed);
            self.counts.zombies += 1;
        }
        self.apply_roles();
        let zombie = if self.zombie == Some(deposed) { " (the deposed leader is not told yet)" } else { "" };
        self.note(format!("leader {deposed} -> {} in epoch {}{zombie}", self.leader, self.epoch));
    }

    fn tell_zombie(&mut self) {
        if let Some(zombie) = self.zombie.take() {
            self.apply_roles();
            self.note(format!("replica {zombie} learns it is no longer leader"));
        }
    }

    // The checks.

    /// Invariants (1), (3), (4) and (5) after a step, and the acknowledgements that came.
    fn observe(&mut self) {
        let context = self.context();
        for index in 0..REPLICA_COUNT {
            let replica = &self.replicas[index];
            let partition = replica.partition();
            if let Role::Leader { epoch } = partition.role() {
                let high_watermark = partition.high_watermark().0;
                let seen = self.high_watermarks.entry(epoch.0).or_insert(0);
                assert!(
                    high_watermark >= *seen,
                    "invariant 3: the high watermark of leader {index} in epoch {} moved back from {} to {high_watermark}; {context}",
                    epoch.0,
                    *seen
                );
                *seen = high_watermark;
                let visible = replica.stored(ReadBound::HighWatermark);
                let visible_end = visible.last().map_or(0, |stored| stored.last + 1);
                assert_eq!(visible_end, high_watermark, "a consumer reads up to the high watermark; {context}");
                let common = visible.len().min(self.committed.len());
                for (seen_before, now) in self.committed[..common].iter().zip(&visible[..common]) {
                    assert!(
                        seen_before == now,
                        "invariant 1: leader {index} (epoch {}, hw {high_watermark}) lets consumers read {}..={} (epoch {}) where {}..={} (epoch {}) was committed before; {context}",
                        epoch.0,
                        now.base,
                        now.last,
                        now.epoch,
                        seen_before.base,
                        seen_before.last,
                        seen_before.epoch
                    );
                }
                if visible.len() > self.committed.len() {
                    self.committed = visible;
                }
            }
            let mut expected_base = replica.partitions().log_start_offset(replica.id).expect("log start").0;
            let mut last_epoch = i32::MIN;
            let history = partition.epoch_history();
            for stored in replica.stored(ReadBound::LogEnd) {
                let in_history = history.iter().rev().find(|start| start.start_offset.0 <= stored.base);
                assert!(
                    in_history.is_some_and(|start| start.epoch.0 == stored.epoch),
                    "invariant 5: replica {index}'s leader-epoch history {history:?} puts the batch at {} (epoch {}) in {in_history:?}; {context}",
                    stored.base,
                    stored.epoch
                );
                assert_eq!(stored.base, expected_base, "replica {index}: offsets contiguous; {context}");
                assert!(
                    stored.epoch >= last_epoch,
                    "replica {index}: epochs never decrease at {}; {context}",
                    stored.base
                );
                expected_base = stored.last + 1;
                last_epoch = stored.epoch;
                match self.by_offset_and_epoch.entry((stored.base, stored.epoch)) {
                    Entry::Vacant(vacant) => {
                        vacant.insert(stored.bytes);
                    }
                    Entry::Occupied(occupied) => assert!(
                        *occupied.get() == stored.bytes,
                        "invariant 4: replica {index} holds a batch at {} in epoch {} other than one held before; {context}",
                        stored.base,
                        stored.epoch
                    ),
                }
            }
        }
        self.counts.committed_offsets = self.committed.last().map_or(0, |stored| stored.last + 1);
        for mut write in std::mem::take(&mut self.waiting) {
            match poll_once(&mut write.ack) {
                None => self.waiting.push(write),
                Some(Err(_)) => self.counts.ack_failures += 1,
                Some(Ok(())) => {
                    let found = self.committed.iter().find(|stored| stored.base == write.base);
                    assert!(
                        found.is_some_and(|stored| stored.last == write.last && stored.records() == &write.records[..]),
                        "invariant 1: write {} (replica {} in epoch {}, {}..={}) is acknowledged but not what consumers may read there ({:?}); {context}",
                        write.number,
                        write.writer,
                        write.epoch,
                        write.base,
                        write.last,
                        found.map(|stored| (stored.base, stored.last, stored.epoch))
                    );
                    self.counts.acknowledged += 1;
                    self.note(format!("write {} acknowledged", write.number));
                    self.acknowledged.push(Acknowledged {
                        number: write.number,
                        base: write.base,
                        last: write.last,
                        records: write.records,
                    });
                }
            }
        }
    }

    /// One fetch of `follower` that takes all the leader has in a segment and commits it.
    fn fetch(&mut self, follower: usize) {
        self.fetch_round(follower, CATCH_UP_FETCH_BYTES, true);
    }

    /// The zombie is told; followers fetch until every replica is in the ISR with the leader's
    /// log and the high watermark is the leader's end.
    fn catch_up(&mut self) {
        self.tell_zombie();
        let rounds_max = CATCH_UP_ROUNDS_MIN + self.replicas[self.leader].partition().log_end_offset().0;
        for _ in 0..rounds_max {
            self.step += 1;
            let leader = self.leader;
            self.commit(leader);
            for follower in self.followers() {
                self.fetch(follower);
            }
            self.observe();
            let leader_partition = self.replicas[leader].partition();
            let leader_end = leader_partition.log_end_offset();
            let caught_up = self.isr.len() == REPLICA_COUNT
                && leader_partition.high_watermark() == leader_end
                && self.followers().iter().all(|follower| {
                    self.replicas[*follower].partition().log_end_offset() == leader_end
                        && leader_partition
                            .replication()
                            .and_then(|replication| replication.followers.get(&replica_id(*follower)))
                            .and_then(|state| state.log_end)
                            == Some(leader_end)
                });
            if caught_up {
                return;
            }
        }
        let states: Vec<String> = self
            .replicas
            .iter()
            .map(|replica| {
                let partition = replica.partition();
                format!(
                    "{:?} end {} history {:?}",
                    partition.role(),
                    partition.log_end_offset(),
                    partition.epoch_history()
                )
            })
            .collect();
        panic!("the replicas did not catch up in {rounds_max} rounds: {states:?}; {}", self.context());
    }

    /// Invariants (1) and (2) once every replica caught up.
    fn check_replicas_agree(&self) {
        let context = self.context();
        let leader = &self.replicas[self.leader];
        let high_watermark = leader.partition().high_watermark().0;
        let below = |replica: &Replica| -> Vec<Stored> {
            replica.stored(ReadBound::LogEnd).into_iter().filter(|stored| stored.last < high_watermark).collect()
        };
        let reference = below(leader);
        assert_eq!(reference.last().map_or(0, |stored| stored.last + 1), high_watermark, "{context}");
        for (index, replica) in self.replicas.iter().enumerate() {
            let stored = below(replica);
            assert!(
                stored == reference,
                "invariant 2: replica {index} differs from leader {} below the high watermark {high_watermark}; {context}",
                self.leader
            );
            assert!(
                stored.len() >= self.committed.len() && stored[..self.committed.len()] == self.committed[..],
                "invariant 1: replica {index} lost or changed committed batches; {context}"
            );
            for write in &self.acknowledged {
                let found = stored.iter().find(|stored| stored.base == write.base);
                assert!(
                    found.is_some_and(|stored| stored.last == write.last && stored.records() == &write.records[..]),
                    "invariant 1: acknowledged write {} ({}..={}) is not on replica {index}; {context}",
                    write.number,
                    write.base,
                    write.last
                );
            }
        }
    }

    /// Every broker loses power at once and restarts; the leader is elected again.
    fn crash_all(&mut self) {
        for index in 0..REPLICA_COUNT {
            drop(self.replicas[index].partitions.take());
            self.replicas[index].sim.crash();
        }
        for index in 0..REPLICA_COUNT {
            let (sim, dir) = (self.replicas[index].sim.clone(), self.replicas[index].dir.clone());
            let (partitions, id) = self.open(&sim, &dir, Role::Follower { epoch: LeaderEpoch(self.epoch) });
            self.replicas[index].partitions = Some(partitions);
            self.replicas[index].id = id;
        }
        self.counts.crashes += REPLICA_COUNT as u64;
        self.epoch += 1;
        self.counts.elections += 1;
        self.apply_roles();
        self.note(format!("every replica crashes and restarts; leader {} in epoch {}", self.leader, self.epoch));
    }
}

fn run_seed(seed: u64, steps: usize) -> Counts {
    let mut world = World::new(seed);
    world.observe();
    for _ in 0..steps {
        world.step();
    }
    world.catch_up();
    world.check_replicas_agree();
    world.crash_all();
    world.observe();
    world.catch_up();
    world.check_replicas_agree();
    world.counts
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|text| text.parse().unwrap_or_else(|_| panic!("{name} must be a number")))
}

#[test]
fn replicas_keep_every_committed_write_through_crashes_and_leader_changes() {
    let steps = env_number("SKUA_SIM_STEPS").map_or(STEPS_DEFAULT, |steps| steps as usize);
    let seeds: Vec<u64> = match env_number("SKUA_SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_number("SKUA_SIM_SEEDS").unwrap_or(SEEDS_DEFAULT)).collect(),
    };
    let started = std::time::Instant::now();
    let mut totals = Counts::default();
    for seed in &seeds {
        let seed = *seed;
        // The partition layer's own assertions panic without knowing the seed: say it.
        match std::panic::catch_unwind(|| run_seed(seed, steps)) {
            Ok(counts) => totals.add(&counts),
            Err(panic) => {
                eprintln!("replication_sim: seed {seed} FAILED ({steps} steps); replay: SKUA_SIM_SEED={seed} SKUA_SIM_STEPS={steps} SKUA_SIM_TRACE=1 cargo test -p skua-replica --test replication_sim replicas_keep -- --ignored --nocapture");
                std::panic::resume_unwind(panic);
            }
        }
    }
    eprintln!("replication_sim: {} seeds x {steps} steps passed in {:.1?}: {totals:?}", seeds.len(), started.elapsed());
    // The seeds must reach the cases this test is about.
    if seeds.len() >= 10 {
        assert!(
            totals.acknowledged > 0
                && totals.truncations > 0
                && totals.crashes > 0
                && totals.elections > 0
                && totals.zombies > 0
                && totals.shrinks > 0
                && totals.rejoins > 0
                && totals.refused + totals.ack_failures > 0,
            "{totals:?}"
        );
    }
}

// Scripted scenarios: the shortest paths the seeds found to each defect, with the same checks.

/// A replica that led an epoch and wrote nothing in it keeps that epoch in its history at its
/// log end. Following the next leader, which never heard of that epoch, it names it as its last
/// fetched epoch; the leader answers with the epoch before and where it ends here, which is this
/// replica's end, so `truncate_to_divergence` cuts nothing and the history keeps the epoch: every
/// fetch gets the same answer, the follower never copies again and holds the high watermark
/// (acks=all) until it leaves the ISR. Kafka's `truncateTo` trims the epoch cache to the log end
/// even when it removes no record, for exactly this case.
#[test]
fn a_follower_that_led_an_epoch_without_writing_catches_up() {
    let mut world = World::scripted(1);
    world.append(0, true); // In epoch 1.
    world.fetch(1);
    world.fetch(1);
    world.change_leader(1, false); // Epoch 2: replica 1 leads and writes nothing.
    world.change_leader(0, false); // Epoch 3.
    world.append(0, true);
    world.observe();
    world.catch_up();
    world.check_replicas_agree();
}

/// A replica opened as a follower takes its log end as its high watermark (`Partition::new`:
/// "recovered data is committed"), though the leader's may be far lower. Elected later, it lets
/// consumers read records no other in-sync replica has; when it fails, an ISR member without them
/// leads and those offsets get other records. Kafka starts a restarted replica from its
/// checkpointed high watermark (at most the leader's), and a new leader's high watermark only
/// follows what the ISR has.
#[test]
fn records_a_consumer_could_read_survive_the_leader_that_showed_them() {
    let mut world = World::scripted(1);
    world.append(0, true); // In epoch 1; replica 2 never fetches, so the high watermark stays 0.
    world.fetch(1);
    world.fetch(1);
    world.crash(1, None); // Restarts with its log end as high watermark, and leaves the ISR.
    world.fetch(1); // From the leader's end: back in the ISR.
    world.change_leader(1, false); // Epoch 2: consumers may read all of epoch 1 on replica 1.
    world.observe();
    world.crash(1, Some(2)); // Epoch 3: replica 2, in the ISR with an empty log, leads.
    world.append(2, true);
    world.catch_up();
    world.check_replicas_agree();
}

/// Opening a partition trims its leader-epoch history to the recovered log in memory only: the
/// file keeps an epoch that began in a tail the crash took. Once the log grows past that offset
/// again with batches of an older epoch (copied from a leader, which writes no history when no
/// new epoch begins), the next open reads the stale entry back and the history puts those
/// batches in an epoch they were not written in: wrong `last_epoch`, wrong answers to
/// OffsetForLeaderEpoch and to followers' divergence checks, needless truncations.
#[test]
fn the_epoch_history_matches_the_batches_after_crashes() {
    let mut world = World::scripted(1);
    world.append(0, true); // In epoch 1, committed.
    world.append(0, false); // In epoch 1, not committed yet.
    world.fetch_round(2, CATCH_UP_FETCH_BYTES, false); // Replica 2 copies the first, uncommitted.
    world.change_leader(2, false); // Epoch 2 begins past the uncommitted copy, on disk at once.
    world.crash(2, Some(0)); // The copy is lost, the history file still names epoch 2.
    world.catch_up(); // Replica 2 copies both epoch 1 batches again: no new epoch, no write.
    world.crash(2, None);
    world.observe();
}

/// A follower's copy that is appended but not committed when it becomes leader puts the start
/// of its epoch past its committed end, so for a follower fetching at that epoch start the
/// leader finds no divergence (`diverging_epoch`: the epoch before ends there) yet its log ends
/// below: the read answers OFFSET_OUT_OF_RANGE. The broker's fetcher (netd `start_over`) then
/// cuts back to the leader's high watermark, which a new leader has not moved yet: an in-sync
/// follower drops acknowledged writes, and is elected. Kafka's follower cuts back to the
/// leader's end (and a Kafka leader's epochs never begin past its end).
#[test]
fn an_in_sync_follower_out_of_range_keeps_acknowledged_writes() {
    let mut world = World::scripted(1);
    world.append(0, true); // A: acknowledged below.
    world.fetch(2);
    world.append(0, true); // B.
    world.fetch_round(2, CATCH_UP_FETCH_BYTES, false); // Replica 2 copies B, uncommitted.
    world.fetch(1);
    world.fetch(1); // Replica 1 has A and B: the high watermark covers A.
    world.observe();
    assert_eq!(world.acknowledged.len(), 1, "A is acknowledged");
    world.crash(0, Some(2)); // Epoch 2 on replica 2 begins after B, its log ends before B.
    world.fetch(1); // Out of range at replica 2 (its end trails): nothing is cut.
    world.change_leader(1, false);
    world.append(1, true);
    world.catch_up();
    world.check_replicas_agree();
}
