//! Runtime changes of the mount table as the core sees them: placing and
//! removing a tree, keeping the inode table and the kernel's caches honest.
//!
//! Invariants: a mount is removed only after every file under it with data
//! not yet uploaded was uploaded (else the removal is refused and nothing
//! changes); after removal its inodes are forgotten, so open files and
//! working directories under it answer ESTALE instead of reaching a tree
//! that is gone (their cached pages are dropped too); the kernel's entries for every component of the changed
//! path, and the listing cache under it, are invalidated, so `ls` shows the
//! change at once.

use super::{Fs, FsError, ROOT_INO};
use crate::fs::invalidate::Invalidator;
use crate::vfs::Tree;
use std::sync::Arc;

/// Why a mount-table change was refused.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("mount path {0} is taken or overlaps another mount")]
    Overlap(String),
    #[error("no mount at {0}")]
    NotMounted(String),
    #[error("{} file(s) under {path} could not be uploaded; mount kept (first error: {first})", .count)]
    PendingUploads {
        path: String,
        count: usize,
        first: String,
    },
}

impl Fs {
    /// Places `tree` at the normalised mount path `path`.
    pub async fn add_mount(
        &self,
        path: &str,
        tree: Arc<dyn Tree>,
        inval: Option<Arc<dyn Invalidator>>,
    ) -> Result<(), TableError> {
        if !self.router.add(path, tree) {
            return Err(TableError::Overlap(path.to_string()));
        }
        // Listings cached under this path belong to whatever was here before.
        self.dirs.invalidate_tree(path);
        let targets = self.entry_targets(path);
        invalidate(inval, targets, Vec::new()).await;
        Ok(())
    }

    /// Uploads what is pending under `path`, then removes the mount there.
    pub async fn remove_mount(
        &self,
        path: &str,
        inval: Option<Arc<dyn Invalidator>>,
    ) -> Result<(), TableError> {
        if !self.router.list().iter().any(|(p, _)| p == path) {
            return Err(TableError::NotMounted(path.to_string()));
        }
        let failures: Vec<FsError> = self.flush_under(path).await;
        if let Some(first) = failures.first() {
            return Err(TableError::PendingUploads {
                path: path.to_string(),
                count: failures.len(),
                first: first.to_string(),
            });
        }
        if self.router.remove(path).is_none() {
            return Err(TableError::NotMounted(path.to_string()));
        }
        let targets = self.entry_targets(path);
        let dropped = self.inodes.drop_under(path);
        self.dirs.invalidate_tree(path);
        tracing::debug!(
            path,
            dropped = dropped.len(),
            "mount removed; its inodes are stale now"
        );
        invalidate(inval, targets, dropped).await;
        Ok(())
    }

    /// (parent inode, name) of every component of `path` whose parent the kernel knows.
    fn entry_targets(&self, path: &str) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        let mut parent = String::from("/");
        for name in path.split('/').filter(|c| !c.is_empty()) {
            let pino = if parent == "/" {
                Some(ROOT_INO)
            } else {
                self.inodes.peek(&parent)
            };
            match pino {
                Some(p) => out.push((p, name.to_string())),
                None => break,
            }
            parent = crate::vfs::join_abs(&parent, name);
        }
        out
    }
}

/// Runs the invalidations (entries, then the data and attributes of dropped
/// inodes, so open files cannot read a removed mount from the page cache) on
/// a blocking thread: each notification is a write to /dev/fuse that may
/// wait on the kernel's locks.
async fn invalidate(inval: Option<Arc<dyn Invalidator>>, targets: Vec<(u64, String)>, inodes: Vec<u64>) {
    let Some(inval) = inval else { return };
    let done = tokio::task::spawn_blocking(move || {
        for (parent, name) in targets {
            if let Err(e) = inval.inval_entry(parent, &name) {
                tracing::debug!(parent, name, error = %e, "entry invalidation skipped");
            }
        }
        for ino in inodes {
            if let Err(e) = inval.inval_inode(ino) {
                tracing::debug!(ino, error = %e, "inode invalidation skipped");
            }
        }
    })
    .await;
    if let Err(e) = done {
        tracing::warn!(error = %e, "entry invalidation task failed");
    }
}
