//! Buffers a `cat` span's takes read leaves into (`stream.rs`), handed back
//! for reuse once every slice of them is dropped.
//!
//! Why: memory a process has not written before costs a page fault per
//! 4 KiB the first time it is (0.14 s per 256 MiB on the 2-core VM we
//! measure on, a quarter of the daemon's CPU in a cold IPFS read,
//! docs/BENCHMARKS.md), and the allocator gives large buffers back to the
//! kernel when they are freed, so every run paid it again. A buffer from
//! this pool was written before: its pages stay mapped.
//!
//! A run's bytes are shared as [`Bytes`] slices (the cache's blocks, parked
//! leaves, queued disk writes); the buffer comes back when the last of them
//! is dropped. At most [`FREE_MAX`] buffers wait for reuse; others are
//! freed.

use bytes::Bytes;
use std::sync::{Arc, Mutex, Weak};

/// Free buffers kept: a stream's runs (8 MiB at most) come back about as
/// fast as new ones are taken, once the reader has gone past them, so a few
/// cover a couple of streams; idle, they hold at most four runs of memory.
const FREE_MAX: usize = 4;
/// Largest buffer kept for reuse: a run that had to read far past its
/// bytes (parking leaves for later runs) grew its buffer; that one is freed.
const KEEP_MAX: usize = 32 << 20;

/// The pool. Share it as `Arc<RunBuffers>`.
#[derive(Debug, Default)]
pub struct RunBuffers {
    free: Mutex<Vec<Vec<u8>>>,
}

impl RunBuffers {
    /// An empty buffer, one used before if there is one.
    pub fn get(&self) -> Vec<u8> {
        let mut buf = self.lock().pop().unwrap_or_default();
        buf.clear();
        buf
    }

    /// `buf` as shared bytes; its memory comes back to the pool when the
    /// last slice of them is dropped.
    pub fn freeze(self: &Arc<Self>, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Lent {
            buf,
            pool: Arc::downgrade(self),
        })
    }

    /// Keeps `buf` for reuse, if there is room.
    pub fn put(&self, buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > KEEP_MAX {
            return;
        }
        let mut free = self.lock();
        if free.len() < FREE_MAX {
            free.push(buf);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn free_count(&self) -> usize {
        self.lock().len()
    }
}

/// A buffer lent out as [`Bytes`].
struct Lent {
    buf: Vec<u8>,
    pool: Weak<RunBuffers>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.put(std::mem::take(&mut self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_comes_back_when_its_last_slice_is_dropped_and_is_reused() {
        let pool = Arc::new(RunBuffers::default());
        let mut buf = pool.get();
        buf.extend_from_slice(&[7u8; 4096]);
        let at = buf.as_ptr();
        let bytes = pool.freeze(buf);
        let (a, b) = (bytes.slice(0..10), bytes.slice(100..200));
        drop(bytes);
        drop(a);
        assert_eq!(pool.free_count(), 0, "a slice still holds it");
        assert_eq!(&b[..], &[7u8; 100][..]);
        drop(b);
        assert_eq!(pool.free_count(), 1);
        let again = pool.get();
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), at, "the same memory");
        assert!(again.capacity() >= 4096);
    }

    #[test]
    fn the_pool_keeps_a_bounded_number_of_bounded_buffers() {
        let pool = Arc::new(RunBuffers::default());
        let lent: Vec<Bytes> = (0..FREE_MAX + 3)
            .map(|_| {
                let mut b = pool.get();
                b.push(1);
                pool.freeze(b)
            })
            .collect();
        drop(lent);
        assert_eq!(pool.free_count(), FREE_MAX);
        let pool = Arc::new(RunBuffers::default());
        pool.put(Vec::with_capacity(KEEP_MAX + 1));
        pool.put(Vec::new());
        assert_eq!(pool.free_count(), 0);
        // A pool dropped before its bytes: they are freed, not returned.
        let mut b = pool.get();
        b.push(1);
        let bytes = pool.freeze(b);
        drop(pool);
        assert_eq!(&bytes[..], &[1]);
    }
}
