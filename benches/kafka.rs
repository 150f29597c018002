//! Kafka-protocol benchmark: `cargo bench --bench kafka`.
//!
//! Starts a real broker (the `troupe` binary) and drives its Kafka listener with
//! librdkafka clients:
//!
//! - **produce**: `acks=all`, `linger.ms=5`, 100 B and 1 KiB values to a one-partition
//!   topic, from confluent-kafka (Python; `.ci/run` installs it) for a fixed time, then
//!   from kcat (librdkafka's own C client, whose per-record cost is a fraction of
//!   Python's) for a fixed number of records. Beside them, the storage engine's own
//!   append of batches of the same shape (as many records per batch as the producers'
//!   batches averaged in the log) with the broker's default flush policy, in the same
//!   run on the same disk: the ratio is what the protocol, the client and the actors
//!   cost.
//! - **consume**: kcat reading the partition from the start until it has every record;
//!   segment bytes per second, against a sequential read of the same segment files.
//!   kcat's local queue is made large (`queued.min.messages`): librdkafka 2.0 stops
//!   fetching when it fills and looks again only once a second.
//!
//! On two cores the client shares the machine with the broker, so beside each rate
//! the bench prints where the CPU went: the broker's throughput per CPU-second it
//! used ÷ the baseline's (the engine appends, or reads, on one core), and the client's
//! CPU-seconds per second (above 1: it kept more than a core busy).
//!
//! Environment: `TROUPE_BENCH_SECONDS` (per produce case, default 5),
//! `TROUPE_BENCH_DIR` (default `target/bench-data`).

use std::io::Write;
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
    support::python_json(&format!("BOOTSTRAP = {:?}\n", broker.kafka), script, &args)
}

const PRODUCE: &str = r#"
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 5,
              "queue.buffering.max.messages": 1000000})
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
cpu = time.process_time()
start = time.monotonic()
deadline = start + ARGS["seconds"]
while time.monotonic() < deadline:
    for _ in range(1000):
        try:
            p.produce(ARGS["topic"], value, partition=0, on_delivery=done)
        except BufferError:
            p.poll(0.001)
    p.poll(0)
p.flush(60)
elapsed = time.monotonic() - start
print(json.dumps({"records": acked[0], "elapsed": elapsed, "cpu": time.process_time() - cpu}))
"#;

/// What one client run did: records, wall seconds, the client's CPU-seconds and the
/// broker's.
struct Run {
    records: u64,
    elapsed: f64,
    client_cpu: f64,
    broker_cpu: f64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.records as f64 / self.elapsed
    }
}

/// Runs kcat with `args` under bash's `time`: stdout, wall seconds, CPU-seconds.
fn kcat(args: &[&str], stdin: Option<&Path>) -> (Vec<u8>, f64, f64) {
    let mut command = String::from("TIMEFORMAT='%3U %3S'; time kcat");
    for a in args {
        command.push_str(&format!(" '{a}'"));
    }
    if let Some(input) = stdin {
        command.push_str(&format!(" < '{}'", input.display()));
    }
    let started = Instant::now();
    let out = Command::new("bash")
        .args(["-c", &command])
        .output()
        .unwrap_or_else(|e| fail(format!("kcat: {e}")));
    let elapsed = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        fail(format!("kcat failed: {stderr}"));
    }
    let cpu = stderr
        .lines()
        .last()
        .map(|l| {
            l.split_whitespace()
                .filter_map(|t| t.parse::<f64>().ok())
                .sum()
        })
        .unwrap_or(0.0);
    (out.stdout, elapsed, cpu)
}

fn produce_python(broker: &Broker, topic: &str, value_bytes: usize, seconds: Duration) -> Run {
    let before = broker.cpu_seconds();
    let out = python(
        broker,
        PRODUCE,
        json!({"topic": topic, "value_bytes": value_bytes, "seconds": seconds.as_secs()}),
    );
    Run {
        // The warm-up record is in the log too, but not in the timing.
        records: out["records"].as_u64().unwrap_or(0),
        elapsed: out["elapsed"].as_f64().unwrap_or(1.0),
        client_cpu: out["cpu"].as_f64().unwrap_or(0.0),
        broker_cpu: broker.cpu_seconds() - before,
    }
}

/// kcat producing `records` values of `value_bytes` (one per line of a file).
fn produce_kcat(
    broker: &Broker,
    topic: &str,
    value_bytes: usize,
    records: u64,
    input: &Path,
) -> Run {
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(input).unwrap_or_else(|e| fail(e)));
    let mut line = vec![b'x'; value_bytes];
    line.push(b'\n');
    for _ in 0..records {
        file.write_all(&line).unwrap_or_else(|e| fail(e));
    }
    file.flush().unwrap_or_else(|e| fail(e));
    drop(file);
    let before = broker.cpu_seconds();
    let (_, elapsed, client_cpu) = kcat(
        &[
            "-b",
            &broker.kafka,
            "-P",
            "-t",
            topic,
            "-p",
            "0",
            "-X",
            "acks=all",
            "-X",
            "linger.ms=5",
            "-X",
            "queue.buffering.max.messages=2000000",
            "-X",
            "queue.buffering.max.kbytes=2097151",
        ],
        Some(input),
    );
    let _ = std::fs::remove_file(input);
    Run {
        records,
        elapsed,
        client_cpu,
        broker_cpu: broker.cpu_seconds() - before,
    }
}

/// kcat reading `records` records of `topic` from the start.
fn consume_kcat(broker: &Broker, topic: &str, records: u64) -> Run {
    let before = broker.cpu_seconds();
    let count = records.to_string();
    let (out, elapsed, client_cpu) = kcat(
        &[
            "-b",
            &broker.kafka,
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-q",
            "-c",
            &count,
            "-f",
            "%o\n",
            "-X",
            "queued.min.messages=10000000",
            "-X",
            "queued.max.messages.kbytes=2097151",
        ],
        None,
    );
    let consumed = out.iter().filter(|b| **b == b'\n').count() as u64;
    if consumed != records {
        fail(format!("kcat read {consumed} of {records} records"));
    }
    Run {
        records,
        elapsed,
        client_cpu,
        broker_cpu: broker.cpu_seconds() - before,
    }
}

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
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(log);
    let _ = std::fs::remove_dir_all(dir);
    rate
}

/// Batches and records in the log at `dir` from `first` to `end` (the broker stopped).
fn batches_between(dir: &Path, first: i64, end: i64) -> (u64, u64) {
    let log = Log::open(dir, LogConfig::default()).unwrap_or_else(|e| fail(e));
    let (mut offset, mut batches, mut records) = (first, 0u64, 0u64);
    while offset < end {
        let data = log.read(offset, 8 << 20).unwrap_or_else(|e| fail(e));
        let before = offset;
        for batch in data.batches() {
            if batch.last_offset() >= end {
                break;
            }
            if batch.base_offset() >= first {
                batches += 1;
                records += batch.records_count() as u64;
            }
            offset = batch.next_offset();
        }
        if offset == before {
            break;
        }
    }
    (batches, records)
}

/// Reads every segment file under `dir` once, sequentially; bytes per second.
fn sequential_read(dir: &Path) -> (u64, f64) {
    let files = segment_files(dir);
    let start = Instant::now();
    let mut bytes = 0u64;
    for f in &files {
        bytes += std::fs::read(f).unwrap_or_else(|e| fail(e)).len() as u64;
    }
    (bytes, bytes as f64 / start.elapsed().as_secs_f64())
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| fail(e))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    files
}

fn segment_bytes(dir: &Path) -> u64 {
    segment_files(dir)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

const HEADER: &str =
    "case                      records/s      MB/s   baseline    ratio  broker/CPU-s  client CPU";

fn row(case: &str, run: &Run, mb_s: f64, baseline: f64, per_cpu_ratio: f64, note: &str) {
    println!(
        "{:<24} {:>11.0} {:>9.1} {:>10.0} {:>8.2} {:>13.2} {:>11.2}   {note}",
        case,
        run.rate(),
        mb_s,
        baseline,
        run.rate() / baseline,
        per_cpu_ratio,
        run.client_cpu / run.elapsed,
    );
}

fn main() {
    let (seconds, root) = bench_settings(5);
    println!(
        "Kafka protocol (confluent-kafka {}, kcat on librdkafka), {} s per produce case",
        client_version(),
        seconds.as_secs()
    );
    println!("{HEADER}");
    println!(
        "  (produce baseline: the engine's records/s; consume: a sequential read's MB/s.\n   \
         broker/CPU-s: the broker's rate per CPU-second it used ÷ the baseline's)"
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
        let python_run = produce_python(&broker, &topic, value_bytes, seconds);
        // The Python run's warm-up record is in the log too.
        let python_end = python_run.records as i64 + 1;
        let kcat_records = seconds.as_secs() * if value_bytes < 1024 { 600_000 } else { 200_000 };
        let kcat_run = produce_kcat(
            &broker,
            &topic,
            value_bytes,
            kcat_records,
            &root.join("kcat-input"),
        );
        let total = python_end as u64 + kcat_records;
        let consume = consume_kcat(&broker, &topic, total);
        drop(broker);

        let partition_dir = dir.join(format!("{topic}-0"));
        let per_batch = |first: i64, end: i64| {
            let (batches, records) = batches_between(&partition_dir, first, end);
            (records as f64 / batches.max(1) as f64).round() as usize
        };
        for (client, run, per_batch) in [
            ("python", &python_run, per_batch(1, python_end)),
            ("kcat", &kcat_run, per_batch(python_end, total as i64)),
        ] {
            let engine = storage_baseline(&root.join("engine"), value_bytes, per_batch, seconds);
            let per_cpu = run.records as f64 / run.broker_cpu.max(0.01) / engine;
            row(
                &format!("produce {value_bytes} B {client}"),
                run,
                run.rate() * value_bytes as f64 / 1e6,
                engine,
                per_cpu,
                &format!("({per_batch} records/batch)"),
            );
        }
        let bytes = segment_bytes(&partition_dir);
        let (_, read_rate) = sequential_read(&partition_dir);
        let consume_mb_s = bytes as f64 / consume.elapsed / 1e6;
        let per_cpu = bytes as f64 / consume.broker_cpu.max(0.01) / read_rate;
        println!(
            "{:<24} {:>11.0} {:>9.1} {:>10.0} {:>8.2} {:>13.2} {:>11.2}   (segment MB/s)",
            format!("consume {value_bytes} B kcat"),
            consume.rate(),
            consume_mb_s,
            read_rate / 1e6,
            consume_mb_s * 1e6 / read_rate,
            per_cpu,
            consume.client_cpu / consume.elapsed,
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
