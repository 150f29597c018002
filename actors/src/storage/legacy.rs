//! Kafka's message sets of magic v0 and v1, the format before record batches, which
//! old clients still send (and any client pinned to Produce v2 or older): validated
//! message by message (each carries a CRC-32, IEEE, via `crc32fast`) and converted into
//! one v2 [`RecordBatch`], the only format the log stores. As Kafka converts them: keys
//! and values are kept, headers are none (v0/v1 have none), v1 timestamps are kept (a
//! compressed wrapper stamped LogAppendTime gives its own to every inner message), and
//! v0 messages, which have no timestamp, get -1 ("no timestamp"). Offsets the client
//! wrote are ignored: the log assigns them.
//!
//! ```text
//! Message set: entries back to back, integers big-endian
//!   offset        int64   ignored (a wrapper's: its last inner message's)
//!   message_size  int32   bytes of the message that follows
//!   message:
//!     crc         uint32  CRC-32 (IEEE) of everything after it (magic .. value)
//!     magic       int8    0 or 1
//!     attributes  int8    bits 0-2 compression: 0 none, 1 gzip, 2 snappy, 3 lz4
//!                         (zstd needs magic 2); v1 bit 3: timestamp type
//!                         (0 CreateTime, 1 LogAppendTime)
//!     timestamp   int64   v1 only
//!     key         int32 length (-1 = null) + bytes
//!     value       int32 length (-1 = null) + bytes
//!
//! A compressed message (a "wrapper") holds, as its value, a whole message set
//! compressed: inner messages of the same magic, themselves uncompressed (Kafka
//! refuses nesting, and so does this).
//! ```

use super::batch::{BatchError, Record, RecordBatch, TimestampType};
use super::compression::{CompressionType, MAX_DECOMPRESSED_BATCH_BYTES};

/// `offset` + `message_size`: what precedes each message.
const ENTRY_OVERHEAD_BYTES: usize = 12;
/// crc, magic, attributes, key length, value length.
const V0_MIN_MESSAGE_BYTES: usize = 4 + 1 + 1 + 4 + 4;
/// v0's, plus the timestamp.
const V1_MIN_MESSAGE_BYTES: usize = V0_MIN_MESSAGE_BYTES + 8;
/// Where the magic byte sits in a message set (and, at the same place, in a v2 batch).
const MAGIC_POS: usize = ENTRY_OVERHEAD_BYTES + 4;
const COMPRESSION_MASK: u8 = 0x07;
const LOG_APPEND_TIME_BIT: u8 = 0x08;
/// What Kafka's v2 records carry when a v0 message had no timestamp.
pub const NO_TIMESTAMP: i64 = -1;

/// A v0/v1 message set as one v2 batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertedMessageSet {
    /// Uncompressed, CreateTime, base offset 0: ready for `Log::append`.
    pub batch: RecordBatch,
    /// The magic the client wrote (0 or 1).
    pub magic: u8,
    /// The codec the client compressed with, if any: under Kafka's
    /// `compression.type=producer` the stored batch keeps it
    /// (`batch.compress(compression)`).
    pub compression: CompressionType,
}

/// The magic byte of the record data a Produce request carries (v0/v1 message set
/// or v2 batch: it sits at the same position in all three), if there are enough bytes.
pub fn records_magic(bytes: &[u8]) -> Option<u8> {
    bytes.get(MAGIC_POS).copied()
}

/// Validates a v0 or v1 message set (every message's CRC-32, framing, wrappers
/// decompressed within [`MAX_DECOMPRESSED_BATCH_BYTES`]) and converts its messages,
/// in order, into one v2 batch.
pub fn convert_message_set(bytes: &[u8]) -> Result<ConvertedMessageSet, BatchError> {
    let magic = match records_magic(bytes) {
        Some(m @ (0 | 1)) => m,
        Some(other) => return Err(BatchError::BadMagic(other)),
        None => {
            return Err(BatchError::Truncated {
                needed_bytes: MAGIC_POS + 1,
                available_bytes: bytes.len(),
            })
        }
    };
    let mut records = Vec::new();
    let mut compression = CompressionType::None;
    let mut decompressed_bytes = 0usize;
    for message in Entries::new(bytes) {
        let message = Message::parse(message?, magic)?;
        let codec = message.compression()?;
        if codec == CompressionType::None {
            records.push(message.record(None));
            continue;
        }
        compression = codec;
        let packed = message.value.ok_or(BatchError::Malformed(
            "a compressed message without a value",
        ))?;
        let room = MAX_DECOMPRESSED_BATCH_BYTES - decompressed_bytes;
        let inner = codec.decompress(packed, room)?;
        decompressed_bytes += inner.len();
        let stamp = message.log_append_time();
        for entry in Entries::new(&inner) {
            let inner_message = Message::parse(entry?, magic)?;
            if inner_message.compression()? != CompressionType::None {
                return Err(BatchError::Malformed(
                    "a compressed message inside a compressed message",
                ));
            }
            records.push(inner_message.record(stamp));
        }
    }
    let batch = RecordBatch::encode(&records, TimestampType::CreateTime)?;
    Ok(ConvertedMessageSet {
        batch,
        magic,
        compression,
    })
}

/// The messages of a message set, framed (each: the bytes after `message_size`).
struct Entries<'a> {
    rest: &'a [u8],
}

impl<'a> Entries<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Entries { rest: bytes }
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<&'a [u8], BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let framed = frame_entry(self.rest);
        // After a framing error nothing further can be found.
        self.rest = framed.as_ref().map_or(&[], |(_, rest)| *rest);
        Some(framed.map(|(message, _)| message))
    }
}

/// Splits the entry at the start of `bytes`: its message, and what follows.
fn frame_entry(bytes: &[u8]) -> Result<(&[u8], &[u8]), BatchError> {
    let truncated = |needed_bytes: usize| BatchError::Truncated {
        needed_bytes,
        available_bytes: bytes.len(),
    };
    let size_field = bytes
        .get(8..ENTRY_OVERHEAD_BYTES)
        .ok_or_else(|| truncated(ENTRY_OVERHEAD_BYTES))?;
    let size = i32::from_be_bytes([size_field[0], size_field[1], size_field[2], size_field[3]]);
    let size = usize::try_from(size)
        .ok()
        .filter(|s| *s >= V0_MIN_MESSAGE_BYTES)
        .ok_or(BatchError::BadLength(size))?;
    let end = ENTRY_OVERHEAD_BYTES + size;
    let message = bytes
        .get(ENTRY_OVERHEAD_BYTES..end)
        .ok_or_else(|| truncated(end))?;
    Ok((message, &bytes[end..]))
}

/// One message's fields, borrowed.
struct Message<'a> {
    attributes: u8,
    /// v1 only.
    timestamp_ms: Option<i64>,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

impl<'a> Message<'a> {
    /// Checks the CRC, the magic (every message of a set has the set's) and the
    /// fields' framing.
    fn parse(message: &'a [u8], magic: u8) -> Result<Self, BatchError> {
        let min = match magic {
            0 => V0_MIN_MESSAGE_BYTES,
            _ => V1_MIN_MESSAGE_BYTES,
        };
        if message.len() < min {
            return Err(BatchError::Malformed(
                "message shorter than its fixed fields",
            ));
        }
        let stored = u32::from_be_bytes([message[0], message[1], message[2], message[3]]);
        let computed = crc32fast::hash(&message[4..]);
        if stored != computed {
            return Err(BatchError::CrcMismatch { stored, computed });
        }
        if message[4] != magic {
            return Err(BatchError::Malformed(
                "messages of different magic in one set",
            ));
        }
        let attributes = message[5];
        let mut rest = &message[6..];
        let timestamp_ms = match magic {
            0 => None,
            _ => {
                let (ts, after) = rest.split_first_chunk::<8>().ok_or(BatchError::Malformed(
                    "message shorter than its fixed fields",
                ))?;
                rest = after;
                Some(i64::from_be_bytes(*ts))
            }
        };
        let key = take_bytes(&mut rest)?;
        let value = take_bytes(&mut rest)?;
        if !rest.is_empty() {
            return Err(BatchError::Malformed("message longer than its fields"));
        }
        Ok(Message {
            attributes,
            timestamp_ms,
            key,
            value,
        })
    }

    fn compression(&self) -> Result<CompressionType, BatchError> {
        match CompressionType::from_id((self.attributes & COMPRESSION_MASK) as u16)? {
            CompressionType::Zstd => Err(BatchError::Malformed(
                "zstd compression needs magic 2 (record batches)",
            )),
            codec => Ok(codec),
        }
    }

    /// A wrapper's timestamp when it is LogAppendTime: its inner messages take it.
    fn log_append_time(&self) -> Option<i64> {
        self.timestamp_ms
            .filter(|_| self.attributes & LOG_APPEND_TIME_BIT != 0)
    }

    fn record(&self, stamped: Option<i64>) -> Record {
        Record {
            timestamp_ms: stamped.or(self.timestamp_ms).unwrap_or(NO_TIMESTAMP),
            key: self.key.map(<[u8]>::to_vec),
            value: self.value.map(<[u8]>::to_vec),
            headers: Vec::new(),
        }
    }
}

/// An int32-length-prefixed nullable byte string (-1 = null).
fn take_bytes<'a>(rest: &mut &'a [u8]) -> Result<Option<&'a [u8]>, BatchError> {
    let (length, after) = rest.split_first_chunk::<4>().ok_or(BatchError::Malformed(
        "field runs past the end of the message",
    ))?;
    let length = i32::from_be_bytes(*length);
    if length == -1 {
        *rest = after;
        return Ok(None);
    }
    let length = usize::try_from(length).map_err(|_| BatchError::Malformed("negative length"))?;
    let bytes = after.get(..length).ok_or(BatchError::Malformed(
        "field runs past the end of the message",
    ))?;
    *rest = &after[length..];
    Ok(Some(bytes))
}

/// Message sets as v0/v1 clients write them, for tests (here, and the decoder
/// property tests in `tests/it`).
#[cfg(any(test, feature = "test-support"))]
pub mod build {
    /// A message as a v0/v1 client writes it, CRC-32 included.
    pub fn message(
        magic: u8,
        attributes: u8,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut body = vec![magic, attributes];
        if magic == 1 {
            body.extend_from_slice(&timestamp_ms.to_be_bytes());
        }
        for field in [key, value] {
            match field {
                None => body.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(b) => {
                    body.extend_from_slice(&(b.len() as i32).to_be_bytes());
                    body.extend_from_slice(b);
                }
            }
        }
        let mut out = crc32fast::hash(&body).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    }

    /// `messages` framed into a message set, with offsets from `first_offset`.
    pub fn message_set(first_offset: i64, messages: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            out.extend_from_slice(&(first_offset + i as i64).to_be_bytes());
            out.extend_from_slice(&(m.len() as i32).to_be_bytes());
            out.extend_from_slice(m);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::build::{message, message_set};
    use super::*;
    use crate::storage::batch::tests::rec as record;
    use crate::storage::StoredRecord;

    fn records(converted: &ConvertedMessageSet) -> Vec<StoredRecord> {
        converted
            .batch
            .view()
            .records()
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn a_v0_message_set_converts_with_no_timestamps() {
        let set = message_set(
            7,
            &[
                message(0, 0, 0, Some(b"k1"), Some(b"v1")),
                message(0, 0, 0, None, Some(b"v2")),
                message(0, 0, 0, Some(b"k3"), None),
            ],
        );
        assert_eq!(records_magic(&set), Some(0));
        let converted = convert_message_set(&set).unwrap();
        assert_eq!(
            (converted.magic, converted.compression),
            (0, CompressionType::None)
        );
        converted.batch.view().validate().unwrap();
        let got = records(&converted);
        assert_eq!(
            got.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        let got: Vec<Record> = got.into_iter().map(|r| r.record).collect();
        assert_eq!(
            got,
            vec![
                record(NO_TIMESTAMP, Some(b"k1"), Some(b"v1")),
                record(NO_TIMESTAMP, None, Some(b"v2")),
                record(NO_TIMESTAMP, Some(b"k3"), None),
            ]
        );
        assert_eq!(converted.batch.view().max_timestamp(), NO_TIMESTAMP);
    }

    #[test]
    fn a_v1_message_set_keeps_its_timestamps() {
        let set = message_set(
            0,
            &[
                message(1, 0, 1_500, Some(b"a"), Some(b"1")),
                message(1, 0, 1_200, Some(b""), Some(b"")),
            ],
        );
        let converted = convert_message_set(&set).unwrap();
        let got: Vec<Record> = records(&converted).into_iter().map(|r| r.record).collect();
        assert_eq!(
            got,
            vec![
                record(1_500, Some(b"a"), Some(b"1")),
                record(1_200, Some(b""), Some(b"")),
            ]
        );
        let view = converted.batch.view();
        assert_eq!(
            (view.base_timestamp(), view.max_timestamp()),
            (1_500, 1_500)
        );
        assert_eq!(view.timestamp_type(), TimestampType::CreateTime);
    }

    /// Compressed wrappers: the inner messages come out, in order; a LogAppendTime
    /// wrapper's timestamp replaces theirs.
    #[test]
    fn compressed_wrappers_convert_their_inner_messages() {
        for codec in [
            CompressionType::Gzip,
            CompressionType::Snappy,
            CompressionType::Lz4,
        ] {
            for (magic, wrapper_type) in [(0u8, 0u8), (1, 0), (1, LOG_APPEND_TIME_BIT)] {
                if magic == 0 && codec == CompressionType::Lz4 {
                    continue; // v0's lz4 frames carry Kafka's broken header checksum
                }
                let inner = message_set(
                    0,
                    &[
                        message(magic, 0, 100, Some(b"k0"), Some(b"v0")),
                        message(magic, 0, 300, Some(b"k1"), None),
                        message(magic, 0, 200, None, Some(b"v2")),
                    ],
                );
                let packed = codec.compress(&inner).unwrap();
                let attributes = codec.id() as u8 | wrapper_type;
                let wrapper = message(magic, attributes, 999, None, Some(&packed));
                let set = message_set(2, &[wrapper]);
                let converted = convert_message_set(&set).unwrap();
                assert_eq!((converted.magic, converted.compression), (magic, codec));
                let got: Vec<Record> = records(&converted).into_iter().map(|r| r.record).collect();
                let ts = |own: i64| match (magic, wrapper_type) {
                    (0, _) => NO_TIMESTAMP,
                    (_, 0) => own,
                    _ => 999,
                };
                assert_eq!(
                    got,
                    vec![
                        record(ts(100), Some(b"k0"), Some(b"v0")),
                        record(ts(300), Some(b"k1"), None),
                        record(ts(200), None, Some(b"v2")),
                    ],
                    "{codec:?} magic {magic} type {wrapper_type}"
                );
            }
        }
    }

    #[test]
    fn damaged_or_foreign_message_sets_are_refused() {
        let good = message_set(0, &[message(1, 0, 5, Some(b"k"), Some(b"value"))]);
        // Any flipped bit after the CRC field fails the message's CRC-32.
        for pos in MAGIC_POS + 1..good.len() {
            let mut bad = good.clone();
            bad[pos] ^= 0x10;
            assert!(
                matches!(
                    convert_message_set(&bad),
                    Err(BatchError::CrcMismatch { .. })
                ),
                "flip at {pos}"
            );
        }
        for cut in 0..good.len() {
            assert!(convert_message_set(&good[..cut]).is_err(), "cut at {cut}");
        }
        let v2 =
            RecordBatch::encode(&[record(1, None, Some(b"v"))], TimestampType::CreateTime).unwrap();
        assert_eq!(
            convert_message_set(v2.as_bytes()),
            Err(BatchError::BadMagic(2))
        );
        let mixed = message_set(
            0,
            &[
                message(1, 0, 5, None, Some(b"a")),
                message(0, 0, 0, None, Some(b"b")),
            ],
        );
        assert!(matches!(
            convert_message_set(&mixed),
            Err(BatchError::Malformed(_))
        ));
        let inner = message_set(0, &[message(1, 1, 0, None, Some(b"x"))]);
        let nested = message(
            1,
            1,
            0,
            None,
            Some(&CompressionType::Gzip.compress(&inner).unwrap()),
        );
        assert!(matches!(
            convert_message_set(&message_set(0, &[nested])),
            Err(BatchError::Malformed(_))
        ));
        let zstd = message(1, 4, 0, None, Some(b"whatever"));
        assert!(matches!(
            convert_message_set(&message_set(0, &[zstd])),
            Err(BatchError::Malformed(_))
        ));
        assert!(matches!(
            convert_message_set(&[]),
            Err(BatchError::Truncated { .. })
        ));
    }
}
