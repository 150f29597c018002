//! A bit flipped in a sealed segment while the broker is stopped: after a restart the
//! direct partition read serves the records before the damaged batch, refuses a read
//! inside it with 500 / 50004 naming it, serves the records after it, and
//! `/metrics` counts it.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::broker::*;

/// The directory of `topic`-`partition` under the broker's data directory.
fn partition_dir(root: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(root).ok()?.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
        if let Some(found) = partition_dir(&path, name) {
            return Some(found);
        }
    }
    None
}

/// Byte positions of the batches in a `.log` file (each batch's length is at 8..12).
fn batch_positions(bytes: &[u8]) -> Vec<usize> {
    let mut positions = Vec::new();
    let mut at = 0;
    while at + 12 <= bytes.len() {
        positions.push(at);
        let length =
            i32::from_be_bytes([bytes[at + 8], bytes[at + 9], bytes[at + 10], bytes[at + 11]]);
        at += 12 + length as usize;
    }
    positions
}

fn read_at(b: &TestBroker, offset: i64) -> (u16, serde_json::Value) {
    get_accept(
        &b.url(&format!(
            "/topics/damaged/partitions/0/records?offset={offset}"
        )),
        "application/vnd.kafka.json.v2+json",
    )
}

/// A topic `damaged` of 30 one-record batches in 1 KiB segments, written and closed,
/// with a bit flipped in offset 2's record; returns the first segment's batch positions.
fn damaged_topic(dir: &Path) -> Vec<usize> {
    let b = TestBroker::start(dir);
    let (status, body) = post_json(
        &b.v3("/topics"),
        &json!({"topic_name": "damaged", "partitions_count": 1,
                "configs": [{"name": "segment.bytes", "value": "1024"}]}),
    );
    assert_eq!(status, 201, "{body}");
    // One record per request: one batch per offset.
    for i in 0..30 {
        let (status, body) = send(
            "POST",
            &b.url("/topics/damaged"),
            "application/vnd.kafka.json.v2+json",
            &json!({"records": [{"value": format!("value {i} {}", "x".repeat(80))}]}).to_string(),
        );
        assert_eq!(status, 200, "{body}");
    }
    b.stop();

    let partition = partition_dir(dir, "damaged-0").expect("the partition's directory");
    let segment = partition.join("00000000000000000000.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    let positions = batch_positions(&bytes);
    assert!(
        positions.len() >= 4,
        "the first segment holds several batches"
    );
    assert!(
        partition
            .join(format!("{:020}.log", positions.len()))
            .exists(),
        "the first segment is sealed"
    );
    // Offset 2's batch: a bit in its record's value.
    bytes[positions[3] - 10] ^= 0x04;
    std::fs::write(&segment, &bytes).unwrap();
    positions
}

#[test]
fn a_flipped_bit_in_a_sealed_segment_is_refused_precisely_and_read_around() {
    let dir = tempfile::tempdir().unwrap();
    let positions = damaged_topic(dir.path());
    let b = TestBroker::start(dir.path());
    // Before: the good records, and nothing from the damaged batch.
    let (status, body) = read_at(&b, 0);
    assert_eq!(status, 200, "{body}");
    let offsets: Vec<i64> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, vec![0, 1]);
    // At: refused, naming what is damaged and where.
    let (status, body) = read_at(&b, 2);
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error_code"], 50004, "{body}");
    let message = body["message"].as_str().unwrap();
    for part in [
        "damaged-0",
        "offsets 2 to 2",
        "00000000000000000000.log",
        &format!("at byte {}", positions[2]),
        "offsets from 3 on",
    ] {
        assert!(message.contains(part), "{message} should name {part}");
    }
    // After: readable, to the end.
    let (status, body) = read_at(&b, 3);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["offset"], 3);
    assert_eq!(body[0]["value"], format!("value 3 {}", "x".repeat(80)));
    let (status, body) = read_at(&b, 29);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["offset"], 29);
    // Counted once, however often read.
    let metrics = b.metrics();
    assert!(
        metrics.contains(
            "troupe_partition_corrupt_batches_total{topic=\"damaged\",partition=\"0\"} 1"
        ),
        "{metrics}"
    );
    b.stop();
}

/// The `troupe_cleaner_failures_total` value in a `/metrics` scrape.
fn cleaner_failures(b: &TestBroker) -> u64 {
    let metrics = b.metrics();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("troupe_cleaner_failures_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn the_cleaner_fails_once_on_a_corrupt_partition_and_passes_it_over() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let (status, body) = post_json(
        &b.v3("/topics"),
        &json!({"topic_name": "damaged", "partitions_count": 1,
                "configs": [{"name": "segment.bytes", "value": "1024"},
                            {"name": "cleanup.policy", "value": "compact"}]}),
    );
    assert_eq!(status, 201, "{body}");
    for i in 0..30 {
        let (status, body) = send(
            "POST",
            &b.url("/topics/damaged"),
            "application/vnd.kafka.json.v2+json",
            &json!({"records": [{"key": format!("k{}", i % 3), "value": format!("value {i} {}", "x".repeat(80))}]}).to_string(),
        );
        assert_eq!(status, 200, "{body}");
    }
    b.stop();
    let partition = partition_dir(dir.path(), "damaged-0").expect("the partition's directory");
    let segment = partition.join("00000000000000000000.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    let positions = batch_positions(&bytes);
    bytes[positions[2] - 10] ^= 0x04;
    std::fs::write(&segment, &bytes).unwrap();

    let b = TestBroker::start_with(dir.path(), &["log.cleaner.backoff.ms=50"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while cleaner_failures(&b) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the cleaner never met the damage"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Twelve more rounds: the partition is passed over, not re-read and re-reported.
    let watch_until = std::time::Instant::now() + std::time::Duration::from_millis(600);
    while std::time::Instant::now() < watch_until {
        assert_eq!(
            cleaner_failures(&b),
            1,
            "the failed partition was retried at once"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Nothing was lost or served damaged meanwhile.
    let (status, body) = read_at(&b, 3);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["offset"], 3);
    b.stop();
}

#[test]
fn a_websocket_subscription_is_told_of_the_damage_and_carries_on_after_it() {
    use crate::ws::{Incoming, WsClient};
    let dir = tempfile::tempdir().unwrap();
    damaged_topic(dir.path());
    let b = TestBroker::start(dir.path());
    let mut c = WsClient::connect(&b);
    c.send(json!({"type": "subscribe", "sub": "s", "topic": "damaged", "from": "beginning"}));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut offsets = Vec::new();
    let mut errors = Vec::new();
    while offsets.last() != Some(&29) {
        match c.next(deadline) {
            Some(Incoming::Json(v)) if v["type"] == "records" => {
                for r in v["records"].as_array().unwrap() {
                    assert_eq!(
                        r["value"],
                        format!("value {} {}", r["offset"], "x".repeat(80)),
                        "a damaged record was sent"
                    );
                    offsets.push(r["offset"].as_i64().unwrap());
                }
            }
            Some(Incoming::Json(v)) if v["type"] == "error" => errors.push(v),
            Some(Incoming::Json(_)) => {}
            Some(Incoming::Binary(_)) => panic!("unexpected binary frame"),
            Some(Incoming::Closed(code)) => panic!("closed ({code:?}) after {offsets:?}"),
            None => panic!("only {offsets:?} by the deadline, errors {errors:?}"),
        }
    }
    let expected: Vec<i64> = (0..30).filter(|o| *o != 2).collect();
    assert_eq!(offsets, expected);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["error_code"], 50004);
    assert_eq!(errors[0]["sub"], "s");
    assert_eq!(errors[0]["partition"], 0);
    assert_eq!(errors[0]["position"], 3);
    b.stop();
}
