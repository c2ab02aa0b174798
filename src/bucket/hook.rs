//! Index-on-close: the core's [`Observer`] for bucket mounts. A file whose
//! new bytes were stored is hashed from the local copy that holds them (the
//! staged copy or the local backing file; never fetched back from a remote
//! backend) and recorded with the backend's mtime and etag; renames and
//! removals are recorded as moves and deletions. Failures are logged (the
//! write itself succeeded; `bucket index` catches up later). It also
//! answers a file's CID from its row while the backend still has the
//! indexed version (`user.ipfs.cid`).

use super::catalog::Catalog;
use super::hash::hash_local;
use super::journal::Op;
use super::row::{millis, now_ms, Row};
use crate::fs::observe::Observer;
use crate::vfs::{IpfsCid, Meta, Tree};
use async_trait::async_trait;
use std::path::Path;
use std::sync::Arc;

/// Indexes the files of bucket mounts as they change.
pub struct IndexOnClose {
    catalog: Arc<Catalog>,
}

impl IndexOnClose {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self { catalog }
    }

    fn record(&self, mount: &str, op: Op) {
        let Some(b) = self.catalog.at_mount(mount) else {
            return;
        };
        if let Err(e) = self.catalog.record(&b, op) {
            tracing::error!(bucket = %b.def.name, error = %e, "could not record a change in the bucket journal; run `bucket index`");
        }
    }
}

#[async_trait]
impl Observer for IndexOnClose {
    async fn stored(&self, mount: &str, tree: &Arc<dyn Tree>, rel: &str, local: &Path) {
        let Some(b) = self.catalog.at_mount(mount) else {
            return;
        };
        let (path, profile) = (local.to_path_buf(), b.def.profile);
        let built = match tokio::task::spawn_blocking(move || hash_local(&path, profile)).await {
            Ok(Ok(built)) => built,
            Ok(Err(e)) => {
                tracing::error!(bucket = %b.def.name, path = rel, error = %e, "could not hash a closed file; run `bucket index`");
                return;
            }
            Err(e) => {
                tracing::error!(bucket = %b.def.name, path = rel, error = %e, "hashing task failed");
                return;
            }
        };
        let meta = tree.stat(rel).await.ok();
        let row = Row {
            path: rel.to_string(),
            cid: built.cid.to_string(),
            size: built.size,
            dag_size: built.dag_size,
            // Only a version that describes these bytes: a size mismatch
            // means the file changed again since (the next close records it).
            mtime_ms: meta
                .as_ref()
                .filter(|m| m.size == built.size)
                .and_then(|m| m.mtime.map(millis)),
            etag: meta
                .as_ref()
                .filter(|m| m.size == built.size)
                .and_then(|m| m.version.clone()),
            indexed_ms: now_ms(),
        };
        self.record(mount, Op::Put(row));
    }

    async fn renamed(&self, mount: &str, from: &str, to: &str) {
        self.record(
            mount,
            Op::Mv {
                from: from.to_string(),
                to: to.to_string(),
            },
        );
    }

    async fn removed(&self, mount: &str, rel: &str) {
        self.record(mount, Op::Del(rel.to_string()));
    }

    fn cid(&self, mount: &str, rel: &str, meta: &Meta) -> Option<IpfsCid> {
        let b = self.catalog.at_mount(mount)?;
        let st = b.lock();
        let row = st.rows.get(rel)?;
        if meta.is_dir || !row.matches(meta.size, meta.mtime.map(millis), meta.version.as_deref()) {
            return None;
        }
        Some(IpfsCid {
            cid: row.cid.clone(),
            profile: Some(b.def.profile.name()),
        })
    }
}
