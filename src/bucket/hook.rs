//! Index-on-close: the core's [`Observer`] for bucket mounts. A file whose
//! new bytes were stored, a rename and a removal are queued for the
//! bucket's journal (`recorder.rs`) and the close returns at once; the
//! queue hashes the file from the open local copy that holds the bytes
//! (the staged copy or the local backing file; never fetched back from a
//! remote backend) and records it with the backend's mtime and etag.
//! Failures are logged (the write itself succeeded; `bucket index` catches
//! up). It also answers a file's CID from its row while the backend still
//! has the indexed version, and a directory's (the bucket's root for the
//! mount's top) from the index (`user.ipfs.cid`), once the records queued
//! before the question landed.

use super::catalog::Catalog;
use super::journal::Op;
use super::recorder::Work;
use super::row::millis;
use crate::fs::observe::Observer;
use crate::vfs::{IpfsCid, Meta, Tree};
use async_trait::async_trait;
use std::fs::File;
use std::sync::Arc;

/// Indexes the files of bucket mounts as they change.
pub struct IndexOnClose {
    catalog: Arc<Catalog>,
}

impl IndexOnClose {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self { catalog }
    }

    fn queue(&self, mount: &str, work: Work) {
        if let Some(b) = self.catalog.at_mount(mount) {
            self.catalog.enqueue(&b, work);
        }
    }
}

#[async_trait]
impl Observer for IndexOnClose {
    async fn stored(&self, mount: &str, tree: &Arc<dyn Tree>, rel: &str, file: Arc<File>) {
        self.queue(
            mount,
            Work::Stored {
                tree: tree.clone(),
                rel: rel.to_string(),
                file,
            },
        );
    }

    async fn renamed(&self, mount: &str, from: &str, to: &str) {
        self.queue(
            mount,
            Work::Op(Op::Mv {
                from: from.to_string(),
                to: to.to_string(),
            }),
        );
    }

    async fn removed(&self, mount: &str, rel: &str) {
        self.queue(mount, Work::Op(Op::Del(rel.to_string())));
    }

    async fn cid(&self, mount: &str, rel: &str, meta: &Meta) -> Option<IpfsCid> {
        let b = self.catalog.at_mount(mount)?;
        let profile = Some(b.def.profile.name());
        if meta.is_dir {
            // Any queued change may lie under the directory.
            self.catalog.drained().await;
            let built = self.catalog.dir(&b, rel)?;
            return Some(IpfsCid {
                cid: built.cid.to_string(),
                profile,
            });
        }
        self.catalog.settled_path(&b, rel).await;
        let st = b.lock();
        let row = st.rows.get(rel)?;
        if !row.matches(meta.size, meta.mtime.map(millis), meta.version.as_deref()) {
            return None;
        }
        Some(IpfsCid {
            cid: row.cid.clone(),
            profile,
        })
    }
}
