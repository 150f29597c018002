//! Consumer group benchmark: `cargo bench -p troupe-actors --bench groups`.
//!
//! On a real node (partition actors, `__consumer_offsets` on disk with the default
//! durable flush policy) and a 100-partition topic:
//!
//! - **Rebalance time** for groups of 1, 10 and 100 members (consumer instances, the
//!   in-broker members REST clients use): the time from one more member subscribing
//!   until every member holds its new assignment, median of several joins. The
//!   baseline is one durable append to `__consumer_offsets` (a rebalance persists
//!   the new generation once, so that fsync is its floor).
//! - **Offset-commit throughput**: sequential commits of one partition, commits of
//!   all 100 partitions at once, and 8 groups committing concurrently, against
//!   sequential durable appends of one record to `__consumer_offsets` in the same run.
//!
//! Environment: `TROUPE_BENCH_DIR` (data directory), `TROUPE_BENCH_SECONDS` (per
//! throughput case, default 3).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::future::join_all;
use troupe_actors::broker::{CreateTopic, NewTopic};
use troupe_actors::broker_config::BrokerConfig;
use troupe_actors::consumer::{
    CloseInstance, ConsumerInstance, CreateInstance, GetAssignment, InstanceSettings, ResetPolicy,
    Subscribe, Subscription,
};
use troupe_actors::group::offsets_topic::OFFSETS_TOPIC;
use troupe_actors::group::{
    CommitOffsets, Committer, DescribeGroup, FindCoordinator, GroupCoordinator, GroupState,
    OffsetCommit, TopicPartition,
};
use troupe_actors::node::Node;
use troupe_actors::partition::{Acks, Append};
use troupe_actors::storage::{Record, RecordBatch, TimestampType};

const PARTITIONS: i32 = 100;
const TOPIC: &str = "bench";

fn fail(e: impl std::fmt::Display) -> ! {
    panic!("{e}")
}

async fn instance(node: &Node, group: &str, name: String) -> Addr<ConsumerInstance> {
    let addr = node
        .engine
        .consumers
        .send(CreateInstance {
            group_id: group.into(),
            name: name.clone(),
            settings: InstanceSettings {
                format: "binary".into(),
                auto_offset_reset: ResetPolicy::Earliest,
                auto_commit: false,
                client_id: name,
            },
        })
        .await
        .unwrap_or_else(|e| fail(e))
        .unwrap_or_else(|e| fail(e));
    addr.send(Subscribe {
        to: Subscription::Topics(vec![TOPIC.into()]),
        visible: None,
    })
    .await
    .unwrap_or_else(|e| fail(e))
    .unwrap_or_else(|e| fail(e));
    addr
}

async fn coordinator(node: &Node, group: &str) -> Addr<GroupCoordinator> {
    node.engine
        .groups
        .send(FindCoordinator {
            group_id: group.into(),
            create: true,
        })
        .await
        .unwrap_or_else(|e| fail(e))
        .unwrap_or_else(|e| fail(e))
}

/// Waits until the group is Stable with `members` and every one of them holds a
/// share of the topic, disjoint and covering.
async fn settled(c: &Addr<GroupCoordinator>, members: &[Addr<ConsumerInstance>]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let group = c.send(DescribeGroup).await.unwrap_or_else(|e| fail(e));
        if group.state == GroupState::Stable && group.members.len() == members.len() {
            let held = join_all(members.iter().map(|m| m.send(GetAssignment))).await;
            let mut all: Vec<TopicPartition> = Vec::new();
            for h in held {
                all.extend(h.unwrap_or_else(|e| fail(e)));
            }
            let distinct: BTreeSet<&TopicPartition> = all.iter().collect();
            if all.len() == PARTITIONS as usize && distinct.len() == all.len() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the group never settled");
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Ms for `n` members subscribing at once to settle, and the median ms for one
/// more member to join and everyone to hold their new partitions (it leaves again,
/// and the group settles back, between rounds).
async fn rebalance_ms(node: &Node, n: usize) -> (f64, f64) {
    let group = format!("rebalance-{n}");
    let c = coordinator(node, &group).await;
    let start = Instant::now();
    let mut members = join_all((0..n).map(|i| instance(node, &group, format!("m{i}")))).await;
    settled(&c, &members).await;
    let formation_ms = start.elapsed().as_secs_f64() * 1e3;
    let mut times = Vec::new();
    for round in 0..5 {
        let start = Instant::now();
        members.push(instance(node, &group, format!("extra{round}")).await);
        settled(&c, &members).await;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        if let Some(extra) = members.pop() {
            extra.send(CloseInstance).await.unwrap_or_else(|e| fail(e));
        }
        settled(&c, &members).await;
    }
    for m in members {
        let _ = m.send(CloseInstance).await;
    }
    (formation_ms, median(times))
}

/// Rate of `op` run back to back (in `concurrency` parallel loops) for `seconds`.
async fn rate<F, Fut>(seconds: u64, concurrency: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let loops = (0..concurrency).map(|i| {
        let op = &op;
        async move {
            let mut done = 0usize;
            while Instant::now() < deadline {
                done += op(i).await;
            }
            done
        }
    });
    let total: usize = join_all(loops).await.into_iter().sum();
    total as f64 / start.elapsed().as_secs_f64()
}

fn commit_of(partitions: i32, offset: i64) -> CommitOffsets {
    CommitOffsets {
        committer: Committer::Standalone,
        offsets: (0..partitions)
            .map(|p| OffsetCommit {
                partition: TopicPartition::new(TOPIC, p),
                offset,
                metadata: String::new(),
            })
            .collect(),
    }
}

async fn run(seconds: u64, dir: PathBuf) {
    let node = Node::start(BrokerConfig {
        log_dir: dir,
        cleaner_enable: false,
        ..BrokerConfig::default()
    })
    .await
    .unwrap_or_else(|e| fail(e));
    node.engine
        .broker
        .send(CreateTopic(NewTopic {
            name: TOPIC.into(),
            partitions: Some(PARTITIONS),
            ..Default::default()
        }))
        .await
        .unwrap_or_else(|e| fail(e))
        .unwrap_or_else(|e| fail(e));
    let offsets = node.engine.route(OFFSETS_TOPIC).unwrap_or_else(|e| fail(e));
    let store = offsets.partition(0).unwrap_or_else(|e| fail(e)).clone();
    // A commit record's size: key (group, topic, partition) and value.
    let record = Record {
        timestamp_ms: 0,
        key: Some(vec![0u8; 24]),
        value: Some(vec![0u8; 26]),
        headers: vec![],
    };
    let append = || {
        let batch = RecordBatch::encode(std::slice::from_ref(&record), TimestampType::CreateTime)
            .unwrap_or_else(|e| fail(e));
        store.send(Append {
            batch,
            acks: Acks::All,
        })
    };
    let appends_per_s = rate(seconds, 1, |_| async {
        append()
            .await
            .unwrap_or_else(|e| fail(e))
            .unwrap_or_else(|e| fail(e));
        1
    })
    .await;
    let append_ms = 1e3 / appends_per_s;
    println!("troupe consumer group benchmark: {PARTITIONS}-partition topic, durable commits (fsync before the answer)");
    println!("baseline: one durable append to {OFFSETS_TOPIC}: {append_ms:.2} ms ({appends_per_s:.0}/s)\n");

    println!(
        "{:<22} {:>14} {:>10} {:>16} {:>10}",
        "rebalance", "form (ms)", "÷ append", "one joins (ms)", "÷ append"
    );
    for n in [1, 10, 100] {
        let (form, join) = rebalance_ms(&node, n).await;
        println!(
            "{:<22} {:>14.1} {:>10.1} {:>16.1} {:>10.1}",
            format!("group of {n}"),
            form,
            form / append_ms,
            join,
            join / append_ms
        );
    }

    println!(
        "\n{:<34} {:>12} {:>10}",
        "offset commits", "per second", "÷ append"
    );
    let c = coordinator(&node, "commit-1").await;
    let one = rate(seconds, 1, |_| {
        let c = c.clone();
        async move {
            c.send(commit_of(1, 1))
                .await
                .unwrap_or_else(|e| fail(e))
                .unwrap_or_else(|e| fail(e));
            1
        }
    })
    .await;
    println!(
        "{:<34} {:>12.0} {:>10.2}",
        "1 partition, sequential",
        one,
        one / appends_per_s
    );
    let all = rate(seconds, 1, |_| {
        let c = c.clone();
        async move {
            c.send(commit_of(PARTITIONS, 2))
                .await
                .unwrap_or_else(|e| fail(e))
                .unwrap_or_else(|e| fail(e));
            PARTITIONS as usize
        }
    })
    .await;
    println!(
        "{:<34} {:>12.0} {:>10.2}",
        "100 partitions per commit (offsets)",
        all,
        all / appends_per_s
    );
    let mut groups = Vec::new();
    for g in 0..8 {
        groups.push(coordinator(&node, &format!("commit-many-{g}")).await);
    }
    let many = rate(seconds, 8, |i| {
        let c = groups[i].clone();
        async move {
            c.send(commit_of(1, 3))
                .await
                .unwrap_or_else(|e| fail(e))
                .unwrap_or_else(|e| fail(e));
            1
        }
    })
    .await;
    println!(
        "{:<34} {:>12.0} {:>10.2}",
        "8 groups concurrently, 1 partition",
        many,
        many / appends_per_s
    );
    node.shutdown().await;
}

fn main() {
    let seconds: u64 = std::env::var("TROUPE_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = std::env::var("TROUPE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data/groups")
        });
    let _ = std::fs::remove_dir_all(&dir);
    let system = System::new();
    system.block_on(run(seconds, dir.clone()));
    let _ = std::fs::remove_dir_all(&dir);
}
