//! Edge cases of append, read and lookup at the boundaries of the log and its segments.

use std::sync::Arc;

use troupe_actors::clock::ManualClock;
use troupe_actors::storage::{Log, LogConfig, LogError, Record, RecordBatch, TimestampType};

use crate::common::{read_all, record, small_config};

fn out_of_range(result: Result<impl std::fmt::Debug, LogError>) -> (i64, i64, i64) {
    match result {
        Err(LogError::OffsetOutOfRange {
            requested,
            log_start_offset,
            log_end_offset,
        }) => (requested, log_start_offset, log_end_offset),
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
}

#[test]
fn empty_log_has_no_records_and_clear_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    let fetched = log.read(0, 1024).unwrap();
    assert!(fetched.bytes.is_empty());
    assert_eq!(out_of_range(log.read(1, 1024)), (1, 0, 0));
    assert_eq!(out_of_range(log.read(-1, 1024)), (-1, 0, 0));
    assert_eq!(log.offset_for_timestamp(0).unwrap(), None);
    assert_eq!(log.segments().len(), 1);
    assert!(dir.path().join("00000000000000000000.log").exists());
    assert!(dir.path().join("00000000000000000000.index").exists());
    assert!(dir.path().join("00000000000000000000.timeindex").exists());
    log.close().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn empty_and_null_keys_and_values_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let records = vec![
        Record {
            timestamp_ms: 1,
            key: Some(vec![]),
            value: Some(vec![]),
            headers: vec![],
        },
        Record {
            timestamp_ms: 2,
            key: None,
            value: None,
            headers: vec![],
        },
        Record {
            timestamp_ms: 3,
            key: Some(b"k".to_vec()),
            value: None,
            headers: vec![],
        },
        Record {
            timestamp_ms: 4,
            key: None,
            value: Some(b"v".to_vec()),
            headers: vec![],
        },
    ];
    log.append_records(&records, 0).unwrap();
    log.close().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let got: Vec<Record> = read_all(&log, 10).into_iter().map(|r| r.record).collect();
    assert_eq!(got, records);
}

#[test]
fn one_mib_records_respect_max_message_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let big = Record {
        timestamp_ms: 1,
        key: None,
        value: Some(vec![7u8; 1 << 20]),
        headers: vec![],
    };
    // Kafka's default max.message.bytes (1 MiB + 12) is smaller than a 1 MiB value plus
    // its batch header: refused, and nothing is written.
    match log.append_records(std::slice::from_ref(&big), 0) {
        Err(LogError::RecordBatchTooLarge {
            size_bytes,
            max_message_bytes,
        }) => {
            assert!(size_bytes > (1 << 20));
            assert_eq!(max_message_bytes, (1 << 20) + 12);
        }
        other => panic!("expected RecordBatchTooLarge, got {other:?}"),
    }
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
    log.close().unwrap();

    let config = LogConfig {
        max_message_bytes: 2 << 20,
        segment_bytes: 3 << 20,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), config.clone()).unwrap();
    for i in 0..4 {
        let info = log.append_records(std::slice::from_ref(&big), 0).unwrap();
        assert_eq!(info.base_offset, i);
    }
    // max_bytes of 1 still returns one whole batch.
    let fetched = log.read(2, 1).unwrap();
    let records = fetched.records_from(2).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].record, big);
    assert_eq!(
        log.segments().len(),
        2,
        "two 1 MiB batches per 3 MiB segment"
    );
    drop(log);
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(read_all(&log, 1).len(), 4);
}

#[test]
fn reads_and_lookups_at_and_past_both_ends() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    for i in 0..100 {
        log.append_records(&[record(1000 + i * 10, "k", &"x".repeat(50))], 0)
            .unwrap();
    }
    let end = log.log_end_offset();
    assert_eq!(end, 100);
    assert_eq!(
        log.read(0, 100).unwrap().records_from(0).unwrap()[0].offset,
        0
    );
    assert_eq!(
        log.read(end - 1, 100)
            .unwrap()
            .records_from(end - 1)
            .unwrap()
            .len(),
        1
    );
    assert!(log.read(end, 100).unwrap().bytes.is_empty());
    assert_eq!(out_of_range(log.read(end + 1, 100)), (end + 1, 0, end));
    // Timestamps: before the first, the first exactly, between two, the last, past it.
    let at = |t| {
        log.offset_for_timestamp(t)
            .unwrap()
            .map(|f| (f.offset, f.timestamp_ms))
    };
    assert_eq!(at(i64::MIN), Some((0, 1000)));
    assert_eq!(at(1000), Some((0, 1000)));
    assert_eq!(at(1001), Some((1, 1010)));
    assert_eq!(at(1990), Some((99, 1990)));
    assert_eq!(at(1991), None);
    let _ = at;
    // Delete old segments: the log start moves and reads below it are refused with bounds.
    let deleted = log.delete_oldest_segments(|s| s.next_offset <= 50).unwrap();
    assert!(!deleted.is_empty());
    let start = log.log_start_offset();
    assert_eq!(start, deleted.last().unwrap().next_offset);
    assert_eq!(
        out_of_range(log.read(start - 1, 100)),
        (start - 1, start, end)
    );
    let found = log
        .offset_for_timestamp(1000)
        .unwrap()
        .map(|f| (f.offset, f.timestamp_ms));
    assert_eq!(
        found,
        Some((start, 1000 + start * 10)),
        "lookups skip deleted data"
    );
    assert!(deleted.iter().all(|s| !dir
        .path()
        .join(format!("{:020}.log", s.base_offset))
        .exists()));
}

#[test]
fn non_monotonic_timestamps_find_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let ts = [50, 10, 40, 20, 60, 30, 60, 5];
    for t in ts {
        log.append_records(&[record(t, "k", &"y".repeat(120))], 0)
            .unwrap();
    }
    for target in 0..70 {
        let want = ts.iter().position(|t| *t >= target).map(|i| i as i64);
        assert_eq!(
            log.offset_for_timestamp(target).unwrap().map(|f| f.offset),
            want,
            "target {target}"
        );
    }
}

#[test]
fn segment_rolls_exactly_at_the_size_boundary() {
    let one = RecordBatch::encode(&[record(1, "k", "value")], TimestampType::CreateTime).unwrap();
    let batch_bytes = one.as_bytes().len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 3 * batch_bytes,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), config).unwrap();
    for _ in 0..3 {
        log.append_records(&[record(1, "k", "value")], 0).unwrap();
    }
    let segments = log.segments();
    assert_eq!(segments.len(), 1, "three batches fill the segment exactly");
    assert_eq!(segments[0].size_bytes, 3 * batch_bytes);
    log.append_records(&[record(1, "k", "value")], 0).unwrap();
    let segments = log.segments();
    assert_eq!(segments.len(), 2, "the fourth rolls");
    assert_eq!(segments[1].base_offset, 3);
    assert!(dir.path().join("00000000000000000003.log").exists());
    // A batch larger than segment.bytes still goes in, alone in its segment.
    let big = record(1, "k", &"z".repeat(4 * batch_bytes as usize));
    log.append_records(std::slice::from_ref(&big), 0).unwrap();
    log.append_records(&[record(1, "k", "value")], 0).unwrap();
    let sizes: Vec<u64> = log.segments().iter().map(|s| s.size_bytes).collect();
    assert_eq!(sizes.len(), 4);
    assert!(sizes[2] > 3 * batch_bytes);
}

#[test]
fn segment_rolls_by_age_and_by_full_index() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_at(1_000_000);
    let config = LogConfig {
        segment_ms: 60_000,
        ..LogConfig::default()
    };
    let mut log = Log::open_with_clock(dir.path(), config, Arc::new(clock.clock())).unwrap();
    log.append_records(&[record(1, "k", "v")], 0).unwrap();
    clock.advance_ms(60_000);
    log.append_records(&[record(1, "k", "v")], 0).unwrap();
    assert_eq!(
        log.segments().len(),
        1,
        "exactly segment.ms old does not roll"
    );
    clock.advance_ms(1);
    log.append_records(&[record(1, "k", "v")], 0).unwrap();
    assert_eq!(log.segments().len(), 2, "older than segment.ms rolls");

    // 24 index bytes hold 3 offset entries; with an entry for every batch after a
    // segment's first, batches 2-4 fill the index and the fifth rolls.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_index_bytes: 24,
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), config).unwrap();
    for _ in 0..4 {
        log.append_records(&[record(1, "k", "v")], 0).unwrap();
    }
    assert_eq!(log.segments().len(), 1);
    log.append_records(&[record(1, "k", "v")], 0).unwrap();
    assert_eq!(log.segments().len(), 2);
    assert_eq!(log.segments()[1].base_offset, 4);
    // Same with the time index (2 entries of 12 bytes), filled by rising timestamps.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_index_bytes: 24,
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), config).unwrap();
    for t in 0..4 {
        log.append_records(&[record(t, "k", "v")], 0).unwrap();
    }
    assert_eq!(
        log.segments().len(),
        2,
        "the time index filled after the third batch"
    );
    assert_eq!(log.segments()[1].base_offset, 3);
}

#[test]
fn log_append_time_stamps_the_broker_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_at(42_000);
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = Log::open_with_clock(dir.path(), config, Arc::new(clock.clock())).unwrap();
    let info = log
        .append_records(&[record(1, "a", "b"), record(2, "c", "d")], 0)
        .unwrap();
    assert_eq!(info.log_append_time_ms, Some(42_000));
    let records = read_all(&log, 100);
    assert!(records.iter().all(|r| r.record.timestamp_ms == 42_000));
    assert_eq!(
        log.offset_for_timestamp(42_000).unwrap().map(|f| f.offset),
        Some(0)
    );
}

#[test]
fn leader_epoch_is_stamped_on_each_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append_records(&[record(1, "a", "b")], 4).unwrap();
    log.append_records(&[record(1, "a", "b")], 5).unwrap();
    let fetched = log.read(0, 1 << 20).unwrap();
    let epochs: Vec<i32> = fetched
        .batches()
        .map(|b| b.partition_leader_epoch())
        .collect();
    assert_eq!(epochs, vec![4, 5]);
}

#[test]
fn invalid_configs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for config in [
        LogConfig {
            segment_bytes: 1 << 31,
            ..LogConfig::default()
        },
        LogConfig {
            segment_index_bytes: 4,
            ..LogConfig::default()
        },
        LogConfig {
            segment_ms: 0,
            ..LogConfig::default()
        },
    ] {
        assert!(matches!(
            Log::open(dir.path(), config),
            Err(LogError::InvalidConfig(_))
        ));
    }
}
