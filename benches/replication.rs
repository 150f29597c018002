//! Replication benchmark: `cargo bench --bench replication`.
//!
//! On one three-node cluster (every node a broker and a controller), in the same run:
//!
//! - **The cost of safety**: REST produce throughput to a topic of replication
//!   factor 3 with `acks=all` (every in-sync replica has each record fsynced before
//!   it is answered) ÷ a topic of factor 1 with `acks=1` (the leader's fsync only).
//!   Three partitions each, one producer thread per partition sending batches of
//!   records to the partition's leader.
//! - **Follower catch-up**: a factor-1 partition filled with `TROUPE_BENCH_CATCHUP_MB`
//!   (default 64) MiB is reassigned to two replicas; the new follower's copy rate (its
//!   bytes ÷ the time until it joins the ISR) ÷ a sequential read of the leader's
//!   segment files (page cache warm, as the leader serves it).
//! - **Leader failover**: kill -9 a partition's leader, time until a write is
//!   acknowledged by the new leader (acks=all, through another node), restart it,
//!   wait until the ISR is whole; `TROUPE_BENCH_KILLS` times (default 20): p50/p99.
//!
//! Environment: `TROUPE_BENCH_SECONDS` per throughput case (default 10),
//! `TROUPE_BENCH_DIR` (default `target/bench-data`), `TROUPE_BENCH_LOG=1` to see the nodes' logs.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod support;
use support::bench_settings;
use support::cluster::{env_count, percentile, print_table, via_up, Three, CLUSTER};

const RECORD_BYTES: usize = 1024;
const BATCH: usize = 200;

fn v3(three: &Three, node: usize, path: &str) -> String {
    format!("{}/v3/clusters/{CLUSTER}{path}", three.base(node))
}

fn get(url: &str) -> Value {
    ureq::get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .into_json()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn create(three: &Three, body: Value) {
    ureq::post(&v3(three, 1, "/topics"))
        .send_json(body)
        .unwrap_or_else(|e| panic!("creating a topic: {e}"));
}

/// Each partition's (leader, ISR size, replica count).
fn partitions(three: &Three, via: usize, topic: &str) -> Vec<(i64, usize, usize)> {
    let body = get(&v3(three, via, &format!("/topics/{topic}/partitions")));
    body["data"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    (
                        p["leader_id"].as_i64().unwrap_or(-1),
                        p["isr_ids"].as_array().map_or(0, Vec::len),
                        p["replica_ids"].as_array().map_or(0, Vec::len),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn whole_isr(three: &Three, via: usize, topic: &str) -> bool {
    let ps = partitions(three, via, topic);
    !ps.is_empty()
        && ps
            .iter()
            .all(|(l, isr, replicas)| *l >= 0 && isr == replicas)
}

/// One batch of `BATCH` records of `RECORD_BYTES` for partition `p`, as a v3 body.
fn batch_body(p: usize) -> String {
    let value = "x".repeat(RECORD_BYTES);
    (0..BATCH)
        .map(|_| json!({"partition_id": p, "value": {"type": "STRING", "data": value}}).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Produces to every partition of `topic` for `seconds` (a thread per partition,
/// sending to its leader with `acks`): MB/s of record values acknowledged.
fn throughput(three: &Three, topic: &str, acks: &str, seconds: Duration) -> f64 {
    let leaders = partitions(three, 1, topic);
    let started = Instant::now();
    let acked: usize = std::thread::scope(|s| {
        let handles: Vec<_> = leaders
            .iter()
            .enumerate()
            .map(|(p, (leader, _, _))| {
                let url = format!(
                    "{}?acks={acks}",
                    v3(three, *leader as usize, &format!("/topics/{topic}/records"))
                );
                s.spawn(move || {
                    let body = batch_body(p);
                    let mut acked = 0;
                    while started.elapsed() < seconds {
                        let answer = ureq::post(&url)
                            .set("Content-Type", "application/json")
                            .send_string(&body)
                            .unwrap_or_else(|e| panic!("producing: {e}"))
                            .into_string()
                            .unwrap_or_default();
                        acked += answer
                            .lines()
                            .filter(|l| l.contains("\"error_code\":200"))
                            .count();
                    }
                    acked
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    (acked * RECORD_BYTES) as f64 / started.elapsed().as_secs_f64() / 1e6
}

/// The bytes of a partition's segment files, and the MB/s of reading them.
fn sequential_read(dir: &std::path::Path) -> (u64, f64) {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|x| x == "log"));
    let started = Instant::now();
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::read(f).map_or(0, |b| b.len() as u64))
        .sum();
    (bytes, bytes as f64 / started.elapsed().as_secs_f64() / 1e6)
}

fn main() {
    let (seconds, root) = bench_settings(10);
    let kills = env_count("TROUPE_BENCH_KILLS", 20);
    let catchup_mb = env_count("TROUPE_BENCH_CATCHUP_MB", 64);
    let mut three = Three::start(
        &root.join("replication"),
        &[
            "broker.session.timeout.ms=3000",
            "broker.heartbeat.interval.ms=500",
        ],
    );
    three.settled_controller(1);

    // The cost of safety.
    create(
        &three,
        json!({"topic_name": "rf1", "partitions_count": 3, "replication_factor": 1}),
    );
    create(
        &three,
        json!({"topic_name": "rf3", "partitions_count": 3, "replication_factor": 3,
        "configs": [{"name": "min.insync.replicas", "value": "2"}]}),
    );
    wait_for("the topics' ISRs", Duration::from_secs(30), || {
        whole_isr(&three, 1, "rf1") && whole_isr(&three, 1, "rf3")
    });
    let rf1 = throughput(&three, "rf1", "1", seconds);
    let rf3 = throughput(&three, "rf3", "all", seconds);

    // Follower catch-up.
    create(
        &three,
        json!({"topic_name": "catchup",
        "replicas_assignments": [{"partition_id": 0, "broker_ids": [1]}]}),
    );
    wait_for("the catch-up topic", Duration::from_secs(30), || {
        whole_isr(&three, 1, "catchup")
    });
    let url = format!("{}?acks=1", v3(&three, 1, "/topics/catchup/records"));
    let body = batch_body(0);
    let mut filled = 0;
    while filled < catchup_mb * 1024 * 1024 {
        ureq::post(&url)
            .set("Content-Type", "application/json")
            .send_string(&body)
            .unwrap_or_else(|e| panic!("filling: {e}"));
        filled += BATCH * RECORD_BYTES;
    }
    let (log_bytes, read_mbs) = sequential_read(&three.dirs[0].join("catchup-0"));
    let started = Instant::now();
    ureq::post(&v3(&three, 1, "/topics/catchup/partitions/0/reassignment"))
        .send_json(json!({"replica_ids": [1, 2]}))
        .unwrap_or_else(|e| panic!("reassigning: {e}"));
    wait_for(
        "the new follower in the ISR",
        Duration::from_secs(600),
        || {
            partitions(&three, 1, "catchup")
                .first()
                .is_some_and(|(_, isr, r)| *isr == 2 && *r == 2)
        },
    );
    let catchup_mbs = log_bytes as f64 / started.elapsed().as_secs_f64() / 1e6;

    // Leader failover.
    let mut failovers = Vec::with_capacity(kills);
    for round in 0..kills {
        let via = via_up(&three);
        let leader = partitions(&three, via, "rf3")[0].0 as usize;
        let survivor = (1..=3).find(|n| *n != leader).unwrap_or(1);
        let url = v3(&three, survivor, "/topics/rf3/records");
        three.nodes[leader - 1] = None; // dropping it is kill -9
        let killed = Instant::now();
        loop {
            let answer = ureq::post(&url)
                .set("Content-Type", "application/json")
                .send_string(&json!({"partition_id": 0, "value": {"type": "STRING", "data": format!("f{round}")}}).to_string());
            if let Ok(r) = answer {
                if r.into_string()
                    .unwrap_or_default()
                    .contains("\"error_code\":200")
                {
                    break;
                }
            }
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "no failover in 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        failovers.push(killed.elapsed());
        three.start_nodes(&[leader]);
        wait_for("the ISR whole again", Duration::from_secs(60), || {
            whole_isr(&three, survivor, "rf3")
        });
    }
    failovers.sort();

    println!("Replication, three nodes, {RECORD_BYTES}-byte records in batches of {BATCH}");
    println!("{:<44} {:>10.1} MB/s", "acks=1, replication factor 1", rf1);
    println!(
        "{:<44} {:>10.1} MB/s",
        "acks=all, replication factor 3", rf3
    );
    println!("acks=all RF3 / acks=1 RF1: {:.2}", rf3 / rf1);
    println!(
        "{:<44} {:>10.1} MB/s ({:.1} MiB)",
        "follower catch-up",
        catchup_mbs,
        log_bytes as f64 / 1048576.0
    );
    println!(
        "{:<44} {:>10.1} MB/s",
        "leader's sequential read of its segments", read_mbs
    );
    println!("catch-up / sequential read: {:.3}", catchup_mbs / read_mbs);
    print_table(
        &format!("Leader failover over {kills} kills"),
        &[("kill -9 to an acks=all write on the new leader", &failovers)],
    );
    println!(
        "failover p50 {:.2} s, p99 {:.2} s",
        percentile(&failovers, 0.5).as_secs_f64(),
        percentile(&failovers, 0.99).as_secs_f64()
    );
}
