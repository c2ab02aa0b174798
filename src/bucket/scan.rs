//! `bucket index`: catches changes made outside the mount. Lists the
//! bucket's backend, re-hashes only new or changed files (size, etag or
//! mtime differ from the row; all with `full`), several at once, and records
//! the differences as journal entries, then compacts.

use super::catalog::Catalog;
use super::error::{BucketError, Result};
use super::hash::hash_tree;
use super::journal::Op;
use super::row::{millis, now_ms, Row};
use crate::vfs::{join_rel, Meta, Resolved, Router, Tree};
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Files hashed at once: enough to overlap backend latency, few enough not
/// to crowd the machine (each holds a few MiB of pieces).
const PARALLEL: usize = 4;

/// What `bucket index` did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IndexReport {
    pub bucket: String,
    pub files: u64,
    pub hashed: u64,
    pub unchanged: u64,
    pub removed: u64,
    pub bytes_hashed: u64,
    pub root_cid: String,
    /// Files that could not be read (left as they were in the index).
    pub errors: Vec<String>,
}

/// Progress of a long operation: `done` of `total` units.
pub type ProgressFn = Arc<dyn Fn(&str, u64, u64) + Send + Sync>;

/// The tree mounted at `mount`.
pub fn tree_at(router: &Router, mount: &str) -> Result<Arc<dyn Tree>> {
    match router.resolve(mount) {
        Resolved::Tree { tree, rel, .. } if rel.is_empty() => Ok(tree),
        _ => Err(BucketError::Failed {
            bucket: String::new(),
            message: format!("nothing is mounted at {mount}"),
        }),
    }
}

/// Every file under the tree's root with its metadata.
async fn walk(tree: &Arc<dyn Tree>) -> Result<Vec<(String, Meta)>> {
    let full_meta = tree.lists_full_meta();
    let mut files = Vec::new();
    let mut dirs = vec![String::new()];
    while let Some(dir) = dirs.pop() {
        let list = tree.list(&dir).await.map_err(|source| BucketError::Backend {
            path: dir.clone(),
            source,
        })?;
        for (name, meta) in list {
            let rel = join_rel(&dir, &name);
            if meta.is_dir {
                dirs.push(rel);
            } else if full_meta {
                files.push((rel, meta));
            } else {
                let m = tree.stat(&rel).await.map_err(|source| BucketError::Backend {
                    path: rel.clone(),
                    source,
                })?;
                files.push((rel, m));
            }
        }
    }
    Ok(files)
}

impl Catalog {
    /// Re-indexes bucket `name` from its backend.
    pub async fn index(
        &self,
        router: &Router,
        name: &str,
        full: bool,
        progress: ProgressFn,
    ) -> Result<IndexReport> {
        let b = self.get(name)?;
        // CIDs of another profile are all stale.
        let full = full || b.lock().stale_profile;
        let tree = tree_at(router, &b.def.mount)?;
        let files = walk(&tree).await?;
        let old: BTreeMap<String, Row> = b.lock().rows.clone();
        let mut report = IndexReport {
            bucket: name.to_string(),
            files: files.len() as u64,
            ..Default::default()
        };
        let mut todo = Vec::new();
        for (rel, m) in &files {
            let mtime = m.mtime.map(millis);
            match old.get(rel) {
                Some(r) if !full && r.matches(m.size, mtime, m.version.as_deref()) => report.unchanged += 1,
                _ => todo.push((rel.clone(), m.clone())),
            }
        }
        let total = todo.len() as u64;
        progress("hashing", 0, total);
        let profile = b.def.profile;
        let mut results = stream::iter(todo)
            .map(|(rel, m)| {
                let tree = tree.clone();
                async move {
                    let built = hash_tree(tree, rel.clone(), profile).await;
                    (rel, m, built)
                }
            })
            .buffer_unordered(PARALLEL);
        let mut done = 0;
        while let Some((rel, m, built)) = results.next().await {
            done += 1;
            progress("hashing", done, total);
            match built {
                Ok(built) => {
                    report.hashed += 1;
                    report.bytes_hashed += built.size;
                    let row = Row {
                        path: rel,
                        cid: built.cid.to_string(),
                        size: built.size,
                        dag_size: built.dag_size,
                        mtime_ms: m.mtime.map(millis),
                        etag: m.version.clone(),
                        indexed_ms: now_ms(),
                    };
                    self.record(&b, Op::Put(row))?;
                }
                Err(e) => report.errors.push(format!("{rel}: {e}")),
            }
        }
        let seen: std::collections::HashSet<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        for path in old.keys().filter(|p| !seen.contains(p.as_str())) {
            report.removed += 1;
            self.record(&b, Op::Del(path.clone()))?;
        }
        if report.errors.is_empty() {
            let mut st = b.lock();
            st.error = None;
            st.stale_profile = false;
        }
        self.compact(&b)?;
        report.root_cid = self.root(&b)?.cid.to_string();
        let m = self.manifest()?;
        self.write_manifest(&m)?;
        Ok(report)
    }
}
