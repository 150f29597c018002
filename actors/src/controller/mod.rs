//! The cluster's controller: the metadata quorum (Kafka's KRaft, run by openraft) and
//! the decisions the active controller takes — registering and fencing brokers,
//! placing replicas, electing leaders — each committed as [`records`] before it takes
//! effect. Pure state lives in [`state`] (records in, state out) and [`placement`]
//! (where replicas go, who leads); the rest is glue.

pub mod active;
pub mod channel;
pub mod decisions;
pub mod placement;
pub mod quorum;
pub mod records;
pub mod state;

pub use records::MetadataRecord;
pub use state::{ClusterState, MetadataError};
