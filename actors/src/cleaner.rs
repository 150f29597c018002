//! `LogCleaner`: the actor that compacts topics with `cleanup.policy=compact`. Every
//! `log.cleaner.backoff.ms` it asks the compacted partitions for their state, picks the
//! one with the highest dirty ratio at or above its `min.cleanable.dirty.ratio` (or
//! whose oldest dirty record has waited `max.compaction.lag.ms`), and hands the pass
//! to a pool of `log.cleaner.threads` workers (a sync arbiter: cleaning is long, blocking
//! I/O). The worker reads the sealed segments and writes the cleaned ones without
//! touching the partition; the partition then installs the result, which costs only
//! the renames, so appends and reads are never held up longer than that.
//!
//! A pass that fails or panics is logged, its prepared files are discarded, and the
//! partition is passed over for `FAILED_PASS_COOLING_ROUNDS` rounds: never left
//! half-cleaned, and a partition that cannot be cleaned (a corrupt batch in it, say)
//! is neither re-read nor re-reported every round (Kafka marks it uncleanable).
//!
//! Supervision ([`crate::supervision`]): a worker is stateless, so a panic in a pass
//! is contained there and the thread carries on. The cleaner itself is restarted
//! after a panic, keeping its books: a pass in flight runs on, and its outcome comes
//! back as a [`PassFinished`] message (the address survives the restart), so a
//! partition is never cleaned by two passes at once nor left marked busy. Once its
//! budget is spent it stays down: no more passes, and its stats say why.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::future::join_all;

use crate::broker::{Broker, CompactedPartitions};
use crate::clock::Clock;
use crate::partition::{CleanerView, GetCleanable, InstallCleaned, PartitionReplica};
use crate::storage::compaction::{clean, discard_cleaning, CleanOutcome, CompactionConfig};
use crate::supervision::{self, contain, ActorKind, RestartPolicy, Supervise, Supervision};

#[derive(Debug, Clone)]
pub struct CleanerSettings {
    pub threads: usize,
    pub dedupe_buffer_bytes: usize,
    pub backoff: Duration,
    /// The round timer, cooling, `max.compaction.lag.ms` and what a pass takes as now
    /// (`delete.retention.ms`, `min.compaction.lag.ms`).
    pub clock: Clock,
    pub restarts: RestartPolicy,
}

/// Totals for metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanerStats {
    pub runs: u64,
    pub failures: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// The cleaner's own restarts, and why it is down once its budget is spent.
    pub restarts: u64,
    pub down: Option<String>,
}

#[derive(Message)]
#[rtype(result = "CleanerStats")]
pub struct GetCleanerStats;

/// Look for work now (also done every `log.cleaner.backoff.ms`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CleanNow;

struct CleanJob {
    view: CleanerView,
    dedupe_buffer_bytes: usize,
}

impl Message for CleanJob {
    type Result = Result<Option<CleanOutcome>, String>;
}

/// Runs cleaning passes on a sync arbiter thread.
struct CleanerWorker {
    clock: Clock,
}

impl Actor for CleanerWorker {
    type Context = SyncContext<Self>;
}

impl Handler<CleanJob> for CleanerWorker {
    type Result = Result<Option<CleanOutcome>, String>;

    fn handle(&mut self, job: CleanJob, _: &mut SyncContext<Self>) -> Self::Result {
        let c = &job.view.config;
        let config = CompactionConfig {
            dedupe_buffer_bytes: job.dedupe_buffer_bytes,
            delete_retention_ms: c.delete_retention_ms,
            min_compaction_lag_ms: c.min_compaction_lag_ms,
            log: c.log.clone(),
        };
        let now = self.clock.now_ms();
        let dir = job.view.log.dir.clone();
        let name = dir.display().to_string();
        let outcome = contain(
            ActorKind::CleanerWorker,
            || name.clone(),
            || clean(&job.view.log, &config, now),
        );
        let failure = match outcome {
            Ok(Ok(result)) => return Ok(result),
            Ok(Err(e)) => e.to_string(),
            Err(panic) => format!("the cleaning pass panicked: {panic}"),
        };
        if let Err(e) = discard_cleaning(&dir) {
            log::warn!("discarding the failed pass in {}: {e}", dir.display());
        }
        Err(failure)
    }
}

/// Rounds of `log.cleaner.backoff.ms` a partition whose pass failed is passed over.
const FAILED_PASS_COOLING_ROUNDS: u32 = 20;

pub struct LogCleaner {
    broker: Addr<Broker>,
    workers: Addr<CleanerWorker>,
    settings: CleanerSettings,
    busy: HashSet<Addr<PartitionReplica>>,
    /// Partitions whose last pass failed or found nothing cleanable, and until when
    /// they are passed over, so one partition cannot starve the others.
    cooling: HashMap<Addr<PartitionReplica>, Instant>,
    stats: CleanerStats,
    supervision: Supervision,
}

/// A pass has ended (its outcome, or why it failed); sent by the pass's own task.
#[derive(Message)]
#[rtype(result = "()")]
struct PassFinished {
    partition: Addr<PartitionReplica>,
    result: Result<Option<CleanOutcome>, String>,
}

impl LogCleaner {
    pub fn start(broker: Addr<Broker>, settings: CleanerSettings) -> Addr<LogCleaner> {
        let (clock, restarts) = (settings.clock.clone(), settings.restarts);
        let workers = SyncArbiter::start(settings.threads.max(1), move || CleanerWorker {
            clock: clock.clone(),
        });
        supervision::start(LogCleaner {
            broker,
            workers,
            settings,
            busy: HashSet::new(),
            cooling: HashMap::new(),
            stats: CleanerStats::default(),
            supervision: Supervision::new(ActorKind::LogCleaner, restarts),
        })
    }

    /// Dirty enough to clean: the ratio is reached, or a dirty record has waited
    /// `max.compaction.lag.ms`.
    fn priority(view: &CleanerView, now_ms: i64) -> Option<f64> {
        let ratio = view.log.dirty_ratio();
        let overdue = view
            .log
            .segments
            .iter()
            .filter(|s| s.info.next_offset > view.log.first_dirty_offset)
            .filter_map(|s| s.info.max_timestamp_ms)
            .min()
            .is_some_and(|oldest| {
                now_ms.saturating_sub(oldest) >= view.config.max_compaction_lag_ms
            });
        (view.log.dirty_bytes() > 0 && (ratio >= view.config.min_cleanable_dirty_ratio || overdue))
            .then_some(ratio)
    }

    fn look_for_work(&mut self, ctx: &mut Context<Self>) {
        let broker = self.broker.clone();
        let now = self.settings.clock.monotonic();
        self.cooling.retain(|_, until| *until > now);
        let busy: Vec<_> = self
            .busy
            .iter()
            .chain(self.cooling.keys())
            .cloned()
            .collect();
        let clock = self.settings.clock.clone();
        let find = async move {
            let partitions = broker.send(CompactedPartitions).await.unwrap_or_default();
            let candidates: Vec<_> = partitions
                .into_iter()
                .filter(|p| !busy.contains(p))
                .collect();
            let views = join_all(candidates.iter().map(|p| p.send(GetCleanable))).await;
            let now = clock.now_ms();
            candidates
                .into_iter()
                .zip(views)
                .filter_map(|(addr, view)| {
                    let view = view.ok()??;
                    Some((LogCleaner::priority(&view, now)?, addr, view))
                })
                .max_by(|a, b| a.0.total_cmp(&b.0))
        };
        ctx.spawn(
            actix::fut::wrap_future(find).map(|best, act: &mut Self, ctx| {
                if let Some((ratio, addr, view)) = best {
                    // Rounds overlap (a round's look is asynchronous): another may have
                    // started, or failed, a pass on this partition meanwhile.
                    let cooling = act
                        .cooling
                        .get(&addr)
                        .is_some_and(|until| *until > act.settings.clock.monotonic());
                    if act.busy.contains(&addr) || cooling {
                        return;
                    }
                    act.run(addr, view, ratio, ctx);
                }
            }),
        );
    }

    fn run(
        &mut self,
        addr: Addr<PartitionReplica>,
        view: CleanerView,
        ratio: f64,
        ctx: &mut Context<Self>,
    ) {
        log::info!(
            "cleaning {} (dirty ratio {ratio:.2})",
            view.log.dir.display()
        );
        self.busy.insert(addr.clone());
        let job = CleanJob {
            view,
            dedupe_buffer_bytes: self.settings.dedupe_buffer_bytes,
        };
        let workers = self.workers.clone();
        let cleaner = ctx.address();
        // Its own task, not the actor's: it outlives a restart of the cleaner.
        actix::spawn(async move {
            let result = pass(workers, job, addr.clone()).await;
            cleaner.do_send(PassFinished {
                partition: addr,
                result,
            });
        });
    }

    fn finished(&mut self, msg: PassFinished, ctx: &mut Context<Self>) {
        self.busy.remove(&msg.partition);
        match msg.result {
            Ok(Some(outcome)) => {
                self.stats.runs += 1;
                self.stats.bytes_read += outcome.stats.bytes_read;
                self.stats.bytes_written += outcome.stats.bytes_written;
                log::info!(
                    "cleaned {} bytes into {} ({} of {} records kept)",
                    outcome.stats.bytes_read,
                    outcome.stats.bytes_written,
                    outcome.stats.records_kept,
                    outcome.stats.records_read
                );
                // More may be dirty (a full offset map ends a pass early).
                self.look_for_work(ctx);
            }
            Ok(None) => {}
            Err(e) => {
                self.stats.failures += 1;
                let rounds = FAILED_PASS_COOLING_ROUNDS;
                let until = self.settings.clock.monotonic() + self.settings.backoff * rounds;
                self.cooling.insert(msg.partition, until);
                log::error!(
                    "log cleaner: pass failed, partition passed over for {rounds} rounds: {e}"
                );
            }
        }
    }
}

/// One pass: the worker cleans, then the partition installs the result.
async fn pass(
    workers: Addr<CleanerWorker>,
    job: CleanJob,
    target: Addr<PartitionReplica>,
) -> Result<Option<CleanOutcome>, String> {
    let outcome = workers.send(job).await.map_err(|e| e.to_string())??;
    let Some(outcome) = outcome else {
        return Ok(None);
    };
    let installed = target
        .send(InstallCleaned(outcome.manifest.clone()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(installed.then_some(outcome))
}

impl Actor for LogCleaner {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.supervision.down().is_none() {
            let (clock, every) = (self.settings.clock.clone(), self.settings.backoff);
            clock.run_interval(ctx, every, |act: &mut Self, ctx| act.look_for_work(ctx));
        }
    }
}

impl Supervise for LogCleaner {
    const KIND: ActorKind = ActorKind::LogCleaner;
}

impl Supervised for LogCleaner {
    /// Its books (busy, cooling, stats) are kept; `started` re-arms the timer.
    fn restarting(&mut self, _: &mut Context<Self>) {
        let now = self.settings.clock.monotonic();
        let _ = self.supervision.restarting_at(&self.name(), now);
    }
}

#[cfg(any(test, feature = "test-support"))]
supervision::answers_panic_hook!(LogCleaner);

impl Handler<CleanNow> for LogCleaner {
    type Result = ();

    fn handle(&mut self, _: CleanNow, ctx: &mut Context<Self>) {
        if self.supervision.down().is_none() {
            self.look_for_work(ctx);
        }
    }
}

impl Handler<PassFinished> for LogCleaner {
    type Result = ();

    fn handle(&mut self, msg: PassFinished, ctx: &mut Context<Self>) {
        self.finished(msg, ctx);
    }
}

impl Handler<GetCleanerStats> for LogCleaner {
    type Result = MessageResult<GetCleanerStats>;

    fn handle(&mut self, _: GetCleanerStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(CleanerStats {
            restarts: self.supervision.restarts() as u64,
            down: self.supervision.down().map(str::to_string),
            ..self.stats.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::compaction::{CleanableLog, CleanableSegment};
    use crate::storage::SegmentInfo;
    use crate::topic_config::PartitionConfig;

    fn view(clean_bytes: u64, dirty_bytes: u64, dirty_newest_ms: i64) -> CleanerView {
        let seg = |base: i64, size: u64, ts: i64| CleanableSegment {
            info: SegmentInfo {
                base_offset: base,
                next_offset: base + 10,
                size_bytes: size,
                max_timestamp_ms: Some(ts),
                is_active: false,
            },
            modified_ms: 0,
        };
        let config = PartitionConfig {
            min_cleanable_dirty_ratio: 0.5,
            max_compaction_lag_ms: 10_000,
            ..PartitionConfig::default()
        };
        CleanerView {
            log: CleanableLog {
                dir: "unused".into(),
                segments: vec![
                    seg(0, clean_bytes, 0),
                    seg(10, dirty_bytes, dirty_newest_ms),
                ],
                first_dirty_offset: 10,
            },
            config,
        }
    }

    #[test]
    fn picks_logs_at_the_dirty_ratio_or_past_max_compaction_lag() {
        assert_eq!(LogCleaner::priority(&view(100, 100, 0), 0), Some(0.5));
        assert_eq!(
            LogCleaner::priority(&view(300, 100, 0), 0),
            None,
            "25% dirty, not overdue"
        );
        assert_eq!(
            LogCleaner::priority(&view(300, 100, 0), 10_000),
            Some(0.25),
            "max.compaction.lag.ms passed"
        );
        assert_eq!(
            LogCleaner::priority(&view(300, 0, 0), i64::MAX),
            None,
            "nothing dirty"
        );
    }
}
