//! Directory listings kept for a short time (the attribute TTL), so `ls -l`,
//! `find` and lookups after a listing cost one backend list instead of one
//! request per name, and a name missing from a fresh listing is answered
//! without asking the backend (negative lookups).
//!
//! Invariants: an entry is served only while younger than the TTL; every
//! change made through the mount invalidates the listings it touches before
//! it is acknowledged, so the mount always sees its own writes.

use crate::vfs::Meta;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most directories remembered; past this, expired ones are dropped, and if
/// that is not enough all are (a listing is cheap to redo, memory is not).
const MAX_DIRS: usize = 4096;

/// A listing: child names (sorted) with their metadata.
pub type Listing = Arc<Vec<(String, Meta)>>;

/// The listing cache.
pub struct DirCache {
    ttl: Duration,
    map: Mutex<HashMap<String, (Instant, Listing)>>,
}

impl DirCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
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

    /// Remembers the listing of `dir`.
    pub fn put(&self, dir: &str, listing: Listing) {
        if self.ttl.is_zero() {
            return;
        }
        let mut m = self.lock();
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

    /// Forgets the listing of `dir`.
    pub fn invalidate(&self, dir: &str) {
        self.lock().remove(dir);
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
        );
        assert_eq!(c.child("/m/d", "c"), Some(Some(file(3))));
        assert_eq!(c.child("/m/d", "b"), Some(None));
        assert_eq!(c.child("/m/other", "a"), None);
    }

    #[test]
    fn listings_expire_after_the_ttl() {
        let c = DirCache::new(Duration::from_millis(20));
        c.put("/d", Arc::new(vec![]));
        assert!(c.get("/d").is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(c.get("/d").is_none());
    }

    #[test]
    fn invalidate_tree_drops_parent_self_and_descendants_only() {
        let c = DirCache::new(Duration::from_secs(60));
        for d in ["/m", "/m/d", "/m/d/e", "/m/dd"] {
            c.put(d, Arc::new(vec![]));
        }
        c.invalidate_tree("/m/d");
        assert!(c.get("/m").is_none());
        assert!(c.get("/m/d").is_none());
        assert!(c.get("/m/d/e").is_none());
        assert!(c.get("/m/dd").is_some());
    }

    #[test]
    fn zero_ttl_caches_nothing() {
        let c = DirCache::new(Duration::ZERO);
        c.put("/d", Arc::new(vec![]));
        assert!(c.get("/d").is_none());
    }

    #[test]
    fn parent_of_handles_root_children() {
        assert_eq!(parent_of("/a"), Some("/"));
        assert_eq!(parent_of("/a/b"), Some("/a"));
        assert_eq!(parent_of("/"), None);
    }
}
