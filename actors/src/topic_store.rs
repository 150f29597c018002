//! The data dir's identity: `<log.dirs>/topics.json` — its format version, cluster id
//! and node id (Kafka's `meta.properties`). A node whose `node.id` or `cluster.id`
//! is not the dir's refuses to start, naming the key. Replaced atomically.
//!
//! `version` is the data dir's format as a whole:
//! - 3: the topics live in the cluster's metadata log (`__cluster_metadata-0/`);
//!   this file holds the identity only.
//! - 2 (before the cluster): this file also listed every topic, with its id,
//!   partition count and config overrides. Opened by this version, those topics are
//!   committed to the metadata log as its first records (same ids, same
//!   directories), and the file is then rewritten as version 3.
//! - 1: record batches carried CRC-32, not Kafka's CRC-32C. Converted in place when
//!   opened ([`crate::storage::crc_conversion`]: the 4 CRC bytes of each batch
//!   rewritten, each file fsynced), then bumped to 2 by the atomic replace of this
//!   file (a crash before that runs the conversion again, which finishes it), and
//!   moved to the metadata log as a version 2 dir is.
//!
//! A newer version is refused ("version 3, this broker reads 2"), which also keeps an
//! earlier Troupe from opening a dir it would misread.
//!
//! ```text
//! {"version":3,"cluster_id":"…","node_id":1,"topics":[]}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{BrokerError, BrokerResult};
use crate::ids::NodeId;
use crate::log_manager::partition_dir;
use crate::storage::checkpoint::write_file_atomically;
use crate::storage::convert_partitions;

pub const TOPICS_FILE: &str = "topics.json";
/// The data dir's format: topics in the metadata log, record batches with CRC-32C.
pub const VERSION: u32 = 3;
/// Topics listed here, record batches with CRC-32C: moved to the metadata log.
const VERSION_TOPICS_HERE: u32 = 2;
/// The format before: record batches with CRC-32, converted at open.
const VERSION_CRC32_BATCHES: u32 = 1;

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
    log_dir: PathBuf,
    path: PathBuf,
}

impl TopicStore {
    pub fn new(log_dir: &Path) -> Self {
        TopicStore {
            log_dir: log_dir.to_path_buf(),
            path: log_dir.join(TOPICS_FILE),
        }
    }

    /// Reads the identity (with the topics of a version 2 dir, still to move to the
    /// metadata log), converting a version 1 dir first, and checks it is this
    /// node's and cluster's; a first start creates it, with `cluster_id` or, when
    /// none is configured, a new one.
    pub fn load_or_init(
        &self,
        node_id: NodeId,
        cluster_id: Option<&str>,
    ) -> BrokerResult<StoredMetadata> {
        let meta = self.load_or_create(node_id, cluster_id)?;
        if meta.node_id != node_id {
            return Err(BrokerError::InvalidConfig {
                name: "node.id".into(),
                reason: format!(
                    "{} belongs to node {}, not {node_id}",
                    self.log_dir.display(),
                    meta.node_id
                ),
            });
        }
        if let Some(wanted) = cluster_id.filter(|c| *c != meta.cluster_id) {
            return Err(BrokerError::InvalidConfig {
                name: "cluster.id".into(),
                reason: format!(
                    "{} belongs to cluster {}, not {wanted}",
                    self.log_dir.display(),
                    meta.cluster_id
                ),
            });
        }
        Ok(meta)
    }

    fn load_or_create(
        &self,
        node_id: NodeId,
        cluster_id: Option<&str>,
    ) -> BrokerResult<StoredMetadata> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let meta: StoredMetadata = serde_json::from_slice(&bytes)
                    .map_err(|e| BrokerError::storage(&self.path, format!("damaged: {e}")))?;
                match meta.version {
                    VERSION | VERSION_TOPICS_HERE => Ok(meta),
                    VERSION_CRC32_BATCHES => self.convert_to_crc32c(meta),
                    other => Err(BrokerError::storage(
                        &self.path,
                        format!("version {other}, this broker reads {VERSION}"),
                    )),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let meta = StoredMetadata {
                    version: VERSION,
                    cluster_id: cluster_id.map_or_else(new_id, str::to_string),
                    node_id,
                    topics: Vec::new(),
                };
                self.save(&meta)?;
                Ok(meta)
            }
            Err(e) => Err(BrokerError::storage(&self.path, e)),
        }
    }

    /// Rewrites every partition's batches with CRC-32C, then records the new version.
    fn convert_to_crc32c(&self, mut meta: StoredMetadata) -> BrokerResult<StoredMetadata> {
        let dirs: Vec<PathBuf> = meta
            .topics
            .iter()
            .flat_map(|t| (0..t.partitions).map(|p| partition_dir(&self.log_dir, &t.name, p)))
            .collect();
        log::info!(
            "{}: data dir format {VERSION_CRC32_BATCHES} (CRC-32 record batches); converting {} partition(s) to CRC-32C",
            self.log_dir.display(),
            dirs.len()
        );
        let stats = convert_partitions(&dirs).map_err(|e| {
            BrokerError::storage(
                &self.log_dir,
                format!(
                    "converting record batches from CRC-32 to CRC-32C (data dir format \
                     {VERSION_CRC32_BATCHES} to {VERSION_TOPICS_HERE}) failed: {e}"
                ),
            )
        })?;
        meta.version = VERSION_TOPICS_HERE;
        self.save(&meta)?;
        log::info!(
            "{}: data dir format {VERSION_TOPICS_HERE}: {} batch(es) in {} file(s) of {} partition(s) converted to CRC-32C ({} already were; {} torn tail(s) left for recovery)",
            self.log_dir.display(),
            stats.batches_converted,
            stats.files_rewritten,
            stats.partitions,
            stats.batches_already_converted,
            stats.torn_tails
        );
        Ok(meta)
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

    /// A data dir an earlier version wrote (format 1, CRC-32 batches) is converted
    /// when opened: records readable, every batch CRC-32C, the format bumped.
    #[test]
    fn a_data_dir_of_the_crc32_format_is_converted_at_open() {
        use crate::storage::{Log, LogConfig, Record};
        let dir = tempfile::tempdir().unwrap();
        let store = TopicStore::new(dir.path());
        let mut meta = store.load_or_init(NodeId::new(1), None).unwrap();
        meta.topics.push(TopicRecord {
            name: "t".into(),
            topic_id: new_id(),
            partitions: 2, // t-1 was never written to: no directory
            replication_factor: 1,
            configs: BTreeMap::new(),
        });
        meta.version = VERSION_CRC32_BATCHES;
        store.save(&meta).unwrap();
        let partition = dir.path().join("t-0");
        let records: Vec<Record> = (0..5)
            .map(|i| Record {
                timestamp_ms: i,
                key: Some(vec![i as u8]),
                value: Some(b"v".repeat(i as usize)),
                headers: vec![],
            })
            .collect();
        let mut log = Log::open(&partition, LogConfig::default()).unwrap();
        for r in &records {
            log.append_records(std::slice::from_ref(r), 0).unwrap();
        }
        log.close().unwrap();
        crate::storage::crc_conversion::write_as_before_crc32c(&partition);

        // Converted to format 2, whose topics the broker then moves to the metadata log.
        let opened = store.load_or_init(NodeId::new(1), None).unwrap();
        assert_eq!(opened.version, VERSION_TOPICS_HERE);
        assert_eq!(opened.topics.len(), 1);
        let on_disk: StoredMetadata =
            serde_json::from_slice(&std::fs::read(dir.path().join(TOPICS_FILE)).unwrap()).unwrap();
        assert_eq!(on_disk.version, VERSION_TOPICS_HERE);
        let log = Log::open(&partition, LogConfig::default()).unwrap();
        let fetched = log.read(0, 1 << 20).unwrap();
        assert_eq!(fetched.batches().count(), 5);
        for batch in fetched.batches() {
            batch.validate().unwrap();
            assert_eq!(batch.stored_crc(), crc32c::crc32c(&batch.as_bytes()[21..]));
        }
        let back: Vec<Record> = fetched
            .records_from(0)
            .unwrap()
            .into_iter()
            .map(|r| r.record)
            .collect();
        assert_eq!(back, records);
        assert_eq!(log.corrupt_batches(), 0);
    }

    #[test]
    fn a_data_dir_of_an_unknown_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = TopicStore::new(dir.path());
        let mut meta = store.load_or_init(NodeId::new(1), None).unwrap();
        meta.version = VERSION + 1;
        store.save(&meta).unwrap();
        let err = store.load_or_init(NodeId::new(1), None).unwrap_err();
        assert!(err.to_string().contains("this broker reads 3"), "{err}");
    }

    #[test]
    fn a_data_dir_of_another_node_or_cluster_is_refused_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = TopicStore::new(dir.path());
        let meta = store.load_or_init(NodeId::new(2), Some("c-1")).unwrap();
        assert_eq!((meta.cluster_id.as_str(), meta.version), ("c-1", VERSION));
        let key = |r: BrokerResult<StoredMetadata>| match r {
            Err(BrokerError::InvalidConfig { name, .. }) => name,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            key(store.load_or_init(NodeId::new(3), Some("c-1"))),
            "node.id"
        );
        assert_eq!(
            key(store.load_or_init(NodeId::new(2), Some("c-2"))),
            "cluster.id"
        );
        assert!(store.load_or_init(NodeId::new(2), None).is_ok());
    }

    #[test]
    fn metadata_round_trips_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = TopicStore::new(dir.path());
        let mut meta = store.load_or_init(NodeId::new(3), None).unwrap();
        meta.topics.push(TopicRecord {
            name: "t".into(),
            topic_id: new_id(),
            partitions: 2,
            replication_factor: 1,
            configs: BTreeMap::from([("retention.ms".into(), "5".into())]),
        });
        store.save(&meta).unwrap();
        assert_eq!(store.load_or_init(NodeId::new(3), None).unwrap(), meta);
        std::fs::write(dir.path().join(TOPICS_FILE), b"{not json").unwrap();
        assert!(matches!(
            store.load_or_init(NodeId::new(3), None),
            Err(BrokerError::StorageFailure { .. })
        ));
    }
}
