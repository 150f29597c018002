//! Kafka-protocol benchmark: `cargo bench --bench kafka`.
//!
//! Starts a real broker (the `troupe` binary) and drives its Kafka listener with
//! confluent-kafka (librdkafka, from Python; `.ci/run` installs it):
//!
//! - **produce**: one producer, `acks=all`, `linger.ms=5`, 100 B and 1 KiB values to a
//!   one-partition topic for a fixed time; records/s and MB/s of values acknowledged.
//!   Beside it, the storage engine's own append of batches of the same shape (as many
//!   records per batch as the producer's batches averaged) with the broker's default
//!   flush policy, in the same run on the same disk: the ratio is what the protocol,
//!   the client and the actors cost.
//! - **consume**: kcat (librdkafka's own C client: confluent-kafka's Python loop,
//!   not the broker, would be the limit) reading the partition from the start until it
//!   has every record; segment bytes per second, against a sequential read of the
//!   same segment files.
//!
//! Environment: `TROUPE_BENCH_SECONDS` (per produce case, default 5),
//! `TROUPE_BENCH_DIR` (default `target/bench-data`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use troupe_actors::storage::{Log, LogConfig, Record, RecordBatch, TimestampType};

mod support;
use support::{bench_settings, cluster_id, start_broker_with, Broker};

fn fail(e: impl std::fmt::Display) -> ! {
    panic!("{e}")
}

/// Runs `script` with `confluent_kafka`, `BOOTSTRAP` and `ARGS` (a JSON value) set;
/// its stdout as JSON.
fn python(broker: &Broker, script: &str, args: Value) -> Value {
    let program = format!(
        "import json, sys, time\nBOOTSTRAP = {:?}\nARGS = json.loads({:?})\n{script}",
        broker.kafka,
        args.to_string()
    );
    let out = Command::new("python3")
        .args(["-c", &program])
        .output()
        .unwrap_or_else(|e| fail(format!("python3: {e}")));
    if !out.status.success() {
        fail(format!(
            "the client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| fail(e))
}

const PRODUCE: &str = r#"
from confluent_kafka import Producer
stats = []
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 5,
              "queue.buffering.max.messages": 1000000, "statistics.interval.ms": 1000,
              "stats_cb": lambda s: stats.append(json.loads(s))})
value = b"x" * ARGS["value_bytes"]
acked = [0]
def done(err, msg):
    if err is not None:
        raise SystemExit(str(err))
    acked[0] += 1
# Warm up: connection and metadata.
p.produce(ARGS["topic"], value, partition=0, on_delivery=done)
p.flush(30)
acked[0] = 0
start = time.monotonic()
deadline = start + ARGS["seconds"]
sent = 0
while time.monotonic() < deadline:
    for _ in range(1000):
        try:
            p.produce(ARGS["topic"], value, partition=0, on_delivery=done)
            sent += 1
        except BufferError:
            p.poll(0.001)
    p.poll(0)
p.flush(60)
elapsed = time.monotonic() - start
batch = 0
for s in stats:
    t = s.get("topics", {}).get(ARGS["topic"], {})
    if t.get("batchcnt", {}).get("avg", 0) > 0:
        batch = t["batchcnt"]["avg"]
print(json.dumps({"records": acked[0], "elapsed": elapsed, "records_per_batch": batch}))
"#;

/// The storage engine alone: batches of `records_per_batch` values of `value_bytes`,
/// the broker's default flush policy, for `seconds`; records per second.
fn storage_baseline(
    dir: &Path,
    value_bytes: usize,
    records_per_batch: usize,
    seconds: Duration,
) -> f64 {
    let _ = std::fs::remove_dir_all(dir);
    let mut log = Log::open(dir, LogConfig::default()).unwrap_or_else(|e| fail(e));
    let records: Vec<Record> = (0..records_per_batch.max(1))
        .map(|_| Record {
            timestamp_ms: 0,
            key: None,
            value: Some(vec![b'x'; value_bytes]),
            headers: vec![],
        })
        .collect();
    let mut batch =
        RecordBatch::encode(&records, TimestampType::CreateTime).unwrap_or_else(|e| fail(e));
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < seconds {
        log.append(&mut batch, 0).unwrap_or_else(|e| fail(e));
        log.flush_if_due().unwrap_or_else(|e| fail(e));
        n += records.len() as u64;
    }
    log.flush().unwrap_or_else(|e| fail(e));
    n as f64 / start.elapsed().as_secs_f64()
}

/// Reads every segment file under `dir` once, sequentially; bytes per second.
fn sequential_read(dir: &Path) -> (u64, f64) {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| fail(e))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    let start = Instant::now();
    let mut bytes = 0u64;
    for f in &files {
        bytes += std::fs::read(f).unwrap_or_else(|e| fail(e)).len() as u64;
    }
    (bytes, bytes as f64 / start.elapsed().as_secs_f64())
}

fn segment_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| fail(e))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

fn main() {
    let (seconds, root) = bench_settings(5);
    println!(
        "Kafka protocol (confluent-kafka {}), {} s per produce case",
        client_version(),
        seconds.as_secs()
    );
    println!(
        "{:<22} {:>12} {:>9} {:>16} {:>7}",
        "case", "records/s", "MB/s", "engine rec/s", "ratio"
    );
    for value_bytes in [100usize, 1024] {
        let dir = root.join(format!("broker-{value_bytes}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(e));
        let broker = start_broker_with(&dir, &[]);
        let cluster = cluster_id(&broker.base);
        let topic = format!("bench{value_bytes}");
        ureq::post(&format!("{}/v3/clusters/{cluster}/topics", broker.base))
            .send_json(json!({"topic_name": topic, "partitions_count": 1}))
            .unwrap_or_else(|e| fail(e));
        let produced = python(
            &broker,
            PRODUCE,
            json!({"topic": topic, "value_bytes": value_bytes, "seconds": seconds.as_secs()}),
        );
        let records = produced["records"].as_u64().unwrap_or(0);
        let elapsed = produced["elapsed"].as_f64().unwrap_or(1.0);
        let per_batch = produced["records_per_batch"]
            .as_f64()
            .unwrap_or(1.0)
            .round() as usize;
        let rate = records as f64 / elapsed;
        let engine = storage_baseline(&root.join("engine"), value_bytes, per_batch, seconds);
        println!(
            "{:<22} {:>12.0} {:>9.1} {:>16.0} {:>7.2}   ({} records/batch)",
            format!("produce {value_bytes} B"),
            rate,
            rate * value_bytes as f64 / 1e6,
            engine,
            rate / engine,
            per_batch
        );
        // The warm-up record too.
        let total = records + 1;
        let started = Instant::now();
        let out = Command::new("kcat")
            .args([
                "-b",
                &broker.kafka,
                "-C",
                "-t",
                &topic,
                "-o",
                "beginning",
                "-q",
            ])
            .args(["-c", &total.to_string(), "-f", "%o\n"])
            .output()
            .unwrap_or_else(|e| fail(format!("kcat: {e}")));
        let consume_s = started.elapsed().as_secs_f64();
        let consumed = String::from_utf8_lossy(&out.stdout).lines().count() as u64;
        if consumed != total {
            fail(format!("kcat read {consumed} of {total} records"));
        }
        let partition_dir = dir.join(format!("{topic}-0"));
        let bytes = segment_bytes(&partition_dir);
        let consume_rate = bytes as f64 / consume_s;
        drop(broker);
        let (_, read_rate) = sequential_read(&partition_dir);
        println!(
            "{:<22} {:>12.0} {:>9.1} {:>16} {:>7.2}   (segment MB/s; sequential read {:.0} MB/s)",
            format!("consume {value_bytes} B"),
            consumed as f64 / consume_s,
            consume_rate / 1e6,
            "",
            consume_rate / read_rate,
            read_rate / 1e6,
        );
    }
}

fn client_version() -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import confluent_kafka; print(confluent_kafka.libversion()[0])",
        ])
        .output()
        .unwrap_or_else(|e| fail(e));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
