//! Typed ids: the 32-bit numbers of Kafka's protocol that mean different things —
//! a broker (node), a partition of a topic, a partition's leader epoch and partition
//! epoch, a consumer group's generation — each its own type, so that passing a
//! partition where a broker is meant, or an epoch where a generation is, does not
//! compile.
//!
//! They are typed where such a mix-up would be a bug and values travel far: the
//! metadata image (leader, replicas, ISR, epochs), a partition's `Role`, the broker's
//! node id and manual replica assignments, and group generations from the
//! coordinator to its members and records. They stay plain numbers where they meet
//! the outside, which owns its own format: storage (the leader-epoch cache and
//! checkpoints take `i32`), the wire encoding of `__consumer_offsets` records, and the
//! web layer's JSON (they serialize as bare numbers, and print as them, so messages
//! and documents read as before). Offsets stay `i64`: they run through storage, every
//! read and every protocol, and what they could be confused with (sizes, timestamps)
//! is named by unit already (see STYLE.md).

use serde::{Deserialize, Serialize};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(i32);

        impl $name {
            pub const fn new(value: i32) -> Self {
                $name(value)
            }

            /// The number, for storage and wire formats.
            pub const fn get(self) -> i32 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        /// As the bare number: messages that list ids read as they always did.
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(
    /// A broker of the cluster (Kafka's `node.id`, `broker.id`).
    NodeId
);

id!(
    /// A partition's number within its topic, from 0.
    PartitionId
);

id!(
    /// Which leadership of a partition: raised each time its leader changes, stamped
    /// on every batch the leader appends.
    LeaderEpoch
);

id!(
    /// Which version of a partition's leader, replicas and ISR: raised on each change.
    PartitionEpoch
);

id!(
    /// Which generation of a consumer group: raised by each completed rebalance; a
    /// member's heartbeats, syncs and commits name the one they belong to.
    GenerationId
);

impl GenerationId {
    /// What a client holds before it has joined (Kafka's `NO_GENERATION`).
    pub const NONE: GenerationId = GenerationId(-1);
    /// A group's before its first rebalance completes (Kafka's simple groups stay
    /// at it: their members commit without joining).
    pub const INITIAL: GenerationId = GenerationId(0);

    /// The generation a completed rebalance starts.
    pub const fn next(self) -> GenerationId {
        GenerationId(self.0 + 1)
    }
}

impl LeaderEpoch {
    /// A partition's first leadership.
    pub const FIRST: LeaderEpoch = LeaderEpoch(0);
    /// A committed offset that names no leader epoch (Kafka writes -1).
    pub const UNKNOWN: LeaderEpoch = LeaderEpoch(-1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_serialize_as_their_numbers() {
        let node = NodeId::new(3);
        assert_eq!(format!("{node} {node:?} {:?}", vec![node]), "3 3 [3]");
        assert_eq!(serde_json::to_string(&node).unwrap(), "3");
        let parsed: Vec<PartitionId> = serde_json::from_str("[0, 1]").unwrap();
        assert_eq!(parsed, vec![PartitionId::new(0), PartitionId::new(1)]);
        assert_eq!(GenerationId::NONE.next().next(), GenerationId::new(1));
    }
}
