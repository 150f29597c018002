//! Binary records frames: what a subscription with `"frames": "binary"` receives in
//! place of JSON records frames. Keys, values and header values travel as raw bytes
//! (no base64, no JSON escaping), for services that move binary data.
//!
//! Layout, all integers big-endian:
//!
//! ```text
//! u8   kind = 1 (records)
//! u16  sub length,   sub bytes (UTF-8)
//! u16  topic length, topic bytes (UTF-8)
//! i32  partition
//! u32  record count
//! per record:
//!   i64  offset
//!   i64  timestamp (ms)
//!   i32  key length (-1: null key),     key bytes
//!   i32  value length (-1: null value), value bytes
//!   u16  header count
//!   per header:
//!     u16  name length, name bytes (UTF-8)
//!     i32  value length (-1: null),     value bytes
//! ```
//!
//! The part from `record count` on depends only on the records, so subscribers at the
//! same position share one encoding of it.

use troupe_actors::storage::StoredRecord;

/// The frame kind of a records frame.
pub const RECORDS: u8 = 1;

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            out.extend_from_slice(&(b.len() as i32).to_be_bytes());
            out.extend_from_slice(b);
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

fn put_short_str(out: &mut Vec<u8>, s: &str) {
    // Names are bounded well below 64 KiB (subscription ids, topics, header names
    // are checked or come from the log); a longer one is cut, never mis-framed.
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The records part of a frame: count, then each record.
pub fn encode_records(records: &[StoredRecord]) -> Vec<u8> {
    let size: usize = records
        .iter()
        .map(|r| {
            30 + r.record.key.as_ref().map_or(0, Vec::len)
                + r.record.value.as_ref().map_or(0, Vec::len)
                + r.record
                    .headers
                    .iter()
                    .map(|h| 6 + h.key.len() + h.value.as_ref().map_or(0, Vec::len))
                    .sum::<usize>()
        })
        .sum();
    let mut out = Vec::with_capacity(size + 4);
    out.extend_from_slice(&(records.len() as u32).to_be_bytes());
    for r in records {
        out.extend_from_slice(&r.offset.to_be_bytes());
        out.extend_from_slice(&r.record.timestamp_ms.to_be_bytes());
        put_bytes(&mut out, r.record.key.as_deref());
        put_bytes(&mut out, r.record.value.as_deref());
        let headers = &r.record.headers[..r.record.headers.len().min(u16::MAX as usize)];
        out.extend_from_slice(&(headers.len() as u16).to_be_bytes());
        for h in headers {
            put_short_str(&mut out, &h.key);
            put_bytes(&mut out, h.value.as_deref());
        }
    }
    out
}

/// The head of a records frame (kind, sub, topic, partition): an encoded records
/// part follows it.
pub fn records_frame_head(sub: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(sub.len() + topic.len() + 16);
    out.push(RECORDS);
    put_short_str(&mut out, sub);
    put_short_str(&mut out, topic);
    out.extend_from_slice(&partition.to_be_bytes());
    out
}
