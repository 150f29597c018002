//! How a partition fails and comes back: its side of the one restart policy
//! ([`crate::supervision`]), and what only a partition knows — which errors leave its
//! files in doubt, and what it drops and reopens.
//!
//! Every operation on the log runs in [`PartitionReplica::guarded`], which contains a
//! panic so the caller is answered. A panic, or an error that leaves the files in
//! doubt ([`write_error_is_fatal`]: I/O or corruption on a write path, never a full
//! disk), calls [`PartitionReplica::fail`]: parked requests get `PartitionRestarting`,
//! the log is dropped as a crash would drop it, the live-tail ring closes and the
//! actor stops. A panic anywhere else is caught by the supervisor, and `restarting`
//! does the same clean-up. The supervisor restarts the actor and `started` reopens the
//! log from disk through recovery. Once the budget is spent the partition stays
//! offline, every request answered with the reason, rather than restart-looping.

use actix::prelude::*;

use super::PartitionReplica;
use crate::error::{BrokerError, BrokerResult};
use crate::storage::{Log, LogError, LogResult};
use crate::supervision::{self, contain, ActorKind, Supervise, Verdict};

impl PartitionReplica {
    /// Starts the actor under the supervision policy on `arbiter`.
    pub fn start_supervised(self, arbiter: &ArbiterHandle) -> Addr<PartitionReplica> {
        supervision::start_in_arbiter(arbiter, self)
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
        let name = || format!("{}-{}", self.topic, self.partition);
        match contain(ActorKind::Partition, name, || op(log)) {
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
                let reason = format!("panic: {panic}");
                self.fail(ctx, reason.clone());
                Err(self.restarting_error(reason))
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
        self.drop_log(&self.restarting_error(reason.clone()));
        self.supervision.failed(reason);
        ctx.stop();
    }

    /// What a crash loses: the log (reopened from disk), parked requests (each told
    /// `error`) and the live-tail ring (its feeds resubscribe).
    fn drop_log(&mut self, error: &BrokerError) {
        self.fail_parked(error);
        self.log = None;
        self.close_tail();
    }

    fn restarting_error(&self, reason: String) -> BrokerError {
        BrokerError::PartitionRestarting {
            topic: self.topic.clone(),
            partition: self.partition,
            reason,
        }
    }

    /// Every parked request gets `error`; an fsync in flight will find nobody.
    pub(super) fn fail_parked(&mut self, error: &BrokerError) {
        self.waiters.fail_all(error);
        self.fail_replica_fetches(error);
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

impl Supervise for PartitionReplica {
    const KIND: ActorKind = ActorKind::Partition;

    fn name(&self) -> String {
        PartitionReplica::name(self)
    }
}

impl Supervised for PartitionReplica {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        // The context's timers and futures are gone with the restart.
        self.reset_flush();
        self.reset_isr_timer();
        if self.stopped {
            self.log = None;
            return;
        }
        let now = self.clock.monotonic();
        match self.supervision.restarting_at(&self.name(), now) {
            // After `fail` this finds nothing left to drop; after a panic outside
            // `guarded` it answers what was parked.
            Verdict::Restart { cause } => self.drop_log(&self.restarting_error(cause)),
            Verdict::StayDown { reason } => {
                self.drop_log(&self.restarting_error(reason.clone()));
                self.go_offline(reason);
            }
        }
    }
}

#[cfg(any(test, feature = "test-support"))]
supervision::answers_panic_hook!(PartitionReplica);

/// Write-path errors leave the file state in doubt: reopen from disk. A full disk
/// does not: every write cuts back what it began (see [`LogError::is_disk_full`]), so
/// the partition refuses that write and stays online, serving reads, and takes writes
/// again as soon as space is freed — a restart could not help, and recovery on a full
/// disk is the one thing that might fail.
pub(super) fn write_error_is_fatal(e: &LogError) -> bool {
    !e.is_disk_full() && matches!(e, LogError::Io { .. } | LogError::Corrupt { .. })
}
