//! Cluster benchmark: `cargo bench --bench cluster`.
//!
//! Topic creation latency end to end: a REST `POST /v3/clusters/{c}/topics` (3
//! partitions) until its 201, which comes once the controller has committed the
//! topic's records through the metadata quorum and this node has applied them and
//! started the partitions. Beside it, in the same run against the same broker, the
//! latency of one durable REST produce (a fsync'd append): the ratio is what a metadata
//! change costs against a data write. Then the same creations through a three-node
//! cluster (every node a broker and a controller; asked of a node that is not the
//! active controller, so each goes over the controller listener), and the active
//! controller's failover: kill -9 its node, time until a topic is created through
//! another node, restart it, wait until all three are alive, again.
//!
//! Environment: `TROUPE_BENCH_TOPICS` (default 50), `TROUPE_BENCH_KILLS` (default 20),
//! `TROUPE_BENCH_DIR` (default `target/bench-data`).

use std::time::{Duration, Instant};

use serde_json::json;

mod support;
use support::cluster::{create_topics, env_count, percentile, print_table, via_up, Three, CLUSTER};
use support::{bench_settings, cluster_id, start_broker_with};

fn main() {
    let (_, root) = bench_settings(1);
    let count = env_count("TROUPE_BENCH_TOPICS", 50);
    let kills = env_count("TROUPE_BENCH_KILLS", 20);
    let _ = std::fs::remove_dir_all(root.join("cluster-3"));
    let broker = start_broker_with(&root.join("cluster-1"), &[]);
    let creates = create_topics(&broker.base, "bench", count);
    let cluster = cluster_id(&broker.base);
    let records = format!(
        "{}/v3/clusters/{cluster}/topics/bench-0/records",
        broker.base
    );
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
    drop(broker);
    produces.sort();

    let mut three = Three::start(&root.join("cluster-3"), &[]);
    let controller = three.settled_controller(1);
    let via = controller % 3 + 1;
    let creates3 = create_topics(&three.base(via), "bench3", count);
    let mut failovers = Vec::with_capacity(kills);
    for round in 0..kills {
        let active = three.settled_controller(via_up(&three));
        let via = active % 3 + 1;
        let topics = format!("{}/v3/clusters/{CLUSTER}/topics", three.base(via));
        three.nodes[active - 1] = None; // dropping it is kill -9
        let killed = Instant::now();
        loop {
            let created = ureq::post(&topics).send_json(
                json!({"topic_name": format!("failover-{round}"), "partitions_count": 1}),
            );
            match created {
                Ok(_) => break,
                Err(ureq::Error::Status(503, _)) => {}
                Err(e) => panic!("creating a topic after the kill: {e}"),
            }
            assert!(
                killed.elapsed() < Duration::from_secs(30),
                "no failover in 30 s"
            );
        }
        failovers.push(killed.elapsed());
        three.start_nodes(&[active]);
    }
    failovers.sort();
    print_table(
        &format!(
            "Topic creation and controller failover, {count} topics of 3 partitions, {kills} kills"
        ),
        &[
            ("create topic, one node", &creates),
            ("create topic, three nodes", &creates3),
            ("produce 1 record (fsync), one node", &produces),
            ("controller failover (kill -9 to 201)", &failovers),
        ],
    );
    println!(
        "three-node create p50 / one-node create p50: {:.1}",
        percentile(&creates3, 0.5).as_secs_f64() / percentile(&creates, 0.5).as_secs_f64()
    );
    println!(
        "create p50 / produce p50: {:.1}",
        percentile(&creates, 0.5).as_secs_f64() / percentile(&produces, 0.5).as_secs_f64()
    );
}
