//! `PartitionReplica`: the actor that owns one partition's [`Log`]. It is the log's
//! only user: it serialises appends, serves reads and offset lookups, tracks the log
//! start offset, log end offset, high watermark and leader epoch, and parks long-poll
//! reads until data arrives (woken by the append that brings it — no polling).
//!
//! **Durability and acknowledgements.** Appends are written at once; an append is
//! acknowledged (and the high watermark moves past it) when the flush policy is
//! satisfied. With the default `flush.messages=1` that means after an fsync, and the
//! fsync is a group commit: it runs on a blocking thread while the actor keeps
//! appending, and one fsync acknowledges every append that queued behind it.
//!
//! **Failure.** Every operation on the log runs under `catch_unwind`. A panic, or an
//! I/O error while writing, fails the in-flight requests with an error, drops the log
//! (as a crash would) and stops the actor; its [`actix::Supervisor`] restarts it, and
//! `started` reopens the log from disk through recovery. More than
//! `partition.max.restarts` restarts within `partition.restart.window.ms` leave the
//! partition offline (every request gets an error) rather than restart-looping.
//!
//! Role: today every replica is the leader of its partition (one node); the leader
//! epoch and high watermark are kept so followers can be added without reshaping this.

pub mod messages;
pub mod tail;

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::error::{BrokerError, BrokerResult};
use crate::storage::compaction::CleanableLog;
use crate::storage::{
    remove_files, segments_to_delete, Clock, FetchData, FlushDone, Log, LogError, LogResult,
};
use crate::topic_config::PartitionConfig;
pub use messages::*;
use tail::Tail;
pub use tail::{ChunkRecords, PartitionFeed, SubscribeTail, TailChunk, TailSubscription};

/// Limits a partition enforces (from the broker config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLimits {
    pub mailbox_capacity: usize,
    pub max_waiting_fetches: usize,
    pub max_restarts: usize,
    pub restart_window: Duration,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval: Duration,
    /// `partition.tail.buffer.chunks` and `partition.tail.chunk.max.bytes`: the live
    /// tail's ring of recently committed chunks (see [`tail`]).
    pub tail_buffer_chunks: usize,
    pub tail_chunk_max_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
}

struct PendingAck {
    last_offset: i64,
    result: AppendResult,
    reply: oneshot::Sender<BrokerResult<AppendResult>>,
}

struct WaitingFetch {
    id: u64,
    offset: i64,
    max_bytes: usize,
    reply: oneshot::Sender<BrokerResult<FetchResult>>,
}

pub struct PartitionReplica {
    topic: String,
    partition: i32,
    dir: PathBuf,
    config: PartitionConfig,
    limits: PartitionLimits,
    log: Option<Log>,
    offline_reason: Option<String>,
    stopped: bool,
    role: Role,
    leader_epoch: i32,
    high_watermark: i64,
    pending: VecDeque<PendingAck>,
    flush_in_flight: bool,
    flush_timer_armed: bool,
    waiting: Vec<WaitingFetch>,
    next_waiter_id: u64,
    tail: Tail,
    tail_chunks: u64,
    restart_times: VecDeque<Instant>,
    restarts: usize,
    retention_deleted_segments: u64,
    cleaner_runs: u64,
}

impl PartitionReplica {
    pub fn new(
        topic: &str,
        partition: i32,
        dir: PathBuf,
        config: PartitionConfig,
        limits: PartitionLimits,
    ) -> Self {
        PartitionReplica {
            topic: topic.to_string(),
            partition,
            dir,
            config,
            limits,
            log: None,
            offline_reason: None,
            stopped: false,
            role: Role::Leader,
            leader_epoch: 0,
            high_watermark: 0,
            pending: VecDeque::new(),
            flush_in_flight: false,
            flush_timer_armed: false,
            waiting: Vec::new(),
            next_waiter_id: 0,
            tail: Tail::new(limits.tail_buffer_chunks, limits.tail_chunk_max_bytes),
            tail_chunks: 0,
            restart_times: VecDeque::new(),
            restarts: 0,
            retention_deleted_segments: 0,
            cleaner_runs: 0,
        }
    }

    /// A partition that starts offline, without opening its log (the broker's
    /// open-file budget has no room for it); every request is answered with `reason`.
    pub fn offline(mut self, reason: String) -> Self {
        log::error!("partition {} is offline: {reason}", self.name());
        self.offline_reason = Some(reason);
        self
    }

    /// Starts the actor under a supervisor on `arbiter`.
    pub fn start_supervised(self, arbiter: &ArbiterHandle) -> Addr<PartitionReplica> {
        Supervisor::start_in_arbiter(arbiter, move |_| self)
    }

    fn name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Opens the log from disk (recovering it). A failure is answered like any other:
    /// the supervisor restarts the actor, within the restart budget.
    fn open_log(&mut self) -> Result<(), String> {
        let opened = catch_unwind(AssertUnwindSafe(|| {
            Log::open(&self.dir, self.config.log.clone())
        }));
        match opened {
            Ok(Ok(log)) => {
                // Recovery leaves only durable data, so all of it is committed.
                self.high_watermark = log.log_end_offset();
                log::info!(
                    "partition {} online: offsets [{}, {}), {} segment(s)",
                    self.name(),
                    log.log_start_offset(),
                    log.log_end_offset(),
                    log.segments().len()
                );
                self.log = Some(log);
                self.offline_reason = None;
                Ok(())
            }
            Ok(Err(e)) => Err(format!("cannot open log: {e}")),
            Err(panic) => Err(format!(
                "panic while opening log: {}",
                panic_message(&panic)
            )),
        }
    }

    fn go_offline(&mut self, reason: String) {
        log::error!("partition {} is offline: {reason}", self.name());
        self.log = None;
        self.offline_reason = Some(reason);
    }

    fn unavailable(&self) -> BrokerError {
        match &self.offline_reason {
            Some(reason) => BrokerError::PartitionOffline {
                topic: self.topic.clone(),
                partition: self.partition,
                reason: reason.clone(),
            },
            None => BrokerError::PartitionOffline {
                topic: self.topic.clone(),
                partition: self.partition,
                reason: "stopped".into(),
            },
        }
    }

    /// Runs `op` on the log, catching panics. A panic, or an error that `is_fatal`
    /// says leaves the log in doubt, fails the partition (restart from disk).
    fn guarded<T>(
        &mut self,
        ctx: &mut Context<Self>,
        is_fatal: fn(&LogError) -> bool,
        op: impl FnOnce(&mut Log) -> LogResult<T>,
    ) -> BrokerResult<T> {
        let Some(log) = self.log.as_mut() else {
            return Err(self.unavailable());
        };
        match catch_unwind(AssertUnwindSafe(|| op(log))) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let (fatal, reason) = (is_fatal(&e), e.to_string());
                let error = BrokerError::from_log(&self.topic, self.partition, e);
                if fatal {
                    self.fail(ctx, reason);
                }
                Err(error)
            }
            Err(panic) => {
                let reason = format!("panic: {}", panic_message(&panic));
                self.fail(ctx, reason.clone());
                Err(BrokerError::PartitionRestarting {
                    topic: self.topic.clone(),
                    partition: self.partition,
                    reason,
                })
            }
        }
    }

    /// Fails every parked request, drops the log as a crash would, and stops the actor
    /// so the supervisor restarts it.
    fn fail(&mut self, ctx: &mut Context<Self>, reason: String) {
        log::error!(
            "partition {} failed: {reason}; restarting from disk",
            self.name()
        );
        let error = BrokerError::PartitionRestarting {
            topic: self.topic.clone(),
            partition: self.partition,
            reason,
        };
        self.fail_parked(&error);
        self.log = None;
        self.close_tail();
        ctx.stop();
    }

    /// Live-tail subscribers see the ring close and subscribe again (after a
    /// restart) or give up (after a stop).
    fn close_tail(&mut self) {
        self.tail = Tail::new(
            self.limits.tail_buffer_chunks,
            self.limits.tail_chunk_max_bytes,
        );
    }

    fn fail_parked(&mut self, error: &BrokerError) {
        for pending in self.pending.drain(..) {
            let _ = pending.reply.send(Err(error.clone()));
        }
        for waiter in self.waiting.drain(..) {
            let _ = waiter.reply.send(Err(error.clone()));
        }
        self.flush_in_flight = false;
    }

    /// Moves the high watermark and answers everything it unblocks.
    fn advance_high_watermark(&mut self, to: i64, ctx: &mut Context<Self>) {
        if to <= self.high_watermark {
            return;
        }
        let from = self.high_watermark;
        self.high_watermark = to;
        // Producers first: the tail's read must not delay their acknowledgements.
        while self.pending.front().is_some_and(|p| p.last_offset < to) {
            if let Some(p) = self.pending.pop_front() {
                let _ = p.reply.send(Ok(p.result));
            }
        }
        self.publish_tail(ctx, from);
        let ready: Vec<WaitingFetch> = {
            let (ready, still) = std::mem::take(&mut self.waiting)
                .into_iter()
                .partition(|w| w.offset < to || w.reply.is_closed());
            self.waiting = still;
            ready
        };
        for waiter in ready {
            if waiter.reply.is_closed() {
                continue;
            }
            let result = self.read(ctx, waiter.offset, waiter.max_bytes);
            let _ = waiter.reply.send(result);
        }
    }

    /// Pushes what just became committed (from `from` to the high watermark) to the
    /// live tail, in chunks of at most `partition.tail.chunk.max.bytes`: one read per
    /// chunk, whatever the number of subscribers.
    fn publish_tail(&mut self, ctx: &mut Context<Self>, mut from: i64) {
        while from < self.high_watermark && self.tail.has_subscribers() && self.log.is_some() {
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
            self.tail_chunks += 1;
        }
    }

    /// Reads committed data (below the high watermark) from `offset`.
    fn read(
        &mut self,
        ctx: &mut Context<Self>,
        offset: i64,
        max_bytes: usize,
    ) -> BrokerResult<FetchResult> {
        let high_watermark = self.high_watermark;
        let mut data = self.guarded(ctx, |_| false, |log| log.read(offset, max_bytes))?;
        cut_at(&mut data, high_watermark);
        Ok(FetchResult {
            data,
            high_watermark,
        })
    }

    /// Starts an fsync if the policy calls for one and none is running.
    fn maybe_flush(&mut self, ctx: &mut Context<Self>) {
        if self.flush_in_flight {
            return;
        }
        let Some(log) = self.log.as_mut() else {
            return;
        };
        // Appends already waiting for an fsync get one even if the policy was relaxed
        // meanwhile (flush.messages raised): nobody waits forever.
        if !log.flush_due() && self.pending.is_empty() {
            self.arm_flush_timer(ctx);
            return;
        }
        let ticket = match self.guarded(ctx, |_| true, |log| log.begin_flush()) {
            Ok(Some(ticket)) => ticket,
            Ok(None) | Err(_) => return,
        };
        self.flush_in_flight = true;
        let sync = tokio::task::spawn_blocking(move || ticket.sync());
        ctx.spawn(
            actix::fut::wrap_future(sync).map(|joined, act: &mut Self, ctx| {
                act.flush_in_flight = false;
                match joined {
                    Ok(Ok(done)) => act.on_flushed(done, ctx),
                    Ok(Err(e)) => act.fail(ctx, format!("fsync failed: {e}")),
                    Err(e) => act.fail(ctx, format!("fsync task failed: {e}")),
                }
            }),
        );
    }

    fn on_flushed(&mut self, done: FlushDone, ctx: &mut Context<Self>) {
        let up_to = done.up_to_offset();
        if self
            .guarded(ctx, |_| true, |log| log.complete_flush(done))
            .is_err()
        {
            return;
        }
        self.advance_high_watermark(up_to, ctx);
        self.maybe_flush(ctx);
    }

    /// With `flush.ms`, a timer makes sure unflushed appends do not wait forever.
    fn arm_flush_timer(&mut self, ctx: &mut Context<Self>) {
        let Some(flush_ms) = self.config.log.flush.flush_ms else {
            return;
        };
        if self.flush_timer_armed {
            return;
        }
        self.flush_timer_armed = true;
        ctx.run_later(Duration::from_millis(flush_ms as u64), |act, ctx| {
            act.flush_timer_armed = false;
            act.maybe_flush(ctx);
        });
    }

    fn status(&self) -> PartitionStatus {
        let log = self.log.as_ref();
        // One look at the sealed segments serves both byte counts.
        let cleanable = log.map(Log::cleanable);
        PartitionStatus {
            topic: self.topic.clone(),
            partition: self.partition,
            online: log.is_some(),
            offline_reason: self.offline_reason.clone(),
            leader_epoch: self.leader_epoch,
            log_start_offset: log.map_or(0, Log::log_start_offset),
            log_end_offset: log.map_or(0, Log::log_end_offset),
            high_watermark: self.high_watermark,
            size_bytes: log.map_or(0, Log::size_bytes),
            segments: log.map_or(0, |l| l.segments().len()),
            restarts: self.restarts,
            retention_deleted_segments: self.retention_deleted_segments,
            clean_bytes: cleanable.as_ref().map_or(0, CleanableLog::clean_bytes),
            dirty_bytes: cleanable.as_ref().map_or(0, CleanableLog::dirty_bytes),
            cleaner_runs: self.cleaner_runs,
            flushes: log.map_or(0, |l| l.stats().flushes),
            tail_chunks: self.tail_chunks,
            corrupt_batches: log.map_or(0, Log::corrupt_batches),
        }
    }

    /// Retires the segments retention says to delete (`cleanup.policy` with
    /// `delete`), advancing the log start offset, and removes their files after
    /// `file.delete.delay.ms`. Returns how many segments went.
    fn apply_retention(&mut self, ctx: &mut Context<Self>) -> BrokerResult<usize> {
        if !self.config.cleanup_delete || self.log.is_none() {
            return Ok(0);
        }
        let policy = self.config.retention;
        let now = crate::storage::SystemClock.now_ms();
        let (deleted, files) = self.guarded(ctx, write_error_is_fatal, |log| {
            let (count, reason) = segments_to_delete(&log.segments(), now, policy);
            if count == 0 {
                return Ok((Vec::new(), Vec::new()));
            }
            log::info!(
                "partition log {}: retention ({reason:?}) removes {count} segment(s)",
                log.dir().display()
            );
            let mut taken = 0;
            log.retire_oldest_segments(|_| {
                taken += 1;
                taken <= count
            })
        })?;
        if let Some(start) = self.log.as_ref().map(Log::log_start_offset) {
            // Live-tail readers behind the new start must skip (and be told), even
            // when the ring still holds the deleted records.
            self.tail.set_log_start(start);
            self.advance_high_watermark(start, ctx);
        }
        self.retention_deleted_segments += deleted.len() as u64;
        if !files.is_empty() {
            ctx.run_later(
                Duration::from_millis(self.config.file_delete_delay_ms),
                move |_, _| {
                    tokio::task::spawn_blocking(move || {
                        if let Err(e) = remove_files(&files) {
                            log::warn!("removing retired segment files: {e}");
                        }
                    });
                },
            );
        }
        Ok(deleted.len())
    }

    /// The answer to a parked request: what the actor sends later, or an error if it
    /// stops first (the caller never hangs).
    fn parked_reply<T: 'static>(
        &self,
        rx: oneshot::Receiver<BrokerResult<T>>,
        reason: &'static str,
    ) -> ResponseFuture<BrokerResult<T>> {
        let (topic, partition) = (self.topic.clone(), self.partition);
        Box::pin(async move {
            rx.await.unwrap_or_else(|_| {
                Err(BrokerError::PartitionRestarting {
                    topic,
                    partition,
                    reason: reason.into(),
                })
            })
        })
    }

    pub fn role(&self) -> Role {
        self.role
    }
}

/// Drops the batches at or above the high watermark from a read.
fn cut_at(data: &mut FetchData, high_watermark: i64) {
    let keep: usize = data
        .batches()
        .take_while(|b| b.base_offset() < high_watermark)
        .map(|b| b.size_bytes())
        .sum();
    data.bytes.truncate(keep);
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Write-path errors leave the file state in doubt: reopen from disk. A full disk
/// does not: every write cuts back what it began (see [`LogError::is_disk_full`]), so
/// the partition refuses that write and stays online, serving reads, and takes writes
/// again as soon as space is freed — a restart could not help, and recovery on a full
/// disk is the one thing that might fail.
fn write_error_is_fatal(e: &LogError) -> bool {
    !e.is_disk_full() && matches!(e, LogError::Io { .. } | LogError::Corrupt { .. })
}

impl Actor for PartitionReplica {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.limits.mailbox_capacity);
        ctx.run_interval(self.limits.retention_check_interval, |act, ctx| {
            if let Err(e) = act.apply_retention(ctx) {
                log::warn!("retention on partition {} failed: {e}", act.name());
            }
        });
        if self.log.is_none() && !self.stopped && self.offline_reason.is_none() {
            if let Err(reason) = self.open_log() {
                log::error!("partition {}: {reason}", self.name());
                ctx.stop();
            }
        }
    }
}

impl Supervised for PartitionReplica {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.log = None;
        // The context's timers and futures are gone with the restart.
        self.flush_in_flight = false;
        self.flush_timer_armed = false;
        if self.stopped {
            return;
        }
        let now = Instant::now();
        self.restarts += 1;
        self.restart_times.push_back(now);
        while self
            .restart_times
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.limits.restart_window)
        {
            self.restart_times.pop_front();
        }
        if self.restart_times.len() > self.limits.max_restarts {
            self.go_offline(format!(
                "{} restarts within {} ms",
                self.restart_times.len(),
                self.limits.restart_window.as_millis()
            ));
        } else {
            log::warn!(
                "restarting partition {} (restart {})",
                self.name(),
                self.restarts
            );
        }
    }
}

impl Handler<Append> for PartitionReplica {
    type Result = ResponseFuture<BrokerResult<AppendResult>>;

    fn handle(&mut self, msg: Append, ctx: &mut Context<Self>) -> Self::Result {
        let Append { mut batch, acks } = msg;
        let epoch = self.leader_epoch;
        let appended = self.guarded(ctx, write_error_is_fatal, |log| {
            log.append(&mut batch, epoch)
        });
        let info = match appended {
            Ok(info) => info,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let result = AppendResult {
            base_offset: info.base_offset,
            last_offset: info.last_offset,
            timestamp_ms: info.max_timestamp_ms,
            log_append_time_ms: info.log_append_time_ms,
            log_start_offset: info.log_start_offset,
        };
        if !self.log.as_ref().is_some_and(Log::flush_due) {
            // The policy does not ask for an fsync: committed as written. (With
            // flush.messages > 1 an acknowledgement does not promise durability.)
            let end = info.last_offset + 1;
            self.advance_high_watermark(end, ctx);
            self.arm_flush_timer(ctx);
            return Box::pin(async move { Ok(result) });
        }
        let (reply, rx) = oneshot::channel();
        self.pending.push_back(PendingAck {
            last_offset: info.last_offset,
            result,
            reply,
        });
        self.maybe_flush(ctx);
        if acks == Acks::None {
            return Box::pin(async move { Ok(result) });
        }
        self.parked_reply(rx, "the partition stopped before the write was durable")
    }
}

impl Handler<Fetch> for PartitionReplica {
    type Result = ResponseFuture<BrokerResult<FetchResult>>;

    fn handle(&mut self, msg: Fetch, ctx: &mut Context<Self>) -> Self::Result {
        let Some(log) = self.log.as_ref() else {
            let e = self.unavailable();
            return Box::pin(async move { Err(e) });
        };
        let (log_start, log_end) = (log.log_start_offset(), log.log_end_offset());
        let _ = log_end;
        if msg.offset < log_start || msg.offset > self.high_watermark {
            let e = BrokerError::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.partition,
                requested: msg.offset,
                log_start_offset: log_start,
                log_end_offset: self.high_watermark,
            };
            return Box::pin(async move { Err(e) });
        }
        if msg.offset < self.high_watermark || msg.max_wait_ms == 0 {
            let result = self.read(ctx, msg.offset, msg.max_bytes);
            return Box::pin(async move { result });
        }
        if self.waiting.len() >= self.limits.max_waiting_fetches {
            self.waiting.retain(|w| !w.reply.is_closed());
        }
        if self.waiting.len() >= self.limits.max_waiting_fetches {
            let e = BrokerError::Busy {
                topic: self.topic.clone(),
                partition: self.partition,
                limit: self.limits.max_waiting_fetches,
            };
            return Box::pin(async move { Err(e) });
        }
        let (reply, rx) = oneshot::channel();
        let id = self.next_waiter_id;
        self.next_waiter_id += 1;
        self.waiting.push(WaitingFetch {
            id,
            offset: msg.offset,
            max_bytes: msg.max_bytes,
            reply,
        });
        ctx.run_later(Duration::from_millis(msg.max_wait_ms), move |act, _ctx| {
            if let Some(i) = act.waiting.iter().position(|w| w.id == id) {
                let waiter = act.waiting.swap_remove(i);
                let empty = FetchResult {
                    data: FetchData {
                        bytes: Vec::new(),
                        log_start_offset: act.log.as_ref().map_or(0, Log::log_start_offset),
                        log_end_offset: act.log.as_ref().map_or(0, Log::log_end_offset),
                    },
                    high_watermark: act.high_watermark,
                };
                let _ = waiter.reply.send(Ok(empty));
            }
        });
        self.parked_reply(rx, "the partition stopped during the read")
    }
}

impl Handler<ListOffsets> for PartitionReplica {
    type Result = BrokerResult<Option<(i64, Option<i64>)>>;

    fn handle(&mut self, msg: ListOffsets, ctx: &mut Context<Self>) -> Self::Result {
        let high_watermark = self.high_watermark;
        match msg.0 {
            OffsetSpec::Earliest => self.guarded(
                ctx,
                |_| false,
                |log| Ok(Some((log.log_start_offset(), None))),
            ),
            OffsetSpec::Latest => {
                self.guarded(ctx, |_| false, |_| Ok(Some((high_watermark, None))))
            }
            OffsetSpec::Timestamp(t) => {
                let found = self.guarded(ctx, |_| false, |log| log.offset_for_timestamp(t))?;
                Ok(found
                    .filter(|f| f.offset < high_watermark)
                    .map(|f| (f.offset, Some(f.timestamp_ms))))
            }
        }
    }
}

impl Handler<GetStatus> for PartitionReplica {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.status())
    }
}

impl Handler<UpdateConfig> for PartitionReplica {
    type Result = BrokerResult<()>;

    fn handle(&mut self, msg: UpdateConfig, ctx: &mut Context<Self>) -> Self::Result {
        let log_config = msg.0.log.clone();
        self.config = msg.0;
        let result = self.guarded(ctx, |_| false, |log| log.set_config(log_config));
        self.maybe_flush(ctx);
        result
    }
}

impl Handler<Stop> for PartitionReplica {
    type Result = BrokerResult<()>;

    fn handle(&mut self, msg: Stop, ctx: &mut Context<Self>) -> Self::Result {
        self.stopped = true;
        let mut result = Ok(());
        if let Some(mut log) = self.log.take() {
            if msg.0 == StopMode::Close {
                // Everything written is flushed by close: answer the appends waiting for it.
                let closed = catch_unwind(AssertUnwindSafe(|| {
                    log.flush()?;
                    let end = log.log_end_offset();
                    log.close().map(|()| end)
                }));
                match closed {
                    Ok(Ok(end)) => self.advance_high_watermark(end, ctx),
                    Ok(Err(e)) => {
                        result = Err(BrokerError::from_log(&self.topic, self.partition, e))
                    }
                    Err(p) => {
                        result = Err(BrokerError::Internal(format!(
                            "panic while closing: {}",
                            panic_message(&p)
                        )))
                    }
                }
            }
        }
        self.offline_reason = Some("stopped".into());
        let error = self.unavailable();
        self.fail_parked(&error);
        self.close_tail();
        ctx.stop();
        result
    }
}

impl Handler<ApplyRetention> for PartitionReplica {
    type Result = BrokerResult<usize>;

    fn handle(&mut self, _: ApplyRetention, ctx: &mut Context<Self>) -> Self::Result {
        self.apply_retention(ctx)
    }
}

impl Handler<GetCleanable> for PartitionReplica {
    type Result = Option<CleanerView>;

    fn handle(&mut self, _: GetCleanable, _: &mut Context<Self>) -> Self::Result {
        if !self.config.cleanup_compact {
            return None;
        }
        let log = self.log.as_ref()?;
        Some(CleanerView {
            log: log.cleanable(),
            config: self.config.clone(),
        })
    }
}

impl Handler<InstallCleaned> for PartitionReplica {
    type Result = BrokerResult<bool>;

    fn handle(&mut self, msg: InstallCleaned, ctx: &mut Context<Self>) -> Self::Result {
        let installed =
            self.guarded(ctx, write_error_is_fatal, |log| log.install_cleaned(&msg.0))?;
        if installed {
            self.cleaner_runs += 1;
        }
        Ok(installed)
    }
}

impl Handler<InjectPanic> for PartitionReplica {
    type Result = BrokerResult<()>;

    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) -> Self::Result {
        self.guarded(
            ctx,
            |_| false,
            |_| -> LogResult<()> { panic!("injected fault") },
        )
    }
}

impl Handler<SubscribeTail> for PartitionReplica {
    type Result = BrokerResult<TailSubscription>;

    fn handle(&mut self, _: SubscribeTail, _: &mut Context<Self>) -> Self::Result {
        let Some(log) = self.log.as_ref() else {
            return Err(self.unavailable());
        };
        self.tail.set_log_start(log.log_start_offset());
        Ok(TailSubscription {
            topic: self.topic.clone(),
            partition: self.partition,
            chunks: self.tail.subscribe(),
            high_watermark: self.high_watermark,
            log_start_offset: log.log_start_offset(),
            log_start: self.tail.log_start(),
        })
    }
}
