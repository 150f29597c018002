//! WebSocket live consumption and produce against the real binary, with real
//! WebSocket clients (tungstenite over loopback TCP).

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use crate::broker::{create_topic, get, produce_v3, read_partition, send, TestBroker};

pub enum Incoming {
    Json(Value),
    Binary(Vec<u8>),
    /// The connection closed, with the close code if a close frame came.
    Closed(Option<u16>),
}

pub struct WsClient {
    ws: WebSocket<TcpStream>,
}

/// Records received per partition: (offset, value as rendered).
pub type Received = BTreeMap<i32, Vec<(i64, Value)>>;

impl WsClient {
    pub fn connect(b: &TestBroker) -> WsClient {
        WsClient::try_connect(b, None).expect("the WebSocket upgrade succeeds")
    }

    pub fn try_connect(
        b: &TestBroker,
        origin: Option<&str>,
    ) -> Result<WsClient, tungstenite::Error> {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
        WsClient::try_connect_with(b, &headers)
    }

    /// The upgrade with these request headers.
    pub fn try_connect_with(
        b: &TestBroker,
        headers: &[(&'static str, &str)],
    ) -> Result<WsClient, tungstenite::Error> {
        let stream = TcpStream::connect(("127.0.0.1", b.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut request = format!("ws://127.0.0.1:{}/ws", b.port).into_client_request()?;
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(*name, value.parse().expect("a header value"));
        }
        let (ws, _) = tungstenite::client(request, stream).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => {
                tungstenite::Error::Io(std::io::Error::from(ErrorKind::TimedOut))
            }
        })?;
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok(WsClient { ws })
    }

    pub fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::text(frame.to_string()))
            .expect("the frame is sent");
    }

    pub fn send_raw(&mut self, message: Message) {
        self.ws.send(message).expect("the frame is sent");
    }

    /// The next frame, or `None` if none comes by `deadline`.
    pub fn next(&mut self, deadline: Instant) -> Option<Incoming> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    return Some(Incoming::Json(
                        serde_json::from_str(t.as_str()).expect("server frames are JSON"),
                    ))
                }
                Ok(Message::Binary(b)) => return Some(Incoming::Binary(b.to_vec())),
                Ok(Message::Close(frame)) => {
                    return Some(Incoming::Closed(frame.map(|f| u16::from(f.code))))
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    if Instant::now() >= deadline {
                        return None;
                    }
                }
                Err(_) => return Some(Incoming::Closed(None)),
            }
        }
    }

    /// The next JSON frame of type `kind` (others are skipped), by `deadline`.
    pub fn expect(&mut self, kind: &str, deadline: Instant) -> Value {
        loop {
            match self.next(deadline) {
                Some(Incoming::Json(v)) if v["type"] == kind => return v,
                Some(Incoming::Json(v)) if v["type"] == "error" && kind != "error" => {
                    panic!("expected a {kind} frame, got an error: {v}")
                }
                Some(Incoming::Json(_)) | Some(Incoming::Binary(_)) => continue,
                Some(Incoming::Closed(code)) => panic!("closed ({code:?}) waiting for {kind}"),
                None => panic!("no {kind} frame by the deadline"),
            }
        }
    }

    /// Records of subscription `sub` until `want` have come (or the deadline passes);
    /// other frames go to `other`.
    pub fn collect(
        &mut self,
        sub: &str,
        want: usize,
        deadline: Instant,
        other: &mut Vec<Value>,
    ) -> Received {
        let mut got: Received = BTreeMap::new();
        let mut count = 0;
        while count < want {
            match self.next(deadline) {
                Some(Incoming::Json(v)) if v["type"] == "records" && v["sub"] == sub => {
                    let p = v["partition"].as_i64().expect("partition") as i32;
                    for r in v["records"].as_array().expect("records") {
                        got.entry(p)
                            .or_default()
                            .push((r["offset"].as_i64().expect("offset"), r["value"].clone()));
                        count += 1;
                    }
                }
                Some(Incoming::Json(v)) => {
                    assert_ne!(v["type"], "error", "unexpected error frame: {v}");
                    other.push(v);
                }
                Some(Incoming::Binary(_)) => panic!("unexpected binary frame"),
                Some(Incoming::Closed(code)) => panic!("closed ({code:?}) after {count} records"),
                None => break,
            }
        }
        got
    }
}

fn secs(n: u64) -> Instant {
    Instant::now() + Duration::from_secs(n)
}

/// Produces `values` over REST v2 (JSON), 500 per request, to `partition` or spread
/// by the sticky keyless partitioner.
pub fn produce(b: &TestBroker, topic: &str, partition: Option<i32>, values: &[String]) {
    for chunk in values.chunks(500) {
        let records: Vec<Value> = chunk
            .iter()
            .map(|v| match partition {
                Some(p) => json!({"value": v, "partition": p}),
                None => json!({"value": v}),
            })
            .collect();
        let (status, body) = send(
            "POST",
            &b.url(&format!("/topics/{topic}")),
            "application/vnd.kafka.json.v2+json",
            &json!({ "records": records }).to_string(),
        );
        assert_eq!(status, 200, "{body}");
    }
}

fn values(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

/// Every partition's offsets are consecutive from its first, with no repeat.
fn assert_in_order(got: &Received) {
    for (p, records) in got {
        for pair in records.windows(2) {
            assert_eq!(
                pair[1].0,
                pair[0].0 + 1,
                "partition {p} out of order: {pair:?}"
            );
        }
    }
}

fn all_values(got: &Received) -> Vec<String> {
    got.values()
        .flatten()
        .map(|(_, v)| v.as_str().expect("a string value").to_string())
        .collect()
}

#[test]
fn catches_up_from_the_log_then_receives_live_records_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start(dir.path());
    create_topic(&b, "events", 3);
    produce(&b, "events", Some(0), &values("old", 0..120));
    produce(&b, "events", Some(2), &values("old", 120..200));
    let mut c = WsClient::connect(&b);
    c.send(json!({"type": "subscribe", "sub": "s1", "topic": "events", "from": "beginning"}));
    let subscribed = c.expect("subscribed", secs(10));
    assert_eq!(
        subscribed["partitions"],
        json!([{"partition": 0, "offset": 0}, {"partition": 1, "offset": 0}, {"partition": 2, "offset": 0}])
    );
    let mut other = Vec::new();
    let caught_up = c.collect("s1", 200, secs(20), &mut other);
    assert_in_order(&caught_up);
    assert_eq!(caught_up[&0].len(), 120);
    assert_eq!(caught_up[&2].len(), 80);
    assert_eq!(all_values(&caught_up), values("old", 0..200));
    // Live: records produced now are pushed, each once, after the old ones.
    for i in 0..10 {
        produce(
            &b,
            "events",
            Some(i % 3),
            &values("new", i as usize * 10..(i as usize + 1) * 10),
        );
    }
    let live = c.collect("s1", 100, secs(20), &mut other);
    assert_in_order(&live);
    let mut got: Vec<String> = all_values(&live);
    got.sort();
    let mut want = values("new", 0..100);
    want.sort();
    assert_eq!(got, want);
    assert_eq!(live[&1][0].0, 0, "partition 1 starts at its first record");
    assert_eq!(
        live[&0][0].0, 120,
        "partition 0 continues after the caught-up records"
    );
    // Nothing more arrives.
    assert!(c
        .next(Instant::now() + Duration::from_millis(300))
        .is_none());
}

#[test]
fn fifty_concurrent_subscribers_all_receive_every_record_of_a_10000_record_produce() {
    const SUBSCRIBERS: usize = 50;
    const RECORDS: usize = 10_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let b = Arc::new(TestBroker::start(dir.path()));
    create_topic(&b, "fanout", 4);
    let ready = Arc::new(Barrier::new(SUBSCRIBERS + 1));
    let mut handles = Vec::new();
    for i in 0..SUBSCRIBERS {
        let b = b.clone();
        let ready = ready.clone();
        handles.push(std::thread::spawn(move || {
            let mut c = WsClient::connect(&b);
            c.send(json!({"type": "subscribe", "sub": format!("viewer-{i}"), "topic": "fanout", "from": "end"}));
            c.expect("subscribed", secs(20));
            ready.wait();
            let mut other = Vec::new();
            let got = c.collect(&format!("viewer-{i}"), RECORDS, secs(120), &mut other);
            assert_in_order(&got);
            all_values(&got)
        }));
    }
    ready.wait();
    produce(&b, "fanout", None, &values("r", 0..RECORDS));
    let mut want = values("r", 0..RECORDS);
    want.sort();
    for h in handles {
        let mut got = h.join().expect("a subscriber thread");
        assert_eq!(got.len(), RECORDS, "a subscriber got {} records", got.len());
        got.sort();
        assert_eq!(got, want);
    }
    // The live tail is read once per committed batch, not once per subscriber: 20
    // requests of 500 records make at most 20 chunks for all 50 subscribers.
    let (status, text) = get(&b.url("/metrics"));
    assert_eq!(status, 200);
    let text = text.as_str().expect("metrics text").to_string();
    let chunks: u64 = text
        .lines()
        .filter(|l| l.starts_with("troupe_partition_tail_chunks_total{topic=\"fanout\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(
        (1..=(RECORDS / 500) as u64).contains(&chunks),
        "{chunks} live-tail chunks for {} records to {SUBSCRIBERS} subscribers",
        RECORDS
    );
}

#[test]
fn reconnecting_with_the_last_delivered_offsets_resumes_without_gaps_or_repeats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start(dir.path());
    create_topic(&b, "resume", 2);
    produce(&b, "resume", Some(0), &values("a", 0..60));
    produce(&b, "resume", Some(1), &values("b", 0..40));
    let mut first = WsClient::connect(&b);
    first.send(json!({"type": "subscribe", "sub": "s", "topic": "resume", "from": "beginning", "credit": 30}));
    first.expect("subscribed", secs(10));
    let mut other = Vec::new();
    let part1 = first.collect("s", 30, secs(10), &mut other);
    assert_eq!(
        part1.values().map(Vec::len).sum::<usize>(),
        30,
        "credit 30 stops delivery at 30"
    );
    assert!(
        first
            .next(Instant::now() + Duration::from_millis(300))
            .is_none(),
        "no record beyond the credit"
    );
    drop(first);
    // More arrive while the client is away.
    produce(&b, "resume", Some(1), &values("b", 40..50));
    let next: BTreeMap<String, i64> = (0..2)
        .map(|p| {
            let next = part1
                .get(&p)
                .and_then(|r| r.last())
                .map_or(0, |(o, _)| o + 1);
            (p.to_string(), next)
        })
        .collect();
    let mut second = WsClient::connect(&b);
    second.send(
        json!({"type": "subscribe", "sub": "s", "topic": "resume", "from": {"offsets": next}}),
    );
    second.expect("subscribed", secs(10));
    let part2 = second.collect("s", 80, secs(10), &mut other);
    let mut all: Received = part1.clone();
    for (p, records) in part2 {
        all.entry(p).or_default().extend(records);
    }
    assert_in_order(&all);
    assert_eq!(all[&0].len(), 60);
    assert_eq!(all[&1].len(), 50);
    assert_eq!(all[&0][0].0, 0);
    assert_eq!(all[&1][0].0, 0);
}

#[test]
fn credit_pause_and_resume_steer_delivery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start(dir.path());
    create_topic(&b, "steer", 1);
    produce(&b, "steer", Some(0), &values("v", 0..100));
    let mut c = WsClient::connect(&b);
    c.send(json!({"type": "subscribe", "sub": "s", "topic": "steer", "from": "beginning", "credit": 10}));
    c.expect("subscribed", secs(10));
    let mut other = Vec::new();
    let got = c.collect("s", 10, secs(10), &mut other);
    assert_eq!(got[&0].len(), 10);
    assert!(c
        .next(Instant::now() + Duration::from_millis(300))
        .is_none());
    c.send(json!({"type": "credit", "sub": "s", "records": 15}));
    let got = c.collect("s", 15, secs(10), &mut other);
    assert_eq!(got[&0].first().map(|r| r.0), Some(10));
    assert_eq!(got[&0].len(), 15);
    assert!(c
        .next(Instant::now() + Duration::from_millis(300))
        .is_none());
    // Pause: credit granted while paused is not used until resume.
    c.send(json!({"type": "pause", "sub": "s"}));
    assert_eq!(c.expect("paused", secs(5))["reason"], "client");
    c.send(json!({"type": "credit", "sub": "s", "records": 1000}));
    assert!(
        c.next(Instant::now() + Duration::from_millis(400))
            .is_none(),
        "paused"
    );
    c.send(json!({"type": "resume", "sub": "s"}));
    let got = c.collect("s", 75, secs(10), &mut other);
    assert_eq!(got[&0].first().map(|r| r.0), Some(25));
    assert_eq!(got[&0].len(), 75);
    assert!(other.iter().any(|f| f["type"] == "resumed"));
    // Paused while waiting for new records: those produced meanwhile wait too.
    c.send(json!({"type": "pause", "sub": "s"}));
    c.expect("paused", secs(5));
    produce(&b, "steer", Some(0), &values("late", 0..5));
    assert!(
        c.next(Instant::now() + Duration::from_millis(400))
            .is_none(),
        "paused"
    );
    c.send(json!({"type": "resume", "sub": "s"}));
    let got = c.collect("s", 5, secs(10), &mut other);
    assert_eq!(got[&0].first().map(|r| r.0), Some(100));
    assert_eq!(all_values(&got), values("late", 0..5));
}

#[test]
fn a_subscription_can_start_at_a_timestamp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start(dir.path());
    create_topic(&b, "timed", 1);
    let records: Vec<Value> = (0..10)
        .map(|i| json!({"value": {"type": "STRING", "data": format!("t{i}")}, "timestamp": 1_000 * (i + 1)}))
        .collect();
    produce_v3(&b, "timed", &records);
    let mut c = WsClient::connect(&b);
    c.send(json!({"type": "subscribe", "sub": "s", "topic": "timed", "from": {"timestamp": 4_500}, "format": "string"}));
    let subscribed = c.expect("subscribed", secs(10));
    assert_eq!(subscribed["partitions"][0]["offset"], 4);
    let got = c.collect("s", 6, secs(10), &mut Vec::new());
    assert_eq!(got[&0][0], (4, json!("t4")));
    assert_eq!(got[&0].len(), 6);
}

#[test]
fn produce_frames_get_per_record_acks_and_honour_acks_modes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start(dir.path());
    create_topic(&b, "in", 2);
    let mut c = WsClient::connect(&b);
    c.send(json!({"type": "produce", "id": 7, "topic": "in", "records": [
        {"partition_id": 1, "value": {"type": "STRING", "data": "one"}},
        {"partition_id": 1, "key": {"type": "STRING", "data": "k"}, "value": {"type": "JSON", "data": {"n": 2}}},
        {"partition_id": 1, "value": {"type": "BINARY", "data": "not base64!"}},
        {"partition_id": 9, "value": {"type": "STRING", "data": "nowhere"}},
    ]}));
    let ack = c.expect("ack", secs(10));
    assert_eq!(ack["id"], 7);
    let results = ack["results"].as_array().expect("results");
    assert_eq!(results.len(), 4);
    assert_eq!(
        (
            results[0]["partition_id"].clone(),
            results[0]["offset"].clone()
        ),
        (json!(1), json!(0))
    );
    assert_eq!(
        (
            results[1]["partition_id"].clone(),
            results[1]["offset"].clone()
        ),
        (json!(1), json!(1))
    );
    assert_eq!(results[2]["error_code"], 42202, "{}", results[2]);
    assert_eq!(results[3]["error_code"], 40402, "{}", results[3]);
    // acks=0: no answer, but the record is written.
    c.send(
        json!({"type": "produce", "topic": "in", "acks": 0, "records": [
        {"partition_id": 0, "value": {"type": "STRING", "data": "fire and forget"}}]}),
    );
    c.send(json!({"type": "ping", "id": "after"}));
    let pong = c.expect("pong", secs(10));
    assert_eq!(pong["id"], "after");
    let deadline = secs(10);
    loop {
        let p0 = read_partition(&b, "in", 0);
        if p0.len() == 1 {
            assert_eq!(p0[0].2.as_deref(), Some("fire and forget"));
            break;
        }
        assert!(Instant::now() < deadline, "the acks=0 record never landed");
        std::thread::sleep(Duration::from_millis(50));
    }
    // acks=1 answers as well; the partition holds exactly the acknowledged records.
    c.send(
        json!({"type": "produce", "id": "x", "topic": "in", "acks": "1", "records": [
        {"partition_id": 1, "value": {"type": "STRING", "data": "three"}}]}),
    );
    assert_eq!(c.expect("ack", secs(10))["results"][0]["offset"], 2);
    let p1 = read_partition(&b, "in", 1);
    let got: Vec<Option<String>> = p1.into_iter().map(|r| r.2).collect();
    assert_eq!(
        got,
        vec![
            Some("one".into()),
            Some("{\"n\":2}".into()),
            Some("three".into())
        ]
    );
    // Unknown topics and internal topics are refused as a whole.
    c.send(json!({"type": "produce", "id": "u", "topic": "nope", "records": [{"value": {"type": "STRING", "data": "x"}}]}));
    let e = c.expect("error", secs(10));
    assert_eq!(
        (e["error_code"].clone(), e["id"].clone()),
        (json!(40403), json!("u"))
    );
    c.send(json!({"type": "produce", "id": "i", "topic": "__consumer_offsets", "records": [{"value": {"type": "STRING", "data": "x"}}]}));
    assert_eq!(c.expect("error", secs(10))["error_code"], 40002);
}

#[test]
fn binary_frames_carry_raw_keys_values_and_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start(dir.path());
    create_topic(&b, "raw", 1);
    let value = crate::broker::base64_encode(&[0u8, 159, 146, 150, 255]);
    produce_v3(
        &b,
        "raw",
        &[
            json!({"key": {"type": "STRING", "data": "k1"}, "value": {"type": "BINARY", "data": value},
                "headers": [{"name": "h", "value": crate::broker::base64_encode(b"hv")}]}),
        ],
    );
    let mut c = WsClient::connect(&b);
    c.send(json!({"type": "subscribe", "sub": "bin", "topic": "raw", "from": "beginning", "frames": "binary"}));
    c.expect("subscribed", secs(10));
    let frame = loop {
        match c.next(secs(10)) {
            Some(Incoming::Binary(bytes)) => break bytes,
            Some(Incoming::Json(_)) => continue,
            _ => panic!("no binary frame"),
        }
    };
    let mut r = Reader(&frame);
    assert_eq!(r.u8(), 1, "records frame kind");
    assert_eq!(r.str16(), "bin");
    assert_eq!(r.str16(), "raw");
    assert_eq!(r.i32(), 0, "partition");
    assert_eq!(r.u32(), 1, "one record");
    assert_eq!(r.i64(), 0, "offset");
    let _timestamp = r.i64();
    assert_eq!(r.bytes32(), Some(b"k1".to_vec()));
    assert_eq!(r.bytes32(), Some(vec![0u8, 159, 146, 150, 255]));
    assert_eq!(r.u16(), 1, "one header");
    assert_eq!(r.str16(), "h");
    assert_eq!(r.bytes32(), Some(b"hv".to_vec()));
    assert!(r.0.is_empty(), "nothing after the record");
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.take(2).try_into().expect("2 bytes"))
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take(4).try_into().expect("4 bytes"))
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().expect("4 bytes"))
    }
    fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.take(8).try_into().expect("8 bytes"))
    }
    fn str16(&mut self) -> String {
        let n = self.u16() as usize;
        String::from_utf8(self.take(n).to_vec()).expect("utf-8")
    }
    fn bytes32(&mut self) -> Option<Vec<u8>> {
        let n = self.i32();
        (n >= 0).then(|| self.take(n as usize).to_vec())
    }
}

#[test]
fn a_client_that_stops_reading_is_dropped_while_others_and_producers_keep_going() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start_with(
        dir.path(),
        &[
            "websocket.send.buffer.bytes=65536",
            "websocket.slow.client.timeout.ms=1500",
            // Pings due while the client is stalled must not hold the session up.
            "websocket.ping.interval.ms=100",
        ],
    );
    create_topic(&b, "firehose", 2);
    create_topic(&b, "baseline", 2);
    let mut stalled = WsClient::connect(&b);
    stalled.send(json!({"type": "subscribe", "sub": "s", "topic": "firehose", "from": "end", "format": "string"}));
    stalled.expect("subscribed", secs(10));
    let mut fast = WsClient::connect(&b);
    fast.send(json!({"type": "subscribe", "sub": "f", "topic": "firehose", "from": "end", "format": "string"}));
    fast.expect("subscribed", secs(10));
    // The fast reader reads on its own thread while ~24 MiB are produced; the stalled
    // one reads nothing.
    const RECORDS: usize = 24_000;
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            let got = fast.collect("f", RECORDS, secs(120), &mut Vec::new());
            done.store(true, Ordering::SeqCst);
            got
        })
    };
    let pad = "x".repeat(1000);
    let big: Vec<String> = (0..RECORDS).map(|i| format!("{i:06}{pad}")).collect();
    // The same produce to a topic nobody follows, for comparison.
    let started = Instant::now();
    produce(&b, "baseline", None, &big);
    let baseline_time = started.elapsed();
    let started = Instant::now();
    produce(&b, "firehose", None, &big);
    let produce_time = started.elapsed();
    assert!(
        produce_time < baseline_time * 3 + Duration::from_secs(1),
        "producing with a stalled subscriber took {produce_time:?}, without subscribers {baseline_time:?}"
    );
    let got = reader.join().expect("the fast reader");
    assert!(done.load(Ordering::SeqCst));
    assert_in_order(&got);
    assert_eq!(
        got.values().map(Vec::len).sum::<usize>(),
        RECORDS,
        "the fast subscriber got everything"
    );
    eprintln!("produced {RECORDS} records of 1 KiB in {produce_time:?} with a stalled subscriber, {baseline_time:?} with none");
    // The stalled client is dropped once its buffer stayed full past the limit. When
    // it finally reads, it finds what was in flight, in order, then close code 4008.
    std::thread::sleep(Duration::from_millis(2500));
    let mut frames = 0;
    let mut paused = false;
    let mut last: BTreeMap<i64, i64> = BTreeMap::new();
    let code = loop {
        match stalled.next(secs(30)) {
            Some(Incoming::Json(v)) if v["type"] == "records" => {
                frames += 1;
                let p = v["partition"].as_i64().expect("partition");
                for r in v["records"].as_array().expect("records") {
                    let o = r["offset"].as_i64().expect("offset");
                    if let Some(prev) = last.get(&p) {
                        assert_eq!(o, prev + 1, "in order, no repeat");
                    }
                    last.insert(p, o);
                }
            }
            Some(Incoming::Json(v)) => {
                paused |= v["type"] == "paused";
            }
            Some(Incoming::Binary(_)) => panic!("unexpected binary frame"),
            Some(Incoming::Closed(code)) => break code,
            None => panic!("the stalled client was never closed"),
        }
    };
    assert_eq!(code, Some(4008), "slow-client close code");
    // (A "paused" notice queued behind the stuck frames may or may not have made it.)
    let _ = paused;
    let delivered: i64 = last.values().map(|o| o + 1).sum();
    assert!(
        (delivered as usize) < RECORDS,
        "the stalled client cannot have had everything ({delivered} records in {frames} frames)"
    );
    // The broker keeps serving.
    let (status, _) = get(&b.url("/health"));
    assert_eq!(status, 200);
}

#[test]
fn a_slow_reader_is_paused_and_told_so_then_resumed_and_misses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A ring of two chunks: the reader falls behind it all the time and catches up
    // from the log, still in order and exactly once.
    let b = Arc::new(TestBroker::start_with(
        dir.path(),
        &[
            "websocket.send.buffer.bytes=65536",
            "partition.tail.buffer.chunks=2",
        ],
    ));
    create_topic(&b, "stream", 1);
    let mut c = WsClient::connect(&b);
    c.send(json!({"type": "subscribe", "sub": "s", "topic": "stream", "from": "end", "format": "string"}));
    c.expect("subscribed", secs(10));
    const RECORDS: usize = 24_000;
    let pad = "y".repeat(1000);
    let producer = {
        let big: Vec<String> = (0..RECORDS).map(|i| format!("{i:06}{pad}")).collect();
        let b = b.clone();
        std::thread::spawn(move || produce(&b, "stream", Some(0), &big))
    };
    let mut notices = Vec::new();
    let mut next_offset = 0i64;
    let deadline = secs(120);
    while next_offset < RECORDS as i64 {
        match c.next(deadline) {
            Some(Incoming::Json(v)) if v["type"] == "records" => {
                for r in v["records"].as_array().expect("records") {
                    assert_eq!(r["offset"], next_offset, "in order, each once");
                    next_offset += 1;
                }
                // A reader slower than the producer.
                std::thread::sleep(Duration::from_millis(20));
            }
            Some(Incoming::Json(v)) => notices.push(v),
            Some(Incoming::Binary(_)) => panic!("binary frame"),
            Some(Incoming::Closed(code)) => panic!("closed {code:?} at offset {next_offset}"),
            None => panic!("stuck at offset {next_offset}"),
        }
    }
    producer.join().expect("producer");
    assert!(
        notices
            .iter()
            .any(|n| n["type"] == "paused" && n["reason"] == "send_buffer_full"),
        "told it was paused: {notices:?}"
    );
    assert!(
        notices.iter().any(|n| n["type"] == "resumed"),
        "{notices:?}"
    );
}

#[test]
fn a_silent_client_is_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start_with(
        dir.path(),
        &[
            "websocket.idle.timeout.ms=600",
            "websocket.ping.interval.ms=100",
        ],
    );
    let mut c = WsClient::connect(&b);
    // Not reading means not answering the broker's pings.
    std::thread::sleep(Duration::from_millis(1200));
    let code = loop {
        match c.next(secs(10)) {
            Some(Incoming::Closed(code)) => break code,
            Some(_) => continue,
            None => panic!("not closed"),
        }
    };
    assert_eq!(code, Some(4001));
    // A client that answers pings (tungstenite does so while reading) stays open.
    let mut live = WsClient::connect(&b);
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert!(
            live.next(Instant::now() + Duration::from_millis(100))
                .is_none(),
            "closed while answering pings"
        );
    }
    live.send(json!({"type": "ping"}));
    live.expect("pong", secs(5));
}

fn assert_error(c: &mut WsClient, frame: Value, code: i64) -> Value {
    c.send(frame.clone());
    let e = c.expect("error", secs(10));
    assert_eq!(e["error_code"], code, "{frame} -> {e}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    e
}

#[test]
fn bad_frames_get_error_frames_and_the_connection_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start_with(
        dir.path(),
        &["websocket.max.subscriptions.per.connection=2"],
    );
    create_topic(&b, "t", 2);
    produce(&b, "t", Some(0), &values("v", 0..5));
    let mut c = WsClient::connect(&b);
    c.send_raw(Message::text("{not json"));
    assert_eq!(c.expect("error", secs(10))["error_code"], 400);
    assert_error(&mut c, json!(["a frame", "must be an object"]), 40002);
    assert_error(&mut c, json!({"type": "teleport"}), 40002);
    assert_error(&mut c, json!({"type": "subscribe", "topic": "t"}), 40002);
    let e = assert_error(
        &mut c,
        json!({"type": "subscribe", "sub": "a", "topic": "missing"}),
        40403,
    );
    assert_eq!(e["sub"], "a");
    assert_error(
        &mut c,
        json!({"type": "subscribe", "sub": "a", "topic": "t", "partitions": [7]}),
        40402,
    );
    let e = assert_error(
        &mut c,
        json!({"type": "subscribe", "sub": "a", "topic": "t", "from": {"offsets": {"0": 99}}}),
        41601,
    );
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("[0, 5]")),
        "{e}"
    );
    assert_error(
        &mut c,
        json!({"type": "subscribe", "sub": "a", "topic": "t", "from": "yesterday"}),
        40002,
    );
    assert_error(
        &mut c,
        json!({"type": "subscribe", "sub": "a", "topic": "t", "format": "xml"}),
        40002,
    );
    assert_error(
        &mut c,
        json!({"type": "unsubscribe", "sub": "never"}),
        40407,
    );
    assert_error(
        &mut c,
        json!({"type": "credit", "sub": "never", "records": 5}),
        40407,
    );
    assert_error(
        &mut c,
        json!({"type": "produce", "topic": "t", "records": []}),
        40002,
    );
    // None of that subscribed anything; a good subscription still works.
    c.send(json!({"type": "subscribe", "sub": "a", "topic": "t", "from": "beginning", "partitions": [0]}));
    c.expect("subscribed", secs(10));
    let got = c.collect("a", 5, secs(10), &mut Vec::new());
    assert_eq!(all_values(&got), values("v", 0..5));
    assert_error(
        &mut c,
        json!({"type": "subscribe", "sub": "a", "topic": "t"}),
        40908,
    );
    assert_error(&mut c, json!({"type": "commit", "sub": "a"}), 40002);
    assert_error(
        &mut c,
        json!({"type": "commit", "sub": "a", "offsets": [{"topic": "t", "partition": 0, "offset": 1}]}),
        40903,
    );
    c.send(json!({"type": "subscribe", "sub": "b", "topic": "t"}));
    c.expect("subscribed", secs(10));
    assert_error(
        &mut c,
        json!({"type": "subscribe", "sub": "c", "topic": "t"}),
        42901,
    );
    c.send(json!({"type": "unsubscribe", "sub": "b"}));
    assert_eq!(c.expect("unsubscribed", secs(10))["sub"], "b");
    // Client frames are JSON text: a binary frame closes the connection with 1003.
    c.send_raw(Message::binary(vec![1u8, 2, 3]));
    let code = loop {
        match c.next(secs(10)) {
            Some(Incoming::Closed(code)) => break code,
            Some(_) => continue,
            None => panic!("not closed after a binary frame"),
        }
    };
    assert_eq!(code, Some(1003));
    // A frame over websocket.max.frame.bytes (1 MiB by default) closes with 1009.
    let mut c = WsClient::connect(&b);
    c.send_raw(Message::text(format!(
        "{{\"type\":\"ping\",\"id\":\"{}\"}}",
        "x".repeat(2 << 20)
    )));
    let code = loop {
        match c.next(secs(10)) {
            Some(Incoming::Closed(code)) => break code,
            Some(_) => continue,
            None => panic!("not closed after an oversized frame"),
        }
    };
    assert_eq!(code, Some(1009));
    // The broker keeps serving, and nothing was lost.
    assert_eq!(read_partition(&b, "t", 0).len(), 5);
}

#[test]
fn browsers_from_other_origins_are_refused_and_connections_are_limited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start_with(
        dir.path(),
        &[
            "websocket.allowed.origins=https://ops.example.com",
            "websocket.max.connections=3",
        ],
    );
    let refused = WsClient::try_connect(&b, Some("https://evil.example.net"));
    match refused {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 403);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or(b"{}"))
                .expect("a JSON error body");
            assert_eq!(body["error_code"], 40301, "{body}");
        }
        Err(e) => panic!("expected HTTP 403, got {e}"),
        Ok(_) => panic!("a foreign origin was let in"),
    }
    let own = format!("http://127.0.0.1:{}", b.port);
    let _a = WsClient::try_connect(&b, Some(&own)).expect("the broker's own origin");
    let _b = WsClient::try_connect(&b, Some("https://ops.example.com")).expect("an allowed origin");
    let _c = WsClient::try_connect(&b, None).expect("no origin (not a browser)");
    match WsClient::try_connect(&b, None) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 429),
        Err(e) => panic!("expected HTTP 429, got {e}"),
        Ok(_) => panic!("more than websocket.max.connections"),
    }
    drop(_c);
    let deadline = secs(10);
    loop {
        if WsClient::try_connect(&b, None).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a closed connection's slot was never freed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn group_subscriptions_split_partitions_and_lose_nothing_across_a_rebalance() {
    const RECORDS: usize = 3_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let b = Arc::new(TestBroker::start(dir.path()));
    create_topic(&b, "orders", 4);
    let subscribe = json!({"type": "subscribe", "sub": "g", "group": "billing", "topics": ["orders"], "from": "beginning"});
    // A member that commits every records frame after "processing" it; it stops
    // after `stop_after` records (or when all have been seen by the group).
    let member = |stop_after: usize, seen: Arc<std::sync::Mutex<Vec<String>>>| {
        let b = b.clone();
        let subscribe = subscribe.clone();
        std::thread::spawn(move || {
            let mut c = WsClient::connect(&b);
            c.send(subscribe);
            c.expect("subscribed", secs(10));
            let mut mine = 0usize;
            let mut assignments = Vec::new();
            let deadline = secs(90);
            let mut last_records = Instant::now();
            // The next offset of each partition this member holds, as a Kafka
            // consumer keeps its positions.
            let mut positions: BTreeMap<(String, i64), i64> = BTreeMap::new();
            while mine < stop_after && Instant::now() < deadline {
                // Done once the group has seen everything and nothing more comes (a
                // partition handed back is redelivered from its committed offset).
                let distinct = seen
                    .lock()
                    .expect("lock")
                    .iter()
                    .collect::<BTreeSet<_>>()
                    .len();
                if distinct >= RECORDS && last_records.elapsed() > Duration::from_millis(1500) {
                    // Commit every position held (some commits may have been refused
                    // mid-rebalance), and wait for the answer.
                    let offsets: Vec<Value> = positions
                        .iter()
                        .map(|((t, p), o)| json!({"topic": t, "partition": p, "offset": o}))
                        .collect();
                    if !offsets.is_empty() {
                        c.send(json!({"type": "commit", "sub": "g", "offsets": offsets}));
                        c.expect("committed", secs(10));
                    }
                    break;
                }
                match c.next(Instant::now() + Duration::from_millis(200)) {
                    Some(Incoming::Json(v)) if v["type"] == "records" => {
                        let topic = v["topic"].as_str().expect("topic").to_string();
                        let p = v["partition"].clone();
                        let records = v["records"].as_array().expect("records");
                        let last = records
                            .last()
                            .and_then(|r| r["offset"].as_i64())
                            .expect("offset");
                        seen.lock().expect("lock").extend(
                            records
                                .iter()
                                .map(|r| r["value"].as_str().expect("value").to_string()),
                        );
                        mine += records.len();
                        last_records = Instant::now();
                        positions.insert((topic.clone(), p.as_i64().expect("partition")), last + 1);
                        c.send(json!({"type": "commit", "sub": "g", "offsets": [{"topic": topic, "partition": p, "offset": last + 1}]}));
                    }
                    Some(Incoming::Json(v))
                        if v["type"] == "assigned" || v["type"] == "revoked" =>
                    {
                        if v["type"] == "revoked" {
                            for tp in v["partitions"].as_array().expect("partitions") {
                                let key = (
                                    tp["topic"].as_str().expect("topic").to_string(),
                                    tp["partition"].as_i64().expect("partition"),
                                );
                                positions.remove(&key);
                            }
                        }
                        assignments.push(v)
                    }
                    // A commit refused during a rebalance only means a redelivery.
                    Some(Incoming::Json(_)) => {}
                    Some(Incoming::Binary(_)) => panic!("binary frame"),
                    Some(Incoming::Closed(code)) => panic!("closed {code:?}"),
                    None => {}
                }
            }
            (mine, assignments)
        })
    };
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let first = member(usize::MAX, seen.clone());
    let producer = {
        let b = b.clone();
        std::thread::spawn(move || {
            for chunk in values("o", 0..RECORDS).chunks(100) {
                produce(&b, "orders", None, chunk);
                std::thread::sleep(Duration::from_millis(30));
            }
        })
    };
    // Once the first member is consuming, a second joins mid-stream and leaves
    // (closing its socket) after 500 records: two rebalances while records flow.
    let deadline = secs(30);
    while seen.lock().expect("lock").len() < 100 {
        assert!(
            Instant::now() < deadline,
            "the first member never got records"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = member(500, seen.clone());
    let (second_count, second_assignments) = second.join().expect("second member");
    producer.join().expect("producer");
    let (first_count, first_assignments) = first.join().expect("first member");
    let seen = seen.lock().expect("lock").clone();
    let distinct: BTreeSet<&String> = seen.iter().collect();
    let want = values("o", 0..RECORDS);
    assert_eq!(distinct.len(), RECORDS, "the group saw every record");
    assert!(want.iter().all(|v| distinct.contains(v)));
    let duplicates = seen.len() - distinct.len();
    eprintln!(
        "group of WebSocket members: {} records, first {first_count}, second {second_count}, {duplicates} redelivered across rebalances",
        RECORDS
    );
    assert!(
        second_count > 0,
        "the second member got partitions: {second_assignments:?}"
    );
    assert!(
        first_assignments.iter().any(|a| a["type"] == "revoked"),
        "the first member gave partitions up when the second joined: {first_assignments:?}"
    );
    assert!(
        first_assignments
            .iter()
            .filter(|a| a["type"] == "assigned")
            .count()
            >= 2,
        "and took them back when it left: {first_assignments:?}"
    );
    // Duplicates happen only for records delivered but not yet committed when a
    // partition moved: at most one records frame per moved partition per rebalance.
    assert!(duplicates <= 2 * 4 * 500, "{duplicates} duplicates");
    // Everything the group processed is committed.
    let deadline = secs(20);
    loop {
        let (status, lag) = get(&b.v3("/consumer-groups/billing/lag-summary"));
        assert_eq!(status, 200, "{lag}");
        if lag["total_lag"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the group still lags: {lag}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_stopping_broker_tells_its_websocket_clients_it_is_going_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 1);
    let mut c = WsClient::connect(&b);
    c.send(json!({"type": "subscribe", "sub": "s", "topic": "t"}));
    c.expect("subscribed", secs(10));
    let stopping = std::thread::spawn(move || b.stop());
    let code = loop {
        match c.next(secs(20)) {
            Some(Incoming::Closed(code)) => break code,
            Some(_) => continue,
            None => panic!("not closed while the broker stopped"),
        }
    };
    assert_eq!(code, Some(1001), "going away");
    stopping.join().expect("the broker stopped cleanly");
}

/// Sends `frame` and returns the error frame answering it.
fn refused(c: &mut WsClient, frame: Value) -> Value {
    c.send(frame.clone());
    let e = c.expect("error", secs(10));
    assert_eq!(e["error_code"], 40002, "{frame} -> {e}");
    e
}

#[test]
fn refused_frames_name_the_sub_or_id_they_answer_and_unknown_fields_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 1);
    let mut c = WsClient::connect(&b);
    // Shape errors answer with the sub or id of the frame they refuse, so a client
    // waiting for that answer gets it.
    let e = refused(&mut c, json!({"type": "subscribe", "sub": "no-topic"}));
    assert_eq!(e["sub"], "no-topic", "{e}");
    let e = refused(
        &mut c,
        json!({"type": "subscribe", "sub": "bad-from", "topic": "t", "from": "yesterday"}),
    );
    assert_eq!(e["sub"], "bad-from", "{e}");
    let e = refused(
        &mut c,
        json!({"type": "subscribe", "sub": "bad-format", "topic": "t", "format": "xml"}),
    );
    assert_eq!(e["sub"], "bad-format", "{e}");
    let e = refused(
        &mut c,
        json!({"type": "subscribe", "sub": "bad-credit", "topic": "t", "credit": -1}),
    );
    assert_eq!(e["sub"], "bad-credit", "{e}");
    let e = refused(
        &mut c,
        json!({"type": "produce", "id": 7, "topic": "t", "acks": "some", "records": [{"value": {"type": "STRING", "data": "x"}}]}),
    );
    assert_eq!(e["id"], 7, "{e}");
    let e = refused(&mut c, json!({"type": "produce", "id": "p2", "topic": "t"}));
    assert_eq!(e["id"], "p2", "{e}");
    let e = refused(
        &mut c,
        json!({"type": "credit", "sub": "s", "records": "many"}),
    );
    assert_eq!(e["sub"], "s", "{e}");
    // Even a sub of the wrong kind is named as it was sent.
    let e = refused(&mut c, json!({"type": "unsubscribe", "sub": 42}));
    assert_eq!(e["sub"], 42, "{e}");
    // A misspelled or unknown field is refused, precisely, not ignored.
    let e = refused(
        &mut c,
        json!({"type": "subscribe", "sub": "typo", "topic": "t", "partiton": [0]}),
    );
    assert_eq!(e["sub"], "typo", "{e}");
    let message = e["message"].as_str().expect("message");
    assert!(
        message.contains("'partiton'") && message.contains("partitions"),
        "{e}"
    );
    let e = refused(
        &mut c,
        json!({"type": "subscribe", "sub": "typo2", "topic": "t", "from": {"offsets": {"0": 0}, "timestamp": 5}}),
    );
    assert_eq!(e["sub"], "typo2", "{e}");
    let e = refused(
        &mut c,
        json!({"type": "produce", "id": "p3", "topic": "t", "ack": 1, "records": [{"value": {"type": "STRING", "data": "x"}}]}),
    );
    assert_eq!(e["id"], "p3", "{e}");
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("'ack'")),
        "{e}"
    );
    let e = refused(&mut c, json!({"type": "ping", "id": 9, "payload": 1}));
    assert_eq!(e["id"], 9, "{e}");
    let e = refused(
        &mut c,
        json!({"type": "commit", "sub": "g", "offsets": [{"topic": "t", "partition": 0, "offset": 1, "metadata": "m"}]}),
    );
    assert_eq!(e["sub"], "g", "{e}");
    let e = refused(&mut c, json!({"type": "pause", "sub": "s", "all": true}));
    assert_eq!(e["sub"], "s", "{e}");
    // Nothing of that was produced or subscribed; the connection keeps serving.
    assert!(read_partition(&b, "t", 0).is_empty());
    c.send(json!({"type": "subscribe", "sub": "ok", "topic": "t", "from": "beginning"}));
    assert_eq!(c.expect("subscribed", secs(10))["sub"], "ok");
}

#[test]
fn records_deleted_by_retention_are_skipped_and_reported_even_from_the_live_tail_ring() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start_with(
        dir.path(),
        &[
            "log.retention.check.interval.ms=100",
            "log.segment.delete.delay.ms=0",
        ],
    );
    let (status, body) = crate::broker::post_json(
        &b.v3("/topics"),
        &json!({"topic_name": "aging", "partitions_count": 1,
                "configs": [{"name": "segment.bytes", "value": "1024"}, {"name": "retention.ms", "value": "60000"}]}),
    );
    assert_eq!(status, 201, "{body}");
    let mut c = WsClient::connect(&b);
    // One record of credit: the subscriber follows the live tail, takes one record,
    // then waits while the next ones sit in the partition's ring for it.
    c.send(json!({"type": "subscribe", "sub": "s", "topic": "aging", "from": "end", "format": "string", "credit": 1}));
    c.expect("subscribed", secs(10));
    // Stamped an hour ago: older than retention.ms as soon as their segment rolls.
    let old = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
        - 3_600_000;
    let record = |i: usize| json!({"value": {"type": "STRING", "data": format!("r{i}-{}", "x".repeat(100))}, "timestamp": old});
    produce_v3(&b, "aging", &[record(0)]);
    let first = c.collect("s", 1, secs(10), &mut Vec::new());
    assert_eq!(first[&0][0].0, 0);
    // One produce per record: each is a chunk of its own in the ring.
    for i in 1..30 {
        produce_v3(&b, "aging", &[record(i)]);
    }
    let deadline = secs(20);
    let start = loop {
        let start = get(&b.v3("/topics/aging/partitions/0")).1["log_start_offset"]
            .as_i64()
            .expect("log_start_offset");
        if start > 1 {
            break start;
        }
        assert!(
            Instant::now() < deadline,
            "retention did not advance the log start"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    c.send(json!({"type": "credit", "sub": "s", "records": 1000}));
    // The skip is reported, then delivery goes on at the log start: nothing below it
    // (retention deleted it) is delivered.
    let mut reported = None;
    let mut next = None;
    let deadline = secs(20);
    while next != Some(30) {
        match c.next(deadline) {
            Some(Incoming::Json(v)) if v["type"] == "error" => {
                assert_eq!(v["error_code"], 41601, "{v}");
                assert_eq!(
                    (v["sub"].clone(), v["partition"].clone()),
                    (json!("s"), json!(0)),
                    "{v}"
                );
                let position = v["position"].as_i64().expect("position");
                assert!(position >= start, "continues at the log start {start}: {v}");
                assert!(
                    next.is_none(),
                    "reported before any record after the gap: {v}"
                );
                reported = Some(position);
            }
            Some(Incoming::Json(v)) if v["type"] == "records" => {
                for r in v["records"].as_array().expect("records") {
                    let offset = r["offset"].as_i64().expect("offset");
                    let expected = next.or(reported).unwrap_or_else(|| {
                        panic!("offset {offset} delivered though retention deleted it (log start {start}), with no 41601 frame")
                    });
                    assert_eq!(offset, expected, "in order from the log start");
                    next = Some(offset + 1);
                }
            }
            Some(Incoming::Json(_)) => {}
            Some(other) => panic!("unexpected {:?}", matches!(other, Incoming::Binary(_))),
            None => panic!("stuck at {next:?} (reported {reported:?})"),
        }
    }
}

/// Time from the close handshake's end to the broker closing the TCP connection: from
/// `closed` (when the client got the broker's close frame, if it had already), else from
/// the close frame arriving now.
fn time_to_eof(c: &mut WsClient, mut closed: Option<Instant>) -> Duration {
    let deadline = secs(10);
    loop {
        // tungstenite answers the broker's close frame itself, then reports the
        // connection closed once the broker ends the TCP connection.
        match c.ws.read() {
            Ok(Message::Close(_)) => closed = closed.or(Some(Instant::now())),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                assert!(Instant::now() < deadline, "the TCP connection stayed open");
            }
            Err(_) => break,
        }
    }
    closed.expect("a close frame came").elapsed()
}

#[test]
fn the_broker_ends_the_tcp_connection_at_once_after_the_close_handshake() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start_with(
        dir.path(),
        &[
            "websocket.idle.timeout.ms=500",
            "websocket.ping.interval.ms=100",
        ],
    );
    // The client closes: the broker answers and closes the TCP connection at once
    // (RFC 6455 §7.1.1), not after lingering for the client to hang up.
    let mut c = WsClient::connect(&b);
    c.send(json!({"type": "ping", "id": 1}));
    c.expect("pong", secs(10));
    c.ws.close(None).expect("close sent");
    let waited = time_to_eof(&mut c, None);
    assert!(
        waited < Duration::from_millis(200),
        "EOF {waited:?} after the handshake"
    );
    // The broker closes (idle timeout, 4001): once the client answers, the same.
    let mut c = WsClient::connect(&b);
    std::thread::sleep(Duration::from_millis(900));
    let code = loop {
        match c.next(secs(10)) {
            Some(Incoming::Closed(code)) => break code,
            Some(_) => continue,
            None => panic!("not closed"),
        }
    };
    let closed = Instant::now();
    assert_eq!(code, Some(4001));
    let waited = time_to_eof(&mut c, Some(closed));
    assert!(
        waited < Duration::from_millis(200),
        "EOF {waited:?} after the handshake"
    );
    // The broker keeps serving.
    let mut c = WsClient::connect(&b);
    c.send(json!({"type": "ping", "id": 2}));
    c.expect("pong", secs(10));
}

#[test]
fn stalled_subscribers_cost_the_broker_no_more_than_their_send_buffers() {
    const STALLED: usize = 20;
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start_with(
        dir.path(),
        &[
            "websocket.send.buffer.bytes=1048576",
            "websocket.slow.client.timeout.ms=120000",
        ],
    );
    create_topic(&b, "flood", 1);
    let mut stalled: Vec<WsClient> = (0..STALLED)
        .map(|i| {
            let mut c = WsClient::connect(&b);
            c.send(json!({"type": "subscribe", "sub": format!("s{i}"), "topic": "flood", "from": "end", "format": "string"}));
            c.expect("subscribed", secs(10));
            c
        })
        .collect();
    let before = b.rss_bytes();
    // 20 MiB committed while 20 subscribers read nothing: each may have its 1 MiB send
    // buffer filled, no more (records frames share one rendering of the records).
    let pad = "z".repeat(1000);
    let records: Vec<String> = (0..20_000).map(|i| format!("{i:06}{pad}")).collect();
    produce(&b, "flood", Some(0), &records);
    // Let delivery fill every buffer it can.
    std::thread::sleep(Duration::from_secs(2));
    let grown = b.rss_bytes().saturating_sub(before);
    eprintln!(
        "broker RSS grew {} MiB with {STALLED} stalled subscribers",
        grown >> 20
    );
    // The live-tail ring keeps up to 32 MiB of those records (128 chunks of 256 KiB)
    // whoever subscribes; the stalled subscribers' buffers add at most 20 MiB.
    assert!(
        grown < 64 << 20,
        "broker RSS grew {} MiB with {STALLED} stalled subscribers",
        grown >> 20
    );
    // They were paused, not dropped, and get their records in order once they read.
    let got = stalled[0].collect("s0", 1000, secs(30), &mut Vec::new());
    assert_in_order(&got);
    assert_eq!(got[&0][0].0, 0);
}
