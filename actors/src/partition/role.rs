//! What a replica is for its partition, and what each part needs to be played.
//!
//! A replica leads its partition or follows its leader, as the metadata says; what
//! each does is in [`super::replication`].

use crate::ids::{LeaderEpoch, NodeId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Takes appends and stamps each batch with `leader_epoch`; serves its
    /// followers' fetches; commits (moves the high watermark over) what every
    /// in-sync replica has durably.
    Leader { leader_epoch: LeaderEpoch },
    /// Copies the leader's batches at their offsets (`Log::append_as_follower`),
    /// truncates to the leader after an epoch change (`Log::truncate_to`, guided by
    /// the leader-epoch cache), and takes its high watermark from the leader. Never
    /// takes an append of its own: a write sent to it is NOT_LEADER_OR_FOLLOWER.
    Follower {
        leader_epoch: LeaderEpoch,
        leader_id: NodeId,
    },
}

impl Role {
    /// A new partition's role: the leader, in the first epoch.
    pub fn first_leader() -> Role {
        Role::Leader {
            leader_epoch: LeaderEpoch::FIRST,
        }
    }

    pub fn leader_epoch(&self) -> LeaderEpoch {
        match self {
            Role::Leader { leader_epoch } | Role::Follower { leader_epoch, .. } => *leader_epoch,
        }
    }
}
