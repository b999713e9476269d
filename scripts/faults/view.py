"""What each node of the loopback cluster says, asked node by node: partition leaders and ISRs
(Metadata v12) and the metadata quorum's leader (DescribeQuorum v0). Used by cycles.py to pick
its victims and to tell when the cluster has healed. Knows nothing of faults or of the checks.

kafka-python's protocol codec over its own sockets, through scripts/failover-probe.py's call():
every request goes to the node it names, with a short timeout (its REQUEST_TIMEOUT_MS, 2 s), so
a stopped or killed node costs one timeout and never stalls the question asked of the others (a
client library would route it to any broker it knows, the stopped one included).
"""

import importlib.util
import os

from kafka.protocol.admin.cluster import DescribeQuorumRequest
from kafka.protocol.metadata.metadata import MetadataRequest

METADATA_TOPIC = "__cluster_metadata"


def parse_nodes(text):
    """'1=127.0.0.11:49700,2=...' -> {1: ('127.0.0.11', 49700), ...}"""
    nodes = {}
    for item in text.split(","):
        node, address = item.split("=")
        host, port = address.rsplit(":", 1)
        nodes[int(node)] = (host, int(port))
    return nodes


def _load_probe():
    """scripts/failover-probe.py, whose call() (one request on a fresh connection to the node it
    names, REQUEST_TIMEOUT_MS) this module shares rather than copies; loaded by path (its name has
    a hyphen)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "failover-probe.py")
    spec = importlib.util.spec_from_file_location("failover_probe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# call(address, request): one request to address (host, port) on a fresh connection; the decoded
# response (ConnectionError when the node closes the connection, OSError when it does not answer).
call = _load_probe().call


def partitions(address, topic):
    """{partition: {"leader", "epoch", "isr", "replicas"}} of `topic` as the node at `address` has it
    ({} when it does not know the topic). Raises OSError/ConnectionError when the node does not answer."""
    response = call(
        address,
        MetadataRequest[12](
            topics=[MetadataRequest.MetadataRequestTopic(name=topic, topic_id=None)],
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        ),
    )
    found = {}
    for entry in response.topics:
        if entry.name == topic and entry.error_code == 0:
            for partition in entry.partitions:
                found[partition.partition_index] = {
                    "leader": partition.leader_id,
                    "epoch": partition.leader_epoch,
                    "isr": sorted(partition.isr_nodes),
                    "replicas": list(partition.replica_nodes),
                }
    return found


def quorum_leader(address):
    """The metadata quorum's leader as the node at `address` answers DescribeQuorum (-1: none known)."""
    topic = DescribeQuorumRequest.TopicData
    request = DescribeQuorumRequest[0](
        topics=[topic(topic_name=METADATA_TOPIC, partitions=[topic.PartitionData(partition_index=0)])]
    )
    response = call(address, request)
    if response.error_code != 0:
        return -1
    partition = response.topics[0].partitions[0]
    return partition.leader_id if partition.error_code == 0 else -1


def ask(function, *args):
    """function(*args), or None when the node does not answer."""
    try:
        return function(*args)
    except (OSError, ConnectionError):
        return None
