//! The metadata image: the cluster's state as of one metadata offset, built by applying record
//! batches in log order. Every node that applies the same log gets the same image (the simulation
//! checks it).
//!
//! An image is immutable once published: a broker's shards hold an `Arc<MetadataImage>` and swap
//! it for the next one, so they read without locks. Topics sit behind their own `Arc`, so the
//! next image shares every topic a batch did not touch.
//!
//! Owns: applying records, and the questions asked of the state (who leads a partition, which
//! brokers are alive). Must not know: how records are decided, replicated or stored.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::records::{Endpoint, MetadataRecord, PartitionState, RecordBatch};
use crate::types::{BrokerId, ClusterId, PartitionIndex, TopicId};
use crate::ClusterError;

/// A broker as the metadata log knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub id: BrokerId,
    pub incarnation: u64,
    /// The broker epoch of this registration.
    pub epoch: u64,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    /// Fenced: registered but not (yet, or no longer) heartbeating; leads nothing.
    pub fenced: bool,
    /// Asked for a controlled shutdown: leadership moves away from it.
    pub shutting_down: bool,
}

impl BrokerRegistration {
    /// May lead partitions and be added to ISRs.
    pub fn is_active(&self) -> bool {
        !self.fenced && !self.shutting_down
    }
}

/// A topic and its partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicImage {
    pub id: TopicId,
    pub name: String,
    pub configs: BTreeMap<String, String>,
    /// Partition `i` at index `i`.
    pub partitions: Vec<PartitionState>,
}

/// The cluster's metadata as of [`MetadataImage::offset`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataImage {
    /// The metadata offset (Raft index) of the last batch applied; 0 for the empty image.
    pub offset: u64,
    pub cluster_id: Option<ClusterId>,
    pub brokers: BTreeMap<BrokerId, BrokerRegistration>,
    pub topics: BTreeMap<String, Arc<TopicImage>>,
    pub topic_names: BTreeMap<TopicId, String>,
    /// The next producer id a block may start at.
    pub next_producer_id: u64,
    /// The broker epoch the next registration gets (unique across all brokers).
    pub next_broker_epoch: u64,
    /// Dynamic broker configs: one broker's (`Some`), the cluster-wide default (`None`). Only
    /// non-empty sets are kept.
    pub broker_configs: BTreeMap<Option<BrokerId>, BTreeMap<String, String>>,
}

impl MetadataImage {
    /// Applies one batch (the records of one Raft entry at `offset`). A batch that does not fit
    /// the image (a partition of an unknown topic, a second cluster id) is corruption: nothing of
    /// it is applied and the error says which record.
    pub fn apply(&self, offset: u64, batch: &[MetadataRecord]) -> Result<MetadataImage, ClusterError> {
        let mut next = self.clone();
        for record in batch {
            next.apply_record(record)?;
        }
        next.offset = offset;
        Ok(next)
    }

    fn apply_record(&mut self, record: &MetadataRecord) -> Result<(), ClusterError> {
        match record {
            MetadataRecord::ClusterId(id) => match self.cluster_id {
                Some(existing) if existing != *id => return Err(misfit(record, "a second cluster id")),
                _ => self.cluster_id = Some(*id),
            },
            MetadataRecord::RegisterBroker { broker, incarnation, epoch, endpoints, rack } => {
                if *epoch < self.next_broker_epoch {
                    return Err(misfit(record, "a broker epoch already given"));
                }
                self.next_broker_epoch = epoch + 1;
                self.brokers.insert(
                    *broker,
                    BrokerRegistration {
                        id: *broker,
                        incarnation: *incarnation,
                        epoch: *epoch,
                        endpoints: endpoints.clone(),
                        rack: rack.clone(),
                        fenced: true,
                        shutting_down: false,
                    },
                );
            }
            MetadataRecord::FenceBroker { broker, epoch } => self.broker_mut(record, *broker, *epoch)?.fenced = true,
            MetadataRecord::UnfenceBroker { broker, epoch } => {
                let registration = self.broker_mut(record, *broker, *epoch)?;
                registration.fenced = false;
                registration.shutting_down = false;
            }
            MetadataRecord::BeginControlledShutdown { broker, epoch } => {
                self.broker_mut(record, *broker, *epoch)?.shutting_down = true
            }
            MetadataRecord::Topic { id, name, configs } => {
                if self.topics.contains_key(name) || self.topic_names.contains_key(id) {
                    return Err(misfit(record, "a topic name or id that exists"));
                }
                self.topic_names.insert(*id, name.clone());
                self.topics.insert(
                    name.clone(),
                    Arc::new(TopicImage {
                        id: *id,
                        name: name.clone(),
                        configs: configs.clone(),
                        partitions: Vec::new(),
                    }),
                );
            }
            MetadataRecord::Partition(state) => {
                let name = self.topic_names.get(&state.topic_id).ok_or_else(|| misfit(record, "an unknown topic"))?;
                let topic = self.topics.get_mut(name).ok_or_else(|| misfit(record, "an unknown topic"))?;
                let topic = Arc::make_mut(topic);
                let index = usize::try_from(state.partition.0).map_err(|_| misfit(record, "a negative partition"))?;
                match index.cmp(&topic.partitions.len()) {
                    std::cmp::Ordering::Less => {
                        let old = &topic.partitions[index];
                        if state.leader_epoch < old.leader_epoch || state.partition_epoch <= old.partition_epoch {
                            return Err(misfit(record, "an epoch that does not grow"));
                        }
                        topic.partitions[index] = state.clone();
                    }
                    std::cmp::Ordering::Equal => topic.partitions.push(state.clone()),
                    std::cmp::Ordering::Greater => return Err(misfit(record, "a gap in partition indexes")),
                }
            }
            MetadataRecord::BrokerConfigs { broker, configs } => {
                if configs.is_empty() {
                    self.broker_configs.remove(broker);
                } else {
                    self.broker_configs.insert(*broker, configs.clone());
                }
            }
            MetadataRecord::TopicConfigs { id, configs } => {
                let name = self.topic_names.get(id).ok_or_else(|| misfit(record, "an unknown topic"))?;
                let topic = self.topics.get_mut(name).ok_or_else(|| misfit(record, "an unknown topic"))?;
                Arc::make_mut(topic).configs = configs.clone();
            }
            MetadataRecord::RemoveTopic { id } => {
                let name = self.topic_names.remove(id).ok_or_else(|| misfit(record, "an unknown topic"))?;
                self.topics.remove(&name);
            }
            MetadataRecord::ProducerIds { next, .. } => {
                if *next <= self.next_producer_id {
                    return Err(misfit(record, "a producer-id block that does not grow"));
                }
                self.next_producer_id = *next;
            }
            MetadataRecord::Counters { next_broker_epoch, next_producer_id } => {
                if *next_broker_epoch < self.next_broker_epoch || *next_producer_id < self.next_producer_id {
                    return Err(misfit(record, "counters that go back"));
                }
                self.next_broker_epoch = *next_broker_epoch;
                self.next_producer_id = *next_producer_id;
            }
        }
        Ok(())
    }

    fn broker_mut(
        &mut self,
        record: &MetadataRecord,
        broker: BrokerId,
        epoch: u64,
    ) -> Result<&mut BrokerRegistration, ClusterError> {
        match self.brokers.get_mut(&broker) {
            Some(registration) if registration.epoch == epoch => Ok(registration),
            _ => Err(misfit(record, "an unknown broker or broker epoch")),
        }
    }

    /// The records that rebuild this image from the empty one (a snapshot's contents): applying
    /// them to `MetadataImage::default()` at this image's offset gives this image back.
    pub fn to_records(&self) -> RecordBatch {
        let mut records = Vec::new();
        records.extend(self.cluster_id.map(MetadataRecord::ClusterId));
        let mut brokers: Vec<&BrokerRegistration> = self.brokers.values().collect();
        brokers.sort_by_key(|broker| broker.epoch);
        for broker in brokers {
            let (id, epoch) = (broker.id, broker.epoch);
            records.push(MetadataRecord::RegisterBroker {
                broker: id,
                incarnation: broker.incarnation,
                epoch,
                endpoints: broker.endpoints.clone(),
                rack: broker.rack.clone(),
            });
            if !broker.fenced {
                records.push(MetadataRecord::UnfenceBroker { broker: id, epoch });
            }
            if broker.shutting_down {
                records.push(MetadataRecord::BeginControlledShutdown { broker: id, epoch });
            }
        }
        for topic in self.topics.values() {
            records.push(MetadataRecord::Topic {
                id: topic.id,
                name: topic.name.clone(),
                configs: topic.configs.clone(),
            });
            records.extend(topic.partitions.iter().cloned().map(MetadataRecord::Partition));
        }
        for (broker, configs) in &self.broker_configs {
            records.push(MetadataRecord::BrokerConfigs { broker: *broker, configs: configs.clone() });
        }
        records.push(MetadataRecord::Counters {
            next_broker_epoch: self.next_broker_epoch,
            next_producer_id: self.next_producer_id,
        });
        records
    }

    /// The image a snapshot's records describe, as of `offset`.
    pub fn from_records(offset: u64, records: &[MetadataRecord]) -> Result<MetadataImage, ClusterError> {
        MetadataImage::default().apply(offset, records)
    }

    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: TopicId) -> Option<&Arc<TopicImage>> {
        self.topic_names.get(&id).and_then(|name| self.topics.get(name))
    }

    pub fn partition(&self, topic: &str, partition: PartitionIndex) -> Option<&PartitionState> {
        let index = usize::try_from(partition.0).ok()?;
        self.topics.get(topic)?.partitions.get(index)
    }

    /// Brokers that may lead and join ISRs (registered, unfenced, not shutting down).
    pub fn active_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|broker| broker.is_active())
    }

    pub fn is_active(&self, broker: BrokerId) -> bool {
        self.brokers.get(&broker).is_some_and(BrokerRegistration::is_active)
    }

    /// Every partition, in topic-name then index order.
    pub fn partitions(&self) -> impl Iterator<Item = (&TopicImage, &PartitionState)> {
        self.topics.values().flat_map(|topic| topic.partitions.iter().map(move |partition| (&**topic, partition)))
    }
}

fn misfit(record: &MetadataRecord, what: &str) -> ClusterError {
    ClusterError::Corrupt(format!("metadata record names {what}: {record:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Partition 0 of topic `id`, on broker 1 alone, led by it.
    fn led_by_1(id: TopicId, leader_epoch: i32, partition_epoch: i32) -> PartitionState {
        PartitionState {
            topic_id: id,
            partition: PartitionIndex(0),
            replicas: vec![BrokerId(1)],
            isr: vec![BrokerId(1)],
            leader: Some(BrokerId(1)),
            leader_epoch,
            partition_epoch,
            adding: Vec::new(),
            removing: Vec::new(),
        }
    }

    fn registered() -> MetadataImage {
        let register = MetadataRecord::RegisterBroker {
            broker: BrokerId(1),
            incarnation: 7,
            epoch: 0,
            endpoints: Vec::new(),
            rack: None,
        };
        MetadataImage::default().apply(1, &[MetadataRecord::ClusterId(ClusterId([9; 16])), register]).expect("applies")
    }

    #[test]
    fn a_registered_broker_starts_fenced_and_unfences_with_its_epoch_only() {
        let image = registered();
        assert!(!image.is_active(BrokerId(1)));
        assert!(image.apply(2, &[MetadataRecord::UnfenceBroker { broker: BrokerId(1), epoch: 9 }]).is_err());
        let image = image.apply(2, &[MetadataRecord::UnfenceBroker { broker: BrokerId(1), epoch: 0 }]).expect("ok");
        assert!(image.is_active(BrokerId(1)));
        assert_eq!(image.offset, 2);
    }

    #[test]
    fn a_batch_that_does_not_fit_changes_nothing() {
        let image = registered();
        let orphan = MetadataRecord::Partition(led_by_1(TopicId([3; 16]), 0, 0));
        let topic = MetadataRecord::Topic { id: TopicId([4; 16]), name: "t".into(), configs: BTreeMap::new() };
        assert!(image.apply(2, &[topic, orphan]).is_err());
        assert!(image.topics.is_empty(), "the image itself is never changed");
    }

    #[test]
    fn an_image_rebuilt_from_its_records_is_the_same_image() {
        let id = TopicId([4; 16]);
        let state = led_by_1(id, 3, 5);
        let image = registered()
            .apply(
                2,
                &[
                    MetadataRecord::UnfenceBroker { broker: BrokerId(1), epoch: 0 },
                    MetadataRecord::BeginControlledShutdown { broker: BrokerId(1), epoch: 0 },
                    MetadataRecord::Topic { id, name: "t".into(), configs: BTreeMap::new() },
                    MetadataRecord::Partition(state),
                    MetadataRecord::ProducerIds { broker: BrokerId(1), epoch: 0, next: 4000 },
                ],
            )
            .expect("applies");
        let rebuilt = MetadataImage::from_records(image.offset, &image.to_records()).expect("rebuilds");
        assert_eq!(rebuilt, image);
    }

    #[test]
    fn a_partition_change_must_grow_its_epochs() {
        let id = TopicId([4; 16]);
        let state = led_by_1(id, 0, 0);
        let topic = MetadataRecord::Topic { id, name: "t".into(), configs: BTreeMap::new() };
        let image = registered().apply(2, &[topic, MetadataRecord::Partition(state.clone())]).expect("ok");
        assert!(image.apply(3, &[MetadataRecord::Partition(state.clone())]).is_err());
        let changed = PartitionState { leader: None, leader_epoch: 1, partition_epoch: 1, ..state };
        let image = image.apply(3, &[MetadataRecord::Partition(changed.clone())]).expect("ok");
        assert_eq!(image.partition("t", PartitionIndex(0)), Some(&changed));
    }
}
