//! What a replica is for its partition, and what each part needs to be played.
//!
//! Today every replica leads its partition (one node). The follower is here so the
//! type already says what replication will need, and so that the choices a role
//! decides (which epoch stamps appends, where the high watermark stands after a
//! restart) are made in one place, by matching on it.

use crate::ids::{LeaderEpoch, NodeId};
use crate::storage::Log;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Takes appends and stamps each batch with `leader_epoch`; commits (moves the
    /// high watermark over) what every in-sync replica has. The in-sync replicas are
    /// this one alone, so what is durable here is committed. Replication adds the
    /// followers' log end offsets here.
    Leader { leader_epoch: LeaderEpoch },
    /// Copies the leader's batches at their offsets (`Log::append_as_follower`),
    /// truncates to the leader after an epoch change (`Log::truncate_to`, guided by
    /// the leader-epoch cache), and takes its high watermark from the leader. Never
    /// takes an append of its own. No replica is a follower yet.
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

    /// Where the high watermark stands once `log` has been opened (recovered).
    pub(super) fn high_watermark_at_open(&self, log: &Log) -> i64 {
        match self {
            // The checkpoint may lag: it is written every
            // log.flush.offset.checkpoint.interval.ms and at close. But recovery keeps
            // only what is on disk here (it syncs what it scanned), and a leader whose
            // in-sync replicas are itself alone commits what it has on disk: the whole
            // recovered log, so every acknowledged record is readable after a crash.
            Role::Leader { .. } => log.log_end_offset(),
            // A follower knows only what its leader said, as of the checkpoint: records
            // past it may be ones a new leader does not have.
            Role::Follower { .. } => log.high_watermark(),
        }
    }
}
