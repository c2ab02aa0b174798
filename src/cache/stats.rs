//! Cache counters: cheap atomics updated on the hot path, and the plain
//! [`CacheStats`] snapshot handed to the control socket and tests.
//!
//! Invariant: counters only grow (gauges excepted: `*_used_bytes`); a snapshot
//! is a set of relaxed loads, so fields may be a few events apart from each
//! other but each is exact.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Snapshot of the cache counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// Blocks served from memory (including callers that waited on another
    /// caller's in-flight load of the same block).
    pub memory_hits: u64,
    /// Lookups that found nothing in memory and did the load themselves.
    pub memory_misses: u64,
    /// Evictions from the memory tier (including blocks too big to admit).
    pub memory_evictions: u64,
    /// Bytes held by the memory tier now.
    pub memory_used_bytes: u64,
    /// Blocks served from disk.
    pub disk_hits: u64,
    /// Disk lookups that found nothing usable (absent, torn or corrupt).
    pub disk_misses: u64,
    /// Block files found torn or corrupt and deleted.
    pub disk_corrupt: u64,
    /// Block files evicted to stay under the disk budget.
    pub disk_evictions: u64,
    /// Block files written.
    pub disk_writes: u64,
    /// Writes refused because the filesystem is near its free-space margin.
    pub disk_writes_refused: u64,
    /// Writes dropped because too many were already queued, or failed.
    pub disk_writes_dropped: u64,
    /// Bytes held by the disk tier now (block files including headers).
    pub disk_used_bytes: u64,
    /// Blocks fetched from backends (missing from both tiers).
    pub backend_fetches: u64,
    /// Backend requests those blocks took: a prefetch run fetches several
    /// consecutive blocks with one ranged request; a small object that came
    /// whole with its stat (S3's ranged GET in place of a HEAD) took none.
    pub backend_requests: u64,
    /// Bytes received from backends.
    pub backend_bytes: u64,
}

/// Live counters; one per cache, shared with the tiers.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub memory_hits: AtomicU64,
    pub memory_misses: AtomicU64,
    pub memory_evictions: AtomicU64,
    pub disk_hits: AtomicU64,
    pub disk_misses: AtomicU64,
    pub disk_corrupt: AtomicU64,
    pub disk_evictions: AtomicU64,
    pub disk_writes: AtomicU64,
    pub disk_writes_refused: AtomicU64,
    pub disk_writes_dropped: AtomicU64,
    pub disk_used_bytes: AtomicU64,
    pub backend_fetches: AtomicU64,
    pub backend_requests: AtomicU64,
    pub backend_bytes: AtomicU64,
}

/// Add `n` to a counter.
pub(crate) fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    /// Snapshot; `memory_used_bytes` comes from the memory tier itself.
    pub fn snapshot(&self, memory_used_bytes: u64) -> CacheStats {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            memory_hits: l(&self.memory_hits),
            memory_misses: l(&self.memory_misses),
            memory_evictions: l(&self.memory_evictions),
            memory_used_bytes,
            disk_hits: l(&self.disk_hits),
            disk_misses: l(&self.disk_misses),
            disk_corrupt: l(&self.disk_corrupt),
            disk_evictions: l(&self.disk_evictions),
            disk_writes: l(&self.disk_writes),
            disk_writes_refused: l(&self.disk_writes_refused),
            disk_writes_dropped: l(&self.disk_writes_dropped),
            disk_used_bytes: l(&self.disk_used_bytes),
            backend_fetches: l(&self.backend_fetches),
            backend_requests: l(&self.backend_requests),
            backend_bytes: l(&self.backend_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_serialises_every_counter_when_requested() {
        let c = Counters::default();
        bump(&c.disk_hits, 3);
        let json = serde_json::to_value(c.snapshot(7)).unwrap();
        assert_eq!(json["disk_hits"], 3);
        assert_eq!(json["memory_used_bytes"], 7);
        assert_eq!(json.as_object().unwrap().len(), 15);
    }
}
