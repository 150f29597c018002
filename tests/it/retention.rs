//! Retention through the running broker: old segments of a topic with a short
//! `retention.ms` disappear on the broker's own schedule, reads below the new log start
//! get the out-of-range error with the bounds, and `auto.offset.reset` recovers.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::broker::*;

#[test]
fn old_segments_expire_and_reads_can_reset() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start_with(
        dir.path(),
        &[
            "log.retention.check.interval.ms=100",
            "log.segment.delete.delay.ms=0",
        ],
    );
    let (status, body) = post_json(
        &b.v3("/topics"),
        &json!({"topic_name": "short", "partitions_count": 1,
                "configs": [{"name": "segment.bytes", "value": "1024"}, {"name": "retention.ms", "value": "60000"}]}),
    );
    assert_eq!(status, 201, "{body}");
    // Records stamped an hour ago: older than retention.ms as soon as their segment rolls.
    let old = ms_ago(3_600_000);
    for i in 0..30 {
        let (status, _) = post_json(
            &b.v3("/topics/short/records"),
            &json!({"value": {"type": "STRING", "data": format!("old-{i}-{}", "x".repeat(100))}, "timestamp": old}),
        );
        assert_eq!(status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut start = 0;
    while Instant::now() < deadline {
        start = get(&b.v3("/topics/short/partitions/0")).1["log_start_offset"]
            .as_i64()
            .unwrap();
        if start > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(start > 0, "retention advanced the log start");
    let (status, err) = get(&b.url("/topics/short/partitions/0/records?offset=0"));
    assert_eq!((status, err["error_code"].as_i64()), (416, Some(41601)));
    assert!(err["message"].as_str().unwrap().ends_with(", 30]"), "{err}");
    let (status, records) =
        get(&b.url("/topics/short/partitions/0/records?offset=0&auto.offset.reset=earliest"));
    assert_eq!(status, 200);
    // Retention may have moved on meanwhile; the reset lands on the current log start.
    assert!(records[0]["offset"].as_i64().unwrap() >= start);
    let (status, records) =
        get(&b.url("/topics/short/partitions/0/records?offset=0&auto.offset.reset=latest"));
    assert_eq!((status, records), (200, json!([])));
    // The active segment is never deleted, even though its records are old too.
    let (_, partition) = get(&b.v3("/topics/short/partitions/0"));
    assert_eq!(partition["log_end_offset"], 30);
    assert!(partition["size_bytes"].as_u64().unwrap() > 0);
}

/// Milliseconds since the epoch, `ago` milliseconds before now.
fn ms_ago(ago: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    now - ago
}

#[test]
fn the_log_cleaner_compacts_a_topic_to_its_latest_values() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start_with(
        dir.path(),
        &[
            "log.cleaner.backoff.ms=100",
            "log.retention.check.interval.ms=100",
        ],
    );
    let (status, body) = post_json(
        &b.v3("/topics"),
        &json!({"topic_name": "profiles", "partitions_count": 1, "configs": [
            {"name": "cleanup.policy", "value": "compact"},
            {"name": "segment.bytes", "value": "2048"},
            {"name": "min.cleanable.dirty.ratio", "value": "0.01"}]}),
    );
    assert_eq!(status, 201, "{body}");
    // 10 keys written 20 times each; key 3 ends with a tombstone.
    let mut latest = std::collections::BTreeMap::new();
    for round in 0..20 {
        for key in 0..10 {
            let value = if key == 3 && round == 19 {
                None
            } else {
                Some(format!("{key}@{round}"))
            };
            let record = match &value {
                Some(v) => {
                    json!({"key": {"type": "STRING", "data": format!("k{key}")}, "value": {"type": "STRING", "data": v}})
                }
                None => json!({"key": {"type": "STRING", "data": format!("k{key}")}}),
            };
            assert_eq!(post_json(&b.v3("/topics/profiles/records"), &record).0, 200);
            latest.insert(format!("k{key}"), value);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut partition = json!(null);
    while Instant::now() < deadline {
        partition = get(&b.v3("/topics/profiles/partitions/0")).1;
        if partition["cleaner_runs"].as_u64().unwrap_or(0) > 0 && partition["dirty_bytes"] == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        partition["cleaner_runs"].as_u64().unwrap() > 0,
        "the cleaner ran: {partition}"
    );
    assert_eq!(partition["log_end_offset"], 200, "offsets never change");
    // Every key's last record is still there (the active segment is not cleaned, so a
    // key may also appear there); nothing older than a key's latest sealed record.
    let records = read_partition(&b, "profiles", 0);
    assert!(
        records.len() < 200,
        "compaction removed records ({} left)",
        records.len()
    );
    let mut seen = std::collections::BTreeMap::new();
    for (offset, key, value) in &records {
        let key = key.clone().unwrap();
        assert!(
            seen.get(&key).is_none_or(|(o, _)| o < offset),
            "offset order kept"
        );
        seen.insert(key, (*offset, value.clone()));
    }
    for (key, value) in &latest {
        assert_eq!(
            seen.get(key).map(|(_, v)| v.clone()),
            Some(value.clone()),
            "latest value of {key}"
        );
    }
    let metrics = b.metrics();
    assert!(
        metrics.contains("troupe_partition_clean_bytes{topic=\"profiles\",partition=\"0\"}"),
        "{metrics}"
    );
    assert!(metrics
        .lines()
        .any(|l| l.starts_with("troupe_cleaner_runs_total ") && !l.ends_with(" 0")));
}
