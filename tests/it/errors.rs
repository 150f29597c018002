//! Every error path returns its status and Confluent-style code, changes nothing, and
//! leaves the broker serving.

use serde_json::json;

use crate::broker::*;

/// A v3 produce answers HTTP 200 and reports a refused record in band.
fn assert_in_band(answer: (u16, serde_json::Value), code: i64) {
    assert_error(answer, 200, code);
}

fn assert_error(answer: (u16, serde_json::Value), status: u16, code: i64) {
    let (got_status, body) = answer;
    assert_eq!(got_status, status, "{body}");
    assert_eq!(body["error_code"].as_i64(), Some(code), "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[test]
fn bad_requests_get_precise_errors_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "safe", 2);
    let (status, _) = post_json(
        &b.v3("/topics/safe/records"),
        &json!({"partition_id": 0, "value": {"type": "STRING", "data": "keep me"}}),
    );
    assert_eq!(status, 200);

    // Unknown topic / partition / cluster.
    assert_error(get(&b.v3("/topics/nope")), 404, 40403);
    assert_error(
        post_json(
            &b.v3("/topics/nope/records"),
            &json!({"value": {"type": "STRING", "data": "x"}}),
        ),
        404,
        40403,
    );
    assert_error(
        send(
            "POST",
            &b.url("/topics/nope"),
            "application/vnd.kafka.binary.v2+json",
            r#"{"records":[{"value":"eA=="}]}"#,
        ),
        404,
        40401,
    );
    assert_error(get(&b.v3("/topics/safe/partitions/7")), 404, 40402);
    assert_in_band(
        post_json(
            &b.v3("/topics/safe/records"),
            &json!({"partition_id": 9, "value": {"type": "STRING", "data": "x"}}),
        ),
        40402,
    );
    assert_error(
        send(
            "POST",
            &b.url("/topics/safe/partitions/9"),
            "application/vnd.kafka.binary.v2+json",
            r#"{"records":[{"value":"eA=="}]}"#,
        ),
        404,
        40402,
    );
    assert_error(
        get(&b.url("/topics/safe/partitions/5/records?offset=0")),
        404,
        40402,
    );
    assert_error(
        get(&format!(
            "http://127.0.0.1:{}/v3/clusters/not-this-one/topics",
            b.port
        )),
        404,
        404,
    );
    assert_error(get(&b.url("/no/such/route")), 404, 404);

    // Topic admin.
    assert_error(
        post_json(&b.v3("/topics"), &json!({"topic_name": "safe"})),
        409,
        40901,
    );
    for bad in ["", "..", "has space", "bad/slash", &"x".repeat(250)] {
        assert_error(
            post_json(&b.v3("/topics"), &json!({"topic_name": bad})),
            400,
            40002,
        );
    }
    let (status, body) = post_json(
        &b.v3("/topics"),
        &json!({"topic_name": "rf", "replication_factor": 3}),
    );
    assert_eq!((status, body["error_code"].as_i64()), (400, Some(40002)));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("replication factor"),
        "{body}"
    );
    assert_error(
        post_json(
            &b.v3("/topics"),
            &json!({"topic_name": "p0", "partitions_count": 0}),
        ),
        400,
        40002,
    );
    assert_error(
        post_json(
            &b.v3("/topics"),
            &json!({"topic_name": "cfg", "configs": [{"name": "retention.ms", "value": "soon"}]}),
        ),
        400,
        40002,
    );
    assert_error(
        post_json(
            &b.v3("/topics"),
            &json!({"topic_name": "cfg", "configs": [{"name": "no.such.config", "value": "1"}]}),
        ),
        400,
        40002,
    );
    assert_error(
        send(
            "PATCH",
            &b.v3("/topics/safe"),
            "application/json",
            r#"{"partitions_count":1}"#,
        ),
        400,
        40002,
    );
    assert_error(
        send(
            "PUT",
            &b.v3("/topics/safe/configs/segment.bytes"),
            "application/json",
            r#"{"value":"-5"}"#,
        ),
        400,
        40002,
    );
    assert_error(get(&b.v3("/topics/safe/configs/no.such")), 404, 404);

    // Malformed and invalid bodies.
    assert_error(
        send("POST", &b.v3("/topics"), "application/json", "{not json"),
        400,
        400,
    );
    assert_error(
        send(
            "POST",
            &b.v3("/topics/safe/records"),
            "application/json",
            r#"{"value": {"type": "STRING", "data": "x""#,
        ),
        400,
        400,
    );
    assert_in_band(
        post_json(
            &b.v3("/topics/safe/records"),
            &json!({"key": {"data": "no type"}}),
        ),
        400,
    );
    assert_in_band(
        post_json(
            &b.v3("/topics/safe/records"),
            &json!({"key": {"type": "AVRO", "data": "x"}}),
        ),
        400,
    );
    assert_in_band(
        post_json(
            &b.v3("/topics/safe/records"),
            &json!({"value": {"type": "BINARY", "data": "***"}}),
        ),
        400,
    );
    assert_in_band(
        post_json(
            &b.v3("/topics/safe/records"),
            &json!({"value": {"type": "STRING", "data": 5}}),
        ),
        400,
    );
    assert_error(
        send(
            "POST",
            &b.url("/topics/safe"),
            "application/vnd.kafka.binary.v2+json",
            r#"{"records":[{"value":"%%%"}]}"#,
        ),
        422,
        42202,
    );
    assert_error(
        send(
            "POST",
            &b.url("/topics/safe"),
            "application/vnd.kafka.binary.v2+json",
            r#"{"records":[{"key":"%%%","value":"eA=="}]}"#,
        ),
        422,
        42201,
    );
    assert_error(
        send(
            "POST",
            &b.url("/topics/safe"),
            "application/vnd.kafka.binary.v2+json",
            r#"{"records":[]}"#,
        ),
        422,
        42206,
    );
    assert_error(
        send(
            "POST",
            &b.url("/topics/safe"),
            "text/plain",
            r#"{"records":[{"value":"eA=="}]}"#,
        ),
        415,
        41501,
    );
    assert_error(
        get_accept(
            &b.url("/topics/safe/partitions/0/records?offset=0"),
            "application/xml",
        ),
        406,
        40601,
    );

    // Oversized: a record above max.message.bytes is refused whole (v3 and v2).
    let big = "x".repeat(1_100_000);
    assert_in_band(
        post_json(
            &b.v3("/topics/safe/records"),
            &json!({"partition_id": 0, "value": {"type": "STRING", "data": big}}),
        ),
        41301,
    );
    let big_b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        vec![b'y'; 1_100_000],
    );
    assert_error(
        send(
            "POST",
            &b.url("/topics/safe/partitions/0"),
            "application/vnd.kafka.binary.v2+json",
            &json!({"records": [{"value": big_b64}]}).to_string(),
        ),
        413,
        41301,
    );
    assert_error(
        send(
            "POST",
            &b.v3("/topics/safe/records"),
            "application/json",
            &"x".repeat(40 * 1024 * 1024),
        ),
        413,
        41301,
    );

    // A v2 request with one oversized record among small ones is refused whole.
    let mixed = json!({"records": [{"value": "c21hbGw="}, {"value": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, vec![b'z'; 1_100_000])}]});
    assert_error(
        send(
            "POST",
            &b.url("/topics/safe/partitions/0"),
            "application/vnd.kafka.binary.v2+json",
            &mixed.to_string(),
        ),
        413,
        41301,
    );

    // Offsets out of range carry the bounds; bad offsets are 400.
    let (status, body) = get(&b.url("/topics/safe/partitions/0/records?offset=99"));
    assert_eq!((status, body["error_code"].as_i64()), (416, Some(41601)));
    assert!(
        body["message"].as_str().unwrap().contains("[0, 1]"),
        "{body}"
    );
    assert_error(
        get(&b.url("/topics/safe/partitions/0/records?offset=-1")),
        400,
        40002,
    );
    assert_error(
        get(&b.url("/topics/safe/partitions/0/records?offset=soon")),
        400,
        40002,
    );
    assert_error(get(&b.url("/topics/safe/partitions/0/records")), 400, 40002);
    assert_error(
        get(&b.url("/topics/safe/partitions/0/records?offset=0&timeout=x")),
        400,
        40002,
    );

    // Nothing was written by any of that, and the broker still serves.
    let records = read_partition(&b, "safe", 0);
    assert_eq!(records, vec![(0, None, Some("keep me".to_string()))]);
    assert!(read_partition(&b, "safe", 1).is_empty());
    assert_eq!(get(&b.url("/topics")).1, json!(["safe"]));
    assert_eq!(
        post_json(
            &b.v3("/topics/safe/records"),
            &json!({"partition_id": 0, "value": {"type": "STRING", "data": "still ok"}})
        )
        .1["offset"],
        1
    );
}
