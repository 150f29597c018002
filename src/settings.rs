//! Broker settings, read with the `config` crate in this order, later winning:
//! the embedded `config/server.toml`, `--config FILE`, `TROUPE_*` environment variables
//! (`TROUPE_LOG_SEGMENT_BYTES` → `log.segment.bytes`), `--override KEY=VALUE`, and the
//! `--data-dir` / `--listen` flags. Keys are Kafka's broker config names. An unknown
//! key in a file or an override, or an invalid value anywhere, is a startup error
//! naming the key; an unknown `TROUPE_*` variable is only warned about (other tools
//! share the prefix).

use std::collections::BTreeMap;
use std::path::PathBuf;

use config::{Config, File, FileFormat, Value, ValueKind};
use troupe_actors::broker_config::{BrokerConfig, ConsumerConfig, GroupConfig};
use troupe_actors::topic_config::{TopicDefaults, TOPIC_CONFIGS};
use troupe_web::{BrowserSafety, WebLimits, WsLimits};

/// The default configuration, compiled into the binary.
pub const DEFAULT_CONFIG: &str = include_str!("../config/server.toml");

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read configuration: {0}")]
    Read(String),
    #[error("unknown configuration key '{key}' (from {source_name})")]
    UnknownKey { key: String, source_name: String },
    #[error("invalid value for '{key}': {reason}")]
    Invalid { key: String, reason: String },
}

/// Keys the broker itself reads (the topic defaults come from the topic config table).
const BROKER_KEYS: &[&str] = &[
    "node.id",
    "listeners",
    "http.workers",
    "http.max.request.bytes",
    "http.allowed.hosts",
    "http.allowed.origins",
    "http.request.body.timeout.ms",
    "shutdown.timeout.ms",
    "log.dirs",
    "num.partitions",
    "default.replication.factor",
    "max.partitions.per.topic",
    "reserved.file.descriptors",
    "log.flush.offset.checkpoint.interval.ms",
    "log.retention.check.interval.ms",
    "log.cleaner.enable",
    "log.cleaner.threads",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.backoff.ms",
    "fetch.max.wait.ms",
    "fetch.max.bytes",
    "partition.threads",
    "partition.mailbox.capacity",
    "partition.max.waiting.fetches",
    "partition.max.restarts",
    "partition.restart.window.ms",
    "offsets.topic.num.partitions",
    "offsets.topic.segment.bytes",
    "offset.metadata.max.bytes",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
    "group.max.size",
    "consumer.instance.timeout.ms",
    "consumer.instances.max",
    "consumer.session.timeout.ms",
    "consumer.heartbeat.interval.ms",
    "consumer.request.timeout.ms",
    "partition.tail.buffer.chunks",
    "partition.tail.chunk.max.bytes",
    "websocket.max.connections",
    "websocket.max.subscriptions.per.connection",
    "websocket.max.frame.bytes",
    "websocket.send.buffer.bytes",
    "websocket.records.frame.bytes",
    "websocket.slow.client.timeout.ms",
    "websocket.ping.interval.ms",
    "websocket.idle.timeout.ms",
    "websocket.allowed.origins",
];

fn is_known(key: &str) -> bool {
    BROKER_KEYS.contains(&key) || TOPIC_CONFIGS.iter().any(|d| d.broker_key == key)
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub broker: BrokerConfig,
    pub listen_host: String,
    pub listen_port: u16,
    pub http_workers: usize,
    pub shutdown_timeout_ms: u64,
    pub web: WebLimits,
    pub websocket: WsLimits,
    /// `http.allowed.hosts` and `http.allowed.origins`, and the listener's host; the
    /// server adds whether the listener is exposed once it is bound.
    pub browser: BrowserSafety,
    /// Every effective key and value, for the startup log.
    pub values: BTreeMap<String, String>,
}

/// What the command line adds on top of files and environment.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    pub config_file: Option<PathBuf>,
    pub overrides: Vec<(String, String)>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
}

impl Settings {
    pub fn load(cli: &CliOverrides) -> Result<Settings, SettingsError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Settings::load_with_env(cli, &env)
    }

    pub fn load_with_env(
        cli: &CliOverrides,
        env: &[(String, String)],
    ) -> Result<Settings, SettingsError> {
        let mut values = flatten_toml(DEFAULT_CONFIG, "the embedded defaults")?;
        if let Some(path) = &cli.config_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| SettingsError::Read(format!("{}: {e}", path.display())))?;
            let from_file = flatten_toml(&text, &path.display().to_string())?;
            for (key, value) in from_file {
                check_known(&key, &path.display().to_string())?;
                values.insert(key, value);
            }
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("TROUPE_") else {
                continue;
            };
            let key = rest.to_ascii_lowercase().replace('_', ".");
            if is_known(&key) {
                values.insert(key, value.clone());
            } else {
                log::warn!(
                    "ignoring environment variable {name}: '{key}' is not a configuration key"
                );
            }
        }
        for (key, value) in &cli.overrides {
            check_known(key, "--override")?;
            values.insert(key.clone(), value.clone());
        }
        if let Some(dir) = &cli.data_dir {
            values.insert("log.dirs".into(), dir.display().to_string());
        }
        if let Some(listen) = &cli.listen {
            values.insert("listeners".into(), format!("http://{listen}"));
        }
        let defaults = flatten_toml(DEFAULT_CONFIG, "the embedded defaults")?;
        Settings::from_values(values, &defaults)
    }

    fn from_values(
        values: BTreeMap<String, String>,
        defaults: &BTreeMap<String, String>,
    ) -> Result<Settings, SettingsError> {
        let get = |key: &str| -> Result<&str, SettingsError> {
            values
                .get(key)
                .map(String::as_str)
                .ok_or_else(|| SettingsError::Invalid {
                    key: key.into(),
                    reason: "missing".into(),
                })
        };
        let (listen_host, listen_port) = parse_listener(get("listeners")?)?;
        // A value that differs from the shipped file is the operator's (Kafka's
        // STATIC_BROKER_CONFIG); the rest are defaults (DEFAULT_CONFIG).
        let mut topic_defaults = TopicDefaults::default();
        for def in TOPIC_CONFIGS {
            let Some(value) = values.get(def.broker_key) else {
                continue;
            };
            if Some(value) != defaults.get(def.broker_key) {
                topic_defaults
                    .set_broker_key(def.broker_key, value)
                    .map_err(|e| SettingsError::Invalid {
                        key: def.broker_key.into(),
                        reason: e.to_string(),
                    })?;
            }
        }
        let broker = BrokerConfig {
            node_id: parse(&values, "node.id", 0, i32::MAX as i64)? as i32,
            log_dir: PathBuf::from(get("log.dirs")?),
            num_partitions: parse(&values, "num.partitions", 1, 1_000_000)? as i32,
            default_replication_factor: parse(&values, "default.replication.factor", 1, 1)? as i16,
            topic_defaults,
            recovery_point_checkpoint_interval_ms: parse(
                &values,
                "log.flush.offset.checkpoint.interval.ms",
                1,
                i64::MAX,
            )?,
            retention_check_interval_ms: parse(
                &values,
                "log.retention.check.interval.ms",
                1,
                i64::MAX,
            )? as u64,
            cleaner_enable: parse_bool(&values, "log.cleaner.enable")?,
            cleaner_threads: parse(&values, "log.cleaner.threads", 1, 64)? as usize,
            cleaner_dedupe_buffer_bytes: parse(
                &values,
                "log.cleaner.dedupe.buffer.size",
                1024,
                1 << 40,
            )? as usize,
            cleaner_backoff_ms: parse(&values, "log.cleaner.backoff.ms", 1, i64::MAX)? as u64,
            max_partitions_per_topic: parse(&values, "max.partitions.per.topic", 1, 1_000_000)?
                as i32,
            reserved_file_descriptors: parse(&values, "reserved.file.descriptors", 0, 1 << 30)?
                as u64,
            partition_mailbox_capacity: parse(&values, "partition.mailbox.capacity", 1, 1 << 20)?
                as usize,
            partition_max_waiting_fetches: parse(
                &values,
                "partition.max.waiting.fetches",
                1,
                1 << 20,
            )? as usize,
            partition_max_restarts: parse(&values, "partition.max.restarts", 0, 1000)? as usize,
            partition_restart_window_ms: parse(&values, "partition.restart.window.ms", 1, i64::MAX)?
                as u64,
            partition_threads: parse(&values, "partition.threads", 1, 256)? as usize,
            partition_tail_buffer_chunks: parse(
                &values,
                "partition.tail.buffer.chunks",
                1,
                1 << 16,
            )? as usize,
            partition_tail_chunk_max_bytes: parse(
                &values,
                "partition.tail.chunk.max.bytes",
                1024,
                1 << 30,
            )? as usize,
            groups: GroupConfig {
                offsets_topic_partitions: parse(&values, "offsets.topic.num.partitions", 1, 10_000)?
                    as i32,
                offsets_topic_segment_bytes: parse(
                    &values,
                    "offsets.topic.segment.bytes",
                    14,
                    i32::MAX as i64,
                )? as u64,
                offset_metadata_max_bytes: parse(&values, "offset.metadata.max.bytes", 0, 16_384)?
                    as usize,
                min_session_timeout_ms: parse(
                    &values,
                    "group.min.session.timeout.ms",
                    1,
                    i32::MAX as i64,
                )?,
                max_session_timeout_ms: parse(
                    &values,
                    "group.max.session.timeout.ms",
                    1,
                    i32::MAX as i64,
                )?,
                max_size: parse(&values, "group.max.size", 1, 1_000_000)? as usize,
            },
            consumers: ConsumerConfig {
                instance_timeout_ms: parse(&values, "consumer.instance.timeout.ms", 1, i64::MAX)?
                    as u64,
                max_instances: parse(&values, "consumer.instances.max", 1, 1_000_000)? as usize,
                session_timeout_ms: parse(
                    &values,
                    "consumer.session.timeout.ms",
                    1,
                    i32::MAX as i64,
                )?,
                heartbeat_interval_ms: parse(
                    &values,
                    "consumer.heartbeat.interval.ms",
                    1,
                    i32::MAX as i64,
                )? as u64,
                request_timeout_ms: parse(&values, "consumer.request.timeout.ms", 0, 3_600_000)?
                    as u64,
            },
        };
        let web = WebLimits {
            max_request_bytes: parse(&values, "http.max.request.bytes", 1024, 1 << 31)? as usize,
            max_fetch_wait_ms: parse(&values, "fetch.max.wait.ms", 0, 3_600_000)? as u64,
            max_fetch_bytes: parse(&values, "fetch.max.bytes", 1024, 1 << 30)? as usize,
            body_timeout_ms: parse(&values, "http.request.body.timeout.ms", 100, 3_600_000)? as u64,
        };
        let websocket = WsLimits {
            max_connections: parse(&values, "websocket.max.connections", 1, 1_000_000)? as usize,
            max_subscriptions: parse(
                &values,
                "websocket.max.subscriptions.per.connection",
                1,
                100_000,
            )? as usize,
            max_frame_bytes: parse(&values, "websocket.max.frame.bytes", 1024, 1 << 30)? as usize,
            send_buffer_bytes: parse(&values, "websocket.send.buffer.bytes", 1024, 1 << 31)?
                as usize,
            records_frame_bytes: parse(&values, "websocket.records.frame.bytes", 1024, 1 << 30)?
                as usize,
            slow_client_timeout_ms: parse(
                &values,
                "websocket.slow.client.timeout.ms",
                1,
                3_600_000,
            )? as u64,
            ping_interval_ms: parse(&values, "websocket.ping.interval.ms", 10, 3_600_000)? as u64,
            idle_timeout_ms: parse(&values, "websocket.idle.timeout.ms", 10, 86_400_000)? as u64,
            allowed_origins: get("websocket.allowed.origins")?
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|o| !o.is_empty())
                .collect(),
            fetch_max_bytes: web.max_fetch_bytes,
        };
        let list = |key: &str| -> Result<Vec<String>, SettingsError> {
            Ok(get(key)?
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|o| !o.is_empty())
                .collect())
        };
        let browser = BrowserSafety {
            allowed_hosts: list("http.allowed.hosts")?,
            allowed_origins: list("http.allowed.origins")?,
            listener_host: listen_host.clone(),
            exposed: false,
        };
        Ok(Settings {
            broker,
            websocket,
            browser,
            listen_host,
            listen_port,
            http_workers: parse(&values, "http.workers", 0, 1024)? as usize,
            shutdown_timeout_ms: parse(&values, "shutdown.timeout.ms", 0, 3_600_000)? as u64,
            web,
            values,
        })
    }
}

fn parse_bool(values: &BTreeMap<String, String>, key: &str) -> Result<bool, SettingsError> {
    match values
        .get(key)
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        other => Err(SettingsError::Invalid {
            key: key.into(),
            reason: format!("{other:?} is not true or false"),
        }),
    }
}

fn check_known(key: &str, source_name: &str) -> Result<(), SettingsError> {
    if is_known(key) {
        return Ok(());
    }
    Err(SettingsError::UnknownKey {
        key: key.to_string(),
        source_name: source_name.to_string(),
    })
}

fn parse(
    values: &BTreeMap<String, String>,
    key: &str,
    min: i64,
    max: i64,
) -> Result<i64, SettingsError> {
    let raw = values.get(key).ok_or_else(|| SettingsError::Invalid {
        key: key.into(),
        reason: "missing".into(),
    })?;
    let v: i64 = raw.trim().parse().map_err(|_| SettingsError::Invalid {
        key: key.into(),
        reason: format!("'{raw}' is not a whole number"),
    })?;
    if v < min || v > max {
        return Err(SettingsError::Invalid {
            key: key.into(),
            reason: format!("{v} is outside [{min}, {max}]"),
        });
    }
    Ok(v)
}

/// `http://HOST:PORT` (or `HOST:PORT`) → host and port.
pub fn parse_listener(listener: &str) -> Result<(String, u16), SettingsError> {
    let invalid = |reason: &str| SettingsError::Invalid {
        key: "listeners".into(),
        reason: format!("'{listener}': {reason}"),
    };
    let rest = listener.strip_prefix("http://").unwrap_or(listener);
    if rest.contains("://") {
        return Err(invalid("only http:// listeners are supported"));
    }
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| invalid("the port is not a number from 0 to 65535"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Ok(("0.0.0.0".into(), port));
    }
    Ok((host.to_string(), port))
}

/// Reads TOML into dotted keys (`log.segment.bytes`) and string values.
fn flatten_toml(text: &str, source_name: &str) -> Result<BTreeMap<String, String>, SettingsError> {
    let config = Config::builder()
        .add_source(File::from_str(text, FileFormat::Toml))
        .build()
        .map_err(|e| SettingsError::Read(format!("{source_name}: {e}")))?;
    let table: std::collections::HashMap<String, Value> = config
        .try_deserialize()
        .map_err(|e| SettingsError::Read(format!("{source_name}: {e}")))?;
    let mut out = BTreeMap::new();
    for (key, value) in table {
        flatten_value(&key, value, &mut out, source_name)?;
    }
    Ok(out)
}

fn flatten_value(
    prefix: &str,
    value: Value,
    out: &mut BTreeMap<String, String>,
    source_name: &str,
) -> Result<(), SettingsError> {
    match value.kind {
        ValueKind::Table(table) => {
            for (k, v) in table {
                flatten_value(&format!("{prefix}.{k}"), v, out, source_name)?;
            }
            Ok(())
        }
        ValueKind::Array(_) => Err(SettingsError::Invalid {
            key: prefix.to_string(),
            reason: format!(
                "arrays are not supported (in {source_name}); use a comma-separated string"
            ),
        }),
        _ => {
            let text = value.into_string().map_err(|e| SettingsError::Invalid {
                key: prefix.to_string(),
                reason: e.to_string(),
            })?;
            out.insert(prefix.to_string(), text);
            Ok(())
        }
    }
}

/// `KEY=VALUE` from `--override` or `--config` options.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not KEY=VALUE"))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("'{s}' has an empty key"));
    }
    Ok((k.to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(cli: CliOverrides, env: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_with_env(&cli, &env)
    }

    #[test]
    fn embedded_defaults_run_on_port_8082_in_data() {
        let s = load(CliOverrides::default(), &[]).unwrap();
        assert_eq!((s.listen_host.as_str(), s.listen_port), ("127.0.0.1", 8082));
        assert_eq!(s.broker.log_dir, PathBuf::from("./data"));
        assert_eq!(s.broker.num_partitions, 1);
        assert_eq!(s.broker.topic_defaults.get("flush.messages"), Some("1"));
    }

    #[test]
    fn file_then_env_then_overrides_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.toml");
        std::fs::write(&file, "num.partitions = 3\nlog.segment.bytes = 1048576\n").unwrap();
        let cli = CliOverrides {
            config_file: Some(file),
            overrides: vec![("num.partitions".into(), "5".into())],
            data_dir: Some("/tmp/x".into()),
            listen: Some("127.0.0.1:9999".into()),
        };
        let s = load(
            cli,
            &[
                ("TROUPE_LOG_SEGMENT_BYTES", "2097152"),
                ("TROUPE_NOT_A_KEY", "1"),
            ],
        )
        .unwrap();
        assert_eq!(s.broker.num_partitions, 5);
        assert_eq!(
            s.broker.topic_defaults.get("segment.bytes"),
            Some("2097152")
        );
        assert_eq!(s.broker.log_dir, PathBuf::from("/tmp/x"));
        assert_eq!(s.listen_port, 9999);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let cli = CliOverrides {
            overrides: vec![("log.segmnet.bytes".into(), "1".into())],
            ..CliOverrides::default()
        };
        assert!(matches!(
            load(cli, &[]),
            Err(SettingsError::UnknownKey { .. })
        ));
        let cli = CliOverrides {
            overrides: vec![("num.partitions".into(), "many".into())],
            ..CliOverrides::default()
        };
        assert!(matches!(load(cli, &[]), Err(SettingsError::Invalid { .. })));
        let cli = CliOverrides {
            overrides: vec![("log.cleanup.policy".into(), "shred".into())],
            ..CliOverrides::default()
        };
        assert!(matches!(load(cli, &[]), Err(SettingsError::Invalid { .. })));
        let cli = CliOverrides {
            overrides: vec![("default.replication.factor".into(), "3".into())],
            ..CliOverrides::default()
        };
        assert!(matches!(load(cli, &[]), Err(SettingsError::Invalid { .. })));
        assert!(parse_listener("https://x:1").is_err());
        assert!(parse_listener("x").is_err());
    }

    #[test]
    fn browser_safety_lists_are_read_and_default_to_empty() {
        let s = load(CliOverrides::default(), &[]).unwrap();
        assert!(s.browser.allowed_hosts.is_empty());
        assert!(s.browser.allowed_origins.is_empty());
        assert_eq!(s.browser.listener_host, "127.0.0.1");
        let cli = CliOverrides {
            overrides: vec![
                (
                    "http.allowed.hosts".into(),
                    " Broker.Internal, ,kafka.example ".into(),
                ),
                ("http.allowed.origins".into(), "https://Ops.Example/".into()),
            ],
            ..CliOverrides::default()
        };
        let s = load(cli, &[]).unwrap();
        assert_eq!(
            s.browser.allowed_hosts,
            ["broker.internal", "kafka.example"]
        );
        assert_eq!(s.browser.allowed_origins, ["https://ops.example"]);
    }
}
