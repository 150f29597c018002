//! Retention against real logs: by time and by size exactly the expected segments go,
//! the active segment survives even when older than retention, and a crash in the
//! middle of a deletion leaves a valid log.

use troupe_actors::storage::{segments_to_delete, Log, LogConfig, RetentionPolicy};

use crate::common::{read_all, record};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 400,
        ..LogConfig::default()
    }
}

/// A log whose segment i holds records with timestamps 1000 * i.
fn aged_log(dir: &std::path::Path) -> Log {
    let mut log = Log::open(dir, config()).unwrap();
    for i in 0..10 {
        for _ in 0..3 {
            log.append_records(&[record(1000 * i, "k", &"v".repeat(100))], 0)
                .unwrap();
        }
        log.roll().unwrap();
    }
    log.append_records(&[record(0, "k", "in the active segment, very old")], 0)
        .unwrap();
    log
}

#[test]
fn time_retention_deletes_exactly_the_expired_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = aged_log(dir.path());
    let segments = log.segments();
    assert!(segments.len() >= 11);
    let policy = RetentionPolicy {
        retention_ms: Some(5_500),
        retention_bytes: None,
    };
    // At t = 10_000, segments with newest record < 4_500 are expired: timestamps 0..4000.
    let (count, _) = segments_to_delete(&segments, 10_000, policy);
    let expired: Vec<i64> = segments
        .iter()
        .filter(|s| !s.is_active && s.max_timestamp_ms.unwrap() < 4_500)
        .map(|s| s.base_offset)
        .collect();
    assert_eq!(count, expired.len());
    let mut taken = 0;
    let deleted = log
        .delete_oldest_segments(|_| {
            taken += 1;
            taken <= count
        })
        .unwrap();
    assert_eq!(
        deleted.iter().map(|s| s.base_offset).collect::<Vec<_>>(),
        expired
    );
    assert_eq!(log.log_start_offset(), segments[count].base_offset);
    // Far in the future everything but the active segment goes; the active one stays.
    let (count, _) = segments_to_delete(&log.segments(), i64::MAX / 2, policy);
    let mut taken = 0;
    log.delete_oldest_segments(|_| {
        taken += 1;
        taken <= count
    })
    .unwrap();
    let left = log.segments();
    assert_eq!(left.len(), 1);
    assert!(left[0].is_active);
    assert_eq!(read_all(&log, 1000).len(), 1);
}

#[test]
fn size_retention_keeps_at_least_retention_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = aged_log(dir.path());
    let total = log.size_bytes();
    let policy = RetentionPolicy {
        retention_ms: None,
        retention_bytes: Some(total / 2),
    };
    let (count, _) = segments_to_delete(&log.segments(), 0, policy);
    let mut taken = 0;
    log.delete_oldest_segments(|_| {
        taken += 1;
        taken <= count
    })
    .unwrap();
    let size = log.size_bytes();
    assert!(size >= total / 2, "kept at least retention.bytes");
    let oldest = log.segments()[0].size_bytes;
    assert!(
        size - oldest < total / 2,
        "deleting one more would go below retention.bytes"
    );
}

#[test]
fn a_crash_after_retiring_segments_recovers_a_valid_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = aged_log(dir.path());
    let all = read_all(&log, 10_000);
    let mut taken = 0;
    let (deleted, files) = log
        .retire_oldest_segments(|_| {
            taken += 1;
            taken <= 3
        })
        .unwrap();
    assert_eq!(deleted.len(), 3);
    assert!(files.iter().all(|f| f.exists()));
    let start = log.log_start_offset();
    drop(log); // crash before the delayed removal
    let log = Log::open(dir.path(), config()).unwrap();
    assert!(
        files.iter().all(|f| !f.exists()),
        "open removes *.deleted leftovers"
    );
    assert_eq!(log.log_start_offset(), start);
    let expected: Vec<_> = all.into_iter().filter(|r| r.offset >= start).collect();
    assert_eq!(read_all(&log, 10_000), expected);
}
