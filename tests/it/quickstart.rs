//! The README's quickstart over HTTP: create, list, describe, configure, produce with
//! v3 and v2, consume, grow and delete a topic; keyed records on Kafka's partitions;
//! long-polling reads; health and metrics.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;

use crate::broker::*;

#[test]
fn quickstart_flow_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    assert_eq!(get(&b.url("/health")).0, 200);

    // Create (201 + Location), validate_only (200, nothing created), list, get.
    let (status, body) = post_json(
        &b.v3("/topics"),
        &json!({"topic_name": "orders", "partitions_count": 3, "replication_factor": 1,
                "configs": [{"name": "retention.ms", "value": "3600000"}]}),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["kind"], "KafkaTopic");
    assert_eq!(body["partitions_count"], 3);
    let (status, _) = post_json(
        &b.v3("/topics"),
        &json!({"topic_name": "dry", "validate_only": true}),
    );
    assert_eq!(status, 200);
    let (_, list) = get(&b.v3("/topics"));
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topic_name"].as_str().unwrap())
        .collect();
    // Internal topics are listed too, as Kafka's admin API lists them.
    assert_eq!(names, vec!["__consumer_offsets", "orders"]);
    let (status, topic) = get(&b.v3("/topics/orders"));
    assert_eq!(status, 200);
    assert_eq!(topic["replication_factor"], 1);
    assert!(topic["metadata"]["self"]
        .as_str()
        .unwrap()
        .ends_with("/topics/orders"));

    // Configs: list shows the override and its source; update, get, reset, alter.
    let (_, configs) = get(&b.v3("/topics/orders/configs"));
    let retention = configs["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .unwrap()
        .clone();
    assert_eq!(
        (retention["value"].as_str(), retention["source"].as_str()),
        (Some("3600000"), Some("DYNAMIC_TOPIC_CONFIG"))
    );
    assert_eq!(
        send(
            "PUT",
            &b.v3("/topics/orders/configs/cleanup.policy"),
            "application/json",
            r#"{"value":"compact"}"#
        )
        .0,
        204
    );
    assert_eq!(
        get(&b.v3("/topics/orders/configs/cleanup.policy")).1["value"],
        "compact"
    );
    assert_eq!(
        delete(&b.v3("/topics/orders/configs/cleanup.policy")).0,
        204
    );
    let (_, reset) = get(&b.v3("/topics/orders/configs/cleanup.policy"));
    assert_eq!(
        (reset["value"].as_str(), reset["source"].as_str()),
        (Some("delete"), Some("DEFAULT_CONFIG"))
    );
    let (status, _) = post_json(
        &b.v3("/topics/orders/configs:alter"),
        &json!({"data": [{"name": "segment.bytes", "value": "1048576"}, {"name": "retention.ms", "operation": "DELETE"}]}),
    );
    assert_eq!(status, 204);
    assert_eq!(
        get(&b.v3("/topics/orders/configs/segment.bytes")).1["value"],
        "1048576"
    );
    assert_eq!(
        get(&b.v3("/topics/orders/configs/retention.ms")).1["source"],
        "DEFAULT_CONFIG"
    );

    // v3 produce: one record, then the streamed form.
    let (status, r) = post_json(
        &b.v3("/topics/orders/records"),
        &json!({"partition_id": 1, "key": {"type": "STRING", "data": "k1"}, "value": {"type": "JSON", "data": {"n": 1}},
                "headers": [{"name": "h", "value": "aGk="}], "timestamp": "2026-01-01T00:00:00Z"}),
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (
            r["error_code"].as_i64(),
            r["partition_id"].as_i64(),
            r["offset"].as_i64()
        ),
        (Some(200), Some(1), Some(0))
    );
    assert_eq!(r["timestamp"], "2026-01-01T00:00:00.000Z");
    let stream = r#"{"partition_id":1,"value":{"type":"STRING","data":"a"}}
{"partition_id":1,"value":{"type":"BINARY","data":"Yg=="}}
{"partition_id":1,"value":{"type":"STRING","data":"c"}}"#;
    let (status, reports) = send(
        "POST",
        &b.v3("/topics/orders/records"),
        "application/json",
        stream,
    );
    assert_eq!(status, 200);
    let text = reports.as_str().expect("a stream of JSON objects");
    let offsets: Vec<i64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["offset"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(offsets, vec![1, 2, 3]);

    // v2 produce, binary and json.
    let (status, r) = send(
        "POST",
        &b.url("/topics/orders/partitions/1"),
        "application/vnd.kafka.binary.v2+json",
        r#"{"records":[{"key":"a2V5","value":"dmFsdWU="},{"value":null}]}"#,
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["offsets"][0]["offset"], 4);
    assert_eq!(r["offsets"][1]["offset"], 5);
    let (status, r) = send(
        "POST",
        &b.url("/topics/orders"),
        "application/vnd.kafka.json.v2+json",
        r#"{"records":[{"value":{"x":[1,2]},"partition":2}]}"#,
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (
            r["offsets"][0]["partition"].as_i64(),
            r["offsets"][0]["offset"].as_i64()
        ),
        (Some(2), Some(0))
    );

    // Consume: binary and json renderings, offsets, v2 metadata.
    let records = read_partition(&b, "orders", 1);
    let values: Vec<Option<&str>> = records.iter().map(|r| r.2.as_deref()).collect();
    assert_eq!(
        values,
        vec![
            Some(r#"{"n":1}"#),
            Some("a"),
            Some("b"),
            Some("c"),
            Some("value"),
            None
        ]
    );
    assert_eq!(records[4].1.as_deref(), Some("key"));
    let (_, json_records) = get_accept(
        &b.url("/topics/orders/partitions/2/records?offset=beginning"),
        "application/vnd.kafka.json.v2+json",
    );
    assert_eq!(json_records[0]["value"], json!({"x": [1, 2]}));
    let (_, at_time) =
        get(&b
            .url("/topics/orders/partitions/1/records?timestamp=2026-01-01T00:00:00Z&max_bytes=1"));
    assert_eq!(at_time[0]["offset"], 0);
    let (_, offsets) = get(&b.url("/topics/orders/partitions/1/offsets"));
    assert_eq!(offsets, json!({"beginning_offset": 0, "end_offset": 6}));
    assert_eq!(get(&b.url("/topics")).1, json!(["orders"]));
    let (_, v2topic) = get(&b.url("/topics/orders"));
    assert_eq!(v2topic["partitions"].as_array().unwrap().len(), 3);
    assert_eq!(v2topic["configs"]["segment.bytes"], "1048576");
    assert_eq!(get(&b.url("/brokers")).1, json!({"brokers": [1]}));
    let (_, partition) = get(&b.v3("/topics/orders/partitions/1"));
    assert_eq!(
        (
            partition["high_watermark"].as_i64(),
            partition["log_end_offset"].as_i64()
        ),
        (Some(6), Some(6))
    );

    // Grow, then delete.
    let (status, grown) = send(
        "PATCH",
        &b.v3("/topics/orders"),
        "application/json",
        r#"{"partitions_count":5}"#,
    );
    assert_eq!((status, grown["partitions_count"].as_i64()), (200, Some(5)));
    assert_eq!(
        get(&b.v3("/topics/orders/partitions")).1["data"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(delete(&b.v3("/topics/orders")).0, 204);
    assert_eq!(get(&b.v3("/topics/orders")).0, 404);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("orders"))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && std::fs::read_dir(dir.path()).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("orders")
        })
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !std::fs::read_dir(dir.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("orders")),
        "partition directories removed (had {} right after delete)",
        leftovers.len()
    );
    b.stop();
}

#[test]
fn keyed_records_land_on_kafkas_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "keyed", 6);
    // toPositive(murmur2(key)) % 6 for Kafka's own murmur2 test vectors.
    let expected = [
        ("21", 0),
        ("foobar", 0),
        ("a-little-bit-long-string", 2),
        ("a-little-bit-longer-string", 5),
        ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 5),
        ("abc", 3),
    ];
    for (key, partition) in expected {
        let (status, r) = post_json(
            &b.v3("/topics/keyed/records"),
            &json!({"key": {"type": "STRING", "data": key}, "value": {"type": "STRING", "data": key}}),
        );
        assert_eq!(status, 200);
        assert_eq!(r["partition_id"], partition, "key {key}");
        // The same key goes to the same partition through v2 as well.
        let body = json!({"records": [{"key": base64::engine::general_purpose::STANDARD.encode(key), "value": "MQ=="}]});
        let (status, v2) = send(
            "POST",
            &b.url("/topics/keyed"),
            "application/vnd.kafka.binary.v2+json",
            &body.to_string(),
        );
        assert_eq!(status, 200, "{v2}");
        assert_eq!(v2["offsets"][0]["partition"], partition, "v2 key {key}");
    }
    for p in 0..6 {
        for (_, key, _) in read_partition(&b, "keyed", p) {
            let key = key.unwrap();
            let key = key.as_str();
            let want = expected.iter().find(|(k, _)| *k == key).unwrap().1;
            assert_eq!(want, p, "key {key} read from partition {p}");
        }
    }
    // Keyless records spread over partitions, one partition per request (sticky).
    for _ in 0..12 {
        post_json(
            &b.v3("/topics/keyed/records"),
            &json!({"value": {"type": "STRING", "data": "spread"}}),
        );
    }
    let used = (0..6)
        .filter(|p| {
            read_partition(&b, "keyed", *p)
                .iter()
                .any(|r| r.2.as_deref() == Some("spread"))
        })
        .count();
    assert_eq!(used, 6, "keyless records rotate over every partition");
}

#[test]
fn a_long_poll_returns_when_a_record_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "live", 1);
    let url = b.v3("/topics/live/records");
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        post_json(&url, &json!({"value": {"type": "STRING", "data": "now"}}))
    });
    let started = Instant::now();
    let (status, records) = get(&b.url("/topics/live/partitions/0/records?offset=0&timeout=10000"));
    assert_eq!(status, 200);
    assert_eq!(records.as_array().unwrap().len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered when the record came, not at the timeout"
    );
    assert_eq!(producer.join().unwrap().0, 200);
    // No data: the wait ends at the timeout with an empty array.
    let started = Instant::now();
    let (status, records) = get(&b.url("/topics/live/partitions/0/records?offset=1&timeout=300"));
    assert_eq!((status, records), (200, json!([])));
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn metrics_count_requests_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "m", 1);
    for _ in 0..3 {
        post_json(
            &b.v3("/topics/m/records"),
            &json!({"value": {"type": "STRING", "data": "12345"}}),
        );
    }
    read_partition(&b, "m", 0);
    let text = b.metrics();
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains("topic=\"m\""))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in:\n{text}"))
    };
    assert_eq!(value("troupe_records_in_total"), 3.0);
    assert_eq!(value("troupe_bytes_in_total"), 15.0);
    assert_eq!(value("troupe_records_out_total"), 3.0);
    assert!(text.contains("troupe_http_requests_total"));
    assert!(text.contains("troupe_http_request_duration_seconds"));
}
