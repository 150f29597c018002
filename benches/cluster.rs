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

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod support;
use support::{bench_settings, cluster_id, start_broker_with, start_node, Broker};

const CLUSTER: &str = "bench-cluster";

/// A node that is up.
fn via_up(three: &Three) -> usize {
    (1..=3)
        .find(|i| three.nodes[i - 1].is_some())
        .unwrap_or_else(|| panic!("no node is up"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .max(2)
}

/// `count` topic creations through `base`, each timed to its 201.
fn create_topics(base: &str, prefix: &str, count: usize) -> Vec<Duration> {
    let topics = format!("{base}/v3/clusters/{}/topics", cluster_id(base));
    let mut creates = Vec::with_capacity(count);
    for i in 0..count {
        let started = Instant::now();
        ureq::post(&topics)
            .send_json(json!({"topic_name": format!("{prefix}-{i}"), "partitions_count": 3}))
            .unwrap_or_else(|e| panic!("creating a topic: {e}"));
        creates.push(started.elapsed());
    }
    creates.sort();
    creates
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Three combined nodes; node `i` at index `i - 1`.
struct Three {
    args: Vec<Vec<String>>,
    dirs: Vec<std::path::PathBuf>,
    nodes: Vec<Option<Broker>>,
}

impl Three {
    fn start(root: &Path) -> Three {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let voters = ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let args = (0..3)
            .map(|i| {
                vec![
                    "--controller-listen".to_string(),
                    format!("127.0.0.1:{}", ports[i]),
                    "--override".into(),
                    format!("node.id={}", i + 1),
                    "--override".into(),
                    format!("controller.quorum.voters={voters}"),
                    "--override".into(),
                    format!("cluster.id={CLUSTER}"),
                ]
            })
            .collect();
        let dirs = (1..=3).map(|i| root.join(format!("node{i}"))).collect();
        let mut three = Three {
            args,
            dirs,
            nodes: vec![None, None, None],
        };
        three.start_nodes(&[1, 2, 3]);
        three
    }

    /// Starts `ids` at once (a node serves once the quorum has a majority).
    fn start_nodes(&mut self, ids: &[usize]) {
        let started: Vec<(usize, Broker)> = std::thread::scope(|s| {
            let handles: Vec<_> = ids
                .iter()
                .map(|id| {
                    let (dir, args) = (&self.dirs[id - 1], &self.args[id - 1]);
                    s.spawn(move || (*id, start_node(dir, args, &[])))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| panic!("a node starts")))
                .collect()
        });
        for (id, node) in started {
            self.nodes[id - 1] = Some(node);
        }
    }

    fn base(&self, id: usize) -> String {
        self.nodes[id - 1]
            .as_ref()
            .map(|n| n.base.clone())
            .unwrap_or_else(|| panic!("node {id} is down"))
    }

    fn quorum(&self, id: usize) -> Value {
        ureq::get(&format!("{}/v3/clusters/{CLUSTER}/quorum", self.base(id)))
            .call()
            .unwrap_or_else(|e| panic!("{e}"))
            .into_json()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The active controller, once every broker is alive and one leads.
    fn settled_controller(&self, via: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let q = self.quorum(via);
            let alive = q["brokers"]
                .as_array()
                .is_some_and(|b| b.len() == 3 && b.iter().all(|b| b["state"] == "alive"));
            if let (true, Some(c)) = (alive, q["controller_id"].as_u64()) {
                return c as usize;
            }
            assert!(Instant::now() < deadline, "the cluster did not settle: {q}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn print_table(title: &str, rows: &[(&str, &Vec<Duration>)]) {
    println!("{title}");
    println!(
        "{:<36} {:>10} {:>10} {:>10}",
        "case", "p50 ms", "p99 ms", "max ms"
    );
    for (case, sorted) in rows {
        println!(
            "{:<36} {:>10.2} {:>10.2} {:>10.2}",
            case,
            ms(percentile(sorted, 0.5)),
            ms(percentile(sorted, 0.99)),
            ms(sorted[sorted.len() - 1])
        );
    }
}

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

    let mut three = Three::start(&root.join("cluster-3"));
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
