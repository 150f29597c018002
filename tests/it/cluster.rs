//! Three-node clusters of real `troupe` processes on loopback: every node a broker
//! and a controller (Kafka's combined KRaft mode), the quorum of three on openraft.
//! One cluster starts from the README's own config files (`config/cluster/`, run in
//! a temp dir so their `./data/nodeN` lands there); the others on ephemeral ports
//! with short session timeouts, so fencing is quick to see.
//!
//! `TROUPE_CLUSTER_KILLS` sets how many times the failover test kills the active
//! controller (3 in CI; the long run in the README uses 20).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::broker::{delete, get, get_accept, post_json, send, v3_reports, TestBroker};
use crate::fault_proxy::{FaultProxy, Faults, Protocol};
use crate::kafka::{kcat, python};
use crate::ws::WsClient;
use std::sync::Arc;

const CLUSTER_ID: &str = "it-cluster";

/// A partition's leader, replicas and whether it is online.
type Placed = (Option<i64>, Vec<i64>, bool);

/// The README's cluster binds fixed ports: one such test at a time.
static README_PORTS: Mutex<()> = Mutex::new(());

pub(crate) struct TestCluster {
    pub(crate) cluster_id: String,
    /// Node `i + 1` at index `i`; `None` while it is down.
    nodes: Vec<Option<TestBroker>>,
    /// Each node's `troupe serve` arguments.
    args: Vec<Vec<String>>,
    pub(crate) cwd: PathBuf,
    /// Fault-injecting proxies between the nodes, when started with them.
    pub(crate) proxies: Option<ClusterProxies>,
    _dir: tempfile::TempDir,
}

/// A [`FaultProxy`] in front of each node's CONTROLLER and Kafka listeners: the
/// voters' addresses and the advertised Kafka listeners are the proxies'.
pub(crate) struct ClusterProxies {
    pub(crate) faults: Arc<Faults>,
    kafka: Vec<FaultProxy>,
    _controller: Vec<FaultProxy>,
}

impl Drop for ClusterProxies {
    fn drop(&mut self) {
        crate::fault_proxy::stop(&self.faults);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl TestCluster {
    /// Three nodes on ephemeral HTTP and Kafka ports, each with its data dir, and
    /// `overrides` on every node.
    pub(crate) fn start(overrides: &[&str]) -> TestCluster {
        TestCluster::start_with(overrides, &[])
    }

    /// [`TestCluster::start`], with `node_overrides` (node id, key=value) on one node.
    pub(crate) fn start_with(overrides: &[&str], node_overrides: &[(usize, &str)]) -> TestCluster {
        TestCluster::start_nodes_with(3, overrides, node_overrides)
    }

    /// `nodes` nodes, of which the first three are the voters; the others are
    /// broker-only (observers of the metadata log).
    pub(crate) fn start_nodes_with(
        nodes: usize,
        overrides: &[&str],
        node_overrides: &[(usize, &str)],
    ) -> TestCluster {
        TestCluster::start_nodes_with_args(nodes, &[], overrides, node_overrides)
    }

    /// [`TestCluster::start_nodes_with`], with `cli_args` (`--add-scram …`) on every
    /// node's command line.
    pub(crate) fn start_nodes_with_args(
        nodes: usize,
        cli_args: &[&str],
        overrides: &[&str],
        node_overrides: &[(usize, &str)],
    ) -> TestCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports: Vec<u16> = (0..nodes).map(|_| free_port()).collect();
        let voters = ports
            .iter()
            .take(3)
            .enumerate()
            .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let args = (0..nodes)
            .map(|i| {
                let mut a: Vec<String> = [
                    "--data-dir".to_string(),
                    dir.path()
                        .join(format!("node{}", i + 1))
                        .display()
                        .to_string(),
                    "--listen".into(),
                    "127.0.0.1:0".into(),
                    "--kafka-listen".into(),
                    "127.0.0.1:0".into(),
                    "--controller-listen".into(),
                    format!("127.0.0.1:{}", ports[i]),
                ]
                .into();
                a.extend(cli_args.iter().map(|a| a.to_string()));
                for o in [
                    format!("node.id={}", i + 1),
                    format!("controller.quorum.voters={voters}"),
                    format!("cluster.id={CLUSTER_ID}"),
                ]
                .into_iter()
                .chain(overrides.iter().map(|o| o.to_string()))
                .chain(
                    node_overrides
                        .iter()
                        .filter(|(n, _)| *n == i + 1)
                        .map(|(_, o)| o.to_string()),
                ) {
                    a.push("--override".into());
                    a.push(o);
                }
                a
            })
            .collect();
        TestCluster::launch(dir, args, CLUSTER_ID)
    }

    /// Three nodes that reach each other only through fault-injecting proxies
    /// (`crate::fault_proxy`), with `overrides` on every node.
    pub(crate) fn start_proxied(overrides: &[&str]) -> TestCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let faults = Arc::new(Faults::default());
        let real: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let controller: Vec<FaultProxy> = (0..3)
            .map(|i| {
                FaultProxy::start(
                    Protocol::Http,
                    i + 1,
                    faults.clone(),
                    &format!("127.0.0.1:{}", real[i]),
                )
            })
            .collect();
        // The Kafka ports are known once the nodes run.
        let kafka: Vec<FaultProxy> = (0..3)
            .map(|i| FaultProxy::start(Protocol::Kafka, i + 1, faults.clone(), "127.0.0.1:1"))
            .collect();
        let voters = controller
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}@127.0.0.1:{}", i + 1, p.port))
            .collect::<Vec<_>>()
            .join(",");
        let args = (0..3)
            .map(|i| {
                let mut a: Vec<String> = vec![
                    "--data-dir".to_string(),
                    dir.path()
                        .join(format!("node{}", i + 1))
                        .display()
                        .to_string(),
                    "--listen".into(),
                    "127.0.0.1:0".into(),
                    "--kafka-listen".into(),
                    "127.0.0.1:0".into(),
                    "--controller-listen".into(),
                    format!("127.0.0.1:{}", real[i]),
                ];
                for o in [
                    format!("node.id={}", i + 1),
                    format!("controller.quorum.voters={voters}"),
                    format!("cluster.id={CLUSTER_ID}"),
                    format!(
                        "advertised.listeners=PLAINTEXT://127.0.0.1:{}",
                        kafka[i].port
                    ),
                ]
                .into_iter()
                .chain(overrides.iter().map(|o| o.to_string()))
                {
                    a.push("--override".into());
                    a.push(o);
                }
                a
            })
            .collect();
        let mut cluster = TestCluster {
            cluster_id: CLUSTER_ID.to_string(),
            nodes: (0..3).map(|_| None).collect(),
            args,
            cwd: dir.path().to_path_buf(),
            proxies: Some(ClusterProxies {
                faults,
                kafka,
                _controller: controller,
            }),
            _dir: dir,
        };
        cluster.start_nodes(&[1, 2, 3]);
        cluster
    }

    /// The README's three nodes: `troupe serve --config config/cluster/nodeN.toml`.
    pub(crate) fn from_readme() -> TestCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/cluster");
        let args = (1..=3)
            .map(|n| {
                vec![
                    "--config".to_string(),
                    configs.join(format!("node{n}.toml")).display().to_string(),
                ]
            })
            .collect();
        TestCluster::launch(dir, args, "troupe-local-cluster")
    }

    fn launch(dir: tempfile::TempDir, args: Vec<Vec<String>>, cluster_id: &str) -> TestCluster {
        let mut cluster = TestCluster {
            cluster_id: cluster_id.to_string(),
            nodes: (0..args.len()).map(|_| None).collect(),
            args,
            cwd: dir.path().to_path_buf(),
            proxies: None,
            _dir: dir,
        };
        let all: Vec<usize> = (1..=cluster.args.len()).collect();
        cluster.start_nodes(&all);
        cluster
    }

    /// Starts `ids` at once: a node serves only once the quorum has a majority.
    pub(crate) fn start_nodes(&mut self, ids: &[usize]) {
        let started: Vec<(usize, TestBroker)> = std::thread::scope(|s| {
            let handles: Vec<_> = ids
                .iter()
                .map(|id| {
                    let (cwd, args) = (&self.cwd, &self.args[id - 1]);
                    s.spawn(move || (*id, TestBroker::serve_args(cwd, args, &[])))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a node starts"))
                .collect()
        });
        for (id, broker) in started {
            self.adopt(id, broker);
        }
    }

    /// Starts node `id` on a thread (its start waits for the quorum): join it and
    /// [`Self::adopt`] what it answers.
    pub(crate) fn start_in_background(&self, id: usize) -> std::thread::JoinHandle<TestBroker> {
        let (cwd, args) = (self.cwd.clone(), self.args[id - 1].clone());
        std::thread::spawn(move || TestBroker::serve_args(&cwd, &args, &[]))
    }

    /// Takes node `id`, started apart, as up.
    pub(crate) fn adopt(&mut self, id: usize, broker: TestBroker) {
        if let Some(proxies) = &self.proxies {
            proxies.kafka[id - 1].set_target(&broker.bootstrap());
        }
        self.nodes[id - 1] = Some(broker);
    }

    /// Node `id`'s controller listener, `host:port`.
    pub(crate) fn controller_listener(&self, id: usize) -> String {
        self.args[id - 1]
            .iter()
            .skip_while(|a| *a != "--controller-listen")
            .nth(1)
            .expect("a controller listener")
            .clone()
    }

    pub(crate) fn node(&self, id: usize) -> &TestBroker {
        self.nodes[id - 1].as_ref().expect("the node is up")
    }

    /// The nodes up that serve clients (a controller-only node has no HTTP port).
    pub(crate) fn up(&self) -> impl Iterator<Item = (usize, &TestBroker)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (i + 1, n)))
            .filter(|(_, n)| n.port != 0)
    }

    pub(crate) fn v3(&self, id: usize, path: &str) -> String {
        self.node(id)
            .url(&format!("/v3/clusters/{}{path}", self.cluster_id))
    }

    pub(crate) fn kill9(&mut self, id: usize) {
        if let Some(node) = self.nodes[id - 1].take() {
            node.kill9();
        }
    }

    pub(crate) fn stop(&mut self, id: usize) {
        if let Some(node) = self.nodes[id - 1].take() {
            node.stop();
        }
    }

    /// The active controller, as node `via` sees it.
    pub(crate) fn controller(&self, via: usize) -> Option<usize> {
        let (status, body) = get(&self.v3(via, "/quorum"));
        assert_eq!(status, 200, "{body}");
        body["controller_id"].as_u64().map(|c| c as usize)
    }

    /// Each broker's state (`alive`, `fenced`, `shutting_down`) as node `via` sees it.
    pub(crate) fn broker_states(&self, via: usize) -> Vec<(usize, String)> {
        let (status, body) = get(&self.v3(via, "/brokers"));
        assert_eq!(status, 200, "{body}");
        body["data"]
            .as_array()
            .expect("brokers")
            .iter()
            .map(|b| {
                (
                    b["broker_id"].as_u64().expect("an id") as usize,
                    b["state"].as_str().expect("a state").to_string(),
                )
            })
            .collect()
    }

    /// Each partition's (leader, replicas, online) as node `via` sees it.
    pub(crate) fn partitions(&self, via: usize, topic: &str) -> Vec<Placed> {
        let (status, body) = get(&self.v3(via, &format!("/topics/{topic}/partitions")));
        assert_eq!(status, 200, "{body}");
        body["data"]
            .as_array()
            .expect("partitions")
            .iter()
            .map(|p| {
                let replicas = p["replica_ids"]
                    .as_array()
                    .expect("replica ids")
                    .iter()
                    .filter_map(Value::as_i64)
                    .collect();
                (
                    p["leader_id"].as_i64(),
                    replicas,
                    p["online"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    }

    /// Creates a topic through node `via`; once created, waits until every node up
    /// has applied it (metadata reaches the nodes a moment apart, as in Kafka).
    pub(crate) fn create_topic(&self, via: usize, name: &str, partitions: i32) -> (u16, Value) {
        let created = post_json(
            &self.v3(via, "/topics"),
            &json!({"topic_name": name, "partitions_count": partitions}),
        );
        if created.0 == 201 {
            wait_until(
                "every node knows the topic",
                Duration::from_secs(10),
                || {
                    self.up()
                        .all(|(id, _)| get(&self.v3(id, &format!("/topics/{name}"))).0 == 200)
                },
            );
        }
        created
    }

    /// Produces `value` to `topic`-`partition` through node `via` (v3): the report.
    pub(crate) fn produce(&self, via: usize, topic: &str, partition: i32, value: &str) -> Value {
        let (status, answer) = send(
            "POST",
            &self.v3(via, &format!("/topics/{topic}/records")),
            "application/json",
            &json!({"partition_id": partition, "value": {"type": "JSON", "data": value}})
                .to_string(),
        );
        assert_eq!(status, 200, "{answer}");
        v3_reports(&answer).remove(0)
    }

    /// Produces `value` as [`TestCluster::produce`] does: whether it was acknowledged.
    pub(crate) fn produce_outcome(
        &self,
        via: usize,
        topic: &str,
        partition: i32,
        value: &str,
    ) -> bool {
        let (status, answer) = send(
            "POST",
            &self.v3(via, &format!("/topics/{topic}/records")),
            "application/json",
            &json!({"partition_id": partition, "value": {"type": "JSON", "data": value}})
                .to_string(),
        );
        status == 200
            && v3_reports(&answer)
                .first()
                .is_some_and(|r| r["error_code"] == 200)
    }

    /// Every value of `topic`-`partition`, read through node `via` (v2 records).
    pub(crate) fn read(&self, via: usize, topic: &str, partition: i32) -> Vec<(i64, String)> {
        let (status, body) = get_accept(
            &self.node(via).url(&format!(
                "/topics/{topic}/partitions/{partition}/records?offset=0&max_bytes=1048576"
            )),
            "application/vnd.kafka.json.v2+json",
        );
        assert_eq!(status, 200, "{body}");
        body.as_array()
            .expect("records")
            .iter()
            .map(|r| {
                (
                    r["offset"].as_i64().expect("offset"),
                    r["value"].as_str().expect("a string value").to_string(),
                )
            })
            .collect()
    }
}

/// Polls `condition` every 100 ms until it holds; fails the test at `within`.
pub(crate) fn wait_until(
    what: &str,
    within: Duration,
    mut condition: impl FnMut() -> bool,
) -> Duration {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < within, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

pub(crate) fn all_alive(c: &TestCluster, via: usize) -> bool {
    let states = c.broker_states(via);
    states.len() == 3 && states.iter().all(|(_, s)| s == "alive")
}

#[test]
fn three_nodes_from_the_readme_spread_a_topic_and_serve_each_others_partitions() {
    let _ports = README_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = TestCluster::from_readme();
    wait_until("every broker alive", Duration::from_secs(20), || {
        all_alive(&c, 2)
    });
    // The cluster resource names the active controller, and every node lists the
    // same three brokers.
    let controller = c.controller(1).expect("an active controller");
    let (_, cluster) = get(&c.v3(3, ""));
    assert!(
        cluster["controller"]["related"]
            .as_str()
            .expect("a controller link")
            .ends_with(&format!("/brokers/{controller}")),
        "{cluster}"
    );
    for via in 1..=3 {
        let ids: Vec<usize> = c.broker_states(via).into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, vec![1, 2, 3]);
    }

    // A 6-partition topic, created through node 1, spreads over the three: each
    // node leads two partitions.
    let (status, body) = c.create_topic(1, "six", 6);
    assert_eq!(status, 201, "{body}");
    let placed = c.partitions(3, "six");
    for node in 1..=3i64 {
        let led = placed.iter().filter(|(l, _, _)| *l == Some(node)).count();
        assert_eq!(led, 2, "node {node} leads two partitions: {placed:?}");
    }
    // The README's configs give every partition three replicas, the leader first.
    assert!(
        placed
            .iter()
            .all(|(l, r, online)| *online && r.len() == 3 && Some(r[0]) == *l),
        "{placed:?}"
    );

    // Produced through node 1 to partitions led by nodes 2 and 3 (and itself), read
    // through node 3.
    for p in 0..6 {
        let report = c.produce(1, "six", p, &format!("rest-{p}"));
        assert_eq!(report["error_code"], 200, "{report}");
        assert_eq!(report["offset"], 0, "{report}");
    }
    for p in 0..6 {
        assert_eq!(c.read(3, "six", p), vec![(0, format!("rest-{p}"))]);
    }

    // Kafka clients see the three brokers and produce to and consume from the
    // partitions each one leads, bootstrapped from any node.
    let listing = kcat(c.node(3), &["-L", "-t", "six"], "");
    assert!(listing.contains(" 3 brokers:"), "{listing}");
    for p in 0..6 {
        kcat(
            c.node(1),
            &["-P", "-t", "six", "-p", &p.to_string()],
            &format!("\"kafka-{p}\"\n"),
        );
    }
    let consumed = kcat(
        c.node(2),
        &[
            "-C",
            "-t",
            "six",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%p %o %s\n",
        ],
        "",
    );
    let mut lines: Vec<&str> = consumed.lines().collect();
    lines.sort();
    let mut want: Vec<String> = (0..6)
        .flat_map(|p| {
            [
                format!("{p} 0 \"rest-{p}\""),
                format!("{p} 1 \"kafka-{p}\""),
            ]
        })
        .collect();
    want.sort();
    assert_eq!(lines, want);

    // confluent-kafka, bootstrapped from node 3: an idempotent producer writes to
    // every partition (each led by its own broker), and a group consumer reads all
    // 18 records back through the coordinator wherever it is.
    let report = python(
        c.node(3),
        r#"
from confluent_kafka import Producer, Consumer
p = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True, "acks": "all"})
acked = []
for i in range(6):
    p.produce("six", value=('"ck-%d"' % i).encode(), partition=i,
              on_delivery=lambda e, m: acked.append(None if e else [m.partition(), m.offset()]))
p.flush(30)
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "readme-ck",
              "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe(["six"])
got = []
import time
deadline = time.time() + 30
while len(got) < 18 and time.time() < deadline:
    m = c.poll(1.0)
    if m is not None and m.error() is None:
        got.append([m.partition(), m.offset()])
c.commit(asynchronous=False)
c.close()
print(json.dumps({"acked": sorted(acked), "got": sorted(got)}))
"#,
    );
    let acked: Vec<Value> = (0..6).map(|p| json!([p, 2])).collect();
    assert_eq!(report["acked"], json!(acked), "{report}");
    let got: Vec<Value> = (0..6)
        .flat_map(|p| (0..3).map(move |o| json!([p, o])))
        .collect();
    assert_eq!(report["got"], json!(got), "{report}");

    // A WebSocket on node 2 follows every partition's leader: live records produced
    // through node 3 arrive once each, in order.
    let mut ws = WsClient::connect(c.node(2));
    ws.send(json!({"type": "subscribe", "sub": "s", "topic": "six", "from": "beginning"}));
    ws.expect("subscribed", Instant::now() + Duration::from_secs(10));
    for p in 0..6 {
        c.produce(3, "six", p, &format!("live-{p}"));
    }
    let mut other = Vec::new();
    let got = ws.collect(
        "s",
        24,
        Instant::now() + Duration::from_secs(20),
        &mut other,
    );
    for p in 0..6 {
        let values: Vec<String> = got[&p]
            .iter()
            .map(|(_, v)| v.as_str().expect("a string value").to_string())
            .collect();
        assert_eq!(
            values,
            vec![
                format!("rest-{p}"),
                format!("kafka-{p}"),
                format!("ck-{p}"),
                format!("live-{p}")
            ]
        );
    }
    drop(ws);

    // Every node stopped, every node started: the same metadata on each, and the
    // records still there.
    for id in 1..=3 {
        c.stop(id);
    }
    c.start_nodes(&[1, 2, 3]);
    wait_until("every broker alive again", Duration::from_secs(30), || {
        all_alive(&c, 1)
    });
    let seen: Vec<Vec<Placed>> = (1..=3).map(|via| c.partitions(via, "six")).collect();
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1], seen[2]);
    let topics = |via: usize| {
        let (_, body) = get(&c.v3(via, "/topics"));
        let mut names: Vec<String> = body["data"]
            .as_array()
            .expect("topics")
            .iter()
            .map(|t| t["topic_name"].as_str().expect("a name").to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(topics(1), topics(2));
    assert_eq!(topics(2), topics(3));
    wait_until("every partition led again", Duration::from_secs(20), || {
        c.partitions(2, "six").iter().all(|(_, _, online)| *online)
    });
    for p in 0..6 {
        let values: Vec<String> = c.read(1, "six", p).into_iter().map(|(_, v)| v).collect();
        assert_eq!(values.len(), 4, "{values:?}");
    }
}

/// Fast liveness for the tests that fence.
pub(crate) const QUICK: &[&str] = &[
    "broker.session.timeout.ms=3000",
    "broker.heartbeat.interval.ms=500",
];

#[test]
fn killing_the_active_controller_hands_the_quorum_on_and_admin_keeps_working() {
    let kills: usize = std::env::var("TROUPE_CLUSTER_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(3);
    let mut c = TestCluster::start(QUICK);
    wait_until("every broker alive", Duration::from_secs(20), || {
        all_alive(&c, 1)
    });
    let mut failovers = Vec::new();
    for round in 0..kills {
        let asker = c.up().map(|(id, _)| id).next().expect("a node up");
        let active = c.controller(asker).expect("a controller");
        let via = (active % 3) + 1;
        c.kill9(active);
        let killed = Instant::now();
        // Creating, altering and deleting topics work again through another node.
        let name = format!("after-kill-{round}");
        loop {
            let (status, body) = c.create_topic(via, &name, 2);
            if status == 201 {
                break;
            }
            assert_eq!(status, 503, "retriable while the quorum elects: {body}");
            assert!(
                killed.elapsed() < Duration::from_secs(10),
                "no active controller within 10 s: {body}"
            );
        }
        failovers.push(killed.elapsed());
        let (status, body) = send(
            "PUT",
            &c.v3(via, &format!("/topics/{name}/configs/retention.ms")),
            "application/json",
            r#"{"value": "3600000"}"#,
        );
        assert_eq!(status, 204, "{body}");
        let (status, body) = delete(&c.v3(via, &format!("/topics/{name}")));
        assert_eq!(status, 204, "{body}");
        assert_ne!(c.controller(via), Some(active));
        // The killed node restarts and rejoins.
        c.start_nodes(&[active]);
        wait_until("the killed node rejoins", Duration::from_secs(20), || {
            all_alive(&c, via)
        });
    }
    eprintln!("controller failover (kill -9 to the next topic created): {failovers:?}");
}

#[test]
fn a_killed_broker_is_fenced_its_partitions_offline_until_it_returns_with_its_data() {
    let mut c = TestCluster::start(QUICK);
    wait_until("every broker alive", Duration::from_secs(20), || {
        all_alive(&c, 1)
    });
    let (status, body) = c.create_topic(1, "spread", 6);
    assert_eq!(status, 201, "{body}");
    for p in 0..6 {
        c.produce(1, "spread", p, &format!("kept-{p}"));
    }
    // Not the controller, so only liveness is in play.
    let controller = c.controller(1).expect("a controller");
    let victim = (1..=3).find(|n| *n != controller).expect("another node");
    let via = (1..=3).find(|n| *n != victim).expect("a node that stays");
    let theirs: Vec<i32> = c
        .partitions(via, "spread")
        .iter()
        .enumerate()
        .filter(|(_, (l, _, _))| *l == Some(victim as i64))
        .map(|(p, _)| p as i32)
        .collect();
    assert_eq!(theirs.len(), 2);
    c.kill9(victim);
    let fenced = wait_until("the broker is fenced", Duration::from_secs(10), || {
        c.broker_states(via)
            .iter()
            .any(|(id, s)| *id == victim && s == "fenced")
    });
    eprintln!("fenced {fenced:?} after kill -9 (session timeout 3 s)");
    let placed = c.partitions(via, "spread");
    for p in &theirs {
        assert_eq!(placed[*p as usize].0, None, "no leader: {placed:?}");
        assert!(!placed[*p as usize].2, "offline: {placed:?}");
    }
    // /metrics counts every partition without a leader: these two, and the
    // victim's share of __consumer_offsets.
    let offline_everywhere = ["spread", "__consumer_offsets"]
        .iter()
        .map(|t| c.partitions(via, t).iter().filter(|p| !p.2).count())
        .sum::<usize>();
    assert!(offline_everywhere >= 2);
    let metrics = c.node(via).metrics();
    assert!(
        metrics.contains(&format!(
            "troupe_cluster_offline_partitions {offline_everywhere}\n"
        )),
        "/metrics counts the {offline_everywhere} offline partitions"
    );
    let (status, body) = send(
        "POST",
        &c.v3(via, "/topics/spread/records"),
        "application/json",
        &json!({"partition_id": theirs[0], "value": {"type": "STRING", "data": "x"}}).to_string(),
    );
    let report = v3_reports(&body).remove(0);
    assert_eq!(status, 200, "{body}");
    assert_ne!(report["error_code"], 200, "{report}");
    assert!(
        report["message"].as_str().unwrap_or("").contains("offline"),
        "a refusal naming the offline partition: {report}"
    );
    // Its bounds are unknown, not zero: v2's offsets say so.
    let (status, body) = get(&c
        .node(via)
        .url(&format!("/topics/spread/partitions/{}/offsets", theirs[0])));
    assert_eq!(
        (status, body["error_code"].as_i64()),
        (503, Some(50003)),
        "{body}"
    );
    // Other partitions keep taking writes.
    let other = (0..6)
        .find(|p| !theirs.contains(p))
        .expect("another partition");
    assert_eq!(
        c.produce(via, "spread", other, "meanwhile")["error_code"],
        200
    );

    c.start_nodes(&[victim]);
    wait_until("its partitions are back", Duration::from_secs(20), || {
        let placed = c.partitions(via, "spread");
        theirs.iter().all(|p| placed[*p as usize].2)
    });
    for p in &theirs {
        assert_eq!(c.read(via, "spread", *p), vec![(0, format!("kept-{p}"))]);
    }
}

#[test]
fn without_a_quorum_metadata_changes_are_refused_and_nothing_is_half_applied() {
    let c = TestCluster::start(QUICK);
    wait_until("every broker alive", Duration::from_secs(20), || {
        all_alive(&c, 1)
    });
    // The active controller loses both other voters (frozen: their sockets stay open
    // and its heartbeats time out): the case where a refused change could otherwise
    // wait in its log and commit when a voter returns.
    let mut leader = None;
    wait_until("a controller", Duration::from_secs(20), || {
        leader = c.controller(1);
        leader.is_some()
    });
    let leader = leader.unwrap_or(1);
    let others: Vec<usize> = (1..=3).filter(|n| *n != leader).collect();
    for n in &others {
        c.node(*n).pause(true);
    }
    let refused = |name: &str| {
        let asked = Instant::now();
        let (status, body) = c.create_topic(leader, name, 1);
        assert_eq!(status, 503, "{body}");
        let message = body["message"].as_str().unwrap_or("");
        assert!(message.contains("nothing was changed"), "{body}");
        // Refused, not left waiting behind the controller's own failing work.
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "{:?}",
            asked.elapsed()
        );
    };
    refused("lost");
    refused("lost-again");
    // Past the session timeout the controller tries (and fails) to fence the lost
    // brokers on every tick: requests still get their answer.
    std::thread::sleep(Duration::from_secs(4));
    refused("lost-late");
    // The node still serves what it has.
    let (status, _) = get(&c.v3(leader, "/topics"));
    assert_eq!(status, 200);
    c.node(others[0]).pause(false);
    let mut created = false;
    wait_until(
        "metadata changes work again",
        Duration::from_secs(30),
        || {
            if !created {
                // Not `create_topic`, which asks every node, the frozen one too.
                let topic = json!({"topic_name": "found", "partitions_count": 1});
                created = post_json(&c.v3(leader, "/topics"), &topic).0 == 201;
            }
            created
        },
    );
    let names = |via: usize| -> Vec<String> {
        let (_, topics) = get(&c.v3(via, "/topics"));
        topics["data"]
            .as_array()
            .expect("topics")
            .iter()
            .filter_map(|t| t["topic_name"].as_str().map(str::to_string))
            .collect()
    };
    for via in [leader, others[0]] {
        wait_until("the node has applied it", Duration::from_secs(10), || {
            names(via).contains(&"found".to_string())
        });
        let names = names(via);
        assert!(
            !names.iter().any(|n| n.starts_with("lost")),
            "the refused topics never half-exist: {names:?}"
        );
    }
    c.node(others[1]).pause(false);
}

#[test]
fn the_controller_listener_refuses_strangers_and_garbage_and_keeps_serving() {
    let c = TestCluster::start(&[]);
    let port = c.controller_listener(1);
    let post = |path: &str, headers: &[(&str, &str)], body: &str| -> u16 {
        let mut req = ureq::post(&format!("http://{port}{path}"));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        match req.send_string(body) {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(s, _)) => s,
            Err(e) => panic!("{e}"),
        }
    };
    let heartbeat = json!({"type": "heartbeat", "broker_id": 2, "broker_epoch": 1,
        "current_metadata_offset": 0, "want_shut_down": false})
    .to_string();
    let ours = [("troupe-cluster-id", CLUSTER_ID), ("troupe-node-id", "2")];
    assert_eq!(post("/controller/decide", &[], &heartbeat), 400);
    assert_eq!(
        post(
            "/controller/decide",
            &[("troupe-cluster-id", "another"), ("troupe-node-id", "2")],
            &heartbeat
        ),
        403
    );
    assert_eq!(post("/controller/decide", &ours, "{not json"), 400);
    // A node speaking for another broker.
    assert_eq!(
        post(
            "/controller/decide",
            &[("troupe-cluster-id", CLUSTER_ID), ("troupe-node-id", "3")],
            &heartbeat
        ),
        400
    );
    // A Raft RPC from a node that is not a voter.
    assert_eq!(
        post(
            "/raft/vote",
            &[("troupe-cluster-id", CLUSTER_ID), ("troupe-node-id", "9")],
            "{}"
        ),
        403
    );
    assert_eq!(post("/raft/append", &ours, "garbage"), 400);
    // And the cluster goes on.
    let (status, body) = c.create_topic(2, "still-serving", 3);
    assert_eq!(status, 201, "{body}");
}

/// The `__consumer_offsets` partition of a group, as Kafka places it: Java's
/// `String.hashCode`, made positive by Kafka's `Utils.abs`, modulo the partitions.
pub(crate) fn offsets_partition(group: &str, partitions: usize) -> usize {
    let h = group
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs as usize % partitions
}

#[test]
fn rest_consumers_on_any_node_join_a_group_coordinated_by_another() {
    use crate::groups::Consumer;
    let c = TestCluster::start(&[]);
    wait_until("every broker alive", Duration::from_secs(20), || {
        all_alive(&c, 1)
    });
    let (status, body) = c.create_topic(1, "shared", 6);
    assert_eq!(status, 201, "{body}");
    for p in 0..6 {
        for i in 0..3 {
            c.produce(2, "shared", p, &format!("{p}-{i}"));
        }
    }
    // A group whose coordinator (its offsets partition's leader) is node 2.
    let offsets = c.partitions(1, "__consumer_offsets");
    let group = (0..1000)
        .map(|i| format!("shared-group-{i}"))
        .find(|g| offsets[offsets_partition(g, offsets.len())].0 == Some(2))
        .expect("a group coordinated by node 2");
    // Members on nodes 1 and 3: neither coordinates the group.
    let settings = json!({"auto.commit.enable": "false"});
    let a = Consumer::create(c.node(1), &group, "a", settings.clone());
    let b = Consumer::create(c.node(3), &group, "b", settings);
    a.subscribe(&["shared"]);
    b.subscribe(&["shared"]);
    // Between them they read every record (a partition may be read twice while the
    // group settles: nothing is committed yet), and settle on a split of the six.
    let mut got: BTreeMap<i32, std::collections::BTreeSet<i64>> = BTreeMap::new();
    wait_until(
        "the two split the six partitions and read every record",
        Duration::from_secs(30),
        || {
            for consumer in [&a, &b] {
                for (p, o, _) in consumer.poll(200) {
                    got.entry(p).or_default().insert(o);
                }
            }
            let (x, y) = (a.assignments(), b.assignments());
            x.len() + y.len() == 6
                && x.is_disjoint(&y)
                && got.values().map(|o| o.len()).sum::<usize>() == 18
        },
    );
    for p in 0..6 {
        assert_eq!(got[&p], (0..3).collect(), "partition {p}: {got:?}");
    }
    let last = [&a, &b].map(|consumer| {
        consumer
            .assignments()
            .into_iter()
            .map(|p| (p, 2))
            .collect::<BTreeMap<i32, i64>>()
    });
    // Commits travel to node 2, and both members read them back.
    for (consumer, last) in [(&a, &last[0]), (&b, &last[1])] {
        let (status, body) = consumer.commit("shared", last);
        assert_eq!(status, 200, "{body}");
    }
    let all: Vec<i32> = (0..6).collect();
    let committed: BTreeMap<i32, i64> = a.committed("shared", &all);
    assert_eq!(committed, (0..6).map(|p| (p, 3)).collect());
    // Every node describes the group — the coordinator's own, the others by asking
    // it: its two members, no lag, and it is in every node's list.
    for via in 1..=3 {
        let (status, summary) = get(&c.v3(via, &format!("/consumer-groups/{group}/lag-summary")));
        assert_eq!(status, 200, "node {via}: {summary}");
        assert_eq!(summary["total_lag"], 0, "node {via}: {summary}");
        let (status, described) = get(&c.v3(via, &format!("/consumer-groups/{group}/consumers")));
        assert_eq!(status, 200, "node {via}: {described}");
        assert_eq!(
            described["data"].as_array().map(Vec::len),
            Some(2),
            "node {via}: {described}"
        );
        let (status, listed) = get(&c.v3(via, "/consumer-groups"));
        assert_eq!(status, 200, "{listed}");
        let ids: Vec<&str> = listed["data"]
            .as_array()
            .expect("groups")
            .iter()
            .filter_map(|g| g["consumer_group_id"].as_str())
            .collect();
        assert!(ids.contains(&group.as_str()), "node {via} lists {ids:?}");
    }
    a.delete();
    b.delete();
    // Emptied, the group is reset and deleted through nodes that do not coordinate
    // it.
    wait_until("the group is empty", Duration::from_secs(20), || {
        let (_, g) = get(&c.v3(1, &format!("/consumer-groups/{group}")));
        g["state"] == "EMPTY"
    });
    let (status, reset) = post_json(
        &c.v3(3, &format!("/consumer-groups/{group}/offsets:reset")),
        &json!({"topic_name": "shared", "to": "earliest"}),
    );
    assert_eq!(status, 200, "{reset}");
    let (_, summary) = get(&c.v3(1, &format!("/consumer-groups/{group}/lag-summary")));
    assert_eq!(summary["total_lag"], 18, "{summary}");
    let (status, body) = delete(&c.v3(1, &format!("/consumer-groups/{group}")));
    assert_eq!(status, 204, "{body}");
    let (status, _) = get(&c.v3(2, &format!("/consumer-groups/{group}")));
    assert_eq!(status, 404);
}

#[test]
fn a_controller_only_node_votes_and_leads_but_holds_no_partitions() {
    let mut c = TestCluster::start_with(QUICK, &[(3, "process.roles=controller")]);
    // Two brokers register; the third node is a voter only.
    wait_until("both brokers alive", Duration::from_secs(20), || {
        let states = c.broker_states(1);
        states.len() == 2 && states.iter().all(|(_, s)| s == "alive")
    });
    assert_eq!(
        c.broker_states(2)
            .into_iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    let (status, body) = c.create_topic(1, "two-brokers", 4);
    assert_eq!(status, 201, "{body}");
    let placed = c.partitions(2, "two-brokers");
    assert!(
        placed
            .iter()
            .all(|(l, _, _)| matches!(l, Some(1) | Some(2))),
        "{placed:?}"
    );
    // Its vote counts: with node 1 down, nodes 2 and 3 are a quorum.
    c.kill9(1);
    let mut created = false;
    wait_until(
        "metadata changes work with node 1 down",
        Duration::from_secs(20),
        || {
            if !created {
                created = c.create_topic(2, "after-node-1", 1).0 == 201;
            }
            created
        },
    );
    let controller = c.controller(2).expect("a controller");
    assert!(matches!(controller, 2 | 3), "{controller}");
    c.stop(3);
}

#[test]
fn a_v2_consumer_instance_is_reached_through_any_node() {
    let c = TestCluster::start(&[]);
    wait_until("every broker alive", Duration::from_secs(20), || {
        all_alive(&c, 1)
    });
    let (status, body) = c.create_topic(1, "pinned", 3);
    assert_eq!(status, 201, "{body}");
    for p in 0..3 {
        c.produce(1, "pinned", p, &format!("pinned-{p}"));
    }
    const V2: &str = "application/vnd.kafka.v2+json";
    // Created on node 1; every later request goes through node 3 (a load balancer
    // would do that), which forwards it to node 1.
    let (status, created) = send(
        "POST",
        &c.node(1).url("/consumers/pinned-group"),
        V2,
        r#"{"name": "p1", "format": "json", "auto.offset.reset": "earliest"}"#,
    );
    assert_eq!(status, 200, "{created}");
    let via3 = |path: &str| {
        c.node(3)
            .url(&format!("/consumers/pinned-group/instances/p1{path}"))
    };
    let (status, body) = send(
        "POST",
        &via3("/subscription"),
        V2,
        r#"{"topics": ["pinned"]}"#,
    );
    assert_eq!(status, 204, "{body}");
    let (status, body) = get(&via3("/subscription"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["topics"], json!(["pinned"]));
    let mut values = Vec::new();
    wait_until(
        "the records, through node 3",
        Duration::from_secs(20),
        || {
            let (status, records) = get_accept(
                &via3("/records?timeout=500"),
                "application/vnd.kafka.json.v2+json",
            );
            assert_eq!(status, 200, "{records}");
            for r in records.as_array().expect("records") {
                values.push(r["value"].as_str().expect("a value").to_string());
            }
            values.len() >= 3
        },
    );
    values.sort();
    assert_eq!(values, vec!["pinned-0", "pinned-1", "pinned-2"]);
    let (status, body) = send("POST", &via3("/offsets"), V2, "");
    assert_eq!(status, 200, "{body}");
    // An instance no node has is 404 / 40403 from any of them.
    let (status, body) = get(&c
        .node(2)
        .url("/consumers/pinned-group/instances/nobody/subscription"));
    assert_eq!(
        (status, body["error_code"].clone()),
        (404, json!(40403)),
        "{body}"
    );
    let (status, body) = delete(&via3(""));
    assert_eq!(status, 204, "{body}");
    let (status, _) = get(&c
        .node(1)
        .url("/consumers/pinned-group/instances/p1/subscription"));
    assert_eq!(status, 404, "deleted where it lived");
}

#[test]
fn a_broker_only_node_follows_the_metadata_log_and_serves_like_the_others() {
    let mut c = TestCluster::start_nodes_with(4, QUICK, &[(4, "process.roles=broker")]);
    wait_until("four brokers alive", Duration::from_secs(30), || {
        let states = c.broker_states(4);
        states.len() == 4 && states.iter().all(|(_, s)| s == "alive")
    });
    // A topic over the four: the observer leads its share, and serves the others'.
    let (status, body) = c.create_topic(4, "four", 8);
    assert_eq!(status, 201, "{body}");
    let placed = c.partitions(1, "four");
    assert_eq!(
        placed.iter().filter(|(l, _, _)| *l == Some(4)).count(),
        2,
        "{placed:?}"
    );
    for p in 0..8 {
        assert_eq!(
            c.produce(4, "four", p, &format!("o-{p}"))["error_code"],
            200
        );
    }
    for p in 0..8 {
        assert_eq!(c.read(1, "four", p), vec![(0, format!("o-{p}"))]);
    }
    // It votes in nothing: the quorum is the three voters' (its status says learner),
    // and it keeps applying the log after a restart.
    let (_, q) = get(&c.v3(4, "/quorum"));
    assert_eq!(q["quorum"]["role"], "learner", "{q}");
    c.stop(4);
    let (status, body) = c.create_topic(1, "while-away", 2);
    assert_eq!(status, 201, "{body}");
    c.start_nodes(&[4]);
    wait_until("the observer catches up", Duration::from_secs(20), || {
        get(&c.v3(4, "/topics/while-away")).0 == 200
    });
}

#[test]
fn acks_all_writes_are_refused_while_the_isr_is_below_min_insync_replicas() {
    let mut c = TestCluster::start(QUICK);
    wait_until("every broker alive", Duration::from_secs(20), || {
        all_alive(&c, 1)
    });
    // One partition on nodes 1 (leader) and 2, two replicas required in sync.
    let (status, body) = post_json(
        &c.v3(1, "/topics"),
        &json!({
            "topic_name": "guarded",
            "replicas_assignments": [{"partition_id": 0, "broker_ids": [1, 2]}],
            "configs": [{"name": "min.insync.replicas", "value": "2"}],
        }),
    );
    assert_eq!(status, 201, "{body}");
    wait_until("node 3 knows the topic", Duration::from_secs(10), || {
        get(&c.v3(3, "/topics/guarded")).0 == 200
    });
    assert_eq!(
        c.produce(3, "guarded", 0, "while-in-sync")["error_code"],
        200
    );
    // The follower dies: fenced, it leaves the ISR, and acks=all writes are refused
    // before anything is appended — over REST (through any node) and Kafka.
    c.kill9(2);
    wait_until(
        "the ISR shrinks to the leader",
        Duration::from_secs(15),
        || {
            let (_, p) = get(&c.v3(3, "/topics/guarded/partitions/0"));
            p["isr_ids"] == json!([1])
        },
    );
    for via in [1, 3] {
        let report = c.produce(via, "guarded", 0, "refused");
        assert_eq!(report["error_code"], 50301, "{report}");
        assert!(
            report["message"]
                .as_str()
                .unwrap_or("")
                .contains("min.insync.replicas = 2"),
            "{report}"
        );
    }
    let mut kafka = std::process::Command::new("kcat")
        .args([
            "-b",
            &c.node(1).bootstrap(),
            "-P",
            "-t",
            "guarded",
            "-p",
            "0",
        ])
        .args([
            "-X",
            "acks=all",
            "-X",
            "retries=0",
            "-X",
            "message.timeout.ms=3000",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kcat runs");
    {
        use std::io::Write;
        let mut stdin = kafka.stdin.take().expect("stdin");
        stdin
            .write_all(b"\"refused-too\"\n")
            .expect("kcat reads its input");
    }
    let out = kafka.wait_with_output().expect("kcat ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Not enough in-sync replicas"),
        "a Kafka producer with acks=all hears NOT_ENOUGH_REPLICAS: {stderr}"
    );
    // Nothing of the refused writes is in the log: only the first record.
    assert_eq!(
        c.read(3, "guarded", 0),
        vec![(0, "while-in-sync".to_string())]
    );
    // acks=1 asks only the leader, as in Kafka.
    kcat(
        c.node(1),
        &["-P", "-t", "guarded", "-p", "0", "-X", "acks=1"],
        "\"leader-only\"\n",
    );
    let values: Vec<String> = c
        .read(1, "guarded", 0)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values, vec!["while-in-sync", "leader-only"]);
}
