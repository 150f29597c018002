//! The one restart policy, kind by kind: each stateful actor is made to panic in a
//! handler (`PanicInHandler`, outside any guard of its own, as a bug would) and must
//! come back on the same address with its state recovered; a second panic within the
//! window spends a budget of one restart and must leave it down, answering with why.
//! A consumer instance is temporary: it is not restarted, and the registry forgets it.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use actix::prelude::*;
use troupe_actors::broker::{CreateTopic, DeleteTopic, GetClusterInfo, NewTopic};
use troupe_actors::cleaner::{CleanerStats, GetCleanerStats};
use troupe_actors::consumer::messages::{
    ConsumerError, CreateInstance, FindInstance, GetInstanceInfo, InstanceSettings, ResetPolicy,
};
use troupe_actors::group::*;
use troupe_actors::node::Node;
use troupe_actors::partition::{Fetch, GetStatus, PartitionReplica};
use troupe_actors::supervision::{totals, ActorKind, PanicInHandler};
use troupe_actors::BrokerError;

use crate::groups::{config, coordinator, join, node_from, two_members_and_a_commit};
use crate::partition::{append, start, values_from};

/// A node whose actors may restart once per window.
async fn node(dir: &std::path::Path) -> Node {
    let mut config = config(dir);
    config.partition_max_restarts = 1;
    node_from(config, 2).await
}

/// Polls `check` until it gives a value, for at most 10 s.
pub(crate) async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn counted(kind: ActorKind) -> (u64, u64, u64) {
    let t = totals()
        .into_iter()
        .find(|t| t.kind == kind)
        .expect("every kind is counted");
    (t.panics, t.restarts, t.gave_up)
}

/// Counts only grow, and other tests in this binary add to them too: `at least`.
fn assert_counted_at_least(kind: ActorKind, before: (u64, u64, u64), more: (u64, u64, u64)) {
    let now = counted(kind);
    assert!(
        now.0 >= before.0 + more.0 && now.1 >= before.1 + more.1 && now.2 >= before.2 + more.2,
        "{kind}: {before:?} then {now:?}, expected at least {more:?} more"
    );
}

#[actix_rt::test]
async fn a_partition_panicking_in_a_handler_comes_back_with_its_acknowledged_records() {
    let dir = tempfile::tempdir().unwrap();
    let before = counted(ActorKind::Partition);
    let addr = start(dir.path(), 1);
    for i in 0..5 {
        append(&addr, &format!("v{i}")).await.unwrap();
    }
    // A read parked at the end must be answered, not left hanging.
    let parked = addr.send(Fetch {
        offset: 5,
        max_bytes: 1024,
        max_wait_ms: 30_000,
    });
    addr.do_send(PanicInHandler);
    let answered = tokio::time::timeout(Duration::from_secs(10), parked)
        .await
        .expect("the parked read is answered at the restart")
        .unwrap();
    assert!(
        matches!(answered, Err(BrokerError::PartitionRestarting { .. })),
        "{answered:?}"
    );
    let values = values_from(&addr, 0).await;
    assert_eq!(values, (0..5).map(|i| format!("v{i}")).collect::<Vec<_>>());
    let status = addr.send(GetStatus).await.unwrap();
    assert!(status.online);
    assert_eq!(status.restarts, 1);
    assert_eq!(append(&addr, "after").await.unwrap().base_offset, 5);

    addr.do_send(PanicInHandler);
    let status = addr.send(GetStatus).await.unwrap();
    assert!(!status.online);
    let reason = status.offline_reason.unwrap_or_default();
    assert!(reason.contains("restarts within"), "{reason}");
    assert!(reason.contains("injected panic"), "{reason}");
    assert!(matches!(
        append(&addr, "refused").await,
        Err(BrokerError::PartitionOffline { .. })
    ));
    assert_counted_at_least(ActorKind::Partition, before, (2, 1, 1));
    // Still on disk for the next start.
    drop(addr);
    let again: Addr<PartitionReplica> = start(dir.path(), 1);
    assert_eq!(values_from(&again, 0).await.len(), 6);
}

#[actix_rt::test]
async fn a_coordinator_panicking_in_a_handler_comes_back_with_its_group_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let before = counted(ActorKind::GroupCoordinator);
    let node = node(dir.path()).await;
    let c = coordinator(&node, "g").await;
    let (group, mine) = two_members_and_a_commit(&c).await;

    c.do_send(PanicInHandler);
    // The restart replays __consumer_offsets before the mailbox is served again.
    let restored = c.send(DescribeGroup).await.unwrap();
    assert_eq!(restored.offsets[&mine].offset, 42);
    assert_eq!(restored.generation_id, group.generation_id);
    let ids = |g: &GroupDescription| {
        let mut ids: Vec<String> = g.members.iter().map(|m| m.member_id.clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&restored), ids(&group));
    let fetched = c.send(FetchOffsets { partitions: None }).await.unwrap();
    assert_eq!(fetched.unwrap()[&mine].offset, 42);

    c.do_send(PanicInHandler);
    let refused = c.send(join(None, &["range"])).await.unwrap();
    let Err(GroupError::CoordinatorNotAvailable(reason)) = refused else {
        panic!("a coordinator over its budget refuses joins: {refused:?}");
    };
    assert!(reason.contains("restarts within"), "{reason}");
    // Down says so, rather than "nothing committed" (which would reset consumers).
    let fetched = c.send(FetchOffsets { partitions: None }).await.unwrap();
    assert!(
        matches!(fetched, Err(GroupError::CoordinatorNotAvailable(_))),
        "{fetched:?}"
    );
    // Lookups hand out the same, answering, address.
    assert_eq!(coordinator(&node, "g").await, c);
    assert_counted_at_least(ActorKind::GroupCoordinator, before, (2, 1, 1));
    node.shutdown().await;
}

#[actix_rt::test]
async fn the_group_manager_comes_back_with_its_coordinators() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path()).await;
    let c = coordinator(&node, "g").await;
    let groups = &node.engine.groups;

    let lookup = || FindCoordinator {
        group_id: "g".into(),
        create: false,
    };
    groups.do_send(PanicInHandler);
    let found = groups.send(lookup()).await.unwrap().unwrap();
    assert_eq!(
        found, c,
        "the same coordinator, not a second one for the group"
    );

    groups.do_send(PanicInHandler);
    let refused = groups.send(lookup()).await.unwrap();
    let Err(GroupError::CoordinatorNotAvailable(reason)) = refused else {
        panic!("a manager over its budget says why: {refused:?}");
    };
    assert!(reason.contains("group manager is down"), "{reason}");
    assert!(reason.contains("restarts within"), "{reason}");
    // Its coordinators live on.
    assert!(c.send(DescribeGroup).await.is_ok());
    node.shutdown().await;
}

fn new_topic(name: &str) -> CreateTopic {
    CreateTopic(NewTopic {
        name: name.into(),
        partitions: Some(2),
        ..Default::default()
    })
}

#[actix_rt::test]
async fn the_broker_comes_back_from_the_committed_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let before = counted(ActorKind::Broker);
    let node = node(dir.path()).await;
    let broker = &node.engine.broker;
    broker.send(new_topic("r")).await.unwrap().unwrap();
    broker.send(new_topic("u")).await.unwrap().unwrap();
    let partition = |topic: &str, p: i32| {
        node.engine
            .route(topic)
            .unwrap()
            .partition(p)
            .unwrap()
            .clone()
    };
    append(&partition("r", 0), "kept").await.unwrap();

    // A restart applies the committed metadata again: the same replicas serve on.
    broker.do_send(PanicInHandler);
    let r0 = eventually("the broker to answer again", || {
        let answer = broker.send(GetClusterInfo);
        async move { answer.await.ok() }
    })
    .await;
    assert_eq!(r0.live_brokers.len(), 1);
    assert_eq!(
        values_from(&partition("r", 0), 0).await,
        vec!["kept".to_string()]
    );
    assert_eq!(
        append(&partition("r", 0), "after")
            .await
            .unwrap()
            .base_offset,
        1
    );

    // A delete is committed, then applied: the topic is gone from routing, and its
    // directories are moved away to be removed.
    broker
        .send(DeleteTopic { name: "r".into() })
        .await
        .unwrap()
        .unwrap();
    assert!(node.engine.route("r").is_err());
    eventually("r's directories to be moved away", || {
        let left = dir.path().join("r-0").exists() || dir.path().join("r-1").exists();
        async move { (!left).then_some(()) }
    })
    .await;

    // Over its budget it refuses changes, saying why; routing is a read and goes on.
    broker.do_send(PanicInHandler);
    let refused = broker.send(new_topic("v")).await.unwrap();
    let Err(BrokerError::Unavailable(reason)) = refused else {
        panic!("a broker over its budget says why: {refused:?}");
    };
    assert!(reason.contains("topic registry is down"), "{reason}");
    assert!(reason.contains("restarts within"), "{reason}");
    assert_eq!(
        append(&partition("u", 1), "still")
            .await
            .unwrap()
            .base_offset,
        0
    );
    assert!(node.engine.route("v").is_err());
    assert_counted_at_least(ActorKind::Broker, before, (2, 1, 1));
    node.shutdown().await;
}

fn create(name: &str) -> CreateInstance {
    CreateInstance {
        group_id: "g".into(),
        name: name.into(),
        settings: InstanceSettings {
            format: "json".into(),
            auto_offset_reset: ResetPolicy::Earliest,
            auto_commit: false,
            client_id: "test".into(),
        },
    }
}

fn find(name: &str) -> FindInstance {
    FindInstance {
        group_id: "g".into(),
        name: name.into(),
    }
}

#[actix_rt::test]
async fn the_consumer_registry_comes_back_with_its_instances() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path()).await;
    let registry = &node.engine.consumers;
    let instance = registry.send(create("i")).await.unwrap().unwrap();

    registry.do_send(PanicInHandler);
    let found = registry.send(find("i")).await.unwrap().unwrap();
    assert_eq!(found, instance);

    registry.do_send(PanicInHandler);
    let refused = registry.send(create("j")).await.unwrap();
    let Err(ConsumerError::Broker(BrokerError::Unavailable(reason))) = refused else {
        panic!("a registry over its budget says why: {refused:?}");
    };
    assert!(reason.contains("consumer registry is down"), "{reason}");
    node.shutdown().await;
}

#[actix_rt::test]
async fn a_consumer_instance_that_panics_is_ended_and_forgotten_not_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let before = counted(ActorKind::ConsumerInstance);
    let node = node(dir.path()).await;
    let registry = &node.engine.consumers;
    let instance = registry.send(create("i")).await.unwrap().unwrap();

    instance.do_send(PanicInHandler);
    assert!(
        instance.send(GetInstanceInfo).await.is_err(),
        "its address is dead"
    );
    assert!(!instance.connected());
    let lookup = registry.send(find("i")).await.unwrap();
    assert!(
        matches!(lookup, Err(ConsumerError::UnknownInstance { .. })),
        "the registry hands out no dead address"
    );
    // Its client re-creates it under the same name.
    let again = registry.send(create("i")).await.unwrap().unwrap();
    assert_ne!(again, instance);
    assert!(again.send(GetInstanceInfo).await.is_ok());
    assert_counted_at_least(ActorKind::ConsumerInstance, before, (1, 0, 0));
    node.shutdown().await;
}

async fn cleaner_stats(node: &Node) -> CleanerStats {
    let cleaner = node
        .engine
        .cleaner
        .as_ref()
        .expect("the cleaner is enabled");
    cleaner.send(GetCleanerStats).await.unwrap()
}

/// Appends `n` records, all under one key, to the compacted topic's partition.
async fn dirty(node: &Node, n: usize) {
    let route = node.engine.route("compacted").unwrap();
    for i in 0..n {
        append(
            route.partition(0).unwrap(),
            &format!("value {i:04} of one key"),
        )
        .await
        .unwrap();
    }
}

#[actix_rt::test]
async fn the_log_cleaner_keeps_cleaning_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.partition_max_restarts = 1;
    config.cleaner_enable = true;
    config.cleaner_backoff_ms = 20;
    config.cleaner_dedupe_buffer_bytes = 1 << 20;
    let node = node_from(config, 1).await;
    let configs = BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("segment.bytes".to_string(), "1024".to_string()),
        ("min.cleanable.dirty.ratio".to_string(), "0.01".to_string()),
    ]);
    node.engine
        .broker
        .send(CreateTopic(NewTopic {
            name: "compacted".into(),
            partitions: Some(1),
            configs,
            ..Default::default()
        }))
        .await
        .unwrap()
        .unwrap();
    dirty(&node, 60).await;
    let first = eventually("a first pass", || async {
        let s = cleaner_stats(&node).await;
        (s.runs >= 1).then_some(s.runs)
    })
    .await;

    let cleaner = node.engine.cleaner.clone().unwrap();
    cleaner.do_send(PanicInHandler);
    let stats = cleaner_stats(&node).await;
    assert_eq!((stats.restarts, stats.down), (1, None));
    assert!(stats.runs >= first, "its books survive the restart");
    dirty(&node, 60).await;
    eventually("a pass after the restart", || async {
        (cleaner_stats(&node).await.runs > first).then_some(())
    })
    .await;

    cleaner.do_send(PanicInHandler);
    let reason = cleaner_stats(&node).await.down.unwrap_or_default();
    assert!(reason.contains("restarts within"), "{reason}");
    node.shutdown().await;
}
