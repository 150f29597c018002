//! Damage in durable data (a flipped bit in a sealed segment, or in the active one
//! after a clean close): nothing is truncated, the log end offset stays, reads serve
//! every good record before the damaged batch, answer a read inside it with
//! `LogError::CorruptBatch` naming the file, position and offsets, and serve the
//! records after it.

use std::path::Path;

use proptest::prelude::*;
use troupe_actors::storage::{segment_file, Log, LogConfig, LogError, StoredRecord};

use crate::common::{file_bytes, init_logging, record};

/// One batch as written.
#[derive(Debug, Clone, Copy)]
struct Written {
    segment_base: i64,
    position: u64,
    end_position: u64,
    base_offset: i64,
    last_offset: i64,
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 8 * 1024,
        index_interval_bytes: 200,
        ..LogConfig::default()
    }
}

/// Appends `batches` batches of three records and closes the log cleanly.
fn write_and_close(dir: &Path, batches: usize) -> (Vec<Written>, Vec<StoredRecord>) {
    let mut log = Log::open(dir, config()).unwrap();
    let mut written = Vec::new();
    let mut all = Vec::new();
    for i in 0..batches {
        let records: Vec<_> = (0..3)
            .map(|j| {
                record(
                    1000 + i as i64,
                    &format!("k{i}-{j}"),
                    &format!("value {i}-{j} {}", "x".repeat(90)),
                )
            })
            .collect();
        let info = log.append_records(&records, 0).unwrap();
        let segment = *log.segments().last().unwrap();
        written.push(Written {
            segment_base: segment.base_offset,
            position: segment.size_bytes - info.size_bytes as u64,
            end_position: segment.size_bytes,
            base_offset: info.base_offset,
            last_offset: info.last_offset,
        });
        all.extend(
            records
                .into_iter()
                .enumerate()
                .map(|(j, record)| StoredRecord {
                    offset: info.base_offset + j as i64,
                    record,
                }),
        );
    }
    log.close().unwrap();
    (written, all)
}

fn flip(dir: &Path, segment_base: i64, at: u64, bit: u8) {
    let path = segment_file(dir, segment_base, "log");
    let mut bytes = file_bytes(&path);
    bytes[at as usize] ^= 1 << bit;
    std::fs::write(&path, &bytes).unwrap();
}

/// Reads every offset one by one: each is either served exactly as written or
/// refused as corrupt (then the whole damaged range is returned with it).
fn read_each(log: &Log, all: &[StoredRecord]) -> Vec<(i64, i64, u64)> {
    let mut refused = Vec::new();
    let mut offset = 0;
    while offset < log.log_end_offset() {
        match log.read(offset, 1 << 20) {
            Ok(fetched) => {
                let records = fetched.records_from(offset).unwrap();
                assert!(!records.is_empty(), "nothing served at {offset}");
                for r in &records {
                    assert_eq!(r, &all[r.offset as usize], "a damaged record was served");
                }
                offset = records[0].offset + 1;
            }
            Err(LogError::CorruptBatch {
                first_offset,
                last_offset,
                position,
                ..
            }) => {
                assert!((first_offset..=last_offset).contains(&offset));
                if refused.last() != Some(&(first_offset, last_offset, position)) {
                    refused.push((first_offset, last_offset, position));
                }
                offset += 1;
            }
            Err(e) => panic!("unexpected error at {offset}: {e}"),
        }
    }
    refused
}

/// The checks every single-batch damage case shares: read before, at and after it.
fn check_damaged_batch(dir: &Path, victim: Written, all: &[StoredRecord]) {
    let log = Log::open(dir, config()).unwrap();
    assert_eq!(log.log_end_offset(), all.len() as i64, "nothing truncated");
    // Before: a read from an earlier offset in the same segment stops right before it.
    if victim.base_offset > victim.segment_base {
        let from = victim.segment_base;
        let fetched = log.read(from, 1 << 20).unwrap();
        let records = fetched.records_from(from).unwrap();
        assert_eq!(
            records.last().map(|r| r.offset),
            Some(victim.base_offset - 1),
            "the good records before the damage are served, and nothing past it"
        );
    }
    // At: every offset of the batch is refused, precisely.
    for offset in victim.base_offset..=victim.last_offset {
        match log.read(offset, 1 << 20) {
            Err(LogError::CorruptBatch {
                path,
                position,
                first_offset,
                last_offset,
                ..
            }) => {
                assert_eq!(path, segment_file(dir, victim.segment_base, "log"));
                assert_eq!(position, victim.position);
                assert_eq!(
                    (first_offset, last_offset),
                    (victim.base_offset, victim.last_offset)
                );
            }
            other => panic!("read at {offset} inside the damaged batch answered {other:?}"),
        }
    }
    // After: readable, from the next offset on.
    let after = victim.last_offset + 1;
    if after < log.log_end_offset() {
        let fetched = log.read(after, 1 << 20).unwrap();
        let records = fetched.records_from(after).unwrap();
        assert_eq!(records.first(), Some(&all[after as usize]));
    }
    assert_eq!(
        read_each(&log, all),
        vec![(victim.base_offset, victim.last_offset, victim.position)]
    );
    assert_eq!(log.corrupt_batches(), 1, "counted once, however often read");
}

#[test]
fn flipped_payload_byte_in_a_sealed_segment_is_skipped_and_reported() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let (written, all) = write_and_close(dir.path(), 120);
    // A batch in the middle of the first (sealed) segment, its last record's value.
    let in_first: Vec<Written> = written
        .iter()
        .copied()
        .filter(|w| w.segment_base == 0)
        .collect();
    let victim = in_first[in_first.len() / 2];
    flip(dir.path(), 0, victim.end_position - 20, 3);
    check_damaged_batch(dir.path(), victim, &all);
}

#[test]
fn flipped_length_in_a_sealed_segment_header_is_skipped_and_reported() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let (written, all) = write_and_close(dir.path(), 120);
    let in_first: Vec<Written> = written
        .iter()
        .copied()
        .filter(|w| w.segment_base == 0)
        .collect();
    let victim = in_first[in_first.len() / 3];
    // batch_length (bytes 8..12): the framing itself cannot be trusted.
    flip(dir.path(), 0, victim.position + 10, 2);
    check_damaged_batch(dir.path(), victim, &all);
}

#[test]
fn damage_in_the_active_segment_after_a_clean_close_keeps_the_records_after_it() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let (written, all) = write_and_close(dir.path(), 100);
    let last = *written.last().unwrap();
    let in_active: Vec<Written> = written
        .iter()
        .copied()
        .filter(|w| w.segment_base == last.segment_base)
        .collect();
    assert!(
        in_active.len() >= 3,
        "the test needs batches after the victim"
    );
    // The second-to-last batch: past the last index entry, so open's scan meets it.
    let victim = in_active[in_active.len() - 2];
    flip(dir.path(), victim.segment_base, victim.position + 40, 0);
    check_damaged_batch(dir.path(), victim, &all);
    // The log still takes appends where it ended.
    let mut log = Log::open(dir.path(), config()).unwrap();
    let info = log.append_records(&[record(1, "k", "v")], 0).unwrap();
    assert_eq!(info.base_offset, all.len() as i64);
    log.close().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_end_offset(), all.len() as i64 + 1);
}

#[test]
fn damaged_last_batch_of_the_active_segment_after_a_clean_close_keeps_the_end_offset() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let (written, all) = write_and_close(dir.path(), 100);
    let victim = *written.last().unwrap();
    flip(dir.path(), victim.segment_base, victim.position + 10, 5);
    check_damaged_batch(dir.path(), victim, &all);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any single bit flipped anywhere in any segment after a clean close: the log end
    /// offset stays, no damaged record is ever served, and at most the one batch the
    /// flip landed in is refused.
    #[test]
    fn any_flip_after_a_clean_close_costs_at_most_its_batch(batch in 0usize..90, at in any::<u64>(), bit in 0u8..8) {
        init_logging();
        let dir = tempfile::tempdir().unwrap();
        let (written, all) = write_and_close(dir.path(), 90);
        let victim = written[batch];
        let within = at % (victim.end_position - victim.position);
        flip(dir.path(), victim.segment_base, victim.position + within, bit);
        let log = Log::open(dir.path(), config()).unwrap();
        prop_assert_eq!(log.log_end_offset(), all.len() as i64);
        let refused = read_each(&log, &all);
        // Bytes 12..16 are the leader epoch: no checksum covers it, no record needs it.
        if (12..16).contains(&within) {
            prop_assert!(refused.is_empty());
        } else {
            prop_assert_eq!(refused, vec![(victim.base_offset, victim.last_offset, victim.position)]);
        }
    }
}
