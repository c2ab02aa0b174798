//! Block cache: fixed-size blocks of backend objects in a memory tier and a
//! disk tier, plus the readahead policy that decides what to prefetch.
//!
//! Owns: `BlockCache` (the one entry point the FS core calls), the object
//! identity that keys it, its configuration and stats. Backends are reached
//! only through the `fetch` closure the caller passes, so this module knows no
//! backend.
//!
//! Invariants:
//! - a block is keyed by an immutable [`ObjectId`] (content CID, or path +
//!   version) and its index, so a changed object can never hit an old block;
//! - `fetch` runs only when the block is in neither tier, and at most one load
//!   of a block is in flight at a time (single flight); the others wait for it;
//! - a prefetch run ([`BlockCache::fill_run`]) loads several consecutive
//!   missing blocks with one backend request and holds the single-flight
//!   guard of each until its bytes are in, so readers of those blocks wait for
//!   the run instead of fetching them again;
//! - disk I/O runs on `spawn_blocking` threads, never on a tokio worker, and
//!   disk writes happen after the caller has its bytes;
//! - a block a sequential stream has gone past ([`BlockCache::release`])
//!   leaves the memory tier, but only once the disk tier holds it: a long
//!   stream neither fills the memory tier with bytes the kernel's page
//!   cache holds already nor evicts the blocks random readers keep hot;
//! - bad disk state (torn, corrupt, missing, full) yields misses, never wrong
//!   bytes or a panic.

pub mod blocks;
pub mod config;
mod direct;
mod disk;
pub mod key;
mod memory;
pub mod readahead;
pub mod stats;

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::sync::Semaphore;

pub use blocks::BlockSpan;
pub use config::{CacheConfig, FreeSpaceMargin};
pub use key::{BlockKey, ObjectId, Version};
pub use readahead::{PrefetchBudget, PrefetchPermit, Readahead, MAX_RUN_BYTES};
pub use stats::CacheStats;

use disk::DiskTier;
use memory::MemoryTier;
use stats::{bump, Counters};

/// Most disk writes queued at once. Each holds one block in memory until it is
/// written; past this the disk is slower than the backends, and dropping a
/// cache write is cheaper than holding memory or stalling reads.
const MAX_PENDING_WRITES: u32 = 64;

/// Errors of the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A configuration value is out of range or malformed.
    #[error("invalid cache configuration: {0}")]
    Config(String),
    /// The cache directory could not be prepared.
    #[error("cache directory: {what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A run fetch returned another length than the blocks it covers hold
    /// (the object changed size, or a caller bug); nothing of it is cached.
    #[error("fetch of a run of blocks returned {got} bytes, not {want}")]
    ShortRun {
        /// Bytes the run covers.
        want: u64,
        /// Bytes returned.
        got: u64,
    },
    /// A fetch returned more bytes than one block holds: a caller bug.
    #[error("fetch returned {got} bytes for block {index}, more than the block size {block_size}")]
    OversizedBlock {
        /// Block index requested.
        index: u64,
        /// Bytes returned.
        got: u64,
        /// Configured block size.
        block_size: u64,
    },
}

/// The two-tier block cache. Share it as `Arc<BlockCache>`.
pub struct BlockCache {
    block_size: u64,
    memory: Arc<MemoryTier>,
    disk: Option<Arc<DiskTier>>,
    counters: Arc<Counters>,
    write_slots: Arc<Semaphore>,
    /// Blocks with a disk write queued, and whether each is to leave the
    /// memory tier once written ([`BlockCache::release`]).
    writing: Arc<Mutex<HashMap<BlockKey, bool>>>,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("block_size", &self.block_size)
            .field("disk", &self.disk.is_some())
            .finish_non_exhaustive()
    }
}

impl BlockCache {
    /// Open the cache; with a disk tier this creates the directory and
    /// re-indexes the blocks already there (blocking: call at startup or from
    /// `spawn_blocking`).
    pub fn open(cfg: &CacheConfig) -> Result<Arc<Self>, CacheError> {
        cfg.validate()?;
        let counters = Arc::new(Counters::default());
        let disk = if cfg.disk_bytes > 0 {
            Some(Arc::new(DiskTier::open(
                &cfg.dir,
                cfg.disk_bytes,
                cfg.block_size,
                cfg.free_space_margin,
                counters.clone(),
            )?))
        } else {
            None
        };
        Ok(Arc::new(Self {
            block_size: cfg.block_size,
            memory: Arc::new(MemoryTier::new(
                cfg.memory_bytes,
                cfg.block_size,
                counters.clone(),
            )),
            disk,
            counters,
            write_slots: Arc::new(Semaphore::new(MAX_PENDING_WRITES as usize)),
            writing: Arc::default(),
        }))
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// Block `index` of `obj`: from memory, else disk, else `fetch()`.
    ///
    /// The returned bytes are the whole block (shorter than `block_size` only
    /// for the object's last block). `fetch` must return exactly that block;
    /// it is called only on a miss in both tiers, and concurrent callers of one
    /// missing block wait for a single load. If the load fails (or its caller
    /// is cancelled) the next waiter loads in its place with its own `fetch`.
    pub async fn get_block<F, Fut, E>(&self, obj: &ObjectId, index: u64, fetch: F) -> Result<Bytes, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
        E: From<CacheError>,
    {
        let key = BlockKey { object: *obj, index };
        let guard = match self.memory.get_or_guard(&key).await {
            Ok(bytes) => {
                bump(&self.counters.memory_hits, 1);
                return Ok(bytes);
            }
            Err(guard) => guard,
        };
        bump(&self.counters.memory_misses, 1);
        if let Some(bytes) = self.read_disk(key).await {
            // Err only when drop_all removed the placeholder meanwhile.
            let _ = guard.insert(bytes.clone());
            return Ok(bytes);
        }
        bump(&self.counters.backend_fetches, 1);
        bump(&self.counters.backend_requests, 1);
        let bytes = fetch().await?;
        bump(&self.counters.backend_bytes, bytes.len() as u64);
        if bytes.len() as u64 > self.block_size {
            return Err(CacheError::OversizedBlock {
                index,
                got: bytes.len() as u64,
                block_size: self.block_size,
            }
            .into());
        }
        let _ = guard.insert(bytes.clone());
        self.write_disk_in_background(key, bytes.clone());
        Ok(bytes)
    }

    /// Load the blocks `blocks` of `obj` (an object of `size` bytes) that are
    /// in neither tier and not being loaded by another caller, with one
    /// `fetch(offset, len)` per run of consecutive such blocks (one ranged
    /// request), split into blocks for both tiers. Returns the blocks loaded.
    ///
    /// `fetch` must return exactly `len` bytes. On an error the blocks of that
    /// run are released unloaded (their readers load them themselves) and the
    /// error is returned.
    pub async fn fill_run<F, Fut, E>(
        &self,
        obj: &ObjectId,
        blocks: Range<u64>,
        size: u64,
        fetch: F,
    ) -> Result<u64, E>
    where
        F: Fn(u64, u64) -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
        E: From<CacheError>,
    {
        let bs = self.block_size;
        let mut runs: Vec<Vec<(u64, memory::LoadGuard<'_>)>> = Vec::new();
        let mut run = Vec::new();
        for index in blocks {
            let key = BlockKey { object: *obj, index };
            let on_disk = self.disk.as_ref().is_some_and(|d| d.contains(&key));
            let guard = if on_disk || blocks::block_len(index, size, bs) == 0 {
                None
            } else {
                self.memory.try_guard(&key)
            };
            match guard {
                Some(g) => run.push((index, g)),
                None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
                None => {}
            }
        }
        if !run.is_empty() {
            runs.push(run);
        }
        let mut loaded = 0;
        for run in runs {
            let (Some(first), Some(last)) = (run.first(), run.last()) else {
                continue;
            };
            let start = first.0 * bs;
            let end = (last.0 * bs + bs).min(size);
            bump(&self.counters.memory_misses, run.len() as u64);
            bump(&self.counters.backend_requests, 1);
            let data = fetch(start, end - start).await?;
            if data.len() as u64 != end - start {
                return Err(CacheError::ShortRun {
                    want: end - start,
                    got: data.len() as u64,
                }
                .into());
            }
            bump(&self.counters.backend_fetches, run.len() as u64);
            bump(&self.counters.backend_bytes, data.len() as u64);
            for (index, guard) in run {
                let from = (index * bs - start) as usize;
                let to = (from + bs as usize).min(data.len());
                let block = data.slice(from..to);
                let _ = guard.insert(block.clone());
                self.write_disk_in_background(BlockKey { object: *obj, index }, block);
                loaded += 1;
            }
        }
        Ok(loaded)
    }

    /// Bytes `[offset, offset + len)` of `obj` (an object of `size` bytes),
    /// clipped at EOF, assembled from its blocks via [`Self::get_block`];
    /// `fetch(index)` loads one block from the backend.
    pub async fn read_range<F, Fut, E>(
        &self,
        obj: &ObjectId,
        offset: u64,
        len: u64,
        size: u64,
        fetch: F,
    ) -> Result<Bytes, E>
    where
        F: Fn(u64) -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
        E: From<CacheError>,
    {
        let spans: Vec<BlockSpan> = blocks::spans(offset, len, size, self.block_size).collect();
        if let [span] = spans[..] {
            let block = self.get_block(obj, span.index, || fetch(span.index)).await?;
            return Ok(slice_span(&block, &span));
        }
        let total = blocks::clip(offset, len, size);
        let mut out = BytesMut::with_capacity((total.end - total.start) as usize);
        for span in spans {
            let block = self.get_block(obj, span.index, || fetch(span.index)).await?;
            out.extend_from_slice(&slice_span(&block, &span));
        }
        Ok(out.freeze())
    }

    /// Keeps `data`, all of `obj` (an object of `data.len()` bytes, at most
    /// one block), fetched by someone else in passing (a stat answered by a
    /// ranged GET, a DAG node the IPFS store fetched): a later read of it
    /// needs no backend request. Nothing
    /// happens if the block is held or being loaded already.
    pub fn put_whole(&self, obj: &ObjectId, data: Bytes) {
        if data.is_empty() || data.len() as u64 > self.block_size {
            return;
        }
        let key = BlockKey {
            object: *obj,
            index: 0,
        };
        if self.disk.as_ref().is_some_and(|d| d.contains(&key)) {
            return;
        }
        if let Some(guard) = self.memory.try_guard(&key) {
            // A block from the backend, on a request counted as the stat's.
            bump(&self.counters.backend_fetches, 1);
            bump(&self.counters.backend_bytes, data.len() as u64);
            let _ = guard.insert(data.clone());
            self.write_disk_in_background(key, data);
        }
    }

    /// Block `index` of `obj` if either tier holds it, without asking a
    /// backend (a disk read runs off the async threads). A block found on
    /// disk is kept in memory too.
    pub async fn peek(&self, obj: &ObjectId, index: u64) -> Option<Bytes> {
        let key = BlockKey { object: *obj, index };
        if let Some(bytes) = self.memory.get(&key) {
            bump(&self.counters.memory_hits, 1);
            return Some(bytes);
        }
        let bytes = self.read_disk(key).await?;
        if let Some(guard) = self.memory.try_guard(&key) {
            let _ = guard.insert(bytes.clone());
        }
        Some(bytes)
    }

    /// Whether the block is cached in memory or on disk now (no I/O; for
    /// deciding whether a prefetch is worth spawning).
    pub fn contains(&self, obj: &ObjectId, index: u64) -> bool {
        let key = BlockKey { object: *obj, index };
        self.memory.contains(&key) || self.disk.as_ref().is_some_and(|d| d.contains(&key))
    }

    /// Block `index` of `obj` was read by a sequential stream that has gone
    /// past it: drop it from the memory tier as soon as the disk tier holds
    /// it (now, or when its queued write is done). Without a disk tier, or
    /// when its write is refused, it stays: memory is then its only copy.
    pub fn release(&self, obj: &ObjectId, index: u64) {
        let Some(disk) = &self.disk else { return };
        let key = BlockKey { object: *obj, index };
        let mut writing = lock(&self.writing);
        match writing.get_mut(&key) {
            Some(release) => *release = true,
            None if disk.contains(&key) => self.memory.remove(&key),
            None => {}
        }
    }

    /// Snapshot of the counters.
    pub fn stats(&self) -> CacheStats {
        self.counters.snapshot(self.memory.used_bytes())
    }

    /// Drop every cached block from memory and disk. Loads in flight still
    /// complete for their callers.
    pub fn drop_all(&self) {
        self.memory.clear();
        if let Some(disk) = &self.disk {
            disk.clear();
        }
    }

    /// Wait until every queued disk write has finished (for shutdown and tests).
    pub async fn flush(&self) {
        // The semaphore is never closed; Err cannot happen.
        let _all = self.write_slots.acquire_many(MAX_PENDING_WRITES).await;
    }

    async fn read_disk(&self, key: BlockKey) -> Option<Bytes> {
        let disk = self.disk.as_ref()?;
        if !disk.contains(&key) {
            bump(&self.counters.disk_misses, 1);
            return None;
        }
        let disk = disk.clone();
        match tokio::task::spawn_blocking(move || disk.read(&key)).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cache: disk read task failed");
                bump(&self.counters.disk_misses, 1);
                None
            }
        }
    }

    fn write_disk_in_background(&self, key: BlockKey, bytes: Bytes) {
        let Some(disk) = &self.disk else { return };
        let Ok(slot) = self.write_slots.clone().try_acquire_owned() else {
            bump(&self.counters.disk_writes_dropped, 1);
            return;
        };
        lock(&self.writing).entry(key).or_insert(false);
        let (disk, memory, writing) = (disk.clone(), self.memory.clone(), self.writing.clone());
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            disk.write(&key, &bytes);
            drop(bytes);
            let mut writing = lock(&writing);
            if writing.remove(&key) == Some(true) && disk.contains(&key) {
                memory.remove(&key);
            }
        });
    }
}

/// The map behind `m`, even if a holder panicked (it stays consistent: every
/// change to it is one insert or remove).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The span's bytes of a block, clipped to what the block really holds (a
/// backend may return a short block; never panic on it).
fn slice_span(block: &Bytes, span: &BlockSpan) -> Bytes {
    let r = span.in_block();
    let end = r.end.min(block.len());
    let start = r.start.min(end);
    block.slice(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    const BS: u64 = 4096;

    fn cache() -> Arc<BlockCache> {
        BlockCache::open(&CacheConfig {
            memory_bytes: 1 << 20,
            disk_bytes: 0,
            block_size: BS,
            dir: std::env::temp_dir(),
            free_space_margin: FreeSpaceMargin::Bytes(0),
        })
        .unwrap()
    }

    fn object(size: u64) -> Bytes {
        (0..size).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>().into()
    }

    /// fill_run over `blocks` of `data`, recording each request's byte range.
    async fn fill(
        c: &BlockCache,
        id: &ObjectId,
        data: &Bytes,
        blocks: Range<u64>,
        calls: &std::sync::Mutex<Vec<(u64, u64)>>,
    ) -> u64 {
        c.fill_run(id, blocks, data.len() as u64, |off, len| {
            calls.lock().unwrap().push((off, len));
            let d = data.slice(off as usize..(off + len) as usize);
            async move { Ok::<_, CacheError>(d) }
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn run_of_missing_blocks_is_one_request_split_into_blocks_when_prefetched() {
        let c = cache();
        let id = ObjectId::from_cid("bafyrun");
        let data = object(5 * BS + 100);
        let calls = std::sync::Mutex::new(Vec::new());
        assert_eq!(fill(&c, &id, &data, 1..6, &calls).await, 5);
        assert_eq!(
            *calls.lock().unwrap(),
            vec![(BS, 4 * BS + 100)],
            "one ranged request, clipped at EOF"
        );
        let fetched = AtomicU64::new(0);
        let got = c
            .read_range(&id, BS - 10, 4 * BS + 110, data.len() as u64, |_| async {
                fetched.fetch_add(1, Ordering::SeqCst);
                Ok::<_, CacheError>(data.slice(0..BS as usize))
            })
            .await
            .unwrap();
        assert_eq!(
            got,
            data.slice((BS - 10) as usize..),
            "blocks hold the right bytes"
        );
        assert_eq!(
            fetched.load(Ordering::SeqCst),
            1,
            "only block 0 was not in the run"
        );
        let s = c.stats();
        assert_eq!((s.backend_fetches, s.backend_requests), (6, 2));
    }

    #[tokio::test]
    async fn run_splits_around_cached_blocks_and_skips_past_eof() {
        let c = cache();
        let id = ObjectId::from_cid("bafysplit");
        let data = object(8 * BS);
        let calls = std::sync::Mutex::new(Vec::new());
        fill(&c, &id, &data, 3..4, &calls).await;
        calls.lock().unwrap().clear();
        assert_eq!(fill(&c, &id, &data, 1..12, &calls).await, 6);
        assert_eq!(*calls.lock().unwrap(), vec![(BS, 2 * BS), (4 * BS, 4 * BS)]);
    }

    #[tokio::test]
    async fn failed_or_short_run_caches_nothing_and_readers_load_again() {
        let c = cache();
        let id = ObjectId::from_cid("bafyfail");
        let data = object(4 * BS);
        let short = c
            .fill_run(&id, 0..4, data.len() as u64, |_, _| async {
                Ok::<_, CacheError>(Bytes::from_static(b"short"))
            })
            .await;
        assert!(matches!(short, Err(CacheError::ShortRun { .. })), "{short:?}");
        for i in 0..4 {
            assert!(!c.contains(&id, i));
        }
        let calls = std::sync::Mutex::new(Vec::new());
        assert_eq!(fill(&c, &id, &data, 0..4, &calls).await, 4);
    }
}
