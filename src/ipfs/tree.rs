//! Immutable UnixFS content as a read-only [`Tree`]: `scheme = "ipfs"` (blocks
//! from a node or gateway) and `scheme = "car"` (blocks from CAR files).
//!
//! Layouts: with one root the DAG sits at the mount path; otherwise the top
//! level holds one directory per CID (`<mount>/<CID>/path...`): a lookup of
//! any CID works, in any of its text forms, and the listing shows the
//! configured roots plus every CID looked up since the mount, in canonical
//! form. Resolved paths are cached (content never
//! changes, so nothing is invalidated), and reads of an open file go straight
//! to its CID, which the core passes back as the version: no path is
//! resolved again per read. Every entry's `Meta::version` is its CID, and the
//! tree is content addressed, so the core's block cache keys file data by CID.
//!
//! UnixFS symlinks are symlinks (`readlink` gives the stored target; it is
//! never followed here, the kernel resolves it like any other).

use super::error::IpfsError;
use super::store::Store;
use super::unixfs::Kind;
use crate::vfs::{Meta, Tree, VfsError};
use async_trait::async_trait;
use bytes::Bytes;
use cid::Cid;
use futures::StreamExt;
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

/// Resolved paths kept: a few MB for the names of a large tree.
const PATH_CACHE_ENTRIES: usize = 100_000;
/// Children stat'ed at once while listing (each may be one block fetch).
const LIST_CONCURRENCY: usize = 32;

/// Where the DAGs sit under the mount path.
pub enum Layout {
    /// One DAG at the mount path.
    Root(Cid),
    /// `<CID>/...` for any CID; these are listed at the top.
    ByCid(RwLock<BTreeSet<Cid>>),
}

/// A read-only tree of UnixFS DAGs.
pub struct DagTree {
    scheme: &'static str,
    store: Arc<Store>,
    layout: Layout,
    paths: quick_cache::sync::Cache<String, (Cid, Kind)>,
}

impl DagTree {
    /// A tree over `store` placed as `layout`; `scheme` names it in status.
    pub fn new(scheme: &'static str, store: Arc<Store>, layout: Layout) -> Self {
        Self {
            scheme,
            store,
            layout,
            paths: quick_cache::sync::Cache::new(PATH_CACHE_ENTRIES),
        }
    }

    /// The CID and kind at `rel`; `None` for the synthetic top of a `ByCid` layout.
    pub async fn resolve(&self, rel: &str) -> Result<Option<(Cid, Kind)>, IpfsError> {
        if let Some(hit) = self.paths.get(rel) {
            return Ok(Some(hit));
        }
        let mut parts = rel.split('/').filter(|p| !p.is_empty());
        let (mut cid, mut prefix) = match &self.layout {
            Layout::Root(root) => (*root, String::new()),
            Layout::ByCid(seen) => {
                let Some(first) = parts.next() else {
                    return Ok(None);
                };
                let cid = parse_cid_name(first).ok_or(IpfsError::NotFound)?;
                let kind = self.cached_kind(first, &cid).await?;
                seen.write().unwrap_or_else(|e| e.into_inner()).insert(cid);
                if matches!(kind, Kind::Dir) || rel == first {
                    (cid, first.to_string())
                } else {
                    return Err(IpfsError::NotDir);
                }
            }
        };
        let mut kind = self.cached_kind(&prefix, &cid).await?;
        for name in parts {
            if !matches!(kind, Kind::Dir) {
                return Err(IpfsError::NotDir);
            }
            prefix = crate::vfs::join_rel(&prefix, name);
            if let Some((c, k)) = self.paths.get(&prefix) {
                (cid, kind) = (c, k);
                continue;
            }
            cid = self.store.lookup(&cid, name).await?;
            kind = self.cached_kind(&prefix, &cid).await?;
        }
        Ok(Some((cid, kind)))
    }

    async fn cached_kind(&self, path: &str, cid: &Cid) -> Result<Kind, IpfsError> {
        if let Some((_, k)) = self.paths.get(path) {
            return Ok(k);
        }
        let kind = self.store.kind(cid).await?;
        self.paths.insert(path.to_string(), (*cid, kind.clone()));
        Ok(kind)
    }

    async fn list_inner(&self, rel: &str) -> Result<Vec<(String, Meta)>, IpfsError> {
        let dir = match self.resolve(rel).await? {
            None => return Ok(self.list_roots().await),
            Some((cid, Kind::Dir)) => cid,
            Some(_) => return Err(IpfsError::NotDir),
        };
        let entries = self.store.list(&dir).await?;
        let stats = futures::stream::iter(entries.into_iter().map(|e| async move {
            let path = crate::vfs::join_rel(rel, &e.name);
            // A raw leaf is the whole file: its link's Tsize is its size, so
            // listing a directory of small files fetches no file bytes. (A
            // wrong Tsize shows a wrong size; reads still only return
            // verified bytes, short where the size was too large.)
            let kind = if e.cid.codec() == crate::car::RAW {
                Kind::File(e.tsize)
            } else {
                self.cached_kind(&path, &e.cid).await?
            };
            Ok::<_, IpfsError>((e.name, meta_of(&e.cid, &kind)))
        }))
        .buffered(LIST_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
        stats.into_iter().collect()
    }

    /// The top of a `ByCid` layout: the CIDs configured or seen that resolve.
    async fn list_roots(&self) -> Vec<(String, Meta)> {
        let roots: Vec<Cid> = match &self.layout {
            Layout::ByCid(seen) => seen
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .copied()
                .collect(),
            Layout::Root(_) => Vec::new(),
        };
        let mut out = Vec::with_capacity(roots.len());
        for cid in roots {
            let name = cid.to_string();
            match self.cached_kind(&name, &cid).await {
                Ok(kind) => out.push((name, meta_of(&cid, &kind))),
                Err(e) => tracing::warn!(%cid, error = %e, "root left out of the listing"),
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    async fn read_cid(&self, cid: &Cid, kind: &Kind, offset: u64, len: u64) -> Result<Bytes, IpfsError> {
        match kind {
            Kind::Dir => Err(IpfsError::IsDir),
            Kind::Symlink(_) => Err(IpfsError::Malformed {
                cid: cid.to_string(),
                message: "a symlink has no bytes to read".into(),
            }),
            Kind::File(_) => self.store.read(cid, offset, len).await,
        }
    }
}

/// A top-level name as a CID, in any text form a CID has: CIDv0 `Qm...`, or
/// CIDv1 in any multibase (`bafy...`, `zdj7...`, `k51...`, `BAFY...`), as
/// Kubo's `/ipfs` paths take them. Each form is its own name for the same
/// DAG; the listing shows the canonical one ([`Cid`]'s `Display`).
fn parse_cid_name(name: &str) -> Option<Cid> {
    Cid::try_from(name).ok()
}

/// Symlink mode bits: UnixFS stores no mode, and a link's own bits are not
/// checked anyway.
const SYMLINK_MODE: u32 = libc::S_IFLNK | 0o777;

fn meta_of(cid: &Cid, kind: &Kind) -> Meta {
    let (is_dir, size, mode) = match kind {
        Kind::Dir => (true, 0, None),
        Kind::File(n) => (false, *n, None),
        Kind::Symlink(t) => (false, t.len() as u64, Some(SYMLINK_MODE)),
    };
    Meta {
        is_dir,
        size,
        mode,
        version: Some(cid.to_string()),
        ..Meta::default()
    }
}

#[async_trait]
impl Tree for DagTree {
    fn read_only(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("{} ({})", self.scheme, self.store.describe())
    }

    fn lists_full_meta(&self) -> bool {
        true
    }

    fn content_addressed(&self) -> bool {
        true
    }

    fn lists_every_name(&self, path: &str) -> bool {
        !(path.is_empty() && matches!(self.layout, Layout::ByCid(_)))
    }

    async fn stat(&self, path: &str) -> Result<Meta, VfsError> {
        match self.resolve(path).await? {
            None => Ok(Meta::dir()),
            Some((cid, kind)) => Ok(meta_of(&cid, &kind)),
        }
    }

    async fn list(&self, path: &str) -> Result<Vec<(String, Meta)>, VfsError> {
        Ok(self.list_inner(path).await?)
    }

    async fn readlink(&self, path: &str) -> Result<Vec<u8>, VfsError> {
        match self.resolve(path).await? {
            Some((_, Kind::Symlink(target))) => Ok(target.into_bytes()),
            _ => Err(VfsError::Invalid("not a symlink")),
        }
    }

    async fn read(&self, path: &str, offset: u64, len: u64) -> Result<Bytes, VfsError> {
        match self.resolve(path).await? {
            None => Err(VfsError::IsDir),
            Some((cid, kind)) => Ok(self.read_cid(&cid, &kind, offset, len).await?),
        }
    }

    async fn read_version(
        &self,
        path: &str,
        offset: u64,
        len: u64,
        version: Option<&str>,
    ) -> Result<Bytes, VfsError> {
        // The version is the file's CID (from its Meta): read it directly.
        if let Some(cid) = version.and_then(|v| Cid::try_from(v).ok()) {
            if cid.codec() == crate::car::RAW {
                return Ok(self.store.read(&cid, offset, len).await?);
            }
            if let Some((c, kind)) = self.paths.get(path) {
                if c == cid {
                    return Ok(self.read_cid(&cid, &kind, offset, len).await?);
                }
            }
        }
        self.read(path, offset, len).await
    }
}
