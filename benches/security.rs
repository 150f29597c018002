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
//! What authorization costs, the same way: produce throughput with the ACL
//! authorizer on ÷ off, on a broker holding 1,000 ACLs (900 literal, 100 prefixed;
//! the client's right is one of the prefixed), each side authenticating its client
//! alike (HTTP Basic; SASL/SCRAM), so only the authorizer differs — for REST (v3
//! single-record posts with `acks=1`: one request, one decision, no fsync to wait
//! for) and the Kafka protocol (confluent-kafka, 100-byte values, `linger.ms=0`: many
//! small produce requests). Off, on, on, off; the mean of two runs each, and each
//! run's figure.
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

/// confluent-kafka producing `value_bytes` values to partition 0 for `seconds`,
/// with `conf` on top of the bootstrap address.
const KAFKA: &str = r#"
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": ARGS["bootstrap"], "queue.buffering.max.messages": 1000000,
              **ARGS["conf"]})
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

const ACL_REST: &str = r#"
import http.client, base64
from urllib.parse import urlparse
url = urlparse(ARGS["base"])
conn = http.client.HTTPConnection(url.hostname, url.port)
auth = "Basic " + base64.b64encode(ARGS["credentials"].encode()).decode()
body = json.dumps({"value": {"type": "JSON", "data": "x" * 90}}).encode()
headers = {"Content-Type": "application/json", "Authorization": auth}
path = "/v3/clusters/" + ARGS["cluster"] + "/topics/" + ARGS["topic"] + "/records?acks=1"
def send():
    conn.request("POST", path, body, headers)
    r = conn.getresponse(); r.read()
    if r.status != 200: raise SystemExit(f"HTTP {r.status}")
send()
records, start = 0, time.monotonic()
while time.monotonic() - start < ARGS["seconds"]:
    send(); records += 1
print(json.dumps({"records": records, "elapsed": time.monotonic() - start}))
"#;

/// The bench's users: a super user who sets up, and the client measured.
const ACL_ADMIN: &str = "admin:admin-pw";
const ACL_CLIENT: &str = "bench:bench-pw";

/// 1,000 ACLs: 900 literal and 99 prefixed ones for other users, and the client's
/// Write on every `acl-` topic.
fn thousand_acls() -> Value {
    let acl = |name: String, pattern: &str, principal: String, op: &str| {
        json!({"resource_type": "TOPIC", "resource_name": name, "pattern_type": pattern,
               "principal": principal, "host": "*", "operation": op, "permission": "ALLOW"})
    };
    let mut all: Vec<Value> = (0..900)
        .map(|i| acl(format!("t{i}"), "LITERAL", format!("User:user{i}"), "WRITE"))
        .collect();
    all.extend((0..99).map(|i| {
        acl(
            format!("p{i}-"),
            "PREFIXED",
            format!("User:user{i}"),
            "READ",
        )
    }));
    all.push(acl("acl-".into(), "PREFIXED", "User:bench".into(), "WRITE"));
    json!({ "data": all })
}

/// A request as `credentials` (`user:password`); fails the bench unless it succeeds.
fn as_user(method: &str, url: &str, credentials: &str, body: Option<Value>) -> Value {
    use base64::Engine as _;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    );
    let request = ureq::request(method, url).set("Authorization", &auth);
    let response = match body {
        Some(b) => request.send_json(b),
        None => request.call(),
    }
    .unwrap_or_else(|e| fail(format!("{method} {url}: {e}")));
    response.into_json().unwrap_or(Value::Null)
}

/// One side of the authorization bench: a broker with 1,000 ACLs, the authorizer on
/// or off; REST and Kafka produce rates of the client.
fn acl_side(root: &Path, round: usize, authorizer: bool, seconds: Duration) -> (Rate, Rate) {
    let dir = root.join(format!(
        "acls-{}-{round}",
        if authorizer { "on" } else { "off" }
    ));
    let _ = Command::new("sync").status();
    let mut args = Vec::new();
    for credentials in [ACL_ADMIN, ACL_CLIENT] {
        let (name, password) = credentials.split_once(':').unwrap_or_default();
        args.push("--add-scram".to_string());
        args.push(format!("SCRAM-SHA-256=[name={name},password={password}]"));
    }
    let mut overrides = vec![
        "listeners=http://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "authentication.method=BASIC",
        "super.users=User:admin",
    ];
    if authorizer {
        overrides.push("authorizer.class.name=acl");
    }
    let broker = support::start_node(&dir, &args, &overrides);
    let clusters = as_user(
        "GET",
        &format!("{}/v3/clusters", broker.base),
        ACL_ADMIN,
        None,
    );
    let cluster = clusters["data"][0]["cluster_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let v3 = format!("{}/v3/clusters/{cluster}", broker.base);
    as_user(
        "POST",
        &format!("{v3}/acls:batch"),
        ACL_ADMIN,
        Some(thousand_acls()),
    );
    for topic in ["acl-rest", "acl-kafka"] {
        as_user(
            "POST",
            &format!("{v3}/topics"),
            ACL_ADMIN,
            Some(json!({"topic_name": topic, "partitions_count": 1})),
        );
    }
    let rest = measure(
        &broker,
        ACL_REST,
        json!({"base": broker.base, "cluster": cluster, "topic": "acl-rest",
               "credentials": ACL_CLIENT, "seconds": seconds.as_secs()}),
        100,
    );
    let (user, password) = ACL_CLIENT.split_once(':').unwrap_or_default();
    let conf = json!({"acks": "1", "linger.ms": 0, "security.protocol": "SASL_PLAINTEXT",
                      "sasl.mechanisms": "SCRAM-SHA-256", "sasl.username": user,
                      "sasl.password": password});
    let kafka = measure(
        &broker,
        KAFKA,
        json!({"bootstrap": broker.kafka, "conf": conf, "topic": "acl-kafka",
               "value_bytes": 100, "seconds": seconds.as_secs()}),
        100,
    );
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
    (rest, kafka)
}

struct Rate {
    mib_per_s: f64,
    cpu_per_mib: f64,
}

/// A client's produce rate, its records being `value_bytes` each.
fn measure(broker: &Broker, script: &str, args: Value, value_bytes: usize) -> Rate {
    let before = broker.cpu_seconds();
    let out = python(script, args);
    let mib = out["records"].as_f64().unwrap_or(0.0) * value_bytes as f64 / (1024.0 * 1024.0);
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
        VALUE_BYTES,
    );
    let mut conf = json!({"acks": "all", "linger.ms": 5});
    if let Some(ca) = ca {
        conf["security.protocol"] = json!("SSL");
        conf["ssl.ca.location"] = json!(ca);
    }
    let kafka = measure(
        &broker,
        KAFKA,
        json!({"bootstrap": broker.kafka, "conf": conf, "topic": "kafka",
               "value_bytes": VALUE_BYTES, "seconds": seconds.as_secs()}),
        VALUE_BYTES,
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

    // Authorization: off, on, on, off.
    let acl_runs = [
        acl_side(&root, 1, false, seconds),
        acl_side(&root, 1, true, seconds),
        acl_side(&root, 2, true, seconds),
        acl_side(&root, 2, false, seconds),
    ];
    let (rest_off, kafka_off) = (
        mean(&acl_runs[0].0, &acl_runs[3].0),
        mean(&acl_runs[0].1, &acl_runs[3].1),
    );
    let (rest_on, kafka_on) = (
        mean(&acl_runs[1].0, &acl_runs[2].0),
        mean(&acl_runs[1].1, &acl_runs[2].1),
    );
    println!(
        "\nproduce throughput with 1,000 ACLs, authorizer on ÷ off ({}s per case, 100-byte values, mean of 2 runs each)",
        seconds.as_secs()
    );
    println!(
        "{:<28} {:>12} {:>12} {:>8} {:>22}",
        "path", "off rec/s", "on rec/s", "ratio", "broker CPU-s/MiB off/on"
    );
    let per_s = |r: &Rate| r.mib_per_s * 1024.0 * 1024.0 / 100.0;
    let runs = |pick: fn(&(Rate, Rate)) -> &Rate| {
        acl_runs
            .iter()
            .map(|run| format!("{:.0}", per_s(pick(run))))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    println!(
        "runs (off, on, on, off), rec/s: REST {}; Kafka {}",
        runs(|r| &r.0),
        runs(|r| &r.1)
    );
    for (name, off, on) in [
        ("REST v3 (1-record posts)", &rest_off, &rest_on),
        ("Kafka (linger.ms=0)", &kafka_off, &kafka_on),
    ] {
        println!(
            "{:<28} {:>12.0} {:>12.0} {:>8.3} {:>10.4} / {:<10.4}",
            name,
            per_s(off),
            per_s(on),
            on.mib_per_s / off.mib_per_s.max(1e-9),
            off.cpu_per_mib,
            on.cpu_per_mib
        );
    }
}
