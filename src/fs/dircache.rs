//! Directory listings kept for a short time (the attribute TTL), so `ls -l`,
//! `find` and lookups after a listing cost one backend list instead of one
//! request per name, and a name missing from a fresh listing is answered
//! without asking the backend (negative lookups). Beside them, the stats of
//! single names in trees whose listings lack full metadata (S3: a HEAD or
//! ranged GET each), so the open after a lookup or `readdirplus` does not
//! ask again.
//!
//! Invariants: an entry is served only while younger than the TTL; every
//! change made through the mount invalidates the listings and stats it
//! touches before it is acknowledged, so the mount always sees its own
//! writes; and a listing or stat taken while any invalidation ran (it may
//! predate the change) is not kept.

use crate::vfs::Meta;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most directories remembered; past this, expired ones are dropped, and if
/// that is not enough all are (a listing is cheap to redo, memory is not).
const MAX_DIRS: usize = 4096;
/// Most single-name stats remembered (a few hundred bytes each, so about
/// 20 MiB at most); past this, expired ones are dropped, then all.
const MAX_STATS: usize = 65_536;

/// A listing: child names (sorted) with their metadata.
pub type Listing = Arc<Vec<(String, Meta)>>;

/// The listing cache.
pub struct DirCache {
    ttl: Duration,
    map: Mutex<HashMap<String, (Instant, Listing)>>,
    /// Directory -> name -> stat, for names looked up one by one.
    stats: Mutex<Stats>,
    /// Bumped by every invalidation, before it removes anything: what was
    /// read from a backend across a bump may be older than the change.
    generation: AtomicU64,
}

#[derive(Default)]
struct Stats {
    dirs: HashMap<String, HashMap<String, (Instant, Meta)>>,
    count: usize,
}

impl DirCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: Mutex::new(HashMap::new()),
            stats: Mutex::new(Stats::default()),
            generation: AtomicU64::new(0),
        }
    }

    /// Taken before reading a listing or stat from a backend, and handed to
    /// `put`/`put_stat`: they keep nothing read across an invalidation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn stats_lock(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Listing)>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fresh listing of `dir`, if any.
    pub fn get(&self, dir: &str) -> Option<Listing> {
        if self.ttl.is_zero() {
            return None;
        }
        let m = self.lock();
        let (at, l) = m.get(dir)?;
        (at.elapsed() < self.ttl).then(|| l.clone())
    }

    /// Remembers the listing of `dir`, read from the backend since
    /// `generation` was taken.
    pub fn put(&self, dir: &str, listing: Listing, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut m = self.lock();
        if self.generation() != generation {
            return;
        }
        if m.len() >= MAX_DIRS {
            let ttl = self.ttl;
            m.retain(|_, (at, _)| at.elapsed() < ttl);
            if m.len() >= MAX_DIRS {
                m.clear();
            }
        }
        m.insert(dir.to_string(), (Instant::now(), listing));
    }

    /// What a fresh listing of `dir` says of `name`: `Some(Some(meta))` if
    /// present, `Some(None)` if absent, `None` if there is no fresh listing.
    pub fn child(&self, dir: &str, name: &str) -> Option<Option<Meta>> {
        let l = self.get(dir)?;
        Some(
            l.binary_search_by(|(n, _)| n.as_str().cmp(name))
                .ok()
                .map(|i| l[i].1.clone()),
        )
    }

    /// The fresh stat of `name` in `dir` remembered by [`Self::put_stat`].
    pub fn stat(&self, dir: &str, name: &str) -> Option<Meta> {
        if self.ttl.is_zero() {
            return None;
        }
        let s = self.stats_lock();
        let (at, meta) = s.dirs.get(dir)?.get(name)?;
        (at.elapsed() < self.ttl).then(|| meta.clone())
    }

    /// Remembers the stat of `name` in `dir`, read from the backend since
    /// `generation` was taken.
    pub fn put_stat(&self, dir: &str, name: &str, meta: Meta, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut s = self.stats_lock();
        if self.generation() != generation {
            return;
        }
        if s.count >= MAX_STATS {
            let ttl = self.ttl;
            for names in s.dirs.values_mut() {
                names.retain(|_, (at, _)| at.elapsed() < ttl);
            }
            s.dirs.retain(|_, names| !names.is_empty());
            s.count = s.dirs.values().map(HashMap::len).sum();
            if s.count >= MAX_STATS {
                *s = Stats::default();
            }
        }
        let names = s.dirs.entry(dir.to_string()).or_default();
        let new = names.insert(name.to_string(), (Instant::now(), meta)).is_none();
        if new {
            s.count += 1;
        }
    }

    /// Forgets the listing of `dir` and the stats of its names.
    pub fn invalidate(&self, dir: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.lock().remove(dir);
        let mut s = self.stats_lock();
        if let Some(names) = s.dirs.remove(dir) {
            s.count -= names.len();
        }
    }

    /// Forgets the listing that holds `path` (its parent directory).
    pub fn invalidate_parent(&self, path: &str) {
        if let Some(parent) = parent_of(path) {
            self.invalidate(parent);
        }
    }

    /// Forgets `path`'s parent listing and every listing at or under `path`.
    pub fn invalidate_tree(&self, path: &str) {
        self.invalidate_parent(path);
        let prefix = format!("{path}/");
        self.lock().retain(|k, _| k != path && !k.starts_with(&prefix));
        let mut s = self.stats_lock();
        s.dirs.retain(|k, _| k != path && !k.starts_with(&prefix));
        s.count = s.dirs.values().map(HashMap::len).sum();
    }
}

/// The parent of an absolute virtual path (`/a/b` -> `/a`, `/a` -> `/`).
pub fn parent_of(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Some("/"),
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64) -> Meta {
        Meta {
            size,
            ..Meta::default()
        }
    }

    #[test]
    fn child_answers_present_absent_and_unknown() {
        let c = DirCache::new(Duration::from_secs(60));
        c.put(
            "/m/d",
            Arc::new(vec![("a".into(), file(1)), ("c".into(), file(3))]),
            c.generation(),
        );
        assert_eq!(c.child("/m/d", "c"), Some(Some(file(3))));
        assert_eq!(c.child("/m/d", "b"), Some(None));
        assert_eq!(c.child("/m/other", "a"), None);
    }

    #[test]
    fn listings_expire_after_the_ttl() {
        let c = DirCache::new(Duration::from_millis(20));
        c.put("/d", Arc::new(vec![]), c.generation());
        assert!(c.get("/d").is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(c.get("/d").is_none());
    }

    #[test]
    fn invalidate_tree_drops_parent_self_and_descendants_only() {
        let c = DirCache::new(Duration::from_secs(60));
        for d in ["/m", "/m/d", "/m/d/e", "/m/dd"] {
            c.put(d, Arc::new(vec![]), c.generation());
        }
        c.invalidate_tree("/m/d");
        assert!(c.get("/m").is_none());
        assert!(c.get("/m/d").is_none());
        assert!(c.get("/m/d/e").is_none());
        assert!(c.get("/m/dd").is_some());
    }

    #[test]
    fn stats_are_dropped_with_their_directory_and_across_invalidations() {
        let c = DirCache::new(Duration::from_secs(60));
        let g = c.generation();
        c.put_stat("/m/d", "a", file(1), g);
        c.put_stat("/m/e", "b", file(2), g);
        assert_eq!(c.stat("/m/d", "a"), Some(file(1)));
        c.invalidate_parent("/m/d/a");
        assert_eq!(c.stat("/m/d", "a"), None);
        assert_eq!(c.stat("/m/e", "b"), Some(file(2)));
        // A stat read before that invalidation is not kept.
        c.put_stat("/m/d", "a", file(1), g);
        assert_eq!(c.stat("/m/d", "a"), None);
        c.put("/m/d", Arc::new(vec![]), g);
        assert!(c.get("/m/d").is_none());
        c.invalidate_tree("/m");
        assert_eq!(c.stat("/m/e", "b"), None);
    }

    #[test]
    fn zero_ttl_caches_nothing() {
        let c = DirCache::new(Duration::ZERO);
        c.put("/d", Arc::new(vec![]), c.generation());
        assert!(c.get("/d").is_none());
    }

    #[test]
    fn parent_of_handles_root_children() {
        assert_eq!(parent_of("/a"), Some("/"));
        assert_eq!(parent_of("/a/b"), Some("/a"));
        assert_eq!(parent_of("/"), None);
    }
}
