//! Confluent REST Proxy v3 fidelity of the real binary: every link the API hands
//! out resolves, answers match Confluent's published schema, request bodies are
//! parsed strictly (unknown fields, empty bodies, duplicate configs, unknown config
//! names, internal topic names, out-of-range timestamps), topic creation takes
//! `replicas_assignments` and `compression.type`, and consumer groups carry their
//! type, lag summary and sorted lags as Confluent's do.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::broker::*;
use crate::openapi::assert_v3_answer;

const V2: &str = "application/vnd.kafka.v2+json";

/// GET, checked against the schema.
fn get_checked(url: &str) -> (u16, Value) {
    let (status, body) = get(url);
    assert_v3_answer(&format!("GET {url}"), status, &body);
    (status, body)
}

/// A request with a JSON body (as text, so bodies can be malformed or empty),
/// checked against the schema.
fn send_checked(method: &str, url: &str, body: &str) -> (u16, Value) {
    let (status, answer) = send(method, url, "application/json", body);
    assert_v3_answer(&format!("{method} {url} {body}"), status, &answer);
    (status, answer)
}

fn assert_error(answer: &(u16, Value), status: u16, code: i64, mentions: &str) {
    let (got, body) = answer;
    assert_eq!(
        (*got, body["error_code"].as_i64()),
        (status, Some(code)),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains(mentions)),
        "the message should mention {mentions:?}: {body}"
    );
}

/// Starts a v2 consumer instance in `group` subscribed to `topics`, and waits (up
/// to 20 s) until the v3 API shows it as a member holding `partitions` partitions.
/// Answers the instance's base URI and its member id.
fn join_group(
    b: &TestBroker,
    group: &str,
    name: &str,
    topics: &[&str],
    partitions: usize,
) -> (String, String) {
    let (status, created) = send(
        "POST",
        &b.url(&format!("/consumers/{group}")),
        V2,
        &json!({"name": name, "format": "binary", "auto.offset.reset": "earliest"}).to_string(),
    );
    assert_eq!(status, 200, "{created}");
    let base = created["base_uri"].as_str().expect("base_uri").to_string();
    let (status, body) = send(
        "POST",
        &format!("{base}/subscription"),
        V2,
        &json!({ "topics": topics }).to_string(),
    );
    assert_eq!(status, 204, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, members) = get(&b.v3(&format!("/consumer-groups/{group}/consumers")));
        if let Some(id) = members["data"][0]["consumer_id"].as_str() {
            let (status, assigned) = get(&b.v3(&format!(
                "/consumer-groups/{group}/consumers/{id}/assignments"
            )));
            if status == 200 && assigned["data"].as_array().map(Vec::len) == Some(partitions) {
                return (base, id.to_string());
            }
        }
        assert!(
            Instant::now() < deadline,
            "the member never got its partitions"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every `related` link and `metadata.self` / `metadata.next` URL in a v3 answer.
fn links(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(obj) => {
            for (key, value) in obj {
                match (key.as_str(), value) {
                    ("related" | "self" | "next", Value::String(url)) => out.push(url.clone()),
                    _ => links(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| links(i, out)),
        _ => {}
    }
}

#[test]
fn every_link_the_v3_api_hands_out_answers_200_and_matches_confluents_schema() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "orders", 3);
    for p in 0..3 {
        produce_v3(
            &b,
            "orders",
            &[json!({"partition_id": p, "value": {"type": "STRING", "data": "x"}})],
        );
    }
    // A live member that has committed on every partition it holds, so the lags,
    // the lag summary and its max-lag consumer all exist.
    let (base, member) = join_group(&b, "billing", "c1", &["orders"], 3);
    let offsets: Vec<Value> = (0..3)
        .map(|p| json!({"topic": "orders", "partition": p, "offset": 0}))
        .collect();
    let (status, body) = send(
        "POST",
        &format!("{base}/offsets"),
        V2,
        &json!({ "offsets": offsets }).to_string(),
    );
    assert_eq!(status, 200, "{body}");

    let start = b.url("/v3/clusters");
    let mut queue = VecDeque::from([start.clone()]);
    let mut seen = BTreeSet::from([start]);
    while let Some(url) = queue.pop_front() {
        let (status, body) = get_checked(&url);
        assert_eq!(status, 200, "GET {url} (a link the API handed out): {body}");
        // A resource is where its own `self` says it is.
        let own = body["metadata"]["self"].as_str().unwrap_or_default();
        assert_eq!(own, url.split('?').next().unwrap_or_default(), "{body}");
        let mut found = Vec::new();
        links(&body, &mut found);
        for link in found {
            assert!(link.starts_with(&b.url("/v3/")), "{link} in {url}");
            if seen.insert(link.clone()) {
                queue.push_back(link);
            }
        }
        assert!(seen.len() < 5_000, "the crawl does not end: {seen:?}");
    }

    let c = b.v3("");
    let node = 1;
    for must in [
        format!("{c}/acls"),
        format!("{c}/broker-configs"),
        format!("{c}/brokers/{node}/configs"),
        format!("{c}/brokers/{node}/configs/log.retention.ms"),
        format!("{c}/brokers/{node}/partition-replicas"),
        format!("{c}/topics/-/partitions/-/reassignment"),
        format!("{c}/topics/orders/partitions/-/reassignment"),
        format!("{c}/topics/orders/partitions/2/reassignment"),
        format!("{c}/topics/orders/partitions/2/replicas/{node}"),
        format!("{c}/topics/orders/configs/compression.type"),
        format!("{c}/consumer-groups/billing/lag-summary"),
        format!("{c}/consumer-groups/billing/consumers/{member}"),
        format!("{c}/consumer-groups/billing/consumers/{member}/assignments/orders/partitions/1"),
        format!("{c}/consumer-groups/billing/lags/orders/partitions/1"),
    ] {
        assert!(seen.contains(&must), "the crawl never reached {must}");
    }

    // What the new resources say.
    let (_, replica) = get_checked(&format!("{c}/topics/orders/partitions/1/replicas/{node}"));
    assert_eq!(
        (
            &replica["broker_id"],
            &replica["is_leader"],
            &replica["is_in_sync"]
        ),
        (&json!(node), &json!(true), &json!(true))
    );
    let (_, held) = get_checked(&format!("{c}/brokers/{node}/partition-replicas"));
    let held: Vec<(String, i64)> = held["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["topic_name"] == "orders")
        .map(|r| {
            (
                r["topic_name"].as_str().unwrap().to_string(),
                r["partition_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(held.len(), 3, "{held:?}");
    let (_, config) = get_checked(&format!("{c}/brokers/{node}/configs/log.retention.ms"));
    assert_eq!(
        (&config["value"], &config["source"], &config["is_default"]),
        (&json!("604800000"), &json!("DEFAULT_CONFIG"), &json!(true))
    );
    for empty in [
        "/acls",
        "/broker-configs",
        "/topics/-/partitions/-/reassignment",
    ] {
        assert_eq!(get_checked(&format!("{c}{empty}")).1["data"], json!([]));
    }
    let (_, moving) = get_checked(&format!("{c}/topics/orders/partitions/0/reassignment"));
    assert_eq!(
        (&moving["adding_replicas"], &moving["removing_replicas"]),
        (&json!([]), &json!([]))
    );
    let (_, summary) = get_checked(&format!("{c}/consumer-groups/billing/lag-summary"));
    assert_eq!(
        summary["max_lag_consumer"]["related"],
        json!(format!("{c}/consumer-groups/billing/consumers/{member}"))
    );

    // Links to things that do not exist are 404, not 200.
    for missing in [
        format!("{c}/brokers/7/configs"),
        format!("{c}/brokers/7/partition-replicas"),
        format!("{c}/brokers/{node}/configs/no.such.key"),
        format!("{c}/topics/orders/partitions/1/replicas/7"),
        format!("{c}/topics/orders/partitions/9/reassignment"),
        format!("{c}/topics/nope/partitions/-/reassignment"),
        format!("{c}/consumer-groups/billing/consumers/{member}/assignments/orders/partitions/9"),
    ] {
        let (status, body) = get_checked(&missing);
        assert_eq!(status, 404, "{missing}: {body}");
    }
}

#[test]
fn partition_offsets_and_all_topic_configs_are_confluents_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 2);
    let records: Vec<Value> = (0..4)
        .map(|_| json!({"partition_id": 1, "value": {"type": "STRING", "data": "x"}}))
        .collect();
    produce_v3(&b, "t", &records);
    for query in ["", "?offset_type=earliest_and_latest"] {
        let (status, offsets) =
            get_checked(&b.v3(&format!("/topics/t/partitions/1/offset{query}")));
        assert_eq!(status, 200, "{offsets}");
        assert_eq!(offsets["kind"], "KafkaPartitionWithOffsets");
        assert_eq!(
            (&offsets["earliest_offset"], &offsets["latest_offset"]),
            (&json!(0), &json!(4))
        );
        assert!(offsets["metadata"]["resource_name"]
            .as_str()
            .unwrap()
            .ends_with("/topic=t/partition=1/offset_type=earliest_and_latest"));
    }
    let (_, empty) = get_checked(&b.v3("/topics/t/partitions/0/offset"));
    assert_eq!(
        (&empty["earliest_offset"], &empty["latest_offset"]),
        (&json!(0), &json!(0))
    );
    // A delivery report is Confluent's ProduceResponse.
    let (status, report) = send(
        "POST",
        &b.v3("/topics/t/records"),
        "application/json",
        r#"{"partition_id": 0, "key": {"type": "STRING", "data": "k"}, "value": {"type": "JSON", "data": {"n": 1}}}"#,
    );
    assert_eq!(status, 200, "{report}");
    if let Err(e) = crate::openapi::check_produce_report("produce", &report) {
        panic!("a delivery report does not match Confluent's schema: {e}\n{report}");
    }
    let (_, one) = get_checked(&b.v3("/topics/t/partitions/0/offset"));
    assert_eq!(one["latest_offset"], 1);
    assert_error(
        &get_checked(&b.v3("/topics/t/partitions/1/offset?offset_type=latest")),
        400,
        400,
        "offset_type",
    );
    assert_error(
        &get_checked(&b.v3("/topics/t/partitions/5/offset")),
        404,
        40402,
        "5",
    );
    assert_error(
        &get_checked(&b.v3("/topics/nope/partitions/0/offset")),
        404,
        40403,
        "nope",
    );

    let (status, body) = send_checked(
        "PUT",
        &b.v3("/topics/t/configs/retention.ms"),
        r#"{"value": "5000"}"#,
    );
    assert_eq!(status, 204, "{body}");
    let (status, all) = get_checked(&b.v3("/topics/-/configs"));
    assert_eq!(status, 200, "{all}");
    let entries = all["data"].as_array().unwrap();
    let of = |topic: &str| entries.iter().filter(|e| e["topic_name"] == topic).count();
    let per_topic = of("t");
    assert!(per_topic > 10, "{all}");
    assert_eq!(of("__consumer_offsets"), per_topic);
    let retention = entries
        .iter()
        .find(|e| e["topic_name"] == "t" && e["name"] == "retention.ms")
        .unwrap();
    assert_eq!(
        (&retention["value"], &retention["source"]),
        (&json!("5000"), &json!("DYNAMIC_TOPIC_CONFIG"))
    );
}

#[test]
fn admin_bodies_refuse_unknown_fields_empty_bodies_and_unknown_or_repeated_configs() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 1);
    let retention = b.v3("/topics/t/configs/retention.ms");
    assert_eq!(
        send_checked("PUT", &retention, r#"{"value": "5000"}"#).0,
        204
    );
    let retention_now = || get_checked(&retention).1["value"].clone();

    // A misspelt field is refused and changes nothing (it used to reset the override).
    assert_error(
        &send_checked("PUT", &retention, r#"{"valu": "1000"}"#),
        400,
        40002,
        "valu",
    );
    // A PUT without a value sets nothing: resetting is DELETE's job.
    assert_error(&send_checked("PUT", &retention, "{}"), 400, 40002, "value");
    assert_error(
        &send_checked("PUT", &retention, r#"{"value": null}"#),
        400,
        40002,
        "value",
    );
    assert_eq!(retention_now(), "5000");
    // A misspelt partitions_count does not make a one-partition topic.
    assert_error(
        &send_checked(
            "POST",
            &b.v3("/topics"),
            r#"{"topic_name": "u", "partition_count": 3}"#,
        ),
        400,
        40002,
        "partition_count",
    );
    assert_eq!(get_checked(&b.v3("/topics/u")).0, 404);
    for (method, url, body, field) in [
        (
            "POST",
            b.v3("/topics"),
            r#"{"topic_name": "u", "configs": [{"name": "retention.ms", "valeu": "1"}]}"#,
            "valeu",
        ),
        (
            "POST",
            b.v3("/topics"),
            r#"{"topic_name": "u", "replicas_assignments": [{"partition": 0, "broker_ids": [1]}]}"#,
            "partition",
        ),
        (
            "PATCH",
            b.v3("/topics/t"),
            r#"{"partitions_count": 2, "partitions": 3}"#,
            "partitions",
        ),
        (
            "POST",
            b.v3("/topics/t/configs:alter"),
            r#"{"data": [{"name": "retention.ms", "value": "1", "op": "SET"}]}"#,
            "op",
        ),
        (
            "POST",
            b.v3("/topics/t/configs:alter"),
            r#"{"data": [], "validateOnly": true}"#,
            "validateOnly",
        ),
        (
            "POST",
            b.v3("/consumer-groups/g/offsets:reset"),
            r#"{"topic_name": "t", "to": "earliest", "partition": 0}"#,
            "partition",
        ),
    ] {
        assert_error(&send_checked(method, &url, body), 400, 40002, field);
    }
    assert_eq!(retention_now(), "5000");
    assert_eq!(get_checked(&b.v3("/topics/t")).1["partitions_count"], 1);

    // Empty bodies: Confluent's 422.
    for (method, url) in [
        ("POST", b.v3("/topics")),
        ("PATCH", b.v3("/topics/t")),
        ("PUT", retention.clone()),
        ("POST", b.v3("/topics/t/configs:alter")),
        ("POST", b.v3("/consumer-groups/g/offsets:reset")),
    ] {
        for empty in ["", " \n"] {
            assert_error(&send_checked(method, &url, empty), 422, 422, "empty");
        }
    }
    assert_eq!(retention_now(), "5000");

    // Unknown config names are not found; an unknown topic is reported first.
    let unknown = b.v3("/topics/t/configs/retention.msec");
    assert_error(
        &send_checked("PUT", &unknown, r#"{"value": "1"}"#),
        404,
        404,
        "retention.msec",
    );
    assert_error(
        &send_checked("DELETE", &unknown, ""),
        404,
        404,
        "retention.msec",
    );
    assert_error(&get_checked(&unknown), 404, 404, "retention.msec");
    assert_error(
        &send_checked(
            "POST",
            &b.v3("/topics/t/configs:alter"),
            r#"{"data": [{"name": "retention.ms", "value": "1"}, {"name": "nope.ms", "value": "1"}]}"#,
        ),
        404,
        404,
        "nope.ms",
    );
    assert_error(
        &send_checked(
            "PUT",
            &b.v3("/topics/gone/configs/nope.ms"),
            r#"{"value": "1"}"#,
        ),
        404,
        40403,
        "gone",
    );
    assert_eq!(retention_now(), "5000");

    // A config named twice: which would win is not the broker's to guess.
    assert_error(
        &send_checked(
            "POST",
            &b.v3("/topics/t/configs:alter"),
            r#"{"data": [{"name": "retention.ms", "value": "1"}, {"name": "retention.ms", "operation": "DELETE"}]}"#,
        ),
        400,
        40002,
        "retention.ms",
    );
    assert_eq!(retention_now(), "5000");
    assert_error(
        &send_checked(
            "POST",
            &b.v3("/topics"),
            r#"{"topic_name": "u", "configs": [{"name": "retention.ms", "value": "1"}, {"name": "retention.ms", "value": "2"}]}"#,
        ),
        400,
        40002,
        "retention.ms",
    );
    assert_eq!(get_checked(&b.v3("/topics/u")).0, 404);

    // Names Kafka reserves for its internal topics cannot be created: an internal
    // topic can never be deleted again.
    assert_error(
        &send_checked(
            "POST",
            &b.v3("/topics"),
            r#"{"topic_name": "__transaction_state"}"#,
        ),
        400,
        40002,
        "__transaction_state",
    );
    assert_eq!(get_checked(&b.v3("/topics/__transaction_state")).0, 404);

    // Reset timestamps out of range are refused, not turned into a sentinel.
    let c = join_group(&b, "g", "c", &["t"], 1).0;
    assert_eq!(delete(&c).0, 204);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&b.v3("/consumer-groups/g")).1["state"] != "EMPTY" {
        assert!(Instant::now() < deadline, "the group never emptied");
        std::thread::sleep(Duration::from_millis(20));
    }
    let reset = b.v3("/consumer-groups/g/offsets:reset");
    for t in [
        "-9223372036854775808",
        "-1",
        "9223372036854775807",
        "\"+275760-09-13T00:00:00Z\"",
    ] {
        let body = format!(r#"{{"topic_name": "t", "to": "timestamp", "timestamp": {t}}}"#);
        let answer = send("POST", &reset, "application/json", &body);
        assert_eq!(answer.0, 400, "{body}: {}", answer.1);
        assert_eq!(answer.1["error_code"].as_i64(), Some(40002), "{}", answer.1);
    }
    let ok = send(
        "POST",
        &reset,
        "application/json",
        r#"{"topic_name": "t", "to": "timestamp", "timestamp": 0}"#,
    );
    assert_eq!(ok.0, 200, "{}", ok.1);
}

#[test]
fn topics_take_replicas_assignments_and_compression_type() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let node = get_checked(&b.v3("/brokers")).1["data"][0]["broker_id"]
        .as_i64()
        .unwrap();

    // Confluent's own create-topic example.
    let (status, topic) = send_checked(
        "POST",
        &b.v3("/topics"),
        r#"{"topic_name": "topic-X", "partitions_count": 2, "replication_factor": 1,
            "configs": [{"name": "cleanup.policy", "value": "compact"},
                        {"name": "compression.type", "value": "gzip"}]}"#,
    );
    assert_eq!(status, 201, "{topic}");
    let config = |topic: &str, name: &str| {
        let (status, c) = get_checked(&b.v3(&format!("/topics/{topic}/configs/{name}")));
        assert_eq!(status, 200, "{c}");
        (
            c["value"].as_str().unwrap().to_string(),
            c["source"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(
        config("topic-X", "compression.type"),
        ("gzip".to_string(), "DYNAMIC_TOPIC_CONFIG".to_string())
    );
    // An all-or-nothing alter holding it applies whole.
    let (status, body) = send_checked(
        "POST",
        &b.v3("/topics/topic-X/configs:alter"),
        r#"{"data": [{"name": "cleanup.policy", "operation": "DELETE"},
                     {"name": "compression.type", "value": "zstd"}]}"#,
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(config("topic-X", "compression.type").0, "zstd");
    assert_eq!(config("topic-X", "cleanup.policy").0, "delete");
    assert_error(
        &send_checked(
            "PUT",
            &b.v3("/topics/topic-X/configs/compression.type"),
            r#"{"value": "brotli"}"#,
        ),
        400,
        40002,
        "brotli",
    );
    produce_v3(
        &b,
        "topic-X",
        &[json!({"value": {"type": "STRING", "data": "kept"}})],
    );

    // A manual assignment sets the partitions and the replication factor.
    let body = json!({"topic_name": "assigned", "replicas_assignments": [
        {"partition_id": 1, "broker_ids": [node]},
        {"partition_id": 0, "broker_ids": [node]},
        {"partition_id": 2, "broker_ids": [node]},
    ], "configs": [{"name": "compression.type", "value": "lz4"}]});
    let (status, topic) = send_checked("POST", &b.v3("/topics"), &body.to_string());
    assert_eq!(status, 201, "{topic}");
    assert_eq!(
        (&topic["partitions_count"], &topic["replication_factor"]),
        (&json!(3), &json!(1))
    );
    let (_, partitions) = get_checked(&b.v3("/topics/assigned/partitions"));
    assert_eq!(partitions["data"].as_array().unwrap().len(), 3);
    assert_eq!(config("assigned", "compression.type").0, "lz4");
    create_topic(&b, "plain", 1);
    assert_eq!(
        config("plain", "compression.type"),
        ("producer".to_string(), "DEFAULT_CONFIG".to_string())
    );

    // Refused as Kafka's controller refuses them; nothing is created.
    for (assignments, extra, mentions) in [
        (
            json!([{"partition_id": 0, "broker_ids": [node]}]),
            json!({"partitions_count": 1}),
            "partitions_count",
        ),
        (
            json!([{"partition_id": 0, "broker_ids": [node]}]),
            json!({"replication_factor": 1}),
            "replication_factor",
        ),
        (
            json!([{"partition_id": 0, "broker_ids": [node + 1]}]),
            json!({}),
            "broker",
        ),
        (
            json!([{"partition_id": 0, "broker_ids": [node, node]}]),
            json!({}),
            "twice",
        ),
        (
            json!([{"partition_id": 0, "broker_ids": []}]),
            json!({}),
            "no replicas",
        ),
        (
            json!([{"partition_id": 1, "broker_ids": [node]}]),
            json!({}),
            "0 to n-1",
        ),
        (
            json!([{"partition_id": 0, "broker_ids": [node]}, {"partition_id": 0, "broker_ids": [node]}]),
            json!({}),
            "0 to n-1",
        ),
    ] {
        let mut body = json!({"topic_name": "refused", "replicas_assignments": assignments});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        assert_error(
            &send_checked("POST", &b.v3("/topics"), &body.to_string()),
            400,
            40002,
            mentions,
        );
    }
    assert_eq!(get_checked(&b.v3("/topics/refused")).0, 404);
    // validate_only checks an assignment and creates nothing.
    let (status, dry) = send_checked(
        "POST",
        &b.v3("/topics"),
        &json!({"topic_name": "dry", "validate_only": true,
                "replicas_assignments": [{"partition_id": 0, "broker_ids": [node]}, {"partition_id": 1, "broker_ids": [node]}]})
        .to_string(),
    );
    assert_eq!(
        (status, &dry["partitions_count"]),
        (200, &json!(2)),
        "{dry}"
    );
    assert_eq!(get_checked(&b.v3("/topics/dry")).0, 404);

    // All of it survives a restart.
    b.stop();
    let b = TestBroker::start(dir.path());
    let (_, topic) = get_checked(&b.v3("/topics/assigned"));
    assert_eq!(topic["partitions_count"], 3);
    let (_, c) = get_checked(&b.v3("/topics/topic-X/configs/compression.type"));
    assert_eq!(c["value"], "zstd");
}

#[test]
fn consumer_groups_carry_type_lag_summary_and_sorted_lags_as_confluent() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 3);
    create_topic(&b, "a", 1);
    // Lags to be: t-0: 1, t-1: 5, t-2: 3, a-0: 5.
    for (topic, partition, count) in [("t", 0, 1), ("t", 1, 5), ("t", 2, 3), ("a", 0, 5)] {
        let records: Vec<Value> = (0..count)
            .map(|_| json!({"partition_id": partition, "value": {"type": "STRING", "data": "x"}}))
            .collect();
        produce_v3(&b, topic, &records);
    }
    let (base, member) = join_group(&b, "g", "c", &["t", "a"], 4);
    let (status, group) = get_checked(&b.v3("/consumer-groups/g"));
    assert_eq!(status, 200, "{group}");
    assert_eq!(
        (&group["type"], &group["is_mixed_consumer_group"]),
        (&json!("CLASSIC"), &json!(false))
    );
    // Nothing committed yet: no lag summary (Confluent's 404), no lags.
    let (status, body) = get_checked(&b.v3("/consumer-groups/g/lag-summary"));
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        get_checked(&b.v3("/consumer-groups/g/lags")).1["data"],
        json!([])
    );

    // Assignments by topic then partition, named as Confluent names them.
    let (_, assigned) = get_checked(&b.v3(&format!(
        "/consumer-groups/g/consumers/{member}/assignments"
    )));
    let order: Vec<(String, i64)> = assigned["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["topic_name"].as_str().unwrap().to_string(),
                a["partition_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        order,
        vec![
            ("a".into(), 0),
            ("t".into(), 0),
            ("t".into(), 1),
            ("t".into(), 2)
        ]
    );
    let crn = assigned["data"][1]["metadata"]["resource_name"]
        .as_str()
        .unwrap();
    assert!(
        crn.ends_with(&format!(
            "/consumer-group=g/consumer={member}/assignment=t/partition=0"
        )),
        "{crn}"
    );

    // Commit offset 0 everywhere (the instance resumes at 0: nothing processed).
    assert_eq!(delete(&base).0, 204);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&b.v3("/consumer-groups/g")).1["state"] != "EMPTY" {
        assert!(Instant::now() < deadline, "the group never emptied");
        std::thread::sleep(Duration::from_millis(20));
    }
    for topic in ["t", "a"] {
        let (status, body) = post_json(
            &b.v3("/consumer-groups/g/offsets:reset"),
            &json!({"topic_name": topic, "to": "earliest"}),
        );
        assert_eq!(status, 200, "{body}");
    }
    let (_, lags) = get_checked(&b.v3("/consumer-groups/g/lags"));
    let order: Vec<(String, i64, i64)> = lags["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["topic_name"].as_str().unwrap().to_string(),
                l["partition_id"].as_i64().unwrap(),
                l["lag"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        order,
        vec![
            ("a".into(), 0, 5),
            ("t".into(), 1, 5),
            ("t".into(), 2, 3),
            ("t".into(), 0, 1)
        ]
    );
    let crn = lags["data"][1]["metadata"]["resource_name"]
        .as_str()
        .unwrap();
    assert!(
        crn.ends_with("/consumer-group=g/lag=t/partition=1"),
        "{crn}"
    );

    let (status, summary) = get_checked(&b.v3("/consumer-groups/g/lag-summary"));
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        (
            &summary["max_lag"],
            &summary["total_lag"],
            &summary["max_lag_topic_name"],
            &summary["max_lag_partition_id"]
        ),
        (&json!(5), &json!(14), &json!("a"), &json!(0))
    );
    // No member owns it now: the link names the group's consumers, and resolves.
    let owner = summary["max_lag_consumer"]["related"].as_str().unwrap();
    assert_eq!(get_checked(owner).0, 200, "{owner}");
    let partition = summary["max_lag_partition"]["related"].as_str().unwrap();
    assert_eq!(get_checked(partition).1["topic_name"], "a");
}
