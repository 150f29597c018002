//! Confluent REST Proxy v2 fidelity over the real binary: what its clients and
//! scripts rely on beyond the happy path — a commit's answer and type, paths with a
//! trailing slash, seeking to a time, the type and codes of errors, the root
//! resource, and bodies with unknown fields refused before anything happens.

use serde_json::{json, Value};

use crate::broker::*;

const V2: &str = "application/vnd.kafka.v2+json";
const BINARY_V2: &str = "application/vnd.kafka.binary.v2+json";

/// A request with optional Content-Type and Accept; answers status, the answer's
/// Content-Type and its body (JSON, or a string).
fn call(
    method: &str,
    url: &str,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: &str,
) -> (u16, String, Value) {
    let mut req = ureq::request(method, url);
    if let Some(t) = content_type {
        req = req.set("Content-Type", t);
    }
    if let Some(a) = accept {
        req = req.set("Accept", a);
    }
    let resp = match req.send_string(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = resp.status();
    let content_type = resp.header("Content-Type").unwrap_or("").to_string();
    let text = resp.into_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, content_type, body)
}

/// Creates a binary consumer instance and assigns it partition 0 of `topic`; answers
/// its base URI.
fn assigned_consumer(b: &TestBroker, group: &str, topic: &str) -> String {
    let (status, _, created) = call(
        "POST",
        &b.url(&format!("/consumers/{group}")),
        Some(V2),
        None,
        &json!({"name": "c", "auto.offset.reset": "earliest"}).to_string(),
    );
    assert_eq!(status, 200, "{created}");
    let base = created["base_uri"].as_str().expect("base_uri").to_string();
    let (status, _, body) = call(
        "POST",
        &format!("{base}/assignments"),
        Some(V2),
        None,
        &json!({"partitions": [{"topic": topic, "partition": 0}]}).to_string(),
    );
    assert_eq!(status, 204, "{body}");
    base
}

fn poll_offsets(base: &str) -> Vec<i64> {
    let (status, _, body) = call(
        "GET",
        &format!("{base}/records?timeout=1000"),
        None,
        Some(BINARY_V2),
        "",
    );
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .expect("an array")
        .iter()
        .map(|r| r["offset"].as_i64().expect("offset"))
        .collect()
}

fn produce_strings(b: &TestBroker, topic: &str, n: usize) {
    let records: Vec<Value> = (0..n)
        .map(|i| json!({"partition_id": 0, "value": {"type": "STRING", "data": format!("v{i}")}}))
        .collect();
    produce_v3(b, topic, &records);
}

#[test]
fn a_commit_answers_a_v2_list_and_paths_take_a_trailing_slash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 1);
    produce_strings(&b, "t", 3);
    let base = assigned_consumer(&b, "g", "t");
    assert_eq!(poll_offsets(&base), vec![0, 1, 2]);

    // Everything fetched so far, with an empty body.
    let (status, content_type, body) = call("POST", &format!("{base}/offsets"), Some(V2), None, "");
    assert_eq!((status, content_type.as_str()), (200, V2), "{body}");
    assert_eq!(body, json!([]));

    // The same paths with a trailing slash, as Confluent's proxy takes them.
    let (status, content_type, body) = call(
        "POST",
        &format!("{base}/offsets/"),
        Some(V2),
        None,
        &json!({"offsets": [{"topic": "t", "partition": 0, "offset": 1}]}).to_string(),
    );
    assert_eq!((status, content_type.as_str()), (200, V2), "{body}");
    let (status, _, committed) = call(
        "GET",
        &format!("{base}/offsets/"),
        Some(V2),
        None,
        &json!({"partitions": [{"topic": "t", "partition": 0}]}).to_string(),
    );
    assert_eq!(status, 200, "{committed}");
    assert_eq!(committed["offsets"][0]["offset"], 2, "{committed}");
    for path in [
        "/topics/",
        "/topics/t/",
        "/topics/t/partitions/",
        "/topics/t/partitions/0/",
        "/topics/t/partitions/0/offsets/",
        "/brokers/",
    ] {
        let (status, _, body) = call("GET", &b.url(path), None, None, "");
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, _, assigned) = call("GET", &format!("{base}/assignments/"), None, None, "");
    assert_eq!(status, 200, "{assigned}");
    let (status, _, body) = call(
        "POST",
        &format!("{base}/positions/beginning/"),
        Some(V2),
        None,
        &json!({"partitions": [{"topic": "t", "partition": 0}]}).to_string(),
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(poll_offsets(&base), vec![0, 1, 2]);
    let (status, _, body) = call(
        "POST",
        &b.url("/topics/t/"),
        Some(BINARY_V2),
        None,
        r#"{"records": [{"value": "eA=="}]}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(read_partition(&b, "t", 0).len(), 4);
}

#[test]
fn an_instance_seeks_to_the_first_record_at_or_after_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 1);
    let base_ms = 1_700_000_000_000i64;
    let records: Vec<Value> = (0..4)
        .map(|i| {
            json!({
                "partition_id": 0,
                "timestamp": base_ms + i * 60_000,
                "value": {"type": "STRING", "data": format!("v{i}")},
            })
        })
        .collect();
    produce_v3(&b, "t", &records);
    let base = assigned_consumer(&b, "g", "t");
    let seek = |timestamps: Value| {
        let (status, _, body) = call(
            "POST",
            &format!("{base}/positions"),
            Some(V2),
            None,
            &json!({ "timestamps": timestamps }).to_string(),
        );
        assert_eq!(status, 204, "{body}");
    };
    // ISO-8601, as Confluent's examples; between records 1 and 2 lands on 2.
    seek(json!([{"topic": "t", "partition": 0, "timestamp": "2023-11-14T22:14:30Z"}]));
    assert_eq!(poll_offsets(&base), vec![2, 3]);
    // Milliseconds, exactly record 1's time.
    seek(json!([{"topic": "t", "partition": 0, "timestamp": base_ms + 60_000}]));
    assert_eq!(poll_offsets(&base), vec![1, 2, 3]);
    // After every record: the log end, so only what comes next.
    seek(json!([{"topic": "t", "partition": 0, "timestamp": base_ms + 3_600_000}]));
    assert!(poll_offsets(&base).is_empty());
    produce_strings(&b, "t", 1);
    assert_eq!(poll_offsets(&base), vec![4]);
    // Offsets and timestamps in one request; a bad timestamp moves nothing.
    let (status, _, body) = call(
        "POST",
        &format!("{base}/positions"),
        Some(V2),
        None,
        &json!({"timestamps": [{"topic": "t", "partition": 0, "timestamp": "yesterday"}]})
            .to_string(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(poll_offsets(&base).is_empty());
    let (status, _, body) = call(
        "POST",
        &format!("{base}/positions"),
        Some(V2),
        None,
        &json!({"offsets": [{"topic": "t", "partition": 0, "offset": 3}], "timestamps": []})
            .to_string(),
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(poll_offsets(&base), vec![3, 4]);
}

#[test]
fn v2_errors_are_typed_v2_and_an_unknown_topic_is_40401_on_every_route() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 1);
    let unknown_topic = |method: &str, path: &str, content_type: Option<&str>, body: &str| {
        let (status, answer_type, answer) = call(method, &b.url(path), content_type, None, body);
        assert_eq!(status, 404, "{path}: {answer}");
        assert_eq!(answer["error_code"], 40401, "{path}: {answer}");
        assert_eq!(answer_type, V2, "{path}");
    };
    unknown_topic("GET", "/topics/nope", None, "");
    unknown_topic("GET", "/topics/nope/partitions", None, "");
    unknown_topic("GET", "/topics/nope/partitions/0", None, "");
    unknown_topic("GET", "/topics/nope/partitions/0/offsets", None, "");
    unknown_topic(
        "GET",
        "/topics/nope/partitions/0/records?offset=0",
        None,
        "",
    );
    unknown_topic(
        "POST",
        "/topics/nope",
        Some(BINARY_V2),
        r#"{"records": [{"value": "eA=="}]}"#,
    );
    unknown_topic(
        "POST",
        "/topics/nope/partitions/0",
        Some(BINARY_V2),
        r#"{"records": [{"value": "eA=="}]}"#,
    );
    // A consumer instance assigned a topic that does not exist.
    let base = assigned_consumer(&b, "g", "t");
    let (status, answer_type, answer) = call(
        "POST",
        &format!("{base}/assignments"),
        Some(V2),
        None,
        &json!({"partitions": [{"topic": "nope", "partition": 0}]}).to_string(),
    );
    assert_eq!(
        (status, answer["error_code"].as_i64()),
        (404, Some(40401)),
        "{answer}"
    );
    assert_eq!(answer_type, V2);
    // Other v2 errors carry v2's type too; an unknown partition and instance keep
    // their codes.
    let (status, answer_type, answer) =
        call("GET", &b.url("/topics/t/partitions/7"), None, None, "");
    assert_eq!(
        (status, answer["error_code"].as_i64()),
        (404, Some(40402)),
        "{answer}"
    );
    assert_eq!(answer_type, V2);
    let (status, answer_type, answer) = call(
        "GET",
        &b.url("/consumers/g/instances/nobody/subscription"),
        None,
        None,
        "",
    );
    assert_eq!(
        (status, answer["error_code"].as_i64()),
        (404, Some(40403)),
        "{answer}"
    );
    assert_eq!(answer_type, V2);
    let (status, answer_type, answer) =
        call("POST", &b.url("/consumers/g"), Some(V2), None, "{not json");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer_type, V2);
    let (status, answer_type, _) = call("GET", &b.url("/topics/t/partitions/zero"), None, None, "");
    assert_eq!((status, answer_type.as_str()), (400, V2));
    // v3 keeps its own type and code.
    let (status, answer_type, answer) = call("GET", &b.v3("/topics/nope"), None, None, "");
    assert_eq!(
        (status, answer["error_code"].as_i64()),
        (404, Some(40403)),
        "{answer}"
    );
    assert_eq!(answer_type, "application/json");
}

#[test]
fn the_root_answers_api_clients_with_an_empty_object_and_browsers_with_the_dashboard() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start(dir.path());
    for (accept, want_type) in [
        (Some(V2), V2),
        (Some("application/json"), "application/json"),
        (Some("*/*"), V2),
        (None, V2),
    ] {
        let (status, content_type, body) = call("GET", &b.url("/"), None, accept, "");
        assert_eq!(status, 200);
        assert_eq!(body, json!({}), "{accept:?}");
        assert_eq!(content_type, want_type, "{accept:?}");
    }
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let (status, content_type, body) = call("GET", &b.url("/"), None, Some(browser), "");
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(body
        .as_str()
        .is_some_and(|html| html.contains("<title>Troupe")));
}

#[test]
fn v2_consumer_bodies_with_unknown_fields_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 1);
    produce_strings(&b, "t", 2);
    let refused = |method: &str, url: &str, body: Value| {
        let (status, _, answer) = call(method, url, Some(V2), None, &body.to_string());
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error_code"], 40002, "{body}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|m| m.contains("unknown field")),
            "{answer}"
        );
    };
    // A misspelt setting would otherwise be a consumer with the default behaviour.
    refused(
        "POST",
        &b.url("/consumers/g"),
        json!({"name": "typo", "auto.offset.rest": "earliest"}),
    );
    let (status, _, _) = call(
        "GET",
        &b.url("/consumers/g/instances/typo/subscription"),
        None,
        None,
        "",
    );
    assert_eq!(status, 404, "no instance was created");
    // Confluent's own names and aliases are taken, the format in any case.
    let (status, _, created) = call(
        "POST",
        &b.url("/consumers/g"),
        Some(V2),
        None,
        &json!({"id": "c2", "format": "BINARY", "responseMinBytes": 1, "requestWaitMs": 100,
                "auto.commit.enable": "false"})
        .to_string(),
    );
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["instance_id"], "c2");

    let base = assigned_consumer(&b, "g", "t");
    assert_eq!(poll_offsets(&base), vec![0, 1]);
    refused(
        "POST",
        &format!("{base}/subscription"),
        json!({"topics": ["t"], "topic_patern": "x"}),
    );
    refused(
        "POST",
        &format!("{base}/assignments"),
        json!({"partitions": [{"topic": "t", "partiton": 0}]}),
    );
    refused(
        "POST",
        &format!("{base}/offsets"),
        json!({"offsets": [{"topic": "t", "partition": 0, "offest": 1}]}),
    );
    refused(
        "POST",
        &format!("{base}/offsets"),
        json!({"offsets": [{"topic": "t", "partition": 0, "offset": 1}], "async": true}),
    );
    refused(
        "GET",
        &format!("{base}/offsets"),
        json!({"partitions": [{"topic": "t", "partition": 0}], "extra": 1}),
    );
    refused(
        "POST",
        &format!("{base}/positions"),
        json!({"offset": [{"topic": "t", "partition": 0, "offset": 0}]}),
    );
    refused(
        "POST",
        &format!("{base}/positions"),
        json!({"timestamps": [{"topic": "t", "partition": 0, "timestamp": 0, "x": 1}]}),
    );
    refused(
        "POST",
        &format!("{base}/positions/beginning"),
        json!({"partitions": [{"topic": "t", "partition": 0}], "all": true}),
    );
    // Nothing was committed, and the position did not move.
    let (status, _, committed) = call(
        "GET",
        &format!("{base}/offsets"),
        Some(V2),
        None,
        &json!({"partitions": [{"topic": "t", "partition": 0}]}).to_string(),
    );
    assert_eq!(status, 200, "{committed}");
    assert_eq!(committed["offsets"], json!([]), "{committed}");
    produce_strings(&b, "t", 1);
    assert_eq!(poll_offsets(&base), vec![2]);
}
