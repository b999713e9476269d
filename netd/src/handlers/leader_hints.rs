//! KIP-951 leader hints, shared by Fetch (v16+) and Produce (v10+): a partition refused with
//! NOT_LEADER_OR_FOLLOWER (for Fetch also FENCED_LEADER_EPOCH) carries its current leader and
//! leader epoch, and the response carries the endpoints of the leaders it names, so a client
//! moves to the new leader without a Metadata round trip first.
//!
//! As Kafka's `KafkaApis.getCurrentLeader`: the leader and epoch as this broker's metadata image
//! has them, (-1, -1) for a partition it does not know or that has no leader; an endpoint only
//! for a leader that is registered and not fenced (the client listener, as Metadata answers it).
//!
//! Owns: the lookup in the image, and [`node_endpoints!`], which copies the endpoints found into
//! either response's own `NodeEndpoint` type (Fetch's and Produce's are distinct generated types
//! with the same fields).

use std::collections::BTreeMap;

use cluster::image::MetadataImage;
use cluster::{BrokerId, PartitionIndex};

/// A partition's current leader and leader epoch, or (-1, -1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leader {
    pub id: i32,
    pub epoch: i32,
}

/// How a client reaches a broker a hint names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEndpoint {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// The hints of one response: each hinted partition's leader, and the endpoints of those leaders
/// (each once, by id, as Kafka's map of them).
#[derive(Debug, Default)]
pub struct Hints {
    pub endpoints: BTreeMap<i32, NodeEndpoint>,
}

impl Hints {
    /// `topic`'s `partition` leader as `image` has it, its endpoint remembered for the response.
    pub fn leader(&mut self, image: &MetadataImage, topic: &str, partition: i32) -> Leader {
        let Some(state) = image.partition(topic, PartitionIndex(partition)) else {
            return Leader { id: -1, epoch: -1 };
        };
        let Some(leader) = state.leader else {
            return Leader { id: -1, epoch: state.leader_epoch };
        };
        if let Some(endpoint) = client_endpoint(image, leader) {
            self.endpoints.insert(leader.0, endpoint);
        }
        Leader { id: leader.0, epoch: state.leader_epoch }
    }
}

/// Broker `id`'s client endpoint, if it is registered and not fenced.
fn client_endpoint(image: &MetadataImage, id: BrokerId) -> Option<NodeEndpoint> {
    let broker = image.brokers.get(&id).filter(|broker| !broker.fenced)?;
    let endpoint = broker.endpoints.first()?;
    Some(NodeEndpoint {
        id: id.0,
        host: endpoint.host.clone(),
        port: i32::from(endpoint.port),
        rack: broker.rack.clone(),
    })
}

/// The endpoints gathered in `hints` (a [`Hints`], consumed) as a response's `node_endpoints`, of
/// the generated type `$endpoint` (Fetch's or Produce's `NodeEndpoint`).
macro_rules! node_endpoints {
    ($hints:expr, $endpoint:ty) => {
        $hints
            .endpoints
            .into_values()
            .map(|endpoint| {
                let mut node = <$endpoint>::default();
                node.node_id = kafka_protocol::messages::BrokerId(endpoint.id);
                node.host = kafka_protocol::protocol::StrBytes::from_string(endpoint.host);
                node.port = endpoint.port;
                node.rack = endpoint.rack.map(kafka_protocol::protocol::StrBytes::from_string);
                node
            })
            .collect()
    };
}
pub(crate) use node_endpoints;
