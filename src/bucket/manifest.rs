//! `vfs/bucket_manifest.json`: per bucket its root CID, index file and the
//! index's SHA-256, file count, total size, version (the journal sequence
//! number the index includes), profile, CARs prepared and `car_ready`; and
//! `global_hash`, the CID of a UnixFS directory (`unixfs-v1-2025`) linking
//! each bucket's root by name, so the whole state is one DAG.
//!
//! The manifest is derived state: it is rewritten from the buckets (after
//! compaction, snapshot, index and CAR preparation); an unreadable one is
//! moved aside and rebuilt. The CAR list is the only part kept from the
//! previous manifest, and only while the bucket's root is unchanged.

use super::catalog::{index_key, Bucket, Catalog};
use super::error::Result;
use super::store::Expect;
use crate::car::{Built, DirBuilder, Discard, Profile};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Store key of the manifest.
pub const MANIFEST_KEY: &str = "bucket_manifest.json";
/// Format version written in the manifest.
const FORMAT: u32 = 1;

/// One prepared CAR file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CarFile {
    pub path: String,
    pub size: u64,
    /// CIDv1 (car codec) of the file, as Storacha names shards.
    pub cid: String,
}

/// A bucket's entry in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketEntry {
    pub name: String,
    pub mount_point: String,
    pub profile: String,
    pub root_cid: String,
    /// DAG bytes under the root.
    pub dag_size: u64,
    pub index_file: String,
    /// SHA-256 (hex) of the index file as last compacted; empty if none yet.
    pub index_hash: String,
    pub files: u64,
    pub size: u64,
    pub version: u64,
    /// Journal entries not yet compacted into the index.
    pub pending: u64,
    pub car_ready: bool,
    #[serde(default)]
    pub cars: Vec<CarFile>,
    /// The root the CARs hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub car_root: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub updated_at: String,
    pub global_hash: String,
    pub buckets: BTreeMap<String, BucketEntry>,
}

/// The CID of a directory linking each bucket root by name.
pub fn global_hash(entries: &BTreeMap<String, BucketEntry>) -> Result<Built> {
    let mut d = DirBuilder::new(Profile::UnixfsV1_2025);
    for e in entries.values() {
        let cid: cid::Cid = e.root_cid.parse().map_err(|err| super::BucketError::Failed {
            bucket: e.name.clone(),
            message: format!("bad root CID {}: {err}", e.root_cid),
        })?;
        d.add(&e.name, cid, e.dag_size)?;
    }
    Ok(d.finish(&mut Discard)?)
}

/// UTC now as RFC 3339.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

impl Catalog {
    /// The manifest as last written, if it can be read (a corrupt one is
    /// moved aside and `None` returned).
    pub fn read_manifest(&self) -> Option<Manifest> {
        let (bytes, _) = self.store.read(MANIFEST_KEY).ok().flatten()?;
        match serde_json::from_slice(&bytes) {
            Ok(m) => Some(m),
            Err(e) => {
                let moved = self.store.move_aside(MANIFEST_KEY, "corrupt");
                tracing::error!(error = %e, moved = ?moved, "bucket manifest is corrupt; moved aside, rebuilding it");
                None
            }
        }
    }

    /// The manifest entry of one bucket, as of now.
    pub fn entry(&self, b: &Bucket, old: Option<&BucketEntry>) -> Result<BucketEntry> {
        let mut st = b.lock();
        let root = Catalog::root_locked(b, &mut st)?;
        let ikey = index_key(&b.def.name);
        let index_hash = match self.store.local_path(&ikey).filter(|p| p.exists()) {
            Some(p) => std::fs::read(&p)
                .map(|d| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&d)))
                .unwrap_or_default(),
            None => String::new(),
        };
        let root_cid = root.cid.to_string();
        let (cars, car_root) = match old {
            Some(o) if o.car_root.as_deref() == Some(root_cid.as_str()) => {
                (o.cars.clone(), o.car_root.clone())
            }
            _ => (Vec::new(), None),
        };
        Ok(BucketEntry {
            name: b.def.name.clone(),
            mount_point: b.def.mount.clone(),
            profile: b.def.profile.name().to_string(),
            car_ready: !cars.is_empty(),
            cars,
            car_root,
            root_cid,
            dag_size: root.dag_size,
            index_file: ikey,
            index_hash,
            files: st.rows.len() as u64,
            size: st.rows.values().map(|r| r.size).sum(),
            version: st.index_seq,
            pending: st.pending,
            error: st.error.clone(),
        })
    }

    /// The manifest as of now (not written).
    pub fn manifest(&self) -> Result<Manifest> {
        let old = self.read_manifest();
        let mut buckets = BTreeMap::new();
        for b in self.all() {
            let prev = old.as_ref().and_then(|m| m.buckets.get(&b.def.name));
            buckets.insert(b.def.name.clone(), self.entry(&b, prev)?);
        }
        Ok(Manifest {
            format: FORMAT,
            updated_at: now_rfc3339(),
            global_hash: global_hash(&buckets)?.cid.to_string(),
            buckets,
        })
    }

    /// Writes `m` as the manifest.
    pub fn write_manifest(&self, m: &Manifest) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(m).unwrap_or_default();
        self.store.write(MANIFEST_KEY, &bytes, Expect::Any)?;
        Ok(())
    }

    /// Compacts every bucket, rewrites the manifest, and removes this
    /// process's recording markers when nothing is queued (`recorder.rs`).
    pub fn checkpoint(&self) -> Result<Manifest> {
        self.compact_all();
        let m = self.manifest()?;
        self.write_manifest(&m)?;
        self.release_markers();
        Ok(m)
    }
}
