//! The storage engine: a partition's log as Kafka lays it out on disk, with no actors
//! in it (the partition actor owns a [`Log`] and is its only user).
//!
//! ```text
//! <log.dirs>/<topic>-<partition>/
//!   00000000000000000000.log        record batches (batch.rs), CRC-checked
//!   00000000000000000000.index      offset -> position, sparse, mmapped (offset_index.rs)
//!   00000000000000000000.timeindex  timestamp -> offset, sparse, mmapped (time_index.rs)
//!   00000000000001048576.log …      later segments, named by base offset
//!   log.checkpoint                  log start offset and recovery point (checkpoint.rs)
//!   .clean_shutdown                 present only while the log is closed cleanly
//! ```

pub mod batch;
pub mod checkpoint;
pub mod compaction;
mod corruption;
pub mod error;
pub mod flush;
mod index;
mod log;
pub mod log_config;
mod offset_index;
pub mod recovery;
pub mod retention;
pub mod segment;
mod time_index;

pub use batch::{
    BatchError, BatchRef, Record, RecordBatch, RecordHeader, RecordView, StoredRecord,
    TimestampType, BATCH_HEADER_BYTES,
};
pub use error::{LogError, LogResult};
pub use flush::{FlushDone, FlushTicket};
pub use log::{AppendInfo, FetchData, Log, LogStats};
pub use log_config::{Clock, FlushPolicy, LogConfig, ManualClock, SystemClock};
pub use retention::{segments_to_delete, RetentionPolicy, RetentionReason};
pub use segment::{remove_files, segment_file, SegmentInfo};
pub use time_index::TimestampOffset;
