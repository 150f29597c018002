//! The live tail of a partition: push delivery to any number of subscribers, with one
//! log read per high-watermark advance however many there are.
//!
//! When the high watermark advances, the [`super::PartitionReplica`] reads the newly
//! committed batches once and publishes them as a [`TailChunk`] on a bounded broadcast
//! ring (`partition.tail.buffer.chunks` chunks of at most
//! `partition.tail.chunk.max.bytes`). Publishing never waits: a producer is never
//! slowed by a subscriber.
//!
//! A [`PartitionFeed`] is one subscriber's view: it catches up from the log with
//! ordinary reads until it reaches the high watermark, then takes chunks from the
//! ring. It checks every chunk against its own position, so each record is delivered
//! exactly once and in offset order whatever happens in between: a chunk that
//! starts past its position (the feed fell behind the ring, or the chunk was cut at
//! its byte limit) sends it back to catching up from the log; a chunk it has already
//! seen is skipped. A slow subscriber therefore costs log reads of its own, never
//! broker memory beyond the ring.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::broadcast;

use super::{Fetch, PartitionReplica};
use crate::error::{BrokerError, BrokerResult};
use crate::requests::{Leader, Routes};
use crate::storage::{FetchData, StoredRecord};

/// Committed batches covering offsets `[start_offset, end_offset)` of a partition.
pub struct TailChunk {
    /// The first offset the chunk answers for (its first batch may begin earlier).
    pub start_offset: i64,
    /// One past the last offset in the chunk: where the next chunk starts.
    pub end_offset: i64,
    /// The high watermark when the chunk was made.
    pub high_watermark: i64,
    data: FetchData,
    /// The decoded records and their views, shared by the chunk's readers while the
    /// chunk is among the partition's most recent ([`CACHED_CHUNKS`]); the lock is
    /// only ever held to clone or drop the `Arc`, never while decoding or rendering.
    cache: Mutex<Option<Arc<ChunkCache>>>,
    /// The partition evicted the cache: readers this far behind make their own.
    evicted: AtomicBool,
}

/// How many views a chunk keeps (one per rendering readers use).
pub const VIEW_SLOTS: usize = 4;

/// How many of a partition's most recent chunks keep their decoded records and
/// renderings for readers at the live tail. Older chunks in the ring keep only their
/// bytes: the ring's memory stays what `partition.tail.chunk.max.bytes` says, and a
/// reader that far behind decodes and renders for itself.
const CACHED_CHUNKS: usize = 8;

#[derive(Default)]
struct ChunkCache {
    records: OnceLock<BrokerResult<Vec<StoredRecord>>>,
    /// Views derived from the records (a rendering, say), made by the first reader
    /// that asks and shared by the rest. A reader asking while another makes one
    /// waits for that one rather than making it again.
    views: [OnceLock<Arc<dyn Any + Send + Sync>>; VIEW_SLOTS],
}

impl std::fmt::Debug for TailChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TailChunk")
            .field("start_offset", &self.start_offset)
            .field("end_offset", &self.end_offset)
            .field("bytes", &self.data.bytes.len())
            .finish()
    }
}

impl TailChunk {
    /// A chunk of what a read from `start_offset` returned, or `None` if it returned
    /// no batch.
    pub fn from_read(start_offset: i64, data: FetchData, high_watermark: i64) -> Option<TailChunk> {
        let end_offset = data.batches().last()?.next_offset();
        Some(TailChunk {
            start_offset,
            end_offset,
            high_watermark,
            data,
            cache: Mutex::new(None),
            evicted: AtomicBool::new(false),
        })
    }

    pub fn size_bytes(&self) -> usize {
        self.data.bytes.len()
    }

    fn cache(&self) -> Arc<ChunkCache> {
        if self.evicted.load(Ordering::Acquire) {
            return Arc::default();
        }
        match self.cache.lock() {
            Ok(mut cache) => cache.get_or_insert_with(Arc::default).clone(),
            Err(_) => Arc::default(),
        }
    }

    /// Drops the shared decoded records and views (readers holding them keep theirs).
    fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        let dropped = self.cache.lock().ok().and_then(|mut cache| cache.take());
        drop(dropped);
    }

    /// The chunk's records from `start_offset` on, decoded once for every reader
    /// (while the chunk is recent).
    pub fn records(&self) -> BrokerResult<ChunkRecords> {
        let cache = self.cache();
        let decoded = cache.records.get_or_init(|| {
            self.data
                .records_from(self.start_offset)
                .map_err(|e| BrokerError::Internal(format!("cannot decode committed batch: {e}")))
        });
        if let Err(e) = decoded {
            return Err(e.clone());
        }
        Ok(ChunkRecords { cache })
    }
}

/// A chunk's decoded records, and the views readers share of them.
pub struct ChunkRecords {
    cache: Arc<ChunkCache>,
}

impl std::ops::Deref for ChunkRecords {
    type Target = [StoredRecord];

    fn deref(&self) -> &[StoredRecord] {
        match self.cache.records.get() {
            Some(Ok(records)) => records,
            _ => &[],
        }
    }
}

impl ChunkRecords {
    /// The view in slot `key` (below [`VIEW_SLOTS`]), made from the records by `make`
    /// if no reader made it yet.
    pub fn view<T: Any + Send + Sync + Default>(
        &self,
        key: usize,
        make: impl FnOnce(&[StoredRecord]) -> T,
    ) -> Arc<T> {
        let Some(slot) = self.cache.views.get(key) else {
            return Arc::new(make(self));
        };
        let mut make = Some(make);
        let view = slot
            .get_or_init(|| match make.take() {
                Some(make) => Arc::new(make(self)),
                None => Arc::new(()),
            })
            .clone();
        if let Ok(view) = view.downcast::<T>() {
            return view;
        }
        // The slot holds another reader's kind of view: make this one unshared. (If
        // `make` filled the slot, the view is a `T` and was returned above.)
        Arc::new(make.map(|make| make(self)).unwrap_or_default())
    }
}

/// Subscribe to the live tail.
#[derive(Message)]
#[rtype(result = "BrokerResult<TailSubscription>")]
pub struct SubscribeTail;

pub struct TailSubscription {
    pub topic: String,
    pub partition: i32,
    pub chunks: broadcast::Receiver<Arc<TailChunk>>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// The log end: a position between the high watermark and it waits (a new
    /// leader's high watermark can be behind what its predecessor committed, until
    /// its followers fetch).
    pub log_end_offset: i64,
    /// The partition's log start offset as it moves (retention): records below it
    /// are gone, even if a chunk in the ring still holds them.
    pub log_start: Arc<AtomicI64>,
}

/// What the partition keeps for its live tail.
pub(super) struct Tail {
    sender: broadcast::Sender<Arc<TailChunk>>,
    pub(super) chunk_max_bytes: usize,
    log_start: Arc<AtomicI64>,
    /// The chunks published last, whose caches readers share ([`CACHED_CHUNKS`]).
    recent: VecDeque<Arc<TailChunk>>,
}

impl Tail {
    pub(super) fn new(buffer_chunks: usize, chunk_max_bytes: usize) -> Tail {
        let (sender, _) = broadcast::channel(buffer_chunks.max(1));
        Tail {
            sender,
            chunk_max_bytes,
            log_start: Arc::new(AtomicI64::new(0)),
            recent: VecDeque::new(),
        }
    }

    /// The log start moved (the log opened, or retention deleted segments).
    pub(super) fn set_log_start(&self, offset: i64) {
        self.log_start.store(offset, Ordering::Release);
    }

    pub(super) fn log_start(&self) -> Arc<AtomicI64> {
        self.log_start.clone()
    }

    pub(super) fn has_subscribers(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    pub(super) fn subscribe(&self) -> broadcast::Receiver<Arc<TailChunk>> {
        self.sender.subscribe()
    }

    /// Publishes without waiting; subscribers that fell a ring behind catch up from the log.
    pub(super) fn publish(&mut self, chunk: TailChunk) {
        let chunk = Arc::new(chunk);
        let _ = self.sender.send(chunk.clone());
        self.recent.push_back(chunk);
        if self.recent.len() > CACHED_CHUNKS {
            if let Some(old) = self.recent.pop_front() {
                old.evict();
            }
        }
    }
}

impl PartitionReplica {
    /// Pushes what just became committed (from `from` to the high watermark) to the
    /// live tail, in chunks of at most `partition.tail.chunk.max.bytes`: one read per
    /// chunk, whatever the number of subscribers.
    pub(super) fn publish_tail(&mut self, ctx: &mut Context<Self>, mut from: i64) {
        while from < self.high_watermark() && self.tail.has_subscribers() && self.log.is_some() {
            let max_bytes = self.tail.chunk_max_bytes;
            let Ok(read) = self.read(ctx, from, max_bytes) else {
                return;
            };
            let Some(chunk) = TailChunk::from_read(from, read.data, read.high_watermark) else {
                return;
            };
            // Every read returns at least one batch past `from`: the loop ends.
            debug_assert!(chunk.end_offset > from);
            from = chunk.end_offset;
            self.tail.publish(chunk);
            self.counters.tail_chunks += 1;
        }
    }

    /// Live-tail subscribers see the ring close and subscribe again (after a
    /// restart) or give up (after a stop).
    pub(super) fn close_tail(&mut self) {
        self.tail = Tail::new(
            self.limits.tail_buffer_chunks,
            self.limits.tail_chunk_max_bytes,
        );
    }
}

/// How long a feed waits before subscribing again to a partition that stopped or
/// restarted.
const RESUBSCRIBE_BACKOFF: Duration = Duration::from_millis(100);

/// Where a feed reads: one replica, or whichever broker leads the partition.
enum FeedSource {
    Replica(Addr<PartitionReplica>),
    Routed {
        routes: Routes,
        topic: String,
        partition: i32,
    },
}

/// How long a read of a partition led by another broker waits for data there.
const REMOTE_POLL_MS: u64 = 500;

/// One subscriber's ordered, exactly-once view of a partition from a position on.
/// A routed feed follows the partition's leader: this broker's replica's live tail
/// when it leads, long-polled reads of the leader elsewhere, and it looks the
/// leader up again whenever the one it reads from stops leading.
pub struct PartitionFeed {
    source: FeedSource,
    /// The local replica read from now (`None` until subscribed, or when remote).
    partition: Option<Addr<PartitionReplica>>,
    /// The remote leader read from now.
    remote: Option<Leader>,
    position: i64,
    max_bytes: usize,
    live: Option<broadcast::Receiver<Arc<TailChunk>>>,
    /// The partition's log start offset, as the partition moves it.
    log_start: Option<Arc<AtomicI64>>,
    /// The partition's topic and number, once subscribed (for errors).
    names: Option<(String, i32)>,
    /// The high watermark last seen: below it the feed reads the log.
    known_high_watermark: i64,
    resubscribes: u32,
}

/// Resubscribing this many times in a row without delivering anything gives up
/// (at [`RESUBSCRIBE_BACKOFF`] apart, 30 s: longer than a leader's failover, a
/// session timeout and an election).
const MAX_RESUBSCRIBES: u32 = 300;

impl PartitionFeed {
    /// A feed delivering from `position`, reading at most `max_bytes` per catch-up read.
    pub fn new(partition: Addr<PartitionReplica>, position: i64, max_bytes: usize) -> Self {
        PartitionFeed::from_source(FeedSource::Replica(partition), position, max_bytes)
    }

    /// A feed of `topic`-`partition` wherever its leader is, delivering from
    /// `position`.
    pub fn routed(
        routes: Routes,
        topic: &str,
        partition: i32,
        position: i64,
        max_bytes: usize,
    ) -> Self {
        let source = FeedSource::Routed {
            routes,
            topic: topic.to_string(),
            partition,
        };
        let mut feed = PartitionFeed::from_source(source, position, max_bytes);
        feed.names = Some((topic.to_string(), partition));
        feed
    }

    fn from_source(source: FeedSource, position: i64, max_bytes: usize) -> Self {
        PartitionFeed {
            source,
            partition: None,
            remote: None,
            position,
            max_bytes,
            live: None,
            log_start: None,
            names: None,
            known_high_watermark: 0,
            resubscribes: 0,
        }
    }

    /// The most one catch-up read from the log returns, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Changes what one catch-up read may return (a reader short of room reads less).
    pub fn set_max_bytes(&mut self, max_bytes: usize) {
        self.max_bytes = max_bytes.max(1);
    }

    fn partition_topic(&self) -> String {
        self.names
            .as_ref()
            .map_or_else(String::new, |(t, _)| t.clone())
    }

    fn partition_number(&self) -> i32 {
        self.names.as_ref().map_or(-1, |(_, p)| *p)
    }

    /// Records below the log start are gone (retention): a feed whose position fell
    /// below it is told so — it must not deliver them from the ring, nor silently
    /// skip them.
    fn check_log_start(&self) -> BrokerResult<()> {
        let start = self
            .log_start
            .as_ref()
            .map_or(0, |s| s.load(Ordering::Acquire));
        if self.position >= start {
            return Ok(());
        }
        Err(BrokerError::OffsetOutOfRange {
            topic: self.partition_topic(),
            partition: self.partition_number(),
            requested: self.position,
            log_start_offset: start,
            log_end_offset: self.known_high_watermark.max(start),
        })
    }

    /// The next offset to deliver.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// Moves the position to `offset`: back, when records from it were taken but not
    /// delivered, or forward, past records retention deleted. The next call reads
    /// from the log there.
    pub fn seek(&mut self, offset: i64) {
        self.position = offset;
        self.known_high_watermark = i64::MAX;
    }

    /// The next committed records at the feed's position: a chunk and the offset to
    /// deliver from (records of the chunk below it were delivered before). Waits
    /// for the partition to push when the feed is at the high watermark.
    pub async fn next(&mut self) -> BrokerResult<(Arc<TailChunk>, i64)> {
        loop {
            if self.live.is_none() && self.remote.is_none() {
                self.subscribe().await?;
            }
            if let Some(leader) = self.remote.clone() {
                if let Some(chunk) = self.read_remote(&leader).await? {
                    return Ok(self.deliver(chunk));
                }
                continue;
            }
            if self.position < self.known_high_watermark {
                if let Some(chunk) = self.catch_up().await? {
                    return Ok(self.deliver(chunk));
                }
                continue;
            }
            let Some(live) = self.live.as_mut() else {
                continue;
            };
            match live.recv().await {
                Ok(chunk) => {
                    self.known_high_watermark = self.known_high_watermark.max(chunk.high_watermark);
                    if chunk.end_offset <= self.position {
                        continue;
                    }
                    if chunk.start_offset > self.position {
                        // Data between: read it from the log first.
                        self.known_high_watermark =
                            self.known_high_watermark.max(chunk.start_offset);
                        continue;
                    }
                    self.check_log_start()?;
                    return Ok(self.deliver(chunk));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // The ring moved on without us: whatever we missed is in the log.
                    self.known_high_watermark = i64::MAX;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    // The partition stopped or restarted: subscribe again.
                    self.live = None;
                    tokio::time::sleep(RESUBSCRIBE_BACKOFF).await;
                }
            }
        }
    }

    fn deliver(&mut self, chunk: Arc<TailChunk>) -> (Arc<TailChunk>, i64) {
        let from = self.position;
        self.position = chunk.end_offset;
        self.resubscribes = 0;
        (chunk, from)
    }

    /// The replica to subscribe to: the fixed one, or the leader's when it is
    /// here; `None` when the leader is remote (then `self.remote` is set).
    fn attach(&mut self) -> BrokerResult<Option<Addr<PartitionReplica>>> {
        match &self.source {
            FeedSource::Replica(addr) => {
                self.partition = Some(addr.clone());
                Ok(Some(addr.clone()))
            }
            FeedSource::Routed {
                routes,
                topic,
                partition,
            } => match routes.topic(topic)?.leader(*partition)? {
                Leader::Local(addr) => {
                    self.partition = Some(addr.clone());
                    Ok(Some(addr))
                }
                remote => {
                    self.partition = None;
                    self.remote = Some(remote);
                    Ok(None)
                }
            },
        }
    }

    /// One long-polled read of the remote leader at the position; `None` when it
    /// had nothing, or stopped leading (the next call looks the leader up again).
    async fn read_remote(&mut self, leader: &Leader) -> BrokerResult<Option<Arc<TailChunk>>> {
        let read = leader
            .fetch(Fetch {
                offset: self.position,
                max_bytes: self.max_bytes,
                max_wait_ms: REMOTE_POLL_MS,
            })
            .await;
        log::trace!(
            "feed of {}-{} at {}: remote read {:?}",
            self.partition_topic(),
            self.partition_number(),
            self.position,
            read.as_ref()
                .map(|r| (r.data.bytes.len(), r.high_watermark))
        );
        let read = match read {
            Ok(read) => read,
            Err(e) if e.is_retriable() && self.resubscribes < MAX_RESUBSCRIBES => {
                self.remote = None;
                tokio::time::sleep(RESUBSCRIBE_BACKOFF).await;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        self.known_high_watermark = read.high_watermark;
        Ok(TailChunk::from_read(self.position, read.data, read.high_watermark).map(Arc::new))
    }

    async fn subscribe(&mut self) -> BrokerResult<()> {
        self.resubscribes += 1;
        let attached = self.attach();
        log::trace!(
            "feed of {}-{} at {}: attached {:?}",
            self.partition_topic(),
            self.partition_number(),
            self.position,
            attached.as_ref().map(Option::is_some)
        );
        let attached = match attached {
            Ok(attached) => attached,
            Err(e) if self.resubscribes < MAX_RESUBSCRIBES && e.is_retriable() => {
                tokio::time::sleep(RESUBSCRIBE_BACKOFF).await;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let Some(partition) = attached else {
            return Ok(());
        };
        let subscribed = partition
            .send(SubscribeTail)
            .await
            .map_err(BrokerError::mailbox)
            .and_then(|answer| answer);
        match subscribed {
            Ok(sub) => {
                self.known_high_watermark = sub.high_watermark;
                self.live = Some(sub.chunks);
                self.log_start = Some(sub.log_start);
                self.names = Some((sub.topic.clone(), sub.partition));
                // Before the log start (retention), or past the end (a log that lost
                // uncommitted data in a crash, say): nothing here to go on from.
                if self.position < sub.log_start_offset || self.position > sub.log_end_offset {
                    return Err(BrokerError::OffsetOutOfRange {
                        topic: sub.topic,
                        partition: sub.partition,
                        requested: self.position,
                        log_start_offset: sub.log_start_offset,
                        log_end_offset: sub.high_watermark,
                    });
                }
                Ok(())
            }
            Err(e) if self.resubscribes < MAX_RESUBSCRIBES && e.is_retriable() => {
                tokio::time::sleep(RESUBSCRIBE_BACKOFF).await;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// One read from the log at the position; `None` once the position is at the
    /// high watermark (the feed then waits on the ring).
    async fn catch_up(&mut self) -> BrokerResult<Option<Arc<TailChunk>>> {
        let Some(partition) = self.partition.clone() else {
            self.live = None;
            return Ok(None);
        };
        let read = partition
            .send(Fetch {
                offset: self.position,
                max_bytes: self.max_bytes,
                max_wait_ms: 0,
            })
            .await
            .map_err(BrokerError::mailbox)?;
        let read = match read {
            Ok(read) => read,
            Err(e) if e.is_retriable() => {
                self.live = None;
                tokio::time::sleep(RESUBSCRIBE_BACKOFF).await;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        self.known_high_watermark = read.high_watermark;
        let chunk = TailChunk::from_read(self.position, read.data, read.high_watermark);
        if chunk.is_none() {
            // Nothing committed past the position after all: wait for the push.
            self.known_high_watermark = self.position;
        }
        Ok(chunk.map(Arc::new))
    }
}
