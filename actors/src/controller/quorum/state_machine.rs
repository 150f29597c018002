//! The quorum's state machine: openraft's `RaftStateMachine` over [`ClusterState`].
//!
//! A committed entry applies here, in log order, on every voter: a batch through
//! [`ClusterState::apply_batch`] (all or none; a refusal is the answer, not an
//! error, so every voter refuses alike), a leader's blank entry as nothing, a
//! membership as the stored membership. After each apply — and after a snapshot is
//! installed, and at open — the state is published as [`Applied`] on a watch, its
//! index never going backwards.
//!
//! The state lives in memory; what is durable is the snapshot, which openraft asks
//! for every `snapshot_every_entries` entries (and then purges the log behind it),
//! and the log itself: at open, the state is the snapshot's, and openraft applies the
//! log's committed entries after it again. A snapshot is one JSON file, replaced
//! atomically:
//!
//! ```text
//! snapshot.json   {"meta": {"last_log_id": …, "last_membership": …, "snapshot_id": …},
//!                  "state": <ClusterState>}
//! ```
//!
//! Its bytes are also what a leader sends a follower too far behind for the log.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Mutex};

use super::{Applied, BatchOutcome, QuorumError, TypeConfig};
use crate::controller::state::ClusterState;
use crate::storage::checkpoint::write_file_atomically;

const SNAPSHOT_FILE: &str = "snapshot.json";

type NodeId = u64;
type Meta = SnapshotMeta<NodeId, BasicNode>;
type Membership = StoredMembership<NodeId, BasicNode>;
type Result<T> = std::result::Result<T, StorageError<NodeId>>;

#[derive(Debug, Serialize, Deserialize)]
struct SnapshotFile {
    meta: Meta,
    state: ClusterState,
}

/// Borrowed form of [`SnapshotFile`], to write one without cloning the state.
#[derive(Serialize)]
struct SnapshotFileRef<'a> {
    meta: &'a Meta,
    state: &'a ClusterState,
}

/// The snapshot on disk, as far as anyone may know: its meta, behind a lock held
/// while the file is replaced, so a builder that started before an install cannot
/// put an older snapshot back over it.
type CurrentSnapshot = Arc<Mutex<Option<Meta>>>;

pub struct StateMachine {
    dir: PathBuf,
    state: ClusterState,
    last_applied: Option<LogId<NodeId>>,
    membership: Membership,
    snapshot: CurrentSnapshot,
    applied: watch::Sender<Arc<Applied>>,
}

impl StateMachine {
    /// Opens the state machine in `dir` at its snapshot (or empty), and the watch
    /// its applied state is published on.
    pub fn open(
        dir: &Path,
    ) -> std::result::Result<(StateMachine, watch::Receiver<Arc<Applied>>), QuorumError> {
        let path = dir.join(SNAPSHOT_FILE);
        let snapshot: Option<SnapshotFile> = match std::fs::read(&path) {
            Ok(bytes) => {
                Some(
                    serde_json::from_slice(&bytes).map_err(|e| QuorumError::Corrupt {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?,
                )
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(QuorumError::storage(&path)(e)),
        };
        let (meta, state) = match snapshot {
            Some(file) => (Some(file.meta), file.state),
            None => (None, ClusterState::default()),
        };
        let last_applied = meta.as_ref().and_then(|m| m.last_log_id);
        let membership = meta
            .as_ref()
            .map(|m| m.last_membership.clone())
            .unwrap_or_default();
        if let Some(index) = last_applied.map(|l| l.index) {
            log::info!("quorum: state at snapshot {index} ({})", path.display());
        }
        let applied = Arc::new(Applied {
            index: last_applied.map_or(0, |l| l.index),
            state: state.clone(),
        });
        let (tx, rx) = watch::channel(applied);
        let machine = StateMachine {
            dir: dir.to_path_buf(),
            state,
            last_applied,
            membership,
            snapshot: Arc::new(Mutex::new(meta)),
            applied: tx,
        };
        Ok((machine, rx))
    }

    fn publish(&self) {
        let index = self.last_applied.map_or(0, |l| l.index);
        let applied = Arc::new(Applied {
            index,
            state: self.state.clone(),
        });
        self.applied.send_if_modified(|current| {
            if index < current.index {
                log::warn!(
                    "quorum: not publishing state at {index}, behind the published {}",
                    current.index
                );
                return false;
            }
            *current = applied;
            true
        });
    }
}

/// Writes a snapshot file on a blocking thread.
async fn write_snapshot(dir: &Path, meta: &Meta, bytes: Vec<u8>) -> Result<()> {
    let path = dir.join(SNAPSHOT_FILE);
    let written = tokio::task::spawn_blocking(move || write_file_atomically(&path, &bytes))
        .await
        .map_err(|e| AnyError::error(e.to_string()))
        .and_then(|written| written.map_err(|e| AnyError::new(&e)));
    written.map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), e).into())
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, Membership)> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<BatchOutcome>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut outcomes = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            let outcome = match entry.payload {
                EntryPayload::Blank => BatchOutcome::Applied,
                EntryPayload::Normal(batch) => {
                    match self.state.apply_batch(entry.log_id.index, &batch.records) {
                        Ok(()) => BatchOutcome::Applied,
                        Err(e) => {
                            log::info!("quorum: batch at {} refused: {e}", entry.log_id.index);
                            BatchOutcome::Refused(e.to_string())
                        }
                    }
                }
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership);
                    BatchOutcome::Applied
                }
            };
            outcomes.push(outcome);
        }
        self.publish();
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            dir: self.dir.clone(),
            state: self.state.clone(),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            snapshot: self.snapshot.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<()> {
        let bytes = snapshot.into_inner();
        let file: SnapshotFile = serde_json::from_slice(&bytes).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        if file.meta != *meta {
            let e = AnyError::error(format!(
                "the snapshot's data is of {}, its request of {meta}",
                file.meta
            ));
            return Err(StorageIOError::read_snapshot(Some(meta.signature()), e).into());
        }
        let mut current = self.snapshot.lock().await;
        write_snapshot(&self.dir, meta, bytes).await?;
        *current = Some(meta.clone());
        drop(current);
        log::info!("quorum: installed snapshot {meta}");
        self.state = file.state;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>> {
        let current = self.snapshot.lock().await;
        let Some(meta) = current.clone() else {
            return Ok(None);
        };
        let path = self.dir.join(SNAPSHOT_FILE);
        let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
            .await
            .map_err(|e| AnyError::error(e.to_string()))
            .and_then(|read| read.map_err(|e| AnyError::new(&e)))
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), e))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}

/// A copy of the state at the moment openraft asked for a snapshot, written while
/// the state machine goes on applying.
pub struct SnapshotBuilder {
    dir: PathBuf,
    state: ClusterState,
    last_applied: Option<LogId<NodeId>>,
    membership: Membership,
    snapshot: CurrentSnapshot,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>> {
        let index = self
            .last_applied
            .map_or_else(|| "none".to_string(), |l| l.index.to_string());
        let meta = Meta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!("{index}-{}", uuid::Uuid::new_v4()),
        };
        let bytes = serde_json::to_vec(&SnapshotFileRef {
            meta: &meta,
            state: &self.state,
        })
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e)))?;
        let mut current = self.snapshot.lock().await;
        let newer_on_disk = current
            .as_ref()
            .is_some_and(|on_disk| on_disk.last_log_id > meta.last_log_id);
        if newer_on_disk {
            // A snapshot installed while this one was being made: keep it.
            log::debug!("quorum: snapshot {meta} is older than the one on disk; not written");
        } else {
            write_snapshot(&self.dir, &meta, bytes.clone()).await?;
            *current = Some(meta.clone());
            log::info!("quorum: wrote snapshot {meta}");
        }
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    use openraft::storage::{RaftLogStorage, RaftStateMachine};
    use openraft::testing::{StoreBuilder, Suite};
    use openraft::{CommittedLeaderId, Membership as RaftMembership};

    use crate::controller::quorum::log_store::LogStore;
    use crate::controller::quorum::MetadataBatch;
    use crate::controller::records::{MetadataRecord, TopicRecord};

    fn log_id(term: u64, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn batch(index: u64, records: Vec<MetadataRecord>) -> Entry<TypeConfig> {
        Entry {
            log_id: log_id(1, index),
            payload: EntryPayload::Normal(MetadataBatch { records }),
        }
    }

    fn topic(name: &str, id: &str) -> MetadataRecord {
        MetadataRecord::Topic(TopicRecord {
            name: name.into(),
            topic_id: id.into(),
        })
    }

    fn membership(index: u64) -> Entry<TypeConfig> {
        let voters = BTreeSet::from([1, 2, 3]);
        let nodes = voters
            .iter()
            .map(|id| (*id, BasicNode::new(format!("127.0.0.1:{}", 9000 + id))))
            .collect::<std::collections::BTreeMap<_, _>>();
        Entry {
            log_id: log_id(1, index),
            payload: EntryPayload::Membership(RaftMembership::new(vec![voters], nodes)),
        }
    }

    /// Stores in a temporary directory, for openraft's suite.
    struct TempStores;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for TempStores {
        async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine)> {
            let failed = |e: &dyn std::fmt::Display| -> StorageError<NodeId> {
                StorageIOError::write(AnyError::error(e.to_string())).into()
            };
            let dir = tempfile::tempdir().map_err(|e| failed(&e))?;
            let log = LogStore::open(dir.path()).map_err(|e| failed(&e))?;
            let (machine, _applied) = StateMachine::open(dir.path()).map_err(|e| failed(&e))?;
            Ok((dir, log, machine))
        }
    }

    /// openraft's own conformance suite for storage v2: logs, votes, purge,
    /// truncation, membership, snapshots built, read and installed.
    #[test]
    fn openraft_storage_suite() {
        Suite::test_all(TempStores).unwrap();
    }

    #[tokio::test]
    async fn batches_apply_all_or_none_and_are_published() {
        let dir = tempfile::tempdir().unwrap();
        let (mut machine, applied) = StateMachine::open(dir.path()).unwrap();
        let outcomes = machine
            .apply([
                membership(0),
                batch(1, vec![topic("a", "id-a")]),
                // The second record clashes: the first must not apply either.
                batch(2, vec![topic("b", "id-b"), topic("a", "id-c")]),
            ])
            .await
            .unwrap();
        assert_eq!(outcomes[0], BatchOutcome::Applied);
        assert_eq!(outcomes[1], BatchOutcome::Applied);
        assert!(matches!(&outcomes[2], BatchOutcome::Refused(m) if m.contains("already exists")));
        let published = applied.borrow().clone();
        assert_eq!(published.index, 2);
        assert!(published.state.topic("a").is_some());
        assert!(published.state.topic("b").is_none());
    }

    #[tokio::test]
    async fn a_snapshot_round_trips_through_disk_and_install() {
        let dir = tempfile::tempdir().unwrap();
        let (mut machine, _) = StateMachine::open(dir.path()).unwrap();
        machine
            .apply([
                membership(0),
                batch(1, vec![topic("a", "id-a")]),
                batch(2, vec![topic("b", "id-b")]),
            ])
            .await
            .unwrap();
        let built = machine
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(built.meta.last_log_id, Some(log_id(1, 2)));
        assert_eq!(built.meta.last_membership.log_id(), &Some(log_id(1, 0)));
        let state = machine.state.clone();
        drop(machine);

        // Reopened: the snapshot's state, published at once.
        let (mut reopened, applied) = StateMachine::open(dir.path()).unwrap();
        assert_eq!(applied.borrow().index, 2);
        assert_eq!(applied.borrow().state, state);
        let (last, members) = reopened.applied_state().await.unwrap();
        assert_eq!(last, Some(log_id(1, 2)));
        assert_eq!(members, built.meta.last_membership);
        let current = reopened.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, built.meta);

        // Installed on another node.
        let other = tempfile::tempdir().unwrap();
        let (mut follower, follower_applied) = StateMachine::open(other.path()).unwrap();
        let mut data = follower.begin_receiving_snapshot().await.unwrap();
        *data = *current.snapshot;
        follower
            .install_snapshot(&current.meta, data)
            .await
            .unwrap();
        assert_eq!(follower_applied.borrow().state, state);
        assert_eq!(follower_applied.borrow().index, 2);
        let (_, reopened_follower) = StateMachine::open(other.path()).unwrap();
        assert_eq!(reopened_follower.borrow().state, state);

        // A snapshot whose data is not the one its request names is refused.
        let mut wrong = current.meta.clone();
        wrong.last_log_id = Some(log_id(1, 9));
        let data = Box::new(Cursor::new(
            std::fs::read(dir.path().join(SNAPSHOT_FILE)).unwrap(),
        ));
        assert!(follower.install_snapshot(&wrong, data).await.is_err());
        let garbage = Box::new(Cursor::new(b"not json".to_vec()));
        assert!(follower.install_snapshot(&wrong, garbage).await.is_err());
        assert_eq!(follower_applied.borrow().index, 2);
    }

    #[tokio::test]
    async fn a_log_store_and_state_machine_share_a_directory() {
        // The log store's files and the snapshot's do not collide.
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogStore::open(dir.path()).unwrap();
        let (mut machine, _) = StateMachine::open(dir.path()).unwrap();
        machine.apply([membership(0)]).await.unwrap();
        machine
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        log.save_vote(&openraft::Vote::new(1, 1)).await.unwrap();
        assert!(LogStore::open(dir.path()).is_ok());
        assert!(StateMachine::open(dir.path()).is_ok());
    }
}
