//! How a partition fails and comes back: its restart policy, in one place until one
//! policy serves every stateful actor.
//!
//! Every operation on the log runs in [`PartitionReplica::guarded`], under
//! `catch_unwind`. A panic, or an error that leaves the files in doubt
//! ([`write_error_is_fatal`]: I/O or corruption on a write path, never a full disk),
//! calls [`PartitionReplica::fail`]: parked requests get `PartitionRestarting`, the
//! log is dropped as a crash would drop it, the live-tail ring closes and the actor
//! stops. Its [`actix::Supervisor`] restarts it and `started` reopens the log from
//! disk through recovery. More than `partition.max.restarts` restarts within
//! `partition.restart.window.ms` ([`RestartBudget`]) leave the partition offline,
//! every request answered with the reason, rather than restart-looping.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::PartitionReplica;
use crate::error::{BrokerError, BrokerResult};
use crate::storage::{Log, LogError, LogResult};

/// Restarts allowed within a sliding window.
#[derive(Debug)]
pub(super) struct RestartBudget {
    max_restarts: usize,
    window: Duration,
    recent: VecDeque<Instant>,
    restarts: usize,
}

impl RestartBudget {
    pub(super) fn new(max_restarts: usize, window: Duration) -> RestartBudget {
        RestartBudget {
            max_restarts,
            window,
            recent: VecDeque::new(),
            restarts: 0,
        }
    }

    /// Restarts since the partition started.
    pub(super) fn restarts(&self) -> usize {
        self.restarts
    }

    /// Counts a restart at `now`; `Err` with the reason to go offline when the budget
    /// is spent.
    fn spend(&mut self, now: Instant) -> Result<(), String> {
        self.restarts += 1;
        self.recent.push_back(now);
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() > self.max_restarts {
            return Err(format!(
                "{} restarts within {} ms",
                self.recent.len(),
                self.window.as_millis()
            ));
        }
        Ok(())
    }
}

impl PartitionReplica {
    /// Starts the actor under a supervisor on `arbiter`.
    pub fn start_supervised(self, arbiter: &ArbiterHandle) -> Addr<PartitionReplica> {
        Supervisor::start_in_arbiter(arbiter, move |_| self)
    }

    /// Runs `op` on the log, catching panics. A panic, or an error that `is_fatal`
    /// says leaves the log in doubt, fails the partition (restart from disk).
    pub(super) fn guarded<T>(
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
    pub(super) fn fail(&mut self, ctx: &mut Context<Self>, reason: String) {
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

    /// Every parked request gets `error`; an fsync in flight will find nobody.
    pub(super) fn fail_parked(&mut self, error: &BrokerError) {
        self.waiters.fail_all(error);
        self.reset_flush();
    }

    pub(super) fn go_offline(&mut self, reason: String) {
        log::error!("partition {} is offline: {reason}", self.name());
        self.log = None;
        self.offline_reason = Some(reason);
    }

    /// The answer while there is no log: offline (with why), or stopped.
    pub(super) fn unavailable(&self) -> BrokerError {
        BrokerError::PartitionOffline {
            topic: self.topic.clone(),
            partition: self.partition,
            reason: self
                .offline_reason
                .clone()
                .unwrap_or_else(|| "stopped".into()),
        }
    }
}

impl Supervised for PartitionReplica {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.log = None;
        // The context's timers and futures are gone with the restart.
        self.reset_flush();
        if self.stopped {
            return;
        }
        match self.restart_budget.spend(self.clock.monotonic()) {
            Err(reason) => self.go_offline(reason),
            Ok(()) => log::warn!(
                "restarting partition {} (restart {})",
                self.name(),
                self.restart_budget.restarts()
            ),
        }
    }
}

pub(super) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
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
pub(super) fn write_error_is_fatal(e: &LogError) -> bool {
    !e.is_disk_full() && matches!(e, LogError::Io { .. } | LogError::Corrupt { .. })
}
