//! Helpers shared by the storage tests.

use std::path::Path;

use troupe_actors::storage::{Log, LogConfig, Record, StoredRecord};

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
