//! Replication under faults (`../shared/FAULTS.md`): three real nodes, topics with
//! replication factor 3 and `min.insync.replicas=2`, a workload of producers that
//! log every write as `ok` (acknowledged, with its offset), `fail` (refused before
//! anything was appended) or `info` (unknown outcome), faults injected while it runs,
//! and a checker that reads everything back and compares the replicas' segment
//! files byte for byte below the high watermark.
//!
//! `TROUPE_FAULT_<NAME>` sets how many rounds a test makes (KILLS, TERMS, KIP101,
//! PAUSES, ISOLATIONS, TWO_DOWN; CI runs the defaults, the README's long run more).

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
    /// When its answer came.
    at: Instant,
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
                            at: Instant::now(),
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

/// Four writes to partition 0 of `topic`, sent to node `node` at once from threads
/// (values `{prefix}-0` … `{prefix}-3`, each waiting up to `timeout_s`): join them
/// for their outcomes.
fn write_in_background(
    c: &TestCluster,
    node: usize,
    topic: &str,
    prefix: &str,
    timeout_s: u64,
) -> Vec<std::thread::JoinHandle<Op>> {
    let url = c.node(node).url(&format!(
        "/v3/clusters/{}/topics/{topic}/records",
        c.cluster_id
    ));
    (0..4)
        .map(|i| {
            let (url, value) = (url.clone(), format!("{prefix}-{i}"));
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(timeout_s))
                    .build();
                let body = json!({"partition_id": 0, "value": {"type": "JSON", "data": value}});
                Op {
                    partition: 0,
                    outcome: produce(&agent, &url, &body),
                    value,
                    at: Instant::now(),
                }
            })
        })
        .collect()
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
        // Refused before the append (NOT_ENOUGH_REPLICAS, a leader that could not be
        // connected to): the broker says "nothing was written".
        Some(50301 | 50003)
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
    let deadline = Instant::now() + Duration::from_secs(10);
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
                let value = match &r["value"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (r["offset"].as_i64().expect("offset"), value)
            })
            .collect();
        let Some(last) = page.last() else {
            // Below the high watermark a read has records: an empty page is a
            // leader between rounds (it waits), never the end.
            assert!(
                Instant::now() < deadline,
                "{topic}-{p} read through node {via} answered nothing at {offset}, below its end {end}"
            );
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
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
    /// The first few anomalies, for the report.
    details: Vec<String>,
}

impl Report {
    /// Writes the run's report (`target/tmp/faults/<run>.json`), prints its one-line
    /// summary, and fails the test on any safety count above 0.
    fn assert_safe(&self, run: &str) {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults");
        let report = json!({
            "run": run,
            "acknowledged": self.acknowledged,
            "failed": self.failed,
            "unknown": self.unknown,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "inconsistent_offsets": self.inconsistent_offsets,
            "aborted_read": self.aborted_read,
            "nonmonotonic_send": self.nonmonotonic,
            "details": self.details,
        });
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join(format!("{run}.json")), report.to_string()));
        if let Err(e) = written {
            eprintln!("the fault report of {run} could not be written: {e}");
        }
        eprintln!("checker {run}: {self:?}");
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
    for (value, _) in seen.iter().filter(|(_, n)| **n > 1).take(5) {
        let places: Vec<_> = at
            .iter()
            .filter(|(_, v)| *v == value)
            .map(|(k, _)| *k)
            .collect();
        let outcomes: Vec<_> = ops
            .iter()
            .filter(|o| o.value == *value)
            .map(|o| format!("{:?}", o.outcome))
            .collect();
        report.details.push(format!(
            "{value} at {places:?}, sent with outcome {outcomes:?}"
        ));
    }
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

/// Starts node `id` again and lets the workload send to it.
fn restart_into(c: &mut TestCluster, nodes: &Nodes, id: usize) {
    c.start_nodes(&[id]);
    nodes.lock().expect("nodes").insert(id, c.node(id).url(""));
}

/// Three nodes with quick fencing, and `topic` replicated on all three with every
/// ISR whole.
fn replicated_cluster(topic: &str, partitions: i32, min_insync: u32) -> TestCluster {
    let c = TestCluster::start(FAULTY);
    wait_until("every broker alive", Duration::from_secs(20), || {
        all_alive(&c, 1)
    });
    create_replicated(&c, topic, partitions, min_insync);
    wait_full_isr(&c, 1, topic, partitions, Duration::from_secs(10));
    c
}

#[test]
fn replicated_writes_reach_every_replica_and_survive_leader_kills() {
    let kills = rounds("KILLS", 10);
    let (topic, partitions) = ("replicated", 3);
    let mut c = replicated_cluster(topic, partitions, 2);
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
                    !replica_bytes(&c.cwd.join(format!("node{n}")).join(format!("{topic}-0")))
                        .is_empty()
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
        restart_into(&mut c, &nodes, victim);
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
    report.assert_safe("leader-kills");
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

/// Reads every partition through `via` (workload values only) and checks `ops`
/// against it; then every replica's bytes below the high watermark.
fn final_check(
    c: &TestCluster,
    via: usize,
    topic: &str,
    partitions: i32,
    ops: &[Op],
    nodes: &[usize],
) {
    wait_full_isr(c, via, topic, partitions, Duration::from_secs(30));
    let read: HashMap<i32, Vec<(i64, String)>> = (0..partitions)
        .map(|p| {
            let records = read_all(c, via, topic, p);
            let workload = records
                .into_iter()
                .filter(|(_, v)| {
                    v.split('-').count() == 2 && v.starts_with(|ch: char| ch.is_ascii_digit())
                })
                .collect();
            (p, workload)
        })
        .collect();
    check(ops, &read).assert_safe(topic);
    wait_until(
        "the replicas agree below the high watermark",
        Duration::from_secs(10),
        || replica_divergence(c, topic, partitions, nodes) == 0,
    );
}

/// Count from `TROUPE_FAULT_<name>`, else `default` (the CI tier).
fn rounds(name: &str, default: usize) -> usize {
    std::env::var(format!("TROUPE_FAULT_{name}"))
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(default)
}

#[test]
fn a_paused_leader_acknowledges_nothing_after_the_new_epoch_and_truncates_to_the_new_leader() {
    let pauses = rounds("PAUSES", 3);
    let (topic, partitions) = ("zombie", 2);
    let c = replicated_cluster(topic, partitions, 2);
    let nodes: Nodes = Arc::new(Mutex::new(nodes_of(&c)));
    let workload = Workload::start(&c.cluster_id, nodes.clone(), topic, partitions, 30);
    let mut zombie_ops = Vec::new();
    for round in 0..pauses {
        std::thread::sleep(Duration::from_millis(1500));
        let via = *nodes.lock().expect("nodes").keys().next().expect("a node");
        let (leader, _) = leader_and_isr(&c, via, topic, 0);
        let zombie = leader.expect("a leader") as usize;
        nodes.lock().expect("nodes").remove(&zombie);
        c.node(zombie).pause(true);
        eprintln!("pause {round}: broker {zombie}, partition 0's leader");
        let survivor = *nodes
            .lock()
            .expect("nodes")
            .keys()
            .next()
            .expect("a node up");
        wait_until(
            "another leader in a new epoch",
            Duration::from_secs(10),
            || {
                leader_and_isr(&c, survivor, topic, 0)
                    .0
                    .is_some_and(|l| l != zombie as i64)
            },
        );
        // Writes sent to the zombie while it is frozen: it takes them the moment it
        // wakes, before it hears of the new epoch.
        let senders = write_in_background(&c, zombie, topic, &format!("z{round}"), 20);
        std::thread::sleep(Duration::from_millis(300));
        c.node(zombie).pause(false);
        for sender in senders {
            zombie_ops.push(sender.join().expect("a zombie write"));
        }
        nodes
            .lock()
            .expect("nodes")
            .insert(zombie, c.node(zombie).url(""));
        wait_full_isr(&c, survivor, topic, partitions, Duration::from_secs(30));
    }
    let mut ops = workload.finish();
    eprintln!(
        "writes sent to the paused leader: {:?}",
        zombie_ops.iter().map(|o| &o.outcome).collect::<Vec<_>>()
    );
    ops.extend(zombie_ops);
    // The zombie's writes are checked apart from the workload's sequences.
    let (zombie, workload): (Vec<Op>, Vec<Op>) =
        ops.into_iter().partition(|o| o.value.starts_with('z'));
    final_check(&c, 1, topic, partitions, &workload, &[1, 2, 3]);
    let records = read_all(&c, 1, topic, 0);
    for op in &zombie {
        if let Outcome::Ok(offset) = op.outcome {
            assert!(
                records.contains(&(offset, op.value.clone())),
                "an acknowledged write is at its offset: {op:?}"
            );
        }
    }
}

/// A leader killed, replaced, and restarted while the others are frozen comes back
/// with metadata from before the election that replaced it (it says this node leads,
/// unfenced). It must serve nothing on that: no listener opens until its new
/// registration is committed, which moves those leaderships first.
#[test]
fn a_restarted_leader_serves_nothing_on_the_metadata_it_replays_until_registered_again() {
    let topic = "stale-leader";
    let mut c = replicated_cluster(topic, 1, 1);
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let write = |c: &TestCluster, via: usize, value: String| {
        let url = c.v3(via, &format!("/topics/{topic}/records"));
        let body = json!({"partition_id": 0, "value": {"type": "JSON", "data": value}});
        Op {
            partition: 0,
            outcome: produce(&agent, &url, &body),
            value,
            at: Instant::now(),
        }
    };
    let mut ops: Vec<Op> = (0..5).map(|i| write(&c, 1, format!("0-{i}"))).collect();
    let stale = leader_and_isr(&c, 1, topic, 0).0.expect("a leader") as usize;
    let others: Vec<usize> = (1..=3).filter(|n| *n != stale).collect();
    c.kill9(stale);
    wait_until("another leader", Duration::from_secs(15), || {
        leader_and_isr(&c, others[0], topic, 0)
            .0
            .is_some_and(|l| l >= 0 && l != stale as i64)
    });
    ops.extend((5..10).map(|i| write(&c, others[0], format!("0-{i}"))));
    for n in &others {
        c.node(*n).pause(true);
    }
    let restarting = c.start_in_background(stale);
    std::thread::sleep(Duration::from_secs(6));
    let served_early = restarting.is_finished();
    for n in &others {
        c.node(*n).pause(false);
    }
    let node = restarting.join().expect("the restarted node starts");
    c.adopt(stale, node);
    assert!(
        !served_early,
        "node {stale} served on the metadata it replayed, before its new registration was committed"
    );
    // Not even inside: its replica did not lead in the epoch the others left behind.
    let stale_leadership = c.node(stale).logged(&format!(
        "partition {topic}-0 online (Leader {{ leader_epoch: 0 }}"
    ));
    assert!(
        stale_leadership.is_empty(),
        "node {stale} led on the metadata it replayed: {stale_leadership:?}"
    );
    wait_until("every broker alive", Duration::from_secs(30), || {
        all_alive(&c, 1)
    });
    ops.extend((10..15).map(|i| write(&c, stale, format!("0-{i}"))));
    wait_full_isr(&c, 1, topic, 1, Duration::from_secs(30));
    final_check(&c, 1, topic, 1, &ops, &[1, 2, 3]);
    assert!(
        ops.iter().all(|o| matches!(o.outcome, Outcome::Ok(_))),
        "every write was acknowledged: {:?}",
        ops.iter().map(|o| &o.outcome).collect::<Vec<_>>()
    );
}

/// The longest wait between acknowledged writes to `partition` from `from` until
/// the first acknowledgement after `to` (from the last one before `from`).
fn longest_write_gap(ops: &[Op], partition: i32, from: Instant, to: Instant) -> Duration {
    let mut acked: Vec<Instant> = ops
        .iter()
        .filter(|o| o.partition == partition && matches!(o.outcome, Outcome::Ok(_)))
        .map(|o| o.at)
        .collect();
    acked.sort();
    let first = acked.iter().rposition(|t| *t <= from).unwrap_or(0);
    let last = acked
        .iter()
        .position(|t| *t > to)
        .unwrap_or(acked.len().saturating_sub(1));
    acked[first..=last.max(first)]
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(to - from)
}

/// A2 (FAULTS.md): SIGTERM partition 0's leader, repeatedly, under the workload. A
/// controlled shutdown moves its leaderships before it exits: the partition has
/// another leader the moment it is gone, writes to it pause at most 1 s, it stops
/// within 30 s, and nothing acknowledged is lost.
#[test]
fn a_terminated_leader_hands_over_before_it_exits_and_nothing_is_lost() {
    let (topic, partitions) = ("handover", 2);
    let mut c = replicated_cluster(topic, partitions, 2);
    let nodes: Nodes = Arc::new(Mutex::new(nodes_of(&c)));
    let workload = Workload::start(&c.cluster_id, nodes.clone(), topic, partitions, 40);
    let mut windows = Vec::new();
    for round in 0..rounds("TERMS", 10) {
        std::thread::sleep(Duration::from_millis(1500));
        let via = *nodes.lock().expect("nodes").keys().next().expect("a node");
        let victim = leader_and_isr(&c, via, topic, 0).0.expect("a leader") as usize;
        nodes.lock().expect("nodes").remove(&victim);
        let asked = Instant::now();
        c.stop(victim);
        let stopped = Instant::now();
        let survivor = *nodes.lock().expect("nodes").keys().next().expect("a node");
        let (leader, _) = leader_and_isr(&c, survivor, topic, 0);
        eprintln!(
            "term {round}: broker {victim} stopped in {:?}; partition 0 now led by {leader:?}",
            stopped - asked
        );
        assert!(
            leader.is_some_and(|l| l >= 0 && l != victim as i64),
            "partition 0 had another leader when broker {victim} exited: {leader:?}"
        );
        assert!(stopped - asked <= Duration::from_secs(30));
        windows.push((asked, stopped));
        restart_into(&mut c, &nodes, victim);
        wait_full_isr(&c, survivor, topic, partitions, Duration::from_secs(30));
    }
    let ops = workload.finish();
    let gaps: Vec<Duration> = windows
        .iter()
        .map(|(from, to)| longest_write_gap(&ops, 0, *from, *to))
        .collect();
    eprintln!("longest write gap on partition 0 per SIGTERM: {gaps:?}");
    final_check(&c, 1, topic, partitions, &ops, &[1, 2, 3]);
    assert!(
        gaps.iter().all(|g| *g <= Duration::from_secs(1)),
        "writes paused longer than 1 s: {gaps:?}"
    );
}

/// A4 (FAULTS.md, KIP-101's case): kill a follower, restart it, and kill the leader
/// the moment it is back. The new leader may hold less than the restarted follower
/// did; the follower truncates to it, and no replica diverges below the high
/// watermark.
#[test]
fn a_follower_restarted_as_its_leader_dies_keeps_no_divergent_tail() {
    let (topic, partitions) = ("kip101", 2);
    let mut c = replicated_cluster(topic, partitions, 2);
    let nodes: Nodes = Arc::new(Mutex::new(nodes_of(&c)));
    let workload = Workload::start(&c.cluster_id, nodes.clone(), topic, partitions, 40);
    for round in 0..rounds("KIP101", 10) {
        std::thread::sleep(Duration::from_millis(1500));
        let via = *nodes.lock().expect("nodes").keys().next().expect("a node");
        let leader = leader_and_isr(&c, via, topic, 0).0.expect("a leader") as usize;
        let follower = (1..=3).find(|n| *n != leader).expect("a follower");
        nodes.lock().expect("nodes").remove(&follower);
        c.kill9(follower);
        c.start_nodes(&[follower]);
        nodes.lock().expect("nodes").remove(&leader);
        c.kill9(leader);
        nodes
            .lock()
            .expect("nodes")
            .insert(follower, c.node(follower).url(""));
        eprintln!("round {round}: follower {follower} restarted, leader {leader} killed");
        wait_until("another leader", Duration::from_secs(15), || {
            leader_and_isr(&c, follower, topic, 0)
                .0
                .is_some_and(|l| l >= 0 && l != leader as i64)
        });
        restart_into(&mut c, &nodes, leader);
        wait_full_isr(&c, follower, topic, partitions, Duration::from_secs(30));
    }
    let ops = workload.finish();
    final_check(&c, 1, topic, partitions, &ops, &[1, 2, 3]);
}

#[test]
fn with_min_insync_two_writes_are_refused_while_both_followers_are_paused_and_nothing_is_lost() {
    // Four nodes: the quorum (1, 2, 3) keeps a majority with nodes 2 and 4 paused.
    let c = TestCluster::start_nodes_with(4, FAULTY, &[(4, "process.roles=broker")]);
    wait_until("four brokers alive", Duration::from_secs(30), || {
        let states = c.broker_states(1);
        states.len() == 4 && states.iter().all(|(_, s)| s == "alive")
    });
    let topic = "guarded2";
    let (status, body) = post_json(
        &c.v3(1, "/topics"),
        &json!({
            "topic_name": topic,
            "replicas_assignments": [{"partition_id": 0, "broker_ids": [1, 2, 4]}],
            "configs": [{"name": "min.insync.replicas", "value": "2"}],
        }),
    );
    assert_eq!(status, 201, "{body}");
    wait_until("the ISR is whole", Duration::from_secs(15), || {
        c.up()
            .all(|(id, _)| get(&c.v3(id, &format!("/topics/{topic}"))).0 == 200)
            && leader_and_isr(&c, 1, topic, 0).1.len() == 3
    });
    let nodes: Nodes = Arc::new(Mutex::new(BTreeMap::from([
        (1, c.node(1).url("")),
        (3, c.node(3).url("")),
    ])));
    let workload = Workload::start(&c.cluster_id, nodes.clone(), topic, 1, 20);
    std::thread::sleep(Duration::from_secs(1));
    let before = workload.finish();
    // Both followers freeze: the ISR shrinks to the leader, and from then on every
    // acks=all write is refused before anything is appended.
    c.node(2).pause(true);
    c.node(4).pause(true);
    let paused_at = Instant::now();
    let during = Workload::start(&c.cluster_id, nodes.clone(), topic, 1, 20);
    wait_until(
        "the ISR shrinks to the leader",
        Duration::from_secs(15),
        || leader_and_isr(&c, 3, topic, 0).1 == vec![1],
    );
    std::thread::sleep(Duration::from_secs(2));
    let during = during.finish();
    eprintln!("paused for {:?}", paused_at.elapsed());
    let acked: Vec<&Op> = during
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Ok(_)))
        .collect();
    assert!(
        acked.is_empty(),
        "no write is acknowledged by the leader alone: {acked:?}"
    );
    assert!(
        during.iter().any(|o| matches!(o.outcome, Outcome::Fail)),
        "writes are refused with NOT_ENOUGH_REPLICAS: {during:?}"
    );
    c.node(2).pause(false);
    c.node(4).pause(false);
    wait_until(
        "the followers are back in the ISR",
        Duration::from_secs(30),
        || leader_and_isr(&c, 3, topic, 0).1.len() == 3,
    );
    let after = Workload::start(&c.cluster_id, nodes, topic, 1, 20);
    std::thread::sleep(Duration::from_secs(1));
    let mut ops = before;
    ops.extend(during);
    ops.extend(after.finish());
    // The workloads restart their sequences: check them as separate producers.
    let read = read_all(&c, 3, topic, 0);
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (_, v) in &read {
        *seen.entry(v.as_str()).or_default() += 1;
    }
    for op in &ops {
        match op.outcome {
            Outcome::Ok(offset) => {
                assert!(read.contains(&(offset, op.value.clone())), "lost: {op:?}")
            }
            Outcome::Fail => {}
            Outcome::Info => {}
        }
    }
    assert!(
        ops.iter()
            .filter(|o| matches!(o.outcome, Outcome::Ok(_)))
            .count()
            > 10
    );
    wait_until(
        "the replicas agree below the high watermark",
        Duration::from_secs(10),
        || replica_divergence(&c, topic, 1, &[1, 2, 4]) == 0,
    );
}

#[test]
fn killing_two_of_three_makes_partitions_unavailable_never_lossy() {
    let (topic, partitions) = ("two-down", 2);
    let mut c = replicated_cluster(topic, partitions, 2);
    let nodes: Nodes = Arc::new(Mutex::new(nodes_of(&c)));
    let workload = Workload::start(&c.cluster_id, nodes.clone(), topic, partitions, 30);
    for round in 0..rounds("TWO_DOWN", 2) {
        std::thread::sleep(Duration::from_millis(1500));
        let mut victims = vec![1, 2, 3];
        victims.remove(round % 3);
        for v in &victims {
            nodes.lock().expect("nodes").remove(v);
            c.kill9(*v);
        }
        std::thread::sleep(Duration::from_secs(3));
        // Back in either order.
        if round % 2 == 1 {
            victims.reverse();
        }
        for v in &victims {
            c.start_nodes(&[*v]);
            nodes.lock().expect("nodes").insert(*v, c.node(*v).url(""));
            std::thread::sleep(Duration::from_millis(500));
        }
        wait_until("every broker alive", Duration::from_secs(30), || {
            all_alive(&c, 1)
        });
        wait_full_isr(&c, 1, topic, partitions, Duration::from_secs(30));
    }
    let ops = workload.finish();
    final_check(&c, 1, topic, partitions, &ops, &[1, 2, 3]);
}

#[test]
fn an_idempotent_kafka_producer_loses_and_duplicates_nothing_across_leader_kills() {
    let topic = "idempotent";
    let mut c = replicated_cluster(topic, 1, 2);
    let bootstrap = c
        .up()
        .map(|(_, n)| n.bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    let script = format!(
        r#"
import json, time
from confluent_kafka import Producer
delivered, failed = [], []
def report(err, msg):
    if err is None:
        delivered.append((msg.value().decode(), msg.offset()))
    else:
        failed.append((msg.value().decode(), str(err)))
p = Producer({{'bootstrap.servers': '{bootstrap}', 'enable.idempotence': True, 'acks': 'all',
              'message.timeout.ms': 60000, 'retry.backoff.ms': 100, 'linger.ms': 5,
              'topic.metadata.refresh.interval.ms': 1000}})
end, i = time.time() + {seconds}, 0
while time.time() < end:
    p.produce('{topic}', value=str(i).encode(), partition=0, on_delivery=report)
    i += 1
    p.poll(0)
    time.sleep(0.01)
p.flush(60)
print(json.dumps({{'delivered': delivered, 'failed': failed, 'sent': i}}))
"#,
        seconds = 25
    );
    let python = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    for kill in 0..3 {
        std::thread::sleep(Duration::from_secs(2));
        let via = c.up().map(|(id, _)| id).next().expect("a node");
        let victim = leader_and_isr(&c, via, topic, 0).0.expect("a leader") as usize;
        c.kill9(victim);
        eprintln!("kill {kill}: broker {victim}");
        let survivor = c.up().map(|(id, _)| id).next().expect("a node");
        wait_until("a new leader", Duration::from_secs(10), || {
            leader_and_isr(&c, survivor, topic, 0)
                .0
                .is_some_and(|l| l != victim as i64)
        });
        c.start_nodes(&[victim]);
        wait_full_isr(&c, survivor, topic, 1, Duration::from_secs(30));
    }
    let out = python.wait_with_output().expect("python ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("the script's JSON");
    let delivered: Vec<(String, i64)> = result["delivered"]
        .as_array()
        .expect("delivered")
        .iter()
        .map(|d| {
            (
                d[0].as_str().expect("a value").to_string(),
                d[1].as_i64().expect("an offset"),
            )
        })
        .collect();
    eprintln!(
        "confluent-kafka: {} sent, {} delivered, {} failed",
        result["sent"],
        delivered.len(),
        result["failed"].as_array().map_or(0, Vec::len)
    );
    assert!(delivered.len() > 100, "{result}");
    let read = read_all(&c, 1, topic, 0);
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (_, v) in &read {
        *seen.entry(v.as_str()).or_default() += 1;
    }
    let duplicates: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "duplicated: {duplicates:?}");
    for (value, offset) in &delivered {
        assert!(
            read.contains(&(*offset, value.clone())),
            "lost: {value} at {offset}"
        );
    }
    // The idempotent producer keeps its order: values rise with offsets.
    let values: Vec<i64> = read.iter().filter_map(|(_, v)| v.parse().ok()).collect();
    assert!(values.windows(2).all(|w| w[0] < w[1]), "out of order");
    wait_until(
        "the replicas agree below the high watermark",
        Duration::from_secs(10),
        || replica_divergence(&c, topic, 1, &[1, 2, 3]) == 0,
    );
}

/// A metric's value in a `/metrics` scrape.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_reassignment_raises_the_replication_factor_then_moves_the_partition_off_its_leader() {
    let mut c = TestCluster::start(FAULTY);
    wait_until("every broker alive", Duration::from_secs(20), || {
        all_alive(&c, 1)
    });
    let topic = "moving";
    let (status, body) = post_json(
        &c.v3(1, "/topics"),
        &json!({"topic_name": topic, "replicas_assignments": [{"partition_id": 0, "broker_ids": [1]}]}),
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
    for i in 0..30 {
        assert_eq!(
            c.produce(2, topic, 0, &format!("before-{i}"))["error_code"],
            200
        );
    }
    let reassignment = format!("/topics/{topic}/partitions/0/reassignment");
    // Nothing moves yet.
    let (_, r) = get(&c.v3(3, &reassignment));
    assert_eq!(
        (r["adding_replicas"].clone(), r["removing_replicas"].clone()),
        (json!([]), json!([])),
        "{r}"
    );
    // Factor 1 → 3: the new replicas copy the log, then join the ISR.
    let (status, r) = post_json(&c.v3(3, &reassignment), &json!({"replica_ids": [1, 2, 3]}));
    assert_eq!(status, 202, "{r}");
    wait_until(
        "the new replicas are in the ISR",
        Duration::from_secs(20),
        || {
            let (leader, isr) = leader_and_isr(&c, 1, topic, 0);
            let (_, r) = get(&c.v3(1, &reassignment));
            leader == Some(1) && isr.len() == 3 && r["adding_replicas"] == json!([])
        },
    );
    let (_, t) = get(&c.v3(1, &format!("/topics/{topic}")));
    assert_eq!(t["replication_factor"], 3, "{t}");
    assert_eq!(replica_divergence(&c, topic, 1, &[1, 2, 3]), 0);
    // Off its leader: to brokers 2 and 3 only, with the CLI. Writes go on meanwhile.
    let out = crate::cli::troupe(
        Some(c.node(2)),
        &[
            "topics",
            "reassign",
            "--topic",
            topic,
            "--partition",
            "0",
            "--replicas",
            "2,3",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        crate::cli::stdout(&out).contains("removing: [1]"),
        "{}",
        crate::cli::stdout(&out)
    );
    for i in 0..10 {
        assert!(c.produce_outcome(3, topic, 0, &format!("during-{i}")) || i < 3);
    }
    let old_dir = c.cwd.join("node1").join(format!("{topic}-0"));
    wait_until(
        "the partition moved off broker 1",
        Duration::from_secs(20),
        || {
            let (leader, mut isr) = leader_and_isr(&c, 3, topic, 0);
            isr.sort();
            leader == Some(2) && isr == vec![2, 3] && !old_dir.exists()
        },
    );
    let values: Vec<String> = read_all(&c, 1, topic, 0)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        values.iter().filter(|v| v.starts_with("before-")).count(),
        30,
        "{values:?}"
    );
    assert_eq!(replica_divergence(&c, topic, 1, &[2, 3]), 0);
    // A follower down: under-replicated in /metrics and in the CLI's describe.
    assert_eq!(
        metric(
            &c.node(1).metrics(),
            "troupe_cluster_under_replicated_partitions"
        ),
        Some(0.0)
    );
    c.kill9(3);
    wait_until("the ISR shrinks", Duration::from_secs(15), || {
        leader_and_isr(&c, 1, topic, 0).1 == vec![2]
    });
    assert_eq!(
        metric(
            &c.node(1).metrics(),
            "troupe_cluster_under_replicated_partitions"
        ),
        Some(1.0)
    );
    let out = crate::cli::troupe(
        Some(c.node(1)),
        &["topics", "describe", "--under-replicated-partitions"],
        None,
    );
    let described = crate::cli::stdout(&out);
    assert!(
        described.contains(&format!(
            "Topic: {topic}\tPartition: 0\tLeader: 2\tReplicas: 2,3\tIsr: 2"
        )),
        "{described}"
    );
    assert_eq!(
        described.lines().count(),
        1,
        "only the under-replicated partition: {described}"
    );
}

#[test]
fn a_group_coordinator_moves_with_its_offsets_partition_and_committed_offsets_survive() {
    let mut overrides = FAULTY.to_vec();
    overrides.push("offsets.topic.replication.factor=3");
    let mut c = TestCluster::start(&overrides);
    wait_until("every broker alive", Duration::from_secs(20), || {
        all_alive(&c, 1)
    });
    let topic = "coordinated";
    create_replicated(&c, topic, 3, 2);
    wait_full_isr(&c, 1, topic, 3, Duration::from_secs(10));
    wait_until(
        "the offsets topic, replicated",
        Duration::from_secs(30),
        || {
            get(&c.v3(1, "/topics/__consumer_offsets")).0 == 200
                && wait_isr_of(&c, "__consumer_offsets", 50)
        },
    );
    for p in 0..3 {
        for i in 0..20 {
            assert_eq!(
                c.produce(1, topic, p, &format!("{p}-{i}"))["error_code"],
                200
            );
        }
    }
    let group = "moving-coordinator";
    let consume = |b: &crate::broker::TestBroker, count: usize| {
        crate::kafka::python(
            b,
            &format!(
                r#"
from confluent_kafka import Consumer, TopicPartition
c = Consumer({{"bootstrap.servers": BOOTSTRAP, "group.id": "{group}", "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "session.timeout.ms": 6000}})
c.subscribe(["{topic}"])
got, before = 0, None
import time
deadline = time.time() + 40
while before is None and time.time() < deadline:
    a = c.assignment()
    if a:
        before = {{str(t.partition): t.offset for t in c.committed(a, timeout=10)}}
    c.poll(0.2)
while got < {count} and time.time() < deadline:
    m = c.poll(0.5)
    if m is not None and m.error() is None:
        got += 1
        c.commit(message=m, asynchronous=False)
after = {{str(t.partition): t.offset for t in c.committed([TopicPartition("{topic}", p) for p in range(3)], timeout=10)}}
c.close()
print(json.dumps({{"before": before, "after": after, "got": got}}))
"#
            ),
        )
    };
    let first = consume(c.node(1), 25);
    eprintln!("first consumer: {first}");
    assert_eq!(first["got"], 25, "{first}");
    // The coordinator's broker dies: the group's offsets partition gets a new
    // leader, which rebuilds the group from its replica.
    let offsets_p = crate::cluster::offsets_partition(group, 50) as i32;
    let coordinator = leader_and_isr(&c, 1, "__consumer_offsets", offsets_p)
        .0
        .expect("a coordinator") as usize;
    c.kill9(coordinator);
    let survivor = (1..=3).find(|n| *n != coordinator).expect("a survivor");
    wait_until("a new coordinator", Duration::from_secs(15), || {
        leader_and_isr(&c, survivor, "__consumer_offsets", offsets_p)
            .0
            .is_some_and(|l| l != coordinator as i64)
    });
    let second = consume(c.node(survivor), 10);
    eprintln!("second consumer: {second}");
    // Committed offsets never go backwards across the move, nor past the data.
    for p in 0..3 {
        let key = p.to_string();
        let committed = first["after"][&key].as_i64().unwrap_or(-1001);
        let seen_again = second["before"][&key].as_i64().unwrap_or(-1001);
        assert!(
            seen_again >= committed,
            "partition {p}: {committed} before, {seen_again} after: {second}"
        );
        assert!(seen_again <= 20, "{second}");
    }
    assert_eq!(second["got"], 10, "{second}");
}

/// Whether every partition of `topic` (of `partitions`) has its whole ISR, as node 1
/// sees it.
fn wait_isr_of(c: &TestCluster, topic: &str, partitions: i32) -> bool {
    let (status, body) = get(&c.v3(1, &format!("/topics/{topic}/partitions")));
    status == 200
        && body["data"].as_array().is_some_and(|ps| {
            ps.len() == partitions as usize
                && ps
                    .iter()
                    .all(|p| p["isr_ids"].as_array().map_or(0, Vec::len) == 3)
        })
}

#[test]
fn an_isolated_leader_acknowledges_nothing_while_the_majority_elects_and_serves() {
    let mut rounds_left = rounds("ISOLATIONS", 2);
    let c = TestCluster::start_proxied(FAULTY);
    wait_until("every broker alive", Duration::from_secs(30), || {
        all_alive(&c, 1)
    });
    let (topic, partitions) = ("isolated", 2);
    create_replicated(&c, topic, partitions, 2);
    wait_full_isr(&c, 1, topic, partitions, Duration::from_secs(15));
    let faults = c.proxies.as_ref().expect("proxies").faults.clone();
    let nodes: Nodes = Arc::new(Mutex::new(nodes_of(&c)));
    let workload = Workload::start(&c.cluster_id, nodes.clone(), topic, partitions, 30);
    let mut minority_ops = Vec::new();
    let mut elections = Vec::new();
    while rounds_left > 0 {
        rounds_left -= 1;
        std::thread::sleep(Duration::from_millis(1500));
        let (leader, _) = leader_and_isr(&c, 1, topic, 0);
        let cut = leader.expect("a leader") as usize;
        nodes.lock().expect("nodes").remove(&cut);
        let survivor = (1..=3).find(|n| *n != cut).expect("a survivor");
        faults.isolate(cut);
        let cut_at = Instant::now();
        eprintln!("isolating broker {cut}, partition 0's leader");
        // Writes sent to the cut-off leader itself: it cannot commit them.
        let senders = write_in_background(&c, cut, topic, &format!("m{cut}"), 8);
        // The majority notices, elects another leader and takes writes.
        wait_until(
            "the majority elects a leader",
            Duration::from_secs(15),
            || {
                leader_and_isr(&c, survivor, topic, 0)
                    .0
                    .is_some_and(|l| l != cut as i64)
            },
        );
        let mut probe = 0;
        wait_until(
            "a write acknowledged by the majority",
            Duration::from_secs(10),
            || {
                probe += 1;
                c.produce_outcome(survivor, topic, 0, &format!("probe-{cut}-{probe}"))
            },
        );
        elections.push(cut_at.elapsed());
        for sender in senders {
            minority_ops.push(sender.join().expect("a write to the cut-off leader"));
        }
        std::thread::sleep(Duration::from_secs(3));
        faults.heal();
        nodes
            .lock()
            .expect("nodes")
            .insert(cut, c.node(cut).url(""));
        wait_until("every broker alive again", Duration::from_secs(30), || {
            all_alive(&c, survivor)
        });
        wait_full_isr(&c, survivor, topic, partitions, Duration::from_secs(30));
    }
    let ops = workload.finish();
    eprintln!(
        "writes to the isolated leader: {:?}; elected and serving after {elections:?}",
        minority_ops.iter().map(|o| &o.outcome).collect::<Vec<_>>()
    );
    let acked: Vec<&Op> = minority_ops
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Ok(_)))
        .collect();
    assert!(
        acked.is_empty(),
        "the isolated leader acknowledged writes: {acked:?}"
    );
    assert!(
        elections.iter().all(|e| *e <= Duration::from_secs(10)),
        "{elections:?}"
    );
    final_check(&c, 1, topic, partitions, &ops, &[1, 2, 3]);
}

#[test]
fn a_slow_follower_leaves_the_isr_while_acks_go_on_and_rejoins_when_it_catches_up() {
    let c = TestCluster::start_proxied(FAULTY);
    wait_until("every broker alive", Duration::from_secs(30), || {
        all_alive(&c, 1)
    });
    let topic = "slow";
    create_replicated(&c, topic, 1, 2);
    wait_full_isr(&c, 1, topic, 1, Duration::from_secs(15));
    let faults = c.proxies.as_ref().expect("proxies").faults.clone();
    let leader = leader_and_isr(&c, 1, topic, 0).0.expect("a leader") as usize;
    let slow = (1..=3).find(|n| *n != leader).expect("a follower");
    let rss_before = c.node(leader).rss_bytes();
    let nodes: Nodes = Arc::new(Mutex::new(nodes_of(&c)));
    let workload = Workload::start(&c.cluster_id, nodes, topic, 1, 40);
    // Writes that do not wait for the followers keep the leader's log end moving, so
    // a slow follower falls behind it (a lone acks=all producer would wait for it).
    let stop_leader_only = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let leader_only = {
        let url = format!(
            "{}?acks=1",
            c.v3(leader, &format!("/topics/{topic}/records"))
        );
        let stop = stop_leader_only.clone();
        std::thread::spawn(move || {
            let agent = ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(10))
                .build();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let body =
                    json!({"partition_id": 0, "value": {"type": "JSON", "data": format!("a-{i}")}});
                let _ = agent
                    .post(&url)
                    .set("Content-Type", "application/json")
                    .send_string(&body.to_string());
                i += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    // Broker `slow`'s replication traffic takes 1.5 s each way from now on.
    faults.slow_down(slow, Duration::from_millis(1500));
    let slowed_at = Instant::now();
    wait_until(
        "the slow follower leaves the ISR (replica.lag.time.max.ms + 5 s)",
        Duration::from_secs(2 + 5),
        || {
            !leader_and_isr(&c, leader, topic, 0)
                .1
                .contains(&(slow as i64))
        },
    );
    eprintln!("out of the ISR after {:?}", slowed_at.elapsed());
    // Acknowledgements go on without it.
    let acked_before = Instant::now();
    let mut probe = 0;
    wait_until(
        "writes acknowledged without the slow follower",
        Duration::from_secs(5),
        || {
            probe += 1;
            c.produce_outcome(leader, topic, 0, &format!("probe-slow-{probe}"))
        },
    );
    assert!(acked_before.elapsed() < Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(3));
    faults.heal();
    wait_until(
        "the follower rejoins the ISR",
        Duration::from_secs(30),
        || {
            leader_and_isr(&c, leader, topic, 0)
                .1
                .contains(&(slow as i64))
        },
    );
    let ops = workload.finish();
    stop_leader_only.store(true, Ordering::Relaxed);
    leader_only.join().expect("the acks=1 writer");
    let grown = c.node(leader).rss_bytes().saturating_sub(rss_before);
    eprintln!("leader RSS grew {} KiB", grown / 1024);
    assert!(grown < 64 << 20, "the leader's RSS grew {grown} bytes");
    final_check(&c, 1, topic, 1, &ops, &[1, 2, 3]);
}

/// An offset-based WebSocket subscriber on a surviving node, through a kill of one
/// partition's leader and its return: it sees each committed record once, in order,
/// exactly what a final read finds.
#[test]
fn a_websocket_subscriber_reads_every_record_once_in_order_across_a_leader_kill() {
    let (topic, partitions) = ("streamed", 2);
    let mut c = replicated_cluster(topic, partitions, 2);
    let victim = leader_and_isr(&c, 1, topic, 0).0.expect("a leader") as usize;
    let watcher = (1..=3).find(|n| *n != victim).expect("another node");
    let mut ws = crate::ws::WsClient::connect(c.node(watcher));
    ws.send(json!({"type": "subscribe", "sub": "s", "topic": topic, "from": "beginning"}));
    ws.expect("subscribed", Instant::now() + Duration::from_secs(10));
    let nodes: Nodes = Arc::new(Mutex::new(nodes_of(&c)));
    let workload = Workload::start(&c.cluster_id, nodes.clone(), topic, partitions, 30);
    std::thread::sleep(Duration::from_secs(2));
    nodes.lock().expect("nodes").remove(&victim);
    c.kill9(victim);
    wait_until("a new leader", Duration::from_secs(10), || {
        leader_and_isr(&c, watcher, topic, 0)
            .0
            .is_some_and(|l| l != victim as i64)
    });
    std::thread::sleep(Duration::from_secs(2));
    restart_into(&mut c, &nodes, victim);
    wait_full_isr(&c, watcher, topic, partitions, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(1));
    let ops = workload.finish();
    let read: HashMap<i32, Vec<(i64, String)>> = (0..partitions)
        .map(|p| (p, read_all(&c, watcher, topic, p)))
        .collect();
    let total: usize = read.values().map(Vec::len).sum();
    let mut other = Vec::new();
    let got = ws.collect(
        "s",
        total,
        Instant::now() + Duration::from_secs(30),
        &mut other,
    );
    for p in 0..partitions {
        let streamed: Vec<(i64, String)> = got
            .get(&p)
            .map(|records| {
                records
                    .iter()
                    .map(|(o, v)| (*o, v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            streamed, read[&p],
            "partition {p}: the subscriber saw each committed record once, in offset order"
        );
    }
    check(&ops, &read).assert_safe("websocket-across-a-kill");
}
