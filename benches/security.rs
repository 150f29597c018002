//! Security benchmark: `cargo bench --bench security`.
//!
//! What encryption costs, in the same run: produce throughput over TLS ÷ the same
//! over plaintext, for REST (v2 JSON batches of 500 records of 1 KiB, one keep-alive
//! connection, from Python's `http.client`) and for the Kafka protocol
//! (confluent-kafka, `acks=all`, 1 KiB values), each against a fresh broker: one with
//! `http://` and `PLAINTEXT://` listeners, one with `https://` and `SSL://` (a
//! certificate from a CA made by rcgen for the run). The same client code drives both
//! sides; only the transport differs. The sides run plain, TLS, TLS, plain (each a
//! fresh broker, after a `sync`), and each figure is the mean of its two runs. Beside each rate, the broker's CPU-seconds per
//! MiB, since on two cores the client and the broker share the machine.
//!
//! Environment: `TROUPE_BENCH_SECONDS` per case (default 10), `TROUPE_BENCH_DIR`
//! (default `target/bench-data`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use serde_json::{json, Value};

mod support;
use support::{bench_settings, start_broker_with, Broker};

const VALUE_BYTES: usize = 1024;

fn fail(e: impl std::fmt::Display) -> ! {
    panic!("{e}")
}

/// A CA and a broker certificate for 127.0.0.1: (CA file, key store file).
fn pki(dir: &Path) -> (String, String) {
    let ca_key = KeyPair::generate().unwrap_or_else(|e| fail(e));
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail(e));
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "bench CA");
    let ca = ca.self_signed(&ca_key).unwrap_or_else(|e| fail(e));
    let key = KeyPair::generate().unwrap_or_else(|e| fail(e));
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap_or_else(|e| fail(e))
        .signed_by(&key, &ca, &ca_key)
        .unwrap_or_else(|e| fail(e));
    let ca_file = dir.join("ca.pem");
    let store = dir.join("broker.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap_or_else(|e| fail(e));
    std::fs::write(&store, format!("{}{}", key.serialize_pem(), leaf.pem()))
        .unwrap_or_else(|e| fail(e));
    (ca_file.display().to_string(), store.display().to_string())
}

fn python(script: &str, args: Value) -> Value {
    support::python_json("", script, &args)
}

const REST: &str = r#"
import http.client, ssl
from urllib.parse import urlparse
url = urlparse(ARGS["base"])
if url.scheme == "https":
    context = ssl.create_default_context(cafile=ARGS["ca"])
    conn = http.client.HTTPSConnection(url.hostname, url.port, context=context)
else:
    conn = http.client.HTTPConnection(url.hostname, url.port)
body = json.dumps({"records": [{"value": "x" * ARGS["value_bytes"]} for _ in range(500)]}).encode()
headers = {"Content-Type": "application/vnd.kafka.json.v2+json"}
def send():
    conn.request("POST", "/topics/" + ARGS["topic"], body, headers)
    r = conn.getresponse(); r.read()
    if r.status != 200: raise SystemExit(f"HTTP {r.status}")
send()
records, start = 0, time.monotonic()
while time.monotonic() - start < ARGS["seconds"]:
    send(); records += 500
print(json.dumps({"records": records, "elapsed": time.monotonic() - start}))
"#;

const KAFKA: &str = r#"
from confluent_kafka import Producer
conf = {"bootstrap.servers": ARGS["bootstrap"], "acks": "all", "linger.ms": 5,
        "queue.buffering.max.messages": 1000000}
if ARGS["ca"]:
    conf.update({"security.protocol": "SSL", "ssl.ca.location": ARGS["ca"]})
p = Producer(conf)
value = b"x" * ARGS["value_bytes"]
acked = [0]
def done(err, msg):
    if err is not None: raise SystemExit(str(err))
    acked[0] += 1
p.produce(ARGS["topic"], value, partition=0, on_delivery=done); p.flush(30)
acked[0] = 0
start = time.monotonic()
while time.monotonic() - start < ARGS["seconds"]:
    for _ in range(1000):
        try: p.produce(ARGS["topic"], value, partition=0, on_delivery=done)
        except BufferError: p.poll(0.001)
    p.poll(0)
p.flush(60)
print(json.dumps({"records": acked[0], "elapsed": time.monotonic() - start}))
"#;

struct Rate {
    mib_per_s: f64,
    cpu_per_mib: f64,
}

fn measure(broker: &Broker, script: &str, args: Value) -> Rate {
    let before = broker.cpu_seconds();
    let out = python(script, args);
    let mib = out["records"].as_f64().unwrap_or(0.0) * VALUE_BYTES as f64 / (1024.0 * 1024.0);
    let elapsed = out["elapsed"].as_f64().unwrap_or(1.0);
    Rate {
        mib_per_s: mib / elapsed,
        cpu_per_mib: (broker.cpu_seconds() - before) / mib.max(1e-9),
    }
}

fn create_topic(broker: &Broker, ca: Option<&str>, name: &str) {
    let cluster = {
        let mut args = vec!["-s".to_string()];
        if let Some(ca) = ca {
            args.extend(["--cacert".to_string(), ca.to_string()]);
        }
        args.push(format!("{}/v3/clusters", broker.base));
        let out = Command::new("curl")
            .args(&args)
            .output()
            .unwrap_or_else(|e| fail(e));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| fail(e));
        v["data"][0]["cluster_id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let mut args = vec!["-s".to_string(), "-f".to_string()];
    if let Some(ca) = ca {
        args.extend(["--cacert".to_string(), ca.to_string()]);
    }
    args.extend([
        "-H".to_string(),
        "Content-Type: application/json".to_string(),
        "-d".to_string(),
        json!({"topic_name": name, "partitions_count": 1}).to_string(),
        format!("{}/v3/clusters/{cluster}/topics", broker.base),
    ]);
    let out = Command::new("curl")
        .args(&args)
        .output()
        .unwrap_or_else(|e| fail(e));
    if !out.status.success() {
        fail(format!(
            "creating {name}: {}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
}

fn run_side(
    root: &Path,
    round: usize,
    tls: Option<(&str, &str)>,
    seconds: Duration,
) -> (Rate, Rate) {
    let dir = root.join(format!(
        "{}-{round}",
        if tls.is_some() { "tls" } else { "plain" }
    ));
    // The previous side's dirty pages written back, so they do not slow this one.
    let _ = Command::new("sync").status();
    let broker = match tls {
        None => start_broker_with(&dir, &[]),
        Some((_, store)) => start_broker_with(
            &dir,
            &[
                "listeners=https://127.0.0.1:0,SSL://127.0.0.1:0",
                &format!("ssl.keystore.location={store}"),
            ],
        ),
    };
    let ca = tls.map(|(ca, _)| ca);
    create_topic(&broker, ca, "rest");
    create_topic(&broker, ca, "kafka");
    let rest = measure(
        &broker,
        REST,
        json!({"base": broker.base, "ca": ca, "topic": "rest", "value_bytes": VALUE_BYTES,
               "seconds": seconds.as_secs()}),
    );
    let kafka = measure(
        &broker,
        KAFKA,
        json!({"bootstrap": broker.kafka, "ca": ca, "topic": "kafka", "value_bytes": VALUE_BYTES,
               "seconds": seconds.as_secs()}),
    );
    drop(broker);
    // Gigabytes per side: gone before the next one writes.
    let _ = std::fs::remove_dir_all(&dir);
    (rest, kafka)
}

fn main() {
    let (seconds, root) = bench_settings(10);
    let (ca, store) = pki(&root);
    // Plain, TLS, TLS, plain: each side runs once early and once late, so neither
    // gains from the order (the page cache filling, the disk's writeback).
    let tls = Some((ca.as_str(), store.as_str()));
    let runs = [
        run_side(&root, 1, None, seconds),
        run_side(&root, 1, tls, seconds),
        run_side(&root, 2, tls, seconds),
        run_side(&root, 2, None, seconds),
    ];
    let mean = |a: &Rate, b: &Rate| Rate {
        mib_per_s: (a.mib_per_s + b.mib_per_s) / 2.0,
        cpu_per_mib: (a.cpu_per_mib + b.cpu_per_mib) / 2.0,
    };
    let rest_plain = mean(&runs[0].0, &runs[3].0);
    let kafka_plain = mean(&runs[0].1, &runs[3].1);
    let rest_tls = mean(&runs[1].0, &runs[2].0);
    let kafka_tls = mean(&runs[1].1, &runs[2].1);
    println!(
        "\nproduce throughput, TLS ÷ plaintext ({}s per case, 1 KiB values, mean of 2 runs each)",
        seconds.as_secs()
    );
    println!(
        "{:<28} {:>12} {:>12} {:>8} {:>22}",
        "path", "plain MiB/s", "TLS MiB/s", "ratio", "broker CPU-s/MiB p/TLS"
    );
    for (name, plain, tls) in [
        ("REST v2 (500-record posts)", &rest_plain, &rest_tls),
        ("Kafka (confluent-kafka)", &kafka_plain, &kafka_tls),
    ] {
        println!(
            "{:<28} {:>12.1} {:>12.1} {:>8.2} {:>10.4} / {:<10.4}",
            name,
            plain.mib_per_s,
            tls.mib_per_s,
            tls.mib_per_s / plain.mib_per_s.max(1e-9),
            plain.cpu_per_mib,
            tls.cpu_per_mib
        );
    }
}
