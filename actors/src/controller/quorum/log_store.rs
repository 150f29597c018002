//! The quorum's Raft log and vote on disk: openraft's `RaftLogStorage` and
//! `RaftLogReader`.
//!
//! Raft's safety rests on what this promises: a vote is on disk before it is
//! answered, and an entry is on disk before Raft is told so (the `LogFlushed`
//! callback, after `fdatasync`) — a voter that forgot either could elect two leaders
//! or lose a committed entry. Truncation and purging survive restarts.
//!
//! Two files in the quorum's directory:
//!
//! ```text
//! raft-log          entries, appended; each a frame:
//!                   +-----------------+------------------+---------------------+
//!                   | length: u32 BE  | crc32c: u32 BE   | payload: JSON entry |
//!                   | (payload bytes) | (of the payload) | (`length` bytes)    |
//!                   +-----------------+------------------+---------------------+
//! raft-state.json   {"vote": …, "committed": …, "last_purged": …}, replaced
//!                   atomically (temp file, fsync, rename, fsync of the directory)
//! ```
//!
//! The payload is openraft's `Entry` as JSON — operators can read the metadata log,
//! which is small and written rarely. CRC-32C, as Kafka's record batches, catches a
//! torn or rotten frame.
//!
//! **Reopening** scans the frames. A frame cut short, longer than
//! [`MAX_ENTRY_BYTES`], or failing its CRC ends the log: it and everything after it
//! are cut off (a crash in the middle of an append leaves exactly that; an entry not
//! yet fsynced was never acknowledged, so dropping it is safe). A frame whose CRC
//! holds but whose JSON does not decode, or entries out of sequence, are corruption
//! no crash makes: opening fails rather than guess.
//!
//! **Memory**: only an index of the live entries (log id, file position, frame
//! length) is kept; entries are read back from the file (the page cache, mostly) when
//! Raft replicates them, so memory does not grow with the entries' size.
//!
//! **Purge** (Raft dropping entries a snapshot covers) records the purge point in
//! `raft-state.json` first, then forgets the entries; the file keeps their bytes, and
//! reopening skips entries at or below the purge point. Once the dead prefix is
//! [`REWRITE_MIN_PURGED_BYTES`] and no smaller than the live rest, the live entries
//! are copied to `raft-log.rewrite`, fsynced and renamed over `raft-log`: so the file
//! stays within about twice the live log, and each byte is copied at most about once
//! more (a purge comes every `snapshot_every_entries` entries, so rewriting on every
//! one would copy the live log each time). A purge past every entry simply empties
//! the file. **Truncate** (Raft removing a conflicting suffix) cuts the file at the
//! first removed entry and fsyncs.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::ops::{Bound, RangeBounds};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageError, StorageIOError,
    Vote,
};
use serde::{Deserialize, Serialize};

use super::{QuorumError, TypeConfig};
use crate::storage::checkpoint::{sync_dir, write_file_atomically};

const LOG_FILE: &str = "raft-log";
const REWRITE_FILE: &str = "raft-log.rewrite";
const STATE_FILE: &str = "raft-state.json";

/// Length and CRC before each entry.
const FRAME_HEADER_BYTES: u64 = 8;

/// No entry is larger: a proposal's batch is capped well below
/// (`QuorumConfig::max_batch_bytes`), so a length above this is a torn header, not an
/// entry to allocate for.
pub const MAX_ENTRY_BYTES: u32 = 64 << 20;

/// A purged prefix smaller than this is left in the file: rewriting costs more than
/// the bytes it saves.
pub const REWRITE_MIN_PURGED_BYTES: u64 = 1 << 20;

type NodeId = u64;
type RaftEntry = Entry<TypeConfig>;
/// What openraft's storage traits answer; inside, the store works with `io::Result`
/// and says at the boundary what failed (logs, vote).
type Result<T> = std::result::Result<T, StorageError<NodeId>>;

/// What `raft-state.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct LogMeta {
    vote: Option<Vote<NodeId>>,
    /// The last entry known committed: at restart, entries up to it are applied
    /// again without waiting for a leader.
    committed: Option<LogId<NodeId>>,
    last_purged: Option<LogId<NodeId>>,
}

/// Where a live entry is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    log_id: LogId<NodeId>,
    position: u64,
    /// Header and payload.
    frame_bytes: u64,
}

impl Slot {
    fn end(&self) -> u64 {
        self.position + self.frame_bytes
    }
}

/// The open files and the index of live entries, behind the store's one lock: every
/// read and write of the log goes through it, so writes are serialised as Raft
/// requires, and a reader never sees the file swapped under it.
#[derive(Debug)]
struct LogFiles {
    dir: PathBuf,
    file: File,
    /// Live entries, consecutive indexes, oldest first.
    slots: VecDeque<Slot>,
    /// The file's length: where the next frame goes.
    end: u64,
    meta: LogMeta,
}

/// The log store. Clones share it: Raft's log readers (one per replication stream)
/// are clones.
#[derive(Debug, Clone)]
pub struct LogStore {
    files: Arc<Mutex<LogFiles>>,
}

impl LogStore {
    /// Opens (or creates) the log in `dir`, cutting off a torn last entry.
    pub fn open(dir: &Path) -> std::result::Result<LogStore, QuorumError> {
        let files = LogFiles::open(dir)?;
        Ok(LogStore {
            files: Arc::new(Mutex::new(files)),
        })
    }

    /// Runs `op` on the files on a blocking thread (all of it is file I/O).
    async fn with_files<T, F>(&self, op: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut LogFiles) -> io::Result<T> + Send + 'static,
    {
        let files = self.files.clone();
        tokio::task::spawn_blocking(move || op(&mut *lock(&files)?))
            .await
            .map_err(|e| io::Error::other(format!("the log store's task failed: {e}")))?
    }

    /// For what only reads memory.
    fn locked(&self) -> io::Result<std::sync::MutexGuard<'_, LogFiles>> {
        lock(&self.files)
    }
}

fn lock(files: &Mutex<LogFiles>) -> io::Result<std::sync::MutexGuard<'_, LogFiles>> {
    files
        .lock()
        .map_err(|_| io::Error::other("the log store's lock is poisoned"))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn write_logs(e: &io::Error) -> StorageError<NodeId> {
    StorageIOError::write_logs(AnyError::new(e)).into()
}

fn read_logs(e: &io::Error) -> StorageError<NodeId> {
    StorageIOError::read_logs(AnyError::new(e)).into()
}

/// How a frame read at open ended the scan.
enum Scanned {
    Entry(RaftEntry, u64),
    /// Nothing more: a clean end of file.
    End,
    /// Cut short or failing its check: the log ends before it.
    Torn(String),
}

impl LogFiles {
    fn open(dir: &Path) -> std::result::Result<LogFiles, QuorumError> {
        let rewrite = dir.join(REWRITE_FILE);
        // A rewrite the process did not finish: the old log is intact.
        match std::fs::remove_file(&rewrite) {
            Ok(()) => log::warn!("quorum log: removed an unfinished {}", rewrite.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(QuorumError::storage(&rewrite)(e)),
        }
        let meta = read_meta(&dir.join(STATE_FILE))?;
        let path = dir.join(LOG_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(QuorumError::storage(&path))?;
        let mut files = LogFiles {
            dir: dir.to_path_buf(),
            file,
            slots: VecDeque::new(),
            end: 0,
            meta,
        };
        files.scan(&path)?;
        log::info!(
            "quorum log: opened {} ({} live entries, last purged {:?}, {} bytes)",
            path.display(),
            files.slots.len(),
            files.meta.last_purged.map(|l| l.index),
            files.end
        );
        Ok(files)
    }

    /// Reads every frame, indexing the live entries; cuts off a torn tail.
    fn scan(&mut self, path: &Path) -> std::result::Result<(), QuorumError> {
        let file_bytes = self
            .file
            .metadata()
            .map_err(QuorumError::storage(path))?
            .len();
        let mut reader = BufReader::new(self.file.try_clone().map_err(QuorumError::storage(path))?);
        let mut position = 0u64;
        let mut payload = Vec::new();
        let torn = loop {
            match read_frame(&mut reader, file_bytes - position, &mut payload) {
                Ok(Scanned::End) => break None,
                Ok(Scanned::Torn(reason)) => break Some(reason),
                Ok(Scanned::Entry(entry, frame_bytes)) => {
                    self.index_scanned(entry.log_id, position, frame_bytes)
                        .map_err(|reason| QuorumError::Corrupt {
                            path: path.to_path_buf(),
                            reason: format!("at byte {position}: {reason}"),
                        })?;
                    position += frame_bytes;
                }
                Err(ReadFrameError::Io(e)) => return Err(QuorumError::storage(path)(e)),
                Err(ReadFrameError::Decode(e)) => {
                    return Err(QuorumError::Corrupt {
                        path: path.to_path_buf(),
                        reason: format!("the entry at byte {position} does not decode: {e}"),
                    })
                }
            }
        };
        if let Some(reason) = torn {
            log::warn!(
                "quorum log {}: cutting off {} bytes from byte {position}: {reason}",
                path.display(),
                file_bytes - position
            );
            self.file
                .set_len(position)
                .and_then(|()| self.file.sync_data())
                .map_err(QuorumError::storage(path))?;
        }
        self.end = position;
        Ok(())
    }

    /// Indexes an entry read at open, unless it is purged; entries must follow on.
    fn index_scanned(
        &mut self,
        log_id: LogId<NodeId>,
        position: u64,
        frame_bytes: u64,
    ) -> std::result::Result<(), String> {
        let purged = self.meta.last_purged.map(|l| l.index);
        match (self.slots.back(), purged) {
            (Some(last), _) if log_id.index != last.log_id.index + 1 => {
                return Err(format!(
                    "entry {} follows entry {}",
                    log_id.index, last.log_id.index
                ))
            }
            (None, Some(purged)) if log_id.index <= purged => return Ok(()),
            (None, Some(purged)) if log_id.index != purged + 1 => {
                return Err(format!(
                    "the first live entry is {}, after a purge up to {purged}",
                    log_id.index
                ))
            }
            _ => {}
        }
        self.slots.push_back(Slot {
            log_id,
            position,
            frame_bytes,
        });
        Ok(())
    }

    fn last_log_id(&self) -> Option<LogId<NodeId>> {
        self.slots
            .back()
            .map(|s| s.log_id)
            .or(self.meta.last_purged)
    }

    /// The index the next appended entry must have, if anything fixes it.
    fn next_index(&self) -> Option<u64> {
        self.last_log_id().map(|l| l.index + 1)
    }

    fn append(&mut self, entries: &[RaftEntry]) -> io::Result<()> {
        let mut frames = Vec::new();
        let mut slots = Vec::with_capacity(entries.len());
        let mut expected = self.next_index();
        let purged = self.meta.last_purged.map(|l| l.index);
        for entry in entries {
            if purged.is_some_and(|p| entry.log_id.index <= p) {
                // Raft never sends these (a snapshot holds them); openraft's own
                // storage suite does.
                log::warn!(
                    "quorum log: not appending entry {}, purged already",
                    entry.log_id.index
                );
                continue;
            }
            if expected.is_some_and(|next| next != entry.log_id.index) {
                return Err(invalid(format!(
                    "appending entry {} where entry {expected:?} is next",
                    entry.log_id.index
                )));
            }
            let payload = serde_json::to_vec(entry)?;
            let length = u32::try_from(payload.len())
                .ok()
                .filter(|l| *l <= MAX_ENTRY_BYTES)
                .ok_or_else(|| {
                    invalid(format!(
                        "entry {} is {} bytes, above {MAX_ENTRY_BYTES}",
                        entry.log_id.index,
                        payload.len()
                    ))
                })?;
            let position = self.end + frames.len() as u64;
            frames.extend_from_slice(&length.to_be_bytes());
            frames.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
            frames.extend_from_slice(&payload);
            slots.push(Slot {
                log_id: entry.log_id,
                position,
                frame_bytes: FRAME_HEADER_BYTES + u64::from(length),
            });
            expected = Some(entry.log_id.index + 1);
        }
        // A failed write or sync leaves `end` where it was: the next append writes
        // over whatever part of these frames reached the file.
        self.file
            .write_all_at(&frames, self.end)
            .and_then(|()| self.file.sync_data())?;
        self.end += frames.len() as u64;
        self.slots.extend(slots);
        Ok(())
    }

    /// Removes the entries from `index` on.
    fn truncate(&mut self, index: u64) -> io::Result<()> {
        let Some(first) = self.slots.front().map(|s| s.log_id.index) else {
            return Ok(());
        };
        let keep = index.saturating_sub(first) as usize;
        let Some(cut) = self.slots.get(keep).map(|s| s.position) else {
            return Ok(());
        };
        self.file.set_len(cut)?;
        self.slots.truncate(keep);
        self.end = cut;
        self.file.sync_data()
    }

    /// Forgets the entries up to `log_id`, the purge point recorded first.
    fn purge(&mut self, log_id: LogId<NodeId>) -> io::Result<()> {
        if self
            .meta
            .last_purged
            .is_some_and(|p| p.index >= log_id.index)
        {
            return Ok(());
        }
        self.save_meta(LogMeta {
            last_purged: Some(log_id),
            ..self.meta.clone()
        })?;
        while self
            .slots
            .front()
            .is_some_and(|s| s.log_id.index <= log_id.index)
        {
            self.slots.pop_front();
        }
        self.reclaim()
    }

    /// Drops the purged prefix from the file when it is worth it (see the module doc).
    /// Reclaiming is optional: a failure before the log file changes leaves it as it
    /// was and is only logged; once the file has changed, a failure is the store's
    /// (what is on disk is no longer known).
    fn reclaim(&mut self) -> io::Result<()> {
        let Some(first_live) = self.slots.front().map(|s| s.position) else {
            if self.end > 0 {
                self.file.set_len(0)?;
                self.end = 0;
                self.file.sync_data()?;
            }
            return Ok(());
        };
        let live_bytes = self.end - first_live;
        if first_live < REWRITE_MIN_PURGED_BYTES || first_live < live_bytes {
            return Ok(());
        }
        let tmp = self.dir.join(REWRITE_FILE);
        let rewritten = match self.copy_live(&tmp, first_live, live_bytes) {
            Ok(rewritten) => rewritten,
            Err(e) => {
                log::warn!("quorum log: not rewritten without its purged prefix ({e}); kept as is");
                // Best effort: a leftover is removed at the next open anyway.
                let _ = std::fs::remove_file(&tmp);
                return Ok(());
            }
        };
        std::fs::rename(&tmp, self.dir.join(LOG_FILE))?;
        // The name is the new file's now: write there whatever happens next.
        self.file = rewritten;
        self.end = live_bytes;
        for slot in &mut self.slots {
            slot.position -= first_live;
        }
        sync_dir(&self.dir).map_err(io::Error::other)?;
        log::info!(
            "quorum log: rewrote {} without its {first_live} purged bytes",
            self.dir.join(LOG_FILE).display()
        );
        Ok(())
    }

    /// The live bytes copied to `tmp`, fsynced: the rewritten log, not yet in place.
    fn copy_live(&self, tmp: &Path, first_live: u64, live_bytes: u64) -> io::Result<File> {
        let mut rewritten = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp)?;
        let mut source = &self.file;
        source.seek(SeekFrom::Start(first_live))?;
        let copied = io::copy(&mut source.take(live_bytes), &mut rewritten)?;
        if copied != live_bytes {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("copied {copied} of {live_bytes} live bytes"),
            ));
        }
        rewritten.sync_all()?;
        Ok(rewritten)
    }

    /// Replaces `raft-state.json`; memory follows only once the disk has it.
    fn save_meta(&mut self, meta: LogMeta) -> io::Result<()> {
        let bytes = serde_json::to_vec(&meta)?;
        write_file_atomically(&self.dir.join(STATE_FILE), &bytes).map_err(io::Error::other)?;
        self.meta = meta;
        Ok(())
    }

    /// The live entries within `range` (those purged or not yet written are left
    /// out), read back from the file.
    fn read<RB: RangeBounds<u64>>(&self, range: RB) -> io::Result<Vec<RaftEntry>> {
        let Some(first) = self.slots.front().map(|s| s.log_id.index) else {
            return Ok(Vec::new());
        };
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        }
        .max(first);
        let end = match range.end_bound() {
            Bound::Included(i) => i.saturating_add(1),
            Bound::Excluded(i) => *i,
            Bound::Unbounded => u64::MAX,
        }
        .min(first + self.slots.len() as u64);
        if start >= end {
            return Ok(Vec::new());
        }
        let slots = self
            .slots
            .range((start - first) as usize..(end - first) as usize);
        let (Some(from), Some(to)) = (slots.clone().next(), slots.clone().last()) else {
            return Ok(Vec::new());
        };
        let mut bytes = vec![0u8; (to.end() - from.position) as usize];
        self.file.read_exact_at(&mut bytes, from.position)?;
        slots
            .map(|slot| {
                let at = (slot.position - from.position) as usize;
                decode_frame(&bytes[at..at + slot.frame_bytes as usize]).map_err(|reason| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "entry {} at byte {}: {reason}",
                            slot.log_id.index, slot.position
                        ),
                    )
                })
            })
            .collect()
    }
}

fn read_meta(path: &Path) -> std::result::Result<LogMeta, QuorumError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| QuorumError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(LogMeta::default()),
        Err(e) => Err(QuorumError::storage(path)(e)),
    }
}

enum ReadFrameError {
    Io(io::Error),
    Decode(serde_json::Error),
}

/// Reads the next frame at open; `remaining` is what the file holds from here.
fn read_frame(
    reader: &mut impl Read,
    remaining: u64,
    payload: &mut Vec<u8>,
) -> std::result::Result<Scanned, ReadFrameError> {
    if remaining == 0 {
        return Ok(Scanned::End);
    }
    if remaining < FRAME_HEADER_BYTES {
        return Ok(Scanned::Torn(format!(
            "a header cut short ({remaining} bytes)"
        )));
    }
    let mut header = [0u8; FRAME_HEADER_BYTES as usize];
    reader.read_exact(&mut header).map_err(ReadFrameError::Io)?;
    let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if length > MAX_ENTRY_BYTES {
        return Ok(Scanned::Torn(format!("a length of {length} bytes")));
    }
    if u64::from(length) > remaining - FRAME_HEADER_BYTES {
        return Ok(Scanned::Torn(format!(
            "an entry of {length} bytes with {} left",
            remaining - FRAME_HEADER_BYTES
        )));
    }
    payload.clear();
    payload.resize(length as usize, 0);
    reader.read_exact(payload).map_err(ReadFrameError::Io)?;
    if crc32c::crc32c(payload) != crc {
        return Ok(Scanned::Torn("a CRC mismatch".into()));
    }
    let entry = serde_json::from_slice(payload).map_err(ReadFrameError::Decode)?;
    Ok(Scanned::Entry(
        entry,
        FRAME_HEADER_BYTES + u64::from(length),
    ))
}

/// Decodes a whole frame read back for Raft, checking its CRC again (the disk may
/// have rotted since the log was opened).
fn decode_frame(frame: &[u8]) -> std::result::Result<RaftEntry, String> {
    let header = FRAME_HEADER_BYTES as usize;
    if frame.len() < header {
        return Err("shorter than a frame header".into());
    }
    let crc = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let payload = &frame[header..];
    if crc32c::crc32c(payload) != crc {
        return Err("CRC mismatch".into());
    }
    serde_json::from_slice(payload).map_err(|e| e.to_string())
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<RaftEntry>> {
        let range = (range.start_bound().cloned(), range.end_bound().cloned());
        self.with_files(move |files| files.read(range))
            .await
            .map_err(|e| read_logs(&e))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        let files = self.locked().map_err(|e| read_logs(&e))?;
        Ok(LogState {
            last_purged_log_id: files.meta.last_purged,
            last_log_id: files.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<()> {
        let vote = *vote;
        self.with_files(move |files| {
            files.save_meta(LogMeta {
                vote: Some(vote),
                ..files.meta.clone()
            })
        })
        .await
        .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>> {
        let files = self.locked().map_err(|e| read_logs(&e))?;
        Ok(files.meta.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<()> {
        self.with_files(move |files| {
            if files.meta.committed == committed {
                return Ok(());
            }
            files.save_meta(LogMeta {
                committed,
                ..files.meta.clone()
            })
        })
        .await
        .map_err(|e| write_logs(&e))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>> {
        let files = self.locked().map_err(|e| read_logs(&e))?;
        Ok(files.meta.committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = RaftEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<RaftEntry> = entries.into_iter().collect();
        let appended = self.with_files(move |files| files.append(&entries)).await;
        // Raft hears "durable" only after the fsync in `LogFiles::append`.
        match appended {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let failed = write_logs(&e);
                callback.log_io_completed(Err(e));
                Err(failed)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.with_files(move |files| files.truncate(log_id.index))
            .await
            .map_err(|e| write_logs(&e))
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.with_files(move |files| files.purge(log_id))
            .await
            .map_err(|e| write_logs(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};

    use crate::controller::quorum::MetadataBatch;
    use crate::controller::records::MetadataRecord;

    fn log_id(term: u64, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn entry(term: u64, index: u64) -> RaftEntry {
        let records = vec![MetadataRecord::ProducerIds {
            next_producer_id: index as i64,
        }];
        Entry {
            log_id: log_id(term, index),
            payload: EntryPayload::Normal(MetadataBatch { records }),
        }
    }

    fn open(dir: &Path) -> LogFiles {
        LogFiles::open(dir).unwrap()
    }

    fn indexes(files: &LogFiles) -> Vec<u64> {
        files
            .read(..)
            .unwrap()
            .iter()
            .map(|e| e.log_id.index)
            .collect()
    }

    #[test]
    fn appended_entries_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = open(dir.path());
        let entries: Vec<_> = (1..=5).map(|i| entry(1, i)).collect();
        files.append(&entries).unwrap();
        files.append(&[entry(2, 6)]).unwrap();
        assert_eq!(files.read(2..4).unwrap(), entries[1..3].to_vec());
        drop(files);

        let files = open(dir.path());
        assert_eq!(indexes(&files), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(files.last_log_id(), Some(log_id(2, 6)));
        assert_eq!(files.read(6..=6).unwrap(), vec![entry(2, 6)]);
    }

    #[test]
    fn an_append_out_of_sequence_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = open(dir.path());
        files.append(&[entry(1, 1), entry(1, 2)]).unwrap();
        assert!(files.append(&[entry(1, 4)]).is_err());
        assert!(files.append(&[entry(1, 3), entry(1, 5)]).is_err());
        // Nothing of a refused append is kept.
        assert_eq!(indexes(&open(dir.path())), vec![1, 2]);
    }

    #[test]
    fn truncation_survives_a_reopen_and_appends_follow_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = open(dir.path());
        let entries: Vec<_> = (1..=6).map(|i| entry(1, i)).collect();
        files.append(&entries).unwrap();
        files.truncate(4).unwrap();
        assert_eq!(indexes(&files), vec![1, 2, 3]);
        files.append(&[entry(2, 4)]).unwrap();
        drop(files);

        let files = open(dir.path());
        assert_eq!(indexes(&files), vec![1, 2, 3, 4]);
        assert_eq!(files.last_log_id(), Some(log_id(2, 4)));
    }

    #[test]
    fn a_purge_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = open(dir.path());
        let entries: Vec<_> = (1..=6).map(|i| entry(1, i)).collect();
        files.append(&entries).unwrap();
        files.purge(log_id(1, 3)).unwrap();
        assert_eq!(indexes(&files), vec![4, 5, 6]);
        // Small: the purged bytes stay in the file, skipped.
        assert!(files.slots[0].position > 0);
        drop(files);

        let mut files = open(dir.path());
        assert_eq!(indexes(&files), vec![4, 5, 6]);
        assert_eq!(files.meta.last_purged, Some(log_id(1, 3)));
        assert!(files.read(1..4).unwrap().is_empty());

        // Purged past the end: empty, and the log goes on after the purge point.
        files.purge(log_id(1, 9)).unwrap();
        assert_eq!(files.end, 0);
        assert_eq!(files.last_log_id(), Some(log_id(1, 9)));
        assert!(files.append(&[entry(1, 11)]).is_err());
        files.append(&[entry(1, 10)]).unwrap();
        drop(files);
        let files = open(dir.path());
        assert_eq!(indexes(&files), vec![10]);
    }

    #[test]
    fn a_large_purged_prefix_is_rewritten_away() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = open(dir.path());
        let big = |i: u64| {
            let mut e = entry(1, i);
            let records = vec![MetadataRecord::Bootstrap {
                cluster_id: "x".repeat(64 << 10),
            }];
            e.payload = EntryPayload::Normal(MetadataBatch { records });
            e
        };
        let entries: Vec<_> = (1..=40).map(big).collect();
        files.append(&entries).unwrap();
        let before = files.end;
        files.purge(log_id(1, 30)).unwrap();
        assert_eq!(
            files.slots[0].position, 0,
            "rewritten from the first live entry"
        );
        assert!(files.end < before / 3);
        assert_eq!(files.read(..).unwrap(), entries[30..].to_vec());
        files.append(&[big(41)]).unwrap();
        drop(files);

        let files = open(dir.path());
        assert_eq!(indexes(&files), (31..=41).collect::<Vec<_>>());
        assert!(!dir.path().join(REWRITE_FILE).exists());
    }

    #[test]
    fn a_torn_last_entry_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = open(dir.path());
        files.append(&[entry(1, 1), entry(1, 2)]).unwrap();
        let whole = files.end;
        let second = files.slots[1].position;
        drop(files);
        let path = dir.path().join(LOG_FILE);

        // Every way a crash can cut the last frame: in its header, in its payload.
        for cut in [second + 3, second + 8, whole - 1] {
            let file = OpenOptions::new().write(true).open(&path).unwrap();
            file.set_len(cut).unwrap();
            let mut files = open(dir.path());
            assert_eq!(indexes(&files), vec![1], "cut at {cut}");
            assert_eq!(files.end, second);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), second);
            files.append(&[entry(1, 2)]).unwrap();
        }

        // A flipped byte in the last payload: the CRC catches it.
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(indexes(&open(dir.path())), vec![1]);

        // Garbage for a length: never allocated, cut off.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 2]);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(indexes(&open(dir.path())), vec![1]);
    }

    #[test]
    fn an_undecodable_entry_with_a_good_crc_fails_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = open(dir.path());
        files.append(&[entry(1, 1)]).unwrap();
        drop(files);
        let payload = b"{\"not\":\"an entry\"}";
        let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
        frame.extend_from_slice(payload);
        let path = dir.path().join(LOG_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&frame);
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            LogFiles::open(dir.path()),
            Err(QuorumError::Corrupt { .. })
        ));
    }

    #[test]
    fn vote_and_committed_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = open(dir.path());
        let vote = Vote::new_committed(3, 2);
        files
            .save_meta(LogMeta {
                vote: Some(vote),
                committed: Some(log_id(3, 7)),
                last_purged: None,
            })
            .unwrap();
        drop(files);
        let files = open(dir.path());
        assert_eq!(files.meta.vote, Some(vote));
        assert_eq!(files.meta.committed, Some(log_id(3, 7)));
    }
}
