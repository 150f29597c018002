//! Every key the broker reads, once: name, type and limits, default, meaning (Kafka's
//! `KafkaConfig` definitions). The set of known keys, their defaults, the check of each
//! value, `troupe serve --help` and the README's configuration table are all made from
//! this list; `config/server.toml` is the same defaults with comments, and a test keeps
//! the two equal. Keys are Kafka's names wherever Kafka has one.
//!
//! Keys that set a topic config's default (`log.segment.bytes`) take their type, limits
//! and default from the topic config table (`troupe_actors::topic_config`), so that
//! table stays the one place those are stated. Rows are in the order the README shows.

use super::config_def::{topic_default, ConfigDef, ConfigType};

const I32_MAX: i32 = i32::MAX;
const NEVER: i64 = i64::MAX;

pub const BROKER_CONFIGS: &[ConfigDef] = &[
    // Server basics
    ConfigDef {
        name: "node.id",
        kind: ConfigType::Int { min: 0, max: I32_MAX },
        default: "1",
        doc: "this broker's id",
    },
    ConfigDef {
        name: "process.roles",
        kind: ConfigType::NameList,
        default: "broker,controller",
        doc: "`broker` (serves clients, holds replicas; a broker-only node is not among the voters and needs a `CONTROLLER://` listener, where the quorum replicates the metadata log to it), `controller` (a voter of the metadata quorum; a controller-only node opens no client listener) or both",
    },
    ConfigDef {
        name: "controller.quorum.voters",
        kind: ConfigType::String,
        default: "",
        doc: "the metadata quorum: `ID@HOST:PORT` of each controller's `CONTROLLER` listener, comma-separated; empty: this node alone is the quorum (the embedded default)",
    },
    ConfigDef {
        name: "cluster.id",
        kind: ConfigType::String,
        default: "",
        doc: "the cluster's id, the same on every node (a data dir of another cluster is refused); required with more than one voter, made up by a single node on its first start when empty",
    },
    ConfigDef {
        name: "listeners",
        kind: ConfigType::Listener,
        default: "http://127.0.0.1:8082,PLAINTEXT://127.0.0.1:9092",
        doc: "where the broker listens (port 0 picks a free one): `http://` for REST, WebSocket and the dashboard (`--listen HOST:PORT`), `PLAINTEXT://` for Kafka clients (`--kafka-listen HOST:PORT`; leave it out for none), `CONTROLLER://` for the quorum and brokers' registrations, on controllers of a multi-node cluster (`--controller-listen HOST:PORT`; Kafka's default port is 9093)",
    },
    ConfigDef {
        name: "advertised.listeners",
        kind: ConfigType::Listener,
        default: "",
        doc: "where Kafka clients are told to connect, per listener name (`PLAINTEXT://HOST:PORT`); a listener not named here advertises the address it is bound to",
    },
    ConfigDef {
        name: "log.dirs",
        kind: ConfigType::String,
        default: "./data",
        doc: "partitions and metadata; `--data-dir DIR`",
    },
    ConfigDef {
        name: "num.partitions",
        kind: ConfigType::Int {
            min: 1,
            max: 1_000_000,
        },
        default: "1",
        doc: "partitions of a topic created without a count",
    },
    ConfigDef {
        name: "default.replication.factor",
        kind: ConfigType::Int {
            min: 1,
            max: i16::MAX as i32,
        },
        default: "1",
        doc: "replication factor of a topic created without one",
    },
    ConfigDef {
        name: "offsets.topic.replication.factor",
        kind: ConfigType::Int {
            min: 1,
            max: i16::MAX as i32,
        },
        default: "1",
        doc: "replication factor of `__consumer_offsets` (Kafka's default is 3; 1 lets a single node start)",
    },
    ConfigDef {
        name: "broker.session.timeout.ms",
        kind: ConfigType::Int {
            min: 100,
            max: I32_MAX,
        },
        default: "9000",
        doc: "a broker that has not heartbeated to the active controller for this long is fenced and its leaderships move",
    },
    ConfigDef {
        name: "broker.heartbeat.interval.ms",
        kind: ConfigType::Int {
            min: 10,
            max: I32_MAX,
        },
        default: "2000",
        doc: "how often a broker heartbeats to the active controller",
    },
    ConfigDef {
        name: "auto.leader.rebalance.enable",
        kind: ConfigType::Bool,
        default: "true",
        doc: "move leaderships back to each partition's preferred (first) replica once it is back in sync",
    },
    ConfigDef {
        name: "leader.imbalance.check.interval.seconds",
        kind: ConfigType::Int {
            min: 1,
            max: 1_000_000,
        },
        default: "300",
        doc: "how often the active controller looks for leaderships to move back",
    },
    ConfigDef {
        name: "replica.lag.time.max.ms",
        kind: ConfigType::Int {
            min: 100,
            max: I32_MAX,
        },
        default: "30000",
        doc: "a follower that has not caught up with its leader's log end for this long is taken out of the ISR (and put back once it reaches the high watermark)",
    },
    ConfigDef {
        name: "replica.fetch.wait.max.ms",
        kind: ConfigType::Int {
            min: 0,
            max: I32_MAX,
        },
        default: "500",
        doc: "how long a follower's fetch waits at the leader for new records when it is caught up",
    },
    ConfigDef {
        name: "replica.fetch.max.bytes",
        kind: ConfigType::Int {
            min: 1024,
            max: I32_MAX,
        },
        default: "1048576",
        doc: "bytes a follower fetches per partition in one request (at least one batch, however large)",
    },
    ConfigDef {
        name: "replica.fetch.response.max.bytes",
        kind: ConfigType::Int {
            min: 1024,
            max: I32_MAX,
        },
        default: "10485760",
        doc: "bytes a follower fetches in one request, over all its partitions on that leader",
    },
    ConfigDef {
        name: "replica.fetch.backoff.ms",
        kind: ConfigType::Int {
            min: 0,
            max: I32_MAX,
        },
        default: "1000",
        doc: "how long a follower waits before fetching again a partition whose fetch failed",
    },
    ConfigDef {
        name: "ssl.keystore.location",
        kind: ConfigType::String,
        default: "",
        doc: "PEM file with the private key and certificate chain of the TLS listeners (`https://`, `SSL://`); Kafka's PEM key store",
    },
    ConfigDef {
        name: "ssl.truststore.location",
        kind: ConfigType::String,
        default: "",
        doc: "PEM file with the CA certificates client certificates must chain to (for `ssl.client.auth`)",
    },
    ConfigDef {
        name: "ssl.client.auth",
        kind: ConfigType::String,
        default: "none",
        doc: "client certificates on the TLS listeners: `none`, `requested` (checked when sent) or `required` (mutual TLS)",
    },
    ConfigDef {
        name: "authentication.method",
        kind: ConfigType::String,
        default: "NONE",
        doc: "authentication on the HTTP listener (REST, WebSocket, dashboard, `/metrics`; not `/health`), as Confluent REST Proxy's: `NONE`, or `BASIC` (HTTP Basic with a user's name and password, checked against the users' SCRAM credentials)",
    },
    ConfigDef {
        name: "super.users",
        kind: ConfigType::String,
        default: "",
        doc: "principals allowed everything, `;`-separated as Kafka's (`User:admin;User:ops`); without an authorizer they are who manage users and ACLs on a broker with authentication (empty: any authenticated user)",
    },
    ConfigDef {
        name: "authorizer.class.name",
        kind: ConfigType::String,
        default: "",
        doc: "empty: no authorization (anyone may do anything their listener lets them); `org.apache.kafka.metadata.authorizer.StandardAuthorizer` (or Kafka's older `kafka.security.authorizer.AclAuthorizer`, or `acl`): every request on every listener is checked against the ACLs",
    },
    ConfigDef {
        name: "allow.everyone.if.no.acl.found",
        kind: ConfigType::Bool,
        default: "false",
        doc: "with an authorizer, a resource no ACL covers is open to everyone (Kafka's key); false: only super users may use it",
    },
    ConfigDef {
        name: "listener.security.protocol.map",
        kind: ConfigType::String,
        default: "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
        doc: "each Kafka listener's security protocol, `NAME:PROTOCOL` comma-separated: `PLAINTEXT`, `SSL` (TLS), `SASL_PLAINTEXT` or `SASL_SSL` (SASL authentication, over TCP or TLS); `CONTROLLER` is `PLAINTEXT` or `SSL`, and a multi-node cluster's inter-broker listener too",
    },
    ConfigDef {
        name: "sasl.enabled.mechanisms",
        kind: ConfigType::String,
        default: "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN",
        doc: "the SASL mechanisms the SASL listeners offer: `SCRAM-SHA-256`, `SCRAM-SHA-512`, `PLAIN` (checked against the users' SCRAM credentials)",
    },
    ConfigDef {
        name: "sasl.server.max.receive.size",
        kind: ConfigType::Int {
            min: 1024,
            max: I32_MAX,
        },
        default: "524288",
        doc: "the largest request frame a SASL listener reads before the connection has authenticated; a larger one closes it",
    },
    ConfigDef {
        name: "inter.broker.listener.name",
        kind: ConfigType::String,
        default: "PLAINTEXT",
        doc: "the Kafka listener brokers use to reach each other (forwarded requests, and replication)",
    },
    ConfigDef {
        name: "controller.listener.names",
        kind: ConfigType::String,
        default: "CONTROLLER",
        doc: "the listener controllers talk on (only `CONTROLLER` is served)",
    },
    ConfigDef {
        name: "max.partitions.per.topic",
        kind: ConfigType::Int {
            min: 1,
            max: 1_000_000,
        },
        default: "10000",
        doc: "bound on a topic's partition count",
    },
    ConfigDef {
        name: "reserved.file.descriptors",
        kind: ConfigType::Int {
            min: 0,
            max: 1 << 30,
        },
        default: "1024",
        doc: "open files kept for connections, threads and the rest; what remains of `RLIMIT_NOFILE` bounds the partition count at 8 per partition (see [File descriptors](#file-descriptors))",
    },
    // Segments and indexes
    topic_default(
        "log.segment.bytes",
        "segment.bytes",
        "topic default of `segment.bytes`",
    ),
    topic_default("log.roll.ms", "segment.ms", "topic default of `segment.ms`"),
    topic_default(
        "log.index.size.max.bytes",
        "segment.index.bytes",
        "topic default of `segment.index.bytes`",
    ),
    topic_default(
        "log.index.interval.bytes",
        "index.interval.bytes",
        "topic default of `index.interval.bytes`",
    ),
    topic_default(
        "message.max.bytes",
        "max.message.bytes",
        "topic default of `max.message.bytes` (1 MiB + 12 bytes of log overhead, as Kafka)",
    ),
    topic_default(
        "log.message.timestamp.type",
        "message.timestamp.type",
        "topic default of `message.timestamp.type`",
    ),
    // Flush policy
    topic_default(
        "log.flush.interval.messages",
        "flush.messages",
        "topic default of `flush.messages` (Kafka's is never: 9223372036854775807)",
    ),
    topic_default(
        "log.flush.interval.ms",
        "flush.ms",
        "topic default of `flush.ms` (never)",
    ),
    ConfigDef {
        name: "log.flush.offset.checkpoint.interval.ms",
        kind: ConfigType::Long { min: 1, max: NEVER },
        default: "60000",
        doc: "how often recovery points are persisted",
    },
    // Retention and compaction
    topic_default(
        "log.cleanup.policy",
        "cleanup.policy",
        "topic default of `cleanup.policy`",
    ),
    topic_default(
        "log.retention.ms",
        "retention.ms",
        "topic default of `retention.ms` (-1 = forever)",
    ),
    topic_default(
        "log.retention.bytes",
        "retention.bytes",
        "topic default of `retention.bytes` (-1 = unlimited)",
    ),
    ConfigDef {
        name: "log.retention.check.interval.ms",
        kind: ConfigType::Long { min: 1, max: NEVER },
        default: "300000",
        doc: "how often each partition applies retention",
    },
    topic_default(
        "log.segment.delete.delay.ms",
        "file.delete.delay.ms",
        "topic default of `file.delete.delay.ms`",
    ),
    ConfigDef {
        name: "log.cleaner.enable",
        kind: ConfigType::Bool,
        default: "true",
        doc: "run the log cleaner",
    },
    ConfigDef {
        name: "log.cleaner.threads",
        kind: ConfigType::Int { min: 1, max: 64 },
        default: "1",
        doc: "cleaner worker threads",
    },
    ConfigDef {
        name: "log.cleaner.dedupe.buffer.size",
        kind: ConfigType::Long {
            min: 1024,
            max: 1 << 40,
        },
        default: "134217728",
        doc: "bytes for one pass's key map (24 per key)",
    },
    ConfigDef {
        name: "log.cleaner.backoff.ms",
        kind: ConfigType::Long { min: 1, max: NEVER },
        default: "15000",
        doc: "how often the cleaner looks for a dirty enough log",
    },
    topic_default(
        "log.cleaner.delete.retention.ms",
        "delete.retention.ms",
        "topic default of `delete.retention.ms`",
    ),
    topic_default(
        "log.cleaner.min.cleanable.ratio",
        "min.cleanable.dirty.ratio",
        "topic default of `min.cleanable.dirty.ratio`",
    ),
    topic_default(
        "log.cleaner.min.compaction.lag.ms",
        "min.compaction.lag.ms",
        "topic default of `min.compaction.lag.ms`",
    ),
    topic_default(
        "log.cleaner.max.compaction.lag.ms",
        "max.compaction.lag.ms",
        "topic default of `max.compaction.lag.ms`",
    ),
    topic_default(
        "min.insync.replicas",
        "min.insync.replicas",
        "topic default of `min.insync.replicas`: an acks=all write to a partition with fewer in-sync replicas is refused (NOT_ENOUGH_REPLICAS; REST 503 / 50301) before anything is appended",
    ),
    topic_default(
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
        "topic default of `unclean.leader.election.enable`: false keeps a partition whose in-sync replicas are all down offline until one returns; true lets an out-of-sync replica lead, losing what it lacks",
    ),
    topic_default(
        "compression.type",
        "compression.type",
        "topic default of `compression.type`",
    ),
    ConfigDef {
        name: "producer.id.expiration.ms",
        kind: ConfigType::Int { min: 1, max: I32_MAX },
        default: "86400000",
        doc: "an idempotent producer whose newest batch on a partition is this old is forgotten there (checked every log.retention.check.interval.ms); it may write again, from any sequence",
    },
    // HTTP
    ConfigDef {
        name: "http.workers",
        kind: ConfigType::Int { min: 0, max: 1024 },
        default: "0",
        doc: "HTTP worker threads (0 = one per core)",
    },
    ConfigDef {
        name: "http.max.request.bytes",
        kind: ConfigType::Long {
            min: 1024,
            max: 1 << 31,
        },
        default: "33554432",
        doc: "largest request body (for a streamed v3 produce: largest record in the stream)",
    },
    ConfigDef {
        name: "http.request.body.timeout.ms",
        kind: ConfigType::Int {
            min: 100,
            max: 3_600_000,
        },
        default: "30000",
        doc: "a body of known length must arrive whole within this; a chunked one may not go silent longer (408 / 40801)",
    },
    ConfigDef {
        name: "http.allowed.hosts",
        kind: ConfigType::NameList,
        default: "",
        doc: "host names the broker answers to besides IP literals, `localhost` and the listener's host, comma-separated; `*` turns the Host check off",
    },
    ConfigDef {
        name: "http.cors.allowed.origins",
        kind: ConfigType::NameList,
        default: "",
        doc: "origins whose pages may call the REST API from a browser (CORS: answered preflights and `Access-Control-Allow-Origin`, credentials allowed; they may change things too), comma-separated; `*` any; empty: CORS stays closed",
    },
    ConfigDef {
        name: "http.allowed.origins",
        kind: ConfigType::NameList,
        default: "",
        doc: "browser origins allowed to change things (every method but GET and HEAD) besides the broker's own, comma-separated; `*` any",
    },
    ConfigDef {
        name: "shutdown.timeout.ms",
        kind: ConfigType::Int {
            min: 0,
            max: 3_600_000,
        },
        default: "5000",
        doc: "graceful stop: how long open requests may finish",
    },
    // Kafka listener
    ConfigDef {
        name: "socket.request.max.bytes",
        kind: ConfigType::Int {
            min: 1024,
            max: I32_MAX,
        },
        default: "104857600",
        doc: "largest Kafka request frame; a larger declared length closes the connection before any of it is read",
    },
    ConfigDef {
        name: "max.connections",
        kind: ConfigType::Int {
            min: 1,
            max: 1_000_000,
        },
        default: "1000",
        doc: "open Kafka connections at most; one more is closed as it arrives",
    },
    ConfigDef {
        name: "queued.max.requests.per.connection",
        kind: ConfigType::Int { min: 1, max: 1024 },
        default: "16",
        doc: "requests of one Kafka connection read ahead of their responses (a client that pipelines more waits)",
    },
    ConfigDef {
        name: "connections.max.idle.ms",
        kind: ConfigType::Long {
            min: 1000,
            max: NEVER,
        },
        default: "600000",
        doc: "a Kafka connection with no request for this long is closed",
    },
    ConfigDef {
        name: "socket.request.timeout.ms",
        kind: ConfigType::Int {
            min: 100,
            max: 3_600_000,
        },
        default: "30000",
        doc: "a Kafka request frame must arrive whole within this once it has begun, or the connection is closed",
    },
    // Consumers
    ConfigDef {
        name: "fetch.max.wait.ms",
        kind: ConfigType::Int {
            min: 0,
            max: 3_600_000,
        },
        default: "30000",
        doc: "longest long-poll of a read",
    },
    ConfigDef {
        name: "fetch.max.bytes",
        kind: ConfigType::Int {
            min: 1024,
            max: 1 << 30,
        },
        default: "1048576",
        doc: "largest read response, and its default size",
    },
    // Consumer groups
    ConfigDef {
        name: "offsets.topic.num.partitions",
        kind: ConfigType::Int {
            min: 1,
            max: 10_000,
        },
        default: "50",
        doc: "partitions of `__consumer_offsets` (fixed once it exists)",
    },
    ConfigDef {
        name: "offsets.topic.segment.bytes",
        kind: ConfigType::Int {
            min: 14,
            max: I32_MAX,
        },
        default: "104857600",
        doc: "its segment size (it is compacted)",
    },
    ConfigDef {
        name: "offset.metadata.max.bytes",
        kind: ConfigType::Int {
            min: 0,
            max: 16_384,
        },
        default: "4096",
        doc: "longest metadata string of a committed offset",
    },
    ConfigDef {
        name: "group.min.session.timeout.ms",
        kind: ConfigType::Int { min: 1, max: I32_MAX },
        default: "6000",
        doc: "shortest session timeout a member may ask for",
    },
    ConfigDef {
        name: "group.max.session.timeout.ms",
        kind: ConfigType::Int { min: 1, max: I32_MAX },
        default: "1800000",
        doc: "longest session timeout a member may ask for",
    },
    ConfigDef {
        name: "group.max.size",
        kind: ConfigType::Int {
            min: 1,
            max: 1_000_000,
        },
        default: "1000",
        doc: "members per group",
    },
    ConfigDef {
        name: "consumer.instance.timeout.ms",
        kind: ConfigType::Long { min: 1, max: NEVER },
        default: "300000",
        doc: "a REST consumer instance unused this long is closed and leaves its group",
    },
    ConfigDef {
        name: "consumer.instances.max",
        kind: ConfigType::Int {
            min: 1,
            max: 1_000_000,
        },
        default: "1000",
        doc: "REST consumer instances open at once",
    },
    ConfigDef {
        name: "consumer.session.timeout.ms",
        kind: ConfigType::Int { min: 1, max: I32_MAX },
        default: "45000",
        doc: "session timeout of a REST consumer instance (also its rebalance timeout)",
    },
    ConfigDef {
        name: "consumer.heartbeat.interval.ms",
        kind: ConfigType::Int { min: 1, max: I32_MAX },
        default: "3000",
        doc: "how often an instance heartbeats",
    },
    ConfigDef {
        name: "consumer.request.timeout.ms",
        kind: ConfigType::Int {
            min: 0,
            max: 3_600_000,
        },
        default: "1000",
        doc: "a records request's wait when it gives no `timeout`",
    },
    // Partition actors
    ConfigDef {
        name: "partition.threads",
        kind: ConfigType::Int { min: 1, max: 256 },
        default: "2",
        doc: "threads the partition actors run on",
    },
    ConfigDef {
        name: "partition.mailbox.capacity",
        kind: ConfigType::Int {
            min: 1,
            max: 1 << 20,
        },
        default: "1024",
        doc: "messages queued per partition before senders wait",
    },
    ConfigDef {
        name: "partition.max.waiting.fetches",
        kind: ConfigType::Int {
            min: 1,
            max: 1 << 20,
        },
        default: "1024",
        doc: "reads parked on one partition",
    },
    ConfigDef {
        name: "partition.max.restarts",
        kind: ConfigType::Int { min: 0, max: 1000 },
        default: "5",
        doc: "restarts tolerated per window before a partition goes offline (the budget of every supervised actor: coordinators, group manager, consumer registry, log cleaner)",
    },
    ConfigDef {
        name: "partition.restart.window.ms",
        kind: ConfigType::Long { min: 1, max: NEVER },
        default: "60000",
        doc: "that window",
    },
    ConfigDef {
        name: "partition.tail.buffer.chunks",
        kind: ConfigType::Int {
            min: 1,
            max: 1 << 16,
        },
        default: "128",
        doc: "live tail: recently committed chunks a partition keeps for its WebSocket subscribers (one further behind reads the log)",
    },
    ConfigDef {
        name: "partition.tail.chunk.max.bytes",
        kind: ConfigType::Int {
            min: 1024,
            max: 1 << 30,
        },
        default: "262144",
        doc: "largest chunk of the live tail (the ring holds at most chunks x this)",
    },
    // WebSocket
    ConfigDef {
        name: "websocket.max.connections",
        kind: ConfigType::Int {
            min: 1,
            max: 1_000_000,
        },
        default: "1024",
        doc: "open WebSocket connections (more: HTTP 429)",
    },
    ConfigDef {
        name: "websocket.max.subscriptions.per.connection",
        kind: ConfigType::Int {
            min: 1,
            max: 100_000,
        },
        default: "64",
        doc: "subscriptions one connection may hold",
    },
    ConfigDef {
        name: "websocket.max.frame.bytes",
        kind: ConfigType::Int {
            min: 1024,
            max: 1 << 30,
        },
        default: "1048576",
        doc: "largest frame a client may send (more: close 1009)",
    },
    ConfigDef {
        name: "websocket.send.buffer.bytes",
        kind: ConfigType::Long {
            min: 1024,
            max: 1 << 31,
        },
        default: "4194304",
        doc: "bytes queued for one connection (until the socket takes them) before its subscriptions pause; catch-up reads for it stay within what is left",
    },
    ConfigDef {
        name: "websocket.records.frame.bytes",
        kind: ConfigType::Int {
            min: 1024,
            max: 1 << 30,
        },
        default: "65536",
        doc: "about how many bytes of records one records frame carries",
    },
    ConfigDef {
        name: "websocket.slow.client.timeout.ms",
        kind: ConfigType::Int {
            min: 1,
            max: 3_600_000,
        },
        default: "30000",
        doc: "a client that drains nothing from a full buffer this long is dropped (close 4008)",
    },
    ConfigDef {
        name: "websocket.ping.interval.ms",
        kind: ConfigType::Int {
            min: 10,
            max: 3_600_000,
        },
        default: "15000",
        doc: "how often the broker pings",
    },
    ConfigDef {
        name: "websocket.idle.timeout.ms",
        kind: ConfigType::Int {
            min: 10,
            max: 86_400_000,
        },
        default: "60000",
        doc: "a connection that sends nothing (not even a pong) this long is closed (4001)",
    },
    ConfigDef {
        name: "websocket.allowed.origins",
        kind: ConfigType::NameList,
        default: "",
        doc: "browser origins allowed besides the broker's own, comma-separated; `*` any",
    },
];

/// The definition of `name`, if the broker reads such a key.
pub fn broker_config(name: &str) -> Option<&'static ConfigDef> {
    BROKER_CONFIGS.iter().find(|d| d.name == name)
}
