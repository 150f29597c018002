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
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains(&format!("[{start}, 30]")),
        "{err}"
    );
    let (status, records) =
        get(&b.url("/topics/short/partitions/0/records?offset=0&auto.offset.reset=earliest"));
    assert_eq!(status, 200);
    assert_eq!(records[0]["offset"].as_i64(), Some(start));
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
