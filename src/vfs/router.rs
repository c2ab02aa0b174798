//! The root router: places trees at absolute mount paths and resolves a
//! virtual path to either a synthetic directory (the root and the
//! intermediate directories of nested mount paths, all read-only) or a tree
//! and a path inside it. The table can change while mounted.

use super::Tree;
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

/// Where a virtual path leads.
#[derive(Clone)]
pub enum Resolved {
    /// A synthetic directory with these child names.
    Synthetic(Vec<String>),
    /// A path inside a mounted tree.
    Tree {
        /// The mount path, e.g. `/local`.
        mount: String,
        tree: Arc<dyn Tree>,
        /// Path inside the tree (`""` for the tree's root).
        rel: String,
    },
    /// Nothing is there.
    Missing,
}

/// The mount table.
#[derive(Default)]
pub struct Router {
    mounts: RwLock<Vec<(String, Arc<dyn Tree>)>>,
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    /// Places `tree` at the normalised absolute `path`; false if the path is taken
    /// or overlaps another mount.
    pub fn add(&self, path: &str, tree: Arc<dyn Tree>) -> bool {
        let mut m = self.mounts.write().unwrap_or_else(|e| e.into_inner());
        let clash = m
            .iter()
            .any(|(p, _)| p == path || under(p, path) || under(path, p));
        if clash {
            return false;
        }
        m.push((path.to_string(), tree));
        m.sort_by(|a, b| a.0.cmp(&b.0));
        true
    }

    /// Removes the mount at `path`; returns it if it was there.
    pub fn remove(&self, path: &str) -> Option<Arc<dyn Tree>> {
        let mut m = self.mounts.write().unwrap_or_else(|e| e.into_inner());
        let i = m.iter().position(|(p, _)| p == path)?;
        Some(m.remove(i).1)
    }

    /// The mount paths and their trees.
    pub fn list(&self) -> Vec<(String, Arc<dyn Tree>)> {
        self.mounts.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Resolves an absolute virtual path.
    pub fn resolve(&self, vpath: &str) -> Resolved {
        let m = self.mounts.read().unwrap_or_else(|e| e.into_inner());
        for (p, tree) in m.iter() {
            if vpath == p {
                return Resolved::Tree {
                    mount: p.clone(),
                    tree: tree.clone(),
                    rel: String::new(),
                };
            }
            if under(p, vpath) {
                return Resolved::Tree {
                    mount: p.clone(),
                    tree: tree.clone(),
                    rel: vpath[p.len() + 1..].to_string(),
                };
            }
        }
        let mut children = BTreeSet::new();
        for (p, _) in m.iter() {
            let rest = if vpath == "/" {
                Some(&p[1..])
            } else if under(vpath, p) {
                Some(&p[vpath.len() + 1..])
            } else {
                None
            };
            if let Some(rest) = rest {
                children.insert(rest.split('/').next().unwrap_or(rest).to_string());
            }
        }
        if children.is_empty() && vpath != "/" {
            Resolved::Missing
        } else {
            Resolved::Synthetic(children.into_iter().collect())
        }
    }
}

/// True when `child` lies strictly under the directory `dir`.
fn under(dir: &str, child: &str) -> bool {
    child.len() > dir.len() && child.starts_with(dir) && child.as_bytes()[dir.len()] == b'/'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::{Meta, VfsError};
    use async_trait::async_trait;
    use bytes::Bytes;

    struct Empty;
    #[async_trait]
    impl Tree for Empty {
        fn read_only(&self) -> bool {
            true
        }
        fn describe(&self) -> String {
            "empty".into()
        }
        async fn stat(&self, _: &str) -> Result<Meta, VfsError> {
            Ok(Meta::dir())
        }
        async fn list(&self, _: &str) -> Result<Vec<(String, Meta)>, VfsError> {
            Ok(vec![])
        }
        async fn read(&self, _: &str, _: u64, _: u64) -> Result<Bytes, VfsError> {
            Ok(Bytes::new())
        }
    }

    #[test]
    fn resolve_gives_synthetic_parents_of_nested_mounts() {
        let r = Router::new();
        assert!(r.add("/a/b", Arc::new(Empty)));
        assert!(r.add("/c", Arc::new(Empty)));
        match r.resolve("/") {
            Resolved::Synthetic(c) => assert_eq!(c, vec!["a", "c"]),
            _ => panic!("root should be synthetic"),
        }
        match r.resolve("/a") {
            Resolved::Synthetic(c) => assert_eq!(c, vec!["b"]),
            _ => panic!("/a should be synthetic"),
        }
        match r.resolve("/a/b/x/y") {
            Resolved::Tree { rel, mount, .. } => {
                assert_eq!(rel, "x/y");
                assert_eq!(mount, "/a/b");
            }
            _ => panic!("should resolve into the tree"),
        }
        assert!(matches!(r.resolve("/ab"), Resolved::Missing));
        assert!(matches!(r.resolve("/a/bc"), Resolved::Missing));
    }

    #[test]
    fn add_refuses_overlaps_and_remove_frees_the_path() {
        let r = Router::new();
        assert!(r.add("/a", Arc::new(Empty)));
        assert!(!r.add("/a/b", Arc::new(Empty)));
        assert!(!r.add("/a", Arc::new(Empty)));
        assert!(r.remove("/a").is_some());
        assert!(r.add("/a/b", Arc::new(Empty)));
    }
}
