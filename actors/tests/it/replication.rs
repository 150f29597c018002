//! Replication at the partition actors: a leader's high watermark waits for every
//! in-sync follower's durable copy (`acks=all`), `acks=1` only for the leader's own
//! fsync, followers copy the leader's batches byte for byte and take its high
//! watermark, and a leader that loses its leadership answers what waited for its
//! high watermark with LEADERSHIP_MOVED (unknown outcome).

use std::time::Duration;

use actix::prelude::*;
use troupe_actors::clock::Clock;
use troupe_actors::ids::{LeaderEpoch, NodeId, PartitionEpoch};
use troupe_actors::partition::*;
use troupe_actors::storage::{RecordBatch, TimestampType};
use troupe_actors::topic_config::PartitionConfig;
use troupe_actors::BrokerError;

use crate::common::record;
use crate::partition::values_from;

fn node(n: i32) -> NodeId {
    NodeId::new(n)
}

fn assignment(isr: &[i32]) -> Assignment {
    Assignment {
        replicas: vec![node(1), node(2), node(3)],
        isr: isr.iter().map(|n| node(*n)).collect(),
        partition_epoch: PartitionEpoch::default(),
        min_insync: 2,
    }
}

fn replica(dir: &std::path::Path, me: i32, role: Role, isr: &[i32]) -> Addr<PartitionReplica> {
    let limits = PartitionLimits {
        mailbox_capacity: 64,
        max_waiting_fetches: 16,
        restart_policy: troupe_actors::supervision::RestartPolicy {
            max_restarts: 3,
            window: Duration::from_secs(60),
        },
        retention_check_interval: Duration::from_secs(3600),
        tail_buffer_chunks: 8,
        tail_chunk_max_bytes: 64 * 1024,
        producer_id_expiration_ms: 86_400_000,
    };
    let settings = ReplicationSettings {
        node: node(me),
        lag_time_max: Duration::from_secs(30),
        controller: None,
    };
    PartitionReplica::new(
        "t",
        0,
        dir.join(format!("node{me}")).join("t-0"),
        PartitionConfig::default(),
        limits,
        Clock::system(),
    )
    .with_role(role)
    .with_replication(settings, assignment(isr))
    .start_supervised(&Arbiter::current())
}

fn leader_role() -> Role {
    Role::Leader {
        leader_epoch: LeaderEpoch::FIRST,
    }
}

fn follower_role() -> Role {
    Role::Follower {
        leader_epoch: LeaderEpoch::FIRST,
        leader_id: node(1),
    }
}

fn batch(value: &str) -> RecordBatch {
    RecordBatch::encode(&[record(1, "k", value)], TimestampType::CreateTime).unwrap()
}

/// A follower's fetch at `leader` from `offset`, without waiting.
async fn fetch_for(leader: &Addr<PartitionReplica>, replica: i32, offset: i64) -> FetchResult {
    leader
        .send(ReplicaFetch {
            replica: node(replica),
            offset,
            leader_epoch: Some(LeaderEpoch::FIRST),
            max_bytes: 1 << 20,
            max_wait_ms: 0,
        })
        .await
        .unwrap()
        .unwrap()
}

/// Copies what `leader` has past `follower`'s end into it: its new end.
async fn copy(
    leader: &Addr<PartitionReplica>,
    follower: &Addr<PartitionReplica>,
    id: i32,
    from: i64,
) -> i64 {
    let fetched = fetch_for(leader, id, from).await;
    follower
        .send(AppendAsFollower {
            leader_epoch: LeaderEpoch::FIRST,
            records: fetched.data.bytes.into(),
            leader_high_watermark: fetched.high_watermark,
        })
        .await
        .unwrap()
        .unwrap()
}

#[actix_rt::test]
async fn acks_all_waits_for_every_in_sync_follower_and_acks_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let leader = replica(dir.path(), 1, leader_role(), &[1, 2, 3]);
    let f2 = replica(dir.path(), 2, follower_role(), &[1, 2, 3]);
    let f3 = replica(dir.path(), 3, follower_role(), &[1, 2, 3]);
    // acks=1: answered once the leader has it on disk.
    let first = leader
        .send(Append {
            batch: batch("one"),
            acks: Acks::Leader,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.base_offset, 0);
    // acks=all: not answered while the followers have not copied it.
    let all = leader.send(Append {
        batch: batch("all"),
        acks: Acks::All,
    });
    let mut all = Box::pin(all);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut all)
            .await
            .is_err(),
        "acks=all waits for the followers"
    );
    // Nothing is committed yet: a consumer sees no record.
    assert!(values_from(&leader, 0).await.is_empty());
    // Follower 2 copies both records; its next fetch says it holds them durably.
    let end2 = copy(&leader, &f2, 2, 0).await;
    assert_eq!(end2, 2);
    fetch_for(&leader, 2, end2).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut all)
            .await
            .is_err(),
        "follower 3 is in the ISR too"
    );
    let end3 = copy(&leader, &f3, 3, 0).await;
    let told = fetch_for(&leader, 3, end3).await;
    assert_eq!(told.high_watermark, 2, "the ISR's smallest durable end");
    let answered = tokio::time::timeout(Duration::from_secs(5), all)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(answered.base_offset, 1);
    assert_eq!(values_from(&leader, 0).await, vec!["one", "all"]);
    // The followers learn the high watermark with their next copy, and hold the same bytes.
    copy(&leader, &f2, 2, end2).await;
    let s2 = f2.send(GetStatus).await.unwrap();
    let s1 = leader.send(GetStatus).await.unwrap();
    assert_eq!((s2.high_watermark, s2.log_end_offset), (2, 2));
    assert_eq!(s1.high_watermark, 2);
    // A follower takes no writes of its own.
    let refused = f2
        .send(Append {
            batch: batch("x"),
            acks: Acks::All,
        })
        .await
        .unwrap();
    assert!(
        matches!(refused, Err(BrokerError::NotLeader { .. })),
        "{refused:?}"
    );
}

#[actix_rt::test]
async fn a_leader_that_loses_its_leadership_does_not_acknowledge_what_waited() {
    let dir = tempfile::tempdir().unwrap();
    let leader = replica(dir.path(), 1, leader_role(), &[1, 2]);
    let waiting = leader.send(Append {
        batch: batch("pending"),
        acks: Acks::All,
    });
    let mut waiting = Box::pin(waiting);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut waiting)
            .await
            .is_err()
    );
    // The metadata says broker 2 leads now, in a new epoch.
    leader.do_send(SetRole {
        role: Role::Follower {
            leader_epoch: LeaderEpoch::new(1),
            leader_id: node(2),
        },
        assignment: assignment(&[2]),
    });
    let answer = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(answer, Err(BrokerError::LeadershipMoved { .. })),
        "{answer:?}"
    );
    // And it refuses followers' fetches as a leader would not.
    let fetched = leader
        .send(ReplicaFetch {
            replica: node(3),
            offset: 0,
            leader_epoch: None,
            max_bytes: 1024,
            max_wait_ms: 0,
        })
        .await
        .unwrap();
    assert!(fetched.is_err());
}
