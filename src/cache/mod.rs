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
//! - disk I/O runs on `spawn_blocking` threads, never on a tokio worker, and
//!   disk writes happen after the caller has its bytes;
//! - bad disk state (torn, corrupt, missing, full) yields misses, never wrong
//!   bytes or a panic.

pub mod blocks;
pub mod config;
mod disk;
pub mod key;
mod memory;
pub mod readahead;
pub mod stats;

use std::future::Future;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::Semaphore;

pub use blocks::BlockSpan;
pub use config::{CacheConfig, FreeSpaceMargin};
pub use key::{BlockKey, ObjectId, Version};
pub use readahead::{PrefetchBudget, PrefetchPermit, Readahead};
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
    memory: MemoryTier,
    disk: Option<Arc<DiskTier>>,
    counters: Arc<Counters>,
    write_slots: Arc<Semaphore>,
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
            memory: MemoryTier::new(cfg.memory_bytes, cfg.block_size, counters.clone()),
            disk,
            counters,
            write_slots: Arc::new(Semaphore::new(MAX_PENDING_WRITES as usize)),
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

    /// Whether the block is cached in memory or on disk now (no I/O; for
    /// deciding whether a prefetch is worth spawning).
    pub fn contains(&self, obj: &ObjectId, index: u64) -> bool {
        let key = BlockKey { object: *obj, index };
        self.memory.contains(&key) || self.disk.as_ref().is_some_and(|d| d.contains(&key))
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
        let disk = disk.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            disk.write(&key, &bytes);
        });
    }
}

/// The span's bytes of a block, clipped to what the block really holds (a
/// backend may return a short block; never panic on it).
fn slice_span(block: &Bytes, span: &BlockSpan) -> Bytes {
    let r = span.in_block();
    let end = r.end.min(block.len());
    let start = r.start.min(end);
    block.slice(start..end)
}
