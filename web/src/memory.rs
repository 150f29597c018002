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
pub const TRIM_INTERVAL: Duration = Duration::from_millis(500);

/// Bodies at least this large are worth a trim once they are done with.
pub const LARGE_BODY_BYTES: usize = 1024 * 1024;

/// Ticks that trim after a call to [`release_soon`]: the handler asks before its
/// answer has left (a large answer is freed only once the client has read it), so
/// the trim is repeated for a while rather than done once.
const TRIM_TICKS: u32 = 6;

static PENDING: AtomicU32 = AtomicU32::new(0);

/// Asks for free memory to be returned to the OS over the next few ticks.
pub fn release_soon() {
    PENDING.store(TRIM_TICKS, Ordering::Relaxed);
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
