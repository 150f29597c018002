//! The per-topic traffic counters of `/metrics` (`troupe_records_in_total`,
//! `troupe_bytes_in_total`, `troupe_records_out_total`, `troupe_bytes_out_total`), for
//! what Kafka clients produce and fetch — counted here as the web crate counts REST and
//! WebSocket traffic. Kafka's meaning of bytes: record-batch bytes as they travel
//! (compressed if the producer compressed them); REST counts key and value bytes.

use troupe_actors::storage::BatchRef;

/// What one batch a producer sent holds: its records and bytes.
pub fn batch_size(batch: &[u8]) -> (u64, u64) {
    let records = BatchRef::parse(batch).map_or(0, |b| b.records_count().max(0) as u64);
    (records, batch.len() as u64)
}

/// One acknowledged produce to `topic` of `(records, bytes)`.
pub fn produced(topic: &str, (records, bytes): (u64, u64)) {
    metrics::counter!("troupe_records_in_total", "topic" => topic.to_string()).increment(records);
    metrics::counter!("troupe_bytes_in_total", "topic" => topic.to_string()).increment(bytes);
}

/// Records and bytes of the batches a fetch of `topic` sends, from `offset` on.
pub fn fetched(topic: &str, batches: &[u8], offset: i64) {
    if batches.is_empty() {
        return;
    }
    let mut records = 0u64;
    let mut rest = batches;
    while let Ok(batch) = BatchRef::parse(rest) {
        let last = batch.base_offset() + i64::from(batch.last_offset_delta());
        let first = batch.base_offset().max(offset);
        records += (last - first + 1).max(0) as u64;
        rest = &rest[batch.size_bytes().min(rest.len())..];
    }
    metrics::counter!("troupe_records_out_total", "topic" => topic.to_string()).increment(records);
    metrics::counter!("troupe_bytes_out_total", "topic" => topic.to_string())
        .increment(batches.len() as u64);
}
