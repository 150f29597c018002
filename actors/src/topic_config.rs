//! Topic-level configuration, by Kafka's names (`cleanup.policy`, `retention.ms`,
//! `segment.bytes`, …). Each topic config has a broker-level counterpart
//! (`log.cleanup.policy`, `log.retention.ms`, `log.segment.bytes`, …) that sets the
//! default for topics without an override, exactly as in Kafka. This table is the one
//! place that knows the names, types, limits and defaults; the broker settings, the
//! admin API and the partition's `LogConfig` are all derived from it.

use std::collections::BTreeMap;

use crate::error::BrokerError;
use crate::storage::{FlushPolicy, LogConfig, RetentionPolicy, TimestampType};

/// Kafka writes "never" as Long.MAX_VALUE.
pub const NEVER: i64 = i64::MAX;

#[derive(Debug, Clone, Copy)]
pub enum ConfigType {
    Long {
        min: i64,
        max: i64,
    },
    Double {
        min: f64,
        max: f64,
    },
    /// One of the listed words.
    Enum(&'static [&'static str]),
    /// A non-empty comma-separated list of the listed words.
    List(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    pub name: &'static str,
    /// The broker config that sets the default for every topic.
    pub broker_key: &'static str,
    pub default: &'static str,
    pub kind: ConfigType,
    pub doc: &'static str,
}

const I32_MAX: i64 = i32::MAX as i64;

pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "cleanup.policy",
        broker_key: "log.cleanup.policy",
        default: "delete",
        kind: ConfigType::List(&["delete", "compact"]),
        doc: "delete old segments, compact by key, or both",
    },
    TopicConfigDef {
        name: "compression.type",
        broker_key: "compression.type",
        default: "producer",
        kind: ConfigType::Enum(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        // Stored and reported; batches are kept as the producer sent them for now
        // (what `producer` means), whatever the value.
        doc: "codec of stored batches (`producer`: as the producer compressed them)",
    },
    TopicConfigDef {
        name: "delete.retention.ms",
        broker_key: "log.cleaner.delete.retention.ms",
        default: "86400000",
        kind: ConfigType::Long { min: 0, max: NEVER },
        doc: "how long tombstones are kept on compacted topics",
    },
    TopicConfigDef {
        name: "file.delete.delay.ms",
        broker_key: "log.segment.delete.delay.ms",
        default: "60000",
        kind: ConfigType::Long { min: 0, max: NEVER },
        doc: "delay before a deleted segment's files are removed",
    },
    TopicConfigDef {
        name: "flush.messages",
        broker_key: "log.flush.interval.messages",
        default: "1",
        kind: ConfigType::Long { min: 1, max: NEVER },
        doc: "fsync after this many unflushed records (1 = before every acknowledgement)",
    },
    TopicConfigDef {
        name: "flush.ms",
        broker_key: "log.flush.interval.ms",
        default: "9223372036854775807",
        kind: ConfigType::Long { min: 0, max: NEVER },
        doc: "fsync when the oldest unflushed record is this old",
    },
    TopicConfigDef {
        name: "index.interval.bytes",
        broker_key: "log.index.interval.bytes",
        default: "4096",
        kind: ConfigType::Long {
            min: 0,
            max: I32_MAX,
        },
        doc: "log bytes between two index entries",
    },
    TopicConfigDef {
        name: "max.compaction.lag.ms",
        broker_key: "log.cleaner.max.compaction.lag.ms",
        default: "9223372036854775807",
        kind: ConfigType::Long { min: 1, max: NEVER },
        doc: "longest time a record stays uncompacted",
    },
    TopicConfigDef {
        name: "max.message.bytes",
        broker_key: "message.max.bytes",
        default: "1048588",
        kind: ConfigType::Long {
            min: 61,
            max: I32_MAX,
        },
        doc: "largest record batch accepted",
    },
    TopicConfigDef {
        name: "message.timestamp.type",
        broker_key: "log.message.timestamp.type",
        default: "CreateTime",
        kind: ConfigType::Enum(&["CreateTime", "LogAppendTime"]),
        doc: "keep the producer's timestamp or stamp the broker's",
    },
    TopicConfigDef {
        name: "min.cleanable.dirty.ratio",
        broker_key: "log.cleaner.min.cleanable.ratio",
        default: "0.5",
        kind: ConfigType::Double { min: 0.0, max: 1.0 },
        doc: "dirty share of the log that triggers compaction",
    },
    TopicConfigDef {
        name: "min.compaction.lag.ms",
        broker_key: "log.cleaner.min.compaction.lag.ms",
        default: "0",
        kind: ConfigType::Long { min: 0, max: NEVER },
        doc: "shortest time a record stays uncompacted",
    },
    TopicConfigDef {
        name: "min.insync.replicas",
        broker_key: "min.insync.replicas",
        default: "1",
        kind: ConfigType::Long {
            min: 1,
            max: I32_MAX,
        },
        doc: "in-sync replicas a partition needs to take an acks=all write; with fewer, the write is refused with NOT_ENOUGH_REPLICAS before anything is appended",
    },
    TopicConfigDef {
        name: "unclean.leader.election.enable",
        broker_key: "unclean.leader.election.enable",
        default: "false",
        kind: ConfigType::Enum(&["true", "false"]),
        doc: "when no in-sync replica of a partition is alive, let an out-of-sync one lead: the partition comes back online, but the records it lacks are lost (logged when it happens)",
    },
    TopicConfigDef {
        name: "retention.bytes",
        broker_key: "log.retention.bytes",
        default: "-1",
        kind: ConfigType::Long {
            min: -1,
            max: NEVER,
        },
        doc: "largest size of a partition before old segments go (-1 = unlimited)",
    },
    TopicConfigDef {
        name: "retention.ms",
        broker_key: "log.retention.ms",
        default: "604800000",
        kind: ConfigType::Long {
            min: -1,
            max: NEVER,
        },
        doc: "age after which old segments go (-1 = forever)",
    },
    TopicConfigDef {
        name: "segment.bytes",
        broker_key: "log.segment.bytes",
        default: "1073741824",
        kind: ConfigType::Long {
            min: 14,
            max: I32_MAX,
        },
        doc: "size at which the active segment rolls",
    },
    TopicConfigDef {
        name: "segment.index.bytes",
        broker_key: "log.index.size.max.bytes",
        default: "10485760",
        kind: ConfigType::Long {
            min: 12,
            max: I32_MAX,
        },
        doc: "size of an active segment's index files (sparse; blocks are reserved as entries are written)",
    },
    TopicConfigDef {
        name: "segment.ms",
        broker_key: "log.roll.ms",
        default: "604800000",
        kind: ConfigType::Long { min: 1, max: NEVER },
        doc: "age at which the active segment rolls",
    },
];

pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks `value` against the config's type and limits; returns it normalised.
pub fn validate_topic_config(name: &str, value: &str) -> Result<String, BrokerError> {
    let def = topic_config_def(name).ok_or_else(|| BrokerError::InvalidConfig {
        name: name.to_string(),
        reason: "unknown topic config".into(),
    })?;
    let invalid = |reason: String| BrokerError::InvalidConfig {
        name: name.to_string(),
        reason,
    };
    let value = value.trim();
    match def.kind {
        ConfigType::Long { min, max } => {
            let v: i64 = value
                .parse()
                .map_err(|_| invalid(format!("'{value}' is not a whole number")))?;
            if v < min || v > max {
                return Err(invalid(format!("{v} is outside [{min}, {max}]")));
            }
            Ok(v.to_string())
        }
        ConfigType::Double { min, max } => {
            let v: f64 = value
                .parse()
                .map_err(|_| invalid(format!("'{value}' is not a number")))?;
            if !(min..=max).contains(&v) {
                return Err(invalid(format!("{v} is outside [{min}, {max}]")));
            }
            Ok(value.to_string())
        }
        ConfigType::Enum(choices) => choices
            .iter()
            .find(|c| c.eq_ignore_ascii_case(value))
            .map(|c| c.to_string())
            .ok_or_else(|| invalid(format!("'{value}' is not one of {}", choices.join(", ")))),
        ConfigType::List(choices) => {
            let mut items: Vec<&str> = Vec::new();
            for item in value.split(',').map(str::trim) {
                let Some(c) = choices.iter().find(|c| c.eq_ignore_ascii_case(item)) else {
                    return Err(invalid(format!(
                        "'{item}' is not one of {}",
                        choices.join(", ")
                    )));
                };
                if !items.contains(c) {
                    items.push(c);
                }
            }
            if items.is_empty() {
                return Err(invalid("the list is empty".into()));
            }
            Ok(items.join(","))
        }
    }
}

/// A partition's settings: its log's, and what the broker does to old data.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionConfig {
    pub log: LogConfig,
    /// `cleanup.policy` contains `delete`: retention removes old segments.
    pub cleanup_delete: bool,
    /// `cleanup.policy` contains `compact`.
    pub cleanup_compact: bool,
    pub retention: RetentionPolicy,
    /// `file.delete.delay.ms`: how long retired segment files stay before removal.
    pub file_delete_delay_ms: u64,
    /// `delete.retention.ms`, `min.compaction.lag.ms`, `max.compaction.lag.ms`,
    /// `min.cleanable.dirty.ratio`: when and how the log cleaner compacts.
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub min_cleanable_dirty_ratio: f64,
}

impl Default for PartitionConfig {
    fn default() -> Self {
        TopicDefaults::default().partition_config(&BTreeMap::new(), 60_000)
    }
}

/// Where an effective config value comes from (Kafka's DescribeConfigs sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic.
    DynamicTopicConfig,
    /// Set in the broker's configuration (file, environment or command line).
    StaticBrokerConfig,
    /// Kafka's (or Troupe's) built-in default.
    DefaultConfig,
}

impl ConfigSource {
    pub fn kafka_name(self) -> &'static str {
        match self {
            ConfigSource::DynamicTopicConfig => "DYNAMIC_TOPIC_CONFIG",
            ConfigSource::StaticBrokerConfig => "STATIC_BROKER_CONFIG",
            ConfigSource::DefaultConfig => "DEFAULT_CONFIG",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: String,
    pub source: ConfigSource,
    /// The values this one shadows, most specific first: (broker key or name, value, source).
    pub synonyms: Vec<(String, String, ConfigSource)>,
}

/// The broker-level defaults for topic configs: built-in values, overridden by what
/// the broker's configuration sets.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicDefaults {
    /// topic config name -> (value, source)
    values: BTreeMap<&'static str, (String, ConfigSource)>,
}

impl Default for TopicDefaults {
    fn default() -> Self {
        TopicDefaults {
            values: TOPIC_CONFIGS
                .iter()
                .map(|d| (d.name, (d.default.to_string(), ConfigSource::DefaultConfig)))
                .collect(),
        }
    }
}

impl TopicDefaults {
    /// Sets the broker-level default through its broker key (`log.segment.bytes`).
    pub fn set_broker_key(&mut self, broker_key: &str, value: &str) -> Result<(), BrokerError> {
        let def = TOPIC_CONFIGS
            .iter()
            .find(|d| d.broker_key == broker_key)
            .ok_or_else(|| BrokerError::InvalidConfig {
                name: broker_key.to_string(),
                reason: "not a topic default".into(),
            })?;
        let value = validate_topic_config(def.name, value).map_err(|e| match e {
            BrokerError::InvalidConfig { reason, .. } => BrokerError::InvalidConfig {
                name: broker_key.to_string(),
                reason,
            },
            other => other,
        })?;
        self.values
            .insert(def.name, (value, ConfigSource::StaticBrokerConfig));
        Ok(())
    }

    /// The broker-level settings behind the topic defaults, by their broker keys
    /// (`log.retention.ms`, …), as Kafka's DescribeConfigs of a broker lists them.
    pub fn broker_entries(&self) -> Vec<ConfigEntry> {
        let mut entries: Vec<ConfigEntry> = TOPIC_CONFIGS
            .iter()
            .map(|def| {
                let (value, source) = self
                    .values
                    .get(def.name)
                    .cloned()
                    .unwrap_or((def.default.to_string(), ConfigSource::DefaultConfig));
                let mut synonyms = Vec::new();
                if source == ConfigSource::StaticBrokerConfig {
                    synonyms.push((def.broker_key.to_string(), value.clone(), source));
                }
                synonyms.push((
                    def.broker_key.to_string(),
                    def.default.to_string(),
                    ConfigSource::DefaultConfig,
                ));
                ConfigEntry {
                    name: def.broker_key.to_string(),
                    value,
                    source,
                    synonyms,
                }
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|(v, _)| v.as_str())
    }

    /// The effective configs of a topic with `overrides`, in name order.
    pub fn effective(&self, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
        TOPIC_CONFIGS
            .iter()
            .map(|def| {
                let (default_value, default_source) = self
                    .values
                    .get(def.name)
                    .cloned()
                    .unwrap_or((def.default.to_string(), ConfigSource::DefaultConfig));
                let mut synonyms = Vec::new();
                let (value, source) = match overrides.get(def.name) {
                    Some(v) => {
                        synonyms.push((
                            def.name.to_string(),
                            v.clone(),
                            ConfigSource::DynamicTopicConfig,
                        ));
                        (v.clone(), ConfigSource::DynamicTopicConfig)
                    }
                    None => (default_value.clone(), default_source),
                };
                if default_source == ConfigSource::StaticBrokerConfig {
                    synonyms.push((
                        def.broker_key.to_string(),
                        default_value.clone(),
                        default_source,
                    ));
                }
                synonyms.push((
                    def.broker_key.to_string(),
                    def.default.to_string(),
                    ConfigSource::DefaultConfig,
                ));
                ConfigEntry {
                    name: def.name.to_string(),
                    value,
                    source,
                    synonyms,
                }
            })
            .collect()
    }

    /// A topic's effective value of `name`: its override, else the broker default.
    fn value(&self, overrides: &BTreeMap<String, String>, name: &str) -> String {
        overrides
            .get(name)
            .cloned()
            .or_else(|| self.get(name).map(str::to_string))
            .unwrap_or_default()
    }

    /// The effective `unclean.leader.election.enable`.
    pub fn unclean_leader_election(&self, overrides: &BTreeMap<String, String>) -> bool {
        self.value(overrides, "unclean.leader.election.enable") == "true"
    }

    /// The effective `min.insync.replicas` (at least 1).
    pub fn min_insync_replicas(&self, overrides: &BTreeMap<String, String>) -> usize {
        self.value(overrides, "min.insync.replicas")
            .parse::<usize>()
            .unwrap_or(1)
            .max(1)
    }

    /// Everything a partition of a topic with `overrides` needs: its log's settings
    /// and its cleanup policy.
    pub fn partition_config(
        &self,
        overrides: &BTreeMap<String, String>,
        checkpoint_interval_ms: i64,
    ) -> PartitionConfig {
        let get = |name: &str| self.value(overrides, name);
        let long = |name: &str| get(name).parse::<i64>().ok();
        let policy = get("cleanup.policy");
        PartitionConfig {
            log: self.log_config(overrides, checkpoint_interval_ms),
            cleanup_delete: policy.split(',').any(|p| p == "delete"),
            cleanup_compact: policy.split(',').any(|p| p == "compact"),
            retention: RetentionPolicy {
                retention_ms: long("retention.ms").filter(|v| *v >= 0),
                retention_bytes: long("retention.bytes")
                    .filter(|v| *v >= 0)
                    .map(|v| v as u64),
            },
            file_delete_delay_ms: long("file.delete.delay.ms").unwrap_or(60_000).max(0) as u64,
            delete_retention_ms: long("delete.retention.ms").unwrap_or(86_400_000),
            min_compaction_lag_ms: long("min.compaction.lag.ms").unwrap_or(0),
            max_compaction_lag_ms: long("max.compaction.lag.ms").unwrap_or(NEVER),
            min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio").parse().unwrap_or(0.5),
        }
    }

    /// The storage settings of a topic with `overrides`.
    pub fn log_config(
        &self,
        overrides: &BTreeMap<String, String>,
        checkpoint_interval_ms: i64,
    ) -> LogConfig {
        let get = |name: &str| self.value(overrides, name);
        let long = |name: &str, fallback: i64| get(name).parse::<i64>().unwrap_or(fallback);
        let never_is_none = |v: i64| if v == NEVER { None } else { Some(v) };
        let defaults = LogConfig::default();
        LogConfig {
            segment_bytes: long("segment.bytes", defaults.segment_bytes as i64) as u64,
            segment_ms: long("segment.ms", defaults.segment_ms),
            segment_index_bytes: long("segment.index.bytes", defaults.segment_index_bytes as i64)
                as usize,
            index_interval_bytes: long("index.interval.bytes", defaults.index_interval_bytes as i64)
                as usize,
            max_message_bytes: long("max.message.bytes", defaults.max_message_bytes as i64)
                as usize,
            timestamp_type: if get("message.timestamp.type") == "LogAppendTime" {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            flush: FlushPolicy {
                flush_messages: never_is_none(long("flush.messages", 1)).map(|v| v as u64),
                flush_ms: never_is_none(long("flush.ms", NEVER)),
            },
            allow_offset_gaps: get("cleanup.policy").split(',').any(|p| p == "compact"),
            recovery_point_checkpoint_interval_ms: checkpoint_interval_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_types_and_limits() {
        assert_eq!(
            validate_topic_config("retention.ms", " 1000 ").unwrap(),
            "1000"
        );
        assert!(validate_topic_config("retention.ms", "-2").is_err());
        assert!(validate_topic_config("segment.bytes", "10").is_err());
        assert!(validate_topic_config("segment.bytes", "2147483648").is_err());
        assert_eq!(
            validate_topic_config("cleanup.policy", "compact, delete").unwrap(),
            "compact,delete"
        );
        assert!(validate_topic_config("cleanup.policy", "shred").is_err());
        assert_eq!(
            validate_topic_config("message.timestamp.type", "logappendtime").unwrap(),
            "LogAppendTime"
        );
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate_topic_config("no.such.config", "1").is_err());
        for codec in ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"] {
            assert_eq!(
                validate_topic_config("compression.type", codec).unwrap(),
                codec
            );
        }
        assert_eq!(
            validate_topic_config("compression.type", "GZIP").unwrap(),
            "gzip"
        );
        assert!(validate_topic_config("compression.type", "brotli").is_err());
    }

    #[test]
    fn broker_entries_name_broker_keys_and_sources() {
        let mut defaults = TopicDefaults::default();
        defaults.set_broker_key("log.retention.ms", "1000").unwrap();
        let entries = defaults.broker_entries();
        let get = |n: &str| entries.iter().find(|e| e.name == n).unwrap().clone();
        assert_eq!(get("log.retention.ms").value, "1000");
        assert_eq!(
            get("log.retention.ms").source,
            ConfigSource::StaticBrokerConfig
        );
        assert_eq!(get("compression.type").value, "producer");
        assert_eq!(get("compression.type").source, ConfigSource::DefaultConfig);
        assert_eq!(entries.len(), TOPIC_CONFIGS.len());
    }

    #[test]
    fn overrides_shadow_broker_defaults() {
        let mut defaults = TopicDefaults::default();
        defaults
            .set_broker_key("log.segment.bytes", "1048576")
            .unwrap();
        let overrides = BTreeMap::from([("retention.ms".to_string(), "5000".to_string())]);
        let entries = defaults.effective(&overrides);
        let get = |n: &str| entries.iter().find(|e| e.name == n).unwrap().clone();
        assert_eq!(get("retention.ms").value, "5000");
        assert_eq!(get("retention.ms").source, ConfigSource::DynamicTopicConfig);
        assert_eq!(get("segment.bytes").value, "1048576");
        assert_eq!(
            get("segment.bytes").source,
            ConfigSource::StaticBrokerConfig
        );
        assert_eq!(get("cleanup.policy").source, ConfigSource::DefaultConfig);
        let log = defaults.log_config(&overrides, 60_000);
        assert_eq!(log.segment_bytes, 1_048_576);
        assert_eq!(log.flush, FlushPolicy::EVERY_APPEND);
    }
}
