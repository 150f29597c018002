//! Giving memory back to the operating system after large requests.
//!
//! A request of many small records allocates and frees a great many small blocks and
//! a few large buffers. glibc's malloc keeps freed memory in its arenas for reuse
//! (and raises its mmap threshold after a large buffer is freed, so the next one comes
//! from the heap too), so without help a broker that served one 30 MiB request keeps
//! its peak resident size for good. Handlers that have just finished with a lot of
//! memory call [`release_soon`]; a timer then asks malloc to return free pages
//! (`malloc_trim`), at most once per [`TRIM_INTERVAL`], never on the request path.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How often, at most, free memory is handed back.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(1);

/// Bodies at least this large are worth a trim once they are done with.
pub const LARGE_BODY_BYTES: usize = 1024 * 1024;

/// Ticks that trim after a call to [`release_soon`]: some of a large request's memory
/// is freed only later — its answer once the client has read it, the connection's
/// grown buffers when a kept-alive connection closes (after `keep-alive`, 5 s) — so
/// the trim is repeated for a while rather than done once.
const TRIM_TICKS: u32 = 15;

static PENDING: AtomicU32 = AtomicU32::new(0);

/// Asks for free memory to be returned to the OS over the next few ticks.
pub fn release_soon() {
    PENDING.store(TRIM_TICKS, Ordering::Relaxed);
}

/// Buffers at least this large get their own mapping, returned to the OS when freed.
pub const MMAP_THRESHOLD_BYTES: i32 = 256 * 1024;
/// Free memory at the top of a heap beyond this is returned at once.
pub const TRIM_THRESHOLD_BYTES: i32 = 1024 * 1024;

/// Fixes glibc's thresholds. By default they move: after a large mapped buffer is
/// freed, malloc raises its mmap threshold to that size (up to 32 MiB) and its trim
/// threshold to twice that, so the next large buffers come from a heap and up to
/// 64 MiB of free memory stays at the top of each thread's heap — which `malloc_trim`
/// does not give back for threads' arenas. Fixed values keep large buffers mapped
/// (returned when freed) and heap tops trimmed.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        // SAFETY: mallopt only changes malloc's tuning; it takes no pointers.
        let ok = unsafe {
            mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
                && mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
        };
        if !ok {
            log::warn!("could not set malloc's thresholds; memory may be slow to return");
        }
    }
}

/// Starts the timer that trims when asked (on the current actix system).
pub fn start_trimmer() {
    actix_web::rt::spawn(async {
        let mut tick = actix_web::rt::time::interval(TRIM_INTERVAL);
        loop {
            tick.tick().await;
            let due = PENDING
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok();
            if due {
                // Off the async thread: a trim walks the heap.
                let _ = actix_web::rt::task::spawn_blocking(trim).await;
            }
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: malloc_trim only releases free memory held by malloc; it takes no
    // pointers and is safe to call from any thread at any time.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

/// Asks for a trim when dropped, if what it stood for was large: held by a large
/// answer's body, so the trim comes once the answer has been sent and freed.
pub struct ReleaseOnDrop {
    pub bytes: usize,
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        if self.bytes >= LARGE_BODY_BYTES {
            release_soon();
        }
    }
}
