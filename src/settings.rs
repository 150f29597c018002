//! Broker settings, read in this order, later winning: the defaults of the key table
//! (`broker_configs.rs`), `--config FILE` (TOML, read with the `config` crate),
//! `TROUPE_*` environment variables (`TROUPE_LOG_SEGMENT_BYTES` → `log.segment.bytes`),
//! `--override KEY=VALUE`, and the `--data-dir` / `--listen` / `--kafka-listen` flags. Keys are Kafka's
//! broker config names. An unknown key in a file or an override, or an invalid value
//! anywhere, is a startup error naming the key; an unknown `TROUPE_*` variable is only
//! warned about (other tools share the prefix).
//!
//! Which keys exist, their defaults and their checks come from the one table of
//! definitions (Kafka's `ConfigDef`, in `config_def.rs`); this file only gathers the
//! raw values and hands the checked ones to `BrokerConfig`, `WebLimits`, `WsLimits`
//! and `BrowserSafety`, and the Kafka listener's `ListenerConfig`.

mod broker_configs;
mod config_def;
pub mod docs;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use config::{Config, File, FileFormat, Value, ValueKind};
use troupe_actors::broker_config::{
    BrokerConfig, ClusterConfig, ConsumerConfig, GroupConfig, ProcessRoles, ReplicationConfig,
};
use troupe_actors::ids::NodeId;
use troupe_actors::topic_config::TopicDefaults;
use troupe_kafka::ListenerConfig;
use troupe_web::auth::HttpAuth;
use troupe_web::{BrowserSafety, WebLimits, WsLimits};

use broker_configs::{broker_config, BROKER_CONFIGS};
use config_def::{
    ConfigType, ConfigValue, ListenerSpec, CONTROLLER_LISTENER, HTTPS_LISTENER, HTTP_LISTENER,
    PLAINTEXT_LISTENER,
};
use troupe_kafka::{SaslMechanism, SecurityProtocol};

use crate::tls::{ClientAuth, TlsSettings};

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read configuration: {0}")]
    Read(String),
    #[error("unknown configuration key '{key}' (from {source_name})")]
    UnknownKey { key: String, source_name: String },
    #[error("invalid value for '{key}': {reason}")]
    Invalid { key: String, reason: String },
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
    /// The HTTP listener speaks TLS (`https://`).
    pub http_tls: bool,
    /// `authentication.method` on the HTTP listener.
    pub http_auth: HttpAuth,
    /// `super.users`: principals (`User:admin`).
    pub super_users: Vec<String>,
    /// `authorizer.class.name` names the ACL authorizer.
    pub authorizer: bool,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_if_no_acl: bool,
    /// The Kafka listeners `listeners` has (`PLAINTEXT`, `SSL`), in that order.
    pub kafka: Vec<ListenerConfig>,
    /// The `ssl.*` keys, for the TLS listeners.
    pub tls: TlsSettings,
    /// The controller listener's bind address (`HOST:PORT`), if `listeners` has one.
    pub controller_listen: Option<String>,
    /// The CONTROLLER listener is `SSL` (`listener.security.protocol.map`): served
    /// over TLS, and the quorum's nodes reach each other over it with TLS.
    pub controller_tls: bool,
    /// Every effective key and value, for the startup log.
    pub values: BTreeMap<String, String>,
    /// Users `--add-scram` creates at startup unless they exist.
    pub add_scram: Vec<troupe_actors::requests::users::BootstrapUser>,
}

/// What the command line adds on top of files and environment.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    pub config_file: Option<PathBuf>,
    pub overrides: Vec<(String, String)>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    /// `HOST:PORT` of the Kafka listener (`PLAINTEXT://`).
    pub kafka_listen: Option<String>,
    /// `HOST:PORT` of the controller listener (`CONTROLLER://`).
    pub controller_listen: Option<String>,
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
        let mut values: BTreeMap<String, String> = BROKER_CONFIGS
            .iter()
            .map(|def| (def.name.to_string(), def.default.to_string()))
            .collect();
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
            if broker_config(&key).is_some() {
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
        let listeners = values.entry("listeners".into()).or_default();
        if let Some(listen) = &cli.listen {
            // The HTTP listener keeps its scheme.
            let secure = listeners
                .split(',')
                .any(|e| e.trim().to_ascii_lowercase().starts_with("https://"));
            let name = if secure {
                HTTPS_LISTENER
            } else {
                HTTP_LISTENER
            };
            *listeners = replace_listener(listeners, name, listen);
        }
        if let Some(listen) = &cli.kafka_listen {
            *listeners = replace_listener(listeners, PLAINTEXT_LISTENER, listen);
        }
        if let Some(listen) = &cli.controller_listen {
            *listeners = replace_listener(listeners, CONTROLLER_LISTENER, listen);
        }
        Settings::from_values(values)
    }

    fn from_values(values: BTreeMap<String, String>) -> Result<Settings, SettingsError> {
        let mut checked = CheckedValues::check(&values)?;
        let listeners = checked.listeners("listeners")?;
        let mut http = listeners
            .iter()
            .filter(|l| l.name == HTTP_LISTENER || l.name == HTTPS_LISTENER);
        let (Some(http), None) = (http.next(), http.next()) else {
            return Err(SettingsError::Invalid {
                key: "listeners".into(),
                reason:
                    "one http:// or https:// listener: REST, WebSocket and the dashboard need one"
                        .into(),
            });
        };
        let (listen_host, listen_port) = (http.host.clone(), http.port);
        let http_tls = http.name == HTTPS_LISTENER;
        let (kafka, controller_tls) = kafka_listeners(&mut checked, &listeners)?;
        let tls = TlsSettings {
            keystore: Some(checked.text("ssl.keystore.location")?)
                .filter(|p| !p.trim().is_empty())
                .map(PathBuf::from),
            truststore: Some(checked.text("ssl.truststore.location")?)
                .filter(|p| !p.trim().is_empty())
                .map(PathBuf::from),
            client_auth: ClientAuth::parse(&checked.text("ssl.client.auth")?).map_err(
                |reason| SettingsError::Invalid {
                    key: "ssl.client.auth".into(),
                    reason,
                },
            )?,
        };
        let secure = http_tls || controller_tls || kafka.iter().any(ListenerConfig::tls_wanted);
        if secure && tls.keystore.is_none() {
            return Err(SettingsError::Invalid {
                key: "ssl.keystore.location".into(),
                reason: "a TLS listener (https://, a Kafka listener whose protocol is SSL or SASL_SSL, or an SSL CONTROLLER) needs a PEM file with the private key and the certificate chain".into(),
            });
        }
        let node_id = NodeId::new(checked.number("node.id")?);
        let controller_listen = listeners
            .iter()
            .find(|l| l.name == CONTROLLER_LISTENER)
            .map(ListenerSpec::bind_address);
        let cluster = cluster_config(&mut checked, node_id, &listeners, &kafka)?;
        // Another broker's requests come through the inter-broker listener of a
        // multi-node cluster, already authorized where they began.
        let mut kafka = kafka;
        if !cluster.is_single_node(node_id) {
            for listener in &mut kafka {
                listener.inter_broker =
                    listener.listener_name == cluster.inter_broker_listener_name;
            }
        }
        let broker = BrokerConfig {
            node_id,
            log_dir: PathBuf::from(checked.text("log.dirs")?),
            num_partitions: checked.number("num.partitions")?,
            default_replication_factor: checked.number("default.replication.factor")?,
            topic_defaults: checked.topic_defaults()?,
            recovery_point_checkpoint_interval_ms: checked
                .number("log.flush.offset.checkpoint.interval.ms")?,
            retention_check_interval_ms: checked.number("log.retention.check.interval.ms")?,
            producer_id_expiration_ms: checked.number("producer.id.expiration.ms")?,
            cleaner_enable: checked.flag("log.cleaner.enable")?,
            cleaner_threads: checked.number("log.cleaner.threads")?,
            cleaner_dedupe_buffer_bytes: checked.number("log.cleaner.dedupe.buffer.size")?,
            cleaner_backoff_ms: checked.number("log.cleaner.backoff.ms")?,
            max_partitions_per_topic: checked.number("max.partitions.per.topic")?,
            reserved_file_descriptors: checked.number("reserved.file.descriptors")?,
            partition_mailbox_capacity: checked.number("partition.mailbox.capacity")?,
            partition_max_waiting_fetches: checked.number("partition.max.waiting.fetches")?,
            partition_max_restarts: checked.number("partition.max.restarts")?,
            partition_restart_window_ms: checked.number("partition.restart.window.ms")?,
            partition_threads: checked.number("partition.threads")?,
            partition_tail_buffer_chunks: checked.number("partition.tail.buffer.chunks")?,
            partition_tail_chunk_max_bytes: checked.number("partition.tail.chunk.max.bytes")?,
            groups: GroupConfig {
                offsets_topic_partitions: checked.number("offsets.topic.num.partitions")?,
                offsets_topic_segment_bytes: checked.number("offsets.topic.segment.bytes")?,
                offset_metadata_max_bytes: checked.number("offset.metadata.max.bytes")?,
                min_session_timeout_ms: checked.number("group.min.session.timeout.ms")?,
                max_session_timeout_ms: checked.number("group.max.session.timeout.ms")?,
                max_size: checked.number("group.max.size")?,
            },
            consumers: ConsumerConfig {
                instance_timeout_ms: checked.number("consumer.instance.timeout.ms")?,
                max_instances: checked.number("consumer.instances.max")?,
                session_timeout_ms: checked.number("consumer.session.timeout.ms")?,
                heartbeat_interval_ms: checked.number("consumer.heartbeat.interval.ms")?,
                request_timeout_ms: checked.number("consumer.request.timeout.ms")?,
            },
            cluster,
        };
        let web = WebLimits {
            max_request_bytes: checked.number("http.max.request.bytes")?,
            max_fetch_wait_ms: checked.number("fetch.max.wait.ms")?,
            max_fetch_bytes: checked.number("fetch.max.bytes")?,
            body_timeout_ms: checked.number("http.request.body.timeout.ms")?,
        };
        let websocket = WsLimits {
            max_connections: checked.number("websocket.max.connections")?,
            max_subscriptions: checked.number("websocket.max.subscriptions.per.connection")?,
            max_frame_bytes: checked.number("websocket.max.frame.bytes")?,
            send_buffer_bytes: checked.number("websocket.send.buffer.bytes")?,
            records_frame_bytes: checked.number("websocket.records.frame.bytes")?,
            slow_client_timeout_ms: checked.number("websocket.slow.client.timeout.ms")?,
            ping_interval_ms: checked.number("websocket.ping.interval.ms")?,
            idle_timeout_ms: checked.number("websocket.idle.timeout.ms")?,
            allowed_origins: checked.list("websocket.allowed.origins")?,
            fetch_max_bytes: web.max_fetch_bytes,
        };
        let browser = BrowserSafety {
            allowed_hosts: checked.list("http.allowed.hosts")?,
            allowed_origins: checked.list("http.allowed.origins")?,
            cors_origins: checked.list("http.cors.allowed.origins")?,
            listener_host: listen_host.clone(),
            exposed: false,
        };
        let http_auth =
            HttpAuth::parse(&checked.text("authentication.method")?).map_err(|reason| {
                SettingsError::Invalid {
                    key: "authentication.method".into(),
                    reason,
                }
            })?;
        let authorizer =
            parse_authorizer(&checked.text("authorizer.class.name")?).map_err(|reason| {
                SettingsError::Invalid {
                    key: "authorizer.class.name".into(),
                    reason,
                }
            })?;
        let settings = Settings {
            broker,
            websocket,
            browser,
            listen_host,
            listen_port,
            http_workers: checked.number("http.workers")?,
            shutdown_timeout_ms: checked.number("shutdown.timeout.ms")?,
            web,
            http_tls,
            http_auth,
            super_users: checked
                .text("super.users")?
                .split(';')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
            authorizer,
            allow_if_no_acl: checked.flag("allow.everyone.if.no.acl.found")?,
            kafka,
            tls,
            controller_listen,
            controller_tls,
            values,
            add_scram: Vec::new(),
        };
        // A key in the table that nothing reads would be accepted and silently ignored.
        debug_assert!(
            checked.0.is_empty(),
            "defined but never read: {:?}",
            checked.0.keys().collect::<Vec<_>>()
        );
        Ok(settings)
    }
}

/// `raw` listeners with the entry named `name` replaced by `name://address`, where
/// it was (Kafka listeners keep their order), or added at the end.
fn replace_listener(raw: &str, name: &str, address: &str) -> String {
    let named = |entry: &str| match entry.split_once("://") {
        Some((n, _)) => n.eq_ignore_ascii_case(name),
        None => name == HTTP_LISTENER,
    };
    let replacement = format!("{name}://{address}");
    let mut entries: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    match entries.iter().position(|e| named(e)) {
        Some(at) => {
            entries[at] = replacement;
            entries.retain({
                let mut seen = false;
                move |e| {
                    if named(e) {
                        let first = !seen;
                        seen = true;
                        first
                    } else {
                        true
                    }
                }
            });
        }
        None => entries.push(replacement),
    }
    entries.join(",")
}

/// `listener.security.protocol.map`: Kafka listener name → security protocol.
fn protocol_map(raw: &str) -> Result<BTreeMap<String, SecurityProtocol>, String> {
    let mut map = BTreeMap::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, protocol) = entry
            .split_once(':')
            .ok_or_else(|| format!("'{entry}' is not NAME:PROTOCOL"))?;
        let protocol = SecurityProtocol::parse(protocol).ok_or_else(|| {
            format!("'{entry}': {protocol} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
        })?;
        let name = name.trim().to_ascii_uppercase();
        if name == CONTROLLER_LISTENER
            && !matches!(
                protocol,
                SecurityProtocol::Plaintext | SecurityProtocol::Ssl
            )
        {
            return Err(format!(
                "'{entry}': the {CONTROLLER_LISTENER} listener is PLAINTEXT or SSL (the quorum's nodes trust each other's certificates; SASL between them is not served)"
            ));
        }
        if map.insert(name.clone(), protocol).is_some() {
            return Err(format!("{name} is mapped twice"));
        }
    }
    Ok(map)
}

/// The Kafka listeners `listeners` names (every one but `http`, `https` and
/// `CONTROLLER`), in order, each with its security protocol;
/// `advertised.listeners` may name only listeners that exist.
/// And whether the CONTROLLER listener is `SSL`.
fn kafka_listeners(
    checked: &mut CheckedValues,
    listeners: &[ListenerSpec],
) -> Result<(Vec<ListenerConfig>, bool), SettingsError> {
    let invalid = |key: &str, reason: String| SettingsError::Invalid {
        key: key.into(),
        reason,
    };
    let protocols = protocol_map(&checked.text("listener.security.protocol.map")?)
        .map_err(|reason| invalid("listener.security.protocol.map", reason))?;
    let controller_tls = protocols.get(CONTROLLER_LISTENER) == Some(&SecurityProtocol::Ssl);
    let kafka: Vec<&ListenerSpec> = listeners
        .iter()
        .filter(|l| {
            l.name != HTTP_LISTENER && l.name != HTTPS_LISTENER && l.name != CONTROLLER_LISTENER
        })
        .collect();
    let advertised = checked.listeners("advertised.listeners")?;
    if let Some(stray) = advertised
        .iter()
        .find(|a| !kafka.iter().any(|l| l.name == a.name))
    {
        return Err(invalid(
            "advertised.listeners",
            format!("{} is not a Kafka listener in `listeners`", stray.name),
        ));
    }
    let mut mechanisms = Vec::new();
    for name in checked
        .text("sasl.enabled.mechanisms")?
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        let mechanism = SaslMechanism::parse(name).ok_or_else(|| {
            invalid(
                "sasl.enabled.mechanisms",
                format!("{name} is not SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN"),
            )
        })?;
        if !mechanisms.contains(&mechanism) {
            mechanisms.push(mechanism);
        }
    }
    let sasl_max_receive_bytes: usize = checked.number("sasl.server.max.receive.size")?;
    let max_request_bytes: usize = checked.number("socket.request.max.bytes")?;
    let max_connections: usize = checked.number("max.connections")?;
    let max_inflight_requests: usize = checked.number("queued.max.requests.per.connection")?;
    let idle_ms: u64 = checked.number("connections.max.idle.ms")?;
    let request_timeout_ms: u64 = checked.number("socket.request.timeout.ms")?;
    let configs = kafka
        .into_iter()
        .map(|listener| {
            let security = *protocols.get(&listener.name).ok_or_else(|| {
                invalid(
                    "listener.security.protocol.map",
                    format!("listener {} has no security protocol here", listener.name),
                )
            })?;
            if security.uses_sasl() && mechanisms.is_empty() {
                return Err(invalid(
                    "sasl.enabled.mechanisms",
                    format!("the SASL listener {} needs a mechanism", listener.name),
                ));
            }
            let told = advertised.iter().find(|a| a.name == listener.name);
            Ok(ListenerConfig {
                listener_name: listener.name.clone(),
                bind: listener.bind_address(),
                advertised_host: told.map(|a| a.host.clone()),
                advertised_port: told.map(|a| a.port),
                max_request_bytes,
                max_connections,
                max_inflight_requests,
                idle_timeout: Duration::from_millis(idle_ms),
                request_timeout: Duration::from_millis(request_timeout_ms),
                security,
                tls: None,
                sasl_mechanisms: mechanisms.clone(),
                sasl_max_receive_bytes,
                inter_broker: false,
            })
        })
        .collect::<Result<Vec<_>, SettingsError>>()?;
    Ok((configs, controller_tls))
}

/// `authorizer.class.name`: empty for none, or Kafka's ACL authorizer by any of its
/// names.
fn parse_authorizer(name: &str) -> Result<bool, String> {
    match name.trim() {
        "" => Ok(false),
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        | "kafka.security.authorizer.AclAuthorizer"
        | "acl" => Ok(true),
        other => Err(format!(
            "'{other}' is not an authorizer here: leave it empty, or name org.apache.kafka.metadata.authorizer.StandardAuthorizer (ACLs)"
        )),
    }
}

/// The node's cluster settings, checked against each other: the roles, the voters
/// (`ID@HOST:PORT`, no id twice, this node among them when it is a controller), a
/// cluster id when there is more than one voter, and the listeners they need.
fn cluster_config(
    checked: &mut CheckedValues,
    node_id: NodeId,
    listeners: &[ListenerSpec],
    kafka: &[ListenerConfig],
) -> Result<ClusterConfig, SettingsError> {
    let invalid = |key: &str, reason: String| SettingsError::Invalid {
        key: key.into(),
        reason,
    };
    let mut roles = ProcessRoles {
        broker: false,
        controller: false,
    };
    for role in checked.list("process.roles")? {
        match role.as_str() {
            "broker" => roles.broker = true,
            "controller" => roles.controller = true,
            other => {
                return Err(invalid(
                    "process.roles",
                    format!("'{other}' is not a role (broker, controller)"),
                ))
            }
        }
    }
    if !roles.broker && !roles.controller {
        return Err(invalid("process.roles", "names no role".into()));
    }
    let voters = parse_voters(&checked.text("controller.quorum.voters")?)
        .map_err(|reason| invalid("controller.quorum.voters", reason))?;
    if roles.controller && !voters.is_empty() && !voters.contains_key(&node_id) {
        return Err(invalid(
            "controller.quorum.voters",
            format!("node {node_id} is a controller (process.roles) but not a voter"),
        ));
    }
    if !roles.controller && voters.is_empty() {
        return Err(invalid(
            "controller.quorum.voters",
            "a broker-only node needs the controllers it registers with".into(),
        ));
    }
    let cluster_id = Some(checked.text("cluster.id")?.trim().to_string()).filter(|c| !c.is_empty());
    let multi_node = voters.len() > 1 || (voters.len() == 1 && !voters.contains_key(&node_id));
    if multi_node && cluster_id.is_none() {
        return Err(invalid(
            "cluster.id",
            "every node of a multi-node cluster needs the same cluster id".into(),
        ));
    }
    let controller_listener_name = checked.text("controller.listener.names")?;
    if controller_listener_name.trim().to_ascii_uppercase() != CONTROLLER_LISTENER {
        return Err(invalid(
            "controller.listener.names",
            format!("only {CONTROLLER_LISTENER} is served"),
        ));
    }
    let has = |name: &str| listeners.iter().any(|l| l.name == name);
    if multi_node && roles.controller && !has(CONTROLLER_LISTENER) {
        return Err(invalid(
            "listeners",
            format!(
                "a controller of a multi-node cluster needs a {CONTROLLER_LISTENER}:// listener"
            ),
        ));
    }
    if !roles.controller && !has(CONTROLLER_LISTENER) {
        return Err(invalid(
            "listeners",
            format!(
                "a broker-only node needs a {CONTROLLER_LISTENER}:// listener: the quorum's leader replicates the metadata log to it there"
            ),
        ));
    }
    let observer_addr = (!roles.controller)
        .then(|| listeners.iter().find(|l| l.name == CONTROLLER_LISTENER))
        .flatten()
        .map(|l| format!("{}:{}", l.host, l.port));
    let inter_broker_listener_name = checked
        .text("inter.broker.listener.name")?
        .trim()
        .to_ascii_uppercase();
    if multi_node && roles.broker && !has(&inter_broker_listener_name) {
        return Err(invalid(
            "inter.broker.listener.name",
            format!("{inter_broker_listener_name} is not in `listeners`"),
        ));
    }
    let inter_broker_protocol = kafka
        .iter()
        .find(|k| k.listener_name == inter_broker_listener_name)
        .map(|k| k.security);
    if multi_node
        && inter_broker_protocol
            .is_some_and(|p| !matches!(p, SecurityProtocol::Plaintext | SecurityProtocol::Ssl))
    {
        return Err(invalid(
            "inter.broker.listener.name",
            "brokers reach each other over PLAINTEXT or SSL (they trust each other's certificates; SASL between brokers is not served): name a PLAINTEXT or SSL listener".into(),
        ));
    }
    let check_interval_s: u64 = checked.number("leader.imbalance.check.interval.seconds")?;
    Ok(ClusterConfig {
        roles,
        voters,
        cluster_id,
        broker_session_timeout_ms: checked.number("broker.session.timeout.ms")?,
        broker_heartbeat_interval_ms: checked.number("broker.heartbeat.interval.ms")?,
        offsets_topic_replication_factor: checked.number("offsets.topic.replication.factor")?,
        auto_leader_rebalance_enable: checked.flag("auto.leader.rebalance.enable")?,
        leader_imbalance_check_interval_ms: check_interval_s * 1000,
        inter_broker_listener_name,
        controller_listener_name: CONTROLLER_LISTENER.to_string(),
        observer_addr,
        inter_broker_tls: None,
        controller_tls: None,
        replication: ReplicationConfig {
            lag_time_max_ms: checked.number("replica.lag.time.max.ms")?,
            fetch_wait_max_ms: checked.number("replica.fetch.wait.max.ms")?,
            fetch_max_bytes: checked.number("replica.fetch.max.bytes")?,
            fetch_response_max_bytes: checked.number("replica.fetch.response.max.bytes")?,
            fetch_backoff_ms: checked.number("replica.fetch.backoff.ms")?,
        },
    })
}

/// `controller.quorum.voters`: `ID@HOST:PORT`, comma-separated, no id twice.
fn parse_voters(raw: &str) -> Result<BTreeMap<NodeId, String>, String> {
    let mut voters = BTreeMap::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, address) = entry
            .split_once('@')
            .ok_or_else(|| format!("'{entry}' is not ID@HOST:PORT"))?;
        let id: i32 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| format!("'{entry}': '{id}' is not a node id"))?;
        let (host, port) = address
            .trim()
            .rsplit_once(':')
            .ok_or_else(|| format!("'{entry}': '{address}' is not HOST:PORT"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("'{entry}': '{port}' is not a port"))?;
        if host.is_empty() {
            return Err(format!("'{entry}' names no host"));
        }
        if voters
            .insert(NodeId::new(id), format!("{host}:{port}"))
            .is_some()
        {
            return Err(format!("node id {id} is given twice"));
        }
    }
    Ok(voters)
}

/// Every key's value after its definition's check, handed out once each as the
/// settings are built.
struct CheckedValues(BTreeMap<&'static str, ConfigValue>);

impl CheckedValues {
    fn check(values: &BTreeMap<String, String>) -> Result<CheckedValues, SettingsError> {
        let mut checked = BTreeMap::new();
        for def in BROKER_CONFIGS {
            let raw = values.get(def.name).ok_or_else(|| missing(def.name))?;
            let value = def.parse(raw).map_err(|reason| SettingsError::Invalid {
                key: def.name.into(),
                reason,
            })?;
            checked.insert(def.name, value);
        }
        Ok(CheckedValues(checked))
    }

    fn take(&mut self, key: &str) -> Result<ConfigValue, SettingsError> {
        self.0.remove(key).ok_or_else(|| missing(key))
    }

    /// A whole number, in the type its user holds it in (the table's range fits it).
    fn number<T: TryFrom<i64>>(&mut self, key: &str) -> Result<T, SettingsError> {
        match self.take(key)? {
            ConfigValue::Long(v) => T::try_from(v).map_err(|_| SettingsError::Invalid {
                key: key.into(),
                reason: format!("{v} does not fit {}", std::any::type_name::<T>()),
            }),
            other => Err(wrong_type(key, &other)),
        }
    }

    fn flag(&mut self, key: &str) -> Result<bool, SettingsError> {
        match self.take(key)? {
            ConfigValue::Bool(v) => Ok(v),
            other => Err(wrong_type(key, &other)),
        }
    }

    fn text(&mut self, key: &str) -> Result<String, SettingsError> {
        match self.take(key)? {
            ConfigValue::Text(v) => Ok(v),
            other => Err(wrong_type(key, &other)),
        }
    }

    fn list(&mut self, key: &str) -> Result<Vec<String>, SettingsError> {
        match self.take(key)? {
            ConfigValue::List(v) => Ok(v),
            other => Err(wrong_type(key, &other)),
        }
    }

    fn listeners(&mut self, key: &str) -> Result<Vec<ListenerSpec>, SettingsError> {
        match self.take(key)? {
            ConfigValue::Listeners(v) => Ok(v),
            other => Err(wrong_type(key, &other)),
        }
    }

    /// The topic defaults. A value other than the definition's default is the
    /// operator's (Kafka's STATIC_BROKER_CONFIG); the rest stay DEFAULT_CONFIG.
    fn topic_defaults(&mut self) -> Result<TopicDefaults, SettingsError> {
        let mut defaults = TopicDefaults::default();
        for def in BROKER_CONFIGS {
            if !matches!(def.kind, ConfigType::TopicDefault { .. }) {
                continue;
            }
            let value = self.text(def.name)?;
            if value == def.default {
                continue;
            }
            defaults
                .set_broker_key(def.name, &value)
                .map_err(|e| SettingsError::Invalid {
                    key: def.name.into(),
                    reason: e.to_string(),
                })?;
        }
        Ok(defaults)
    }
}

fn missing(key: &str) -> SettingsError {
    SettingsError::Invalid {
        key: key.into(),
        reason: "missing".into(),
    }
}

/// The table and the code that reads a key disagree about its type: a bug, reported
/// as a startup error rather than a panic.
fn wrong_type(key: &str, value: &ConfigValue) -> SettingsError {
    SettingsError::Invalid {
        key: key.into(),
        reason: format!("read as the wrong type (the table gives {value:?})"),
    }
}

fn check_known(key: &str, source_name: &str) -> Result<(), SettingsError> {
    if broker_config(key).is_some() {
        return Ok(());
    }
    Err(SettingsError::UnknownKey {
        key: key.to_string(),
        source_name: source_name.to_string(),
    })
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
    use troupe_actors::topic_config::{ConfigSource, TOPIC_CONFIGS};

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
            kafka_listen: Some("127.0.0.1:0".into()),
            controller_listen: None,
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
        let kafka = s
            .kafka
            .first()
            .expect("the default listeners have a Kafka one");
        assert_eq!(
            (kafka.listener_name.as_str(), kafka.bind.as_str()),
            ("PLAINTEXT", "127.0.0.1:0")
        );
    }

    /// The settings with `pairs` as `--override`s.
    fn with(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let cli = CliOverrides {
            overrides: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..CliOverrides::default()
        };
        load(cli, &[])
    }

    #[test]
    fn kafka_listeners_and_what_they_advertise() {
        let s = with(&[("advertised.listeners", "PLAINTEXT://kafka.example:19092")]).unwrap();
        let kafka = &s.kafka[0];
        assert_eq!(kafka.bind, "127.0.0.1:9092");
        assert_eq!(
            (kafka.advertised_host.as_deref(), kafka.advertised_port),
            (Some("kafka.example"), Some(19092))
        );
        // Only HTTP: no Kafka listener, as before this version.
        assert!(with(&[("listeners", "http://127.0.0.1:8082")])
            .unwrap()
            .kafka
            .is_empty());
        let no_http = with(&[("listeners", "PLAINTEXT://:9092")]).unwrap_err();
        assert!(
            no_http
                .to_string()
                .contains("one http:// or https:// listener"),
            "{no_http}"
        );
        let stray = with(&[("advertised.listeners", "SSL://x:1")]).unwrap_err();
        assert!(
            stray.to_string().contains("advertised.listeners")
                || stray.to_string().contains("not supported"),
            "{stray}"
        );
        let unknown = with(&[
            ("listeners", "http://:1,PLAINTEXT://:2"),
            ("advertised.listeners", "http://x:3"),
        ])
        .unwrap_err();
        assert!(
            unknown.to_string().contains("advertised.listeners"),
            "{unknown}"
        );
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
            overrides: vec![("default.replication.factor".into(), "0".into())],
            ..CliOverrides::default()
        };
        assert!(matches!(load(cli, &[]), Err(SettingsError::Invalid { .. })));
        let cli = CliOverrides {
            listen: Some("x".into()),
            ..CliOverrides::default()
        };
        assert!(matches!(load(cli, &[]), Err(SettingsError::Invalid { .. })));
    }

    #[test]
    fn errors_name_the_key_and_what_it_allows() {
        let bad = |key: &str, value: &str| {
            let cli = CliOverrides {
                overrides: vec![(key.into(), value.into())],
                ..CliOverrides::default()
            };
            load(cli, &[]).unwrap_err().to_string()
        };
        assert_eq!(
            bad("partition.threads", "0"),
            "invalid value for 'partition.threads': 0 is outside [1, 256]"
        );
        assert_eq!(
            bad("log.cleaner.enable", "maybe"),
            "invalid value for 'log.cleaner.enable': 'maybe' is not true or false"
        );
        assert_eq!(
            bad("log.segment.bytes", "10"),
            "invalid value for 'log.segment.bytes': 10 is outside [14, 2147483647]"
        );
        assert!(bad("listeners", "sasl-ssl://x:1").contains("not a listener name"));
        assert!(bad("authentication.method", "digest").contains("authentication.method"));
    }

    #[test]
    fn kafka_listeners_take_their_protocols_from_the_map_and_sasl_its_keys() {
        let s = with(&[
            (
                "listeners",
                "http://:1,CLIENT://:2,INTERNAL://:3,SASL_SSL://:4,SSL://:5",
            ),
            (
                "listener.security.protocol.map",
                "CLIENT:SASL_PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL",
            ),
            ("inter.broker.listener.name", "INTERNAL"),
            ("ssl.keystore.location", "/k.pem"),
            ("sasl.enabled.mechanisms", "scram-sha-512, PLAIN"),
            ("sasl.server.max.receive.size", "65536"),
            ("authentication.method", "basic"),
        ])
        .unwrap();
        let protocols: Vec<(&str, SecurityProtocol)> = s
            .kafka
            .iter()
            .map(|k| (k.listener_name.as_str(), k.security))
            .collect();
        assert_eq!(
            protocols,
            [
                ("CLIENT", SecurityProtocol::SaslPlaintext),
                ("INTERNAL", SecurityProtocol::Plaintext),
                ("SASL_SSL", SecurityProtocol::SaslSsl),
                ("SSL", SecurityProtocol::Ssl),
            ]
        );
        assert_eq!(
            s.kafka[0].sasl_mechanisms,
            [
                SaslMechanism::Scram(troupe_actors::auth::ScramMechanism::Sha512),
                SaslMechanism::Plain
            ]
        );
        assert_eq!(s.kafka[0].sasl_max_receive_bytes, 65536);
        assert!(s.kafka[2].tls_wanted() && !s.kafka[0].tls_wanted());
        assert_eq!(s.http_auth, HttpAuth::Basic);
        // A listener the map does not name, a protocol Kafka has not, a TLS listener
        // without a key store, an unknown mechanism, a CONTROLLER that is SASL.
        let unmapped = with(&[("listeners", "http://:1,CLIENT://:2")]).unwrap_err();
        assert!(
            unmapped
                .to_string()
                .contains("CLIENT has no security protocol"),
            "{unmapped}"
        );
        let unknown = with(&[("listener.security.protocol.map", "PLAINTEXT:SSH")]).unwrap_err();
        assert!(unknown.to_string().contains("SSH"), "{unknown}");
        let no_store = with(&[("listeners", "http://:1,SASL_SSL://:2")]).unwrap_err();
        assert!(
            no_store.to_string().contains("ssl.keystore.location"),
            "{no_store}"
        );
        let mechanism = with(&[("sasl.enabled.mechanisms", "GSSAPI")]).unwrap_err();
        assert!(mechanism.to_string().contains("GSSAPI"), "{mechanism}");
        let controller = with(&[(
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_SSL",
        )])
        .unwrap_err();
        assert!(
            controller.to_string().contains("PLAINTEXT or SSL"),
            "{controller}"
        );
        // An SSL CONTROLLER needs the key store every TLS listener needs.
        let controller_tls = with(&[(
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL",
        )])
        .unwrap_err();
        assert!(
            controller_tls.to_string().contains("ssl.keystore.location"),
            "{controller_tls}"
        );
        let controller_tls = with(&[
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL",
            ),
            ("ssl.keystore.location", "/etc/troupe/broker.pem"),
        ])
        .expect("an SSL CONTROLLER with a key store");
        assert!(controller_tls.controller_tls);
    }

    #[test]
    fn tls_listeners_need_a_key_store_and_take_kafkas_ssl_keys() {
        let tls = [
            (
                "listeners",
                "https://127.0.0.1:8443,PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093",
            ),
            ("ssl.keystore.location", "/etc/troupe/server.pem"),
            ("ssl.truststore.location", "/etc/troupe/ca.pem"),
            ("ssl.client.auth", "required"),
        ];
        let s = with(&tls).unwrap();
        assert!(s.http_tls);
        assert_eq!(s.listen_port, 8443);
        assert_eq!(
            s.kafka
                .iter()
                .map(|k| (k.listener_name.as_str(), k.bind.as_str()))
                .collect::<Vec<_>>(),
            [("PLAINTEXT", "127.0.0.1:9092"), ("SSL", "127.0.0.1:9093")]
        );
        assert_eq!(
            s.tls,
            TlsSettings {
                keystore: Some("/etc/troupe/server.pem".into()),
                truststore: Some("/etc/troupe/ca.pem".into()),
                client_auth: ClientAuth::Required,
            }
        );
        let no_store = with(&tls[..1]).unwrap_err().to_string();
        assert!(no_store.contains("ssl.keystore.location"), "{no_store}");
        let both = with(&[("listeners", "http://:1,https://:2")]).unwrap_err();
        assert!(
            both.to_string().contains("one http:// or https://"),
            "{both}"
        );
        let auth = with(&[("ssl.client.auth", "sometimes")]).unwrap_err();
        assert!(auth.to_string().contains("ssl.client.auth"), "{auth}");
        // --listen keeps the HTTP listener's scheme.
        let cli = CliOverrides {
            overrides: tls[..2]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            listen: Some("127.0.0.1:9443".into()),
            ..CliOverrides::default()
        };
        let s = load(cli, &[]).unwrap();
        assert!(s.http_tls);
        assert_eq!(s.listen_port, 9443);
    }

    #[test]
    fn a_value_equal_to_the_default_stays_a_default() {
        let cli = CliOverrides {
            overrides: vec![
                ("log.retention.ms".into(), "604800000".into()),
                ("log.message.timestamp.type".into(), "logappendtime".into()),
            ],
            ..CliOverrides::default()
        };
        let s = load(cli, &[]).unwrap();
        let entries = s.broker.topic_defaults.broker_entries();
        let source = |name: &str| entries.iter().find(|e| e.name == name).unwrap().source;
        assert_eq!(source("log.retention.ms"), ConfigSource::DefaultConfig);
        assert_eq!(
            source("log.message.timestamp.type"),
            ConfigSource::StaticBrokerConfig
        );
        assert_eq!(
            s.broker.topic_defaults.get("message.timestamp.type"),
            Some("LogAppendTime")
        );
    }

    #[test]
    fn the_table_names_each_key_once_and_every_topic_default() {
        let mut names: Vec<&str> = BROKER_CONFIGS.iter().map(|d| d.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a key is defined twice");
        for topic in TOPIC_CONFIGS {
            assert!(
                broker_config(topic.broker_key).is_some(),
                "{} (the default of {}) is not in the table",
                topic.broker_key,
                topic.name
            );
        }
        for def in BROKER_CONFIGS {
            assert!(def.parse(def.default).is_ok(), "{}", def.name);
        }
    }

    #[test]
    fn server_toml_holds_exactly_the_tables_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/server.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let file = flatten_toml(&text, path).unwrap();
        let table: BTreeMap<String, String> = BROKER_CONFIGS
            .iter()
            .map(|d| (d.name.to_string(), d.default.to_string()))
            .collect();
        assert_eq!(file, table);
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

    #[test]
    fn the_embedded_default_is_a_combined_node_that_is_its_own_quorum() {
        let s = load(CliOverrides::default(), &[]).unwrap();
        let c = &s.broker.cluster;
        assert!(c.roles.broker && c.roles.controller);
        assert!(c.is_single_node(s.broker.node_id));
        assert_eq!(c.cluster_id, None);
        assert_eq!(s.controller_listen, None);
        assert_eq!(
            (c.broker_session_timeout_ms, c.broker_heartbeat_interval_ms),
            (9000, 2000)
        );
    }

    #[test]
    fn a_three_node_cluster_config_and_its_mistakes_name_the_key() {
        let node = |id: &str, extra: &[(&str, &str)]| {
            let mut pairs = vec![
                ("node.id", id),
                (
                    "controller.quorum.voters",
                    "1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293",
                ),
                ("cluster.id", "troupe-test"),
                (
                    "listeners",
                    "http://127.0.0.1:0,PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:9193",
                ),
            ];
            pairs.extend_from_slice(extra);
            with(&pairs)
        };
        let s = node("2", &[]).unwrap();
        assert_eq!(s.broker.cluster.voters.len(), 3);
        assert_eq!(
            s.broker
                .cluster
                .voters
                .get(&NodeId::new(3))
                .map(String::as_str),
            Some("127.0.0.1:9293")
        );
        assert_eq!(s.controller_listen.as_deref(), Some("127.0.0.1:9193"));
        assert_eq!(
            s.kafka
                .iter()
                .map(|k| k.listener_name.as_str())
                .collect::<Vec<_>>(),
            ["PLAINTEXT"]
        );
        let key_of = |r: Result<Settings, SettingsError>| match r {
            Err(SettingsError::Invalid { key, .. }) => key,
            other => panic!("expected an invalid key, got {other:?}"),
        };
        assert_eq!(key_of(node("4", &[])), "controller.quorum.voters");
        assert_eq!(
            key_of(node("1", &[("controller.quorum.voters", "1@h:1,1@h:2")])),
            "controller.quorum.voters"
        );
        assert_eq!(key_of(node("1", &[("cluster.id", "")])), "cluster.id");
        assert_eq!(
            key_of(node(
                "1",
                &[("listeners", "http://127.0.0.1:0,PLAINTEXT://127.0.0.1:0")]
            )),
            "listeners"
        );
        assert_eq!(
            key_of(node("1", &[("process.roles", "broker,observer")])),
            "process.roles"
        );
        assert_eq!(
            key_of(with(&[("process.roles", "broker")])),
            "controller.quorum.voters",
            "a broker alone has no quorum to join"
        );
        // A broker-only node needs no controller listener.
        assert!(node("4", &[("process.roles", "broker")]).is_ok());
    }
}
