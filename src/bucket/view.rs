//! The read-only `.buckets/` and `.snapshots/` trees, placed by the router
//! beside the mounts. Listings and stat come from the indexes alone.
//!
//! ```text
//! .buckets/<bucket>/files/...        the indexed tree
//! .buckets/<bucket>/index.parquet    the index (as last compacted)
//! .buckets/<bucket>/manifest.json    the bucket's manifest entry
//! .buckets/<bucket>/cars/            CARs prepared for it
//! .snapshots/<id>/manifest.json      the snapshot file
//! .snapshots/<id>/<bucket>/...       the bucket's files as they were
//! ```
//!
//! File bytes (see [`Content`]): from the bucket's backend while the file
//! there is still the indexed version, checked once per version against the
//! indexed CID; else from a prepared CAR holding the CID (its blocks are
//! hashed as they are read, the file extracted once under
//! `vfs/cars/.extracted/`); else EIO with a log line naming the CID and the
//! command that would have kept it. Every file's `version` is its CID, so
//! the block cache keys its blocks by content. Files and directories under
//! `files/` and under a snapshot's bucket (those two included: the bucket's
//! root) carry their CID and the bucket's profile as `user.ipfs.cid` /
//! `user.ipfs.profile` ([`Tree::ipfs_cid`]); a directory's CID is computed
//! from the index alone.

use super::catalog::Catalog;
use super::dag;
use super::hash::hash_tree;
use super::index;
use super::row::{millis, Row};
use super::scan::tree_at;
use super::snapshot::{index_copy_key, SNAPSHOT_DIR};
use crate::backend::{BackendError, BackendErrorKind};
use crate::car::{walk_car, CarStore};
use crate::vfs::{IpfsCid, Meta, Router, Tree, VfsError};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Snapshot indexes kept decoded in memory (each is read once, then reused).
const SNAPSHOT_CACHE: usize = 8;

fn eio(msg: String) -> VfsError {
    VfsError::Backend(BackendError::new(BackendErrorKind::Other, msg))
}

fn file_meta(size: u64, mtime_ms: Option<i64>, version: Option<String>) -> Meta {
    Meta {
        is_dir: false,
        size,
        mtime: mtime_ms.map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)),
        version,
        ..Default::default()
    }
}

fn row_meta(r: &Row) -> Meta {
    file_meta(r.size, r.mtime_ms.or(Some(r.indexed_ms)), Some(r.cid.clone()))
}

/// Looks `rel` up in `rows`: a file, a directory (a prefix of some rows) or nothing.
fn stat_rows(rows: &BTreeMap<String, Row>, rel: &str) -> Result<Meta, VfsError> {
    if rel.is_empty() {
        return Ok(Meta::dir());
    }
    if let Some(r) = rows.get(rel) {
        return Ok(row_meta(r));
    }
    let prefix = format!("{rel}/");
    match rows.range(prefix.clone()..).next() {
        Some((k, _)) if k.starts_with(&prefix) => Ok(Meta::dir()),
        _ => Err(VfsError::NotFound),
    }
}

/// Children of the directory `rel` in `rows`, sorted by name.
fn list_rows(rows: &BTreeMap<String, Row>, rel: &str) -> Result<Vec<(String, Meta)>, VfsError> {
    let prefix = if rel.is_empty() {
        String::new()
    } else {
        format!("{rel}/")
    };
    let mut out = Vec::new();
    let mut from = prefix.clone();
    while let Some((k, r)) = rows.range(from.clone()..).next() {
        let Some(rest) = k.strip_prefix(&prefix) else {
            break;
        };
        match rest.find('/') {
            None => {
                out.push((rest.to_string(), row_meta(r)));
                from = format!("{k}\0");
            }
            Some(i) => {
                let name = &rest[..i];
                out.push((name.to_string(), Meta::dir()));
                // '0' follows '/': skips the whole subdirectory.
                from = format!("{prefix}{name}0");
            }
        }
    }
    if out.is_empty() && !rel.is_empty() && !rows.contains_key(rel) {
        return Err(VfsError::NotFound);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Where the bytes of indexed files come from.
pub struct Content {
    catalog: Arc<Catalog>,
    router: Arc<Router>,
    /// (bucket, path, cid, backend version) already hashed and found equal.
    verified: Mutex<HashSet<(String, String, String, String)>>,
}

impl Content {
    fn vfs_dir(&self) -> Option<PathBuf> {
        self.catalog.store.local_path("")
    }

    /// `len` bytes at `offset` of the file `row` of `bucket`.
    pub async fn read(&self, bucket: &str, row: &Row, offset: u64, len: u64) -> Result<Bytes, VfsError> {
        if let Some(b) = self.backend_bytes(bucket, row, offset, len).await? {
            return Ok(b);
        }
        if let Some(b) = self.car_bytes(bucket, row, offset, len).await? {
            return Ok(b);
        }
        tracing::error!(
            bucket,
            path = %row.path,
            cid = %row.cid,
            "no source holds this CID: the backend has other bytes now and no prepared CAR has it (run `ipfs-kit-fuse bucket prepare-car {bucket}` before changing files you want to keep readable)"
        );
        Err(eio(format!(
            "CID {} of {bucket}/{} is not available",
            row.cid, row.path
        )))
    }

    async fn backend_bytes(
        &self,
        bucket: &str,
        row: &Row,
        offset: u64,
        len: u64,
    ) -> Result<Option<Bytes>, VfsError> {
        let Ok(b) = self.catalog.get(bucket) else {
            return Ok(None);
        };
        let Ok(tree) = tree_at(&self.router, &b.def.mount) else {
            return Ok(None);
        };
        let Ok(m) = tree.stat(&row.path).await else {
            return Ok(None);
        };
        if m.is_dir || !row.matches(m.size, m.mtime.map(millis), m.version.as_deref()) {
            return Ok(None);
        }
        let version = m
            .version
            .clone()
            .or(m.mtime.map(|t| millis(t).to_string()))
            .unwrap_or_default();
        let key = (bucket.to_string(), row.path.clone(), row.cid.clone(), version);
        let known = self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key);
        if !known {
            match hash_tree(tree.clone(), row.path.clone(), b.def.profile).await {
                Ok(built) if built.cid.to_string() == row.cid => {
                    self.verified
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(key);
                }
                Ok(built) => {
                    tracing::warn!(bucket, path = %row.path, indexed = %row.cid, found = %built.cid, "backend bytes differ from the indexed CID; trying prepared CARs");
                    return Ok(None);
                }
                Err(e) => {
                    tracing::warn!(bucket, path = %row.path, error = %e, "cannot verify the backend copy; trying prepared CARs");
                    return Ok(None);
                }
            }
        }
        match tree
            .read_version(&row.path, offset, len, m.version.as_deref())
            .await
        {
            Ok(b) => Ok(Some(b)),
            Err(VfsError::Changed) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn car_bytes(
        &self,
        bucket: &str,
        row: &Row,
        offset: u64,
        len: u64,
    ) -> Result<Option<Bytes>, VfsError> {
        let Some(vfs) = self.vfs_dir() else {
            return Ok(None);
        };
        let extracted = vfs.join("cars").join(".extracted").join(&row.cid);
        if !extracted.exists() {
            let cid: cid::Cid = match row.cid.parse() {
                Ok(c) => c,
                Err(_) => return Ok(None),
            };
            let cars_dir = vfs.join("cars").join(bucket);
            let out = extracted.clone();
            let found = tokio::task::spawn_blocking(move || -> Result<bool, String> {
                let Ok(rd) = std::fs::read_dir(&cars_dir) else {
                    return Ok(false);
                };
                let mut cars: Vec<PathBuf> = rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "car"))
                    .collect();
                cars.sort();
                for car in cars {
                    let mut store = match CarStore::open(&car) {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!(car = %car.display(), error = %e, "skipping an unreadable CAR");
                            continue;
                        }
                    };
                    if !store.has(&cid) {
                        continue;
                    }
                    let dir = out.parent().map(PathBuf::from).unwrap_or_default();
                    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                    let tmp = dir.join(format!(".{cid}.tmp-{}", std::process::id()));
                    let _ = std::fs::remove_file(&tmp);
                    walk_car(&mut store, &cid, Some(&tmp)).map_err(|e| e.to_string())?;
                    std::fs::rename(&tmp, &out).map_err(|e| e.to_string())?;
                    return Ok(true);
                }
                Ok(false)
            })
            .await
            .map_err(|e| eio(format!("CAR task: {e}")))?
            .map_err(eio)?;
            if !found {
                return Ok(None);
            }
        }
        let path = extracted;
        let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            let f = std::fs::File::open(&path)?;
            let size = f.metadata()?.len();
            let n = len.min(size.saturating_sub(offset)) as usize;
            let mut buf = vec![0u8; n];
            f.read_exact_at(&mut buf, offset)?;
            Ok(buf)
        })
        .await
        .map_err(|e| eio(format!("read task: {e}")))?
        .map_err(|e| eio(format!("reading the extracted copy of {}: {e}", row.cid)))?;
        Ok(Some(Bytes::from(bytes)))
    }
}

/// Reads `len` bytes at `offset` of a local file.
async fn read_local(path: PathBuf, offset: u64, len: u64) -> Result<Bytes, VfsError> {
    tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let f = std::fs::File::open(&path)?;
        let size = f.metadata()?.len();
        let n = len.min(size.saturating_sub(offset)) as usize;
        let mut buf = vec![0u8; n];
        f.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    })
    .await
    .map_err(|e| eio(format!("read task: {e}")))?
    .map(Bytes::from)
    .map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => VfsError::NotFound,
        _ => eio(e.to_string()),
    })
}

fn local_meta(path: &std::path::Path) -> Result<Meta, VfsError> {
    let m = std::fs::metadata(path).map_err(|_| VfsError::NotFound)?;
    Ok(Meta {
        is_dir: m.is_dir(),
        size: if m.is_dir() { 0 } else { m.len() },
        mtime: m.modified().ok(),
        version: None,
        ..Default::default()
    })
}

fn split(rel: &str) -> (&str, &str) {
    rel.split_once('/').unwrap_or((rel, ""))
}

/// `.buckets/`.
pub struct BucketsTree {
    content: Arc<Content>,
}

impl BucketsTree {
    pub fn new(catalog: Arc<Catalog>, router: Arc<Router>) -> Self {
        Self {
            content: Arc::new(Content {
                catalog,
                router,
                verified: Mutex::default(),
            }),
        }
    }

    fn catalog(&self) -> &Arc<Catalog> {
        &self.content.catalog
    }

    fn manifest_json(&self, bucket: &str) -> Result<Vec<u8>, VfsError> {
        let b = self.catalog().get(bucket).map_err(|_| VfsError::NotFound)?;
        let old = self.catalog().read_manifest();
        let e = self
            .catalog()
            .entry(&b, old.as_ref().and_then(|m| m.buckets.get(bucket)))
            .map_err(|e| eio(e.to_string()))?;
        let mut v = serde_json::to_vec_pretty(&e).unwrap_or_default();
        v.push(b'\n');
        Ok(v)
    }

    fn local(&self, key: &str) -> Option<PathBuf> {
        self.catalog().store.local_path(key)
    }
}

#[async_trait]
impl Tree for BucketsTree {
    fn read_only(&self) -> bool {
        true
    }
    fn describe(&self) -> String {
        "buckets (read-only index view)".into()
    }
    async fn ipfs_cid(&self, rel: &str) -> Option<IpfsCid> {
        let (bucket, rest) = split(rel);
        let ("files", inner) = split(rest) else {
            return None;
        };
        let b = self.catalog().get(bucket).ok()?;
        let row = b.lock().rows.get(inner).map(|r| r.cid.clone());
        let cid = match row {
            Some(c) => c,
            None => self.catalog().dir(&b, inner)?.cid.to_string(),
        };
        Some(IpfsCid {
            cid,
            profile: Some(b.def.profile.name()),
        })
    }
    async fn stat(&self, rel: &str) -> Result<Meta, VfsError> {
        if rel.is_empty() {
            return Ok(Meta::dir());
        }
        let (bucket, rest) = split(rel);
        let b = self.catalog().get(bucket).map_err(|_| VfsError::NotFound)?;
        let (top, inner) = split(rest);
        match top {
            "" | "cars" if inner.is_empty() => Ok(Meta::dir()),
            "files" => stat_rows(&b.lock().rows, inner),
            "index.parquet" if inner.is_empty() => local_meta(
                &self
                    .local(&super::catalog::index_key(bucket))
                    .ok_or(VfsError::NotFound)?,
            ),
            "manifest.json" if inner.is_empty() => {
                Ok(file_meta(self.manifest_json(bucket)?.len() as u64, None, None))
            }
            "cars" => local_meta(
                &self
                    .local(&format!("cars/{bucket}/{inner}"))
                    .ok_or(VfsError::NotFound)?,
            ),
            _ => Err(VfsError::NotFound),
        }
    }
    async fn list(&self, rel: &str) -> Result<Vec<(String, Meta)>, VfsError> {
        if rel.is_empty() {
            return Ok(self
                .catalog()
                .all()
                .iter()
                .map(|b| (b.def.name.clone(), Meta::dir()))
                .collect());
        }
        let (bucket, rest) = split(rel);
        let b = self.catalog().get(bucket).map_err(|_| VfsError::NotFound)?;
        let (top, inner) = split(rest);
        match top {
            "" => {
                let mut out = vec![
                    ("cars".to_string(), Meta::dir()),
                    ("files".to_string(), Meta::dir()),
                ];
                for name in ["index.parquet", "manifest.json"] {
                    if let Ok(m) = self.stat(&format!("{bucket}/{name}")).await {
                        out.push((name.to_string(), m));
                    }
                }
                out.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(out)
            }
            "files" => list_rows(&b.lock().rows, inner),
            "cars" if inner.is_empty() => {
                let dir = self.local(&format!("cars/{bucket}")).ok_or(VfsError::NotFound)?;
                let mut out = Vec::new();
                if let Ok(rd) = std::fs::read_dir(&dir) {
                    for e in rd.flatten() {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if name.starts_with('.') {
                            continue;
                        }
                        if let Ok(m) = local_meta(&e.path()) {
                            out.push((name, m));
                        }
                    }
                }
                out.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(out)
            }
            _ => Err(VfsError::NotDir),
        }
    }
    async fn read(&self, rel: &str, offset: u64, len: u64) -> Result<Bytes, VfsError> {
        let (bucket, rest) = split(rel);
        let b = self.catalog().get(bucket).map_err(|_| VfsError::NotFound)?;
        let (top, inner) = split(rest);
        match top {
            "files" => {
                let row = b.lock().rows.get(inner).cloned().ok_or(VfsError::NotFound)?;
                self.content.read(bucket, &row, offset, len).await
            }
            "index.parquet" => {
                let p = self
                    .local(&super::catalog::index_key(bucket))
                    .ok_or(VfsError::NotFound)?;
                read_local(p, offset, len).await
            }
            "manifest.json" => {
                let v = self.manifest_json(bucket)?;
                let start = (offset as usize).min(v.len());
                let end = (start + len as usize).min(v.len());
                Ok(Bytes::copy_from_slice(&v[start..end]))
            }
            "cars" => {
                let p = self
                    .local(&format!("cars/{bucket}/{inner}"))
                    .ok_or(VfsError::NotFound)?;
                read_local(p, offset, len).await
            }
            _ => Err(VfsError::NotFound),
        }
    }
}

/// A snapshot's rows of one bucket, decoded once.
type SnapshotRows = Arc<BTreeMap<String, Row>>;
/// A snapshot's bucket's directory CIDs by path (`""`: its root).
type SnapshotDirs = Arc<HashMap<String, crate::car::Built>>;

/// `.snapshots/`.
pub struct SnapshotsTree {
    content: Arc<Content>,
    /// Decoded index copies by (snapshot id, bucket).
    rows: Mutex<HashMap<(String, String), SnapshotRows>>,
    /// Their directories' CIDs by path, by (snapshot id, bucket).
    dirs: Mutex<HashMap<(String, String), SnapshotDirs>>,
}

impl SnapshotsTree {
    pub fn new(buckets: &BucketsTree) -> Self {
        Self {
            content: buckets.content.clone(),
            rows: Mutex::default(),
            dirs: Mutex::default(),
        }
    }

    fn catalog(&self) -> &Arc<Catalog> {
        &self.content.catalog
    }

    fn snapshot_rows(&self, id: &str, bucket: &str) -> Result<Arc<BTreeMap<String, Row>>, VfsError> {
        let key = (id.to_string(), bucket.to_string());
        if let Some(r) = self.rows.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(r.clone());
        }
        let snap = self.catalog().read_snapshot(id).map_err(|_| VfsError::NotFound)?;
        if !snap.buckets.contains_key(bucket) {
            return Err(VfsError::NotFound);
        }
        let ikey = index_copy_key(id, bucket);
        let rows = match self.catalog().store.read(&ikey) {
            Ok(Some((bytes, _))) if !bytes.is_empty() => {
                let path = self.catalog().store.local_path(&ikey).unwrap_or_default();
                index::decode(bytes.into(), &path)
                    .map_err(|e| {
                        tracing::error!(snapshot = id, bucket, error = %e, "snapshot index unreadable");
                        eio(e.to_string())
                    })?
                    .0
            }
            Ok(_) => Vec::new(),
            Err(e) => return Err(eio(e.to_string())),
        };
        let map: Arc<BTreeMap<String, Row>> =
            Arc::new(rows.into_iter().map(|r| (r.path.clone(), r)).collect());
        let mut cache = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= SNAPSHOT_CACHE {
            cache.clear();
        }
        cache.insert(key, map.clone());
        Ok(map)
    }
}

impl SnapshotsTree {
    /// The CID of the directory `inner` of a snapshot's bucket (`""`: its
    /// root), from the snapshot's rows; every directory of one snapshot's
    /// bucket is computed at once and kept.
    fn snapshot_dir(
        &self,
        id: &str,
        bucket: &str,
        rows: &BTreeMap<String, Row>,
        profile: crate::car::Profile,
        inner: &str,
    ) -> Option<String> {
        let key = (id.to_string(), bucket.to_string());
        let cached = self
            .dirs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let dirs = match cached {
            Some(d) => d,
            None => {
                let sorted: Vec<&Row> = rows.values().collect();
                let d = Arc::new(dag::dirs(&sorted, profile).ok()?);
                let mut cache = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() >= SNAPSHOT_CACHE {
                    cache.clear();
                }
                cache.insert(key, d.clone());
                d
            }
        };
        dirs.get(inner).map(|b| b.cid.to_string())
    }
}

#[async_trait]
impl Tree for SnapshotsTree {
    fn read_only(&self) -> bool {
        true
    }
    fn describe(&self) -> String {
        "snapshots (read-only)".into()
    }
    async fn ipfs_cid(&self, rel: &str) -> Option<IpfsCid> {
        let (id, rest) = split(rel);
        let (bucket, inner) = split(rest);
        if bucket.is_empty() {
            return None;
        }
        // The snapshot's rows were hashed with the bucket's profile (one per bucket).
        let profile = self
            .catalog()
            .get(bucket)
            .map(|b| b.def.profile)
            .unwrap_or_default();
        let rows = self.snapshot_rows(id, bucket).ok()?;
        let cid = match rows.get(inner) {
            Some(r) => r.cid.clone(),
            None => self.snapshot_dir(id, bucket, &rows, profile, inner)?,
        };
        Some(IpfsCid {
            cid,
            profile: Some(profile.name()),
        })
    }
    async fn stat(&self, rel: &str) -> Result<Meta, VfsError> {
        if rel.is_empty() {
            return Ok(Meta::dir());
        }
        let (id, rest) = split(rel);
        let json = self
            .catalog()
            .store
            .local_path(&format!("{SNAPSHOT_DIR}/{id}.json"))
            .ok_or(VfsError::NotFound)?;
        if rest.is_empty() {
            return if json.exists() {
                Ok(Meta::dir())
            } else {
                Err(VfsError::NotFound)
            };
        }
        let (bucket, inner) = split(rest);
        if bucket == "manifest.json" && inner.is_empty() {
            return local_meta(&json);
        }
        let rows = self.snapshot_rows(id, bucket)?;
        stat_rows(&rows, inner)
    }
    async fn list(&self, rel: &str) -> Result<Vec<(String, Meta)>, VfsError> {
        if rel.is_empty() {
            let list = self.catalog().snapshots(None).map_err(|e| eio(e.to_string()))?;
            return Ok(list.into_iter().map(|s| (s.snapshot_id, Meta::dir())).collect());
        }
        let (id, rest) = split(rel);
        if rest.is_empty() {
            let snap = self.catalog().read_snapshot(id).map_err(|_| VfsError::NotFound)?;
            let mut out: Vec<(String, Meta)> =
                snap.buckets.keys().map(|b| (b.clone(), Meta::dir())).collect();
            out.push((
                "manifest.json".into(),
                self.stat(&format!("{id}/manifest.json")).await?,
            ));
            out.sort_by(|a, b| a.0.cmp(&b.0));
            return Ok(out);
        }
        let (bucket, inner) = split(rest);
        let rows = self.snapshot_rows(id, bucket)?;
        list_rows(&rows, inner)
    }
    async fn read(&self, rel: &str, offset: u64, len: u64) -> Result<Bytes, VfsError> {
        let (id, rest) = split(rel);
        let (bucket, inner) = split(rest);
        if bucket == "manifest.json" && inner.is_empty() {
            let p = self
                .catalog()
                .store
                .local_path(&format!("{SNAPSHOT_DIR}/{id}.json"))
                .ok_or(VfsError::NotFound)?;
            return read_local(p, offset, len).await;
        }
        let rows = self.snapshot_rows(id, bucket)?;
        let row = rows.get(inner).cloned().ok_or(VfsError::NotFound)?;
        self.content.read(bucket, &row, offset, len).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(paths: &[&str]) -> BTreeMap<String, Row> {
        paths
            .iter()
            .map(|p| {
                (
                    p.to_string(),
                    Row {
                        path: p.to_string(),
                        cid: "c".into(),
                        size: 1,
                        dag_size: 1,
                        mtime_ms: None,
                        etag: None,
                        indexed_ms: 0,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn listing_rows_gives_each_child_once_and_skips_subtrees() {
        let r = rows(&["a", "d/x", "d/y/z", "d.txt", "d0", "e/f"]);
        let names = |rel: &str| -> Vec<(String, bool)> {
            list_rows(&r, rel)
                .unwrap()
                .into_iter()
                .map(|(n, m)| (n, m.is_dir))
                .collect()
        };
        assert_eq!(
            names(""),
            vec![
                ("a".into(), false),
                ("d".into(), true),
                ("d.txt".into(), false),
                ("d0".into(), false),
                ("e".into(), true)
            ]
        );
        assert_eq!(names("d"), vec![("x".into(), false), ("y".into(), true)]);
        assert!(list_rows(&r, "nope").is_err());
        assert!(stat_rows(&r, "d/y").unwrap().is_dir);
        assert!(!stat_rows(&r, "d/y/z").unwrap().is_dir);
        assert!(stat_rows(&r, "d/q").is_err());
    }
}
