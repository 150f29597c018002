//! REST benchmark: `cargo bench --bench rest`.
//!
//! Starts a real broker (the `troupe` binary) on a temp directory and measures REST
//! produce throughput — 1 KiB values, 1 and 500 records per request, 1 and 8 concurrent
//! connections — and consume throughput (direct partition reads, binary format, one
//! connection reading each partition to its end; the client parses each answer and
//! borrows the base64 values without decoding them), with its ratio to the produce
//! throughput of the same records. Beside each produce figure
//! it prints the storage engine's own append throughput for the same batch shape and
//! flush policy, measured in the same run on the same disk, so the cost of the HTTP and
//! actor layers shows as a ratio.
//!
//! Environment: `TROUPE_BENCH_SECONDS` (per case, default 3), `TROUPE_BENCH_DIR`
//! (default `target/bench-data`).

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;
use troupe_actors::storage::{Log, LogConfig, Record, RecordBatch, TimestampType};

mod support;
use support::{bench_settings, cluster_id, start_broker_with};

const VALUE_BYTES: usize = 1024;
const PARTITIONS: i32 = 8;

#[derive(Clone, Copy)]
struct Figure {
    records: u64,
    bytes: u64,
    elapsed: Duration,
}

impl Figure {
    fn records_s(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
    fn mb_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
}

/// The storage engine alone: the same record shape, the broker's default flush policy.
fn storage_baseline(dir: &Path, records_per_batch: usize, seconds: Duration) -> Figure {
    let _ = std::fs::remove_dir_all(dir);
    let mut log = Log::open(dir, LogConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let records: Vec<Record> = (0..records_per_batch)
        .map(|_| Record {
            timestamp_ms: 0,
            key: None,
            value: Some(vec![b'x'; VALUE_BYTES]),
            headers: vec![],
        })
        .collect();
    let mut batch =
        RecordBatch::encode(&records, TimestampType::CreateTime).unwrap_or_else(|e| panic!("{e}"));
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < seconds {
        log.append(&mut batch, 0).unwrap_or_else(|e| panic!("{e}"));
        log.flush_if_due().unwrap_or_else(|e| panic!("{e}"));
        n += records_per_batch as u64;
    }
    Figure {
        records: n,
        bytes: n * VALUE_BYTES as u64,
        elapsed: start.elapsed(),
    }
}

fn produce(
    base: &str,
    topic: &str,
    records_per_request: usize,
    connections: usize,
    seconds: Duration,
) -> Figure {
    let value = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; VALUE_BYTES]);
    let body =
        json!({ "records": vec![json!({ "value": value }); records_per_request] }).to_string();
    let url = format!("{base}/topics/{topic}");
    let start = Instant::now();
    let deadline = start + seconds;
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let (url, body) = (url.clone(), body.clone());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().build();
                let mut sent = 0u64;
                while Instant::now() < deadline {
                    let answer = agent
                        .post(&url)
                        .set("Content-Type", "application/vnd.kafka.binary.v2+json")
                        .send_string(&body);
                    match answer {
                        Ok(_) => sent += records_per_request as u64,
                        Err(e) => panic!("produce failed: {e}"),
                    }
                }
                sent
            })
        })
        .collect();
    let records: u64 = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    Figure {
        records,
        bytes: records * VALUE_BYTES as u64,
        elapsed: start.elapsed(),
    }
}

/// One record of a read answer, as a client that hands values on would take it: the
/// JSON parsed, the value's text borrowed (not base64-decoded).
#[derive(serde::Deserialize)]
struct ReadRecord<'a> {
    offset: i64,
    #[serde(borrow)]
    value: Option<std::borrow::Cow<'a, str>>,
}

fn consume(base: &str, topic: &str) -> Figure {
    let agent = ureq::AgentBuilder::new().build();
    let start = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut body = Vec::new();
    for p in 0..PARTITIONS {
        let mut offset = 0i64;
        loop {
            let url = format!(
                "{base}/topics/{topic}/partitions/{p}/records?offset={offset}&max_bytes=1048576"
            );
            body.clear();
            std::io::Read::read_to_end(
                &mut agent
                    .get(&url)
                    .set("Accept", "application/vnd.kafka.binary.v2+json")
                    .call()
                    .unwrap_or_else(|e| panic!("consume failed: {e}"))
                    .into_reader(),
                &mut body,
            )
            .unwrap_or_else(|e| panic!("consume answer: {e}"));
            let batch: Vec<ReadRecord<'_>> =
                serde_json::from_slice(&body).unwrap_or_else(|e| panic!("consume answer: {e}"));
            let Some(last) = batch.last() else {
                break;
            };
            records += batch.len() as u64;
            bytes += batch
                .iter()
                .map(|r| r.value.as_ref().map_or(0, |v| v.len() as u64 * 3 / 4))
                .sum::<u64>();
            offset = last.offset + 1;
        }
    }
    Figure {
        records,
        bytes,
        elapsed: start.elapsed(),
    }
}

fn main() {
    let (seconds, root) = bench_settings(3);
    println!(
        "troupe REST benchmark: 1 KiB values, {} s per case, default flush (fsync before ack)",
        seconds.as_secs()
    );
    println!("baseline = the storage engine appending the same batch shape in-process, same disk, same run\n");
    println!(
        "{:<36} {:>11} {:>9} {:>16} {:>8}",
        "case", "records/s", "MB/s", "baseline rec/s", "ratio"
    );
    let broker = start_broker_with(&root.join("broker"), &[]);
    let agent = ureq::AgentBuilder::new().build();
    for (i, (per_request, connections)) in [(1usize, 1usize), (1, 8), (500, 1), (500, 8)]
        .into_iter()
        .enumerate()
    {
        let topic = format!("bench{i}");
        agent
            .post(&format!(
                "{}/v3/clusters/{}/topics",
                broker.base,
                cluster_id(&broker.base)
            ))
            .send_json(json!({"topic_name": topic, "partitions_count": PARTITIONS}))
            .unwrap_or_else(|e| panic!("create topic: {e}"));
        let base = storage_baseline(&root.join("storage"), per_request, seconds);
        let rest = produce(&broker.base, &topic, per_request, connections, seconds);
        println!(
            "{:<36} {:>11.0} {:>9.1} {:>16.0} {:>8.2}",
            format!("REST produce x{per_request}, {connections} conn"),
            rest.records_s(),
            rest.mb_s(),
            base.records_s(),
            rest.records_s() / base.records_s()
        );
        if i == 3 {
            let read = consume(&broker.base, &topic);
            println!(
                "{:<36} {:>11.0} {:>9.1} {:>16} {:>8}",
                format!("REST consume ({} records)", read.records),
                read.records_s(),
                read.mb_s(),
                "-",
                "-"
            );
            println!(
                "\nREST consume MB/s / REST produce MB/s (x500, 8 conn, same topic): {:.2} (target >= 0.5)",
                read.mb_s() / rest.mb_s()
            );
        }
    }
    drop(broker);
    let _ = std::fs::remove_dir_all(&root);
}
