//! The partition's purgatory (Kafka's `DelayedOperationPurgatory`): requests that
//! cannot be answered yet, parked until the high watermark moves past them.
//!
//! - A **delayed produce** (Kafka's `DelayedProduce`) is an append written but not yet
//!   acknowledged: an `acks=all` one is answered when the high watermark passes its
//!   last offset (every in-sync replica has it durably), an `acks=1` one (and a
//!   follower's copy of its leader's batches) when an fsync here covers it.
//!   Produces complete in offset order, so they wait in queues.
//! - A **delayed fetch** (Kafka's `DelayedFetch`) is a long-poll read at the high
//!   watermark; it is answered when the high watermark moves past its offset, or
//!   with nothing when its `max_wait_ms` runs out. At most
//!   `partition.max.waiting.fetches` wait (more get 429).
//!
//! Nothing here polls: the code that moves the high watermark
//! ([`super::durability`]) completes what it unblocks. When the partition fails or
//! stops, everything parked gets an error, so no caller ever hangs.

use std::collections::VecDeque;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{AppendResult, Fetch, FetchResult, PartitionReplica};
use crate::error::{BrokerError, BrokerResult};
use crate::storage::{FetchData, Log};

/// An append waiting to be durable.
struct DelayedProduce {
    last_offset: i64,
    result: AppendResult,
    reply: oneshot::Sender<BrokerResult<AppendResult>>,
}

/// A read waiting for data past the high watermark.
struct DelayedFetch {
    id: u64,
    offset: i64,
    max_bytes: usize,
    reply: oneshot::Sender<BrokerResult<FetchResult>>,
}

pub(super) struct Waiters {
    /// `acks=all` appends, waiting for the high watermark.
    produces: VecDeque<DelayedProduce>,
    /// `acks=1` appends and a follower's copies, waiting for this log to be durable.
    local: VecDeque<DelayedProduce>,
    fetches: Vec<DelayedFetch>,
    next_fetch_id: u64,
    max_fetches: usize,
}

impl Waiters {
    pub(super) fn new(max_fetches: usize) -> Waiters {
        Waiters {
            produces: VecDeque::new(),
            local: VecDeque::new(),
            fetches: Vec::new(),
            next_fetch_id: 0,
            max_fetches,
        }
    }

    pub(super) fn has_produces(&self) -> bool {
        !self.produces.is_empty() || !self.local.is_empty()
    }

    /// Parks an `acks=all` append that ends at `last_offset` until the high
    /// watermark passes it; `result` is its answer.
    pub(super) fn park_produce(
        &mut self,
        last_offset: i64,
        result: AppendResult,
    ) -> oneshot::Receiver<BrokerResult<AppendResult>> {
        park_in(&mut self.produces, last_offset, result)
    }

    /// Parks an append that ends at `last_offset` until this log is durable past
    /// it (`acks=1`, a follower's copy).
    pub(super) fn park_local(
        &mut self,
        last_offset: i64,
        result: AppendResult,
    ) -> oneshot::Receiver<BrokerResult<AppendResult>> {
        park_in(&mut self.local, last_offset, result)
    }

    /// Answers every `acks=all` append below `high_watermark`: acknowledged, or
    /// `refusal` when the ISR shrank below `min.insync.replicas` meanwhile.
    pub(super) fn complete_produces(&mut self, high_watermark: i64, refusal: Option<&BrokerError>) {
        complete_in(&mut self.produces, high_watermark, refusal);
    }

    /// Answers every append waiting for this log to be durable below `durable_end`.
    pub(super) fn complete_local(&mut self, durable_end: i64) {
        complete_in(&mut self.local, durable_end, None);
    }

    /// Answers every parked append with `error` (this replica stopped leading).
    pub(super) fn fail_produces(&mut self, error: &BrokerError) {
        for produce in self.produces.drain(..).chain(self.local.drain(..)) {
            let _ = produce.reply.send(Err(error.clone()));
        }
    }

    /// Parks a read from `offset`; `None` when `partition.max.waiting.fetches` are
    /// already waiting (readers that went away do not count).
    fn park_fetch(
        &mut self,
        offset: i64,
        max_bytes: usize,
    ) -> Option<(u64, oneshot::Receiver<BrokerResult<FetchResult>>)> {
        if self.fetches.len() >= self.max_fetches {
            self.fetches.retain(|w| !w.reply.is_closed());
        }
        if self.fetches.len() >= self.max_fetches {
            return None;
        }
        let (reply, rx) = oneshot::channel();
        let id = self.next_fetch_id;
        self.next_fetch_id += 1;
        self.fetches.push(DelayedFetch {
            id,
            offset,
            max_bytes,
            reply,
        });
        Some((id, rx))
    }

    /// Takes the reads that `high_watermark` unblocks, and those nobody waits for.
    fn take_fetches_below(&mut self, high_watermark: i64) -> Vec<DelayedFetch> {
        let (ready, still) = std::mem::take(&mut self.fetches)
            .into_iter()
            .partition(|w| w.offset < high_watermark || w.reply.is_closed());
        self.fetches = still;
        ready
    }

    fn take_fetch(&mut self, id: u64) -> Option<DelayedFetch> {
        let i = self.fetches.iter().position(|w| w.id == id)?;
        Some(self.fetches.swap_remove(i))
    }

    /// Answers everything parked with `error`.
    pub(super) fn fail_all(&mut self, error: &BrokerError) {
        self.fail_produces(error);
        for fetch in self.fetches.drain(..) {
            let _ = fetch.reply.send(Err(error.clone()));
        }
    }
}

/// Parks an append in `queue`, which stays in offset order: a producer's retry of a
/// batch still waiting (a duplicate) goes in beside its original, not after later
/// appends.
fn park_in(
    queue: &mut VecDeque<DelayedProduce>,
    last_offset: i64,
    result: AppendResult,
) -> oneshot::Receiver<BrokerResult<AppendResult>> {
    let (reply, rx) = oneshot::channel();
    let at = queue.partition_point(|p| p.last_offset <= last_offset);
    queue.insert(
        at,
        DelayedProduce {
            last_offset,
            result,
            reply,
        },
    );
    rx
}

/// Answers the appends of `queue` below `end`, with `refusal` if there is one.
fn complete_in(queue: &mut VecDeque<DelayedProduce>, end: i64, refusal: Option<&BrokerError>) {
    while queue.front().is_some_and(|p| p.last_offset < end) {
        if let Some(p) = queue.pop_front() {
            let answer = match refusal {
                Some(e) => Err(e.clone()),
                None => Ok(p.result),
            };
            let _ = p.reply.send(answer);
        }
    }
}

impl PartitionReplica {
    /// Parks a read at the high watermark for up to its `max_wait_ms`.
    pub(super) fn park_fetch(
        &mut self,
        msg: Fetch,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<BrokerResult<FetchResult>> {
        let Some((id, rx)) = self.waiters.park_fetch(msg.offset, msg.max_bytes) else {
            let e = BrokerError::Busy {
                topic: self.topic.clone(),
                partition: self.partition,
                limit: self.limits.max_waiting_fetches,
            };
            return Box::pin(async move { Err(e) });
        };
        let wait = Duration::from_millis(msg.max_wait_ms);
        self.clock
            .run_later(ctx, wait, move |act: &mut Self, _ctx| {
                if let Some(waiter) = act.waiters.take_fetch(id) {
                    let empty = FetchResult {
                        data: FetchData {
                            bytes: Vec::new(),
                            log_start_offset: act.log.as_ref().map_or(0, Log::log_start_offset),
                            log_end_offset: act.log.as_ref().map_or(0, Log::log_end_offset),
                        },
                        high_watermark: act.high_watermark(),
                    };
                    let _ = waiter.reply.send(Ok(empty));
                }
            });
        self.parked_reply(rx, "the partition stopped during the read")
    }

    /// Answers the parked reads below `high_watermark`.
    pub(super) fn complete_fetches(&mut self, ctx: &mut Context<Self>, high_watermark: i64) {
        for waiter in self.waiters.take_fetches_below(high_watermark) {
            if waiter.reply.is_closed() {
                continue;
            }
            let result = self.read(ctx, waiter.offset, waiter.max_bytes);
            let _ = waiter.reply.send(result);
        }
    }

    /// The answer to a parked request: what the actor sends later, or an error if it
    /// stops first (the caller never hangs).
    pub(super) fn parked_reply<T: 'static>(
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
}
