//! Integration tests of the storage engine against real files in temp directories,
//! and of the actors above it (partitions, group coordinators) on a real node, and of
//! the restart policy every stateful actor runs under.

mod allocations;
mod common;
mod compaction;
mod compression;
mod controller;
mod corruption;
mod crash;
mod decoders;
mod delete_records;
mod disk_full;
mod durability;
mod edges;
mod follower;
mod groups;
mod idempotence;
mod model;
mod partition;
mod replication;
mod retention;
mod supervision;
