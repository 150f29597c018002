//! Integration tests of the real `troupe` binary: each test starts brokers as child
//! processes on ephemeral ports with temp data directories and drives them over HTTP,
//! through the CLI, and with real Kafka clients.

mod acls;
mod auth;
mod authz;
mod broker;
mod browser;
mod cli;
mod cluster;
mod corruption;
mod dashboard;
mod disk_full;
mod errors;
mod fault_proxy;
mod file_limits;
mod groups;
mod kafka;
mod kafka_admin;
mod kafka_clients;
mod kafka_groups;
mod mounts;
mod openapi;
mod produce;
mod quickstart;
mod quotas;
mod replication;
mod restart;
mod retention;
mod tidy;
mod tls;
mod topic_delete;
mod v2;
mod v3;
mod ws;
