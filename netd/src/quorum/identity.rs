//! A cluster node's identity on disk: `<log.dirs>/meta.properties`, as Kafka writes it
//! (`version=1`, `node.id`, `cluster.id`), so that a data directory is never opened by another
//! node or joined to another cluster.
//!
//! Written once, after this node first registered with the quorum (then the cluster id is the
//! quorum's); read at every start before anything else in the directory is touched. A mismatch
//! refuses the start with a message that names the file. One-node brokers neither read nor write
//! it.
//!
//! Must not know: the quorum's protocol.

use std::path::{Path, PathBuf};

use cluster::ClusterId;
use engine::io::FileSystem;

/// Kafka's file name.
pub const META_PROPERTIES: &str = "meta.properties";
/// The longest `meta.properties` read (Kafka's is a few lines).
const META_PROPERTIES_BYTES_MAX: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Damaged { path: PathBuf, reason: String },
    #[error(
        "{path} says this data directory belongs to node.id {stored}, but this node is node.id {configured}; \
         use that node's configuration, or another log.dirs"
    )]
    OtherNode { path: PathBuf, stored: i32, configured: i32 },
}

/// What `meta.properties` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub node_id: i32,
    pub cluster_id: ClusterId,
}

/// Reads the data directory's identity (None: a new directory) and checks it is this node's.
pub fn check(data_dir: &Path, node_id: i32) -> Result<Option<Identity>, IdentityError> {
    let path = data_dir.join(META_PROPERTIES);
    let mut fs = engine::io::os::SyscallFs::new();
    let bytes = engine::io::read_small_file(&mut fs, &path, META_PROPERTIES_BYTES_MAX)
        .map_err(|source| IdentityError::Io { path: path.clone(), source })?;
    let Some(bytes) = bytes else { return Ok(None) };
    let damaged = |reason: &str| IdentityError::Damaged { path: path.clone(), reason: reason.to_string() };
    let text = String::from_utf8(bytes).map_err(|_| damaged("not UTF-8"))?;
    let (mut stored_node, mut stored_cluster) = (None, None);
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')) {
        match line.split_once('=') {
            Some(("node.id", value)) => {
                stored_node = Some(value.trim().parse::<i32>().map_err(|_| damaged("node.id"))?)
            }
            Some(("cluster.id", value)) => {
                stored_cluster = Some(ClusterId::from_base64url(value.trim()).ok_or_else(|| damaged("cluster.id"))?)
            }
            _ => {}
        }
    }
    let stored_node = stored_node.ok_or_else(|| damaged("no node.id"))?;
    let cluster_id = stored_cluster.ok_or_else(|| damaged("no cluster.id"))?;
    if stored_node != node_id {
        return Err(IdentityError::OtherNode { path, stored: stored_node, configured: node_id });
    }
    Ok(Some(Identity { node_id, cluster_id }))
}

/// Writes the identity (atomically, synced), once the quorum accepted this node.
pub fn store(data_dir: &Path, identity: Identity) -> Result<(), IdentityError> {
    let text = format!(
        "#\n# Written by Skua when this node first joined its cluster.\nversion=1\nnode.id={}\ncluster.id={}\n",
        identity.node_id,
        identity.cluster_id.to_base64url()
    );
    let mut fs = engine::io::os::SyscallFs::new();
    // A broker-only node's data directory may not exist yet.
    fs.create_dir_all(data_dir).map_err(|source| IdentityError::Io { path: data_dir.to_path_buf(), source })?;
    engine::io::write_file_atomically(&mut fs, data_dir, META_PROPERTIES, text.as_bytes())
        .map_err(|source| IdentityError::Io { path: data_dir.join(META_PROPERTIES), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_round_trips_and_refuses_another_node() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(check(dir.path(), 1).expect("reads"), None);
        let identity = Identity { node_id: 1, cluster_id: ClusterId([7; 16]) };
        store(dir.path(), identity).expect("stores");
        assert_eq!(check(dir.path(), 1).expect("reads"), Some(identity));
        let error = check(dir.path(), 2).expect_err("another node");
        assert!(error.to_string().contains("belongs to node.id 1"), "{error}");
    }

    #[test]
    fn a_new_data_directory_is_created_for_the_identity() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("not-yet");
        store(&data_dir, Identity { node_id: 4, cluster_id: ClusterId([1; 16]) }).expect("stores");
        assert!(check(&data_dir, 4).expect("reads").is_some());
    }

    #[test]
    fn kafkas_own_file_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kafka = "#\n#Thu Dec 03 10:00:00 UTC 2026\nnode.id=3\ndirectory.id=abc\nversion=1\ncluster.id=-_-_AQIDBAUGBwgJCgsMDQ\n";
        std::fs::write(dir.path().join(META_PROPERTIES), kafka).expect("write");
        let identity = check(dir.path(), 3).expect("reads").expect("present");
        assert_eq!(identity.cluster_id.to_base64url(), "-_-_AQIDBAUGBwgJCgsMDQ");
    }
}
