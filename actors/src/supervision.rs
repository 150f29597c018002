//! One restart policy for every actor that owns state: how a failure is contained,
//! when the actor comes back, and when it stays down instead — saying why.
//!
//! The shape is Erlang's, as actix borrows it:
//!
//! - **Containment.** A supervised actor runs inside [`Supervisor`], which polls the
//!   actor's context under `catch_unwind`. A panic anywhere in the actor — a handler,
//!   a timer, a future it spawned, `started` — is caught there, logged with the actor's
//!   kind and name, counted, and turned into a restart. Without it the panic would end
//!   the actor's task and leave every holder of its address with a dead mailbox.
//! - **Restart.** An actor that stops itself (its memory may have run ahead of the disk)
//!   or panics is restarted by actix's own [`ContextFut::restart`]: its futures and
//!   timers are dropped, the *same* address keeps working (messages queue meanwhile),
//!   and [`Supervised::restarting`] then `started` run again. Each actor decides in
//!   `restarting` what it rebuilds: a partition reopens its log through recovery, a
//!   group coordinator replays its `__consumer_offsets` partition, registries keep their
//!   maps.
//! - **Budget.** Every restart spends from a [`RestartPolicy`]: more than
//!   `max_restarts` within `window` (the broker keys `partition.max.restarts` and
//!   `partition.restart.window.ms`, which apply to every kind) and the actor *stays
//!   down*: it keeps its address and answers every request with the reason, rather
//!   than restart-looping or vanishing.
//! - **Temporary actors** (a consumer instance: ephemeral, its client re-creates it)
//!   are contained but never restarted: after a panic the address goes dead and whoever
//!   keeps it forgets it.
//!
//! Every panic, restart and give-up is counted per [`ActorKind`] ([`totals`]) for
//! `/metrics`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use actix::dev::{channel, ContextFut};
use actix::prelude::*;

/// The kinds of actor the policy serves: names logs and the per-kind counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// The topic registry (`broker.rs`).
    Broker,
    Partition,
    GroupCoordinator,
    GroupManager,
    ConsumerRegistry,
    ConsumerInstance,
    LogCleaner,
    /// A cleaning thread: stateless, so a panic is contained per pass and the thread
    /// carries on (counted as a panic, never as a restart).
    CleanerWorker,
    /// A follower's fetcher from one leader broker (`replica_fetcher.rs`).
    ReplicaFetcher,
}

impl ActorKind {
    pub const ALL: [ActorKind; 9] = [
        ActorKind::Broker,
        ActorKind::Partition,
        ActorKind::GroupCoordinator,
        ActorKind::GroupManager,
        ActorKind::ConsumerRegistry,
        ActorKind::ConsumerInstance,
        ActorKind::LogCleaner,
        ActorKind::CleanerWorker,
        ActorKind::ReplicaFetcher,
    ];

    /// The label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            ActorKind::Broker => "broker",
            ActorKind::Partition => "partition",
            ActorKind::GroupCoordinator => "group_coordinator",
            ActorKind::GroupManager => "group_manager",
            ActorKind::ConsumerRegistry => "consumer_registry",
            ActorKind::ConsumerInstance => "consumer_instance",
            ActorKind::LogCleaner => "log_cleaner",
            ActorKind::CleanerWorker => "cleaner_worker",
            ActorKind::ReplicaFetcher => "replica_fetcher",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ActorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label().replace('_', " "))
    }
}

/// How many restarts an actor may take, and over what window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    pub max_restarts: usize,
    pub window: Duration,
}

/// An actor the policy serves.
pub trait Supervise: Actor<Context = Context<Self>> {
    const KIND: ActorKind;

    /// Names this actor in logs (`t-0`, a group id); a kind with one actor per node
    /// goes by its kind.
    fn name(&self) -> String {
        Self::KIND.label().replace('_', "-")
    }
}

/// What [`Supervision::restarting`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Come back; `cause` says what failed.
    Restart { cause: String },
    /// The budget is spent: stay down, answering every request with `reason`.
    StayDown { reason: String },
}

/// One actor's side of the policy: its restart budget, the cause of the failure in
/// progress, and why it is down once it is. Kept in the actor, so it survives its
/// restarts.
#[derive(Debug)]
pub struct Supervision {
    kind: ActorKind,
    policy: RestartPolicy,
    /// Restarts within the last `policy.window`.
    recent: VecDeque<Instant>,
    restarts: usize,
    /// Set by [`Supervision::failed`] before the actor stops itself.
    failure: Option<String>,
    down: Option<String>,
}

impl Supervision {
    pub fn new(kind: ActorKind, policy: RestartPolicy) -> Supervision {
        Supervision {
            kind,
            policy,
            recent: VecDeque::new(),
            restarts: 0,
            failure: None,
            down: None,
        }
    }

    /// Restarts since the actor started.
    pub fn restarts(&self) -> usize {
        self.restarts
    }

    /// Why the actor stays down, once its budget is spent.
    pub fn down(&self) -> Option<&str> {
        self.down.as_deref()
    }

    /// Records why the actor is about to stop itself; its restart reports it.
    pub fn failed(&mut self, reason: String) {
        self.failure = Some(reason);
    }

    /// Called from [`Supervised::restarting`]: spends a restart from the budget (at
    /// `Instant::now()`) and logs the decision.
    pub fn restarting(&mut self, name: &str) -> Verdict {
        self.restarting_at(name, Instant::now())
    }

    /// [`Supervision::restarting`] at `now`: an actor on an injected clock passes its
    /// `Clock::monotonic()`, so the budget's window follows that clock.
    pub fn restarting_at(&mut self, name: &str, now: Instant) -> Verdict {
        let cause = take_panic()
            .map(|message| format!("panic: {message}"))
            .or_else(|| self.failure.take())
            .unwrap_or_else(|| "it stopped".to_string());
        self.decide(name, cause, now)
    }

    fn decide(&mut self, name: &str, cause: String, now: Instant) -> Verdict {
        let kind = self.kind;
        if let Some(reason) = &self.down {
            return Verdict::StayDown {
                reason: reason.clone(),
            };
        }
        self.restarts += 1;
        self.recent.push_back(now);
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.policy.window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() > self.policy.max_restarts {
            let reason = format!(
                "{} restarts within {} ms (the last after {cause})",
                self.recent.len(),
                self.policy.window.as_millis()
            );
            log::error!("{kind} {name} stays down: {reason}");
            counters(kind).gave_up.fetch_add(1, Ordering::Relaxed);
            self.down = Some(reason.clone());
            return Verdict::StayDown { reason };
        }
        log::warn!(
            "restarting {kind} {name} (restart {}): {cause}",
            self.restarts
        );
        counters(kind).restarts.fetch_add(1, Ordering::Relaxed);
        Verdict::Restart { cause }
    }
}

/// Starts `act` on the current arbiter, restarted after a panic or a stop within its
/// budget. The address stays valid across restarts.
pub fn start<A: Supervise + Supervised>(act: A) -> Addr<A> {
    spawn_here(act, Some(restart::<A>))
}

/// [`start`], on `arbiter`.
pub fn start_in_arbiter<A: Supervise + Supervised + Send>(
    arbiter: &ArbiterHandle,
    act: A,
) -> Addr<A> {
    let (tx, rx) = channel::channel(MAILBOX_CAPACITY);
    let name = act.name();
    let spawned = arbiter.spawn_fn(move || {
        let fut = Context::with_receiver(rx).into_future(act);
        actix::spawn(Supervisor {
            fut,
            name,
            restart: Some(restart::<A>),
        });
    });
    if !spawned {
        log::error!("{}: its arbiter has stopped; it never starts", A::KIND);
    }
    Addr::new(tx)
}

/// Starts an actor that is contained but never restarted: after a panic it ends, and
/// its address goes dead (the holders forget it).
pub fn start_temporary<A: Supervise>(act: A) -> Addr<A> {
    spawn_here(act, None)
}

fn spawn_here<A: Supervise>(act: A, restart: Option<fn(&mut Running<A>) -> bool>) -> Addr<A> {
    let name = act.name();
    let fut = Context::new().into_future(act);
    let addr = fut.address();
    actix::spawn(Supervisor { fut, name, restart });
    addr
}

/// Runs `f`, turning a panic into `Err` with its message, logged and counted against
/// `kind`: for code that must answer its caller even when it panics (a partition's
/// log operations, a cleaning pass).
pub fn contain<T>(
    kind: ActorKind,
    name: impl FnOnce() -> String,
    f: impl FnOnce() -> T,
) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        let message = panic_message(&panic);
        // Named only when it panicked: `contain` wraps every append and read.
        log::error!("{kind} {} panicked: {message}", name());
        counters(kind).panics.fetch_add(1, Ordering::Relaxed);
        message
    })
}

/// A caught panic's message.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// The counts of one kind since the process started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindTotals {
    pub kind: ActorKind,
    /// Panics caught (each ended in a restart, a failed request or a temporary
    /// actor's end).
    pub panics: u64,
    pub restarts: u64,
    /// Actors of this kind that spent their budget and stayed down.
    pub gave_up: u64,
}

/// Every kind's counts.
pub fn totals() -> Vec<KindTotals> {
    ActorKind::ALL
        .iter()
        .map(|&kind| {
            let c = counters(kind);
            KindTotals {
                kind,
                panics: c.panics.load(Ordering::Relaxed),
                restarts: c.restarts.load(Ordering::Relaxed),
                gave_up: c.gave_up.load(Ordering::Relaxed),
            }
        })
        .collect()
}

/// A test hook: the actor panics in a handler, outside any guard, as a bug (an
/// assignor's, say) would. Every supervised kind answers it.
#[cfg(any(test, feature = "test-support"))]
#[doc(hidden)]
#[derive(Message)]
#[rtype(result = "()")]
pub struct PanicInHandler;

/// Implements the [`PanicInHandler`] hook for an actor.
#[cfg(any(test, feature = "test-support"))]
macro_rules! answers_panic_hook {
    ($actor:ty) => {
        impl actix::Handler<$crate::supervision::PanicInHandler> for $actor {
            type Result = ();

            fn handle(
                &mut self,
                _: $crate::supervision::PanicInHandler,
                _: &mut actix::Context<Self>,
            ) {
                panic!("injected panic");
            }
        }
    };
}
#[cfg(any(test, feature = "test-support"))]
pub(crate) use answers_panic_hook;

/// actix's default; an actor may set its own in `started`.
const MAILBOX_CAPACITY: usize = 16;

struct Counters {
    panics: AtomicU64,
    restarts: AtomicU64,
    gave_up: AtomicU64,
}

static COUNTERS: [Counters; ActorKind::ALL.len()] = [const {
    Counters {
        panics: AtomicU64::new(0),
        restarts: AtomicU64::new(0),
        gave_up: AtomicU64::new(0),
    }
}; ActorKind::ALL.len()];

fn counters(kind: ActorKind) -> &'static Counters {
    &COUNTERS[kind.index()]
}

thread_local! {
    /// The message of the panic the supervisor on this thread caught, for the
    /// `restarting` it calls next (synchronously, on this thread) to report.
    static CAUGHT_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn take_panic() -> Option<String> {
    CAUGHT_PANIC.with(|p| p.borrow_mut().take())
}

/// An actor's running context, as actix drives it.
type Running<A> = ContextFut<A, Context<A>>;

fn restart<A: Supervised + Actor<Context = Context<A>>>(fut: &mut Running<A>) -> bool {
    fut.restart()
}

/// actix's `Supervisor`, with the actor's context polled under `catch_unwind`: a
/// panic restarts the actor as a stop does (or ends a temporary one).
struct Supervisor<A: Supervise> {
    fut: Running<A>,
    name: String,
    /// `None` for a temporary actor.
    restart: Option<fn(&mut Running<A>) -> bool>,
}

impl<A: Supervise> Future for Supervisor<A> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            let polled = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut this.fut).poll(cx)));
            match polled {
                Ok(Poll::Pending) => return Poll::Pending,
                // It stopped itself.
                Ok(Poll::Ready(())) => {}
                Err(panic) => {
                    let message = panic_message(&panic);
                    log::error!("{} {} panicked: {message}", A::KIND, this.name);
                    counters(A::KIND).panics.fetch_add(1, Ordering::Relaxed);
                    CAUGHT_PANIC.with(|p| *p.borrow_mut() = Some(message));
                }
            }
            let Some(restart) = this.restart else {
                // A temporary actor ends here, as it is: no handler runs again.
                this.fut.ctx().terminate();
                take_panic();
                return Poll::Ready(());
            };
            let restarted = catch_unwind(AssertUnwindSafe(|| restart(&mut this.fut)));
            // Not left for another actor's restart on this thread.
            take_panic();
            match restarted {
                Ok(true) => {}
                // Nobody holds its address any more: nothing to restart for.
                Ok(false) => return Poll::Ready(()),
                Err(panic) => {
                    log::error!(
                        "{} {} panicked while restarting ({}); it is gone",
                        A::KIND,
                        this.name,
                        panic_message(&panic)
                    );
                    return Poll::Ready(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_restarts: usize) -> RestartPolicy {
        RestartPolicy {
            max_restarts,
            window: Duration::from_secs(10),
        }
    }

    #[test]
    fn the_budget_is_spent_within_the_window_and_refills_after_it() {
        let mut s = Supervision::new(ActorKind::Partition, policy(2));
        let t0 = Instant::now();
        for i in 0..2 {
            let at = t0 + Duration::from_secs(i);
            assert!(matches!(
                s.decide("t-0", "x".into(), at),
                Verdict::Restart { .. }
            ));
        }
        // Past the window, the first two no longer count.
        let later = t0 + Duration::from_secs(12);
        assert!(matches!(
            s.decide("t-0", "x".into(), later),
            Verdict::Restart { .. }
        ));
        assert_eq!(s.restarts(), 3);
        assert!(s.down().is_none());
    }

    #[test]
    fn a_spent_budget_leaves_the_actor_down_with_its_reason_for_good() {
        let mut s = Supervision::new(ActorKind::GroupCoordinator, policy(1));
        let t0 = Instant::now();
        assert!(matches!(
            s.decide("g", "a".into(), t0),
            Verdict::Restart { .. }
        ));
        let Verdict::StayDown { reason } = s.decide("g", "panic: boom".into(), t0) else {
            panic!("the second restart within the window is over budget");
        };
        assert!(reason.contains("2 restarts within 10000 ms"), "{reason}");
        assert!(reason.contains("panic: boom"), "{reason}");
        assert_eq!(s.down(), Some(reason.as_str()));
        // Long after, it is still down: nothing is spent, nothing restarts.
        let much_later = t0 + Duration::from_secs(3600);
        assert_eq!(
            s.decide("g", "c".into(), much_later),
            Verdict::StayDown { reason }
        );
        assert_eq!(s.restarts(), 2);
    }

    #[test]
    fn a_recorded_failure_is_the_cause_a_restart_reports() {
        let mut s = Supervision::new(ActorKind::LogCleaner, policy(5));
        s.failed("write failed".into());
        assert_eq!(
            s.restarting("log-cleaner"),
            Verdict::Restart {
                cause: "write failed".into()
            }
        );
        assert_eq!(
            s.restarting("log-cleaner"),
            Verdict::Restart {
                cause: "it stopped".into()
            }
        );
    }

    #[test]
    fn a_contained_panic_gives_its_message() {
        let caught = contain(
            ActorKind::CleanerWorker,
            || "w".into(),
            || -> u8 { panic!("bad pass") },
        );
        assert_eq!(caught, Err("bad pass".to_string()));
        assert_eq!(
            contain(ActorKind::CleanerWorker, || "w".into(), || 7),
            Ok(7)
        );
    }
}
