//! Consumer groups over the Kafka protocol, with real clients: confluent-kafka
//! (librdkafka) consumers and REST v2 consumer instances in one group split a topic's
//! partitions — whoever leads, an in-broker instance (the broker's assignor) or a
//! Kafka consumer (its own, assigning to the REST instance too) — and what the Kafka
//! consumers commit shows in the v3 lags; a kafka-python group commits, the broker
//! restarts, and a new consumer resumes from the commits.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::broker::*;
use crate::groups::{lags, Consumer};
use crate::kafka_clients::Script;

/// How long a group may take to settle after a member comes or goes: Kafka members
/// hear of a rebalance at their next heartbeat (300 ms in the scripts).
const SETTLE: Duration = Duration::from_secs(60);
/// How long a script may take to report: generous, as a loaded machine may be slow; a
/// passing run takes a few seconds.
const REPORT: Duration = Duration::from_secs(60);

/// Produces `count` records to each partition of `topic`, values `{p}-{i}`.
fn produce_to_each(b: &TestBroker, topic: &str, partitions: i32, count: usize) {
    let records: Vec<Value> = (0..partitions)
        .flat_map(|p| {
            (0..count).map(move |i| {
                json!({"partition_id": p, "value": {"type": "STRING", "data": format!("{p}-{i}")}})
            })
        })
        .collect();
    produce_v3(b, topic, &records);
}

/// A member as the broker sees it: client id and partitions.
type Members = BTreeMap<String, (String, BTreeSet<i32>)>;

/// The group's members and their partitions, if it is Stable.
fn stable_members(b: &TestBroker, group: &str) -> Option<Members> {
    let (_, g) = get(&b.v3(&format!("/consumer-groups/{group}")));
    if g["state"] != "STABLE" {
        return None;
    }
    let (_, consumers) = get(&b.v3(&format!("/consumer-groups/{group}/consumers")));
    let mut members = Members::new();
    for c in consumers["data"].as_array()? {
        let id = c["consumer_id"].as_str()?;
        let (_, assigned) = get(&b.v3(&format!(
            "/consumer-groups/{group}/consumers/{id}/assignments"
        )));
        let partitions = assigned["data"]
            .as_array()?
            .iter()
            .filter_map(|a| a["partition_id"].as_i64().map(|p| p as i32))
            .collect();
        members.insert(
            id.to_string(),
            (c["client_id"].as_str()?.to_string(), partitions),
        );
    }
    Some(members)
}

/// Whether `members` own each of `0..partitions` exactly once.
fn split_exactly(members: &Members, partitions: i32) -> bool {
    let owned: Vec<i32> = members
        .values()
        .flat_map(|(_, ps)| ps.iter().copied())
        .collect();
    let distinct: BTreeSet<i32> = owned.iter().copied().collect();
    owned.len() == partitions as usize && distinct == (0..partitions).collect()
}

/// Waits until the group is Stable with `count` members that split `0..partitions`
/// exactly, and every member agrees: each Kafka consumer (by the script's latest
/// report) and each REST instance (named by its client id) holds what the broker says
/// it holds. Answers the members.
fn settled(
    b: &TestBroker,
    group: &str,
    kafka: Option<&Script>,
    rest: &[(&str, &Consumer)],
    count: usize,
    partitions: i32,
) -> Members {
    let deadline = Instant::now() + SETTLE;
    let mut reported = Value::Null;
    loop {
        let reports = kafka.map(Script::drain).unwrap_or_default();
        if let Some(latest) = reports.into_iter().rfind(|r| r["event"] == "state") {
            reported = latest["consumers"].clone();
        }
        let members = stable_members(b, group);
        let agreed = members.as_ref().is_some_and(|members| {
            members.len() == count
                && split_exactly(members, partitions)
                && members.iter().all(|(id, (client_id, owned))| {
                    match rest.iter().find(|(name, _)| name == client_id) {
                        Some((_, c)) => c.assignments() == *owned,
                        None => kafka_holds(&reported, client_id, id, owned),
                    }
                })
        });
        if agreed {
            return members.unwrap_or_default();
        }
        assert!(
            Instant::now() < deadline,
            "group {group} never settled on {count} members: broker {members:?}, Kafka consumers {reported}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether the script's consumer `client_id` is member `member_id` and holds `owned`.
fn kafka_holds(reported: &Value, client_id: &str, member_id: &str, owned: &BTreeSet<i32>) -> bool {
    let c = &reported[client_id];
    let held: Option<BTreeSet<i32>> = c["assignment"].as_array().map(|a| {
        a.iter()
            .filter_map(|p| p.as_i64().map(|p| p as i32))
            .collect()
    });
    c["member_id"] == member_id && held.as_ref() == Some(owned)
}

#[test]
fn kafka_consumers_and_rest_instances_split_a_group_and_kafka_commits_show_in_v3_lags() {
    const GROUP: &str = "mixed";
    const PER_PARTITION: i64 = 5;
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 6);
    produce_to_each(&b, "t", 6, PER_PARTITION as usize);

    // An in-broker member joins first and leads: the broker's assignor splits the
    // partitions between it and the Kafka consumers.
    let rest_1 = Consumer::create(&b, GROUP, "rest-1", json!({}));
    rest_1.subscribe(&["t"]);
    settled(&b, GROUP, None, &[("rest-1", &rest_1)], 1, 6);
    let mut kafka = Script::start(
        "confluent_group.py",
        &[&b.bootstrap(), GROUP, "t", "kafka-a", "kafka-b"],
    );
    let members = settled(&b, GROUP, Some(&kafka), &[("rest-1", &rest_1)], 3, 6);
    assert!(members.values().all(|(_, ps)| ps.len() == 2), "{members:?}");

    // It leaves: a Kafka consumer leads now, and its assignor covers everything...
    rest_1.delete();
    settled(&b, GROUP, Some(&kafka), &[], 2, 6);
    // ...and, from the subscription the broker wrote for it, gives the REST instance
    // that joins its share.
    let rest_2 = Consumer::create(&b, GROUP, "rest-2", json!({}));
    rest_2.subscribe(&["t"]);
    let members = settled(&b, GROUP, Some(&kafka), &[("rest-2", &rest_2)], 3, 6);
    let rest_owns = rest_2.assignments();
    assert_eq!(rest_owns.len(), 2, "{members:?}");

    // Each member reads its partitions to the end: the REST instance...
    let deadline = Instant::now() + REPORT;
    let mut read: BTreeMap<i32, i64> = BTreeMap::new();
    while read.len() < rest_owns.len() || read.values().any(|&next| next < PER_PARTITION) {
        assert!(Instant::now() < deadline, "rest-2 read only {read:?}");
        for (p, offset, _) in rest_2.poll(200) {
            assert!(rest_owns.contains(&p), "rest-2 read partition {p}");
            read.insert(p, offset + 1);
        }
    }
    // ...and the Kafka consumers, which then commit.
    let kafka_owns: BTreeMap<String, (String, BTreeSet<i32>)> = members
        .into_iter()
        .filter(|(_, (client_id, _))| client_id.starts_with("kafka-"))
        .collect();
    kafka.wait_for("every record read", REPORT, |r| {
        r["event"] == "state"
            && kafka_owns.values().all(|(client_id, owned)| {
                owned
                    .iter()
                    .all(|p| r["consumers"][client_id]["positions"][p.to_string()] == PER_PARTITION)
            })
    });
    kafka.send(&json!({"cmd": "commit"}));
    for _ in 0..2 {
        kafka.event("committed", REPORT);
    }

    // The v3 lags show each Kafka commit, with the member that owns the partition.
    let lag = lags(&b, GROUP, "t");
    let (_, lag_body) = get(&b.v3(&format!("/consumer-groups/{GROUP}/lags")));
    for (member_id, (client_id, owned)) in &kafka_owns {
        for p in owned {
            assert_eq!(
                lag.get(p),
                Some(&(PER_PARTITION, PER_PARTITION, 0)),
                "{client_id} p{p}"
            );
            let row = lag_body["data"]
                .as_array()
                .and_then(|rows| rows.iter().find(|l| l["partition_id"] == *p))
                .unwrap_or_else(|| panic!("no lag row for p{p}: {lag_body}"));
            assert_eq!(row["consumer_id"], member_id.as_str(), "{row}");
            assert_eq!(row["client_id"], client_id.as_str(), "{row}");
        }
    }

    // The Kafka consumers leave; the REST instance keeps the group.
    kafka.send(&json!({"cmd": "close"}));
    kafka.event("closed", REPORT);
    kafka.finish(REPORT);
    settled(&b, GROUP, None, &[("rest-2", &rest_2)], 1, 6);
    rest_2.delete();
}

/// Each partition's offsets in a script's report, as numbers.
fn offsets_of(report: &Value) -> BTreeMap<i32, Value> {
    report["offsets"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(p, v)| Some((p.parse().ok()?, v.clone())))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_kafka_python_group_resumes_from_its_commits_after_a_broker_restart() {
    const GROUP: &str = "resume";
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "k", 3);
    produce_to_each(&b, "k", 3, 10);

    // A member reads everything, and commits where it got to (by its own account).
    let first = Script::start(
        "kafka_python_resume.py",
        &[
            "commit",
            &b.bootstrap(),
            GROUP,
            "k",
            "30",
            "0=4",
            "1=7",
            "2=10",
        ],
    );
    let consumed = offsets_of(&first.event("consumed", REPORT));
    for p in 0..3 {
        assert_eq!(consumed[&p], json!((0..10).collect::<Vec<i64>>()), "p{p}");
    }
    let committed = offsets_of(&first.event("committed", REPORT));
    assert_eq!(
        committed,
        BTreeMap::from([(0, json!(4)), (1, json!(7)), (2, json!(10))])
    );
    first.finish(REPORT);

    b.stop();
    let b = TestBroker::start(dir.path());
    // The commits came back from __consumer_offsets.
    assert_eq!(
        lags(&b, GROUP, "k"),
        BTreeMap::from([(0, (4, 10, 6)), (1, (7, 10, 3)), (2, (10, 10, 0))])
    );
    produce_to_each(&b, "k", 3, 2);

    // A new member of the group starts where the commits say, not at the beginning.
    let second = Script::start(
        "kafka_python_resume.py",
        &["resume", &b.bootstrap(), GROUP, "k", "15"],
    );
    let committed = offsets_of(&second.event("committed", REPORT));
    assert_eq!(
        committed,
        BTreeMap::from([(0, json!(4)), (1, json!(7)), (2, json!(10))])
    );
    let consumed = offsets_of(&second.event("consumed", REPORT));
    let expected = |from: i64| json!((from..12).collect::<Vec<i64>>());
    assert_eq!(
        consumed,
        BTreeMap::from([(0, expected(4)), (1, expected(7)), (2, expected(10))])
    );
    second.finish(REPORT);
}
