//! Compressed batches (gzip, snappy, lz4, zstd) as Kafka producers send them: stored
//! byte for byte as they came (but for the offsets and epoch the log assigns), read
//! back as records, and kept whole by recovery after a crash. (Compaction of them:
//! `compaction.rs`.)

use troupe_actors::storage::{
    CompressionType, Log, LogConfig, Record, RecordBatch, RecordHeader, TimestampType,
};

use crate::common::{init_logging, read_all};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn records(batch: usize) -> Vec<Record> {
    (0..8)
        .map(|i| Record {
            timestamp_ms: 1_000 + (batch * 8 + i) as i64,
            key: Some(format!("key-{i}").into_bytes()),
            value: (i != 5).then(|| format!("batch {batch} record {i} ").repeat(6).into_bytes()),
            headers: vec![RecordHeader {
                key: "trace".into(),
                value: Some(vec![batch as u8, i as u8]),
            }],
        })
        .collect()
}

#[test]
fn compressed_batches_are_stored_as_sent_read_back_and_survive_recovery() {
    init_logging();
    for codec in CompressionType::ALL {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config()).unwrap();
        let mut sent = Vec::new();
        let mut written = Vec::new();
        for b in 0..30 {
            let batch_records = records(b);
            let mut batch = RecordBatch::encode(&batch_records, TimestampType::CreateTime)
                .and_then(|batch| batch.compress(codec))
                .unwrap();
            log.append(&mut batch, 0).unwrap();
            // `append` updates the batch in place: it holds what was stored.
            sent.push(batch.into_bytes());
            written.extend(batch_records);
        }
        assert!(log.segments().len() > 1, "{codec:?}: several segments");
        let stored: Vec<Vec<u8>> = (0..30)
            .map(|b| {
                let fetched = log.read(b * 8, 1).unwrap();
                let batch = fetched.batches().next().unwrap();
                batch.as_bytes().to_vec()
            })
            .collect();
        assert_eq!(stored, sent, "{codec:?}: stored as sent");
        let back: Vec<Record> = read_all(&log, 2000).into_iter().map(|r| r.record).collect();
        assert_eq!(back, written, "{codec:?}");

        // A crash (no close) and nothing flushed: recovery scans and validates every
        // batch, decompressing each, and keeps them all.
        drop(log);
        let log = Log::open(dir.path(), config()).unwrap();
        assert_eq!(log.log_end_offset(), 240, "{codec:?}");
        assert_eq!(log.corrupt_batches(), 0);
        let back: Vec<Record> = read_all(&log, 2000).into_iter().map(|r| r.record).collect();
        assert_eq!(back, written, "{codec:?} after recovery");
        let found = log.offset_for_timestamp(1_100).unwrap().unwrap();
        assert_eq!(
            (found.offset, found.timestamp_ms),
            (100, 1_100),
            "{codec:?}"
        );
    }
}
