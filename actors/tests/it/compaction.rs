//! Compaction, model-based: random keyed writes with tombstones, cleaned, must read
//! back as exactly the latest record per live key, in offset order, with offsets
//! unchanged; tombstones go once delete.retention.ms has passed since cleaning; a crash
//! at any step of the swap leaves a log with every latest value.

use std::collections::BTreeMap;

use proptest::prelude::*;
use troupe_actors::storage::compaction::{clean, CompactionConfig, CLEANING_DIR, SWAP_MANIFEST};
use troupe_actors::storage::{
    CompressionType, Log, LogConfig, Record, RecordBatch, StoredRecord, TimestampType,
};

use crate::common::read_all;

fn log_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        allow_offset_gaps: true,
        ..LogConfig::default()
    }
}

fn compaction(buffer_keys: usize) -> CompactionConfig {
    CompactionConfig {
        dedupe_buffer_bytes: buffer_keys * 24,
        delete_retention_ms: 1_000,
        min_compaction_lag_ms: 0,
        log: log_config(),
    }
}

/// Writes (key, value) pairs, one batch per `batch` records, then rolls so every
/// record is in a sealed (cleanable) segment. Returns everything written.
fn write(log: &mut Log, writes: &[(u8, Option<u16>)], batch: usize) -> Vec<StoredRecord> {
    write_compressed(log, writes, batch, CompressionType::None)
}

/// [`write`], each batch compressed with `codec` as a Kafka producer sends it.
fn write_compressed(
    log: &mut Log,
    writes: &[(u8, Option<u16>)],
    batch: usize,
    codec: CompressionType,
) -> Vec<StoredRecord> {
    let mut all = Vec::new();
    for chunk in writes.chunks(batch.max(1)) {
        let records: Vec<Record> = chunk
            .iter()
            .map(|(k, v)| Record {
                timestamp_ms: 0,
                key: Some(format!("key-{k}").into_bytes()),
                value: v.map(|v| format!("value-{v}-{}", "p".repeat(20)).into_bytes()),
                headers: vec![],
            })
            .collect();
        let mut sent = RecordBatch::encode(&records, TimestampType::CreateTime)
            .and_then(|b| b.compress(codec))
            .unwrap();
        let info = log.append(&mut sent, 0).unwrap();
        all.extend(
            records
                .into_iter()
                .enumerate()
                .map(|(i, record)| StoredRecord {
                    offset: info.base_offset + i as i64,
                    record,
                }),
        );
    }
    log.roll().unwrap();
    all
}

/// The latest record per key, in offset order; tombstones included or not.
fn expected(all: &[StoredRecord], keep_tombstones: bool) -> Vec<StoredRecord> {
    let mut latest: BTreeMap<Vec<u8>, &StoredRecord> = BTreeMap::new();
    for r in all {
        latest.insert(r.record.key.clone().unwrap(), r);
    }
    let mut out: Vec<StoredRecord> = latest
        .into_values()
        .filter(|r| keep_tombstones || r.record.value.is_some())
        .cloned()
        .collect();
    out.sort_by_key(|r| r.offset);
    out
}

/// Cleans until nothing is dirty.
fn clean_fully(log: &mut Log, config: &CompactionConfig, now_ms: i64) -> usize {
    let mut passes = 0;
    while let Some(outcome) = clean(&log.cleanable(), config, now_ms).unwrap() {
        assert!(log.install_cleaned(&outcome.manifest).unwrap());
        passes += 1;
        assert!(passes < 100, "cleaning converges");
    }
    passes
}

fn writes_strategy() -> impl Strategy<Value = Vec<(u8, Option<u16>)>> {
    proptest::collection::vec(
        (0u8..60, proptest::option::weighted(0.85, any::<u16>())),
        1..200,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn compacted_log_holds_the_latest_record_per_key(writes in writes_strategy(), batch in 1usize..8, buffer_keys in 24usize..80) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), log_config()).unwrap();
        let all = write(&mut log, &writes, batch);
        let end = log.log_end_offset();
        let config = compaction(buffer_keys);
        // Right after cleaning, tombstones stay (delete.retention.ms has not passed).
        clean_fully(&mut log, &config, 0);
        prop_assert_eq!(read_all_gapped(&log), expected(&all, true));
        prop_assert_eq!(log.log_end_offset(), end, "offsets never change");
        // The result survives a reopen (crash or clean).
        drop(log);
        let mut log = Log::open(dir.path(), log_config()).unwrap();
        prop_assert_eq!(read_all_gapped(&log), expected(&all, true));
        // Once the cleaned segments are older than delete.retention.ms, another pass
        // drops the tombstones. Re-dirty the log so there is a pass to make.
        let more = write(&mut log, &[(200, Some(1))], 1);
        let mut everything = all.clone();
        everything.extend(more);
        clean_fully(&mut log, &config, i64::MAX / 4);
        let got = read_all_gapped(&log);
        prop_assert!(got.iter().all(|r| r.record.value.is_some()), "tombstones removed");
        prop_assert_eq!(got, expected(&everything, false));
    }
}

/// Reads everything from the log start; unlike `read_all` it tolerates a read that
/// skips over a gap of removed offsets.
fn read_all_gapped(log: &Log) -> Vec<StoredRecord> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let fetched = log.read(next, 700).unwrap();
        let records = fetched.records_from(next).unwrap();
        let Some(last) = fetched.batches().last() else {
            break;
        };
        next = last.next_offset();
        out.extend(records);
    }
    out
}

/// Compressed batches compact like any others, and what the cleaner rewrites stays
/// compressed with the codec the producer chose (as Kafka's cleaner does).
#[test]
fn compressed_batches_compact_into_batches_of_their_codec() {
    let writes: Vec<(u8, Option<u16>)> = (0..240)
        .map(|i| ((i % 13) as u8, (i % 11 != 5).then_some(i as u16)))
        .collect();
    for codec in CompressionType::ALL.into_iter().skip(1) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), log_config()).unwrap();
        let all = write_compressed(&mut log, &writes, 6, codec);
        let config = compaction(100);
        assert!(clean_fully(&mut log, &config, 0) > 0, "{codec:?}");
        assert_eq!(read_all_gapped(&log), expected(&all, true), "{codec:?}");
        let mut batches = 0;
        let mut next = log.log_start_offset();
        while next < log.log_end_offset() {
            let fetched = log.read(next, 1 << 20).unwrap();
            for batch in fetched.batches() {
                batch.validate().unwrap();
                assert_eq!(batch.compression(), Ok(codec));
                next = batch.next_offset();
                batches += 1;
            }
        }
        assert!(
            batches < 40,
            "{codec:?}: some batches were rewritten smaller"
        );
        // And once tombstones expire, they go from compressed batches too.
        let more = write_compressed(&mut log, &[(200, Some(1))], 1, codec);
        let mut everything = all.clone();
        everything.extend(more);
        clean_fully(&mut log, &config, i64::MAX / 4);
        drop(log);
        let log = Log::open(dir.path(), log_config()).unwrap();
        assert_eq!(
            read_all_gapped(&log),
            expected(&everything, false),
            "{codec:?}"
        );
    }
}

#[test]
fn a_crash_at_any_step_of_the_swap_keeps_every_latest_value() {
    let writes: Vec<(u8, Option<u16>)> =
        (0..300).map(|i| ((i % 17) as u8, Some(i as u16))).collect();
    for step in ["before-manifest", "after-manifest", "half-applied"] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), log_config()).unwrap();
        let all = write(&mut log, &writes, 3);
        let before = read_all(&log, 10_000);
        let outcome = clean(&log.cleanable(), &compaction(1000), 0)
            .unwrap()
            .unwrap();
        let cleaning = dir.path().join(CLEANING_DIR);
        match step {
            "before-manifest" => std::fs::remove_file(cleaning.join(SWAP_MANIFEST)).unwrap(),
            "after-manifest" => {}
            _ => {
                // Some replaced files already gone, one cleaned file already moved in.
                let victim = outcome
                    .manifest
                    .replaced
                    .iter()
                    .find(|b| !outcome.manifest.installed.contains(b))
                    .copied();
                if let Some(b) = victim {
                    std::fs::remove_file(dir.path().join(format!("{b:020}.log"))).unwrap();
                }
                let moved = outcome.manifest.installed[0];
                std::fs::rename(
                    cleaning.join(format!("{moved:020}.log")),
                    dir.path().join(format!("{moved:020}.log")),
                )
                .unwrap();
            }
        }
        drop(log); // crash
        let log = Log::open(dir.path(), log_config()).unwrap();
        assert!(
            !cleaning.exists(),
            "{step}: the cleaning folder is resolved at open"
        );
        let got = read_all_gapped(&log);
        if step == "before-manifest" {
            assert_eq!(got, before, "{step}: an uncommitted pass changes nothing");
        } else {
            assert_eq!(
                got,
                expected(&all, true),
                "{step}: the committed pass is finished"
            );
        }
    }
}

#[test]
fn min_compaction_lag_keeps_young_records_dirty() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), log_config()).unwrap();
    let writes: Vec<(u8, Option<u16>)> =
        (0..100).map(|i| ((i % 5) as u8, Some(i as u16))).collect();
    write(&mut log, &writes, 2); // every record has timestamp 0
    let mut config = compaction(100);
    config.min_compaction_lag_ms = 1_000;
    assert!(
        clean(&log.cleanable(), &config, 999).unwrap().is_none(),
        "younger than the lag: nothing to clean"
    );
    assert!(clean(&log.cleanable(), &config, 1_000).unwrap().is_some());
}

#[test]
fn compact_and_delete_together() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), log_config()).unwrap();
    let writes: Vec<(u8, Option<u16>)> =
        (0..200).map(|i| ((i % 7) as u8, Some(i as u16))).collect();
    let all = write(&mut log, &writes, 4);
    clean_fully(&mut log, &compaction(100), 0);
    assert_eq!(read_all_gapped(&log), expected(&all, true));
    // Retention then removes the oldest (now compacted) segments, never the active one.
    let segments = log.segments();
    let keep_from = segments[segments.len() - 2].base_offset;
    log.delete_oldest_segments(|s| s.base_offset < keep_from)
        .unwrap();
    let left = read_all_gapped(&log);
    assert!(left.iter().all(|r| r.offset >= keep_from));
    assert_eq!(
        left,
        expected(&all, true)
            .into_iter()
            .filter(|r| r.offset >= keep_from)
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_failed_pass_leaves_the_log_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), log_config()).unwrap();
    let writes: Vec<(u8, Option<u16>)> =
        (0..200).map(|i| ((i % 7) as u8, Some(i as u16))).collect();
    write(&mut log, &writes, 4);
    let before = read_all(&log, 100_000);
    // Damage the second segment: the pass reads it and fails on its CRC.
    let second = log.segments()[1].base_offset;
    let path = dir.path().join(format!("{second:020}.log"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[80] ^= 0xff; // inside the first batch's records, under its CRC
    std::fs::write(&path, &bytes).unwrap();
    assert!(clean(&log.cleanable(), &compaction(100), 0).is_err());
    troupe_actors::storage::compaction::discard_cleaning(dir.path()).unwrap();
    assert!(!dir.path().join(CLEANING_DIR).exists());
    // The segments the pass did not damage read exactly as before: nothing was swapped.
    let mut offset = 0;
    let mut got = Vec::new();
    while offset < second {
        let records = log.read(offset, 1).unwrap().records_from(offset).unwrap();
        offset = records.last().unwrap().offset + 1;
        got.extend(records.into_iter().filter(|r| r.offset < second));
    }
    assert_eq!(
        got,
        before
            .into_iter()
            .filter(|r| r.offset < second)
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_once_compacted_log_reopens_intact_after_compaction_is_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), log_config()).unwrap();
    let writes: Vec<(u8, Option<u16>)> =
        (0..300).map(|i| ((i % 11) as u8, Some(i as u16))).collect();
    let all = write(&mut log, &writes, 3);
    clean_fully(&mut log, &compaction(100), 0);
    drop(log); // crash, so every segment after the recovery point is rescanned
    let not_compacted = LogConfig {
        allow_offset_gaps: false,
        ..log_config()
    };
    let log = Log::open(dir.path(), not_compacted).unwrap();
    assert_eq!(
        read_all_gapped(&log),
        expected(&all, true),
        "gaps left by the cleaner are not damage"
    );
    assert_eq!(log.log_end_offset(), 300);
}
