//! Buckets: named mounts whose files are indexed with their IPFS CIDs.
//!
//! Owns, under `$IPFS_KIT_HOME/vfs/`: each bucket's Parquet index
//! (`buckets/<bucket>_vfs.parquet`, the only parquet/arrow code, in
//! `index.rs`) and its append-only journal, `bucket_manifest.json` (root
//! CIDs and the `global_hash` over them), snapshots
//! (`snapshots/snapshot_<time>_<hash12>.json` plus index copies) and the
//! CARs prepared for a bucket (`cars/<bucket>/`). All of it goes through one
//! small [`Store`] interface (read; write only if unchanged since read;
//! append) so it can move onto a bucket's own backend later.
//!
//! Also: the observer that indexes files as they are closed, renamed and
//! removed through a bucket's mount (`hook.rs`) through a queue that a
//! close does not wait for (`recorder.rs`), and the read-only
//! `.buckets/` and `.snapshots/` trees (`view.rs`).
//!
//! Invariants: a bucket's root CID is computed from its rows alone (each
//! carries the file's CID and DAG size) and equals `ipfs-kit-fuse cid
//! --hidden` of the same files; nothing on disk is overwritten before it
//! was read successfully or moved aside with a name saying why.

mod carprep;
mod catalog;
mod dag;
mod error;
mod hash;
mod hook;
mod index;
mod journal;
mod manifest;
mod recorder;
mod row;
mod scan;
mod service;
mod snapshot;
mod store;
mod view;

pub use carprep::CarReport;
pub use catalog::{check_name, Bucket, BucketDef, Catalog};
pub use error::{BucketError, Result};
pub use hook::IndexOnClose;
pub use journal::Op;
pub use manifest::{BucketEntry, CarFile, Manifest};
pub use row::Row;
pub use scan::{IndexReport, ProgressFn};
pub use service::{Mounts, Service, DEFAULT_PARENT};
pub use snapshot::{Listed as SnapshotListed, Snapshot};
pub use store::{Expect, LocalStore, Store, Version};
pub use view::{BucketsTree, SnapshotsTree};

use crate::config::Config;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// Where the `.buckets/` tree is placed under the mount point.
pub const BUCKETS_PATH: &str = "/.buckets";
/// Where the `.snapshots/` tree is placed under the mount point.
pub const SNAPSHOTS_PATH: &str = "/.snapshots";

/// The buckets the config defines (`bucket = NAME` on a `[[mount]]`).
pub fn defs_from_config(config: &Config) -> Vec<BucketDef> {
    config
        .mounts
        .iter()
        .filter_map(|m| {
            m.bucket.as_ref().map(|name| BucketDef {
                name: name.clone(),
                mount: m.normalized_path(),
                // Checked when the config was validated.
                profile: m
                    .profile
                    .as_deref()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Opens the buckets of `config` in the data home `home`.
pub fn open(home: &Path, config: &Config) -> Arc<Catalog> {
    let store: Arc<dyn Store> = Arc::new(LocalStore::new(home.join("vfs")));
    Catalog::open(store, defs_from_config(config))
}

/// One line of `bucket list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketInfo {
    pub name: String,
    pub mount_point: String,
    pub profile: String,
    pub files: u64,
    pub size: u64,
    pub root_cid: String,
    /// Journal entries not yet compacted into the index.
    pub pending: u64,
    pub car_ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_snapshot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Catalog {
    /// Every bucket with its figures, root CID and last snapshot.
    pub fn list(&self) -> Result<Vec<BucketInfo>> {
        let m = self.manifest()?;
        let snaps = self.snapshots(None).unwrap_or_default();
        Ok(m.buckets
            .into_values()
            .map(|e| BucketInfo {
                last_snapshot: snaps
                    .iter()
                    .rev()
                    .find(|s| {
                        s.snapshot
                            .as_ref()
                            .is_some_and(|s| s.buckets.contains_key(&e.name))
                    })
                    .map(|s| s.snapshot_id.clone()),
                name: e.name,
                mount_point: e.mount_point,
                profile: e.profile,
                files: e.files,
                size: e.size,
                root_cid: e.root_cid,
                pending: e.pending,
                car_ready: e.car_ready,
                error: e.error,
            })
            .collect())
    }
}

/// Seconds between background checkpoints: journals fsynced and compacted
/// into the indexes, manifest rewritten. Half a minute bounds what a power
/// loss can take from the journal; a killed process loses nothing (appends
/// are in the page cache).
const MAINTAIN_SECS: u64 = 30;

/// Opens the buckets of `config` for the mounted core `fs`: files closed
/// through bucket mounts are indexed from now on, and the `.buckets/` and
/// `.snapshots/` trees are placed when there is a bucket.
pub fn attach(fs: &Arc<crate::fs::Fs>, home: &Path, config: &Config) -> Arc<Catalog> {
    let catalog = open(home, config);
    fs.set_observer(Arc::new(IndexOnClose::new(catalog.clone())));
    if !catalog.all().is_empty() {
        place_trees(&catalog, fs.router());
    }
    catalog
}

/// Places `.buckets/` and `.snapshots/` in the router (no-op if placed).
pub fn place_trees(catalog: &Arc<Catalog>, router: &Arc<crate::vfs::Router>) {
    let buckets = BucketsTree::new(catalog.clone(), router.clone());
    let snapshots = SnapshotsTree::new(&buckets);
    router.add(BUCKETS_PATH, Arc::new(buckets));
    router.add(SNAPSHOTS_PATH, Arc::new(snapshots));
}

/// Background upkeep while mounted: first queues the re-indexing of buckets
/// an earlier process left with records queued (`recorder.rs`); then every
/// [`MAINTAIN_SECS`], fsyncs the journals, compacts buckets that changed
/// and removes the recording markers when nothing is queued.
pub async fn maintain(catalog: Arc<Catalog>, router: Arc<crate::vfs::Router>) {
    catalog.start_recovery(&router);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(MAINTAIN_SECS));
    tick.tick().await;
    loop {
        tick.tick().await;
        let c = catalog.clone();
        let busy = c.has_markers() || c.all().iter().any(|b| b.lock().pending > 0);
        if !busy {
            continue;
        }
        let done = tokio::task::spawn_blocking(move || {
            c.sync_journals();
            c.checkpoint()
        })
        .await;
        match done {
            Ok(Err(e)) => tracing::error!(error = %e, "bucket checkpoint failed"),
            Err(e) => tracing::error!(error = %e, "bucket checkpoint task failed"),
            Ok(Ok(_)) => {}
        }
    }
}
