//! The leader-epoch cache (Kafka's `LeaderEpochFileCache`): for every leader epoch
//! that wrote to this log, the first offset it wrote.
//!
//! It exists for followers. A replica that comes back after a leader change must drop
//! whatever it holds that the new leader does not: it asks the leader where its own
//! latest epoch ends on the leader's log ([`LeaderEpochCache::end_offset_for`]) and
//! truncates there. Truncating to its high watermark instead can lose acknowledged
//! records or leave two replicas with different records at one offset (KIP-101).
//! A leader stamps its epoch on each batch it appends and records here the offset at
//! which each new epoch begins; a follower records the epochs of the batches it
//! copies, so both logs carry the same history.
//!
//! The cache lives in `leader-epoch-checkpoint` in the partition directory. Every
//! change writes the whole file first (atomically, see
//! [`super::checkpoint::write_file_atomically`]) and only then changes the cache in
//! memory: a failed write leaves both as they were. Changes are rare (a new epoch,
//! a truncation, retention moving the log start), so this costs nothing on appends.
//!
//! ```text
//! 0           format version
//! 2           number of entries
//! 0 0         one "<epoch> <start offset>" line per entry: epochs strictly rising,
//! 3 1200      start offsets never falling
//! ```

use std::path::{Path, PathBuf};

use super::checkpoint::{read_checkpoint, write_checkpoint};
use super::error::{LogError, LogResult};

/// The file in the partition directory holding the cache.
pub const LEADER_EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

/// A leader epoch and the first offset written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// Where a leader epoch's records end in a log: the answer to a follower's
/// OffsetsForLeaderEpoch request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEndOffset {
    /// The largest epoch this log knows that is not after the one asked for (the one
    /// asked for when this log knows none that old).
    pub epoch: i32,
    /// One past that epoch's last offset here: where the next epoch begins, or the log
    /// end offset for the latest epoch.
    pub end_offset: i64,
}

#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the cache of the log in `dir`. A missing file is an empty cache (a new
    /// partition, or one written before the cache existed: the next append records
    /// its epoch); a damaged one is logged and treated the same, and replaced at the
    /// next change.
    pub fn load(dir: &Path) -> LogResult<LeaderEpochCache> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT_FILE);
        let entries = match read_entries(&path) {
            Ok(entries) => entries,
            Err(LogError::Corrupt { reason, .. }) => {
                log::warn!("ignoring {}: {reason}", path.display());
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        Ok(LeaderEpochCache { path, entries })
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` begins at `start_offset`, before a batch of that epoch is
    /// written there. Nothing changes for the epoch already in force. An epoch that
    /// goes back, or a start before an existing entry's, replaces the entries it
    /// contradicts (a follower that copies a new leader's history over its own).
    /// Negative epochs (batches written without a leader epoch) are not recorded.
    /// Returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> LogResult<bool> {
        if epoch < 0 || start_offset < 0 {
            return Ok(false);
        }
        let known = self
            .entries
            .last()
            .is_some_and(|l| l.epoch == epoch && l.start_offset <= start_offset);
        if known {
            return Ok(false);
        }
        let mut entries = self.entries.clone();
        let kept = entries
            .iter()
            .position(|e| e.epoch >= epoch || e.start_offset >= start_offset)
            .unwrap_or(entries.len());
        let dropped = entries.split_off(kept);
        if dropped.iter().any(|e| e.epoch != epoch) {
            log::warn!(
                "{}: epoch {epoch} at offset {start_offset} replaces {dropped:?}",
                self.path.display()
            );
        }
        entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        self.replace(entries)
    }

    /// Where `epoch` ends in a log whose end offset is `log_end_offset`, or `None`
    /// when the log knows no epoch at all or only earlier ones than `epoch`.
    pub fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> Option<EpochEndOffset> {
        let latest = self.entries.last()?;
        if epoch == latest.epoch {
            return Some(EpochEndOffset {
                epoch,
                end_offset: log_end_offset,
            });
        }
        let next = self.entries.partition_point(|e| e.epoch <= epoch);
        let following = self.entries.get(next)?;
        let found = next.checked_sub(1).map_or(epoch, |i| self.entries[i].epoch);
        Some(EpochEndOffset {
            epoch: found,
            end_offset: following.start_offset,
        })
    }

    /// Forgets the epochs that start at or after `end_offset` (the log was truncated
    /// there). Returns whether the cache changed.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> LogResult<bool> {
        let kept = self
            .entries
            .partition_point(|e| e.start_offset < end_offset);
        self.replace(self.entries[..kept].to_vec())
    }

    /// Forgets the epochs wholly before `start_offset` (the log start moved past
    /// them); the one in force there now starts at `start_offset`. Returns whether the
    /// cache changed.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> LogResult<bool> {
        let before = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        let Some(in_force) = before.checked_sub(1) else {
            return Ok(false);
        };
        let mut entries = self.entries[in_force..].to_vec();
        entries[0].start_offset = start_offset;
        self.replace(entries)
    }

    /// Writes `entries` to the file, then takes them; nothing if they are the same.
    fn replace(&mut self, entries: Vec<EpochEntry>) -> LogResult<bool> {
        if entries == self.entries {
            return Ok(false);
        }
        let names: Vec<String> = entries.iter().map(|e| e.epoch.to_string()).collect();
        let lines: Vec<(&str, i64)> = names
            .iter()
            .zip(&entries)
            .map(|(name, e)| (name.as_str(), e.start_offset))
            .collect();
        write_checkpoint(&self.path, &lines)?;
        self.entries = entries;
        Ok(true)
    }
}

/// The entries in `path` (none if it does not exist), checked to rise.
fn read_entries(path: &Path) -> LogResult<Vec<EpochEntry>> {
    let Some(lines) = read_checkpoint(path)? else {
        return Ok(Vec::new());
    };
    let corrupt = |line: usize, reason: &str| LogError::Corrupt {
        path: path.to_path_buf(),
        position: line as u64,
        reason: format!("entry {}: {reason}", line + 1),
    };
    let mut entries: Vec<EpochEntry> = Vec::with_capacity(lines.len());
    for (i, (epoch, start_offset)) in lines.into_iter().enumerate() {
        let epoch: i32 = epoch
            .parse()
            .map_err(|_| corrupt(i, "epoch is not a number"))?;
        let rising = entries
            .last()
            .is_none_or(|l| epoch > l.epoch && start_offset >= l.start_offset);
        if epoch < 0 || start_offset < 0 || !rising {
            return Err(corrupt(i, "epochs and start offsets must rise"));
        }
        entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn entry(epoch: i32, start_offset: i64) -> EpochEntry {
        EpochEntry {
            epoch,
            start_offset,
        }
    }

    fn cache_with(dir: &Path, entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut cache = LeaderEpochCache::load(dir).unwrap();
        for (epoch, start) in entries {
            cache.assign(*epoch, *start).unwrap();
        }
        cache
    }

    #[test]
    fn assign_records_new_epochs_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = LeaderEpochCache::load(dir.path()).unwrap();
        assert!(cache.assign(0, 0).unwrap());
        assert!(!cache.assign(0, 5).unwrap(), "the epoch in force goes on");
        assert!(cache.assign(2, 10).unwrap());
        assert!(!cache.assign(-1, 12).unwrap(), "no epoch, no entry");
        assert_eq!(cache.entries(), &[entry(0, 0), entry(2, 10)]);
        assert_eq!(cache.latest_epoch(), Some(2));
    }

    #[test]
    fn assign_replaces_the_entries_it_contradicts() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = cache_with(dir.path(), &[(0, 0), (2, 10), (3, 20)]);
        // A follower takes a new leader's history: epoch 2 started at 8 there.
        assert!(cache.assign(2, 8).unwrap());
        assert_eq!(cache.entries(), &[entry(0, 0), entry(2, 8)]);
        // An epoch starting before later entries drops them too.
        assert!(cache.assign(5, 4).unwrap());
        assert_eq!(cache.entries(), &[entry(0, 0), entry(5, 4)]);
    }

    #[test]
    fn end_offsets_are_where_the_next_epoch_begins() {
        let dir = tempfile::tempdir().unwrap();
        let cache = cache_with(dir.path(), &[(1, 0), (3, 10), (6, 25)]);
        let end = |epoch| {
            cache
                .end_offset_for(epoch, 40)
                .map(|e| (e.epoch, e.end_offset))
        };
        assert_eq!(
            end(6),
            Some((6, 40)),
            "the latest epoch ends at the log end"
        );
        assert_eq!(end(3), Some((3, 25)));
        assert_eq!(end(4), Some((3, 25)), "an epoch this log never had");
        assert_eq!(end(1), Some((1, 10)));
        assert_eq!(end(0), Some((0, 0)), "older than anything here");
        assert_eq!(end(7), None, "newer than anything here");
        let empty = LeaderEpochCache::load(tempfile::tempdir().unwrap().path()).unwrap();
        assert_eq!(empty.end_offset_for(0, 0), None);
    }

    #[test]
    fn truncation_from_either_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = cache_with(dir.path(), &[(1, 0), (3, 10), (6, 25)]);
        assert!(!cache.truncate_from_end(26).unwrap());
        assert!(cache.truncate_from_end(25).unwrap());
        assert_eq!(cache.entries(), &[entry(1, 0), entry(3, 10)]);
        assert!(cache.truncate_from_start(12).unwrap());
        assert_eq!(cache.entries(), &[entry(3, 12)]);
        assert!(!cache.truncate_from_start(12).unwrap());
        assert!(!cache.truncate_from_start(4).unwrap());
        assert!(cache.truncate_from_end(0).unwrap());
        assert!(cache.entries().is_empty());
    }

    #[test]
    fn changes_are_persisted_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        cache_with(dir.path(), &[(0, 0), (4, 7)])
            .truncate_from_start(3)
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE)).unwrap();
        assert_eq!(text, "0\n2\n0 3\n4 7\n");
        let reloaded = LeaderEpochCache::load(dir.path()).unwrap();
        assert_eq!(reloaded.entries(), &[entry(0, 3), entry(4, 7)]);
    }

    #[test]
    fn a_damaged_file_is_an_empty_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE);
        for bad in [
            "garbage",
            "0\n1\nx 3\n",
            "0\n2\n4 0\n2 5\n",
            "0\n2\n1 9\n2 5\n",
        ] {
            std::fs::write(&path, bad).unwrap();
            let cache = LeaderEpochCache::load(dir.path()).unwrap();
            assert!(cache.entries().is_empty(), "{bad:?}");
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Assign(i32, i64),
        TruncateFromEnd(i64),
        TruncateFromStart(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0i32..12, 0i64..100).prop_map(|(e, o)| Op::Assign(e, o)),
            1 => (0i64..100).prop_map(Op::TruncateFromEnd),
            1 => (0i64..100).prop_map(Op::TruncateFromStart),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Whatever the operations, the cache stays rising, says what a scan of its
        /// entries says, and reloads from disk as it is in memory.
        #[test]
        fn the_cache_stays_ordered_and_durable(ops in proptest::collection::vec(op(), 1..30)) {
            let dir = tempfile::tempdir().unwrap();
            let mut cache = LeaderEpochCache::load(dir.path()).unwrap();
            for op in ops {
                match op {
                    Op::Assign(e, o) => {
                        cache.assign(e, o).unwrap();
                        prop_assert_eq!(cache.latest_epoch(), Some(e));
                    }
                    Op::TruncateFromEnd(o) => {
                        cache.truncate_from_end(o).unwrap();
                        prop_assert!(cache.entries().iter().all(|x| x.start_offset < o));
                    }
                    Op::TruncateFromStart(o) => {
                        cache.truncate_from_start(o).unwrap();
                        prop_assert!(cache.entries().iter().all(|x| x.start_offset >= o));
                    }
                }
                let entries = cache.entries();
                prop_assert!(entries
                    .windows(2)
                    .all(|w| w[0].epoch < w[1].epoch && w[0].start_offset <= w[1].start_offset));
                for asked in 0..13 {
                    // By definition: the last epoch not after `asked` ends where the
                    // first epoch after it starts.
                    let after = entries.iter().find(|x| x.epoch > asked);
                    let at_or_before = entries.iter().rev().find(|x| x.epoch <= asked);
                    let want = match (entries.last(), after) {
                        (None, _) => None,
                        (Some(l), _) if l.epoch == asked => Some((asked, 1000)),
                        (_, None) => None,
                        (_, Some(a)) => Some((at_or_before.map_or(asked, |x| x.epoch), a.start_offset)),
                    };
                    let got = cache.end_offset_for(asked, 1000).map(|x| (x.epoch, x.end_offset));
                    prop_assert_eq!(got, want);
                }
                let reloaded = LeaderEpochCache::load(dir.path()).unwrap();
                prop_assert_eq!(reloaded.entries(), cache.entries());
            }
        }
    }
}
