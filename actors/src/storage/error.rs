//! `LogError`: everything the storage engine can refuse or fail at, typed so that the
//! layers above (actors, then HTTP) map each case to Kafka's and Confluent's error codes
//! in one place.

use std::io;
use std::path::PathBuf;

use super::batch::BatchError;
use super::producer_state::ProducerError;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A read or lookup outside `[log_start_offset, log_end_offset]` (Kafka's
    /// OFFSET_OUT_OF_RANGE). Carries both bounds so callers can reset.
    #[error("offset {requested} is out of range: the log holds offsets [{log_start_offset}, {log_end_offset})")]
    OffsetOutOfRange {
        requested: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },

    /// A batch larger than `max.message.bytes` (Kafka's RECORD_TOO_LARGE / MESSAGE_TOO_LARGE).
    #[error("record batch of {size_bytes} bytes exceeds max.message.bytes = {max_message_bytes}")]
    RecordBatchTooLarge {
        size_bytes: usize,
        max_message_bytes: usize,
    },

    /// A batch handed to `append` that does not check out (Kafka's CORRUPT_MESSAGE /
    /// INVALID_RECORD).
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] BatchError),

    /// Bytes on disk that fail their checksum or framing where the log expected good data.
    #[error("corrupt log data in {path} at byte {position}: {reason}")]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
    },

    /// A stored batch that fails its check in data the log had made durable (Kafka's
    /// CORRUPT_MESSAGE on a read): its offsets cannot be served, the ones after it can
    /// (see [`crate::storage::corruption`]).
    #[error("corrupt record batch in {path} at byte {position}: offsets {first_offset}..={last_offset} cannot be served ({reason})")]
    CorruptBatch {
        path: PathBuf,
        position: u64,
        first_offset: i64,
        last_offset: i64,
        reason: String,
    },

    /// Batches copied from a leader whose offsets do not continue the log: the first
    /// overlaps what the log holds (or goes back), or leaves a gap. Nothing was
    /// written; a follower truncates to its leader's log first.
    #[error("a copied batch at offset {base_offset} does not continue the log, which takes offset {expected_offset} next")]
    NonContiguousAppend {
        base_offset: i64,
        expected_offset: i64,
    },

    /// A client's batch that the producer's state refuses (out of order, fenced
    /// epoch, transactional): nothing was written. See
    /// [`crate::storage::producer_state`].
    #[error(transparent)]
    Producer(#[from] ProducerError),

    #[error("invalid log configuration: {0}")]
    InvalidConfig(String),

    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl LogError {
    /// Whether this is the file system refusing to grow a file (`ENOSPC`, `EDQUOT`):
    /// the log is unchanged (writes cut back what they began), so the owner refuses
    /// the write and stays online, and writes resume once space is freed.
    pub fn is_disk_full(&self) -> bool {
        match self {
            LogError::Io { source, .. } => {
                matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
            }
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> LogError {
        let path = path.into();
        move |source| LogError::Io { path, source }
    }
}

pub type LogResult<T> = Result<T, LogError>;
