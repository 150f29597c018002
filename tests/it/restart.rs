//! Acknowledged records and topic metadata survive a clean restart and a kill -9.

use serde_json::json;

use crate::broker::*;

fn produce_n(b: &TestBroker, topic: &str, from: usize, n: usize) {
    let records: Vec<_> = (from..from + n)
        .map(|i| json!({"key": format!("k{i}"), "value": format!("v{i}")}))
        .collect();
    let (status, body) = send(
        "POST",
        &b.url(&format!("/topics/{topic}")),
        "application/vnd.kafka.json.v2+json",
        &json!({"records": records}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["error_code"].is_null()));
}

fn all_values(b: &TestBroker, topic: &str, partitions: i32) -> Vec<String> {
    let mut values: Vec<String> = (0..partitions)
        .flat_map(|p| read_partition(b, topic, p))
        .filter_map(|(_, _, v)| v)
        .collect();
    values.sort();
    values
}

#[test]
fn records_and_topics_survive_restart_and_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "durable", 3);
    let (status, _) = send(
        "PUT",
        &b.v3("/topics/durable/configs/retention.ms"),
        "application/json",
        r#"{"value":"123456"}"#,
    );
    assert_eq!(status, 204);
    produce_n(&b, "durable", 0, 300);
    let before = all_values(&b, "durable", 3);
    assert_eq!(before.len(), 300);
    b.stop();
    assert!(
        dir.path().join("durable-0/.clean_shutdown").exists(),
        "a clean stop leaves the marker"
    );

    let b = TestBroker::start(dir.path());
    assert_eq!(all_values(&b, "durable", 3), before);
    assert_eq!(
        get(&b.v3("/topics/durable/configs/retention.ms")).1["value"],
        "123456"
    );
    produce_n(&b, "durable", 300, 200);
    // Every one of those 500 records was acknowledged; kill -9 gives no chance to flush.
    b.kill9();
    assert!(!dir.path().join("durable-0/.clean_shutdown").exists());

    let b = TestBroker::start(dir.path());
    let after = all_values(&b, "durable", 3);
    assert_eq!(after.len(), 500);
    let mut want: Vec<String> = (0..500).map(|i| format!("\"v{i}\"")).collect();
    want.sort();
    assert_eq!(after, want);
    // Offsets continue where they were.
    let (_, r) = post_json(
        &b.v3("/topics/durable/records"),
        &json!({"partition_id": 0, "value": {"type": "STRING", "data": "next"}}),
    );
    let (_, offsets) = get(&b.url("/topics/durable/partitions/0/offsets"));
    assert_eq!(
        r["offset"].as_i64().unwrap() + 1,
        offsets["end_offset"].as_i64().unwrap()
    );
    b.stop();
}

#[test]
fn a_deleted_topic_stays_deleted_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "gone", 1);
    create_topic(&b, "kept", 1);
    produce_n(&b, "gone", 0, 5);
    assert_eq!(delete(&b.v3("/topics/gone")).0, 204);
    b.kill9();
    let b = TestBroker::start(dir.path());
    assert_eq!(get(&b.url("/topics")).1, json!(["kept"]));
    // Re-creating it starts empty.
    create_topic(&b, "gone", 1);
    assert!(read_partition(&b, "gone", 0).is_empty());
}

/// A data dir written by the single-node versions before the metadata log
/// (`topics.json` format 2, listing the topics) opens with no step: its topics move
/// into the metadata log with their ids, configs and records, and `topics.json`
/// keeps only the identity from then on.
#[test]
fn a_data_dir_from_before_the_metadata_log_opens_with_its_topics() {
    use troupe_actors::storage::{Log, LogConfig, Record};
    let dir = tempfile::tempdir().unwrap();
    let topic_id = "AAAAAAAAAAAAAAAAAAAAAQ";
    std::fs::write(
        dir.path().join("topics.json"),
        json!({
            "version": 2,
            "cluster_id": "legacy-cluster-id",
            "node_id": 1,
            "topics": [{"name": "old", "topic_id": topic_id, "partitions": 2,
                        "replication_factor": 1, "configs": {"retention.ms": "123456"}}]
        })
        .to_string(),
    )
    .unwrap();
    let mut log = Log::open(dir.path().join("old-1"), LogConfig::default()).unwrap();
    for value in ["a", "b"] {
        let record = Record {
            timestamp_ms: 1,
            key: None,
            value: Some(value.as_bytes().to_vec()),
            headers: vec![],
        };
        log.append_records(&[record], 0).unwrap();
    }
    log.close().unwrap();

    let b = TestBroker::start(dir.path());
    assert_eq!(b.cluster_id(), "legacy-cluster-id");
    let (status, topic) = get(&b.v3("/topics/old"));
    assert_eq!(status, 200, "{topic}");
    assert_eq!(topic["partitions_count"], 2);
    let (_, config) = get(&b.v3("/topics/old/configs/retention.ms"));
    assert_eq!(config["value"], "123456");
    let values: Vec<_> = read_partition(&b, "old", 1)
        .into_iter()
        .filter_map(|(_, _, v)| v)
        .collect();
    assert_eq!(values, ["a", "b"]);
    let identity: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("topics.json")).unwrap()).unwrap();
    assert_eq!(identity["version"], 3);
    assert_eq!(identity["topics"], json!([]));
    assert!(dir.path().join("__cluster_metadata-0").is_dir());

    // And it stays so across a restart, writes landing after the moved records.
    produce_n(&b, "old", 0, 1);
    b.stop();
    let b = TestBroker::start(dir.path());
    assert_eq!(all_values(&b, "old", 2).len(), 3);
}
