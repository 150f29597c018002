//! Integration tests of the storage engine against real files in temp directories.

mod common;
mod compaction;
mod crash;
mod durability;
mod edges;
mod model;
mod partition;
mod retention;
