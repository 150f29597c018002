//! A three-node cluster for the benchmarks (every node a broker and a controller),
//! and the timing helpers the cluster benchmarks share.
#![allow(dead_code)] // each bench binary uses its part

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{cluster_id, start_node, Broker};

pub const CLUSTER: &str = "bench-cluster";

/// A node that is up.
pub fn via_up(three: &Three) -> usize {
    (1..=3)
        .find(|i| three.nodes[i - 1].is_some())
        .unwrap_or_else(|| panic!("no node is up"))
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .max(2)
}

/// `count` topic creations through `base`, each timed to its 201.
pub fn create_topics(base: &str, prefix: &str, count: usize) -> Vec<Duration> {
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Three combined nodes; node `i` at index `i - 1`.
pub struct Three {
    pub args: Vec<Vec<String>>,
    pub dirs: Vec<std::path::PathBuf>,
    pub nodes: Vec<Option<Broker>>,
}

impl Three {
    pub fn start(root: &Path, overrides: &[&str]) -> Three {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let voters = ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let args = (0..3)
            .map(|i| {
                let mut args = vec![
                    "--controller-listen".to_string(),
                    format!("127.0.0.1:{}", ports[i]),
                    "--override".into(),
                    format!("node.id={}", i + 1),
                    "--override".into(),
                    format!("controller.quorum.voters={voters}"),
                    "--override".into(),
                    format!("cluster.id={CLUSTER}"),
                ];
                for o in overrides {
                    args.push("--override".into());
                    args.push(o.to_string());
                }
                args
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
    pub fn start_nodes(&mut self, ids: &[usize]) {
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

    pub fn base(&self, id: usize) -> String {
        self.nodes[id - 1]
            .as_ref()
            .map(|n| n.base.clone())
            .unwrap_or_else(|| panic!("node {id} is down"))
    }

    pub fn quorum(&self, id: usize) -> Value {
        ureq::get(&format!("{}/v3/clusters/{CLUSTER}/quorum", self.base(id)))
            .call()
            .unwrap_or_else(|e| panic!("{e}"))
            .into_json()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The active controller, once every broker is alive and one leads.
    pub fn settled_controller(&self, via: usize) -> usize {
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

pub fn print_table(title: &str, rows: &[(&str, &Vec<Duration>)]) {
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
