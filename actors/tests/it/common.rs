//! Helpers shared by the storage tests.

use std::path::Path;

use proptest::prelude::*;
use troupe_actors::storage::{Log, LogConfig, Record, RecordHeader, StoredRecord};

pub fn record(ts: i64, key: &str, value: &str) -> Record {
    Record {
        timestamp_ms: ts,
        key: Some(key.as_bytes().to_vec()),
        value: Some(value.as_bytes().to_vec()),
        headers: vec![],
    }
}

/// A config with small segments and indexes so tests cross every boundary quickly.
pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 128,
        segment_index_bytes: 240,
        ..LogConfig::default()
    }
}

/// Every record from the log start to the log end, read in `max_bytes` steps.
pub fn read_all(log: &Log, max_bytes: usize) -> Vec<StoredRecord> {
    let mut out: Vec<StoredRecord> = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let fetched = log.read(next, max_bytes).expect("read within bounds");
        let records = fetched.records_from(next).expect("records decode");
        assert!(
            !records.is_empty(),
            "read at {next} returned nothing before the log end"
        );
        next = records.last().map(|r| r.offset + 1).unwrap_or(next);
        out.extend(records);
    }
    out
}

pub fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn init_logging() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// Any record: small keys, values up to 300 bytes, nulls and headers now and then.
pub fn record_strategy() -> impl Strategy<Value = Record> {
    (
        0i64..200,
        proptest::option::weighted(0.8, proptest::collection::vec(any::<u8>(), 0..6)),
        proptest::option::weighted(0.9, proptest::collection::vec(any::<u8>(), 0..300)),
        proptest::collection::vec(
            (
                "[a-z]{0,3}",
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..4)),
            ),
            0..2,
        ),
    )
        .prop_map(|(timestamp_ms, key, value, headers)| Record {
            timestamp_ms,
            key,
            value,
            headers: headers
                .into_iter()
                .map(|(key, value)| RecordHeader { key, value })
                .collect(),
        })
}
