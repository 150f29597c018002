//! The high-watermark checkpoint: how far the partition's log was committed when
//! last checkpointed, so that a restart opens the high watermark where it was
//! instead of assuming that everything recovery kept is committed. A follower needs
//! this: it may hold records past its high watermark that a new leader does not.
//!
//! Kafka keeps these numbers for a whole log directory in one
//! `replication-offset-checkpoint` written by its replica manager. Here each
//! partition directory holds its own `high-watermark-checkpoint`, written by the
//! [`super::Log`] with its other checkpoint (its only writer is the partition's
//! actor, so no two actors ever share a file). It is replaced atomically.
//!
//! ```text
//! 0                   format version
//! 1                   number of entries
//! high_watermark 42   the high watermark
//! ```

use std::path::Path;

use super::checkpoint::{read_checkpoint, write_checkpoint};
use super::error::{LogError, LogResult};

/// The file in the partition directory.
pub const HIGH_WATERMARK_CHECKPOINT_FILE: &str = "high-watermark-checkpoint";

const HIGH_WATERMARK_KEY: &str = "high_watermark";

pub(crate) fn write_high_watermark(dir: &Path, high_watermark: i64) -> LogResult<()> {
    write_checkpoint(
        &dir.join(HIGH_WATERMARK_CHECKPOINT_FILE),
        &[(HIGH_WATERMARK_KEY, high_watermark)],
    )
}

/// The checkpointed high watermark; `None` when there is none, or it is damaged
/// (logged), when the caller falls back to the log start offset.
pub(crate) fn read_high_watermark(dir: &Path) -> LogResult<Option<i64>> {
    let path = dir.join(HIGH_WATERMARK_CHECKPOINT_FILE);
    let entries = match read_checkpoint(&path) {
        Ok(entries) => entries,
        Err(LogError::Corrupt { reason, .. }) => {
            log::warn!("ignoring {}: {reason}", path.display());
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let found = entries.and_then(|entries| {
        entries
            .into_iter()
            .find(|(key, _)| key == HIGH_WATERMARK_KEY)
            .map(|(_, offset)| offset)
    });
    match found {
        Some(offset) if offset < 0 => {
            log::warn!(
                "ignoring {}: negative high watermark {offset}",
                path.display()
            );
            Ok(None)
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_high_watermark(dir.path()).unwrap(), None);
        write_high_watermark(dir.path(), 42).unwrap();
        write_high_watermark(dir.path(), 57).unwrap();
        assert_eq!(read_high_watermark(dir.path()).unwrap(), Some(57));
        let text = std::fs::read_to_string(dir.path().join(HIGH_WATERMARK_CHECKPOINT_FILE));
        assert_eq!(text.unwrap(), "0\n1\nhigh_watermark 57\n");
    }

    #[test]
    fn a_damaged_checkpoint_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(HIGH_WATERMARK_CHECKPOINT_FILE);
        for bad in ["junk", "0\n1\nhigh_watermark -3\n", "0\n1\nother 5\n"] {
            std::fs::write(&path, bad).unwrap();
            assert_eq!(read_high_watermark(dir.path()).unwrap(), None, "{bad:?}");
        }
    }
}
