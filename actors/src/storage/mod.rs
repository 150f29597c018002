//! The storage engine: a partition's log as Kafka lays it out on disk, with no actors
//! in it (the partition actor owns a [`Log`] and is its only user).
//!
//! ```text
//! <log.dirs>/<topic>-<partition>/
//!   00000000000000000000.log        record batches (batch.rs), CRC-checked
//!   00000000000000000000.index      offset -> position, sparse, mmapped (offset_index.rs)
//!   00000000000000000000.timeindex  timestamp -> offset, sparse, mmapped (time_index.rs)
//!   00000000000001048576.log …      later segments, named by base offset
//!   log.checkpoint                  log start offset, recovery point, cleaner offset
//!                                   (recovery.rs; format: checkpoint.rs)
//!   leader-epoch-checkpoint         each leader epoch's start offset (leader_epoch.rs)
//!   high-watermark-checkpoint       the high watermark as last checkpointed
//!                                   (high_watermark.rs)
//!   00000000000001048576.snapshot   producer state when the log ended there, taken at
//!                                   each roll and at close (producer_snapshot.rs;
//!                                   the rules: producer_state.rs)
//!   .clean_shutdown                 present only while the log is closed cleanly
//! ```
//!
//! Reads and produced batches use large buffers from [`buffers`], kept for reuse.

pub mod batch;
pub mod buffers;
pub mod checkpoint;
pub mod compaction;
pub mod compression;
mod corruption;
pub mod crc_conversion;
pub mod error;
pub mod flush;
pub mod high_watermark;
mod index;
pub mod leader_epoch;
pub mod legacy;
mod log;
pub mod log_config;
mod offset_index;
pub mod producer_snapshot;
pub mod producer_state;
pub mod recovery;
pub mod retention;
pub mod segment;
mod time_index;

pub use batch::{
    BatchError, BatchRef, Record, RecordBatch, RecordHeader, RecordView, RecordsSection,
    StoredRecord, TimestampType, BATCH_HEADER_BYTES,
};
pub use compression::{CompressionType, MAX_DECOMPRESSED_BATCH_BYTES};
pub use crc_conversion::{convert_partitions, ConversionStats};
pub use error::{LogError, LogResult};
pub use flush::{FlushDone, FlushTicket};
pub use leader_epoch::{EpochEndOffset, EpochEntry, LeaderEpochCache};
pub use legacy::{convert_message_set, records_magic, ConvertedMessageSet};
pub use log::{AppendInfo, FetchData, Log, LogStats};
pub use log_config::{FlushPolicy, LogConfig, SystemWallClock, WallClock};
pub use producer_state::{
    AppendCheck, BatchMetadata, ProducerBatch, ProducerError, ProducerStateEntry,
    ProducerStateManager, BATCHES_RETAINED, NO_PRODUCER_ID,
};
pub use retention::{segments_to_delete, RetentionPolicy, RetentionReason};
pub use segment::{remove_files, segment_file, SegmentInfo};
pub use time_index::TimestampOffset;
