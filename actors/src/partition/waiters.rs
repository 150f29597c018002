//! The partition's purgatory (Kafka's `DelayedOperationPurgatory`): requests that
//! cannot be answered yet, parked until the high watermark moves past them.
//!
//! - A **delayed produce** (Kafka's `DelayedProduce`) is an append written but not yet
//!   durable under the flush policy; it is answered when an fsync carries the high
//!   watermark past its last offset. Produces complete in offset order, so they wait
//!   in a queue.
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
    produces: VecDeque<DelayedProduce>,
    fetches: Vec<DelayedFetch>,
    next_fetch_id: u64,
    max_fetches: usize,
}

impl Waiters {
    pub(super) fn new(max_fetches: usize) -> Waiters {
        Waiters {
            produces: VecDeque::new(),
            fetches: Vec::new(),
            next_fetch_id: 0,
            max_fetches,
        }
    }

    pub(super) fn has_produces(&self) -> bool {
        !self.produces.is_empty()
    }

    /// Parks an append that ends at `last_offset`; `result` is its answer. The queue
    /// stays in offset order: a producer's retry of a batch still waiting (a
    /// duplicate) goes in beside its original, not after later appends.
    pub(super) fn park_produce(
        &mut self,
        last_offset: i64,
        result: AppendResult,
    ) -> oneshot::Receiver<BrokerResult<AppendResult>> {
        let (reply, rx) = oneshot::channel();
        let at = self
            .produces
            .partition_point(|p| p.last_offset <= last_offset);
        self.produces.insert(
            at,
            DelayedProduce {
                last_offset,
                result,
                reply,
            },
        );
        rx
    }

    /// Answers every parked append below `high_watermark`.
    pub(super) fn complete_produces(&mut self, high_watermark: i64) {
        while self
            .produces
            .front()
            .is_some_and(|p| p.last_offset < high_watermark)
        {
            if let Some(p) = self.produces.pop_front() {
                let _ = p.reply.send(Ok(p.result));
            }
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
        for produce in self.produces.drain(..) {
            let _ = produce.reply.send(Err(error.clone()));
        }
        for fetch in self.fetches.drain(..) {
            let _ = fetch.reply.send(Err(error.clone()));
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
