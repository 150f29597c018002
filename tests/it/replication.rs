//! Replication under faults (`../shared/FAULTS.md`): three real nodes, topics with
//! replication factor 3 and `min.insync.replicas=2`, a workload of producers that
//! log every write as `ok` (acknowledged, with its offset), `fail` (refused before
//! anything was appended) or `info` (unknown outcome), faults injected while it runs,
//! and a checker that reads everything back and compares the replicas' segment
//! files byte for byte below the high watermark.
//!
//! `TROUPE_FAULT_KILLS` sets how many leader kills the kill test makes (10 in CI; the
//! long run in the README uses 50).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::broker::{get, get_accept, post_json};
use crate::cluster::{all_alive, wait_until, TestCluster};

/// Quick fencing and ISR changes, so faults show within seconds.
const FAULTY: &[&str] = &[
    "broker.session.timeout.ms=3000",
    "broker.heartbeat.interval.ms=500",
    "replica.lag.time.max.ms=2000",
    "replica.fetch.wait.max.ms=200",
    "replica.fetch.backoff.ms=200",
];

/// What one write came to.
#[derive(Debug, Clone)]
enum Outcome {
    /// Acknowledged at this offset.
    Ok(i64),
    /// Refused before anything was appended.
    Fail,
    /// Unknown: a timeout, a dropped connection, an error after the append.
    Info,
}

#[derive(Debug, Clone)]
struct Op {
    partition: i32,
    value: String,
    outcome: Outcome,
}

/// The base URLs (`http://127.0.0.1:port`) of the nodes a workload may send to.
type Nodes = Arc<Mutex<BTreeMap<usize, String>>>;

fn nodes_of(c: &TestCluster) -> BTreeMap<usize, String> {
    c.up().map(|(id, n)| (id, n.url(""))).collect()
}

/// Producers, one per partition, each sending `{p}-{seq}` through the nodes in
/// turn, acks=all (REST's default), about `per_second` writes each.
struct Workload {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Vec<Op>>>,
}

impl Workload {
    fn start(
        cluster_id: &str,
        nodes: Nodes,
        topic: &str,
        partitions: i32,
        per_second: u64,
    ) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..partitions)
            .map(|p| {
                let (stop, nodes) = (stop.clone(), nodes.clone());
                let path = format!("/v3/clusters/{cluster_id}/topics/{topic}/records");
                std::thread::spawn(move || {
                    let agent = ureq::AgentBuilder::new()
                        .timeout(Duration::from_secs(10))
                        .build();
                    let mut ops = Vec::new();
                    let pause = Duration::from_millis(1000 / per_second.max(1));
                    let mut seq = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let targets: Vec<String> = nodes
                            .lock()
                            .map(|n| n.values().cloned().collect())
                            .unwrap_or_default();
                        if targets.is_empty() {
                            std::thread::sleep(pause);
                            continue;
                        }
                        let base = &targets[seq as usize % targets.len()];
                        let value = format!("{p}-{seq}");
                        seq += 1;
                        let body =
                            json!({"partition_id": p, "value": {"type": "JSON", "data": value}});
                        let outcome = produce(&agent, &format!("{base}{path}"), &body);
                        ops.push(Op {
                            partition: p,
                            value,
                            outcome,
                        });
                        std::thread::sleep(pause);
                    }
                    ops
                })
            })
            .collect();
        Workload { stop, threads }
    }

    fn finish(self) -> Vec<Op> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .flat_map(|t| t.join().expect("a producer thread"))
            .collect()
    }
}

fn produce(agent: &ureq::Agent, url: &str, body: &Value) -> Outcome {
    let answer = agent
        .post(url)
        .set("Content-Type", "application/json")
        .send_string(&body.to_string());
    let text = match answer {
        Ok(r) => r.into_string().unwrap_or_default(),
        Err(ureq::Error::Status(_, r)) => r.into_string().unwrap_or_default(),
        Err(_) => return Outcome::Info,
    };
    let report: Value =
        serde_json::from_str(text.lines().next().unwrap_or("")).unwrap_or(Value::Null);
    match report["error_code"].as_i64() {
        Some(200) => report["offset"].as_i64().map_or(Outcome::Info, Outcome::Ok),
        // NOT_ENOUGH_REPLICAS, refused before the append ("nothing was written").
        Some(50301)
            if report["message"]
                .as_str()
                .is_some_and(|m| m.contains("nothing was written")) =>
        {
            Outcome::Fail
        }
        _ => Outcome::Info,
    }
}

/// A partition's leader and ISR as node `via` sees them.
fn leader_and_isr(c: &TestCluster, via: usize, topic: &str, p: i32) -> (Option<i64>, Vec<i64>) {
    let (status, body) = get(&c.v3(via, &format!("/topics/{topic}/partitions/{p}")));
    assert_eq!(status, 200, "{body}");
    let isr = body["isr_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    (body["leader_id"].as_i64(), isr)
}

/// Every (offset, value) of a partition from its start to its high watermark,
/// read through node `via` in pages.
fn read_all(c: &TestCluster, via: usize, topic: &str, p: i32) -> Vec<(i64, String)> {
    let (status, offsets) = get(&c
        .node(via)
        .url(&format!("/topics/{topic}/partitions/{p}/offsets")));
    assert_eq!(status, 200, "{offsets}");
    let end = offsets["end_offset"].as_i64().expect("an end offset");
    let mut offset = offsets["beginning_offset"]
        .as_i64()
        .expect("a beginning offset");
    let mut records = Vec::new();
    while offset < end {
        let (status, body) = get_accept(
            &c.node(via).url(&format!(
                "/topics/{topic}/partitions/{p}/records?offset={offset}&max_bytes=1048576"
            )),
            "application/vnd.kafka.json.v2+json",
        );
        assert_eq!(status, 200, "{body}");
        let page: Vec<(i64, String)> = body
            .as_array()
            .expect("records")
            .iter()
            .map(|r| {
                (
                    r["offset"].as_i64().expect("offset"),
                    r["value"].as_str().expect("a string value").to_string(),
                )
            })
            .collect();
        let Some(last) = page.last() else { break };
        offset = last.0 + 1;
        records.extend(page);
    }
    records
}

/// What the checker found; every safety count must be 0.
#[derive(Debug, Default)]
struct Report {
    acknowledged: usize,
    failed: usize,
    unknown: usize,
    lost: usize,
    duplicates: usize,
    inconsistent_offsets: usize,
    aborted_read: usize,
    nonmonotonic: usize,
}

impl Report {
    fn assert_safe(&self) {
        eprintln!("checker: {self:?}");
        assert!(
            self.acknowledged > 0,
            "the workload made progress: {self:?}"
        );
        assert_eq!(
            (
                self.lost,
                self.duplicates,
                self.inconsistent_offsets,
                self.aborted_read,
                self.nonmonotonic
            ),
            (0, 0, 0, 0, 0),
            "safety: {self:?}"
        );
    }
}

/// Checks the workload's log against the final read of every partition.
fn check(ops: &[Op], read: &HashMap<i32, Vec<(i64, String)>>) -> Report {
    let mut report = Report::default();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut at: HashMap<(i32, i64), &str> = HashMap::new();
    for (p, records) in read {
        let mut last = -1;
        for (offset, value) in records {
            *seen.entry(value.as_str()).or_default() += 1;
            at.insert((*p, *offset), value.as_str());
            // One producer per partition: its sequence numbers increase.
            let seq: i64 = value
                .rsplit('-')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(-1);
            if seq <= last {
                report.nonmonotonic += 1;
            }
            last = seq;
        }
    }
    report.duplicates = seen.values().filter(|n| **n > 1).count();
    for op in ops {
        match op.outcome {
            Outcome::Ok(offset) => {
                report.acknowledged += 1;
                match at.get(&(op.partition, offset)) {
                    None => report.lost += 1,
                    Some(v) if *v != op.value => report.inconsistent_offsets += 1,
                    Some(_) => {}
                }
            }
            Outcome::Fail => {
                report.failed += 1;
                if seen.contains_key(op.value.as_str()) {
                    report.aborted_read += 1;
                }
            }
            Outcome::Info => report.unknown += 1,
        }
    }
    report
}

/// A replica's record batches, its segment files' bytes in offset order.
fn replica_bytes(dir: &Path) -> Vec<u8> {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect()
        })
        .unwrap_or_default();
    logs.sort();
    logs.iter()
        .flat_map(|p| std::fs::read(p).unwrap_or_default())
        .collect()
}

/// How many bytes of `bytes` hold the batches below `high_watermark`.
fn bytes_below(bytes: &[u8], high_watermark: i64) -> usize {
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let base = i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes"));
        if base >= high_watermark || len <= 0 {
            break;
        }
        at += 12 + len as usize;
    }
    at.min(bytes.len())
}

/// Every live replica of each partition holds the same batches below the high
/// watermark, byte for byte: the number of partitions that differ.
fn replica_divergence(c: &TestCluster, topic: &str, partitions: i32, nodes: &[usize]) -> usize {
    let mut divergent = 0;
    for p in 0..partitions {
        let (status, offsets) = get(&c
            .node(nodes[0])
            .url(&format!("/topics/{topic}/partitions/{p}/offsets")));
        assert_eq!(status, 200, "{offsets}");
        let hw = offsets["end_offset"].as_i64().expect("an end offset");
        let copies: Vec<Vec<u8>> = nodes
            .iter()
            .map(|n| {
                let bytes =
                    replica_bytes(&c.cwd.join(format!("node{n}")).join(format!("{topic}-{p}")));
                let keep = bytes_below(&bytes, hw);
                bytes[..keep].to_vec()
            })
            .collect();
        if copies.windows(2).any(|w| w[0] != w[1]) {
            eprintln!(
                "{topic}-{p}: replicas differ below the high watermark {hw}: lengths {:?}",
                copies.iter().map(Vec::len).collect::<Vec<_>>()
            );
            divergent += 1;
        }
    }
    divergent
}

fn create_replicated(c: &TestCluster, topic: &str, partitions: i32, min_insync: u32) {
    let (status, body) = post_json(
        &c.v3(1, "/topics"),
        &json!({
            "topic_name": topic,
            "partitions_count": partitions,
            "replication_factor": 3,
            "configs": [{"name": "min.insync.replicas", "value": min_insync.to_string()}],
        }),
    );
    assert_eq!(status, 201, "{body}");
    wait_until(
        "every node knows the topic",
        Duration::from_secs(10),
        || {
            c.up()
                .all(|(id, _)| get(&c.v3(id, &format!("/topics/{topic}"))).0 == 200)
        },
    );
}

/// Waits until every partition of `topic` has all three replicas in its ISR.
fn wait_full_isr(c: &TestCluster, via: usize, topic: &str, partitions: i32, within: Duration) {
    wait_until("every ISR is whole", within, || {
        (0..partitions).all(|p| leader_and_isr(c, via, topic, p).1.len() == 3)
    });
}

#[test]
fn replicated_writes_reach_every_replica_and_survive_leader_kills() {
    let kills: usize = std::env::var("TROUPE_FAULT_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(10);
    let mut c = TestCluster::start(FAULTY);
    wait_until("every broker alive", Duration::from_secs(20), || {
        all_alive(&c, 1)
    });
    let (topic, partitions) = ("replicated", 3);
    create_replicated(&c, topic, partitions, 2);
    wait_full_isr(&c, 1, topic, partitions, Duration::from_secs(10));
    // Acknowledged means on every in-sync replica: all three hold each record.
    for i in 0..5 {
        let report = c.produce(2, topic, 0, &format!("first-{i}"));
        assert_eq!(report["error_code"], 200, "{report}");
    }
    wait_until(
        "the followers have the records",
        Duration::from_secs(10),
        || {
            replica_divergence(&c, topic, 1, &[1, 2, 3]) == 0
                && [1, 2, 3].iter().all(|n| {
                    replica_bytes(&c.cwd.join(format!("node{n}")).join(format!("{topic}-0"))).len()
                        > 0
                })
        },
    );

    let nodes: Nodes = Arc::new(Mutex::new(nodes_of(&c)));
    let workload = Workload::start(&c.cluster_id, nodes.clone(), topic, partitions, 40);
    let mut failovers = Vec::new();
    for kill in 0..kills {
        std::thread::sleep(Duration::from_millis(1500));
        let via = *nodes
            .lock()
            .expect("nodes")
            .keys()
            .next()
            .expect("a node up");
        let (leader, _) = leader_and_isr(&c, via, topic, 0);
        let victim = leader.expect("partition 0 has a leader") as usize;
        nodes.lock().expect("nodes").remove(&victim);
        let killed_at = Instant::now();
        c.kill9(victim);
        eprintln!("kill {kill}: broker {victim}, partition 0's leader");
        let survivor = *nodes
            .lock()
            .expect("nodes")
            .keys()
            .next()
            .expect("a node up");
        wait_until(
            "another leader for partition 0",
            Duration::from_secs(10),
            || {
                leader_and_isr(&c, survivor, topic, 0)
                    .0
                    .is_some_and(|l| l != victim as i64)
            },
        );
        // A write acknowledged by the new leader, whoever sent it.
        let mut probe = 0;
        wait_until("a write to the new leader", Duration::from_secs(10), || {
            probe += 1;
            c.produce_outcome(survivor, topic, 0, &format!("probe-{kill}-{probe}"))
        });
        failovers.push(killed_at.elapsed());
        c.start_nodes(&[victim]);
        nodes
            .lock()
            .expect("nodes")
            .insert(victim, c.node(victim).url(""));
        wait_full_isr(&c, survivor, topic, partitions, Duration::from_secs(30));
    }
    let ops = workload.finish();
    let via = 1;
    wait_full_isr(&c, via, topic, partitions, Duration::from_secs(30));
    let read: HashMap<i32, Vec<(i64, String)>> = (0..partitions)
        .map(|p| {
            let records = read_all(&c, via, topic, p);
            (
                p,
                records
                    .into_iter()
                    .filter(|(_, v)| !v.starts_with("probe-") && !v.starts_with("first-"))
                    .collect(),
            )
        })
        .collect();
    let report = check(&ops, &read);
    report.assert_safe();
    failovers.sort();
    eprintln!(
        "failover (kill -9 to a write acknowledged by the new leader) over {kills} kills: p50 {:?}, max {:?}",
        failovers[failovers.len() / 2],
        failovers.last()
    );
    assert!(
        failovers.iter().all(|f| *f <= Duration::from_secs(10)),
        "{failovers:?}"
    );
    wait_until("the replicas agree", Duration::from_secs(10), || {
        replica_divergence(&c, topic, partitions, &[1, 2, 3]) == 0
    });
}
