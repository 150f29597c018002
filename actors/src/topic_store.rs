//! The persisted topic registry: `<log.dirs>/topics.json`, the broker's metadata (cluster
//! id, node id, every topic with its id, partition count, replication factor and config
//! overrides). Replaced atomically on every change, so a restart — clean or not — finds
//! exactly the topics that were acknowledged. (Kafka keeps the same facts in its KRaft
//! metadata log; a replicated store replaces this file when the cluster arrives.)
//!
//! ```text
//! {"version":1,"cluster_id":"…","node_id":1,
//!  "topics":[{"name":"orders","topic_id":"…","partitions":3,
//!             "replication_factor":1,"configs":{"retention.ms":"60000"}}]}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{BrokerError, BrokerResult};
use crate::ids::NodeId;
use crate::storage::checkpoint::write_file_atomically;

pub const TOPICS_FILE: &str = "topics.json";
const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub name: String,
    pub topic_id: String,
    pub partitions: i32,
    pub replication_factor: i16,
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMetadata {
    pub version: u32,
    pub cluster_id: String,
    pub node_id: NodeId,
    pub topics: Vec<TopicRecord>,
}

pub struct TopicStore {
    path: PathBuf,
}

impl TopicStore {
    pub fn new(log_dir: &Path) -> Self {
        TopicStore {
            path: log_dir.join(TOPICS_FILE),
        }
    }

    /// Reads the metadata; a first start creates it with a new cluster id.
    pub fn load_or_init(&self, node_id: NodeId) -> BrokerResult<StoredMetadata> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let meta: StoredMetadata = serde_json::from_slice(&bytes)
                    .map_err(|e| BrokerError::storage(&self.path, format!("damaged: {e}")))?;
                if meta.version != VERSION {
                    return Err(BrokerError::storage(
                        &self.path,
                        format!("version {}, this broker reads {VERSION}", meta.version),
                    ));
                }
                Ok(meta)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let meta = StoredMetadata {
                    version: VERSION,
                    cluster_id: new_id(),
                    node_id,
                    topics: Vec::new(),
                };
                self.save(&meta)?;
                Ok(meta)
            }
            Err(e) => Err(BrokerError::storage(&self.path, e)),
        }
    }

    pub fn save(&self, meta: &StoredMetadata) -> BrokerResult<()> {
        let bytes =
            serde_json::to_vec_pretty(meta).map_err(|e| BrokerError::Internal(e.to_string()))?;
        write_file_atomically(&self.path, &bytes).map_err(|e| {
            if e.is_disk_full() {
                BrokerError::DiskFull(format!("cannot save the topic registry: {e}"))
            } else {
                BrokerError::storage(&self.path, e)
            }
        })
    }
}

/// A Kafka-style id: 16 random bytes in URL-safe base64 without padding (22 chars).
pub fn new_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut out = String::with_capacity(22);
    let mut bits: u32 = 0;
    let mut nbits = 0;
    for b in bytes {
        bits = (bits << 8) | b as u32;
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_22_url_safe_chars_and_unique() {
        let a = new_id();
        assert_eq!(a.len(), 22);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(a, new_id());
    }

    #[test]
    fn metadata_round_trips_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = TopicStore::new(dir.path());
        let mut meta = store.load_or_init(NodeId::new(3)).unwrap();
        meta.topics.push(TopicRecord {
            name: "t".into(),
            topic_id: new_id(),
            partitions: 2,
            replication_factor: 1,
            configs: BTreeMap::from([("retention.ms".into(), "5".into())]),
        });
        store.save(&meta).unwrap();
        assert_eq!(store.load_or_init(NodeId::new(3)).unwrap(), meta);
        std::fs::write(dir.path().join(TOPICS_FILE), b"{not json").unwrap();
        assert!(matches!(
            store.load_or_init(NodeId::new(3)),
            Err(BrokerError::StorageFailure { .. })
        ));
    }
}
