//! Operation metrics: a count and a coarse latency histogram per FUSE
//! operation, the number of operations in flight, and bytes moved per backend
//! mount. Updated on the hot path with relaxed atomics; read as plain
//! snapshots by the control socket (`stats`) and the Prometheus endpoint.
//!
//! Invariants: counters only grow (the in-flight gauge excepted); an
//! operation is counted once, when its timer is dropped, so a task that
//! panics is still counted and the in-flight gauge never leaks.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// FUSE operations that go through the async seam (the others answer inline
/// and cost nothing worth measuring).
pub const OPS: &[&str] = &[
    "lookup",
    "getattr",
    "setattr",
    "mknod",
    "mkdir",
    "unlink",
    "rmdir",
    "rename",
    "open",
    "read",
    "write",
    "flush",
    "release",
    "fsync",
    "opendir",
    "readdirplus",
    "access",
    "create",
    "fallocate",
    "getxattr",
    "listxattr",
];

/// Upper bounds of the latency buckets, in microseconds: one per decade from
/// 100 µs (a memory hit) to 10 s (a slow upload); the last bucket catches the rest.
pub const BUCKETS_US: [u64; 6] = [100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// Live counters of one operation.
#[derive(Debug, Default)]
struct OpCounters {
    count: AtomicU64,
    total_us: AtomicU64,
    /// `BUCKETS_US.len() + 1` buckets, the last for anything slower.
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
}

/// Bytes moved by one backend mount.
#[derive(Debug, Default)]
pub struct BackendBytes {
    /// Bytes read from the backend.
    pub read: AtomicU64,
    /// Bytes uploaded to the backend.
    pub written: AtomicU64,
    /// Of `written`, bytes sent by streamed uploads (while the file was written).
    pub streamed: AtomicU64,
}

/// All metrics of one mount. Share it as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    ops: Vec<OpCounters>,
    in_flight: AtomicU64,
    backends: Mutex<BTreeMap<String, (String, Arc<BackendBytes>)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            ops: OPS.iter().map(|_| OpCounters::default()).collect(),
            in_flight: AtomicU64::new(0),
            backends: Mutex::new(BTreeMap::new()),
        }
    }
}

/// Times one operation; records it when dropped.
pub struct OpTimer<'a> {
    metrics: &'a Metrics,
    index: Option<usize>,
    start: Instant,
}

impl Drop for OpTimer<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        let Some(i) = self.index else { return };
        let us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let c = &self.metrics.ops[i];
        c.count.fetch_add(1, Ordering::Relaxed);
        c.total_us.fetch_add(us, Ordering::Relaxed);
        let b = BUCKETS_US
            .iter()
            .position(|&le| us <= le)
            .unwrap_or(BUCKETS_US.len());
        c.buckets[b].fetch_add(1, Ordering::Relaxed);
    }
}

/// Snapshot of one operation's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpSnapshot {
    pub op: String,
    pub count: u64,
    /// Sum of latencies, microseconds.
    pub total_us: u64,
    /// Per-bucket counts (not cumulative), aligned with [`BUCKETS_US`] plus one overflow bucket.
    pub buckets: Vec<u64>,
}

/// Snapshot of one backend mount's traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendSnapshot {
    pub mount: String,
    pub scheme: String,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Of `bytes_written`, bytes uploaded while their file was being written.
    #[serde(default)]
    pub bytes_streamed: u64,
}

impl Metrics {
    /// New, zeroed metrics.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Starts timing `op` (unknown names only count as in flight).
    pub fn start(&self, op: &str) -> OpTimer<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        OpTimer {
            metrics: self,
            index: OPS.iter().position(|o| *o == op),
            start: Instant::now(),
        }
    }

    /// Operations running now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The byte counters of the mount at `path` (created, or reset when the
    /// scheme changed, e.g. after a remove and a different add).
    pub fn backend(&self, path: &str, scheme: &str) -> Arc<BackendBytes> {
        let mut m = self.backends.lock().unwrap_or_else(|e| e.into_inner());
        let entry = m
            .entry(path.to_string())
            .or_insert_with(|| (scheme.to_string(), Arc::default()));
        if entry.0 != scheme {
            *entry = (scheme.to_string(), Arc::default());
        }
        entry.1.clone()
    }

    /// Forgets a removed mount's counters.
    pub fn forget_backend(&self, path: &str) {
        self.backends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path);
    }

    /// Operations that ran at least once.
    pub fn ops(&self) -> Vec<OpSnapshot> {
        OPS.iter()
            .zip(&self.ops)
            .filter(|(_, c)| c.count.load(Ordering::Relaxed) > 0)
            .map(|(op, c)| OpSnapshot {
                op: op.to_string(),
                count: c.count.load(Ordering::Relaxed),
                total_us: c.total_us.load(Ordering::Relaxed),
                buckets: c.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect(),
            })
            .collect()
    }

    /// Traffic per backend mount.
    pub fn backends(&self) -> Vec<BackendSnapshot> {
        let m = self.backends.lock().unwrap_or_else(|e| e.into_inner());
        m.iter()
            .map(|(mount, (scheme, b))| BackendSnapshot {
                mount: mount.clone(),
                scheme: scheme.clone(),
                bytes_read: b.read.load(Ordering::Relaxed),
                bytes_written: b.written.load(Ordering::Relaxed),
                bytes_streamed: b.streamed.load(Ordering::Relaxed),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_counts_op_and_releases_in_flight_when_dropped() {
        let m = Metrics::new();
        {
            let _t = m.start("read");
            assert_eq!(m.in_flight(), 1);
        }
        assert_eq!(m.in_flight(), 0);
        let ops = m.ops();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].op, "read");
        assert_eq!(ops[0].count, 1);
        assert_eq!(ops[0].buckets.iter().sum::<u64>(), 1);
    }

    #[test]
    fn backend_counters_reset_when_scheme_changes() {
        let m = Metrics::new();
        m.backend("/a", "fs").read.fetch_add(5, Ordering::Relaxed);
        assert_eq!(m.backends()[0].bytes_read, 5);
        m.backend("/a", "memory");
        assert_eq!(m.backends()[0].bytes_read, 0);
        m.forget_backend("/a");
        assert!(m.backends().is_empty());
    }
}
