//! Group commit. The owner of a log (the partition actor) never fsyncs inside an
//! append. Instead it takes a [`FlushTicket`] — second handles on the files holding
//! unflushed data, and the log end offset they cover — and runs its `sync` off its own
//! thread. Appends that arrive meanwhile go on being written; when the sync finishes,
//! every append up to the ticket's offset is durable and can be acknowledged, and the
//! next ticket covers everything that queued up during the first. However many
//! producers append concurrently, there is at most one fsync in flight per partition,
//! and each fsync serves every append that was waiting for it.

use std::fs::File;
use std::path::PathBuf;

use super::error::{LogError, LogResult};

/// Files to fsync and the offset that becomes durable once they are.
#[derive(Debug)]
#[must_use = "a flush ticket does nothing until synced and completed"]
pub struct FlushTicket {
    pub(crate) files: Vec<(PathBuf, File)>,
    pub(crate) up_to_offset: i64,
}

/// Proof that a ticket's files were synced; hand it to [`crate::storage::Log::complete_flush`].
#[derive(Debug)]
#[must_use = "complete the flush so the log advances its recovery point"]
pub struct FlushDone {
    pub(crate) up_to_offset: i64,
}

impl FlushTicket {
    /// Every offset below this one is durable once the sync succeeds.
    pub fn up_to_offset(&self) -> i64 {
        self.up_to_offset
    }

    /// fsyncs the files (`fdatasync`: data and the length, which is all a log needs).
    /// Blocking; safe to run on any thread.
    pub fn sync(self) -> LogResult<FlushDone> {
        for (path, file) in &self.files {
            file.sync_data().map_err(LogError::io(path))?;
        }
        Ok(FlushDone {
            up_to_offset: self.up_to_offset,
        })
    }
}

impl FlushDone {
    pub fn up_to_offset(&self) -> i64 {
        self.up_to_offset
    }
}
