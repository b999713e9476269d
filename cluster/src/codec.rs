//! The big-endian field encoding shared by the metadata records and the controller RPCs: a
//! writer, and a reader that checks every count against the bytes left before allocating.
//!
//! Must not know: what the fields mean.

use crate::records::{Endpoint, PartitionState};
use crate::types::{BrokerId, PartitionIndex, TopicId};
use crate::ClusterError;

/// At most this many endpoints (listeners) per broker.
const ENDPOINTS_MAX: usize = 1024;
/// The smallest endpoint on the wire: two empty strings and a port.
const ENDPOINT_BYTES_MIN: usize = 4 + 4 + 2;

pub(crate) fn corrupt(reason: String) -> ClusterError {
    ClusterError::Corrupt(reason)
}

/// Big-endian writer of the record fields.
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, value: u8) {
        self.0.push(value);
    }
    pub(crate) fn u16(&mut self, value: u16) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }
    pub(crate) fn i32(&mut self, value: i32) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }
    pub(crate) fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }
    pub(crate) fn len(&mut self, count: usize) {
        let count = u32::try_from(count).expect("metadata counts are bounded far below u32::MAX");
        self.0.extend_from_slice(&count.to_be_bytes());
    }
    pub(crate) fn string(&mut self, text: &str) {
        assert!(
            text.len() <= crate::records::RECORD_STRING_BYTES_MAX,
            "metadata strings are validated before they are recorded"
        );
        self.len(text.len());
        self.0.extend_from_slice(text.as_bytes());
    }
    pub(crate) fn optional_string(&mut self, text: Option<&str>) {
        match text {
            None => self.u8(0),
            Some(text) => {
                self.u8(1);
                self.string(text);
            }
        }
    }
    pub(crate) fn brokers(&mut self, brokers: &[BrokerId]) {
        self.len(brokers.len());
        for broker in brokers {
            self.i32(broker.0);
        }
    }
    pub(crate) fn endpoints(&mut self, endpoints: &[Endpoint]) {
        self.len(endpoints.len());
        for endpoint in endpoints {
            self.string(&endpoint.name);
            self.string(&endpoint.host);
            self.u16(endpoint.port);
        }
    }
    pub(crate) fn partition_state(&mut self, state: &PartitionState) {
        self.0.extend_from_slice(&state.topic_id.0);
        self.i32(state.partition.0);
        self.brokers(&state.replicas);
        self.brokers(&state.isr);
        self.i32(state.leader.map_or(-1, |leader| leader.0));
        self.i32(state.leader_epoch);
        self.i32(state.partition_epoch);
    }
    pub(crate) fn broker_epoch(&mut self, kind: u8, broker: BrokerId, epoch: u64) {
        self.u8(kind);
        self.i32(broker.0);
        self.u64(epoch);
    }
}

/// Bounds-checked reader: every count is checked against the bytes left before anything is
/// allocated for it.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    pub(crate) fn take(&mut self, count: usize) -> Result<&[u8], ClusterError> {
        let end = self.at.checked_add(count).filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| corrupt(format!("metadata record cut short at byte {}", self.at)))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }
    pub(crate) fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ClusterError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, ClusterError> {
        Ok(self.fixed::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, ClusterError> {
        Ok(u16::from_be_bytes(self.fixed()?))
    }
    pub(crate) fn i32(&mut self) -> Result<i32, ClusterError> {
        Ok(i32::from_be_bytes(self.fixed()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, ClusterError> {
        Ok(u64::from_be_bytes(self.fixed()?))
    }
    pub(crate) fn array16(&mut self) -> Result<[u8; 16], ClusterError> {
        self.fixed()
    }
    /// A count of items each at least `item_bytes_min` long, at most `max`.
    pub(crate) fn count(&mut self, max: usize, item_bytes_min: usize) -> Result<usize, ClusterError> {
        let count = u32::from_be_bytes(self.fixed()?) as usize;
        let left = self.bytes.len() - self.at;
        if count > max || count.saturating_mul(item_bytes_min) > left {
            return Err(corrupt(format!("metadata count {count} with {left} bytes left")));
        }
        Ok(count)
    }
    pub(crate) fn string(&mut self) -> Result<String, ClusterError> {
        let length = self.count(crate::records::RECORD_STRING_BYTES_MAX, 1)?;
        let bytes = self.take(length)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("metadata string is not UTF-8".to_string()))
    }
    pub(crate) fn optional_string(&mut self) -> Result<Option<String>, ClusterError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.string()?)),
            other => Err(corrupt(format!("optional string marker {other}"))),
        }
    }
    pub(crate) fn broker(&mut self) -> Result<BrokerId, ClusterError> {
        match self.i32()? {
            id if id >= 0 => Ok(BrokerId(id)),
            id => Err(corrupt(format!("broker id {id}"))),
        }
    }
    pub(crate) fn brokers(&mut self) -> Result<Vec<BrokerId>, ClusterError> {
        let count = self.count(u16::MAX as usize, 4)?;
        (0..count).map(|_| self.broker()).collect()
    }
    pub(crate) fn partition_state(&mut self) -> Result<PartitionState, ClusterError> {
        let topic_id = TopicId(self.array16()?);
        let partition = PartitionIndex(self.i32()?);
        let replicas = self.brokers()?;
        let isr = self.brokers()?;
        let leader = match self.i32()? {
            -1 => None,
            id if id >= 0 => Some(BrokerId(id)),
            id => return Err(corrupt(format!("partition leader {id}"))),
        };
        let leader_epoch = self.i32()?;
        let partition_epoch = self.i32()?;
        Ok(PartitionState {
            topic_id,
            partition,
            replicas,
            isr,
            leader,
            leader_epoch,
            partition_epoch,
            adding: Vec::new(),
            removing: Vec::new(),
        })
    }
    pub(crate) fn endpoints(&mut self) -> Result<Vec<Endpoint>, ClusterError> {
        let count = self.count(ENDPOINTS_MAX, ENDPOINT_BYTES_MIN)?;
        (0..count).map(|_| Ok(Endpoint { name: self.string()?, host: self.string()?, port: self.u16()? })).collect()
    }
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    /// Refuses bytes left over after a complete `what`.
    pub(crate) fn finish(&self, what: &str) -> Result<(), ClusterError> {
        match self.bytes.len() - self.at {
            0 => Ok(()),
            left => Err(corrupt(format!("{left} bytes after the end of a {what}"))),
        }
    }
}
