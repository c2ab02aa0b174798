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
//! freed. A run much smaller than the memory its buffer holds (written by
//! an earlier, longer run) is copied out instead, so blocks the cache keeps
//! never hold more than [`AMPLIFY_MAX`] times their size in memory.

use bytes::Bytes;
use std::sync::{Arc, Mutex, Weak};

/// Free buffers kept: a stream's runs (8 MiB at most) come back about as
/// fast as new ones are taken, once the reader has gone past them, so a few
/// cover a couple of streams; idle, they hold at most four runs of memory.
const FREE_MAX: usize = 4;
/// Most memory a run's buffer may hold per byte of the run: past it the run
/// is copied out (a short run in a buffer a long one wrote).
const AMPLIFY_MAX: usize = 2;
/// Largest buffer kept for reuse: a run that had to read far past its
/// bytes (parking leaves for later runs) grew its buffer; that one is freed.
const KEEP_MAX: usize = 32 << 20;

/// The pool. Share it as `Arc<RunBuffers>`.
#[derive(Debug, Default)]
pub struct RunBuffers {
    free: Mutex<Vec<RunBuf>>,
}

/// A buffer of the pool.
#[derive(Debug, Default)]
pub struct RunBuf {
    /// Its bytes (only appended to between [`RunBuffers::get`] and
    /// [`RunBuffers::freeze`]).
    pub bytes: Vec<u8>,
    /// The most bytes it ever held: the memory it keeps mapped.
    touched: usize,
}

impl RunBuffers {
    /// An empty buffer, one used before if there is one.
    pub fn get(&self) -> RunBuf {
        let mut buf = self.lock().pop().unwrap_or_default();
        buf.bytes.clear();
        buf
    }

    /// The first `len` bytes of `buf` as shared bytes. They keep the buffer,
    /// which comes back to the pool when the last slice of them is dropped;
    /// if it holds more than [`AMPLIFY_MAX`] times `len` in memory they are
    /// copied out and it comes back at once.
    pub fn freeze(self: &Arc<Self>, mut buf: RunBuf, len: usize) -> Bytes {
        buf.touched = buf.touched.max(buf.bytes.len());
        buf.bytes.truncate(len);
        if buf.touched > AMPLIFY_MAX.saturating_mul(len) {
            let bytes = Bytes::copy_from_slice(&buf.bytes);
            self.put(buf);
            return bytes;
        }
        Bytes::from_owner(Lent {
            buf,
            pool: Arc::downgrade(self),
        })
    }

    /// Keeps `buf` for reuse, if there is room.
    pub fn put(&self, mut buf: RunBuf) {
        buf.touched = buf.touched.max(buf.bytes.len());
        if buf.bytes.capacity() == 0 || buf.bytes.capacity() > KEEP_MAX {
            return;
        }
        let mut free = self.lock();
        if free.len() < FREE_MAX {
            free.push(buf);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RunBuf>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn free_count(&self) -> usize {
        self.lock().len()
    }
}

/// A buffer lent out as [`Bytes`].
struct Lent {
    buf: RunBuf,
    pool: Weak<RunBuffers>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf.bytes
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
        buf.bytes.extend_from_slice(&[7u8; 4096]);
        let at = buf.bytes.as_ptr();
        let bytes = pool.freeze(buf, 4096);
        let (a, b) = (bytes.slice(0..10), bytes.slice(100..200));
        drop(bytes);
        drop(a);
        assert_eq!(pool.free_count(), 0, "a slice still holds it");
        assert_eq!(&b[..], &[7u8; 100][..]);
        drop(b);
        assert_eq!(pool.free_count(), 1);
        let again = pool.get();
        assert!(again.bytes.is_empty());
        assert_eq!(again.bytes.as_ptr(), at, "the same memory");
        assert!(again.bytes.capacity() >= 4096);
    }

    #[test]
    fn a_short_run_in_a_buffer_a_long_one_wrote_is_copied_out() {
        let pool = Arc::new(RunBuffers::default());
        let mut buf = pool.get();
        buf.bytes.extend_from_slice(&[1u8; 8192]);
        drop(pool.freeze(buf, 8192));
        let mut buf = pool.get();
        let at = buf.bytes.as_ptr();
        buf.bytes.extend_from_slice(&[2u8; 1000]);
        let short = pool.freeze(buf, 1000);
        assert_ne!(short.as_ptr(), at, "copied out");
        assert_eq!(&short[..], &[2u8; 1000][..]);
        assert_eq!(pool.free_count(), 1, "the buffer came back at once");
        // Half of what it held, or more: a slice of it.
        let mut buf = pool.get();
        let at = buf.bytes.as_ptr();
        buf.bytes.extend_from_slice(&[3u8; 4096]);
        let half = pool.freeze(buf, 4096);
        assert_eq!(half.as_ptr(), at);
        // Bytes read past the run (the start of the next leaf) count too.
        drop(half);
        let mut buf = pool.get();
        buf.bytes.extend_from_slice(&[4u8; 8192]);
        let head = pool.freeze(buf, 100);
        assert_eq!(&head[..], &[4u8; 100][..]);
        assert_eq!(pool.free_count(), 1);
    }

    #[test]
    fn the_pool_keeps_a_bounded_number_of_bounded_buffers() {
        let pool = Arc::new(RunBuffers::default());
        let lent: Vec<Bytes> = (0..FREE_MAX + 3)
            .map(|_| {
                let mut b = pool.get();
                b.bytes.push(1);
                pool.freeze(b, 1)
            })
            .collect();
        drop(lent);
        assert_eq!(pool.free_count(), FREE_MAX);
        let pool = Arc::new(RunBuffers::default());
        pool.put(RunBuf {
            bytes: Vec::with_capacity(KEEP_MAX + 1),
            touched: 0,
        });
        pool.put(RunBuf::default());
        assert_eq!(pool.free_count(), 0);
        // A pool dropped before its bytes: they are freed, not returned.
        let mut b = pool.get();
        b.bytes.push(1);
        let bytes = pool.freeze(b, 1);
        drop(pool);
        assert_eq!(&bytes[..], &[1]);
    }
}
