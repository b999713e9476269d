//! Incremental fetch sessions (KIP-227): a shard's cache of the sessions its connections' fetches
//! opened, so that a consumer fetching many partitions sends only those whose position changed,
//! and hears only of those with something new.
//!
//! Owns: session ids and epochs, each session's partitions (in the order they are read: those
//! that returned records move to the back, so that a response limit does not starve the others,
//! as Kafka's cache does), what each session last told its client of every partition (high
//! watermark, log start), and the cache's bounds (`max.incremental.fetch.session.cache.slots`
//! sessions per broker, spread over the shards; [`SESSION_PARTITIONS_MAX`] partitions a
//! session). When full, a new session takes the place of the one least recently used if that one
//! has been idle [`SESSION_EVICTION_MS`] (a follower's may always take a consumer's); else the
//! fetch is answered without a session, which the protocol allows.
//!
//! One cache per shard (thread-per-core: no lock): a session lives on the shard of the connection
//! that opened it, and its id names that shard (`id % shard count`). A client that reconnects and
//! lands on another shard is answered FETCH_SESSION_ID_NOT_FOUND and opens a new session with a
//! full fetch, as after any broker-side eviction.
//!
//! Must not know: how partitions are read, or the Fetch wire format (the handler translates).

use std::collections::HashMap;
use std::time::Instant;

pub use crate::codec::errors::SessionError;

/// Partitions one session may hold; an incremental fetch that would grow a session past it closes
/// the session (the client starts again with a full fetch, which is then sessionless).
pub const SESSION_PARTITIONS_MAX: usize = 100_000;

/// How long a session must have been idle before a new one may take its place in a full cache
/// (Kafka's `FetchSessionCache` eviction time).
pub const SESSION_EVICTION_MS: u64 = 120_000;

/// Kafka's session epochs: `INITIAL` opens a session (a full fetch), `FINAL` closes one (a
/// sessionless full fetch).
pub const EPOCH_INITIAL: i32 = 0;
pub const EPOCH_FINAL: i32 = -1;

/// How a fetch names a topic: by name (Fetch v7–12) or by id (v13+). A session keeps the naming it
/// was opened with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TopicKey {
    Name(String),
    Id([u8; 16]),
}

/// One partition a fetch reads, as its request (or its session) names it.
#[derive(Clone, Debug, PartialEq)]
pub struct Wanted {
    pub topic: TopicKey,
    pub partition: i32,
    pub fetch_offset: i64,
    pub partition_max_bytes: u64,
    /// The leader epoch the client knows, or -1.
    pub current_leader_epoch: i32,
    pub last_fetched_epoch: i32,
    pub log_start_offset: i64,
}

impl Wanted {
    fn key(&self) -> (TopicKey, i32) {
        (self.topic.clone(), self.partition)
    }
}

/// What a partition's answer told the client; decides whether an incremental response names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Told {
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// One partition of a response, as the session sees it.
#[derive(Clone, Copy, Debug)]
pub struct Answered {
    pub told: Told,
    pub record_bytes: u64,
    /// An error, a diverging epoch or a preferred read replica: always answered.
    pub notable: bool,
}

/// A session's partition: what the client last asked, and what it was last told.
#[derive(Clone, Debug)]
struct Cached {
    wanted: Wanted,
    /// -1 until told (and after an error), so the next response names the partition.
    told: Told,
}

const UNTOLD: Told = Told { high_watermark: -1, log_start_offset: -1 };

#[derive(Debug)]
struct Session {
    /// The epoch the client's next fetch in this session must carry.
    next_epoch: i32,
    partitions: Vec<Cached>,
    places: HashMap<(TopicKey, i32), usize>,
    last_used: Instant,
    /// Opened by a follower: may take the place of a consumer's session.
    follower: bool,
    by_id: bool,
}

impl Session {
    fn reindex(&mut self) {
        self.places = self.partitions.iter().enumerate().map(|(place, cached)| (cached.wanted.key(), place)).collect();
    }
}

/// What a fetch reads, once its session fields are applied.
#[derive(Debug, PartialEq)]
pub enum Plan {
    /// A full fetch of the request's partitions; `open`: a new session may be created for them
    /// once answered ([`FetchSessions::finish_full`]).
    Full { wanted: Vec<Wanted>, open: bool },
    /// An incremental fetch of session `id`: every partition of the session, in its order.
    Incremental { id: i32, wanted: Vec<Wanted> },
}

/// A shard's sessions.
#[derive(Debug)]
pub struct FetchSessions {
    shard: usize,
    shard_count: usize,
    /// Sessions this shard may hold (0: none, every fetch is sessionless).
    sessions_max: usize,
    sessions: HashMap<i32, Session>,
    /// The next id's sequence number (ids are `sequence * shard_count + shard`, never 0).
    sequence: u32,
}

impl FetchSessions {
    /// A shard's share of `slots` (the broker's `max.incremental.fetch.session.cache.slots`).
    pub fn new(shard: usize, shard_count: usize, slots: usize) -> FetchSessions {
        assert!(shard < shard_count, "shard {shard} of {shard_count}");
        FetchSessions {
            shard,
            shard_count,
            sessions_max: slots.div_ceil(shard_count),
            sessions: HashMap::new(),
            sequence: 1,
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Partitions the sessions hold together (Kafka's `NumIncrementalFetchPartitionsCached`).
    pub fn partitions_held(&self) -> usize {
        self.sessions.values().map(|session| session.partitions.len()).sum()
    }

    /// Applies a fetch's session fields (`session_id`, `epoch`), its partitions (`requested`) and
    /// those it forgets, as Kafka's `FetchManager.newContext` does: epoch -1 closes the session
    /// named and reads sessionless; epoch 0 closes it and reads the request's partitions, a new
    /// session to follow; a positive epoch updates the session and reads all of it.
    pub fn begin(
        &mut self,
        session_id: i32,
        epoch: i32,
        requested: Vec<Wanted>,
        forgotten: &[(TopicKey, i32)],
        by_id: bool,
        now: Instant,
    ) -> Result<Plan, SessionError> {
        if epoch == EPOCH_INITIAL || epoch == EPOCH_FINAL {
            if session_id != 0 {
                self.sessions.remove(&session_id);
            }
            let open = epoch == EPOCH_INITIAL && self.sessions_max > 0 && requested.len() <= SESSION_PARTITIONS_MAX;
            return Ok(Plan::Full { wanted: requested, open });
        }
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return Err(SessionError::NotFound(session_id));
        };
        if session.next_epoch != epoch {
            return Err(SessionError::InvalidEpoch { id: session_id, expected: session.next_epoch, got: epoch });
        }
        if session.by_id != by_id {
            self.sessions.remove(&session_id);
            return Err(SessionError::TopicNaming(session_id));
        }
        session.next_epoch = next_epoch(epoch);
        session.last_used = now;
        for wanted in requested {
            match session.places.get(&wanted.key()) {
                Some(&place) => session.partitions[place].wanted = wanted,
                None => {
                    session.places.insert(wanted.key(), session.partitions.len());
                    session.partitions.push(Cached { wanted, told: UNTOLD });
                }
            }
        }
        if !forgotten.is_empty() {
            // A set: a request may forget as many partitions as the session holds.
            let forgotten: std::collections::HashSet<&(TopicKey, i32)> = forgotten.iter().collect();
            session.partitions.retain(|cached| !forgotten.contains(&cached.wanted.key()));
            session.reindex();
        }
        if session.partitions.len() > SESSION_PARTITIONS_MAX {
            tracing::debug!(session_id, partitions = session.partitions.len(), "fetch session too large; closed");
            self.sessions.remove(&session_id);
            return Err(SessionError::NotFound(session_id));
        }
        let wanted = session.partitions.iter().map(|cached| cached.wanted.clone()).collect();
        Ok(Plan::Incremental { id: session_id, wanted })
    }

    /// After a full fetch that may open a session (`wanted` and its `answers`, in the same order):
    /// the new session's id, or 0 when the cache has no room for it.
    pub fn finish_full(
        &mut self,
        wanted: Vec<Wanted>,
        answers: &[Answered],
        by_id: bool,
        follower: bool,
        now: Instant,
    ) -> i32 {
        debug_assert_eq!(wanted.len(), answers.len());
        if self.sessions.len() >= self.sessions_max && !self.evict_one(follower, now) {
            return 0;
        }
        let id = self.next_id();
        let partitions: Vec<Cached> = wanted
            .into_iter()
            .zip(answers)
            .map(|(wanted, answer)| Cached { wanted, told: if answer.notable { UNTOLD } else { answer.told } })
            .collect();
        let mut session = Session {
            next_epoch: next_epoch(EPOCH_INITIAL),
            partitions,
            places: HashMap::new(),
            last_used: now,
            follower,
            by_id,
        };
        session.reindex();
        self.sessions.insert(id, session);
        id
    }

    /// After an incremental fetch of session `id` (its partitions' `answers`, in the order
    /// [`Plan::Incremental`] gave them): which partitions the response names (a new high
    /// watermark or log start, records, or something notable), remembering what they are told;
    /// those that returned records move to the back of the session.
    pub fn finish_incremental(&mut self, id: i32, answers: &[Answered]) -> Vec<bool> {
        let Some(session) = self.sessions.get_mut(&id) else {
            // Closed meanwhile (a full fetch of the same session, or an eviction): answer
            // everything, as a full fetch would.
            return vec![true; answers.len()];
        };
        if session.partitions.len() != answers.len() {
            // The session changed under this fetch (a concurrent fetch of the same session, which
            // its epoch should have refused): answer everything and tell nothing.
            return vec![true; answers.len()];
        }
        let mut named = Vec::with_capacity(answers.len());
        let mut moved = Vec::new();
        for (place, (cached, answer)) in session.partitions.iter_mut().zip(answers).enumerate() {
            let name = answer.record_bytes > 0 || answer.notable || cached.told != answer.told;
            cached.told = if answer.notable { UNTOLD } else { answer.told };
            if answer.record_bytes > 0 {
                moved.push(place);
            }
            named.push(name);
        }
        if !moved.is_empty() {
            let mut back = Vec::with_capacity(moved.len());
            for place in moved.iter().rev() {
                back.push(session.partitions.remove(*place));
            }
            back.reverse();
            session.partitions.extend(back);
            session.reindex();
        }
        named
    }

    fn next_id(&mut self) -> i32 {
        loop {
            let sequence = self.sequence;
            self.sequence = self.sequence.wrapping_add(1).max(1);
            let id = u64::from(sequence) * self.shard_count as u64 + self.shard as u64;
            let Ok(id) = i32::try_from(id % (i32::MAX as u64)) else { continue };
            if id != 0 && id as usize % self.shard_count == self.shard && !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    /// Makes room: removes the least recently used session if it has been idle long enough (or,
    /// for a follower's new session, the least recently used consumer's).
    fn evict_one(&mut self, follower: bool, now: Instant) -> bool {
        let idle_ms = |session: &Session| now.saturating_duration_since(session.last_used).as_millis() as u64;
        let victim = self
            .sessions
            .iter()
            .filter(|(_, session)| idle_ms(session) >= SESSION_EVICTION_MS || (follower && !session.follower))
            .min_by_key(|(_, session)| session.last_used)
            .map(|(id, _)| *id);
        match victim {
            Some(id) => {
                tracing::debug!(session_id = id, "fetch session evicted for a new one");
                self.sessions.remove(&id);
                true
            }
            None => false,
        }
    }
}

/// Kafka's `FetchMetadata.nextEpoch`: epochs count up from 1 and wrap past `i32::MAX` to 1.
fn next_epoch(epoch: i32) -> i32 {
    if epoch < 0 {
        EPOCH_FINAL
    } else if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(topic: &str, partition: i32, fetch_offset: i64) -> Wanted {
        Wanted {
            topic: TopicKey::Name(topic.to_string()),
            partition,
            fetch_offset,
            partition_max_bytes: 1024,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
            log_start_offset: -1,
        }
    }

    fn answered(high_watermark: i64, record_bytes: u64) -> Answered {
        Answered { told: Told { high_watermark, log_start_offset: 0 }, record_bytes, notable: false }
    }

    fn partitions(plan: &Plan) -> Vec<(String, i32, i64)> {
        let wanted = match plan {
            Plan::Full { wanted, .. } | Plan::Incremental { wanted, .. } => wanted,
        };
        wanted
            .iter()
            .map(|wanted| match &wanted.topic {
                TopicKey::Name(name) => (name.clone(), wanted.partition, wanted.fetch_offset),
                TopicKey::Id(_) => panic!("by name"),
            })
            .collect()
    }

    #[test]
    fn a_session_opens_with_a_full_fetch_and_follows_incremental_ones() {
        let now = Instant::now();
        let mut sessions = FetchSessions::new(1, 2, 10);
        let requested = vec![wanted("a", 0, 5), wanted("a", 1, 7), wanted("b", 0, 0)];
        let plan = sessions.begin(0, EPOCH_INITIAL, requested.clone(), &[], false, now).expect("full");
        assert_eq!(plan, Plan::Full { wanted: requested.clone(), open: true });
        let id =
            sessions.finish_full(requested, &[answered(5, 0), answered(9, 100), answered(0, 0)], false, false, now);
        assert!(id > 0 && id % 2 == 1, "an id naming shard 1: {id}");

        // Epoch 1: a1 moved to 9; b0 forgotten; c0 added.
        let plan = sessions
            .begin(id, 1, vec![wanted("a", 1, 9), wanted("c", 0, 0)], &[(TopicKey::Name("b".into()), 0)], false, now)
            .expect("incremental");
        assert_eq!(partitions(&plan), vec![("a".into(), 0, 5), ("a".into(), 1, 9), ("c".into(), 0, 0)]);
        // a0 unchanged (not named), a1 has records (named, moves back), c0 new (named).
        let named = sessions.finish_incremental(id, &[answered(5, 0), answered(12, 300), answered(0, 0)]);
        assert_eq!(named, vec![false, true, true]);
        let plan = sessions.begin(id, 2, Vec::new(), &[], false, now).expect("incremental");
        assert_eq!(partitions(&plan), vec![("a".into(), 0, 5), ("c".into(), 0, 0), ("a".into(), 1, 9)]);
        // A new high watermark alone names a partition; an error names it now and next time.
        let mut error = answered(0, 0);
        error.notable = true;
        let named = sessions.finish_incremental(id, &[answered(6, 0), error, answered(12, 0)]);
        assert_eq!(named, vec![true, true, false]);
        sessions.begin(id, 3, Vec::new(), &[], false, now).expect("incremental");
        assert_eq!(
            sessions.finish_incremental(id, &[answered(6, 0), answered(0, 0), answered(12, 0)]),
            vec![false, true, false]
        );
    }

    #[test]
    fn wrong_epochs_unknown_ids_and_closing_are_refused_as_kafka_does() {
        let now = Instant::now();
        let mut sessions = FetchSessions::new(0, 1, 10);
        let requested = vec![wanted("a", 0, 0)];
        let id = sessions.finish_full(requested.clone(), &[answered(0, 0)], false, false, now);
        assert_eq!(
            sessions.begin(id, 2, Vec::new(), &[], false, now),
            Err(SessionError::InvalidEpoch { id, expected: 1, got: 2 })
        );
        assert_eq!(sessions.begin(id + 1, 1, Vec::new(), &[], false, now), Err(SessionError::NotFound(id + 1)));
        assert_eq!(sessions.begin(id, 1, Vec::new(), &[], true, now), Err(SessionError::TopicNaming(id)));
        assert!(sessions.is_empty(), "a session switching naming is closed");
        let id = sessions.finish_full(requested.clone(), &[answered(0, 0)], false, false, now);
        let plan = sessions.begin(id, EPOCH_FINAL, requested.clone(), &[], false, now).expect("final");
        assert_eq!(plan, Plan::Full { wanted: requested, open: false });
        assert!(sessions.is_empty(), "epoch -1 closes the session");
        assert_eq!(sessions.begin(id, 1, Vec::new(), &[], false, now), Err(SessionError::NotFound(id)));
    }

    #[test]
    fn a_full_cache_evicts_only_idle_sessions_unless_a_follower_asks() {
        let start = Instant::now();
        let mut sessions = FetchSessions::new(0, 1, 2);
        let requested = vec![wanted("a", 0, 0)];
        let first = sessions.finish_full(requested.clone(), &[answered(0, 0)], false, false, start);
        let second = sessions.finish_full(requested.clone(), &[answered(0, 0)], false, false, start);
        assert!(first != 0 && second != 0 && first != second);
        assert_eq!(sessions.finish_full(requested.clone(), &[answered(0, 0)], false, false, start), 0, "full");
        let follower = sessions.finish_full(requested.clone(), &[answered(0, 0)], false, true, start);
        assert!(follower != 0, "a follower takes a consumer's place");
        let later = start + std::time::Duration::from_millis(SESSION_EVICTION_MS);
        let third = sessions.finish_full(requested.clone(), &[answered(0, 0)], false, false, later);
        assert!(third != 0, "an idle session makes room");
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions.partitions_held(), 2);
        assert_eq!(
            FetchSessions::new(0, 2, 0)
                .begin(0, 0, requested, &[], false, start)
                .map(|plan| matches!(plan, Plan::Full { open: false, .. })),
            Ok(true)
        );
    }

    /// [`SESSION_PARTITIONS_MAX`]: a full fetch of more partitions opens no session, and an
    /// incremental fetch growing a session past it closes the session (FETCH_SESSION_ID_NOT_FOUND,
    /// so the client starts again with a full fetch).
    #[test]
    fn a_session_is_never_larger_than_its_limit() {
        let now = Instant::now();
        let mut sessions = FetchSessions::new(0, 1, 10);
        let many = |count: usize, first: usize| -> Vec<Wanted> {
            (first..first + count).map(|index| wanted("t", i32::try_from(index).expect("index"), 0)).collect()
        };
        let plan =
            sessions.begin(0, EPOCH_INITIAL, many(SESSION_PARTITIONS_MAX + 1, 0), &[], false, now).expect("full");
        assert!(matches!(plan, Plan::Full { open: false, .. }), "no session for more than the limit");

        let at_limit = many(SESSION_PARTITIONS_MAX, 0);
        let plan = sessions.begin(0, EPOCH_INITIAL, at_limit.clone(), &[], false, now).expect("full");
        assert!(matches!(plan, Plan::Full { open: true, .. }), "a session of exactly the limit opens");
        let answers = vec![answered(0, 0); SESSION_PARTITIONS_MAX];
        let id = sessions.finish_full(at_limit, &answers, false, false, now);
        assert!(id != 0);
        // Forgetting one and adding one keeps it at the limit.
        let forgotten = [(TopicKey::Name("t".into()), 0)];
        let plan = sessions.begin(id, 1, many(1, SESSION_PARTITIONS_MAX), &forgotten, false, now).expect("incremental");
        assert!(matches!(&plan, Plan::Incremental { wanted, .. } if wanted.len() == SESSION_PARTITIONS_MAX));
        sessions.finish_incremental(id, &answers);
        // One more grows it past the limit: closed.
        assert_eq!(
            sessions.begin(id, 2, many(1, SESSION_PARTITIONS_MAX + 1), &[], false, now),
            Err(SessionError::NotFound(id))
        );
        assert!(sessions.is_empty(), "the session was closed");
        assert_eq!(sessions.begin(id, 3, Vec::new(), &[], false, now), Err(SessionError::NotFound(id)));
    }

    #[test]
    fn epochs_wrap_to_one() {
        assert_eq!(next_epoch(0), 1);
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(-1), -1);
    }
}
