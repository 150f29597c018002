//! The persisted topic registry: `<log.dirs>/topics.json`, the broker's metadata (cluster
//! id, node id, every topic with its id, partition count, replication factor and config
//! overrides). Replaced atomically on every change, so a restart — clean or not — finds
//! exactly the topics that were acknowledged. (Kafka keeps the same facts in its KRaft
//! metadata log; a replicated store replaces this file when the cluster arrives.)
//!
//! `version` is the data dir's format as a whole, the registry's and the segments':
//! 2 since record batches carry Kafka's CRC-32C. A version-1 dir (CRC-32 batches) is
//! converted in place when it is opened ([`crate::storage::crc_conversion`]: the 4
//! CRC bytes of each batch rewritten, each file fsynced), then the version is bumped
//! by the atomic replace of this file; a crash before that runs the conversion again,
//! which finishes it. Bumping it also keeps an earlier Troupe, which would take the
//! new checksums for damage, from opening the dir ("version 2, this broker reads 1").
//!
//! ```text
//! {"version":2,"cluster_id":"…","node_id":1,
//!  "topics":[{"name":"orders","topic_id":"…","partitions":3,
//!             "replication_factor":1,"configs":{"retention.ms":"60000"}}]}
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
/// The data dir's format: record batches with CRC-32C (Kafka's).
const VERSION: u32 = 2;
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

    /// Reads the metadata, converting a data dir of the previous format first; a first
    /// start creates it with a new cluster id.
    pub fn load_or_init(&self, node_id: NodeId) -> BrokerResult<StoredMetadata> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let meta: StoredMetadata = serde_json::from_slice(&bytes)
                    .map_err(|e| BrokerError::storage(&self.path, format!("damaged: {e}")))?;
                match meta.version {
                    VERSION => Ok(meta),
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
                     {VERSION_CRC32_BATCHES} to {VERSION}) failed: {e}"
                ),
            )
        })?;
        meta.version = VERSION;
        self.save(&meta)?;
        log::info!(
            "{}: data dir format {VERSION}: {} batch(es) in {} file(s) of {} partition(s) converted to CRC-32C ({} already were; {} torn tail(s) left for recovery)",
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
        let mut meta = store.load_or_init(NodeId::new(1)).unwrap();
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

        let opened = store.load_or_init(NodeId::new(1)).unwrap();
        assert_eq!(opened.version, VERSION);
        let on_disk: StoredMetadata =
            serde_json::from_slice(&std::fs::read(dir.path().join(TOPICS_FILE)).unwrap()).unwrap();
        assert_eq!(on_disk.version, VERSION);
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
        let mut meta = store.load_or_init(NodeId::new(1)).unwrap();
        meta.version = VERSION + 1;
        store.save(&meta).unwrap();
        let err = store.load_or_init(NodeId::new(1)).unwrap_err();
        assert!(err.to_string().contains("this broker reads 2"), "{err}");
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
