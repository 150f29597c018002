//! `troupe-actors`: Troupe's engine. [`storage`] is the partition log as Kafka lays it
//! out on disk, with no actors in it; above it, the actors that own the logs: the
//! [`broker::Broker`] (topic registry) and one [`partition::PartitionReplica`] per
//! partition; the [`group`] coordinators and the [`consumer`] instances the broker
//! runs for REST and WebSocket clients. [`node`] starts them in order; [`supervision`]
//! is the one restart policy the stateful ones run under. Every actor reads time and
//! arms timers through the node's one [`clock::Clock`]; the ids that must not be
//! mixed up (node, partition, epochs, generation) are [`ids`].

pub mod auth;
pub mod broker;
pub mod broker_config;
pub mod cleaner;
pub mod clock;
pub mod consumer;
pub mod controller;
pub mod error;
pub mod error_kind;
pub mod file_limits;
pub mod group;
pub mod ids;
pub mod log_manager;
pub mod metadata;
pub mod node;
pub mod partition;
pub mod partitioner;
pub mod peer_client;
pub mod quotas;
pub mod replica_fetcher;
pub mod replica_manager;
pub mod requests;
pub mod storage;
pub mod supervision;
pub mod topic_config;
pub mod topic_store;

pub use error::{BrokerError, BrokerResult};
pub use error_kind::{ErrorKind, ErrorMapping};
