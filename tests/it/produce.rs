//! Produce over REST as Confluent's clients rely on it: v3 reports every record in
//! band (HTTP 200), refuses unknown fields without writing anything, streams its
//! answers while a chunked body stays open, and has a batch form; request bodies are
//! bounded in time, and a large request costs a bounded multiple of its size.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::broker::*;

/// Posts a v3 body; every report in the answer (and any error) must match
/// Confluent's schema.
fn post_text(b: &TestBroker, path: &str, body: &str) -> (u16, Value) {
    let (status, answer) = send("POST", &b.v3(path), "application/json", body);
    if status == 200 && !path.ends_with(":batch") {
        for r in v3_reports(&answer) {
            let checked = if r["error_code"] == 200 {
                crate::openapi::check_produce_report(path, &r)
            } else {
                crate::openapi::check_error(path, &r)
            };
            if let Err(e) = checked {
                panic!("{path}: not Confluent's schema: {e}: {r}");
            }
        }
    } else {
        crate::openapi::assert_v3_answer(path, status, &answer);
    }
    (status, answer)
}

#[test]
fn v3_refuses_unknown_fields_in_band_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 1);

    // A v2-shaped body sent to v3: one record with an unknown field.
    let (status, answer) = post_text(
        &b,
        "/topics/t/records",
        r#"{"records": [{"value": {"type": "STRING", "data": "x"}}]}"#,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["error_code"], 400, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("records"),
        "{answer}"
    );

    // Misspelled fields, at the top and inside key/value data and headers.
    for body in [
        json!({"vaule": {"type": "STRING", "data": "x"}}),
        json!({"value": {"type": "STRING", "dat": "x"}}),
        json!({"value": {"type": "STRING", "data": "x"}, "partition": 0}),
        json!({"value": {"type": "STRING", "data": "x"}, "headers": [{"name": "h", "valu": "eA=="}]}),
    ] {
        let (status, answer) = post_text(&b, "/topics/t/records", &body.to_string());
        assert_eq!(
            (status, answer["error_code"].as_i64()),
            (200, Some(400)),
            "{body}: {answer}"
        );
    }

    // A record followed by garbage, in a body of known length: refused whole.
    let (status, answer) = post_text(
        &b,
        "/topics/t/records",
        r#"{"value": {"type": "STRING", "data": "first"}} {"value": garbage"#,
    );
    assert_eq!(
        (status, answer["error_code"].as_i64()),
        (400, Some(400)),
        "{answer}"
    );

    // Schema-registry fields are named in the refusal.
    let (_, answer) = post_text(
        &b,
        "/topics/t/records",
        r#"{"value": {"type": "AVRO", "schema_id": 3, "data": {}}}"#,
    );
    assert_eq!(answer["error_code"], 400, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("schema_id"),
        "{answer}"
    );

    // Timestamps outside what Kafka and ISO-8601 can carry.
    for ts in [
        json!(i64::MAX),
        json!(i64::MIN),
        json!(-5),
        json!("0000-01-01T00:00:00Z"),
    ] {
        let body = json!({"value": {"type": "STRING", "data": "x"}, "timestamp": ts});
        let (status, answer) = post_text(&b, "/topics/t/records", &body.to_string());
        assert_eq!(
            (status, answer["error_code"].as_i64()),
            (200, Some(400)),
            "{ts}: {answer}"
        );
    }

    // An empty body has no record to produce.
    let (status, answer) = post_text(&b, "/topics/t/records", "  \n");
    assert_eq!(
        (status, answer["error_code"].as_i64()),
        (422, Some(42206)),
        "{answer}"
    );

    // None of it was written; a valid record still is, at offset 0.
    assert!(read_partition(&b, "t", 0).is_empty());
    produce_v3(
        &b,
        "t",
        &[json!({"value": {"type": "STRING", "data": "ok"}})],
    );
    assert_eq!(
        read_partition(&b, "t", 0),
        vec![(0, None, Some("ok".into()))]
    );
}

#[test]
fn v3_stream_reports_each_record_in_band_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 2);
    let body = [
        json!({"partition_id": 0, "value": {"type": "STRING", "data": "a"}}).to_string(),
        json!({"partition_id": 0, "value": {"type": "BINARY", "data": "***"}}).to_string(),
        json!({"partition_id": 7, "value": {"type": "STRING", "data": "b"}}).to_string(),
        json!({"partition_id": 0, "value": {"type": "STRING", "data": "c"}, "extra": 1})
            .to_string(),
        json!({"partition_id": 1, "value": {"type": "STRING", "data": "d"}}).to_string(),
    ]
    .join("\n");
    let (status, answer) = post_text(&b, "/topics/t/records", &body);
    assert_eq!(status, 200, "{answer}");
    let codes: Vec<i64> = v3_reports(&answer)
        .iter()
        .map(|r| r["error_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![200, 400, 40402, 400, 200], "{answer}");
    assert_eq!(
        read_partition(&b, "t", 0),
        vec![(0, None, Some("a".into()))]
    );
    assert_eq!(
        read_partition(&b, "t", 1),
        vec![(0, None, Some("d".into()))]
    );

    // A record too large for max.message.bytes fails alone, in band.
    let big = "x".repeat(1_100_000);
    let (status, answer) = post_text(
        &b,
        "/topics/t/records",
        &json!({"partition_id": 0, "value": {"type": "STRING", "data": big}}).to_string(),
    );
    assert_eq!(
        (status, answer["error_code"].as_i64()),
        (200, Some(41301)),
        "{answer}"
    );
    assert_eq!(read_partition(&b, "t", 0).len(), 1);
}

/// An HTTP/1.1 request with a chunked body written by hand, so the test controls
/// when each chunk is sent and can read the answer in between.
struct ChunkedPost {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl ChunkedPost {
    fn open(b: &TestBroker, path: &str) -> ChunkedPost {
        let mut stream = TcpStream::connect(("127.0.0.1", b.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            b.port
        )
        .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        ChunkedPost { stream, reader }
    }

    fn send(&mut self, text: &str) {
        write!(self.stream, "{:x}\r\n{text}\r\n", text.len()).unwrap();
        self.stream.flush().unwrap();
    }

    fn finish(&mut self) {
        self.stream.write_all(b"0\r\n\r\n").unwrap();
    }

    /// Status line and headers.
    fn head(&mut self) -> u16 {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status = line.split(' ').nth(1).unwrap().parse().unwrap();
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                return status;
            }
        }
    }

    /// The next report line of a chunked answer (chunk framing stripped).
    fn next_report(&mut self) -> Value {
        let mut pending = String::new();
        loop {
            if let Some(end) = pending.find("\r\n") {
                let line = pending[..end].trim().to_string();
                if !line.is_empty() {
                    return serde_json::from_str(&line).unwrap();
                }
                pending.drain(..end + 2);
                continue;
            }
            let mut size = String::new();
            self.reader.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            self.reader.read_exact(&mut chunk).unwrap();
            pending.push_str(std::str::from_utf8(&chunk[..n]).unwrap());
        }
    }
}

#[test]
fn v3_chunked_stream_answers_each_record_while_the_body_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "s", 1);
    let mut post = ChunkedPost::open(
        &b,
        &format!("/v3/clusters/{}/topics/s/records", b.cluster_id()),
    );
    post.send(&json!({"value": {"type": "STRING", "data": "one"}}).to_string());
    assert_eq!(post.head(), 200);
    let first = post.next_report();
    assert_eq!(
        (first["error_code"].as_i64(), first["offset"].as_i64()),
        (Some(200), Some(0)),
        "{first}"
    );
    // Stored and readable while the request is still open.
    assert_eq!(
        read_partition(&b, "s", 0),
        vec![(0, None, Some("one".into()))]
    );

    // A record split across chunks is produced once it is complete.
    let second = json!({"value": {"type": "STRING", "data": "two"}}).to_string();
    post.send(&second[..7]);
    post.send(&second[7..]);
    let report = post.next_report();
    assert_eq!(report["offset"], 1, "{report}");
    post.send(r#"{"value": {"type": "STRING", "data": "three"}, "nope": 1}"#);
    assert_eq!(post.next_report()["error_code"], 400);
    post.send(&json!({"value": {"type": "STRING", "data": "four"}}).to_string());
    assert_eq!(post.next_report()["offset"], 2);
    // Chunk boundaries inside a number, an escape and a literal change nothing.
    let tricky = r#"{"value": {"type": "JSON", "data": [-3.5e+2, "q\"}", true]}}"#;
    for part in [
        "{\"value\": {\"type\": \"JSON\", \"data\": [-",
        "3.",
        "5e",
        "+2, \"q\\",
        "\"}\", tr",
        "ue]}}",
    ] {
        post.send(part);
    }
    let report = post.next_report();
    assert_eq!(
        (report["error_code"].as_i64(), report["offset"].as_i64()),
        (Some(200), Some(3)),
        "{tricky}: {report}"
    );
    // A syntax error ends the stream there, with an in-band 400 after the records
    // before it.
    post.send(&json!({"value": {"type": "STRING", "data": "five"}}).to_string());
    post.send(r#"{"value": garbage}"#);
    assert_eq!(post.next_report()["offset"], 4);
    let last = post.next_report();
    assert_eq!(last["error_code"], 400, "{last}");
    let values: Vec<Option<String>> = read_partition(&b, "s", 0)
        .into_iter()
        .map(|r| r.2)
        .collect();
    assert_eq!(values[3].as_deref(), Some(r#"[-350.0,"q\"}",true]"#));
    assert_eq!(values.len(), 5);

    // A chunked body with no record is refused as a body of known length is.
    let mut empty = ChunkedPost::open(
        &b,
        &format!("/v3/clusters/{}/topics/s/records", b.cluster_id()),
    );
    empty.send("  \n");
    empty.finish();
    assert_eq!(empty.head(), 422);
}

#[test]
fn slow_request_bodies_time_out_with_408() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start_with(dir.path(), &["http.request.body.timeout.ms=500"]);
    create_topic(&b, "slow", 1);

    // A body of known length that never arrives whole.
    let mut stream = TcpStream::connect(("127.0.0.1", b.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    write!(
        stream,
        "POST /v3/clusters/{}/topics/slow/records HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"value\"",
        b.cluster_id()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("40801"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A chunked stream that goes silent is ended with an in-band 408 report.
    let mut post = ChunkedPost::open(
        &b,
        &format!("/v3/clusters/{}/topics/slow/records", b.cluster_id()),
    );
    post.send(&json!({"value": {"type": "STRING", "data": "a"}}).to_string());
    assert_eq!(post.head(), 200);
    assert_eq!(post.next_report()["error_code"], 200);
    assert_eq!(post.next_report()["error_code"], 40801);

    // The broker still serves.
    assert_eq!(read_partition(&b, "slow", 0).len(), 1);
}

#[test]
fn v3_batch_produce_answers_207_per_entry() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "batch", 1);
    let (status, answer) = post_json(
        &b.v3("/topics/batch/records:batch"),
        &json!({"entries": [
            {"id": "a", "value": {"type": "STRING", "data": "1"}},
            {"id": "b", "value": {"type": "BINARY", "data": "***"}},
            {"id": "c", "partition_id": 0, "key": {"type": "STRING", "data": "k"}, "value": {"type": "JSON", "data": {"n": 3}}},
        ]}),
    );
    assert_eq!(status, 207, "{answer}");
    let ids: Vec<&str> = answer["successes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["a", "c"], "{answer}");
    assert_eq!(answer["successes"][1]["offset"], 1, "{answer}");
    assert_eq!(answer["failures"][0]["id"], "b", "{answer}");
    assert_eq!(answer["failures"][0]["error_code"], 400, "{answer}");

    let too_many: Vec<Value> = (0..11)
        .map(|i| json!({"id": i.to_string(), "value": {"type": "STRING", "data": "x"}}))
        .collect();
    for bad in [
        json!({"entries": too_many}),
        json!({"entries": []}),
        json!({"entries": [{"id": "same"}, {"id": "same"}]}),
        json!({"entries": [{"id": ""}]}),
        json!({"entries": [{"id": "x", "vaule": {}}]}),
    ] {
        let (status, answer) = post_json(&b.v3("/topics/batch/records:batch"), &bad);
        assert_eq!(status, 400, "{bad}: {answer}");
    }
    assert_eq!(read_partition(&b, "batch", 0).len(), 2);
}

/// Posts a body whose answer is larger than ureq's `into_string` allows; checks 200.
fn post_large(url: &str, content_type: &str, body: &str) -> String {
    let response = ureq::post(url)
        .set("Content-Type", content_type)
        .send_string(body)
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut text = String::new();
    response.into_reader().read_to_string(&mut text).unwrap();
    text
}

/// Anonymous resident memory (the heap: what requests allocate; file-backed pages,
/// such as the binary's own code faulted in, are left out) and peak resident memory
/// of a process, in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap()
            * 1024
    };
    (field("RssAnon:"), field("VmHWM:"))
}

#[test]
fn a_large_request_of_tiny_records_costs_a_bounded_multiple_of_its_size() {
    let dir = tempfile::tempdir().unwrap();
    // A small live-tail ring, so what the broker keeps on purpose (the ring holds
    // recently committed chunks for WebSocket subscribers) does not hide what a
    // request leaves behind.
    let b = TestBroker::start_with(dir.path(), &["partition.tail.buffer.chunks=2"]);
    create_topic(&b, "many", 1);
    // Warm up the paths once, so the baseline holds their one-off allocations.
    produce_v3(
        &b,
        "many",
        &[json!({"value": {"type": "STRING", "data": "w"}})],
    );
    let (base_rss, base_peak) = memory(b.pid());

    // v3: ~200k tiny records in one streamed body (about 8 MiB).
    let record = r#"{"value":{"type":"STRING","data":"x"}}"#;
    let count = 200_000;
    let mut body = String::with_capacity(count * (record.len() + 1));
    for _ in 0..count {
        body.push_str(record);
        body.push('\n');
    }
    let size = body.len() as u64;
    let reports = post_large(&b.v3("/topics/many/records"), "application/json", &body);
    assert_eq!(reports.lines().count(), count);
    assert!(reports.lines().all(|l| l.contains("\"error_code\":200")));
    let (_, v3_peak) = memory(b.pid());

    // v2: the same count in one JSON body.
    let mut v2 = String::from(r#"{"records":["#);
    for i in 0..count {
        if i > 0 {
            v2.push(',');
        }
        v2.push_str(r#"{"value":"eA=="}"#);
    }
    v2.push_str("]}");
    let answer = post_large(
        &b.url("/topics/many"),
        "application/vnd.kafka.binary.v2+json",
        &v2,
    );
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["offsets"].as_array().unwrap().len(), count);
    let (_, peak) = memory(b.pid());
    // Freed memory goes back to the OS shortly after (memory.rs trims on a timer, for
    // a while: a kept-alive connection's buffers are freed when it closes).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut rss_after = memory(b.pid()).0;
    while rss_after.saturating_sub(base_rss) >= size && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        rss_after = memory(b.pid()).0;
    }

    let growth = |bytes: u64| bytes.saturating_sub(base_rss);
    let peak_growth = |bytes: u64| bytes.saturating_sub(base_peak);
    eprintln!(
        "body {size} B (v2 {} B): v3 peak +{} B, overall peak +{} B, after +{} B",
        v2.len(),
        peak_growth(v3_peak),
        peak_growth(peak),
        growth(rss_after)
    );
    // Before the fix these were 60-90 times the body.
    assert!(
        peak_growth(v3_peak) < 8 * size,
        "v3 peak grew {} B for a {size} B body",
        peak_growth(v3_peak)
    );
    assert!(
        peak_growth(peak) < 8 * size.max(v2.len() as u64),
        "peak grew {} B",
        peak_growth(peak)
    );
    assert!(
        growth(rss_after) < size,
        "kept {} B after the requests",
        growth(rss_after)
    );
    assert_eq!(read_partition(&b, "many", 0).len(), 2 * count + 1);
}

#[test]
fn keyless_records_rotate_per_produce_request_not_per_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "rot", 4);
    let produce_keyless = || {
        let (status, answer) = post_text(
            &b,
            "/topics/rot/records",
            &json!({"value": {"type": "STRING", "data": "k"}}).to_string(),
        );
        assert_eq!(status, 200, "{answer}");
        answer["partition_id"].as_i64().unwrap()
    };
    let first = produce_keyless();
    // Reads, metrics scrapes and describes look the topic up; they move nothing.
    for _ in 0..3 {
        assert_eq!(
            get(&b.url("/topics/rot/partitions/0/records?offset=beginning")).0,
            200
        );
        assert_eq!(get(&b.url("/metrics")).0, 200);
        assert_eq!(get(&b.v3("/topics/rot/partitions")).0, 200);
    }
    assert_eq!(produce_keyless(), (first + 1) % 4);
    assert_eq!(produce_keyless(), (first + 2) % 4);
}
