//! Crash tests: damage the files the way a crash or a bad disk would — cut the active
//! segment at any byte, flip any byte, delete index files — and check that reopening
//! keeps exactly the longest valid prefix, never hands out a damaged record, and
//! rebuilds indexes identical to the ones written at append time.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use troupe_actors::storage::{segment_file, Log, LogConfig, LogError, Record, StoredRecord};

use crate::common::{file_bytes, init_logging, read_all, record};

/// One batch as written: where it ended in the active segment.
struct Written {
    end_position: u64,
    next_offset: i64,
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 8 * 1024,
        index_interval_bytes: 200,
        ..LogConfig::default()
    }
}

/// Writes `batches` (each a list of value sizes), returning what went into the active
/// segment (after any rolls) and all records.
fn write_batches(dir: &Path, batches: &[Vec<usize>]) -> (Vec<Written>, Vec<StoredRecord>, i64) {
    let mut log = Log::open(dir, config()).unwrap();
    let mut active = Vec::new();
    let mut all = Vec::new();
    let mut active_base = 0;
    for (i, sizes) in batches.iter().enumerate() {
        let records: Vec<Record> = sizes
            .iter()
            .enumerate()
            .map(|(j, n)| record(1000 + i as i64, &format!("k{i}-{j}"), &"v".repeat(*n)))
            .collect();
        let info = log.append_records(&records, 0).unwrap();
        let segments = log.segments();
        let current = segments.last().unwrap();
        if current.base_offset != active_base {
            active_base = current.base_offset;
            active.clear();
        }
        let stored: Vec<StoredRecord> = records
            .into_iter()
            .enumerate()
            .map(|(j, record)| StoredRecord {
                offset: info.base_offset + j as i64,
                record,
            })
            .collect();
        all.extend(stored);
        active.push(Written {
            end_position: current.size_bytes,
            next_offset: info.last_offset + 1,
        });
    }
    log.flush().unwrap();
    drop(log); // a crash: no clean-shutdown marker
    (active, all, active_base)
}

fn batches_strategy() -> impl Strategy<Value = Vec<Vec<usize>>> {
    proptest::collection::vec(proptest::collection::vec(0usize..400, 1..5), 1..40)
}

fn active_log_path(dir: &Path, base: i64) -> PathBuf {
    segment_file(dir, base, "log")
}

/// Reopens and checks the log holds exactly `expected`, then that it still takes appends.
fn check_recovered(dir: &Path, expected: &[StoredRecord], expected_end: i64) {
    let mut log = Log::open(dir, config()).unwrap();
    assert_eq!(log.log_end_offset(), expected_end);
    let got = read_all(&log, 1000);
    assert_eq!(got.len(), expected.len());
    assert!(
        got.iter().zip(expected).all(|(a, b)| a == b),
        "recovered records differ"
    );
    let info = log
        .append_records(&[record(5, "after", "crash")], 0)
        .unwrap();
    assert_eq!(info.base_offset, expected_end);
    log.close().unwrap();
    let log = Log::open(dir, config()).unwrap();
    assert_eq!(log.log_end_offset(), expected_end + 1);
    assert_eq!(read_all(&log, 1000).len(), expected.len() + 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn truncated_active_segment_recovers_the_longest_valid_prefix(batches in batches_strategy(), cut in any::<u64>()) {
        init_logging();
        let dir = tempfile::tempdir().unwrap();
        let (active, all, base) = write_batches(dir.path(), &batches);
        let path = active_log_path(dir.path(), base);
        let size = std::fs::metadata(&path).unwrap().len();
        let cut = cut % (size + 1);
        OpenOptions::new().write(true).open(&path).unwrap().set_len(cut).unwrap();
        let kept_in_active = active.iter().take_while(|w| w.end_position <= cut).count();
        let expected_end = if kept_in_active == 0 { base } else { active[kept_in_active - 1].next_offset };
        let expected: Vec<StoredRecord> = all.into_iter().filter(|r| r.offset < expected_end).collect();
        check_recovered(dir.path(), &expected, expected_end);
    }

    #[test]
    fn flipped_byte_in_active_segment_drops_that_batch_and_after(batches in batches_strategy(), at in any::<u64>(), bit in 0u8..8) {
        init_logging();
        let dir = tempfile::tempdir().unwrap();
        let (active, all, base) = write_batches(dir.path(), &batches);
        let path = active_log_path(dir.path(), base);
        let mut bytes = file_bytes(&path);
        let at = (at % bytes.len() as u64) as usize;
        bytes[at] ^= 1 << bit;
        std::fs::write(&path, &bytes).unwrap();
        let hit = active.iter().position(|w| w.end_position > at as u64).unwrap();
        let batch_start = if hit == 0 { 0 } else { active[hit - 1].end_position };
        let within = at as u64 - batch_start;
        // Bytes 12..16 hold the partition leader epoch, which (as in Kafka) no checksum
        // covers and no record depends on: such a flip changes no record.
        let expected_end = if (12..16).contains(&within) {
            active.last().unwrap().next_offset
        } else if hit == 0 {
            base
        } else {
            active[hit - 1].next_offset
        };
        let expected: Vec<StoredRecord> = all.into_iter().filter(|r| r.offset < expected_end).collect();
        check_recovered(dir.path(), &expected, expected_end);
    }
}

#[test]
fn damage_below_the_recovery_point_is_reported_by_reads_not_returned() {
    let dir = tempfile::tempdir().unwrap();
    let batches: Vec<Vec<usize>> = (0..60).map(|_| vec![300]).collect();
    let (_, all, _) = write_batches(dir.path(), &batches);
    // The first segment is sealed and flushed: open trusts it without a scan.
    let first = segment_file(dir.path(), 0, "log");
    let mut bytes = file_bytes(&first);
    let victim = bytes.len() / 2;
    bytes[victim] ^= 0x40;
    std::fs::write(&first, &bytes).unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(
        log.log_end_offset(),
        all.len() as i64,
        "nothing truncated at open"
    );
    let mut saw_corrupt = false;
    let mut offset = 0;
    while offset < log.log_end_offset() {
        match log.read(offset, 1) {
            Ok(fetched) => {
                for r in fetched.records_from(offset).unwrap() {
                    assert_eq!(r, all[r.offset as usize], "a damaged record was returned");
                }
            }
            Err(LogError::CorruptBatch {
                path,
                first_offset,
                last_offset,
                ..
            }) => {
                assert_eq!(path, first);
                assert!((first_offset..=last_offset).contains(&offset));
                saw_corrupt = true;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
        offset += 1;
    }
    assert!(saw_corrupt, "the flipped batch must be reported");
}

#[test]
fn deleted_index_files_are_rebuilt_identically() {
    let dir = tempfile::tempdir().unwrap();
    let batches: Vec<Vec<usize>> = (0..80).map(|i| vec![50 + i * 3, 20]).collect();
    let (_, all, _) = write_batches(dir.path(), &batches);
    Log::open(dir.path(), config()).unwrap().close().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let segments = log.segments();
    assert!(segments.len() >= 3, "the test needs several segments");
    let probes: Vec<_> = [950i64, 1010, 1079]
        .iter()
        .map(|t| log.offset_for_timestamp(*t).unwrap())
        .collect();
    log.close().unwrap();
    let index_files: Vec<PathBuf> = segments
        .iter()
        .flat_map(|s| {
            [
                segment_file(dir.path(), s.base_offset, "index"),
                segment_file(dir.path(), s.base_offset, "timeindex"),
            ]
        })
        .collect();
    let originals: Vec<Vec<u8>> = index_files.iter().map(|p| file_bytes(p)).collect();
    assert!(
        originals.iter().any(|b| !b.is_empty()),
        "indexes have entries"
    );
    for p in &index_files {
        std::fs::remove_file(p).unwrap();
    }
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(read_all(&log, 4096), all);
    let again: Vec<_> = [950i64, 1010, 1079]
        .iter()
        .map(|t| log.offset_for_timestamp(*t).unwrap())
        .collect();
    assert_eq!(again, probes);
    log.close().unwrap();
    for (path, original) in index_files.iter().zip(&originals) {
        assert_eq!(
            &file_bytes(path),
            original,
            "{} differs after rebuild",
            path.display()
        );
    }
}

#[test]
fn garbage_index_files_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let batches: Vec<Vec<usize>> = (0..60).map(|_| vec![200, 200]).collect();
    let (_, all, _) = write_batches(dir.path(), &batches);
    Log::open(dir.path(), config()).unwrap().close().unwrap();
    let index = segment_file(dir.path(), 0, "index");
    let len = std::fs::metadata(&index).unwrap().len() as usize;
    assert!(len >= 16);
    std::fs::write(&index, vec![0xff; len]).unwrap();
    std::fs::write(segment_file(dir.path(), 0, "timeindex"), [1, 2, 3]).unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(read_all(&log, 333), all);
    assert_eq!(
        log.offset_for_timestamp(1030).unwrap().map(|f| f.offset),
        Some(60)
    );
}
