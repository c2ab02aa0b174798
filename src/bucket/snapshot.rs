//! Snapshots: `vfs/snapshots/snapshot_<YYYYmmdd_HHMMSS>_<first 12 of
//! global_hash>.json`, immutable, with a copy of each bucket's index as of
//! then in `vfs/snapshots/<snapshot id>/<bucket>_vfs.parquet`.
//!
//! A snapshot compacts the buckets it covers first, so the copied index
//! holds every row; files are written with "only if absent", so an existing
//! snapshot is never overwritten. A snapshot file that cannot be read is
//! listed with its error and left as it is.

use super::catalog::{index_key, Catalog};
use super::error::{BucketError, Result};
use super::manifest::{global_hash, now_rfc3339, BucketEntry};
use super::store::Expect;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Directory (store key prefix) of snapshots.
pub const SNAPSHOT_DIR: &str = "snapshots";

/// One snapshot's file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub snapshot_id: String,
    pub created_at: String,
    pub global_hash: String,
    /// Each bucket as it was: its manifest entry, with `index_file` naming the copy.
    pub buckets: BTreeMap<String, BucketEntry>,
}

/// A listed snapshot, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listed {
    pub snapshot_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Snapshot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Store key of a snapshot's index copy of `bucket`.
pub fn index_copy_key(id: &str, bucket: &str) -> String {
    format!("{SNAPSHOT_DIR}/{id}/{bucket}_vfs.parquet")
}

impl Catalog {
    /// Takes a snapshot of the named buckets (all when `names` is empty).
    pub fn snapshot(&self, names: &[String]) -> Result<Snapshot> {
        let m = self.checkpoint()?;
        let mut buckets = m.buckets.clone();
        if !names.is_empty() {
            for n in names {
                if !buckets.contains_key(n) {
                    return Err(BucketError::NoSuchBucket(n.clone()));
                }
            }
            buckets.retain(|k, _| names.contains(k));
        }
        let global = global_hash(&buckets)?.cid.to_string();
        let stamp = jiff::Timestamp::now().strftime("%Y%m%d_%H%M%S").to_string();
        let id = format!("snapshot_{stamp}_{}", &global[..global.len().min(12)]);
        for (name, e) in buckets.iter_mut() {
            let key = index_copy_key(&id, name);
            let bytes = match self.store.read(&index_key(name))? {
                Some((b, _)) => b,
                None => Vec::new(),
            };
            self.store.write(&key, &bytes, Expect::Absent)?;
            e.index_file = key;
        }
        let snap = Snapshot {
            snapshot_id: id.clone(),
            created_at: now_rfc3339(),
            global_hash: global,
            buckets,
        };
        let bytes = serde_json::to_vec_pretty(&snap).unwrap_or_default();
        self.store
            .write(&format!("{SNAPSHOT_DIR}/{id}.json"), &bytes, Expect::Absent)?;
        Ok(snap)
    }

    /// Every snapshot, oldest first; with `bucket`, only those holding it.
    pub fn snapshots(&self, bucket: Option<&str>) -> Result<Vec<Listed>> {
        let mut out = Vec::new();
        for key in self.store.list(SNAPSHOT_DIR)? {
            let Some(file) = key.strip_prefix(&format!("{SNAPSHOT_DIR}/")) else {
                continue;
            };
            let Some(id) = file.strip_suffix(".json") else {
                continue;
            };
            if !id.starts_with("snapshot_") {
                continue;
            }
            let listed = match self.store.read(&key)? {
                Some((bytes, _)) => match serde_json::from_slice::<Snapshot>(&bytes) {
                    Ok(s) => Listed {
                        snapshot_id: id.to_string(),
                        snapshot: Some(s),
                        error: None,
                    },
                    Err(e) => Listed {
                        snapshot_id: id.to_string(),
                        snapshot: None,
                        error: Some(format!("{key} is corrupt: {e}")),
                    },
                },
                None => continue,
            };
            if let (Some(b), Some(s)) = (bucket, &listed.snapshot) {
                if !s.buckets.contains_key(b) {
                    continue;
                }
            }
            out.push(listed);
        }
        Ok(out)
    }

    /// One snapshot by id.
    pub fn read_snapshot(&self, id: &str) -> Result<Snapshot> {
        let key = format!("{SNAPSHOT_DIR}/{id}.json");
        let path = self.store.local_path(&key).unwrap_or_default();
        let (bytes, _) = self.store.read(&key)?.ok_or_else(|| BucketError::Failed {
            bucket: String::new(),
            message: format!("no snapshot {id}"),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| BucketError::Corrupt {
            what: "snapshot",
            path,
            message: e.to_string(),
        })
    }
}
