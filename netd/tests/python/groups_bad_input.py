"""Consumer-group requests a well-behaved client never sends, spoken raw with kafka-python's codec.

Usage: groups_bad_input.py BOOTSTRAP [--discover]

A classic group member of our own (JoinGroup, SyncGroup, Heartbeat, OffsetCommit, LeaveGroup over a
plain blocking socket, encoded and decoded by kafka.protocol.consumer / admin / metadata) is put
next to requests for an unknown group, with the wrong generation, from an unknown member, for a
topic or partition that does not exist, with a session timeout out of range, with an inconsistent
protocol; and DeleteGroups / OffsetDelete where Kafka refuses them. Every answer must carry the
error code Apache Kafka 4.4 answers (the expectations below were taken from a real Kafka 4.4
broker), and nothing may be corrupted by the refused requests: the member still heartbeats at its
generation, its committed offsets and assignment are unchanged, no topic was created.

The whole sequence runs twice, once with every API at the lowest version both the broker and
kafka-python support and once at the highest, so both the old and the flexible encodings are
exercised; the few expectations that differ between versions say so.

--discover prints every answer instead of stopping at the first unexpected one (used to take the
expectations from real Kafka). Prints "bad-input: ok" at the end; exits non-zero with a message on
the first failed expectation.
"""
import socket
import sys
import time
import uuid

import kafka.errors
from kafka.protocol.admin import (DeleteGroupsRequest, DescribeGroupsRequest, ListGroupsRequest)
from kafka.protocol.consumer import (HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest,
                                     OffsetDeleteRequest, OffsetFetchRequest, SyncGroupRequest)
from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment, ConsumerProtocolSubscription
from kafka.protocol.metadata import ApiVersionsRequest, FindCoordinatorRequest, MetadataRequest
from kafka.protocol.parser import KafkaProtocol

BOOTSTRAP = sys.argv[1]
DISCOVER = "--discover" in sys.argv[2:]
REQUEST_TIMEOUT_S = 10
COORDINATOR_WAIT_S = 30
SESSION_TIMEOUT_MS = 10000
REBALANCE_TIMEOUT_MS = 10000
SESSION_TIMEOUT_BELOW_MIN_MS = 5999  # group.min.session.timeout.ms is 6000
SESSION_TIMEOUT_ABOVE_MAX_MS = 1800001  # group.max.session.timeout.ms is 1800000

# Kafka error codes (org.apache.kafka.common.protocol.Errors).
NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
COORDINATOR_LOAD_IN_PROGRESS = 14
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
INVALID_GROUP_ID = 24
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27
NON_EMPTY_GROUP = 68
GROUP_ID_NOT_FOUND = 69
MEMBER_ID_REQUIRED = 79
GROUP_SUBSCRIBED_TO_TOPIC = 86
UNKNOWN_TOPIC_ID = 100

APIS = [FindCoordinatorRequest, JoinGroupRequest, SyncGroupRequest, HeartbeatRequest, LeaveGroupRequest,
        OffsetCommitRequest, OffsetFetchRequest, ListGroupsRequest, DescribeGroupsRequest, DeleteGroupsRequest,
        OffsetDeleteRequest, MetadataRequest]

STARTED = time.monotonic()
failures = []


def log(message):
    print(f"groups_bad_input.py {time.monotonic() - STARTED:.1f} s: {message}", file=sys.stderr, flush=True)


def name_of(code):
    return f"{kafka.errors.for_code(code).__name__}({code})"


def expect(condition, message):
    if condition:
        return
    if DISCOVER:
        failures.append(message)
        print(f"UNEXPECTED: {message}", flush=True)
        return
    print(f"FAILED: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def expect_code(what, got, expected):
    if DISCOVER:
        print(f"  {what}: {name_of(got)}", flush=True)
    expect(got == expected, f"{what}: expected {name_of(expected)}, got {name_of(got)}")


class Connection:
    """One blocking socket to the broker; requests are answered in order."""

    def __init__(self):
        host, port = BOOTSTRAP.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.socket = socket.create_connection((host, self.port), timeout=REQUEST_TIMEOUT_S)
        self.protocol = KafkaProtocol(client_id="groups-bad-input")
        response = self.call(ApiVersionsRequest[0](), "ApiVersions")
        expect(response.error_code == NONE, f"ApiVersions error {response.error_code}")
        self.broker_versions = {key.api_key: (key.min_version, key.max_version) for key in response.api_keys}

    def call(self, request, what):
        self.protocol.send_request(request)
        self.socket.sendall(self.protocol.send_bytes())
        while True:
            try:
                data = self.socket.recv(65536)
            except socket.timeout:
                expect(False, f"no answer to {what} within {REQUEST_TIMEOUT_S} s")
                sys.exit(1)
            if not data:
                print(f"FAILED: the broker closed the connection on {what} (v{request.API_VERSION})",
                      file=sys.stderr, flush=True)
                sys.exit(1)
            responses = self.protocol.receive_bytes(data)
            if responses:
                return responses[0][1]

    def versions(self, api):
        """(lowest, highest) version of `api` that both the broker and kafka-python speak."""
        broker = self.broker_versions.get(api.API_KEY)
        expect(broker is not None, f"the broker advertises {api.__name__[:-len('Request')]} (key {api.API_KEY})")
        low, high = max(broker[0], api.valid_versions[0]), min(broker[1], api.valid_versions[1])
        expect(low <= high, f"{api.__name__}: broker {broker}, kafka-python {api.valid_versions}")
        return low, high


class Client:
    """The requests, each built for the version chosen for this run."""

    def __init__(self, connection, pick):
        self.connection = connection
        self.version = {api: pick(connection.versions(api)) for api in APIS}

    def v(self, api):
        return self.version[api]

    def call(self, api, what, **fields):
        return self.connection.call(api[self.v(api)](**fields), what)

    # Metadata and coordinator.

    def metadata(self, topics):
        """Metadata at v4 at least: before v4 every Metadata request may create the topics it names."""
        low, high = self.connection.versions(MetadataRequest)
        version = min(max(self.v(MetadataRequest), 4, low), high)
        topics = [MetadataRequest.MetadataRequestTopic(name=name, topic_id=None) for name in topics]
        return self.connection.call(MetadataRequest[version](
            topics=topics, allow_auto_topic_creation=False, include_cluster_authorized_operations=False,
            include_topic_authorized_operations=False), "Metadata")

    def find_coordinator(self, key, key_type=0):
        """(error, node id, host, port) for one key."""
        if self.v(FindCoordinatorRequest) >= 4:
            response = self.call(FindCoordinatorRequest, "FindCoordinator", key_type=key_type,
                                 coordinator_keys=[key])
            expect(len(response.coordinators) == 1, f"FindCoordinator: one coordinator, got {response}")
            coordinator = response.coordinators[0]
            expect(coordinator.key == key, f"FindCoordinator: key {coordinator.key!r} == {key!r}")
            return coordinator.error_code, coordinator.node_id, coordinator.host, coordinator.port
        response = self.call(FindCoordinatorRequest, "FindCoordinator", key=key, key_type=key_type)
        return response.error_code, response.node_id, response.host, response.port

    # The group membership.

    def join(self, group, member_id, session_timeout_ms=SESSION_TIMEOUT_MS, protocol_type="consumer",
             protocols=None, topics=()):
        if protocols is None:
            metadata = ConsumerProtocolSubscription(version=0, topics=list(topics), user_data=b"").encode()
            protocols = [("range", metadata)]
        protocols = [JoinGroupRequest.JoinGroupRequestProtocol(name=name, metadata=metadata)
                     for name, metadata in protocols]
        return self.call(JoinGroupRequest, "JoinGroup", group_id=group, session_timeout_ms=session_timeout_ms,
                         rebalance_timeout_ms=REBALANCE_TIMEOUT_MS, member_id=member_id, group_instance_id=None,
                         protocol_type=protocol_type, protocols=protocols, reason=None)

    def sync(self, group, generation, member_id, assignments=()):
        assignments = [SyncGroupRequest.SyncGroupRequestAssignment(member_id=member, assignment=assignment)
                       for member, assignment in assignments]
        return self.call(SyncGroupRequest, "SyncGroup", group_id=group, generation_id=generation,
                         member_id=member_id, group_instance_id=None, protocol_type="consumer",
                         protocol_name="range", assignments=assignments)

    def heartbeat(self, group, generation, member_id):
        return self.call(HeartbeatRequest, "Heartbeat", group_id=group, generation_id=generation,
                         member_id=member_id, group_instance_id=None).error_code

    def leave(self, group, member_id):
        """(top-level error, member-level error or None before v3)."""
        if self.v(LeaveGroupRequest) >= 3:
            members = [LeaveGroupRequest.MemberIdentity(member_id=member_id, group_instance_id=None, reason=None)]
            response = self.call(LeaveGroupRequest, "LeaveGroup", group_id=group, members=members)
            expect(len(response.members) == 1, f"LeaveGroup: one member answered, got {response}")
            expect(response.members[0].member_id == member_id,
                   f"LeaveGroup: member {response.members[0].member_id!r} == {member_id!r}")
            return response.error_code, response.members[0].error_code
        response = self.call(LeaveGroupRequest, "LeaveGroup", group_id=group, member_id=member_id)
        return response.error_code, None

    # Offsets.

    def commit(self, group, generation, member_id, offsets, topic_ids=None):
        """offsets: {(topic, partition): (offset, metadata)}; returns {(topic, partition): error}.
        From v10 on topics are named by id: `topic_ids` maps names to ids."""
        Topic = OffsetCommitRequest.OffsetCommitRequestTopic
        Partition = Topic.OffsetCommitRequestPartition
        by_topic = {}
        for (topic, partition), (offset, metadata) in offsets.items():
            by_topic.setdefault(topic, []).append(
                Partition(partition_index=partition, committed_offset=offset, committed_leader_epoch=-1,
                          commit_timestamp=-1, committed_metadata=metadata))
        version = self.v(OffsetCommitRequest)
        topics = [Topic(name=topic, topic_id=(topic_ids or {}).get(topic) if version >= 10 else None,
                        partitions=partitions) for topic, partitions in by_topic.items()]
        response = self.call(OffsetCommitRequest, "OffsetCommit", group_id=group,
                             generation_id_or_member_epoch=generation, member_id=member_id, group_instance_id=None,
                             retention_time_ms=-1, topics=topics)
        names = {topic_id: name for name, topic_id in (topic_ids or {}).items()}
        result = {}
        for topic in response.topics:
            name = names.get(topic.topic_id, topic.topic_id) if version >= 10 else topic.name
            for partition in topic.partitions:
                result[(name, partition.partition_index)] = partition.error_code
        expect(set(result) == set(offsets), f"OffsetCommit answers every partition: {sorted(result)}")
        return result

    def fetch_offsets(self, group, partitions, topic_ids=None):
        """(group error, {(topic, partition): (offset, metadata, error)})."""
        version = self.v(OffsetFetchRequest)
        by_topic = {}
        for topic, partition in partitions:
            by_topic.setdefault(topic, []).append(partition)
        result = {}
        if version >= 8:
            Group = OffsetFetchRequest.OffsetFetchRequestGroup
            Topics = Group.OffsetFetchRequestTopics
            topics = [Topics(name=topic, topic_id=(topic_ids or {}).get(topic) if version >= 10 else None,
                             partition_indexes=indexes) for topic, indexes in by_topic.items()]
            response = self.call(OffsetFetchRequest, "OffsetFetch", require_stable=True,
                                 groups=[Group(group_id=group, member_id=None, member_epoch=-1, topics=topics)])
            expect(len(response.groups) == 1 and response.groups[0].group_id == group,
                   f"OffsetFetch answers for group {group}: {response}")
            answer = response.groups[0]
            names = {topic_id: name for name, topic_id in (topic_ids or {}).items()}
            for topic in answer.topics:
                name = names.get(topic.topic_id, topic.topic_id) if version >= 10 else topic.name
                for partition in topic.partitions:
                    result[(name, partition.partition_index)] = (partition.committed_offset, partition.metadata,
                                                                 partition.error_code)
            return answer.error_code, result
        Topic = OffsetFetchRequest.OffsetFetchRequestTopic
        topics = [Topic(name=topic, partition_indexes=indexes) for topic, indexes in by_topic.items()]
        response = self.call(OffsetFetchRequest, "OffsetFetch", group_id=group, topics=topics, require_stable=True)
        for topic in response.topics:
            for partition in topic.partitions:
                result[(topic.name, partition.partition_index)] = (partition.committed_offset, partition.metadata,
                                                                   partition.error_code)
        return (response.error_code if version >= 2 else NONE), result

    def offset_delete(self, group, partitions):
        """(top-level error, {(topic, partition): error})."""
        Topic = OffsetDeleteRequest.OffsetDeleteRequestTopic
        by_topic = {}
        for topic, partition in partitions:
            by_topic.setdefault(topic, []).append(Topic.OffsetDeleteRequestPartition(partition_index=partition))
        response = self.call(OffsetDeleteRequest, "OffsetDelete", group_id=group,
                             topics=[Topic(name=topic, partitions=indexes) for topic, indexes in by_topic.items()])
        return response.error_code, {(topic.name, partition.partition_index): partition.error_code
                                     for topic in response.topics for partition in topic.partitions}

    # Administration.

    def describe(self, group):
        response = self.call(DescribeGroupsRequest, "DescribeGroups", groups=[group],
                             include_authorized_operations=False)
        expect(len(response.groups) == 1 and response.groups[0].group_id == group,
               f"DescribeGroups answers for {group}: {response}")
        return response.groups[0]

    def list_groups(self):
        """{group: (protocol type, state or None before v4)}."""
        response = self.call(ListGroupsRequest, "ListGroups", states_filter=[], types_filter=[])
        expect(response.error_code == NONE, f"ListGroups error {name_of(response.error_code)}")
        version = self.v(ListGroupsRequest)
        return {group.group_id: (group.protocol_type, group.group_state if version >= 4 else None)
                for group in response.groups}

    def delete_groups(self, groups):
        response = self.call(DeleteGroupsRequest, "DeleteGroups", groups_names=list(groups))
        return {result.group_id: result.error_code for result in response.results}


def wait_for_coordinator(client, group):
    """FindCoordinator until the broker has one (Kafka creates __consumer_offsets on first ask)."""
    deadline = time.monotonic() + COORDINATOR_WAIT_S
    while True:
        error, node_id, host, port = client.find_coordinator(group)
        if error == NONE:
            return node_id, host, port
        expect(error in (COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR),
               f"FindCoordinator({group}): a transient error while the coordinator starts, got {name_of(error)}")
        expect(time.monotonic() < deadline, f"no coordinator for {group} within {COORDINATOR_WAIT_S} s")
        time.sleep(0.2)


def run(client, label, topic, other_topic, topic_ids):
    versions = {api.__name__[:-len("Request")]: client.v(api) for api in APIS}
    log(f"{label} versions: {versions}")
    suffix = uuid.uuid4().hex[:8]
    group = f"bad-input-{label}-{suffix}"
    unknown_group = f"no-such-group-{label}-{suffix}"
    missing_topic = f"no-such-topic-{label}-{suffix}"

    node_id, host, port = wait_for_coordinator(client, group)
    brokers = client.metadata([]).brokers
    expect([(broker.node_id, broker.host, broker.port) for broker in brokers] == [(node_id, host, port)],
           f"FindCoordinator names the one broker: {(node_id, host, port)} in {brokers}")
    wait_for_coordinator(client, unknown_group)

    # An unknown group: Kafka answers every member request with UNKNOWN_MEMBER_ID (there is no member), reads
    # with nothing committed, and administrative requests with GROUP_ID_NOT_FOUND.
    print(f"{label}: unknown group", flush=True)
    expect_code("Heartbeat to an unknown group", client.heartbeat(unknown_group, 1, "nobody"), UNKNOWN_MEMBER_ID)
    expect_code("SyncGroup to an unknown group", client.sync(unknown_group, 1, "nobody").error_code,
                UNKNOWN_MEMBER_ID)
    top, member = client.leave(unknown_group, "nobody")
    if member is None:
        expect_code("LeaveGroup from an unknown group", top, UNKNOWN_MEMBER_ID)
    else:
        expect_code("LeaveGroup from an unknown group (top level)", top, NONE)
        expect_code("LeaveGroup from an unknown group (member)", member, UNKNOWN_MEMBER_ID)
    result = client.commit(unknown_group, 1, "nobody", {(topic, 0): (3, "")}, topic_ids)
    # Kafka 4.4 answers GROUP_ID_NOT_FOUND from OffsetCommit v9 on, ILLEGAL_GENERATION before.
    expect_code("OffsetCommit with a generation to an unknown group", result[(topic, 0)],
                GROUP_ID_NOT_FOUND if client.v(OffsetCommitRequest) >= 9 else ILLEGAL_GENERATION)
    error, offsets = client.fetch_offsets(unknown_group, [(topic, 0)], topic_ids)
    expect_code("OffsetFetch of an unknown group", error, NONE)
    expect(offsets == {(topic, 0): (-1, "", NONE)}, f"OffsetFetch of an unknown group: nothing committed, {offsets}")
    described = client.describe(unknown_group)
    if client.v(DescribeGroupsRequest) >= 6:
        expect_code("DescribeGroups of an unknown group", described.error_code, GROUP_ID_NOT_FOUND)
    else:
        expect_code("DescribeGroups of an unknown group", described.error_code, NONE)
    expect(described.group_state == "Dead" and not described.members,
           f"DescribeGroups of an unknown group: Dead, no members: {described}")
    expect_code("DeleteGroups of an unknown group", client.delete_groups([unknown_group])[unknown_group],
                GROUP_ID_NOT_FOUND)
    error, _ = client.offset_delete(unknown_group, [(topic, 0)])
    expect_code("OffsetDelete in an unknown group", error, GROUP_ID_NOT_FOUND)
    expect(unknown_group not in client.list_groups(), "ListGroups does not list the unknown group")

    # Joins Kafka refuses before the group exists.
    print(f"{label}: refused joins", flush=True)
    expect_code("JoinGroup with a session timeout below group.min.session.timeout.ms",
                client.join(group, "", SESSION_TIMEOUT_BELOW_MIN_MS, topics=[topic]).error_code,
                INVALID_SESSION_TIMEOUT)
    expect_code("JoinGroup with a session timeout above group.max.session.timeout.ms",
                client.join(group, "", SESSION_TIMEOUT_ABOVE_MAX_MS, topics=[topic]).error_code,
                INVALID_SESSION_TIMEOUT)
    expect_code("JoinGroup with an empty group id", client.join("", "", topics=[topic]).error_code, INVALID_GROUP_ID)
    expect_code("JoinGroup with a member id the group never gave", client.join(group, "bogus-member",
                                                                                topics=[topic]).error_code,
                UNKNOWN_MEMBER_ID)
    expect_code("JoinGroup with no protocol", client.join(group, "", protocols=[]).error_code,
                INCONSISTENT_GROUP_PROTOCOL)
    expect_code("JoinGroup with an empty protocol type", client.join(group, "", protocol_type="",
                                                                     topics=[topic]).error_code,
                INCONSISTENT_GROUP_PROTOCOL)
    # (Kafka keeps an empty group behind a join refused for its protocols; whether one exists is not checked, only
    # that no member got in.)
    described = client.describe(group)
    expect(described.group_state in ("Dead", "Empty") and not described.members,
           f"refused joins let no member in: {described}")

    # The member: from JoinGroup v4 on, the first join is answered MEMBER_ID_REQUIRED with the id to come back
    # with.
    print(f"{label}: the member joins", flush=True)
    joined = client.join(group, "", topics=[topic])
    if client.v(JoinGroupRequest) >= 4:
        expect_code("the first JoinGroup (v4+)", joined.error_code, MEMBER_ID_REQUIRED)
        expect(joined.member_id, "MEMBER_ID_REQUIRED carries the member id")
        joined = client.join(group, joined.member_id, topics=[topic])
    expect_code("JoinGroup", joined.error_code, NONE)
    member_id, generation = joined.member_id, joined.generation_id
    expect(member_id and joined.leader == member_id, f"the only member leads: {joined}")
    expect(generation >= 1, f"generation {generation}")
    expect([m.member_id for m in joined.members] == [member_id], f"the leader sees itself: {joined.members}")
    subscription = ConsumerProtocolSubscription.decode(joined.members[0].metadata, version=0)
    expect(subscription.topics == [topic], f"the member's metadata comes back: {subscription}")
    if client.v(JoinGroupRequest) >= 7:
        expect(joined.protocol_type == "consumer", f"JoinGroup v7+ names the protocol type: {joined}")
    expect(joined.protocol_name == "range", f"the protocol chosen is range: {joined}")
    Assignment = ConsumerProtocolAssignment
    assignment = Assignment(version=0, assigned_partitions=[Assignment.TopicPartition(topic=topic, partitions=[0, 1])],
                            user_data=b"").encode()

    expect_code("SyncGroup at a generation the group never had", client.sync(group, generation + 1, member_id, [
        (member_id, assignment)]).error_code, ILLEGAL_GENERATION)
    expect_code("SyncGroup from an unknown member", client.sync(group, generation, "bogus-member", [
        ("bogus-member", assignment)]).error_code, UNKNOWN_MEMBER_ID)
    synced = client.sync(group, generation, member_id, [(member_id, assignment)])
    expect_code("SyncGroup by the leader", synced.error_code, NONE)
    expect(synced.assignment == assignment, f"SyncGroup hands back the assignment: {synced.assignment!r}")
    expect_code("Heartbeat at the generation", client.heartbeat(group, generation, member_id), NONE)

    # Member requests with the wrong generation or from a member the group does not know.
    print(f"{label}: wrong generation, unknown member", flush=True)
    expect_code("Heartbeat at the next generation", client.heartbeat(group, generation + 1, member_id),
                ILLEGAL_GENERATION)
    expect_code("Heartbeat at the previous generation", client.heartbeat(group, generation - 1, member_id),
                ILLEGAL_GENERATION)
    expect_code("Heartbeat from an unknown member", client.heartbeat(group, generation, "bogus-member"),
                UNKNOWN_MEMBER_ID)
    expect_code("Heartbeat from an unknown member at a wrong generation",
                client.heartbeat(group, generation + 1, "bogus-member"), UNKNOWN_MEMBER_ID)

    result = client.commit(group, generation, member_id, {(topic, 0): (7, "seven"), (topic, 1): (11, None)},
                           topic_ids)
    expect(result == {(topic, 0): NONE, (topic, 1): NONE}, f"OffsetCommit by the member: {result}")
    for what, commit_generation, commit_member, expected in (
            ("OffsetCommit at the next generation", generation + 1, member_id, ILLEGAL_GENERATION),
            ("OffsetCommit at the previous generation", generation - 1, member_id, ILLEGAL_GENERATION),
            ("OffsetCommit from an unknown member", generation, "bogus-member", UNKNOWN_MEMBER_ID),
            ("OffsetCommit without a member to a group with members", -1, "", UNKNOWN_MEMBER_ID)):
        result = client.commit(group, commit_generation, commit_member, {(topic, 0): (99, "wrong")}, topic_ids)
        expect_code(what, result[(topic, 0)], expected)
    if client.v(OffsetCommitRequest) < 10:
        result = client.commit(group, generation, member_id, {(missing_topic, 0): (5, "")})
        expect_code("OffsetCommit for a topic that does not exist", result[(missing_topic, 0)],
                    UNKNOWN_TOPIC_OR_PARTITION)
    else:
        ghost = uuid.uuid4()
        result = client.commit(group, generation, member_id, {(missing_topic, 0): (5, "")}, {missing_topic: ghost})
        expect_code("OffsetCommit for a topic id that does not exist", result[(missing_topic, 0)], UNKNOWN_TOPIC_ID)
    result = client.commit(group, generation, member_id, {(topic, 2): (5, ""), (topic, 0): (8, "eight")}, topic_ids)
    expect_code("OffsetCommit for a partition the topic does not have", result[(topic, 2)],
                UNKNOWN_TOPIC_OR_PARTITION)
    expect_code("OffsetCommit for a good partition beside it", result[(topic, 0)], NONE)
    result = client.commit(group, generation, member_id, {(other_topic, 0): (4, "other")}, topic_ids)
    expect_code("OffsetCommit for a topic the member does not subscribe to", result[(other_topic, 0)], NONE)
    error = client.metadata([missing_topic]).topics[0].error_code
    expect(error == UNKNOWN_TOPIC_OR_PARTITION,
           f"OffsetCommit for a missing topic does not create it: Metadata answers {name_of(error)}")

    top, member = client.leave(group, "bogus-member")
    if member is None:
        expect_code("LeaveGroup by an unknown member", top, UNKNOWN_MEMBER_ID)
    else:
        expect_code("LeaveGroup by an unknown member (top level)", top, NONE)
        expect_code("LeaveGroup by an unknown member (member)", member, UNKNOWN_MEMBER_ID)

    # A second member may not join with another protocol type or no common protocol.
    expect_code("JoinGroup with another protocol type", client.join(group, "", protocol_type="connect",
                                                                    topics=[topic]).error_code,
                INCONSISTENT_GROUP_PROTOCOL)
    metadata = ConsumerProtocolSubscription(version=0, topics=[topic], user_data=b"").encode()
    expect_code("JoinGroup with no protocol in common", client.join(group, "", protocols=[("nonesuch", metadata)])
                .error_code, INCONSISTENT_GROUP_PROTOCOL)

    # Administration Kafka refuses while the group has a member.
    expect_code("DeleteGroups of a group with a member", client.delete_groups([group])[group], NON_EMPTY_GROUP)
    error, partitions = client.offset_delete(group, [(topic, 0)])
    expect_code("OffsetDelete of a subscribed topic (top level)", error, NONE)
    expect_code("OffsetDelete of a subscribed topic (partition)", partitions[(topic, 0)], GROUP_SUBSCRIBED_TO_TOPIC)
    error, partitions = client.offset_delete(group, [(other_topic, 0)])
    expect_code("OffsetDelete of a topic nobody subscribes to (top level)", error, NONE)
    expect_code("OffsetDelete of a topic nobody subscribes to (partition)", partitions[(other_topic, 0)], NONE)

    # Nothing corrupted: the member is where it was.
    print(f"{label}: nothing corrupted", flush=True)
    expect_code("Heartbeat at the generation, after all that", client.heartbeat(group, generation, member_id), NONE)
    error, offsets = client.fetch_offsets(group, [(topic, 0), (topic, 1), (other_topic, 0)], topic_ids)
    expect_code("OffsetFetch", error, NONE)
    expect(offsets == {(topic, 0): (8, "eight", NONE), (topic, 1): (11, "", NONE), (other_topic, 0): (-1, "", NONE)},
           f"the committed offsets are the member's, the deleted one is gone: {offsets}")
    described = client.describe(group)
    expect_code("DescribeGroups", described.error_code, NONE)
    expect((described.group_state, described.protocol_type, described.protocol_data) == ("Stable", "consumer",
                                                                                         "range"),
           f"DescribeGroups: Stable, consumer, range: {described}")
    expect([m.member_id for m in described.members] == [member_id], f"DescribeGroups: the one member: {described}")
    expect(described.members[0].member_assignment == assignment,
           f"DescribeGroups: the assignment is the leader's: {described.members[0].member_assignment!r}")
    expect(described.members[0].client_id == "groups-bad-input", f"DescribeGroups: client id: {described.members[0]}")
    listed = client.list_groups()
    expect(group in listed, f"ListGroups lists {group}: {listed}")
    expect(listed[group][0] == "consumer", f"ListGroups: protocol type consumer: {listed[group]}")
    if client.v(ListGroupsRequest) >= 4:
        expect(listed[group][1] == "Stable", f"ListGroups v4+: state Stable: {listed[group]}")

    # The member leaves; the group is empty and keeps its offsets; then it is deleted.
    print(f"{label}: leave and delete", flush=True)
    top, member = client.leave(group, member_id)
    expect_code("LeaveGroup by the member", top, NONE)
    if member is not None:
        expect_code("LeaveGroup by the member (member)", member, NONE)
    expect_code("Heartbeat after leaving", client.heartbeat(group, generation, member_id), UNKNOWN_MEMBER_ID)
    result = client.commit(group, generation, member_id, {(topic, 0): (99, "late")}, topic_ids)
    expect_code("OffsetCommit at the old generation after leaving", result[(topic, 0)], UNKNOWN_MEMBER_ID)
    described = client.describe(group)
    expect((described.error_code, described.group_state, len(described.members)) == (NONE, "Empty", 0),
           f"DescribeGroups after the member left: Empty, no members: {described}")
    result = client.commit(group, -1, "", {(topic, 1): (12, "simple")}, topic_ids)
    expect_code("OffsetCommit without a member to an empty group", result[(topic, 1)], NONE)
    error, offsets = client.fetch_offsets(group, [(topic, 0), (topic, 1)], topic_ids)
    expect(offsets == {(topic, 0): (8, "eight", NONE), (topic, 1): (12, "simple", NONE)},
           f"an empty group keeps its offsets: {offsets}")
    expect_code("DeleteGroups of the empty group", client.delete_groups([group])[group], NONE)
    error, offsets = client.fetch_offsets(group, [(topic, 0), (topic, 1)], topic_ids)
    expect(offsets == {(topic, 0): (-1, "", NONE), (topic, 1): (-1, "", NONE)},
           f"a deleted group has no offsets: {offsets}")
    expect(group not in client.list_groups(), "ListGroups no longer lists the deleted group")
    expect_code("DeleteGroups of the deleted group", client.delete_groups([group])[group], GROUP_ID_NOT_FOUND)


def create_topics(names):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    futures = admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1) for name in names])
    for future in futures.values():
        future.result(timeout=30)


def main():
    suffix = uuid.uuid4().hex[:8]
    topic, other_topic = f"bad-input-{suffix}", f"bad-input-other-{suffix}"
    create_topics([topic, other_topic])
    connection = Connection()
    for label, pick in (("lowest", lambda versions: versions[0]), ("highest", lambda versions: versions[1])):
        client = Client(connection, pick)
        topic_ids = None
        if client.v(OffsetCommitRequest) >= 10 or client.v(OffsetFetchRequest) >= 10:
            answer = client.metadata([topic, other_topic])
            topic_ids = {entry.name: entry.topic_id for entry in answer.topics}
        run(client, label, topic, other_topic, topic_ids)
    if DISCOVER and failures:
        print(f"{len(failures)} unexpected answers", flush=True)
        sys.exit(1)


main()
print("bad-input: ok", flush=True)
