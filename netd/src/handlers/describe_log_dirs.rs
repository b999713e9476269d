//! DescribeLogDirs (key 35), versions 1–4, for `kafka-log-dirs` and `kafka-reassign-partitions`
//! (which prints each replica's log directory): this broker's log directory, the replicas in it
//! and the bytes of each one's segments, gathered from every shard.
//!
//! Skua has one log directory per broker (`log.dirs` takes one); replicas never move between
//! directories, so `offset_lag` is 0 and no replica is a "future" one. `total_bytes` and
//! `usable_bytes` (v4) come from statvfs of the directory, -1 when it fails (Kafka's "unknown").

use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::str_bytes;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;

pub async fn handle(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: DescribeLogDirsRequest = decode_body(frame)?;
    // Topic → the partitions asked; None: every replica here.
    let wanted: Option<BTreeMap<String, Vec<i32>>> = request
        .topics
        .as_ref()
        .map(|topics| topics.iter().map(|topic| (topic.topic.to_string(), topic.partitions.clone())).collect());
    let mut pending = Vec::with_capacity(context.count);
    for shard in 0..context.count {
        pending.push(
            context
                .submit(shard, |shard_context| {
                    let sizes = shard_context.state.borrow().replica_sizes();
                    Box::pin(std::future::ready(sizes))
                })
                .await?,
        );
    }
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for sizes in pending {
        for (topic, partition, bytes) in sizes.await? {
            let asked = wanted
                .as_ref()
                .is_none_or(|wanted| wanted.get(&topic).is_some_and(|partitions| partitions.contains(&partition)));
            if !asked {
                continue;
            }
            let mut described = DescribeLogDirsPartition::default();
            described.partition_index = partition;
            described.partition_size = i64::try_from(bytes).unwrap_or(i64::MAX);
            by_topic.entry(topic).or_default().push(described);
        }
    }
    let mut result = DescribeLogDirsResult::default();
    result.log_dir = str_bytes(&context.config.data_dir.display().to_string());
    result.topics = by_topic
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|partition| partition.partition_index);
            let mut topic = DescribeLogDirsTopic::default();
            topic.name = TopicName(str_bytes(&name));
            topic.partitions = partitions;
            topic
        })
        .collect();
    let (total_bytes, usable_bytes) = volume_bytes(&context.config.data_dir);
    result.total_bytes = total_bytes;
    result.usable_bytes = usable_bytes;
    let mut response = DescribeLogDirsResponse::default();
    response.results = vec![result];
    encode_response(ApiKey::DescribeLogDirs, frame.api_version, frame.correlation_id, &response)
}

/// The size of the file system holding `dir` and the bytes an unprivileged writer may still use;
/// (-1, -1) when statvfs fails.
fn volume_bytes(dir: &std::path::Path) -> (i64, i64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return (-1, -1) };
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stats` is written by statvfs before it is
    // read (only when it returns 0).
    let stats = unsafe {
        if libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) != 0 {
            return (-1, -1);
        }
        stats.assume_init()
    };
    let block = stats.f_frsize as i64;
    (block.saturating_mul(stats.f_blocks as i64), block.saturating_mul(stats.f_bavail as i64))
}
