//! `troupe-actors`: Troupe's engine. [`storage`] is the partition log as Kafka lays it
//! out on disk; the actors that own logs (broker, partition replicas, cleaner, group
//! coordinator) are built on top of it.

pub mod storage;
