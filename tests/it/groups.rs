//! Consumer groups through the REST API of the real binary: v2 consumer instances
//! sharing a topic's partitions and rebalancing as they come and go, at-least-once
//! delivery across random joins and leaves, committed offsets and group metadata
//! across a restart and a kill -9, each v2 instance endpoint and v3 group resource
//! doing what it says, the read-only `__consumer_offsets`, and the errors for bad
//! input.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::broker::*;

const V2: &str = "application/vnd.kafka.v2+json";
const JSON_V2: &str = "application/vnd.kafka.json.v2+json";

/// A v2 consumer instance, driven as a REST client would.
pub(crate) struct Consumer {
    base: String,
}

impl Consumer {
    pub(crate) fn create(b: &TestBroker, group: &str, name: &str, settings: Value) -> Consumer {
        let mut body = json!({"name": name, "format": "json", "auto.offset.reset": "earliest"});
        if let (Value::Object(body), Value::Object(extra)) = (&mut body, settings) {
            body.extend(extra);
        }
        let (status, created) = send(
            "POST",
            &b.url(&format!("/consumers/{group}")),
            V2,
            &body.to_string(),
        );
        assert_eq!(status, 200, "{created}");
        let base = created["base_uri"].as_str().expect("base_uri").to_string();
        assert!(base.ends_with(&format!("/consumers/{group}/instances/{name}")));
        Consumer { base }
    }

    pub(crate) fn subscribe(&self, topics: &[&str]) {
        let (status, body) = send(
            "POST",
            &format!("{}/subscription", self.base),
            V2,
            &json!({ "topics": topics }).to_string(),
        );
        assert_eq!(status, 204, "{body}");
    }

    /// Assigns partitions by hand.
    fn assign(&self, topic: &str, partitions: &[i32]) {
        let partitions: Vec<Value> = partitions
            .iter()
            .map(|p| json!({"topic": topic, "partition": p}))
            .collect();
        let (status, body) = send(
            "POST",
            &format!("{}/assignments", self.base),
            V2,
            &json!({ "partitions": partitions }).to_string(),
        );
        assert_eq!(status, 204, "{body}");
    }

    pub(crate) fn assignments(&self) -> BTreeSet<i32> {
        let (status, body) = get(&format!("{}/assignments", self.base));
        assert_eq!(status, 200, "{body}");
        body["partitions"]
            .as_array()
            .expect("partitions")
            .iter()
            .map(|p| p["partition"].as_i64().expect("partition") as i32)
            .collect()
    }

    fn unsubscribe(&self) {
        let (status, body) = delete(&format!("{}/subscription", self.base));
        assert_eq!(status, 204, "{body}");
    }

    /// Records as (partition, offset, value).
    pub(crate) fn poll(&self, timeout_ms: u64) -> Vec<(i32, i64, Value)> {
        self.poll_query(&format!("timeout={timeout_ms}"))
    }

    /// Records as (partition, offset, value), with the query string given.
    fn poll_query(&self, query: &str) -> Vec<(i32, i64, Value)> {
        let (status, body) = get_accept(&format!("{}/records?{query}", self.base), JSON_V2);
        assert_eq!(status, 200, "{body}");
        body.as_array()
            .expect("an array")
            .iter()
            .map(|r| {
                (
                    r["partition"].as_i64().expect("partition") as i32,
                    r["offset"].as_i64().expect("offset"),
                    r["value"].clone(),
                )
            })
            .collect()
    }

    /// Commits the last processed offset of each partition (Confluent's convention).
    pub(crate) fn commit(&self, topic: &str, last: &BTreeMap<i32, i64>) -> (u16, Value) {
        let offsets: Vec<Value> = last
            .iter()
            .map(|(p, o)| json!({"topic": topic, "partition": p, "offset": o}))
            .collect();
        send(
            "POST",
            &format!("{}/offsets", self.base),
            V2,
            &json!({ "offsets": offsets }).to_string(),
        )
    }

    pub(crate) fn committed(&self, topic: &str, partitions: &[i32]) -> BTreeMap<i32, i64> {
        let body = json!({"partitions": partitions.iter().map(|p| json!({"topic": topic, "partition": p})).collect::<Vec<_>>()});
        let (status, answer) = send(
            "GET",
            &format!("{}/offsets", self.base),
            V2,
            &body.to_string(),
        );
        assert_eq!(status, 200, "{answer}");
        answer["offsets"]
            .as_array()
            .expect("offsets")
            .iter()
            .map(|o| {
                (
                    o["partition"].as_i64().expect("partition") as i32,
                    o["offset"].as_i64().expect("offset"),
                )
            })
            .collect()
    }

    pub(crate) fn delete(&self) {
        let (status, body) = delete(&self.base);
        assert_eq!(status, 204, "{body}");
    }
}

fn produce_values(b: &TestBroker, topic: &str, values: impl IntoIterator<Item = String>) {
    let records: Vec<Value> = values
        .into_iter()
        // Keyed by the value, so records spread over the partitions.
        .map(|v| json!({"key": {"type": "JSON", "data": v}, "value": {"type": "JSON", "data": v}}))
        .collect();
    for chunk in records.chunks(500) {
        produce_v3(b, topic, chunk);
    }
}

/// Polls (up to 20 s) until at least `want` records have come; answers them all.
fn poll_until(c: &Consumer, want: usize) -> Vec<(i32, i64, Value)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < want {
        assert!(
            Instant::now() < deadline,
            "only {} of {want} records came: {got:?}",
            got.len()
        );
        got.extend(c.poll(200));
    }
    got
}

/// Waits (up to 10 s) until the group is in `state` (Confluent's name).
fn wait_for_state(b: &TestBroker, group: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, g) = get(&b.v3(&format!("/consumer-groups/{group}")));
        if g["state"] == state {
            return;
        }
        assert!(Instant::now() < deadline, "never {state}: {g}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The group's lags, per partition of `topic`: (current_offset, log_end_offset, lag).
pub(crate) fn lags(b: &TestBroker, group: &str, topic: &str) -> BTreeMap<i32, (i64, i64, i64)> {
    let (status, body) = get(&b.v3(&format!("/consumer-groups/{group}/lags")));
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|l| l["topic_name"] == topic)
        .map(|l| {
            let n = |f: &str| l[f].as_i64().expect(f);
            (
                n("partition_id") as i32,
                (n("current_offset"), n("log_end_offset"), n("lag")),
            )
        })
        .collect()
}

/// Waits (up to 30 s) until the group is Stable with exactly these consumers, and
/// their assignments are disjoint, cover `0..partitions` and are balanced; answers
/// them.
fn settled(b: &TestBroker, consumers: &[&Consumer], partitions: i32) -> Vec<BTreeSet<i32>> {
    let group = consumers[0]
        .base
        .split("/consumers/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("a group in the base URI")
        .to_string();
    let (fair_min, fair_max) = (
        partitions as usize / consumers.len(),
        (partitions as usize).div_ceil(consumers.len()),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, g) = get(&b.v3(&format!("/consumer-groups/{group}")));
        let now: Vec<BTreeSet<i32>> = consumers.iter().map(|c| c.assignments()).collect();
        let all: Vec<i32> = now.iter().flatten().copied().collect();
        let distinct: BTreeSet<i32> = all.iter().copied().collect();
        let stable = g["state"] == "STABLE" && g["members_count"] == consumers.len();
        let balanced = now.iter().all(|a| (fair_min..=fair_max).contains(&a.len()));
        if stable
            && balanced
            && all.len() == partitions as usize
            && distinct == (0..partitions).collect()
        {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "assignments never settled: {now:?}, group {g}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn three_instances_split_six_partitions_and_the_rest_cover_them_when_one_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 6);
    let cs: Vec<Consumer> = (0..3)
        .map(|i| Consumer::create(&b, "g", &format!("c{i}"), json!({})))
        .collect();
    for c in &cs {
        c.subscribe(&["t"]);
    }
    let first = settled(&b, &[&cs[0], &cs[1], &cs[2]], 6);
    assert!(first.iter().all(|a| a.len() == 2), "{first:?}");
    let (status, group) = get(&b.v3("/consumer-groups/g"));
    assert_eq!(status, 200);
    assert_eq!(group["state"], "STABLE");
    assert_eq!(group["partition_assignor"], "sticky");
    let (_, consumers) = get(&b.v3("/consumer-groups/g/consumers"));
    assert_eq!(consumers["data"].as_array().unwrap().len(), 3);

    // One leaves: the other two cover all six and keep what they had (sticky).
    cs[1].delete();
    let second = settled(&b, &[&cs[0], &cs[2]], 6);
    assert_eq!((second[0].len(), second[1].len()), (3, 3), "{second:?}");
    assert!(first[0].is_subset(&second[0]) && first[2].is_subset(&second[1]));
    let (status, gone) = get(&format!("{}/assignments", cs[1].base));
    assert_eq!((status, gone["error_code"].as_i64()), (404, Some(40403)));

    // Every record reaches exactly one of the two.
    produce_values(&b, "t", (0..60).map(|i| format!("v{i}")));
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < 60 && Instant::now() < deadline {
        for (i, c) in [&cs[0], &cs[2]].iter().enumerate() {
            for (p, _, v) in c.poll(200) {
                assert!(
                    second[i].contains(&p),
                    "a record of an unassigned partition"
                );
                seen.push(v.as_str().unwrap().to_string());
            }
        }
    }
    seen.sort();
    let mut expected: Vec<String> = (0..60).map(|i| format!("v{i}")).collect();
    expected.sort();
    assert_eq!(seen, expected);
}

#[test]
fn an_instance_rejoins_and_commits_after_its_group_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 2);
    produce_values(&b, "t", (0..10).map(|i| format!("v{i}")));
    let c = Consumer::create(&b, "g", "c", json!({}));
    c.subscribe(&["t"]);
    settled(&b, &[&c], 2);
    assert_eq!(poll_until(&c, 10).len(), 10);
    let (status, _) = send("POST", &format!("{}/offsets", c.base), V2, "");
    assert_eq!(status, 200);
    // The instance leaves the group but lives on; the group is deleted.
    c.unsubscribe();
    wait_for_state(&b, "g", "EMPTY");
    let (status, body) = delete(&b.v3("/consumer-groups/g"));
    assert_eq!(status, 204, "{body}");

    // Subscribing again joins a group "g" anew (not the deleted one, which refuses
    // everyone), with no offsets: it reads from the start again and commits.
    c.subscribe(&["t"]);
    settled(&b, &[&c], 2);
    let again = poll_until(&c, 10);
    assert_eq!(again.len(), 10, "{again:?}");
    let (status, body) = send("POST", &format!("{}/offsets", c.base), V2, "");
    assert_eq!(status, 200, "{body}");
    let committed = lags(&b, "g", "t");
    assert_eq!(committed.len(), 2, "{committed:?}");
    assert!(committed
        .values()
        .all(|&(current, end, lag)| current == end && lag == 0));

    // Likewise an instance with partitions assigned by hand: its group deleted
    // under it, its next commit creates the group again.
    let m = Consumer::create(&b, "m", "c", json!({}));
    m.assign("t", &[0, 1]);
    let records = poll_until(&m, 10);
    let last: BTreeMap<i32, i64> = records.iter().map(|&(p, o, _)| (p, o)).collect();
    let (status, body) = m.commit("t", &last);
    assert_eq!(status, 200, "{body}");
    let (status, body) = delete(&b.v3("/consumer-groups/m"));
    assert_eq!(status, 204, "{body}");
    let (status, body) = get(&b.v3("/consumer-groups/m"));
    assert_eq!((status, body["error_code"].as_i64()), (404, Some(40405)));
    let first: BTreeMap<i32, i64> = last.keys().map(|&p| (p, 0)).collect();
    let (status, body) = m.commit("t", &first);
    assert_eq!(status, 200, "{body}");
    let committed = lags(&b, "m", "t");
    assert_eq!(
        committed
            .iter()
            .map(|(&p, l)| (p, l.0))
            .collect::<BTreeMap<_, _>>(),
        last.keys().map(|&p| (p, 1)).collect::<BTreeMap<_, _>>()
    );
}

#[test]
fn a_commit_from_a_stale_generation_gets_40905_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Instances that never heartbeat: a member's session runs out under it, unnoticed.
    let b = TestBroker::start_with(
        dir.path(),
        &[
            "group.min.session.timeout.ms=100",
            "consumer.session.timeout.ms=3000",
            "consumer.heartbeat.interval.ms=3600000",
        ],
    );
    create_topic(&b, "t", 1);
    produce_values(&b, "t", (0..10).map(|i| format!("v{i}")));
    let stale = Consumer::create(&b, "g", "stale", json!({}));
    stale.subscribe(&["t"]);
    settled(&b, &[&stale], 1);
    let (_, group) = get(&b.v3("/consumer-groups/g"));
    let old_generation = group["generation_id"].as_i64().unwrap();
    assert_eq!(poll_until(&stale, 10).len(), 10);
    wait_for_state(&b, "g", "EMPTY");
    // A newcomer forms the next generation; the stale member still thinks it owns t-0.
    let next = Consumer::create(&b, "g", "next", json!({}));
    next.subscribe(&["t"]);
    settled(&b, &[&next], 1);
    let (_, group) = get(&b.v3("/consumer-groups/g"));
    assert!(
        group["generation_id"].as_i64().unwrap() > old_generation,
        "{group}"
    );
    assert_eq!(stale.assignments(), BTreeSet::from([0]));

    let (status, body) = stale.commit("t", &BTreeMap::from([(0, 9)]));
    assert_eq!(
        (status, body["error_code"].as_i64()),
        (409, Some(40905)),
        "{body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("unknown member"), "{message}");
    assert!(lags(&b, "g", "t").is_empty(), "nothing committed");
}

#[test]
fn an_idle_instance_expires_and_leaves_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start_with(dir.path(), &["consumer.instance.timeout.ms=1500"]);
    create_topic(&b, "t", 4);
    let busy = Consumer::create(&b, "g", "busy", json!({}));
    let idle = Consumer::create(&b, "g", "idle", json!({}));
    busy.subscribe(&["t"]);
    idle.subscribe(&["t"]);
    let both = settled(&b, &[&busy, &idle], 4);
    assert_eq!((both[0].len(), both[1].len()), (2, 2));
    let started = Instant::now();
    // Only `busy` keeps using its instance.
    let deadline = Instant::now() + Duration::from_secs(20);
    while busy.assignments().len() < 4 {
        assert!(Instant::now() < deadline, "the idle instance never expired");
        busy.poll(100);
    }
    assert!(started.elapsed() >= Duration::from_millis(1000));
    let (status, body) = get(&format!("{}/subscription", idle.base));
    assert_eq!((status, body["error_code"].as_i64()), (404, Some(40403)));
    let (_, consumers) = get(&b.v3("/consumer-groups/g/consumers"));
    assert_eq!(consumers["data"].as_array().unwrap().len(), 1);
}

#[test]
fn a_topic_that_gains_partitions_is_rebalanced() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 2);
    let c = Consumer::create(&b, "g", "c", json!({}));
    c.subscribe(&["t"]);
    settled(&b, &[&c], 2);
    let (status, body) = send(
        "PATCH",
        &b.v3("/topics/t"),
        "application/json",
        &json!({"partitions_count": 5}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    settled(&b, &[&c], 5);
}

#[test]
fn a_pattern_subscription_follows_topics_as_they_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "logs-a", 2);
    create_topic(&b, "other", 1);
    let c = Consumer::create(&b, "g", "c", json!({}));
    let sub = format!("{}/subscription", c.base);
    let err = |(status, body): (u16, Value)| (status, body["error_code"].as_i64().unwrap_or(0));
    assert_eq!(
        err(send("POST", &sub, V2, r#"{"topic_pattern": "("}"#)),
        (400, 40002)
    );
    assert_eq!(
        err(send(
            "POST",
            &sub,
            V2,
            r#"{"topics": ["x"], "topic_pattern": "x"}"#
        )),
        (409, 40903)
    );
    let (status, body) = send("POST", &sub, V2, r#"{"topic_pattern": "logs-.*"}"#);
    assert_eq!(status, 204, "{body}");
    let assigned = |c: &Consumer| {
        let (_, body) = get(&format!("{}/assignments", c.base));
        body["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| format!("{}-{}", p["topic"].as_str().unwrap(), p["partition"]))
            .collect::<BTreeSet<String>>()
    };
    let wait_for = |want: &[&str]| {
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        while assigned(&c) != want {
            assert!(
                Instant::now() < deadline,
                "never assigned {want:?}: {:?}",
                assigned(&c)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(&["logs-a-0", "logs-a-1"]);
    assert_eq!(get(&sub).1, json!({"topics": ["logs-a"]}));
    // A matching topic created later joins the subscription; others do not.
    create_topic(&b, "logs-b", 1);
    create_topic(&b, "nomatch", 1);
    wait_for(&["logs-a-0", "logs-a-1", "logs-b-0"]);
    produce_values(&b, "logs-b", ["fresh".to_string()]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut values = Vec::new();
    while values.is_empty() {
        assert!(Instant::now() < deadline);
        values.extend(c.poll(200).into_iter().map(|(_, _, v)| v));
    }
    assert_eq!(values, vec![json!("fresh")]);
}

/// A tiny deterministic generator (xorshift), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn consumers_that_commit_after_processing_see_every_record_across_joins_and_leaves() {
    const N: usize = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let b = Arc::new(TestBroker::start(dir.path()));
    create_topic(&b, "t", 4);
    let producing = Arc::new(AtomicBool::new(true));
    let producer = {
        let b = b.clone();
        let producing = producing.clone();
        std::thread::spawn(move || {
            for chunk in 0..30 {
                produce_values(
                    &b,
                    "t",
                    (chunk * 100..(chunk + 1) * 100).map(|i| format!("r{i}")),
                );
                std::thread::sleep(Duration::from_millis(40));
            }
            producing.store(false, Ordering::SeqCst);
        })
    };
    let deliveries: Arc<Mutex<Deliveries>> = Arc::default();
    let workers: Vec<_> = (0..3u64)
        .map(|w| {
            let (b, deliveries, producing) = (b.clone(), deliveries.clone(), producing.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w + 1));
                let mut generation = 0;
                // Each worker is a series of short-lived instances; the last one stays
                // until every record has been seen.
                loop {
                    let c = Consumer::create(&b, "g", &format!("w{w}-{generation}"), json!({}));
                    generation += 1;
                    c.subscribe(&["t"]);
                    let mut run = InstanceRun::default();
                    let polls = 3 + rng.below(8);
                    let mut i = 0;
                    loop {
                        let records = c.poll(100);
                        let mut last: BTreeMap<i32, i64> = BTreeMap::new();
                        {
                            let mut deliveries = deliveries.lock().unwrap();
                            for (p, o, v) in records {
                                let v = v.as_str().unwrap().to_string();
                                *deliveries.seen.entry(v.clone()).or_default() += 1;
                                run.delivered(p, o, v, &mut deliveries);
                                last.insert(p, o);
                            }
                        }
                        // Processed: commit. A rebalance may have moved a partition
                        // away (409): its records will be read again by the new owner.
                        if !last.is_empty() {
                            let (status, body) = c.commit("t", &last);
                            assert!(status == 200 || status == 409, "{status} {body}");
                            let mut deliveries = deliveries.lock().unwrap();
                            run.committed(&last, status == 200, &mut deliveries);
                        }
                        i += 1;
                        let done = !producing.load(Ordering::SeqCst)
                            && deliveries.lock().unwrap().seen.len() >= N;
                        if done {
                            run.left(&mut deliveries.lock().unwrap());
                            c.delete();
                            return;
                        }
                        if i >= polls && producing.load(Ordering::SeqCst) {
                            break;
                        }
                    }
                    // Leave abruptly, sometimes without a goodbye commit of anything.
                    run.left(&mut deliveries.lock().unwrap());
                    c.delete();
                }
            })
        })
        .collect();
    producer.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while deliveries.lock().unwrap().seen.len() < N {
        if Instant::now() >= deadline {
            // What the group looked like, to tell why.
            let (_, group) = get(&b.v3("/consumer-groups/g"));
            let (_, members) = get(&b.v3("/consumer-groups/g/consumers"));
            let (_, lags) = get(&b.v3("/consumer-groups/g/lags"));
            panic!(
                "only {} of {N} records seen\ngroup {group}\nmembers {members}\nlags {lags}",
                deliveries.lock().unwrap().seen.len()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for w in workers {
        w.join().unwrap();
    }
    let d = deliveries.lock().unwrap();
    let expected: BTreeSet<String> = (0..N).map(|i| format!("r{i}")).collect();
    let got: BTreeSet<String> = d.seen.keys().cloned().collect();
    assert_eq!(got, expected, "every record seen, nothing else");
    let mut stored: HashMap<String, Vec<(i32, i64)>> = HashMap::new();
    for p in 0..4 {
        for (o, _, v) in read_partition(&b, "t", p) {
            stored.entry(v.unwrap()).or_default().push((p, o));
        }
    }
    let twice_stored: Vec<_> = stored.iter().filter(|(_, at)| at.len() > 1).collect();
    assert!(twice_stored.is_empty(), "stored twice: {twice_stored:?}");
    // A record whose consumer committed past it is never delivered to another
    // consumer that commits past it too: the next owner starts after that commit.
    let twice: Vec<(&String, &usize)> = d.committed.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "records committed by two consumers, so delivered past a commit: {twice:?}"
    );
    // Hence every duplicate is a delivery no commit covered before the record's
    // partition moved (a rebalance) or its consumer left.
    let duplicates: usize = d.seen.values().map(|n| n - 1).sum();
    assert!(
        duplicates <= d.uncommitted,
        "{duplicates} duplicates, but only {} deliveries were left uncommitted",
        d.uncommitted
    );
    eprintln!(
        "at-least-once: {N} records, {duplicates} delivered again after a rebalance; \
         {} deliveries were not committed before their partition moved (the bound)",
        d.uncommitted
    );
}

/// What the consumers of the at-least-once test were given, per record value.
#[derive(Default)]
struct Deliveries {
    /// Deliveries of each record, to any consumer.
    seen: HashMap<String, usize>,
    /// Of those, deliveries that their consumer then committed, still holding the
    /// partition.
    committed: HashMap<String, usize>,
    /// Deliveries no commit of their consumer covered: a commit was refused (the
    /// partition had moved in a rebalance), or the consumer left, first.
    uncommitted: usize,
}

/// One consumer instance's deliveries not yet committed, per partition: a run of
/// consecutive offsets since it last (re)started on that partition.
#[derive(Default)]
struct InstanceRun {
    pending: BTreeMap<i32, Vec<(i64, String)>>,
}

impl InstanceRun {
    fn delivered(&mut self, p: i32, o: i64, v: String, d: &mut Deliveries) {
        let run = self.pending.entry(p).or_default();
        // Not where this instance left off: it lost the partition and got it back,
        // restarting from the committed offset; what it had is not its to commit.
        if run.last().is_some_and(|(last, _)| last + 1 != o) {
            d.uncommitted += run.len();
            run.clear();
        }
        run.push((o, v));
    }

    /// A commit of the last record of each partition's poll: all of its run, or,
    /// refused, none.
    fn committed(&mut self, last: &BTreeMap<i32, i64>, accepted: bool, d: &mut Deliveries) {
        for (p, &upto) in last {
            let run = self.pending.entry(*p).or_default();
            if accepted {
                for (o, v) in run.drain(..) {
                    assert!(o <= upto, "{p}:{o} delivered but not committed by {upto}");
                    *d.committed.entry(v).or_default() += 1;
                }
            } else {
                d.uncommitted += run.len();
                run.clear();
            }
        }
    }

    fn left(self, d: &mut Deliveries) {
        d.uncommitted += self.pending.values().map(Vec::len).sum::<usize>();
    }
}

#[test]
fn committed_offsets_and_group_metadata_survive_a_restart_and_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 2);
    produce_values(&b, "t", (0..40).map(|i| format!("v{i}")));
    let c = Consumer::create(&b, "g", "c", json!({}));
    c.subscribe(&["t"]);
    settled(&b, &[&c], 2);
    let mut last = BTreeMap::new();
    while last.len() < 2 {
        for (p, o, _) in c.poll(500) {
            if o == 4 {
                last.insert(p, o);
            }
        }
    }
    let (status, body) = c.commit("t", &last);
    assert_eq!(status, 200, "{body}");
    assert_eq!(c.committed("t", &[0, 1]), BTreeMap::from([(0, 5), (1, 5)]));
    let (_, group) = get(&b.v3("/consumer-groups/g"));
    let generation = group["generation_id"].as_i64().unwrap();
    assert!(generation >= 1);
    b.stop();

    let b = TestBroker::start(dir.path());
    let (status, group) = get(&b.v3("/consumer-groups/g"));
    assert_eq!(status, 200, "{group}");
    // The instance lived in the broker and died with it; the group remains.
    assert_eq!(group["state"], "EMPTY");
    assert_eq!(group["generation_id"].as_i64(), Some(generation));
    let (_, lags) = get(&b.v3("/consumer-groups/g/lags"));
    let lags: Vec<(i64, i64, i64)> = lags["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["partition_id"].as_i64().unwrap(),
                l["current_offset"].as_i64().unwrap(),
                l["lag"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(lags.len(), 2);
    assert!(
        lags.iter()
            .all(|&(_, current, lag)| current == 5 && lag > 0),
        "{lags:?}"
    );
    // A new member resumes at the committed offsets, then commits further.
    let c = Consumer::create(&b, "g", "c2", json!({"auto.offset.reset": "latest"}));
    c.subscribe(&["t"]);
    settled(&b, &[&c], 2);
    let mut first: BTreeMap<i32, i64> = BTreeMap::new();
    while first.len() < 2 {
        for (p, o, _) in c.poll(500) {
            first.entry(p).or_insert(o);
        }
    }
    assert_eq!(first, BTreeMap::from([(0, 5), (1, 5)]));
    let (status, _) = c.commit("t", &BTreeMap::from([(0, 9), (1, 11)]));
    assert_eq!(status, 200);
    // An acknowledged commit survives kill -9.
    b.kill9();

    let b = TestBroker::start(dir.path());
    let c = Consumer::create(&b, "g", "c3", json!({}));
    assert_eq!(
        c.committed("t", &[0, 1]),
        BTreeMap::from([(0, 10), (1, 12)])
    );
    let (_, group) = get(&b.v3("/consumer-groups/g"));
    assert!(group["generation_id"].as_i64().unwrap() > generation);
}

/// Produces `count` records to a one-partition topic, each with a key and a value
/// of `RECORD_BYTES / 2` stored bytes (a JSON string, quotes included).
fn produce_sized(b: &TestBroker, topic: &str, count: usize) {
    let records: Vec<String> = (0..count)
        .map(|i| {
            let v = format!("{i:03}{}", "x".repeat(RECORD_BYTES / 2 - 5));
            json!({"key": {"type": "JSON", "data": v}, "value": {"type": "JSON", "data": v}})
                .to_string()
        })
        .collect();
    let (status, answer) = send(
        "POST",
        &b.v3(&format!("/topics/{topic}/records")),
        "application/json",
        &records.join("\n"),
    );
    assert_eq!(status, 200, "{answer}");
}

const RECORD_BYTES: usize = 200;

fn offsets(records: &[(i32, i64, Value)]) -> Vec<i64> {
    records.iter().map(|r| r.1).collect()
}

#[test]
fn unsubscribing_leaves_the_group_and_records_then_need_a_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 2);
    let c = Consumer::create(&b, "g", "c", json!({}));
    c.subscribe(&["t"]);
    settled(&b, &[&c], 2);
    c.unsubscribe();
    assert_eq!(
        get(&format!("{}/subscription", c.base)).1,
        json!({"topics": []})
    );
    assert!(c.assignments().is_empty());
    wait_for_state(&b, "g", "EMPTY");
    let (_, group) = get(&b.v3("/consumer-groups/g"));
    assert_eq!(group["members_count"], 0);
    let (status, body) = get_accept(&format!("{}/records", c.base), JSON_V2);
    assert_eq!(
        (status, body["error_code"].as_i64()),
        (409, Some(40903)),
        "{body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("not subscribed"), "{message}");
}

#[test]
fn max_bytes_limits_a_records_response_but_always_to_at_least_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 1);
    produce_sized(&b, "t", 10);
    let c = Consumer::create(&b, "g", "c", json!({}));
    c.subscribe(&["t"]);
    settled(&b, &[&c], 1);
    // Smaller than one record: one record all the same.
    assert_eq!(offsets(&c.poll_query("timeout=5000&max_bytes=1")), vec![0]);
    // Room for two records and a half: two.
    let two_and_a_half = RECORD_BYTES * 5 / 2;
    assert_eq!(
        offsets(&c.poll_query(&format!("timeout=5000&max_bytes={two_and_a_half}"))),
        vec![1, 2]
    );
    // Nothing skipped: the rest, in order.
    assert_eq!(
        offsets(&c.poll_query("timeout=5000&max_bytes=1000000")),
        (3..10).collect::<Vec<i64>>()
    );
}

#[test]
fn positions_beginning_and_end_move_where_the_next_records_start() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 1);
    produce_values(&b, "t", (0..10).map(|i| format!("v{i}")));
    let c = Consumer::create(&b, "g", "c", json!({}));
    c.subscribe(&["t"]);
    settled(&b, &[&c], 1);
    assert_eq!(offsets(&poll_until(&c, 10)), (0..10).collect::<Vec<i64>>());
    let seek = |path: &str, body: Value| {
        let (status, answer) = send("POST", &format!("{}/{path}", c.base), V2, &body.to_string());
        assert_eq!(status, 204, "{path}: {answer}");
    };
    let partition = json!({"partitions": [{"topic": "t", "partition": 0}]});
    seek(
        "positions",
        json!({"offsets": [{"topic": "t", "partition": 0, "offset": 6}]}),
    );
    assert_eq!(offsets(&poll_until(&c, 4)), vec![6, 7, 8, 9]);
    seek("positions/beginning", partition.clone());
    assert_eq!(offsets(&poll_until(&c, 10)), (0..10).collect::<Vec<i64>>());
    seek(
        "positions",
        json!({"offsets": [{"topic": "t", "partition": 0, "offset": 2}]}),
    );
    seek("positions/end", partition);
    assert!(c.poll(300).is_empty(), "at the end, nothing to read");
    produce_values(&b, "t", ["v10".to_string()]);
    let next = poll_until(&c, 1);
    assert_eq!(offsets(&next), vec![10]);
    assert_eq!(next[0].2, json!("v10"));
}

#[test]
fn auto_commit_commits_what_the_instance_returned() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 1);
    produce_sized(&b, "t", 10);
    let c = Consumer::create(&b, "g", "c", json!({"auto.commit.enable": "true"}));
    c.subscribe(&["t"]);
    settled(&b, &[&c], 1);
    assert_eq!(offsets(&c.poll_query("timeout=5000&max_bytes=1")), vec![0]);
    // Commits go out at the start of the next fetch: what was returned before it.
    assert_eq!(c.committed("t", &[0]), BTreeMap::new());
    assert_eq!(offsets(&c.poll_query("timeout=5000&max_bytes=1")), vec![1]);
    assert_eq!(c.committed("t", &[0]), BTreeMap::from([(0, 1)]));
    let two = RECORD_BYTES * 2;
    assert_eq!(
        offsets(&c.poll_query(&format!("timeout=5000&max_bytes={two}"))),
        vec![2, 3]
    );
    assert_eq!(c.committed("t", &[0]), BTreeMap::from([(0, 2)]));
    // Closing commits the rest of what was returned.
    c.delete();
    assert_eq!(lags(&b, "g", "t"), BTreeMap::from([(0, (4, 10, 6))]));
}

#[test]
fn assigned_partitions_are_read_and_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 3);
    produce_values(&b, "t", (0..60).map(|i| format!("v{i}")));
    let expected: BTreeSet<(i32, i64)> = [0, 2]
        .into_iter()
        .flat_map(|p| {
            read_partition(&b, "t", p)
                .into_iter()
                .map(move |r| (p, r.0))
        })
        .collect();
    assert!(
        !read_partition(&b, "t", 1).is_empty(),
        "partition 1 has records too"
    );
    let c = Consumer::create(&b, "m", "c", json!({}));
    c.assign("t", &[2, 0]);
    assert_eq!(c.assignments(), BTreeSet::from([0, 2]));
    let got: BTreeSet<(i32, i64)> = poll_until(&c, expected.len())
        .into_iter()
        .map(|(p, o, _)| (p, o))
        .collect();
    assert_eq!(got, expected);
    assert!(c.poll(300).is_empty(), "nothing beyond");
    // Outside group management: no member, and commits are the instance's own.
    let (_, group) = get(&b.v3("/consumer-groups/m"));
    assert_eq!(group["members_count"], 0, "{group}");
    let last: BTreeMap<i32, i64> = got.iter().map(|&(p, o)| (p, o)).collect();
    let (status, body) = c.commit("t", &last);
    assert_eq!(status, 200, "{body}");
    let committed = lags(&b, "m", "t");
    assert_eq!(
        committed
            .iter()
            .map(|(&p, l)| (p, l.2))
            .collect::<BTreeMap<_, _>>(),
        BTreeMap::from([(0, 0), (2, 0)])
    );
}

#[test]
fn group_admin_lists_describes_resets_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 3);
    produce_values(&b, "t", (0..30).map(|i| format!("v{i}")));
    let c = Consumer::create(&b, "g", "c", json!({}));
    c.subscribe(&["t"]);
    settled(&b, &[&c], 3);
    let mut consumed = 0;
    while consumed < 30 {
        consumed += c.poll(500).len();
    }
    // An empty-body commit commits everything returned so far.
    let (status, _) = send("POST", &format!("{}/offsets", c.base), V2, "");
    assert_eq!(status, 200);
    let (_, summary) = get(&b.v3("/consumer-groups/g/lag-summary"));
    assert_eq!(
        (summary["total_lag"].as_i64(), summary["max_lag"].as_i64()),
        (Some(0), Some(0))
    );
    produce_values(&b, "t", (0..9).map(|i| format!("w{i}")));
    let (_, summary) = get(&b.v3("/consumer-groups/g/lag-summary"));
    assert_eq!(summary["total_lag"].as_i64(), Some(9));
    assert!(summary["max_lag"].as_i64().unwrap() >= 3);
    let (_, lags) = get(&b.v3("/consumer-groups/g/lags"));
    let lags = lags["data"].as_array().unwrap();
    assert_eq!(lags.len(), 3);
    for l in lags {
        assert_eq!(
            l["lag"].as_i64().unwrap(),
            l["log_end_offset"].as_i64().unwrap() - l["current_offset"].as_i64().unwrap()
        );
        assert!(l["consumer_id"].as_str().unwrap().starts_with("c-"));
    }
    let (_, list) = get(&b.v3("/consumer-groups"));
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["consumer_group_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["g"]);

    // Reset and delete need an empty group.
    let reset = json!({"topic_name": "t", "to": "earliest"});
    let (status, body) = post_json(&b.v3("/consumer-groups/g/offsets:reset"), &reset);
    assert_eq!(
        (status, body["error_code"].as_i64()),
        (409, Some(40906)),
        "{body}"
    );
    let (status, body) = delete(&b.v3("/consumer-groups/g"));
    assert_eq!((status, body["error_code"].as_i64()), (409, Some(40906)));
    c.delete();
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&b.v3("/consumer-groups/g")).1["state"] != "EMPTY" {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, body) = post_json(
        &b.v3("/consumer-groups/g/offsets:reset"),
        &json!({"topic_name": "t", "partitions": [1], "to": "offset", "offset": 2}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["offset"].as_i64(), Some(2));
    let (status, body) = post_json(&b.v3("/consumer-groups/g/offsets:reset"), &reset);
    assert_eq!(status, 200, "{body}");
    let (_, summary) = get(&b.v3("/consumer-groups/g/lag-summary"));
    assert_eq!(summary["total_lag"].as_i64(), Some(39));
    let (status, _) = delete(&b.v3("/consumer-groups/g"));
    assert_eq!(status, 204);
    let (status, body) = get(&b.v3("/consumer-groups/g"));
    assert_eq!((status, body["error_code"].as_i64()), (404, Some(40405)));
    // Deleted for good: not back after a restart.
    b.stop();
    let b = TestBroker::start(dir.path());
    let (_, list) = get(&b.v3("/consumer-groups"));
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
}

#[test]
fn group_offsets_reset_to_latest_and_to_a_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 2);
    // Partition 0 at timestamps 1000, 2000, … 10000; partition 1 at 100000 and on.
    let records: Vec<String> = (0..20)
        .map(|i| {
            let (p, ts) = if i < 10 {
                (0, (i + 1) * 1_000)
            } else {
                (1, 100_000 + i)
            };
            json!({"partition_id": p, "timestamp": ts, "value": {"type": "JSON", "data": i}})
                .to_string()
        })
        .collect();
    let (status, body) = send(
        "POST",
        &b.v3("/topics/t/records"),
        "application/json",
        &records.join("\n"),
    );
    assert_eq!(status, 200, "{body}");
    let reset = |body: Value| {
        let (status, answer) = post_json(&b.v3("/consumer-groups/g/offsets:reset"), &body);
        assert_eq!(status, 200, "{body}: {answer}");
        answer["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["partition_id"].as_i64().unwrap() as i32,
                    o["offset"].as_i64().unwrap(),
                )
            })
            .collect::<BTreeMap<i32, i64>>()
    };
    let current = || {
        lags(&b, "g", "t")
            .into_iter()
            .map(|(p, (current, end, lag))| {
                assert_eq!(lag, end - current);
                (p, current)
            })
            .collect::<BTreeMap<i32, i64>>()
    };

    let latest = reset(json!({"topic_name": "t", "to": "latest"}));
    assert_eq!(latest, BTreeMap::from([(0, 10), (1, 10)]));
    assert_eq!(current(), latest);
    let (_, summary) = get(&b.v3("/consumer-groups/g/lag-summary"));
    assert_eq!(summary["total_lag"].as_i64(), Some(0));

    // The first record at or after 5500 ms: t-0 offset 5 (6000 ms); all of t-1.
    let at = reset(json!({"topic_name": "t", "to": "timestamp", "timestamp": 5_500}));
    assert_eq!(at, BTreeMap::from([(0, 5), (1, 0)]));
    assert_eq!(current(), at);
    let (_, summary) = get(&b.v3("/consumer-groups/g/lag-summary"));
    assert_eq!(summary["total_lag"].as_i64(), Some(15));
    // ISO-8601, one partition only: the other keeps its offset.
    let at = reset(json!({
        "topic_name": "t", "partitions": [0], "to": "timestamp",
        "timestamp": "1970-01-01T00:00:08Z",
    }));
    assert_eq!(at, BTreeMap::from([(0, 7)]));
    assert_eq!(current(), BTreeMap::from([(0, 7), (1, 0)]));
    // Later than every record: the log end.
    let at = reset(json!({"topic_name": "t", "to": "timestamp", "timestamp": 200_000}));
    assert_eq!(at, BTreeMap::from([(0, 10), (1, 10)]));
    assert_eq!(current(), at);
}

#[test]
fn a_live_member_is_described_with_its_assignments_and_partition_lags() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 2);
    produce_values(&b, "t", (0..20).map(|i| format!("v{i}")));
    let c = Consumer::create(&b, "g", "c", json!({}));
    c.subscribe(&["t"]);
    settled(&b, &[&c], 2);
    let (_, consumers) = get(&b.v3("/consumer-groups/g/consumers"));
    let id = consumers["data"][0]["consumer_id"]
        .as_str()
        .expect("a member")
        .to_string();
    assert!(id.starts_with("c-"), "{id}");

    let (status, member) = get(&b.v3(&format!("/consumer-groups/g/consumers/{id}")));
    assert_eq!(status, 200, "{member}");
    assert_eq!(member["kind"], "KafkaConsumer");
    assert_eq!(member["consumer_group_id"], "g");
    assert_eq!(member["consumer_id"], id.as_str());
    assert_eq!(member["client_id"], "c");
    let assignments_url = member["assignments"]["related"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(assignments_url.ends_with(&format!("/consumer-groups/g/consumers/{id}/assignments")));

    let (status, assignments) = get(&assignments_url);
    assert_eq!(status, 200, "{assignments}");
    let assigned: BTreeSet<i32> = assignments["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(
                (&a["topic_name"], &a["consumer_id"]),
                (&json!("t"), &json!(id))
            );
            a["partition_id"].as_i64().unwrap() as i32
        })
        .collect();
    assert_eq!(assigned, c.assignments());
    assert_eq!(assigned, BTreeSet::from([0, 1]));

    // Only t-0 committed (the record at offset 2 processed): t-1 has no lag yet.
    let on_0: Vec<i64> = poll_until(&c, 20)
        .into_iter()
        .filter(|r| r.0 == 0)
        .map(|r| r.1)
        .collect();
    assert!(on_0.len() >= 3, "{on_0:?}");
    let (status, body) = c.commit("t", &BTreeMap::from([(0, 2)]));
    assert_eq!(status, 200, "{body}");
    let (status, lag) = get(&b.v3("/consumer-groups/g/lags/t/partitions/0"));
    assert_eq!(status, 200, "{lag}");
    assert_eq!(lag["kind"], "KafkaConsumerLag");
    assert_eq!(
        (
            lag["current_offset"].as_i64(),
            lag["log_end_offset"].as_i64(),
            lag["lag"].as_i64()
        ),
        (
            Some(3),
            Some(on_0.len() as i64),
            Some(on_0.len() as i64 - 3)
        )
    );
    assert_eq!(lag["consumer_id"], id.as_str());
    assert_eq!(lag["client_id"], "c");
    let (status, _) = get(&b.v3("/consumer-groups/g/lags/t/partitions/1"));
    assert_eq!(status, 404);

    let err = |(status, body): (u16, Value)| (status, body["error_code"].as_i64().unwrap_or(0));
    assert_eq!(
        err(get(&b.v3("/consumer-groups/g/consumers/nobody"))),
        (404, 40403)
    );
    assert_eq!(
        err(get(&b.v3("/consumer-groups/g/consumers/nobody/assignments"))),
        (404, 40403)
    );
    // Gone once it leaves; the lag stays, with no owner.
    c.delete();
    wait_for_state(&b, "g", "EMPTY");
    assert_eq!(
        err(get(&b.v3(&format!("/consumer-groups/g/consumers/{id}")))),
        (404, 40403)
    );
    let (_, lag) = get(&b.v3("/consumer-groups/g/lags/t/partitions/0"));
    assert_eq!(
        (lag["current_offset"].as_i64(), &lag["consumer_id"]),
        (Some(3), &json!(""))
    );
}

#[test]
fn the_internal_offsets_topic_refuses_produce_partitions_and_config_changes() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    // Something in it: a group's commit.
    create_topic(&b, "t", 1);
    let (status, body) = post_json(
        &b.v3("/consumer-groups/g/offsets:reset"),
        &json!({"topic_name": "t", "to": "earliest"}),
    );
    assert_eq!(status, 200, "{body}");
    let topic = b.v3("/topics/__consumer_offsets");
    let end_offsets = || -> Vec<i64> {
        (0..50)
            .map(|p| {
                let (status, o) = get(&b.url(&format!(
                    "/topics/__consumer_offsets/partitions/{p}/offsets"
                )));
                assert_eq!(status, 200, "{o}");
                o["end_offset"].as_i64().unwrap()
            })
            .collect()
    };
    let before = (
        get(&topic).1,
        get(&format!("{topic}/configs")).1,
        end_offsets(),
    );
    assert!(before.2.iter().sum::<i64>() > 0);

    let refused = |(status, body): (u16, Value)| {
        assert_eq!(
            (status, body["error_code"].as_i64()),
            (400, Some(40002)),
            "{body}"
        );
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("'__consumer_offsets' is internal and read-only"),
            "{message}"
        );
    };
    let v2_records = r#"{"records": [{"value": {"forged": true}}]}"#;
    refused(send(
        "POST",
        &b.url("/topics/__consumer_offsets"),
        JSON_V2,
        v2_records,
    ));
    refused(send(
        "POST",
        &b.url("/topics/__consumer_offsets/partitions/0"),
        JSON_V2,
        v2_records,
    ));
    refused(send(
        "PATCH",
        &topic,
        "application/json",
        &json!({"partitions_count": 60}).to_string(),
    ));
    refused(send(
        "PUT",
        &format!("{topic}/configs/cleanup.policy"),
        "application/json",
        &json!({"value": "delete"}).to_string(),
    ));
    refused(delete(&format!("{topic}/configs/cleanup.policy")));
    for validate_only in [false, true] {
        refused(send(
            "POST",
            &format!("{topic}/configs:alter"),
            "application/json",
            &json!({
                "data": [{"name": "retention.ms", "value": "1"}],
                "validate_only": validate_only,
            })
            .to_string(),
        ));
    }
    let after = (
        get(&topic).1,
        get(&format!("{topic}/configs")).1,
        end_offsets(),
    );
    assert_eq!(
        before, after,
        "the topic, its configs and its data are unchanged"
    );
    assert_eq!(after.0["partitions_count"], 50);
}

#[test]
fn bad_consumer_requests_get_the_documented_errors_and_commit_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 2);
    let err = |(status, body): (u16, Value)| (status, body["error_code"].as_i64().unwrap_or(0));
    let create = |body: &str| send("POST", &b.url("/consumers/g"), V2, body);
    assert_eq!(err(create("{\"name\": ")), (400, 400));
    assert_eq!(err(create(r#"{"format": "avro"}"#)), (422, 42204));
    assert_eq!(
        err(create(r#"{"auto.offset.reset": "sometimes"}"#)),
        (422, 42204)
    );
    assert_eq!(
        err(create(r#"{"auto.commit.enable": "maybe"}"#)),
        (422, 42204)
    );
    let c = Consumer::create(&b, "g", "c", json!({"format": "binary"}));
    assert_eq!(err(create(r#"{"name": "c"}"#)), (409, 40902));

    let unknown = b.url("/consumers/g/instances/nobody");
    assert_eq!(err(get(&format!("{unknown}/subscription"))), (404, 40403));
    assert_eq!(err(delete(&unknown)), (404, 40403));
    // Not subscribed yet.
    assert_eq!(
        err(get_accept(
            &format!("{}/records", c.base),
            "application/vnd.kafka.binary.v2+json"
        )),
        (409, 40903)
    );
    let sub = format!("{}/subscription", c.base);
    assert_eq!(err(send("POST", &sub, V2, "{\"topics\": [")), (400, 400));
    assert_eq!(
        err(send("POST", &sub, V2, r#"{"topics": []}"#)),
        (422, 42206)
    );
    assert_eq!(
        err(send("POST", &sub, V2, r#"{"topics": ["bad name"]}"#)),
        (400, 40002)
    );
    c.subscribe(&["t"]);
    settled(&b, &[&c], 2);
    // The instance's format is binary: asking for JSON is refused.
    assert_eq!(
        err(get_accept(&format!("{}/records", c.base), JSON_V2)),
        (406, 40601)
    );
    // Subscribed instances cannot also take manual assignments.
    let assign = json!({"partitions": [{"topic": "t", "partition": 0}]}).to_string();
    assert_eq!(
        err(send(
            "POST",
            &format!("{}/assignments", c.base),
            V2,
            &assign
        )),
        (409, 40903)
    );

    let offsets = format!("{}/offsets", c.base);
    let commit = |partition: i64, offset: i64| {
        json!({"offsets": [{"topic": "t", "partition": partition, "offset": offset}]}).to_string()
    };
    assert_eq!(
        err(send("POST", &offsets, V2, "{\"offsets\": [{")),
        (400, 400)
    );
    assert_eq!(
        err(send("POST", &offsets, V2, r#"{"offsets": 5}"#)),
        (400, 40002)
    );
    assert_eq!(
        err(send("POST", &offsets, V2, &commit(0, -4))),
        (400, 40002)
    );
    assert_eq!(
        err(send("POST", &offsets, V2, &commit(7, 1))),
        (409, 40903),
        "not assigned"
    );
    assert_eq!(err(send("POST", &offsets, V2, &commit(0, 1))).0, 200);
    assert_eq!(err(send("POST", &offsets, V2, &commit(1, 1))).0, 200);
    // A second member takes a partition: committing it now is refused, whole.
    let other = Consumer::create(&b, "g", "other", json!({}));
    other.subscribe(&["t"]);
    let now = settled(&b, &[&c, &other], 2);
    let lost = *now[1].iter().next().unwrap();
    let kept = *now[0].iter().next().unwrap();
    let both = json!({"offsets": [
        {"topic": "t", "partition": kept, "offset": 20},
        {"topic": "t", "partition": lost, "offset": 20},
    ]})
    .to_string();
    assert_eq!(err(send("POST", &offsets, V2, &both)), (409, 40903));
    assert_eq!(
        c.committed("t", &[0, 1]),
        BTreeMap::from([(0, 2), (1, 2)]),
        "nothing of the refused commits stuck"
    );

    let positions = format!("{}/positions", c.base);
    let seek = |p: i32, o: i64| {
        json!({"offsets": [{"topic": "t", "partition": p, "offset": o}]}).to_string()
    };
    assert_eq!(
        err(send("POST", &positions, V2, &seek(kept, -1))),
        (400, 40002)
    );
    assert_eq!(
        err(send("POST", &positions, V2, &seek(lost, 0))),
        (409, 40903)
    );
    assert_eq!(err(send("POST", &positions, V2, &seek(kept, 0))).0, 204);
    let ends = json!({"partitions": [{"topic": "t", "partition": kept}]}).to_string();
    assert_eq!(
        err(send("POST", &format!("{positions}/end"), V2, &ends)).0,
        204
    );
    assert_eq!(
        err(send("POST", &format!("{positions}/beginning"), V2, "[")),
        (400, 400)
    );

    // Group admin errors.
    assert_eq!(err(get(&b.v3("/consumer-groups/nope"))), (404, 40405));
    assert_eq!(err(delete(&b.v3("/consumer-groups/nope"))), (404, 40405));
    let reset = |body: Value| post_json(&b.v3("/consumer-groups/g2/offsets:reset"), &body);
    assert_eq!(
        err(reset(json!({"topic_name": "nope", "to": "earliest"}))),
        (404, 40403)
    );
    assert_eq!(
        err(reset(json!({"topic_name": "t", "to": "yesterday"}))),
        (400, 40002)
    );
    assert_eq!(
        err(reset(json!({"topic_name": "t", "to": "offset"}))),
        (400, 40002)
    );
    assert_eq!(
        err(reset(
            json!({"topic_name": "t", "partitions": [9], "to": "latest"})
        )),
        (404, 40402)
    );
    // The internal topic is visible but read-only.
    let (_, topics) = get(&b.v3("/topics"));
    let internal = topics["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic_name"] == "__consumer_offsets")
        .expect("__consumer_offsets is listed")
        .clone();
    assert_eq!(internal["is_internal"], true);
    assert_eq!(internal["partitions_count"], 50);
    assert_eq!(
        err(delete(&b.v3("/topics/__consumer_offsets"))),
        (400, 40002)
    );
    let (status, _) = send(
        "POST",
        &b.v3("/topics/__consumer_offsets/records"),
        "application/json",
        r#"{"value": {"type": "JSON", "data": 1}}"#,
    );
    assert_eq!(status, 400);
    // Failed resets created no group; the broker still serves, the group is intact.
    assert_eq!(err(get(&b.v3("/consumer-groups/g2"))), (404, 40405));
    assert_eq!(c.committed("t", &[kept]), BTreeMap::from([(kept, 2)]));
}
