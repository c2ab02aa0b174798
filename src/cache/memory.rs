//! Memory tier: a byte-weighted `quick_cache` of blocks.
//!
//! Owns the in-RAM copy of hot blocks and the per-block single-flight guard:
//! while one caller loads a block (from disk or backend) every other caller of
//! the same key waits on quick_cache's placeholder and receives the same bytes.
//! Invariant: total weight (block bytes plus a fixed per-entry overhead) never
//! exceeds the configured budget; a block heavier than a shard is handed to its
//! waiters but not kept.

use std::sync::Arc;

use bytes::Bytes;
use quick_cache::sync::{Cache, GuardResult, PlaceholderGuard};
use quick_cache::{DefaultHashBuilder, Lifecycle, Weighter};

use super::key::BlockKey;
use super::stats::{bump, Counters};

/// Bytes charged per entry on top of the block: the key (40 bytes), the
/// `Bytes` handle and quick_cache's slot; also keeps empty blocks evictable
/// (zero-weight entries are never evicted by quick_cache).
const ENTRY_OVERHEAD: u64 = 128;

/// Weighs an entry by its byte length.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ByteWeighter;

impl Weighter<BlockKey, Bytes> for ByteWeighter {
    fn weight(&self, _key: &BlockKey, val: &Bytes) -> u64 {
        val.len() as u64 + ENTRY_OVERHEAD
    }
}

/// Counts evictions into the cache's counters.
#[derive(Debug, Clone)]
pub(crate) struct EvictionCounter(Arc<Counters>);

impl Lifecycle<BlockKey, Bytes> for EvictionCounter {
    type RequestState = ();

    fn on_evict(&self, _state: &mut (), _key: BlockKey, _val: Bytes) {
        bump(&self.0.memory_evictions, 1);
    }
}

type Inner = Cache<BlockKey, Bytes, ByteWeighter, DefaultHashBuilder, EvictionCounter>;

/// Guard held by the one caller loading a missing block.
pub(crate) type LoadGuard<'a> =
    PlaceholderGuard<'a, BlockKey, Bytes, ByteWeighter, DefaultHashBuilder, EvictionCounter>;

/// The memory tier.
pub(crate) struct MemoryTier {
    inner: Inner,
}

impl MemoryTier {
    /// A tier holding at most `budget` bytes of blocks of about `block_size`.
    pub fn new(budget: u64, block_size: u64, counters: Arc<Counters>) -> Self {
        let per_entry = block_size.max(1) + ENTRY_OVERHEAD;
        // quick_cache sizes its shards from this estimate; at least one entry
        // keeps the options valid when the budget is 0.
        let estimated_items = (budget / per_entry).max(1) as usize;
        Self {
            inner: Cache::with(
                estimated_items,
                budget,
                ByteWeighter,
                DefaultHashBuilder::default(),
                EvictionCounter(counters),
            ),
        }
    }

    /// The cached block, or the guard to load it (waits while another caller loads it).
    pub async fn get_or_guard(&self, key: &BlockKey) -> Result<Bytes, LoadGuard<'_>> {
        self.inner.get_value_or_guard_async(key).await
    }

    /// The cached block, if held now (never waits for a load in flight).
    pub fn get(&self, key: &BlockKey) -> Option<Bytes> {
        self.inner.get(key)
    }

    /// The guard to load a missing block, without waiting: `None` when the
    /// block is held already or another caller is loading it.
    pub fn try_guard(&self, key: &BlockKey) -> Option<LoadGuard<'_>> {
        match self
            .inner
            .get_value_or_guard(key, Some(std::time::Duration::ZERO))
        {
            GuardResult::Guard(g) => Some(g),
            GuardResult::Value(_) | GuardResult::Timeout => None,
        }
    }

    /// Whether the block is held now (no recency update).
    pub fn contains(&self, key: &BlockKey) -> bool {
        self.inner.contains_key(key)
    }

    /// Drops the block, if held.
    pub fn remove(&self, key: &BlockKey) {
        self.inner.remove(key);
    }

    /// Bytes held now.
    pub fn used_bytes(&self) -> u64 {
        self.inner.weight()
    }

    /// Drop every block.
    pub fn clear(&self) {
        self.inner.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> BlockKey {
        BlockKey {
            object: super::super::key::ObjectId::from_cid("bafytest"),
            index: i,
        }
    }

    #[tokio::test]
    async fn weight_stays_under_budget_when_many_blocks_are_inserted() {
        let counters = Arc::new(Counters::default());
        let tier = MemoryTier::new(8 * 4096, 4096, counters.clone());
        for i in 0..64 {
            match tier.get_or_guard(&key(i)).await {
                Ok(_) => panic!("block {i} present before insert"),
                Err(g) => g.insert(Bytes::from(vec![0u8; 4096])).unwrap(),
            }
            assert!(tier.used_bytes() <= 8 * 4096);
        }
        assert!(
            counters
                .memory_evictions
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 56
        );
    }
}
