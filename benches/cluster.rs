//! Cluster benchmark: `cargo bench --bench cluster`.
//!
//! Topic creation latency end to end: a REST `POST /v3/clusters/{c}/topics` (3
//! partitions) until its 201, which comes once the controller has committed the
//! topic's records through the metadata quorum and this node has applied them and
//! started the partitions. Beside it, in the same run against the same broker, the
//! latency of one durable REST produce (a fsync'd append): the ratio is what a metadata
//! change costs against a data write. One node (a quorum of one); the three-node case
//! and controller failover times come with multi-node serving.
//!
//! Environment: `TROUPE_BENCH_TOPICS` (default 50), `TROUPE_BENCH_DIR` (default
//! `target/bench-data`).

use std::time::{Duration, Instant};

use serde_json::json;

mod support;
use support::{bench_settings, cluster_id, start_broker_with};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let (_, root) = bench_settings(1);
    let count: usize = std::env::var("TROUPE_BENCH_TOPICS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
        .max(2);
    let broker = start_broker_with(&root.join("cluster-1"), &[]);
    let cluster = cluster_id(&broker.base);
    let topics = format!("{}/v3/clusters/{cluster}/topics", broker.base);
    let mut creates = Vec::with_capacity(count);
    for i in 0..count {
        let started = Instant::now();
        ureq::post(&topics)
            .send_json(json!({"topic_name": format!("bench-{i}"), "partitions_count": 3}))
            .unwrap_or_else(|e| panic!("creating a topic: {e}"));
        creates.push(started.elapsed());
    }
    let records = format!("{topics}/bench-0/records");
    let mut produces = Vec::with_capacity(count);
    for i in 0..count {
        let started = Instant::now();
        ureq::post(&records)
            .send_json(
                json!({"partition_id": 0, "value": {"type": "STRING", "data": format!("r{i}")}}),
            )
            .unwrap_or_else(|e| panic!("producing: {e}"));
        produces.push(started.elapsed());
    }
    creates.sort();
    produces.sort();
    println!("Topic creation, one node (a quorum of one), {count} topics of 3 partitions");
    println!(
        "{:<28} {:>10} {:>10} {:>10}",
        "case", "p50 ms", "p99 ms", "max ms"
    );
    for (case, sorted) in [
        ("create topic (REST v3)", &creates),
        ("produce 1 record (fsync)", &produces),
    ] {
        println!(
            "{:<28} {:>10.2} {:>10.2} {:>10.2}",
            case,
            ms(percentile(sorted, 0.5)),
            ms(percentile(sorted, 0.99)),
            ms(sorted[sorted.len() - 1])
        );
    }
    println!(
        "create p50 / produce p50: {:.1}",
        percentile(&creates, 0.5).as_secs_f64() / percentile(&produces, 0.5).as_secs_f64()
    );
}
