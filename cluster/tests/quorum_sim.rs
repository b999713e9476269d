//! A seeded, deterministic simulation of the metadata quorum: three or five controllers, a
//! network that drops, delays, duplicates and partitions messages, nodes that crash and restart,
//! and simulated brokers that register, heartbeat, create and delete topics, fetch producer-id
//! blocks and ask for preferred leaders.
//!
//! The same simulation runs over two stores ([`SimStore`]):
//! - `MemLog`, an in-test log whose crash model is "the state at the last sync survives";
//! - the real [`RaftLog`] on `engine::io::sim::SimFs` (one simulated machine per node), with small
//!   segments so that rolls, compactions and received snapshots happen within a run. A crash is
//!   either a process kill (the page cache survives) or a power loss (`SimFs::crash`: every file
//!   keeps a seeded random prefix of its unsynced writes, the last one possibly torn, and renames
//!   not followed by a directory sync are undone); the node restarts by reopening the log. A power
//!   loss also strikes at a chosen I/O operation ([`CuttableFs`]): in the middle of a Raft
//!   `Ready`, a segment roll, a compaction, a received snapshot or a recovery.
//!
//! Checked after every step:
//! - at most one active controller per Raft term, and a node is active only in growing terms;
//! - a node's term never goes back, across restarts too (the hard state is durable);
//! - every node's image at the same metadata offset is the same image, and every node that has
//!   applied the log up to the same index has the same state: this is what covers restarts and
//!   received snapshots, whose image sits at the snapshot's index rather than at a batch's;
//! - every node's log agrees with every other on the entries each has applied (same term, same
//!   bytes), and a crash never loses an entry the node had applied;
//! - a partition's leader epoch never goes back (per topic id, across each node's images);
//! - no producer id is handed out twice (blocks from acknowledged replies are disjoint).
//!
//! And at the end, with faults healed: every node applied the same log up to the same index,
//! converged to the same image, and the cluster made progress (topics were created, blocks
//! handed out); over all seeds, snapshots were taken and sent and power losses dropped unsynced
//! writes (and, on `RaftLog`, segments rolled and power cuts struck).
//!
//! `SKUA_SIM_SEEDS=<n>` runs n seeds per store (the long form); a failing seed is printed and
//! `SKUA_SIM_SEED=<seed>` replays it alone.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use cluster::controller::{
    ControllerConfig, Heartbeat, IsrChange, IsrChangeOutcome, NewTopic, Reassignment, ReassignmentOutcome, Registration,
};
use cluster::image::MetadataImage;
use cluster::quorum::{ControllerReply, ControllerRequest, DurableLog, Quorum, QuorumConfig, RequestError};
use cluster::raft_log::{RaftLog, RaftLogConfig, SEGMENT_SUFFIX};
use cluster::records::{decode_batch, Endpoint};
use cluster::{BrokerId, ClusterError, ClusterId, PartitionIndex, TopicId};
use engine::io::sim::{SimFaults, SimFs};
use engine::io::{Completion, FileRef, FileSystem, OpenOptions, StorageFile, WriteChain};
use raft::prelude::{ConfState, Entry, HardState, Message, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

mod store {
    use super::*;

    /// What survives a crash: the state as of the last sync.
    #[derive(Clone, Debug, Default, PartialEq)]
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

/// A durable log the simulation runs the quorum over, with its crash model.
trait SimStore: DurableLog + Sized {
    const NAME: &'static str;
    /// What outlives the node's process: its disk (and page cache).
    type Machine;
    fn new_machine(seed: u64, node: BrokerId) -> Self::Machine;
    /// The node's process starts: it opens the log its machine holds (an error only from an armed
    /// power cut).
    fn open(machine: &Self::Machine) -> Result<Self, ClusterError>;
    /// The process dies with its quorum (if it had got as far as opening one); on `power_loss` the
    /// machine also loses what the crash model drops. Returns whether unsynced writes were lost.
    fn crash(quorum: Option<Quorum<Self>>, machine: &mut Self::Machine, power_loss: bool) -> bool;
    /// Arms a power cut after `operations` more mutating I/O operations, unless one is armed.
    fn arm_power_cut(machine: &Self::Machine, operations: u64);
    /// The armed cut struck: the store's errors since come from it.
    fn power_was_cut(machine: &Self::Machine) -> bool;
    /// The highest segment sequence number on the machine (0 for a store without segments).
    fn segment_sequence_max(machine: &Self::Machine) -> u64;
}

impl SimStore for MemLog {
    const NAME: &'static str = "MemLog";
    type Machine = Disk;

    fn new_machine(_seed: u64, _node: BrokerId) -> Disk {
        Disk::default()
    }
    fn open(machine: &Disk) -> Result<MemLog, ClusterError> {
        Ok(MemLog::from_disk(machine.clone()))
    }
    fn crash(quorum: Option<Quorum<MemLog>>, machine: &mut Disk, power_loss: bool) -> bool {
        let Some(quorum) = quorum else { return false };
        let store = quorum.store();
        // A process kill keeps what was written (the page cache), a power loss what was synced.
        *machine = if power_loss { store.disk.clone() } else { store.live.clone() };
        power_loss && store.disk != store.live
    }
    /// `MemLog` writes nothing until `sync`, which cannot fail: its crashes fall between `Ready`s.
    fn arm_power_cut(_machine: &Disk, _operations: u64) {}
    fn power_was_cut(_machine: &Disk) -> bool {
        false
    }
    fn segment_sequence_max(_machine: &Disk) -> u64 {
        0
    }
}

const RAFT_LOG_DIR: &str = "/metadata/raft";
/// Small segments, so that a run rolls many (a record is tens to hundreds of bytes) and compaction
/// deletes whole ones.
const SIM_SEGMENT_BYTES_MAX: u64 = 2 * 1024;
/// Short writes split a record's write in pieces, which a power loss may keep some of.
const SIM_SHORT_WRITES_PER_MILLION: u64 = 50_000;

/// One node's simulated machine: its disk, and a power cut that may be armed to strike at a chosen
/// I/O operation (in the middle of a Raft `Ready`, a segment roll, a compaction...).
struct SimMachine {
    fs: SimFs,
    /// Mutating operations that still succeed before the power goes; [`POWER_ON`] when no cut is
    /// armed, [`POWER_CUT`] once it struck (every operation fails until the node crashes).
    operations_left: Arc<AtomicU64>,
}

const POWER_ON: u64 = u64::MAX;
const POWER_CUT: u64 = u64::MAX - 1;

impl SimStore for RaftLog {
    const NAME: &'static str = "RaftLog";
    /// One simulated machine per node: a power loss takes down one node's disk, not the others'.
    type Machine = SimMachine;

    fn new_machine(seed: u64, node: BrokerId) -> SimMachine {
        let faults = SimFaults { short_write_per_million: SIM_SHORT_WRITES_PER_MILLION, ..SimFaults::default() };
        let fs = SimFs::new(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ node.0 as u64, faults);
        SimMachine { fs, operations_left: Arc::new(AtomicU64::new(POWER_ON)) }
    }
    fn open(machine: &SimMachine) -> Result<RaftLog, ClusterError> {
        let config = RaftLogConfig { segment_bytes_max: SIM_SEGMENT_BYTES_MAX };
        let fs = CuttableFs { inner: machine.fs.clone(), operations_left: Arc::clone(&machine.operations_left) };
        RaftLog::open_with(Box::new(fs), Path::new(RAFT_LOG_DIR), config)
    }
    fn crash(quorum: Option<Quorum<RaftLog>>, machine: &mut SimMachine, power_loss: bool) -> bool {
        drop(quorum);
        machine.operations_left.store(POWER_ON, Ordering::Relaxed);
        power_loss && machine.fs.crash() > 0
    }
    fn arm_power_cut(machine: &SimMachine, operations: u64) {
        let _ = machine.operations_left.compare_exchange(POWER_ON, operations, Ordering::Relaxed, Ordering::Relaxed);
    }
    fn power_was_cut(machine: &SimMachine) -> bool {
        machine.operations_left.load(Ordering::Relaxed) == POWER_CUT
    }
    fn segment_sequence_max(machine: &SimMachine) -> u64 {
        machine
            .fs
            .file_paths()
            .iter()
            .filter_map(|path| path.file_name()?.to_str()?.strip_suffix(SEGMENT_SUFFIX)?.parse().ok())
            .max()
            .unwrap_or(0)
    }
}

/// The machine's file system as its process sees it: [`SimFs`], until an armed power cut strikes.
/// The operation that strikes it and every later one fail without effect, so what the disk holds
/// is what it held at the cut; the simulation then crashes the `SimFs` (dropping what was not
/// synced) and restarts the node.
#[derive(Debug)]
struct CuttableFs {
    inner: SimFs,
    operations_left: Arc<AtomicU64>,
}

/// A file of a [`CuttableFs`].
#[derive(Debug)]
struct CuttableFile {
    inner: FileRef,
    operations_left: Arc<AtomicU64>,
}

/// Counts one mutating operation against the armed cut: the one that finds none left strikes it
/// and fails, as does every one after.
fn power(operations_left: &AtomicU64) -> io::Result<()> {
    let after = match operations_left.load(Ordering::Relaxed) {
        POWER_ON => POWER_ON,
        POWER_CUT | 0 => POWER_CUT,
        left => left - 1,
    };
    operations_left.store(after, Ordering::Relaxed);
    powered(operations_left)
}

/// Fails any operation (reads included) once the power is gone.
fn powered(operations_left: &AtomicU64) -> io::Result<()> {
    match operations_left.load(Ordering::Relaxed) {
        POWER_CUT => Err(io::Error::other("simulated power cut")),
        _ => Ok(()),
    }
}

impl FileSystem for CuttableFs {
    fn name(&self) -> &'static str {
        "cuttable sim"
    }
    fn open(&mut self, path: &Path, options: OpenOptions) -> io::Result<FileRef> {
        match options.create || options.truncate {
            true => power(&self.operations_left)?,
            false => powered(&self.operations_left)?,
        }
        let inner = self.inner.open(path, options)?;
        Ok(Arc::new(CuttableFile { inner, operations_left: Arc::clone(&self.operations_left) }))
    }
    fn create_dir_all(&mut self, path: &Path) -> io::Result<()> {
        power(&self.operations_left)?;
        self.inner.create_dir_all(path)
    }
    fn list_dir(&mut self, path: &Path) -> io::Result<Vec<String>> {
        powered(&self.operations_left)?;
        self.inner.list_dir(path)
    }
    fn remove_file(&mut self, path: &Path) -> io::Result<()> {
        power(&self.operations_left)?;
        self.inner.remove_file(path)
    }
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        power(&self.operations_left)?;
        self.inner.rename(from, to)
    }
    fn sync_dir(&mut self, path: &Path) -> io::Result<()> {
        power(&self.operations_left)?;
        self.inner.sync_dir(path)
    }
    // Chains hold files opened here, so their writes and syncs meet the cut too.
    fn start(&mut self, token: u64, chain: WriteChain) {
        self.inner.start(token, chain);
    }
    fn flush(&mut self) {
        self.inner.flush();
    }
    fn reap(&mut self, wait: bool) -> Vec<Completion> {
        self.inner.reap(wait)
    }
    fn in_flight(&self) -> usize {
        self.inner.in_flight()
    }
}

impl StorageFile for CuttableFile {
    fn path(&self) -> &Path {
        self.inner.path()
    }
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        powered(&self.operations_left)?;
        self.inner.read_at(buf, position)
    }
    fn write_at(&self, data: &[u8], position: u64) -> io::Result<usize> {
        power(&self.operations_left)?;
        self.inner.write_at(data, position)
    }
    fn sync_data(&self) -> io::Result<()> {
        power(&self.operations_left)?;
        self.inner.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        powered(&self.operations_left)?;
        self.inner.len()
    }
    fn set_len(&self, length: u64) -> io::Result<()> {
        power(&self.operations_left)?;
        self.inner.set_len(length)
    }
    fn read_fd(&self) -> Option<RawFd> {
        None
    }
    fn write_fd(&self) -> Option<RawFd> {
        None
    }
}

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
/// An armed power cut strikes within this many mutating I/O operations (an `advance` does a few,
/// a compaction or a recovery a dozen or so).
const CUT_OPERATIONS_MAX: u64 = 24;
const SESSION_TIMEOUT_MS: u64 = 600;

fn quorum_config(node: BrokerId, voters: &[BrokerId], seed: u64) -> QuorumConfig {
    QuorumConfig {
        node,
        voters: voters.to_vec(),
        election_tick: 10 + 3 * node.0 as usize,
        fixed_election_tick: true,
        heartbeat_tick: 2,
        // Half the seeds snapshot often, so that lagging and restarted nodes need snapshots sent.
        snapshot_entries: if seed % 4 < 2 { 40 } else { 8 },
        controller: ControllerConfig {
            node,
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

struct Node<S: SimStore> {
    id: BrokerId,
    quorum: Option<Quorum<S>>,
    machine: S::Machine,
    /// The last image this node published, for the "epochs never go back" check.
    last_image: Arc<MetadataImage>,
    /// The highest term seen after an `advance`, which persisted it: no restart goes below it.
    term: u64,
    /// The last term this node was the active controller in.
    active_term: u64,
    /// The highest index this node applied: applied entries were synced, no crash loses them.
    applied_max: u64,
    /// The log entries up to here were checked against `Checks::committed`.
    checked_index: u64,
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
    /// applied index -> the state every node that applied the log up to it must have (its
    /// image's offset aside: see [`same_state`]).
    applied_images: BTreeMap<u64, Arc<MetadataImage>>,
    /// States a node reported that could be compared with nothing known (see [`expected_state`]).
    states_unchecked: u64,
    /// index -> (term, data) of the entry some node applied there: every node's must be the same.
    committed: BTreeMap<u64, (u64, Bytes)>,
    /// Producer ids handed out.
    producer_ids: Vec<std::ops::Range<u64>>,
    /// Topics created, deleted or given partitions.
    changes_done: u64,
    elections: u64,
    isr_changes: u64,
    /// Reassignments started, replaced or cancelled.
    reassignments: u64,
    crashes: u64,
    /// Armed power cuts that struck (in the middle of an `advance` or of a recovery).
    power_cuts: u64,
    /// Power losses that dropped unsynced writes.
    lossy_power_losses: u64,
    restarts: u64,
    snapshots_sent: u64,
}

/// What a run covered, summed over seeds to check the simulation exercises what it claims to.
#[derive(Debug, Default)]
struct Coverage {
    seeds: u64,
    /// Runs in which some node compacted its log into a snapshot.
    compacted_runs: u64,
    snapshots_sent: u64,
    lossy_power_losses: u64,
    power_cuts: u64,
    /// Runs in which some node's log rolled past its first segment.
    rolled_runs: u64,
    isr_changes: u64,
    reassignments: u64,
}

/// What a request was, to check its reply.
#[derive(Clone, Debug)]
enum Asked {
    Register(usize),
    Heartbeat(usize),
    ProducerIds,
    IsrChange,
    Reassign,
    Other,
}

/// Names the failing seed when a run panics (an `expect` deep inside does not know it).
struct SeedOnPanic {
    store: &'static str,
    seed: u64,
}

impl Drop for SeedOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{} seed {} failed: replay it with SKUA_SIM_SEED={}", self.store, self.seed, self.seed);
        }
    }
}

fn run<S: SimStore>(seed: u64, coverage: &mut Coverage) {
    let _report = SeedOnPanic { store: S::NAME, seed };
    let store = S::NAME;
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let voter_count = if seed % 3 == 0 { 5 } else { 3 };
    let voters: Vec<BrokerId> = (1..=voter_count).map(BrokerId).collect();
    let mut nodes: Vec<Node<S>> = voters
        .iter()
        .map(|voter| {
            let machine = S::new_machine(seed, *voter);
            let quorum = Quorum::open(
                S::open(&machine).expect("a new log opens"),
                quorum_config(*voter, &voters, seed),
                &discard(),
            )
            .expect("opens");
            Node {
                id: *voter,
                quorum: Some(quorum),
                machine,
                last_image: Arc::new(MetadataImage::default()),
                term: 0,
                active_term: 0,
                applied_max: 0,
                checked_index: 0,
            }
        })
        .collect();
    let mut brokers: Vec<Broker> =
        (0..4).map(|index| Broker { id: BrokerId(100 + index), incarnation: 1, epoch: None }).collect();
    let mut network: Vec<(u64, Message)> = Vec::new();
    let mut cut: BTreeSet<u64> = BTreeSet::new(); // raft ids isolated from everyone
    let mut asked: BTreeMap<u64, Asked> = BTreeMap::new();
    let mut next_token = 0u64;
    let mut leader_hint: Option<BrokerId> = None;
    let mut checks = Checks::default();
    let fault_steps = 3_000;
    let quiet_from = fault_steps + 1_000; // no requests after this: the nodes converge
    let total_steps = quiet_from + 500;
    for step in 0..total_steps {
        let now_ms = step * TICK_MS;
        let faults = step < fault_steps;
        // Faults: crash (a process kill or a power loss), restart, isolate, heal.
        if faults && rng.chance(1) {
            let victim = rng.below(voter_count as u64) as usize;
            if let Some(quorum) = nodes[victim].quorum.take() {
                let power_loss = rng.chance(50);
                if S::crash(Some(quorum), &mut nodes[victim].machine, power_loss) {
                    checks.lossy_power_losses += 1;
                }
                checks.crashes += 1;
            }
        }
        // A power cut armed to strike at one of the next I/O operations of a node (or of its
        // recovery, if it is down).
        if faults && rng.chance(1) {
            let victim = rng.below(voter_count as u64) as usize;
            S::arm_power_cut(&nodes[victim].machine, rng.below(CUT_OPERATIONS_MAX));
        }
        for (index, node) in nodes.iter_mut().enumerate() {
            if node.quorum.is_none() && (!faults || rng.chance(2)) {
                let config = quorum_config(voters[index], &voters, seed);
                let quorum = match S::open(&node.machine).and_then(|log| Quorum::open(log, config, &discard())) {
                    Ok(quorum) => quorum,
                    Err(error) => {
                        assert!(
                            S::power_was_cut(&node.machine),
                            "{store} seed {seed}: node {} reopens: {error}",
                            node.id
                        );
                        power_cut(&mut checks, node, None);
                        continue;
                    }
                };
                // Everything the node applied before the crash was synced first: it is all there.
                let last_index = quorum.store().last_index().expect("last index");
                assert!(
                    last_index >= node.applied_max,
                    "{store} seed {seed}: node {} applied {} before its crash, its log ends at {last_index} after",
                    node.id,
                    node.applied_max
                );
                check_log(seed, store, node.id, quorum.store(), 0, node.applied_max, &mut checks.committed);
                node.checked_index = 0;
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
        // The simulated brokers' requests: to the quorum leader the last refusal named, as a
        // broker forwards them, or (without one, and now and then anyway) to a random node.
        if step < quiet_from && rng.chance(30) {
            let random = rng.below(voter_count as u64) as usize;
            let target = match leader_hint.and_then(|leader| voters.iter().position(|voter| *voter == leader)) {
                Some(leader) if !rng.chance(20) => leader,
                _ => random,
            };
            let image = nodes[target].quorum.as_ref().map(|quorum| quorum.image().clone());
            let (request, what) = broker_request(&mut rng, &mut brokers, step, image.as_deref());
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
            let output = match quorum.advance(now_ms) {
                Ok(output) => output,
                Err(error) => {
                    assert!(S::power_was_cut(&node.machine), "{store} seed {seed}: node {} advances: {error}", node.id);
                    let quorum = node.quorum.take();
                    power_cut(&mut checks, node, quorum);
                    continue;
                }
            };
            assert!(!S::power_was_cut(&node.machine), "{store} seed {seed}: node {} swallowed an I/O error", node.id);
            for message in output.messages {
                if message.get_msg_type() == raft::prelude::MessageType::MsgSnapshot {
                    checks.snapshots_sent += 1;
                }
                network.push((step + 1 + rng.below(3), message));
            }
            for (token, reply) in output.replies {
                let what = asked.remove(&token).expect("a reply answers a request");
                if let Err(RequestError::NotController { leader }) = &reply {
                    leader_hint = *leader;
                }
                record_reply(&mut checks, &mut brokers, what, reply);
            }
            check_node(seed, store, node, &mut checks);
        }
    }
    // Healed and quiet: everyone applied the same log and converged on the same image, and work
    // got done.
    let quorums: Vec<&Quorum<S>> = nodes.iter().map(|node| node.quorum.as_ref().expect("all restarted")).collect();
    for quorum in &quorums {
        assert_eq!(quorum.applied(), quorums[0].applied(), "{store} seed {seed}: nodes applied different logs");
        assert_eq!(**quorum.image(), **quorums[0].image(), "{store} seed {seed}: nodes did not converge");
        // Every entry each node holds up to its commit index, not only those it checked as it
        // applied them, agrees with every other node's.
        let commit = quorum.store().initial_state().expect("state").hard_state.commit;
        let held = commit.min(quorum.store().last_index().expect("last index"));
        check_log(seed, store, quorum.node(), quorum.store(), 0, held, &mut checks.committed);
    }
    let image = quorums[0].image();
    assert!(image.cluster_id.is_some(), "{store} seed {seed}: a cluster id was agreed");
    assert!(checks.changes_done >= 3, "{store} seed {seed}: only {} topic changes done", checks.changes_done);
    assert!(checks.producer_ids.len() >= 3, "{store} seed {seed}: only {} id blocks", checks.producer_ids.len());
    let snapshot_index_max =
        quorums.iter().map(|quorum| quorum.store().first_index().expect("first index") - 1).max().unwrap_or(0);
    let segment_sequence_max = nodes.iter().map(|node| S::segment_sequence_max(&node.machine)).max().unwrap_or(0);
    coverage.seeds += 1;
    coverage.compacted_runs += u64::from(snapshot_index_max > 0);
    coverage.rolled_runs += u64::from(segment_sequence_max > 0);
    coverage.snapshots_sent += checks.snapshots_sent;
    coverage.lossy_power_losses += checks.lossy_power_losses;
    coverage.power_cuts += checks.power_cuts;
    coverage.isr_changes += checks.isr_changes;
    coverage.reassignments += checks.reassignments;
    eprintln!(
        "{store} seed {seed}: {voter_count} voters, offset {}, applied {}, snapshot at {snapshot_index_max}, \
         segment {segment_sequence_max}, {} controller terms, {} crashes, {} power cuts, {} power losses dropped unsynced writes, {} restarts, \
         {} snapshots sent, {} states unchecked, {} topic changes done, {} id blocks, {} elections, {} ISR changes, {} reassignments",
        image.offset,
        quorums[0].applied(),
        checks.active.len(),
        checks.crashes,
        checks.power_cuts,
        checks.lossy_power_losses,
        checks.restarts,
        checks.snapshots_sent,
        checks.states_unchecked,
        checks.changes_done,
        checks.producer_ids.len(),
        checks.elections,
        checks.isr_changes,
        checks.reassignments
    );
}

/// The power cut armed on `node` struck: its process dies and its machine loses power.
fn power_cut<S: SimStore>(checks: &mut Checks, node: &mut Node<S>, quorum: Option<Quorum<S>>) {
    if S::crash(quorum, &mut node.machine, true) {
        checks.lossy_power_losses += 1;
    }
    checks.power_cuts += 1;
}

/// The checks after a node's `advance`.
fn check_node<S: SimStore>(seed: u64, store: &str, node: &mut Node<S>, checks: &mut Checks) {
    let Some(quorum) = node.quorum.as_ref() else { return };
    let term = quorum.term();
    assert!(term >= node.term, "{store} seed {seed}: node {} went back from term {} to {term}", node.id, node.term);
    node.term = term;
    if quorum.is_active() {
        let previous = checks.active.insert(term, quorum.node());
        assert!(
            previous.is_none_or(|other| other == quorum.node()),
            "{store} seed {seed}: two active controllers in term {term}: {previous:?} and {}",
            quorum.node()
        );
        assert!(
            term >= node.active_term,
            "{store} seed {seed}: node {} was active in term {}, now in {term}",
            node.id,
            node.active_term
        );
        node.active_term = term;
    }
    let image = Arc::clone(quorum.image());
    let agreed = checks.images.entry(image.offset).or_insert_with(|| Arc::clone(&image));
    assert_eq!(**agreed, *image, "{store} seed {seed}: node {} disagrees at offset {}", node.id, image.offset);
    let applied = quorum.applied();
    assert!(
        image.offset <= applied,
        "{store} seed {seed}: node {} image at {} > applied {applied}",
        node.id,
        image.offset
    );
    // The entries first: the expected state may be replayed from them.
    check_log(seed, store, node.id, quorum.store(), node.checked_index, applied, &mut checks.committed);
    node.checked_index = applied;
    match expected_state(checks, applied) {
        Some(expected) => assert!(
            same_state(&expected, &image),
            "{store} seed {seed}: node {} disagrees having applied up to {applied}:\n{expected:?}\n{image:?}",
            node.id
        ),
        None => checks.states_unchecked += 1,
    }
    checks.applied_images.entry(applied).or_insert(image.clone());
    node.applied_max = node.applied_max.max(applied);
    check_epochs_grow(seed, &node.last_image, &image);
    node.last_image = image;
}

/// The state after applying the log up to `applied`: as a node had it there, or as it follows
/// from the last state known before it and the entries nodes applied since. `None` when one of
/// those entries was never seen (a node applied and compacted it within one `advance`, or a power
/// cut ended the `advance` that applied it before anyone saw it).
fn expected_state(checks: &Checks, applied: u64) -> Option<Arc<MetadataImage>> {
    if let Some(image) = checks.applied_images.get(&applied) {
        return Some(Arc::clone(image));
    }
    let (&known, image) = checks.applied_images.range(..applied).next_back()?;
    let mut state = MetadataImage::clone(image);
    for index in known + 1..=applied {
        let (_, data) = checks.committed.get(&index)?;
        if !data.is_empty() {
            let batch = decode_batch(data).expect("an applied entry holds a batch");
            state = state.apply(index, &batch).expect("an applied batch fits the state before it");
        }
    }
    Some(Arc::new(state))
}

/// The same cluster state, whatever offset each image names: a snapshot's image sits at the
/// snapshot's index, an applied one at its last batch's, which may be lower.
fn same_state(a: &MetadataImage, b: &MetadataImage) -> bool {
    if a.offset == b.offset {
        return a == b;
    }
    MetadataImage { offset: 0, ..a.clone() } == MetadataImage { offset: 0, ..b.clone() }
}

/// The entries of a node's log in `(after, up_to]` (those it holds: not below its snapshot) are
/// the entries every other node has at those indexes; `up_to` must be committed.
fn check_log(
    seed: u64,
    store: &str,
    node: BrokerId,
    log: &impl Storage,
    after: u64,
    up_to: u64,
    committed: &mut BTreeMap<u64, (u64, Bytes)>,
) {
    let low = (after + 1).max(log.first_index().expect("first index"));
    if low > up_to {
        return;
    }
    let entries = log
        .entries(low, up_to + 1, None, GetEntriesContext::empty(false))
        .unwrap_or_else(|error| panic!("{store} seed {seed}: node {node} lacks entries {low}..={up_to}: {error}"));
    for entry in entries {
        let seen = committed.entry(entry.index).or_insert_with(|| (entry.term, entry.data.clone()));
        assert!(
            seen.0 == entry.term && seen.1 == entry.data,
            "{store} seed {seed}: node {node} holds entry {} of term {}, another node applied term {} there",
            entry.index,
            entry.term,
            seen.0
        );
    }
}

/// A random request of a random simulated broker; `image` (the target node's, maybe stale) is
/// where a leader reads the partitions it leads for an ISR change.
fn broker_request(
    rng: &mut Rng,
    brokers: &mut [Broker],
    step: u64,
    image: Option<&MetadataImage>,
) -> (ControllerRequest, Asked) {
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
        3 if rng.below(2) == 0 => (ControllerRequest::ElectPreferred(None), Asked::Other),
        3 => {
            let partition = (format!("topic-{}", rng.below(6)), PartitionIndex(rng.below(4) as i32));
            (ControllerRequest::ElectUnclean(vec![partition]), Asked::Other)
        }
        4 => {
            let name = format!("topic-{}", rng.below(6));
            (
                ControllerRequest::CreatePartitions { name, count: 2 + rng.below(5) as i32, assignment: Vec::new() },
                Asked::Other,
            )
        }
        5 | 6 if image.is_some_and(|image| image.partitions().any(|(_, p)| p.leader == Some(id))) => {
            // The leader shrinks or grows an ISR (itself kept, any other replica in or out),
            // from the epochs its image shows: stale when the image lags.
            let image = image.expect("checked above");
            let led: Vec<_> = image.partitions().filter(|(_, p)| p.leader == Some(id)).collect();
            let (topic, partition) = led[rng.below(led.len() as u64) as usize];
            let isr = partition.replicas.iter().copied().filter(|r| *r == id || rng.below(2) == 0).collect();
            let change = IsrChange {
                topic: topic.name.clone(),
                partition: partition.partition,
                leader_epoch: partition.leader_epoch,
                partition_epoch: partition.partition_epoch,
                isr,
            };
            (ControllerRequest::AlterPartition { broker: id, epoch, changes: vec![change] }, Asked::IsrChange)
        }
        7 if rng.below(2) == 0 => {
            // Move a partition to 1–3 brokers in a random order (a broker may be named that was
            // never registered: refused), or cancel its reassignment (1 in 4).
            let target = (!rng.chance(25)).then(|| {
                let mut candidates: Vec<BrokerId> = brokers.iter().map(|broker| broker.id).collect();
                candidates.push(BrokerId(99));
                let mut target = Vec::new();
                for _ in 0..1 + rng.below(3) {
                    let pick = candidates.remove(rng.below(candidates.len() as u64) as usize);
                    target.push(pick);
                }
                target
            });
            let reassignment = Reassignment {
                topic: format!("topic-{}", rng.below(6)),
                partition: PartitionIndex(rng.below(4) as i32),
                target,
            };
            let allow_factor_change = rng.below(4) != 0;
            (
                ControllerRequest::AlterReassignments { reassignments: vec![reassignment], allow_factor_change },
                Asked::Reassign,
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
        (Asked::Other, Ok(ControllerReply::Done)) => checks.changes_done += 1,
        (Asked::Other, Ok(ControllerReply::Elections(_))) => checks.elections += 1,
        (Asked::IsrChange, Ok(ControllerReply::IsrChanges(outcomes))) => {
            for outcome in outcomes {
                if let IsrChangeOutcome::Changed(state) = outcome {
                    // An ISR change keeps the leader in the ISR and the ISR within the replicas.
                    assert!(state.leader.is_some_and(|leader| state.isr.contains(&leader)), "{state:?}");
                    assert!(state.isr.iter().all(|member| state.replicas.contains(member)), "{state:?}");
                    checks.isr_changes += 1;
                }
            }
        }
        (Asked::Reassign, Ok(ControllerReply::Reassignments(outcomes))) => {
            checks.reassignments +=
                outcomes.iter().filter(|outcome| **outcome == ReassignmentOutcome::Accepted).count() as u64;
        }
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
        // Every partition state is well formed: distinct replicas, a non-empty ISR within them,
        // a leader in the ISR, and a reassignment's adding and removing replicas apart and
        // among the replicas.
        let distinct: BTreeSet<&BrokerId> = partition.replicas.iter().collect();
        let well_formed = distinct.len() == partition.replicas.len()
            && !partition.isr.is_empty()
            && partition.isr.iter().all(|member| partition.replicas.contains(member))
            && partition.leader.is_none_or(|leader| partition.isr.contains(&leader))
            && partition.adding.iter().chain(&partition.removing).all(|replica| partition.replicas.contains(replica))
            && partition.adding.iter().all(|replica| !partition.removing.contains(replica))
            && partition.target_replicas().iter().any(|_| true);
        assert!(well_formed, "seed {seed}: {}-{} is malformed: {partition:?}", topic.name, partition.partition.0);
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

/// Runs `SKUA_SIM_SEED` alone, or seeds `1..=SKUA_SIM_SEEDS` (`default_seeds` without it) and
/// checks they covered compaction, snapshot transfer and lossy power losses; returns what they
/// covered (nothing for a replay).
fn run_seeds<S: SimStore>(default_seeds: u64) -> Option<Coverage> {
    if let Some(seed) = std::env::var("SKUA_SIM_SEED").ok().and_then(|text| text.parse().ok()) {
        run::<S>(seed, &mut Coverage::default());
        return None;
    }
    let seeds: u64 = std::env::var("SKUA_SIM_SEEDS").ok().and_then(|text| text.parse().ok()).unwrap_or(default_seeds);
    let mut coverage = Coverage::default();
    for seed in 1..=seeds {
        run::<S>(seed, &mut coverage);
    }
    eprintln!("{}: {coverage:?}", S::NAME);
    assert!(coverage.compacted_runs > 0, "{}: no run compacted its log: {coverage:?}", S::NAME);
    assert!(coverage.snapshots_sent > 0, "{}: no run sent a snapshot: {coverage:?}", S::NAME);
    assert!(coverage.lossy_power_losses > 0, "{}: no power loss dropped a write: {coverage:?}", S::NAME);
    assert!(coverage.isr_changes > 0, "{}: no ISR change was applied: {coverage:?}", S::NAME);
    assert!(coverage.reassignments > 0, "{}: no reassignment was accepted: {coverage:?}", S::NAME);
    Some(coverage)
}

#[test]
fn the_quorum_keeps_its_invariants_under_loss_partitions_and_restarts() {
    run_seeds::<MemLog>(12);
}

/// The same simulation over the real log on a simulated disk that loses unsynced writes.
#[test]
fn the_quorum_keeps_its_invariants_on_the_raft_log_through_power_losses() {
    if let Some(coverage) = run_seeds::<RaftLog>(6) {
        assert!(coverage.rolled_runs > 0, "no run rolled a segment: {coverage:?}");
        assert!(coverage.power_cuts > 0, "no power cut struck: {coverage:?}");
    }
}
