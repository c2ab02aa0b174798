//! The one inode table: inode number <-> absolute virtual path, with the
//! kernel's lookup counts and the attributes set through `chmod`/`chown`/
//! `utimens` (kept in memory while the inode lives; see SEMANTICS.md).
//!
//! Invariants: the root is inode 1 and never forgotten; a path maps to at
//! most one live inode; an inode whose name was unlinked keeps its number
//! (open files still work) but no path leads to it any more. A hard link
//! made through the mount gives the file's inode a second name (an alias),
//! as on a local filesystem, so the kernel keeps one inode and one link
//! count for both; when the main name goes, an alias takes its place.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

/// The root's inode number (fixed by the FUSE protocol).
pub const ROOT_INO: u64 = 1;

/// Attribute changes made through the mount.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overlay {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<SystemTime>,
    pub mtime: Option<SystemTime>,
    pub ctime: Option<SystemTime>,
}

#[derive(Debug)]
struct Node {
    path: Option<String>,
    /// Other names of the same file (hard links made through the mount).
    aliases: Vec<String>,
    is_dir: bool,
    lookups: u64,
    overlay: Overlay,
}

#[derive(Debug)]
struct Table {
    nodes: HashMap<u64, Node>,
    by_path: HashMap<String, u64>,
    next: u64,
}

/// Thread-safe inode table.
#[derive(Debug)]
pub struct Inodes {
    t: Mutex<Table>,
}

impl Default for Inodes {
    fn default() -> Self {
        Self::new()
    }
}

impl Inodes {
    pub fn new() -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT_INO,
            Node {
                path: Some("/".into()),
                aliases: Vec::new(),
                is_dir: true,
                lookups: 1,
                overlay: Overlay::default(),
            },
        );
        let by_path = HashMap::from([("/".to_string(), ROOT_INO)]);
        Self {
            t: Mutex::new(Table {
                nodes,
                by_path,
                next: ROOT_INO + 1,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.t.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The inode for `path`, created if needed; counts one kernel lookup.
    pub fn lookup(&self, path: &str, is_dir: bool) -> u64 {
        let mut t = self.lock();
        if let Some(&ino) = t.by_path.get(path) {
            let n = t.nodes.get_mut(&ino).expect("by_path points at a live node");
            n.lookups += 1;
            n.is_dir = is_dir;
            return ino;
        }
        let ino = t.next;
        t.next += 1;
        t.nodes.insert(
            ino,
            Node {
                path: Some(path.to_string()),
                aliases: Vec::new(),
                is_dir,
                lookups: 1,
                overlay: Overlay::default(),
            },
        );
        t.by_path.insert(path.to_string(), ino);
        ino
    }

    /// The inode already known for `path`, without counting a lookup.
    pub fn peek(&self, path: &str) -> Option<u64> {
        self.lock().by_path.get(path).copied()
    }

    /// The current path of an inode (None if unknown or unlinked).
    pub fn path(&self, ino: u64) -> Option<String> {
        self.lock().nodes.get(&ino).and_then(|n| n.path.clone())
    }

    /// True when the inode is known (linked or not).
    pub fn exists(&self, ino: u64) -> bool {
        self.lock().nodes.contains_key(&ino)
    }

    /// The kernel forgot `n` lookups of `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        self.forget_unless(ino, n, |_| false);
    }

    /// The kernel forgot `n` lookups of `ino`; at zero the inode goes unless
    /// `pinned(ino)` (asked under the table's lock, so a state dropped
    /// concurrently is either seen or followed by its own call here).
    pub fn forget_unless(&self, ino: u64, n: u64, pinned: impl FnOnce(u64) -> bool) {
        if ino == ROOT_INO {
            return;
        }
        let mut t = self.lock();
        let Some(node) = t.nodes.get_mut(&ino) else { return };
        node.lookups = node.lookups.saturating_sub(n);
        if node.lookups == 0 && !pinned(ino) {
            let names: Vec<String> = node.path.iter().chain(node.aliases.iter()).cloned().collect();
            t.nodes.remove(&ino);
            for p in names {
                if t.by_path.get(&p) == Some(&ino) {
                    t.by_path.remove(&p);
                }
            }
        }
    }

    /// `path` is a new name (hard link) of the file `ino`.
    pub fn add_alias(&self, ino: u64, path: &str) {
        let mut t = self.lock();
        if let Some(old) = t.by_path.insert(path.to_string(), ino) {
            if old != ino {
                drop_name(&mut t, old, path);
            }
        }
        if let Some(n) = t.nodes.get_mut(&ino) {
            if n.path.is_none() {
                n.path = Some(path.to_string());
            } else {
                n.aliases.push(path.to_string());
            }
        }
    }

    /// The name at `path` is gone (unlink/rmdir); its inode lives on under
    /// another name it has, or unnamed.
    pub fn unlink(&self, path: &str) {
        let mut t = self.lock();
        if let Some(ino) = t.by_path.remove(path) {
            drop_name(&mut t, ino, path);
        }
    }

    /// Moves `from` (and everything under it) to `to`; an inode at `to` is unlinked.
    pub fn rename(&self, from: &str, to: &str) {
        let mut t = self.lock();
        if let Some(old) = t.by_path.remove(to) {
            drop_name(&mut t, old, to);
        }
        let prefix = format!("{from}/");
        let moved: Vec<(String, u64)> = t
            .by_path
            .iter()
            .filter(|(p, _)| p.as_str() == from || p.starts_with(&prefix))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        for (p, ino) in moved {
            t.by_path.remove(&p);
            let newp = format!("{to}{}", &p[from.len()..]);
            if let Some(n) = t.nodes.get_mut(&ino) {
                if n.path.as_deref() == Some(p.as_str()) {
                    n.path = Some(newp.clone());
                } else if let Some(a) = n.aliases.iter_mut().find(|a| **a == p) {
                    *a = newp.clone();
                }
            }
            t.by_path.insert(newp, ino);
        }
    }

    /// Forgets every inode at or under `prefix` (a removed mount): later
    /// requests on them answer ESTALE. Returns the inodes dropped.
    pub fn drop_under(&self, prefix: &str) -> Vec<u64> {
        let mut t = self.lock();
        let under = format!("{prefix}/");
        let gone: Vec<(String, u64)> = t
            .by_path
            .iter()
            .filter(|(p, _)| p.as_str() == prefix || p.starts_with(&under))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        for (p, ino) in &gone {
            t.by_path.remove(p);
            if *ino != ROOT_INO {
                t.nodes.remove(ino);
            }
        }
        gone.into_iter().map(|(_, ino)| ino).collect()
    }

    /// The attribute overlay of an inode.
    pub fn overlay(&self, ino: u64) -> Overlay {
        self.lock().nodes.get(&ino).map(|n| n.overlay).unwrap_or_default()
    }

    /// Changes the overlay of an inode.
    pub fn update_overlay(&self, ino: u64, f: impl FnOnce(&mut Overlay)) {
        if let Some(n) = self.lock().nodes.get_mut(&ino) {
            f(&mut n.overlay);
        }
    }

    /// Number of live inodes (root included).
    pub fn count(&self) -> usize {
        self.lock().nodes.len()
    }
}

/// Takes the name `path` from the inode `ino`: an alias takes the place of
/// a main name that goes.
fn drop_name(t: &mut Table, ino: u64, path: &str) {
    if let Some(n) = t.nodes.get_mut(&ino) {
        if n.path.as_deref() == Some(path) {
            n.path = n.aliases.pop();
        } else {
            n.aliases.retain(|a| a != path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_reuses_the_inode_of_a_known_path() {
        let t = Inodes::new();
        let a = t.lookup("/a", false);
        assert_eq!(t.lookup("/a", false), a);
        assert_ne!(t.lookup("/b", false), a);
    }

    #[test]
    fn forget_drops_the_inode_only_when_all_lookups_are_forgotten() {
        let t = Inodes::new();
        let a = t.lookup("/a", false);
        t.lookup("/a", false);
        t.forget(a, 1);
        assert_eq!(t.path(a).as_deref(), Some("/a"));
        t.forget(a, 1);
        assert!(!t.exists(a));
        assert_eq!(t.peek("/a"), None);
    }

    #[test]
    fn rename_moves_descendants_and_unlinks_the_target() {
        let t = Inodes::new();
        let d = t.lookup("/m/d", true);
        let f = t.lookup("/m/d/f", false);
        let victim = t.lookup("/m/e", true);
        t.rename("/m/d", "/m/e");
        assert_eq!(t.path(d).as_deref(), Some("/m/e"));
        assert_eq!(t.path(f).as_deref(), Some("/m/e/f"));
        assert_eq!(t.path(victim), None);
        assert!(t.exists(victim));
        assert_eq!(t.peek("/m/d/f"), None);
    }

    #[test]
    fn rename_leaves_paths_sharing_only_a_prefix_alone() {
        let t = Inodes::new();
        let other = t.lookup("/m/dd", false);
        t.lookup("/m/d", true);
        t.rename("/m/d", "/m/x");
        assert_eq!(t.path(other).as_deref(), Some("/m/dd"));
    }

    #[test]
    fn a_hard_link_shares_the_inode_until_its_last_name_goes() {
        let t = Inodes::new();
        let f = t.lookup("/m/f", false);
        t.add_alias(f, "/m/h");
        assert_eq!(t.lookup("/m/h", false), f);
        t.unlink("/m/f");
        assert_eq!(t.path(f).as_deref(), Some("/m/h"));
        t.rename("/m/h", "/m/g");
        assert_eq!(t.path(f).as_deref(), Some("/m/g"));
        t.unlink("/m/g");
        assert_eq!(t.path(f), None);
        assert!(t.exists(f));
    }

    #[test]
    fn root_is_never_forgotten() {
        let t = Inodes::new();
        t.forget(ROOT_INO, 100);
        assert_eq!(t.path(ROOT_INO).as_deref(), Some("/"));
    }

    #[test]
    fn drop_under_forgets_the_subtree_only() {
        let t = Inodes::new();
        let a = t.lookup("/m", true);
        let b = t.lookup("/m/x", false);
        let c = t.lookup("/mx", false);
        assert_eq!(t.drop_under("/m").len(), 2);
        assert!(!t.exists(a) && !t.exists(b));
        assert_eq!(t.path(c).as_deref(), Some("/mx"));
        assert_eq!(t.peek("/m/x"), None);
    }
}
