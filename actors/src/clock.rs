//! `Clock`: the one place the engine reads time and waits for it.
//!
//! Every actor that stamps a record, measures an age (retention, compaction lags,
//! session timeouts, idle instances) or arms a timer (`flush.ms`, delayed fetches,
//! rebalance deadlines, heartbeats, the cleaner's backoff) is handed a `Clock` when it
//! is built, and asks it instead of `SystemTime`, `Instant` or tokio's timers. In
//! production it is [`Clock::system`]: the wall clock for timestamps and ages,
//! `Instant` for deadlines, tokio's timers for waiting — exactly what the actors
//! called before. In tests it is a [`ManualClock`]'s: time stands still until the
//! test advances it, and every wait due by then ends. A test of a session timeout
//! advances the clock past it instead of sleeping through it.
//!
//! Why not tokio's own paused clock (`time::pause`, `advance`): it pauses one
//! current-thread runtime, and a node runs several — actix gives every arbiter its
//! own (the partitions', the group coordinators', the system's), so a test would
//! have to pause runtimes it does not own; a paused runtime also jumps ahead by
//! itself whenever it is idle, which it is while an fsync runs on a blocking thread;
//! and it does nothing for wall-clock reads. A manual clock shared by handle moves
//! every actor's time at once, and only when the test says so.
//!
//! A wait's deadline is fixed when it is created, not when first polled: once a test
//! has had an answer from the actor that armed a timer, advancing past the timer's
//! duration fires it, whichever thread the actor runs on.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::storage::{SystemWallClock, WallClock};

/// A handle on the engine's time; cheap to clone, shared by every actor of a node.
#[derive(Clone)]
pub struct Clock {
    source: Source,
}

#[derive(Clone)]
enum Source {
    System,
    Manual(Arc<ManualTime>),
}

impl Clock {
    /// The real clocks: what a broker runs on.
    pub fn system() -> Clock {
        Clock {
            source: Source::System,
        }
    }

    /// Milliseconds since the Unix epoch: record timestamps, retention and
    /// compaction ages, group state timestamps.
    pub fn now_ms(&self) -> i64 {
        match &self.source {
            Source::System => system_now_ms(),
            Source::Manual(m) => m.start_ms.saturating_add(duration_ms(m.lock().elapsed)),
        }
    }

    /// Monotonic now, for deadlines and elapsed times (never goes back).
    pub fn monotonic(&self) -> Instant {
        match &self.source {
            Source::System => Instant::now(),
            Source::Manual(m) => m.origin + m.lock().elapsed,
        }
    }

    /// How long since `earlier` (a [`Self::monotonic`] reading); zero if it is ahead.
    pub fn elapsed_since(&self, earlier: Instant) -> Duration {
        self.monotonic().saturating_duration_since(earlier)
    }

    /// A future that is ready `after` from now.
    pub fn sleep(&self, after: Duration) -> Sleep {
        match &self.source {
            Source::System => Sleep::system(tokio::time::sleep(after)),
            Source::Manual(m) => {
                let deadline = m.lock().elapsed.saturating_add(after);
                Sleep::manual(m, deadline)
            }
        }
    }

    /// A future that is ready at `deadline` (a [`Self::monotonic`] instant).
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        match &self.source {
            Source::System => Sleep::system(tokio::time::sleep_until(
                tokio::time::Instant::from_std(deadline),
            )),
            Source::Manual(m) => Sleep::manual(m, deadline.saturating_duration_since(m.origin)),
        }
    }

    /// `future`'s output, or `None` if `limit` passes first.
    pub async fn timeout<F: Future>(&self, limit: Duration, future: F) -> Option<F::Output> {
        let sleep = self.sleep(limit);
        futures::pin_mut!(future);
        match futures::future::select(future, sleep).await {
            futures::future::Either::Left((output, _)) => Some(output),
            futures::future::Either::Right(((), _)) => None,
        }
    }

    /// Runs `f` on the actor once, `after` from now (as `ctx.run_later`, on this
    /// clock). Cancel it with `ctx.cancel_future` and the handle.
    pub fn run_later<A, F>(&self, ctx: &mut A::Context, after: Duration, f: F) -> SpawnHandle
    where
        A: Actor,
        A::Context: AsyncContext<A>,
        F: FnOnce(&mut A, &mut A::Context) + 'static,
    {
        ctx.spawn(fut::wrap_future::<_, A>(self.sleep(after)).map(move |(), act, ctx| f(act, ctx)))
    }

    /// Runs `f` on the actor every `every`, the first time `every` from now (as
    /// `ctx.run_interval`, on this clock: each deadline is the previous one plus
    /// `every`, and a late tick runs at once).
    pub fn run_interval<A, F>(&self, ctx: &mut A::Context, every: Duration, f: F) -> SpawnHandle
    where
        A: Actor,
        A::Context: AsyncContext<A>,
        F: FnMut(&mut A, &mut A::Context) + 'static,
    {
        let first = self.monotonic() + every;
        ctx.spawn(Ticks {
            clock: self.clone(),
            every,
            next: first,
            sleep: self.sleep_until(first),
            f: Box::new(f),
        })
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::System => f.write_str("Clock::system"),
            Source::Manual(_) => write!(f, "Clock::manual(at {} ms)", self.now_ms()),
        }
    }
}

/// The log reads its wall clock (segment.ms, flush.ms, LogAppendTime, checkpoint
/// intervals) through the storage layer's trait, which knows nothing of actors.
impl WallClock for Clock {
    fn now_ms(&self) -> i64 {
        Clock::now_ms(self)
    }
}

fn system_now_ms() -> i64 {
    SystemWallClock.now_ms()
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A clock for tests: it starts at `start_ms` (wall) and moves only by
/// [`ManualClock::advance`]. Hand [`ManualClock::clock`] to the node or actor.
#[derive(Clone)]
pub struct ManualClock {
    time: Arc<ManualTime>,
}

struct ManualTime {
    start_ms: i64,
    origin: Instant,
    state: Mutex<ManualState>,
}

#[derive(Default)]
struct ManualState {
    elapsed: Duration,
    next_id: u64,
    /// Waits polled and not yet due: id -> (deadline, who to wake).
    waiting: BTreeMap<u64, (Duration, Waker)>,
}

impl ManualTime {
    fn lock(&self) -> MutexGuard<'_, ManualState> {
        // A panic while holding the lock leaves plain numbers behind: still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ManualClock {
    /// A clock reading `start_ms` milliseconds since the epoch.
    pub fn starting_at(start_ms: i64) -> ManualClock {
        ManualClock {
            time: Arc::new(ManualTime {
                start_ms,
                origin: Instant::now(),
                state: Mutex::new(ManualState::default()),
            }),
        }
    }

    /// The handle to give the code under test.
    pub fn clock(&self) -> Clock {
        Clock {
            source: Source::Manual(self.time.clone()),
        }
    }

    /// Moves time forward by `by`; every wait due by then is woken.
    pub fn advance(&self, by: Duration) {
        let due: Vec<Waker> = {
            let mut state = self.time.lock();
            state.elapsed = state.elapsed.saturating_add(by);
            let now = state.elapsed;
            let ids: Vec<u64> = state
                .waiting
                .iter()
                .filter(|(_, (deadline, _))| *deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| state.waiting.remove(&id).map(|(_, waker)| waker))
                .collect()
        };
        for waker in due {
            waker.wake();
        }
    }

    /// [`Self::advance`] by `ms` milliseconds.
    pub fn advance_ms(&self, ms: u64) {
        self.advance(Duration::from_millis(ms));
    }

    /// Time advanced since the clock was made.
    pub fn elapsed(&self) -> Duration {
        self.time.lock().elapsed
    }

    pub fn now_ms(&self) -> i64 {
        self.clock().now_ms()
    }
}

/// What [`Clock::sleep`] returns.
pub struct Sleep(SleepOn);

enum SleepOn {
    System(Pin<Box<tokio::time::Sleep>>),
    Manual {
        time: Arc<ManualTime>,
        /// Since the manual clock's origin.
        deadline: Duration,
        /// Set once registered with the clock to be woken.
        id: Option<u64>,
    },
}

impl Sleep {
    fn system(sleep: tokio::time::Sleep) -> Sleep {
        Sleep(SleepOn::System(Box::pin(sleep)))
    }

    fn manual(time: &Arc<ManualTime>, deadline: Duration) -> Sleep {
        Sleep(SleepOn::Manual {
            time: time.clone(),
            deadline,
            id: None,
        })
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        match &mut self.get_mut().0 {
            SleepOn::System(sleep) => sleep.as_mut().poll(cx),
            SleepOn::Manual { time, deadline, id } => {
                let mut state = time.lock();
                if state.elapsed >= *deadline {
                    if let Some(id) = id.take() {
                        state.waiting.remove(&id);
                    }
                    return Poll::Ready(());
                }
                let key = *id.get_or_insert_with(|| {
                    state.next_id += 1;
                    state.next_id
                });
                state.waiting.insert(key, (*deadline, cx.waker().clone()));
                Poll::Pending
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let SleepOn::Manual {
            time, id: Some(id), ..
        } = &mut self.0
        {
            time.lock().waiting.remove(id);
        }
    }
}

/// What [`Clock::run_interval`] runs on every tick.
type Tick<A> = Box<dyn FnMut(&mut A, &mut <A as Actor>::Context)>;

/// [`Clock::run_interval`]'s timer, polled by the actor's context.
struct Ticks<A: Actor> {
    clock: Clock,
    every: Duration,
    next: Instant,
    sleep: Sleep,
    f: Tick<A>,
}

impl<A: Actor> ActorFuture<A> for Ticks<A> {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut A,
        ctx: &mut A::Context,
        task: &mut TaskContext<'_>,
    ) -> Poll<()> {
        // Nothing in it is pinned in place: the sleep is boxed or plain data.
        let this = self.get_mut();
        loop {
            if Pin::new(&mut this.sleep).poll(task).is_pending() {
                return Poll::Pending;
            }
            this.next += this.every;
            this.sleep = this.clock.sleep_until(this.next);
            (this.f)(act, ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let manual = ManualClock::starting_at(1_000);
        let clock = manual.clock();
        let start = clock.monotonic();
        assert_eq!(clock.now_ms(), 1_000);
        manual.advance_ms(250);
        assert_eq!(clock.now_ms(), 1_250);
        assert_eq!(clock.elapsed_since(start), Duration::from_millis(250));
    }

    #[test]
    fn a_sleep_is_due_at_its_deadline_and_not_before() {
        let manual = ManualClock::starting_at(0);
        let clock = manual.clock();
        let mut sleep = clock.sleep(Duration::from_millis(100));
        assert!((&mut sleep).now_or_never().is_none());
        manual.advance_ms(99);
        assert!((&mut sleep).now_or_never().is_none());
        manual.advance_ms(1);
        assert!((&mut sleep).now_or_never().is_some());
        // The deadline was fixed when the sleep was made, not when first polled.
        let late = clock.sleep(Duration::from_millis(10));
        manual.advance_ms(10);
        assert!(late.now_or_never().is_some());
    }

    #[test]
    fn advancing_wakes_the_waits_due_and_forgets_dropped_ones() {
        let manual = ManualClock::starting_at(0);
        let clock = manual.clock();
        let mut soon = Box::pin(clock.sleep(Duration::from_millis(5)));
        let later = Box::pin(clock.sleep(Duration::from_millis(50)));
        let waker = futures::task::noop_waker();
        let mut cx = TaskContext::from_waker(&waker);
        assert!(soon.as_mut().poll(&mut cx).is_pending());
        let mut later = later;
        assert!(later.as_mut().poll(&mut cx).is_pending());
        assert_eq!(manual.time.lock().waiting.len(), 2);
        drop(later);
        assert_eq!(manual.time.lock().waiting.len(), 1);
        manual.advance_ms(5);
        assert!(manual.time.lock().waiting.is_empty(), "woken and forgotten");
        assert!(soon.as_mut().poll(&mut cx).is_ready());
    }

    #[actix_rt::test]
    async fn timers_of_actors_fire_when_the_clock_passes_them() {
        struct Ticker {
            clock: Clock,
            ticks: u32,
            fired: bool,
        }
        impl Actor for Ticker {
            type Context = Context<Self>;
            fn started(&mut self, ctx: &mut Context<Self>) {
                self.clock.clone().run_interval(
                    ctx,
                    Duration::from_millis(10),
                    |act: &mut Self, _| act.ticks += 1,
                );
                self.clock.clone().run_later(
                    ctx,
                    Duration::from_millis(25),
                    |act: &mut Self, _| act.fired = true,
                );
            }
        }
        #[derive(Message)]
        #[rtype(result = "(u32, bool)")]
        struct Read;
        impl Handler<Read> for Ticker {
            type Result = MessageResult<Read>;
            fn handle(&mut self, _: Read, _: &mut Context<Self>) -> Self::Result {
                MessageResult((self.ticks, self.fired))
            }
        }
        let manual = ManualClock::starting_at(0);
        let addr = Ticker {
            clock: manual.clock(),
            ticks: 0,
            fired: false,
        }
        .start();
        assert_eq!(addr.send(Read).await.unwrap(), (0, false));
        manual.advance_ms(20);
        // The context runs the woken timers when it is next polled; a message
        // round trip or two sees them.
        let mut seen = (0, false);
        for _ in 0..10 {
            seen = addr.send(Read).await.unwrap();
            if seen.0 == 2 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(seen, (2, false), "two ticks by 20 ms, the one-shot not yet");
        manual.advance_ms(10);
        for _ in 0..10 {
            seen = addr.send(Read).await.unwrap();
            if seen == (3, true) {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(seen, (3, true));
    }
}
