//! The controller's decisions, one rule per test.

use super::*;
use crate::image::MetadataImage;
use IsrChangeOutcome::Changed;

const SESSION_MS: u64 = 9_000;

fn config(unclean: bool) -> ControllerConfig {
    ControllerConfig {
        node: BrokerId(1),
        session_timeout_ms: SESSION_MS,
        unclean_leader_election: unclean,
        default_replication_factor: 3,
    }
}

/// A controller over `racks.len()` registered, unfenced brokers 1..=n (rack per broker), with every
/// decision also applied to the committed image, as the driver does once records commit.
fn cluster(racks: &[Option<&str>], unclean: bool) -> Controller {
    let mut controller = Controller::new(MetadataImage::default(), config(unclean), 0);
    controller.bootstrap(ClusterId([1; 16])).expect("bootstrap");
    for (index, rack) in racks.iter().enumerate() {
        let broker = BrokerId(index as i32 + 1);
        let registration = Registration {
            broker,
            incarnation: 100 + index as u64,
            cluster_id: Some(ClusterId([1; 16])),
            endpoints: Vec::new(),
            rack: rack.map(str::to_string),
        };
        let (_, epoch) = controller.register(&registration, 0).expect("register");
        let heartbeat = Heartbeat { broker, epoch, caught_up: true, want_shutdown: false };
        let (_, reply) = controller.heartbeat(&heartbeat, 0).expect("heartbeat");
        assert!(!reply.fenced);
    }
    controller
}

fn topic(name: &str, id: u8, partitions: i32, factor: i16) -> NewTopic {
    NewTopic {
        name: name.into(),
        id: TopicId([id; 16]),
        partitions,
        replication_factor: factor,
        assignment: Vec::new(),
        configs: BTreeMap::new(),
    }
}

fn epoch_of(controller: &Controller, broker: i32) -> u64 {
    controller.image().brokers[&BrokerId(broker)].epoch
}

/// A plain heartbeat of `broker` in its registered epoch.
fn heartbeat(broker: i32, controller: &Controller) -> Heartbeat {
    Heartbeat { broker: BrokerId(broker), epoch: epoch_of(controller, broker), caught_up: true, want_shutdown: false }
}

#[test]
fn placement_spreads_replicas_and_balances_leaders() {
    let mut controller = cluster(&[None, None, None], false);
    controller.create_topic(&topic("t", 0, 6, 3)).expect("created");
    let mut leaders = BTreeMap::new();
    for (_, partition) in controller.image().partitions() {
        let distinct: BTreeSet<_> = partition.replicas.iter().collect();
        assert_eq!(distinct.len(), 3, "{partition:?}");
        assert_eq!(partition.isr, partition.replicas);
        assert_eq!(partition.leader, Some(partition.replicas[0]));
        *leaders.entry(partition.leader).or_insert(0) += 1;
    }
    assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2], "{leaders:?}");
}

#[test]
fn rack_aware_placement_puts_each_replica_in_another_rack() {
    let racks = [Some("a"), Some("a"), Some("b"), Some("b"), Some("c"), Some("c")];
    let mut controller = cluster(&racks, false);
    controller.create_topic(&topic("t", 5, 12, 3)).expect("created");
    for (_, partition) in controller.image().partitions() {
        let used: BTreeSet<_> =
            partition.replicas.iter().map(|replica| controller.image().brokers[replica].rack.clone()).collect();
        assert_eq!(used.len(), 3, "{partition:?}");
    }
}

#[test]
fn a_replication_factor_above_the_live_brokers_is_refused() {
    let mut controller = cluster(&[None, None], false);
    let error = controller.create_topic(&topic("t", 0, 1, 3)).expect_err("refused");
    assert_eq!(error, ControllerError::InvalidReplicationFactor { requested: 3, available: 2 });
    assert!(controller.image().topic("t").is_none());
    assert_eq!(controller.create_topic(&topic("t", 0, 1, -1)).expect_err("default 3"), error);
}

#[test]
fn a_fenced_leader_is_replaced_from_the_isr_with_a_new_epoch() {
    let mut controller = cluster(&[None, None, None], false);
    controller.create_topic(&topic("t", 0, 1, 3)).expect("created");
    let before = controller.image().partition("t", PartitionIndex(0)).expect("p0").clone();
    let old_leader = before.leader.expect("led");
    // Every broker but the leader heartbeats past the session timeout.
    for broker in 1..=3 {
        if BrokerId(broker) != old_leader {
            controller.heartbeat(&heartbeat(broker, &controller), SESSION_MS).expect("heartbeat");
        }
    }
    let batch = controller.expire_sessions(SESSION_MS + 1).expect("expired");
    assert!(
        batch.contains(&MetadataRecord::FenceBroker { broker: old_leader, epoch: epoch_of(&controller, old_leader.0) })
    );
    let after = controller.image().partition("t", PartitionIndex(0)).expect("p0");
    assert_ne!(after.leader, Some(old_leader));
    assert!(after.leader.is_some_and(|leader| before.isr.contains(&leader)));
    assert!(!after.isr.contains(&old_leader));
    assert_eq!(after.leader_epoch, before.leader_epoch + 1);
    assert_eq!(after.partition_epoch, before.partition_epoch + 1);
}

#[test]
fn the_last_isr_member_stays_and_leads_again_when_it_comes_back() {
    let mut controller = cluster(&[None, None], false);
    controller.create_topic(&topic("t", 0, 1, 1)).expect("created");
    let only = controller.image().partition("t", PartitionIndex(0)).expect("p0").replicas[0];
    let other = if only == BrokerId(1) { 2 } else { 1 };
    let epoch = epoch_of(&controller, other);
    let keep = Heartbeat { broker: BrokerId(other), epoch, caught_up: true, want_shutdown: false };
    controller.heartbeat(&keep, SESSION_MS).expect("heartbeat");
    controller.expire_sessions(SESSION_MS + 1).expect("expired");
    let offline = controller.image().partition("t", PartitionIndex(0)).expect("p0").clone();
    assert_eq!((offline.leader, offline.isr.clone(), offline.leader_epoch), (None, vec![only], 1));
    let epoch = epoch_of(&controller, only.0);
    let back = Heartbeat { broker: only, epoch, caught_up: true, want_shutdown: false };
    let (_, reply) = controller.heartbeat(&back, SESSION_MS + 2).expect("heartbeat");
    assert!(!reply.fenced);
    let online = controller.image().partition("t", PartitionIndex(0)).expect("p0");
    assert_eq!((online.leader, online.leader_epoch), (Some(only), 2));
}

#[test]
fn only_an_unclean_election_picks_a_replica_outside_the_isr() {
    for unclean in [false, true] {
        let mut controller = cluster(&[None, None], unclean);
        let mut assigned = topic("t", 0, -1, -1);
        assigned.assignment = vec![vec![BrokerId(1), BrokerId(2)]];
        controller.create_topic(&assigned).expect("created");
        // Broker 2 leaves the ISR first (fenced), comes back (not re-added: ISR only grows
        // through the leader), then broker 1 is fenced.
        controller.heartbeat(&heartbeat(1, &controller), SESSION_MS).expect("hb");
        controller.expire_sessions(SESSION_MS + 1).expect("2 fenced");
        assert_eq!(controller.image().partition("t", PartitionIndex(0)).expect("p0").isr, vec![BrokerId(1)]);
        controller.heartbeat(&heartbeat(2, &controller), SESSION_MS + 2).expect("2 back");
        controller.expire_sessions(3 * SESSION_MS).expect("1 fenced");
        controller.heartbeat(&heartbeat(2, &controller), 3 * SESSION_MS).expect("2 alive");
        controller.expire_sessions(3 * SESSION_MS + 1).expect("1 fenced");
        let partition = controller.image().partition("t", PartitionIndex(0)).expect("p0");
        if unclean {
            assert_eq!((partition.leader, partition.isr.clone()), (Some(BrokerId(2)), vec![BrokerId(2)]));
        } else {
            assert_eq!((partition.leader, partition.isr.clone()), (None, vec![BrokerId(1)]));
            // The operator's unclean election (ElectLeaders UNCLEAN) does what the flag did not.
            let targets = [("t".to_string(), PartitionIndex(0)), ("gone".to_string(), PartitionIndex(0))];
            let (_, results) = controller.elect_unclean(&targets).expect("elect");
            assert_eq!(results, vec![Election::Elected, Election::UnknownPartition]);
            let partition = controller.image().partition("t", PartitionIndex(0)).expect("p0");
            assert_eq!((partition.leader, partition.isr.clone()), (Some(BrokerId(2)), vec![BrokerId(2)]));
            let (_, results) = controller.elect_unclean(&targets[..1]).expect("elect");
            assert_eq!(results, vec![Election::NotNeeded], "the partition has a leader");
            // With no live replica at all there is no one to elect.
            controller.expire_sessions(10 * SESSION_MS).expect("2 fenced");
            assert_eq!(controller.image().partition("t", PartitionIndex(0)).expect("p0").leader, None);
            let (_, results) = controller.elect_unclean(&targets[..1]).expect("elect");
            assert_eq!(results, vec![Election::EligibleLeadersNotAvailable]);
        }
    }
}

/// Partition `t`-0 on replicas [1, 2]: broker 2 leaves the ISR (fenced), comes back, then broker 1
/// is fenced; the partition's leader then (broker 2 only by an unclean election).
fn leader_after_the_isr_is_lost(controller: &mut Controller) -> Option<BrokerId> {
    controller.heartbeat(&heartbeat(1, controller), SESSION_MS).expect("hb");
    controller.expire_sessions(SESSION_MS + 1).expect("2 fenced");
    controller.heartbeat(&heartbeat(2, controller), SESSION_MS + 2).expect("2 back");
    controller.expire_sessions(3 * SESSION_MS).expect("1 fenced");
    controller.heartbeat(&heartbeat(2, controller), 3 * SESSION_MS).expect("2 alive");
    controller.expire_sessions(3 * SESSION_MS + 1).expect("1 fenced");
    controller.image().partition("t", PartitionIndex(0)).expect("p0").leader
}

/// A topic's own `unclean.leader.election.enable` wins over the broker's, either way, and a
/// change of it (a `TopicConfigs` record) applies to the next election.
#[test]
fn a_topics_own_unclean_setting_wins_over_the_brokers() {
    for (broker_unclean, topic_unclean) in [(false, "true"), (true, "false")] {
        let mut controller = cluster(&[None, None], broker_unclean);
        let mut assigned = topic("t", 0, -1, -1);
        assigned.assignment = vec![vec![BrokerId(1), BrokerId(2)]];
        controller.create_topic(&assigned).expect("created");
        let configs = BTreeMap::from([(UNCLEAN_LEADER_ELECTION_KEY.to_string(), topic_unclean.to_string())]);
        controller.alter_topic_configs("t", configs.clone()).expect("altered");
        assert_eq!(controller.image().topic("t").expect("t").configs, configs);
        assert!(matches!(
            controller.alter_topic_configs("gone", BTreeMap::new()),
            Err(ControllerError::UnknownTopic(_))
        ));
        // As above: broker 2 leaves the ISR, comes back, then broker 1 is fenced.
        let leader = leader_after_the_isr_is_lost(&mut controller);
        let expected = if topic_unclean == "true" { Some(BrokerId(2)) } else { None };
        assert_eq!(leader, expected, "broker {broker_unclean}, topic {topic_unclean}");
    }
}

/// Dynamic broker configs of `unclean.leader.election.enable` count as in Kafka's controller:
/// the topic's own setting, then this controller node's (broker 1 here), then the cluster-wide
/// default, then the static setting.
#[test]
fn dynamic_unclean_settings_count_in_kafkas_order() {
    let key = UNCLEAN_LEADER_ELECTION_KEY.to_string();
    let set = |value: &str| BTreeMap::from([(key.clone(), value.to_string())]);
    // (static, cluster default, controller node's own, another broker's own, topic's) → unclean?
    type Case<'a> = (bool, Option<&'a str>, Option<&'a str>, Option<&'a str>, Option<&'a str>, bool);
    let cases: [Case; 6] = [
        (false, Some("true"), None, None, None, true),
        (true, Some("false"), None, None, None, false),
        (false, Some("false"), Some("true"), None, None, true),
        (false, None, None, Some("true"), None, false),
        (false, Some("true"), Some("true"), None, Some("false"), false),
        (false, None, None, None, None, false),
    ];
    for (at, (static_unclean, default, own, other, topic_value, expected)) in cases.into_iter().enumerate() {
        let mut controller = cluster(&[None, None], static_unclean);
        let mut assigned = topic("t", 0, -1, -1);
        assigned.assignment = vec![vec![BrokerId(1), BrokerId(2)]];
        controller.create_topic(&assigned).expect("created");
        if let Some(value) = default {
            controller.alter_broker_configs(None, set(value)).expect("default");
        }
        if let Some(value) = own {
            controller.alter_broker_configs(Some(BrokerId(1)), set(value)).expect("own");
        }
        if let Some(value) = other {
            controller.alter_broker_configs(Some(BrokerId(2)), set(value)).expect("other");
        }
        if let Some(value) = topic_value {
            controller.alter_topic_configs("t", set(value)).expect("topic");
        }
        let leader = leader_after_the_isr_is_lost(&mut controller);
        assert_eq!(leader == Some(BrokerId(2)), expected, "case {at}: leader {leader:?}");
    }
}

#[test]
fn controlled_shutdown_moves_leadership_away_then_fences() {
    let mut controller = cluster(&[None, None, None], false);
    controller.create_topic(&topic("t", 0, 6, 3)).expect("created");
    let leaving = BrokerId(2);
    let epoch = epoch_of(&controller, 2);
    let request = Heartbeat { broker: leaving, epoch, caught_up: true, want_shutdown: true };
    let (_, reply) = controller.heartbeat(&request, 1).expect("shutdown");
    assert_eq!(reply, HeartbeatReply { fenced: true, shutdown_ok: true });
    // Its session ended with the shutdown: the restarted process registers at once.
    let restarted = Registration {
        broker: leaving,
        incarnation: 9_999,
        cluster_id: Some(ClusterId([1; 16])),
        endpoints: Vec::new(),
        rack: None,
    };
    controller.register(&restarted, 2).expect("a new incarnation after a controlled shutdown");
    for (_, partition) in controller.image().partitions() {
        assert_ne!(partition.leader, Some(leaving));
        assert!(!partition.isr.contains(&leaving));
    }
}

#[test]
fn a_second_live_process_with_the_same_id_is_refused_until_the_first_expires() {
    let mut controller = cluster(&[None], false);
    let imposter = Registration {
        broker: BrokerId(1),
        incarnation: 999,
        cluster_id: Some(ClusterId([1; 16])),
        endpoints: Vec::new(),
        rack: None,
    };
    let duplicate = |heartbeating| ControllerError::DuplicateBrokerRegistration { broker: BrokerId(1), heartbeating };
    assert_eq!(controller.register(&imposter, 1).expect_err("duplicate"), duplicate(false), "maybe a restart");
    let epoch = epoch_of(&controller, 1);
    let alive = Heartbeat { broker: BrokerId(1), epoch, caught_up: true, want_shutdown: false };
    controller.heartbeat(&alive, 2).expect("the registered process heartbeats");
    assert_eq!(controller.register(&imposter, 3).expect_err("duplicate"), duplicate(true), "a second live process");
    controller.expire_sessions(SESSION_MS + 3).expect("expiry");
    let (_, epoch) = controller.register(&imposter, SESSION_MS + 3).expect("the old session expired");
    assert!(controller.image().brokers[&BrokerId(1)].fenced);
    assert_eq!(controller.register(&imposter, SESSION_MS + 4).expect("retry").1, epoch, "a retry is idempotent");
    let other_cluster = Registration { cluster_id: Some(ClusterId([2; 16])), ..imposter };
    assert!(matches!(
        controller.register(&other_cluster, SESSION_MS + 3),
        Err(ControllerError::InconsistentClusterId { .. })
    ));
}

/// A broker that finished its controlled shutdown restarts while another node became the active
/// controller (it was the controller itself, say): the new controller gives the fenced
/// registration no session, so the next incarnation registers at once (it waited out a whole
/// session timeout before; the fault suite's rolling restarts saw 10 s).
#[test]
fn a_new_controller_lets_a_broker_that_shut_down_register_again_at_once() {
    let mut controller = cluster(&[None, None], false);
    let epoch = epoch_of(&controller, 1);
    let leaving = Heartbeat { broker: BrokerId(1), epoch, caught_up: true, want_shutdown: true };
    let (_, reply) = controller.heartbeat(&leaving, 1).expect("controlled shutdown");
    assert!(reply.shutdown_ok);
    let mut next = Controller::new(controller.image().clone(), config(false), 2);
    let restarted = Registration {
        broker: BrokerId(1),
        incarnation: 555,
        cluster_id: Some(ClusterId([1; 16])),
        endpoints: Vec::new(),
        rack: None,
    };
    next.register(&restarted, 3).expect("registers at once");
    // An unfenced broker keeps a session across the change: a second process is still refused.
    let imposter = Registration { broker: BrokerId(2), incarnation: 777, ..restarted };
    assert!(matches!(next.register(&imposter, 4), Err(ControllerError::DuplicateBrokerRegistration { .. })));
}

#[test]
fn producer_id_blocks_never_overlap_across_a_new_controller() {
    let mut controller = cluster(&[None], false);
    let epoch = epoch_of(&controller, 1);
    let (_, first) = controller.allocate_producer_ids(BrokerId(1), epoch).expect("block");
    let (_, second) = controller.allocate_producer_ids(BrokerId(1), epoch).expect("block");
    assert_eq!(first.end, second.start);
    let mut successor = Controller::new(controller.image().clone(), config(false), 5);
    let (_, third) = successor.allocate_producer_ids(BrokerId(1), epoch).expect("block");
    assert_eq!(third.start, second.end);
    assert!(successor.allocate_producer_ids(BrokerId(1), epoch + 7).is_err(), "a stale broker epoch gets nothing");
}

#[test]
fn preferred_election_returns_leadership_to_the_first_replica() {
    let mut controller = cluster(&[None, None], false);
    let mut assigned = topic("t", 0, -1, -1);
    assigned.assignment = vec![vec![BrokerId(1), BrokerId(2)]];
    controller.create_topic(&assigned).expect("created");
    // Broker 1 restarts (a new incarnation): leadership moves to 2, and 1 leaves the ISR.
    let restart =
        Registration { broker: BrokerId(1), incarnation: 5, cluster_id: None, endpoints: Vec::new(), rack: None };
    controller.register(&restart, SESSION_MS + 1).expect("re-registered");
    let partition = controller.image().partition("t", PartitionIndex(0)).expect("p0").clone();
    assert_eq!((partition.leader, partition.isr.clone()), (Some(BrokerId(2)), vec![BrokerId(2)]));
    let target = [("t".to_string(), PartitionIndex(0)), ("gone".to_string(), PartitionIndex(0))];
    let (_, results) = controller.elect_preferred(Some(&target)).expect("elect");
    assert_eq!(results, vec![Election::PreferredNotAvailable, Election::UnknownPartition], "1 is not in the ISR");
}

#[test]
fn explicit_assignments_are_checked() {
    let mut controller = cluster(&[None, None], false);
    for (assignment, what) in [
        (vec![vec![BrokerId(1), BrokerId(1)]], "twice"),
        (vec![vec![BrokerId(1)], vec![BrokerId(1), BrokerId(2)]], "replicas where"),
        (vec![vec![BrokerId(7)]], "not registered"),
        (vec![vec![]], "no replicas"),
    ] {
        let mut assigned = topic("t", 0, -1, -1);
        assigned.assignment = assignment;
        let error = controller.create_topic(&assigned).expect_err(what);
        assert!(error.to_string().contains(what), "{error}");
    }
}

#[test]
fn isr_changes_are_checked_against_the_partition_as_it_is() {
    let mut controller = cluster(&[None, None, None], false);
    let mut assigned = topic("t", 0, -1, -1);
    assigned.assignment = vec![vec![BrokerId(1), BrokerId(2), BrokerId(3)]];
    controller.create_topic(&assigned).expect("created");
    let partition = controller.image().partition("t", PartitionIndex(0)).expect("p0").clone();
    assert_eq!(partition.leader, Some(BrokerId(1)));
    let change = |isr: &[i32], leader_epoch: i32, partition_epoch: i32| IsrChange {
        topic: "t".into(),
        partition: PartitionIndex(0),
        leader_epoch,
        partition_epoch,
        isr: isr.iter().map(|id| BrokerId(*id)).collect(),
    };
    let (epoch_1, epoch_2) = (epoch_of(&controller, 1), epoch_of(&controller, 2));
    let (leader_epoch, partition_epoch) = (partition.leader_epoch, partition.partition_epoch);

    // The leader shrinks the ISR: applied, the partition epoch moves, the leader epoch does not.
    let (batch, outcomes) = controller
        .alter_partition(BrokerId(1), epoch_1, &[change(&[1, 2], leader_epoch, partition_epoch)])
        .expect("ok");
    assert_eq!(batch.len(), 1);
    let shrunk = controller.image().partition("t", PartitionIndex(0)).expect("p0").clone();
    assert_eq!(outcomes, vec![IsrChangeOutcome::Changed(Box::new(shrunk.clone()))]);
    assert_eq!((shrunk.isr.clone(), shrunk.leader_epoch), (vec![BrokerId(1), BrokerId(2)], leader_epoch));
    assert_eq!(shrunk.partition_epoch, partition_epoch + 1);

    let refusals = [
        // Decided on the partition before the shrink: a stale version.
        (
            BrokerId(1),
            epoch_1,
            change(&[1, 2, 3], leader_epoch, partition_epoch),
            IsrChangeOutcome::InvalidUpdateVersion,
        ),
        // Not the leader.
        (BrokerId(2), epoch_2, change(&[1, 2], leader_epoch, partition_epoch + 1), IsrChangeOutcome::NotLeader),
        // A leader epoch from the future or the past.
        (
            BrokerId(1),
            epoch_1,
            change(&[1], leader_epoch + 1, partition_epoch + 1),
            IsrChangeOutcome::FencedLeaderEpoch,
        ),
        // Not a subset of the replicas, a member twice, the leader left out.
        (BrokerId(1), epoch_1, change(&[1, 4], leader_epoch, partition_epoch + 1), IsrChangeOutcome::InvalidIsr),
        (BrokerId(1), epoch_1, change(&[1, 1], leader_epoch, partition_epoch + 1), IsrChangeOutcome::InvalidIsr),
        (BrokerId(1), epoch_1, change(&[2], leader_epoch, partition_epoch + 1), IsrChangeOutcome::InvalidIsr),
    ];
    for (broker, epoch, request, expected) in refusals {
        let (batch, outcomes) =
            controller.alter_partition(broker, epoch, std::slice::from_ref(&request)).expect("answered");
        assert!(batch.is_empty(), "{request:?}");
        assert_eq!(outcomes, vec![expected], "{request:?}");
    }
    assert!(matches!(
        controller.alter_partition(BrokerId(1), epoch_1 + 1, &[change(&[1], leader_epoch, partition_epoch + 1)]),
        Err(ControllerError::StaleBrokerEpoch { .. })
    ));
    assert!(matches!(
        controller.alter_partition(BrokerId(1), epoch_1, &[IsrChange { topic: "gone".into(), ..change(&[1], 0, 0) }]),
        Ok((_, outcomes)) if outcomes == vec![IsrChangeOutcome::UnknownPartition]
    ));

    // Broker 3 is fenced: it may not rejoin the ISR; once back it may.
    controller.heartbeat(&heartbeat(1, &controller), SESSION_MS).expect("1 alive");
    controller.heartbeat(&heartbeat(2, &controller), SESSION_MS).expect("2 alive");
    controller.expire_sessions(SESSION_MS + 1).expect("3 fenced");
    let now = controller.image().partition("t", PartitionIndex(0)).expect("p0").clone();
    let grow = change(&[1, 2, 3], now.leader_epoch, now.partition_epoch);
    let (_, outcomes) =
        controller.alter_partition(BrokerId(1), epoch_1, std::slice::from_ref(&grow)).expect("answered");
    assert_eq!(outcomes, vec![IsrChangeOutcome::IneligibleReplica(BrokerId(3))]);
    controller.heartbeat(&heartbeat(3, &controller), SESSION_MS + 2).expect("3 back");
    let (_, outcomes) = controller.alter_partition(BrokerId(1), epoch_1, &[grow]).expect("answered");
    let grown = controller.image().partition("t", PartitionIndex(0)).expect("p0").clone();
    assert_eq!(grown.isr, vec![BrokerId(1), BrokerId(2), BrokerId(3)]);
    assert_eq!(outcomes, vec![IsrChangeOutcome::Changed(Box::new(grown))]);
}

/// Topic `t`, one partition on brokers 1 and 2 (1 leads), in a cluster of brokers 1..=4.
fn reassignable() -> Controller {
    let mut controller = cluster(&[None, None, None, None], false);
    let mut assigned = topic("t", 0, -1, -1);
    assigned.assignment = vec![vec![BrokerId(1), BrokerId(2)]];
    controller.create_topic(&assigned).expect("created");
    controller
}

fn p0(controller: &Controller) -> PartitionState {
    controller.image().partition("t", PartitionIndex(0)).expect("p0").clone()
}

fn ids(list: &[i32]) -> Vec<BrokerId> {
    list.iter().map(|id| BrokerId(*id)).collect()
}

fn reassign(controller: &mut Controller, target: Option<&[i32]>) -> ReassignmentOutcome {
    let request = Reassignment { topic: "t".into(), partition: PartitionIndex(0), target: target.map(ids) };
    let (_, outcomes) = controller.alter_reassignments(&[request], true).expect("answered");
    outcomes.into_iter().next().expect("one outcome")
}

/// The leader's ISR change for partition 0 of `t`, against the partition as it is.
fn grow_isr(controller: &mut Controller, isr: &[i32]) -> IsrChangeOutcome {
    let partition = p0(controller);
    let leader = partition.leader.expect("led");
    let change = IsrChange {
        topic: "t".into(),
        partition: PartitionIndex(0),
        leader_epoch: partition.leader_epoch,
        partition_epoch: partition.partition_epoch,
        isr: ids(isr),
    };
    let epoch = epoch_of(controller, leader.0);
    let (_, outcomes) = controller.alter_partition(leader, epoch, &[change]).expect("answered");
    outcomes.into_iter().next().expect("one outcome")
}

#[test]
fn a_reassignment_adds_then_completes_when_the_target_is_in_sync() {
    let mut controller = reassignable();
    let before = p0(&controller);
    // 1,2 -> 3,2: broker 3 is added, broker 1 (the leader) is to be removed.
    assert_eq!(reassign(&mut controller, Some(&[3, 2])), ReassignmentOutcome::Accepted);
    let moving = p0(&controller);
    assert_eq!(moving.replicas, ids(&[3, 2, 1]), "target first, then the original's others");
    assert_eq!((moving.adding.clone(), moving.removing.clone()), (ids(&[3]), ids(&[1])));
    assert_eq!(moving.isr, before.isr, "the ISR is left alone");
    assert_eq!(moving.leader, Some(BrokerId(1)), "the leader stays until the move completes");
    assert_eq!(moving.partition_epoch, before.partition_epoch + 1);

    // Broker 2 alone joining changes nothing; broker 3 joining completes it.
    let Changed(done) = grow_isr(&mut controller, &[1, 2, 3]) else { panic!("ISR change refused") };
    assert_eq!(*done, p0(&controller), "the reply is the partition as committed");
    assert_eq!(done.replicas, ids(&[3, 2]));
    assert!(!done.reassigning());
    assert_eq!(done.isr, ids(&[2, 3]), "the removed replica leaves the ISR");
    assert_eq!(done.leader, Some(BrokerId(3)), "the first target replica in the ISR leads");
    assert_eq!(done.leader_epoch, moving.leader_epoch + 1);
}

#[test]
fn a_reassignment_the_isr_already_covers_completes_at_once() {
    let mut controller = reassignable();
    assert_eq!(reassign(&mut controller, Some(&[2])), ReassignmentOutcome::Accepted);
    let done = p0(&controller);
    assert_eq!((done.replicas.clone(), done.isr.clone(), done.leader), (ids(&[2]), ids(&[2]), Some(BrokerId(2))));
    assert!(!done.reassigning());
}

#[test]
fn a_cancelled_reassignment_goes_back_to_the_original_replicas() {
    let mut controller = reassignable();
    let before = p0(&controller);
    assert_eq!(reassign(&mut controller, None), ReassignmentOutcome::NoReassignmentInProgress);
    assert_eq!(reassign(&mut controller, Some(&[3, 4])), ReassignmentOutcome::Accepted);
    let moving = p0(&controller);
    assert_eq!((moving.adding.clone(), moving.removing.clone()), (ids(&[3, 4]), ids(&[1, 2])));
    // Broker 3 caught up and joined; then the operator cancels: 3 leaves replicas and ISR.
    assert!(matches!(grow_isr(&mut controller, &[1, 2, 3]), Changed(_)));
    assert_eq!(reassign(&mut controller, None), ReassignmentOutcome::Accepted);
    let back = p0(&controller);
    assert_eq!((back.replicas.clone(), back.isr.clone(), back.leader), (before.replicas, before.isr, before.leader));
    assert!(!back.reassigning());
    assert!(back.partition_epoch > moving.partition_epoch);
}

#[test]
fn a_new_target_replaces_the_reassignment_in_progress() {
    let mut controller = reassignable();
    assert_eq!(reassign(&mut controller, Some(&[3, 2])), ReassignmentOutcome::Accepted);
    assert_eq!(reassign(&mut controller, Some(&[4, 2])), ReassignmentOutcome::Accepted);
    let moving = p0(&controller);
    assert_eq!(moving.replicas, ids(&[4, 2, 1]), "measured from the original replicas: 3 is gone");
    assert_eq!((moving.adding.clone(), moving.removing.clone()), (ids(&[4]), ids(&[1])));
    // Naming the original replicas again cancels.
    assert_eq!(reassign(&mut controller, Some(&[1, 2])), ReassignmentOutcome::Accepted);
    assert!(!p0(&controller).reassigning());
    assert_eq!(p0(&controller).replicas, ids(&[1, 2]));
}

#[test]
fn bad_reassignments_are_refused_and_change_nothing() {
    let mut controller = reassignable();
    let before = p0(&controller);
    for (target, what) in [(&[][..], "empty"), (&[3, 3][..], "broker 3 more than once"), (&[3, 9][..], "broker 9")] {
        match reassign(&mut controller, Some(target)) {
            ReassignmentOutcome::InvalidAssignment(reason) => assert!(reason.contains(what), "{reason}"),
            other => panic!("{target:?}: {other:?}"),
        }
    }
    let unknown = Reassignment { topic: "nope".into(), partition: PartitionIndex(0), target: Some(ids(&[1])) };
    let beyond = Reassignment { topic: "t".into(), partition: PartitionIndex(5), target: Some(ids(&[1])) };
    let (batch, outcomes) = controller.alter_reassignments(&[unknown, beyond], true).expect("answered");
    assert!(batch.is_empty());
    assert_eq!(outcomes, vec![ReassignmentOutcome::UnknownPartition, ReassignmentOutcome::UnknownPartition]);
    let grow = Reassignment { topic: "t".into(), partition: PartitionIndex(0), target: Some(ids(&[1, 2, 3])) };
    let (_, outcomes) = controller.alter_reassignments(&[grow], false).expect("answered");
    assert_eq!(outcomes, vec![ReassignmentOutcome::ReplicationFactorChange { from: 2, to: 3 }]);
    assert_eq!(p0(&controller), before);
}

#[test]
fn a_removed_broker_fenced_during_the_move_does_not_block_it() {
    let mut controller = reassignable();
    assert_eq!(reassign(&mut controller, Some(&[2, 3])), ReassignmentOutcome::Accepted);
    // Broker 1, leading and being removed, stops heartbeating: broker 2 leads, the move goes on.
    for broker in [2, 3, 4] {
        let beat = heartbeat(broker, &controller);
        controller.heartbeat(&beat, SESSION_MS + 1).expect("heartbeat");
    }
    controller.expire_sessions(SESSION_MS + 2).expect("expired");
    let moving = p0(&controller);
    assert_eq!((moving.leader, moving.isr.clone()), (Some(BrokerId(2)), ids(&[2])));
    assert!(moving.reassigning());
    let Changed(done) = grow_isr(&mut controller, &[2, 3]) else { panic!("ISR change refused") };
    assert_eq!((done.replicas, done.isr, done.leader), (ids(&[2, 3]), ids(&[2, 3]), Some(BrokerId(2))));
}
