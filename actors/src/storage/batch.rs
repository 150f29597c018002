//! The record batch: the unit Troupe stores, checksums, indexes and ships.
//!
//! The layout is Kafka's RecordBatch v2 byte for byte, checksum included (CRC-32C,
//! Castagnoli, via the `crc32c` crate): a batch a Kafka producer sends validates here
//! and is stored as it came, and a Kafka fetch can send the file's bytes unchanged.
//! The CRC covers everything *after* the CRC field, so the broker assigns
//! `base_offset` and `partition_leader_epoch` without recomputing it; only
//! LogAppendTime (which rewrites `max_timestamp`) and compaction rewrite the CRC.
//!
//! A producer may compress the records section (everything after the header) as a
//! whole; the batch is stored so. Whoever reads records goes through
//! [`BatchRef::records`] or [`BatchRef::records_section`], which decompress it
//! (bounded: see `compression.rs`); nothing else looks past the header.
//!
//! ```text
//! Batch header (61 bytes, integers big-endian):
//!  pos size field
//!    0   8  base_offset             offset of the first record (assigned by the log)
//!    8   4  batch_length            bytes that follow this field (total size - 12)
//!   12   4  partition_leader_epoch  leader epoch of the leader that appended it
//!   16   1  magic                   2, Kafka's RecordBatch v2 layout
//!   17   4  crc                     CRC-32C (Castagnoli) over bytes 21..end
//!   21   2  attributes              bits 0-2 compression of the records section as a
//!                                   whole: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd
//!                                   (compression.rs); the header stays plain
//!                                   bit 3 timestamp type (0 CreateTime, 1 LogAppendTime)
//!                                   bit 4 transactional, bit 5 control (reserved)
//!   23   4  last_offset_delta       last record's offset - base_offset
//!   27   8  base_timestamp          timestamp of the first record
//!   35   8  max_timestamp           largest record timestamp (or the append time)
//!   43   8  producer_id             -1: reserved for idempotent producers
//!   51   2  producer_epoch          -1
//!   53   4  base_sequence           -1
//!   57   4  records_count
//!   61   …  records section: the records, or (bits 0-2) the codec's compressed form
//!
//! Record (in the records section, after decompression; varints are zigzag, as in
//! protobuf and Kafka):
//!   length          varint  bytes that follow this field
//!   attributes      int8    unused, 0
//!   timestamp_delta varlong timestamp - base_timestamp
//!   offset_delta    varint  offset - base_offset
//!   key_length      varint  -1 = null key
//!   key             bytes
//!   value_length    varint  -1 = null value (a tombstone)
//!   value           bytes
//!   header_count    varint
//!     header_key_length varint, header_key utf-8,
//!     header_value_length varint (-1 = null), header_value bytes
//! ```

use std::borrow::Cow;
use std::fmt;

use super::compression::{CompressionType, MAX_DECOMPRESSED_BATCH_BYTES};

/// Size of the fixed batch header.
pub const BATCH_HEADER_BYTES: usize = 61;
/// `base_offset` + `batch_length`: the part of the header not counted by `batch_length`.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// Kafka's RecordBatch v2 magic byte; the layout above is that version's.
pub const MAGIC_V2: u8 = 2;

const BASE_OFFSET_POS: usize = 0;
const LENGTH_POS: usize = 8;
const LEADER_EPOCH_POS: usize = 12;
const MAGIC_POS: usize = 16;
/// Where the CRC sits, and where the bytes it covers begin (the rest of the batch).
pub(crate) const CRC_POS: usize = 17;
pub(crate) const ATTRIBUTES_POS: usize = 21;
const LAST_OFFSET_DELTA_POS: usize = 23;
const BASE_TIMESTAMP_POS: usize = 27;
const MAX_TIMESTAMP_POS: usize = 35;
const PRODUCER_ID_POS: usize = 43;
const PRODUCER_EPOCH_POS: usize = 51;
const BASE_SEQUENCE_POS: usize = 53;
const RECORDS_COUNT_POS: usize = 57;

const COMPRESSION_MASK: u16 = 0x07;
const TIMESTAMP_TYPE_BIT: u16 = 0x08;
const TRANSACTIONAL_BIT: u16 = 0x10;
const CONTROL_BIT: u16 = 0x20;

/// Whose clock a batch's timestamps come from (Kafka's `message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's timestamp is kept.
    CreateTime,
    /// The broker overwrites the batch's max timestamp with its append time.
    LogAppendTime,
}

/// A record header: a string key and a nullable byte value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// A record as a producer hands it in: no offset yet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub timestamp_ms: i64,
    pub key: Option<Vec<u8>>,
    /// `None` is a tombstone: on a compacted topic it deletes `key`.
    pub value: Option<Vec<u8>>,
    pub headers: Vec<RecordHeader>,
}

/// A record read back from the log, with the offset the log assigned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub offset: i64,
    pub record: Record,
}

/// Why a byte range is not a valid record batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than the header, or than `batch_length` promises.
    Truncated {
        needed_bytes: usize,
        available_bytes: usize,
    },
    BadMagic(u8),
    BadLength(i32),
    CrcMismatch {
        stored: u32,
        computed: u32,
    },
    /// The header is sound but the records inside are not.
    Malformed(&'static str),
    Empty,
    /// Attributes name a codec Kafka has not assigned (5-7).
    UnknownCompression(u16),
    /// The records section does not decompress with the batch's codec.
    Decompression {
        codec: &'static str,
        reason: String,
    },
    /// The records section inflates past the cap
    /// ([`crate::storage::compression::MAX_DECOMPRESSED_BATCH_BYTES`]).
    DecompressedTooLarge {
        codec: &'static str,
        limit_bytes: usize,
    },
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Truncated {
                needed_bytes,
                available_bytes,
            } => write!(
                f,
                "truncated batch: needs {needed_bytes} bytes, {available_bytes} available"
            ),
            BatchError::BadMagic(m) => write!(f, "unsupported magic byte {m} (expected 2)"),
            BatchError::BadLength(l) => write!(f, "impossible batch length {l}"),
            BatchError::CrcMismatch { stored, computed } => write!(
                f,
                "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            BatchError::Malformed(what) => write!(f, "malformed records: {what}"),
            BatchError::Empty => write!(f, "a record batch must hold at least one record"),
            BatchError::UnknownCompression(id) => write!(f, "unknown compression codec {id}"),
            BatchError::Decompression { codec, reason } => {
                write!(f, "{codec} records do not decompress: {reason}")
            }
            BatchError::DecompressedTooLarge { codec, limit_bytes } => write!(
                f,
                "{codec} records decompress to more than {limit_bytes} bytes"
            ),
        }
    }
}

impl std::error::Error for BatchError {}

/// An owned, encoded batch: what producers hand to [`crate::storage::Log::append`].
#[derive(Clone, PartialEq, Eq)]
pub struct RecordBatch {
    buf: Vec<u8>,
}

impl fmt::Debug for RecordBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.view();
        f.debug_struct("RecordBatch")
            .field("base_offset", &b.base_offset())
            .field("records", &b.records_count())
            .field("size_bytes", &self.buf.len())
            .finish()
    }
}

impl RecordBatch {
    /// Encodes `records` into one batch with base offset 0 (the log assigns the real one).
    pub fn encode(records: &[Record], timestamp_type: TimestampType) -> Result<Self, BatchError> {
        let last_delta = records.len().saturating_sub(1) as i64;
        let with_deltas: Vec<(i64, &Record)> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (i as i64, r))
            .collect();
        Self::encode_deltas(0, &with_deltas, last_delta, timestamp_type)
    }

    /// Encodes records that already have offsets (the log cleaner rewriting a batch):
    /// the batch starts at `base_offset` and ends at `last_offset`, as the original did,
    /// even when records in between (or at either end) were removed.
    pub fn encode_with_offsets(
        base_offset: i64,
        last_offset: i64,
        records: &[StoredRecord],
        timestamp_type: TimestampType,
    ) -> Result<Self, BatchError> {
        let with_deltas: Vec<(i64, &Record)> = records
            .iter()
            .map(|r| (r.offset - base_offset, &r.record))
            .collect();
        if with_deltas
            .iter()
            .any(|(d, _)| *d < 0 || *d > last_offset - base_offset)
        {
            return Err(BatchError::Malformed("record offsets outside the batch"));
        }
        let mut batch = Self::encode_deltas(
            base_offset,
            &with_deltas,
            last_offset - base_offset,
            timestamp_type,
        )?;
        batch.set_base_offset(base_offset);
        Ok(batch)
    }

    fn encode_deltas(
        base_offset: i64,
        records: &[(i64, &Record)],
        last_offset_delta: i64,
        timestamp_type: TimestampType,
    ) -> Result<Self, BatchError> {
        let (_, first) = records.first().ok_or(BatchError::Empty)?;
        if records.len() > i32::MAX as usize || last_offset_delta > i32::MAX as i64 {
            return Err(BatchError::Malformed("too many records for one batch"));
        }
        let base_timestamp = first.timestamp_ms;
        let max_timestamp = records
            .iter()
            .map(|(_, r)| r.timestamp_ms)
            .max()
            .unwrap_or(base_timestamp);
        let body: usize = records
            .iter()
            .map(|(delta, r)| {
                let n = record_body_bytes(r, r.timestamp_ms.wrapping_sub(base_timestamp), *delta);
                varint_bytes(n as i64) + n
            })
            .sum();
        let mut buf = Vec::with_capacity(BATCH_HEADER_BYTES + body);
        buf.resize(BATCH_HEADER_BYTES, 0);
        let attributes: u16 = match timestamp_type {
            TimestampType::CreateTime => 0,
            TimestampType::LogAppendTime => TIMESTAMP_TYPE_BIT,
        };
        put_i64(&mut buf, BASE_OFFSET_POS, base_offset);
        put_i32(&mut buf, LEADER_EPOCH_POS, -1);
        buf[MAGIC_POS] = MAGIC_V2;
        put_u16(&mut buf, ATTRIBUTES_POS, attributes);
        put_i32(&mut buf, LAST_OFFSET_DELTA_POS, last_offset_delta as i32);
        put_i64(&mut buf, BASE_TIMESTAMP_POS, base_timestamp);
        put_i64(&mut buf, MAX_TIMESTAMP_POS, max_timestamp);
        put_i64(&mut buf, PRODUCER_ID_POS, -1);
        put_u16(&mut buf, PRODUCER_EPOCH_POS, u16::MAX);
        put_i32(&mut buf, BASE_SEQUENCE_POS, -1);
        put_i32(&mut buf, RECORDS_COUNT_POS, records.len() as i32);
        for (delta, r) in records {
            let ts_delta = r.timestamp_ms.wrapping_sub(base_timestamp);
            let n = record_body_bytes(r, ts_delta, *delta);
            write_varint(&mut buf, n as i64);
            buf.push(0);
            write_varint(&mut buf, ts_delta);
            write_varint(&mut buf, *delta);
            write_nullable_bytes(&mut buf, r.key.as_deref());
            write_nullable_bytes(&mut buf, r.value.as_deref());
            write_varint(&mut buf, r.headers.len() as i64);
            for h in &r.headers {
                write_nullable_bytes(&mut buf, Some(h.key.as_bytes()));
                write_nullable_bytes(&mut buf, h.value.as_deref());
            }
        }
        let length = buf.len() - LOG_OVERHEAD_BYTES;
        if length > i32::MAX as usize {
            return Err(BatchError::Malformed("batch larger than 2 GiB"));
        }
        put_i32(&mut buf, LENGTH_POS, length as i32);
        let mut batch = RecordBatch { buf };
        batch.update_crc();
        Ok(batch)
    }

    /// This batch with its records section compressed with `codec`, as a Kafka
    /// producer with that `compression.type` sends it. The batch must be uncompressed.
    pub fn compress(self, codec: CompressionType) -> Result<Self, BatchError> {
        if self.view().compression()? != CompressionType::None {
            return Err(BatchError::Malformed("the batch is compressed already"));
        }
        if codec == CompressionType::None {
            return Ok(self);
        }
        let packed = codec.compress(&self.buf[BATCH_HEADER_BYTES..])?;
        let mut buf = Vec::with_capacity(BATCH_HEADER_BYTES + packed.len());
        buf.extend_from_slice(&self.buf[..BATCH_HEADER_BYTES]);
        buf.extend_from_slice(&packed);
        let length = i32::try_from(buf.len() - LOG_OVERHEAD_BYTES)
            .map_err(|_| BatchError::Malformed("batch larger than 2 GiB"))?;
        put_i32(&mut buf, LENGTH_POS, length);
        let attributes = (self.view().attributes() & !COMPRESSION_MASK) | codec.id();
        put_u16(&mut buf, ATTRIBUTES_POS, attributes);
        write_crc(&mut buf);
        Ok(RecordBatch { buf })
    }

    /// Takes ownership of bytes that should hold exactly one batch — as a Kafka
    /// producer sends it, compressed or not — checking its framing, CRC and records
    /// ([`BatchRef::validate`]). The bytes are kept as they came.
    pub fn from_bytes(buf: Vec<u8>) -> Result<Self, BatchError> {
        let view = BatchRef::parse(&buf)?;
        if view.size_bytes() != buf.len() {
            return Err(BatchError::Malformed("bytes after the end of the batch"));
        }
        view.validate()?;
        Ok(RecordBatch { buf })
    }

    pub fn view(&self) -> BatchRef<'_> {
        BatchRef { buf: &self.buf }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Not covered by the CRC: the log sets it without rechecksumming.
    pub fn set_base_offset(&mut self, offset: i64) {
        put_i64(&mut self.buf, BASE_OFFSET_POS, offset);
    }

    /// Not covered by the CRC, like the base offset.
    pub fn set_partition_leader_epoch(&mut self, epoch: i32) {
        put_i32(&mut self.buf, LEADER_EPOCH_POS, epoch);
    }

    /// Stamps the broker's append time as the batch's max timestamp (Kafka's
    /// LogAppendTime): the record deltas stay, readers use the max timestamp for every
    /// record of such a batch.
    pub fn set_log_append_time(&mut self, now_ms: i64) {
        let attributes = self.view().attributes() | TIMESTAMP_TYPE_BIT;
        put_u16(&mut self.buf, ATTRIBUTES_POS, attributes);
        put_i64(&mut self.buf, MAX_TIMESTAMP_POS, now_ms);
        self.update_crc();
    }

    /// Marks the batch as an idempotent producer's: its id, epoch and the sequence
    /// of its first record (Kafka's producers write these themselves; the broker's
    /// own producers, REST and the coordinators, leave them at -1).
    pub fn set_producer(&mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) {
        put_i64(&mut self.buf, PRODUCER_ID_POS, producer_id);
        put_u16(&mut self.buf, PRODUCER_EPOCH_POS, producer_epoch as u16);
        put_i32(&mut self.buf, BASE_SEQUENCE_POS, base_sequence);
        self.update_crc();
    }

    fn update_crc(&mut self) {
        write_crc(&mut self.buf);
    }
}

/// A borrowed view of one encoded batch (for example inside a read result).
#[derive(Clone, Copy)]
pub struct BatchRef<'a> {
    buf: &'a [u8],
}

impl<'a> BatchRef<'a> {
    /// Frames the batch at the start of `buf` (which may hold more after it). Checks the
    /// length and magic, not the CRC: call [`BatchRef::verify_crc`] for that.
    pub fn parse(buf: &'a [u8]) -> Result<Self, BatchError> {
        if buf.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::Truncated {
                needed_bytes: BATCH_HEADER_BYTES,
                available_bytes: buf.len(),
            });
        }
        let size = framed_size(buf)?;
        if buf[MAGIC_POS] != MAGIC_V2 {
            return Err(BatchError::BadMagic(buf[MAGIC_POS]));
        }
        if buf.len() < size {
            return Err(BatchError::Truncated {
                needed_bytes: size,
                available_bytes: buf.len(),
            });
        }
        Ok(BatchRef { buf: &buf[..size] })
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
    pub fn size_bytes(&self) -> usize {
        self.buf.len()
    }
    pub fn base_offset(&self) -> i64 {
        get_i64(self.buf, BASE_OFFSET_POS)
    }
    pub fn partition_leader_epoch(&self) -> i32 {
        get_i32(self.buf, LEADER_EPOCH_POS)
    }
    pub fn stored_crc(&self) -> u32 {
        get_i32(self.buf, CRC_POS) as u32
    }
    pub fn attributes(&self) -> u16 {
        get_i16(self.buf, ATTRIBUTES_POS) as u16
    }
    /// Attributes bits 0-2 as stored; see [`BatchRef::compression`].
    pub fn compression_codec(&self) -> u16 {
        self.attributes() & COMPRESSION_MASK
    }
    pub fn compression(&self) -> Result<CompressionType, BatchError> {
        CompressionType::from_id(self.compression_codec())
    }
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }
    pub fn last_offset_delta(&self) -> i32 {
        get_i32(self.buf, LAST_OFFSET_DELTA_POS)
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset() + self.last_offset_delta() as i64
    }
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
    pub fn base_timestamp(&self) -> i64 {
        get_i64(self.buf, BASE_TIMESTAMP_POS)
    }
    pub fn max_timestamp(&self) -> i64 {
        get_i64(self.buf, MAX_TIMESTAMP_POS)
    }
    pub fn producer_id(&self) -> i64 {
        get_i64(self.buf, PRODUCER_ID_POS)
    }
    pub fn producer_epoch(&self) -> i16 {
        get_i16(self.buf, PRODUCER_EPOCH_POS)
    }
    pub fn base_sequence(&self) -> i32 {
        get_i32(self.buf, BASE_SEQUENCE_POS)
    }
    pub fn records_count(&self) -> i32 {
        get_i32(self.buf, RECORDS_COUNT_POS)
    }

    /// The CRC-32C of the bytes the CRC covers, as Kafka computes it.
    pub fn computed_crc(&self) -> u32 {
        batch_crc(self.buf)
    }

    pub fn verify_crc(&self) -> Result<(), BatchError> {
        let (stored, computed) = (self.stored_crc(), self.computed_crc());
        if stored != computed {
            return Err(BatchError::CrcMismatch { stored, computed });
        }
        Ok(())
    }

    /// Full check: CRC, then (decompressing a compressed batch, within
    /// [`MAX_DECOMPRESSED_BATCH_BYTES`]) every record decodes, the count matches and
    /// offset deltas rise within `last_offset_delta`.
    pub fn validate(&self) -> Result<(), BatchError> {
        self.verify_crc()?;
        let codec = self.compression()?;
        let count = self.records_count();
        if count <= 0 {
            return Err(BatchError::Empty);
        }
        if self.last_offset_delta() < count - 1 {
            return Err(BatchError::Malformed(
                "last_offset_delta below records_count - 1",
            ));
        }
        // Walk the records without copying them: this runs on every append.
        let section = self.records_section_with(codec)?;
        let mut r = Reader {
            buf: &section.bytes,
        };
        let mut previous_delta = -1i64;
        for _ in 0..count {
            let length = r.varint_len()?;
            let mut body = Reader {
                buf: r.take(length)?,
            };
            let delta = skim_record(&mut body)? as i64;
            if delta <= previous_delta || delta > self.last_offset_delta() as i64 {
                return Err(BatchError::Malformed("offset deltas out of order"));
            }
            previous_delta = delta;
        }
        if !r.buf.is_empty() {
            return Err(BatchError::Malformed(
                "records_count does not match the records",
            ));
        }
        Ok(())
    }

    /// The records section, decompressed when the batch is compressed (within
    /// [`MAX_DECOMPRESSED_BATCH_BYTES`]); borrowed as stored otherwise.
    pub fn records_section(&self) -> Result<RecordsSection<'a>, BatchError> {
        self.records_section_with(self.compression()?)
    }

    fn records_section_with(
        &self,
        codec: CompressionType,
    ) -> Result<RecordsSection<'a>, BatchError> {
        let stored = &self.buf[BATCH_HEADER_BYTES..];
        let bytes = match codec {
            CompressionType::None => Cow::Borrowed(stored),
            codec => Cow::Owned(codec.decompress(stored, MAX_DECOMPRESSED_BATCH_BYTES)?),
        };
        Ok(RecordsSection {
            batch: *self,
            codec,
            bytes,
        })
    }

    /// Decodes the records in order, decompressing first if the batch is compressed
    /// (a failure is the iterator's one item). For LogAppendTime batches every record
    /// carries the batch's max timestamp, as Kafka reports them.
    pub fn records(&self) -> RecordIter<'a> {
        match self.records_section() {
            Ok(section) => section.into_records(),
            Err(e) => RecordIter {
                failed: Some(e),
                remaining: 0,
                ..RecordIter::over(*self, Cow::Borrowed(&[]))
            },
        }
    }

    fn append_time(&self) -> Option<i64> {
        match self.timestamp_type() {
            TimestampType::LogAppendTime => Some(self.max_timestamp()),
            TimestampType::CreateTime => None,
        }
    }
}

/// A batch's records section as its records are read: the stored bytes of an
/// uncompressed batch, or a compressed batch's records decompressed.
pub struct RecordsSection<'a> {
    batch: BatchRef<'a>,
    codec: CompressionType,
    bytes: Cow<'a, [u8]>,
}

impl<'a> RecordsSection<'a> {
    /// The records' bytes, uncompressed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The records in order as borrowed views: offset, timestamp, key and where each
    /// record's bytes are in [`RecordsSection::as_bytes`], without copying anything
    /// (the log cleaner tests keys this way).
    pub fn views(&self) -> RecordViews<'_> {
        RecordViews {
            section: &self.bytes,
            at: 0,
            remaining: self.batch.records_count().max(0),
            base_offset: self.batch.base_offset(),
            base_timestamp: self.batch.base_timestamp(),
            append_time: self.batch.append_time(),
        }
    }

    /// Decodes the records in order (see [`BatchRef::records`]).
    pub fn records(&self) -> RecordIter<'_> {
        RecordIter::over(self.batch, Cow::Borrowed(&self.bytes))
    }

    fn into_records(self) -> RecordIter<'a> {
        RecordIter::over(self.batch, self.bytes)
    }

    /// Writes into `out` a copy of the batch holding only the records whose bytes are
    /// `kept` (ranges from [`RecordView::raw`], in order), as Kafka's cleaner does: the
    /// header is kept (base offset, last offset delta, base timestamp), the records are
    /// copied byte for byte (their deltas stay relative to that header) and, in a
    /// compressed batch, compressed again with the batch's codec; the count, length,
    /// max timestamp (CreateTime: the kept records' largest, `kept_max_timestamp`) and
    /// CRC are rewritten.
    pub fn write_filtered(
        &self,
        kept: &[std::ops::Range<usize>],
        kept_max_timestamp: i64,
        out: &mut Vec<u8>,
    ) -> Result<(), BatchError> {
        if kept.is_empty() {
            return Err(BatchError::Empty);
        }
        out.clear();
        out.extend_from_slice(&self.batch.buf[..BATCH_HEADER_BYTES]);
        let mut plain = Vec::new();
        // Uncompressed records go straight into `out`: no allocation per batch.
        let records = match self.codec {
            CompressionType::None => &mut *out,
            _ => &mut plain,
        };
        for range in kept {
            let raw = self
                .bytes
                .get(range.clone())
                .ok_or(BatchError::Malformed("kept record outside the batch"))?;
            records.extend_from_slice(raw);
        }
        if self.codec != CompressionType::None {
            out.extend_from_slice(&self.codec.compress(&plain)?);
        }
        let length = i32::try_from(out.len() - LOG_OVERHEAD_BYTES)
            .map_err(|_| BatchError::Malformed("batch larger than 2 GiB"))?;
        put_i32(out, LENGTH_POS, length);
        put_i32(out, RECORDS_COUNT_POS, kept.len() as i32);
        if self.batch.timestamp_type() == TimestampType::CreateTime {
            put_i64(out, MAX_TIMESTAMP_POS, kept_max_timestamp);
        }
        write_crc(out);
        Ok(())
    }
}

/// The v2 batch checksum: CRC-32C over everything after the CRC field.
fn batch_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_POS..])
}

/// Recomputes and stores the CRC of a whole framed batch.
fn write_crc(batch: &mut [u8]) {
    let crc = batch_crc(batch);
    batch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Reads `batch_length` from a header and returns the whole batch's size.
fn framed_size(buf: &[u8]) -> Result<usize, BatchError> {
    let length = get_i32(buf, LENGTH_POS);
    if length < (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32 {
        return Err(BatchError::BadLength(length));
    }
    Ok(length as usize + LOG_OVERHEAD_BYTES)
}

/// Just enough of a header to walk a file batch by batch without reading bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub size_bytes: usize,
    pub last_offset_delta: i32,
    pub max_timestamp: i64,
    /// The CRC as stored (over bytes [`ATTRIBUTES_POS`].. of the whole batch).
    pub crc: u32,
}

impl BatchHeader {
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        if buf.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::Truncated {
                needed_bytes: BATCH_HEADER_BYTES,
                available_bytes: buf.len(),
            });
        }
        if buf[MAGIC_POS] != MAGIC_V2 {
            return Err(BatchError::BadMagic(buf[MAGIC_POS]));
        }
        Ok(BatchHeader {
            base_offset: get_i64(buf, BASE_OFFSET_POS),
            size_bytes: framed_size(buf)?,
            last_offset_delta: get_i32(buf, LAST_OFFSET_DELTA_POS),
            max_timestamp: get_i64(buf, MAX_TIMESTAMP_POS),
            crc: get_i32(buf, CRC_POS) as u32,
        })
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
}

/// One record of a batch, borrowed from the batch's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<&'a [u8]>,
    /// A null value: on a compacted topic, a delete marker.
    pub is_tombstone: bool,
    /// Where the record's stored bytes (length prefix included) sit in the batch.
    pub raw: std::ops::Range<usize>,
}

/// Iterates over a records section as [`RecordView`]s. The headers of each record are
/// not looked at (the batch's CRC vouches for them; they are copied as they are).
pub struct RecordViews<'a> {
    section: &'a [u8],
    at: usize,
    remaining: i32,
    base_offset: i64,
    base_timestamp: i64,
    append_time: Option<i64>,
}

impl<'a> Iterator for RecordViews<'a> {
    type Item = Result<RecordView<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let result = self.view_one();
        if result.is_err() {
            self.remaining = 0;
        }
        Some(result)
    }
}

impl<'a> RecordViews<'a> {
    fn view_one(&mut self) -> Result<RecordView<'a>, BatchError> {
        let start = self.at;
        let mut r = Reader {
            buf: &self.section[start..],
        };
        let length = r.varint_len()?;
        let mut body = Reader {
            buf: r.take(length)?,
        };
        let end = self.section.len() - r.buf.len();
        self.at = end;
        body.take(1)?;
        let ts_delta = body.varlong()?;
        let offset_delta = body.varint()?;
        if offset_delta < 0 {
            return Err(BatchError::Malformed("negative offset delta"));
        }
        let key = body.nullable_slice()?;
        let is_tombstone = body.nullable_slice()?.is_none();
        Ok(RecordView {
            offset: self.base_offset + offset_delta as i64,
            timestamp_ms: self
                .append_time
                .unwrap_or(self.base_timestamp.wrapping_add(ts_delta)),
            key,
            is_tombstone,
            raw: start..end,
        })
    }
}

/// Iterates over a batch's records, decoding each. It borrows an uncompressed batch's
/// bytes and owns a compressed one's records, decompressed.
pub struct RecordIter<'a> {
    buf: Cow<'a, [u8]>,
    /// Where the next record starts in `buf`.
    at: usize,
    remaining: i32,
    /// Why the records could not be had at all (decompression): the one item.
    failed: Option<BatchError>,
    base_offset: i64,
    base_timestamp: i64,
    append_time: Option<i64>,
}

impl Iterator for RecordIter<'_> {
    type Item = Result<StoredRecord, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.failed.take() {
            return Some(Err(e));
        }
        if self.remaining == 0 {
            if self.at < self.buf.len() {
                self.at = self.buf.len();
                return Some(Err(BatchError::Malformed("bytes after the last record")));
            }
            return None;
        }
        self.remaining -= 1;
        let result = self.decode_one();
        if result.is_err() {
            self.remaining = 0;
            self.at = self.buf.len();
        }
        Some(result)
    }
}

impl<'a> RecordIter<'a> {
    fn over(batch: BatchRef<'_>, buf: Cow<'a, [u8]>) -> Self {
        RecordIter {
            buf,
            at: 0,
            remaining: batch.records_count().max(0),
            failed: None,
            base_offset: batch.base_offset(),
            base_timestamp: batch.base_timestamp(),
            append_time: batch.append_time(),
        }
    }

    fn decode_one(&mut self) -> Result<StoredRecord, BatchError> {
        let mut r = Reader {
            buf: &self.buf[self.at..],
        };
        let length = r.varint_len()?;
        let mut body = Reader {
            buf: r.take(length)?,
        };
        self.at = self.buf.len() - r.buf.len();
        let _attributes = body.take(1)?;
        let ts_delta = body.varlong()?;
        let offset_delta = body.varint()?;
        if offset_delta < 0 {
            return Err(BatchError::Malformed("negative offset delta"));
        }
        let key = body.nullable_bytes()?;
        let value = body.nullable_bytes()?;
        let header_count = body.varint_len()?;
        let mut headers = Vec::with_capacity(header_count.min(64));
        for _ in 0..header_count {
            let key = body
                .nullable_bytes()?
                .ok_or(BatchError::Malformed("null header key"))?;
            let key = String::from_utf8(key)
                .map_err(|_| BatchError::Malformed("header key is not UTF-8"))?;
            let value = body.nullable_bytes()?;
            headers.push(RecordHeader { key, value });
        }
        if !body.buf.is_empty() {
            return Err(BatchError::Malformed("record longer than its fields"));
        }
        let timestamp_ms = self
            .append_time
            .unwrap_or(self.base_timestamp.wrapping_add(ts_delta));
        Ok(StoredRecord {
            offset: self.base_offset + offset_delta as i64,
            record: Record {
                timestamp_ms,
                key,
                value,
                headers,
            },
        })
    }
}

/// Checks one record body's fields without copying them; returns its offset delta.
fn skim_record(body: &mut Reader<'_>) -> Result<i32, BatchError> {
    body.take(1)?;
    body.varlong()?;
    let offset_delta = body.varint()?;
    if offset_delta < 0 {
        return Err(BatchError::Malformed("negative offset delta"));
    }
    body.nullable_slice()?;
    body.nullable_slice()?;
    for _ in 0..body.varint_len()? {
        let key = body
            .nullable_slice()?
            .ok_or(BatchError::Malformed("null header key"))?;
        std::str::from_utf8(key).map_err(|_| BatchError::Malformed("header key is not UTF-8"))?;
        body.nullable_slice()?;
    }
    if !body.buf.is_empty() {
        return Err(BatchError::Malformed("record longer than its fields"));
    }
    Ok(offset_delta)
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BatchError> {
        if self.buf.len() < n {
            return Err(BatchError::Malformed(
                "field runs past the end of the record",
            ));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn varlong(&mut self) -> Result<i64, BatchError> {
        // Fast path: most fields (attributes, small deltas, short lengths) are one byte.
        if let Some(&byte) = self.buf.first() {
            if byte < 0x80 {
                self.buf = &self.buf[1..];
                return Ok(((byte >> 1) as i64) ^ -((byte & 1) as i64));
            }
        }
        let mut raw: u64 = 0;
        for i in 0..10 {
            let byte = *self
                .buf
                .get(i)
                .ok_or(BatchError::Malformed("varint runs past the end"))?;
            raw |= ((byte & 0x7f) as u64) << (7 * i);
            if byte & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(BatchError::Malformed("varint longer than 10 bytes"))
    }

    fn varint(&mut self) -> Result<i32, BatchError> {
        i32::try_from(self.varlong()?).map_err(|_| BatchError::Malformed("varint out of i32 range"))
    }

    /// A non-negative length or count.
    fn varint_len(&mut self) -> Result<usize, BatchError> {
        usize::try_from(self.varint()?).map_err(|_| BatchError::Malformed("negative length"))
    }

    fn nullable_slice(&mut self) -> Result<Option<&'a [u8]>, BatchError> {
        match self.varint()? {
            -1 => Ok(None),
            n if n < 0 => Err(BatchError::Malformed("negative length")),
            n => Ok(Some(self.take(n as usize)?)),
        }
    }

    fn nullable_bytes(&mut self) -> Result<Option<Vec<u8>>, BatchError> {
        Ok(self.nullable_slice()?.map(<[u8]>::to_vec))
    }
}

fn record_body_bytes(r: &Record, ts_delta: i64, offset_delta: i64) -> usize {
    let nullable = |b: Option<&[u8]>| match b {
        None => varint_bytes(-1),
        Some(b) => varint_bytes(b.len() as i64) + b.len(),
    };
    1 + varint_bytes(ts_delta)
        + varint_bytes(offset_delta)
        + nullable(r.key.as_deref())
        + nullable(r.value.as_deref())
        + varint_bytes(r.headers.len() as i64)
        + r.headers
            .iter()
            .map(|h| nullable(Some(h.key.as_bytes())) + nullable(h.value.as_deref()))
            .sum::<usize>()
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// Bytes a zigzag varint of `n` takes.
pub fn varint_bytes(n: i64) -> usize {
    let bits = 64 - zigzag(n).leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

fn write_varint(buf: &mut Vec<u8>, n: i64) {
    let mut v = zigzag(n);
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn write_nullable_bytes(buf: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => write_varint(buf, -1),
        Some(b) => {
            write_varint(buf, b.len() as i64);
            buf.extend_from_slice(b);
        }
    }
}

fn put_i64(buf: &mut [u8], pos: usize, v: i64) {
    buf[pos..pos + 8].copy_from_slice(&v.to_be_bytes());
}
fn put_i32(buf: &mut [u8], pos: usize, v: i32) {
    buf[pos..pos + 4].copy_from_slice(&v.to_be_bytes());
}
fn put_u16(buf: &mut [u8], pos: usize, v: u16) {
    buf[pos..pos + 2].copy_from_slice(&v.to_be_bytes());
}
fn get_i64(buf: &[u8], pos: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[pos..pos + 8]);
    i64::from_be_bytes(b)
}
fn get_i32(buf: &[u8], pos: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[pos..pos + 4]);
    i32::from_be_bytes(b)
}
fn get_i16(buf: &[u8], pos: usize) -> i16 {
    i16::from_be_bytes([buf[pos], buf[pos + 1]])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn rec(ts: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Record {
        Record {
            timestamp_ms: ts,
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: vec![],
        }
    }

    #[test]
    fn round_trips_records_with_nulls_headers_and_empty_fields() {
        let mut with_headers = rec(5, Some(b""), Some(b"v"));
        with_headers.headers = vec![
            RecordHeader {
                key: "h1".into(),
                value: Some(b"x".to_vec()),
            },
            RecordHeader {
                key: "".into(),
                value: None,
            },
        ];
        let records = vec![
            rec(1000, Some(b"k"), Some(b"value")),
            rec(999, None, None),
            with_headers,
        ];
        let mut batch = RecordBatch::encode(&records, TimestampType::CreateTime).unwrap();
        batch.set_base_offset(42);
        batch.set_partition_leader_epoch(7);
        let view = batch.view();
        view.validate().unwrap();
        assert_eq!(view.base_offset(), 42);
        assert_eq!(view.partition_leader_epoch(), 7);
        assert_eq!(view.last_offset(), 44);
        assert_eq!(view.max_timestamp(), 1000);
        assert_eq!(view.base_timestamp(), 1000);
        let decoded: Vec<_> = view.records().collect::<Result<_, _>>().unwrap();
        let offsets: Vec<i64> = decoded.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![42, 43, 44]);
        let back: Vec<Record> = decoded.into_iter().map(|r| r.record).collect();
        assert_eq!(back, records);
    }

    /// `records` encoded by a Kafka client's encoder (kafka-protocol's), with `codec`.
    fn kafka_encoded(records: &[Record], codec: CompressionType) -> Vec<u8> {
        use kafka_protocol::indexmap::IndexMap;
        use kafka_protocol::protocol::StrBytes;
        use kafka_protocol::records as kp;
        let theirs: Vec<kp::Record> = records
            .iter()
            .enumerate()
            .map(|(i, r)| kp::Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                // The encoder groups records into one batch while offset - sequence
                // holds; the batch's base sequence comes out -1 (no idempotence).
                sequence: i as i32 - 1,
                timestamp_type: kp::TimestampType::Creation,
                offset: i as i64,
                timestamp: r.timestamp_ms,
                key: r.key.clone().map(bytes::Bytes::from),
                value: r.value.clone().map(bytes::Bytes::from),
                headers: r
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            StrBytes::from_string(h.key.clone()),
                            h.value.clone().map(bytes::Bytes::from),
                        )
                    })
                    .collect::<IndexMap<_, _>>(),
            })
            .collect();
        let compression = match codec {
            CompressionType::None => kp::Compression::None,
            CompressionType::Gzip => kp::Compression::Gzip,
            CompressionType::Snappy => kp::Compression::Snappy,
            CompressionType::Lz4 => kp::Compression::Lz4,
            CompressionType::Zstd => kp::Compression::Zstd,
        };
        let mut encoded = bytes::BytesMut::new();
        kp::RecordBatchEncoder::encode(
            &mut encoded,
            &theirs,
            &kp::RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        encoded.to_vec()
    }

    /// Decodes a batch with a Kafka client's decoder (decompressing as it must).
    fn kafka_decoded(batch: &[u8]) -> Vec<kafka_protocol::records::Record> {
        let mut bytes = bytes::Bytes::copy_from_slice(batch);
        kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes)
            .unwrap()
            .records
    }

    fn sample_records() -> Vec<Record> {
        (0..20)
            .map(|i| Record {
                timestamp_ms: 1_000 + i,
                key: Some(format!("key-{}", i % 7).into_bytes()),
                value: (i % 5 != 3).then(|| format!("value {i} ").repeat(10).into_bytes()),
                headers: vec![RecordHeader {
                    key: "h".into(),
                    value: Some(vec![i as u8]),
                }],
            })
            .collect()
    }

    /// A batch as a Kafka producer builds it (CRC-32C, any codec) validates and is
    /// kept as it came; its records read back. And what we write, Kafka's decoder
    /// reads.
    #[test]
    fn batches_a_kafka_client_encodes_validate_as_they_came_and_read_back() {
        let records = sample_records();
        for codec in CompressionType::ALL {
            let encoded = kafka_encoded(&records, codec);
            let batch = RecordBatch::from_bytes(encoded.clone()).unwrap();
            assert_eq!(
                batch.as_bytes(),
                &encoded[..],
                "{codec:?}: stored as it came"
            );
            let view = batch.view();
            assert_eq!(view.compression(), Ok(codec));
            assert_eq!(
                view.stored_crc(),
                crc32c::crc32c(&encoded[ATTRIBUTES_POS..])
            );
            let back: Vec<StoredRecord> = view.records().map(|r| r.unwrap()).collect();
            assert_eq!(
                back.iter().map(|r| r.offset).collect::<Vec<_>>(),
                (0..20).collect::<Vec<_>>()
            );
            let back: Vec<Record> = back.into_iter().map(|r| r.record).collect();
            assert_eq!(back, records, "{codec:?}");

            let ours = RecordBatch::encode(&records, TimestampType::CreateTime)
                .unwrap()
                .compress(codec)
                .unwrap();
            ours.view().validate().unwrap();
            let theirs = kafka_decoded(ours.as_bytes());
            assert_eq!(theirs.len(), 20);
            assert_eq!(theirs[4].value.as_deref(), records[4].value.as_deref());
            assert_eq!(theirs[3].value, None);
        }
    }

    /// Compaction's copy of a compressed batch stays compressed with the batch's codec
    /// and holds the kept records.
    #[test]
    fn a_filtered_copy_of_a_compressed_batch_is_compressed_with_its_codec() {
        let records = sample_records();
        for codec in CompressionType::ALL.into_iter().skip(1) {
            let mut batch = RecordBatch::from_bytes(kafka_encoded(&records, codec)).unwrap();
            batch.set_base_offset(500);
            let section = batch.view().records_section().unwrap();
            let kept: Vec<RecordView<'_>> = section
                .views()
                .map(|v| v.unwrap())
                .filter(|v| (v.offset - 500) % 3 == 0)
                .collect();
            let ranges: Vec<_> = kept.iter().map(|v| v.raw.clone()).collect();
            let mut out = Vec::new();
            section.write_filtered(&ranges, 1_018, &mut out).unwrap();
            let filtered = RecordBatch::from_bytes(out).unwrap();
            let f = filtered.view();
            assert_eq!(f.compression(), Ok(codec));
            assert_eq!(
                (f.base_offset(), f.last_offset(), f.records_count()),
                (500, 519, 7)
            );
            assert_eq!(f.max_timestamp(), 1_018);
            let back: Vec<StoredRecord> = f.records().map(|r| r.unwrap()).collect();
            let offsets: Vec<i64> = back.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, vec![500, 503, 506, 509, 512, 515, 518]);
            assert_eq!(back[2].record, records[6]);
            assert_eq!(kafka_decoded(f.as_bytes()).len(), 7, "{codec:?}");
        }
    }

    #[test]
    fn unknown_codecs_and_compressed_garbage_are_refused() {
        let batch = RecordBatch::encode(&sample_records(), TimestampType::CreateTime).unwrap();
        let mut unknown = batch.as_bytes().to_vec();
        unknown[ATTRIBUTES_POS + 1] |= 5;
        write_crc(&mut unknown);
        assert_eq!(
            RecordBatch::from_bytes(unknown),
            Err(BatchError::UnknownCompression(5))
        );
        // Attributes say gzip; the records are not: the CRC holds, decompression fails.
        let mut mislabelled = batch.as_bytes().to_vec();
        mislabelled[ATTRIBUTES_POS + 1] |= 1;
        write_crc(&mut mislabelled);
        let err = RecordBatch::from_bytes(mislabelled.clone()).unwrap_err();
        assert!(
            matches!(err, BatchError::Decompression { codec: "gzip", .. }),
            "{err}"
        );
        let view = BatchRef::parse(&mislabelled).unwrap();
        let mut records = view.records();
        assert!(matches!(
            records.next(),
            Some(Err(BatchError::Decompression { .. }))
        ));
        assert!(records.next().is_none());
        // A compressed batch whose count disagrees with its records.
        let mut miscounted =
            RecordBatch::from_bytes(kafka_encoded(&sample_records(), CompressionType::Zstd))
                .unwrap()
                .into_bytes();
        put_i32(&mut miscounted, RECORDS_COUNT_POS, 19);
        write_crc(&mut miscounted);
        assert!(matches!(
            RecordBatch::from_bytes(miscounted),
            Err(BatchError::Malformed(_))
        ));
    }

    #[test]
    fn varints_match_kafka_zigzag_encoding() {
        for (n, bytes) in [
            (0i64, vec![0u8]),
            (-1, vec![1]),
            (1, vec![2]),
            (63, vec![126]),
            (-64, vec![127]),
            (64, vec![128, 1]),
            (300, vec![216, 4]),
        ] {
            let mut buf = Vec::new();
            write_varint(&mut buf, n);
            assert_eq!(buf, bytes, "encoding {n}");
            assert_eq!(varint_bytes(n), bytes.len());
            assert_eq!(Reader { buf: &buf }.varlong().unwrap(), n);
        }
        let mut buf = Vec::new();
        write_varint(&mut buf, i64::MIN);
        assert_eq!(buf.len(), 10);
        assert_eq!(Reader { buf: &buf }.varlong().unwrap(), i64::MIN);
    }

    #[test]
    fn crc_detects_every_single_bit_flip_after_the_crc_field() {
        let batch = RecordBatch::encode(
            &[rec(1, Some(b"key"), Some(b"value"))],
            TimestampType::CreateTime,
        )
        .unwrap();
        for pos in ATTRIBUTES_POS..batch.as_bytes().len() {
            for bit in 0..8 {
                let mut bytes = batch.as_bytes().to_vec();
                bytes[pos] ^= 1 << bit;
                let view = BatchRef::parse(&bytes).unwrap();
                assert!(
                    view.verify_crc().is_err(),
                    "flip at {pos}:{bit} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn a_filtered_copy_keeps_the_chosen_records_byte_for_byte() {
        let mut with_header = rec(30, Some(b"c"), Some(b"3"));
        with_header.headers = vec![RecordHeader {
            key: "h".into(),
            value: Some(b"x".to_vec()),
        }];
        let records = vec![
            rec(10, Some(b"a"), Some(b"1")),
            rec(20, Some(b"b"), None),
            with_header,
        ];
        let mut batch = RecordBatch::encode(&records, TimestampType::CreateTime).unwrap();
        batch.set_base_offset(100);
        let section = batch.view().records_section().unwrap();
        let views: Vec<RecordView<'_>> = section.views().map(|v| v.unwrap()).collect();
        assert_eq!(views[1].key, Some(&b"b"[..]));
        assert!(views[1].is_tombstone && !views[0].is_tombstone);
        assert_eq!(views[2].offset, 102);
        let mut out = Vec::new();
        section
            .write_filtered(&[views[0].raw.clone(), views[2].raw.clone()], 30, &mut out)
            .unwrap();
        let filtered = RecordBatch::from_bytes(out).unwrap();
        let f = filtered.view();
        assert_eq!((f.base_offset(), f.last_offset()), (100, 102));
        assert_eq!(f.max_timestamp(), 30);
        let back: Vec<StoredRecord> = f.records().map(|r| r.unwrap()).collect();
        assert_eq!(back.len(), 2);
        assert_eq!((back[0].offset, &back[0].record), (100, &records[0]));
        assert_eq!((back[1].offset, &back[1].record), (102, &records[2]));
    }

    #[test]
    fn base_offset_and_epoch_are_outside_the_crc() {
        let mut batch =
            RecordBatch::encode(&[rec(1, None, Some(b"v"))], TimestampType::CreateTime).unwrap();
        let crc = batch.view().stored_crc();
        batch.set_base_offset(1 << 40);
        batch.set_partition_leader_epoch(3);
        assert_eq!(batch.view().stored_crc(), crc);
        batch.view().validate().unwrap();
    }

    #[test]
    fn log_append_time_overrides_record_timestamps() {
        let mut batch = RecordBatch::encode(
            &[rec(1, None, Some(b"a")), rec(2, None, Some(b"b"))],
            TimestampType::CreateTime,
        )
        .unwrap();
        batch.set_log_append_time(777);
        let view = batch.view();
        view.validate().unwrap();
        assert_eq!(view.timestamp_type(), TimestampType::LogAppendTime);
        let ts: Vec<i64> = view
            .records()
            .map(|r| r.unwrap().record.timestamp_ms)
            .collect();
        assert_eq!(ts, vec![777, 777]);
    }

    #[test]
    fn rejects_empty_truncated_and_foreign_bytes() {
        assert_eq!(
            RecordBatch::encode(&[], TimestampType::CreateTime),
            Err(BatchError::Empty)
        );
        let batch =
            RecordBatch::encode(&[rec(1, None, Some(b"abc"))], TimestampType::CreateTime).unwrap();
        let bytes = batch.as_bytes();
        assert!(matches!(
            BatchRef::parse(&bytes[..bytes.len() - 1]),
            Err(BatchError::Truncated { .. })
        ));
        assert!(matches!(
            BatchRef::parse(&bytes[..10]),
            Err(BatchError::Truncated { .. })
        ));
        let mut wrong_magic = bytes.to_vec();
        wrong_magic[MAGIC_POS] = 1;
        assert_eq!(
            BatchRef::parse(&wrong_magic).err(),
            Some(BatchError::BadMagic(1))
        );
        let mut extra = bytes.to_vec();
        extra.push(0);
        assert!(RecordBatch::from_bytes(extra).is_err());
        assert!(RecordBatch::from_bytes(bytes.to_vec()).is_ok());
    }
}
