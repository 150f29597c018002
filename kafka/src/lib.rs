//! Troupe's Kafka-protocol listener: existing Kafka clients (librdkafka and kcat, the
//! Java client, kafka-python) talk to the broker through it, sharing topics,
//! partitions and consumer groups with REST and WebSocket users. It is one more
//! translator over the engine's request layer, as the web crate's adapters are:
//!
//! - [`codec`] frames requests and responses (no I/O; message bodies are the
//!   `kafka-protocol` crate's, generated from Kafka's schemas);
//! - [`apis`] has one file per API key, and the one list of keys and versions served;
//! - [`consumer_protocol`] (the engine's, re-exported: in-broker members speak it to
//!   remote coordinators too) reads and writes the subscriptions and assignments
//!   consumer groups carry as bytes, for the engine's group model;
//! - [`connection`] reads frames within their limits, handles them in order and
//!   writes the responses in order;
//! - [`listener`] accepts connections, up to `max.connections`;
//! - [`metrics`] counts what Kafka clients produce and fetch, per topic.

pub mod apis;
pub mod codec;
pub mod connection;
pub use troupe_actors::group::consumer_protocol;
pub mod listener;
pub mod metrics;

use std::time::Duration;

pub use troupe_actors::auth::SaslMechanism;

pub use listener::{start, KafkaListener};

/// Kafka's security protocols: how a listener's connections are carried (TCP or
/// TLS) and whether they authenticate with SASL first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn parse(name: &str) -> Option<SecurityProtocol> {
        SecurityProtocol::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name.trim()))
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// The listener's settings (Kafka's broker keys where Kafka has them).
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// The listener's name (`PLAINTEXT`): Metadata answers list each broker's endpoint
    /// of the same name.
    pub listener_name: String,
    /// Where to bind (`host:port`; port 0 picks a free one).
    pub bind: String,
    /// The host clients are told to connect to (`advertised.listeners`); `None`: the
    /// bound address.
    pub advertised_host: Option<String>,
    pub advertised_port: Option<u16>,
    /// `socket.request.max.bytes`: the largest request frame, checked before anything
    /// of it is read.
    pub max_request_bytes: usize,
    /// `max.connections`.
    pub max_connections: usize,
    /// Requests of one connection read ahead of their responses.
    pub max_inflight_requests: usize,
    /// `connections.max.idle.ms`: a connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// A request frame must arrive whole within this once it has begun.
    pub request_timeout: Duration,
    /// Its security protocol (`listener.security.protocol.map`).
    pub security: SecurityProtocol,
    /// TLS (`SSL`, `SASL_SSL`): every connection's handshake first, within
    /// `request_timeout`.
    pub tls: Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>,
    /// `sasl.enabled.mechanisms`, on a SASL listener.
    pub sasl_mechanisms: Vec<SaslMechanism>,
    /// `sasl.server.max.receive.size`: the largest frame before a connection has
    /// authenticated (Kafka's 512 KiB), refused before any of it is read.
    pub sasl_max_receive_bytes: usize,
    /// The inter-broker listener of a multi-node cluster: its requests are other
    /// brokers', which the authorizer does not check (Kafka's brokers are super
    /// users). Bind it where only the brokers reach.
    pub inter_broker: bool,
}

impl ListenerConfig {
    /// Its security protocol speaks TLS: it needs a TLS config.
    pub fn tls_wanted(&self) -> bool {
        self.security.uses_tls()
    }
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            listener_name: "PLAINTEXT".into(),
            bind: "127.0.0.1:9092".into(),
            advertised_host: None,
            advertised_port: None,
            max_request_bytes: 100 * 1024 * 1024,
            max_connections: 1000,
            max_inflight_requests: 16,
            idle_timeout: Duration::from_secs(600),
            request_timeout: Duration::from_secs(30),
            security: SecurityProtocol::Plaintext,
            tls: None,
            sasl_mechanisms: SaslMechanism::ALL.to_vec(),
            sasl_max_receive_bytes: 512 * 1024,
            inter_broker: false,
        }
    }
}

/// Kafka's topic id (a UUID) from Troupe's: the same 16 bytes, which Troupe writes in
/// Kafka's own text form (URL-safe base64, unpadded). An id in another form is the
/// nil UUID, which Kafka's clients read as "no id".
pub fn topic_id(id: &str) -> uuid::Uuid {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id)
        .ok()
        .and_then(|bytes| uuid::Uuid::from_slice(&bytes).ok())
        .unwrap_or_default()
}
