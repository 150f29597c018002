//! Large buffers used again rather than mapped afresh.
//!
//! A Kafka client moves data in requests of about a megabyte: a producer's batch, a
//! fetch's run of batches. The broker fixes malloc's mmap threshold (see
//! `troupe_web::memory`), so a buffer that size is a new mapping each time, and
//! the kernel zero-fills every page of it on first touch, which cost more than
//! the copy into it. These buffers are kept instead: a log read takes one, a
//! produced batch's bytes are copied into one, and each returns here when dropped.
//!
//! The pool is bounded: at most [`KEPT`] buffers, each of at most
//! [`MAX_KEPT_CAPACITY`] bytes (a 50 MiB REST read is not kept), so it holds at most
//! `KEPT × MAX_KEPT_CAPACITY` bytes however busy the broker was.

use std::sync::Mutex;

use bytes::Bytes;

/// How many buffers the pool keeps.
pub const KEPT: usize = 16;
/// Buffers smaller than this are not worth keeping (malloc reuses them anyway).
pub const MIN_KEPT_CAPACITY: usize = 128 * 1024;
/// Buffers larger than this are given back to the operating system.
pub const MAX_KEPT_CAPACITY: usize = 4 * 1024 * 1024;

/// A bounded set of kept buffers.
pub struct Pool {
    kept: Mutex<Vec<Vec<u8>>>,
}

/// The broker's pool.
pub static POOL: Pool = Pool::new();

impl Pool {
    pub const fn new() -> Pool {
        Pool {
            kept: Mutex::new(Vec::new()),
        }
    }

    /// An empty buffer: a kept one when there is one, else a new one with `capacity`.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        let kept = self.kept.lock().ok().and_then(|mut kept| kept.pop());
        match kept {
            Some(mut buf) => {
                buf.reserve(capacity);
                buf
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// Keeps `buf` for a later [`Pool::take`] when it is of a size worth keeping and
    /// there is room; frees it otherwise.
    pub fn recycle(&self, mut buf: Vec<u8>) {
        if !(MIN_KEPT_CAPACITY..=MAX_KEPT_CAPACITY).contains(&buf.capacity()) {
            return;
        }
        buf.clear();
        if let Ok(mut kept) = self.kept.lock() {
            if kept.len() < KEPT {
                kept.push(buf);
            }
        }
    }

    /// `buf` as shared bytes that come back to this pool when the last reference
    /// is dropped.
    pub fn shared(&'static self, buf: Vec<u8>) -> Bytes {
        if buf.capacity() < MIN_KEPT_CAPACITY {
            return Bytes::from(buf);
        }
        Bytes::from_owner(Recycled { buf, pool: self })
    }

    #[cfg(test)]
    fn holds(&self, address: *const u8) -> bool {
        self.kept
            .lock()
            .is_ok_and(|kept| kept.iter().any(|b| b.as_ptr() == address))
    }
}

impl Default for Pool {
    fn default() -> Pool {
        Pool::new()
    }
}

/// A buffer that goes back to its pool when dropped.
struct Recycled {
    buf: Vec<u8>,
    pool: &'static Pool,
}

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        self.pool.recycle(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_buffer_comes_back_to_its_pool_with_its_allocation() {
        static TEST_POOL: Pool = Pool::new();
        let mut buf = TEST_POOL.take(MIN_KEPT_CAPACITY);
        buf.extend_from_slice(b"records");
        let address = buf.as_ptr();
        let bytes = TEST_POOL.shared(buf);
        let slice = bytes.slice(1..3);
        drop(bytes);
        assert!(!TEST_POOL.holds(address), "a slice keeps the buffer in use");
        assert_eq!(&slice[..], b"ec");
        drop(slice);
        assert!(TEST_POOL.holds(address));
        let again = TEST_POOL.take(16);
        assert_eq!((again.as_ptr(), again.len()), (address, 0));
    }

    #[test]
    fn buffers_too_small_or_too_large_are_not_kept_nor_more_than_kept() {
        static TEST_POOL: Pool = Pool::new();
        for capacity in [1024, MAX_KEPT_CAPACITY + 1] {
            let buf = Vec::with_capacity(capacity);
            let address = buf.as_ptr();
            TEST_POOL.recycle(buf);
            assert!(!TEST_POOL.holds(address), "capacity {capacity}");
        }
        for _ in 0..KEPT + 3 {
            TEST_POOL.recycle(Vec::with_capacity(MIN_KEPT_CAPACITY));
        }
        assert_eq!(TEST_POOL.kept.lock().map(|k| k.len()).ok(), Some(KEPT));
    }
}
