//! The Kafka listener with real Kafka clients: kcat (librdkafka) and confluent-kafka
//! (librdkafka, from Python) produce and consume, and what they write is what REST and
//! WebSocket read — same offsets, keys, values, headers and timestamps — and the
//! reverse. Bad frames (garbage, a declared length of 2³¹, truncation, unknown keys
//! and versions) close their connection or get Kafka's answer, and the broker keeps
//! serving. The clients are installed by `.ci/run` (Debian `kcat`, PyPI
//! `confluent-kafka`); a missing client fails the test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::broker::{create_topic, get_accept, post_json, read_partition, TestBroker};
use crate::ws::WsClient;

/// Runs `kcat` with `args` against the broker, feeding it `input`; its stdout.
pub fn kcat(b: &TestBroker, args: &[&str], input: &str) -> String {
    let out = kcat_output(&b.bootstrap(), args, input);
    assert!(
        out.status.success(),
        "kcat {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// kcat against `bootstrap` with `args`, `input` on its stdin: what it did.
pub fn kcat_output(bootstrap: &str, args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new("kcat")
        .args(["-b", bootstrap])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat is installed (.ci/run installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("kcat reads its input");
    child.wait_with_output().expect("kcat runs")
}

/// Runs a Python script (with `confluent_kafka` imported) given the bootstrap address
/// as `BOOTSTRAP`; its stdout parsed as JSON.
pub fn python(b: &TestBroker, script: &str) -> Value {
    let program = format!(
        "import json, sys\nBOOTSTRAP = {:?}\n{script}",
        b.bootstrap()
    );
    let out = Command::new("python3")
        .args(["-c", &program])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "python printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn kcat_lists_metadata_and_keyed_records_land_where_rest_puts_them() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "kc", 6);

    let metadata: Value = serde_json::from_str(&kcat(&b, &["-L", "-J"], "")).unwrap();
    let brokers = metadata["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 1, "{metadata}");
    assert_eq!(brokers[0]["name"], b.bootstrap());
    assert_eq!(brokers[0]["id"], 1);
    let topic = metadata["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "kc")
        .unwrap_or_else(|| panic!("kc listed: {metadata}"));
    let partitions = topic["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 6);
    assert!(partitions.iter().all(|p| p["leader"] == 1), "{topic}");

    // murmur2_random is the Java client's (and REST's) partitioner.
    let keys = [
        "21",
        "foobar",
        "abc",
        "a-little-bit-long-string",
        "k5",
        "k6",
    ];
    let input: String = keys.iter().map(|k| format!("{k}:value-{k}\n")).collect();
    kcat(
        &b,
        &["-P", "-t", "kc", "-K:", "-X", "partitioner=murmur2_random"],
        &input,
    );
    for key in keys {
        let (status, r) = post_json(
            &b.v3("/topics/kc/records"),
            &json!({"key": {"type": "STRING", "data": key}, "value": {"type": "STRING", "data": "rest"}}),
        );
        assert_eq!(status, 200, "{r}");
        let rest_partition = r["partition_id"].as_i64().unwrap() as i32;
        let from_kafka: Vec<_> = read_partition(&b, "kc", rest_partition)
            .into_iter()
            .filter(|(_, k, v)| k.as_deref() == Some(key) && v.as_deref() != Some("rest"))
            .collect();
        assert_eq!(
            from_kafka.len(),
            1,
            "key {key}: kcat's record is on REST's partition {rest_partition}"
        );
        assert_eq!(
            from_kafka[0].2.as_deref(),
            Some(format!("value-{key}").as_str())
        );
    }

    let consumed = kcat(
        &b,
        &["-C", "-t", "kc", "-e", "-q", "-f", "%p|%o|%k|%s\n"],
        "",
    );
    let mut lines: Vec<&str> = consumed.lines().collect();
    lines.sort();
    let mut expected = Vec::new();
    for p in 0..6 {
        for (offset, k, v) in read_partition(&b, "kc", p) {
            expected.push(format!(
                "{p}|{offset}|{}|{}",
                k.unwrap_or_default(),
                v.unwrap_or_default()
            ));
        }
    }
    expected.sort();
    assert_eq!(lines, expected, "kcat reads what REST reads");
    assert_eq!(lines.len(), 12);
}

/// Records produced by confluent-kafka, with headers and timestamps.
const PRODUCE_FIVE: &str = r#"
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all"})
acked = []
def done(err, msg):
    if err is not None:
        raise SystemExit(str(err))
    acked.append({"partition": msg.partition(), "offset": msg.offset()})
for i in range(5):
    p.produce("mix", key=f"k{i}", value=f"v{i}", partition=0,
              headers=[("h", f"x{i}".encode()), ("empty", None)],
              timestamp=1700000000000 + i, on_delivery=done)
p.flush(30)
print(json.dumps(acked))
"#;

/// Every record of `topic`-0 as confluent-kafka reads it.
const CONSUME_ALL: &str = r#"
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "unused", "enable.auto.commit": False})
c.assign([TopicPartition(TOPIC, 0, 0)])
out = []
while len(out) < WANT:
    m = c.poll(10)
    if m is None:
        break
    if m.error():
        raise SystemExit(str(m.error()))
    out.append({"offset": m.offset(), "key": m.key().decode() if m.key() else None,
                "value": m.value().decode() if m.value() else None,
                "headers": [[k, v.decode() if v is not None else None] for k, v in (m.headers() or [])],
                "timestamp": m.timestamp()[1]})
c.close()
print(json.dumps(out))
"#;

#[test]
fn kafka_producers_and_rest_and_websocket_readers_see_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "mix", 1);

    let acked = python(&b, PRODUCE_FIVE);
    let offsets: Vec<i64> = acked
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4]);

    // REST v2 reads them with the producer's timestamps.
    let (status, body) = get_accept(
        &b.url("/topics/mix/partitions/0/records?offset=0"),
        "application/vnd.kafka.binary.v2+json",
    );
    assert_eq!(status, 200, "{body}");
    let rest = body.as_array().unwrap();
    assert_eq!(rest.len(), 5);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for (i, r) in rest.iter().enumerate() {
        assert_eq!(r["offset"], i as i64);
        assert_eq!(r["key"], b64(&format!("k{i}")));
        assert_eq!(r["value"], b64(&format!("v{i}")));
        assert_eq!(r["timestamp"], 1700000000000i64 + i as i64);
    }

    // The WebSocket sends them with their headers.
    let mut ws = WsClient::connect(&b);
    ws.send(json!({"type": "subscribe", "sub": "s", "topic": "mix", "from": "beginning", "format": "binary"}));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let frame = ws.expect("records", deadline);
        seen.extend(frame["records"].as_array().unwrap().iter().cloned());
    }
    for (i, r) in seen.iter().enumerate() {
        assert_eq!(r["offset"], i as i64);
        assert_eq!(r["timestamp"], 1700000000000i64 + i as i64);
        assert_eq!(r["value"], b64(&format!("v{i}")));
        assert_eq!(
            r["headers"],
            json!([{"name": "h", "value": b64(&format!("x{i}"))}, {"name": "empty", "value": null}])
        );
    }

    // The reverse: REST produces, confluent-kafka reads the same.
    let (status, r) = post_json(
        &b.v3("/topics/mix/records"),
        &json!({
            "partition_id": 0,
            "key": {"type": "STRING", "data": "rk"},
            "value": {"type": "STRING", "data": "rv"},
            "headers": [{"name": "rh", "value": b64("hv")}],
            "timestamp": "2023-11-14T22:13:20.123Z"
        }),
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["offset"], 5);
    let script = format!("TOPIC = 'mix'\nWANT = 6\n{CONSUME_ALL}");
    let consumed = python(&b, &script);
    let consumed = consumed.as_array().unwrap();
    assert_eq!(consumed.len(), 6, "{consumed:?}");
    for (i, c) in consumed.iter().take(5).enumerate() {
        assert_eq!(c["offset"], i as i64);
        assert_eq!(c["key"], format!("k{i}"));
        assert_eq!(c["value"], format!("v{i}"));
        assert_eq!(c["timestamp"], 1700000000000i64 + i as i64);
        assert_eq!(
            c["headers"],
            json!([["h", format!("x{i}")], ["empty", null]])
        );
    }
    assert_eq!(
        consumed[5],
        json!({"offset": 5, "key": "rk", "value": "rv", "headers": [["rh", "hv"]], "timestamp": 1700000000123i64})
    );
}

/// A raw connection to the Kafka listener.
fn connect(b: &TestBroker) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", b.kafka_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Whether the broker closed `s` (a read sees the end) rather than answering.
fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(0) | Err(_))
}

/// An ApiVersions request frame of `version` (header v1 is enough for any version
/// the broker refuses; v3+ bodies are flexible).
fn api_versions_frame(version: i16, correlation_id: i32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes());
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(&correlation_id.to_be_bytes());
    body.extend_from_slice(&4i16.to_be_bytes());
    body.extend_from_slice(b"test");
    if version >= 3 {
        // Header tagged fields, then the body: two compact strings and tagged fields.
        body.push(0);
        body.extend_from_slice(&[5, b't', b'e', b's', b't', 2, b'1', 0]);
    }
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend(body);
    frame
}

/// Reads one response frame: its correlation id and the rest.
fn read_response(s: &mut TcpStream) -> (i32, Vec<u8>) {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    let correlation = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    (correlation, body[4..].to_vec())
}

#[test]
fn bad_frames_close_their_connection_and_the_broker_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start_with(
        dir.path(),
        &["socket.request.timeout.ms=500", "max.connections=4"],
    );
    let rss_before = b.rss_bytes();

    // A declared length of 2^31 - 1: closed before anything is read into memory.
    let mut s = connect(&b);
    s.write_all(&i32::MAX.to_be_bytes()).unwrap();
    s.write_all(&[0u8; 1024]).unwrap();
    assert!(closed(&mut s), "a 2 GiB frame is refused");
    // A negative length, and one shorter than a header.
    for length in [-1i32, 3] {
        let mut s = connect(&b);
        s.write_all(&length.to_be_bytes()).unwrap();
        s.write_all(&[0u8; 8]).unwrap();
        assert!(closed(&mut s), "length {length} is refused");
    }
    // A 19-byte Metadata request declaring 2^31 - 1 topics: refused, nothing of that
    // size allocated (the decoder once tried 150 GB and the process aborted).
    let mut s = connect(&b);
    let mut body = vec![0, 3, 0, 1, 0, 0, 0, 1, 0, 1, b'x'];
    body.extend_from_slice(&i32::MAX.to_be_bytes());
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend(body);
    s.write_all(&frame).unwrap();
    assert!(
        closed(&mut s),
        "a request that cannot hold what it declares is refused"
    );
    // An unknown API key.
    let mut s = connect(&b);
    let mut frame = 8i32.to_be_bytes().to_vec();
    frame.extend_from_slice(&[0x03, 0xe7, 0, 0, 0, 0, 0, 1]);
    s.write_all(&frame).unwrap();
    assert!(closed(&mut s), "API key 999 is refused");
    // A body that stops short (its last byte, the tagged fields, cut off). Bytes after
    // a whole body are ignored, as Kafka's broker ignores them.
    let mut s = connect(&b);
    let mut frame = api_versions_frame(3, 1);
    frame.pop();
    let length = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&length.to_be_bytes());
    s.write_all(&frame).unwrap();
    assert!(closed(&mut s), "a body that does not decode is refused");
    // A truncated frame: closed once the request timeout passes.
    let mut s = connect(&b);
    s.write_all(&100i32.to_be_bytes()).unwrap();
    s.write_all(&[0u8; 10]).unwrap();
    let started = Instant::now();
    assert!(closed(&mut s), "a frame that stops arriving is dropped");
    assert!(started.elapsed() < Duration::from_secs(5));

    // ApiVersions of a version not served: UNSUPPORTED_VERSION with the versions
    // served, in version 0.
    let mut s = connect(&b);
    s.write_all(&api_versions_frame(99, 7)).unwrap();
    let (correlation, body) = read_response(&mut s);
    assert_eq!(correlation, 7);
    assert_eq!(
        i16::from_be_bytes([body[0], body[1]]),
        35,
        "UNSUPPORTED_VERSION"
    );
    let keys = i32::from_be_bytes([body[2], body[3], body[4], body[5]]);
    assert!(keys >= 6, "{keys} API keys listed");
    // The same connection then asks in a version the broker serves.
    s.write_all(&api_versions_frame(3, 8)).unwrap();
    let (correlation, body) = read_response(&mut s);
    assert_eq!(correlation, 8);
    assert_eq!(i16::from_be_bytes([body[0], body[1]]), 0, "no error");

    // max.connections = 4: with four open, a fifth is closed as it arrives.
    let open: Vec<TcpStream> = (0..3)
        .map(|i| {
            let mut s = connect(&b);
            s.write_all(&api_versions_frame(3, i)).unwrap();
            read_response(&mut s);
            s
        })
        .collect();
    let mut fifth = connect(&b);
    let _ = fifth.write_all(&api_versions_frame(3, 9));
    assert!(closed(&mut fifth), "the fifth connection is refused");
    drop(open);
    drop(s);

    // The broker still serves Kafka clients and REST, and held no 2 GiB.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("kcat")
            .args(["-b", &b.bootstrap(), "-L", "-J"])
            .output()
            .expect("kcat runs");
        if out.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "kcat -L works again");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _) = crate::broker::get(&b.url("/v3/clusters"));
    assert_eq!(status, 200);
    let grown = b.rss_bytes().saturating_sub(rss_before);
    assert!(grown < 256 << 20, "RSS grew by {grown} bytes");
}

/// A TCP proxy in front of the Kafka listener whose connections the test can cut.
struct Proxy {
    port: u16,
    open: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Listens on an ephemeral port and forwards each connection to `target()` (read
    /// per connection, so the broker may move).
    fn start(target: std::sync::Arc<std::sync::atomic::AtomicU16>) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = std::sync::Arc::new(std::sync::Mutex::new(Vec::<TcpStream>::new()));
        let registry = open.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let to = target.load(std::sync::atomic::Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                let mut list = registry.lock().unwrap();
                for s in [&client, &server] {
                    if let Ok(c) = s.try_clone() {
                        list.push(c);
                    }
                }
                drop(list);
                for (mut from, mut into) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut into);
                        let _ = into.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, open }
    }

    /// Cuts every connection open now, mid-stream.
    fn cut(&self) {
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// An idempotent confluent-kafka producer: `N` records numbered in their values,
/// sent over about `SECONDS`, every acknowledgement reported.
const IDEMPOTENT_PRODUCER: &str = r#"
import time
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True, "acks": "all",
              "linger.ms": 5, "message.timeout.ms": 120000, "retry.backoff.ms": 50,
              "reconnect.backoff.max.ms": 200})
acked = []
failed = []
def done(err, msg):
    if err is not None:
        failed.append(str(err))
    else:
        acked.append(int(msg.value()))
start = time.monotonic()
for i in range(N):
    while True:
        try:
            p.produce("idem", str(i).encode(), on_delivery=done)
            break
        except BufferError:
            p.poll(0.01)
    if i % 100 == 99:
        p.poll(0)
        ahead = start + SECONDS * (i + 1) / N - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
left = p.flush(120)
print(json.dumps({"acked": acked, "failed": failed, "unflushed": left}))
"#;

#[test]
fn an_idempotent_producer_loses_and_duplicates_nothing_through_cuts_and_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let target = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(0));
    let proxy = Proxy::start(target.clone());
    // Clients are told to connect through the proxy.
    let advertised = format!("advertised.listeners=PLAINTEXT://127.0.0.1:{}", proxy.port);
    let b = TestBroker::start_with(dir.path(), &[&advertised]);
    let kafka_port = b.kafka_port;
    target.store(kafka_port, std::sync::atomic::Ordering::SeqCst);
    create_topic(&b, "idem", 3);

    const N: usize = 20_000;
    let program = format!(
        "import json\nBOOTSTRAP = '127.0.0.1:{}'\nN = {N}\nSECONDS = 8\n{IDEMPOTENT_PRODUCER}",
        proxy.port
    );
    let producer = Command::new("python3")
        .args(["-c", &program])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");

    let at = |secs: f64, started: Instant| {
        let wait = Duration::from_secs_f64(secs).saturating_sub(started.elapsed());
        std::thread::sleep(wait);
    };
    let started = Instant::now();
    at(1.5, started);
    proxy.cut();
    at(3.0, started);
    proxy.cut();
    at(4.0, started);
    b.kill9();
    proxy.cut();
    let b = TestBroker::start_on_ports(dir.path(), 0, kafka_port, &[&advertised]);
    at(6.5, started);
    proxy.cut();

    let out = producer.wait_with_output().expect("the producer ends");
    assert!(
        out.status.success(),
        "producer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("the producer's report");
    assert_eq!(report["failed"], json!([]), "every record was delivered");
    assert_eq!(report["unflushed"], 0);
    let acked: std::collections::BTreeSet<u64> = report["acked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(acked.len(), N, "every record acknowledged once");

    let mut stored: Vec<u64> = (0..3)
        .flat_map(|p| read_partition(&b, "idem", p))
        .map(|(_, _, v)| v.expect("a value").parse().expect("a number"))
        .collect();
    stored.sort_unstable();
    let total = stored.len();
    stored.dedup();
    assert_eq!(total - stored.len(), 0, "no record stored twice");
    let lost: Vec<_> = acked
        .iter()
        .filter(|v| stored.binary_search(v).is_err())
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert_eq!(stored.len(), N);
}

#[test]
fn compressed_batches_from_kafka_clients_are_read_over_rest_and_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let codecs = ["gzip", "snappy", "lz4", "zstd"];
    for codec in codecs {
        create_topic(&b, codec, 1);
        // Values that compress, so the client does compress them.
        let pad = "x".repeat(200);
        let input: String = (0..50)
            .map(|i| format!("k{i}:{codec}-{i}-{pad}\n"))
            .collect();
        kcat(
            &b,
            &[
                "-P",
                "-t",
                codec,
                "-p",
                "0",
                "-K:",
                "-z",
                codec,
                "-X",
                "linger.ms=50",
            ],
            &input,
        );
        // Stored as sent: the segment holds fewer bytes than the values alone.
        let values: Vec<String> = read_partition(&b, codec, 0)
            .into_iter()
            .map(|(_, _, v)| v.unwrap_or_default())
            .collect();
        let expected: Vec<String> = (0..50).map(|i| format!("{codec}-{i}-{pad}")).collect();
        assert_eq!(values, expected, "{codec} read over REST");
        let consumed = kcat(&b, &["-C", "-t", codec, "-e", "-q", "-f", "%k=%s\n"], "");
        let expected: Vec<String> = (0..50).map(|i| format!("k{i}={codec}-{i}-{pad}")).collect();
        assert_eq!(
            consumed.lines().collect::<Vec<_>>(),
            expected,
            "{codec} read over Kafka"
        );
    }
    for (id, codec) in codecs.iter().enumerate() {
        let log = dir
            .path()
            .join(format!("{codec}-0/00000000000000000000.log"));
        let bytes = std::fs::read(&log).unwrap();
        // Attributes (bytes 21..23 of the first batch) name the codec: 1 gzip … 4 zstd.
        let attributes = u16::from_be_bytes([bytes[21], bytes[22]]);
        assert_eq!(
            attributes & 0x7,
            id as u16 + 1,
            "{codec}: stored compressed, as sent"
        );
        assert!(
            bytes.len() < 50 * 200,
            "{codec}: {} bytes on disk",
            bytes.len()
        );
    }
}

/// kafka-python (a pure-Python client, its own protocol code) produces keyed records
/// with headers and reads them back.
const KAFKA_PYTHON_ROUND_TRIP: &str = r#"
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
sent = []
for i in range(20):
    md = p.send("kp", key=f"k{i}".encode(), value=f"v{i}".encode(),
                headers=[("n", str(i).encode())], partition=i % 2).get(timeout=30)
    sent.append([md.partition, md.offset])
p.close()
c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                  consumer_timeout_ms=5000, auto_offset_reset="earliest")
c.assign([TopicPartition("kp", 0), TopicPartition("kp", 1)])
c.seek_to_beginning()
got = []
for m in c:
    got.append([m.partition, m.offset, m.key.decode(), m.value.decode(),
                [[k, v.decode()] for k, v in m.headers]])
    if len(got) == 20:
        break
c.close()
print(json.dumps({"sent": sent, "got": sorted(got)}))
"#;

#[test]
fn kafka_python_produces_and_consumes() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "kp", 2);
    let report = python(&b, KAFKA_PYTHON_ROUND_TRIP);
    let sent = report["sent"].as_array().unwrap();
    for (i, s) in sent.iter().enumerate() {
        assert_eq!(
            s,
            &json!([i % 2, i / 2]),
            "record {i} acknowledged where it went"
        );
    }
    let got = report["got"].as_array().unwrap();
    assert_eq!(got.len(), 20);
    for g in got {
        let (p, offset) = (g[0].as_i64().unwrap(), g[1].as_i64().unwrap());
        let i = offset * 2 + p;
        assert_eq!(
            g,
            &json!([
                p,
                offset,
                format!("k{i}"),
                format!("v{i}"),
                [["n", i.to_string()]]
            ])
        );
    }
    // /metrics counts what Kafka clients produced and fetched.
    let metrics = b.metrics();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains("topic=\"kp\""))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in:\n{metrics}"))
    };
    assert_eq!(value("troupe_records_in_total"), 20.0);
    assert!(value("troupe_bytes_in_total") > 20.0 * 4.0);
    assert!(value("troupe_records_out_total") >= 20.0);
    // REST reads the same.
    let rest = read_partition(&b, "kp", 1);
    assert_eq!(rest[3], (3, Some("k7".into()), Some("v7".into())));
}

#[test]
fn fetch_checks_the_clients_leader_epoch_against_the_image() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "epochs", 1);
    kcat(&b, &["-P", "-t", "epochs", "-p", "0"], "one\ntwo\n");
    let fetch = |current_leader_epoch: i32| -> (i16, usize) {
        let request = FetchRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("epochs")))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(current_leader_epoch)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)])]);
        let response: FetchResponse = crate::kafka_admin::ask(&b, ApiKey::Fetch, 12, &request);
        let p = &response.responses[0].partitions[0];
        (p.error_code, p.records.as_ref().map_or(0, |r| r.len()))
    };
    let (code, bytes) = fetch(-1);
    assert_eq!(code, 0, "no epoch given: served");
    assert!(bytes > 0);
    assert_eq!(fetch(0).0, 0, "the current epoch: served");
    assert_eq!(
        fetch(3),
        (75, 0),
        "a newer epoch than the image's: UNKNOWN_LEADER_EPOCH"
    );
}
